/*
 * check_local_cgroup.c - the local provider's cgroup v2 protocol for the
 * sandboxes of isolation "lambda" (plugins/provider-local/local-cgroup.c,
 * linked in as provider-local/libhtlocal.la), run against a scratch
 * directory laid out like a cgroup v2 tree (cgroup.controllers,
 * cgroup.subtree_control, cgroup.procs).
 *
 * This is a strict check of our own protocol - what is read, what is
 * written where, in which order, what is removed, and why detection falls
 * back to RLIMIT_AS - not a fake of the kernel: nothing here enforces a
 * limit, moves a process or creates the interface files of a new cgroup
 * (files the kernel would have are created by our writes; those it has
 * only on some kernels, memory.swap.max, memory.oom.group, cgroup.kill,
 * are written only where they exist, so not here).  The kernel's side is
 * tested by e2e/lambda-cgroup-e2e.sh where the machine delegates memory.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scratch-dir.h"
#include "../../plugins/provider-local/local-cgroup.h"

/* The contents of path, without a final newline (a static buffer). */
static const char *slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	ck_assert_msg(n >= 0, "read %s", path);
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return buf;
}

static void put(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text), 0644);
}

/* A cgroup directory tmp_root/rel as a delegated one looks: controllers,
 * an empty subtree_control, procs listing this process.  Its path,
 * malloc'd. */
static char *make_cgroup(const char *rel, const char *controllers)
{
	ck_assert_int_eq(mkdir(tpath("%s", rel), 0755), 0);
	char pid[32];
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	put(tpath("%s/cgroup.controllers", rel), controllers);
	put(tpath("%s/cgroup.subtree_control", rel), "");
	put(tpath("%s/cgroup.procs", rel), pid);
	return strdup(tpath("%s", rel));
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- the whole protocol ---------------------------------------------------------------- */

START_TEST(protocol_leaf_limits_enter_remove)
{
	char *own = make_cgroup("own", "cpuset cpu io memory hugetlb pids rdma misc\n");
	local_cgroup cg = {0};
	local_cgroup_detect_in(&cg, own);
	ck_assert_msg(cg.dir != NULL, "%s", cg.reason ? cg.reason : "?");
	ck_assert_str_eq(cg.dir, own);
	ck_assert_ptr_null(cg.reason);
	ck_assert_int_eq(cg.pids, 1);
	/* this process moved into the leaf, then memory and pids enabled for
	 * the children: the probe cgroup was removed */
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	ck_assert_str_eq(slurp(tpath("own/hypertest/cgroup.procs")), pid);
	ck_assert_str_eq(slurp(tpath("own/cgroup.subtree_control")), "+memory +pids");
	snprintf(pid, sizeof pid, "own/sandbox-%ld-0", (long)getpid());
	ck_assert(!exists(tpath("%s", pid)));

	/* a sandbox: memory.max in bytes, pids.max, its process in cgroup.procs */
	local_cgroup_box box;
	char *err = NULL;
	ck_assert_int_eq(local_cgroup_box_new(&cg, 300, &box, &err), 0);
	ck_assert_ptr_null(err);
	char want[600];
	snprintf(want, sizeof want, "%s/sandbox-%ld-1", own, (long)getpid());
	ck_assert_str_eq(box.dir, want);
	ck_assert_str_eq(slurp(tpath("own/sandbox-%ld-1/memory.max", (long)getpid())),
	                 "314572800");
	ck_assert_str_eq(slurp(tpath("own/sandbox-%ld-1/pids.max", (long)getpid())), "1024");
	ck_assert(!exists(tpath("own/sandbox-%ld-1/memory.swap.max", (long)getpid())));
	ck_assert_int_gt(box.procs_fd, 2);
	pid_t child = fork();
	if (child == 0)
		_exit(local_cgroup_enter(box.procs_fd) == 0 ? 0 : 1);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	local_cgroup_box_entered(&box);
	ck_assert_int_eq(box.procs_fd, -1);
	snprintf(pid, sizeof pid, "%ld", (long)child);
	ck_assert_str_eq(slurp(tpath("own/sandbox-%ld-1/cgroup.procs", (long)getpid())), pid);

	/* its end: memory.events read, the cgroup removed (the kernel drops its
	 * interface files with it: here the test does) */
	const char *names[] = {"memory.max", "pids.max", "cgroup.procs"};
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(unlink(tpath("own/sandbox-%ld-1/%s", (long)getpid(), names[i])), 0);
	uint64_t kills = 99;
	/* no memory.events: no OOM kill known */
	ck_assert_int_eq(local_cgroup_box_end(&box, &kills, &err), 0);
	ck_assert_uint_eq(kills, 0);
	ck_assert(!exists(want));
	ck_assert_ptr_null(box.dir);

	/* a second sandbox, ended by the OOM killer; a name of its own */
	ck_assert_int_eq(local_cgroup_box_new(&cg, 1, &box, &err), 0);
	snprintf(want, sizeof want, "%s/sandbox-%ld-2", own, (long)getpid());
	ck_assert_str_eq(box.dir, want);
	ck_assert_str_eq(slurp(tpath("own/sandbox-%ld-2/memory.max", (long)getpid())), "1048576");
	put(tpath("own/sandbox-%ld-2/memory.events", (long)getpid()),
	    "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 1\n");
	/* not empty (here: a file the test left; on cgroupfs EBUSY would be
	 * retried): the error says which cgroup */
	ck_assert_int_eq(local_cgroup_box_end(&box, &kills, &err), -1);
	ck_assert_uint_eq(kills, 2);
	ck_assert_ptr_nonnull(err);
	ck_assert_msg(strstr(err, "cannot remove the cgroup") && strstr(err, want), "%s", err);
	ck_assert_ptr_null(box.dir);
	ck_assert_int_eq(box.procs_fd, -1);
	free(err);
	local_cgroup_clear(&cg);
	free(own);
}
END_TEST

/* memory (and pids) already enabled for the children: nothing moves. */
START_TEST(protocol_already_enabled)
{
	char *own = make_cgroup("own", "memory\n");
	put(tpath("own/cgroup.subtree_control"), "memory\n");
	local_cgroup cg = {0};
	local_cgroup_detect_in(&cg, own);
	ck_assert_msg(cg.dir != NULL, "%s", cg.reason ? cg.reason : "?");
	ck_assert_int_eq(cg.pids, 0);
	ck_assert(!exists(tpath("own/hypertest")));
	ck_assert_str_eq(slurp(tpath("own/cgroup.subtree_control")), "memory");
	local_cgroup_box box;
	char *err = NULL;
	ck_assert_int_eq(local_cgroup_box_new(&cg, 64, &box, &err), 0);
	ck_assert(!exists(tpath("own/sandbox-%ld-1/pids.max", (long)getpid())));
	ck_assert_str_eq(slurp(tpath("own/sandbox-%ld-1/memory.max", (long)getpid())), "67108864");
	local_cgroup_box_entered(&box);
	free(box.dir);
	local_cgroup_clear(&cg);
	free(own);
}
END_TEST

/* ---- where: mountinfo and /proc/self/cgroup -------------------------------------------- */

static void detect_files(local_cgroup *cg, const char *mountinfo, const char *self)
{
	put(tpath("mountinfo"), mountinfo);
	put(tpath("cgroup"), self);
	char *mi = strdup(tpath("mountinfo")), *pc = strdup(tpath("cgroup"));
	local_cgroup_detect(cg, mi, pc);
	free(mi);
	free(pc);
}

START_TEST(found_through_mountinfo)
{
	ck_assert_int_eq(mkdir(tpath("m nt"), 0755), 0);
	ck_assert_int_eq(mkdir(tpath("m nt/a"), 0755), 0);
	free(make_cgroup("m nt/a/b", "memory pids\n"));
	char mi[8192];
	/* cgroup v1 and proc first; the mount point escaped as the kernel
	 * escapes it */
	snprintf(mi, sizeof mi,
	         "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
	         "30 22 0:26 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n"
	         "31 22 0:27 / %s/m\\040nt rw,nosuid,nodev shared:10 - cgroup2 cgroup2 "
	         "rw,nsdelegate\n", tmp_root);
	local_cgroup cg = {0};
	detect_files(&cg, mi, "4:memory:/x\n0::/a/b\n");
	ck_assert_msg(cg.dir != NULL, "%s", cg.reason ? cg.reason : "?");
	ck_assert_str_eq(cg.dir, tpath("m nt/a/b"));
	ck_assert_str_eq(slurp(tpath("m nt/a/b/cgroup.subtree_control")), "+memory +pids");
	/* a long mountinfo (a host of many containers): the cgroup2 line after
	 * 200 KB of others */
	size_t big = 300000, n = 0;
	char *many = malloc(big);
	ck_assert_ptr_nonnull(many);
	for (int i = 0; n < 200000; i++)
		n += (size_t)snprintf(many + n, big - n, "%d 22 0:%d / /run/netns/ns%d rw - nsfs "
		                      "nsfs rw\n", 100 + i, 50 + i, i);
	snprintf(many + n, big - n, "%s", mi);
	detect_files(&cg, many, "0::/a/b\n");
	free(many);
	ck_assert_msg(cg.dir != NULL, "%s", cg.reason ? cg.reason : "?");
	ck_assert_str_eq(cg.dir, tpath("m nt/a/b"));
	/* the root of the mount (a container's own cgroup namespace): its
	 * directory as it is */
	put(tpath("m nt/cgroup.controllers"), "memory\n");
	put(tpath("m nt/cgroup.subtree_control"), "memory\n");
	put(tpath("m nt/cgroup.procs"), "");
	detect_files(&cg, mi, "0::/\n");
	ck_assert_msg(cg.dir != NULL, "%s", cg.reason ? cg.reason : "?");
	ck_assert_str_eq(cg.dir, tpath("m nt"));
	local_cgroup_clear(&cg);

	/* a mount of a subtree (root /a): the path is found below it */
	snprintf(mi, sizeof mi, "31 22 0:27 /a %s/m\\040nt/a rw - cgroup2 cgroup2 rw\n",
	         tmp_root);
	detect_files(&cg, mi, "0::/a/b\n");
	ck_assert_msg(cg.dir != NULL, "%s", cg.reason ? cg.reason : "?");
	ck_assert_str_eq(cg.dir, tpath("m nt/a/b"));
	detect_files(&cg, mi, "0::/ab\n");
	ck_assert_ptr_null(cg.dir);
	ck_assert_msg(strstr(cg.reason, "cgroup /ab is below none of the cgroup2 mounts"), "%s",
	              cg.reason);
	local_cgroup_clear(&cg);
}
END_TEST

/* ---- fallbacks: the reason doctor shows --------------------------------------------- */

START_TEST(fallback_no_cgroup2)
{
	local_cgroup cg = {0};
	detect_files(&cg,
	             "30 22 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
	             "31 22 0:27 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
	             "4:memory:/user.slice\n3:pids:/user.slice\n");
	ck_assert_ptr_null(cg.dir);
	ck_assert_str_eq(cg.reason, "no cgroup2 file system is mounted (cgroup v1 only)");
	/* a cgroup2 mount but no "0::" line */
	char mi[8192];
	snprintf(mi, sizeof mi, "31 22 0:27 / %s rw - cgroup2 cgroup2 rw\n", tmp_root);
	detect_files(&cg, mi, "4:memory:/user.slice\n");
	ck_assert_ptr_null(cg.dir);
	ck_assert_msg(strstr(cg.reason, "no cgroup v2 entry (\"0::/...\") in ") &&
	              strstr(cg.reason, "/cgroup"), "%s", cg.reason);
	local_cgroup_clear(&cg);
}
END_TEST

START_TEST(fallback_memory_not_delegated)
{
	/* a hybrid machine: cgroup2 mounted with no memory in it */
	char *own = make_cgroup("own", "hugetlb\n");
	local_cgroup cg = {0};
	local_cgroup_detect_in(&cg, own);
	ck_assert_ptr_null(cg.dir);
	char want[600];
	snprintf(want, sizeof want, "the memory controller is not delegated to %s (its "
	         "cgroup.controllers: \"hugetlb\")", own);
	ck_assert_str_eq(cg.reason, want);
	ck_assert_str_eq(slurp(tpath("own/cgroup.subtree_control")), "");
	ck_assert(!exists(tpath("own/hypertest")));
	local_cgroup_clear(&cg);
	free(own);
}
END_TEST

START_TEST(fallback_other_processes)
{
	char *own = make_cgroup("own", "memory\n");
	char procs[64];
	snprintf(procs, sizeof procs, "%ld\n1\n", (long)getpid());
	put(tpath("own/cgroup.procs"), procs);
	local_cgroup cg = {0};
	local_cgroup_detect_in(&cg, own);
	ck_assert_ptr_null(cg.dir);
	ck_assert_msg(strstr(cg.reason, "holds other processes than this one (pid 1)") &&
	              strstr(cg.reason, own), "%s", cg.reason);
	/* nothing moved, nothing enabled */
	ck_assert(!exists(tpath("own/hypertest")));
	ck_assert_str_eq(slurp(tpath("own/cgroup.subtree_control")), "");
	local_cgroup_clear(&cg);
	free(own);
}
END_TEST

START_TEST(fallback_not_writable)
{
	/* a cgroup of another user (root's, as seen by nobody when the test
	 * runs as root) */
	char *own = make_cgroup("own", "memory pids\n");
	ck_assert_int_eq(chmod(tmp_root, 0755), 0);
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t child = fork();
	if (child == 0) {
		close(fds[0]);
		if (geteuid() == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(2);
		} else if (chmod(own, 0555) != 0) {
			_exit(3);
		}
		local_cgroup cg = {0};
		local_cgroup_detect_in(&cg, own);
		const char *r = cg.dir ? "usable" : cg.reason;
		_exit(write(fds[1], r, strlen(r)) == (ssize_t)strlen(r) ? 0 : 4);
	}
	close(fds[1]);
	char reason[2048];
	ssize_t n = read(fds[0], reason, sizeof reason - 1);
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	chmod(own, 0755);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d", status);
	reason[n > 0 ? n : 0] = '\0';
	char want[600];
	snprintf(want, sizeof want, "%s is not delegated to this user: cannot write %s: "
	         "Permission denied", own, own);
	ck_assert_str_eq(reason, want);
	ck_assert(!exists(tpath("own/hypertest")));
	free(own);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("local-cgroup");
	TCase *t = tcase_create("protocol");
	tcase_add_checked_fixture(t, tmp_setup, tmp_teardown);
	tcase_add_test(t, protocol_leaf_limits_enter_remove);
	tcase_add_test(t, protocol_already_enabled);
	tcase_add_test(t, found_through_mountinfo);
	suite_add_tcase(s, t);
	t = tcase_create("fallback");
	tcase_add_checked_fixture(t, tmp_setup, tmp_teardown);
	tcase_add_test(t, fallback_no_cgroup2);
	tcase_add_test(t, fallback_memory_not_delegated);
	tcase_add_test(t, fallback_other_processes);
	tcase_add_test(t, fallback_not_writable);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(suite());
	srunner_run_all(r, CK_NORMAL);
	int failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
