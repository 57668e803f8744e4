/*
 * check_aws_http2.c - the asynchronous mode of the aws provider's HTTP
 * layer over HTTP/2 (aws_http_config.http2: http-ev.c, http-h2.c), against
 * node's own http2 server (tests/plugins/h2-server.mjs, nghttp2 inside),
 * whose answers the request's path chooses and which counts its sessions
 * and streams:
 *  - h2c (prior knowledge): bodies with and without a content-length, a
 *    201, a HEAD, a POST whose :authority, lower-case fields and body the
 *    server echoes; many requests at once on one connection;
 *  - the server's SETTINGS_MAX_CONCURRENT_STREAMS: never more streams on a
 *    connection, the others on more connections;
 *  - an attempt's deadline resets its stream alone (CANCEL): the
 *    connection goes on; the response cap cancels a stream the same way;
 *  - RST_STREAM from the server fails the attempt (retried and counted);
 *    REFUSED_STREAM and the streams above a GOAWAY's last id go out again
 *    without counting an attempt; a connection that dies under streams
 *    that had no byte of their answer sends them again, once, uncounted;
 *  - TLS: ALPN h2, and a server without it (HTTP/1.1 from then on);
 *  - "auto" (AWS_HTTP2_TLS): h2 by ALPN, HTTP/1.1 over plain http;
 *  - libcurl's transport asked for HTTP/2 too; verbose logging.
 * Skipped (77) where the build has no libnghttp2 or node is missing.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws-http-test.h"
#include "loopback.h"
#include "test-pki.h"

extern char **environ;

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct h2srv {
	pid_t pid;
	int in; /* its standard input: closed, it ends */
	int port, control;
	int tls;
} h2srv;

static h2srv srv;
static char tmpdir[256];
static test_pki pki;
static int have_pki;

static void srv_start(const char *mode, int max_streams)
{
	char script[1024], streams[16], line[128];
	const char *src = getenv("HT_TESTS_SRCDIR");
	int in[2], out[2];
	posix_spawn_file_actions_t fa;
	FILE *f;
	snprintf(script, sizeof script, "%s/plugins/h2-server.mjs", src ? src : ".");
	snprintf(streams, sizeof streams, "%d", max_streams);
	char *argv[] = {"node", script, (char *)mode, streams, pki.cert, pki.key, NULL};
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	ck_assert_int_eq(posix_spawnp(&srv.pid, "node", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	srv.in = in[1];
	srv.tls = strcmp(mode, "h2c") != 0;
	f = fdopen(out[0], "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_msg(fgets(line, sizeof line, f) != NULL, "h2-server.mjs did not start");
	ck_assert_int_eq(sscanf(line, "PORT %d CONTROL %d", &srv.port, &srv.control), 2);
	fclose(f);
}

static void srv_stop(void)
{
	int st;
	if (srv.pid <= 0)
		return;
	close(srv.in);
	if (waitpid(srv.pid, &st, 0) < 0)
		kill(srv.pid, SIGKILL);
	srv.pid = 0;
}

/* The control listener: its JSON (method GET: the counts, POST: zeroed). */
static json_t *control(const char *method)
{
	char req[256], buf[65536];
	size_t have = 0;
	ssize_t n;
	int fd = test_connect("127.0.0.1", srv.control);
	ck_assert_int_ge(fd, 0);
	snprintf(req, sizeof req, "%s /%s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", method,
	         strcmp(method, "POST") == 0 ? "reset" : "stats");
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (have < sizeof buf - 1 && (n = recv(fd, buf + have, sizeof buf - 1 - have, 0)) > 0)
		have += (size_t)n;
	close(fd);
	buf[have] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	json_t *j = json_loads(body + 4, 0, NULL);
	ck_assert_ptr_nonnull(j);
	return j;
}

static long stat_of(const char *key)
{
	json_t *j = control("GET");
	json_t *v = json_object_get(j, key);
	long n = json_is_array(v) ? (long)json_array_size(v) : (long)json_integer_value(v);
	json_decref(j);
	return n;
}

/* The first code the client reset a stream with (0: none). */
static long first_client_reset(void)
{
	json_t *j = control("GET");
	long n = (long)json_integer_value(json_array_get(json_object_get(j, "clientResets"), 0));
	json_decref(j);
	return n;
}

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the client ------------------------------------------------------------------------------ */

static aws_tls *tls;
static int http2_mode; /* AWS_HTTP2_* of the next client */

static aws_http *client(int transport, int attempts, long timeout_ms, long concurrency, int verbose)
{
	aws_http_config cfg = {0};
	cfg.client = transport;
	cfg.http2 = http2_mode;
	cfg.concurrency = concurrency;
	cfg.max_attempts = attempts;
	cfg.timeout_ms = timeout_ms;
	cfg.connect_timeout_ms = 5000;
	cfg.verbose = verbose;
	cfg.tls = tls;
	return aws_test_client(&cfg);
}

static char *url(const char *path)
{
	static char u[256];
	snprintf(u, sizeof u, "%s://127.0.0.1:%d%s", srv.tls ? "https" : "http", srv.port, path);
	return u;
}

static void setup(void)
{
	aws_test_log_reset();
	tls = NULL;
	http2_mode = AWS_HTTP2_ON;
}

static void teardown(void)
{
	srv_stop();
	if (tls)
		aws_tls_unref(tls);
	tls = NULL;
	aws_test_log_free();
	if (have_pki) {
		test_pki_free(&pki);
		rmdir(tmpdir);
		have_pki = 0;
	}
}

/* ---- tests ----------------------------------------------------------------------------------- */

START_TEST(test_h2c_bodies)
{
	aws_http *h;
	aws_test_outcome o, many[20];
	srv_start("h2c", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 20, 0);
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(aws_http_transport(h), "builtin");
	ck_assert_str_eq(o.body, "hello");
	o = aws_test_run(h, "GET", url("/stream"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "hello world");
	o = aws_test_run(h, "PUT", url("/created"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(o.status, 201);
	ck_assert_str_eq(o.body, "ok");
	o = aws_test_run(h, "HEAD", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_str_eq(o.body, "");
	/* a POST with a body and fields of its own: as HTTP/2 wants them */
	static const char body[] = "{\"payload\": \"0123456789\"}";
	{
		aws_http_request *r = aws_http_request_new("POST", url("/echo?x=1"), "POST test");
		char *err = NULL;
		r->body = body;
		r->body_len = sizeof body - 1;
		aws_headers_add(&r->headers, "X-Amz-Invocation-Type", "RequestResponse");
		memset(&o, 0, sizeof o);
		ck_assert_int_eq(aws_http_multi_add(h, r, aws_test_done, &o, &err), 0);
		aws_test_wait_all(h);
		free(err);
	}
	ck_assert_msg(o.code == 0, "%s", o.message);
	{
		json_t *j = json_loads(o.body, 0, NULL);
		char authority[64];
		ck_assert_msg(j != NULL, "%s", o.body);
		snprintf(authority, sizeof authority, "127.0.0.1:%d", srv.port);
		ck_assert_str_eq(json_string_value(json_object_get(j, "method")), "POST");
		ck_assert_str_eq(json_string_value(json_object_get(j, "authority")), authority);
		ck_assert_str_eq(json_string_value(json_object_get(j, "scheme")), "http");
		ck_assert_int_eq(json_integer_value(json_object_get(j, "bodyLength")), sizeof body - 1);
		json_t *hd = json_object_get(j, "headers");
		ck_assert_str_eq(json_string_value(json_object_get(hd, "x-amz-invocation-type")),
		                 "RequestResponse");
		ck_assert_str_eq(json_string_value(json_object_get(hd, "content-length")), "25");
		ck_assert_ptr_null(json_object_get(hd, "host")); /* :authority instead */
		json_decref(j);
	}
	/* 20 at once: one connection, many streams on it */
	for (int i = 0; i < 20; i++)
		aws_test_add(h, "GET", url("/stream"), 0, &many[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 20; i++)
		ck_assert_msg(many[i].code == 0 && strcmp(many[i].body, "hello world") == 0, "%s",
		              many[i].message);
	ck_assert_int_eq(stat_of("sessions"), 1);
	ck_assert_int_eq(stat_of("streams"), 25);
	ck_assert_int_ge(stat_of("mostInSession"), 10);
	ck_assert_uint_eq(aws_http_handles(h), 1);
	aws_http_free(h);
}
END_TEST

/* The server takes 3 streams at a time: 12 at once are spread over 4
 * connections, never more than 3 on one. */
START_TEST(test_max_streams)
{
	aws_http *h;
	aws_test_outcome o[12];
	srv_start("h2c", 3);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 12, 0);
	ck_assert_int_eq(aws_test_run(h, "GET", url("/cl"), 0).code, 0); /* its SETTINGS are known */
	for (int i = 0; i < 12; i++)
		aws_test_add(h, "GET", url("/stream"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 12; i++)
		ck_assert_msg(o[i].code == 0, "%s", o[i].message);
	ck_assert_int_le(stat_of("mostInSession"), 3);
	ck_assert_int_eq(stat_of("mostInSession"), 3);
	ck_assert_int_eq(stat_of("sessions"), 4);
	aws_http_free(h);
}
END_TEST

/* An attempt's deadline resets its stream (CANCEL); the connection stays,
 * and the next request takes it. */
START_TEST(test_timeout_resets_stream)
{
	aws_http *h;
	aws_test_outcome o, fine;
	srv_start("h2c", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 300, 8, 0);
	aws_test_add(h, "GET", url("/slow"), 0, &o);
	aws_test_add(h, "GET", url("/cl"), 0, &fine);
	aws_test_wait_all(h);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "Timeout was reached") &&
	                  strstr(o.message, "Operation timed out after 300 milliseconds"),
	              "%s", o.message);
	ck_assert_msg(fine.code == 0, "%s", fine.message);
	pause_ms(100);
	ck_assert_int_eq(first_client_reset(), 8); /* CANCEL */
	o = aws_test_run(h, "GET", url("/cl"), 0);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(stat_of("sessions"), 1);
	aws_http_free(h);
}
END_TEST

/* Past the response cap: the stream is cancelled, the attempt not
 * retried, the connection kept. */
START_TEST(test_response_cap)
{
	aws_http *h;
	aws_test_outcome o;
	srv_start("h2c", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 3, 0, 8, 0);
	o = aws_test_run(h, "GET", url("/big"), 50);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "GET test: the response has 100 bytes (Content-Length), more "
	                                "than 50 bytes, the limit for a test answer"),
	              "%s", o.message);
	ck_assert_int_eq(o.attempts, 1);
	o = aws_test_run(h, "GET", url("/bigstream"), 50);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "response larger than 50 bytes, the limit for a test answer"),
	              "%s", o.message);
	ck_assert_int_eq(o.attempts, 1);
	o = aws_test_run(h, "GET", url("/bigstream"), 100);
	ck_assert_msg(o.code == 0, "%s", o.message);
	ck_assert_int_eq(strlen(o.body), 100);
	ck_assert_int_eq(stat_of("sessions"), 1);
	aws_http_free(h);
}
END_TEST

/* RST_STREAM from the server: a failed attempt, retried (counted). */
START_TEST(test_server_reset)
{
	aws_http *h;
	aws_test_outcome o;
	srv_start("h2c", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 3, 0, 8, 0);
	o = aws_test_run(h, "GET", url("/reset"), 0);
	ck_assert_int_eq(o.code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o.message, "was reset by the server: INTERNAL_ERROR") &&
	                  strstr(o.message, "after 3 attempts"),
	              "%s", o.message);
	ck_assert_int_eq(o.attempts, 3);
	ck_assert_int_eq(stat_of("sessions"), 1);
	aws_http_free(h);
}
END_TEST

/* REFUSED_STREAM, and the streams above a GOAWAY's last id: not
 * processed, so sent again without counting an attempt (a client of one
 * attempt succeeds), the latter on a new connection. */
START_TEST(test_refused_and_goaway)
{
	aws_http *h;
	aws_test_outcome o[10];
	char u[64];
	srv_start("h2c", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 10, 0);
	for (int i = 0; i < 5; i++) {
		snprintf(u, sizeof u, "/refuse?k=%d", i);
		aws_test_add(h, "GET", url(u), 0, &o[i]);
	}
	aws_test_wait_all(h);
	for (int i = 0; i < 5; i++) {
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "accepted") == 0, "%s", o[i].message);
		ck_assert_int_eq(o[i].attempts, 1);
	}
	ck_assert_int_eq(stat_of("streams"), 10);
	ck_assert_int_eq(stat_of("sessions"), 1);
	json_decref(control("POST"));
	/* a new session (the last stream goes to it), where the 4th stream
	 * of 10 brings a GOAWAY */
	h = (aws_http_free(h), client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 10, 0));
	for (int i = 0; i < 10; i++)
		aws_test_add(h, "GET", url("/goaway?n=4"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 10; i++) {
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "goaway") == 0, "%d: %s", i,
		              o[i].message);
		ck_assert_int_eq(o[i].attempts, 1);
	}
	ck_assert_int_ge(stat_of("sessions"), 2);
	aws_http_free(h);
}
END_TEST

/* The connection dies under streams that had no byte of their answer,
 * after it had answered one: they go out again on a new one, once,
 * uncounted. */
START_TEST(test_connection_dies)
{
	aws_http *h;
	aws_test_outcome o[4];
	srv_start("h2c", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 8, 0);
	ck_assert_int_eq(aws_test_run(h, "GET", url("/cl"), 0).code, 0);
	for (int i = 0; i < 3; i++)
		aws_test_add(h, "GET", url("/killonce"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "alive") == 0, "%s", o[i].message);
		ck_assert_int_eq(o[i].attempts, 1);
	}
	ck_assert_int_eq(stat_of("sessions"), 2);
	aws_http_free(h);
}
END_TEST

static void tls_setup(void)
{
	char *err = NULL;
	if (!have_pki) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/ht-h2-pki-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(tmpdir));
		ck_assert_int_eq(test_pki_make(&pki, tmpdir), 0);
		have_pki = 1;
	}
	tls = aws_tls_new(pki.ca, NULL, NULL, &err);
	ck_assert_msg(tls != NULL, "%s", err ? err : "out of memory");
	free(err);
}

/* Over TLS: ALPN "h2", the name verified, and 10 at once on one
 * connection. */
START_TEST(test_tls_alpn)
{
	aws_http *h;
	aws_test_outcome o[10];
	tls_setup();
	srv_start("h2", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 10, 1);
	for (int i = 0; i < 10; i++)
		aws_test_add(h, "GET", url("/cl"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 10; i++)
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "hello") == 0, "%s", o[i].message);
	ck_assert_int_eq(stat_of("sessions"), 1);
	ck_assert_int_eq(stat_of("streams"), 10);
	ck_assert_msg(aws_test_logged.data && strstr(aws_test_logged.data, ", ALPN h2") &&
	                  strstr(aws_test_logged.data, "> GET /cl HTTP/2\n") &&
	                  strstr(aws_test_logged.data, "< HTTP/2 200") &&
	                  strstr(aws_test_logged.data, "Using HTTP/2 stream"),
	              "%s", aws_test_logged.data ? aws_test_logged.data : "(nothing logged)");
	/* a field longer than the reader's buffer, whole */
	o[0] = aws_test_run(h, "GET", url("/longheader"), 0);
	ck_assert_msg(o[0].code == 0 && strcmp(o[0].body, "long") == 0, "%s", o[0].message);
	ck_assert_uint_eq(o[0].x_long, 5000);
	aws_http_free(h);
}
END_TEST

/* A server that knows HTTP/1.1 alone: the first connection's ALPN says
 * so, and the requests go over HTTP/1.1, all of them answered. */
START_TEST(test_tls_no_h2)
{
	aws_http *h;
	aws_test_outcome o[6];
	tls_setup();
	srv_start("h1tls", 100);
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 6, 1);
	for (int i = 0; i < 6; i++)
		aws_test_add(h, "GET", url("/cl"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "hello") == 0, "%s", o[i].message);
	ck_assert_int_eq(stat_of("streams"), 6);
	ck_assert_msg(aws_test_logged.data && strstr(aws_test_logged.data, "did not take HTTP/2") &&
	                  strstr(aws_test_logged.data, "< HTTP/1.1 200"),
	              "%s", aws_test_logged.data ? aws_test_logged.data : "(nothing logged)");
	aws_http_free(h);
}
END_TEST

/* httpVersion "auto": HTTP/2 where ALPN chooses it, HTTP/1.1 over plain
 * http (the control listener speaks HTTP/1.1 alone, which prior knowledge
 * does not reach). */
START_TEST(test_auto)
{
	aws_http *h;
	aws_test_outcome o[5];
	char u[128];
	tls_setup();
	srv_start("h2", 100);
	http2_mode = AWS_HTTP2_TLS;
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 5, 0);
	for (int i = 0; i < 5; i++)
		aws_test_add(h, "GET", url("/cl"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "hello") == 0, "%s", o[i].message);
	ck_assert_int_eq(stat_of("sessions"), 1);
	snprintf(u, sizeof u, "http://127.0.0.1:%d/stats", srv.control);
	o[0] = aws_test_run(h, "GET", u, 0);
	ck_assert_msg(o[0].code == 0 && strstr(o[0].body, "\"streams\":5"), "%s %s", o[0].message,
	              o[0].body);
	aws_http_free(h);
	/* "2": prior knowledge, which an HTTP/1.1 server does not answer */
	http2_mode = AWS_HTTP2_ON;
	h = client(AWS_HTTP_CLIENT_BUILTIN, 1, 0, 5, 0);
	o[0] = aws_test_run(h, "GET", u, 0);
	ck_assert_int_eq(o[0].code, HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(o[0].message, "no HTTP/2 SETTINGS came: the server may not speak "
	                                   "HTTP/2 without TLS (httpVersion \"auto\" speaks HTTP/1.1 "
	                                   "over http)"),
	              "%s", o[0].message);
	aws_http_free(h);
}
END_TEST

/* libcurl's transport, asked for HTTP/2, takes it over TLS (ALPN) and
 * multiplexes too. */
START_TEST(test_curl_h2)
{
	aws_http *h;
	aws_test_outcome o[8];
	tls_setup();
	srv_start("h2", 100);
	h = client(AWS_HTTP_CLIENT_CURL, 1, 0, 8, 1);
	o[0] = aws_test_run(h, "GET", url("/cl"), 0);
	if (o[0].code)
		fprintf(stderr, "%s\n", aws_test_logged.data ? aws_test_logged.data : "");
	ck_assert_msg(o[0].code == 0, "%s", o[0].message);
	for (int i = 0; i < 8; i++)
		aws_test_add(h, "GET", url("/stream"), 0, &o[i]);
	aws_test_wait_all(h);
	for (int i = 0; i < 8; i++) {
		if (o[i].code)
			fprintf(stderr, "%s\n", aws_test_logged.data ? aws_test_logged.data : "");
		ck_assert_msg(o[i].code == 0 && strcmp(o[i].body, "hello world") == 0, "%s", o[i].message);
	}
	ck_assert_str_eq(aws_http_transport(h), "curl");
	ck_assert_int_eq(stat_of("streams"), 9);
	ck_assert_int_eq(stat_of("sessions"), 1);
	ck_assert_msg(strstr(aws_test_logged.data, "< HTTP/2 200"), "%s", aws_test_logged.data);
	aws_http_free(h);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aws_http2");
	TCase *tc = tcase_create("h2");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_h2c_bodies);
	tcase_add_test(tc, test_max_streams);
	tcase_add_test(tc, test_timeout_resets_stream);
	tcase_add_test(tc, test_response_cap);
	tcase_add_test(tc, test_server_reset);
	tcase_add_test(tc, test_refused_and_goaway);
	tcase_add_test(tc, test_connection_dies);
	tcase_add_test(tc, test_tls_alpn);
	tcase_add_test(tc, test_tls_no_h2);
	tcase_add_test(tc, test_auto);
	tcase_add_test(tc, test_curl_h2);
	suite_add_tcase(s, tc);
	return s;
}

/* Is node there to run the server? */
static int have_node(void)
{
	pid_t pid;
	int st;
	char *argv[] = {"node", "--version", NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	int rc = posix_spawnp(&pid, "node", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return 0;
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	SRunner *sr;
	int failed;
#ifndef HAVE_NGHTTP2
	fprintf(stderr, "check_aws_http2: built without libnghttp2: skipped\n");
	return 77;
#endif
	if (!have_node()) {
		fprintf(stderr, "check_aws_http2: no node to run tests/plugins/h2-server.mjs: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
