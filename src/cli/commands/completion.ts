// SPDX-License-Identifier: MIT
// `devmapper completion SHELL`: prints the script completion.ts generates from the command tables.
import type { Parsed } from '../args.js';
import type { Ctx } from '../context.js';
import { COMPLETION_SHELLS, completionScript, type CommandTables, type CompletionShell } from '../completion.js';
import { UsageError } from '../errors.js';
import { libraryVersion } from '../version.js';

/** Writes the completion script of SHELL for `tables` (the ones main.ts runs and --help prints). */
export async function completion(ctx: Ctx, p: Parsed, tables: CommandTables): Promise<void> {
  const shell = p.args['SHELL'] as string;
  if (!(COMPLETION_SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(`SHELL must be one of ${COMPLETION_SHELLS.join(', ')}, not '${shell}'`, 'completion');
  }
  ctx.stdout(completionScript(shell as CompletionShell, tables.groups, tables.tops, libraryVersion()));
}
