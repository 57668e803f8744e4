/*
 * check_aws_http_conn.c - the asynchronous mode of the aws provider's HTTP
 * layer (plugins/provider-aws/http-multi.c) on its two transports, the
 * builtin client (http-ev.c, http-conn.c) and libcurl, against a loopback
 * server in this process whose answers the request's path chooses:
 * bodies by Content-Length, chunked (in pieces, with trailers) and up to
 * the close, an interim 100 answer, a HEAD, the response cap (announced
 * and not), keep-alive reuse counted by the server's accepts, an idle
 * connection the server closes (the next request goes out on a new one,
 * not counted as an attempt), a reset before and in the middle of a
 * response, a status line that is not HTTP, a closed port, a timeout,
 * an IPv6 address, verbose logging; and which transport a client takes when a proxy
 * variable applies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aws-http-test.h"
#include "loopback.h"

/* ---- the server: a thread per connection, the path says what to answer ------------------- */

#define MAX_CONNS 64

typedef struct server {
	int lfd, port;
	pthread_t acceptor;
	pthread_mutex_t mu;
	int stop;
	int accepts, requests;
	int once503; /* requests of /once503 */
	int fds[MAX_CONNS];
	pthread_t threads[MAX_CONNS];
	int nthreads;
	char last_line[512]; /* the last request line */
} server;

static server srv;

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* Close with a reset (RST), not a FIN: the descriptor is closed here. */
static void reset(int fd)
{
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	pthread_mutex_lock(&srv.mu);
	for (int i = 0; i < srv.nthreads; i++)
		if (srv.fds[i] == fd)
			srv.fds[i] = -1;
	close(fd);
	pthread_mutex_unlock(&srv.mu);
}

/* One request (head, and a body of Content-Length): its path, or 0 at the end. */
static int read_request(int fd, char *path, size_t size, int *head)
{
	char buf[8192];
	size_t have = 0;
	char *end;
	long cl = 0;
	while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
		ssize_t n;
		if (have == sizeof buf)
			return 0;
		if ((n = recv(fd, buf + have, sizeof buf - have, 0)) <= 0)
			return 0;
		have += (size_t)n;
	}
	*end = '\0';
	{
		const char *c = strcasestr(buf, "\r\ncontent-length:");
		if (c)
			cl = strtol(c + 17, NULL, 10);
	}
	/* the rest of the body */
	{
		size_t got = have - (size_t)(end + 4 - buf);
		while ((long)got < cl) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				return 0;
			got += (size_t)n;
		}
	}
	pthread_mutex_lock(&srv.mu);
	srv.requests++;
	snprintf(srv.last_line, sizeof srv.last_line, "%.*s", (int)strcspn(buf, "\r"), buf);
	pthread_mutex_unlock(&srv.mu);
	*head = strncmp(buf, "HEAD ", 5) == 0;
	{
		const char *p = strchr(buf, ' ');
		size_t n = p ? strcspn(p + 1, " ") : 0;
		snprintf(path, size, "%.*s", (int)n, p ? p + 1 : "");
	}
	return 1;
}

/* Answer one request; 0: the connection ends (closed or reset). */
static int answer(int fd, const char *path, int head)
{
	const char *q = strrchr(path, '/');
	q = q ? q + 1 : path;
	if (strcmp(q, "cl") == 0 || head) {
		put(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
		if (!head)
			put(fd, "hello");
		return 1;
	}
	if (strcmp(q, "chunked") == 0) {
		/* in pieces, so that lines and chunks are split across reads */
		static const char *const parts[] = {
		    "HTTP/1.1 200 OK\r\nTransfer-Enc", "oding: chunked\r\n\r\n3\r", "\nhel\r\n", "8;ext=1\r\nlo",
		    " world\r\n0\r\nX-Trailer: t\r\n", "\r\n"};
		for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
			put(fd, parts[i]);
			pause_ms(5);
		}
		return 1;
	}
	if (strcmp(q, "continue") == 0) {
		put(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
		return 1;
	}
	if (strcmp(q, "slow") == 0) { /* after 100 ms: a burst is in flight at once */
		pause_ms(100);
		put(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow");
		return 1;
	}
	if (strcmp(q, "slowclose") == 0) { /* the same, then the connection is closed */
		pause_ms(100);
		put(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nslow");
		return 0;
	}
	if (strcmp(q, "untilclose") == 0) {
		put(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nup to the close");
		return 0;
	}
	if (strcmp(q, "big") == 0) { /* announced: 100 bytes */
		char b[200];
		snprintf(b, sizeof b, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%0100d", 0);
		put(fd, b);
		return 1;
	}
	if (strcmp(q, "bigchunked") == 0) { /* not announced: 100 bytes */
		char b[300];
		snprintf(b, sizeof b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n%0100d\r\n0\r\n\r\n", 0);
		put(fd, b);
		return 1;
	}
	if (strcmp(q, "closeidle") == 0) { /* kept alive, then closed while idle */
		put(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nidle");
		pause_ms(100);
		return 0;
	}
	if (strcmp(q, "resetidle") == 0) { /* the same, with a reset */
		put(fd, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nidle");
		pause_ms(100);
		reset(fd);
		return 0;
	}
	if (strcmp(q, "resetmid") == 0) {
		put(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart of it");
		pause_ms(50);
		reset(fd);
		return 0;
	}
	if (strcmp(q, "truncated") == 0) {
		put(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart of it");
		return 0;
	}
	if (strcmp(q, "garbage") == 0) {
		put(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
		return 0;
	}
	if (strcmp(q, "once503") == 0) { /* 503 the first time, then 200 */
		pthread_mutex_lock(&srv.mu);
		int first = srv.once503++ == 0;
		pthread_mutex_unlock(&srv.mu);
		put(fd, first ? "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
		              : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return 1;
	}
	if (strcmp(q, "silent") == 0) {
		pause_ms(1500);
		return 0;
	}
	put(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	return 1;
}

static void *conn_main(void *ud)
{
	int fd = (int)(intptr_t)ud, head = 0;
	char path[256];
	while (read_request(fd, path, sizeof path, &head) && answer(fd, path, head))
		;
	pthread_mutex_lock(&srv.mu);
	for (int i = 0; i < srv.nthreads; i++)
		if (srv.fds[i] == fd)
			shutdown(fd, SHUT_RDWR); /* still ours: not reset */
	pthread_mutex_unlock(&srv.mu);
	return NULL;
}

static void *accept_main(void *ud)
{
	(void)ud;
	for (;;) {
		int fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
		pthread_mutex_lock(&srv.mu);
		if (srv.stop || fd < 0 || srv.nthreads == MAX_CONNS) {
			int stop = srv.stop;
			pthread_mutex_unlock(&srv.mu);
			if (fd >= 0)
				close(fd);
			if (stop)
				return NULL;
			continue;
		}
		srv.accepts++;
		srv.fds[srv.nthreads] = fd;
		pthread_create(&srv.threads[srv.nthreads], NULL, conn_main, (void *)(intptr_t)fd);
		srv.nthreads++;
		pthread_mutex_unlock(&srv.mu);
	}
}

static void server_start(void)
{
	memset(&srv, 0, sizeof srv);
	pthread_mutex_init(&srv.mu, NULL);
	srv.lfd = test_listen("127.0.0.1", 0, 64, &srv.port);
	ck_assert_int_ge(srv.lfd, 0);
	ck_assert_int_eq(pthread_create(&srv.acceptor, NULL, accept_main, NULL), 0);
}

static void server_stop(void)
{
	pthread_mutex_lock(&srv.mu);
	srv.stop = 1;
	pthread_mutex_unlock(&srv.mu);
	shutdown(srv.lfd, SHUT_RDWR);
	pthread_join(srv.acceptor, NULL);
	close(srv.lfd);
	pthread_mutex_lock(&srv.mu);
	for (int i = 0; i < srv.nthreads; i++)
		if (srv.fds[i] >= 0)
			shutdown(srv.fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&srv.mu);
	for (int i = 0; i < srv.nthreads; i++) {
		pthread_join(srv.threads[i], NULL);
		if (srv.fds[i] >= 0)
			close(srv.fds[i]);
	}
	pthread_mutex_destroy(&srv.mu);
}

static int count(int *field)
{
	int n;
	pthread_mutex_lock(&srv.mu);
	n = *field;
	pthread_mutex_unlock(&srv.mu);
	return n;
}

/* ---- the client ---------------------------------------------------------------------------- */

static const int transports[] = {AWS_HTTP_CLIENT_BUILTIN, AWS_HTTP_CLIENT_CURL};
static const char *const transport_names[] = {"builtin", "curl"};
static aws_http *client(int transport, int attempts, long timeout_ms, int verbose)
{
	aws_http_config cfg = {0};
	cfg.client = transport;
	cfg.concurrency = 8;
	cfg.max_attempts = attempts;
	cfg.timeout_ms = timeout_ms;
	cfg.verbose = verbose;
	return aws_test_client(&cfg);
}

static char *url(const char *path)
{
	static char u[256];
	snprintf(u, sizeof u, "http://127.0.0.1:%d%s", srv.port, path);
	return u;
}

static void setup(void)
{
	static const char *const vars[] = {"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
	                                   "ALL_PROXY",   "all_proxy",   "NO_PROXY",   "no_proxy"};
	for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
		unsetenv(vars[i]);
	aws_test_log_reset();
	server_start();
}

static void teardown(void)
{
	server_stop();
	aws_test_log_free();
}

/* ---- tests ------------------------------------------------------------------------------------ */

START_TEST(test_bodies)
{
	aws_http *h = client(transports[_i], 1, 0, 0);
	aws_test_outcome o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_str_eq(aws_http_transport(h), transport_names[_i]);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "hello");
	o = aws_test_run(h, "GET", url("/chunked"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "hello world");
	o = aws_test_run(h, "POST", url("/continue"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(o.status, 201);
	ck_assert_str_eq(o.body, "ok");
	o = aws_test_run(h, "HEAD", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "");
	/* all of that on one connection, kept alive */
	ck_assert_int_eq(count(&srv.accepts), 1);
	ck_assert_int_eq(count(&srv.requests), 4);
	o = aws_test_run(h, "GET", url("/untilclose"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "up to the close");
	/* that one ended its connection: a new one */
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(count(&srv.accepts), 2);
	aws_http_free(h);
}
END_TEST

START_TEST(test_reuse_counted_by_accepts)
{
	aws_http *h = client(transports[_i], 1, 0, 0);
	aws_test_outcome o[8];
	char *err = NULL;
	int i, round;
	/* 4 at once: 4 connections; then 3 more rounds of 4 on them */
	for (round = 0; round < 4; round++) {
		memset(o, 0, sizeof o);
		for (i = 0; i < 4; i++) {
			aws_http_request *r = aws_http_request_new("GET", url("/chunked"), "GET test");
			ck_assert_int_eq(aws_http_multi_add(h, r, aws_test_done, &o[i], &err), 0);
		}
		while (aws_http_multi_pending(h))
			ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
		for (i = 0; i < 4; i++)
			ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "hello world") == 0, "%s",
			              o[i].message);
	}
	ck_assert_int_eq(count(&srv.requests), 16);
	ck_assert_int_eq(count(&srv.accepts), 4);
	free(err);
	aws_http_free(h);
}
END_TEST

START_TEST(test_response_cap)
{
	aws_http *h = client(transports[_i], 3, 0, 0);
	aws_test_outcome o = aws_test_run(h, "GET", url("/big"), 50);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "GET test: the response has 100 bytes (Content-Length), more "
	                                "than 50 bytes, the limit for a test answer"),
	              "%s", o.message);
	ck_assert_int_eq(o.attempts, 1); /* not retried */
	o = aws_test_run(h, "GET", url("/bigchunked"), 50);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "GET test: response larger than 50 bytes, the limit for a "
	                                "test answer"),
	              "%s", o.message);
	ck_assert_int_eq(o.attempts, 1);
	/* under the cap: fine */
	o = aws_test_run(h, "GET", url("/bigchunked"), 100);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(strlen(o.body), 100);
	aws_http_free(h);
}
END_TEST

/* The server closes (or resets) a kept-alive connection while it is idle:
 * the next request goes out on a new connection, and no attempt is
 * counted for it (a client of one attempt succeeds). */
START_TEST(test_idle_close_retried)
{
	aws_http *h = client(transports[_i], 1, 0, 0);
	aws_test_outcome o = aws_test_run(h, "GET", url("/closeidle"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	pause_ms(300); /* closed by now */
	o = aws_test_run(h, "GET", url("/resetidle"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(o.attempts, 1);
	ck_assert_int_eq(count(&srv.accepts), 2);
	pause_ms(300); /* reset by now */
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(o.attempts, 1);
	ck_assert_int_eq(count(&srv.accepts), 3);
	/* the close not noticed before the request is sent (the server
	 * closes the connection without reading it): the request goes out
	 * again on a new connection, once (libcurl's rule) */
	o = aws_test_run(h, "GET", url("/closeidle"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(count(&srv.accepts), 3);
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(o.attempts, 1);
	ck_assert_int_eq(count(&srv.accepts), 4);
	ck_assert_int_eq(count(&srv.requests), 5);
	aws_http_free(h);
	/* the same, then a 503 on the new connection: the retry after it
	 * takes that connection again (no third) */
	h = client(transports[_i], 3, 0, 0);
	o = aws_test_run(h, "GET", url("/closeidle"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(count(&srv.accepts), 5);
	o = aws_test_run(h, "GET", url("/once503"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(o.attempts, 2);
	ck_assert_int_eq(count(&srv.accepts), 6);
	aws_http_free(h);
}
END_TEST

START_TEST(test_transport_errors)
{
	aws_http *h = client(transports[_i], 1, 0, 0);
	char where[64];
	int port;
	aws_test_outcome o;
	snprintf(where, sizeof where, "127.0.0.1 port %d", srv.port);
	/* reset in the middle of the body */
	o = aws_test_run(h, "GET", url("/resetmid"), 0);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "GET test: Failure when receiving data from the peer") &&
	                  strstr(o.message, "Connection reset by peer"),
	              "%s", o.message);
	if (_i == 0)
		ck_assert_msg(strstr(o.message, where), "%s", o.message);
	/* closed in the middle of the body */
	o = aws_test_run(h, "GET", url("/truncated"), 0);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "transfer closed with 90 bytes remaining to read"), "%s",
	              o.message);
	/* not HTTP */
	o = aws_test_run(h, "GET", url("/garbage"), 0);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "GET test: "), "%s", o.message);
	/* a port nobody listens on */
	port = test_closed_port();
	{
		char u[128];
		snprintf(u, sizeof u, "http://127.0.0.1:%d/x", port);
		snprintf(where, sizeof where, "127.0.0.1 port %d", port);
		o = aws_test_run(h, "GET", u, 0);
	}
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "GET test: Couldn't connect to server") &&
	                  strstr(o.message, where),
	              "%s", o.message);
	aws_http_free(h);
	/* an answer that does not come */
	h = client(transports[_i], 1, 300, 0);
	o = aws_test_run(h, "GET", url("/silent"), 0);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "Timeout was reached") && strstr(o.message, "timed out"), "%s",
	              o.message);
	aws_http_free(h);
}
END_TEST

/* An IPv6 address: one answer from a listener on [::1] (skipped where
 * the machine has no IPv6 loopback). */
static void *v6_serve(void *ud)
{
	int lfd = (int)(intptr_t)ud, fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), head = 0;
	char path[64];
	if (fd >= 0 && read_request(fd, path, sizeof path, &head))
		put(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv6");
	if (fd >= 0)
		close(fd);
	return NULL;
}

START_TEST(test_ipv6)
{
	int port, lfd = test_listen("::1", 0, 4, &port);
	pthread_t th;
	char u[128];
	if (lfd < 0) {
		fprintf(stderr, "check_aws_http_conn: no IPv6 loopback here: test_ipv6 not run\n");
		return;
	}
	ck_assert_int_eq(pthread_create(&th, NULL, v6_serve, (void *)(intptr_t)lfd), 0);
	snprintf(u, sizeof u, "http://[::1]:%d/v6", port);
	aws_http *h = client(transports[_i], 1, 0, 0);
	aws_test_outcome o = aws_test_run(h, "GET", u, 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "v6");
	aws_http_free(h);
	pthread_join(th, NULL);
	close(lfd);
}
END_TEST

/* Verbose mode logs the request's and the response's header lines. */
START_TEST(test_verbose)
{
	aws_http *h = client(transports[_i], 1, 0, 1);
	aws_http_request *r = aws_http_request_new("GET", url("/cl"), "GET test");
	aws_test_outcome o = {0};
	char *err = NULL;
	aws_headers_add(&r->headers, "Authorization", "AWS4-HMAC-SHA256 Signature=abc");
	ck_assert_int_eq(aws_http_multi_add(h, r, aws_test_done, &o, &err), 0);
	while (!o.done)
		ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_msg(aws_test_logged.data && strstr(aws_test_logged.data, "> GET /cl HTTP/1.1") &&
	                  strstr(aws_test_logged.data, "< HTTP/1.1 200 OK") &&
	                  strstr(aws_test_logged.data, "< Content-Length: 5") &&
	                  strstr(aws_test_logged.data, "> Authorization: <redacted>") &&
	                  !strstr(aws_test_logged.data, "Signature=abc"),
	              "%s", aws_test_logged.data ? aws_test_logged.data : "(nothing logged)");
	free(err);
	aws_http_free(h);
}
END_TEST

/* ---- the connector thread (http-connector.c) --------------------------------------------- */

/* The sockets of this process that are not the server's (its listening
 * and accepted ones have its port). */
static int client_sockets(void)
{
	int n = 0;
	for (int fd = 0; fd < 4096; fd++) {
		struct sockaddr_in a;
		socklen_t len = sizeof a;
		int type;
		socklen_t tlen = sizeof type;
		if (fcntl(fd, F_GETFD) < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0)
			continue;
		memset(&a, 0, sizeof a);
		if (getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.sin_family == AF_INET &&
		    ntohs(a.sin_port) == srv.port)
			continue;
		n++;
	}
	return n;
}

/* n requests at once on the builtin client (a connection each); the log.
 * With finish 0 the client is freed before any is answered. */
static void burst_to(const char *path, int n, int finish, const char *mode)
{
	aws_http_config cfg = {0};
	aws_test_outcome o[40];
	char *err = NULL;
	aws_http *h;

	ck_assert_int_le(n, 40);
	if (mode)
		setenv("HYPERTEST_AWS_CONNECT_THREAD", mode, 1);
	else
		unsetenv("HYPERTEST_AWS_CONNECT_THREAD");
	cfg.client = AWS_HTTP_CLIENT_BUILTIN;
	cfg.concurrency = 48;
	cfg.max_attempts = 1;
	cfg.verbose = 1;
	h = aws_test_client(&cfg);
	memset(o, 0, sizeof o);
	for (int i = 0; i < n; i++) {
		aws_http_request *r = aws_http_request_new("GET", url(path), "GET burst");
		ck_assert_int_eq(aws_http_multi_add(h, r, aws_test_done, &o[i], &err), 0);
	}
	for (int i = 0; finish && i < n; i++) {
		while (!o[i].done)
			ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
		ck_assert_msg(o[i].code == 0, "request %d: %s", i, o[i].message);
	}
	free(err);
	aws_http_free(h);
	unsetenv("HYPERTEST_AWS_CONNECT_THREAD");
}

static void burst(int n, int finish, const char *mode)
{
	burst_to("/slow", n, finish, mode);
}

/* "the second thread opened N connections and closed M": N, or M (closed) */
static long by_connector(int closed)
{
	const char *at =
	    aws_test_logged.data ? strstr(aws_test_logged.data, "the second thread opened ") : NULL;
	if (at && closed)
		at = strstr(at, " and closed ");
	return at ? strtol(at + strlen(closed ? " and closed " : "the second thread opened "), NULL, 10)
	          : -1;
}

START_TEST(test_connector_burst)
{
	/* a burst: from the 16th connection being set up, the second thread
	 * opens them */
	burst(40, 1, NULL);
	ck_assert_msg(aws_test_logged.data && strstr(aws_test_logged.data, "opened by a second thread"),
	              "%s", aws_test_logged.data ? aws_test_logged.data : "(nothing logged)");
	ck_assert_int_ge(by_connector(0), 40 - 16);
	ck_assert_int_lt(by_connector(0), 40);
	aws_test_log_reset();
	/* the odd request: no thread */
	burst(4, 1, NULL);
	ck_assert_int_eq(by_connector(0), -1);
}
END_TEST

/* HYPERTEST_AWS_CONNECT_THREAD: never, and from the first connection */
START_TEST(test_connector_modes)
{
	burst(40, 1, "0");
	ck_assert_int_eq(by_connector(0), -1);
	aws_test_log_reset();
	burst(4, 1, "1");
	ck_assert_int_eq(by_connector(0), 4);
}
END_TEST

/* Connections the server ends are closed by the second thread too, once
 * it runs. */
START_TEST(test_connector_closes)
{
	int before = client_sockets();
	burst_to("/slowclose", 20, 1, "1");
	ck_assert_int_eq(by_connector(0), 20);
	ck_assert_int_eq(by_connector(1), 20);
	ck_assert_int_eq(client_sockets(), before);
}
END_TEST

/* The client goes with sockets being opened or not yet handed back: none
 * is left open (and nothing leaks, under the sanitizers). */
START_TEST(test_connector_dropped)
{
	int before = client_sockets();
	for (int k = 0; k < 3; k++)
		burst(20, 0, "1");
	ck_assert_int_eq(client_sockets(), before);
}
END_TEST

/* ---- which transport ---------------------------------------------------------------------- */

START_TEST(test_proxy_variables)
{
	ck_assert_int_eq(aws_http_proxy_applies("https://lambda.us-east-1.amazonaws.com/x"), 0);
	setenv("HTTPS_PROXY", "http://proxy.example:3128", 1);
	ck_assert_int_eq(aws_http_proxy_applies("https://lambda.us-east-1.amazonaws.com/x"), 1);
	ck_assert_int_eq(aws_http_proxy_applies("http://127.0.0.1:9000/x"), 0); /* http: not it */
	setenv("http_proxy", "http://proxy.example:3128", 1);
	ck_assert_int_eq(aws_http_proxy_applies("http://127.0.0.1:9000/x"), 1);
	setenv("NO_PROXY", "localhost, .amazonaws.com,127.0.0.1:9000", 1);
	ck_assert_int_eq(aws_http_proxy_applies("https://lambda.us-east-1.amazonaws.com/x"), 0);
	ck_assert_int_eq(aws_http_proxy_applies("https://amazonaws.com.example.org/x"), 1);
	ck_assert_int_eq(aws_http_proxy_applies("https://notamazonaws.com/x"), 1);
	ck_assert_int_eq(aws_http_proxy_applies("http://127.0.0.1:9000/x"), 0);
	ck_assert_int_eq(aws_http_proxy_applies("http://localhost/x"), 0);
	ck_assert_int_eq(aws_http_proxy_applies("http://[::1]:9000/x"), 1);
	setenv("NO_PROXY", "*", 1);
	ck_assert_int_eq(aws_http_proxy_applies("https://lambda.us-east-1.amazonaws.com/x"), 0);
	unsetenv("NO_PROXY");
	setenv("no_proxy", "::1", 1);
	ck_assert_int_eq(aws_http_proxy_applies("http://[::1]:9000/x"), 0);
	unsetenv("no_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("http_proxy");
	setenv("all_proxy", "socks5://proxy.example:1080", 1);
	ck_assert_int_eq(aws_http_proxy_applies("https://lambda.us-east-1.amazonaws.com/x"), 1);
	ck_assert_int_eq(aws_http_proxy_applies("http://127.0.0.1/x"), 1);
	unsetenv("all_proxy");
}
END_TEST

/* A proxy variable for the first request's URL: libcurl, which goes
 * through the proxy (here the test server, which sees the absolute URL);
 * NO_PROXY naming the host, or none: the builtin client. */
START_TEST(test_proxy_selects_curl)
{
	aws_http *h;
	aws_test_outcome o;
	char proxy[64];
	snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", srv.port);
	setenv("http_proxy", proxy, 1);
	h = client(AWS_HTTP_CLIENT_AUTO, 1, 0, 0);
	ck_assert_str_eq(aws_http_transport(h), "undecided");
	o = aws_test_run(h, "GET", "http://backend.invalid/via/cl", 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "hello");
	ck_assert_str_eq(aws_http_transport(h), "curl");
	pthread_mutex_lock(&srv.mu);
	ck_assert_str_eq(srv.last_line, "GET http://backend.invalid/via/cl HTTP/1.1");
	pthread_mutex_unlock(&srv.mu);
	aws_http_free(h);
	/* the host in NO_PROXY: straight to it, builtin */
	setenv("NO_PROXY", "127.0.0.1", 1);
	h = client(AWS_HTTP_CLIENT_AUTO, 1, 0, 0);
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(aws_http_transport(h), "builtin");
	pthread_mutex_lock(&srv.mu);
	ck_assert_str_eq(srv.last_line, "GET /cl HTTP/1.1");
	pthread_mutex_unlock(&srv.mu);
	aws_http_free(h);
	ck_assert_msg(!aws_test_logged.data || !strstr(aws_test_logged.data, "does not use proxies"),
	              "%s", aws_test_logged.data);
	/* asked for: libcurl without a proxy, builtin despite one, which it says
	 * (the variable's name, never its value: it may hold a password) */
	unsetenv("NO_PROXY");
	setenv("http_proxy", "http://user:s3cret@proxy.invalid:3128", 1);
	aws_test_log_reset();
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 0);
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(aws_http_transport(h), "builtin");
	aws_http_free(h);
	ck_assert_msg(aws_test_logged.data &&
	                  strstr(aws_test_logged.data, "httpClient \"builtin\" does not use proxies: "
	                                               "the invocations go straight to their host, not "
	                                               "through the proxy http_proxy names"),
	              "%s", aws_test_logged.data ? aws_test_logged.data : "(nothing logged)");
	ck_assert_msg(!strstr(aws_test_logged.data, "s3cret") &&
	                  !strstr(aws_test_logged.data, "proxy.invalid"),
	              "%s", aws_test_logged.data);
	unsetenv("http_proxy");
	aws_test_log_reset();
	h = client(AWS_HTTP_CLIENT_CURL, 1, 0, 0);
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(aws_http_transport(h), "curl");
	aws_http_free(h);
	h = client(AWS_HTTP_CLIENT_AUTO, 1, 0, 0);
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_str_eq(aws_http_transport(h), "builtin");
	aws_http_free(h);
	/* without a proxy variable, nothing to say */
	ck_assert_msg(!aws_test_logged.data || !strstr(aws_test_logged.data, "does not use proxies"),
	              "%s", aws_test_logged.data);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aws-http-conn");
	TCase *tc = tcase_create("conn");
	SRunner *sr;
	int failed;
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bodies, 0, 2);
	tcase_add_loop_test(tc, test_reuse_counted_by_accepts, 0, 2);
	tcase_add_loop_test(tc, test_response_cap, 0, 2);
	tcase_add_loop_test(tc, test_idle_close_retried, 0, 2);
	tcase_add_loop_test(tc, test_transport_errors, 0, 2);
	tcase_add_loop_test(tc, test_verbose, 0, 2);
	tcase_add_loop_test(tc, test_ipv6, 0, 2);
	tcase_add_test(tc, test_connector_burst);
	tcase_add_test(tc, test_connector_modes);
	tcase_add_test(tc, test_connector_dropped);
	tcase_add_test(tc, test_connector_closes);
	tcase_add_test(tc, test_proxy_variables);
	tcase_add_test(tc, test_proxy_selects_curl);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
