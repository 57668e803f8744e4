/*
 * dirhash.c - the test-directory hash of the manifest, bit for bit the one
 * the TypeScript hypertest computes in Node (DESIGN.md, "Test directory
 * hash").
 *
 * Walk: every entry below the directory is stat()ed, so a symbolic link
 * counts as what it points to; a link to a directory is walked as a
 * directory.  A directory that is its own ancestor (a link loop) is an
 * HYPERTEST_ERR_IO error: Node would fail on it too (ELOOP or
 * ENAMETOOLONG), so there is no hash to agree with.  Entries that are
 * neither regular files nor directories (FIFOs, sockets, devices) are
 * skipped.  Directories without files contribute nothing.
 *
 * Order: relative paths ('/' separator) sorted like JavaScript's default
 * Array.prototype.sort, by UTF-16 code units.
 *
 * Per file: relative path, NUL, content, NUL.  The content goes through the
 * transform of Buffer.toString('utf8') + replace(/\r\n/g, '\n') + UTF-8
 * encoding: the WHATWG UTF-8 decoder turns each maximal subpart of an
 * invalid sequence into U+FFFD (overlong forms, encoded surrogates, code
 * points above U+10FFFF, C0, C1 and F5..FF are invalid; a BOM is kept), and
 * a CR directly followed by LF is dropped.  Valid sequences re-encode to
 * the same bytes, so the transform copies them.  Content is streamed in
 * chunks: a sequence or a CR cut by the end of a chunk is carried over.
 *
 * Names that are not valid UTF-8: Node's readdir hands out names decoded
 * the same way (U+FFFD for invalid subparts), so the path that is hashed
 * and sorted is that decoded form (CRs in names are kept as they are); the
 * file itself is read by its real name.  (The TypeScript version would
 * then fail to open such a file; here the hash is defined anyway.)  Two
 * names that decode to the same string are ordered by their raw bytes.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "dirhash.h"
#include "statkey.h"

#define CHUNK_SIZE 65536 /* bytes read from a file at a time */
#define CARRY_MAX 4      /* room for bytes carried over to the next chunk */

/* ---- UTF-8 decoding as WHATWG specifies it -------------------------------- */

enum { U8_VALID, U8_INVALID, U8_SHORT };

/* Look at the sequence at s (n >= 1 bytes).  U8_VALID: *len bytes encode
 * *cp.  U8_INVALID: the first *len bytes are a maximal invalid subpart
 * (one U+FFFD).  U8_SHORT: all n bytes are a valid but unfinished prefix. */
static int u8_next(const unsigned char *s, size_t n, size_t *len, uint32_t *cp)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xBF;
	size_t need, i;
	uint32_t c;

	if (b < 0x80) {
		*len = 1;
		*cp = b;
		return U8_VALID;
	}
	if (b >= 0xC2 && b <= 0xDF) {
		need = 1;
		c = b & 0x1F;
	} else if (b >= 0xE0 && b <= 0xEF) {
		need = 2;
		c = b & 0x0F;
		if (b == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (b == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		need = 3;
		c = b & 0x07;
		if (b == 0xF0)
			lo = 0x90; /* no overlong forms */
		else if (b == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		*len = 1;
		return U8_INVALID;
	}
	for (i = 1; i <= need; i++) {
		if (i >= n) {
			*len = n;
			return U8_SHORT;
		}
		if (s[i] < lo || s[i] > hi) {
			*len = i;
			return U8_INVALID;
		}
		c = (c << 6) | (s[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*len = need + 1;
	*cp = c;
	return U8_VALID;
}

/* Next code point of a NUL-terminated string, U+FFFD for invalid parts
 * (a sequence needs at most 4 bytes to be judged). */
static uint32_t u8_next_cstr(const unsigned char **s)
{
	size_t len;
	uint32_t cp;
	int r = u8_next(*s, strnlen((const char *)*s, 4), &len, &cp);

	*s += len;
	return r == U8_VALID ? cp : 0xFFFD;
}

/* ---- an output sink: buffered bytes handed to a function ------------------ */

struct sink {
	int (*write)(void *ctx, const void *data, size_t len); /* 0 or an error code */
	void *ctx;
	int rc; /* first error of write */
	size_t len;
	unsigned char buf[16384];
};

static void sink_flush(struct sink *s)
{
	if (s->len && s->rc == 0)
		s->rc = s->write(s->ctx, s->buf, s->len);
	s->len = 0;
}

static void sink_put(struct sink *s, const void *data, size_t len)
{
	if (s->len + len > sizeof s->buf)
		sink_flush(s);
	if (len >= sizeof s->buf) {
		if (s->rc == 0)
			s->rc = s->write(s->ctx, data, len);
		return;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

/* ---- the content transform ------------------------------------------------ */

static const unsigned char replacement[3] = {0xEF, 0xBF, 0xBD}; /* U+FFFD */

/* Transform s[0..n) into out: invalid subparts -> U+FFFD and, with crlf,
 * CR LF -> LF.  Unless final, an unfinished sequence or a CR at the very
 * end is left alone: the return value is the number of bytes consumed,
 * the rest (at most 3 bytes) belongs in front of the next chunk. */
static size_t transform(const unsigned char *s, size_t n, int crlf, int final, struct sink *out)
{
	size_t i = 0;

	while (i < n && out->rc == 0) {
		size_t len, run;
		uint32_t cp;
		int r;

		if (s[i] == '\r' && crlf) {
			if (i + 1 == n && !final)
				break;
			if (i + 1 == n || s[i + 1] != '\n')
				sink_put(out, s + i, 1);
			i++;
			continue;
		}
		if (s[i] < 0x80) {
			run = i + 1;
			while (run < n && s[run] < 0x80 && !(crlf && s[run] == '\r'))
				run++;
			sink_put(out, s + i, run - i);
			i = run;
			continue;
		}
		r = u8_next(s + i, n - i, &len, &cp);
		if (r == U8_SHORT && !final)
			break;
		if (r == U8_VALID)
			sink_put(out, s + i, len);
		else
			sink_put(out, replacement, sizeof replacement);
		i += len;
	}
	return i;
}

static int buf_write(void *ctx, const void *data, size_t len)
{
	return ht_buf_append(ctx, data, len);
}

int ht_node_utf8_normalize(const char *in, size_t len, char **out, size_t *out_len)
{
	ht_buf b = HT_BUF_INIT;
	struct sink *s = malloc(sizeof *s);

	*out = NULL;
	if (!s)
		return HYPERTEST_ERR_NOMEM;
	s->write = buf_write;
	s->ctx = &b;
	s->rc = 0;
	s->len = 0;
	if (len)
		transform((const unsigned char *)in, len, 1, 1, s);
	sink_flush(s);
	if (s->rc == 0)
		s->rc = ht_buf_append(&b, "", 0); /* "" rather than NULL */
	if (s->rc != 0) {
		int rc = s->rc;
		ht_buf_free(&b);
		free(s);
		return rc;
	}
	free(s);
	if (out_len)
		*out_len = b.len;
	*out = ht_buf_steal(&b);
	return *out ? HYPERTEST_OK : HYPERTEST_ERR_NOMEM;
}

/* ---- JavaScript's string order ------------------------------------------- */

/* A key that orders code points as their first UTF-16 code units do:
 * U+E000..U+FFFF come after every supplementary code point, whose lead
 * surrogate D800..DBFF sorts before them.  (No surrogate code points
 * come out of the decoder.) */
static uint32_t utf16_key(uint32_t cp)
{
	return cp >= 0xE000 && cp <= 0xFFFF ? cp + 0x200000 : cp;
}

int ht_utf16_strcmp(const char *a, const char *b)
{
	const unsigned char *pa = (const unsigned char *)a, *pb = (const unsigned char *)b;

	while (*pa && *pb) {
		uint32_t ka = utf16_key(u8_next_cstr(&pa));
		uint32_t kb = utf16_key(u8_next_cstr(&pb));
		if (ka != kb)
			return ka < kb ? -1 : 1;
	}
	return *pa ? 1 : *pb ? -1 : 0;
}

/* ---- walking the directory ------------------------------------------------ */

struct ancestor {
	dev_t dev;
	ino_t ino;
	const char *path;
	const struct ancestor *up;
};

struct walk {
	const char *root;
	const char *const *skip; /* relative paths left out, NULL-terminated, or NULL */
	char **files; /* raw relative paths */
	size_t n, cap;
	ht_err *err;
};

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "test directory hash: out of memory");
}

static int push_file(struct walk *w, char *rel)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		char **v = realloc(w->files, cap * sizeof *v);
		if (!v) {
			free(rel);
			return nomem(w->err);
		}
		w->files = v;
		w->cap = cap;
	}
	w->files[w->n++] = rel;
	return HYPERTEST_OK;
}

static void free_names(char **names, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* The names in a directory, read in full before descending so that deep
 * trees keep one directory open at a time. */
static int list_dir(const char *path, char ***names, size_t *count, ht_err *err)
{
	DIR *d = opendir(path);
	char **v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;

	*names = NULL;
	*count = 0;
	if (!d)
		return ht_err_set(err, HYPERTEST_ERR_IO, "cannot read directory %s: %s", path,
		                  strerror(errno));
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e)
			break;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv;
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof *nv);
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[n] = ht_strdup(e->d_name)))
			goto oom;
		n++;
	}
	if (errno) {
		int saved = errno;
		closedir(d);
		free_names(v, n);
		return ht_err_set(err, HYPERTEST_ERR_IO, "cannot read directory %s: %s", path,
		                  strerror(saved));
	}
	closedir(d);
	*names = v;
	*count = n;
	return HYPERTEST_OK;
oom:
	closedir(d);
	free_names(v, n);
	return nomem(err);
}

/* Collect the files below the directory rel ("" for the root), whose own
 * identity is at the head of up. */
static int walk_dir(struct walk *w, const char *rel, const char *path, const struct ancestor *up)
{
	char **names;
	size_t count, i;
	int rc = list_dir(path, &names, &count, w->err);

	for (i = 0; rc == HYPERTEST_OK && i < count; i++) {
		char *crel = *rel ? ht_asprintf("%s/%s", rel, names[i]) : ht_strdup(names[i]);
		char *cpath = ht_path_join(path, names[i]);
		struct stat st;

		int skipped = 0;
		for (const char *const *s = w->skip; crel && s && *s && !skipped; s++)
			skipped = strcmp(crel, *s) == 0;
		if (!crel || !cpath) {
			rc = nomem(w->err);
		} else if (skipped) {
			/* hypertest's own state inside the test directory */
		} else if (stat(cpath, &st) != 0) {
			rc = ht_err_set(w->err, HYPERTEST_ERR_IO, "cannot stat %s: %s", cpath,
			                strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			const struct ancestor *a;
			struct ancestor self = {st.st_dev, st.st_ino, cpath, up};
			for (a = up; a; a = a->up)
				if (a->dev == st.st_dev && a->ino == st.st_ino)
					break;
			if (a)
				rc = ht_err_set(w->err, HYPERTEST_ERR_IO, "symbolic link loop: "
				                "%s leads back to %s", cpath, a->path);
			else
				rc = walk_dir(w, crel, cpath, &self);
		} else if (S_ISREG(st.st_mode)) {
			rc = push_file(w, crel);
			crel = NULL; /* owned by w now */
		}
		free(crel);
		free(cpath);
	}
	free_names(names, count);
	return rc;
}

static int cmp_paths(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	int c = ht_utf16_strcmp(a, b);
	return c ? c : strcmp(a, b);
}

/* ---- hashing ---------------------------------------------------------------- */

static int digest_write(void *ctx, const void *data, size_t len)
{
	return EVP_DigestUpdate(ctx, data, len) == 1 ? 0 : HYPERTEST_ERR_INVALID;
}

/* Feed the transformed content of one file; buf has CARRY_MAX + CHUNK_SIZE
 * bytes. */
static int hash_content(const char *path, struct sink *out, unsigned char *buf, ht_err *err)
{
	unsigned char *const chunk = buf + CARRY_MAX;
	size_t carry = 0;
	/* stat() said a regular file; if it became a FIFO since, do not wait on it */
	int fd = ht_open_regular(path, err);

	if (fd < 0)
		return HYPERTEST_ERR_IO;
	for (;;) {
		ssize_t got = read(fd, chunk, CHUNK_SIZE);
		const unsigned char *tail;
		size_t n, used;

		if (got < 0) {
			int saved = errno;
			if (saved == EINTR)
				continue;
			close(fd);
			return ht_err_set(err, HYPERTEST_ERR_IO, "cannot read %s: %s", path,
			                  strerror(saved));
		}
		n = carry + (size_t)got;
		used = transform(chunk - carry, n, 1, got == 0, out);
		if (got == 0 || out->rc)
			break;
		tail = chunk - carry + used;
		carry = n - used; /* at most 3 bytes, see transform() */
		memmove(chunk - carry, tail, carry);
	}
	close(fd);
	return HYPERTEST_OK;
}

static int hash_files(struct walk *w, struct sink *out, unsigned char *buf)
{
	static const unsigned char nul = 0;
	size_t i;
	int rc = HYPERTEST_OK;

	for (i = 0; rc == HYPERTEST_OK && i < w->n; i++) {
		char *path = ht_path_join(w->root, w->files[i]);
		if (!path)
			return nomem(w->err);
		transform((const unsigned char *)w->files[i], strlen(w->files[i]), 0, 1, out);
		sink_put(out, &nul, 1);
		rc = hash_content(path, out, buf, w->err);
		sink_put(out, &nul, 1);
		free(path);
		if (rc == HYPERTEST_OK && out->rc)
			rc = ht_err_set(w->err, HYPERTEST_ERR_INVALID, "SHA-256 failed");
	}
	return rc;
}

/* ---- the cache ---------------------------------------------------------------- */

/* Bump when the hash of the same files changes. */
#define DIRHASH_FORMAT "hypertest-dirhash/1"

/* The key of the sorted files of w: 0, or -1 when one cannot be stat()ed
 * (hashing then reports it). */
static int files_key(const struct walk *w, char key[65], int *recent)
{
	static const char digits[] = "0123456789abcdef";
	struct timespec limit;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int rc = 0;
	*recent = 0;
	if (clock_gettime(CLOCK_REALTIME, &limit) != 0)
		return -1;
	limit.tv_sec -= 1;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return -1;
	}
	EVP_DigestUpdate(c, DIRHASH_FORMAT, sizeof DIRHASH_FORMAT);
	ht_key_u64(c, w->n);
	for (size_t i = 0; i < w->n && !rc; i++) {
		char *path = ht_path_join(w->root, w->files[i]);
		struct stat st;
		if (!path || stat(path, &st) != 0) {
			rc = -1;
		} else {
			EVP_DigestUpdate(c, w->files[i], strlen(w->files[i]) + 1);
			if (ht_key_stat(c, &st, &limit))
				*recent = 1;
		}
		free(path);
	}
	if (!rc && EVP_DigestFinal_ex(c, md, &n) == 1 && n == 32) {
		for (unsigned i = 0; i < n; i++) {
			key[2 * i] = digits[md[i] >> 4];
			key[2 * i + 1] = digits[md[i] & 15];
		}
		key[64] = '\0';
	} else {
		rc = -1;
	}
	EVP_MD_CTX_free(c);
	return rc;
}

static int cache_get(const char *file, const char *dir, const char *key, char hex[65])
{
	json_t *doc = json_load_file(file, 0, NULL);
	json_t *e = json_object_get(json_object_get(doc, "dirs"), dir);
	const char *k = json_string_value(json_object_get(e, "key"));
	const char *v = json_string_value(json_object_get(e, "hash"));
	int ok = k && v && !strcmp(k, key) && strlen(v) == 64;
	if (ok)
		memcpy(hex, v, 65);
	json_decref(doc);
	return ok;
}

/* Best effort: a cache that cannot be written costs a hash next time. */
static void cache_put(const char *file, const char *dir, const char *key, const char *hex)
{
	json_t *doc = json_load_file(file, 0, NULL);
	if (!json_is_object(json_object_get(doc, "dirs"))) {
		json_decref(doc);
		doc = json_pack("{s:{}}", "dirs");
	}
	json_t *dirs = json_object_get(doc, "dirs");
	char *tmp = ht_asprintf("%s.%ld.tmp", file, (long)getpid());
	if (dirs && tmp &&
	    json_object_set_new(dirs, dir, json_pack("{s:s, s:s}", "key", key, "hash", hex)) == 0 &&
	    (json_dump_file(doc, tmp, JSON_INDENT(1)) != 0 || rename(tmp, file) != 0))
		unlink(tmp);
	free(tmp);
	json_decref(doc);
}

static int dirhash(const char *dir, const char *const *skip, const char *cache_file, char hex[65],
                   ht_err *err);

int ht_dirhash(const char *dir, char hex[65], ht_err *err)
{
	return dirhash(dir, NULL, NULL, hex, err);
}

/* "rel" of path when path is below dir, else NULL (both absolute, normal). */
static const char *below(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 1 && dir[0] == '/')
		return path[0] == '/' && path[1] ? path + 1 : NULL;
	return strncmp(dir, path, n) == 0 && path[n] == '/' && path[n + 1] ? path + n + 1 : NULL;
}

int ht_dirhash_project(const char *dir, const char *project_dir, const char *results,
                       const char *manifest, const char *cache_file, char hex[65], ht_err *err)
{
	char *abs[3] = {ht_abspath(project_dir, ".hypertest"),
	                results ? ht_abspath(project_dir, results) : NULL,
	                manifest ? ht_abspath(project_dir, manifest) : NULL};
	const char *skip[4] = {NULL, NULL, NULL, NULL};
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < 3; i++) {
		const char *rel = abs[i] ? below(dir, abs[i]) : NULL;
		if (rel)
			skip[n++] = rel;
	}
	rc = abs[0] ? dirhash(dir, skip, cache_file, hex, err) : nomem(err);
	for (size_t i = 0; i < 3; i++)
		free(abs[i]);
	return rc;
}

int ht_dirhash_skip(const char *dir, const char *const *skip, char hex[65], ht_err *err)
{
	return dirhash(dir, skip, NULL, hex, err);
}

int ht_dirhash_cached(const char *dir, const char *const *skip, const char *cache_file,
                      char hex[65], ht_err *err)
{
	return dirhash(dir, skip, cache_file, hex, err);
}

static int dirhash(const char *dir, const char *const *skip, const char *cache_file, char hex[65],
                   ht_err *err)
{
	static const char digits[] = "0123456789abcdef";
	struct walk w = {dir, skip, NULL, 0, 0, err};
	struct ancestor root;
	struct stat st;
	EVP_MD_CTX *md = NULL;
	struct sink *out = NULL;
	unsigned char *buf = NULL, digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0, i;
	char key[65];
	int rc, recent = 1, have_key = 0;

	hex[0] = '\0';
	if (stat(dir, &st) != 0)
		return ht_err_set(err, HYPERTEST_ERR_IO, "test directory %s: %s", dir,
		                  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ht_err_set(err, HYPERTEST_ERR_IO, "test directory %s: %s", dir,
		                  strerror(ENOTDIR));
	root.dev = st.st_dev;
	root.ino = st.st_ino;
	root.path = dir;
	root.up = NULL;
	rc = walk_dir(&w, "", dir, &root);
	if (rc != HYPERTEST_OK)
		goto done;
	if (w.n == 0) {
		rc = ht_err_set(err, HYPERTEST_ERR_EMPTY, "test directory %s contains no files",
		                dir);
		goto done;
	}
	qsort(w.files, w.n, sizeof *w.files, cmp_paths);
	have_key = cache_file && files_key(&w, key, &recent) == 0;
	if (have_key && cache_get(cache_file, dir, key, hex))
		goto done;

	md = EVP_MD_CTX_new();
	out = malloc(sizeof *out);
	buf = malloc(CARRY_MAX + CHUNK_SIZE);
	if (!md || !out || !buf) {
		rc = nomem(err);
		goto done;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID, "SHA-256 is not available");
		goto done;
	}
	out->write = digest_write;
	out->ctx = md;
	out->rc = 0;
	out->len = 0;
	rc = hash_files(&w, out, buf);
	if (rc != HYPERTEST_OK)
		goto done;
	sink_flush(out);
	if (out->rc || EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID, "SHA-256 failed");
		goto done;
	}
	for (i = 0; i < dlen; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[64] = '\0';
	if (have_key && !recent) {
		char again[65];
		int recent2 = 1;
		/* recorded only when the files did not change while being read */
		if (files_key(&w, again, &recent2) == 0 && !recent2 && !strcmp(again, key))
			cache_put(cache_file, dir, key, hex);
	}
done:
	free_names(w.files, w.n);
	EVP_MD_CTX_free(md);
	free(out);
	free(buf);
	return rc;
}
