/*
 * sigv4.h - AWS Signature Version 4 for the aws provider, and the small
 * pieces every module of the provider shares: an error record, a header
 * list, URI encoding and SHA-256 (the growable string is plugins/common's
 * htp_buf).
 *
 * Internal to the plugin (hidden visibility); names are aws_*.
 */
#ifndef HT_PROVIDER_AWS_SIGV4_H
#define HT_PROVIDER_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

#include <hypertest/common.h>

#include "../common/htplugin.h" /* htp_buf */

#if defined(__GNUC__)
#define AWS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AWS_PRINTF(f, a)
#endif

/* ---- errors --------------------------------------------------------------- */

/* The provider's functions follow plugins/common's error convention: they
 * return 0 or an enum hypertest_error and put what failed and where (never
 * a secret) in a malloc'd message *err, which the caller frees.  aws_fail
 * sets it (err may be NULL), replacing and freeing an earlier message: a
 * retried step reports its last failure.  *err is NULL when memory ran out
 * (aws_fail with HYPERTEST_ERR_NOMEM makes no message): a constructor that
 * returns NULL tells its one other code from that, and aws_msg gives the
 * text to show in every case. */
int aws_fail(char **err, int code, const char *fmt, ...) AWS_PRINTF(3, 4);
static inline const char *aws_msg(const char *err)
{
	return err ? err : "out of memory";
}

/* ---- header lists --------------------------------------------------------- */

typedef struct aws_header {
	char *name;
	char *value;
} aws_header;

typedef struct aws_headers {
	aws_header *v;
	size_t n, cap;
} aws_headers;

int aws_headers_add(aws_headers *h, const char *name, const char *value); /* 0 or -1 */
/* Replace every header of that name (case-insensitive) by one. */
int aws_headers_set(aws_headers *h, const char *name, const char *value);
void aws_headers_remove(aws_headers *h, const char *name);
/* The first value of that name (case-insensitive), or NULL. */
const char *aws_headers_get(const aws_headers *h, const char *name);
void aws_headers_free(aws_headers *h);

/* ---- encoding and hashing ------------------------------------------------- */

/* Append s[0..len) URI-encoded the AWS way: every byte but A-Z a-z 0-9 - _ . ~
 * becomes %XX (upper-case hex); '/' too unless keep_slash. */
int aws_uri_encode(htp_buf *out, const char *s, size_t len, int keep_slash);
/* Append s[0..len) with %XX sequences decoded ('+' stays '+'). */
int aws_uri_decode(htp_buf *out, const char *s, size_t len);
/* Lower-case hex SHA-256 of data into out[65]. */
void aws_sha256_hex(const void *data, size_t len, char out[65]);
/* "20150830T123600Z" into out[17]. */
void aws_amz_date(time_t t, char out[17]);

/* ---- Signature Version 4 -------------------------------------------------- */

#define AWS_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* The signing key of one day, region and service, kept between requests
 * (it changes daily; deriving it is four HMACs).  Owned by the caller,
 * used by one thread at a time; all zero is empty. */
typedef struct aws_sigv4_key_cache {
	char scope[160];               /* "<yyyymmdd>/<region>/<service>" it is for */
	unsigned char secret_hash[32]; /* SHA-256 of "AWS4" + the secret it came from */
	unsigned char key[32];
} aws_sigv4_key_cache;

typedef struct aws_sigv4_params {
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "" when none */
	const char *region;
	const char *service;       /* "s3", "lambda", ... */
	time_t time;               /* when the request is signed */
	/* Canonical URI: remove "." and ".." segments and empty segments. */
	int normalize_path;
	/* Canonical URI: URI-encode the (already encoded) path once more.
	 * Every service but S3; with it off, the path is taken as encoded. */
	int double_encode;
	/* Send the session token but leave it out of what is signed. */
	int omit_session_token;
	/* Header form: add and sign x-amz-content-sha256 (S3 wants it). */
	int content_sha256_header;
	/* NULL: SHA-256 of the body; else the payload hash to sign as is
	 * (AWS_UNSIGNED_PAYLOAD, or the hex digest of a body streamed later).
	 * An x-amz-content-sha256 header of the request wins over both. */
	const char *payload_hash;
	long expires;              /* presigned form: X-Amz-Expires, seconds */
	aws_sigv4_key_cache *key_cache; /* NULL: derive the key every time */
} aws_sigv4_params;

/* Fill the service-dependent defaults (path handling, content header). */
void aws_sigv4_defaults(aws_sigv4_params *p, const char *service);

/* The request to sign, as it goes on the wire. */
typedef struct aws_sigv4_request {
	const char *method;
	const char *path;          /* percent-encoded path, "/" when empty */
	const char *query;         /* percent-encoded query without '?', or NULL */
	const aws_headers *headers; /* must include Host */
	const void *body;
	size_t body_len;
} aws_sigv4_request;

typedef struct aws_sigv4_result {
	char *canonical_request;
	char *string_to_sign;
	char signature[65];
	/* Header form: headers to add, in order (X-Amz-Security-Token,
	 * X-Amz-Date, x-amz-content-sha256, Authorization).  Presigned form:
	 * none. */
	aws_headers add_headers;
	/* Presigned form: the query to send (the request's own, then the
	 * X-Amz-* parameters).  Header form: NULL. */
	char *query;
} aws_sigv4_result;

enum { AWS_SIGV4_HEADER = 0, AWS_SIGV4_QUERY = 1 };

/* Sign req in form AWS_SIGV4_HEADER or AWS_SIGV4_QUERY.  On success fills
 * *out (release with aws_sigv4_result_free); on error *out is empty. */
int aws_sigv4_sign(const aws_sigv4_params *p, const aws_sigv4_request *req, int form,
                   aws_sigv4_result *out, char **err);
void aws_sigv4_result_free(aws_sigv4_result *r);

#endif /* HT_PROVIDER_AWS_SIGV4_H */
