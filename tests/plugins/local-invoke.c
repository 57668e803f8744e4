/*
 * local-invoke.c - the local provider's invocations: parallelism,
 * timeouts, oversized responses, crashes, cancel, parent death (see
 * check_provider_local.c).
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

/* ---- invocations ----------------------------------------------------------------- */

START_TEST(test_invoke_not_deployed)
{
	void *self = create_ok("{}");
	hypertest_invocation *inv = inv_new(1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "echo 0", 6),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(C.error, "deploy") != NULL, "%s", C.error);
	/* Nothing in flight: wait returns at once, even without a timeout. */
	double t0 = fake_now_s();
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, -1), 0);
	ck_assert(fake_now_s() - t0 < 0.5);
	ck_assert_int_eq(inv->done, 0);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_missing_program)
{
	snprintf(C.program, sizeof C.program, "%s/no-such-program", C.project_dir);
	void *self = deployed("{}");
	hypertest_invocation *inv = inv_new(1);
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "echo 0", 6);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(C.error, "no-such-program") != NULL, "%s", C.error);
	ck_assert_int_eq(inv->done, 0);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_exec_fails)
{
	/* An executable file the kernel cannot run: the start fails and says
	 * why (the child reports exec's error before the parent goes on). */
	snprintf(C.program, sizeof C.program, "%s/not-a-program", C.project_dir);
	write_text(C.program, "\x01\x02 garbage");
	chmod(C.program, 0755);
	void *self = deployed("{}");
	hypertest_invocation *inv = inv_new(1);
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "echo 0", 6);
	ck_assert_int_eq(rc, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(C.error, "not-a-program") && strstr(C.error, strerror(ENOEXEC)),
	              "%s", C.error);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	ck_assert_int_eq(inv->done, 0);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* the failed child was reaped */
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* The number of entries of a directory, -1 when it is not there. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static unsigned long pid_ns(void)
{
	char buf[64];
	unsigned long ns = 0;
	ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_int_eq(sscanf(buf, "pid:[%lu]", &ns), 1);
	return ns;
}

/* a directory of links as an orchestrator leaves it, with a link inside */
static char *links_dir(const char *base, unsigned long ns, long pid, const char *x)
{
	char *dir = strdup(pathf("%s/hypertest-%lu-%ld-%s", base, ns, pid, x));
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(symlink(C.project_dir, pathf("%s/1", dir)), 0);
	return dir;
}

/* TMPDIR is a short name: a link in a directory of the provider's own, to
 * the invocation's .hypertest/tmp, while it runs; a Unix socket's path
 * has 107 bytes at most, and programs put sockets below TMPDIR.  The
 * directories that orchestrators killed outright left are removed, and
 * only those. */
START_TEST(test_invoke_tmpdir)
{
	/* a TMPDIR of this test's own, which other tests' orchestrators leave
	 * alone (the provider takes a TMPDIR of 40 bytes at most) */
	char base[] = "/tmp/ck-links-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(base));
	setenv("TMPDIR", base, 1);
	unsigned long ns = pid_ns();
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
	char *stale = links_dir(base, ns, gone, "Stale1");
	char *alive = links_dir(base, ns, (long)getppid(), "Alive1");
	char *other_ns = links_dir(base, ns + 1, gone, "OthNs1");
	char *odd = links_dir(base, ns, gone, "Seven77");
	void *self = deployed("{}");
	char *fifo = pathf("%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	/* one invocation waits at the gate; another tells the links' directory */
	hypertest_invocation *waiting = inv_new(1);
	start(self, waiting, pathf("genv %s", fifo));
	hypertest_invocation *other = inv_new(2);
	start(self, other, "env");
	double end = fake_now_s() + 30;
	while (!other->done) {
		ck_assert_msg(fake_now_s() < end, "the second invocation did not complete");
		ck_assert_int_ge(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 100), 0);
	}
	ck_assert_msg(other->code == 0, "%s", other->message);
	/* the left directory of a process that is gone, and only that, is removed */
	struct stat st;
	ck_assert_msg(lstat(stale, &st) != 0 && errno == ENOENT, "%s is still there", stale);
	char *kept[] = {alive, other_ns, odd};
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(lstat(pathf("%s/1", kept[i]), &st) == 0, "%s was removed", kept[i]);
		ck_assert_int_eq(unlink(pathf("%s/1", kept[i])), 0);
		ck_assert_int_eq(rmdir(kept[i]), 0);
		free(kept[i]);
	}
	free(stale);
	char *link = strdup(field(other->response, "TMPDIR"));
	char *dir = strdup(link);
	*strrchr(dir, '/') = '\0';
	char *want_dir = pathf("%s/hypertest-%lu-%ld-", base, pid_ns(), (long)getpid());
	ck_assert_msg(strncmp(dir, want_dir, strlen(want_dir)) == 0 &&
	                  strlen(dir) == strlen(want_dir) + 6,
	              "TMPDIR %s is not in %sXXXXXX", link, want_dir);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	/* the waiting one's link, to its scratch directory's tmp */
	char target[1024], want[1024], *mine = NULL;
	snprintf(want, sizeof want, "%s/.hypertest/function/scratch/%s/.hypertest/tmp",
	         C.project_dir, waiting->test_id);
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || !strcmp(pathf("%s/%s", dir, e->d_name), link))
			continue; /* the other's, if still there */
		ssize_t n = readlink(pathf("%s/%s", dir, e->d_name), target, sizeof target - 1);
		ck_assert_int_gt(n, 0);
		target[n] = '\0';
		ck_assert_str_eq(target, want);
		mine = strdup(pathf("%s/%s", dir, e->d_name));
	}
	closedir(d);
	ck_assert_msg(mine, "no link for the waiting invocation in %s", dir);
	ck_assert_int_eq(write(gate, "g", 1), 1);
	wait_n(self, 1, 30);
	close(gate);
	ck_assert_msg(waiting->code == 0, "%s", waiting->message);
	ck_assert_str_eq(field(waiting->response, "TMPDIR"), mine);
	/* both ended: their links are gone, the directory when the provider is */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	end = fake_now_s() + 10;
	while (dir_entries(dir) != 0 && fake_now_s() < end)
		OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 50);
	ck_assert_int_eq(dir_entries(dir), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(dir_entries(dir), -1);
	ck_assert_int_eq(rmdir(base), 0);
	free(mine);
	free(dir);
	free(link);
	inv_free(waiting);
	inv_free(other);
}
END_TEST

/* With an orchestrator's TMPDIR too long to take, the links go to
 * /dev/shm (isolation "none") when it is a sticky directory writable by
 * all, where a link costs no inode of a disk; else to /tmp. */
START_TEST(test_invoke_tmpdir_base)
{
	setenv("TMPDIR", "/tmp/a-directory-name-longer-than-forty-bytes", 1);
	struct stat st;
	int shm = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	          (st.st_mode & 01777) == 01777 && access("/dev/shm", W_OK | X_OK) == 0;
	const char *want = shm ? "/dev/shm/hypertest-" : "/tmp/hypertest-";
	void *self = deployed("{}");
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	char *link = strdup(field(inv->response, "TMPDIR"));
	ck_assert_msg(strncmp(link, want, strlen(want)) == 0, "TMPDIR %s is not in %s", link, want);
	char *dir = strdup(link);
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	double end = fake_now_s() + 10;
	while (lstat(link, &st) == 0 && fake_now_s() < end)
		OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 50);
	ck_assert_msg(lstat(link, &st) != 0, "the link %s outlived its invocation", link);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_msg(lstat(dir, &st) != 0, "%s outlived the provider", dir);
	unsetenv("TMPDIR");
	free(link);
	free(dir);
	inv_free(inv);
}
END_TEST

START_TEST(test_invoke_environment)
{
	setenv("LOCAL_TEST_MARK", "inherited", 1);
	setenv("HOME", "/should/be/replaced", 1);
	signal(SIGPIPE, SIG_IGN); /* must not reach the function */
	void *self = deployed("{\"bucketDir\": \"bkt\"}");
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	const char *r = inv->response;
	char root[1024], scratch[1024];
	snprintf(root, sizeof root, "%s/.hypertest/function/images/%s/root", C.project_dir,
	         digest1 + 7);
	snprintf(scratch, sizeof scratch, "%s/.hypertest/function/scratch/%s", C.project_dir,
	         inv->test_id);
	ck_assert_str_eq(field(r, "cwd"), scratch);
	ck_assert_str_eq(field(r, "PWD"), scratch);
	ck_assert_str_eq(field(r, "HOME"), pathf("%s/.hypertest/home", scratch));
	/* TMPDIR: a short link to scratch/.hypertest/tmp (test_invoke_tmpdir) */
	ck_assert_msg(strlen(field(r, "TMPDIR")) <= 64, "%s", field(r, "TMPDIR"));
	ck_assert_str_eq(field(r, "HYPERTEST_FUNCTION_CONFIG"),
	                 pathf("%s/var/task/hypertest.config.json", root));
	ck_assert_str_eq(field(r, "HYPERTEST_PLUGIN_PATH"), "/plugins/a:/plugins/b");
	ck_assert_str_eq(field(r, "HYPERTEST_LOCAL_BUCKET"), pathf("%s/bkt", C.project_dir));
	ck_assert_str_eq(field(r, "LOCAL_TEST_MARK"), "inherited");
	ck_assert_str_eq(field(r, "pid"), field(r, "pgid")); /* a group of its own */
	ck_assert_str_eq(field(r, "sigpipe"), "default");
	ck_assert_str_eq(field(r, "blocked"), "0");
	ck_assert_str_eq(field(r, "HYPERTEST_LOCAL_ZYGOTE_FD"), "(unset)");
	if (!getenv("LD_BIND_NOW")) /* the zygote's own */
		ck_assert_str_eq(field(r, "LD_BIND_NOW"), "(unset)");
	/* A child of the zygote, or of this process with exec. */
	long ppid = atol(field(r, "ppid"));
	if (zygote_mode())
		ck_assert_int_ne(ppid, getpid());
	else
		ck_assert_int_eq(ppid, getpid());
	/* The scratch directory is gone once the invocation completed and the
	 * process was reaped. */
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(file_size(scratch), -1);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_scratch_files)
{
	void *self = deployed("{}");
	/* The image's files are reachable from the working directory, through
	 * links ("tests/.." is the task root itself), read-only: root alone
	 * writes there (and the next deploy repairs the image). */
	hypertest_invocation *inv = run_one(self, "write tests/../scratch-file");
	char *root = pathf("%s/.hypertest/function/images/%s/root", C.project_dir, digest1 + 7);
	if (geteuid() == 0) {
		ck_assert_str_eq(inv->response, "ok");
		ck_assert_int_eq(file_size(pathf("%s/var/task/scratch-file", root)), 0);
	} else {
		ck_assert_str_eq(inv->response, strerror(EACCES));
		ck_assert_int_eq(file_size(pathf("%s/var/task/scratch-file", root)), -1);
	}
	inv_free(inv);
	/* New files of a test land in its scratch directory, not in the image. */
	inv = run_one(self, "write new-file");
	ck_assert_str_eq(inv->response, "ok");
	ck_assert_int_eq(file_size(pathf("%s/var/task/new-file", root)), -1);
	inv_free(inv);
	/* HOME is writable. */
	inv = run_one(self, "write .hypertest/home/x");
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* Names in functionDir/scratch/.pool, and how many start with prefix. */
static int pool_count(const char *prefix, int *total)
{
	DIR *d = opendir(pathf("%s/.hypertest/function/scratch/.pool", C.project_dir));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	int n = 0, all = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		all++;
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	}
	closedir(d);
	*total = all;
	return n;
}

static void run_expect(void *self, const char *payload, const char *response)
{
	hypertest_invocation *inv = run_one(self, payload);
	ck_assert_msg(inv->code == 0, "%s: %s", payload, inv->message);
	ck_assert_msg(!strcmp(inv->response, response), "%s: %s, not %s", payload, inv->response,
	              response);
	inv_free(inv);
}

START_TEST(test_scratch_reuse)
{
	void *self = deployed("{}");
	int total;
	run_expect(self, "write leftover", "ok");
	run_expect(self, "write .hypertest/home/h", "ok");
	run_expect(self, "write .hypertest/tmp/t", "ok");
	/* trees, in the directory and below HOME; an entry of its own in
	 * .hypertest */
	run_expect(self, "tree made", "ok");
	run_expect(self, "tree .hypertest/home/.cache", "ok");
	run_expect(self, "tree .hypertest/tmp/t2", "ok");
	run_expect(self, "write .hypertest/extra", "ok");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	/* One directory, reused each time and clean each time. */
	ck_assert_int_eq(pool_count("1111111111111111-", &total), 1);
	ck_assert_int_eq(total, 1);
	run_expect(self, "exists leftover", "no");
	run_expect(self, "exists .hypertest/home/h", "no");
	run_expect(self, "exists .hypertest/tmp/t", "no");
	run_expect(self, "exists made", "no");
	run_expect(self, "exists .hypertest/home/.cache", "no");
	run_expect(self, "exists .hypertest/tmp/t2", "no");
	run_expect(self, "exists .hypertest/extra", "no");
	run_expect(self, "exists .hypertest/home", "yes");
	run_expect(self, "exists .hypertest/tmp", "yes");
	run_expect(self, "exists tests/a.test", "yes");
	/* A test that removes one of the links: its directory is not reused. */
	run_expect(self, "rm tests", "ok");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(pool_count("", &total), 0);
	run_expect(self, "exists tests/a.test", "yes");
	OP(HYPERTEST_OP_DESTROY)(self);

	/* The pool outlives the provider (the next run reuses it)... */
	ck_assert_int_eq(pool_count("1111111111111111-", &total), 1);
	self = create_ok("{}");
	run_expect(self, "exists leftover", "no");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(pool_count("1111111111111111-", &total), 1);
	ck_assert_int_eq(total, 1);
	/* ...but not a new image. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "t:2", digest2), 0);
	run_expect(self, "exists tests/a.test", "yes");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(pool_count("2222222222222222-", &total), 1);
	ck_assert_int_eq(total, 1);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_big_payload)
{
	void *self = deployed("{\"maxResponseBytes\": 4000000}");
	size_t n = 3000000; /* far more than a pipe holds */
	char *payload = malloc(n + 1);
	memcpy(payload, "echo 0\n", 7);
	for (size_t i = 7; i < n; i++)
		payload[i] = (char)('a' + i % 26);
	payload[n] = '\0';
	hypertest_invocation *inv = run_one(self, payload);
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_uint_eq(inv->len, n);
	ck_assert(memcmp(inv->response, payload, n) == 0);
	inv_free(inv);
	/* A function that does not read its payload: no SIGPIPE for us. */
	memcpy(payload, "noread\n", 7);
	inv = run_one(self, payload);
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	free(payload);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* n invocations of payload PREFIX#i at once; each must answer its own
 * payload. */
static void run_parallel(void *self, int n, const char *prefix, int gate)
{
	hypertest_invocation **invs = calloc((size_t)n, sizeof *invs);
	char payload[1200];
	for (int i = 0; i < n; i++) {
		invs[i] = inv_new(i);
		snprintf(payload, sizeof payload, "%s\n#%d", prefix, i);
		start(self, invs[i], payload);
	}
	if (gate >= 0) {
		/* the function processes are our children (exec): all n alive
		 * together at the gate, which one after another never would be */
		double end = fake_now_s() + 120;
		int have;
		while ((have = children_of(getpid(), NULL, 0)) < n) {
			ck_assert_msg(fake_now_s() < end, "%d function processes at the gate, not %d", have,
			              n);
			ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 20), 0);
		}
		char *bytes = malloc((size_t)n);
		memset(bytes, 'g', (size_t)n);
		ck_assert_int_eq(write(gate, bytes, (size_t)n), n);
		free(bytes);
	}
	wait_n(self, n, 300);
	for (int i = 0; i < n; i++) {
		snprintf(payload, sizeof payload, "%s\n#%d", prefix, i);
		ck_assert_msg(invs[i]->code == 0, "%d: %s", i, invs[i]->message);
		ck_assert_str_eq(invs[i]->response, payload);
		inv_free(invs[i]);
	}
	free(invs);
}

START_TEST(test_invoke_parallel)
{
	/* With exec, the function processes are this test's children (with
	 * the zygote: test_invoke_in_flight, test_zygote_children). */
	setenv("HYPERTEST_LOCAL_NO_ZYGOTE", "1", 1);
	void *self = deployed("{}");
	/* 300 execs of the (possibly sanitized) function program */
	int n = 300;
	/* A first round makes the scratch directories (later ones reuse them),
	 * then n that answer at once, then n that wait at a gate until all of
	 * them are running. */
	run_parallel(self, n, "echo 0", -1);
	run_parallel(self, n, "echo 0", -1);
	char *fifo = pathf("%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	char *payload = strdup(pathf("gate %s", fifo)); /* pathf's buffers rotate */
	run_parallel(self, n, payload, gate);
	free(payload);
	close(gate);
	/* Only the pool of clean directories is left. */
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	DIR *d = opendir(pathf("%s/.hypertest/function/scratch", C.project_dir));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	int left = 0;
	while ((e = readdir(d)) != NULL)
		left += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".pool");
	closedir(d);
	ck_assert_int_eq(left, 0);
}
END_TEST

START_TEST(test_invoke_in_flight)
{
	/* n functions wait at a gate: all of them are in flight at once, and
	 * when the gate opens the one loop completes them all. */
	void *self = deployed("{}");
	/* with the zygote 1000; with an exec each (bubblewrap's path), 300 */
	int n = zygote_mode() ? 1000 : 300;
	char fifo[1024];
	snprintf(fifo, sizeof fifo, "%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	hypertest_invocation **invs = calloc((size_t)n, sizeof *invs);
	double t0 = fake_now_s(), cpu0 = cpu_s();
	for (int i = 0; i < n; i++) {
		invs[i] = inv_new(i);
		start(self, invs[i], pathf("gate %s\n#%d", fifo, i));
	}
	if (zygote_mode()) /* the forks follow the requests */
		wait_zygote_children(self, n);
	double started = fake_now_s() - t0, start_cpu = cpu_s() - cpu0;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 200), 0);
	char *bytes = malloc((size_t)n);
	memset(bytes, 'g', (size_t)n);
	double t1 = fake_now_s(), cpu1 = cpu_s();
	ck_assert_int_eq(write(gate, bytes, (size_t)n), n);
	wait_n(self, n, 300);
	double drained = fake_now_s() - t1, cpu = cpu_s() - cpu1;
	fprintf(stderr, "local provider: %d invocations in flight: started in %.3f s (%.3f s of CPU "
	        "here), completed %.3f s after the gate opened (%.3f s of CPU here)\n", n, started,
	        start_cpu, drained, cpu);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(invs[i]->code == 0, "%d: %s", i, invs[i]->message);
		ck_assert_str_eq(invs[i]->response, pathf("gate %s\n#%d", fifo, i));
		inv_free(invs[i]);
	}
	/* How fast they complete is measured by bench/local.sh, not here:
	 * this test shows that all n are in flight together and that one loop
	 * completes them all, whatever the machine's load. */
	free(invs);
	free(bytes);
	close(gate);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_timeout)
{
	void *self = deployed("{\"timeout\": 0.3}");
	char *beat = pathf("%s/beat", C.project_dir);
	hypertest_invocation *inv = inv_new(1);
	char payload[1024];
	snprintf(payload, sizeof payload, "hang2 %s", beat);
	double t0 = fake_now_s();
	start(self, inv, payload);
	wait_n(self, 1, 10);
	double t = fake_now_s() - t0;
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_TIMEOUT);
	ck_assert_str_eq(inv->message, "timed out after 0.3 s");
	ck_assert_msg(t >= 0.3 && t < 0.8, "timeout after %.3f s", t);
	/* The whole group died: the helper's child stopped beating. */
	assert_heartbeat_stopped(beat);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_wait_timeout)
{
	void *self = deployed("{}");
	hypertest_invocation *inv = inv_new(1);
	start(self, inv, "echo 400");
	double t0 = fake_now_s();
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 100), 0);
	double t = fake_now_s() - t0;
	ck_assert_msg(t >= 0.09 && t < 0.3, "wait(100) took %.3f s", t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, -1), 1);
	ck_assert_str_eq(inv->response, "echo 400");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_oversized)
{
	void *self = deployed("{\"maxResponseBytes\": 100000}");
	hypertest_invocation *inv = run_one(self, "big 100000");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_uint_eq(inv->len, 100000);
	inv_free(inv);
	inv = run_one(self, "big 100001");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "response larger than 100000 bytes");
	ck_assert_ptr_null(inv->response);
	inv_free(inv);
	inv = run_one(self, "big 3000000");
	ck_assert_str_eq(inv->message, "response larger than 100000 bytes");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_failures)
{
	void *self = deployed("{}");
	hypertest_invocation *inv = run_one(self, "crash");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "signal 11") != NULL, "%s", inv->message);
	inv_free(inv);

	inv = run_one(self, "exit 3 something broke\n");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "function exited with status 3; stderr: something broke");
	inv_free(inv);

	inv = run_one(self, "silent");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "function exited without a response");
	inv_free(inv);

	/* Only the last 4 KiB of stderr are kept. */
	inv = run_one(self, "flood 100000");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	const char *m = inv->message;
	ck_assert_msg(strstr(m, "function exited with status 1; stderr: ...") == m, "%s", m);
	ck_assert_msg(strstr(m, "<END>") != NULL, "%s", m);
	size_t tail = strlen(m) - strlen("function exited with status 1; stderr: ...");
	ck_assert_uint_le(tail, 4096);
	ck_assert_uint_ge(tail, 4000);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_cancel)
{
	void *self = deployed("{}");
	hypertest_invocation *invs[5];
	char beats[5][1024];
	for (int i = 0; i < 5; i++) {
		invs[i] = inv_new(i);
		snprintf(beats[i], sizeof beats[i], "%s/beat%d", C.project_dir, i);
		start(self, invs[i], pathf("hang2 %s", beats[i]));
	}
	for (int i = 0; i < 5; i++)
		wait_heartbeat(beats[i]);
	double t0 = fake_now_s();
	OP(HYPERTEST_PROVIDER_INVOKE_CANCEL)(self);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 1000), 5);
	ck_assert(fake_now_s() - t0 < 0.5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(invs[i]->code, HYPERTEST_ERR_CANCELLED);
		inv_free(invs[i]);
	}
	for (int i = 0; i < 5; i++)
		assert_heartbeat_stopped(beats[i]);
	/* Invocations started later run normally. */
	hypertest_invocation *inv = run_one(self, "echo 0");
	ck_assert_int_eq(inv->code, 0);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_destroy_in_flight)
{
	/* Destroying the provider kills and reaps what still runs. */
	void *self = deployed("{}");
	char beat[1024];
	snprintf(beat, sizeof beat, "%s/beat", C.project_dir);
	hypertest_invocation *inv = inv_new(1);
	start(self, inv, pathf("hang2 %s", beat));
	wait_heartbeat(beat);
	double t0 = fake_now_s();
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert(fake_now_s() - t0 < 1.0);
	ck_assert_int_eq(inv->done, 0); /* never completed: the core is going away */
	assert_heartbeat_stopped(beat);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* no child left, not even a zombie */
	ck_assert_int_eq(errno, ECHILD);
	inv_free(inv);
}
END_TEST

/* An orchestrator killed with SIGKILL leaves no function process behind. */
static void orchestrator_dies(const char *options, const char *mode)
{
	/* The heartbeats go to the bucket, writable even in a sandbox. */
	char beat[3][1024];
	mkdir(pathf("%s/bkt", C.project_dir), 0777);
	for (int i = 0; i < 3; i++)
		snprintf(beat[i], sizeof beat[i], "%s/bkt/beat%d", C.project_dir, i);
	void *self = deployed(options); /* deploy in the parent: the child only invokes */
	OP(HYPERTEST_OP_DESTROY)(self);
	pid_t orch = fork();
	ck_assert_int_ge(orch, 0);
	if (orch == 0) {
		void *s = create_ok(options);
		for (int i = 0; i < 3; i++)
			start(s, inv_new(i), pathf("%s %s", mode, beat[i]));
		for (;;)
			OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(s, -1);
	}
	for (int i = 0; i < 3; i++)
		wait_heartbeat(beat[i]);
	kill(orch, SIGKILL);
	waitpid(orch, NULL, 0);
	for (int i = 0; i < 3; i++)
		assert_heartbeat_stopped(beat[i]);
}

START_TEST(test_invoke_parent_death)
{
	/* Reparented orphans come to us and are reaped here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	orchestrator_dies("{\"bucketDir\": \"bkt\"}", "hang");
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}
END_TEST

START_TEST(test_bwrap_parent_death)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* In the sandbox even the function's own children die with it. */
	orchestrator_dies("{\"isolation\": \"bubblewrap\", \"bucketDir\": \"bkt\"}", "hang2");
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}
END_TEST

START_TEST(test_invoke_no_pidfd)
{
	setenv("HYPERTEST_LOCAL_NO_PIDFD", "1", 1);
	void *self = deployed("{\"timeout\": 60}");
	hypertest_invocation *invs[20];
	char payload[64];
	for (int i = 0; i < 20; i++) {
		invs[i] = inv_new(i);
		snprintf(payload, sizeof payload, i == 7 ? "crash" : "echo %d", i * 5);
		start(self, invs[i], payload);
	}
	wait_n(self, 20, 120);
	for (int i = 0; i < 20; i++) {
		if (i == 7) {
			ck_assert_msg(strstr(invs[i]->message, "signal 11") != NULL, "%s",
			              invs[i]->message);
		} else {
			snprintf(payload, sizeof payload, "echo %d", i * 5);
			ck_assert_msg(invs[i]->code == 0, "%d: %s", i, invs[i]->message);
			ck_assert_str_eq(invs[i]->response, payload);
		}
		inv_free(invs[i]);
	}
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_reaped_elsewhere)
{
	/* With SIGCHLD ignored the kernel reaps the children itself: each
	 * invocation still completes, with a message that says why it failed
	 * (pidfd and polling alike). */
	signal(SIGCHLD, SIG_IGN);
	if (zygote_mode()) {
		/* The zygote reaps its children, whatever this process does. */
		void *self = deployed("{\"timeout\": 5}");
		hypertest_invocation *inv = run_one(self, "echo 0");
		ck_assert_msg(inv->code == 0, "%s", inv->message);
		ck_assert_str_eq(inv->response, "echo 0");
		inv_free(inv);
		OP(HYPERTEST_OP_DESTROY)(self);
		return;
	}
	for (int poll = 0; poll < 2; poll++) {
		if (poll)
			setenv("HYPERTEST_LOCAL_NO_PIDFD", "1", 1);
		void *self = deployed("{\"timeout\": 5}");
		hypertest_invocation *inv = run_one(self, "echo 0");
		ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
		ck_assert_msg(strstr(inv->message, "exit status was lost") != NULL, "%s", inv->message);
		inv_free(inv);
		OP(HYPERTEST_OP_DESTROY)(self);
	}
}
END_TEST

START_TEST(test_invoke_memory_limit)
{
#if defined(__SANITIZE_ADDRESS__)
	return; /* AddressSanitizer's reservations exceed any sensible RLIMIT_AS */
#endif
	void *self = deployed("{\"memoryMB\": 64}");
	hypertest_invocation *inv = run_one(self, "alloc 256");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "status 4") && strstr(inv->message, "alloc failed"), "%s",
	              inv->message);
	inv_free(inv);
	inv = run_one(self, "alloc 16");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
	self = deployed("{}");
	inv = run_one(self, "alloc 256");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_str_eq(inv->response, "allocated");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

void add_invoke_tests(TCase *t)
{
	tcase_add_test(t, test_invoke_not_deployed);
	tcase_add_test(t, test_invoke_missing_program);
	tcase_add_test(t, test_invoke_exec_fails);
	tcase_add_test(t, test_invoke_environment);
	tcase_add_test(t, test_invoke_tmpdir);
	tcase_add_test(t, test_invoke_tmpdir_base);
	tcase_add_test(t, test_invoke_scratch_files);
	tcase_add_test(t, test_scratch_reuse);
	tcase_add_test(t, test_invoke_big_payload);
	tcase_add_test(t, test_invoke_timeout);
	tcase_add_test(t, test_invoke_wait_timeout);
	tcase_add_test(t, test_invoke_oversized);
	tcase_add_test(t, test_invoke_failures);
	tcase_add_test(t, test_invoke_cancel);
	tcase_add_test(t, test_invoke_parent_death);
	tcase_add_test(t, test_destroy_in_flight);
	tcase_add_test(t, test_invoke_no_pidfd);
	tcase_add_test(t, test_invoke_memory_limit);
	tcase_add_test(t, test_invoke_reaped_elsewhere);
}

/* The invocation tests again, with one exec per invocation. */
void add_invoke_exec_tests(TCase *t)
{
	tcase_add_test(t, test_invoke_environment);
	tcase_add_test(t, test_scratch_reuse);
	tcase_add_test(t, test_invoke_tmpdir);
	tcase_add_test(t, test_invoke_big_payload);
	tcase_add_test(t, test_invoke_timeout);
	tcase_add_test(t, test_invoke_oversized);
	tcase_add_test(t, test_invoke_failures);
	tcase_add_test(t, test_invoke_cancel);
	tcase_add_test(t, test_invoke_parent_death);
	tcase_add_test(t, test_destroy_in_flight);
	tcase_add_test(t, test_invoke_no_pidfd);
	tcase_add_test(t, test_invoke_memory_limit);
	tcase_add_test(t, test_invoke_reaped_elsewhere);
	tcase_add_test(t, test_invoke_in_flight);
}

void add_scale_tests(TCase *t)
{
	tcase_add_test(t, test_invoke_parallel);
	tcase_add_test(t, test_invoke_in_flight);
}

void add_invoke_bwrap_tests(TCase *t)
{
	tcase_add_test(t, test_bwrap_parent_death);
}
