// SPDX-License-Identifier: MIT
// The libdevmapper column of the bench needs libdm.c compiled against libdevmapper's header
// (Debian's libdevmapper-dev, /usr/include/libdevmapper.h). A full run (`npm run bench`) installs
// the package itself when it runs as root, so that every full run compares against libdevmapper;
// as another user it says what to run. The smoke run in `npm test` installs nothing: its ratios
// mean nothing, and CI's setup installs only what the tests need.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const LIBDM_HEADER = '/usr/include/libdevmapper.h';
export const LIBDM_PACKAGE = 'libdevmapper-dev';

/** What {@link ensureLibdmHeaders} runs and reads, replaceable in tests. */
export interface LibdmInstallDeps {
  readonly exists: (path: string) => boolean;
  readonly isRoot: boolean;
  /** Runs a command with the output shown; returns its exit status. */
  readonly run: (cmd: string, args: readonly string[]) => number | null;
}

const realDeps = (): LibdmInstallDeps => ({
  exists: existsSync,
  isRoot: process.getuid?.() === 0,
  run: (cmd, args) =>
    spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status,
});

/**
 * Makes libdevmapper's header available for a full run: '' when it is there (or was just
 * installed), else why the libdm column will be n/a. `apt-get update` runs only when the first
 * install fails (apt's lists may not know the package yet on a fresh machine).
 */
export function ensureLibdmHeaders(smoke: boolean, deps: LibdmInstallDeps = realDeps()): string {
  if (deps.exists(LIBDM_HEADER)) return '';
  const manual = `${LIBDM_PACKAGE} is not installed on the host (as root: apt-get install ${LIBDM_PACKAGE})`;
  if (smoke) return manual;
  if (!deps.isRoot) return `${manual}; a full run as root installs it`;
  const install = ['install', '-y', '--no-install-recommends', LIBDM_PACKAGE];
  console.log(`[bench] installing ${LIBDM_PACKAGE} for the libdevmapper column (apt-get ${install.join(' ')})`);
  if (deps.run('apt-get', install) !== 0) {
    deps.run('apt-get', ['update']);
    deps.run('apt-get', install);
  }
  return deps.exists(LIBDM_HEADER) ? '' : `apt-get install ${LIBDM_PACKAGE} did not provide ${LIBDM_HEADER}`;
}
