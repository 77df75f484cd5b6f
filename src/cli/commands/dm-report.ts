// SPDX-License-Identifier: MIT
// Text views of `dm info -c` (dmsetup's column report) and `dm ls --tree` (dmsetup's dependency
// tree). Pure formatting over what DmControl returned; commands/dm.ts does the ioctls.
import type { DeviceInfo, DevNum } from '../../dm/index.js';
import { UsageError } from '../errors.js';
import { INFO_FIELDS, INFO_FIELDS_DEFAULT, type InfoField } from '../specs/constants.js';

export { INFO_FIELDS_DEFAULT };

/** Heading, dmsetup's minimum width and alignment of each field (dmsetup.c `_report_fields`). */
const INFO_COLUMN: Readonly<Record<InfoField, { heading: string; width: number; right: boolean }>> = {
  name: { heading: 'Name', width: 16, right: false },
  major: { heading: 'Maj', width: 3, right: true },
  minor: { heading: 'Min', width: 3, right: true },
  attr: { heading: 'Stat', width: 4, right: false },
  open: { heading: 'Open', width: 4, right: true },
  segments: { heading: 'Targ', width: 4, right: true },
  events: { heading: 'Event', width: 6, right: true },
  uuid: { heading: 'UUID', width: 32, right: false },
};

const FIELD_ALIASES: Readonly<Record<string, InfoField>> = { maj: 'major', min: 'minor' };

/** Parses `-o FIELDS` (comma-separated, dmsetup's names, case-insensitive). */
export function parseInfoFields(text: string, command: string): InfoField[] {
  const out: InfoField[] = [];
  for (const raw of text.split(',')) {
    const f = raw.trim().toLowerCase();
    const field = FIELD_ALIASES[f] ?? (INFO_FIELDS as readonly string[]).find((x) => x === f);
    if (field === undefined) throw new UsageError(`-o: unknown field '${raw}'; the fields are ${INFO_FIELDS.join(', ')}`, command);
    out.push(field as InfoField);
  }
  return out;
}

/** dmsetup's `attr` (Stat): live table, inactive table, suspended, read-only. */
export function infoAttr(i: DeviceInfo): string {
  return `${i.activeTable ? 'L' : '-'}${i.inactiveTable ? 'I' : '-'}${i.suspended ? 's' : '-'}${i.readOnly ? 'r' : 'w'}`;
}

function fieldValue(i: DeviceInfo, f: InfoField): string {
  switch (f) {
    case 'name':
      return i.name;
    case 'major':
      return String(i.dev.major);
    case 'minor':
      return String(i.dev.minor);
    case 'attr':
      return infoAttr(i);
    case 'open':
      return String(i.openCount);
    case 'segments':
      return String(i.targetCount);
    case 'events':
      return String(i.eventNr);
    case 'uuid':
      return i.uuid ?? '';
  }
}

/**
 * `dmsetup info -c`: a heading line (unless `noheadings`), then one line per device. Without a
 * separator the columns are aligned (at least dmsetup's widths; numbers to the right) and joined
 * by one space, trailing blanks trimmed; with one, the values are joined by it as they are.
 */
export function infoColumns(infos: readonly DeviceInfo[], fields: readonly InfoField[], opts: { noheadings: boolean; separator?: string }): string {
  const rows = infos.map((i) => fields.map((f) => fieldValue(i, f)));
  const headings = fields.map((f) => INFO_COLUMN[f].heading);
  const all = opts.noheadings ? rows : [headings, ...rows];
  if (opts.separator !== undefined) return all.map((r) => r.join(opts.separator) + '\n').join('');
  const widths = fields.map((f, c) => Math.max(INFO_COLUMN[f].width, ...all.map((r) => r[c]!.length)));
  // Headings are left-aligned, values of number fields right-aligned (libdm's report does so).
  const line = (r: readonly string[], heading: boolean): string =>
    r.map((v, c) => (!heading && INFO_COLUMN[fields[c]!].right ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join(' ').trimEnd() + '\n';
  return all.map((r, i) => line(r, !opts.noheadings && i === 0)).join('');
}

/** One device for the tree: its number and what its live table maps onto. */
export interface TreeNode {
  readonly name: string;
  readonly dev: DevNum;
  readonly deps: readonly DevNum[];
}

const key = (d: DevNum): string => `${d.major}:${d.minor}`;

/** Whether the environment's locale is UTF-8 (LC_ALL, else LC_CTYPE, else LANG), as dmsetup asks nl_langinfo(CODESET). */
export function utf8Locale(env: Readonly<Record<string, string | undefined>>): boolean {
  const locale = env['LC_ALL'] || env['LC_CTYPE'] || env['LANG'] || '';
  return /utf-?8/i.test(locale);
}

/**
 * `dmsetup ls --tree`: every device no other device maps onto is a root; under each device what
 * it maps onto, recursively: a dm device by name, anything else as `(MAJ:MIN)`. Drawn with
 * box-drawing characters in a UTF-8 locale and `|-`, `` `- ``, `|` otherwise, as dmsetup does.
 */
export function depsTree(nodes: readonly TreeNode[], utf8 = true): string {
  const tree = depsTreeUtf8(nodes);
  return utf8 ? tree : tree.replaceAll('├─', '|-').replaceAll('└─', '`-').replaceAll('│', '|');
}

function depsTreeUtf8(nodes: readonly TreeNode[]): string {
  const byDev = new Map(nodes.map((n) => [key(n.dev), n]));
  const used = new Set(nodes.flatMap((n) => n.deps.map(key)));
  const roots = nodes.filter((n) => !used.has(key(n.dev))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines: string[] = [];
  const walk = (dev: DevNum, prefix: string, branch: string, seen: ReadonlySet<string>): void => {
    const n = byDev.get(key(dev));
    lines.push(`${prefix}${branch}${n?.name ?? ''} (${key(dev)})`);
    if (!n || seen.has(key(dev))) return;
    const next = new Set(seen).add(key(dev));
    const childPrefix = branch === '' ? prefix + ' ' : prefix + (branch.startsWith('├') ? '│  ' : '   ');
    n.deps.forEach((d, i) => walk(d, childPrefix, i === n.deps.length - 1 ? '└─' : '├─', next));
  };
  for (const r of roots) walk(r.dev, '', '', new Set());
  return lines.map((l) => l + '\n').join('');
}
