// SPDX-License-Identifier: MIT
// Error → exit code, code and hint: one row per error class the library throws.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXIT, EnvironmentError, UsageError, causeLines, exitCodeFor, reportError } from '../../../src/cli/errors.js';
import {
  BackingFileNotFoundError,
  DeviceBusyError,
  DeviceExistsError,
  DeviceInUseError,
  DeviceNotFoundError,
  DeviceSetLockedError,
  DmUnavailableError,
  InvalidArgumentError,
  IoctlError,
  KernelOutputError,
  LoopDeviceBusyError,
  LoopNotBoundError,
  PoolBusyError,
  PoolFailedError,
  ThinIdInUseError,
  ThinIdNotFoundError,
  UnknownDeviceError,
} from '../../../src/index.js';
import { DriverClosedError, DriverNotInitializedError, LayerInUseError, LayerNotMountedError } from '../../../src/driver/index.js';

const ioctl = (code: number): IoctlError => new IoctlError({ syscall: 'ioctl', errno: code, request: 'DM_TABLE_LOAD' });

test('documented exit codes', () => {
  assert.equal({ ...EXIT }, { OK: 0, OTHER: 1, USAGE: 2, NOT_FOUND: 3, BUSY: 4, KERNEL: 5, ENVIRONMENT: 6, SIGINT: 130, SIGTERM: 143 });
});

test('each error class maps to its exit code', () => {
  const rows: [unknown, number][] = [
    [new UsageError('x', 'dm ls'), 2],
    [new InvalidArgumentError('table', [{ path: '/0', message: 'bad' }]), 2],
    [new DeviceNotFoundError({ name: 'x' }), 3],
    [new UnknownDeviceError('c1'), 3],
    [new BackingFileNotFoundError('/nope'), 3],
    [new LoopNotBoundError('/dev/loop9'), 3],
    [new ThinIdNotFoundError({ pool: 'p', devId: 1 }), 3],
    [new DeviceExistsError({ name: 'x' }), 4],
    [new DeviceBusyError({ name: 'x' }, 3), 4],
    [new LoopDeviceBusyError(64), 4],
    [new ThinIdInUseError({ pool: 'p', devId: 1 }), 4],
    [new PoolBusyError({ pool: 'p' }), 4],
    [new DeviceInUseError('c1', 'mounted'), 4],
    [new DeviceSetLockedError('/r', 123), 4],
    [new LayerInUseError('l1', 1, '/h/mnt/l1'), 4],
    [new LayerNotMountedError('l1', '/h/mnt/l1'), 3],
    [new DriverNotInitializedError('/h', ['metadata/base']), 3],
    [new DriverClosedError(), 1],
    [ioctl(22), 5], // EINVAL from a kernel call
    [ioctl(16), 4], // EBUSY
    [ioctl(6), 3], // ENXIO
    [ioctl(1), 6], // EPERM: not root
    [new KernelOutputError('bad line', 'raw'), 5],
    [new PoolFailedError({ pool: 'p' }), 5],
    [new DmUnavailableError('/dev/mapper/control', 'no driver'), 6],
    [new EnvironmentError('no qemu', 'install it'), 6],
    [new Error('boom'), 1],
    ['a string', 1],
  ];
  for (const [err, code] of rows) assert.is(exitCodeFor(err), code, `${(err as Error)?.constructor?.name ?? err}: ${String(err)}`);
});

test('report: CODE, one-line message, hint by class', () => {
  const r = reportError(new DeviceNotFoundError({ name: 'ghost' }));
  assert.is(r.code, 'EDEVICENOTFOUND');
  assert.is(r.exitCode, 3);
  assert.match(r.message, "'ghost' does not exist");
  assert.match(r.hint, 'dm ls');
  const u = reportError(new UsageError('bad\nthing', 'dm create'));
  assert.is(u.message, 'bad; thing');
  assert.is(u.hint, "see 'devmapper dm create --help'");
  assert.is(reportError(new Error('x')).code, 'EUNEXPECTED');
  assert.is(reportError(new EnvironmentError('m', 'do this')).hint, 'do this');
  assert.match(reportError(ioctl(1)).hint, 'root');
});

test('cause chain for --verbose', () => {
  const e = new DeviceBusyError({ name: 'x' }, 2, { cause: ioctl(16) });
  const lines = causeLines(e);
  assert.is(lines.length, 1);
  assert.match(lines[0]!, /^cause: EBUSY: .*\[DM_TABLE_LOAD\]$/);
});

test.run();
