/*
 * loopback.c - listeners and connections on local addresses for the
 * tests' own servers; see loopback.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"

/* IP and PORT as a socket address of its family; 0 when IP is not numeric. */
static int address(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
		a->sin_family = AF_INET;
		a->sin_port = htons((unsigned short)port);
		*len = sizeof *a;
		return 1;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((unsigned short)port);
		*len = sizeof *a6;
		return 1;
	}
	return 0;
}

static int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int test_listen(const char *ip, int flags, int backlog, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, e;

	if (!address(ip, 0, &ss, &len)) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	*port = port_of(&ss);
	return fd;
}

int test_closed_port(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, port = -1;

	address("127.0.0.1", 0, &ss, &len);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&ss, len) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		port = port_of(&ss);
	close(fd);
	return port;
}

int test_connect(const char *ip, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (!address(ip, port, &ss, &len))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}
