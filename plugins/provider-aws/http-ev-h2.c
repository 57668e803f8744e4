/*
 * http-ev-h2.c - the builtin transport's HTTP/2 (httpVersion "2"): which
 * connection of a host takes a request as a stream (one with room, up to
 * the server's SETTINGS_MAX_CONCURRENT_STREAMS, else a new one; while a
 * host's first connection has yet to say by ALPN whether it speaks h2,
 * the others wait for it), what becomes of a stream that ended (done, sent
 * again uncounted when the server refused it or a GOAWAY left it
 * unprocessed, failed), and the output of the sessions, written once per
 * connection per turn of the loop.  The session itself is http-h2.c; the
 * connections, the queue and the deadlines are http-ev.c's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "http-ev.h"

void aws_hev_h2_link(aws_hconn *c)
{
	aws_hhost *host = c->host;
	c->h2mode = 1;
	c->in_h2list = 1;
	c->hprev = NULL;
	c->hnext = host->h2conns;
	if (host->h2conns)
		host->h2conns->hprev = c;
	host->h2conns = c;
}

void aws_hev_h2_unlink(aws_hconn *c)
{
	if (!c->in_h2list)
		return;
	if (c->hprev)
		c->hprev->hnext = c->hnext;
	else
		c->host->h2conns = c->hnext;
	if (c->hnext)
		c->hnext->hprev = c->hprev;
	c->hnext = c->hprev = NULL;
	c->in_h2list = 0;
}

void aws_hev_h2_undirty(aws_hev *ev, aws_hconn *c)
{
	if (!c->dirty)
		return;
	for (aws_hconn **p = &ev->dirty; *p; p = &(*p)->dnext)
		if (*p == c) {
			*p = c->dnext;
			break;
		}
	c->dirty = 0;
	c->dnext = NULL;
}

/* c has output to send: at the next flush, with what else comes. */
void aws_hev_h2_dirty(aws_http *h, aws_hconn *c)
{
	if (c->dirty || !c->h2)
		return;
	c->dirty = 1;
	c->dnext = h->ev->dirty;
	h->ev->dirty = c;
}

/* Streams c may carry: its own limit once it has a session, else what
 * the host's connections took (one while it is not known to speak h2). */
static size_t h2_room(const aws_hconn *c)
{
	if (c->goaway)
		return 0;
	if (c->h2)
		return c->cap;
	return c->host->h2 == H2_YES ? c->host->h2_hint : 1;
}

/* Send what c's session has; close c once it has nothing more to do. */
static void h2_flush(aws_http *h, aws_hconn *c)
{
	char why[CURL_ERROR_SIZE - 64];
	int r = aws_h2_send(c, h->epfd, why, sizeof why);
	if (r == HC_ERROR) {
		aws_hev_conn_fail(h, c, CURLE_SEND_ERROR, "%s (%s port %d)", why, c->host->name,
		                  c->host->port);
		return;
	}
	if (c->nstreams == 0 && !c->ended && r == HC_OK &&
	    (c->goaway || h->ev->no_keep || aws_h2_done(c))) {
		aws_hev_conn_close(h, c);
		return;
	}
	aws_hconn_want(c, h->epfd, EPOLLIN | (r == HC_AGAIN ? EPOLLOUT : 0));
	if (r == HC_OK)
		aws_hconn_trim(c);
}

void aws_hev_flush(aws_http *h)
{
	aws_hconn *c;
	while (h->ev && (c = h->ev->dirty)) {
		h->ev->dirty = c->dnext;
		c->dirty = 0;
		c->dnext = NULL;
		h2_flush(h, c);
	}
}

/* t, on c, into c's session as a new stream. */
static void h2_submit(aws_http *h, aws_hconn *c, transfer *t)
{
	char why[CURL_ERROR_SIZE - 64];
	if (h->cfg.verbose && !t->warm) {
		/* the request line as libcurl logs it for HTTP/2, then the fields */
		const char *end = memmem(t->reqbuf.data, t->reqbuf.len, "\r\n\r\n", 4);
		const char *eol = memchr(t->reqbuf.data, '\r', t->reqbuf.len);
		const char *ver =
		    eol ? memmem(t->reqbuf.data, (size_t)(eol - t->reqbuf.data), " HTTP/1.1", 9) : NULL;
		if (end && ver) {
			char first[2048];
			snprintf(first, sizeof first, "%.*s HTTP/2", (int)(ver - t->reqbuf.data),
			         t->reqbuf.data);
			aws_http_log_lines(h, "> ", first, strlen(first));
			aws_http_log_lines(h, "> ", eol + 2, (size_t)(end - (eol + 2)));
		}
	}
	if (aws_h2_submit(c, t, c->host->https, why, sizeof why) != HC_OK) {
		aws_h2_detach(c, t);
		snprintf(t->errbuf, sizeof t->errbuf, "%s (%s port %d)", why, c->host->name, c->host->port);
		aws_hev_finish(h, t, CURLE_SEND_ERROR);
		return;
	}
	aws_hev_vlog(h, t, "Using HTTP/2 stream %d on a connection to %s port %d", t->stream,
	             c->host->name, c->host->port);
	aws_hev_h2_dirty(h, c);
}

/* t onto c: submitted at once when c has its session, else when it is
 * ready. */
static void h2_put(aws_http *h, aws_hconn *c, transfer *t)
{
	aws_h2_attach(c, t);
	if (c->h2)
		h2_submit(h, c, t);
}

/* Over HTTP/2: a stream on a connection of the host with room (set up or
 * being set up), else a new connection.  0: none to be had now, or the
 * host's first connection has yet to tell whether it speaks h2. */
int aws_hev_h2_start(aws_http *h, transfer *t)
{
	aws_hhost *host = t->hhost;
	aws_hconn *c;
	if (!t->fresh)
		for (c = host->h2conns; c; c = c->hnext)
			if (c->nstreams < h2_room(c)) {
				h2_put(h, c, t);
				return 1;
			}
	if (host->h2 == H2_UNKNOWN && host->h2conns && !t->fresh)
		return 0;
	return aws_hev_may_open(h, host, t) ? aws_hev_open_for(h, host, t) : 0;
}

/* Put t back at the head of the queue (it was waiting before the rest). */
static void wait_front(aws_hev *ev, transfer *t)
{
	t->wnext = ev->wait.head;
	ev->wait.head = t;
	if (!ev->wait.tail)
		ev->wait.tail = t;
	t->in_wait = 1;
}

/* c, which offered HTTP/2, is set up: if the server took h2, its session
 * and the streams that waited for it (as many as it may carry; the others
 * wait again); if not, HTTP/1.1 for the host from now on, and c carries
 * its first transfer alone. */
void aws_hev_h2_ready(aws_http *h, aws_hconn *c)
{
	aws_hhost *host = c->host;
	char why[CURL_ERROR_SIZE - 64];
	transfer *t, *prev;
	size_t n = 0;
	if (host->https && !aws_hconn_alpn_h2(c)) {
		host->h2 = H2_NO;
		aws_hev_h2_unlink(c);
		c->h2mode = 0;
		while (c->streams_tail != c->streams) {
			t = c->streams_tail;
			aws_h2_detach(c, t);
			wait_front(h->ev, t);
		}
		if (!(t = c->streams)) { /* its transfers ended while it connected */
			aws_hev_conn_close(h, c);
			return;
		}
		aws_h2_detach(c, t);
		aws_hev_vlog(h, t, "The server did not take HTTP/2 (ALPN): HTTP/1.1 to %s port %d",
		             host->name, host->port);
		c->t = t;
		t->conn = c;
		c->state = HC_SENDING;
		aws_hev_send_request(h, c);
		return;
	}
	host->h2 = H2_YES;
	if (aws_h2_begin(c, why, sizeof why) != HC_OK) {
		aws_hev_conn_fail(h, c, CURLE_HTTP2, "%s (%s port %d)", why, host->name, host->port);
		return;
	}
	c->state = HC_H2;
	c->cap = host->h2_hint; /* what the host's last SETTINGS said, until its own come */
	/* those past its room wait again, in their order */
	for (t = c->streams; t && n < c->cap; t = t->snext)
		n++;
	while (t && c->streams_tail) {
		prev = c->streams_tail;
		aws_h2_detach(c, prev);
		wait_front(h->ev, prev);
		if (prev == t)
			break;
	}
	for (t = c->streams; t; t = prev) {
		prev = t->snext;
		h2_submit(h, c, t);
	}
	h2_flush(h, c);
}

/* The streams of c that ended in the session: their outcome. */
void aws_hev_h2_ended(aws_http *h, aws_hconn *c)
{
	transfer *t;
	while ((t = aws_h2_next_ended(c))) {
		switch (t->h2_end) {
		case H2_END_OK:
			c->completed++;
			c->reused = 1;
			aws_hev_finish(h, t, CURLE_OK);
			break;
		case H2_END_REFUSED:
			if (t->refused++ < AWS_H2_MAX_REFUSED) {
				aws_hev_vlog(h, t, "HTTP/2 stream %d not processed by the server (%s): sent again",
				             t->stream, c->goaway ? "GOAWAY" : "REFUSED_STREAM");
				aws_hev_resend(h, t, 0);
				break;
			}
			snprintf(t->errbuf, sizeof t->errbuf,
			         "HTTP/2 stream refused %d times, not processed (%s port %d)", t->refused,
			         c->host->name, c->host->port);
			aws_hev_finish(h, t, CURLE_RECV_ERROR);
			break;
		case H2_END_RESET:
			snprintf(t->errbuf, sizeof t->errbuf,
			         "HTTP/2 stream %d was reset by the server: %s (%s port %d)", t->stream,
			         aws_h2_strerror(t->h2_error), c->host->name, c->host->port);
			aws_hev_finish(h, t, CURLE_RECV_ERROR);
			break;
		case H2_END_PARTIAL:
			snprintf(t->errbuf, sizeof t->errbuf,
			         "HTTP/2 stream %d closed before its answer was complete (%s port %d)",
			         t->stream, c->host->name, c->host->port);
			aws_hev_finish(h, t, CURLE_PARTIAL_FILE);
			break;
		default:
			snprintf(t->errbuf, sizeof t->errbuf, "Failure writing output to destination");
			aws_hev_finish(h, t, CURLE_WRITE_ERROR);
			break;
		}
	}
}

/* An event of an HTTP/2 connection: what came, the streams that ended,
 * what is to be sent. */
void aws_hev_h2_event(aws_http *h, aws_hconn *c, unsigned events)
{
	char why[CURL_ERROR_SIZE - 64];
	int r = HC_OK;
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		r = aws_h2_recv(c, h->epfd, h->ev->rbuf, sizeof h->ev->rbuf, why, sizeof why);
	if (c->settings_seen)
		c->host->h2_hint = c->cap;
	aws_hev_h2_ended(h, c);
	if (r == HC_EOF || r == HC_ERROR) {
		/* over http, prior knowledge: a server of HTTP/1.1 alone ends the
		 * connection at the preface, before any SETTINGS */
		const char *hint = c->settings_seen || c->host->https
		                       ? ""
		                       : "; no HTTP/2 SETTINGS came: the server may not speak HTTP/2 "
		                         "without TLS (httpVersion \"auto\" speaks HTTP/1.1 over http)";
		aws_hev_conn_fail(h, c, CURLE_RECV_ERROR, "%s (%s port %d%s)",
		                  r == HC_EOF ? "Connection closed by the server" : why, c->host->name,
		                  c->host->port, hint);
		return;
	}
	h2_flush(h, c);
}

size_t aws_hev_warm_need(aws_http *h, const char *url, size_t n)
{
	aws_hhost *host;
	const char *target;
	if (!h->ev || aws_hev_host_of(h, url, &host, &target) != 0 || host->h2 != H2_YES)
		return n;
	return (n + host->h2_hint - 1) / host->h2_hint;
}
