/*
 * http-h2.c - HTTP/2 on a connection of the builtin transport, with
 * libnghttp2: the session (its SETTINGS, windows, output), a request as a
 * stream, and the ends of its streams.  The request is the one http-ev.c
 * built for HTTP/1.1 (aws_hev_build), read back as header fields: one
 * build, one signature, two encodings.  No policy here (which connection,
 * when to retry, deadlines): the callbacks only record how a stream ended
 * (t->h2_end) and put it on c->ended, which http-ev.c reads once the
 * session has handed over what it read, outside nghttp2's callbacks.
 *
 * Nothing keeps a pointer to a transfer inside the session: every callback
 * finds its transfer by stream id among the connection's, so a transfer
 * that ended or was dropped is never touched again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "http-conn.h"

/* ---- the streams of a connection ------------------------------------------------------------ */

void aws_h2_attach(aws_hconn *c, transfer *t)
{
	t->snext = NULL;
	t->sprev = c->streams_tail;
	if (c->streams_tail)
		c->streams_tail->snext = t;
	else
		c->streams = t;
	c->streams_tail = t;
	c->nstreams++;
	t->conn = c;
	t->stream = 0;
	t->h2_end = 0;
	t->h2_got = 0;
	t->h2_complete = 0;
}

void aws_h2_detach(aws_hconn *c, transfer *t)
{
	if (t->sprev)
		t->sprev->snext = t->snext;
	else
		c->streams = t->snext;
	if (t->snext)
		t->snext->sprev = t->sprev;
	else
		c->streams_tail = t->sprev;
	t->snext = t->sprev = NULL;
	c->nstreams--;
	if (c->last == t)
		c->last = NULL;
	t->conn = NULL;
}

transfer *aws_h2_next_ended(aws_hconn *c)
{
	transfer *t = c->ended;
	if (t) {
		c->ended = t->enext;
		if (!c->ended)
			c->ended_tail = NULL;
		t->enext = NULL;
		t->conn = NULL;
	}
	return t;
}

#ifdef HAVE_NGHTTP2
#include <nghttp2/nghttp2.h>

/* The transfer on stream id, or NULL (ended, dropped, never ours). */
static transfer *stream_of(aws_hconn *c, int32_t id)
{
	transfer *t;
	if (id <= 0)
		return NULL;
	if (c->last && c->last->stream == id)
		return c->last;
	for (t = c->streams; t; t = t->snext)
		if (t->stream == id)
			return c->last = t;
	return NULL;
}

/* t's stream is over (how: H2_END_*): off the streams, onto c->ended. */
static void ended(aws_hconn *c, transfer *t, int how, uint32_t code)
{
	aws_h2_detach(c, t);
	t->conn = c; /* still its connection until http-ev.c reads c->ended */
	t->h2_end = how;
	t->h2_error = code;
	t->enext = NULL;
	if (c->ended_tail)
		c->ended_tail->enext = t;
	else
		c->ended = t;
	c->ended_tail = t;
}

/* ---- the session's callbacks ---------------------------------------------------------------- */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	aws_hconn *c = ud;
	transfer *t;
	char small[1024], *line = small;
	size_t size = nlen + vlen + 16;
	int n, ok;
	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || !(t = stream_of(c, f->hd.stream_id)))
		return 0;
	t->h2_got += nlen + vlen;
	if ((nlen && name[0] == ':' && !(nlen == 7 && memcmp(name, ":status", 7) == 0)) || t->warm)
		return 0;
	if (size > sizeof small && !(line = malloc(size)))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (name[0] == ':') {
		/* a status line as HTTP/1.1's reader hands it over (libcurl's words
		 * for HTTP/2): a new answer, an interim one included */
		n = snprintf(line, size, "HTTP/2 %.*s \r\n", (int)vlen, (const char *)value);
		t->hstatus = strtol((const char *)value, NULL, 10);
	} else {
		n = snprintf(line, size, "%.*s: %.*s\r\n", (int)nlen, (const char *)name, (int)vlen,
		             (const char *)value);
	}
	if (t->h->cfg.verbose)
		aws_http_log_lines(t->h, "< ", line, (size_t)n);
	ok = aws_http_on_header(t, line, (size_t)n) == (size_t)n;
	if (line != small)
		free(line);
	if (!ok) {
		/* past the response cap: the stream is cancelled */
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, t->stream, NGHTTP2_CANCEL);
		ended(c, t, H2_END_WRITE, 0);
	}
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
	aws_hconn *c = ud;
	transfer *t = stream_of(c, id);
	(void)flags;
	if (!t)
		return 0;
	t->h2_got += len;
	if (t->warm || len == 0)
		return 0;
	if (aws_http_on_body(t, (const char *)data, len) != len) {
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
		ended(c, t, H2_END_WRITE, 0);
	}
	return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	aws_hconn *c = ud;
	transfer *t;
	switch (f->hd.type) {
	case NGHTTP2_SETTINGS:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) {
			uint32_t most =
			    nghttp2_session_get_remote_settings(s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
			c->cap = most < AWS_H2_MAX_STREAMS ? most : AWS_H2_MAX_STREAMS;
			c->settings_seen = 1;
		}
		break;
	case NGHTTP2_GOAWAY: {
		/* the streams above its last id were not processed */
		transfer *nx;
		c->goaway = 1;
		c->goaway_last = f->goaway.last_stream_id;
		c->goaway_code = f->goaway.error_code;
		for (t = c->streams; t; t = nx) {
			nx = t->snext;
			if ((t->stream == 0 || t->stream > c->goaway_last) && t->h2_got == 0)
				ended(c, t, H2_END_REFUSED, NGHTTP2_REFUSED_STREAM);
		}
		break;
	}
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		/* the answer is whole: a final status and the end of the stream */
		if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && (t = stream_of(c, f->hd.stream_id))) {
			if (t->hstatus >= 200) {
				t->h2_complete = 1;
				ended(c, t, H2_END_OK, 0);
			}
		}
		break;
	default:
		break;
	}
	return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	aws_hconn *c = ud;
	transfer *t = stream_of(c, id);
	(void)s;
	if (!t)
		return 0;
	if (code == NGHTTP2_REFUSED_STREAM && t->h2_got == 0)
		ended(c, t, H2_END_REFUSED, code);
	else if (code == NGHTTP2_NO_ERROR)
		ended(c, t, H2_END_PARTIAL, code);
	else
		ended(c, t, H2_END_RESET, code);
	return 0;
}

/* A request the session could not send (a GOAWAY came first, the stream
 * ids ran out): never seen by the server, so sent again elsewhere. */
static int on_not_sent(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
	aws_hconn *c = ud;
	transfer *t;
	(void)s;
	(void)err;
	if (f->hd.type == NGHTTP2_HEADERS && (t = stream_of(c, f->hd.stream_id)) && t->h2_got == 0)
		ended(c, t, H2_END_REFUSED, NGHTTP2_REFUSED_STREAM);
	return 0;
}

/* The request's body, from t->reqbuf; freed once all of it is in the
 * session's frames (built again if the request must go out again). */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
	aws_hconn *c = ud;
	transfer *t = stream_of(c, id);
	size_t k;
	(void)s;
	(void)src;
	if (!t)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	k = t->body_end - t->body_at;
	if (k > len)
		k = len;
	if (k)
		memcpy(buf, t->reqbuf.data + t->body_at, k);
	t->body_at += k;
	if (t->body_at == t->body_end) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		htp_buf_free(&t->reqbuf);
		t->body_at = t->body_end = 0;
	}
	return (ssize_t)k;
}

/* ---- the session ---------------------------------------------------------------------------- */

int aws_h2_begin(aws_hconn *c, char *why, size_t size)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session *s = NULL;
	nghttp2_settings_entry iv[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, AWS_H2_STREAM_WINDOW},
	};
	int rv;
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		snprintf(why, size, "out of memory");
		return HC_ERROR;
	}
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_not_sent);
	rv = nghttp2_session_client_new(&s, cb, c);
	nghttp2_session_callbacks_del(cb);
	if (rv == 0)
		rv = nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv);
	/* the connection's window: every stream's answers at once */
	if (rv == 0)
		rv = nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, AWS_H2_CONN_WINDOW);
	if (rv != 0) {
		nghttp2_session_del(s);
		snprintf(why, size, "HTTP/2: %s", nghttp2_strerror(rv));
		return HC_ERROR;
	}
	c->h2 = s;
	c->cap = AWS_H2_FIRST_STREAMS; /* until the server's SETTINGS say (or the caller knows) */
	return HC_OK;
}

void aws_h2_end(aws_hconn *c)
{
	if (c->h2) {
		nghttp2_session_del(c->h2);
		c->h2 = NULL;
	}
	htp_buf_free(&c->out);
	c->out_at = 0;
}

int aws_h2_submit(aws_hconn *c, transfer *t, int https, char *why, size_t size)
{
	/* the request as built for HTTP/1.1: "METHOD TARGET HTTP/1.1", header
	 * lines, an empty line, the body */
	const char *p = t->reqbuf.data, *end = p + t->reqbuf.len, *head_end, *sp1, *sp2;
	nghttp2_nv nv[64];
	size_t n = 0;
	char *names = NULL, *authority = NULL;
	nghttp2_data_provider body = {{0}, read_body};
	int32_t id;
	head_end = p ? memmem(p, t->reqbuf.len, "\r\n\r\n", 4) : NULL;
	sp1 = head_end ? memchr(p, ' ', (size_t)(head_end - p)) : NULL;
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(head_end - sp1 - 1)) : NULL;
	if (!sp2) {
		snprintf(why, size, "HTTP/2: no request to send");
		return HC_ERROR;
	}
	/* lower-case names: a copy of the header lines */
	const char *lines = memchr(p, '\n', (size_t)(head_end - p));
	if (!lines) /* no header line */
		lines = head_end + 1;
	size_t llen = (size_t)(head_end + 2 - (lines + 1));
	if (!(names = malloc(llen + 1))) {
		snprintf(why, size, "out of memory");
		return HC_ERROR;
	}
	memcpy(names, lines + 1, llen);
	names[llen] = '\0';
#define NV(nm, nl, v, vl)                                                                          \
	(nv[n].name = (uint8_t *)(nm), nv[n].namelen = (nl), nv[n].value = (uint8_t *)(v),             \
	 nv[n].valuelen = (vl), nv[n].flags = NGHTTP2_NV_FLAG_NONE, n++)
	NV(":method", 7, p, (size_t)(sp1 - p));
	NV(":scheme", 7, https ? "https" : "http", https ? 5u : 4u);
	NV(":path", 5, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	size_t auth_at = n;
	NV(":authority", 10, "", 0);
	for (char *l = names; *l;) {
		char *eol = strstr(l, "\r\n"), *colon, *v, *ve;
		if (!eol)
			break;
		*eol = '\0';
		colon = strchr(l, ':');
		if (colon) {
			for (char *q = l; q < colon; q++)
				*q = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
			for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
				;
			for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
				;
			size_t nl = (size_t)(colon - l);
			if (nl == 4 && memcmp(l, "host", 4) == 0) {
				nv[auth_at].value = (uint8_t *)v;
				nv[auth_at].valuelen = (size_t)(ve - v);
			} else if (n == sizeof nv / sizeof *nv) {
				free(names);
				snprintf(why, size, "HTTP/2: more than %zu header fields", sizeof nv / sizeof *nv);
				return HC_ERROR;
			} else if (!((nl == 10 && memcmp(l, "connection", 10) == 0) ||
			             (nl == 10 && memcmp(l, "keep-alive", 10) == 0) ||
			             (nl == 16 && memcmp(l, "proxy-connection", 16) == 0) ||
			             (nl == 17 && memcmp(l, "transfer-encoding", 17) == 0) ||
			             (nl == 7 && memcmp(l, "upgrade", 7) == 0) ||
			             (nl == 2 && memcmp(l, "te", 2) == 0))) {
				NV(l, nl, v, (size_t)(ve - v));
			}
		}
		l = eol + 2;
	}
#undef NV
	if (nv[auth_at].valuelen == 0) {
		const aws_hhost *host = c->host;
		int v6 = strchr(host->name, ':') != NULL, rc;
		if (host->port == (https ? 443 : 80))
			rc = asprintf(&authority, v6 ? "[%s]" : "%s", host->name);
		else
			rc = asprintf(&authority, v6 ? "[%s]:%d" : "%s:%d", host->name, host->port);
		if (rc < 0)
			authority = NULL;
		if (authority) {
			nv[auth_at].value = (uint8_t *)authority;
			nv[auth_at].valuelen = strlen(authority);
		}
	}
	t->body_at = (size_t)(head_end + 4 - p);
	t->body_end = (size_t)(end - p);
	id = nghttp2_submit_request(c->h2, NULL, nv, n, t->body_end > t->body_at ? &body : NULL, NULL);
	free(names);
	free(authority);
	if (id < 0) {
		snprintf(why, size, "HTTP/2: %s", nghttp2_strerror(id));
		return HC_ERROR;
	}
	t->stream = id;
	if (t->body_end == t->body_at) { /* all of it in the session's frames */
		htp_buf_free(&t->reqbuf);
		t->body_at = t->body_end = 0;
	}
	return HC_OK;
}

void aws_h2_cancel(aws_hconn *c, transfer *t)
{
	if (c->h2 && t->stream > 0)
		nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, t->stream, NGHTTP2_CANCEL);
	aws_h2_detach(c, t);
}

int aws_h2_recv(aws_hconn *c, int epfd, char *buf, size_t bsize, char *why, size_t size)
{
	for (;;) {
		ssize_t n = aws_hconn_read(c, epfd, buf, bsize, why, size), used;
		if (n == HC_AGAIN)
			return HC_OK;
		if (n == HC_EOF || n == HC_ERROR)
			return (int)n;
		used = nghttp2_session_mem_recv(c->h2, (const uint8_t *)buf, (size_t)n);
		if (used < 0) {
			snprintf(why, size, "HTTP/2 framing error: %s", nghttp2_strerror((int)used));
			return HC_ERROR;
		}
	}
}

int aws_h2_send(aws_hconn *c, int epfd, char *why, size_t size)
{
	for (;;) {
		size_t w = 0;
		int r;
		if (c->out_at < c->out.len) {
			r = aws_hconn_write(c, epfd, c->out.data + c->out_at, c->out.len - c->out_at, &w, why,
			                    size);
			c->out_at += w;
			if (r == HC_AGAIN)
				return HC_AGAIN;
			if (r == HC_ERROR)
				return HC_ERROR;
			htp_buf_free(&c->out);
			c->out_at = 0;
		}
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->h2, &data);
		if (n < 0) {
			snprintf(why, size, "HTTP/2: %s", nghttp2_strerror((int)n));
			return HC_ERROR;
		}
		if (n == 0)
			return HC_OK;
		r = aws_hconn_write(c, epfd, (const char *)data, (size_t)n, &w, why, size);
		if (r == HC_ERROR)
			return HC_ERROR;
		if (w < (size_t)n) { /* the rest when the socket can take it */
			if (htp_buf_add(&c->out, data + w, (size_t)n - w) < 0) {
				snprintf(why, size, "out of memory");
				return HC_ERROR;
			}
			return HC_AGAIN;
		}
	}
}

int aws_h2_done(const aws_hconn *c)
{
	return !c->h2 || (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2));
}

const char *aws_h2_strerror(unsigned code)
{
	return nghttp2_http2_strerror(code);
}

#else /* !HAVE_NGHTTP2: options.c refuses httpVersion "2", and no host asks for it */

int aws_h2_begin(aws_hconn *c, char *why, size_t size)
{
	(void)c;
	snprintf(why, size, "built without HTTP/2 (libnghttp2)");
	return HC_ERROR;
}

void aws_h2_end(aws_hconn *c)
{
	htp_buf_free(&c->out);
}

int aws_h2_submit(aws_hconn *c, transfer *t, int https, char *why, size_t size)
{
	(void)c;
	(void)t;
	(void)https;
	snprintf(why, size, "built without HTTP/2 (libnghttp2)");
	return HC_ERROR;
}

void aws_h2_cancel(aws_hconn *c, transfer *t)
{
	(void)c;
	(void)t;
}

int aws_h2_recv(aws_hconn *c, int epfd, char *buf, size_t bsize, char *why, size_t size)
{
	(void)c;
	(void)epfd;
	(void)buf;
	(void)bsize;
	snprintf(why, size, "built without HTTP/2 (libnghttp2)");
	return HC_ERROR;
}

int aws_h2_send(aws_hconn *c, int epfd, char *why, size_t size)
{
	(void)c;
	(void)epfd;
	snprintf(why, size, "built without HTTP/2 (libnghttp2)");
	return HC_ERROR;
}

int aws_h2_done(const aws_hconn *c)
{
	(void)c;
	return 1;
}

const char *aws_h2_strerror(unsigned code)
{
	(void)code;
	return "unknown";
}

#endif
