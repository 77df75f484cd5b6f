// SPDX-License-Identifier: MIT
// The dm-thin contract, through DmControl.targetMessage + tableStatus and the src/thin parsers:
// pool messages with their exact errnos, status lines, thin activation rules, data-block
// accounting with snapshots, running out of data space.
import * as assert from 'uvu/assert';
import type { DmControl } from '../../src/dm/index.js';
import { parseThinPoolStatus, parseThinStatus, type ThinPoolWorkingStatus } from '../../src/thin/index.js';
import { errnoOf, type ContractEnv, type EnvFactory, type SuiteFactory } from './env.js';

const MiB = 1024 * 1024;
const BLOCK_SECTORS = 128; // 64 KiB data blocks
const BLOCK_BYTES = BLOCK_SECTORS * 512;
const STATUS_RE =
  /^\d+ \d+\/\d+ \d+\/\d+ (-|\d+) (rw|ro|out_of_data_space) (discard_passdown|no_discard_passdown|ignore_discard) (queue_if_no_space|error_if_no_space) (-|needs_check) \d+ $/;

interface Pool {
  name: string;
  dev: { major: number; minor: number };
  meta: string;
  data: string;
  dataBlocks: number;
}

async function makePool(env: ContractEnv, dm: DmControl, dataBlocks = 64, features = ''): Promise<Pool> {
  const meta = await env.blockDevice(4 * MiB);
  const data = await env.blockDevice(dataBlocks * BLOCK_BYTES);
  const name = env.name('pool');
  const params = `${meta.major}:${meta.minor} ${data.major}:${data.minor} ${BLOCK_SECTORS} 0 ${features || '0'}`;
  const info = await dm.createDevice(name, [{ start: 0n, length: BigInt(dataBlocks * BLOCK_SECTORS), type: 'thin-pool', params }]);
  return { name, dev: info.dev, meta: `${meta.major}:${meta.minor}`, data: `${data.major}:${data.minor}`, dataBlocks };
}

async function poolStatus(dm: DmControl, name: string): Promise<{ raw: string; s: ThinPoolWorkingStatus }> {
  const line = (await dm.tableStatus(name))[0]?.params ?? '';
  const s = parseThinPoolStatus(line);
  if (s.kind !== 'working') throw new Error(`pool status ${line}`);
  return { raw: line, s };
}

async function thin(env: ContractEnv, dm: DmControl, pool: Pool, id: number, blocks = 16): Promise<string> {
  const name = env.name(`thin${id}`);
  await dm.createDevice(name, [{ start: 0n, length: BigInt(blocks * BLOCK_SECTORS), type: 'thin', params: `${pool.dev.major}:${pool.dev.minor} ${id}` }]);
  return name;
}

export function registerThinContract(suiteFactory: SuiteFactory, makeEnv: EnvFactory): void {
  const test = suiteFactory('thin contract');
  let env: ContractEnv;
  let dm: DmControl;
  test.before.each(async () => {
    env = await makeEnv();
    dm = env.dm();
  });
  test.after.each(async () => {
    await env.cleanup();
  });

  test('fresh pool: status line format, counts, table text', async () => {
    const pool = await makePool(env, dm);
    const { raw, s } = await poolStatus(dm, pool.name);
    assert.match(raw, STATUS_RE);
    assert.is(s.transactionId, 0n);
    assert.is(s.usedDataBlocks, 0n);
    assert.is(s.totalDataBlocks, BigInt(pool.dataBlocks));
    assert.is(s.totalMetadataBlocks, BigInt((4 * MiB) / 4096));
    assert.ok(s.usedMetadataBlocks > 0n && s.usedMetadataBlocks < s.totalMetadataBlocks);
    assert.is(s.heldMetadataRoot, null);
    assert.is(s.mode, 'rw');
    assert.is(s.noSpacePolicy, 'queue_if_no_space');
    assert.is(s.needsCheck, false);
    assert.is(s.metadataLowWatermark, BigInt(Math.min(1024, (4 * MiB) / 4096 / 4)));
    const [t] = await dm.tableStatus(pool.name, { mode: 'table' });
    assert.is(t?.params, `${pool.meta} ${pool.data} ${BLOCK_SECTORS} 0 0 `);
  });

  test('features: kernel order and count in the table; policy in the status', async () => {
    const pool = await makePool(env, dm, 64, '2 error_if_no_space skip_block_zeroing');
    const [t] = await dm.tableStatus(pool.name, { mode: 'table' });
    assert.is(t?.params, `${pool.meta} ${pool.data} ${BLOCK_SECTORS} 0 2 skip_block_zeroing error_if_no_space `);
    assert.is((await poolStatus(dm, pool.name)).s.noSpacePolicy, 'error_if_no_space');
    const bad = env.name('badpool');
    await dm.deviceCreate(bad);
    const table = (params: string) => dm.tableLoad(bad, [{ start: 0n, length: 8192n, type: 'thin-pool', params }]);
    assert.is(await errnoOf(table(`${pool.meta} ${pool.data} 100 0 0`)), 'EINVAL');
    assert.is(await errnoOf(table(`${pool.meta} ${pool.data} 128 0 1 no_such_feature`)), 'EINVAL');
    assert.is(await errnoOf(table(`${pool.meta} ${pool.data} 128`)), 'EINVAL');
    assert.is(await errnoOf(table(`${pool.meta} ${pool.data} 128 0 0`)), 'EBUSY', 'devices already used by a pool');
  });

  test('messages: create_thin/create_snap/delete/set_transaction_id errnos', async () => {
    const pool = await makePool(env, dm);
    const msg = (m: string) => dm.targetMessage(pool.name, 0n, m);
    assert.is(await msg('create_thin 0'), null);
    assert.is(await errnoOf(msg('create_thin 0')), 'EEXIST');
    assert.is(await errnoOf(msg('delete 5')), 'ENODATA');
    assert.is(await msg('create_snap 1 0'), null);
    assert.is(await errnoOf(msg('create_snap 1 0')), 'EEXIST');
    assert.is(await errnoOf(msg('create_snap 2 99')), 'ENODATA');
    assert.is(await msg('set_transaction_id 0 7'), null);
    assert.is((await poolStatus(dm, pool.name)).s.transactionId, 7n);
    assert.is(await errnoOf(msg('set_transaction_id 0 8')), 'EINVAL');
    assert.is(await errnoOf(msg('create_thin 16777216')), 'EINVAL');
    assert.is(await errnoOf(msg('create_thin')), 'EINVAL');
    assert.is(await errnoOf(msg('frobnicate 1')), 'EINVAL');
    assert.is(await msg('delete 1'), null);
    assert.is(await errnoOf(msg('delete 1')), 'ENODATA');
  });

  test('metadata snapshot: reserve, reserve again → EBUSY, release, release again → EINVAL', async () => {
    const pool = await makePool(env, dm);
    const msg = (m: string) => dm.targetMessage(pool.name, 0n, m);
    await msg('reserve_metadata_snap');
    assert.ok((await poolStatus(dm, pool.name)).s.heldMetadataRoot !== null);
    assert.is(await errnoOf(msg('reserve_metadata_snap')), 'EBUSY');
    await msg('release_metadata_snap');
    assert.is((await poolStatus(dm, pool.name)).s.heldMetadataRoot, null);
    assert.is(await errnoOf(msg('release_metadata_snap')), 'EINVAL');
  });

  test('thin activation: status "0 -", table text, missing id → ENODATA, suspended pool → EINVAL', async () => {
    const pool = await makePool(env, dm);
    await dm.targetMessage(pool.name, 0n, 'create_thin 3');
    const t = await thin(env, dm, pool, 3);
    const [st] = await dm.tableStatus(t);
    assert.is(st?.params, '0 -');
    assert.equal(parseThinStatus(st?.params ?? ''), { kind: 'working', mappedSectors: 0n, highestMappedSector: null });
    const [tt] = await dm.tableStatus(t, { mode: 'table' });
    assert.is(tt?.params, `${pool.dev.major}:${pool.dev.minor} 3`);
    const missing = env.name('thin-missing');
    await dm.deviceCreate(missing);
    const load = (id: number) => dm.tableLoad(missing, [{ start: 0n, length: 2048n, type: 'thin', params: `${pool.dev.major}:${pool.dev.minor} ${id}` }]);
    assert.is(await errnoOf(load(42)), 'ENODATA');
    await dm.deviceSuspend(pool.name);
    assert.is(await errnoOf(load(3)), 'EINVAL');
    await dm.deviceResume(pool.name);
  });

  test('busy rules: delete of an active thin → EBUSY; pool with thins → EBUSY', async () => {
    const pool = await makePool(env, dm);
    await dm.targetMessage(pool.name, 0n, 'create_thin 0');
    const t = await thin(env, dm, pool, 0);
    assert.is(await errnoOf(dm.targetMessage(pool.name, 0n, 'delete 0')), 'EBUSY');
    assert.is(await errnoOf(dm.deviceRemove(pool.name)), 'EBUSY');
    await dm.deviceRemove(t);
    assert.is(await dm.targetMessage(pool.name, 0n, 'delete 0'), null);
  });

  test('data accounting: writes map blocks, snapshots share them, CoW on overwrite', async () => {
    const pool = await makePool(env, dm);
    await dm.targetMessage(pool.name, 0n, 'create_thin 0');
    const t = await thin(env, dm, pool, 0);
    await env.writeBlocks(t, 0, 4, BLOCK_BYTES);
    assert.is((await dm.tableStatus(t))[0]?.params, `${4 * BLOCK_SECTORS} ${4 * BLOCK_SECTORS - 1}`);
    assert.is((await poolStatus(dm, pool.name)).s.usedDataBlocks, 4n);
    await dm.deviceSuspend(t);
    await dm.targetMessage(pool.name, 0n, 'create_snap 1 0');
    await dm.deviceResume(t);
    assert.is((await poolStatus(dm, pool.name)).s.usedDataBlocks, 4n);
    await env.writeBlocks(t, 0, 1, BLOCK_BYTES);
    assert.is((await poolStatus(dm, pool.name)).s.usedDataBlocks, 5n);
    await env.writeBlocks(t, 0, 1, BLOCK_BYTES);
    assert.is((await poolStatus(dm, pool.name)).s.usedDataBlocks, 5n);
    await dm.targetMessage(pool.name, 0n, 'delete 1');
    assert.is((await poolStatus(dm, pool.name)).s.usedDataBlocks, 4n);
  });

  test('filling the pool: rw when exactly full, out_of_data_space after one more block', async () => {
    const pool = await makePool(env, dm, 8, '1 error_if_no_space');
    await dm.targetMessage(pool.name, 0n, 'create_thin 0');
    const t = await thin(env, dm, pool, 0, 16);
    await env.writeBlocks(t, 0, 8, BLOCK_BYTES);
    let s = (await poolStatus(dm, pool.name)).s;
    assert.is(s.usedDataBlocks, 8n);
    assert.is(s.mode, 'rw');
    let failed = false;
    try {
      await env.writeBlocks(t, 8, 1, BLOCK_BYTES);
    } catch {
      failed = true;
    }
    assert.ok(failed, 'the write past capacity fails');
    s = (await poolStatus(dm, pool.name)).s;
    assert.is(s.mode, 'out_of_data_space');
    assert.is(s.usedDataBlocks, 8n);
  });

  test.run();
}
