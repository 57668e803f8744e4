/*
 * basics.c - what every plugin needs and used to write for itself: a
 * growable string, string vectors, the monotonic clock, write_all,
 * path_join and formatted strings and errors.
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- growable string ------------------------------------------------------------ */

static int buf_reserve(htp_buf *b, size_t n);

int htp_buf_add(htp_buf *b, const void *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int htp_buf_str(htp_buf *b, const char *s)
{
	return htp_buf_add(b, s, strlen(s));
}

/* Make room for n more bytes and a NUL: 0 or -1. */
static int buf_reserve(htp_buf *b, size_t n)
{
	if (b->nomem || n > SIZE_MAX / 2 - b->len - 1) {
		b->nomem = 1;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p) {
			b->nomem = 1;
			return -1;
		}
		b->data = p;
		b->cap = cap;
	}
	return 0;
}

/* Formatted into the buffer's room (made larger and formatted again when
 * it is too small): no string of its own. */
int htp_buf_addf(htp_buf *b, const char *fmt, ...)
{
	va_list ap;
	if (buf_reserve(b, 127) < 0)
		return -1;
	size_t room = b->cap - b->len;
	va_start(ap, fmt);
	int n = vsnprintf(b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->data[b->len] = '\0';
		b->nomem = 1;
		return -1;
	}
	if ((size_t)n >= room) { /* too long: grow, format again */
		if (buf_reserve(b, (size_t)n) < 0)
			return -1;
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
	return 0;
}

char *htp_buf_take(htp_buf *b)
{
	htp_buf_add(b, "", 0);
	char *p = b->nomem ? NULL : b->data;
	if (!p)
		free(b->data);
	memset(b, 0, sizeof *b);
	return p;
}

void htp_buf_free(htp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* ---- string vectors ------------------------------------------------------------- */

void htp_strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

size_t htp_strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* ---- clock, files, paths ------------------------------------------------------------ */

int64_t htp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int htp_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {fd, POLLOUT, 0};
			poll(&pfd, 1, -1);
		} else if (w < 0 && errno != EINTR) {
			return errno;
		} else if (w == 0) {
			return EIO;
		}
	}
	return 0;
}

int htp_fd_above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int saved = errno;
	close(fd);
	errno = saved;
	return moved;
}

char *htp_path_join(const char *dir, const char *rel)
{
	if (!strcmp(rel, "."))
		return strdup(dir);
	if (!strcmp(dir, "."))
		return strdup(rel);
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return htp_strdupf("%.*s%s%s", (int)n, dir, dir[n - 1] == '/' ? "" : "/", rel);
}

/* ---- formatted strings and errors --------------------------------------------------- */

char *htp_vstrdupf(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		return NULL;
	return s;
}

char *htp_strdupf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = htp_vstrdupf(fmt, ap);
	va_end(ap);
	return s;
}

int htp_errorf(char **error, int code, const char *fmt, ...)
{
	if (!error)
		return code;
	va_list ap;
	va_start(ap, fmt);
	*error = htp_vstrdupf(fmt, ap);
	va_end(ap);
	return code;
}
