/*
 * aws-http-test.h - what the tests of the aws provider's asynchronous HTTP
 * mode share (check_aws_http_conn, check_aws_http2): a client made for a
 * test (short backoffs, every line of its log kept), the outcome of one
 * request as its completion reports it, and a request run to its end.
 */
#ifndef HT_TESTS_AWS_HTTP_TEST_H
#define HT_TESTS_AWS_HTTP_TEST_H

#include "http.h"

/* What the client logged since the last aws_test_log_reset, a line each. */
extern htp_buf aws_test_logged;
void aws_test_log_reset(void);
void aws_test_log_free(void);

/* A client of cfg (its log, backoffs of 1-5 ms and the connect timeout
 * filled in where cfg leaves them 0); fails the test when it cannot be
 * made. */
aws_http *aws_test_client(aws_http_config *cfg);

/* One request's end, as its completion reported it. */
typedef struct aws_test_outcome {
	int done, code, attempts;
	long status;
	size_t x_long;        /* the length of the answer's x-long field, 0: none */
	char body[1024];
	char message[1024];
} aws_test_outcome;

/* The completion that fills the aws_test_outcome ud. */
void aws_test_done(void *ud, aws_http_request *req, aws_http_response *resp, int code,
                   const char *message);
/* Add method u (what: "GET test") with response cap cap (0: the client's),
 * its outcome into o. */
void aws_test_add(aws_http *h, const char *method, const char *u, size_t cap, aws_test_outcome *o);
/* Wait until nothing is pending. */
void aws_test_wait_all(aws_http *h);
/* One request, waited for. */
aws_test_outcome aws_test_run(aws_http *h, const char *method, const char *u, size_t cap);

#endif
