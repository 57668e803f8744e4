/*
 * text.c - UTF-8 cleaning of tool output for messages, reading a file
 * whole, the environment of child programs.
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

size_t htp_utf8_char(const unsigned char *p, size_t n)
{
	unsigned c = p[0], cp, min;
	size_t len;
	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, min = 0x80, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, min = 0x800, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	return (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) ? 0 : len;
}

char *htp_text_clean(const char *text, size_t n, int was_cut, size_t max)
{
	const unsigned char *p = (const unsigned char *)text;
	for (int i = 0; was_cut && i < 3 && n > 0 && (p[0] & 0xC0) == 0x80; i++)
		p++, n--;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	htp_buf b = {0};
	htp_buf_add(&b, "", 0);
	for (size_t i = 0; i < n;) {
		size_t len = htp_utf8_char(p + i, n - i);
		if (len)
			htp_buf_add(&b, (const char *)p + i, len);
		else
			htp_buf_add(&b, "\xEF\xBF\xBD", 3);
		i += len ? len : 1;
	}
	char *s = htp_buf_take(&b);
	size_t slen = s ? strlen(s) : 0;
	if (s && max && slen > max) {
		size_t start = slen - max;
		while (start < slen && ((unsigned char)s[start] & 0xC0) == 0x80)
			start++;
		memmove(s, s + start, slen - start + 1);
	}
	return s;
}

int htp_read_file(const char *path, size_t max, char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	/* O_NONBLOCK: the open of a FIFO without a writer never blocks (it is
	 * refused below, as anything but a regular file is) */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return errno;
	struct stat st;
	memset(&st, 0, sizeof st);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		int e = S_ISREG(st.st_mode) ? errno : EINVAL;
		close(fd);
		return e;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if ((uint64_t)st.st_size > max) {
		close(fd);
		return EFBIG;
	}
	size_t cap = (size_t)st.st_size + 1, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return ENOMEM;
	}
	for (;;) { /* the file may grow while read: read to its end, within max */
		if (n == cap) {
			if (cap > max) {
				free(buf);
				close(fd);
				return EFBIG;
			}
			/* never more than max + 1 bytes: one past the cap says enough */
			size_t ncap = cap <= max / 2 ? cap * 2 : max + 1;
			char *b = realloc(buf, ncap + 1);
			if (!b) {
				free(buf);
				close(fd);
				return ENOMEM;
			}
			buf = b;
			cap = ncap;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			free(buf);
			close(fd);
			return e;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n > max) {
		free(buf);
		return EFBIG;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

char **htp_env_with(char *const *extra)
{
	size_t n = htp_strv_len(environ), m = htp_strv_len(extra), k = 0;
	char **envp = calloc(n + m + 1, sizeof *envp);
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int replaced = 0;
		for (size_t j = 0; j < m && !replaced; j++)
			replaced = !strncmp(environ[i], extra[j], strcspn(extra[j], "=") + 1);
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		envp[k++] = extra[j];
	return envp;
}
