// SPDX-License-Identifier: MIT
// @solana/buffer-layout, loaded with require() instead of an ESM import. The package is CommonJS
// (one 90 KB file): importing it from ESM makes Node run cjs-module-lexer over the whole file to
// find its named exports, which cost ~50 ms of every process start on the host and ~2 s in the
// TCG test guest, more than the rest of src/ioctl together. require() skips the lexer. The rest
// of src/ioctl imports the package from here only (test/unit/ioctl/startup-imports.test.ts).
import { createRequire } from 'node:module';
import type * as BufferLayout from '@solana/buffer-layout';

const bl = createRequire(import.meta.url)('@solana/buffer-layout') as typeof BufferLayout;

export const Layout: typeof BufferLayout.Layout = bl.Layout;
export type Layout<T> = BufferLayout.Layout<T>;
export const Structure: typeof BufferLayout.Structure = bl.Structure;
export type Structure<T> = BufferLayout.Structure<T>;
export const struct: typeof BufferLayout.struct = bl.struct;
export const seq: typeof BufferLayout.seq = bl.seq;
export const u16: typeof BufferLayout.u16 = bl.u16;
export const u32: typeof BufferLayout.u32 = bl.u32;
export const s32: typeof BufferLayout.s32 = bl.s32;
