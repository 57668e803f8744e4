/*
 * local-fs.c - file helpers of the local provider: strings and paths,
 * mkdir -p, rm -rf (never following symbolic links), atomic writes through
 * a temporary file and rename(), whole-file reads and copies, PATH lookup.
 * Errors are returned as -1 with errno; callers word the message.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

char *local_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *local_abspath(const char *base, const char *path)
{
	if (path[0] == '/')
		return local_strdup(path);
	if (!base || !*base) {
		char cwd[4096];
		if (!getcwd(cwd, sizeof cwd))
			return NULL;
		return htp_path_join(cwd, path);
	}
	return htp_path_join(base, path);
}

int local_mkdir_p(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 0;
		errno = ENOTDIR;
		return -1;
	}
	char *tmp = local_strdup(path);
	if (!tmp)
		return -1;
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
			free(tmp);
			return -1;
		}
		*s = '/';
	}
	int rc = mkdir(tmp, 0777);
	if (rc != 0 && errno == EEXIST && stat(tmp, &st) == 0 && S_ISDIR(st.st_mode))
		rc = 0;
	free(tmp);
	return rc;
}

/* Empty the directory open as dfd (closed here). */
static int rm_contents(int dfd)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = -1;
			continue;
		}
		int sub = openat(dirfd(d), e->d_name,
		                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 || rm_contents(sub) != 0 ||
		    unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
			rc = -1;
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

int local_dir_each(int dfd, local_dir_fn fn, void *ud)
{
	union {
		struct dirent64 e;
		char b[4096];
	} buf;
	for (;;) {
		ssize_t n = getdents64(dfd, buf.b, sizeof buf.b);
		if (n <= 0)
			return n < 0 ? -1 : 0;
		for (ssize_t off = 0; off < n;) {
			struct dirent64 *e = (struct dirent64 *)(void *)(buf.b + off);
			const char *name = e->d_name;
			off += e->d_reclen;
			if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
				continue;
			int r = fn(dfd, name, e->d_type, ud);
			if (r)
				return r;
		}
	}
}

static int any_entry(int dfd, const char *name, unsigned char type, void *ud)
{
	(void)dfd;
	(void)name;
	(void)type;
	(void)ud;
	return 1;
}

int local_rm_contents_at(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* most often empty: one read says so, without a DIR stream */
	int r = local_dir_each(fd, any_entry, NULL);
	if (r == 0) {
		close(fd);
		return 0;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return rm_contents(fd);
}

int local_rm_rf_at(int dfd, const char *name)
{
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (rm_contents(fd) != 0)
		return -1;
	return unlinkat(dfd, name, AT_REMOVEDIR);
}

int local_rm_rf(const char *path)
{
	return local_rm_rf_at(AT_FDCWD, path);
}

/* A temporary file beside path: its fd, its name in *tmp_out. */
static int open_temp_beside(const char *path, char **tmp_out)
{
	const char *slash = strrchr(path, '/');
	char *tmp = slash ? htp_strdupf("%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1)
	                  : htp_strdupf(".%s.XXXXXX", path);
	if (!tmp)
		return -1;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	(void)fchmod(fd, 0644);
	*tmp_out = tmp;
	return fd;
}

static int commit_temp(int fd, char *tmp, const char *path, int failed)
{
	int saved = errno;
	if (close(fd) != 0 && !failed) {
		failed = 1;
		saved = errno;
	}
	if (!failed && rename(tmp, path) != 0) {
		failed = 1;
		saved = errno;
	}
	if (failed)
		unlink(tmp);
	free(tmp);
	errno = saved;
	return failed ? -1 : 0;
}

static int mkdir_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	char *dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -1;
	int rc = local_mkdir_p(dir);
	free(dir);
	return rc;
}

int local_write_atomic(const char *path, const void *data, size_t len)
{
	char *tmp;
	if (mkdir_parent(path) != 0)
		return -1;
	int fd = open_temp_beside(path, &tmp);
	if (fd < 0)
		return -1;
	int failed = htp_write_all(fd, data, len) != 0;
	return commit_temp(fd, tmp, path, failed);
}

int local_read_file(const char *path, size_t max, char **data, size_t *len)
{
	int e = htp_read_file(path, max, data, len);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

int local_copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	char *tmp;
	int out = mkdir_parent(dst) == 0 ? open_temp_beside(dst, &tmp) : -1;
	if (out < 0) {
		int saved = errno;
		close(in);
		errno = saved;
		return -1;
	}
	char buf[65536];
	int failed = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			failed = r < 0;
			break;
		}
		if (htp_write_all(out, buf, (size_t)r) != 0) {
			failed = 1;
			break;
		}
	}
	int saved = errno;
	close(in);
	errno = saved;
	return commit_temp(out, tmp, dst, failed);
}

char *local_which(const char *name)
{
	struct stat st;
	if (strchr(name, '/'))
		return local_strdup(name);
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char *cand = n ? htp_strdupf("%.*s/%s", (int)n, p, name) : local_strdup(name);
		if (cand && stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
			if (cand[0] != '/') {
				char *abs = local_abspath(NULL, cand);
				free(cand);
				cand = abs;
			}
			return cand;
		}
		free(cand);
		if (!end)
			return NULL;
		p = end + 1;
	}
}
