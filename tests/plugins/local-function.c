/*
 * local-function.c - the local provider on the function side: serving
 * payloads, doctor (see check_provider_local.c).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <hypertest/plugin.h>

#include "fake-core.h"
#include "local-fixture.h"
#include "check_provider_local.h"

/* ---- serve ------------------------------------------------------------------------- */

START_TEST(test_serve)
{
	void *self = create_ok("{}");
	char *in = pathf("%s/payload", C.project_dir);
	char out[1024];
	snprintf(out, sizeof out, "%s/response", C.project_dir);
	write_text(in, "{\"runId\": \"r\"}");
	int fd = open(in, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int saved = dup(1);
	dup2(fd, 1);
	close(fd);
	hypertest_function fn = {0};
	int rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn);
	dup2(saved, 1);
	close(saved);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(fn.calls, 1);
	ck_assert_str_eq(read_text(out), "{\"len\": 14, \"head\": \"{\"runId\"\"}");

	/* No response at all: an error. */
	fd = open(in, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	fn.fail = 1;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_SERVE)(self, &fn), HYPERTEST_ERR_RUNNER);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- doctor -------------------------------------------------------------------------- */

START_TEST(test_doctor)
{
	void *self = create_ok("{}");
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(check_status(&c, "provider.local.bucket", NULL), HYPERTEST_CHECK_OK);
	ck_assert_int_eq(check_status(&c, "provider.local.function", NULL), HYPERTEST_CHECK_OK);
	ck_assert_int_eq(check_status(&c, "provider.local.deployed", NULL), HYPERTEST_CHECK_WARNING);
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", NULL), -1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "t", digest1), 0);
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	const char *msg;
	ck_assert_int_eq(check_status(&c, "provider.local.deployed", &msg), HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(msg, digest1) != NULL, "%s", msg);
	/* A damaged deployed state: the check says what and where, and the
	 * doctor reports no error to the core (its checks carry it). */
	write_text(pathf("%s/.hypertest/function/current", C.project_dir), "{\"digest\": 1}");
	C.error[0] = '\0';
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_int_eq(check_status(&c, "provider.local.deployed", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "/.hypertest/function/current is damaged (expected") != NULL,
	              "%s", msg);
	ck_assert_str_eq(C.error, "");
	OP(HYPERTEST_OP_DESTROY)(self);

	/* A bucket below a file, a missing program. */
	write_text(pathf("%s/file", C.project_dir), "");
	snprintf(C.program, sizeof C.program, "/nonexistent/hypertest-function");
	self = create_ok("{\"bucketDir\": \"file/bucket\"}");
	C.error[0] = '\0';
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(check_status(&c, "provider.local.bucket", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "file/bucket") != NULL, "%s", msg);
	ck_assert_int_eq(check_status(&c, "provider.local.function", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "/nonexistent/hypertest-function") != NULL, "%s", msg);
	ck_assert_str_eq(C.error, "");
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_doctor_bubblewrap)
{
	void *self = create_ok("{\"isolation\": \"bubblewrap\"}");
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(c.n, 4);
	const char *msg;
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", &msg), HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(msg, "bwrap") != NULL, "%s", msg);
	/* bwrap gone after create: the check fails and says why. */
	char empty[600];
	snprintf(empty, sizeof empty, "%s/nobin", C.project_dir);
	mkdir(empty, 0777);
	setenv("PATH", empty, 1);
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "bwrap") != NULL, "%s", msg);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* provider.local.memory (isolation "lambda") says how memoryMB is enforced:
 * a cgroup v2 limit, in the cgroup named, where one is delegated (here a
 * directory laid out as one, named by HYPERTEST_LOCAL_CGROUP: see
 * check_local_cgroup for the protocol), else RLIMIT_AS and why.  The
 * choice is made once per process: one test each (Check forks them). */
static const char *doctor_memory(const char *controllers, const char *options)
{
	char pid[32];
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	const char *own = pathf("%s/cg", C.project_dir);
	ck_assert_int_eq(mkdir(own, 0755), 0);
	write_text(pathf("%s/cgroup.controllers", own), controllers);
	write_text(pathf("%s/cgroup.subtree_control", own), "");
	write_text(pathf("%s/cgroup.procs", own), pid);
	setenv("HYPERTEST_LOCAL_CGROUP", own, 1);
	void *self = create_ok(options);
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	const char *msg = NULL;
	ck_assert_int_eq(check_status(&c, "provider.local.memory", &msg), HYPERTEST_CHECK_OK);
	static char copy[2048];
	snprintf(copy, sizeof copy, "%s", msg);
	OP(HYPERTEST_OP_DESTROY)(self);
	unsetenv("HYPERTEST_LOCAL_CGROUP");
	return copy;
}

START_TEST(test_doctor_memory_cgroup)
{
	const char *msg = doctor_memory("cpu memory pids\n",
	                                "{\"isolation\": \"lambda\", \"memoryMB\": 512}");
	char want[1024];
	snprintf(want, sizeof want, "isolation \"lambda\", memoryMB 512; memory: cgroup v2 (%s/cg)",
	         C.project_dir);
	ck_assert_str_eq(msg, want);
}
END_TEST

START_TEST(test_doctor_memory_rlimit)
{
	const char *msg = doctor_memory("cpu pids\n", "{\"isolation\": \"lambda\"}");
	char want[1024];
	snprintf(want, sizeof want, "isolation \"lambda\", memoryMB 0 (no limit); memory: "
	         "RLIMIT_AS (the memory controller is not delegated to %s/cg (its "
	         "cgroup.controllers: \"cpu pids\"))", C.project_dir);
	ck_assert_str_eq(msg, want);
}
END_TEST

void add_function_side_tests(TCase *t)
{
	tcase_add_test(t, test_serve);
	tcase_add_test(t, test_doctor);
	tcase_add_test(t, test_doctor_memory_cgroup);
	tcase_add_test(t, test_doctor_memory_rlimit);
}

void add_function_bwrap_tests(TCase *t)
{
	tcase_add_test(t, test_doctor_bubblewrap);
}
