#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// The `devmapper` command. The code lives in dist/src/cli (npm run build).
import { run } from '../dist/src/cli/main.js';

process.exitCode = await run(process.argv.slice(2));
