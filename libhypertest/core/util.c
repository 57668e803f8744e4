/*
 * util.c - error detail, buffers, strings, files, time, digests and ids.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util.h"

/* ---- error detail ------------------------------------------------------- */

int ht_err_setv(ht_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	}
	return code;
}

int ht_err_set(ht_err *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ht_err_setv(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int ht_err_prefix(ht_err *err, const char *fmt, ...)
{
	char head[1024];
	size_t hl, ol;
	va_list ap;

	if (!err)
		return HYPERTEST_ERR_INVALID;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	hl = strlen(head);
	if (hl + 2 >= sizeof err->msg)
		hl = sizeof err->msg - 3;
	ol = strlen(err->msg);
	if (hl + 2 + ol >= sizeof err->msg)
		ol = sizeof err->msg - hl - 3;
	memmove(err->msg + hl + 2, err->msg, ol);
	err->msg[hl + 2 + ol] = '\0';
	memcpy(err->msg, head, hl);
	err->msg[hl] = ':';
	err->msg[hl + 1] = ' ';
	return err->code;
}

void ht_err_clear(ht_err *err)
{
	if (err) {
		err->code = HYPERTEST_OK;
		err->msg[0] = '\0';
	}
}

/* ---- buffers -------------------------------------------------------------- */

int ht_buf_append(ht_buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;
		while (cap < b->len + len + 1) {
			if (cap > SIZE_MAX / 2)
				return HYPERTEST_ERR_NOMEM;
			cap *= 2;
		}
		p = realloc(b->data, cap);
		if (!p)
			return HYPERTEST_ERR_NOMEM;
		b->data = p;
		b->cap = cap;
	}
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return HYPERTEST_OK;
}

int ht_buf_puts(ht_buf *b, const char *s)
{
	return ht_buf_append(b, s, strlen(s));
}

int ht_buf_printf(ht_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return HYPERTEST_ERR_INVALID;
	if ((size_t)n < sizeof small)
		return ht_buf_append(b, small, (size_t)n);
	{
		char *big = malloc((size_t)n + 1);
		int rc;
		if (!big)
			return HYPERTEST_ERR_NOMEM;
		va_start(ap, fmt);
		vsnprintf(big, (size_t)n + 1, fmt, ap);
		va_end(ap);
		rc = ht_buf_append(b, big, (size_t)n);
		free(big);
		return rc;
	}
}

char *ht_buf_steal(ht_buf *b)
{
	char *p;
	if (!b->data && ht_buf_append(b, "", 0) != HYPERTEST_OK)
		return NULL;
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void ht_buf_free(ht_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---- strings ---------------------------------------------------------------- */

char *ht_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *ht_asprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = malloc((size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

char *ht_path_join(const char *dir, const char *name)
{
	size_t dl;
	if (!dir || !*dir)
		return ht_strdup(name);
	if (!name || !*name)
		return ht_strdup(dir);
	dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	while (*name == '/')
		name++;
	return ht_asprintf("%.*s/%s", (int)dl, dir, name);
}

size_t ht_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t *row = calloc(lb + 1, sizeof *row);
	size_t result;

	if (!row)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	result = row[lb];
	free(row);
	return result;
}

/* ---- files ------------------------------------------------------------------ */

void ht_size_text(size_t n, char out[32])
{
	if (n >= ((size_t)1 << 20) && n % ((size_t)1 << 20) == 0)
		snprintf(out, 32, "%zu MiB", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(out, 32, "%zu KiB", n >> 10);
	else
		snprintf(out, 32, "%zu bytes", n);
}

int ht_open_regular(const char *path, ht_err *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		ht_err_set(err, errno == ENOENT ? HYPERTEST_ERR_NOT_FOUND : HYPERTEST_ERR_IO, "%s: %s",
		           path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		int e = errno;
		ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path,
		           S_ISREG(st.st_mode) ? strerror(e) : "not a regular file");
		close(fd);
		return -1;
	}
	/* a regular file does not block: back to ordinary reads */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int ht_read_file(const char *path, char **data, size_t *len, ht_err *err)
{
	return ht_read_file_max(path, HT_READ_MAX, "a file read whole", data, len, err);
}

int ht_read_file_max(const char *path, size_t max, const char *what, char **data, size_t *len,
                     ht_err *err)
{
	ht_buf b = HT_BUF_INIT;
	char chunk[65536];
	/* O_NONBLOCK: opening a FIFO nobody writes to never blocks (it then
	 * reads as empty); the reads themselves block as usual */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return ht_err_set(err, errno == ENOENT ? HYPERTEST_ERR_NOT_FOUND : HYPERTEST_ERR_IO,
		                  "%s: %s", path, strerror(errno));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	for (;;) {
		ssize_t n;
		if (b.len > max) {
			char cap[32];
			ht_size_text(max, cap);
			close(fd);
			ht_buf_free(&b);
			return ht_err_set(err, HYPERTEST_ERR_IO, "%s: larger than %s, the limit for %s",
			                  path, cap, what);
		}
		n = read(fd, chunk, sizeof chunk);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
			close(fd);
			ht_buf_free(&b);
			return HYPERTEST_ERR_IO;
		}
		if (n == 0)
			break;
		if (ht_buf_append(&b, chunk, (size_t)n) != HYPERTEST_OK) {
			close(fd);
			ht_buf_free(&b);
			return ht_err_set(err, HYPERTEST_ERR_NOMEM, "%s: out of memory", path);
		}
	}
	close(fd);
	if (len)
		*len = b.len;
	*data = ht_buf_steal(&b);
	return *data ? HYPERTEST_OK : ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

static char *parent_dir(const char *path)
{
	char *p = ht_strdup(path), *slash;
	if (!p)
		return NULL;
	slash = strrchr(p, '/');
	if (!slash) {
		free(p);
		return ht_strdup(".");
	}
	if (slash == p)
		slash[1] = '\0';
	else
		*slash = '\0';
	return p;
}

int ht_write_file_atomic(const char *path, const void *data, size_t len, ht_err *err)
{
	char *dir = parent_dir(path), *tmp = NULL;
	const char *p = data;
	int fd = -1, rc;

	if (!dir)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = ht_mkdir_p(dir, err);
	free(dir);
	if (rc)
		return rc;
	tmp = ht_asprintf("%s.tmp-XXXXXX", path);
	if (!tmp)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
		free(tmp);
		return rc;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	free(tmp);
	return HYPERTEST_OK;
fail:
	rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return rc;
}

int ht_mkdir_p(const char *path, ht_err *err)
{
	char *p = ht_strdup(path), *s;
	int rc = HYPERTEST_OK;

	if (!p)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) != 0 && errno != EEXIST) {
				rc = ht_err_set(err, HYPERTEST_ERR_IO, "cannot create directory %s: %s", p,
				                strerror(errno));
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	if (rc == HYPERTEST_OK && !ht_is_dir(path))
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s exists and is not a directory", path);
	free(p);
	return rc;
}

int ht_rm_rf(const char *path, ht_err *err)
{
	struct stat st;
	int rc = HYPERTEST_OK;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? HYPERTEST_OK
		                       : ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		if (!d)
			return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
		while (rc == HYPERTEST_OK && (e = readdir(d)) != NULL) {
			char *child;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			child = ht_path_join(path, e->d_name);
			if (!child)
				rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
			else
				rc = ht_rm_rf(child, err);
			free(child);
		}
		closedir(d);
		if (rc == HYPERTEST_OK && rmdir(path) != 0)
			rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
	return HYPERTEST_OK;
}

int ht_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *ht_abspath(const char *base, const char *path)
{
	char *joined, *out, *w;
	const char *r;
	size_t n;

	if (!path)
		return NULL;
	if (path[0] == '/') {
		joined = ht_strdup(path);
	} else if (base && base[0] == '/') {
		joined = ht_path_join(base, path);
	} else {
		char cwd[PATH_MAX];
		char *b;
		if (!getcwd(cwd, sizeof cwd))
			return NULL;
		b = base ? ht_path_join(cwd, base) : ht_strdup(cwd);
		joined = b ? ht_path_join(b, path) : NULL;
		free(b);
	}
	if (!joined)
		return NULL;
	/* normalise: collapse //, drop /., resolve /.. lexically */
	n = strlen(joined);
	out = malloc(n + 2);
	if (!out) {
		free(joined);
		return NULL;
	}
	w = out;
	r = joined;
	while (*r) {
		const char *seg;
		size_t sl;
		while (*r == '/')
			r++;
		seg = r;
		while (*r && *r != '/')
			r++;
		sl = (size_t)(r - seg);
		if (sl == 0 || (sl == 1 && seg[0] == '.'))
			continue;
		if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
			while (w > out && *--w != '/')
				;
			continue;
		}
		*w++ = '/';
		memcpy(w, seg, sl);
		w += sl;
	}
	if (w == out)
		*w++ = '/';
	*w = '\0';
	free(joined);
	return out;
}

/* ---- time ------------------------------------------------------------------ */

int64_t ht_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ht_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ht_iso8601(int64_t epoch_ms, char out[32])
{
	time_t secs = (time_t)(epoch_ms / 1000);
	struct tm tm;
	size_t n;
	gmtime_r(&secs, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(epoch_ms % 1000) % 1000u);
}

/* ---- digests and ids ------------------------------------------------------- */

int ht_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	static const char digits[] = "0123456789abcdef";
	int i;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return HYPERTEST_ERR_INVALID;
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	return HYPERTEST_OK;
}

int ht_uuid_v4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof b) != 1)
		return HYPERTEST_ERR_INVALID;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, 37,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
	         b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	         b[14], b[15]);
	return HYPERTEST_OK;
}
