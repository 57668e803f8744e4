/*
 * check_aws_http_cancel.c - the blocking mode of the aws provider's HTTP
 * layer (plugins/provider-aws/http.c) ends a request when its config's
 * cancelled() says so: before the first attempt, in the middle of a
 * transfer to a server that accepted the connection and never answers,
 * and in the backoff before a retry.  The server is a listening socket of
 * the test itself, driven from the cancel callback (no thread): the
 * callback accepts the connection, and says "cancelled" only once the
 * moment it tests has come.  Without cancellation each request would run
 * into its 30 s timeout or its 30 s backoff, and fail otherwise.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "loopback.h"

/* The silent server and what the cancel callback decides from. */
typedef struct server {
	int lfd;         /* listening, non-blocking */
	int conn;        /* the accepted connection, -1 before */
	int port;
	const char *answer; /* written once the connection is accepted, or NULL */
	int when;        /* CANCEL_* */
	int retrying;    /* the client logged its backoff */
	int calls;       /* cancelled() calls */
} server;

enum { CANCEL_AT_ONCE, CANCEL_ONCE_ACCEPTED, CANCEL_IN_BACKOFF };

static void server_start(server *s, int when, const char *answer)
{
	memset(s, 0, sizeof *s);
	s->conn = -1;
	s->when = when;
	s->answer = answer;
	s->lfd = test_listen("127.0.0.1", SOCK_NONBLOCK, 4, &s->port);
	ck_assert_int_ge(s->lfd, 0);
}

static void server_stop(server *s)
{
	if (s->conn >= 0)
		close(s->conn);
	close(s->lfd);
}

/* Accept the client's connection when it is there; answer it (without
 * reading the request: it is small, and the answer says Connection: close)
 * or stay silent. */
static void server_poll(server *s)
{
	if (s->conn >= 0)
		return;
	s->conn = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (s->conn >= 0 && s->answer) {
		size_t n = strlen(s->answer);
		ck_assert_int_eq(write(s->conn, s->answer, n), (ssize_t)n);
	}
}

static int cancelled(void *ud)
{
	server *s = ud;

	s->calls++;
	server_poll(s);
	switch (s->when) {
	case CANCEL_AT_ONCE: return 1;
	case CANCEL_ONCE_ACCEPTED: return s->conn >= 0;
	default: return s->retrying;
	}
}

static void log_line(void *ud, int level, const char *msg)
{
	server *s = ud;

	(void)level;
	if (strstr(msg, "retrying in"))
		s->retrying = 1;
}

static aws_http *client(server *s)
{
	aws_http_config cfg = {0};
	aws_http *h;
	char *err = NULL;

	cfg.max_attempts = 2;
	cfg.retry_base_ms = 30000;
	cfg.retry_cap_ms = 30000;
	cfg.retry_budget_ms = 60000;
	cfg.timeout_ms = 30000; /* what ends a request nothing cancels */
	cfg.log = log_line;
	cfg.log_ud = s;
	cfg.cancelled = cancelled;
	cfg.cancel_ud = s;
	h = aws_http_new(&cfg, &err);
	ck_assert_msg(h != NULL, "aws_http_new: %s", err ? err : "out of memory");
	free(err);
	return h;
}

static int get(aws_http *h, server *s, aws_http_response *resp, char **err)
{
	aws_http_request r;
	char url[64];
	int rc;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/thing", s->port);
	ck_assert_int_eq(aws_http_request_init(&r, "GET", url, "Test GetThing"), 0);
	rc = aws_http_perform(h, &r, resp, err);
	aws_http_request_clear(&r);
	return rc;
}

START_TEST(test_cancelled_before)
{
	server s;
	aws_http *h;
	aws_http_response resp;
	char *err = NULL;

	server_start(&s, CANCEL_AT_ONCE, NULL);
	h = client(&s);
	ck_assert_int_eq(get(h, &s, &resp, &err), HYPERTEST_ERR_CANCELLED);
	ck_assert_str_eq(err, "Test GetThing: cancelled");
	ck_assert_int_eq(resp.attempts, 0);
	ck_assert_int_eq(s.conn, -1); /* no connection was made */
	aws_http_response_clear(&resp);
	aws_http_free(h);
	server_stop(&s);
	free(err);
}
END_TEST

START_TEST(test_cancelled_while_waiting_for_the_answer)
{
	server s;
	aws_http *h;
	aws_http_response resp;
	char *err = NULL;

	server_start(&s, CANCEL_ONCE_ACCEPTED, NULL);
	h = client(&s);
	ck_assert_int_eq(get(h, &s, &resp, &err), HYPERTEST_ERR_CANCELLED);
	ck_assert_str_eq(err, "Test GetThing: cancelled");
	ck_assert_int_ge(s.conn, 0);   /* the request was under way */
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_int_eq(resp.status, 0);
	aws_http_response_clear(&resp);
	/* the client is whole: the next request (cancelled at once) says so */
	s.when = CANCEL_AT_ONCE;
	ck_assert_int_eq(get(h, &s, &resp, &err), HYPERTEST_ERR_CANCELLED);
	aws_http_response_clear(&resp);
	aws_http_free(h);
	server_stop(&s);
	free(err);
}
END_TEST

START_TEST(test_cancelled_in_backoff)
{
	static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\n"
	                             "Retry-After: 30\r\n"
	                             "Content-Length: 0\r\n"
	                             "Connection: close\r\n\r\n";
	server s;
	aws_http *h;
	aws_http_response resp;
	char *err = NULL;

	server_start(&s, CANCEL_IN_BACKOFF, answer);
	h = client(&s);
	ck_assert_int_eq(get(h, &s, &resp, &err), HYPERTEST_ERR_CANCELLED);
	ck_assert_str_eq(err, "Test GetThing: cancelled while waiting to retry after attempt 1");
	ck_assert_int_eq(s.retrying, 1);
	ck_assert_int_eq(resp.attempts, 1);
	ck_assert_int_eq(resp.status, 503); /* the last answer is kept */
	aws_http_response_clear(&resp);
	aws_http_free(h);
	server_stop(&s);
	free(err);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aws-http-cancel");
	TCase *tc = tcase_create("blocking");
	SRunner *sr;
	int failed;

	/* against a hang: without cancellation a request ends after 30 s,
	 * 60 s with its backoff */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_cancelled_before);
	tcase_add_test(tc, test_cancelled_while_waiting_for_the_answer);
	tcase_add_test(tc, test_cancelled_in_backoff);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
