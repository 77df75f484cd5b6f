// SPDX-License-Identifier: MIT
// Module-loader hooks (they run on Node's hooks thread): every file: URL that is loaded, and every
// node: builtin that a module imports, is appended, one per line, to the file named by
// DEVMAPPER_LOAD_LOG. See load-recorder.ts.
import { appendFileSync } from 'node:fs';
import type { LoadHook } from 'node:module';

export const load: LoadHook = (url, context, nextLoad) => {
  const log = process.env['DEVMAPPER_LOAD_LOG'];
  if (log !== undefined && (url.startsWith('file:') || url.startsWith('node:'))) appendFileSync(log, `${url}\n`);
  return nextLoad(url, context);
};
