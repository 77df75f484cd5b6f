/* SPDX-License-Identifier: MIT
 * The same operations through libdevmapper's dm_task API, as a C program using the library
 * would make them (default settings: libdm creates/removes /dev/mapper nodes itself when udev
 * is not running, as in the bench VM). Compiled by bench/run.ts when libdevmapper-dev is there:
 *   cc -O2 -o libdm libdm.c -ldevmapper
 * Usage and output as floor.c (ops: version list create_remove status message snapshot suspend_resume). */
#include "common.h"

#include <libdevmapper.h>

static void fail(const char *what, const char *name) {
  fprintf(stderr, "libdm: %s %s failed\n", what, name ? name : "");
  exit(1);
}

static struct dm_task *task(int type, const char *name) {
  struct dm_task *t = dm_task_create(type);
  if (!t) fail("dm_task_create", name);
  if (name && !dm_task_set_name(t, name)) fail("dm_task_set_name", name);
  return t;
}

static void run_destroy(struct dm_task *t, const char *what, const char *name) {
  if (!dm_task_run(t)) fail(what, name);
  dm_task_destroy(t);
}

static void op_version(void) {
  run_destroy(task(DM_DEVICE_VERSION, NULL), "version", NULL);
}

static long op_list(void) {
  struct dm_task *t = task(DM_DEVICE_LIST, NULL);
  if (!dm_task_run(t)) fail("list", NULL);
  long n = 0;
  struct dm_names *names = dm_task_get_names(t);
  if (names && names->dev) {
    for (;;) {
      n++;
      if (!names->next) break;
      names = (struct dm_names *)((char *)names + names->next);
    }
  }
  dm_task_destroy(t);
  return n;
}

static void op_status(const char *name) {
  struct dm_task *t = task(DM_DEVICE_STATUS, name);
  if (!dm_task_run(t)) fail("status", name);
  uint64_t start, length;
  char *type = NULL, *params = NULL;
  dm_get_next_target(t, NULL, &start, &length, &type, &params);
  if (!type || !params) fail("status (no target)", name);
  dm_task_destroy(t);
}

static void op_message(const char *name, const char *msg) {
  struct dm_task *t = task(DM_DEVICE_TARGET_MSG, name);
  if (!dm_task_set_sector(t, 0) || !dm_task_set_message(t, msg)) fail("set message", name);
  run_destroy(t, "message", name);
}

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr, "usage: libdm <version|list|create_remove|status|message|snapshot|suspend_resume> key=value...\n");
    return 2;
  }
  const char *op = argv[1];
  long reps = arg_long("reps", 10), batch = arg_long("batch", 1), warmup = arg_long("warmup", 3);
  if (reps > MAX_REPS) reps = MAX_REPS;

  if (!strcmp(op, "version") || !strcmp(op, "list") || !strcmp(op, "status")) {
    const char *name = !strcmp(op, "status") ? arg_req("name") : NULL;
    long count = -1;
    for (long r = -warmup; r < reps; r++) {
      uint64_t t0 = now_ns();
      for (long b = 0; b < batch; b++) {
        if (op[0] == 'v') op_version();
        else if (op[0] == 'l') count = op_list();
        else op_status(name);
      }
      uint64_t t1 = now_ns();
      if (r >= 0) record("op", (double)(t1 - t0) / (double)batch);
    }
    if (count >= 0) fprintf(stderr, "libdm: list saw %ld devices\n", count);
  } else if (!strcmp(op, "create_remove")) {
    const char *prefix = arg_req("prefix"), *type = arg_req("type"), *pfmt = arg_str("params", "");
    uint64_t sectors = (uint64_t)arg_long("sectors", 2048);
    long id0 = arg_long("id0", 0);
    char name[128], params[512];
    for (long r = 0; r < reps; r++) {
      snprintf(name, sizeof name, "%s-%ld", prefix, r);
      fmt_id(params, sizeof params, pfmt, id0 + r);
      uint64_t t0 = now_ns();
      /* DM_DEVICE_CREATE with a table: libdm does create, load and resume (and the node). */
      struct dm_task *t = task(DM_DEVICE_CREATE, name);
      if (!dm_task_add_target(t, 0, sectors, type, params)) fail("add_target", name);
      run_destroy(t, "create", name);
      record("create", (double)(now_ns() - t0));
    }
    for (long r = 0; r < reps; r++) {
      snprintf(name, sizeof name, "%s-%ld", prefix, r);
      uint64_t t0 = now_ns();
      run_destroy(task(DM_DEVICE_REMOVE, name), "remove", name);
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
        op_message(name, msg);
      }
      record("op", (double)(now_ns() - t0) / (double)batch);
    }
  } else if (!strcmp(op, "snapshot")) {
    const char *pool = arg_req("pool"), *origin = arg_req("origin");
    long origin_id = arg_long("origin_id", 0), id = arg_long("id0", 0);
    char msg[256];
    for (long r = 0; r < reps; r++) {
      snprintf(msg, sizeof msg, "create_snap %ld %ld", id++, origin_id);
      uint64_t t0 = now_ns();
      run_destroy(task(DM_DEVICE_SUSPEND, origin), "suspend", origin);
      op_message(pool, msg);
      run_destroy(task(DM_DEVICE_RESUME, origin), "resume", origin);
      record("op", (double)(now_ns() - t0));
    }
  } else if (!strcmp(op, "suspend_resume")) {
    const char *name = arg_req("name");
    for (long r = -warmup; r < reps; r++) {
      uint64_t t0 = now_ns();
      run_destroy(task(DM_DEVICE_SUSPEND, name), "suspend", name);
      run_destroy(task(DM_DEVICE_RESUME, name), "resume", name);
      if (r >= 0) record("op", (double)(now_ns() - t0));
    }
  } else {
    fprintf(stderr, "libdm: unknown op %s\n", op);
    return 2;
  }
  dm_lib_release();
  print_json(op);
  return 0;
}
