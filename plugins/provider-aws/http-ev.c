/*
 * http-ev.c - the builtin transport of the asynchronous mode: connections
 * (http-conn.c) on the client's epoll set, kept alive per host and port
 * and reused, at most cfg.concurrency of them; a queue of the attempts
 * waiting for one; the deadlines (connect, attempt) in lists ordered by
 * when they were set, since each kind has one duration; names resolved
 * once per host.  Over HTTP/2 (httpVersion "2") a connection carries many
 * attempts as streams: http-ev-h2.c decides which, http-h2.c speaks it.
 *
 * An attempt ends in a CURLcode and a detail (t->errbuf) in libcurl's
 * words, so that http.c's outcome (retries, messages) is the same for
 * both transports.  A reused connection that dies before a byte of the
 * answer (the server closed it while idle, or reset it) gets the request
 * again on a new connection, once, without counting an attempt: what
 * libcurl does.
 *
 * Everything runs in the thread that drives the client (multi_wait), so
 * nothing here locks; finished attempts are queued for http-multi.c to
 * collect once the event is handled.  In a burst of new connections their
 * sockets are opened by http-connector.c's thread, which hands them back
 * through an event of this epoll set (aws_hev_connect_done). Hosts and
 * the request text are http-ev-host.c's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http-ev.h"

/* ---- small lists ------------------------------------------------------------------------ */

static void q_push(tqueue *q, transfer *t)
{
	t->wnext = NULL;
	if (q->tail)
		q->tail->wnext = t;
	else
		q->head = t;
	q->tail = t;
}

static transfer *q_pop(tqueue *q)
{
	transfer *t = q->head;
	if (t) {
		q->head = t->wnext;
		if (!q->head)
			q->tail = NULL;
		t->wnext = NULL;
	}
	return t;
}

static void q_remove(tqueue *q, transfer *t)
{
	transfer *prev = NULL, *x;
	for (x = q->head; x && x != t; x = x->wnext)
		prev = x;
	if (!x)
		return;
	if (prev)
		prev->wnext = t->wnext;
	else
		q->head = t->wnext;
	if (q->tail == t)
		q->tail = prev;
	t->wnext = NULL;
}

static void timed_remove(aws_hev *ev, transfer *t)
{
	int k = t->warm ? 1 : 0;
	if (!t->in_timed)
		return;
	if (t->tprev)
		t->tprev->tnext = t->tnext;
	else
		ev->timed[k] = t->tnext;
	if (t->tnext)
		t->tnext->tprev = t->tprev;
	else
		ev->timed_tail[k] = t->tprev;
	t->tnext = t->tprev = NULL;
	t->in_timed = 0;
}

static void timed_push(aws_hev *ev, transfer *t)
{
	int k = t->warm ? 1 : 0;
	t->tnext = NULL;
	t->tprev = ev->timed_tail[k];
	if (ev->timed_tail[k])
		ev->timed_tail[k]->tnext = t;
	else
		ev->timed[k] = t;
	ev->timed_tail[k] = t;
	t->in_timed = 1;
}

static void connecting_remove(aws_hev *ev, aws_hconn *c)
{
	if (!c->in_connecting)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		ev->connecting = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		ev->connecting_tail = c->prev;
	c->next = c->prev = NULL;
	c->in_connecting = 0;
	ev->nconnecting--;
}

static void idle_remove(aws_hconn *c)
{
	aws_hhost *host = c->host;
	if (c->state != HC_IDLE)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		host->idle = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	c->state = HC_SENDING; /* out of the list */
	host->nidle--;
}

/* ---- the transport's life ------------------------------------------------------------------ */

int aws_hev_init(aws_http *h)
{
	if (!h->ev) {
		if (!(h->ev = calloc(1, sizeof *h->ev)))
			return -1;
		aws_hcon_init(h);
	}
	return 0;
}

/* Close c; its memory is freed by aws_hev_reap, once the events of the
 * batch being handled, which may name it, are done with. */
static void conn_free(aws_http *h, aws_hconn *c)
{
	int fd;
	aws_hcon_cancel(h, c);
	aws_hev_h2_unlink(c);
	aws_hev_h2_undirty(h->ev, c);
	aws_h2_end(c);
	fd = aws_hconn_detach(c, h->epfd);
	if (fd >= 0 && aws_hcon_close(h, fd) < 0)
		close(fd);
	aws_hparse_free(&c->p);
	c->t = NULL;
	c->next = h->ev->dead;
	h->ev->dead = c;
	h->ev->nconns--;
}

void aws_hev_reap(aws_http *h)
{
	aws_hconn *c;
	while (h->ev && (c = h->ev->dead)) {
		h->ev->dead = c->next;
		free(c);
	}
}

void aws_hev_release(aws_http *h)
{
	aws_hev *ev = h->ev;
	aws_hconn *c;
	aws_hhost *host;
	if (!ev)
		return;
	aws_hcon_free(h); /* the sockets it holds: closed */
	/* connections that serve a transfer are closed with it (aws_hev_drop) */
	while ((c = ev->connecting)) {
		connecting_remove(ev, c);
		if (c->t)
			c->t->conn = NULL;
		while (c->streams)
			aws_h2_detach(c, c->streams);
		conn_free(h, c);
	}
	for (host = ev->hosts; host; host = host->next)
		while ((c = host->h2conns)) {
			while (c->streams)
				aws_h2_detach(c, c->streams);
			while (aws_h2_next_ended(c))
				;
			conn_free(h, c);
		}
	while ((host = ev->hosts)) {
		while ((c = host->idle)) {
			idle_remove(c);
			conn_free(h, c);
		}
		ev->hosts = host->next;
		if (host->ai)
			freeaddrinfo(host->ai);
		free(host->name);
		free(host->key);
		free(host);
	}
	aws_hev_reap(h);
	free(ev);
	h->ev = NULL;
}

/* ---- attempts ----------------------------------------------------------------------------------- */

void aws_hev_vlog(aws_http *h, transfer *t, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!h->cfg.verbose || !h->cfg.log || (t && t->warm))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	aws_http_log_lines(h, "* ", line, strlen(line));
}

/* A warm-up request is over: once none is left, the requests waiting
 * for their connections may open others. */
static void warm_over(aws_http *h, transfer *t)
{
	if (!t->warming)
		return;
	t->warming = 0;
	if (--h->ev->warming == 0)
		aws_hev_dispatch(h);
}

void aws_hev_finish(aws_http *h, transfer *t, CURLcode cc)
{
	timed_remove(h->ev, t);
	if (t->in_wait) {
		q_remove(&h->ev->wait, t);
		t->in_wait = 0;
	}
	t->conn = NULL;
	t->cc = cc;
	htp_buf_free(&t->reqbuf);
	q_push(&h->ev->done, t);
	t->in_done = 1;
	warm_over(h, t);
}

static int try_start(aws_http *h, transfer *t);

/* Start what waits for a connection, while connections can be had. */
void aws_hev_dispatch(aws_http *h)
{
	aws_hev *ev = h->ev;
	if (ev->held)
		return;
	if (ev->dispatching) {
		ev->again = 1;
		return;
	}
	ev->dispatching = 1;
	do {
		ev->again = 0;
		while (ev->wait.head) {
			transfer *t = q_pop(&ev->wait);
			t->in_wait = 0;
			if (!try_start(h, t)) {
				t->wnext = ev->wait.head;
				ev->wait.head = t;
				if (!ev->wait.tail)
					ev->wait.tail = t;
				t->in_wait = 1;
				break;
			}
		}
	} while (ev->again);
	ev->dispatching = 0;
}

/* Close c (in no list but the connecting one) and let a waiting attempt
 * have its place. */
void aws_hev_conn_close(aws_http *h, aws_hconn *c)
{
	connecting_remove(h->ev, c);
	idle_remove(c);
	conn_free(h, c);
	aws_hev_dispatch(h);
}

/* t goes out again (its attempt not counted): on a connection that can
 * take it now (a new one when fresh), else when one can. */
void aws_hev_resend(aws_http *h, transfer *t, int fresh)
{
	t->errbuf[0] = '\0';
	t->fresh = fresh;
	t->sent = 0;
	t->hstatus = 0;
	aws_headers_free(&t->resp.headers);
	if (!t->reqbuf.len) { /* freed once it was out */
		char *err = NULL;
		if (aws_http_rebuild(h, t, &err) != 0) {
			snprintf(t->errbuf, sizeof t->errbuf, "%s", aws_msg(err));
			free(err);
			aws_hev_finish(h, t, CURLE_SEND_ERROR);
			return;
		}
		free(err);
	}
	if (!try_start(h, t)) {
		t->in_wait = 1;
		q_push(&h->ev->wait, t);
	}
}

/* c failed with cc (fmt: the detail, which names the host and port): so
 * does every transfer on it, but those that a kept-alive connection lost
 * before a byte of their answer, which go out again once, on a new
 * connection (HTTP/1.1) or any (HTTP/2), without counting an attempt. */
void aws_hev_conn_fail(aws_http *h, aws_hconn *c, CURLcode cc, const char *fmt, ...)
{
	transfer *list = NULL, **tail = &list, *t;
	int reused = c->reused || c->completed > 0, h2 = c->h2mode;
	unsigned long long h1_got = c->p.received;
	char detail[CURL_ERROR_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	c->goaway = 1; /* takes no stream from now on */
	if (h2)
		aws_hev_h2_ended(h, c); /* those that ended keep their own outcome */
	if (c->t) {
		*tail = c->t;
		tail = &c->t->enext;
		c->t->conn = NULL;
		c->t = NULL;
	}
	while ((t = c->streams)) {
		aws_h2_detach(c, t);
		*tail = t;
		tail = &t->enext;
	}
	*tail = NULL;
	aws_hev_conn_close(h, c);
	while ((t = list)) {
		unsigned long long got = h2 ? t->h2_got : h1_got;
		list = t->enext;
		t->enext = NULL;
		t->conn = NULL;
		if (reused && got == 0 && !t->resent &&
		    (cc == CURLE_RECV_ERROR || cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR)) {
			/* the server closed a kept-alive connection: a new one, once */
			aws_hev_vlog(h, t, "Connection died, retrying a fresh connect (%s)", detail);
			t->resent = 1;
			aws_hev_resend(h, t, !h2);
			continue;
		}
		snprintf(t->errbuf, sizeof t->errbuf, "%s", detail);
		aws_hev_finish(h, t, cc);
	}
}

static void connect_next(aws_http *h, aws_hconn *c, int err);

/* Connected (TLS included): the request goes out (the requests, over
 * HTTP/2). */
static void ready(aws_http *h, aws_hconn *c)
{
	int was = c->in_connecting;
	connecting_remove(h->ev, c);
	aws_hconn_trim(c);
	if (c->h2mode) {
		aws_hev_h2_ready(h, c);
	} else {
		c->state = HC_SENDING;
		aws_hev_send_request(h, c);
	}
	if (was)
		aws_hev_dispatch(h); /* another may start its handshake */
}

/* The transfer a connection being set up is for (the first, over HTTP/2). */
static transfer *conn_first(const aws_hconn *c)
{
	return c->h2mode ? c->streams : c->t;
}

static void handshake(aws_http *h, aws_hconn *c)
{
	char why[CURL_ERROR_SIZE - 64];
	CURLcode cc = CURLE_SSL_CONNECT_ERROR;
	int r = aws_hconn_handshake(c, h->epfd, h->tls, &cc, why, sizeof why);
	if (r == HC_AGAIN)
		return;
	if (r == HC_ERROR) {
		/* a server of HTTP/2 alone refuses a client that offers 1.1 */
		const char *hint = !c->h2mode && strstr(why, "no application protocol")
		                       ? "; the server takes none of the protocols offered (HTTP/1.1): "
		                         "httpVersion \"auto\" or \"2\" offers HTTP/2"
		                       : "";
		aws_hev_conn_fail(h, c, cc, "%s (TLS with %s port %d%s)", why, c->host->name,
		                  c->host->port, hint);
		return;
	}
	if (conn_first(c))
		aws_hev_vlog(h, conn_first(c), "SSL connection using %s / %s%s%s", SSL_get_version(c->ssl),
		             SSL_get_cipher(c->ssl), SSL_session_reused(c->ssl) ? " (session resumed)" : "",
		             !c->h2mode             ? ""
		             : aws_hconn_alpn_h2(c) ? ", ALPN h2"
		                                    : ", no ALPN h2");
	ready(h, c);
}

static void connected(aws_http *h, aws_hconn *c)
{
	if (conn_first(c))
		aws_hev_vlog(h, conn_first(c), "Connected to %s port %d", c->host->name, c->host->port);
	if (c->host->https) {
		c->state = HC_HANDSHAKE;
		handshake(h, c);
	} else {
		ready(h, c);
	}
}

/* Try c->ai, then the addresses after it; err: why the one before failed.
 * In a burst the connector opens the socket (aws_hev_connect_done goes on). */
static void connect_next(aws_http *h, aws_hconn *c, int err)
{
	for (; c->ai; c->ai = c->ai->ai_next) {
		int r;
		if (c->fd >= 0)
			aws_hconn_close(c, h->epfd);
		if (aws_hcon_submit(h, c) == 0)
			return;
		r = aws_hconn_open(c, h->epfd);
		if (r == HC_AGAIN)
			return;
		if (r == HC_OK) {
			connected(h, c);
			return;
		}
		err = errno;
	}
	aws_hev_conn_fail(h, c, CURLE_COULDNT_CONNECT,
	                  "Failed to connect to %s port %d after %lld ms: %s", c->host->name,
	                  c->host->port, (long long)(htp_now_ms() - c->started),
	                  strerror(err ? err : ECONNREFUSED));
}

void aws_hev_connect_done(aws_http *h, aws_hconn *c, int fd, int rc, int err)
{
	struct epoll_event ev;

	if (fd >= 0) {
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLOUT;
		ev.data.ptr = c;
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			err = errno;
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		c->fd = fd;
		c->events = EPOLLOUT;
		if (rc == 0) {
			connected(h, c);
			return;
		}
		if (err == EINPROGRESS)
			return; /* EPOLLOUT: aws_hev_event */
	}
	c->ai = c->ai->ai_next;
	connect_next(h, c, err);
}

/* A new connection for t (a place is free). */
static void conn_open(aws_http *h, aws_hhost *host, transfer *t)
{
	aws_hev *ev = h->ev;
	aws_hconn *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(t->errbuf, sizeof t->errbuf, "out of memory");
		aws_hev_finish(h, t, CURLE_OUT_OF_MEMORY);
		return;
	}
	c->fd = -1;
	c->host = host;
	c->ai = host->ai;
	if (host->h2 != H2_NO) {
		aws_hev_h2_link(c);
		aws_h2_attach(c, t);
	} else {
		c->t = t;
		t->conn = c;
	}
	c->state = HC_CONNECTING;
	c->started = htp_now_ms();
	c->deadline = c->started + h->cfg.connect_timeout_ms;
	ev->nconns++;
	c->prev = ev->connecting_tail;
	if (ev->connecting_tail)
		ev->connecting_tail->next = c;
	else
		ev->connecting = c;
	ev->connecting_tail = c;
	c->in_connecting = 1;
	ev->nconnecting++;
	connect_next(h, c, 0);
}

/* An idle connection to close for a place, or NULL. */
static aws_hconn *any_idle(aws_hev *ev)
{
	for (aws_hhost *host = ev->hosts; host; host = host->next) {
		if (host->idle)
			return host->idle;
		for (aws_hconn *c = host->h2conns; c; c = c->hnext)
			if (c->state == HC_H2 && c->nstreams == 0 && !c->ended)
				return c;
	}
	return NULL;
}

/* Put t on a connection: an idle one of its host (unless t->fresh), else a
 * new one if there is room.  0: none to be had now. */

static int try_start(aws_http *h, transfer *t)
{
	aws_hhost *host = t->hhost;
	aws_hconn *c;
	if (host->h2 != H2_NO)
		return aws_hev_h2_start(h, t);
	while (!t->fresh && (c = host->idle)) {
		idle_remove(c);
		if (!aws_hconn_alive(c)) {
			conn_free(h, c);
			continue;
		}
		c->t = t;
		t->conn = c;
		c->state = HC_SENDING;
		aws_hev_vlog(h, t, "Re-using existing connection with host %s port %d", host->name,
		             host->port);
		aws_hev_send_request(h, c);
		return 1;
	}
	return aws_hev_may_open(h, host, t) ? aws_hev_open_for(h, host, t) : 0;
}

/* May t open a new connection to host now?  When the connections are all
 * open, an idle one is closed for it. */
int aws_hev_may_open(aws_http *h, aws_hhost *host, transfer *t)
{
	aws_hev *ev = h->ev;
	aws_hconn *c;
	/* while the warm-up's requests are out, requests wait for their
	 * connections rather than open others */
	if (!t->warm && ev->warming)
		return 0;
	if (host->https && ev->nconnecting >= (size_t)h->cfg.max_handshakes)
		return 0;
	if (ev->nconns >= (size_t)h->cfg.concurrency) {
		if (!(c = any_idle(ev)))
			return 0;
		idle_remove(c);
		conn_free(h, c);
	}
	return 1;
}

/* A new connection for t: its host resolved (once); 1 (t started or
 * finished). */
int aws_hev_open_for(aws_http *h, aws_hhost *host, transfer *t)
{
	int gai;
	if ((gai = aws_hev_resolve(host)) != 0) {
		snprintf(t->errbuf, sizeof t->errbuf, "Could not resolve host: %s (%s)", host->name,
		         gai_strerror(gai));
		aws_hev_finish(h, t, CURLE_COULDNT_RESOLVE_HOST);
		return 1;
	}
	conn_open(h, host, t);
	return 1;
}

void aws_hev_start(aws_http *h, transfer *t)
{
	aws_hev *ev = h->ev;
	long long now = htp_now_ms();
	long ms = t->warm ? 2 * h->cfg.connect_timeout_ms : h->cfg.timeout_ms;
	t->cc = 0;
	t->conn = NULL;
	t->resent = 0;
	if (!t->warm)
		t->fresh = 0; /* a request goes out again on a new connection once */
	t->deadline = ms > 0 ? now + ms : -1;
	if (ms > 0)
		timed_push(ev, t);
	if (t->warm) {
		t->warming = 1;
		ev->warming++;
	}
	if (ev->wait.head || !try_start(h, t)) {
		t->in_wait = 1;
		q_push(&ev->wait, t);
	}
}

void aws_hev_drop(aws_http *h, transfer *t)
{
	aws_hev *ev = h->ev;
	if (!ev)
		return;
	timed_remove(ev, t);
	if (t->in_wait) {
		q_remove(&ev->wait, t);
		t->in_wait = 0;
	}
	if (t->in_done) { /* finished, not collected yet (cancel) */
		q_remove(&ev->done, t);
		t->in_done = 0;
	}
	if (t->conn && t->conn->h2mode) { /* the stream alone ends */
		aws_hconn *c = t->conn;
		aws_h2_cancel(c, t);
		aws_hev_h2_dirty(h, c);
	} else if (t->conn) {
		aws_hconn *c = t->conn;
		c->t = NULL;
		t->conn = NULL;
		aws_hev_conn_close(h, c);
	}
	htp_buf_free(&t->reqbuf);
	warm_over(h, t);
}

void aws_hev_hold(aws_http *h, int on)
{
	if (!h->ev)
		return;
	h->ev->held = on;
	if (!on)
		aws_hev_dispatch(h);
}

size_t aws_hev_conns(const aws_http *h)
{
	return h->ev ? h->ev->nconns : 0;
}

/* After aws_hev_release_idle: the idle connections closed, unless an
 * attempt waits for one (a warm-up's, as it becomes idle). */
static void drop_idle(aws_http *h)
{
	aws_hconn *c;
	if (!h->ev->no_keep || h->ev->wait.head)
		return;
	for (aws_hhost *host = h->ev->hosts; host; host = host->next) {
		aws_hconn *nx;
		while ((c = host->idle)) {
			idle_remove(c);
			conn_free(h, c);
		}
		for (c = host->h2conns; c; c = nx) {
			nx = c->hnext;
			if (c->state == HC_H2 && c->nstreams == 0 && !c->ended)
				conn_free(h, c);
		}
	}
}

void aws_hev_release_idle(aws_http *h)
{
	if (!h->ev)
		return;
	h->ev->no_keep = 1;
	drop_idle(h);
}

/* ---- requests and responses ------------------------------------------------------------------ */

void aws_hev_send_request(aws_http *h, aws_hconn *c)
{
	transfer *t = c->t;
	char why[CURL_ERROR_SIZE - 64];
	size_t n = 0;
	int r;
	if (t->sent == 0) /* what is read from now on is t's answer */
		aws_hparse_reset(&c->p, strncmp(t->reqbuf.data, "HEAD ", 5) == 0);
	if (t->sent == 0 && h->cfg.verbose && !t->warm) {
		const char *end = memmem(t->reqbuf.data, t->reqbuf.len, "\r\n\r\n", 4);
		if (end)
			aws_http_log_lines(h, "> ", t->reqbuf.data, (size_t)(end - t->reqbuf.data));
	}
	r = aws_hconn_write(c, h->epfd, t->reqbuf.data + t->sent, t->reqbuf.len - t->sent, &n, why,
	                    sizeof why);
	t->sent += n;
	if (r == HC_AGAIN)
		return;
	if (r == HC_ERROR) {
		aws_hev_conn_fail(h, c, CURLE_SEND_ERROR, "%s (%s port %d)", why, c->host->name,
		                  c->host->port);
		return;
	}
	c->state = HC_RECEIVING;
	htp_buf_free(&t->reqbuf); /* built again if it must go out again */
	aws_hconn_trim(c);
	aws_hconn_want(c, h->epfd, EPOLLIN);
}

static int on_header(void *ud, const char *line, size_t len)
{
	aws_hconn *c = ud;
	transfer *t = c->t;
	if (t->warm)
		return 0;
	if (t->h->cfg.verbose)
		aws_http_log_lines(t->h, "< ", line, len);
	t->hstatus = c->p.status;
	return aws_http_on_header(t, line, len) == len ? 0 : -1;
}

static int on_body(void *ud, const char *data, size_t len)
{
	aws_hconn *c = ud;
	transfer *t = c->t;
	if (t->warm || len == 0)
		return 0;
	return aws_http_on_body(t, data, len) == len ? 0 : -1;
}

/* The response is complete: c idle (kept alive) or closed. */
static void response_done(aws_http *h, aws_hconn *c, int leftover)
{
	transfer *t = c->t;
	c->t = NULL;
	t->conn = NULL;
	t->hstatus = c->p.status;
	c->reused = 1;
	if (c->p.close || leftover) {
		aws_hev_conn_close(h, c);
	} else {
		aws_hhost *host = c->host;
		c->state = HC_IDLE;
		c->prev = NULL;
		c->next = host->idle;
		if (host->idle)
			host->idle->prev = c;
		host->idle = c;
		host->nidle++;
		aws_hconn_trim(c);
		aws_hconn_want(c, h->epfd, EPOLLIN);
	}
	aws_hev_finish(h, t, CURLE_OK);
	aws_hev_dispatch(h);
	drop_idle(h);
}

static void receive(aws_http *h, aws_hconn *c)
{
	aws_hparse_cb cb = {on_header, on_body, c};
	char why[CURL_ERROR_SIZE - 64];
	for (;;) {
		ssize_t n = aws_hconn_read(c, h->epfd, h->ev->rbuf, sizeof h->ev->rbuf, why, sizeof why);
		size_t used = 0;
		int r;
		if (n == HC_AGAIN) {
			aws_hconn_trim(c);
			return;
		}
		if (n == HC_ERROR) {
			aws_hev_conn_fail(h, c, CURLE_RECV_ERROR, "%s (%s port %d)", why, c->host->name,
			                  c->host->port);
			return;
		}
		if (n == HC_EOF) {
			CURLcode cc = aws_hparse_eof(&c->p, why, sizeof why);
			if (cc == CURLE_OK) {
				c->p.close = 1;
				response_done(h, c, 0);
			} else {
				aws_hev_conn_fail(h, c, cc, "%s (%s port %d)", why, c->host->name, c->host->port);
			}
			return;
		}
		r = aws_hparse_feed(&c->p, h->ev->rbuf, (size_t)n, &used, &cb, why, sizeof why);
		if (r == HP_DONE) {
			response_done(h, c, used < (size_t)n);
			return;
		}
		if (r == HP_STOP) {
			snprintf(c->t->errbuf, sizeof c->t->errbuf, "Failure writing output to destination");
			transfer *t = c->t;
			c->t = NULL;
			t->conn = NULL;
			aws_hev_conn_close(h, c);
			aws_hev_finish(h, t, CURLE_WRITE_ERROR);
			return;
		}
		if (r == HP_BAD) {
			aws_hev_conn_fail(h, c, CURLE_WEIRD_SERVER_REPLY, "%s (%s port %d)", why, c->host->name,
			                  c->host->port);
			return;
		}
	}
}

void aws_hev_event(aws_http *h, const struct epoll_event *e)
{
	aws_hconn *c = e->data.ptr;
	if (c->fd < 0)
		return; /* closed by an event before in the batch */
	switch (c->state) {
	case HC_CONNECTOR:
		aws_hcon_drain(h);
		break;
	case HC_CONNECTING:
		if (aws_hconn_connected(c) == HC_OK) {
			connected(h, c);
		} else {
			int err = errno;
			c->ai = c->ai->ai_next;
			connect_next(h, c, err);
		}
		break;
	case HC_HANDSHAKE:
		handshake(h, c);
		break;
	case HC_SENDING:
		aws_hev_send_request(h, c);
		break;
	case HC_RECEIVING:
		receive(h, c);
		break;
	case HC_H2:
		aws_hev_h2_event(h, c, e->events);
		break;
	case HC_IDLE:
		/* closed by the server, or something nobody asked for */
		if (!aws_hconn_alive(c))
			aws_hev_conn_close(h, c);
		else
			aws_hconn_trim(c);
		break;
	}
}

long aws_hev_timers(aws_http *h)
{
	aws_hev *ev = h->ev;
	long long now = htp_now_ms(), next = -1;
	aws_hconn *c;
	int k;
	if (!ev)
		return -1;
	while ((c = ev->connecting) && c->deadline <= now)
		aws_hev_conn_fail(h, c, CURLE_OPERATION_TIMEDOUT,
		                  "Connection timed out after %lld milliseconds (connecting to %s port %d)",
		                  now - c->started, c->host->name, c->host->port);
	if (ev->connecting)
		next = ev->connecting->deadline;
	for (k = 0; k < 2; k++) {
		transfer *t;
		while ((t = ev->timed[k]) && t->deadline <= now) {
			aws_hconn *tc = t->conn;
			unsigned long long got = !tc ? 0 : tc->h2mode ? t->h2_got : tc->p.received;
			long ms = t->warm ? 2 * h->cfg.connect_timeout_ms : h->cfg.timeout_ms;
			snprintf(t->errbuf, sizeof t->errbuf,
			         "Operation timed out after %ld milliseconds with %llu bytes received (%s "
			         "port %d)",
			         ms, got, t->hhost->name, t->hhost->port);
			if (tc && tc->h2mode) { /* the stream alone ends */
				aws_h2_cancel(tc, t);
				aws_hev_h2_dirty(h, tc);
			} else if (tc) {
				tc->t = NULL;
				t->conn = NULL;
				aws_hev_conn_close(h, tc);
			}
			aws_hev_finish(h, t, CURLE_OPERATION_TIMEDOUT);
		}
		if (t && (next < 0 || t->deadline < next))
			next = t->deadline;
	}
	aws_hev_flush(h); /* the streams reset: now, not at the next wait */
	return next < 0 ? -1 : next - now < 0 ? 0 : (long)(next - now);
}

void aws_hev_poll(aws_http *h)
{
	struct epoll_event e[256];
	int n, i;
	if (!h->ev || !h->ev->wait.head)
		return;
	aws_hev_flush(h);
	n = epoll_wait(h->epfd, e, (int)(sizeof e / sizeof *e), 0);
	for (i = 0; i < n; i++)
		aws_hev_event(h, &e[i]);
	aws_hev_reap(h);
}

transfer *aws_hev_finished(aws_http *h)
{
	transfer *t = h->ev ? q_pop(&h->ev->done) : NULL;
	if (t)
		t->in_done = 0;
	return t;
}
