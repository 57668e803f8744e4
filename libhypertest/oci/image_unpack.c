/*
 * image_unpack.c - layers extracted into a directory as a container runtime
 * stacks them: OCI whiteouts, paths resolved inside the directory (symbolic
 * links followed as if it were the root), modes kept but for setuid, setgid
 * and sticky bits, no chown.
 *
 * Every operation, the deferred directory modes included, works on a
 * directory opened beneath the root at that moment (openat2 with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or a walk with O_NOFOLLOW where
 * the kernel lacks it) and names one component in it: a symbolic link that
 * an entry put where a directory was is never followed out of the root.
 * The root itself is made mode 0700.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include <archive.h>
#include <archive_entry.h>

#include "image_unpack.h"
#include "oci_layout.h"

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* A set of paths (open addressing): what the current layer has put down,
 * which its own whiteouts must not remove. */
struct pathset {
	char **slot;
	size_t cap, n;
};

static size_t path_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int pathset_has(const struct pathset *ps, const char *p)
{
	if (!ps->cap)
		return 0;
	for (size_t i = path_hash(p) & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
		if (!ps->slot[i])
			return 0;
		if (!strcmp(ps->slot[i], p))
			return 1;
	}
}

static int pathset_add(struct pathset *ps, const char *p)
{
	if (pathset_has(ps, p))
		return 0;
	if ((ps->n + 1) * 2 > ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 256;
		char **slot = calloc(cap, sizeof *slot);
		if (!slot)
			return -1;
		for (size_t i = 0; i < ps->cap; i++) {
			if (!ps->slot[i])
				continue;
			size_t j = path_hash(ps->slot[i]) & (cap - 1);
			while (slot[j])
				j = (j + 1) & (cap - 1);
			slot[j] = ps->slot[i];
		}
		free(ps->slot);
		ps->slot = slot;
		ps->cap = cap;
	}
	char *copy = ht_strdup(p);
	if (!copy)
		return -1;
	size_t i = path_hash(p) & (ps->cap - 1);
	while (ps->slot[i])
		i = (i + 1) & (ps->cap - 1);
	ps->slot[i] = copy;
	ps->n++;
	return 0;
}

static void pathset_clear(struct pathset *ps)
{
	for (size_t i = 0; i < ps->cap; i++)
		free(ps->slot[i]);
	free(ps->slot);
	memset(ps, 0, sizeof *ps);
}

struct dirmode {
	char *path; /* relative to dest */
	unsigned mode;
	size_t seq;
};

struct ht_unpack {
	char *dest;
	int root;            /* dest, opened: every operation is relative to it */
	int no_openat2;      /* the kernel has no openat2: walk with O_NOFOLLOW */
	const char *layout;
	const char *layer;   /* digest of the layer being extracted */
	const char *entry;   /* path of the entry being extracted */
	struct pathset done; /* paths the current layer created */
	struct dirmode *dirs; /* directory modes, applied at the end */
	size_t n_dirs, cap_dirs;
	ht_err *err;
};

static int entry_err(ht_unpack *u, int code, const char *fmt, ...) HT_PRINTF(3, 4);
static int entry_err(ht_unpack *u, int code, const char *fmt, ...)
{
	char what[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return ht_err_set(u->err, code, "%s: layer %s: entry '%s': %s", u->layout, u->layer,
	                  u->entry ? u->entry : "?", what);
}

static int io_err(ht_unpack *u, const char *rel, const char *op)
{
	return entry_err(u, HYPERTEST_ERR_IO, "%s %s/%s: %s", op, u->dest, rel, strerror(errno));
}

/* ---- opening beneath the root ------------------------------------------------ */

/* Open rel ("" for the root itself) below the root, never through a
 * symbolic link (the last component included) and never out of the root:
 * openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS where the kernel has
 * it, otherwise one component at a time with O_NOFOLLOW.  -1 with errno
 * (ELOOP or ENOTDIR where a component is a link, EXDEV for ".."). */
static int open_beneath(ht_unpack *u, const char *rel, int flags)
{
	flags |= O_CLOEXEC | O_NOFOLLOW;
	if (!*rel)
		return openat(u->root, ".", flags);
#ifdef SYS_openat2
	if (!u->no_openat2) {
		struct open_how how;
		memset(&how, 0, sizeof how);
		how.flags = (unsigned)flags;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
		long fd = syscall(SYS_openat2, u->root, rel, &how, sizeof how);
		if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)fd;
		if (errno == ENOSYS)
			u->no_openat2 = 1;
	}
#endif
	int cur = dup(u->root);
	const char *p = rel;
	while (cur >= 0) {
		size_t n = strcspn(p, "/");
		char comp[NAME_MAX + 1];
		if (n > NAME_MAX) {
			close(cur);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		while (*p == '/')
			p++;
		if (!strcmp(comp, "..")) {
			close(cur);
			errno = EXDEV;
			return -1;
		}
		int last = !*p;
		int next = openat(cur, n ? comp : ".",
		                  last ? flags : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(cur);
		errno = e;
		cur = next;
		if (last)
			break;
	}
	return cur;
}

/* The directory of rel, opened beneath the root, and the last component
 * of rel in *name (a pointer into rel). */
static int open_parent(ht_unpack *u, const char *rel, const char **name)
{
	const char *slash = strrchr(rel, '/');
	*name = slash ? slash + 1 : rel;
	if (!slash)
		return open_beneath(u, "", O_RDONLY | O_DIRECTORY);
	char *dir = strndup(rel, (size_t)(slash - rel));
	if (!dir) {
		errno = ENOMEM;
		return -1;
	}
	int fd = open_beneath(u, dir, O_RDONLY | O_DIRECTORY);
	int e = errno;
	free(dir);
	errno = e;
	return fd;
}

/* Remove name in directory dfd, a whole tree for a directory (never
 * following a link: each directory is opened with O_NOFOLLOW). */
static int rm_at(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchmod(fd, 0700) != 0) { /* it goes: make sure we may empty it */
		close(fd);
		return -1;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			rc = rm_at(dirfd(d), de->d_name);
	int e = errno;
	closedir(d);
	errno = e;
	if (rc)
		return rc;
	return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

/* ---- paths -------------------------------------------------------------------- */

/* Split an archive path into its components ("." and empty ones dropped).
 * Returns -1 for an absolute path or a ".." component. */
static int clean_archive_path(const char *p, ht_buf *out)
{
	if (p[0] == '/')
		return -1;
	ht_buf_append(out, "", 0);
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n && !(n == 1 && p[0] == '.')) {
			if (out->len && ht_buf_append(out, "/", 1) != 0)
				return -2;
			if (ht_buf_append(out, p, n) != 0)
				return -2;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* What component comp of the resolved directory res is: 0 absent or not
 * a link (*target left alone), 1 a symbolic link (its target in target),
 * -1 with errno. */
static int component_link(ht_unpack *u, const char *res, const char *comp, char *target,
                          size_t size)
{
	int dfd = open_beneath(u, res, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	struct stat st;
	int rc = 0;
	if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
		ssize_t tl = readlinkat(dfd, comp, target, size - 1);
		if (tl < 0) {
			rc = -1;
		} else {
			target[tl] = '\0';
			rc = 1;
		}
	}
	int e = errno;
	close(dfd);
	errno = e;
	return rc;
}

/* Resolve directory path rel (components separated by '/') inside dest the
 * way the container sees it: symbolic links are followed, but as if dest
 * were the root ("/" and ".." never leave it).  *out gets the real relative
 * path, whose existing components are all directories or missing.  Each
 * component is looked at in its directory opened beneath the root. */
static int resolve_in_root(ht_unpack *u, const char *rel, char **out)
{
	ht_buf res = HT_BUF_INIT;
	char *pending = ht_strdup(rel);
	int links = 0, rc = 0;
	if (!pending || ht_buf_append(&res, "", 0) != 0) {
		free(pending);
		return nomem(u->err);
	}
	size_t pos = 0;
	while (!rc && pending[pos]) {
		while (pending[pos] == '/')
			pos++;
		if (!pending[pos])
			break;
		size_t n = strcspn(pending + pos, "/");
		char *comp = strndup(pending + pos, n);
		pos += n;
		if (!comp) {
			rc = nomem(u->err);
			break;
		}
		if (!strcmp(comp, ".")) {
			free(comp);
			continue;
		}
		if (!strcmp(comp, "..")) {
			char *slash = strrchr(res.data, '/');
			res.len = slash ? (size_t)(slash - res.data) : 0;
			res.data[res.len] = '\0';
			free(comp);
			continue;
		}
		char target[4096];
		int kind = component_link(u, res.data, comp, target, sizeof target);
		if (kind < 0 || (kind == 1 && ++links > 40)) {
			rc = entry_err(u, HYPERTEST_ERR_IMAGE, "%s%s%s: %s", res.data,
			               res.len ? "/" : "", comp,
			               kind < 0 ? strerror(errno) : "too many symbolic links");
			free(comp);
			break;
		}
		if (kind == 1) {
			/* continue with the target, then what was left */
			char *np = ht_asprintf("%s/%s", target, pending + pos);
			free(comp);
			if (!np) {
				rc = nomem(u->err);
				break;
			}
			free(pending);
			pending = np;
			pos = 0;
			if (target[0] == '/')
				res.len = 0;
			res.data[res.len] = '\0';
			continue;
		}
		if ((res.len && ht_buf_append(&res, "/", 1) != 0) || ht_buf_puts(&res, comp) != 0)
			rc = nomem(u->err);
		free(comp);
	}
	free(pending);
	if (rc) {
		ht_buf_free(&res);
		return rc;
	}
	*out = ht_buf_steal(&res);
	return *out ? 0 : nomem(u->err);
}

/* Create the missing directories of rel (already resolved), one component
 * at a time below the root; the last one opened in *fd_out. */
static int make_dirs(ht_unpack *u, const char *rel, int *fd_out)
{
	int cur = open_beneath(u, "", O_RDONLY | O_DIRECTORY);
	if (cur < 0)
		return io_err(u, "", "open");
	for (const char *p = rel; *p;) {
		size_t n = strcspn(p, "/");
		char comp[NAME_MAX + 1];
		if (n > NAME_MAX) {
			close(cur);
			return entry_err(u, HYPERTEST_ERR_IMAGE, "a component of /%s is too long", rel);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && (mkdirat(cur, comp, 0755) == 0 || errno == EEXIST))
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(cur);
		if (next < 0) {
			errno = e;
			return e == ENOTDIR || e == ELOOP
			           ? entry_err(u, HYPERTEST_ERR_IMAGE, "/%.*s is not a directory",
			                       (int)(p - rel + (ptrdiff_t)n), rel)
			           : io_err(u, rel, "mkdir");
		}
		cur = next;
		p += n;
		while (*p == '/')
			p++;
	}
	*fd_out = cur;
	return 0;
}

/* Remove the children of directory rel that the current layer did not
 * create (an opaque whiteout), descending into its own directories. */
static int clear_dir(ht_unpack *u, const char *rel)
{
	int fd = open_beneath(u, rel, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0
		                                                           : io_err(u, rel, "open");
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return io_err(u, rel, "opendir");
	}
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *child = *rel ? ht_asprintf("%s/%s", rel, de->d_name) : ht_strdup(de->d_name);
		struct stat st;
		if (!child)
			rc = nomem(u->err);
		else if (!pathset_has(&u->done, child))
			rc = rm_at(dirfd(d), de->d_name) ? io_err(u, child, "remove") : 0;
		else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		         S_ISDIR(st.st_mode))
			rc = clear_dir(u, child);
		free(child);
	}
	closedir(d);
	return rc;
}

/* Make room for a new entry name in directory dfd: a directory stays for
 * a directory, anything else goes. */
static int clear_slot(ht_unpack *u, int dfd, const char *name, const char *rel, int keep_dir)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (keep_dir && S_ISDIR(st.st_mode))
		return 0;
	return rm_at(dfd, name) ? io_err(u, rel, "remove") : 0;
}

static int record_dir(ht_unpack *u, const char *rel, unsigned mode)
{
	if (u->n_dirs == u->cap_dirs) {
		size_t cap = u->cap_dirs ? u->cap_dirs * 2 : 64;
		struct dirmode *n = realloc(u->dirs, cap * sizeof *n);
		if (!n)
			return nomem(u->err);
		u->dirs = n;
		u->cap_dirs = cap;
	}
	char *p = ht_strdup(rel);
	if (!p)
		return nomem(u->err);
	u->dirs[u->n_dirs] = (struct dirmode){p, mode, u->n_dirs};
	u->n_dirs++;
	return 0;
}

/* Whether a relative symlink target, seen from directory rel, stays inside
 * the root. */
static int link_stays_inside(const char *rel, const char *target)
{
	long depth = 0;
	for (const char *p = rel; *p;) {
		const char *e = strchr(p, '/');
		depth++;
		if (!e)
			break;
		p = e + 1;
	}
	for (const char *p = target; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0)
				return 0;
		} else if (n && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int write_data(ht_unpack *u, struct archive *a, int fd, const char *rel)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r != ARCHIVE_OK)
			return entry_err(u, HYPERTEST_ERR_IMAGE, "%s", archive_error_string(a));
		if (lseek(fd, (off_t)off, SEEK_SET) < 0)
			return io_err(u, rel, "seek");
		const char *p = buf;
		while (len > 0) {
			ssize_t n = write(fd, p, len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return io_err(u, rel, "write");
			p += n;
			len -= (size_t)n;
		}
	}
}

/* ---- one entry ------------------------------------------------------------------ */

/* What an entry is extracted with: its directory (resolved, opened, made
 * when missing), its name in it and its path below the root. */
struct slot {
	int dfd;
	const char *name;
	const char *parent; /* resolved, relative to the root */
	char *rel;          /* parent/name */
};

/* ".wh.NAME" removes NAME of a lower layer, ".wh..wh..opq" empties its
 * directory of what lower layers put there; NAME must be a name. */
static int extract_whiteout(ht_unpack *u, const char *parent, const char *name)
{
	if (!strcmp(name, ".wh..wh..opq"))
		return clear_dir(u, parent);
	if (!strncmp(name, ".wh..wh.", 8)) /* other .wh..wh.* are aufs bookkeeping */
		return 0;
	const char *victim = name + 4;
	if (!*victim || !strcmp(victim, ".") || !strcmp(victim, "..") || strchr(victim, '/'))
		return entry_err(u, HYPERTEST_ERR_IMAGE, "whiteout of '%s' refused: not a name in "
		                 "its directory", victim);
	char *rel = *parent ? ht_asprintf("%s/%s", parent, victim) : ht_strdup(victim);
	if (!rel)
		return nomem(u->err);
	int rc = 0;
	if (!pathset_has(&u->done, rel)) {
		int dfd = open_beneath(u, parent, O_RDONLY | O_DIRECTORY);
		if (dfd < 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			rc = io_err(u, parent, "open");
		else if (dfd >= 0 && rm_at(dfd, victim) != 0)
			rc = io_err(u, rel, "remove");
		if (dfd >= 0)
			close(dfd);
	}
	free(rel);
	return rc;
}

/* A hard link to an entry already extracted (its path resolved as the
 * entry's own). */
static int extract_hardlink(ht_unpack *u, const struct slot *s, const char *hardlink)
{
	ht_buf lclean = HT_BUF_INIT;
	char *lparent = NULL, *lrel = NULL;
	int lfd = -1;
	int rc = clean_archive_path(hardlink, &lclean);
	if (rc || lclean.len == 0) {
		rc = rc == -2 ? nomem(u->err)
		              : entry_err(u, HYPERTEST_ERR_IMAGE,
		                          "hard link to '%s' outside the image refused", hardlink);
		goto out;
	}
	char *ls = strrchr(lclean.data, '/');
	if (ls)
		*ls = '\0';
	if ((rc = resolve_in_root(u, ls ? lclean.data : "", &lparent)) != 0)
		goto out;
	const char *lname = ls ? ls + 1 : lclean.data;
	lrel = *lparent ? ht_asprintf("%s/%s", lparent, lname) : ht_strdup(lname);
	if (!lrel) {
		rc = nomem(u->err);
		goto out;
	}
	const char *ln;
	struct stat st;
	lfd = open_parent(u, lrel, &ln);
	if (lfd < 0 || fstatat(lfd, ln, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode)) {
		rc = entry_err(u, HYPERTEST_ERR_IMAGE, "hard link to missing or directory '%s'",
		               hardlink);
		goto out;
	}
	if (!strcmp(lrel, s->rel))
		goto out;
	if ((rc = clear_slot(u, s->dfd, s->name, s->rel, 0)) != 0)
		goto out;
	if (linkat(lfd, ln, s->dfd, s->name, 0) != 0)
		rc = io_err(u, s->rel, "link");
out:
	if (lfd >= 0)
		close(lfd);
	free(lparent);
	free(lrel);
	ht_buf_free(&lclean);
	return rc;
}

/* A directory: writable and searchable for us until the end, its mode
 * recorded for ht_unpack_finish. */
static int extract_dir(ht_unpack *u, const struct slot *s, unsigned mode)
{
	int rc = clear_slot(u, s->dfd, s->name, s->rel, 1);
	if (rc)
		return rc;
	if (mkdirat(s->dfd, s->name, 0700) != 0 && errno != EEXIST)
		return io_err(u, s->rel, "mkdir");
	int fd = openat(s->dfd, s->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return io_err(u, s->rel, "open");
	rc = fchmod(fd, mode | 0700) != 0 ? io_err(u, s->rel, "chmod") : 0;
	close(fd);
	return rc ? rc : record_dir(u, s->rel, mode);
}

static int extract_file(ht_unpack *u, const struct slot *s, struct archive *a,
                        struct archive_entry *e, unsigned mode)
{
	int rc = clear_slot(u, s->dfd, s->name, s->rel, 0);
	if (rc)
		return rc;
	int fd = openat(s->dfd, s->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_err(u, s->rel, "create");
	rc = write_data(u, a, fd, s->rel);
	if (!rc && archive_entry_size(e) >= 0 && ftruncate(fd, archive_entry_size(e)) != 0)
		rc = io_err(u, s->rel, "truncate");
	if (!rc && fchmod(fd, mode) != 0)
		rc = io_err(u, s->rel, "chmod");
	if (close(fd) != 0 && !rc)
		rc = io_err(u, s->rel, "close");
	return rc;
}

static int extract_symlink(ht_unpack *u, const struct slot *s, const char *target)
{
	if (!target || !*target)
		return entry_err(u, HYPERTEST_ERR_IMAGE, "symbolic link without a target");
	if (target[0] != '/' && !link_stays_inside(s->parent, target))
		return entry_err(u, HYPERTEST_ERR_IMAGE,
		                 "symbolic link to '%s' points outside the image", target);
	/* an absolute target is kept: it means the image's root */
	int rc = clear_slot(u, s->dfd, s->name, s->rel, 0);
	if (!rc && symlinkat(target, s->dfd, s->name) != 0)
		rc = io_err(u, s->rel, "symlink");
	return rc;
}

static int extract_fifo(ht_unpack *u, const struct slot *s, unsigned mode)
{
	int rc = clear_slot(u, s->dfd, s->name, s->rel, 0);
	if (!rc && mkfifoat(s->dfd, s->name, mode) != 0)
		rc = io_err(u, s->rel, "mkfifo");
	return rc;
}

static int extract_entry(ht_unpack *u, struct archive *a, struct archive_entry *e)
{
	ht_buf clean = HT_BUF_INIT;
	char *parent = NULL;
	struct slot s = {-1, NULL, NULL, NULL};
	int rc = clean_archive_path(archive_entry_pathname(e), &clean);
	if (rc == -2)
		rc = nomem(u->err);
	else if (rc == -1)
		rc = entry_err(u, HYPERTEST_ERR_IMAGE, "absolute path or '..' component refused");
	if (rc || clean.len == 0) /* the root itself */
		goto out;
	char *slash = strrchr(clean.data, '/');
	s.name = slash ? slash + 1 : clean.data;
	if (slash)
		*slash = '\0';
	if ((rc = resolve_in_root(u, slash ? clean.data : "", &parent)) != 0)
		goto out;
	s.parent = parent;
	if (!strncmp(s.name, ".wh.", 4)) {
		rc = extract_whiteout(u, parent, s.name);
		goto out;
	}
	if ((rc = make_dirs(u, parent, &s.dfd)) != 0)
		goto out;
	if (!(s.rel = *parent ? ht_asprintf("%s/%s", parent, s.name) : ht_strdup(s.name))) {
		rc = nomem(u->err);
		goto out;
	}
	/* setuid, setgid and sticky bits are never kept: no chown is done, and
	 * nothing run from the unpacked tree should gain privileges from it */
	unsigned mode = archive_entry_perm(e) & 0777;
	unsigned type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);
	if (hardlink)
		rc = extract_hardlink(u, &s, hardlink);
	else if (type == AE_IFDIR)
		rc = extract_dir(u, &s, mode);
	else if (type == AE_IFREG)
		rc = extract_file(u, &s, a, e, mode);
	else if (type == AE_IFLNK)
		rc = extract_symlink(u, &s, archive_entry_symlink(e));
	else if (type == AE_IFIFO)
		rc = extract_fifo(u, &s, mode);
	else
		goto out; /* devices and sockets need privileges we may not have */
	if (!rc && pathset_add(&u->done, s.rel) != 0)
		rc = nomem(u->err);
out:
	if (s.dfd >= 0)
		close(s.dfd);
	ht_buf_free(&clean);
	free(parent);
	free(s.rel);
	return rc;
}

/* ---- layers ---------------------------------------------------------------------- */

struct layer_src {
	ht_oci_blob_reader *r;
	char buf[65536];
	ht_err err;
	int failed;
};

static la_ssize_t layer_read(struct archive *a, void *client, const void **buf)
{
	struct layer_src *s = client;
	ssize_t n = ht_oci_blob_reader_read(s->r, s->buf, sizeof s->buf, &s->err);
	if (n < 0) {
		s->failed = 1;
		archive_set_error(a, EIO, "%s", s->err.msg);
		return -1;
	}
	*buf = s->buf;
	return n;
}

int ht_unpack_layer(ht_unpack *u, const char *src, const char *digest, long long size,
                    ht_err *err)
{
	u->err = err;
	u->layout = src;
	u->layer = digest;
	u->entry = NULL;
	struct layer_src *s = calloc(1, sizeof *s);
	if (!s)
		return nomem(u->err);
	int rc = ht_oci_blob_open(src, digest, size, &s->r, u->err);
	if (rc) {
		free(s);
		return rc;
	}
	struct archive *a = archive_read_new();
	if (!a) {
		ht_oci_blob_reader_close(s->r);
		free(s);
		return nomem(u->err);
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	if (archive_read_open(a, s, NULL, layer_read, NULL) != ARCHIVE_OK) {
		rc = ht_err_set(u->err, HYPERTEST_ERR_IMAGE, "%s: layer %s: %s", u->layout, digest,
		                archive_error_string(a));
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = ht_err_set(u->err, HYPERTEST_ERR_IMAGE, "%s: layer %s: %s", u->layout, digest,
			                archive_error_string(a));
			break;
		}
		u->entry = archive_entry_pathname(e);
		if ((rc = extract_entry(u, a, e)) != 0)
			break;
	}
	u->entry = NULL;
	if (!rc)
		rc = ht_oci_blob_reader_finish(s->r, u->err);
out:
	/* a broken stream is most likely a corrupted blob: say so if it is */
	if (rc == HYPERTEST_ERR_IMAGE && !s->failed && ht_oci_blob_reader_finish(s->r, &s->err) != 0)
		s->failed = 1;
	if (s->failed && rc != HYPERTEST_ERR_NOMEM) {
		ht_err_set(u->err, s->err.code, "%s", s->err.msg);
		rc = s->err.code;
	}
	archive_read_free(a);
	ht_oci_blob_reader_close(s->r);
	free(s);
	pathset_clear(&u->done);
	return rc;
}

static int dirmode_cmp(const void *a, const void *b)
{
	const struct dirmode *x = a, *y = b;
	int c = strcmp(y->path, x->path); /* deepest first */
	if (c)
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq); /* the latest last */
}

/* Directory modes, deepest first, each directory opened beneath the root
 * now: one that a later entry replaced by a symbolic link (or by anything
 * else) is left alone. */
static int apply_dir_modes(ht_unpack *u)
{
	if (u->n_dirs > 1)
		qsort(u->dirs, u->n_dirs, sizeof *u->dirs, dirmode_cmp);
	int rc = 0;
	for (size_t i = 0; i < u->n_dirs && !rc; i++) {
		const char *rel = u->dirs[i].path;
		int fd = open_beneath(u, rel, O_RDONLY | O_DIRECTORY);
		if (fd < 0) {
			if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
				rc = ht_err_set(u->err, HYPERTEST_ERR_IO, "%s/%s: open: %s", u->dest, rel,
				                strerror(errno));
			continue;
		}
		if (fchmod(fd, u->dirs[i].mode) != 0)
			rc = ht_err_set(u->err, HYPERTEST_ERR_IO, "%s/%s: chmod: %s", u->dest, rel,
			                strerror(errno));
		close(fd);
	}
	return rc;
}

int ht_unpack_new(const char *dest, ht_unpack **out, ht_err *err)
{
	*out = NULL;
	int rc = ht_mkdir_p(dest, err);
	if (rc)
		return rc;
	int root = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (root < 0)
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", dest, strerror(errno));
	int probe = dup(root);
	DIR *d = probe >= 0 ? fdopendir(probe) : NULL;
	if (!d) {
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", dest, strerror(errno));
		if (probe >= 0)
			close(probe);
		close(root);
		return rc;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	closedir(d);
	if (de) {
		close(root);
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "%s: not empty; unpacking needs an empty directory", dest);
	}
	/* the tree is its owner's alone: no other user reaches into it */
	if (fchmod(root, 0700) != 0) {
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: chmod: %s", dest, strerror(errno));
		close(root);
		return rc;
	}
	ht_unpack *u = calloc(1, sizeof *u);
	if (!u || !(u->dest = ht_strdup(dest))) {
		free(u);
		close(root);
		return nomem(err);
	}
	u->root = root;
	*out = u;
	return 0;
}

int ht_unpack_finish(ht_unpack *u, ht_err *err)
{
	u->err = err;
	return apply_dir_modes(u);
}

void ht_unpack_free(ht_unpack *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n_dirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	pathset_clear(&u->done);
	close(u->root);
	free(u->dest);
	free(u);
}
