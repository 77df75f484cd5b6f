/* SPDX-License-Identifier: MIT
 * Shared by floor.c and libdm.c: key=value arguments, a monotonic clock and the JSON output.
 * Every program prints ONE JSON object on stdout:
 *   {"op":"<op>","series":{"<name>":[ns per operation, one per repetition], ...},"retries":N}
 * A repetition times `batch` back-to-back operations and records the mean per operation. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_argc;
static char **g_argv;

static const char *arg_str(const char *key, const char *dflt) {
  size_t n = strlen(key);
  for (int i = 2; i < g_argc; i++)
    if (strncmp(g_argv[i], key, n) == 0 && g_argv[i][n] == '=') return g_argv[i] + n + 1;
  return dflt;
}

static long arg_long(const char *key, long dflt) {
  const char *s = arg_str(key, NULL);
  return s ? strtol(s, NULL, 0) : dflt;
}

static const char *arg_req(const char *key) {
  const char *s = arg_str(key, NULL);
  if (!s) {
    fprintf(stderr, "missing argument %s=...\n", key);
    exit(2);
  }
  return s;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define MAX_SERIES 4
#define MAX_REPS 100000
static struct {
  const char *name;
  double *v;
  int n;
} g_series[MAX_SERIES];
static int g_nseries;
static long g_retries;

static void record(const char *series, double ns) {
  int i;
  for (i = 0; i < g_nseries; i++)
    if (strcmp(g_series[i].name, series) == 0) break;
  if (i == g_nseries) {
    if (g_nseries == MAX_SERIES) abort();
    g_series[i].name = series;
    g_series[i].v = calloc(MAX_REPS, sizeof(double));
    g_nseries++;
  }
  if (g_series[i].n < MAX_REPS) g_series[i].v[g_series[i].n++] = ns;
}

static void print_json(const char *op) {
  printf("{\"op\":\"%s\",\"series\":{", op);
  for (int i = 0; i < g_nseries; i++) {
    printf("%s\"%s\":[", i ? "," : "", g_series[i].name);
    for (int j = 0; j < g_series[i].n; j++) printf("%s%.0f", j ? "," : "", g_series[i].v[j]);
    printf("]");
  }
  printf("},\"retries\":%ld}\n", g_retries);
}

/* "%d" in fmt (at most one) is replaced by id. */
static void fmt_id(char *out, size_t size, const char *fmt, long id) {
  const char *p = strstr(fmt, "%d");
  if (!p) {
    snprintf(out, size, "%s", fmt);
    return;
  }
  snprintf(out, size, "%.*s%ld%s", (int)(p - fmt), fmt, id, p + 2);
}

#endif
