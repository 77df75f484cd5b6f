// SPDX-License-Identifier: MIT
// Mirrors include/uapi/linux/ipc.h and include/uapi/linux/sem.h: the System V semaphore calls
// libdm's udev cookies use (semget, semctl, semop), their flags and struct sembuf (6 bytes).

/** `IPC_CREAT`: create the set if the key has none (include/uapi/linux/ipc.h). */
export const IPC_CREAT = 0o1000;
/** `IPC_EXCL`: with IPC_CREAT, fail with EEXIST when the key is taken. */
export const IPC_EXCL = 0o2000;
/** `IPC_NOWAIT`: semop fails with EAGAIN instead of blocking. */
export const IPC_NOWAIT = 0o4000;
/** semctl `IPC_RMID`: remove the set (waiters get EIDRM). */
export const IPC_RMID = 0;
/** semctl `GETVAL`: the value of one semaphore. */
export const GETVAL = 12;
/** semctl `SETVAL`: set one semaphore's value (the 4th argument, `union semun.val`). */
export const SETVAL = 16;

/** One operation of semop(2): `struct sembuf` { u16 sem_num; s16 sem_op; s16 sem_flg; }. */
export interface SemOp {
  readonly num: number;
  readonly op: number;
  readonly flags?: number;
}

/** `sizeof(struct sembuf)` (include/uapi/linux/sem.h). */
export const SEMBUF_SIZE = 6;

/** Encodes an array of `struct sembuf`. */
export function encodeSembufs(ops: readonly SemOp[]): Buffer {
  const buf = Buffer.alloc(SEMBUF_SIZE * ops.length);
  ops.forEach((o, i) => {
    buf.writeUInt16LE(o.num, i * SEMBUF_SIZE);
    buf.writeInt16LE(o.op, i * SEMBUF_SIZE + 2);
    buf.writeInt16LE(o.flags ?? 0, i * SEMBUF_SIZE + 4);
  });
  return buf;
}
