/*
 * check_aws_tls.c - tests of the aws provider's TLS settings
 * (plugins/provider-aws/tls.c) against a TLS server in this process with a
 * test CA made at test time:
 *  - 200 fresh connections (the server closes each after one answer) by
 *    two clients, blocking and asynchronous (on each of its transports,
 *    the builtin client and libcurl), sharing one aws_tls, with a CA
 *    bundle of 150 certificates (149 throwaway roots and the test CA): the
 *    server counts 200 handshakes, and the bundle file is opened once
 *    (fopen and fopen64 are counted here, in front of the C library's) and
 *    the store built once;
 *  - a CA that did not sign the server's certificate fails with "unable to
 *    get local issuer certificate" in the message the user sees, in both
 *    modes and on both transports;
 *  - the builtin client: the peer's address or name verified (a server
 *    at 127.0.0.2 with a certificate for 127.0.0.1 and localhost is
 *    refused; localhost is fine), and TLS sessions resumed from the
 *    shared cache;
 *  - where the bundle comes from, in order: the option caBundle,
 *    AWS_CA_BUNDLE, the profile's ca_bundle (config file),
 *    HYPERTEST_CA_BUNDLE, libcurl's default; each one honoured by a real
 *    connection, and an unreadable one refused naming its source.
 */
#define _GNU_SOURCE
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "credentials.h"
#include "http.h"
#include "loopback.h"
#include "open-count.h"
#include "test-pki.h"
#include "tls.h"

/* ---- certificates ------------------------------------------------------------------------- */

static char tmpdir[256];
static test_pki pki;

/* ---- the TLS server: one answer per connection, then close ----------------------------- */

typedef struct server {
	int lfd, port;
	const char *ip;
	SSL_CTX *ctx;
	pthread_t th;
	pthread_mutex_t mu;
	int stop;
	int connections, handshakes, resumed, failed_handshakes;
} server;

static void *serve(void *ud)
{
	server *s = ud;
	for (;;) {
		int fd = accept(s->lfd, NULL, NULL), stop;
		SSL *ssl;
		char buf[8192];
		size_t have = 0;
		pthread_mutex_lock(&s->mu);
		stop = s->stop;
		if (fd >= 0 && !stop)
			s->connections++;
		pthread_mutex_unlock(&s->mu);
		if (stop) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		if (fd < 0)
			continue;
		ssl = SSL_new(s->ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1) {
			pthread_mutex_lock(&s->mu);
			s->failed_handshakes++;
			pthread_mutex_unlock(&s->mu);
			SSL_free(ssl);
			close(fd);
			continue;
		}
		pthread_mutex_lock(&s->mu);
		s->handshakes++;
		s->resumed += SSL_session_reused(ssl);
		pthread_mutex_unlock(&s->mu);
		while (have < sizeof buf - 1) {
			int n = SSL_read(ssl, buf + have, (int)(sizeof buf - 1 - have));
			if (n <= 0)
				break;
			have += (size_t)n;
			buf[have] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		if (have) {
			static const char ans[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			                          "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
			SSL_write(ssl, ans, (int)sizeof ans - 1);
		}
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
}

static void server_start_at(server *s, const char *ip);

static void server_start(server *s)
{
	server_start_at(s, "127.0.0.1");
}

static void server_start_at(server *s, const char *ip)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	s->ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate(s->ctx, pki.server_cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(s->ctx, pki.server_key), 1);
	s->lfd = test_listen(ip, 0, 512, &s->port);
	ck_assert_int_ge(s->lfd, 0);
	s->ip = ip;
	ck_assert_int_eq(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(server *s)
{
	int fd;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_mutex_unlock(&s->mu);
	fd = test_connect(s->ip, s->port); /* wake the accept */
	pthread_join(s->th, NULL);
	if (fd >= 0)
		close(fd);
	close(s->lfd);
	SSL_CTX_free(s->ctx);
	pthread_mutex_destroy(&s->mu);
}

static int counter(server *s, int *field)
{
	int n;
	pthread_mutex_lock(&s->mu);
	n = *field;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* ---- fixtures ------------------------------------------------------------------------------- */

static server srv;

static void clear_env(void)
{
	static const char *const vars[] = {
	    "AWS_CA_BUNDLE", "HYPERTEST_CA_BUNDLE", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
	    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", NULL};
	size_t i;
	for (i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static void setup(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/ht-tls-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	clear_env();
	ck_assert_int_eq(test_pki_make(&pki, tmpdir), 0);
	server_start(&srv);
}

static void teardown(void)
{
	char path[512];
	server_stop(&srv);
	test_pki_free(&pki);
	/* tmpdir is ours (mkdtemp) */
	snprintf(path, sizeof path, "%s/config", tmpdir);
	unlink(path);
	snprintf(path, sizeof path, "%s/credentials", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	clear_env();
}

static char url[128];

static const char *server_url(void)
{
	snprintf(url, sizeof url, "https://127.0.0.1:%d/ping", srv.port);
	return url;
}

/* One GET through a fresh client using tls; 0 or the error code with err. */
static int get_once_url(aws_tls *tls, const char *u, char **err)
{
	aws_http_config cfg = {0};
	aws_http *h;
	aws_http_request req;
	aws_http_response resp;
	int rc;
	cfg.tls = tls;
	cfg.max_attempts = 1;
	h = aws_http_new(&cfg, err);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(aws_http_request_init(&req, "GET", u, "GET ping"), 0);
	rc = aws_http_perform(h, &req, &resp, err);
	aws_http_response_clear(&resp);
	aws_http_request_clear(&req);
	aws_http_free(h);
	return rc;
}

static int get_once(aws_tls *tls, char **err)
{
	return get_once_url(tls, server_url(), err);
}

static int multi_done, multi_ok;
static char multi_msg[1024];

/* One GET of u through a fresh asynchronous client on transport using
 * tls; 0 or the error code with its message in multi_msg. */
static int get_async(aws_tls *tls, int transport, const char *u);

/* ---- tests -------------------------------------------------------------------------------- */


static void on_done(void *ud, aws_http_request *req, aws_http_response *resp, int code,
                    const char *message)
{
	(void)ud;
	(void)req;
	(void)message;
	multi_done++;
	multi_ok += code == 0 && resp->status == 200;
	snprintf(multi_msg, sizeof multi_msg, "%s", message ? message : "");
}

static int get_async(aws_tls *tls, int transport, const char *u)
{
	aws_http_config cfg = {0};
	char *err = NULL;
	aws_http *h;
	aws_http_request *r;
	cfg.tls = tls;
	cfg.max_attempts = 1;
	cfg.client = transport;
	h = aws_http_new(&cfg, &err);
	ck_assert_ptr_nonnull(h);
	r = aws_http_request_new("GET", u, "GET ping");
	multi_done = multi_ok = 0;
	multi_msg[0] = '\0';
	ck_assert_int_eq(aws_http_multi_add(h, r, on_done, NULL, &err), 0);
	while (aws_http_multi_pending(h) > 0)
		ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
	aws_http_free(h);
	free(err);
	return multi_ok ? 0 : HYPERTEST_ERR_HTTP;
}

static const int transports[] = {AWS_HTTP_CLIENT_BUILTIN, AWS_HTTP_CLIENT_CURL};

START_TEST(test_bundle_parsed_once)
{
	char *err = NULL;
	aws_tls *tls;
	aws_http_config cfg = {0};
	aws_http *blocking, *async;
	int i, ok = 0;

	open_count_watch(pki.bundle);
	tls = aws_tls_new(pki.bundle, NULL, NULL, &err);
	ck_assert_msg(tls != NULL, "%s", aws_msg(err));
	ck_assert_str_eq(aws_tls_ca_source(tls), "option caBundle");
	cfg.tls = tls;
	cfg.max_attempts = 1;
	cfg.concurrency = 16;
	blocking = aws_http_new(&cfg, &err);
	cfg.concurrency = 300; /* two multi handles */
	cfg.client = transports[_i];
	cfg.max_handshakes = 8; /* builtin: the others wait for their turn */
	async = aws_http_new(&cfg, &err);
	ck_assert_ptr_nonnull(blocking);
	ck_assert_ptr_nonnull(async);

	for (i = 0; i < 100; i++) {
		aws_http_request req;
		aws_http_response resp;
		ck_assert_int_eq(aws_http_request_init(&req, "GET", server_url(), "GET ping"), 0);
		if (aws_http_perform(blocking, &req, &resp, &err) == 0 && resp.status == 200)
			ok++;
		else
			ck_abort_msg("request %d: %s", i, aws_msg(err));
		aws_http_response_clear(&resp);
		aws_http_request_clear(&req);
	}
	multi_done = multi_ok = 0;
	for (i = 0; i < 100; i++) {
		aws_http_request *r = aws_http_request_new("GET", server_url(), "GET ping");
		ck_assert_ptr_nonnull(r);
		ck_assert_int_eq(aws_http_multi_add(async, r, on_done, NULL, &err), 0);
	}
	while (aws_http_multi_pending(async) > 0)
		ck_assert_int_ge(aws_http_multi_wait(async, -1), 0);
	ck_assert_int_eq(multi_done, 100);
	ck_assert_str_eq(aws_http_transport(async), _i ? "curl" : "builtin");
	ok += multi_ok;
	ck_assert_int_eq(ok, 200);

	/* 200 connections, each with its own handshake ... */
	ck_assert_int_eq(counter(&srv, &srv.connections), 200);
	ck_assert_int_eq(counter(&srv, &srv.handshakes), 200);
	/* ... and the 150-certificate bundle read and parsed once for all */
	ck_assert_int_eq(open_count(), 1);
	ck_assert_uint_eq(aws_tls_store_loads(tls), 1);
	fprintf(stderr, "check_aws_tls: 200 connections, %d sessions resumed, bundle opened %d time(s)\n",
	        counter(&srv, &srv.resumed), open_count());
	aws_http_free(blocking);
	aws_http_free(async);
	aws_tls_unref(tls);
	free(err);
}
END_TEST

START_TEST(test_wrong_ca_fails)
{
	char *err = NULL;
	aws_tls *tls = aws_tls_new(pki.wrong_ca, NULL, NULL, &err);
	ck_assert_msg(tls != NULL, "%s", aws_msg(err));
	ck_assert_int_eq(get_once(tls, &err), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(aws_msg(err), "unable to get local issuer certificate") != NULL,
	              "message: %s", aws_msg(err));
	ck_assert_msg(strstr(aws_msg(err), "GET ping") != NULL, "message: %s", aws_msg(err));
	/* the asynchronous mode, on both transports */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(get_async(tls, transports[i], server_url()), HYPERTEST_ERR_HTTP);
		ck_assert_msg(strstr(multi_msg, "GET ping: ") &&
		                  strstr(multi_msg, "unable to get local issuer certificate"),
		              "message: %s", multi_msg);
	}
	aws_tls_unref(tls);
	/* and the system's roots alone do not know the test CA either */
	tls = aws_tls_new(NULL, NULL, NULL, &err);
	ck_assert_ptr_nonnull(tls);
	ck_assert_str_eq(aws_tls_ca_source(tls), aws_tls_ca(tls, NULL) ? "libcurl's default"
	                                                                : "OpenSSL's default paths");
	ck_assert_int_eq(get_once(tls, &err), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(aws_msg(err), "unable to get local issuer certificate") != NULL,
	              "message: %s", aws_msg(err));
	aws_tls_unref(tls);
	free(err);
}
END_TEST

/* The builtin client verifies the peer's address (or name), and resumes
 * TLS sessions from the shared cache. */
START_TEST(test_builtin_verify_and_resume)
{
	char *err = NULL, u[128];
	aws_tls *tls = aws_tls_new(pki.ca, NULL, NULL, &err);
	server other;
	int i;
	ck_assert_msg(tls != NULL, "%s", aws_msg(err));
	/* one after the other: the first a full handshake, the others resumed */
	for (i = 0; i < 5; i++)
		ck_assert_msg(get_async(tls, AWS_HTTP_CLIENT_BUILTIN, server_url()) == 0, "%s",
		              multi_msg);
	ck_assert_int_eq(counter(&srv, &srv.handshakes), 5);
	ck_assert_int_eq(counter(&srv, &srv.resumed), 4);
	/* by name: localhost is in the certificate (and SNI is sent) */
	snprintf(u, sizeof u, "https://localhost:%d/ping", srv.port);
	ck_assert_msg(get_async(tls, AWS_HTTP_CLIENT_BUILTIN, u) == 0, "%s", multi_msg);
	/* 127.0.0.2 is not */
	server_start_at(&other, "127.0.0.2");
	snprintf(u, sizeof u, "https://127.0.0.2:%d/ping", other.port);
	ck_assert_int_eq(get_async(tls, AWS_HTTP_CLIENT_BUILTIN, u), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(multi_msg, "GET ping: ") && strstr(multi_msg, "IP address mismatch") &&
	                  strstr(multi_msg, "127.0.0.2 port"),
	              "message: %s", multi_msg);
	ck_assert_int_eq(counter(&other, &other.handshakes), 0);
	server_stop(&other);
	ck_assert_uint_eq(aws_tls_store_loads(tls), 1);
	aws_tls_unref(tls);
	free(err);
}
END_TEST

/* The builtin transport resumes the session a libcurl connection of the
 * same instance negotiated (the drift check's GetFunction, then the
 * invocations), by name and by address. */
START_TEST(test_builtin_resumes_curl_session)
{
	char *err = NULL, u[128];
	aws_tls *tls = aws_tls_new(pki.ca, NULL, NULL, &err);
	ck_assert_msg(tls != NULL, "%s", aws_msg(err));
	ck_assert_msg(get_once(tls, &err) == 0, "%s", aws_msg(err));
	ck_assert_int_eq(counter(&srv, &srv.handshakes), 1);
	ck_assert_int_eq(counter(&srv, &srv.resumed), 0);
	ck_assert_msg(get_async(tls, AWS_HTTP_CLIENT_BUILTIN, server_url()) == 0, "%s", multi_msg);
	ck_assert_int_eq(counter(&srv, &srv.handshakes), 2);
	ck_assert_int_eq(counter(&srv, &srv.resumed), 1);
	aws_tls_unref(tls);
	/* by name (SNI names the session) */
	tls = aws_tls_new(pki.ca, NULL, NULL, &err);
	ck_assert_msg(tls != NULL, "%s", aws_msg(err));
	snprintf(u, sizeof u, "https://localhost:%d/ping", srv.port);
	ck_assert_msg(get_once_url(tls, u, &err) == 0, "%s", aws_msg(err));
	ck_assert_msg(get_async(tls, AWS_HTTP_CLIENT_BUILTIN, u) == 0, "%s", multi_msg);
	ck_assert_int_eq(counter(&srv, &srv.handshakes), 4);
	ck_assert_int_eq(counter(&srv, &srv.resumed), 2);
	aws_tls_unref(tls);
	free(err);
}
END_TEST

/* A profile "t" whose ca_bundle is ca; returns the loaded credentials. */
static void profile_with(aws_credentials *c, const char *ca)
{
	char path[512];
	FILE *f;
	aws_credentials_options o = {"t", "us-east-1"};
	char *err = NULL;
	snprintf(path, sizeof path, "%s/config", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[profile t]\nregion = us-east-1\nca_bundle = %s\n", ca);
	fclose(f);
	setenv("AWS_CONFIG_FILE", path, 1);
	snprintf(path, sizeof path, "%s/credentials", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[t]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t\n");
	fclose(f);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	ck_assert_msg(aws_credentials_load(c, &o, &err) == 0, "%s", aws_msg(err));
	ck_assert_str_eq(c->ca_bundle, ca);
	free(err);
}

/* Which bundle is chosen, and does a connection with it succeed? */
static void expect(const char *option, const aws_credentials *c, const char *source, int ok)
{
	char *err = NULL;
	aws_tls *tls = aws_tls_new(option, c ? c->ca_bundle : NULL, c ? c->ca_bundle_source : NULL,
	                           &err);
	ck_assert_msg(tls != NULL, "%s", aws_msg(err));
	ck_assert_msg(strstr(aws_tls_ca_source(tls), source) != NULL, "source %s, expected %s",
	              aws_tls_ca_source(tls), source);
	if (ok) {
		ck_assert_msg(get_once(tls, &err) == 0, "with %s: %s", source, aws_msg(err));
	} else {
		ck_assert_int_eq(get_once(tls, &err), HYPERTEST_ERR_HTTP);
		ck_assert_msg(strstr(aws_msg(err), "unable to get local issuer certificate") != NULL,
		              "with %s: %s", source, aws_msg(err));
	}
	aws_tls_unref(tls);
	free(err);
}

START_TEST(test_ca_precedence)
{
	aws_credentials good = {0}, wrong = {0};
	char *err = NULL;
	char config[512];

	/* the profile's ca_bundle alone */
	profile_with(&good, pki.ca);
	snprintf(config, sizeof config, "ca_bundle in %s/config [profile t]", tmpdir);
	ck_assert_str_eq(good.ca_bundle_source, config);
	expect(NULL, &good, config, 1);
	/* AWS_CA_BUNDLE before the profile */
	setenv("AWS_CA_BUNDLE", pki.wrong_ca, 1);
	expect(NULL, &good, "AWS_CA_BUNDLE", 0);
	setenv("AWS_CA_BUNDLE", pki.ca, 1);
	profile_with(&wrong, pki.wrong_ca);
	expect(NULL, &wrong, "AWS_CA_BUNDLE", 1);
	/* the option before AWS_CA_BUNDLE */
	setenv("AWS_CA_BUNDLE", pki.wrong_ca, 1);
	expect(pki.ca, &wrong, "option caBundle", 1);
	expect(pki.wrong_ca, &good, "option caBundle", 0);
	/* HYPERTEST_CA_BUNDLE after the profile's */
	unsetenv("AWS_CA_BUNDLE");
	setenv("HYPERTEST_CA_BUNDLE", pki.ca, 1);
	expect(NULL, &wrong, "[profile t]", 0);
	expect(NULL, NULL, "HYPERTEST_CA_BUNDLE", 1);
	/* nothing: libcurl's default, which does not know the test CA */
	unsetenv("HYPERTEST_CA_BUNDLE");
	expect(NULL, NULL, "default", 0);
	/* an unreadable bundle is refused, naming it and its source */
	setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem", 1);
	ck_assert_ptr_null(aws_tls_new(NULL, NULL, NULL, &err));
	ck_assert_ptr_nonnull(err); /* a message: HYPERTEST_ERR_CONFIG, not out of memory */
	ck_assert_str_eq(aws_msg(err), "CA bundle /nonexistent/ca.pem (from AWS_CA_BUNDLE): cannot read: "
	                          "No such file or directory");
	/* ... or, for a client that may never speak HTTPS (the function side's
	 * Runtime API), by its first HTTPS connection */
	{
		aws_tls *lazy = aws_tls_new_default(&err);
		ck_assert_ptr_nonnull(lazy);
		ck_assert_int_eq(get_once(lazy, &err), HYPERTEST_ERR_HTTP);
		ck_assert_msg(strstr(aws_msg(err), "GET ping: ") &&
		                  strstr(aws_msg(err), "CA bundle /nonexistent/ca.pem (from AWS_CA_BUNDLE)"),
		              "%s", aws_msg(err));
		aws_tls_unref(lazy);
	}
	aws_credentials_free(&good);
	aws_credentials_free(&wrong);
	free(err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aws-tls");
	TCase *tc = tcase_create("tls");
	SRunner *sr;
	int failed;
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bundle_parsed_once, 0, 2);
	tcase_add_test(tc, test_builtin_verify_and_resume);
	tcase_add_test(tc, test_builtin_resumes_curl_session);
	tcase_add_test(tc, test_wrong_ca_fails);
	tcase_add_test(tc, test_ca_precedence);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
