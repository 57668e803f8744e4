/*
 * aws-http-test.c - see aws-http-test.h.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws-http-test.h"

htp_buf aws_test_logged;

void aws_test_log_reset(void)
{
	aws_test_logged.len = 0;
	if (aws_test_logged.data)
		aws_test_logged.data[0] = '\0';
}

void aws_test_log_free(void)
{
	htp_buf_free(&aws_test_logged);
}

static void log_cb(void *ud, int level, const char *msg)
{
	(void)ud;
	(void)level;
	htp_buf_addf(&aws_test_logged, "%s\n", msg);
}

aws_http *aws_test_client(aws_http_config *cfg)
{
	char *err = NULL;
	aws_http *h;
	if (!cfg->log)
		cfg->log = log_cb;
	if (!cfg->retry_base_ms)
		cfg->retry_base_ms = 1;
	if (!cfg->retry_cap_ms)
		cfg->retry_cap_ms = 5;
	if (!cfg->connect_timeout_ms)
		cfg->connect_timeout_ms = 2000;
	h = aws_http_new(cfg, &err);
	ck_assert_msg(h != NULL, "%s", err ? err : "out of memory");
	free(err);
	return h;
}

void aws_test_done(void *ud, aws_http_request *req, aws_http_response *resp, int code,
                   const char *message)
{
	aws_test_outcome *o = ud;
	const char *xl = aws_headers_get(&resp->headers, "x-long");
	(void)req;
	o->done = 1;
	o->code = code;
	o->status = resp->status;
	o->attempts = resp->attempts;
	o->x_long = xl ? strlen(xl) : 0;
	snprintf(o->body, sizeof o->body, "%.*s", (int)resp->body.len,
	         resp->body.data ? resp->body.data : "");
	snprintf(o->message, sizeof o->message, "%s", message ? message : "");
}

void aws_test_add(aws_http *h, const char *method, const char *u, size_t cap, aws_test_outcome *o)
{
	char *err = NULL;
	aws_http_request *r = aws_http_request_new(method, u, "GET test");
	ck_assert_ptr_nonnull(r);
	r->max_response = cap;
	r->max_what = "a test answer";
	memset(o, 0, sizeof *o);
	ck_assert_int_eq(aws_http_multi_add(h, r, aws_test_done, o, &err), 0);
	free(err);
}

void aws_test_wait_all(aws_http *h)
{
	while (aws_http_multi_pending(h))
		ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
}

aws_test_outcome aws_test_run(aws_http *h, const char *method, const char *u, size_t cap)
{
	aws_test_outcome o;
	aws_test_add(h, method, u, cap, &o);
	while (!o.done)
		ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
	return o;
}
