// SPDX-License-Identifier: MIT
// `devmapper completion bash|zsh`: options and help (read at startup); the script generator is in
// commands/completion.ts, loaded with import() only when the command runs. The command tables it
// completes are given by main.ts (a function, so no module imports main.ts back: no cycle).
import type { CommandSpec } from '../args.js';
import type { CommandTables } from '../completion.js';
import type { Ctx } from '../context.js';

const impl = () => import('../commands/completion.js');

export function completionCommand(tables: () => CommandTables): CommandSpec<Ctx> {
  return {
    name: 'completion',
    summary: 'Print a bash or zsh completion script for devmapper (generated from its command tables).',
    positionals: [{ name: 'SHELL' }],
    details:
      "SHELL is 'bash' or 'zsh'. The script completes command groups, commands and each command's options;\n" +
      'other words complete as file names.',
    examples: [
      'source <(devmapper completion bash)',
      'devmapper completion bash > /etc/bash_completion.d/devmapper',
      'devmapper completion zsh > "${fpath[1]}/_devmapper"',
    ],
    run: async (ctx, p) => (await impl()).completion(ctx, p, tables()),
  };
}
