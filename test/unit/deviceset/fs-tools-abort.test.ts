// SPDX-License-Identifier: MIT
// The external tools' AbortSignal (fs-tools.ts run): an abort kills the child (execFile's
// `signal`: SIGTERM), and the call rejects with ExternalToolError whose cause is the AbortError.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { run } from '../../../src/deviceset/fs-tools.js';
import { ExternalToolError } from '../../../src/deviceset/errors.js';
import { rejects } from '../../helpers/rejects.js';

test('run: an abort kills the running child; the error names the command and keeps the AbortError', async () => {
  const ac = new AbortController();
  // `sleep 30` stands for a long mkfs: without the signal the call would only end with the child.
  const pending = run(['sleep', '30'], undefined, ac.signal);
  ac.abort();
  const err = await rejects(pending, ExternalToolError);
  assert.equal(err.command, ['sleep', '30']);
  assert.is((err.cause as Error).name, 'AbortError');
});

test.run();
