/*
 * loopback.h - the plumbing of the TCP servers the tests run themselves:
 * a listener on an ephemeral port of a local address, a port nobody
 * listens on, a connection to wake a thread blocked in accept().  What a
 * server does with its connections stays with its test.
 */
#ifndef HT_TESTS_LOOPBACK_H
#define HT_TESTS_LOOPBACK_H

/* A TCP socket (close-on-exec, and FLAGS such as SOCK_NONBLOCK) bound to an
 * ephemeral port of IP, a numeric IPv4 or IPv6 address ("127.0.0.1",
 * "::1"), and listening with BACKLOG; its port in *port.  -1 (errno set)
 * when it cannot be made, e.g. where the machine has no such address. */
int test_listen(const char *ip, int flags, int backlog, int *port);

/* A port of 127.0.0.1 that nobody listens on: bound, then closed. */
int test_closed_port(void);

/* A connection to IP:PORT, or -1. */
int test_connect(const char *ip, int port);

#endif
