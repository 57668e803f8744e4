/*
 * http-int.h - what the parts of the aws provider's HTTP layer share:
 * http.c (requests, AWS errors, the client, one attempt, the blocking
 * mode), http-multi.c (the asynchronous mode: transfers, retries, the
 * warm-up) and its builtin transport, http-ev.c (connections, the queue,
 * deadlines) over http-conn.c (a connection, TLS, the response reader).
 * Not for the rest of the provider, which uses http.h.
 */
#ifndef HT_PROVIDER_AWS_HTTP_INT_H
#define HT_PROVIDER_AWS_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <sys/epoll.h>

#include <curl/curl.h>

#include "http.h"

/* transfers per multi handle at most (http-multi.c) */
#define AWS_SHARD_SIZE 256
/* warm-up requests added at once by the warm-up's thread (http-multi.c) */
#define AWS_WARM_CHUNK 64

/* libcurl's buffers of each handle of the asynchronous mode, which live
 * as long as the handle: a receive buffer (16 KB by default) and, for
 * every HTTPS request, an upload buffer the request is copied into (64 KB
 * by default; 16 KB is libcurl's least).  Thousands of handles are in
 * flight at once and the answers are small (a TLS record is read in
 * pieces of this size).  aws_http_small_buffers sets both. */
#define AWS_RECV_BUFFER 4096L
#define AWS_UPLOAD_BUFFER 16384L
void aws_http_small_buffers(CURL *e);
/* The asynchronous mode's handles asked for HTTP/2 (cfg.http2) to url. */
void aws_http_version(aws_http *h, CURL *e, const char *url);

typedef struct shard shard;
typedef struct aws_hconn aws_hconn; /* http-conn.h: a connection of the builtin transport */
typedef struct aws_hev aws_hev;     /* http-ev.c: the builtin transport */

/* One request in the client: its easy handle, its attempts. */
typedef struct transfer {
	aws_http *h;
	shard *sh;               /* while in a multi handle */
	aws_http_request *req;
	aws_http_response resp;
	CURL *easy;
	struct curl_slist *slist;
	char errbuf[CURL_ERROR_SIZE];
	int overflow;            /* the body passed max_response */
	long long announced;     /* a Content-Length past it, or -1 */
	long hstatus;            /* the status line of the headers being read */
	int warm;                /* a warm-up request (aws_http_warm): no completion */
	long delay_total;        /* ms slept between attempts */
	long long due;           /* monotonic ms when a delayed retry starts */
	int done_code;           /* for completions queued as ready */
	char *done_msg;
	aws_http_done_fn done;
	void *ud;
	struct transfer *next, *prev; /* in one of the client's lists */
	/* the builtin transport (http-ev.c) */
	htp_buf reqbuf;          /* the request as sent: head and body; freed once out */
	size_t sent;             /* bytes of it written */
	aws_hconn *conn;         /* the connection it is on, or NULL */
	struct aws_hhost *hhost; /* its URL's host and port */
	int fresh;               /* not on an idle connection */
	int resent;              /* sent again on a new connection after a reused one died */
	int cc;                  /* its attempt's outcome (a CURLcode), once finished */
	long long deadline;      /* monotonic ms the attempt times out, -1: never */
	struct transfer *wnext;  /* waiting for a connection, or finished */
	struct transfer *tnext, *tprev; /* in a deadline list */
	int in_timed, in_wait, in_done;
	int warming;             /* a warm-up request counted as not finished */
	/* HTTP/2 (http-h2.c): its stream on conn */
	int stream;              /* the stream's id, 0: not submitted yet */
	struct transfer *snext, *sprev; /* on conn's streams */
	struct transfer *enext;  /* on conn's ended streams */
	size_t body_at, body_end; /* the body in reqbuf still to go into the session */
	unsigned long long h2_got; /* bytes of the answer received (fields and body) */
	int h2_end;              /* how the stream ended: H2_END_* of http-conn.h */
	int h2_complete;         /* a final status and the stream's end came */
	unsigned h2_error;       /* the RST_STREAM's error code */
	int refused;             /* times the server refused it unprocessed */
} transfer;

typedef struct tlist {
	transfer *head, *tail;
	size_t n;
} tlist;

/* One multi handle of the asynchronous mode. */
struct shard {
	aws_http *h;
	CURLM *multi;
	size_t running;      /* transfers in it */
	long long timer_due; /* monotonic ms of curl's timeout, -1: none */
	unsigned index;
};

/* Which transport the asynchronous mode uses. */
enum { AWS_TRANSPORT_UNDECIDED, AWS_TRANSPORT_CURL, AWS_TRANSPORT_BUILTIN };

struct aws_http {
	aws_http_config cfg;
	int transport;     /* AWS_TRANSPORT_*: decided by the first request */
	int logged_transport;
	aws_hev *ev;       /* the builtin transport's state */
	CURL *easy;        /* the blocking mode's handle, reused */
	shard *shards;     /* the multi handles */
	size_t nshards;
	aws_tls *tls;      /* one reference */
	tlist running;     /* in a multi handle */
	tlist delayed;     /* waiting for a retry, ordered by nothing (few) */
	tlist ready;       /* completed, callback pending (cancelled, add errors) */
	CURL **idle;       /* easy handles to reuse in the multi mode */
	size_t nidle, idle_cap;
	size_t handles;    /* easy handles the multi mode holds (warm-up's included) */
	int release_idle;  /* aws_http_release_idle: finished handles are freed, not kept */
	unsigned long long rng;
	int epfd;          /* the sockets of all multi handles (http-multi.c) */
	CURL **byfd;       /* the easy handle each watched socket is for, by descriptor */
	size_t nbyfd;
	/* the warm-up (aws_http_warm): its transfers in running, and the
	 * thread that drives them until the client is used */
	int warmed;        /* aws_http_warm was called */
	size_t warm_left;
	size_t warm_more;  /* to add once the first is done (its TLS session cached) */
	char *warm_url;
	struct curl_slist *warm_headers; /* shared by the warm-up's requests */
	pthread_t warm_thread;
	int warm_thread_on;
	atomic_int warm_stop;
};

enum { OUTCOME_DONE = 0, OUTCOME_RETRY = 1 };

/* Log a line at level (redacted). */
void aws_http_logf(aws_http *h, int level, const char *fmt, ...) AWS_PRINTF(3, 4);
/* Log data (header lines) at debug level, each line with prefix. */
void aws_http_log_lines(aws_http *h, const char *prefix, const char *data, size_t size);
/* Record a response header line (the status line included, CRLF
 * included) or body bytes of t's attempt: as libcurl's callbacks, size
 * on success, another value to stop (t->overflow set past the cap). */
size_t aws_http_on_header(transfer *t, const char *data, size_t size);
size_t aws_http_on_body(transfer *t, const char *data, size_t size);

/* The request's header lines for libcurl: its own, Host, the signature. */
int aws_http_header_list(aws_http *h, const aws_http_request *r, struct curl_slist **out,
                         char **err);
/* The builtin transport: t's request built again for the same attempt
 * (signed again; not counted), to send it on a new connection after it
 * was freed once out.  0 or an error code. */
int aws_http_rebuild(aws_http *h, transfer *t, char **err);
/* Configure t->easy for the next attempt (signing included). */
int aws_http_setup_attempt(aws_http *h, transfer *t, char **err);
/* Look at a finished attempt: either the final outcome (code, message into
 * err) and OUTCOME_DONE, or OUTCOME_RETRY after *delay_ms. */
int aws_http_outcome(aws_http *h, transfer *t, CURLcode cc, int *code, char **err,
                     long *delay_ms);

/* http-ev.c, the builtin transport: an HTTP/1.1 and HTTP/2 client on epoll (h->epfd),
 * plain TCP or TLS on one SSL_CTX (aws_tls_ctx), connections kept alive
 * per host and port, at most h->cfg.concurrency.
 * aws_hev_init: 0, or -1 (out of memory).  aws_hev_release: close every
 * connection (transfers are the caller's). */
int aws_hev_init(aws_http *h);
void aws_hev_release(aws_http *h);
/* Build t's request (method, URL, header lines, body: a warm-up's when
 * t->warm) into t->reqbuf.  0 or an error code. */
int aws_hev_build(aws_http *h, transfer *t, const struct curl_slist *headers, const char *method,
                  const char *url, const void *body, size_t body_len, char **err);
/* Start t's attempt (its request built): on an idle connection to its
 * host, a new one, or queued until one is free.  While warm-up requests
 * are out, requests wait for their connections and open none. */
void aws_hev_start(aws_http *h, transfer *t);
/* Take t out of the transport (cancel): its connection is closed. */
void aws_hev_drop(aws_http *h, transfer *t);
/* An epoll event of one of its connections (ev->data.ptr); after a
 * batch of them, aws_hev_reap frees the connections closed meanwhile
 * (an event later in the batch may name one). */
void aws_hev_event(aws_http *h, const struct epoll_event *ev);
void aws_hev_reap(aws_http *h);
/* When attempts wait for a connection: handle the events ready now (no
 * wait), so that connections the warm-up leaves idle take them while
 * the caller is still adding requests.  Finished attempts are only
 * queued (aws_hev_finished). */
void aws_hev_poll(aws_http *h);
/* Run the deadlines that are due; ms until the next one (-1: none). */
long aws_hev_timers(aws_http *h);
/* The next finished attempt (t->cc its outcome), or NULL. */
transfer *aws_hev_finished(aws_http *h);
/* Start nothing waiting for a connection while on (cancel, release:
 * what waits is being dropped too). */
void aws_hev_hold(aws_http *h, int on);
/* Connections open now. */
size_t aws_hev_conns(const aws_http *h);
/* Close the idle connections, and from now on each connection whose answer
 * is complete (aws_http_release_idle). */
void aws_hev_release_idle(aws_http *h);
/* Write what the HTTP/2 connections have to send (requests added since the
 * last wait go out together, one write per connection). */
void aws_hev_flush(aws_http *h);
/* The connections a warm-up of n requests to url needs: n over HTTP/1.1;
 * over HTTP/2, once a connection told how many streams it takes, enough of
 * them for n streams. */
size_t aws_hev_warm_need(aws_http *h, const char *url, size_t n);

/* http-multi.c: the multi handles for h->cfg.concurrency transfers.
 * 0, or -1 (out of memory; what was made is freed by aws_http_multi_release). */
int aws_http_shards_init(aws_http *h);
/* http-multi.c: free the transfers (no completion called), the idle easy
 * handles and the multi handles. */
void aws_http_multi_release(aws_http *h);

#endif
