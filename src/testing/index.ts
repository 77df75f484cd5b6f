// SPDX-License-Identifier: MIT
// devmapper/testing: FakeKernel, an in-process kernel behind the Syscalls seam, for unit tests of
// code built on DmControl, LoopControl, the thin layer and DeviceSet; and the fault kit (flakeyOver,
// delayOver, logWritesOver, readWriteLog, replayLog) for tests on a real kernel.
export { FakeKernel } from './fake-kernel.js';
export type {
  FailHandle,
  FailRule,
  FakeCall,
  FakeDmDeviceInfo,
  FakeKernelOptions,
  FakeLoopInfo,
  FakeMount,
  FakePoolInfo,
  FakeTableLine,
} from './fake-types.js';
export { FakeIoError, SimulatedCrash, errnoNumber, type Errno } from './errors.js';
export type { FakePoolMode } from './thin-model.js';
export { FAKE_FILESYSTEM_UUID, fakeBlockDevices, fakeDeviceSetInit, fakeFsTools } from './deviceset.js';
export { CRASH_AT_ENV, CRASH_TRACE_ENV, crashHookFromEnv } from './crash-env.js';
export { WriteLogCorruptError, type WriteLogProblem } from './errors.js';
export {
  delayOver,
  flakeyOver,
  logWritesOver,
  type DelayDevice,
  type DelayOverOptions,
  type FaultDevice,
  type FaultKitOptions,
  type FlakeyDevice,
  type FlakeyMode,
  type FlakeyOverOptions,
  type LogWritesDevice,
} from './fault-kit.js';
export {
  readWriteLog,
  replayLog,
  type ReplayLogOptions,
  type ReplayResult,
  type ReplayUntil,
  type WriteLog,
  type WriteLogEntry,
  type WriteLogSource,
} from './write-log.js';
