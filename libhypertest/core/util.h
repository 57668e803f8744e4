/*
 * util.h - small helpers every module of libhypertest uses: error detail,
 * growable buffers, files, time, digests, ids.  Internal: the names carry
 * the private prefix ht_ and are not exported.
 */
#ifndef HT_UTIL_H
#define HT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hypertest/common.h>

#if defined(__GNUC__)
#define HT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HT_PRINTF(f, a)
#endif

/* ---- error detail ------------------------------------------------------- */

typedef struct ht_err {
	int code;        /* enum hypertest_error */
	char msg[2048];  /* what and where */
} ht_err;

/* Set code and message (printf-style); returns code.  err may be NULL. */
int ht_err_set(ht_err *err, int code, const char *fmt, ...) HT_PRINTF(3, 4);
int ht_err_setv(ht_err *err, int code, const char *fmt, va_list ap);
/* Put "prefix: " in front of the current message; returns err->code. */
int ht_err_prefix(ht_err *err, const char *fmt, ...) HT_PRINTF(2, 3);
void ht_err_clear(ht_err *err);

/* ---- growable byte buffer (always NUL-terminated) ------------------------ */

typedef struct ht_buf {
	char *data;
	size_t len;
	size_t cap;
} ht_buf;

#define HT_BUF_INIT {NULL, 0, 0}
int ht_buf_append(ht_buf *b, const void *data, size_t len); /* 0 or HYPERTEST_ERR_NOMEM */
int ht_buf_puts(ht_buf *b, const char *s);
int ht_buf_printf(ht_buf *b, const char *fmt, ...) HT_PRINTF(2, 3);
/* Detach the data (never NULL on success: "" for an empty buffer). */
char *ht_buf_steal(ht_buf *b);
void ht_buf_free(ht_buf *b);

/* ---- strings -------------------------------------------------------------- */

char *ht_strdup(const char *s);                  /* NULL-safe */
char *ht_asprintf(const char *fmt, ...) HT_PRINTF(1, 2);
/* Join directory and name with one '/'. */
char *ht_path_join(const char *dir, const char *name);
/* Levenshtein distance, for "did you mean". */
size_t ht_edit_distance(const char *a, const char *b);

/* ---- files ------------------------------------------------------------------ */

/* The cap of ht_read_file. */
#define HT_READ_MAX ((size_t)256 << 20)
/* Read a whole file; *data is NUL-terminated.  Errors name the path.  At
 * most HT_READ_MAX bytes. */
int ht_read_file(const char *path, char **data, size_t *len, ht_err *err);
/* The same with a cap of max bytes: a larger file (or an endless one,
 * /dev/zero) is refused with "PATH: larger than CAP, the limit for WHAT".
 * The open never blocks (a FIFO without a writer reads as empty). */
int ht_read_file_max(const char *path, size_t max, const char *what, char **data, size_t *len,
                     ht_err *err);
/* Open a regular file for reading without ever blocking on a FIFO or a
 * device (O_NONBLOCK, then fstat): anything else is refused with "PATH:
 * not a regular file".  The fd, or -1 with err set. */
int ht_open_regular(const char *path, ht_err *err);
/* "4 MiB", "512 KiB" or "100 bytes". */
void ht_size_text(size_t n, char out[32]);
/* Write through a temporary file and rename(); creates parent dirs. */
int ht_write_file_atomic(const char *path, const void *data, size_t len, ht_err *err);
int ht_mkdir_p(const char *path, ht_err *err);
int ht_rm_rf(const char *path, ht_err *err);
int ht_is_dir(const char *path);
/* An absolute, normalised form of path (relative to base when relative). */
char *ht_abspath(const char *base, const char *path);

/* ---- time ------------------------------------------------------------------ */

int64_t ht_now_ms(void);       /* wall clock, ms since the epoch */
int64_t ht_monotonic_ms(void); /* monotonic clock */
/* "2024-05-01T12:00:00.123Z" into out (at least 25 bytes). */
void ht_iso8601(int64_t epoch_ms, char out[32]);

/* ---- digests and ids ------------------------------------------------------- */

/* Lowercase hex SHA-256 of data into hex (65 bytes with the NUL). */
int ht_sha256_hex(const void *data, size_t len, char hex[65]);
/* A random version-4 UUID from OpenSSL's generator (37 bytes with the NUL). */
int ht_uuid_v4(char out[37]);

#endif /* HT_UTIL_H */
