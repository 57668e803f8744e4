/*
 * http-conn.h - one connection of the builtin transport (http-conn.c):
 * a non-blocking TCP connection, OpenSSL on it for https (the SSL_CTX of
 * aws_tls_ctx, SNI, the peer's name or address verified, ALPN when HTTP/2
 * is offered), and the reader of an HTTP/1.1 response (status line,
 * headers, a body delimited by Content-Length, chunked or by the close);
 * HTTP/2 on it is http-h2.c.  http-ev.c drives them.
 */
#ifndef HT_PROVIDER_AWS_HTTP_CONN_H
#define HT_PROVIDER_AWS_HTTP_CONN_H

#include <netdb.h>
#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "http-int.h"

/* A host and port of the URLs of the client's requests. */
typedef struct aws_hhost {
	char *name;              /* lower case, IPv6 without brackets */
	char *key;               /* "name:port": TLS sessions and connections */
	int port, https;
	int is_ip;               /* name is an address: verified as one, no SNI */
	struct addrinfo *ai;     /* resolved once (getaddrinfo), IPv4 and IPv6 */
	aws_hconn *idle;         /* idle connections, the last one used first */
	size_t nidle;
	int h2;                  /* H2_*: does it speak HTTP/2 */
	size_t h2_hint;          /* streams a new HTTP/2 connection is given before its SETTINGS */
	aws_hconn *h2conns;      /* its HTTP/2 connections (and those being set up for it) */
	struct aws_hhost *next;
} aws_hhost;

/* (HC_CONNECTOR: not a connection, the entry of http-connector.c's eventfd
 * in the epoll set) */
enum { HC_CONNECTING, HC_HANDSHAKE, HC_SENDING, HC_RECEIVING, HC_IDLE, HC_H2, HC_CONNECTOR };

/* Whether a host speaks HTTP/2: not asked (HTTP/1.1), not known yet (its
 * first connection's ALPN tells), yes (ALPN said "h2", or prior knowledge
 * over http). */
enum { H2_NO, H2_UNKNOWN, H2_YES };

/* How an HTTP/2 stream ended (transfer.h2_end). */
enum {
	H2_END_OK = 1, /* a final status and the end of the stream */
	H2_END_REFUSED, /* REFUSED_STREAM, or above a GOAWAY's last id, or never sent:
	                 * not processed, sent again without counting an attempt */
	H2_END_RESET,   /* RST_STREAM from the server (h2_error) */
	H2_END_PARTIAL, /* closed without an error before the answer was whole */
	H2_END_WRITE    /* the answer passed the cap: cancelled here */
};

/* Streams on one HTTP/2 connection at most, whatever the server allows;
 * before its SETTINGS come, the first ones; the windows opened: a stream's
 * (more than Lambda's 6 MB answer) and the connection's. */
#define AWS_H2_MAX_STREAMS 1000u
/* times a request the server refused unprocessed goes out again uncounted */
#define AWS_H2_MAX_REFUSED 5
#define AWS_H2_FIRST_STREAMS 100u
#define AWS_H2_STREAM_WINDOW ((8u << 20) - 1)
#define AWS_H2_CONN_WINDOW (1 << 30)

/* The reader of one response. */
typedef struct aws_hparser {
	int state;                   /* PS_* of http-conn.c */
	int head;                    /* the answer to a HEAD: no body */
	long status;
	int minor;                   /* HTTP/1.minor */
	int close;                   /* the connection ends with this response */
	int keep_alive;              /* Connection: keep-alive (HTTP/1.0) */
	int chunked, has_length;
	unsigned long long left;     /* of the body (Content-Length) or of the chunk */
	unsigned long long received; /* bytes of the response so far */
	htp_buf line;                /* a line not complete yet */
} aws_hparser;

/* What the reader hands over: header lines (the status line included,
 * with their CRLF) and body bytes; 0, or -1 to stop. */
typedef struct aws_hparse_cb {
	int (*header)(void *ud, const char *line, size_t len);
	int (*body)(void *ud, const char *data, size_t len);
	void *ud;
} aws_hparse_cb;

enum { HP_MORE = 0, HP_DONE = 1, HP_BAD = -1, HP_STOP = -2 };

void aws_hparse_reset(aws_hparser *p, int head);
void aws_hparse_free(aws_hparser *p);
/* Read n bytes of the response: HP_MORE (all used), HP_DONE (the response
 * is complete after *used bytes), HP_BAD (not HTTP/1.x: why set), HP_STOP
 * (a callback said stop). */
int aws_hparse_feed(aws_hparser *p, const char *data, size_t n, size_t *used,
                    const aws_hparse_cb *cb, char *why, size_t size);
/* The connection closed: CURLE_OK when that ends the response (a body
 * delimited by the close), else what is missing (why set). */
CURLcode aws_hparse_eof(const aws_hparser *p, char *why, size_t size);

struct aws_hconn {
	aws_hhost *host;
	int fd;
	SSL *ssl;
	int state;                   /* HC_* */
	unsigned events;             /* watched in the epoll set */
	const struct addrinfo *ai;   /* the address tried or connected */
	long long started;           /* monotonic ms the connection began */
	long long deadline;          /* to be connected (TLS included) by, ms */
	int reused;                  /* a response was read on it before */
	int in_connecting;           /* in the transport's deadline list */
	int trim;                    /* SSL_free_buffers may be called */
	aws_hconn *next, *prev;      /* its host's idle list, or the connecting list */
	transfer *t;                 /* the transfer it serves (HTTP/1.1) */
	aws_hparser p;
	/* HTTP/2 (http-h2.c) */
	int h2mode;                  /* offers HTTP/2: its transfers are on streams, not t */
	struct nghttp2_session *h2;  /* once HTTP/2 was agreed */
	transfer *streams, *streams_tail; /* on it, submitted or waiting for the session */
	size_t nstreams;
	transfer *last;              /* the stream looked up last */
	transfer *ended, *ended_tail; /* ended in the session's callbacks, for http-ev.c */
	size_t cap;                  /* streams at most */
	int settings_seen;
	int goaway;                  /* the server sent GOAWAY: no new stream */
	int goaway_last;             /* its last stream id */
	unsigned goaway_code;
	unsigned long completed;     /* streams answered on it */
	htp_buf out;                 /* the session's bytes not written yet */
	size_t out_at;
	int dirty;                   /* on the transport's list of connections to flush */
	aws_hconn *dnext;
	aws_hconn *hnext, *hprev;    /* its host's HTTP/2 connections */
	int in_h2list;
	struct hcon_job *job;        /* its socket being opened by http-connector.c */
};

/* Results of the steps below. */
enum { HC_AGAIN = 0, HC_OK = 1, HC_ERROR = -1, HC_EOF = -2 };

/* Start connecting c->ai (a non-blocking socket in epfd with c as its
 * data): HC_AGAIN (in progress), HC_OK (connected), HC_ERROR (errno). */
int aws_hconn_open(aws_hconn *c, int epfd);
/* The connect in progress: HC_OK or HC_ERROR (errno). */
int aws_hconn_connected(aws_hconn *c);
/* The TLS handshake (started on the first call): HC_AGAIN (the events to
 * wait for are set), HC_OK, or HC_ERROR with *cc and why. */
int aws_hconn_handshake(aws_hconn *c, int epfd, aws_tls *tls, CURLcode *cc, char *why,
                        size_t size);
/* Write from data; *n the bytes written.  HC_OK (all), HC_AGAIN, HC_ERROR
 * (why set). */
int aws_hconn_write(aws_hconn *c, int epfd, const char *data, size_t len, size_t *n, char *why,
                    size_t size);
/* Read into buf: > 0 bytes, HC_AGAIN, HC_EOF, HC_ERROR (why set). */
ssize_t aws_hconn_read(aws_hconn *c, int epfd, char *buf, size_t size, char *why, size_t wsize);
/* Drop the TLS buffers of a connection with nothing pending. */
void aws_hconn_trim(aws_hconn *c);
/* Is an idle connection still usable (not closed by the server, nothing
 * unexpected to read)? */
int aws_hconn_alive(aws_hconn *c);
/* Watch these events (EPOLLIN, EPOLLOUT). */
void aws_hconn_want(aws_hconn *c, int epfd, unsigned events);
/* Close the socket and free the SSL (c itself stays the caller's). */
void aws_hconn_close(aws_hconn *c, int epfd);
/* The same but for the socket, taken out of the epoll set and returned
 * (-1: none) for the caller to close. */
int aws_hconn_detach(aws_hconn *c, int epfd);
/* Did the TLS handshake agree on HTTP/2 (ALPN "h2")? */
int aws_hconn_alpn_h2(const aws_hconn *c);

/* http-h2.c: HTTP/2 on c.  Streams: t attached to c (t->conn) or off it. */
void aws_h2_attach(aws_hconn *c, transfer *t);
void aws_h2_detach(aws_hconn *c, transfer *t);
/* The session, our SETTINGS queued: HC_OK or HC_ERROR (why). */
int aws_h2_begin(aws_hconn *c, char *why, size_t size);
/* Free the session and the output (the streams are the caller's). */
void aws_h2_end(aws_hconn *c);
/* t's request (built for HTTP/1.1 in t->reqbuf) as a new stream: HC_OK
 * (t->stream set) or HC_ERROR (why). */
int aws_h2_submit(aws_hconn *c, transfer *t, int https, char *why, size_t size);
/* Reset t's stream (CANCEL) and take it off c. */
void aws_h2_cancel(aws_hconn *c, transfer *t);
/* Read what is there into the session (buf: scratch): HC_OK, HC_EOF or
 * HC_ERROR (why).  The streams that ended are then on c->ended. */
int aws_h2_recv(aws_hconn *c, int epfd, char *buf, size_t bsize, char *why, size_t size);
/* The next stream that ended (t->h2_end), or NULL. */
transfer *aws_h2_next_ended(aws_hconn *c);
/* Write what the session has to send: HC_OK (all), HC_AGAIN (the rest
 * waits for EPOLLOUT), HC_ERROR (why). */
int aws_h2_send(aws_hconn *c, int epfd, char *why, size_t size);
/* Neither side has anything more to say (after a GOAWAY). */
int aws_h2_done(const aws_hconn *c);
/* An HTTP/2 error code's name. */
const char *aws_h2_strerror(unsigned code);

#endif /* HT_PROVIDER_AWS_HTTP_CONN_H */
