// SPDX-License-Identifier: MIT
// The contract suites (test/contract) against FakeKernel. The same suites run against the real
// kernel in the VM (test/privileged/contract-real.test.ts).
import { suite } from 'uvu';
import { registerDmContract } from '../contract/dm.js';
import { FakeEnv } from '../contract/fake-env.js';
import { registerLoopContract } from '../contract/loop.js';
import { registerThinContract } from '../contract/thin.js';

const fake = (name: string) => suite(`${name} (FakeKernel)`);
registerDmContract(fake, () => new FakeEnv());
registerLoopContract(fake, () => new FakeEnv());
registerThinContract(fake, () => new FakeEnv());
