/*
 * layer.c - one new image layer: files and directories collected from disk
 * or memory, written as a reproducible gzip-compressed tar.
 *
 * Reproducible means the bytes depend on paths, contents and the execute
 * bit only: entries sorted by path (byte order, so parents come first),
 * every missing parent directory added, mtime 0, owner 0:0 without names,
 * modes 0644/0755 for files and 0755 for directories, no atime, ctime or
 * extended attributes.  The tar is the GNU format: ustar headers, a
 * "././@LongLink" entry only for names of more than 100 bytes, base-256
 * sizes past 8 GiB, and path bytes stored as they are whatever the locale
 * (libarchive's pax writer converts names to UTF-8 through the locale,
 * which would make the bytes depend on it).  libarchive writes the
 * tar into a callback that hashes it (diff_id) and compresses it with zlib
 * under a fixed gzip header (no time, no name), hashing the result (digest).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "layer.h"
#include "statkey.h"

#define CHUNK 65536

/* Bump when the bytes ht_layer_write produces for the same input change. */
#define LAYER_FORMAT "hypertest-layer/1"
/* The compression settings of ht_layer_write, part of every cache key. */
#define GZIP_LEVEL Z_DEFAULT_COMPRESSION
#define GZIP_SETTINGS "gzip level=-1 wbits=31 memlevel=8 strategy=0 os=255"

enum item_kind { ITEM_DIR, ITEM_FILE, ITEM_DATA };

/* What was added, in order; paths are resolved against the working
 * directory only when the layer is written. */
struct item {
	char *path;        /* image path as given (+ "/" + relative part) */
	enum item_kind kind;
	char *source;      /* ITEM_FILE: where the content is read from */
	unsigned char *data; /* ITEM_DATA */
	size_t len;
	unsigned mode;     /* normalised */
};

struct setting {
	char *key;
	char *value;
};

struct ht_layer {
	struct item *items;
	size_t n_items, cap_items;
	struct setting *settings;
	size_t n_settings, cap_settings;
	char **skip; /* source paths left out of ht_layer_add_path, NULL-terminated */
	size_t n_skip;
};

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

static unsigned file_mode(unsigned mode)
{
	return (mode & 0111) ? 0755 : 0644;
}

ht_layer *ht_layer_new(void)
{
	return calloc(1, sizeof(ht_layer));
}

void ht_layer_free(ht_layer *lb)
{
	if (!lb)
		return;
	for (size_t i = 0; i < lb->n_items; i++) {
		free(lb->items[i].path);
		free(lb->items[i].source);
		free(lb->items[i].data);
	}
	for (size_t i = 0; i < lb->n_settings; i++) {
		free(lb->settings[i].key);
		free(lb->settings[i].value);
	}
	for (size_t i = 0; i < lb->n_skip; i++)
		free(lb->skip[i]);
	free(lb->skip);
	free(lb->items);
	free(lb->settings);
	free(lb);
}

/* Takes ownership of path, source and data (freed on failure). */
static int push_item(ht_layer *lb, char *path, enum item_kind kind, char *source,
                     unsigned char *data, size_t len, unsigned mode, ht_err *err)
{
	if (!path || (kind == ITEM_FILE && !source))
		goto fail;
	if (lb->n_items == lb->cap_items) {
		size_t cap = lb->cap_items ? lb->cap_items * 2 : 32;
		struct item *n = realloc(lb->items, cap * sizeof *n);
		if (!n)
			goto fail;
		lb->items = n;
		lb->cap_items = cap;
	}
	lb->items[lb->n_items++] = (struct item){path, kind, source, data, len, mode};
	return 0;
fail:
	free(path);
	free(source);
	free(data);
	return nomem(err);
}

/* ---- collecting from disk ----------------------------------------------------- */

struct dir_id {
	dev_t dev;
	ino_t ino;
};

struct walk {
	ht_layer *lb;
	struct dir_id *stack; /* directories on the current path, for loops */
	size_t depth, cap;
	ht_err *err;
};

static int stat_follow(const char *path, struct stat *st, ht_err *err)
{
	if (stat(path, st) == 0)
		return 0;
	int e = errno;
	struct stat lst;
	if (e == ELOOP)
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: symbolic link loop", path);
	if (e == ENOENT && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: dangling symbolic link", path);
	return ht_err_set(err, e == ENOENT ? HYPERTEST_ERR_NOT_FOUND : HYPERTEST_ERR_IO, "%s: %s",
	                  path, strerror(e));
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_path(struct walk *w, const char *src, const char *ipath);

static int walk_dir(struct walk *w, const char *src, const char *ipath, const struct stat *st)
{
	for (size_t i = 0; i < w->depth; i++)
		if (w->stack[i].dev == st->st_dev && w->stack[i].ino == st->st_ino)
			return ht_err_set(w->err, HYPERTEST_ERR_IO,
			                  "%s: symbolic link loop (directory contains itself)", src);
	if (w->depth == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct dir_id *n = realloc(w->stack, cap * sizeof *n);
		if (!n)
			return nomem(w->err);
		w->stack = n;
		w->cap = cap;
	}
	w->stack[w->depth++] = (struct dir_id){st->st_dev, st->st_ino};

	int rc = push_item(w->lb, ht_strdup(ipath), ITEM_DIR, NULL, NULL, 0, 0755, w->err);
	DIR *d = rc ? NULL : opendir(src);
	if (!rc && !d)
		rc = ht_err_set(w->err, HYPERTEST_ERR_IO, "%s: %s", src, strerror(errno));
	char **names = NULL;
	size_t n = 0, cap = 0;
	while (!rc) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = ht_err_set(w->err, HYPERTEST_ERR_IO, "%s: %s", src, strerror(errno));
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof *nn);
			if (!nn) {
				rc = nomem(w->err);
				break;
			}
			names = nn;
		}
		if (!(names[n] = ht_strdup(de->d_name))) {
			rc = nomem(w->err);
			break;
		}
		n++;
	}
	if (d)
		closedir(d);
	if (!rc && n > 1)
		qsort(names, n, sizeof *names, name_cmp); /* errors come in a stable order */
	for (size_t i = 0; i < n && !rc; i++) {
		char *csrc = ht_path_join(src, names[i]);
		char *cipath = ht_asprintf("%s/%s", ipath, names[i]);
		rc = (csrc && cipath) ? walk_path(w, csrc, cipath) : nomem(w->err);
		free(csrc);
		free(cipath);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	w->depth--;
	return rc;
}

int ht_layer_skip_source(ht_layer *lb, const char *source_path, ht_err *err)
{
	char **n = realloc(lb->skip, (lb->n_skip + 2) * sizeof *n);
	if (!n)
		return nomem(err);
	lb->skip = n;
	if (!(n[lb->n_skip] = ht_strdup(source_path)))
		return nomem(err);
	n[++lb->n_skip] = NULL;
	return 0;
}

static int walk_path(struct walk *w, const char *src, const char *ipath)
{
	for (size_t i = 0; i < w->lb->n_skip; i++)
		if (!strcmp(src, w->lb->skip[i]))
			return 0;
	struct stat st;
	int rc = stat_follow(src, &st, w->err);
	if (rc)
		return rc;
	if (S_ISDIR(st.st_mode))
		return walk_dir(w, src, ipath, &st);
	if (S_ISREG(st.st_mode))
		return push_item(w->lb, ht_strdup(ipath), ITEM_FILE, ht_strdup(src), NULL, 0,
		                 file_mode(st.st_mode), w->err);
	return ht_err_set(w->err, HYPERTEST_ERR_IO,
	                  "%s: not a regular file or directory (sockets, fifos and devices cannot go "
	                  "into a layer)",
	                  src);
}

static int check_image_path(const char *image_path, ht_err *err)
{
	if (!image_path || !*image_path)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "layer: empty image path");
	return 0;
}

int ht_layer_add_path(ht_layer *lb, const char *source_path, const char *image_path,
                      ht_err *err)
{
	int rc = check_image_path(image_path, err);
	if (rc)
		return rc;
	if (!source_path)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "layer: no source path for %s", image_path);
	size_t before = lb->n_items;
	struct walk w = {lb, NULL, 0, 0, err};
	rc = walk_path(&w, source_path, image_path);
	free(w.stack);
	if (rc) { /* all or nothing */
		for (size_t i = before; i < lb->n_items; i++) {
			free(lb->items[i].path);
			free(lb->items[i].source);
			free(lb->items[i].data);
		}
		lb->n_items = before;
	}
	return rc;
}

int ht_layer_add_data(ht_layer *lb, const char *image_path, const void *data, size_t len,
                      unsigned mode, ht_err *err)
{
	int rc = check_image_path(image_path, err);
	if (rc)
		return rc;
	unsigned char *copy = malloc(len ? len : 1);
	if (!copy)
		return nomem(err);
	if (len)
		memcpy(copy, data, len);
	return push_item(lb, ht_strdup(image_path), ITEM_DATA, NULL, copy, len, file_mode(mode), err);
}

/* ---- settings ------------------------------------------------------------------ */

static int json_string_array(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	int ok = json_is_array(j);
	for (size_t i = 0; ok && i < json_array_size(j); i++)
		ok = json_is_string(json_array_get(j, i));
	json_decref(j);
	return ok;
}

/* Length of the NAME part of "NAME=VALUE", or 0 when malformed. */
static size_t assignment_name_len(const char *v)
{
	const char *eq = strchr(v, '=');
	return eq ? (size_t)(eq - v) : 0;
}

int ht_layer_set(ht_layer *lb, const char *key, const char *value, ht_err *err)
{
	if (!key || !value)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "layer setting: missing key or value");
	int multi = 0; /* env and label keep one entry per NAME */
	if (!strcmp(key, "env") || !strcmp(key, "label")) {
		multi = 1;
		if (assignment_name_len(value) == 0)
			return ht_err_set(err, HYPERTEST_ERR_INVALID,
			                  "layer setting %s: '%s' is not NAME=VALUE", key, value);
	} else if (!strcmp(key, "entrypoint") || !strcmp(key, "cmd")) {
		if (!json_string_array(value))
			return ht_err_set(err, HYPERTEST_ERR_INVALID,
			                  "layer setting %s: '%s' is not a JSON array of strings", key,
			                  value);
	} else if (!strcmp(key, "workdir")) {
		if (!*value)
			return ht_err_set(err, HYPERTEST_ERR_INVALID, "layer setting workdir: empty");
	} else if (strcmp(key, "comment") != 0) {
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "layer setting '%s' unknown (env, workdir, entrypoint, cmd, label, "
		                  "comment)",
		                  key);
	}
	for (size_t i = 0; i < lb->n_settings; i++) {
		struct setting *s = &lb->settings[i];
		if (strcmp(s->key, key) != 0)
			continue;
		if (multi) {
			size_t nl = assignment_name_len(value);
			if (assignment_name_len(s->value) != nl || strncmp(s->value, value, nl) != 0)
				continue;
		}
		char *v = ht_strdup(value);
		if (!v)
			return nomem(err);
		free(s->value);
		s->value = v;
		return 0;
	}
	if (lb->n_settings == lb->cap_settings) {
		size_t cap = lb->cap_settings ? lb->cap_settings * 2 : 8;
		struct setting *n = realloc(lb->settings, cap * sizeof *n);
		if (!n)
			return nomem(err);
		lb->settings = n;
		lb->cap_settings = cap;
	}
	char *k = ht_strdup(key), *v = ht_strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return nomem(err);
	}
	lb->settings[lb->n_settings++] = (struct setting){k, v};
	return 0;
}

size_t ht_layer_setting_count(const ht_layer *lb)
{
	return lb->n_settings;
}

const char *ht_layer_setting_key(const ht_layer *lb, size_t i)
{
	return i < lb->n_settings ? lb->settings[i].key : NULL;
}

const char *ht_layer_setting_value(const ht_layer *lb, size_t i)
{
	return i < lb->n_settings ? lb->settings[i].value : NULL;
}

/* ---- path resolution ------------------------------------------------------------- */

/* Append the components of p to out ("a/b", no leading or trailing '/'),
 * resolving "." and "..".  Returns -1 when ".." climbs above the root. */
static int push_components(ht_buf *out, const char *p)
{
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = p;
		while (*e && *e != '/')
			e++;
		size_t n = (size_t)(e - p);
		if (n == 0)
			break;
		if (n == 1 && p[0] == '.') {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (out->len == 0)
				return -1;
			char *slash = strrchr(out->data, '/');
			out->len = slash ? (size_t)(slash - out->data) : 0;
			out->data[out->len] = '\0';
		} else {
			if (out->len && ht_buf_append(out, "/", 1) != 0)
				return -2;
			if (ht_buf_append(out, p, n) != 0)
				return -2;
		}
		p = e;
	}
	return 0;
}

/* The archive path ("a/b", "" for the root) of image path p. */
static int resolve_path(const char *workdir, const char *p, char **out, ht_err *err)
{
	ht_buf b = HT_BUF_INIT;
	int rc = 0;
	if (ht_buf_append(&b, "", 0) != 0)
		return nomem(err);
	if (p[0] != '/' && workdir)
		rc = push_components(&b, workdir);
	if (rc == 0)
		rc = push_components(&b, p);
	if (rc == -2) {
		ht_buf_free(&b);
		return nomem(err);
	}
	if (rc == -1) {
		ht_buf_free(&b);
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "layer: image path '%s' (working directory '%s') leaves the root", p,
		                  workdir ? workdir : "/");
	}
	*out = ht_buf_steal(&b);
	return *out ? 0 : nomem(err);
}

/* ---- the entry list -------------------------------------------------------------- */

struct entry {
	char *path;      /* archive path, no leading '/' */
	long seq;        /* item index; -1 for an implied parent directory */
	const struct item *item; /* NULL for an implied directory */
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	if (c)
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static int entry_cmp_path_only(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static int is_dir_entry(const struct entry *e)
{
	return !e->item || e->item->kind == ITEM_DIR;
}

struct entries {
	struct entry *v;
	size_t n, cap;
};

static int entries_push(struct entries *es, char *path, long seq, const struct item *it)
{
	if (es->n == es->cap) {
		size_t cap = es->cap ? es->cap * 2 : 64;
		struct entry *n = realloc(es->v, cap * sizeof *n);
		if (!n) {
			free(path);
			return -1;
		}
		es->v = n;
		es->cap = cap;
	}
	es->v[es->n++] = (struct entry){path, seq, it};
	return 0;
}

static void entries_free(struct entries *es)
{
	for (size_t i = 0; i < es->n; i++)
		free(es->v[i].path);
	free(es->v);
}

/* Resolve every item, add the implied parents, sort, keep the last item
 * added for a path, and check that no file is the parent of an entry. */
static int build_entries(const ht_layer *lb, const char *workdir, struct entries *es,
                         ht_err *err)
{
	for (size_t i = 0; i < lb->n_items; i++) {
		const struct item *it = &lb->items[i];
		char *p = NULL;
		int rc = resolve_path(workdir, it->path, &p, err);
		if (rc)
			return rc;
		if (!*p) {
			free(p);
			if (it->kind == ITEM_DIR)
				continue; /* the root itself is not an entry */
			return ht_err_set(err, HYPERTEST_ERR_INVALID,
			                  "layer: a file cannot be placed at the root ('%s')", it->path);
		}
		for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
			char *parent = strndup(p, (size_t)(s - p));
			if (!parent || entries_push(es, parent, -1, NULL) != 0) {
				free(p);
				return nomem(err);
			}
		}
		if (entries_push(es, p, (long)i, it) != 0)
			return nomem(err);
	}
	if (es->n > 1)
		qsort(es->v, es->n, sizeof *es->v, entry_cmp);
	size_t w = 0;
	for (size_t r = 0; r < es->n; r++) {
		if (r + 1 < es->n && strcmp(es->v[r].path, es->v[r + 1].path) == 0) {
			free(es->v[r].path); /* a later item (higher seq) wins */
			continue;
		}
		es->v[w++] = es->v[r];
	}
	es->n = w;
	for (size_t i = 0; i < es->n; i++) {
		const char *p = es->v[i].path;
		const char *s = strrchr(p, '/');
		if (!s)
			continue;
		struct entry key = {NULL, -2, NULL};
		char *parent = strndup(p, (size_t)(s - p));
		if (!parent)
			return nomem(err);
		key.path = parent;
		struct entry *found = bsearch(&key, es->v, es->n, sizeof *es->v, entry_cmp_path_only);
		int bad = found && !is_dir_entry(found);
		free(parent);
		if (bad)
			return ht_err_set(err, HYPERTEST_ERR_INVALID,
			                  "layer: '/%s' is added as a file and as the directory of '/%s'",
			                  found->path, p);
	}
	return 0;
}

/* ---- writing ------------------------------------------------------------------ */

struct sink {
	int fd;
	const char *out_path;
	EVP_MD_CTX *diff;   /* sha256 of the tar */
	EVP_MD_CTX *dig;    /* sha256 of the gzip stream */
	z_stream z;
	int z_ready;
	unsigned char *zbuf;
	unsigned long long size;
	ht_err *err;
	int failed;
};

static int sink_flush(struct sink *s)
{
	size_t have = CHUNK - s->z.avail_out;
	if (have == 0)
		return 0;
	EVP_DigestUpdate(s->dig, s->zbuf, have);
	s->size += have;
	const unsigned char *p = s->zbuf;
	while (have > 0) {
		ssize_t n = write(s->fd, p, have);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			s->failed = ht_err_set(s->err, HYPERTEST_ERR_IO, "%s: write: %s", s->out_path,
			                       strerror(errno));
			return -1;
		}
		p += n;
		have -= (size_t)n;
	}
	s->z.next_out = s->zbuf;
	s->z.avail_out = CHUNK;
	return 0;
}

static int sink_deflate(struct sink *s, const void *buf, size_t len, int flush)
{
	s->z.next_in = (unsigned char *)(uintptr_t)buf;
	s->z.avail_in = (uInt)len;
	for (;;) {
		int zr = deflate(&s->z, flush);
		if (zr == Z_STREAM_ERROR) {
			s->failed = ht_err_set(s->err, HYPERTEST_ERR_IO, "%s: deflate failed", s->out_path);
			return -1;
		}
		if (s->z.avail_out == 0) {
			if (sink_flush(s) != 0)
				return -1;
			continue;
		}
		if (flush == Z_FINISH) {
			if (zr == Z_STREAM_END)
				return sink_flush(s);
			continue;
		}
		if (s->z.avail_in == 0)
			return 0;
	}
}

static la_ssize_t sink_write(struct archive *a, void *client, const void *buf, size_t len)
{
	struct sink *s = client;
	EVP_DigestUpdate(s->diff, buf, len);
	/* len is at most libarchive's block size, well within uInt */
	if (sink_deflate(s, buf, len, Z_NO_FLUSH) != 0) {
		archive_set_error(a, EIO, "%s", s->err ? s->err->msg : "write failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static void hex_digest(EVP_MD_CTX *c, char out[80])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char hx[] = "0123456789abcdef";
	EVP_DigestFinal_ex(c, md, &n);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < n; i++) {
		out[7 + 2 * i] = hx[md[i] >> 4];
		out[8 + 2 * i] = hx[md[i] & 15];
	}
	out[7 + 2 * n] = '\0';
}

static int archive_fail(struct archive *a, struct sink *s, const char *what, ht_err *err)
{
	if (s->failed)
		return s->failed;
	return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s: %s", s->out_path, what,
	                  archive_error_string(a) ? archive_error_string(a) : "libarchive error");
}

static struct archive_entry *new_entry(const char *path, unsigned type, unsigned mode)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return NULL;
	archive_entry_copy_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	return e;
}

static int write_file_entry(struct archive *a, struct sink *s, const struct entry *en,
                            char *buf, ht_err *err)
{
	const struct item *it = en->item;
	/* O_NONBLOCK: a file replaced by a FIFO since it was listed is refused
	 * below instead of blocking the open */
	int fd = open(it->source, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", it->source, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", it->source,
		                S_ISREG(st.st_mode) ? strerror(errno) : "no longer a regular file");
		close(fd);
		return rc;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct archive_entry *e = new_entry(en->path, AE_IFREG, it->mode);
	if (!e) {
		close(fd);
		return nomem(err);
	}
	archive_entry_set_size(e, st.st_size);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		rc = archive_fail(a, s, en->path, err);
	archive_entry_free(e);
	long long left = st.st_size;
	while (!rc && left > 0) {
		ssize_t n = read(fd, buf, left < CHUNK ? (size_t)left : CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", it->source,
			                n < 0 ? strerror(errno) : "file shrank while being read");
			break;
		}
		if (archive_write_data(a, buf, (size_t)n) != n)
			rc = archive_fail(a, s, en->path, err);
		left -= n;
	}
	close(fd);
	return rc;
}

static int write_entry(struct archive *a, struct sink *s, const struct entry *en, char *buf,
                       ht_err *err)
{
	if (en->item && en->item->kind == ITEM_FILE)
		return write_file_entry(a, s, en, buf, err);
	int dir = is_dir_entry(en);
	struct archive_entry *e = new_entry(en->path, dir ? AE_IFDIR : AE_IFREG,
	                                    dir ? 0755 : en->item->mode);
	if (!e)
		return nomem(err);
	archive_entry_set_size(e, dir ? 0 : (la_int64_t)en->item->len);
	int rc = 0;
	if (archive_write_header(a, e) != ARCHIVE_OK)
		rc = archive_fail(a, s, en->path, err);
	else if (!dir && en->item->len > 0 &&
	         archive_write_data(a, en->item->data, en->item->len) != (la_ssize_t)en->item->len)
		rc = archive_fail(a, s, en->path, err);
	archive_entry_free(e);
	return rc;
}

int ht_layer_write(ht_layer *lb, const char *workdir, const char *out_path, char diff_id[80],
                   char digest[80], size_t *size, ht_err *err)
{
	struct entries es = {NULL, 0, 0};
	struct sink s;
	memset(&s, 0, sizeof s);
	s.fd = -1;
	s.out_path = out_path;
	s.err = err;
	struct archive *a = NULL;
	char *buf = NULL;
	int created = 0;
	int rc = build_entries(lb, workdir, &es, err);
	if (rc)
		goto out;

	s.diff = EVP_MD_CTX_new();
	s.dig = EVP_MD_CTX_new();
	s.zbuf = malloc(CHUNK);
	buf = malloc(CHUNK);
	if (!s.diff || !s.dig || !s.zbuf || !buf ||
	    EVP_DigestInit_ex(s.diff, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestInit_ex(s.dig, EVP_sha256(), NULL) != 1) {
		rc = nomem(err);
		goto out;
	}
	/* gzip wrapper (windowBits 16+15) with a fixed header: no time, no
	 * name, OS "unknown" so that the bytes do not depend on the host. */
	if (deflateInit2(&s.z, GZIP_LEVEL, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		rc = nomem(err);
		goto out;
	}
	s.z_ready = 1;
	gz_header gh;
	memset(&gh, 0, sizeof gh);
	gh.os = 255;
	deflateSetHeader(&s.z, &gh);
	s.z.next_out = s.zbuf;
	s.z.avail_out = CHUNK;

	s.fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (s.fd < 0) {
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", out_path, strerror(errno));
		goto out;
	}
	created = 1;
	a = archive_write_new();
	if (!a) {
		rc = nomem(err);
		goto out;
	}
	if (archive_write_set_format_gnutar(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_open(a, &s, NULL, sink_write, NULL) != ARCHIVE_OK) {
		rc = archive_fail(a, &s, "cannot start the tar stream", err);
		goto out;
	}
	for (size_t i = 0; i < es.n && !rc; i++)
		rc = write_entry(a, &s, &es.v[i], buf, err);
	if (rc)
		goto out;
	if (archive_write_close(a) != ARCHIVE_OK) {
		rc = archive_fail(a, &s, "cannot finish the tar stream", err);
		goto out;
	}
	if (sink_deflate(&s, NULL, 0, Z_FINISH) != 0) {
		rc = s.failed;
		goto out;
	}
	if (close(s.fd) != 0) {
		s.fd = -1;
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: close: %s", out_path, strerror(errno));
		goto out;
	}
	s.fd = -1;
	hex_digest(s.diff, diff_id);
	hex_digest(s.dig, digest);
	if (size)
		*size = (size_t)s.size;
out:
	if (a)
		archive_write_free(a);
	if (s.fd >= 0)
		close(s.fd);
	if (rc && created)
		unlink(out_path);
	if (s.z_ready)
		deflateEnd(&s.z);
	EVP_MD_CTX_free(s.diff);
	EVP_MD_CTX_free(s.dig);
	free(s.zbuf);
	free(buf);
	entries_free(&es);
	return rc;
}

/* ---- cache keys ------------------------------------------------------------------- */

static pthread_once_t writer_once = PTHREAD_ONCE_INIT;
static char writer_version[512];

static void writer_version_init(void)
{
	const char *salt = getenv("HYPERTEST_LAYER_WRITER_SALT");
	snprintf(writer_version, sizeof writer_version, "%s %s zlib/%s%s%s", LAYER_FORMAT,
	         archive_version_string(), zlibVersion(), salt && *salt ? " salt/" : "",
	         salt && *salt ? salt : "");
}

const char *ht_layer_writer_version(void)
{
	pthread_once(&writer_once, writer_version_init);
	return writer_version;
}


int ht_layer_cache_key(const ht_layer *lb, const char *workdir, char key[80], int *recent,
                       ht_err *err)
{
	struct timespec limit;
	*recent = 0;
	if (clock_gettime(CLOCK_REALTIME, &limit) != 0)
		return ht_err_set(err, HYPERTEST_ERR_IO, "clock_gettime: %s", strerror(errno));
	limit.tv_sec -= 1;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return nomem(err);
	}
	ht_key_str(c, ht_layer_writer_version());
	ht_key_str(c, GZIP_SETTINGS);
	ht_key_str(c, workdir ? workdir : "/");
	ht_key_u64(c, lb->n_items);
	int rc = 0;
	for (size_t i = 0; i < lb->n_items && !rc; i++) {
		const struct item *it = &lb->items[i];
		ht_key_u64(c, (uint64_t)it->kind);
		ht_key_str(c, it->path);
		ht_key_u64(c, it->mode);
		if (it->kind == ITEM_DATA) {
			ht_key_u64(c, it->len);
			EVP_DigestUpdate(c, it->data, it->len);
			continue;
		}
		if (it->kind != ITEM_FILE)
			continue;
		struct stat st, lst;
		ht_key_str(c, it->source);
		if (stat(it->source, &st) != 0 || lstat(it->source, &lst) != 0) {
			rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", it->source, strerror(errno));
			break;
		}
		if (ht_key_stat(c, &st, &limit))
			*recent = 1;
		if (S_ISLNK(lst.st_mode)) {
			char target[4096];
			ssize_t n = readlink(it->source, target, sizeof target - 1);
			if (n < 0) {
				rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", it->source, strerror(errno));
				break;
			}
			target[n] = '\0';
			ht_key_str(c, target);
			if (ht_timespec_after(&lst.st_mtim, &limit) ||
			    ht_timespec_after(&lst.st_ctim, &limit))
				*recent = 1;
		} else {
			ht_key_str(c, "");
		}
	}
	if (!rc)
		hex_digest(c, key);
	EVP_MD_CTX_free(c);
	return rc;
}
