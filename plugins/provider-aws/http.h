/*
 * http.h - the aws provider's HTTP layer: requests signed by a hook before
 * every attempt, responses with a size cap, AWS error parsing (JSON and S3
 * XML), retries with exponential backoff and full jitter, a blocking mode
 * on one reusable libcurl easy handle (http.c) and an asynchronous mode
 * (http-multi.c: thousands of requests in flight from one thread) over a
 * builtin HTTP/1.1 client on epoll (http-ev.c, http-conn.c) or libcurl
 * multi handles.
 * Log lines and error messages pass through aws_redact().
 */
#ifndef HT_PROVIDER_AWS_HTTP_H
#define HT_PROVIDER_AWS_HTTP_H

#include <stddef.h>

#include "credentials.h"
#include "sigv4.h"
#include "tls.h"

typedef struct aws_http aws_http;
typedef struct aws_http_request aws_http_request;

/* level: enum hypertest_log_level; msg is already redacted. */
typedef void (*aws_log_fn)(void *ud, int level, const char *msg);

/* The asynchronous mode's transport (aws_http_config.client). */
enum {
	AWS_HTTP_CLIENT_AUTO = 0, /* builtin, unless a proxy variable applies to the first
	                           * request's URL (aws_http_multi_add, aws_http_warm) */
	AWS_HTTP_CLIENT_BUILTIN,  /* the builtin client (proxy variables not honoured) */
	AWS_HTTP_CLIENT_CURL      /* libcurl's multi interface */
};

/* HTTP/2 for the asynchronous mode (aws_http_config.http2). */
enum {
	AWS_HTTP2_OFF = 0, /* HTTP/1.1 */
	AWS_HTTP2_ON,      /* ALPN "h2" over https, prior knowledge (h2c) over http */
	AWS_HTTP2_TLS      /* ALPN "h2" over https, HTTP/1.1 over http */
};

typedef struct aws_http_config {
	long concurrency;         /* transfers and connections at most; default 64 */
	int max_attempts;         /* tries per request, first included; default 5 */
	long retry_base_ms;       /* backoff: first delay at most this; default 100 */
	long retry_cap_ms;        /* backoff: one delay at most this; default 20000 */
	long retry_budget_ms;     /* all delays of one request at most this; <= 0: 30000 */
	long connect_timeout_ms;  /* default 10000 */
	long timeout_ms;          /* one attempt at most this; 0: no limit (default) */
	size_t max_response;      /* response bodies larger than this fail; default 16 MiB */
	int verbose;              /* log request and response headers (redacted) */
	int client;               /* AWS_HTTP_CLIENT_*: the asynchronous mode's transport */
	int http2;                /* AWS_HTTP2_*: does the asynchronous mode offer HTTP/2;
	                           * the builtin client multiplexes each connection up
	                           * to the peer's SETTINGS_MAX_CONCURRENT_STREAMS
	                           * (needs HAVE_NGHTTP2) */
	long max_handshakes;      /* builtin: TLS connections in their handshake at most
	                           * (each holds some 50 KB until it is done: thousands
	                           * at once would be the process's peak); default 1024 */
	aws_log_fn log;
	void *log_ud;
	const aws_credentials *creds; /* secrets to redact (borrowed; may be NULL) */
	aws_tls *tls;             /* CA bundle, certificate store, TLS sessions: the client
	                           * takes a reference; NULL: one of its own
	                           * (aws_tls_new_default) */
	/* The blocking mode asks it while a request waits (at least once a
	 * second during a transfer, every AWS_HTTP_CANCEL_SLICE_MS of a
	 * backoff, before each attempt): nonzero ends the request with
	 * HYPERTEST_ERR_CANCELLED.  May be called from a libcurl callback:
	 * cheap, no call into the client.  NULL: never cancelled. */
	int (*cancelled)(void *ud);
	void *cancel_ud;
} aws_http_config;

/* How long the blocking mode sleeps at most between two looks at
 * cancelled() during a backoff. */
#define AWS_HTTP_CANCEL_SLICE_MS 100

/* Called before every attempt: add the signature to headers (a fresh copy
 * of the request's own headers with Host).  0 or an error code. */
typedef int (*aws_http_sign_fn)(void *ud, const aws_http_request *req, aws_headers *headers,
                                char **err);

struct aws_http_request {
	char *method;
	char *url;            /* percent-encoded */
	aws_headers headers;
	const void *body;     /* borrowed: must live until the request completes */
	size_t body_len;
	void *body_owned;     /* freed with the request (set body to it too) */
	char *what;           /* for messages: "S3 PutObject s3://bucket/key" */
	aws_http_sign_fn sign;
	void *sign_ud;        /* borrowed */
	int max_attempts;     /* 0: the client's */
	/* A cap on this request's response body (0: the client's max_response)
	 * and what it is the limit for, for the message ("an object read
	 * whole").  A 2xx answer announcing more (Content-Length) is refused
	 * before its body; one without a length stops when the cap is passed. */
	size_t max_response;
	const char *max_what;
};

typedef struct aws_http_response {
	long status;          /* 0 when no response arrived */
	aws_headers headers;
	htp_buf body;
	char *error_code;     /* the AWS error code ("NoSuchKey"), or NULL */
	char *error_message;  /* its message, or NULL */
	int attempts;
} aws_http_response;

/* ---- requests and responses ------------------------------------------------- */

int aws_http_request_init(aws_http_request *r, const char *method, const char *url,
                          const char *what);
void aws_http_request_clear(aws_http_request *r);
/* Heap versions, for the asynchronous mode (which takes ownership). */
aws_http_request *aws_http_request_new(const char *method, const char *url, const char *what);
void aws_http_request_free(aws_http_request *r);
void aws_http_response_clear(aws_http_response *r);

/* ---- signing with SigV4 ------------------------------------------------------ */

typedef struct aws_http_sigv4 {
	const aws_credentials *creds;
	const char *region;
	const char *service;      /* "s3", "lambda", ... */
	const char *payload_hash; /* NULL: hash the body; AWS_UNSIGNED_PAYLOAD; a hex digest */
	aws_sigv4_key_cache key_cache; /* the day's signing key, kept */
} aws_http_sigv4;

/* An aws_http_sign_fn; ud is an aws_http_sigv4. */
int aws_http_sign_sigv4(void *ud, const aws_http_request *req, aws_headers *headers,
                        char **err);

/* ---- the client ------------------------------------------------------------------ */

/* cfg may be NULL (defaults).  NULL when libcurl cannot start (*err says
 * why: HYPERTEST_ERR_HTTP) or memory ran out (*err NULL). */
aws_http *aws_http_new(const aws_http_config *cfg, char **err);
void aws_http_free(aws_http *h);

/* Blocking: perform req with retries.  0 for a 2xx answer; otherwise
 * HYPERTEST_ERR_NOT_FOUND (404), HYPERTEST_ERR_AUTH (401, 403),
 * HYPERTEST_ERR_HTTP (other statuses, transport errors, oversized
 * response), HYPERTEST_ERR_CANCELLED (the config's cancelled() said so:
 * "S3 PutObject s3://b/k: cancelled", the transfer under way aborted),
 * and err->msg like "S3 PutObject s3://b/k: HTTP 403 AccessDenied:
 * Access Denied".  resp (cleared first) holds the last answer either
 * way. */
int aws_http_perform(aws_http *h, aws_http_request *req, aws_http_response *resp, char **err);

/* Sleep ms in slices of AWS_HTTP_CANCEL_SLICE_MS, asking cancelled(ud)
 * (NULL: never) before each: nonzero, at once, when it says so. */
int aws_http_sleep(long ms, int (*cancelled)(void *ud), void *ud);

/* Asynchronous: called once per added request, from aws_http_multi_wait,
 * with the outcome as aws_http_perform would return it (code 0 or an
 * error with its message; HYPERTEST_ERR_CANCELLED after cancel).  req and
 * resp are freed when it returns. */
typedef void (*aws_http_done_fn)(void *ud, aws_http_request *req, aws_http_response *resp,
                                 int code, const char *message);

/* Start req (made by aws_http_request_new; ownership passes, also on
 * error). */
int aws_http_multi_add(aws_http *h, aws_http_request *req, aws_http_done_fn done, void *ud,
                       char **err);
/* Drive transfers for up to timeout_ms (-1: until at least one completes;
 * 0: just what is ready) and call completions.  Returns how many completed,
 * or a negated error code. */
int aws_http_multi_wait(aws_http *h, int timeout_ms);
/* Abandon everything in flight or waiting for a retry; each completes with
 * HYPERTEST_ERR_CANCELLED in the next aws_http_multi_wait. */
void aws_http_multi_cancel(aws_http *h);
/* Requests added and not yet completed (the warm-up's not counted). */
size_t aws_http_multi_pending(aws_http *h);

/* Open up to n connections to the host of req ahead of the asynchronous
 * requests (at most the client's concurrency, once per client): one copy
 * of req, then (its TLS session cached for the others to resume) n more
 * at once (signed once; its body is not sent: a GET), whose answers are
 * read and dropped, leaving n connections (TLS handshake done) idle in the
 * pool.  A thread drives them (calling no log or completion callback)
 * until the next call of aws_http_multi_* or aws_http_free, which stops it
 * and takes over what is left (the n are never started if the first is
 * not done by then); the first aws_http_multi_add waits for the warm-up's
 * requests in flight to be done (libcurl), or the requests wait in the
 * transport for the warm-up's connections as each becomes idle (builtin),
 * so that the requests reuse their connections and open none beside them
 * while the warm-up's requests are out.  req stays the caller's.
 * *opening (if not NULL): how many connections the warm-up opens, 0 when
 * it does not start (already done once, requests made, n == 0).  0, or
 * an error code (nothing started). */
int aws_http_warm(aws_http *h, const aws_http_request *req, size_t n, size_t *opening,
                  char **err);
/* Warm-up requests not finished yet: waits for the warm-up's thread to be
 * done first (what it leaves finishes in aws_http_multi_wait). */
size_t aws_http_warm_left(aws_http *h);
/* Easy handles the asynchronous mode holds (the warm-up's included; each
 * is reused once its request is done, and kept until aws_http_free or
 * aws_http_release_idle); on the builtin transport, which has no handles,
 * the connections it has open. */
size_t aws_http_handles(const aws_http *h);
/* No request is added from now on (aws_http_perform still works): free the
 * asynchronous mode's idle easy handles, and each of the others as its
 * request completes, and close the idle connections, and each of the
 * others as its request completes (libcurl: as the requests in flight
 * give theirs back).  The requests in flight complete as before, retries
 * included.  Stops the warm-up like aws_http_multi_*.  A request added
 * later still works, without reuse. */
void aws_http_release_idle(aws_http *h);
/* Does a proxy variable of the environment apply to url (HTTPS_PROXY,
 * https_proxy, HTTP_PROXY, http_proxy, ALL_PROXY, all_proxy by the URL's
 * scheme, unless NO_PROXY or no_proxy names its host)? */
int aws_http_proxy_applies(const char *url);
/* The name of the variable that applies (its value may hold a password:
 * never logged), or NULL. */
const char *aws_http_proxy_variable(const char *url);
/* Which transport the asynchronous mode uses: "builtin", "curl", or
 * "undecided" before its first request. */
const char *aws_http_transport(const aws_http *h);

/* ---- AWS errors ------------------------------------------------------------------ */

/* Fill resp->error_code and error_message from the headers and body. */
void aws_http_parse_error(aws_http_response *resp);
/* Retry this outcome? (429, 5xx, throttling codes) */
int aws_http_retryable(long status, const char *error_code);

#endif /* HT_PROVIDER_AWS_HTTP_H */
