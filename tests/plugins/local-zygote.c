/*
 * local-zygote.c - the local provider's zygote, and invocations with isolation
 * "bubblewrap" (see check_provider_local.c).
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

/* ---- the zygote ---------------------------------------------------------------- */

/* A field of /proc/PID/stat after the command (3: ppid); -1 if gone. */
static long proc_stat_field(long pid, int index)
{
	char buf[2048];
	FILE *f = fopen(pathf("/proc/%ld/stat", pid), "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	long v = -1;
	for (int i = 2; s && i <= index; i++) {
		s = strchr(s + 1, ' ');
		if (s && i == index)
			v = strtol(s + 1, NULL, 10);
	}
	return v;
}

/* "Max address space" of /proc/PID/limits: its soft limit, as text. */
static const char *as_limit(long pid)
{
	static char val[64];
	char line[512];
	FILE *f = fopen(pathf("/proc/%ld/limits", pid), "r");
	ck_assert_ptr_nonnull(f);
	val[0] = '\0';
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Max address space", 17))
			sscanf(line + 17, "%63s", val);
	fclose(f);
	return val;
}

static int zygote_pid_of(void *self)
{
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	int z = atoi(field(inv->response, "ppid"));
	inv_free(inv);
	return z;
}

START_TEST(test_zygote_children)
{
	/* Every invocation is a fresh process forked by one zygote, a child of
	 * ours running the function program; memoryMB limits each child, not
	 * the zygote. */
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer reserved terabytes before the limit: any sensible
	 * RLIMIT_AS makes its next mmap fail, so a limit of 128 TiB */
	const char *mem = "134217728", *limit = "140737488355328";
#else
	const char *mem = "512", *limit = "536870912";
#endif
	void *self = deployed(pathf("{\"memoryMB\": %s}", mem));
	enum { N = 8 };
	hypertest_invocation *invs[N];
	char *fifo = pathf("%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	for (int i = 0; i < N; i++) {
		invs[i] = inv_new(i);
		start(self, invs[i], pathf("genv %s", fifo));
	}
	/* all alive together at the gate, so their pids must differ */
	wait_zygote_children(self, N);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	/* kept open until all have read: a reader still to open the FIFO would
	 * wait for a writer forever */
	ck_assert_int_eq(write(gate, "ggggggggg", N), N);
	long pids[N], zyg = 0;
	char exe[1024], helper[1024];
	ck_assert_ptr_nonnull(realpath(helper_path(), helper));
	wait_n(self, N, 60);
	close(gate);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(invs[i]->code == 0, "%s", invs[i]->message);
		const char *r = invs[i]->response;
		pids[i] = atol(field(r, "pid"));
		long ppid = atol(field(r, "ppid"));
		if (i == 0)
			zyg = ppid;
		ck_assert_int_eq(ppid, zyg);
		ck_assert_int_ne(pids[i], zyg);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(pids[i], pids[j]); /* alive together: distinct processes */
		ck_assert_str_eq(field(r, "pgid"), field(r, "pid"));
		ck_assert_str_eq(field(r, "cwd"), pathf("%s/.hypertest/function/scratch/%s",
		                                        C.project_dir, invs[i]->test_id));
		ck_assert_str_eq(field(r, "HOME"), pathf("%s/.hypertest/function/scratch/%s/.hypertest/home",
		                                         C.project_dir, invs[i]->test_id));
		inv_free(invs[i]);
	}
	ck_assert_int_ne(zyg, getpid());
	ck_assert_int_eq(proc_stat_field(zyg, 3), getpid()); /* the zygote is our child */
	ssize_t n = readlink(pathf("/proc/%ld/exe", zyg), exe, sizeof exe - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	ck_assert_str_eq(exe, helper);
	ck_assert_str_eq(as_limit(zyg), "unlimited");
	/* A child, while it runs, has the limit. */
	hypertest_invocation *inv = inv_new(99);
	start(self, inv, "env 5000");
	long child = -1;
	for (int i = 0; i < 3000 && child < 0; i++) {
		FILE *f = fopen(pathf("/proc/%ld/task/%ld/children", zyg, zyg), "r");
		if (f) {
			if (fscanf(f, "%ld", &child) != 1)
				child = -1;
			fclose(f);
		}
		if (child < 0) {
			OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 10);
		}
	}
	ck_assert_msg(child > 0, "no child of the zygote seen");
	/* it sets its limit right after fork: wait for that, however loaded
	 * the machine, but no longer than the invocation lives */
	for (int i = 0; i < 400 && strcmp(as_limit(child), limit) != 0; i++)
		usleep(10000);
	ck_assert_str_eq(as_limit(child), limit);
	OP(HYPERTEST_PROVIDER_INVOKE_CANCEL)(self);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 1000), 1);
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_CANCELLED);
	inv_free(inv);
	/* Destroy: the zygote exits and is reaped. */
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(kill((pid_t)zyg, 0), -1);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(test_zygote_crash)
{
	/* A child that crashes is reported with its signal; the zygote lives on. */
	void *self = deployed("{}");
	int zyg = zygote_pid_of(self);
	hypertest_invocation *inv = run_one(self, "crash");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "function killed by signal 11") != NULL, "%s",
	              inv->message);
	inv_free(inv);
	ck_assert_int_eq(zygote_pid_of(self), zyg);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_zygote_killed)
{
	/* The zygote dies while invocations run: they fail and say why, the
	 * next ones start with exec. */
	void *self = deployed("{}");
	int zyg = zygote_pid_of(self);
	char fifo[1024];
	snprintf(fifo, sizeof fifo, "%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	hypertest_invocation *invs[3];
	for (int i = 0; i < 3; i++) {
		invs[i] = inv_new(i);
		start(self, invs[i], pathf("gate %s", fifo));
	}
	long kids[3];
	int nkids = 0;
	for (int t = 0; t < 500 && nkids < 3; t++) {
		OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 10);
		FILE *f = fopen(pathf("/proc/%d/task/%d/children", zyg, zyg), "r");
		ck_assert_ptr_nonnull(f);
		for (nkids = 0; nkids < 3 && fscanf(f, "%ld", &kids[nkids]) == 1; nkids++)
			;
		fclose(f);
	}
	ck_assert_int_eq(nkids, 3);
	C.last_log[0] = '\0';
	ck_assert_int_eq(kill(zyg, SIGKILL), 0);
	wait_n(self, 3, 10);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(invs[i]->code, HYPERTEST_ERR_PROVIDER);
		const char *m = invs[i]->message;
		ck_assert_msg(strstr(m, pathf("the function zygote (pid %d) ended: killed by signal 9",
		                              zyg)) && strstr(m, "the next ones start with exec"),
		              "%s", m);
		inv_free(invs[i]);
	}
	ck_assert_msg(strstr(C.last_log, "with exec") != NULL, "%s", C.last_log);
	/* Its children died with it. */
	for (int i = 0; i < 3; i++) {
		int t = 0;
		while (proc_stat_field(kids[i], 3) > 0 && t++ < 200)
			usleep(10000);
		ck_assert_msg(proc_stat_field(kids[i], 3) < 0 ||
		                  proc_stat_field(kids[i], 3) == 1, "child %ld lives on", kids[i]);
	}
	/* The rest runs, with exec. */
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_int_eq(atol(field(inv->response, "ppid")), getpid());
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_zygote_program_not_zygote)
{
	/* A function program that does not serve as a zygote (here: it cannot
	 * load the module): a warning, and every invocation starts with exec. */
	setenv("HT_PROVIDER_LOCAL_SO", "/nonexistent/provider-local.so", 1);
	void *self = deployed("{}");
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_int_eq(atol(field(inv->response, "ppid")), getpid());
	ck_assert_msg(strstr(C.last_log, "did not serve as a zygote") &&
	              strstr(C.last_log, "/nonexistent/provider-local.so"), "%s", C.last_log);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_bubblewrap)
{
	void *self = deployed("{\"isolation\": \"bubblewrap\", \"bucketDir\": \"bkt\"}");
	char root[1024], scratch[1024];
	snprintf(root, sizeof root, "%s/.hypertest/function/images/%s/root", C.project_dir,
	         digest1 + 7);
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	snprintf(scratch, sizeof scratch, "%s/.hypertest/function/scratch/%s", C.project_dir,
	         inv->test_id);
	ck_assert_str_eq(field(inv->response, "cwd"), scratch);
	ck_assert_str_eq(field(inv->response, "HYPERTEST_FUNCTION_CONFIG"),
	                 pathf("%s/var/task/hypertest.config.json", root));
	ck_assert_int_lt(atoi(field(inv->response, "pid")), 10); /* a pid namespace */
	inv_free(inv);
	/* The image is read-only, the scratch directory and the bucket are not. */
	inv = run_one(self, "write tests/../x");
	ck_assert_str_eq(inv->response, strerror(EROFS));
	inv_free(inv);
	inv = run_one(self, pathf("write %s/y", C.project_dir));
	ck_assert_str_eq(inv->response, strerror(EROFS));
	inv_free(inv);
	inv = run_one(self, "write z");
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	inv = run_one(self, pathf("write %s/bkt/w", C.project_dir));
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	ck_assert_int_eq(file_size(pathf("%s/bkt/w", C.project_dir)), 0);
	/* bwrap turns a signal into status 128 + N; the message says which. */
	inv = run_one(self, "crash");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "status 139 (killed by signal 11") != NULL, "%s",
	              inv->message);
	inv_free(inv);
	inv = run_one(self, "exit 3 oops");
	ck_assert_str_eq(inv->message, "function exited with status 3; stderr: oops");
	inv_free(inv);
	/* A timeout kills the sandbox and all in it. */
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok("{\"isolation\": \"bubblewrap\", \"bucketDir\": \"bkt\", \"timeout\": 0.5}");
	char *beat = pathf("%s/bkt/beat", C.project_dir);
	inv = inv_new(9);
	start(self, inv, pathf("hang2 %s", beat));
	wait_n(self, 1, 10);
	ck_assert_str_eq(inv->message, "timed out after 0.5 s");
	assert_heartbeat_stopped(beat);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

void add_zygote_tests(TCase *t)
{
	tcase_add_test(t, test_zygote_children);
	tcase_add_test(t, test_zygote_crash);
	tcase_add_test(t, test_zygote_killed);
	tcase_add_test(t, test_zygote_program_not_zygote);
}

void add_zygote_bwrap_tests(TCase *t)
{
	tcase_add_test(t, test_invoke_bubblewrap);
}
