/*
 * scratch-dir.c - a scratch directory for the test programs that work on
 * files (scratch-dir.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "util.h"
#include "scratch-dir.h"

char tmp_root[4096];

void tmp_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmp_root, sizeof tmp_root, "%s/%s.XXXXXX", t && *t ? t : "/tmp",
	         program_invocation_short_name);
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		abort();
	}
}

void tmp_teardown(void)
{
	ht_rm_rf(tmp_root, NULL);
}

char *tpath(const char *fmt, ...)
{
	static char bufs[32][4096];
	static int next;
	char *p = bufs[next++ % 32];
	int n = snprintf(p, sizeof bufs[0], "%s/", tmp_root);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p + n, sizeof bufs[0] - (size_t)n, fmt, ap);
	va_end(ap);
	return p;
}

void write_bytes(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(len == 0 || write(fd, data, len) == (ssize_t)len, "write %s", path);
	close(fd);
}
