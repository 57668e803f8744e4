/*
 * buf.c - a growable text buffer for the hypertest program, and JSON string
 * literals (the program writes its JSON by hand: it links only the public
 * API and libc).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int grow(struct cli_buf *b, size_t extra)
{
	size_t cap;
	char *p;

	if (b->oom)
		return -1;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 128;
	while (cap < b->len + extra + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p) {
		b->oom = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void cli_buf_add(struct cli_buf *b, const char *s, size_t n)
{
	if (grow(b, n) < 0)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void cli_buf_puts(struct cli_buf *b, const char *s)
{
	cli_buf_add(b, s, strlen(s));
}

void cli_buf_printf(struct cli_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n, i;
	unsigned cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void cli_buf_json_str(struct cli_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	cli_buf_add(b, "\"", 1);
	for (; *p; p++) {
		if (*p >= 0x80) {
			/* invalid UTF-8 becomes U+FFFD: the output stays valid JSON */
			size_t n = utf8_seq(p);
			if (n) {
				cli_buf_add(b, (const char *)p, n);
				p += n - 1;
			} else {
				cli_buf_puts(b, "\\ufffd");
			}
			continue;
		}
		switch (*p) {
		case '"': cli_buf_add(b, "\\\"", 2); break;
		case '\\': cli_buf_add(b, "\\\\", 2); break;
		case '\b': cli_buf_add(b, "\\b", 2); break;
		case '\f': cli_buf_add(b, "\\f", 2); break;
		case '\n': cli_buf_add(b, "\\n", 2); break;
		case '\r': cli_buf_add(b, "\\r", 2); break;
		case '\t': cli_buf_add(b, "\\t", 2); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				cli_buf_printf(b, "\\u%04x", *p);
			else
				cli_buf_add(b, (const char *)p, 1);
		}
	}
	cli_buf_add(b, "\"", 1);
}

const char *cli_buf_str(const struct cli_buf *b)
{
	return b->data && !b->oom ? b->data : "";
}

void cli_buf_free(struct cli_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->oom = 0;
}
