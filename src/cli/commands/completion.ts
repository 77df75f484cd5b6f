// SPDX-License-Identifier: MIT
// `devmapper completion SHELL`: prints the script completion.ts generates from the command tables.
import type { Handler } from '../args.js';
import type { Ctx } from '../context.js';
import { COMPLETION_SHELLS, completionScript, type CompletionShell } from '../completion.js';
import { UsageError } from '../errors.js';
import { libraryVersion } from '../version.js';

export const handlers = {
  async completion(ctx, p) {
    const shell = p.args['SHELL'] as string;
    if (!(COMPLETION_SHELLS as readonly string[]).includes(shell)) {
      throw new UsageError(`SHELL must be one of ${COMPLETION_SHELLS.join(', ')}, not '${shell}'`, 'completion');
    }
    // main.ts is loaded already (it ran this command); its tables are the ones --help prints.
    const { GROUPS, TOP_COMMANDS } = await import('../main.js');
    ctx.stdout(completionScript(shell as CompletionShell, GROUPS, TOP_COMMANDS, libraryVersion()));
  },
} satisfies Record<string, Handler<Ctx>>;
