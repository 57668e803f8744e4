/*
 * image_unpack.c - layers extracted into a directory as a container runtime
 * stacks them: OCI whiteouts, paths resolved inside the directory (symbolic
 * links followed as if it were the root), modes kept, no chown.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

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

static char *host_path(const ht_unpack *u, const char *rel)
{
	return *rel ? ht_asprintf("%s/%s", u->dest, rel) : ht_strdup(u->dest);
}

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

/* Resolve directory path rel (components separated by '/') inside dest the
 * way the container sees it: symbolic links are followed, but as if dest
 * were the root ("/" and ".." never leave it).  *out gets the real relative
 * path, whose existing components are all directories or missing. */
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
		char *e = strchr(pending + pos, '/');
		size_t n = e ? (size_t)(e - (pending + pos)) : strlen(pending + pos);
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
		size_t mark = res.len;
		if ((res.len && ht_buf_append(&res, "/", 1) != 0) || ht_buf_puts(&res, comp) != 0) {
			free(comp);
			rc = nomem(u->err);
			break;
		}
		free(comp);
		char *hp = host_path(u, res.data);
		struct stat st;
		if (!hp) {
			rc = nomem(u->err);
			break;
		}
		if (lstat(hp, &st) == 0 && S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t tl = readlink(hp, target, sizeof target - 1);
			if (tl < 0 || ++links > 40) {
				rc = entry_err(u, HYPERTEST_ERR_IMAGE, "%s: %s", res.data,
				               tl < 0 ? strerror(errno) : "too many symbolic links");
				free(hp);
				break;
			}
			target[tl] = '\0';
			/* continue with the target, then what was left */
			char *np = ht_asprintf("%s/%s", target, pending + pos);
			if (!np) {
				free(hp);
				rc = nomem(u->err);
				break;
			}
			free(pending);
			pending = np;
			pos = 0;
			if (target[0] == '/')
				res.len = 0;
			else
				res.len = mark;
			res.data[res.len] = '\0';
		}
		free(hp);
	}
	free(pending);
	if (rc) {
		ht_buf_free(&res);
		return rc;
	}
	*out = ht_buf_steal(&res);
	return *out ? 0 : nomem(u->err);
}

/* Create the missing directories of rel (already resolved). */
static int make_dirs(ht_unpack *u, const char *rel)
{
	char *p = ht_strdup(rel);
	if (!p)
		return nomem(u->err);
	int rc = 0;
	for (char *s = p; *p && !rc; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		char *hp = host_path(u, p);
		struct stat st;
		if (!hp)
			rc = nomem(u->err);
		else if (lstat(hp, &st) != 0) {
			if (mkdir(hp, 0755) != 0)
				rc = io_err(u, p, "mkdir");
		} else if (!S_ISDIR(st.st_mode)) {
			rc = entry_err(u, HYPERTEST_ERR_IMAGE, "/%s is not a directory", p);
		}
		free(hp);
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

/* Remove the children of directory rel that the current layer did not
 * create (an opaque whiteout), descending into its own directories. */
static int clear_dir(ht_unpack *u, const char *rel)
{
	char *hp = host_path(u, rel);
	if (!hp)
		return nomem(u->err);
	DIR *d = opendir(hp);
	free(hp);
	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : io_err(u, rel, "opendir");
	int rc = 0;
	struct dirent *de;
	while (!rc && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *child = *rel ? ht_asprintf("%s/%s", rel, de->d_name) : ht_strdup(de->d_name);
		char *chp = child ? host_path(u, child) : NULL;
		struct stat st;
		if (!chp)
			rc = nomem(u->err);
		else if (!pathset_has(&u->done, child))
			rc = ht_rm_rf(chp, u->err);
		else if (lstat(chp, &st) == 0 && S_ISDIR(st.st_mode))
			rc = clear_dir(u, child);
		free(child);
		free(chp);
	}
	closedir(d);
	return rc;
}

/* Make room for a new entry at rel: a directory stays for a directory,
 * anything else goes. */
static int clear_slot(ht_unpack *u, const char *rel, const char *hp, int keep_dir)
{
	struct stat st;
	if (lstat(hp, &st) != 0)
		return 0;
	if (keep_dir && S_ISDIR(st.st_mode))
		return 0;
	(void)rel;
	return ht_rm_rf(hp, u->err);
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

static int extract_entry(ht_unpack *u, struct archive *a, struct archive_entry *e)
{
	ht_buf clean = HT_BUF_INIT;
	char *parent = NULL, *rel = NULL, *hp = NULL, *lrel = NULL, *lhp = NULL;
	int rc = clean_archive_path(archive_entry_pathname(e), &clean);
	if (rc == -2)
		rc = nomem(u->err);
	else if (rc == -1)
		rc = entry_err(u, HYPERTEST_ERR_IMAGE, "absolute path or '..' component refused");
	if (rc || clean.len == 0) /* the root itself */
		goto out;
	char *slash = strrchr(clean.data, '/');
	const char *name = slash ? slash + 1 : clean.data;
	if (slash)
		*slash = '\0';
	if ((rc = resolve_in_root(u, slash ? clean.data : "", &parent)) != 0)
		goto out;

	if (!strncmp(name, ".wh.", 4)) {
		if (!strcmp(name, ".wh..wh..opq"))
			rc = clear_dir(u, parent);
		else if (strncmp(name, ".wh..wh.", 8) != 0) { /* .wh..wh.* is aufs bookkeeping */
			rel = *parent ? ht_asprintf("%s/%s", parent, name + 4) : ht_strdup(name + 4);
			hp = rel ? host_path(u, rel) : NULL;
			if (!hp)
				rc = nomem(u->err);
			else if (!pathset_has(&u->done, rel))
				rc = ht_rm_rf(hp, u->err);
		}
		goto out;
	}
	if ((rc = make_dirs(u, parent)) != 0)
		goto out;
	rel = *parent ? ht_asprintf("%s/%s", parent, name) : ht_strdup(name);
	hp = rel ? host_path(u, rel) : NULL;
	if (!hp) {
		rc = nomem(u->err);
		goto out;
	}
	unsigned mode = archive_entry_perm(e) & 07777;
	const char *hardlink = archive_entry_hardlink(e);
	unsigned type = archive_entry_filetype(e);
	if (hardlink) {
		ht_buf lclean = HT_BUF_INIT;
		int lr = clean_archive_path(hardlink, &lclean);
		if (lr != 0 || lclean.len == 0) {
			ht_buf_free(&lclean);
			rc = lr == -2 ? nomem(u->err)
			              : entry_err(u, HYPERTEST_ERR_IMAGE,
			                          "hard link to '%s' outside the image refused", hardlink);
			goto out;
		}
		char *ls = strrchr(lclean.data, '/');
		char *lparent = NULL;
		if (ls)
			*ls = '\0';
		rc = resolve_in_root(u, ls ? lclean.data : "", &lparent);
		if (!rc) {
			const char *lname = ls ? ls + 1 : lclean.data;
			lrel = *lparent ? ht_asprintf("%s/%s", lparent, lname) : ht_strdup(lname);
			lhp = lrel ? host_path(u, lrel) : NULL;
			if (!lhp)
				rc = nomem(u->err);
		}
		free(lparent);
		ht_buf_free(&lclean);
		struct stat st;
		if (rc)
			goto out;
		if (lstat(lhp, &st) != 0 || S_ISDIR(st.st_mode)) {
			rc = entry_err(u, HYPERTEST_ERR_IMAGE, "hard link to missing or directory '%s'",
			               hardlink);
			goto out;
		}
		if (strcmp(lhp, hp) == 0)
			goto done;
		if ((rc = clear_slot(u, rel, hp, 0)) != 0)
			goto out;
		if (link(lhp, hp) != 0) {
			rc = io_err(u, rel, "link");
			goto out;
		}
	} else if (type == AE_IFDIR) {
		if ((rc = clear_slot(u, rel, hp, 1)) != 0)
			goto out;
		if (mkdir(hp, 0700) != 0 && errno != EEXIST) {
			rc = io_err(u, rel, "mkdir");
			goto out;
		}
		/* writable and searchable for us until the end */
		if (chmod(hp, mode | 0700) != 0 || record_dir(u, rel, mode) != 0) {
			rc = u->err && u->err->code == HYPERTEST_ERR_NOMEM ? HYPERTEST_ERR_NOMEM
			                                                    : io_err(u, rel, "chmod");
			goto out;
		}
	} else if (type == AE_IFREG) {
		if ((rc = clear_slot(u, rel, hp, 0)) != 0)
			goto out;
		int fd = open(hp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = io_err(u, rel, "create");
			goto out;
		}
		rc = write_data(u, a, fd, rel);
		if (!rc && archive_entry_size(e) >= 0 && ftruncate(fd, archive_entry_size(e)) != 0)
			rc = io_err(u, rel, "truncate");
		if (!rc && fchmod(fd, mode) != 0)
			rc = io_err(u, rel, "chmod");
		if (close(fd) != 0 && !rc)
			rc = io_err(u, rel, "close");
		if (rc)
			goto out;
	} else if (type == AE_IFLNK) {
		const char *target = archive_entry_symlink(e);
		if (!target || !*target) {
			rc = entry_err(u, HYPERTEST_ERR_IMAGE, "symbolic link without a target");
			goto out;
		}
		if (target[0] != '/' && !link_stays_inside(parent, target)) {
			rc = entry_err(u, HYPERTEST_ERR_IMAGE,
			               "symbolic link to '%s' points outside the image", target);
			goto out;
		}
		/* an absolute target is kept: it means the image's root */
		if ((rc = clear_slot(u, rel, hp, 0)) != 0)
			goto out;
		if (symlink(target, hp) != 0) {
			rc = io_err(u, rel, "symlink");
			goto out;
		}
	} else if (type == AE_IFIFO) {
		if ((rc = clear_slot(u, rel, hp, 0)) != 0)
			goto out;
		if (mkfifo(hp, mode) != 0) {
			rc = io_err(u, rel, "mkfifo");
			goto out;
		}
	} else {
		goto out; /* devices and sockets need privileges we may not have */
	}
done:
	if (pathset_add(&u->done, rel) != 0)
		rc = nomem(u->err);
out:
	ht_buf_free(&clean);
	free(parent);
	free(rel);
	free(hp);
	free(lrel);
	free(lhp);
	return rc;
}

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

static int apply_dir_modes(ht_unpack *u)
{
	if (u->n_dirs > 1)
		qsort(u->dirs, u->n_dirs, sizeof *u->dirs, dirmode_cmp);
	int rc = 0;
	for (size_t i = 0; i < u->n_dirs && !rc; i++) {
		char *hp = host_path(u, u->dirs[i].path);
		struct stat st;
		if (!hp)
			rc = nomem(u->err);
		else if (lstat(hp, &st) == 0 && S_ISDIR(st.st_mode) && chmod(hp, u->dirs[i].mode) != 0)
			rc = ht_err_set(u->err, HYPERTEST_ERR_IO, "%s: chmod: %s", hp, strerror(errno));
		free(hp);
	}
	return rc;
}

int ht_unpack_new(const char *dest, ht_unpack **out, ht_err *err)
{
	*out = NULL;
	int rc = ht_mkdir_p(dest, err);
	if (rc)
		return rc;
	DIR *d = opendir(dest);
	if (!d)
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", dest, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	closedir(d);
	if (de)
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "%s: not empty; unpacking needs an empty directory", dest);
	ht_unpack *u = calloc(1, sizeof *u);
	if (!u || !(u->dest = ht_strdup(dest))) {
		free(u);
		return nomem(err);
	}
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
	free(u->dest);
	free(u);
}
