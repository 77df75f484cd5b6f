// SPDX-License-Identifier: MIT
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArgumentError } from '../../../src/errors.js';
import {
  DEFAULT_DEVICESET_OPTIONS,
  DM_OPTION_KEYS,
  formatDmOptions,
  formatSize,
  parseBool,
  parseDmOptions,
  parseSize,
  resolveDeviceSetOptions,
  resolveDeviceSetOptionsReport,
  type DeviceSetOptions,
  type ResolvedDeviceSetOptions,
} from '../../../src/deviceset/index.js';

const G = 1024n ** 3n;

function problemsOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    assert.instance(err, InvalidArgumentError);
    return (err as InvalidArgumentError).problems.map((p) => ({ path: p.path, message: p.message }));
  }
  assert.unreachable('expected InvalidArgumentError');
  return [];
}

const sizes = suite('deviceset/options: sizes');

sizes('binary units, exact', () => {
  const cases: [string, bigint][] = [
    ['10G', 10737418240n], ['10g', 10737418240n], ['10GiB', 10737418240n], ['10gb', 10737418240n], ['10 GB', 10737418240n],
    ['512k', 524288n], ['512K', 524288n], ['512KiB', 524288n], ['1t', 1099511627776n], ['2M', 2097152n], ['1p', 1125899906842624n],
    ['4096', 4096n], ['4096b', 4096n], ['0', 0n], ['1.5G', 1610612736n], ['0.5k', 512n], ['1.25M', 1310720n],
  ];
  for (const [text, bytes] of cases) assert.is(parseSize(text), bytes, text);
});

sizes('refused sizes', () => {
  for (const text of ['', '-1', '-1G', '1.5', '0.1k', '10X', 'G', '1e3', '10iB', ' 10G', '1..5G', '0x10']) {
    assert.type(parseSize(text), 'string', text);
  }
  assert.is(parseSize('8191P'), 8191n * 1024n ** 5n);
  assert.match(parseSize('8192P') as string, /2\^63/);
  assert.match(parseSize('9223372036854775808') as string, /2\^63/);
  assert.is(parseSize('9223372036854775807'), 9223372036854775807n);
});

sizes('formatSize picks the largest exact unit', () => {
  assert.is(formatSize(10737418240n), '10G');
  assert.is(formatSize(65536n), '64K');
  assert.is(formatSize(1610612736n), '1536M');
  assert.is(formatSize(1000n), '1000');
  assert.is(formatSize(0n), '0');
});

sizes('parseBool is strconv.ParseBool', () => {
  for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.is(parseBool(t), true, t);
  for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.is(parseBool(f), false, f);
  for (const x of ['yes', 'on', 'tRUE', '', '2']) assert.is(parseBool(x), undefined, x);
});

sizes.run();

const keys = suite('deviceset/options: dm.* keys');

keys('DM_OPTION_KEYS has Docker\'s 23 keys and our 3 autoextend keys, 18 supported', () => {
  assert.is(DM_OPTION_KEYS.length, 26);
  assert.is(new Set(DM_OPTION_KEYS.map((d) => d.key)).size, 26);
  assert.is(DM_OPTION_KEYS.filter((d) => d.supported).length, 18);
  assert.equal(DM_OPTION_KEYS.filter((d) => d.docker === false).map((d) => d.key), ['dm.autoextend_threshold', 'dm.autoextend_percent', 'dm.autoextend_max']);
  assert.equal(
    DM_OPTION_KEYS.filter((d) => !d.supported).map((d) => d.key).sort(),
    [
      'dm.directlvm_device', 'dm.directlvm_device_force', 'dm.libdm_log_level', 'dm.override_udev_sync_check',
      'dm.thinp_autoextend_percent', 'dm.thinp_autoextend_threshold', 'dm.thinp_metapercent', 'dm.thinp_percent',
    ],
  );
  for (const d of DM_OPTION_KEYS) assert.is(d.supported, d.property !== null, d.key);
});

keys('defaults are exact (Docker\'s, ext4)', () => {
  const r = parseDmOptions([]);
  assert.equal(r, {
    baseSize: 10n * G, loopDataSize: 100n * G, loopMetadataSize: 2n * G, fs: 'ext4', mkfsArgs: [], mountOptions: '',
    dataDevice: null, metadataDevice: null, thinPoolDevice: null, blockSize: 65536n, blkDiscard: true,
    useDeferredRemoval: 'auto', useDeferredDeletion: 'auto', minFreeSpacePercent: 10, xfsNoSpaceMaxRetries: null,
    autoextendThreshold: null, autoextendPercent: 20, autoextendMax: null,
  });
  assert.equal(resolveDeviceSetOptions(), r);
  assert.equal(resolveDeviceSetOptions({}), r);
  assert.equal({ ...DEFAULT_DEVICESET_OPTIONS }, r);
});

keys('every supported key parses (and keys are case-insensitive)', () => {
  const r = parseDmOptions([
    'DM.BASESIZE=20G', 'dm.LoopDataSize=200G', 'dm.loopmetadatasize=4G', 'dm.fs=xfs', 'dm.mkfsarg=-K', 'Dm.MkfsArg=-m crc=1',
    'dm.mountopt=noatime', 'dm.mountopt=nobarrier', 'dm.blocksize=512K', 'dm.blkdiscard=F', 'dm.use_deferred_removal=1',
    'dm.use_deferred_deletion=True', 'dm.min_free_space=0%', 'dm.xfs_nospace_max_retries=7',
    'DM.AUTOEXTEND_THRESHOLD=80%', 'dm.autoextend_percent=25%', 'dm.autoextend_max=400G',
  ]);
  assert.equal(r, {
    baseSize: 20n * G, loopDataSize: 200n * G, loopMetadataSize: 4n * G, fs: 'xfs', mkfsArgs: ['-K', '-m crc=1'],
    mountOptions: 'noatime,nobarrier', dataDevice: null, metadataDevice: null, thinPoolDevice: null, blockSize: 512n * 1024n,
    blkDiscard: false, useDeferredRemoval: true, useDeferredDeletion: true, minFreeSpacePercent: 0, xfsNoSpaceMaxRetries: 7,
    autoextendThreshold: 80, autoextendPercent: 25, autoextendMax: 400n * G,
  });
  const d = parseDmOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc']);
  assert.is(d.dataDevice, '/dev/sdb');
  assert.is(d.metadataDevice, '/dev/sdc');
  assert.is(d.blkDiscard, false, 'blkdiscard defaults off with datadev');
  const p = parseDmOptions(['dm.thinpooldev=/dev/mapper/docker-thinpool']);
  assert.is(p.thinPoolDevice, 'docker-thinpool');
  assert.is(p.blkDiscard, false, 'blkdiscard defaults off with thinpooldev');
  assert.is(parseDmOptions(['dm.thinpooldev=mypool', 'dm.blkdiscard=true']).blkDiscard, true);
  assert.is(parseDmOptions(['dm.min_free_space=99%']).minFreeSpacePercent, 99);
  assert.is(parseDmOptions(['dm.use_deferred_removal=false']).useDeferredDeletion, 'auto');
});

keys('bad values of every supported key, all listed at once', () => {
  const input = [
    'dm.basesize=10X', 'dm.loopdatasize=-5G', 'dm.loopmetadatasize=1.5', 'dm.fs=btrfs', 'dm.mkfsarg=', 'dm.mountopt=',
    'dm.datadev=sdb', 'dm.metadatadev=relative', 'dm.thinpooldev=/dev/pool', 'dm.blocksize=lots', 'dm.blkdiscard=yes',
    'dm.use_deferred_removal=on', 'dm.use_deferred_deletion=2', 'dm.min_free_space=10', 'dm.xfs_nospace_max_retries=-1',
  ];
  const problems = problemsOf(() => parseDmOptions(input));
  assert.is(problems.length, input.length);
  problems.forEach((p, i) => {
    assert.is(p.path, `/${i}`);
    const text = input[i]!;
    assert.ok(p.message.startsWith(`${text}:`), `${p.message} names ${text}`);
  });
  assert.match(problems[13]!.message, /% suffix/);
  assert.match(problems[3]!.message, /ext4 or xfs/);
});

keys('range and cross-field rules', () => {
  const expect = (input: string[], patterns: RegExp[]): void => {
    if (patterns.length === 0) {
      parseDmOptions(input);
      return;
    }
    const problems = problemsOf(() => parseDmOptions(input));
    assert.is(problems.length, patterns.length, JSON.stringify(problems));
    patterns.forEach((re, i) => assert.match(problems[i]!.message, re));
  };
  expect(['dm.min_free_space=100%'], [/0% and 99%/]);
  expect(['dm.xfs_nospace_max_retries=2147483648'], [/at most 2147483647/]);
  expect(['dm.blocksize=32K'], [/64K and 1G/]);
  expect(['dm.blocksize=96K'], [/multiple of 64K/]);
  expect(['dm.blocksize=2G'], [/64K and 1G/]);
  expect(['dm.basesize=1M'], [/at least 16M/]);
  expect(['dm.basesize=16777217'], [/multiple of 512/]);
  expect(['dm.fs=xfs', 'dm.basesize=100M'], [/at least 300M for xfs/]);
  expect(['dm.fs=xfs', 'dm.basesize=300M'], []);
  expect(['dm.loopmetadatasize=1M'], [/at least 2M/]);
  expect(['dm.loopmetadatasize=17G'], [/33292800 sectors/]);
  expect(['dm.loopmetadatasize=2052K'], []);
  expect(['dm.loopmetadatasize=2050K'], [/multiple of 4K/]);
  expect(['dm.loopdatasize=32K'], [/at least the pool block size/]);
  expect(['dm.xfs_nospace_max_retries=3'], [/only applies to xfs/]);
  expect(['dm.datadev=/dev/sdb'], [/must be given together/]);
  expect(['dm.metadatadev=/dev/sdb'], [/must be given together/]);
  expect(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdb'], [/must differ/]);
  expect(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc', 'dm.loopdatasize=1G', 'dm.loopmetadatasize=1G'], [/only applies to loopback/, /only applies to loopback/]);
  expect(
    ['dm.thinpooldev=p', 'dm.datadev=/dev/a', 'dm.metadatadev=/dev/b', 'dm.loopdatasize=1G', 'dm.loopmetadatasize=1G', 'dm.blocksize=64K'],
    [/dm.datadev.*thinpooldev/, /dm.metadatadev.*thinpooldev/, /dm.loopdatasize.*thinpooldev/, /dm.loopmetadatasize.*thinpooldev/, /dm.blocksize.*thinpooldev/],
  );
  expect(['dm.use_deferred_removal=false', 'dm.use_deferred_deletion=true'], [/needs deferred removal/]);
  expect(['dm.thinpooldev=a/b'], [/cannot contain "\/"/]);
  expect([`dm.thinpooldev=${'x'.repeat(128)}`], [/127 bytes/]);
  expect(['dm.basesize=1G', 'dm.BaseSize=2G'], [/^dm\.basesize=2G: dm\.basesize given twice \(first as dm\.basesize=1G\); it is not repeatable$/]);
});

keys('unknown, malformed and refused keys: all listed, each says why', () => {
  const refused = DM_OPTION_KEYS.filter((d) => !d.supported).map((d) => `${d.key}=1`);
  const input = ['dm.nosuch=1', 'basesize=10G', 'dm.basesize', 'dm.no_warn_on_loop_devices=true', ...refused];
  const problems = problemsOf(() => parseDmOptions(input));
  assert.is(problems.length, input.length);
  assert.match(problems[0]!.message, /dm.nosuch=1: unknown option dm.nosuch/);
  assert.match(problems[1]!.message, /unknown option basesize/);
  assert.match(problems[2]!.message, /expected dm.key=value/);
  assert.match(problems[3]!.message, /unknown option/);
  for (let i = 4; i < input.length; i++) assert.match(problems[i]!.message, /not supported\. Refused: /);
  const lvm = problems.find((p) => p.message.startsWith('dm.directlvm_device=1'))!;
  assert.match(lvm.message, /LVM tools/);
  assert.match(lvm.message, /dm\.thinpooldev/);
  assert.match(problems.find((p) => p.message.startsWith('dm.override_udev_sync_check'))!.message, /no libdm/);
  assert.match(problems.find((p) => p.message.startsWith('dm.libdm_log_level'))!.message, /no libdm/);
});

keys('the error message lists every problem', () => {
  try {
    parseDmOptions(['dm.basesize=x', 'dm.fs=zfs', 'dm.blah=1']);
    assert.unreachable();
  } catch (err) {
    const msg = (err as Error).message;
    assert.match(msg, /dm\.basesize=x/);
    assert.match(msg, /dm\.fs=zfs/);
    assert.match(msg, /dm\.blah=1/);
  }
});

keys.run();

const typed = suite('deviceset/options: typed form');

typed('sizes as bigint, number or string', () => {
  const r = resolveDeviceSetOptions({ baseSize: 20n * G, loopDataSize: 1073741824, loopMetadataSize: '1G', blockSize: '128K' });
  assert.is(r.baseSize, 20n * G);
  assert.is(r.loopDataSize, G);
  assert.is(r.loopMetadataSize, G);
  assert.is(r.blockSize, 131072n);
  const r2 = resolveDeviceSetOptions({ thinPoolDevice: '/dev/mapper/pool', useDeferredRemoval: true, useDeferredDeletion: 'auto', mkfsArgs: ['-K'] });
  assert.is(r2.thinPoolDevice, 'pool');
  assert.is(r2.blkDiscard, false);
  assert.equal(r2.mkfsArgs, ['-K']);
});

typed('problems name the property and the value, all at once', () => {
  const problems = problemsOf(() =>
    resolveDeviceSetOptions({
      baseSize: -1, loopDataSize: 1.5, blockSize: '3K', fs: 'zfs', minFreeSpacePercent: 100, useDeferredRemoval: 'maybe',
      bogus: 1, dataDevice: 'sdb', mkfsArgs: [''], xfsNoSpaceMaxRetries: -2,
    } as unknown as DeviceSetOptions),
  );
  const byPath = new Map(problems.map((p) => [p.path, p.message]));
  assert.match(byPath.get('/baseSize')!, /baseSize=-1: a size cannot be negative/);
  assert.match(byPath.get('/loopDataSize')!, /loopDataSize.*expected a size/);
  assert.match(byPath.get('/blockSize')!, /blockSize="3K".*64K and 1G/);
  assert.match(byPath.get('/fs')!, /fs/);
  assert.match(byPath.get('/minFreeSpacePercent')!, /between 0 and 99/);
  assert.match(byPath.get('/useDeferredRemoval')!, /true, false or "auto"/);
  assert.match(byPath.get('/bogus')!, /unknown option property "bogus"/);
  assert.match(byPath.get('/mkfsArgs')!, /empty/);
  assert.match(byPath.get('/xfsNoSpaceMaxRetries')!, /between 0 and/);
  assert.ok(byPath.has('/dataDevice'));
  assert.ok(problems.some((p) => p.path === '/dataDevice' && /absolute/.test(p.message)));
});

typed('non-object input is refused', () => {
  problemsOf(() => resolveDeviceSetOptions(null as unknown as DeviceSetOptions));
  problemsOf(() => resolveDeviceSetOptions(7 as unknown as DeviceSetOptions));
  problemsOf(() => resolveDeviceSetOptions({ baseSize: 2 ** 60 }));
});

typed('resolveDeviceSetOptionsReport: the options and which keys the input gave, in both forms', () => {
  const fromStrings = resolveDeviceSetOptionsReport(['dm.basesize=10G', 'DM.FS=xfs', 'dm.mountopt=a', 'dm.mountopt=b']);
  assert.equal(fromStrings.options, resolveDeviceSetOptions(['dm.basesize=10G', 'DM.FS=xfs', 'dm.mountopt=a', 'dm.mountopt=b']));
  assert.equal([...fromStrings.given].sort(), ['baseSize', 'fs', 'mountOptions']);
  // A default value given explicitly is still given (dm.basesize=10G is the default).
  assert.is(fromStrings.options.baseSize, DEFAULT_DEVICESET_OPTIONS.baseSize);
  const fromObject = resolveDeviceSetOptionsReport({ baseSize: '10G', loopDataSize: undefined, blkDiscard: false });
  assert.equal([...fromObject.given].sort(), ['baseSize', 'blkDiscard']);
  assert.equal([...resolveDeviceSetOptionsReport().given], []);
  assert.equal([...resolveDeviceSetOptionsReport([]).given], []);
});

typed.run();

const roundTrip = suite('deviceset/options: format/parse round trip');

roundTrip('format then parse gives the same options', () => {
  const inputs: (string[] | DeviceSetOptions)[] = [
    [],
    ['dm.basesize=1.5G', 'dm.mountopt=a', 'dm.mountopt=b,c', 'dm.mkfsarg=-E', 'dm.mkfsarg=x=y'],
    ['dm.fs=xfs', 'dm.xfs_nospace_max_retries=0', 'dm.use_deferred_removal=true', 'dm.use_deferred_deletion=false', 'dm.min_free_space=0%'],
    ['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc', 'dm.blocksize=1G'],
    ['dm.thinpooldev=/dev/mapper/pool', 'dm.blkdiscard=true'],
    { baseSize: 16777728n, loopDataSize: 123456512, loopMetadataSize: '2052K' },
  ];
  for (const input of inputs) {
    const r: ResolvedDeviceSetOptions = resolveDeviceSetOptions(input);
    const strings = formatDmOptions(r);
    assert.equal(parseDmOptions(strings), r, strings.join(' '));
    assert.equal(formatDmOptions(parseDmOptions(strings)), strings);
  }
  assert.equal(formatDmOptions(parseDmOptions([])), [
    'dm.fs=ext4', 'dm.basesize=10G', 'dm.loopdatasize=100G', 'dm.loopmetadatasize=2G', 'dm.blocksize=64K', 'dm.blkdiscard=true',
    'dm.min_free_space=10%',
  ]);
});

roundTrip.run();
