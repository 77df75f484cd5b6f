// SPDX-License-Identifier: MIT
// A digest of a directory tree, to prove a test left it unchanged: every entry's type, mode, size
// and content digest (lstat: links are never followed, only their mode is recorded).
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** sha256 of a whole file. */
export const sha256File = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** `relative path → description` for every entry under `dir`; `fileDigest` hashes regular files. */
export function treeDigest(dir: string, fileDigest: (path: string) => string = sha256File): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out[`${r}/`] = `dir ${st.mode.toString(8)}`;
        walk(p, r);
      } else if (st.isFile()) out[r] = `file ${st.mode.toString(8)} ${st.size} ${fileDigest(p)}`;
      else out[r] = `other ${st.mode.toString(8)}`;
    }
  };
  walk(dir, '');
  return out;
}
