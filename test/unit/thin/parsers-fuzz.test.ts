// SPDX-License-Identifier: MIT
// Every parser, fed seeded random token soup, either parses or throws KernelOutputError — nothing else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rng } from '../../helpers/rng.js';
import { KernelOutputError } from '../../../src/errors.js';
import { parsePoolParams, parseThinParams, parseThinPoolStatus, parseThinStatus } from '../../../src/thin/index.js';

const TOKENS = [
  '0', '1', '42', '-', '-1', '1.5', '1e3', '0x10', '18446744073709551615', '18446744073709551616', '1/2', '1/', '/2', '1/2/3',
  'rw', 'ro', 'out_of_data_space', 'discard_passdown', 'no_discard_passdown', 'ignore_discard', 'queue_if_no_space',
  'error_if_no_space', 'needs_check', 'Fail', 'Error', '253:0', '7:1', '4096:0', '/dev/loop0', 'skip_block_zeroing',
  'read_only', '', ' ', '\t', 'é', '\u0000',
];


test('5000 random lines per parser: result or KernelOutputError only', () => {
  const next = rng(0x7e1e);
  const parsers = [parsePoolParams, parseThinParams, parseThinPoolStatus, parseThinStatus];
  let parsed = 0;
  let refused = 0;
  for (const parse of parsers) {
    for (let i = 0; i < 5000; i++) {
      const n = Math.floor(next() * 12);
      const words = Array.from({ length: n }, () => TOKENS[Math.floor(next() * TOKENS.length)] as string);
      const line = words.join(next() < 0.8 ? ' ' : '  ') + (next() < 0.5 ? ' ' : '');
      try {
        parse(line);
        parsed++;
      } catch (e) {
        if (!(e instanceof KernelOutputError)) assert.unreachable(`${parse.name}(${JSON.stringify(line)}) threw ${String(e)}`);
        refused++;
      }
    }
  }
  assert.is(parsed + refused, 20000);
  assert.ok(refused > 0);
});

test.run();
