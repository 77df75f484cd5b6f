// SPDX-License-Identifier: MIT
// Constants that both a command's help (specs/) and its handler (commands/) use. A module of their
// own: a spec loads its handlers with import(), so a handler importing the spec would be a cycle.
import type { ThinPoolFeatures } from '../../thin/index.js';

/** `--feature` words (the kernel's spelling) → ThinPoolFeatures keys. */
export const POOL_FEATURES: Readonly<Record<string, keyof ThinPoolFeatures>> = {
  skip_block_zeroing: 'skipBlockZeroing',
  ignore_discard: 'ignoreDiscard',
  no_discard_passdown: 'noDiscardPassdown',
  read_only: 'readOnly',
  error_if_no_space: 'errorIfNoSpace',
};

/** The Debian packages the VM needs, for messages (`devmapper vm`, `devmapper demo`). */
export const VM_PACKAGES = 'qemu-system-x86 linux-image-amd64 busybox-static kmod';

/** `dm info -c -o` fields: dmsetup's field names, in its default order (`info -c` without -o). */
export const INFO_FIELDS = ['name', 'major', 'minor', 'attr', 'open', 'segments', 'events', 'uuid'] as const;
export type InfoField = (typeof INFO_FIELDS)[number];
export const INFO_FIELDS_DEFAULT = INFO_FIELDS.join(',');

/** `loop ls -O` columns: losetup's names; the default list is `losetup --list`'s. */
export const LOOP_COLUMNS = ['NAME', 'AUTOCLEAR', 'BACK-FILE', 'MAJ:MIN', 'OFFSET', 'PARTSCAN', 'RO', 'SIZELIMIT', 'DIO', 'LOG-SEC'] as const;
export type LoopColumn = (typeof LOOP_COLUMNS)[number];
export const LOOP_COLUMNS_DEFAULT = 'NAME,SIZELIMIT,OFFSET,AUTOCLEAR,RO,BACK-FILE,DIO,LOG-SEC';
