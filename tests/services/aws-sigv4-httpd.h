/*
 * aws-sigv4-httpd.h - a small HTTP/1.1 server for the aws provider's tests:
 * one thread, poll(), keep-alive, on 127.0.0.1 and a free port.  Each
 * complete request goes to a handler that writes the whole raw response;
 * in "hold" mode answers wait until that many requests are pending at once
 * (proof that they were all in flight together).
 */
#ifndef HT_TESTS_AWS_SIGV4_HTTPD_H
#define HT_TESTS_AWS_SIGV4_HTTPD_H

#include <stddef.h>

#include "sigv4.h"

typedef struct httpd httpd;

/* req: the raw request (head and body); seq counts requests from 0.
 * Append the raw response to out (httpd_reply helps). */
typedef void (*httpd_handler)(void *ud, const char *req, size_t len, int seq, htp_buf *out);

/* Start on 127.0.0.1 (port chosen by the system); NULL on error. */
httpd *httpd_start(httpd_handler fn, void *ud, int hold_until);
int httpd_port(const httpd *d);
/* Requests seen so far; most connections open at once. */
int httpd_requests(httpd *d);
int httpd_max_connections(httpd *d);
/* Connections accepted so far; open now (closed by the client once the
 * server has seen it). */
int httpd_connections(httpd *d);
int httpd_open(httpd *d);
void httpd_stop(httpd *d);

/* Append "HTTP/1.1 status\r\n", the extra header lines (each ending in
 * "\r\n", may be NULL), Content-Length and body. */
void httpd_reply(htp_buf *out, int status, const char *headers, const char *body);

#endif
