// SPDX-License-Identifier: MIT
// `node --import <this file> ...`: records every module the process loads. Registers
// load-hooks.js (node:module register(), Node >= 20.6), whose load hook appends each file: URL (and node: builtin imported)
// to the file named by DEVMAPPER_LOAD_LOG (startup.test.ts reads it).
import { register } from 'node:module';

register('./load-hooks.js', import.meta.url);
