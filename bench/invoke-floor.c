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
 *
 * Prints one line:
 *   floor MODE N: all sent after S ms, all answered after A ms; CPU U ms user,
 *   Y ms system = P ms per invocation; peak RSS R KB
 * ("all sent": raw only; libcurl does not say when a request left).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
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
	struct sockaddr_in a = {.sin_family = AF_INET};
	char host[64], path[512], req[2048], buf[4096];
	unsigned port;
	int len, ep, sent = 0, done = 0, i, maxfd = n + 1024;
	tconn *conns;
	SSL_CTX *ctx;

	if (sscanf(url, "https://%63[0-9.]:%u%511s", host, &port, path) != 3 ||
	    inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		fprintf(stderr, "invoke-floor: tls wants https://IPV4:PORT/PATH, not %s\n", url);
		return 2;
	}
	a.sin_port = htons((unsigned short)port);
	len = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: %s:%u\r\n", path, host, port);
	for (i = 0; i < (int)(sizeof headers / sizeof *headers); i++)
		len += snprintf(req + len, sizeof req - (size_t)len, "%s\r\n", headers[i]);
	len += snprintf(req + len, sizeof req - (size_t)len, "Content-Length: %zu\r\n\r\n%s",
	                strlen(body), body);
	/* one context, the CA file parsed once, the peer verified */
	if (!(ctx = SSL_CTX_new(TLS_client_method())))
		tls_die("SSL_CTX_new");
	if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
	            : SSL_CTX_set_default_verify_paths(ctx) != 1)
		tls_die(ca_file ? ca_file : "the default CA paths");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), host);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
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

int main(int argc, char **argv)
{
	struct rlimit rl;
	struct rusage ru;
	double t0, sent_ms = -1, user, sys;
	int n, rc;

	if ((argc != 4 && argc != 5) ||
	    (strcmp(argv[1], "raw") != 0 && strcmp(argv[1], "curl") != 0 &&
	     strcmp(argv[1], "tls") != 0) ||
	    (n = atoi(argv[3])) <= 0) {
		fprintf(stderr, "usage: invoke-floor raw|curl|tls URL N [CA_FILE]\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	t0 = now_ms();
	signal(SIGPIPE, SIG_IGN);
	rc = strcmp(argv[1], "raw") == 0   ? run_raw(argv[2], n, t0, &sent_ms)
	     : strcmp(argv[1], "tls") == 0 ? run_tls(argv[2], n, argc == 5 ? argv[4] : NULL, t0,
	                                             &sent_ms)
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
	       "invocation; peak RSS %ld KB\n",
	       now_ms() - t0, user, sys, (user + sys) / n, ru.ru_maxrss);
	return 0;
}
