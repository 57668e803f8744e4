/*
 * local-fixture.h - the shared set-up of the local provider's tests
 * (plugins/check_provider_local): the test's core C (with fake-core.c's
 * upcalls, a function that answers {"len": N, "head": ...} and a fake or
 * real image unpack), the module loaded by setup(), and helpers.
 */
#ifndef HT_TESTS_LOCAL_FIXTURE_H
#define HT_TESTS_LOCAL_FIXTURE_H

#include <stdio.h>
#include <sys/types.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

extern struct hypertest_core C;
extern char project_dir[256]; /* C.project_dir */
extern void *module;
extern const char digest1[];
extern const char digest2[];

/* Checked fixtures: a scratch project and the module (setup_exec: one
 * exec per invocation, HYPERTEST_LOCAL_NO_ZYGOTE=1). */
void setup(void);
void setup_exec(void);
void teardown(void);
/* Whether invocations go through the zygote. */
int zygote_mode(void);
/* The function program (lib/local-helper, or $HT_LOCAL_HELPER). */
char *helper_path(void);
/* CPU time of this process (not of its children). */
double cpu_s(void);
/* printf into one of 64 rotating buffers: a result stays valid for the
 * next 63 calls. */
char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void write_text(const char *path, const char *text);
/* The file's first 4 KiB (a static buffer), NULL when it cannot be read. */
char *read_text(const char *path);
off_t file_size(const char *path);

/* The provider created with options (asserted), and deployed (digest1). */
void *create_ok(const char *options);
void *create_raw_ok(const char *options);
void *deployed(const char *options);

hypertest_invocation *inv_new(int i);
void inv_free(hypertest_invocation *inv);
void start(void *self, hypertest_invocation *inv, const char *payload);
/* Wait until n invocations completed (at most limit_s seconds). */
void wait_n(void *self, int n, double limit_s);
/* Run one invocation to its end. */
hypertest_invocation *run_one(void *self, const char *payload);

/* The heartbeat file stopped growing (its writers are dead); it grows. */
void assert_heartbeat_stopped(const char *file);
void wait_heartbeat(const char *file);
/* Value of NAME=... in the helper's env report. */
const char *field(const char *report, const char *name);
/* Entries of /proc/PID/task/PID/children (up to max of them in pids). */
int children_of(long pid, long *pids, int max);
/* Wait until the zygote (our only child) has n children. */
void wait_zygote_children(void *self, int n);
/* The status of doctor's check NAME (-1: none), its message in *msg. */
int check_status(const hypertest_checks *c, const char *name, const char **msg);
/* Whether bwrap is on PATH. */
int have_bwrap(void);

#endif /* HT_TESTS_LOCAL_FIXTURE_H */
