/*
 * fuzz-util.c - see fuzz-util.h.
 */
#define _GNU_SOURCE
#include "fuzz-util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[4096];
static char path_buf[4096 + 256];

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "fuzz: %s %s: %s\n", what, path, strerror(errno));
	abort();
}

static void cleanup(void)
{
	if (scratch[0])
		fz_rm_rf(scratch);
}

const char *fz_scratch(void)
{
	if (!scratch[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(scratch, sizeof scratch, "%s/ht-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(scratch))
			fail("cannot make", scratch);
		atexit(cleanup);
	}
	return scratch;
}

const char *fz_path(const char *name)
{
	snprintf(path_buf, sizeof path_buf, "%s/%s", fz_scratch(), name);
	return path_buf;
}

void fz_write(const char *path, const uint8_t *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fail("cannot create", path);
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("cannot write", path);
		}
		data += n;
		len -= (size_t)n;
	}
	close(fd);
}

static int make_writable(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_D || type == FTW_DNR)
		chmod(p, (st->st_mode & 07777) | 0700);
	return 0;
}

static int remove_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (remove(p) && errno != ENOENT)
		fail("cannot remove", p);
	(void)type;
	return 0;
}

void fz_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st))
		return;
	/* first pass: directories searchable and writable; second: remove */
	nftw(path, make_writable, 32, FTW_PHYS);
	if (nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH) && errno != ENOENT)
		fail("cannot walk", path);
}

char *fz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

void fz_piece(const uint8_t *data, size_t len, size_t *pos, const uint8_t **piece,
              size_t *piece_len)
{
	static const char sep[] = "\n----\n";
	size_t i, start = *pos;
	*piece = data + start;
	for (i = start; i + sizeof sep - 1 <= len; i++)
		if (!memcmp(data + i, sep, sizeof sep - 1)) {
			*piece_len = i - start;
			*pos = i + sizeof sep - 1;
			return;
		}
	*piece_len = len - start;
	*pos = len;
}
