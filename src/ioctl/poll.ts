// SPDX-License-Identifier: MIT
// Mirrors include/uapi/asm-generic/poll.h: poll(2) event bits and struct pollfd (8 bytes).

/** There is data to read (dm control fd: an event since DM_DEV_ARM_POLL). */
export const POLLIN = 0x0001;
export const POLLPRI = 0x0002;
export const POLLOUT = 0x0004;
export const POLLERR = 0x0008;
export const POLLHUP = 0x0010;
/** The fd is not open. */
export const POLLNVAL = 0x0020;

/** `sizeof(struct pollfd)`: int fd @0, short events @4, short revents @6. */
export const POLLFD_SIZE = 8;

/** Encodes one `struct pollfd`. */
export function encodePollFd(fd: number, events: number): Buffer {
  const buf = Buffer.alloc(POLLFD_SIZE);
  buf.writeInt32LE(fd, 0);
  buf.writeInt16LE(events, 4);
  return buf;
}

/** `revents` of a `struct pollfd` buffer (unsigned). */
export function pollFdRevents(buf: Buffer): number {
  return buf.readUInt16LE(6);
}
