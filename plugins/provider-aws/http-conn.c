/*
 * http-conn.c - one connection of the builtin transport: the socket, TLS
 * on it, and the reader of HTTP/1.1 responses.  No policy here (which
 * connection, when to retry, deadlines): that is http-ev.c.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "http-conn.h"

/* ---- the response reader ------------------------------------------------------------------ */

enum {
	PS_STATUS,     /* the status line */
	PS_HEADERS,    /* header lines up to the empty one */
	PS_BODY,       /* Content-Length bytes, or up to the close */
	PS_CHUNK_SIZE, /* a chunk's size line */
	PS_CHUNK_DATA,
	PS_CHUNK_END,  /* the CRLF after a chunk */
	PS_TRAILERS,   /* after the last chunk, up to the empty line */
	PS_DONE
};

#define MAX_LINE 65536

void aws_hparse_reset(aws_hparser *p, int head)
{
	htp_buf line = p->line;
	memset(p, 0, sizeof *p);
	line.len = 0;
	p->line = line;
	p->head = head;
	p->state = PS_STATUS;
}

void aws_hparse_free(aws_hparser *p)
{
	htp_buf_free(&p->line);
}

/* The status line: "HTTP/1.x NNN reason". */
static int status_line(aws_hparser *p, const char *s, size_t n, char *why, size_t size)
{
	if (n < 12 || strncmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' ' ||
	    !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
	    !isdigit((unsigned char)s[11]) || (n > 12 && s[12] != ' ' && s[12] != '\r')) {
		snprintf(why, size, "not an HTTP/1.x status line: \"%.40s\"", s);
		for (char *c = why; *c; c++)
			if (!isprint((unsigned char)*c))
				*c = '?';
		return HP_BAD;
	}
	p->minor = s[7] - '0';
	p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	p->close = p->minor == 0;
	p->keep_alive = 0;
	p->chunked = p->has_length = 0;
	p->left = 0;
	return HP_MORE;
}

/* Does the header value (up to the end) list token? */
static int has_token(const char *v, const char *end, const char *token)
{
	size_t tl = strlen(token);
	while (v < end) {
		const char *e;
		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		e = v;
		while (e < end && *e != ',')
			e++;
		const char *te = e;
		while (te > v && (te[-1] == ' ' || te[-1] == '\t' || te[-1] == '\r' || te[-1] == '\n'))
			te--;
		if ((size_t)(te - v) == tl && strncasecmp(v, token, tl) == 0)
			return 1;
		v = e;
	}
	return 0;
}

static int header_line(aws_hparser *p, const char *s, size_t n, char *why, size_t size)
{
	const char *colon = memchr(s, ':', n), *v, *end = s + n;
	size_t name;
	if (!colon) {
		snprintf(why, size, "a header line without a colon");
		return HP_BAD;
	}
	name = (size_t)(colon - s);
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	if (name == 14 && strncasecmp(s, "content-length", 14) == 0) {
		unsigned long long cl = 0;
		const char *d = v;
		if (!isdigit((unsigned char)*d)) {
			snprintf(why, size, "a Content-Length that is not a number");
			return HP_BAD;
		}
		for (; d < end && isdigit((unsigned char)*d); d++) {
			if (cl > (~0ULL - 9) / 10) {
				snprintf(why, size, "a Content-Length too large");
				return HP_BAD;
			}
			cl = cl * 10 + (unsigned)(*d - '0');
		}
		if (p->has_length && cl != p->left) {
			snprintf(why, size, "two different Content-Length headers");
			return HP_BAD;
		}
		p->has_length = 1;
		p->left = cl;
	} else if (name == 17 && strncasecmp(s, "transfer-encoding", 17) == 0) {
		if (has_token(v, end, "chunked"))
			p->chunked = 1;
	} else if (name == 10 && strncasecmp(s, "connection", 10) == 0) {
		if (has_token(v, end, "close"))
			p->close = 1;
		if (has_token(v, end, "keep-alive"))
			p->keep_alive = 1;
	}
	return HP_MORE;
}

/* The end of the headers: what the body is. */
static void headers_end(aws_hparser *p)
{
	if (p->status >= 100 && p->status < 200 && p->status != 101) {
		p->state = PS_STATUS; /* an interim answer (100 Continue): the next one */
		return;
	}
	if (p->minor == 0 && p->keep_alive)
		p->close = 0;
	if (p->head || p->status == 204 || p->status == 304 || p->status == 101) {
		p->state = PS_DONE;
	} else if (p->chunked) {
		p->has_length = 0;
		p->state = PS_CHUNK_SIZE;
	} else if (p->has_length) {
		p->state = p->left ? PS_BODY : PS_DONE;
	} else {
		p->close = 1; /* up to the close */
		p->state = PS_BODY;
	}
}

/* One complete line (CRLF or LF included). */
static int line_done(aws_hparser *p, const char *s, size_t n, const aws_hparse_cb *cb, char *why,
                     size_t size)
{
	size_t bare = n;
	int rc;
	while (bare && (s[bare - 1] == '\n' || s[bare - 1] == '\r'))
		bare--;
	switch (p->state) {
	case PS_STATUS:
		if (bare == 0 && p->received == n)
			return HP_MORE; /* a stray empty line before the answer */
		if ((rc = status_line(p, s, bare, why, size)) != HP_MORE)
			return rc;
		p->state = PS_HEADERS;
		return cb->header && cb->header(cb->ud, s, n) < 0 ? HP_STOP : HP_MORE;
	case PS_HEADERS:
		if (cb->header && cb->header(cb->ud, s, n) < 0)
			return HP_STOP;
		if (bare == 0) {
			headers_end(p);
			return HP_MORE;
		}
		return header_line(p, s, bare, why, size);
	case PS_CHUNK_SIZE: {
		unsigned long long v = 0;
		size_t i;
		for (i = 0; i < bare && isxdigit((unsigned char)s[i]); i++) {
			if (v >> 60) {
				snprintf(why, size, "a chunk size too large");
				return HP_BAD;
			}
			v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0'
			                                                    : tolower((unsigned char)s[i]) - 'a' + 10);
		}
		if (i == 0 || (i < bare && s[i] != ';' && s[i] != ' ' && s[i] != '\t')) {
			snprintf(why, size, "a bad chunk size line");
			return HP_BAD;
		}
		p->left = v;
		p->state = v ? PS_CHUNK_DATA : PS_TRAILERS;
		return HP_MORE;
	}
	case PS_CHUNK_END:
		if (bare) {
			snprintf(why, size, "no CRLF after a chunk");
			return HP_BAD;
		}
		p->state = PS_CHUNK_SIZE;
		return HP_MORE;
	case PS_TRAILERS:
		if (bare == 0)
			p->state = PS_DONE;
		return HP_MORE;
	default:
		return HP_MORE;
	}
}

int aws_hparse_feed(aws_hparser *p, const char *data, size_t n, size_t *used,
                    const aws_hparse_cb *cb, char *why, size_t size)
{
	size_t i = 0;
	int rc;
	while (i < n && p->state != PS_DONE) {
		if (p->state == PS_BODY || p->state == PS_CHUNK_DATA) {
			size_t k = n - i;
			if (!(p->state == PS_BODY && p->close) && k > p->left)
				k = (size_t)p->left;
			if (cb->body && cb->body(cb->ud, data + i, k) < 0) {
				*used = i;
				return HP_STOP;
			}
			i += k;
			p->received += k;
			if (p->state == PS_BODY && p->close)
				continue;
			p->left -= k;
			if (p->left == 0)
				p->state = p->state == PS_BODY ? PS_DONE : PS_CHUNK_END;
			continue;
		}
		/* a line: take it up to its LF */
		const char *lf = memchr(data + i, '\n', n - i);
		size_t k = lf ? (size_t)(lf - (data + i)) + 1 : n - i;
		p->received += k;
		if (!lf || p->line.len) {
			if (p->line.len + k > MAX_LINE) {
				snprintf(why, size, "a header line longer than %d bytes", MAX_LINE);
				return HP_BAD;
			}
			if (htp_buf_add(&p->line, data + i, k) < 0) {
				snprintf(why, size, "out of memory");
				return HP_BAD;
			}
			i += k;
			if (!lf)
				break;
			rc = line_done(p, p->line.data, p->line.len, cb, why, size);
			p->line.len = 0;
		} else {
			rc = line_done(p, data + i, k, cb, why, size);
			i += k;
		}
		if (rc != HP_MORE) {
			*used = i;
			return rc;
		}
	}
	*used = i;
	if (p->state == PS_DONE) {
		htp_buf_free(&p->line); /* idle connections keep no buffer */
		return HP_DONE;
	}
	return HP_MORE;
}

CURLcode aws_hparse_eof(const aws_hparser *p, char *why, size_t size)
{
	switch (p->state) {
	case PS_DONE:
		return CURLE_OK;
	case PS_STATUS:
		if (p->received == 0) {
			snprintf(why, size, "Empty reply from server");
			return CURLE_GOT_NOTHING;
		}
		/* fall through */
	case PS_HEADERS:
		snprintf(why, size, "Connection closed in the middle of the response headers");
		return CURLE_RECV_ERROR;
	case PS_BODY:
		if (p->close)
			return CURLE_OK;
		snprintf(why, size, "transfer closed with %llu bytes remaining to read", p->left);
		return CURLE_PARTIAL_FILE;
	default:
		snprintf(why, size, "transfer closed with outstanding read data remaining");
		return CURLE_PARTIAL_FILE;
	}
}

/* ---- the socket ---------------------------------------------------------------------------- */

void aws_hconn_want(aws_hconn *c, int epfd, unsigned events)
{
	struct epoll_event ev;
	if (c->events == events || c->fd < 0)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = c;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->events = events;
}

int aws_hconn_open(aws_hconn *c, int epfd)
{
	const struct addrinfo *a = c->ai;
	struct epoll_event ev;
	int one = 1, fd;
	if (c->fd >= 0)
		aws_hconn_close(c, epfd);
	fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
	if (fd < 0)
		return HC_ERROR;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return HC_ERROR;
	}
	c->fd = fd;
	c->events = EPOLLOUT;
	if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
		return HC_OK;
	if (errno == EINPROGRESS)
		return HC_AGAIN;
	return HC_ERROR;
}

int aws_hconn_connected(aws_hconn *c)
{
	int e = 0;
	socklen_t len = sizeof e;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		return HC_ERROR;
	if (e) {
		errno = e;
		return HC_ERROR;
	}
	return HC_OK;
}

void aws_hconn_close(aws_hconn *c, int epfd)
{
	int fd = aws_hconn_detach(c, epfd);
	if (fd >= 0)
		close(fd);
}

int aws_hconn_detach(aws_hconn *c, int epfd)
{
	int fd = c->fd;
	if (c->ssl) {
		/* marked shut down (nothing sent: the socket may be gone), or
		 * SSL_free takes its session for a bad one, which then cannot
		 * be resumed by the connections after */
		if (SSL_is_init_finished(c->ssl)) {
			SSL_set_quiet_shutdown(c->ssl, 1);
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (fd >= 0)
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	c->fd = -1;
	c->events = 0;
	return fd;
}

/* The events an SSL call that returned r waits for; -1: it failed. */
static int ssl_wants(aws_hconn *c, int epfd, int r)
{
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		aws_hconn_want(c, epfd, EPOLLIN);
		return 0;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		aws_hconn_want(c, epfd, EPOLLOUT);
		return 0;
	}
	return -1;
}

/* OpenSSL's reason for the last failure (or errno's). */
static void ssl_reason(int syscall_errno, char *buf, size_t size)
{
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, size);
	else if (syscall_errno)
		snprintf(buf, size, "%s", strerror(syscall_errno));
	else
		snprintf(buf, size, "the connection closed during the handshake");
	ERR_clear_error();
}

int aws_hconn_handshake(aws_hconn *c, int epfd, aws_tls *tls, CURLcode *cc, char *why,
                        size_t size)
{
	int r;
	if (!c->ssl) {
		char load[512];
		SSL_CTX *ctx = aws_tls_ctx(tls, load, sizeof load);
		SSL_SESSION *sess;
		if (!ctx) {
			*cc = CURLE_SSL_CACERT_BADFILE;
			snprintf(why, size, "%s", load);
			return HC_ERROR;
		}
		if (!(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, c->fd) != 1) {
			*cc = CURLE_SSL_CONNECT_ERROR;
			snprintf(why, size, "cannot make an SSL connection object");
			return HC_ERROR;
		}
		SSL_set_app_data(c->ssl, c->host->key); /* the session's key (tls.c) */
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (c->host->is_ip) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), c->host->name);
		} else {
			SSL_set_tlsext_host_name(c->ssl, c->host->name);
			SSL_set1_host(c->ssl, c->host->name);
		}
		/* HTTP/2 offered: the server picks (1.1 if it does not know h2) */
		if (c->h2mode)
			SSL_set_alpn_protos(c->ssl, (const unsigned char *)"\x02h2\x08http/1.1", 12);
		if ((sess = aws_tls_session(tls, c->host->key))) {
			SSL_set_session(c->ssl, sess);
			SSL_SESSION_free(sess);
		}
		SSL_set_connect_state(c->ssl);
		c->trim = aws_tls_can_free_buffers(tls);
	}
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(c->ssl);
	if (r == 1)
		return HC_OK;
	if (ssl_wants(c, epfd, r) == 0)
		return HC_AGAIN;
	long v = SSL_get_verify_result(c->ssl);
	if (v != X509_V_OK) {
		*cc = CURLE_PEER_FAILED_VERIFICATION;
		snprintf(why, size, "SSL certificate problem: %s", X509_verify_cert_error_string(v));
		ERR_clear_error();
	} else {
		char reason[256];
		int e = errno;
		*cc = CURLE_SSL_CONNECT_ERROR;
		ssl_reason(e, reason, sizeof reason);
		snprintf(why, size, "TLS handshake failed: %s", reason);
	}
	return HC_ERROR;
}

int aws_hconn_alpn_h2(const aws_hconn *c)
{
	const unsigned char *p = NULL;
	unsigned int n = 0;
	if (!c->ssl)
		return 0;
	SSL_get0_alpn_selected(c->ssl, &p, &n);
	return n == 2 && memcmp(p, "h2", 2) == 0;
}

int aws_hconn_write(aws_hconn *c, int epfd, const char *data, size_t len, size_t *n, char *why,
                    size_t size)
{
	*n = 0;
	while (*n < len) {
		if (c->ssl) {
			size_t w = 0;
			int r;
			ERR_clear_error();
			errno = 0;
			r = SSL_write_ex(c->ssl, data + *n, len - *n, &w);
			if (r == 1) {
				*n += w;
				continue;
			}
			if (ssl_wants(c, epfd, 0) == 0)
				return HC_AGAIN;
			char reason[256];
			ssl_reason(errno, reason, sizeof reason);
			snprintf(why, size, "Send failure: %s", reason);
			return HC_ERROR;
		}
		ssize_t w = send(c->fd, data + *n, len - *n, MSG_NOSIGNAL);
		if (w > 0) {
			*n += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			aws_hconn_want(c, epfd, EPOLLOUT);
			return HC_AGAIN;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else {
			snprintf(why, size, "Send failure: %s", strerror(errno));
			return HC_ERROR;
		}
	}
	return HC_OK;
}

ssize_t aws_hconn_read(aws_hconn *c, int epfd, char *buf, size_t size, char *why, size_t wsize)
{
	if (c->ssl) {
		size_t got = 0;
		int r, e;
		ERR_clear_error();
		errno = 0;
		r = SSL_read_ex(c->ssl, buf, size, &got);
		if (r == 1)
			return (ssize_t)got;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_ZERO_RETURN)
			return HC_EOF;
		if (ssl_wants(c, epfd, r) == 0)
			return HC_AGAIN;
		if (e == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0)
			return HC_EOF; /* closed without close_notify */
		char reason[256];
		ssl_reason(errno, reason, sizeof reason);
		snprintf(why, wsize, "Recv failure: %s", reason);
		return HC_ERROR;
	}
	for (;;) {
		ssize_t n = recv(c->fd, buf, size, 0);
		if (n > 0)
			return n;
		if (n == 0)
			return HC_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			aws_hconn_want(c, epfd, EPOLLIN);
			return HC_AGAIN;
		}
		snprintf(why, wsize, "Recv failure: %s", strerror(errno));
		return HC_ERROR;
	}
}

void aws_hconn_trim(aws_hconn *c)
{
	if (c->ssl && c->trim && !SSL_has_pending(c->ssl))
		(void)SSL_free_buffers(c->ssl); /* 0: data pending, kept */
}

int aws_hconn_alive(aws_hconn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK;
	if (n == 0 || !c->ssl)
		return 0; /* closed, or bytes nobody asked for */
	/* TLS: a session ticket is fine, a close_notify or data is not */
	{
		char buf[256];
		size_t got = 0;
		int r;
		ERR_clear_error();
		r = SSL_read_ex(c->ssl, buf, sizeof buf, &got);
		if (r == 1)
			return 0;
		r = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		return r == SSL_ERROR_WANT_READ;
	}
}
