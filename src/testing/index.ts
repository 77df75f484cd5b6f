// SPDX-License-Identifier: MIT
// devmapper/testing: FakeKernel, an in-process kernel behind the Syscalls seam, for unit tests of
// code built on DmControl, LoopControl, the thin layer and DeviceSet.
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
