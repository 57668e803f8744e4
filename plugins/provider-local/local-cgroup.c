/*
 * local-cgroup.c - memoryMB as a cgroup v2 limit for the sandboxes of
 * isolation "lambda", where the machine delegates one.
 *
 * Where: this process's own cgroup OWN ("0::/path" in /proc/self/cgroup)
 * below the cgroup2 mount found in /proc/self/mountinfo (wherever it is
 * mounted).  It is usable when "memory" is in OWN/cgroup.controllers and
 * this user may write OWN, its cgroup.procs and its cgroup.subtree_control
 * (a delegated subtree: `systemd-run --user --scope -p Delegate=yes`, a
 * container's own cgroup namespace).
 *
 * Layout: the sandboxes' cgroups are children of OWN,
 *
 *   OWN/cgroup.subtree_control   +memory [+pids]
 *   OWN/hypertest/               this process, moved here when needed
 *   OWN/sandbox-<pid>-<n>/       one per sandbox, removed when it ends
 *
 * A cgroup that enables controllers for its children may hold no process
 * itself ("no internal processes"), so when memory is not enabled yet in
 * OWN/cgroup.subtree_control this process moves into the leaf
 * OWN/hypertest first, then enables memory (and pids, when delegated).
 * Only when OWN holds no process but this one: the processes of others
 * are never moved (that is a reason to fall back).  An empty child is
 * created and removed as a last check.  This is done once per process
 * (local_cgroup_system), by the first sandbox or doctor.
 *
 * Each sandbox: memory.max memoryMB MiB, memory.swap.max 0 and
 * memory.oom.group 1 where the kernel has them (the whole sandbox is
 * killed when it runs out of memory, as on Lambda), pids.max 1,024 with
 * pids; its first process enters it (writes its pid to cgroup.procs)
 * before it execs; when the sandbox ends memory.events tells whether the
 * OOM killer struck, cgroup.kill (where there is one) ends what is left,
 * and the cgroup is removed.
 *
 * Files the kernel always has are written with O_CREAT|O_TRUNC (as a
 * shell's `echo 1 > file` does), so that the tests can run the protocol
 * in a directory laid out like a cgroup v2 tree; optional ones only where
 * they exist.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/htplugin.h"
#include "local-cgroup.h"

#define LEAF "hypertest"
/* The most read of a file: a mountinfo of many thousands of mounts. */
#define TEXT_MAX ((size_t)16 << 20)

/* The contents of path (NUL-terminated, at most TEXT_MAX bytes read),
 * malloc'd; NULL with errno. */
static char *read_text(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap + 1);
	while (buf && len < TEXT_MAX) {
		if (len == cap) {
			char *more = realloc(buf, cap * 2 + 1);
			if (!more) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = more;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (!buf) {
		errno = ENOMEM;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Write s to dir/name (created when create); 0 or -1 with errno. */
static int write_at(const char *dir, const char *name, const char *s, int create)
{
	char *path = htp_path_join(dir, name);
	if (!path) {
		errno = ENOMEM;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0644);
	free(path);
	if (fd < 0)
		return -1;
	int e = htp_write_all(fd, s, strlen(s));
	if (close(fd) != 0 && e == 0)
		return -1;
	errno = e;
	return e ? -1 : 0;
}

static int exists_at(const char *dir, const char *name)
{
	char *path = htp_path_join(dir, name);
	int ok = path && access(path, F_OK) == 0;
	free(path);
	return ok;
}

/* Is word one of the blank-separated words of list? */
static int has_word(const char *list, const char *word)
{
	size_t l = strlen(word);
	for (const char *s = list; *s;) {
		s += strspn(s, " \t\n");
		size_t n = strcspn(s, " \t\n");
		if (n == l && !strncmp(s, word, l))
			return 1;
		s += n;
	}
	return 0;
}

static void set_reason(local_cgroup *cg, char *reason)
{
	free(cg->reason);
	cg->reason = reason ? reason : strdup("out of memory");
}

/* Decode mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The directory of cgroup path (as in /proc/self/cgroup) under the cgroup2
 * mounts of mountinfo (text), malloc'd; NULL with *why set (malloc'd). */
static char *cgroup_dir(char *mountinfo, const char *path, char **why)
{
	int mounts = 0;
	char *lines = NULL;
	for (char *line = strtok_r(mountinfo, "\n", &lines); line;
	     line = strtok_r(NULL, "\n", &lines)) {
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		mounts++;
		char *f[5];
		char *save = NULL, *s = line;
		*sep = '\0';
		int n = 0;
		for (char *t = strtok_r(s, " ", &save); t && n < 5; t = strtok_r(NULL, " ", &save))
			f[n++] = t;
		if (n < 5)
			continue;
		char *root = f[3], *mnt = f[4];
		unescape(root);
		unescape(mnt);
		size_t rl = strcmp(root, "/") ? strlen(root) : 0;
		if (rl && (strncmp(path, root, rl) || (path[rl] != '/' && path[rl] != '\0')))
			continue;
		const char *rest = strcmp(path + rl, "/") ? path + rl : ""; /* the root: mnt */
		char *dir = htp_strdupf("%s%s", mnt, rest);
		if (!dir)
			*why = NULL;
		return dir;
	}
	*why = mounts ? htp_strdupf("this process's cgroup %s is below none of the cgroup2 mounts",
	                            path)
	              : htp_strdupf("no cgroup2 file system is mounted (cgroup v1 only)");
	return NULL;
}

void local_cgroup_detect(local_cgroup *cg, const char *mountinfo, const char *proc_cgroup)
{
	free(cg->dir);
	cg->dir = NULL;
	char *mi = read_text(mountinfo), *pc = mi ? read_text(proc_cgroup) : NULL;
	if (!mi || !pc) {
		set_reason(cg, htp_strdupf("cannot read %s: %s", mi ? proc_cgroup : mountinfo,
		                           strerror(errno)));
		free(mi);
		return;
	}
	if (!strstr(mi, " - cgroup2 ")) {
		set_reason(cg, htp_strdupf("no cgroup2 file system is mounted (cgroup v1 only)"));
		free(mi);
		free(pc);
		return;
	}
	char *path = NULL, *lines = NULL;
	for (char *line = strtok_r(pc, "\n", &lines); line && !path;
	     line = strtok_r(NULL, "\n", &lines))
		if (!strncmp(line, "0::", 3))
			path = line + 3;
	if (!path || path[0] != '/') {
		set_reason(cg, htp_strdupf("no cgroup v2 entry (\"0::/...\") in %s", proc_cgroup));
	} else {
		char *why = NULL, *dir = cgroup_dir(mi, path, &why);
		if (dir)
			local_cgroup_detect_in(cg, dir);
		else
			set_reason(cg, why);
		free(dir);
	}
	free(mi);
	free(pc);
}

/* 0 when own's cgroup.procs lists no process but this one; else -1 and
 * why in *why (malloc'd; NULL: out of memory). */
static int others_in(const char *own, char **why)
{
	char *path = htp_path_join(own, "cgroup.procs");
	char *procs = path ? read_text(path) : NULL;
	if (!procs) {
		*why = htp_strdupf("cannot read %s: %s", path ? path : own, strerror(errno));
		free(path);
		return -1;
	}
	long self = (long)getpid();
	int rc = 0;
	for (char *s = procs; *s && !rc;) {
		char *end;
		long pid = strtol(s, &end, 10);
		if (end == s)
			break;
		if (pid != self) {
			rc = -1;
			*why = htp_strdupf("%s holds other processes than this one (pid %ld): the "
			                  "sandboxes' cgroups need a cgroup of its own (e.g. "
			                  "systemd-run --user --scope -p Delegate=yes)", own, pid);
		}
		s = end;
	}
	free(procs);
	free(path);
	return rc;
}

/* Move this process into own/LEAF and enable want (e.g. "+memory +pids")
 * for own's children: 0, or -1 with why in *why (as others_in). */
static int enable(const char *own, const char *want, char **why)
{
	if (others_in(own, why) != 0)
		return -1;
	char *leaf = htp_path_join(own, LEAF);
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	*why = NULL;
	if (!leaf)
		return -1;
	if (mkdir(leaf, 0755) != 0 && errno != EEXIST)
		*why = htp_strdupf("cannot create %s: %s", leaf, strerror(errno));
	else if (write_at(leaf, "cgroup.procs", pid, 1) != 0)
		*why = htp_strdupf("cannot move this process into %s: %s", leaf, strerror(errno));
	else if (write_at(own, "cgroup.subtree_control", want, 0) != 0)
		*why = htp_strdupf("cannot enable \"%s\" in %s/cgroup.subtree_control: %s", want, own,
		                   strerror(errno));
	else {
		free(leaf);
		return 0;
	}
	free(leaf);
	return -1;
}

/* 0 when own (memory delegated) is writable; else -1 (as others_in). */
static int unwritable(const char *own, char **why)
{
	const char *names[] = {NULL, "cgroup.procs", "cgroup.subtree_control"};
	*why = NULL;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *path = names[i] ? htp_path_join(own, names[i]) : strdup(own);
		if (!path)
			return -1;
		if (access(path, W_OK) != 0) {
			*why = htp_strdupf("%s is not delegated to this user: cannot write %s: %s", own,
			                   path, strerror(errno));
			free(path);
			return -1;
		}
		free(path);
	}
	return 0;
}

/* The last check: an empty child of dir can be created and removed (0, or
 * -1 as others_in). */
static int probe(const char *dir, char **why)
{
	char name[64];
	snprintf(name, sizeof name, "sandbox-%ld-0", (long)getpid());
	char *path = htp_path_join(dir, name);
	*why = NULL;
	if (!path)
		return -1;
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		*why = htp_strdupf("cannot create a cgroup in %s: %s", dir, strerror(errno));
	else if (rmdir(path) != 0)
		*why = htp_strdupf("cannot remove the cgroup %s: %s", path, strerror(errno));
	else {
		free(path);
		return 0;
	}
	free(path);
	return -1;
}

void local_cgroup_detect_in(local_cgroup *cg, const char *own)
{
	free(cg->dir);
	cg->dir = NULL;
	char *path = htp_path_join(own, "cgroup.controllers");
	char *ctl = path ? read_text(path) : NULL;
	char *sub = NULL, *why = NULL;
	int rc = 0;
	if (!ctl) {
		set_reason(cg, htp_strdupf("cannot read %s: %s", path ? path : own, strerror(errno)));
		goto out;
	}
	if (!has_word(ctl, "memory")) {
		ctl[strcspn(ctl, "\n")] = '\0';
		set_reason(cg, htp_strdupf("the memory controller is not delegated to %s (its "
		                           "cgroup.controllers: \"%s\")", own, ctl));
		goto out;
	}
	cg->pids = has_word(ctl, "pids");
	if (unwritable(own, &why) != 0) {
		set_reason(cg, why);
		goto out;
	}
	free(path);
	path = htp_path_join(own, "cgroup.subtree_control");
	sub = path ? read_text(path) : NULL;
	if (!sub) {
		set_reason(cg, htp_strdupf("cannot read %s: %s", path ? path : own, strerror(errno)));
		goto out;
	}
	if (!has_word(sub, "memory") || (cg->pids && !has_word(sub, "pids")))
		rc = enable(own, cg->pids ? "+memory +pids" : "+memory", &why);
	if (rc == 0)
		rc = probe(own, &why);
	if (rc != 0) {
		set_reason(cg, why);
		goto out;
	}
	if (!(cg->dir = strdup(own)))
		set_reason(cg, NULL);
	else {
		free(cg->reason);
		cg->reason = NULL;
	}
out:
	free(path);
	free(ctl);
	free(sub);
}

void local_cgroup_clear(local_cgroup *cg)
{
	free(cg->dir);
	free(cg->reason);
	cg->dir = cg->reason = NULL;
}

static pthread_mutex_t system_lock = PTHREAD_MUTEX_INITIALIZER;
static local_cgroup system_cgroup;
static int system_done;

/* The module can be unloaded (dlclose): what it found goes with it. */
__attribute__((destructor)) static void system_cgroup_free(void)
{
	pthread_mutex_lock(&system_lock);
	local_cgroup_clear(&system_cgroup);
	system_done = 0;
	pthread_mutex_unlock(&system_lock);
}

local_cgroup *local_cgroup_system(void)
{
	pthread_mutex_lock(&system_lock);
	if (!system_done) {
		const char *own = getenv(LOCAL_CGROUP_ENV);
		if (own && *own)
			local_cgroup_detect_in(&system_cgroup, own);
		else
			local_cgroup_detect(&system_cgroup, "/proc/self/mountinfo", "/proc/self/cgroup");
		system_done = 1;
	}
	pthread_mutex_unlock(&system_lock);
	return &system_cgroup;
}

int local_cgroup_box_new(local_cgroup *cg, uint64_t memory_mb, local_cgroup_box *box, char **err)
{
	box->dir = NULL;
	box->procs_fd = -1;
	unsigned long n = atomic_fetch_add(&cg->seq, 1) + 1;
	char name[64], max[32], pids[16];
	snprintf(name, sizeof name, "sandbox-%ld-%lu", (long)getpid(), n);
	snprintf(pids, sizeof pids, "%d", LOCAL_CGROUP_PIDS_MAX);
	snprintf(max, sizeof max, "%llu", (unsigned long long)memory_mb * 1024ULL * 1024ULL);
	char *dir = htp_path_join(cg->dir, name), *procs = NULL;
	const char *what = NULL;
	if (!dir) {
		*err = htp_strdupf("out of memory");
		return -1;
	}
	if (mkdir(dir, 0755) != 0) {
		*err = htp_strdupf("cannot create the cgroup %s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	if (write_at(dir, "memory.max", max, 1) != 0)
		what = "memory.max";
	else if (exists_at(dir, "memory.swap.max") && write_at(dir, "memory.swap.max", "0", 0) != 0)
		what = "memory.swap.max";
	else if (exists_at(dir, "memory.oom.group") && write_at(dir, "memory.oom.group", "1", 0) != 0)
		what = "memory.oom.group";
	else if (cg->pids && write_at(dir, "pids.max", pids, 1) != 0)
		what = "pids.max";
	else if (!(procs = htp_path_join(dir, "cgroup.procs")))
		what = "cgroup.procs";
	else if ((box->procs_fd = open(procs, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0644)) < 0 ||
	         (box->procs_fd = htp_fd_above_stdio(box->procs_fd)) < 0)
		what = "cgroup.procs";
	free(procs);
	if (what) {
		*err = htp_strdupf("cannot write %s/%s: %s", dir, what, strerror(errno));
		rmdir(dir);
		free(dir);
		return -1;
	}
	box->dir = dir;
	return 0;
}

int local_cgroup_enter(int fd)
{
	char buf[24];
	size_t i = sizeof buf;
	unsigned long v = (unsigned long)getpid();
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	ssize_t w = write(fd, buf + i, sizeof buf - i);
	if (w == (ssize_t)(sizeof buf - i))
		return 0;
	if (w >= 0)
		errno = EIO;
	return -1;
}

void local_cgroup_box_entered(local_cgroup_box *box)
{
	if (box->procs_fd >= 0)
		close(box->procs_fd);
	box->procs_fd = -1;
}

/* "oom_kill N" of dir/memory.events, 0 when unknown. */
static uint64_t oom_kills(const char *dir)
{
	char *path = htp_path_join(dir, "memory.events");
	char *ev = path ? read_text(path) : NULL;
	uint64_t n = 0;
	for (char *s = ev; s && *s; s += strcspn(s, "\n"), s += *s == '\n') {
		if (!strncmp(s, "oom_kill ", 9)) {
			n = strtoull(s + 9, NULL, 10);
			break;
		}
	}
	free(ev);
	free(path);
	return n;
}

int local_cgroup_box_end(local_cgroup_box *box, uint64_t *kills, char **err)
{
	local_cgroup_box_entered(box);
	*kills = 0;
	if (!box->dir)
		return 0;
	*kills = oom_kills(box->dir);
	if (exists_at(box->dir, "cgroup.kill"))
		(void)write_at(box->dir, "cgroup.kill", "1", 0);
	/* EBUSY while processes remain: bwrap's own die with it, by their
	 * parent-death signal, a moment later (without cgroup.kill) */
	int rc = 0;
	for (int tries = 0; rmdir(box->dir) != 0; tries++) {
		if (errno != EBUSY || tries == 200) {
			*err = htp_strdupf("cannot remove the cgroup %s: %s", box->dir, strerror(errno));
			rc = -1;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	free(box->dir);
	box->dir = NULL;
	return rc;
}
