/* SPDX-License-Identifier: MIT
 * The floor: the same kernel requests devmapper makes, issued straight from C with raw ioctls
 * (no library, no node management, no validation). Compiled by bench/run.ts with
 *   cc -O2 -o floor floor.c
 * Usage: floor <op> key=value...   (see main() for the ops and keys). Prints JSON (common.h).
 * Every failure is fatal (exit 1) with the errno, so a broken benchmark cannot look fast. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int ctl = -1;
/* One request buffer, 8-aligned, grown on demand; only the bytes a request uses are cleared. */
static unsigned char *buf;
static size_t buf_cap;

static void die(const char *what, const char *name) {
  fprintf(stderr, "floor: %s %s: %s\n", what, name ? name : "", strerror(errno));
  exit(1);
}

static struct dm_ioctl *prep(size_t size, const char *name, uint32_t minor) {
  if (size > buf_cap) {
    free(buf);
    if (posix_memalign((void **)&buf, 8, size)) abort();
    buf_cap = size;
  }
  memset(buf, 0, sizeof(struct dm_ioctl));
  struct dm_ioctl *io = (struct dm_ioctl *)buf;
  io->version[0] = 4;
  io->version[1] = minor;
  io->data_size = (uint32_t)size;
  io->data_start = sizeof(struct dm_ioctl);
  if (name) snprintf(io->name, sizeof io->name, "%s", name);
  return io;
}

static void run(unsigned long req, const char *what, const char *name) {
  if (ioctl(ctl, req, buf) < 0) die(what, name);
}

static void dm_version(void) {
  prep(sizeof(struct dm_ioctl), NULL, 0);
  run(DM_VERSION, "DM_VERSION", NULL);
}

/* DM_LIST_DEVICES with uuids, 16 KiB doubling on DM_BUFFER_FULL_FLAG; walks the list. */
static size_t list_size = 16384;
static long dm_list(void) {
  for (;;) {
    struct dm_ioctl *io = prep(list_size, NULL, 0);
    io->flags = DM_UUID_FLAG;
    run(DM_LIST_DEVICES, "DM_LIST_DEVICES", NULL);
    io = (struct dm_ioctl *)buf;
    if (io->flags & DM_BUFFER_FULL_FLAG) {
      list_size *= 2;
      g_retries++;
      continue;
    }
    long n = 0;
    struct dm_name_list *nl = (struct dm_name_list *)(buf + io->data_start);
    if (nl->dev == 0) return 0;
    for (;;) {
      n++;
      if (!nl->next) break;
      nl = (struct dm_name_list *)((unsigned char *)nl + nl->next);
    }
    return n;
  }
}

static void dm_create(const char *name) {
  prep(sizeof(struct dm_ioctl), name, 0);
  run(DM_DEV_CREATE, "DM_DEV_CREATE", name);
}

static void dm_load(const char *name, const char *type, uint64_t sectors, const char *params) {
  size_t plen = strlen(params) + 1;
  size_t spec = (sizeof(struct dm_target_spec) + plen + 7) & ~(size_t)7;
  struct dm_ioctl *io = prep(sizeof(struct dm_ioctl) + spec, name, 0);
  memset(buf + sizeof(struct dm_ioctl), 0, spec);
  io->target_count = 1;
  struct dm_target_spec *ts = (struct dm_target_spec *)(buf + sizeof(struct dm_ioctl));
  ts->sector_start = 0;
  ts->length = sectors;
  ts->next = (uint32_t)spec;
  snprintf(ts->target_type, sizeof ts->target_type, "%s", type);
  memcpy((char *)(ts + 1), params, plen);
  run(DM_TABLE_LOAD, "DM_TABLE_LOAD", name);
}

static void dm_suspend(const char *name, int suspend) {
  struct dm_ioctl *io = prep(sizeof(struct dm_ioctl), name, 0);
  if (suspend) io->flags = DM_SUSPEND_FLAG;
  run(DM_DEV_SUSPEND, suspend ? "DM_DEV_SUSPEND" : "DM_DEV_SUSPEND(resume)", name);
}

static void dm_remove(const char *name) {
  prep(sizeof(struct dm_ioctl), name, 0);
  run(DM_DEV_REMOVE, "DM_DEV_REMOVE", name);
}

static void dm_status(const char *name) {
  struct dm_ioctl *io = prep(16384, name, 0);
  run(DM_TABLE_STATUS, "DM_TABLE_STATUS", name);
  io = (struct dm_ioctl *)buf;
  if (io->flags & DM_BUFFER_FULL_FLAG) die("DM_TABLE_STATUS buffer full", name);
}

static void dm_message(const char *name, const char *msg) {
  size_t mlen = strlen(msg) + 1;
  size_t size = sizeof(struct dm_ioctl) + ((sizeof(struct dm_target_msg) + mlen + 7) & ~(size_t)7);
  prep(size, name, 2);
  struct dm_target_msg *m = (struct dm_target_msg *)(buf + sizeof(struct dm_ioctl));
  m->sector = 0;
  memcpy(m->message, msg, mlen);
  run(DM_TARGET_MSG, "DM_TARGET_MSG", name);
}

/* Loop attach the way losetup -f does it with LOOP_CONFIGURE: GET_FREE, open both, configure. */
static int loop_attach(const char *file, char *path, size_t pathsize) {
  int lc = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (lc < 0) die("open", "/dev/loop-control");
  int bfd = open(file, O_RDWR | O_CLOEXEC);
  if (bfd < 0) die("open", file);
  for (;;) {
    int idx = ioctl(lc, LOOP_CTL_GET_FREE);
    if (idx < 0) die("LOOP_CTL_GET_FREE", NULL);
    snprintf(path, pathsize, "/dev/loop%d", idx);
    int dfd = open(path, O_RDWR | O_CLOEXEC);
    if (dfd < 0) die("open", path);
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (uint32_t)bfd;
    snprintf((char *)cfg.info.lo_file_name, sizeof cfg.info.lo_file_name, "%s", file);
    int rc = ioctl(dfd, LOOP_CONFIGURE, &cfg);
    int err = errno;
    close(dfd);
    if (rc == 0) break;
    if (err == EBUSY || err == EAGAIN) {
      g_retries++;
      continue;
    }
    errno = err;
    die("LOOP_CONFIGURE", path);
  }
  close(bfd);
  close(lc);
  return 0;
}

static void loop_detach(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  if (ioctl(fd, LOOP_CLR_FD, 0) < 0) die("LOOP_CLR_FD", path);
  close(fd);
}

static void loop_status(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", path);
  struct loop_info64 info;
  if (ioctl(fd, LOOP_GET_STATUS64, &info) < 0) die("LOOP_GET_STATUS64", path);
  close(fd);
}

/* loop_serve: one loop request per line on stdin, timed, answered on stdout, so the host bench
 * can interleave the floor with ours sample by sample without a process spawn per sample:
 *   "attach FILE"  → "<ns> /dev/loopN"   (loop_attach: what losetup -f does with LOOP_CONFIGURE)
 *   "status PATH"  → "<ns>"              (open, LOOP_GET_STATUS64, close)
 *   "detach PATH"  → "<ns>"              (open, LOOP_CLR_FD, close)
 *   "ping -"       → "0"                 (nothing: the host puts one round trip before every op)
 * EOF ends it. Any failure is fatal (exit 1, errno on stderr), like every other op. */
static int loop_serve(void) {
  char line[4200], path[32];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin)) {
    size_t n = strlen(line);
    if (n && line[n - 1] == '\n') line[--n] = 0;
    char *arg = strchr(line, ' ');
    if (!arg) {
      fprintf(stderr, "floor: loop_serve: bad request '%s'\n", line);
      return 2;
    }
    *arg++ = 0;
    uint64_t t0 = now_ns();
    if (!strcmp(line, "attach")) {
      loop_attach(arg, path, sizeof path);
      printf("%llu %s\n", (unsigned long long)(now_ns() - t0), path);
    } else if (!strcmp(line, "status")) {
      loop_status(arg);
      printf("%llu\n", (unsigned long long)(now_ns() - t0));
    } else if (!strcmp(line, "detach")) {
      loop_detach(arg);
      printf("%llu\n", (unsigned long long)(now_ns() - t0));
    } else if (!strcmp(line, "ping")) {
      printf("0\n");
    } else {
      fprintf(stderr, "floor: loop_serve: unknown request '%s'\n", line);
      return 2;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr, "usage: floor <version|list|create_remove|status|message|snapshot|suspend_resume|loop|loop_serve> key=value...\n");
    return 2;
  }
  const char *op = argv[1];
  long reps = arg_long("reps", 10), batch = arg_long("batch", 1), warmup = arg_long("warmup", 3);
  if (reps > MAX_REPS) reps = MAX_REPS;
  if (!strcmp(op, "loop_serve")) return loop_serve();
  if (strcmp(op, "loop") != 0) {
    ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) die("open", "/dev/mapper/control");
  }

  if (!strcmp(op, "version") || !strcmp(op, "list") || !strcmp(op, "status")) {
    const char *name = !strcmp(op, "status") ? arg_req("name") : NULL;
    long count = -1;
    for (long r = -warmup; r < reps; r++) {
      uint64_t t0 = now_ns();
      for (long b = 0; b < batch; b++) {
        if (op[0] == 'v') dm_version();
        else if (op[0] == 'l') count = dm_list();
        else dm_status(name);
      }
      uint64_t t1 = now_ns();
      if (r >= 0) record("op", (double)(t1 - t0) / (double)batch);
    }
    if (count >= 0) fprintf(stderr, "floor: list saw %ld devices (buffer %zu bytes)\n", count, list_size);
  } else if (!strcmp(op, "create_remove")) {
    /* create+load+resume of <prefix>-<i> for every rep, then remove them all. */
    const char *prefix = arg_req("prefix"), *type = arg_req("type"), *pfmt = arg_str("params", "");
    uint64_t sectors = (uint64_t)arg_long("sectors", 2048);
    long id0 = arg_long("id0", 0);
    char name[DM_NAME_LEN], params[512];
    for (long r = 0; r < reps; r++) {
      snprintf(name, sizeof name, "%s-%ld", prefix, r);
      fmt_id(params, sizeof params, pfmt, id0 + r);
      uint64_t t0 = now_ns();
      dm_create(name);
      dm_load(name, type, sectors, params);
      dm_suspend(name, 0);
      record("create", (double)(now_ns() - t0));
    }
    for (long r = 0; r < reps; r++) {
      snprintf(name, sizeof name, "%s-%ld", prefix, r);
      uint64_t t0 = now_ns();
      dm_remove(name);
      record("remove", (double)(now_ns() - t0));
    }
  } else if (!strcmp(op, "message")) {
    const char *name = arg_req("name"), *fmt = arg_req("fmt");
    long id = arg_long("id0", 0);
    char msg[256];
    for (long r = 0; r < reps; r++) {
      uint64_t t0 = now_ns();
      for (long b = 0; b < batch; b++) {
        fmt_id(msg, sizeof msg, fmt, id++);
        dm_message(name, msg);
      }
      record("op", (double)(now_ns() - t0) / (double)batch);
    }
  } else if (!strcmp(op, "snapshot")) {
    /* suspend origin, create_snap <new> <origin_id>, resume origin. */
    const char *pool = arg_req("pool"), *origin = arg_req("origin");
    long origin_id = arg_long("origin_id", 0), id = arg_long("id0", 0);
    char msg[256];
    for (long r = 0; r < reps; r++) {
      snprintf(msg, sizeof msg, "create_snap %ld %ld", id++, origin_id);
      uint64_t t0 = now_ns();
      dm_suspend(origin, 1);
      dm_message(pool, msg);
      dm_suspend(origin, 0);
      record("op", (double)(now_ns() - t0));
    }
  } else if (!strcmp(op, "suspend_resume")) {
    const char *name = arg_req("name");
    for (long r = -warmup; r < reps; r++) {
      uint64_t t0 = now_ns();
      dm_suspend(name, 1);
      dm_suspend(name, 0);
      if (r >= 0) record("op", (double)(now_ns() - t0));
    }
  } else if (!strcmp(op, "loop")) {
    const char *file = arg_req("file");
    static char paths[1024][32];
    if (reps > 1024) reps = 1024;
    for (long r = 0; r < reps; r++) {
      uint64_t t0 = now_ns();
      loop_attach(file, paths[r], sizeof paths[r]);
      record("attach", (double)(now_ns() - t0));
    }
    for (long r = 0; r < reps; r++) {
      uint64_t t0 = now_ns();
      loop_detach(paths[r]);
      record("detach", (double)(now_ns() - t0));
    }
  } else {
    fprintf(stderr, "floor: unknown op %s\n", op);
    return 2;
  }
  print_json(op);
  return 0;
}
