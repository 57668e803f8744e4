/*
 * local-scratch.c - the working directories of invocations.
 *
 * functionDir/scratch/<testId>/ is where one invocation runs:
 *   <entry> -> <task root>/<entry>   a symbolic link per top-level entry of
 *                                    the deployed task root (/var/task)
 *   .hypertest/home                  HOME
 *   .hypertest/tmp                   TMPDIR
 *   .hypertest/owner                 pid of the orchestrator that made it
 * and whatever the test writes there.
 *
 * Creating and deleting those inodes for every invocation was half the
 * cost of a start on ext4, so directories are recycled: once the process
 * is reaped, its directory is cleaned (what the test wrote is removed,
 * HOME and TMPDIR are emptied) and renamed to scratch/.pool-<pid>-<id>-<n>;
 * the next invocation renames it to its own test id.  A directory whose
 * links the test changed is not reused.  The pool belongs to one provider
 * instance and one deployed image; it is removed on destroy.  Directories
 * left behind by an orchestrator that was killed (its pid is gone) are
 * removed by the next one, at its first invocation.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

#define POOL_MAX 8192

/* Is the process pid gone? */
static int pid_gone(long pid)
{
	return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Remove what killed orchestrators left in scratch/. */
static void sweep(local_provider *p)
{
	DIR *d = opendir(p->scratch_base);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		long pid = 0;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!strncmp(e->d_name, ".pool-", 6)) {
			pid = strtol(e->d_name + 6, NULL, 10);
		} else {
			char *owner = local_asprintf("%s/%s/.hypertest/owner", p->scratch_base, e->d_name);
			char *text = NULL;
			size_t len;
			if (owner && local_read_file(owner, &text, &len) == 0)
				pid = strtol(text, NULL, 10);
			free(text);
			free(owner);
		}
		if (pid_gone(pid)) {
			char *path = local_path_join(p->scratch_base, e->d_name);
			if (path)
				local_rm_rf(path);
			free(path);
		}
	}
	closedir(d);
}

static void pool_clear(local_provider *p)
{
	for (size_t i = 0; i < p->npool; i++) {
		local_rm_rf(p->pool[i]);
		free(p->pool[i]);
	}
	p->npool = 0;
	free(p->pool_root);
	p->pool_root = NULL;
}

void local_scratch_shutdown(local_provider *p)
{
	pool_clear(p);
	free(p->pool);
	p->pool = NULL;
	p->pool_cap = 0;
	free(p->scratch_base);
	p->scratch_base = NULL;
}

/* A new directory at dir; the name of what failed in *failed. */
static int create_fresh(local_provider *p, const char *dir, char **failed)
{
	char *priv = local_path_join(dir, ".hypertest");
	char *home = priv ? local_path_join(priv, "home") : NULL;
	char *tmp = priv ? local_path_join(priv, "tmp") : NULL;
	char *owner = priv ? local_path_join(priv, "owner") : NULL;
	char *link = NULL;
	int rc = -1;
	if (!owner) {
		errno = ENOMEM;
		goto out;
	}
	if (mkdir(dir, 0777) != 0) {
		*failed = local_strdup(dir);
		goto out;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	int fd = -1;
	if (mkdir(priv, 0777) != 0 || mkdir(home, 0777) != 0 || mkdir(tmp, 0777) != 0 ||
	    (fd = open(owner, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
	    write(fd, pid, (size_t)n) != n) {
		*failed = local_strdup(priv);
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	for (size_t i = 0; i < p->dep.nentries; i++) {
		char *target = local_path_join(p->dep.task_root, p->dep.entries[i]);
		link = local_path_join(dir, p->dep.entries[i]);
		if (!target || !link) {
			free(target);
			errno = ENOMEM;
			goto out;
		}
		int r = symlink(target, link);
		free(target);
		if (r != 0) {
			*failed = link;
			link = NULL;
			goto out;
		}
		free(link);
		link = NULL;
	}
	rc = 0;
out:
	free(link);
	free(priv);
	free(home);
	free(tmp);
	free(owner);
	return rc;
}

char *local_scratch_acquire(local_provider *p, const char *name)
{
	if (!p->scratch_base) {
		p->scratch_base = local_path_join(p->function_dir, "scratch");
		if (!p->scratch_base || local_mkdir_p(p->scratch_base) != 0) {
			int e = errno;
			local_fail(p, HYPERTEST_ERR_IO, "local provider: cannot create %s: %s",
			           p->scratch_base ? p->scratch_base : "scratch", strerror(e));
			free(p->scratch_base);
			p->scratch_base = NULL;
			return NULL;
		}
		sweep(p);
	}
	if (p->pool_root && strcmp(p->pool_root, p->dep.task_root) != 0)
		pool_clear(p); /* built for another image */
	char *dir = local_path_join(p->scratch_base, name);
	if (!dir) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "local provider: out of memory");
		return NULL;
	}
	while (p->npool > 0) {
		char *from = p->pool[--p->npool];
		int ok = rename(from, dir) == 0;
		if (!ok && (errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) &&
		    local_rm_rf(dir) == 0)
			ok = rename(from, dir) == 0; /* a stale directory of that name */
		if (!ok)
			local_rm_rf(from);
		free(from);
		if (ok)
			return dir;
	}
	char *failed = NULL;
	if (local_rm_rf(dir) != 0 || create_fresh(p, dir, &failed) != 0) {
		int e = errno;
		local_fail(p, e == ENOMEM ? HYPERTEST_ERR_NOMEM : HYPERTEST_ERR_IO,
		           "local provider: cannot create %s: %s", failed ? failed : dir, strerror(e));
		free(failed);
		local_rm_rf(dir);
		free(dir);
		return NULL;
	}
	return dir;
}

/* Is dir/name our link to the task root's entry? */
static int our_link(local_provider *p, const char *dir, const char *name)
{
	char *link = local_path_join(dir, name);
	char *want = local_path_join(p->dep.task_root, name);
	char got[4096];
	ssize_t n = link ? readlink(link, got, sizeof got - 1) : -1;
	int ok = n > 0 && want && (size_t)n == strlen(want) && !memcmp(got, want, (size_t)n);
	free(link);
	free(want);
	return ok;
}

static int is_entry(local_provider *p, const char *name)
{
	for (size_t i = 0; i < p->dep.nentries; i++)
		if (!strcmp(p->dep.entries[i], name))
			return 1;
	return 0;
}

/* Empty home and tmp, drop anything else in .hypertest but owner. */
static int clean_private(const char *dir)
{
	char *priv = local_path_join(dir, ".hypertest");
	DIR *d = priv ? opendir(priv) : NULL;
	int found = 0, ok = d != NULL;
	struct dirent *e;
	while (ok && (e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "owner"))
			continue;
		char *path = local_path_join(priv, n);
		if (!path)
			ok = 0;
		else if (!strcmp(n, "home") || !strcmp(n, "tmp"))
			ok = local_rm_contents(path) == 0, found++;
		else
			ok = local_rm_rf(path) == 0;
		free(path);
	}
	if (d)
		closedir(d);
	free(priv);
	return ok && found == 2;
}

/* Bring a used directory back to its fresh state; 0 when it can be reused. */
static int clean(local_provider *p, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	size_t links = 0;
	int ok = 1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, ".hypertest"))
			continue;
		if (is_entry(p, n)) {
			if (our_link(p, dir, n)) {
				links++;
				continue;
			}
			ok = 0; /* the test replaced one of the links */
		}
		char *path = local_path_join(dir, n);
		if (!path || local_rm_rf(path) != 0)
			ok = 0;
		free(path);
	}
	closedir(d);
	return ok && links == p->dep.nentries && clean_private(dir) ? 0 : -1;
}

void local_scratch_release(local_provider *p, char *dir)
{
	if (!dir)
		return;
	char *pooled = NULL;
	if (p->pool_root && (!p->dep_loaded || strcmp(p->pool_root, p->dep.task_root) != 0))
		pool_clear(p); /* built for another image */
	if (p->dep_loaded && p->npool < POOL_MAX && clean(p, dir) == 0)
		pooled = local_asprintf("%s/.pool-%ld-%lx-%lu", p->scratch_base, (long)getpid(),
		                        (unsigned long)(uintptr_t)p, ++p->pool_seq);
	if (pooled && p->npool == p->pool_cap) {
		size_t ncap = p->pool_cap ? p->pool_cap * 2 : 64;
		char **np = realloc(p->pool, ncap * sizeof *np);
		if (np) {
			p->pool = np;
			p->pool_cap = ncap;
		}
	}
	if (pooled && p->npool < p->pool_cap && rename(dir, pooled) == 0) {
		if (!p->pool_root)
			p->pool_root = local_strdup(p->dep.task_root);
		p->pool[p->npool++] = pooled;
		pooled = NULL;
	} else if (local_rm_rf(dir) != 0) {
		local_log(p, HYPERTEST_LOG_WARNING, "local provider: cannot remove %s: %s", dir,
		          strerror(errno));
	}
	free(pooled);
	free(dir);
}
