/*
 * invoke-floor.c - what N Lambda invocations at once cost this machine
 * without hypertest: the floor under bench/aws-invoke.sh's figures.
 *
 *   invoke-floor raw|curl|tls URL N [CA_FILE]
 *
 * Sends N Invoke requests at once, each on a connection of its own, to
 * URL (bench/lambda-endpoint.c's http://127.0.0.1:PORT), and waits for
 * every answer.  The request has the shape of hypertest's (SigV4 headers
 * of the same size; the signature is not computed, the endpoint checks
 * only the shape), so the figures are those of the connections and of the
 * HTTP client alone: no payload building, no signing, no results.
 *
 *   raw   non-blocking sockets and epoll, one thread: the kernel's part
 *   curl  libcurl's multi interface with curl_multi_socket_action and
 *         epoll, one multi handle, one easy handle per request: what
 *         libcurl itself needs, whoever drives it (an https:// URL: the
 *         CA file given to libcurl with no CA directory, so that libcurl
 *         parses it once)
 *   tls   the raw mode over TLS (https://IPV4:PORT/PATH): non-blocking
 *         OpenSSL handshakes and requests on epoll, one SSL_CTX for all,
 *         CA_FILE loaded into it once, the peer verified as hypertest does
 *         (chain and IP address), each connection resuming the session of
 *         one full handshake made first and its buffers released while
 *         idle (SSL_MODE_RELEASE_BUFFERS), at most 64 handshakes under way
 *         at once (FLOOR_TLS_WINDOW), as hypertest's do: what HTTPS itself
 *         costs, in CPU and in memory
 *   h2    (built with HAVE_NGHTTP2 and -lnghttp2) the same requests as
 *         HTTP/2 streams (libnghttp2), FLOOR_H2_STREAMS of them (default
 *         100) on each TLS connection (ALPN h2, the peer verified): what
 *         one connection per hundred invocations would cost, against
 *         bench/lambda-endpoint-h2.mjs
 *
 * Prints one line:
 *   floor MODE N: all sent after S ms, all answered after A ms; CPU U ms user,
 *   Y ms system = P ms per invocation; peak RSS R KB (h2: "; K connections")
 * ("all sent": raw only; libcurl does not say when a request left).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#ifdef HAVE_NGHTTP2
#include <nghttp2/nghttp2.h>
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static const char body[] = "{\"runId\":\"floor\",\"testId\":\"t00000\",\"context\":{\"name\":\"t00000\"}}";
static const char *const headers[] = {
    "Content-Type: application/json",
    "X-Amz-Date: 20260101T000000Z",
    "X-Amz-Content-Sha256: 0000000000000000000000000000000000000000000000000000000000000000",
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDFLOOR0000000000/20260101/us-east-1/lambda/"
    "aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
    "Signature=0000000000000000000000000000000000000000000000000000000000000000",
};

static void die(const char *what)
{
	fprintf(stderr, "invoke-floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- raw sockets ------------------------------------------------------------------------ */

enum { R_CONNECTING = 1, R_SENT = 2 };

static int run_raw(const char *url, int n, double t0, double *sent_ms)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	char host[64], path[512], req[2048], buf[4096];
	unsigned port;
	int len, ep, sent = 0, done = 0, i, maxfd = n + 1024;
	unsigned char *state;

	if (sscanf(url, "http://%63[0-9.]:%u%511s", host, &port, path) != 3 ||
	    inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "invoke-floor: raw wants http://IPV4:PORT/PATH, not %s\n", url);
		return 2;
	}
	a.sin_port = htons((unsigned short)port);
	len = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: %s:%u\r\n", path, host, port);
	for (i = 0; i < (int)(sizeof headers / sizeof *headers); i++)
		len += snprintf(req + len, sizeof req - (size_t)len, "%s\r\n", headers[i]);
	len += snprintf(req + len, sizeof req - (size_t)len, "Content-Length: %zu\r\n\r\n%s",
	                strlen(body), body);
	if ((ep = epoll_create1(0)) < 0)
		die("epoll_create1");
	if (!(state = calloc((size_t)maxfd, 1)))
		die("calloc");
	for (i = 0; i < n; i++) {
		int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct epoll_event ev = {.data.fd = fd};
		if (fd < 0)
			die("socket");
		if (fd >= maxfd) {
			fprintf(stderr, "invoke-floor: descriptor %d beyond %d\n", fd, maxfd);
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
			die("connect");
		if (write(fd, req, (size_t)len) == len) {
			state[fd] = R_SENT;
			sent++;
			ev.events = EPOLLIN;
		} else {
			state[fd] = R_CONNECTING;
			ev.events = EPOLLOUT;
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
	}
	if (sent == n)
		*sent_ms = now_ms() - t0;
	while (done < n) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 60000);
		if (k <= 0)
			die("epoll_wait (no answer in 60 s)");
		for (i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			if (state[fd] == R_CONNECTING) {
				struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
				if (write(fd, req, (size_t)len) != len)
					die("write");
				state[fd] = R_SENT;
				if (++sent == n)
					*sent_ms = now_ms() - t0;
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
				continue;
			}
			ssize_t r = read(fd, buf, sizeof buf);
			if (r > 0 && strncmp(buf, "HTTP/1.1 200", 12) != 0) {
				fprintf(stderr, "invoke-floor: answered %.40s\n", buf);
				return 1;
			}
			if (r < 0 && errno != EAGAIN)
				die("read");
			if (r >= 0) { /* the answers are small: the first read has the head */
				close(fd);
				done++;
			}
		}
	}
	free(state);
	close(ep);
	return 0;
}

/* ---- raw sockets over TLS ------------------------------------------------------------------ */

enum { T_HANDSHAKE = 1, T_READING = 2, T_DONE = 3 };

typedef struct tconn {
	SSL *ssl;
	int state;
} tconn;

static void tls_die(const char *what)
{
	char e[256];
	ERR_error_string_n(ERR_get_error(), e, sizeof e);
	fprintf(stderr, "invoke-floor: %s: %s\n", what, e);
	exit(1);
}

/* Watch fd for what the TLS engine needs after result r of an SSL call. */
static void tls_want(int ep, int fd, SSL *ssl, int r)
{
	struct epoll_event ev = {.data.fd = fd};
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		ev.events = EPOLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		ev.events = EPOLLOUT;
	else
		tls_die("TLS");
	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* https://IPV4:PORT/PATH into its address, host and path; 2 (with a
 * message naming the mode) when it is not one. */
static int https_target(const char *mode, const char *url, struct sockaddr_in *a,
                        char host[64], char path[512], unsigned *port)
{
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	if (sscanf(url, "https://%63[0-9.]:%u%511s", host, port, path) != 3 ||
	    inet_pton(AF_INET, host, &a->sin_addr) != 1) {
		fprintf(stderr, "invoke-floor: %s wants https://IPV4:PORT/PATH, not %s\n", mode, url);
		return 2;
	}
	a->sin_port = htons((unsigned short)*port);
	return 0;
}

/* One context for all connections: the CA file parsed once, the peer
 * verified as hypertest does (chain and IP address), buffers released
 * while idle. */
static SSL_CTX *tls_client_ctx(const char *host, const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		tls_die("SSL_CTX_new");
	if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
	            : SSL_CTX_set_default_verify_paths(ctx) != 1)
		tls_die(ca_file ? ca_file : "the default CA paths");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), host);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

/* One blocking connection with a full handshake, read until the server's
 * ticket makes its session resumable (TLS 1.3 sends it after the
 * handshake): the session every connection of the run resumes. */
static SSL_SESSION *tls_prime(SSL_CTX *ctx, const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	SSL *ssl;
	SSL_SESSION *sess = NULL;
	if (fd < 0 || connect(fd, (const struct sockaddr *)a, sizeof *a) != 0)
		die("connect");
	if (!(ssl = SSL_new(ctx)) || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
		tls_die("the first handshake");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (int k = 0; k < 100; k++) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		char b[256];
		sess = SSL_get1_session(ssl);
		if (sess && SSL_SESSION_is_resumable(sess))
			break;
		SSL_SESSION_free(sess);
		sess = NULL;
		if (poll(&pf, 1, 20) > 0)
			(void)SSL_read(ssl, b, (int)sizeof b); /* takes the ticket, then wants more */
	}
	if (!sess) {
		fprintf(stderr, "invoke-floor: no resumable session after the first handshake\n");
		exit(1);
	}
	SSL_free(ssl);
	close(fd);
	return sess;
}

/* One more connection of the TLS run, its handshake started. */
static int tls_open(int ep, SSL_CTX *ctx, SSL_SESSION *sess, const struct sockaddr_in *a,
                    tconn *conns, int maxfd)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct epoll_event ev = {.events = EPOLLOUT};
	if (fd < 0)
		die("socket");
	if (fd >= maxfd) {
		fprintf(stderr, "invoke-floor: descriptor %d beyond %d\n", fd, maxfd);
		return -1;
	}
	ev.data.fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (const struct sockaddr *)a, sizeof *a) < 0 && errno != EINPROGRESS)
		die("connect");
	if (!(conns[fd].ssl = SSL_new(ctx)) || SSL_set_fd(conns[fd].ssl, fd) != 1 ||
	    SSL_set_session(conns[fd].ssl, sess) != 1)
		tls_die("SSL_new");
	SSL_set_connect_state(conns[fd].ssl);
	conns[fd].state = T_HANDSHAKE;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl");
	return 0;
}

static int run_tls(const char *url, int n, const char *ca_file, double t0, double *sent_ms)
{
	const char *w = getenv("FLOOR_TLS_WINDOW");
	int window = w && atoi(w) > 0 ? atoi(w) : 64, opened;
	SSL_SESSION *sess;
	struct sockaddr_in a;
	char host[64], path[512], req[2048], buf[4096];
	unsigned port;
	int len, ep, sent = 0, done = 0, i, maxfd = n + 1024;
	tconn *conns;
	SSL_CTX *ctx;

	if (https_target("tls", url, &a, host, path, &port) != 0)
		return 2;
	len = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: %s:%u\r\n", path, host, port);
	for (i = 0; i < (int)(sizeof headers / sizeof *headers); i++)
		len += snprintf(req + len, sizeof req - (size_t)len, "%s\r\n", headers[i]);
	len += snprintf(req + len, sizeof req - (size_t)len, "Content-Length: %zu\r\n\r\n%s",
	                strlen(body), body);
	ctx = tls_client_ctx(host, ca_file);
	sess = tls_prime(ctx, &a);
	if ((ep = epoll_create1(0)) < 0)
		die("epoll_create1");
	if (!(conns = calloc((size_t)maxfd, sizeof *conns)))
		die("calloc");
	/* at most `window` handshakes under way at once (FLOOR_TLS_WINDOW,
	 * default 64): each holds its buffers and handshake state until done */
	for (opened = 0; opened < n && opened < window; opened++)
		if (tls_open(ep, ctx, sess, &a, conns, maxfd) != 0)
			return 1;
	while (done < n) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 60000);
		if (k <= 0)
			die("epoll_wait (no answer in 60 s)");
		for (i = 0; i < k; i++) {
			int fd = evs[i].data.fd, r;
			tconn *c = &conns[fd];
			if (c->state == T_HANDSHAKE) {
				if ((r = SSL_do_handshake(c->ssl)) != 1) {
					tls_want(ep, fd, c->ssl, r);
					continue;
				}
				/* small: one record, the socket buffer takes it */
				if (SSL_write(c->ssl, req, len) != len)
					tls_die("SSL_write");
				c->state = T_READING;
				if (++sent == n)
					*sent_ms = now_ms() - t0;
				if (opened < n) {
					if (tls_open(ep, ctx, sess, &a, conns, maxfd) != 0)
						return 1;
					opened++;
				}
				struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
				epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
				continue;
			}
			r = SSL_read(c->ssl, buf, (int)sizeof buf - 1);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					tls_want(ep, fd, c->ssl, r);
					continue;
				}
				tls_die("SSL_read");
			}
			if (strncmp(buf, "HTTP/1.1 200", 12) != 0) {
				fprintf(stderr, "invoke-floor: answered %.40s\n", buf);
				return 1;
			}
			/* the answers are small: the first record has the head.  The
			 * connection stays open (out of the epoll set) until the last
			 * answer, as a client's with C invocations in flight: the peak
			 * RSS is that of C TLS connections at once. */
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			(void)SSL_free_buffers(c->ssl); /* 0: data pending, kept */
			c->state = T_DONE;
			done++;
		}
	}
	for (i = 0; i < maxfd; i++)
		if (conns[i].ssl) {
			SSL_free(conns[i].ssl);
			close(i);
		}
	free(conns);
	SSL_SESSION_free(sess);
	SSL_CTX_free(ctx);
	close(ep);
	return 0;
}

/* ---- libcurl ---------------------------------------------------------------------------- */

static int curl_ep;
static double curl_due = -1;

static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
	struct epoll_event ev = {.data.fd = s};
	(void)e;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(curl_ep, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (!sockp) {
		epoll_ctl(curl_ep, EPOLL_CTL_ADD, s, &ev);
		curl_multi_assign(ud, s, ud);
	} else {
		epoll_ctl(curl_ep, EPOLL_CTL_MOD, s, &ev);
	}
	return 0;
}

static int on_timer(CURLM *m, long ms, void *ud)
{
	(void)m;
	(void)ud;
	curl_due = ms < 0 ? -1 : now_ms() + (double)ms;
	return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static int run_curl(const char *url, int n, const char *ca_file)
{
	struct curl_slist *hl = NULL;
	CURLM *m;
	int running, done = 0, rc = 0, i;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(m = curl_multi_init()))
		return 1;
	if ((curl_ep = epoll_create1(0)) < 0)
		die("epoll_create1");
	for (i = 0; i < (int)(sizeof headers / sizeof *headers); i++)
		hl = curl_slist_append(hl, headers[i]);
	curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)n);
	for (i = 0; i < n; i++) {
		CURL *e = curl_easy_init();
		if (!e)
			return 1;
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		if (ca_file) {
			curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
			curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		}
		curl_multi_add_handle(m, e);
		if (i % 64 == 63) /* as hypertest does: the first ones leave early */
			curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	while (done < n) {
		struct epoll_event evs[256];
		double wait = curl_due < 0 ? 1000 : curl_due - now_ms();
		int k = epoll_wait(curl_ep, evs, 256, wait < 0 ? 0 : (int)wait + 1);
		CURLMsg *msg;
		int left;
		if (k < 0 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < k; i++)
			curl_multi_socket_action(m, evs[i].data.fd,
			                         (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
			                             (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0),
			                         &running);
		if (curl_due >= 0 && now_ms() >= curl_due) {
			curl_due = -1;
			curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		while ((msg = curl_multi_info_read(m, &left))) {
			long status = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result != CURLE_OK || status != 200) {
				fprintf(stderr, "invoke-floor: %s, HTTP %ld\n",
				        curl_easy_strerror(msg->data.result), status);
				rc = 1;
			}
			curl_multi_remove_handle(m, msg->easy_handle);
			curl_easy_cleanup(msg->easy_handle);
			done++;
		}
	}
	curl_multi_cleanup(m);
	curl_slist_free_all(hl);
	close(curl_ep);
	return rc;
}

/* ---- HTTP/2 over TLS ------------------------------------------------------------------------- */

#ifdef HAVE_NGHTTP2
typedef struct h2conn {
	int fd, ready;
	SSL *ssl;
	nghttp2_session *ng;
	int nreq;
	unsigned char *pend; /* what SSL_write must take again */
	size_t plen;
} h2conn;

static int h2_done, h2_failed;

static ssize_t h2_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	size_t n = sizeof body - 1;
	(void)s, (void)id, (void)src, (void)ud;
	if (n > len)
		n = len;
	memcpy(buf, body, n);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int h2_closed(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	(void)s, (void)id, (void)ud;
	if (code != NGHTTP2_NO_ERROR)
		h2_failed++;
	h2_done++;
	return 0;
}

static int h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	(void)s, (void)f, (void)flags, (void)ud;
	if (nl == 7 && memcmp(name, ":status", 7) == 0 && (vl != 3 || memcmp(value, "200", 3) != 0)) {
		fprintf(stderr, "invoke-floor: answered %.*s\n", (int)vl, (const char *)value);
		exit(1);
	}
	return 0;
}

static void h2_want(int ep, h2conn *c, unsigned events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what the session has to send; EPOLLOUT while some is left. */
static void h2_flush(int ep, h2conn *c)
{
	for (;;) {
		int w;
		if (!c->plen) {
			const uint8_t *data;
			ssize_t n = nghttp2_session_mem_send(c->ng, &data);
			if (n < 0)
				tls_die("nghttp2_session_mem_send");
			if (n == 0)
				break;
			if (!(c->pend = realloc(c->pend, (size_t)n)))
				die("realloc");
			memcpy(c->pend, data, (size_t)n);
			c->plen = (size_t)n;
		}
		/* a retried SSL_write takes the same bytes: all of them or none */
		if ((w = SSL_write(c->ssl, c->pend, (int)c->plen)) <= 0) {
			int e = SSL_get_error(c->ssl, w);
			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				tls_die("SSL_write");
			h2_want(ep, c, EPOLLIN | EPOLLOUT);
			return;
		}
		c->plen = 0;
	}
	free(c->pend);
	c->pend = NULL;
	h2_want(ep, c, EPOLLIN);
}

/* The handshake chose h2: a session, its settings and all its requests. */
static void h2_start(int ep, h2conn *c, const char *authority, const char *path)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry window = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20};
	nghttp2_nv nv[16];
	char names[8][64], len[16];
	size_t k = 0;
	int i;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		die("nghttp2_session_callbacks_new");
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_closed);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_header);
	if (nghttp2_session_client_new(&c->ng, cb, c) != 0)
		die("nghttp2_session_client_new");
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, &window, 1);
#define H2_NV(n, nlen, v)                                                                          \
	(nghttp2_nv)                                                                               \
	{                                                                                          \
		(uint8_t *)(n), (uint8_t *)(v), (nlen), strlen(v), NGHTTP2_NV_FLAG_NONE            \
	}
	nv[k++] = H2_NV(":method", 7, "POST");
	nv[k++] = H2_NV(":scheme", 7, "https");
	nv[k++] = H2_NV(":authority", 10, authority);
	nv[k++] = H2_NV(":path", 5, path);
	snprintf(len, sizeof len, "%zu", sizeof body - 1);
	nv[k++] = H2_NV("content-length", 14, len);
	/* the HTTP/1.1 requests' headers, names in lower case as HTTP/2 has them */
	for (i = 0; i < (int)(sizeof headers / sizeof *headers) && i < 8; i++) {
		const char *colon = strchr(headers[i], ':');
		size_t nl = (size_t)(colon - headers[i]), j;
		for (j = 0; j < nl && j < sizeof names[i] - 1; j++)
			names[i][j] = (char)tolower((unsigned char)headers[i][j]);
		nv[k++] = H2_NV(names[i], j, colon + 2);
	}
	for (i = 0; i < c->nreq; i++) {
		nghttp2_data_provider dp = {.read_callback = h2_body};
		if (nghttp2_submit_request(c->ng, NULL, nv, k, &dp, NULL) < 0)
			tls_die("nghttp2_submit_request");
	}
	c->ready = 1;
	h2_flush(ep, c);
}

static int run_h2(const char *url, int n, const char *ca_file, double t0, double *sent_ms,
                  int *nconns)
{
	struct sockaddr_in a;
	char host[64], path[512], authority[80];
	unsigned char buf[16384];
	static const unsigned char alpn[] = "\x02h2";
	const char *s = getenv("FLOOR_H2_STREAMS");
	int per = s && atoi(s) > 0 ? atoi(s) : 100, k, i, ep, sent = 0;
	unsigned port;
	h2conn *cs;
	SSL_CTX *ctx;

	if (https_target("h2", url, &a, host, path, &port) != 0)
		return 2;
	snprintf(authority, sizeof authority, "%s:%u", host, port);
	ctx = tls_client_ctx(host, ca_file);
	if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0)
		tls_die("SSL_CTX_set_alpn_protos");
	*nconns = k = (n + per - 1) / per;
	if ((ep = epoll_create1(0)) < 0)
		die("epoll_create1");
	if (!(cs = calloc((size_t)k, sizeof *cs)))
		die("calloc");
	for (i = 0; i < k; i++) {
		h2conn *c = &cs[i];
		int one = 1;
		struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
		if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
			die("socket");
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
			die("connect");
		if (!(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, c->fd) != 1)
			tls_die("SSL_new");
		SSL_set_connect_state(c->ssl);
		c->nreq = i == k - 1 ? n - per * (k - 1) : per;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl");
	}
	while (h2_done < n) {
		struct epoll_event evs[64];
		int m = epoll_wait(ep, evs, 64, 60000);
		if (m <= 0)
			die("epoll_wait (no answer in 60 s)");
		for (i = 0; i < m; i++) {
			h2conn *c = evs[i].data.ptr;
			if (!c->ready) {
				const unsigned char *p;
				unsigned pl;
				int r = SSL_do_handshake(c->ssl);
				if (r != 1) {
					int e = SSL_get_error(c->ssl, r);
					if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
						tls_die("TLS");
					h2_want(ep, c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
					continue;
				}
				SSL_get0_alpn_selected(c->ssl, &p, &pl);
				if (pl != 2 || memcmp(p, "h2", 2) != 0) {
					fprintf(stderr, "invoke-floor: the server did not choose h2\n");
					return 1;
				}
				h2_start(ep, c, authority, path);
				if ((sent += c->nreq) == n)
					*sent_ms = now_ms() - t0;
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				h2_flush(ep, c);
			for (;;) {
				int r = SSL_read(c->ssl, buf, (int)sizeof buf);
				if (r <= 0) {
					int e = SSL_get_error(c->ssl, r);
					if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
						break;
					tls_die("SSL_read");
				}
				if (nghttp2_session_mem_recv(c->ng, buf, (size_t)r) < 0)
					tls_die("nghttp2_session_mem_recv");
			}
			h2_flush(ep, c);
		}
	}
	if (h2_failed) {
		fprintf(stderr, "invoke-floor: %d streams reset\n", h2_failed);
		return 1;
	}
	for (i = 0; i < k; i++) {
		nghttp2_session_del(cs[i].ng);
		SSL_free(cs[i].ssl);
		close(cs[i].fd);
		free(cs[i].pend);
	}
	free(cs);
	SSL_CTX_free(ctx);
	close(ep);
	return 0;
}
#endif

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct rusage ru;
	double t0, sent_ms = -1, user, sys;
	int n, rc, nconns = 0;

	if ((argc != 4 && argc != 5) ||
	    (strcmp(argv[1], "raw") != 0 && strcmp(argv[1], "curl") != 0 &&
	     strcmp(argv[1], "tls") != 0 && strcmp(argv[1], "h2") != 0) ||
	    (n = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: invoke-floor raw|curl|tls|h2 URL N [CA_FILE]\n");
		return 2;
	}
#ifndef HAVE_NGHTTP2
	if (strcmp(argv[1], "h2") == 0) {
		fprintf(stderr, "invoke-floor: built without libnghttp2: no h2\n");
		return 2;
	}
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	t0 = now_ms();
	signal(SIGPIPE, SIG_IGN);
	rc = strcmp(argv[1], "raw") == 0   ? run_raw(argv[2], n, t0, &sent_ms)
	     : strcmp(argv[1], "tls") == 0 ? run_tls(argv[2], n, argc == 5 ? argv[4] : NULL, t0,
	                                             &sent_ms)
#ifdef HAVE_NGHTTP2
	     : strcmp(argv[1], "h2") == 0 ? run_h2(argv[2], n, argc == 5 ? argv[4] : NULL, t0,
	                                           &sent_ms, &nconns)
#endif
	                                   : run_curl(argv[2], n, argc == 5 ? argv[4] : NULL);
	if (rc)
		return rc;
	getrusage(RUSAGE_SELF, &ru);
	user = (double)ru.ru_utime.tv_sec * 1e3 + (double)ru.ru_utime.tv_usec / 1e3;
	sys = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
	printf("floor %s %d: ", argv[1], n);
	if (sent_ms >= 0)
		printf("all sent after %.0f ms, ", sent_ms);
	printf("all answered after %.0f ms; CPU %.0f ms user, %.0f ms system = %.3f ms per "
	       "invocation; peak RSS %ld KB",
	       now_ms() - t0, user, sys, (user + sys) / n, ru.ru_maxrss);
	if (nconns)
		printf("; %d connections", nconns);
	printf("\n");
	return 0;
}
