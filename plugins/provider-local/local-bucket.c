/*
 * local-bucket.c - the local provider's bucket: a directory (bucketDir)
 * whose files are the objects, {bucket}/{key}.  Keys are checked so that
 * none escapes the directory; objects are written atomically (temporary
 * file + rename, parent directories created).  On the function side the
 * bucket is $HYPERTEST_LOCAL_BUCKET, set by the orchestrator.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"

const char *local_key_problem(const char *key)
{
	if (!key || !*key)
		return "is empty";
	if (key[0] == '/')
		return "is an absolute path";
	for (const char *s = key;;) {
		const char *end = strchr(s, '/');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		if (n == 0)
			return "has an empty segment";
		if (n == 2 && s[0] == '.' && s[1] == '.')
			return "has a '..' segment";
		if (n == 1 && s[0] == '.')
			return "has a '.' segment";
		if (!end)
			return NULL;
		s = end + 1;
	}
}

/* bucket/key after checking key; NULL with the error set. */
static char *object_path(local_provider *p, const char *bucket, const char *key)
{
	const char *why = local_key_problem(key);
	if (why) {
		local_fail(p, HYPERTEST_ERR_INVALID, "object key '%s' %s",
		           key ? key : "", why);
		return NULL;
	}
	char *path = htp_path_join(bucket, key);
	if (!path)
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	return path;
}

int local_object_put(void *self, const char *key, const void *data, size_t len,
                     const char *content_type)
{
	local_provider *p = self;
	(void)content_type;
	char *path = object_path(p, p->bucket_dir, key);
	if (!path)
		return HYPERTEST_ERR_INVALID;
	int rc = 0;
	if (local_write_atomic(path, data, len) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot write object %s: %s",
		                path, strerror(errno));
	free(path);
	return rc;
}

int local_object_get(void *self, const char *key, hypertest_buffer *out)
{
	local_provider *p = self;
	char *path = object_path(p, p->bucket_dir, key);
	if (!path)
		return HYPERTEST_ERR_INVALID;
	char *data;
	size_t len;
	int rc = 0;
	if (local_read_file(path, LOCAL_OBJECT_MAX, &data, &len) != 0) {
		int e = errno;
		if (e == EFBIG)
			rc = local_fail(p, HYPERTEST_ERR_IO, "cannot read object %s: larger than %zu MiB, "
			                "the limit for an object read whole from the bucket", path,
			                LOCAL_OBJECT_MAX >> 20);
		else
			rc = local_fail(p, e == ENOENT || e == ENOTDIR ? HYPERTEST_ERR_NOT_FOUND
			                                               : HYPERTEST_ERR_IO,
			                "cannot read object %s: %s", path,
			                e == EINVAL ? "not a regular file" : strerror(e));
	} else {
		if (p->up.buffer_append(out, data, len) != 0)
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		free(data);
	}
	free(path);
	return rc;
}

int local_object_url(void *self, const char *key, hypertest_buffer *url)
{
	local_provider *p = self;
	char *path = object_path(p, p->bucket_dir, key);
	if (!path)
		return HYPERTEST_ERR_INVALID;
	int rc = 0;
	if (p->up.buffer_append(url, path, strlen(path)) != 0)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	free(path);
	return rc;
}

/* Every regular file below the directory at (at, name), shown as path in
 * errors, key prefix rel, whose key starts with prefix.  Symbolic links are
 * not followed.  Each directory is opened relative to its parent's
 * descriptor and each entry looked at relative to its own, and d_type
 * spares the stat of a directory: a run's listing (a directory and two
 * logs per test) walks no path twice. */
static int list_tree(local_provider *p, int at, const char *name, const char *path,
                     const char *rel, const char *prefix, hypertest_params *objects, int depth)
{
	/* the bucket itself may be a symbolic link; nothing below it is followed */
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (depth ? O_NOFOLLOW : 0));
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (e == ENOENT || e == ENOTDIR || (e == ELOOP && depth > 0))
			return 0; /* gone, or a symbolic link below the bucket: not an object */
		return local_fail(p, HYPERTEST_ERR_IO, "cannot read directory %s: %s", path,
		                  strerror(e));
	}
	size_t pl = strlen(prefix);
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue; /* ".", ".." and the atomic writes' temporary files */
		char *key = *rel ? htp_path_join(rel, e->d_name) : strdup(e->d_name);
		if (!key) {
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
			break;
		}
		size_t kl = strlen(key);
		/* descend only where the prefix can still match */
		int match = !strncmp(key, prefix, kl < pl ? kl : pl);
		struct stat st;
		unsigned char type = e->d_type;
		if (match && (type == DT_UNKNOWN || type == DT_REG)) {
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				char *full = htp_path_join(path, e->d_name);
				rc = errno == ENOENT ? 0 /* removed meanwhile */
				     : local_fail(p, HYPERTEST_ERR_IO, "cannot read %s: %s",
				                  full ? full : e->d_name, strerror(errno));
				free(full);
				free(key);
				continue;
			}
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		}
		if (match && type == DT_DIR && depth < 64) {
			char *sub = htp_path_join(path, e->d_name);
			rc = sub ? list_tree(p, dirfd(d), e->d_name, sub, key, prefix, objects, depth + 1)
			         : local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
			free(sub);
		} else if (match && type == DT_REG && kl >= pl) {
			char size[32];
			snprintf(size, sizeof size, "%lld", (long long)st.st_size);
			if (p->up.param_set(objects, key, size) != 0)
				rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		}
		free(key);
	}
	closedir(d);
	return rc;
}

int local_object_list(void *self, const char *prefix, hypertest_params *objects)
{
	local_provider *p = self;
	return list_tree(p, AT_FDCWD, p->bucket_dir, p->bucket_dir, "", prefix ? prefix : "", objects,
	                 0);
}

/* Why an entry that is neither a directory nor a regular file is not
 * stored (lst is its lstat).  The same rules as the aws provider's upload:
 * symbolic links are never followed, so nothing outside the artifacts
 * directory is stored and no loop can make the copy endless. */
static const char *not_stored_why(const char *path, const struct stat *lst)
{
	struct stat st;
	if (S_ISLNK(lst->st_mode)) {
		if (stat(path, &st) != 0)
			return errno == ELOOP ? "a symbolic link loop" : "a dangling symbolic link";
		return "a symbolic link (links are not followed)";
	}
	if (S_ISFIFO(lst->st_mode))
		return "a FIFO (only regular files and directories are stored)";
	if (S_ISSOCK(lst->st_mode))
		return "a socket (only regular files and directories are stored)";
	return "a device (only regular files and directories are stored)";
}

/* Copy the tree below src into dst (created): regular files and
 * directories.  Every entry that cannot be stored is logged as a warning
 * ("artifact REL: not stored: why"), which the core adds to the test's
 * result, and the copy goes on; *lost counts them. */
static void copy_tree(local_provider *p, const char *src, const char *dst, const char *rel,
                      size_t *lost)
{
	DIR *d = opendir(src);
	if (!d) {
		local_log(p, HYPERTEST_LOG_WARNING, "artifact %s: not stored: %s", *rel ? rel : ".",
		          strerror(errno));
		(*lost)++;
		return;
	}
	if (local_mkdir_p(dst) != 0) {
		local_log(p, HYPERTEST_LOG_WARNING, "artifact %s: not stored: cannot create %s: %s",
		          *rel ? rel : ".", dst, strerror(errno));
		(*lost)++;
		closedir(d);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *from = htp_path_join(src, e->d_name);
		char *to = htp_path_join(dst, e->d_name);
		char *sub = *rel ? htp_path_join(rel, e->d_name) : strdup(e->d_name);
		struct stat lst;
		if (!from || !to || !sub) {
			local_log(p, HYPERTEST_LOG_WARNING, "artifact %s: not stored: out of memory",
			          e->d_name);
			(*lost)++;
		} else if (lstat(from, &lst) != 0) {
			local_log(p, HYPERTEST_LOG_WARNING, "artifact %s: not stored: %s", sub,
			          strerror(errno));
			(*lost)++;
		} else if (S_ISDIR(lst.st_mode)) {
			copy_tree(p, from, to, sub, lost);
		} else if (S_ISREG(lst.st_mode)) {
			if (local_copy_file(from, to) != 0) {
				local_log(p, HYPERTEST_LOG_WARNING, "artifact %s: not stored: %s", sub,
				          strerror(errno));
				(*lost)++;
			}
		} else {
			local_log(p, HYPERTEST_LOG_WARNING, "artifact %s: not stored: %s", sub,
			          not_stored_why(from, &lst));
			(*lost)++;
		}
		free(from);
		free(to);
		free(sub);
	}
	closedir(d);
}

/* This process's umask (/proc/self/status; the umask() call would change
 * it), -1 when unknown. */
static int current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int mask = -1;
	unsigned int m;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "Umask: %o", &m) == 1) {
			mask = (int)(m & 0777);
			break;
		}
	if (f)
		fclose(f);
	return mask;
}

void local_umask_remember(local_provider *p)
{
	int mask = current_umask();
	p->umask_known = mask >= 0;
	p->umask_value = (mode_t)(mask >= 0 ? mask : 0);
}

/* Can the tree below a directory go into the bucket as it is?  Only
 * regular files with one link (a test's hard link to a file elsewhere must
 * not be chmod()ed) and directories, owned by this user; they get the modes
 * a copy would have (files 0644, directories dir_mode), with a chmod only
 * where the mode differs.  Anything else: a copy, which says what it cannot
 * store.  Relative to descriptors, so that no path is walked twice. */
struct move_check {
	mode_t dir_mode;
	uid_t uid;
	int depth;
	int ok;
};

static int prepare_dir(int fd, mode_t mode, struct move_check *m);

static int prepare_entry(int dfd, const char *name, unsigned char type, void *ud)
{
	struct move_check *m = ud;
	struct stat st;
	(void)type;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != m->uid) {
		m->ok = 0;
	} else if (S_ISDIR(st.st_mode)) {
		int fd =
		    m->depth < 64 ? openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
		struct move_check sub = {m->dir_mode, m->uid, m->depth + 1, 1};
		if (fd < 0 || prepare_dir(fd, st.st_mode, &sub) != 0)
			m->ok = 0;
		if (fd >= 0)
			close(fd);
	} else if (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	           ((st.st_mode & 07777) != 0644 && fchmodat(dfd, name, 0644, 0) != 0)) {
		m->ok = 0;
	}
	return !m->ok; /* stop at the first that cannot move */
}

/* The directory open as fd, of mode mode: its tree, then itself. */
static int prepare_dir(int fd, mode_t mode, struct move_check *m)
{
	if (local_dir_each(fd, prepare_entry, m) != 0 || !m->ok)
		return -1;
	return (mode & 07777) == m->dir_mode || fchmod(fd, m->dir_mode) == 0 ? 0 : -1;
}

/* The artifacts directory is the function's own and is removed once the
 * store returns (plugin.h): when the bucket is on the same file system, the
 * directory is renamed into it whole.  Nothing is copied and no file is
 * created or deleted, which on a busy ext4 costs more than running a
 * short test.  0 when moved; -1: copy it. */
static int move_tree(local_provider *p, const char *dir, const char *dst)
{
	int mask = p->umask_known ? (int)p->umask_value : current_umask();
	struct stat top, parent;
	char *up = strdup(dst), *slash = up ? strrchr(up, '/') : NULL;
	int rc = -1;
	if (mask < 0 || !slash || slash == up || lstat(dir, &top) != 0 || !S_ISDIR(top.st_mode))
		goto out;
	*slash = '\0';
	if ((stat(up, &parent) != 0 &&
	     (errno != ENOENT || local_mkdir_p(up) != 0 || stat(up, &parent) != 0)) ||
	    !S_ISDIR(parent.st_mode) || parent.st_dev != top.st_dev)
		goto out;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct move_check m = {(mode_t)(0777 & ~mask), geteuid(), 0, 1};
	int ready = fd >= 0 && prepare_dir(fd, top.st_mode, &m) == 0;
	if (fd >= 0)
		close(fd);
	if (!ready)
		goto out;
	/* never onto what is there: an existing key is merged by the copy */
	rc = renameat2(AT_FDCWD, dir, AT_FDCWD, dst, RENAME_NOREPLACE) == 0 ? 0 : -1;
out:
	free(up);
	return rc;
}

int local_artifacts_store(void *self, const char *prefix, const char *dir)
{
	local_provider *p = self;
	const char *env = getenv("HYPERTEST_LOCAL_BUCKET");
	const char *bucket = env && *env ? env : p->bucket_dir;
	char *dst = object_path(p, bucket, prefix);
	if (!dst)
		return HYPERTEST_ERR_INVALID;
	size_t lost = 0;
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		int rc = local_fail(p, HYPERTEST_ERR_IO, "artifacts %s: %s", dir,
		                    errno && !S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
		free(dst);
		return rc;
	}
	if (move_tree(p, dir, dst) != 0)
		copy_tree(p, dir, dst, "", &lost);
	free(dst);
	return 0;
}
