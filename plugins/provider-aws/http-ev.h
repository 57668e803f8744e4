/*
 * http-ev.h - what the parts of the builtin transport share: http-ev.c
 * (connections, the queue of attempts, deadlines, HTTP/1.1 requests and
 * answers), http-ev-host.c (hosts, request text), http-ev-h2.c (the same
 * connections carrying HTTP/2 streams: which one takes a request, what
 * becomes of a stream that ended) and http-connector.c (the second thread
 * that opens sockets).  Not for the rest of the HTTP layer, which uses
 * http-int.h.
 */
#ifndef HT_PROVIDER_AWS_HTTP_EV_H
#define HT_PROVIDER_AWS_HTTP_EV_H

#include "http-conn.h"

typedef struct tqueue {
	transfer *head, *tail;
} tqueue;

struct aws_hev {
	aws_hhost *hosts;
	size_t nconns;         /* open connections */
	aws_hconn *connecting; /* connections not ready yet, oldest first (deadline) */
	aws_hconn *connecting_tail;
	size_t nconnecting;
	size_t warming;        /* warm-up requests not finished */
	aws_hconn *dead;       /* closed, to be freed (aws_hev_reap) */
	aws_hconn *dirty;      /* HTTP/2 connections with output to flush (dnext) */
	tqueue wait;           /* attempts waiting for a connection (wnext) */
	tqueue done;           /* finished attempts (wnext) */
	transfer *timed[2], *timed_tail[2]; /* attempts with a deadline: [1] the warm-up's */
	int dispatching, again, held;
	int no_keep;           /* aws_hev_release_idle: an answered connection is closed */
	struct aws_hcon *hcon; /* http-connector.c, or NULL */
	char rbuf[16384];
};

/* http-ev-host.c */
/* The host entry of url (made on first sight) and its request target:
 * 0, -1 (not an http(s) URL) or -2 (out of memory). */
int aws_hev_host_of(aws_http *h, const char *url, aws_hhost **hostp, const char **target);
/* getaddrinfo once per host: 0, or its error. */
int aws_hev_resolve(aws_hhost *host);

/* http-ev.c */
/* A line of the verbose log about t (none for the warm-up's). */
void aws_hev_vlog(aws_http *h, transfer *t, const char *fmt, ...) AWS_PRINTF(3, 4);
/* t's attempt is over with cc (its detail in t->errbuf): queued as done. */
void aws_hev_finish(aws_http *h, transfer *t, CURLcode cc);
/* Start what waits for a connection, while connections can be had. */
void aws_hev_dispatch(aws_http *h);
/* Close c (its transfers taken off it before) and let a waiting attempt
 * have its place. */
void aws_hev_conn_close(aws_http *h, aws_hconn *c);
/* c failed with cc: so does every transfer on it, but those a kept-alive
 * connection lost before a byte of their answer (sent again, once). */
void aws_hev_conn_fail(aws_http *h, aws_hconn *c, CURLcode cc, const char *fmt, ...)
    AWS_PRINTF(4, 5);
/* t goes out again, its attempt not counted (on a new connection when
 * fresh). */
void aws_hev_resend(aws_http *h, transfer *t, int fresh);
/* HTTP/1.1: write c's request (c->t's). */
void aws_hev_send_request(aws_http *h, aws_hconn *c);
/* May t open a new connection to host now (an idle one closed for it if
 * need be)?  And open it: 1 (started, or finished failing). */
int aws_hev_may_open(aws_http *h, aws_hhost *host, transfer *t);
int aws_hev_open_for(aws_http *h, aws_hhost *host, transfer *t);

/* c's socket, opened by http-connector.c: fd (-1: socket() failed), rc
 * and err connect()'s outcome; the connection goes on from there. */
void aws_hev_connect_done(aws_http *h, aws_hconn *c, int fd, int rc, int err);

/* http-connector.c: a second thread that opens the sockets of a burst of
 * new connections */
typedef struct aws_hcon aws_hcon;
/* Set up (the thread starts at the first burst); without memory, none. */
void aws_hcon_init(aws_http *h);
/* Open c's socket on the connector (c->job): 0, or -1 (not now: open it
 * on this thread). */
int aws_hcon_submit(aws_http *h, aws_hconn *c);
/* Close fd (out of the epoll set) on the connector: 0, or -1 (not
 * running: close it here). */
int aws_hcon_close(aws_http *h, int fd);
/* c is closed: the socket of its job, if one is out, is not for it. */
void aws_hcon_cancel(aws_http *h, aws_hconn *c);
/* The sockets opened since: each to its connection (HC_CONNECTOR's event). */
void aws_hcon_drain(aws_http *h);
/* Stop the thread; every socket not handed over is closed. */
void aws_hcon_free(aws_http *h);

/* http-ev-h2.c */
/* c into (out of) its host's HTTP/2 connections. */
void aws_hev_h2_link(aws_hconn *c);
void aws_hev_h2_unlink(aws_hconn *c);
/* c has output for the next flush (aws_hev_flush); c no longer. */
void aws_hev_h2_dirty(aws_http *h, aws_hconn *c);
void aws_hev_h2_undirty(aws_hev *ev, aws_hconn *c);
/* try_start for a host that speaks (or may speak) HTTP/2: 0, nothing
 * to be had now. */
int aws_hev_h2_start(aws_http *h, transfer *t);
/* c, which offered HTTP/2, is connected (TLS included). */
void aws_hev_h2_ready(aws_http *h, aws_hconn *c);
/* The streams of c that ended: their outcome. */
void aws_hev_h2_ended(aws_http *h, aws_hconn *c);
/* An epoll event of c (HC_H2). */
void aws_hev_h2_event(aws_http *h, aws_hconn *c, unsigned events);

#endif /* HT_PROVIDER_AWS_HTTP_EV_H */
