/*
 * local-scratch.c - the working directories of invocations.
 *
 * functionDir/scratch/<testId>/ is where one invocation runs:
 *   <entry> -> <task root>/<entry>   a symbolic link per top-level entry of
 *                                    the deployed task root (/var/task)
 *   .hypertest/home                  HOME
 *   .hypertest/tmp                   TMPDIR
 * and whatever the test writes there.
 *
 * Creating and deleting those inodes for every invocation was half the
 * cost of a start on ext4, so directories are recycled.  Once the process
 * is reaped its directory is cleaned (local_scratch_clean: what the test
 * wrote is removed, HOME and TMPDIR are emptied) and renamed to
 * scratch/.pool/<digest>-<pid>-<n>; the next invocation, of this run or of
 * a later one, renames it to its own test id.  rename() is atomic, so
 * orchestrators sharing the directory cannot take the same one.  A
 * directory whose links the test changed is not reused; pooled directories
 * of another image are removed.
 *
 * Through the zygote (local-zygote.c), the zygote does that work, a
 * process of its own beside the orchestrator's one thread, which only
 * names the directories and renames each back into the pool: it renames
 * the pooled directory to the test id (or makes one, local_scratch_make,
 * when the pool has none) before the fork, links TMPDIR, and once the
 * child and its group are gone cleans the directory, if it is still the
 * same one at the same place, and removes the link.
 *
 * An invocation that completes before its process is reaped (timeout,
 * cancel...) sets its directory aside (scratch/.aside-...), so that its
 * test id is free at once.
 *
 * A directory is left behind only when the orchestrator is killed outright;
 * scratch/ may be removed whenever no invoke runs.
 *
 * TMPDIR is not the long path of .hypertest/tmp but a short link to it,
 * /tmp/hypertest-<ns>-<pid>-XXXXXX/<n> (a directory of the provider's own,
 * mode 0700, in the orchestrator's TMPDIR when that is short, else in
 * /dev/shm with isolation "none" (links_base); <ns> and <pid> are the
 * orchestrator's pid namespace and pid): programs put Unix
 * sockets below TMPDIR, a socket's path has 107 bytes at most, and the
 * scratch directory may be deep in the project (Chromium's is
 * $TMPDIR/.org.chromium.Chromium.XXXXXX/SingletonSocket).  The link goes
 * when the invocation ends, the directory when the provider does.  An
 * orchestrator killed outright leaves its directory (links only); the next
 * one to make its own removes those of its user whose process, in its pid
 * namespace, is gone.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

#define PREFIX_LEN 16 /* hex digits of the digest in pooled names */

/* "<first hex digits of the digest>-" */
static void pool_prefix(local_provider *p, char out[PREFIX_LEN + 2])
{
	const char *colon = strchr(p->dep.digest, ':');
	snprintf(out, PREFIX_LEN + 2, "%.*s-", PREFIX_LEN, colon ? colon + 1 : p->dep.digest);
}

static void pool_forget(local_provider *p)
{
	for (size_t i = 0; i < p->npool; i++)
		free(p->pool[i]);
	p->npool = 0;
	free(p->pool_digest);
	p->pool_digest = NULL;
}

static int pool_push(local_provider *p, char *name)
{
	if (p->npool == p->pool_cap) {
		size_t ncap = p->pool_cap ? p->pool_cap * 2 : 64;
		char **np = realloc(p->pool, ncap * sizeof *np);
		if (!np)
			return -1;
		p->pool = np;
		p->pool_cap = ncap;
	}
	p->pool[p->npool++] = name;
	return 0;
}

/* Take stock of scratch/.pool for the deployed image: its directories are
 * ready for us, the others are removed. */
static void pool_load(local_provider *p)
{
	char prefix[PREFIX_LEN + 2];
	pool_forget(p);
	p->pool_digest = local_strdup(p->dep.digest);
	pool_prefix(p, prefix);
	DIR *d = opendir(p->pool_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *path = htp_path_join(p->pool_dir, e->d_name);
		if (!path)
			break;
		if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) {
			local_rm_rf(path);
			free(path);
		} else if (pool_push(p, path) != 0) {
			free(path);
		}
	}
	closedir(d);
}

void local_scratch_shutdown(local_provider *p)
{
	pool_forget(p); /* the directories stay for the next run */
	free(p->pool);
	p->pool = NULL;
	p->pool_cap = 0;
	free(p->scratch_base);
	free(p->pool_dir);
	p->scratch_base = p->pool_dir = NULL;
	if (p->tmp_links && local_rm_rf(p->tmp_links) != 0)
		local_log(p, HYPERTEST_LOG_WARNING, "cannot remove %s: %s", p->tmp_links,
		          strerror(errno));
	free(p->tmp_links);
	p->tmp_links = NULL;
}

/* where the directory of TMPDIR links goes: the orchestrator's TMPDIR
 * when it is short; else, with isolation "none", /dev/shm when it is a
 * shared directory (sticky, writable by all: a tmpfs on Linux), where a
 * link costs no inode of a disk's file system; else /tmp.  bubblewrap
 * gives the sandbox a /dev of its own, without the host's /dev/shm. */
static const char *links_base(const local_provider *p)
{
	const char *t = getenv("TMPDIR");
	struct stat st;
	if (t && t[0] == '/' && strlen(t) <= 40)
		return t;
	if (p->isolation == LOCAL_ISOLATION_NONE && stat("/dev/shm", &st) == 0 &&
	    S_ISDIR(st.st_mode) && (st.st_mode & 01777) == 01777 &&
	    access("/dev/shm", W_OK | X_OK) == 0)
		return "/dev/shm";
	return "/tmp";
}

/* The pid namespace of this process ("pid:[N]" in /proc), 0 when unknown. */
static unsigned long pid_namespace(void)
{
	char buf[64];
	unsigned long ns = 0;
	ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof buf - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return sscanf(buf, "pid:[%lu]", &ns) == 1 ? ns : 0;
}

/* Remove the link directories in base that orchestrators of this user and
 * pid namespace left when they were killed outright: their process is gone.
 * A pid in use again keeps its directory until it is gone too. */
static void links_sweep(local_provider *p, const char *base, unsigned long ns)
{
	DIR *d = opendir(base);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		unsigned long their_ns;
		long pid;
		int x = 0, end = 0; /* where the XXXXXX of mkdtemp begin and end */
		if (sscanf(e->d_name, "hypertest-%lu-%ld-%n%*[A-Za-z0-9]%n", &their_ns, &pid, &x,
		           &end) != 2 ||
		    end - x != 6 || e->d_name[end] != '\0' || their_ns != ns || pid <= 0 ||
		    pid == (long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *path = htp_path_join(base, e->d_name);
		struct stat st;
		if (path && lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid()) {
			if (local_rm_rf(path) == 0)
				local_log(p, HYPERTEST_LOG_DEBUG, "removed %s, left by process %ld",
				          path, pid);
			else
				local_log(p, HYPERTEST_LOG_WARNING, "cannot remove %s: %s", path,
				          strerror(errno));
		}
		free(path);
	}
	closedir(d);
}

char *local_scratch_tmpdir(local_provider *p, const char *dir, int make)
{
	if (!p->tmp_links) {
		const char *base = links_base(p);
		unsigned long ns = pid_namespace();
		if (ns)
			links_sweep(p, base, ns);
		char *tmpl = htp_strdupf("%s/hypertest-%lu-%ld-XXXXXX", base, ns, (long)getpid());
		if (!tmpl || !mkdtemp(tmpl)) {
			int e = tmpl ? errno : ENOMEM;
			local_fail(p, HYPERTEST_ERR_IO, "cannot create %s for TMPDIR: %s",
			           tmpl ? tmpl : "a directory", strerror(e));
			free(tmpl);
			return NULL;
		}
		p->tmp_links = tmpl;
	}
	char *target = htp_strdupf("%s/.hypertest/tmp", dir);
	char *link = htp_strdupf("%s/%lu", p->tmp_links, ++p->tmp_link_seq);
	if (!target || !link || (make && symlink(target, link) != 0)) {
		int e = target && link ? errno : ENOMEM;
		local_fail(p, HYPERTEST_ERR_IO, "cannot link %s to %s for TMPDIR: %s",
		           link ? link : "a name", target ? target : dir, strerror(e));
		free(link);
		link = NULL;
	}
	free(target);
	return link;
}

void local_scratch_tmpdir_drop(local_provider *p, char *link)
{
	if (link && unlink(link) != 0 && errno != ENOENT)
		local_log(p, HYPERTEST_LOG_WARNING, "cannot remove %s: %s", link, strerror(errno));
	free(link);
}

/* A new directory at dir, linked to entries[0..n) of task_root; what
 * failed in *failed (malloc'd, NULL when memory ran out), errno set. */
static int create_fresh(const char *dir, const char *task_root, char *const *entries, size_t n,
                        char **failed)
{
	char *priv = htp_path_join(dir, ".hypertest");
	char *home = priv ? htp_path_join(priv, "home") : NULL;
	char *tmp = priv ? htp_path_join(priv, "tmp") : NULL;
	int rc = -1;
	if (!tmp) {
		errno = ENOMEM;
		goto out;
	}
	if (mkdir(dir, 0777) != 0) {
		*failed = local_strdup(dir);
		goto out;
	}
	if (mkdir(priv, 0777) != 0 || mkdir(home, 0777) != 0 || mkdir(tmp, 0777) != 0) {
		*failed = local_strdup(priv);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *target = htp_path_join(task_root, entries[i]);
		char *link = htp_path_join(dir, entries[i]);
		int r = target && link ? symlink(target, link) : (errno = ENOMEM, -1);
		free(target);
		if (r != 0) {
			*failed = link;
			goto out;
		}
		free(link);
	}
	rc = 0;
out:
	free(priv);
	free(home);
	free(tmp);
	return rc;
}

/* dir/name into buf (PATH_MAX bytes); -1 (ENAMETOOLONG) when it does not fit. */
static int path_into(char *buf, const char *dir, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", dir, name);
	if (n < 0 || n >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Nothing here allocates memory but on failure: the zygote calls it
 * before each fork, and what it changes in its heap each child copies as
 * it writes there (an opendir() alone merged the free chunks of the whole
 * heap). */
int local_scratch_make(const char *dir, const char *task_root, char **failed)
{
	static const char *const own[] = {"", "/.hypertest", "/.hypertest/home",
	                                   "/.hypertest/tmp"};
	char from[PATH_MAX], to[PATH_MAX];
	union {
		struct dirent64 e;
		char b[8192];
	} buf;
	*failed = NULL;
	int fd = open(task_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*failed = local_strdup(task_root);
		return -1;
	}
	const char *what = to;
	for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
		int n = snprintf(to, sizeof to, "%s%s", dir, own[i]);
		if (n < 0 || (size_t)n >= sizeof to) {
			errno = ENAMETOOLONG;
			what = dir;
			goto fail;
		}
		if (mkdir(to, 0777) != 0)
			goto fail;
	}
	for (;;) {
		ssize_t n = getdents64(fd, buf.b, sizeof buf.b);
		if (n < 0) {
			what = task_root;
			goto fail;
		}
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(void *)(buf.b + off);
			off += e->d_reclen;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
			    !strcmp(e->d_name, ".hypertest"))
				continue; /* as the deployed image's entries (local-deploy.c) */
			if (path_into(from, task_root, e->d_name) != 0 ||
			    path_into(to, dir, e->d_name) != 0 || symlink(from, to) != 0)
				goto fail;
		}
	}
	close(fd);
	return 0;
fail:;
	int e = errno;
	*failed = local_strdup(what);
	close(fd);
	errno = e;
	return -1;
}

static int setup_dirs(local_provider *p)
{
	if (p->pool_dir)
		return 0;
	p->scratch_base = htp_path_join(p->function_dir, "scratch");
	p->pool_dir = p->scratch_base ? htp_path_join(p->scratch_base, ".pool") : NULL;
	if (!p->pool_dir)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (local_mkdir_p(p->pool_dir) != 0) {
		int rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s",
		                    p->pool_dir, strerror(errno));
		free(p->scratch_base);
		free(p->pool_dir);
		p->scratch_base = p->pool_dir = NULL;
		return rc;
	}
	return 0;
}

char *local_scratch_acquire(local_provider *p, const char *name, int *deferred, char **take)
{
	if (deferred)
		*deferred = 0;
	if (take)
		*take = NULL;
	if (setup_dirs(p) != 0)
		return NULL;
	if (!p->pool_digest || strcmp(p->pool_digest, p->dep.digest) != 0)
		pool_load(p);
	char *dir = htp_path_join(p->scratch_base, name);
	if (!dir) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (deferred && take && p->npool > 0) {
		*take = p->pool[--p->npool]; /* the child renames it */
		return dir;
	}
	while (p->npool > 0) {
		char *from = p->pool[--p->npool];
		int ok = rename(from, dir) == 0;
		if (!ok && (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) &&
		    local_rm_rf(dir) == 0)
			ok = rename(from, dir) == 0; /* a stale directory of that name */
		free(from); /* ENOENT: another orchestrator took it */
		if (ok)
			return dir;
	}
	char *failed = NULL;
	int stale = local_rm_rf(dir); /* a directory of that name left behind */
	if (stale == 0 && deferred) {
		*deferred = 1; /* the function process makes it */
		return dir;
	}
	if (stale != 0 ||
	    create_fresh(dir, p->dep.task_root, p->dep.entries, p->dep.nentries, &failed) != 0) {
		int e = errno;
		local_fail(p, e == ENOMEM ? HYPERTEST_ERR_NOMEM : HYPERTEST_ERR_IO,
		           "cannot create %s: %s", failed ? failed : dir, strerror(e));
		free(failed);
		local_rm_rf(dir);
		free(dir);
		return NULL;
	}
	return dir;
}

/* What cleaning one level found. */
struct sweep {
	const char *task_root;
	size_t found; /* our links, or home and tmp */
	int ok;
};

/* An entry of the scratch directory: our links (to the task root's entry
 * of the same name) stay, anything else goes. */
static int sweep_top(int dfd, const char *n, unsigned char type, void *ud)
{
	struct sweep *w = ud;
	if (!strcmp(n, ".hypertest"))
		return 0;
	if (type == DT_LNK || type == DT_UNKNOWN) {
		char got[PATH_MAX], want[PATH_MAX];
		ssize_t len = readlinkat(dfd, n, got, sizeof got);
		if (len > 0 && (size_t)len < sizeof got && path_into(want, w->task_root, n) == 0 &&
		    (size_t)len == strlen(want) && !memcmp(got, want, (size_t)len)) {
			w->found++;
			return 0;
		}
	}
	if (local_rm_rf_at(dfd, n) != 0)
		w->ok = 0;
	return 0;
}

/* An entry of .hypertest: home and tmp are emptied, anything else goes. */
static int sweep_private(int dfd, const char *n, unsigned char type, void *ud)
{
	struct sweep *w = ud;
	(void)type;
	if (!strcmp(n, "home") || !strcmp(n, "tmp")) {
		w->found++;
		if (local_rm_contents_at(dfd, n) != 0)
			w->ok = 0;
	} else if (local_rm_rf_at(dfd, n) != 0) {
		w->ok = 0;
	}
	return 0;
}

int local_scratch_clean(int dfd, const char *task_root, size_t nentries)
{
	struct sweep top = {task_root, 0, 1}, priv = {task_root, 0, 1};
	if (local_dir_each(dfd, sweep_top, &top) != 0)
		top.ok = 0;
	/* a link replaced or removed: fewer of ours than entries */
	if (!top.ok || top.found != nentries)
		return -1;
	int pfd = openat(dfd, ".hypertest", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 || local_dir_each(pfd, sweep_private, &priv) != 0)
		priv.ok = 0;
	if (pfd >= 0)
		close(pfd);
	return priv.ok && priv.found == 2 ? 0 : -1;
}

/* Bring a used directory back to its fresh state; 0 when it can be reused. */
static int clean(local_provider *p, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = local_scratch_clean(fd, p->dep.task_root, p->dep.nentries);
	close(fd);
	return rc;
}

/* Pool dir (clean) under a fresh name; 0 when it was. */
static int pool_put(local_provider *p, const char *dir)
{
	char prefix[PREFIX_LEN + 2];
	pool_prefix(p, prefix);
	for (int attempt = 0; attempt < 4; attempt++) {
		char *name = htp_strdupf("%s/%s%ld-%lx-%lu", p->pool_dir, prefix, (long)getpid(),
		                         (unsigned long)(uintptr_t)p, ++p->pool_seq);
		if (!name)
			return -1;
		if (rename(dir, name) == 0) {
			if (pool_push(p, name) == 0)
				return 0;
			/* no room to remember it: the next run will find it */
			free(name);
			return 0;
		}
		free(name);
		if (errno != EEXIST && errno != ENOTEMPTY)
			return -1;
	}
	return -1;
}

char *local_scratch_set_aside(local_provider *p, char *dir)
{
	if (!dir || !p->scratch_base)
		return dir;
	char *name = htp_strdupf("%s/.aside-%ld-%lx-%lu", p->scratch_base, (long)getpid(),
	                         (unsigned long)(uintptr_t)p, ++p->pool_seq);
	if (!name || rename(dir, name) != 0) {
		free(name);
		return dir;
	}
	free(dir);
	return name;
}

void local_scratch_release(local_provider *p, char *dir, int cleaned)
{
	if (!dir)
		return;
	int reusable = p->dep_loaded && p->pool_dir && p->pool_digest &&
	               !strcmp(p->pool_digest, p->dep.digest);
	if (!(reusable && (cleaned || clean(p, dir) == 0) && pool_put(p, dir) == 0) &&
	    local_rm_rf(dir) != 0)
		local_log(p, HYPERTEST_LOG_WARNING, "cannot remove %s: %s", dir,
		          strerror(errno));
	free(dir);
}
