// SPDX-License-Identifier: MIT
// The control fd of DmControl and THE choke point every dm ioctl of this library goes through:
// opening /dev/mapper/control (making it first when missing, unless /proc/misc says there is no
// dm driver), buffer sizing and DM_BUFFER_FULL retries, errno → domain error mapping, and the
// DM_CHANNEL diagnostics. Kernel side: drivers/md/dm-ioctl.c (`ctl_ioctl`, `copy_params`).
import { readFileSync } from 'node:fs';
import { KernelOutputError, errnoCode } from '../errors.js';
import {
  DM_BUFFER_FULL_FLAG,
  DM_DEV_ARM_POLL_CMD,
  DM_DEV_CREATE_CMD,
  DM_GET_TARGET_VERSION_CMD,
  DM_IOCTL_SIZE,
  DM_LIST_DEVICES_CMD,
  DM_LIST_VERSIONS_CMD,
  DM_PERSISTENT_DEV_FLAG,
  DM_REMOVE_ALL_CMD,
  DM_VERSION_CMD,
  IoctlError,
  O_CLOEXEC,
  type IoctlBatcher,
  type IoctlStep,
  buildDmRequest,
  decodeDmIoctl,
  type DmHeaderSnapshot,
  type RawDmIoctl,
  type Syscalls,
} from '../ioctl/index.js';
import { decodeDevNum, formatDevNum } from './devnum.js';
import { dmChannel, type DmChannelMessage } from './diagnostics.js';
import { DeviceExistsError, DeviceNotFoundError, DmUnavailableError } from './errors.js';
import { ensureControlNode, isControlNode, miscListsDeviceMapper } from './nodes.js';
import { BUFFER_POLICY, GROWABLE_COMMANDS, maskFlags } from './options.js';
import { usesWorker, type DmRequest } from './request.js';
import type { DmVersion } from './response.js';

/** open(2) flags for the control node: O_RDWR | O_CLOEXEC (Linux values, all common arches). */
const O_RDWR = 0o2;

/** Commands that do not look a device up: ENXIO from them is not "device not found". */
const NO_LOOKUP = new Set([DM_VERSION_CMD, DM_REMOVE_ALL_CMD, DM_LIST_DEVICES_CMD, DM_DEV_CREATE_CMD, DM_LIST_VERSIONS_CMD, DM_DEV_ARM_POLL_CMD, DM_GET_TARGET_VERSION_CMD]);

/** A decoded reply: the header as the kernel wrote it back, and the whole buffer. */
export interface Reply {
  readonly header: RawDmIoctl;
  readonly buf: Buffer;
}

/** Offset of `flags` in struct dm_ioctl (include/uapi/linux/dm-ioctl.h): version[3], data_size, data_start, target_count, open_count. */
const H_FLAGS = 28;

/**
 * How {@link ControlChannel.batch} ended: the replies of the requests that succeeded, in order,
 * and, when one failed, its index and its error (mapped as `ioctl` maps it). The requests after a
 * failed one were not sent.
 */
export interface BatchReply {
  readonly replies: Reply[];
  readonly failed?: { readonly index: number; readonly error: unknown };
}

/** Runs one dm ioctl request through the choke point. */
export type DmIoctl = (req: DmRequest) => Promise<Reply>;

/** One (lazily opened) `/dev/mapper/control` fd and the ioctls made on it. */
export class ControlChannel {
  readonly #sys: Syscalls;
  readonly #devDir: string;
  readonly #procMiscPath: string | null;
  #fd: number | undefined;
  #kernelVersion: DmVersion | undefined;
  /** The seam's batcher once opened; null when the seam has none. */
  #batcher: IoctlBatcher | null | undefined;
  /** DmControlOptions.batch: without it no batcher is ever opened. */
  readonly #batching: boolean;

  constructor(sys: Syscalls, devDir: string, procMiscPath: string | null, batching = false) {
    this.#sys = sys;
    this.#devDir = devDir;
    this.#procMiscPath = procMiscPath;
    this.#batching = batching;
  }

  /** Path of the control node (`/dev/mapper/control`). */
  get controlPath(): string {
    return `${this.#devDir}/mapper/control`;
  }

  /** The dm interface version of the running kernel, once any reply has been seen. */
  get kernelVersion(): DmVersion | undefined {
    return this.#kernelVersion;
  }

  /**
   * Opens the control node on first use, making `/dev/mapper` (0755) and the 10:236 node (0600)
   * first when they are missing or wrong, as libdm's `_create_control` does — unless /proc/misc
   * says the kernel has no device-mapper driver (see DmControlOptions.procMiscPath).
   * @throws DmUnavailableError on ENODEV (no dm driver; the module could not be loaded), or when
   *   /proc/misc lists no device-mapper and there is no control node to open.
   */
  fd(): number {
    if (this.#fd !== undefined) return this.#fd;
    if (this.#dmRegistered() === false) {
      // Opening an existing 10:236 node may still autoload dm-mod (misc_open requests
      // "char-major-10-236", the alias dm-ioctl.c declares), so only creating one is skipped.
      if (!isControlNode(this.#sys, this.controlPath)) {
        throw new DmUnavailableError(
          this.controlPath,
          `${this.#procMiscPath} lists no device-mapper device, so the kernel has no device-mapper driver loaded (modprobe dm-mod); the control node is not created`,
        );
      }
    } else {
      ensureControlNode(this.#sys, `${this.#devDir}/mapper`);
    }
    try {
      this.#fd = this.#sys.open(this.controlPath, O_RDWR | O_CLOEXEC);
    } catch (e) {
      if (errnoCode(e) === 'ENODEV' || errnoCode(e) === 'ENXIO')
        throw new DmUnavailableError(this.controlPath, 'the kernel has no device-mapper driver (modprobe dm-mod)', { cause: e });
      throw e;
    }
    return this.#fd;
  }

  /** Whether /proc/misc lists device-mapper; undefined when not checked or unreadable (no /proc). */
  #dmRegistered(): boolean | undefined {
    if (this.#procMiscPath === null) return undefined;
    let text: string;
    try {
      text = readFileSync(this.#procMiscPath, 'latin1');
    } catch {
      return undefined;
    }
    return miscListsDeviceMapper(text);
  }

  /** Closes the control fd and the batcher (idempotent); the next ioctl reopens them. */
  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    const batcher = this.#batcher;
    this.#batcher = undefined;
    batcher?.close();
    if (fd !== undefined) this.#sys.close(fd);
  }

  /**
   * Whether {@link batch} can run a sequence now: the seam has a batcher (Syscalls.openBatch,
   * opened here on first ask) and it is not busy with another batch. Callers that get false use
   * the per-call path, so concurrent operations never queue behind each other's batch.
   */
  canBatch(): boolean {
    if (!this.#batching) return false;
    if (this.#batcher === undefined) this.#batcher = this.#sys.openBatch?.() ?? null;
    return this.#batcher !== null && !this.#batcher.busy;
  }

  /**
   * Runs `reqs` in order in one batch (one hop to the batcher's thread, whatever each command's
   * sync/async rule): the same header stamping, buffer sizing, error mapping and DM_CHANNEL
   * messages as {@link ioctl}. A request answered with DM_BUFFER_FULL_FLAG stops the batch there
   * and is sent again (with the rest) in a buffer twice the size, as `ioctl` does. The first
   * failure stops the sequence; it is reported with its index, not thrown, so the caller can roll
   * back exactly what succeeded. Call only after {@link canBatch} said true.
   * @throws BatchWorkerError when the batcher's worker is gone (which requests ran is unknown)
   */
  async batch(reqs: readonly DmRequest[]): Promise<BatchReply> {
    const batcher = this.#batcher;
    if (!batcher) throw new RangeError('ControlChannel.batch without a batcher (ask canBatch first)');
    const fd = this.fd();
    const t0 = performance.now();
    const prepared = reqs.map((req) => {
      const header = this.#header(req);
      const growable = GROWABLE_COMMANDS.has(req.command.cmd);
      const needed = DM_IOCTL_SIZE + (req.payload?.length ?? 0);
      const size = growable ? Math.max(BUFFER_POLICY.initialBytes, needed) : needed;
      return { req, header, growable, size, doublings: 0, buf: buildDmRequest(header, req.payload, size) };
    });
    const replies: Reply[] = [];
    const fail = (index: number, error: unknown): BatchReply => {
      this.#publishBatch(reqs, index + 1, t0, error);
      return { replies, failed: { index, error } };
    };
    let start = 0;
    for (;;) {
      const steps: IoctlStep[] = [];
      for (let i = start; i < prepared.length; i++) {
        const p = prepared[i]!;
        steps.push({
          fd,
          request: p.req.command.request,
          arg: p.buf,
          requestName: p.req.command.name,
          ...(p.growable ? { stopIf: { offset: H_FLAGS, mask: DM_BUFFER_FULL_FLAG } } : {}),
        });
      }
      const out = await batcher.run(steps);
      for (let j = 0; j < out.results.length; j++) {
        const i = start + j;
        const p = prepared[i]!;
        const rc = out.results[j]!;
        const header = decodeDmIoctl(p.buf);
        this.#kernelVersion = [header.version[0], header.version[1], header.version[2]];
        if (rc !== 0) return fail(i, new KernelOutputError(`${p.req.command.name} returned ${rc} instead of 0 or an error`, `rc=${rc}`));
        if ((header.flags & DM_BUFFER_FULL_FLAG) === 0) {
          replies.push({ header, buf: p.buf });
          continue;
        }
        if (!p.growable)
          return fail(i, new KernelOutputError(`${p.req.command.name} reported DM_BUFFER_FULL_FLAG, which it never should`, `flags=0x${header.flags.toString(16)}`));
        if (p.doublings >= BUFFER_POLICY.maxDoublings)
          return fail(i, new KernelOutputError(`${p.req.command.name}: output still did not fit in ${p.size} bytes after ${p.doublings} doublings`, `data_size=${p.size}`));
        // The batch stopped here (stopIf): send this request again, bigger, and the rest after it.
        p.doublings++;
        p.size *= 2;
        p.buf = buildDmRequest(p.header, p.req.payload, p.size);
        start = i;
        break;
      }
      if (out.error) {
        const i = start + out.results.length;
        const p = prepared[i]!;
        return fail(i, this.#mapError(out.error, p.req, p.header, p.buf));
      }
      if (!out.stopped) {
        this.#publishBatch(reqs, reqs.length, t0, undefined);
        return { replies };
      }
    }
  }

  /** DM_CHANNEL messages for the first `count` requests of a batch (each with the batch's duration). */
  #publishBatch(reqs: readonly DmRequest[], count: number, t0: number, error: unknown): void {
    if (!dmChannel.hasSubscribers) return;
    const durationMs = performance.now() - t0;
    for (let i = 0; i < count; i++) {
      const req = reqs[i]!;
      const h = req.header;
      const last = error !== undefined && i === count - 1;
      dmChannel.publish({
        command: req.command.name,
        name: h.name ?? '',
        uuid: h.uuid ?? '',
        dev: h.dev !== undefined && h.dev !== 0n ? formatDevNum(decodeDevNum(h.dev)) : null,
        durationMs,
        errno: last ? errnoOf(error) : 0,
        code: last ? (typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'EUNEXPECTED') : null,
      } satisfies DmChannelMessage);
    }
  }

  /** The header sent for `req`: a fixed-shape literal, not a spread of req.header (this runs for every ioctl). */
  #header(req: DmRequest): { name?: string; uuid?: string; dev?: bigint; flags: number; event_nr?: number; target_count?: number; version: DmVersion } {
    const h = req.header;
    return {
      name: h.name,
      uuid: h.uuid,
      dev: h.dev,
      flags: maskFlags(req.command.cmd, h.flags ?? 0),
      event_nr: h.event_nr,
      target_count: h.target_count,
      version: req.command.minVersion,
    };
  }

  /**
   * THE choke point: every dm ioctl of this library goes through here. It
   * - stamps the command's minimum interface version (DM_COMMANDS, after libdm's `_cmd_data_v4`),
   *   so old kernels accept requests they understand;
   * - masks `flags` to the command's allowed set (options.ts ALLOWED_FLAGS);
   * - places the payload at data_start = 312 and sizes the buffer: exactly what the request needs,
   *   or 16 KiB for commands with output that can overflow, doubling while the kernel answers
   *   DM_BUFFER_FULL_FLAG (at most 16 times, as libdm);
   * - uses the async (worker) path for commands that can block;
   * - turns a failure into IoctlError with a header snapshot, mapping only the errnos this layer
   *   understands (ENXIO on lookup, EBUSY on create) to domain errors;
   * - publishes the call on DM_CHANNEL when anybody subscribes.
   */
  async ioctl(req: DmRequest): Promise<Reply> {
    if (!dmChannel.hasSubscribers) return this.#ioctlOnce(req);
    const t0 = performance.now();
    const h = req.header;
    const publish = (errno: number, code: string | null): void => {
      const message: DmChannelMessage = {
        command: req.command.name,
        name: h.name ?? '',
        uuid: h.uuid ?? '',
        dev: h.dev !== undefined && h.dev !== 0n ? formatDevNum(decodeDevNum(h.dev)) : null,
        durationMs: performance.now() - t0,
        errno,
        code,
      };
      dmChannel.publish(message);
    };
    try {
      const reply = await this.#ioctlOnce(req);
      publish(0, null);
      return reply;
    } catch (e) {
      publish(errnoOf(e), typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : 'EUNEXPECTED');
      throw e;
    }
  }

  async #ioctlOnce(req: DmRequest): Promise<Reply> {
    const { command } = req;
    const fd = this.fd();
    const header = this.#header(req);
    const growable = GROWABLE_COMMANDS.has(command.cmd);
    const needed = DM_IOCTL_SIZE + (req.payload?.length ?? 0);
    let size = growable ? Math.max(BUFFER_POLICY.initialBytes, needed) : needed;
    for (let doublings = 0; ; doublings++) {
      const buf = buildDmRequest(header, req.payload, size);
      let rc: number;
      try {
        rc = usesWorker(command.cmd, header.flags) ? await this.#blocking(fd, command, buf) : this.#sys.ioctl(fd, command.request, buf, command.name);
      } catch (e) {
        throw this.#mapError(e, req, header, buf);
      }
      const out = decodeDmIoctl(buf);
      this.#kernelVersion = [out.version[0], out.version[1], out.version[2]];
      if (rc !== 0)
        throw new KernelOutputError(`${command.name} returned ${rc} instead of 0 or an error`, `rc=${rc}`);
      if ((out.flags & DM_BUFFER_FULL_FLAG) === 0) return { header: out, buf };
      if (!growable)
        throw new KernelOutputError(`${command.name} reported DM_BUFFER_FULL_FLAG, which it never should`, `flags=0x${out.flags.toString(16)}`);
      if (doublings >= BUFFER_POLICY.maxDoublings)
        throw new KernelOutputError(
          `${command.name}: output still did not fit in ${size} bytes after ${doublings} doublings`,
          `data_size=${size}`,
        );
      size *= 2;
    }
  }

  /**
   * A request that can block, off the event loop: a batch of one on the batcher when batching is
   * on and it is idle (one Atomics round trip to the thread that owns the blocking calls, ~13 µs
   * natively against ~84 µs for a koffi `.async` hop: docs/bench.md), else `ioctlAsync` (a libuv
   * threadpool hop). A busy batcher is not waited for: concurrent calls never queue behind a batch.
   */
  async #blocking(fd: number, command: DmRequest['command'], buf: Buffer): Promise<number> {
    if (!this.canBatch()) return this.#sys.ioctlAsync(fd, command.request, buf, command.name);
    const out = await this.#batcher!.run([{ fd, request: command.request, arg: buf, requestName: command.name }]);
    if (out.error) throw out.error;
    const rc = out.results[0];
    if (rc === undefined) throw new KernelOutputError(`${command.name}: the batcher returned no result for its one step`, 'results=[]');
    return rc;
  }

  #mapError(e: unknown, req: DmRequest, sent: { name?: string; uuid?: string; flags: number; event_nr?: number; dev?: bigint; target_count?: number }, buf: Buffer): unknown {
    if (!(e instanceof IoctlError)) return e;
    // After a failure the kernel writes back only `version`; everything else is what we sent.
    const snapshot: DmHeaderSnapshot = {
      name: sent.name ?? '',
      uuid: sent.uuid ?? '',
      flags: sent.flags,
      event_nr: sent.event_nr ?? 0,
      dev: sent.dev ?? 0n,
      version: [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)],
      data_size: buf.length,
      data_start: DM_IOCTL_SIZE,
      target_count: sent.target_count ?? 0,
    };
    const err = e.header ? e : e.withHeader(snapshot);
    const cmd = req.command.cmd;
    if (err.code === 'ENXIO' && !NO_LOOKUP.has(cmd) && req.ident) return new DeviceNotFoundError(req.ident, { cause: err });
    if (err.code === 'EBUSY' && cmd === DM_DEV_CREATE_CMD && req.ident) return new DeviceExistsError(req.ident, { cause: err });
    // A taken persistent minor is not EBUSY: alloc_dev() fails inside dm_create() and the kernel
    // answers -ENXIO (drivers/md/dm.c; confirmed with a raw ioctl on 6.1 by the contract suite).
    if (err.code === 'ENXIO' && cmd === DM_DEV_CREATE_CMD && (sent.flags & DM_PERSISTENT_DEV_FLAG) !== 0 && req.ident)
      return new DeviceExistsError(req.ident, { cause: err });
    return err;
  }
}

/** The errno number of the first IoctlError in `e`'s cause chain, or 0. */
function errnoOf(e: unknown): number {
  for (let x: unknown = e, depth = 0; typeof x === 'object' && x !== null && depth < 16; depth++) {
    if (x instanceof IoctlError) return x.errno;
    x = (x as { cause?: unknown }).cause;
  }
  return 0;
}
