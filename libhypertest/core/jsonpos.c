/*
 * jsonpos.c - a tiny JSON tokenizer that finds the line and column of a
 * member's key and value (or of its closest existing ancestor) in the
 * source text.  It does not build anything: values that are not on the
 * path are skipped token by token.
 */

#include <stdlib.h>
#include <string.h>

#include "jsonpos.h"

#define MAX_NESTING 4096

struct scan {
	const char *s;
	size_t len;
	size_t i;
	int line;
	int col;
};

static int peek(const struct scan *sc)
{
	return sc->i < sc->len ? (unsigned char)sc->s[sc->i] : -1;
}

/* Step over one byte, keeping line and column (in characters) current. */
static void advance(struct scan *sc)
{
	unsigned char c;

	if (sc->i >= sc->len)
		return;
	c = (unsigned char)sc->s[sc->i++];
	if (c == '\n') {
		sc->line++;
		sc->col = 1;
	} else if (sc->i >= sc->len || ((unsigned char)sc->s[sc->i] & 0xC0) != 0x80) {
		sc->col++;
	}
}

static void skip_ws(struct scan *sc)
{
	for (;;) {
		int c = peek(sc);
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		advance(sc);
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_hex4(struct scan *sc, unsigned *out)
{
	unsigned v = 0;
	int k;

	for (k = 0; k < 4; k++) {
		int h = hexval(peek(sc));
		if (h < 0)
			return -1;
		v = v * 16 + (unsigned)h;
		advance(sc);
	}
	*out = v;
	return 0;
}

static size_t utf8_encode(unsigned cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Scan a string token starting at its opening quote.  When want is not
 * NULL, *equal tells whether the decoded string equals want.  Returns 0, or
 * -1 when the token is malformed.
 */
static int scan_string(struct scan *sc, const char *want, int *equal)
{
	size_t wl = want ? strlen(want) : 0, wi = 0;
	int same = 1;

	if (peek(sc) != '"')
		return -1;
	advance(sc);
	for (;;) {
		unsigned char bytes[4];
		size_t nb, k;
		int c = peek(sc);

		if (c < 0)
			return -1;
		if (c == '"') {
			advance(sc);
			break;
		}
		if (c == '\\') {
			unsigned cp;
			advance(sc);
			c = peek(sc);
			advance(sc);
			switch (c) {
			case '"': case '\\': case '/': cp = (unsigned)c; break;
			case 'b': cp = '\b'; break;
			case 'f': cp = '\f'; break;
			case 'n': cp = '\n'; break;
			case 'r': cp = '\r'; break;
			case 't': cp = '\t'; break;
			case 'u':
				if (read_hex4(sc, &cp) < 0)
					return -1;
				if (cp >= 0xD800 && cp < 0xDC00 && peek(sc) == '\\' &&
				    sc->i + 1 < sc->len && sc->s[sc->i + 1] == 'u') {
					unsigned lo;
					advance(sc);
					advance(sc);
					if (read_hex4(sc, &lo) < 0)
						return -1;
					if (lo >= 0xDC00 && lo < 0xE000)
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					else
						same = 0; /* not a key anyone looks for */
				}
				break;
			default:
				return -1;
			}
			nb = utf8_encode(cp, bytes);
		} else {
			bytes[0] = (unsigned char)c;
			nb = 1;
			advance(sc);
		}
		for (k = 0; k < nb; k++, wi++)
			if (wi >= wl || (unsigned char)want[wi] != bytes[k])
				same = 0;
	}
	if (equal)
		*equal = same && wi == wl;
	return 0;
}

static int skip_value(struct scan *sc, int nesting);

/* Skip an object or array starting at its opening bracket. */
static int skip_container(struct scan *sc, int nesting)
{
	int close = peek(sc) == '{' ? '}' : ']';
	int is_obj = close == '}';

	if (nesting > MAX_NESTING)
		return -1;
	advance(sc);
	skip_ws(sc);
	if (peek(sc) == close) {
		advance(sc);
		return 0;
	}
	for (;;) {
		skip_ws(sc);
		if (is_obj) {
			if (scan_string(sc, NULL, NULL) < 0)
				return -1;
			skip_ws(sc);
			if (peek(sc) != ':')
				return -1;
			advance(sc);
			skip_ws(sc);
		}
		if (skip_value(sc, nesting + 1) < 0)
			return -1;
		skip_ws(sc);
		if (peek(sc) == ',') {
			advance(sc);
			continue;
		}
		if (peek(sc) == close) {
			advance(sc);
			return 0;
		}
		return -1;
	}
}

static int skip_value(struct scan *sc, int nesting)
{
	int c = peek(sc);
	size_t start = sc->i;

	if (c == '{' || c == '[')
		return skip_container(sc, nesting);
	if (c == '"')
		return scan_string(sc, NULL, NULL);
	/* number or literal: everything up to the next delimiter */
	for (;;) {
		c = peek(sc);
		if (c < 0 || c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' ||
		    c == '\n' || c == '\r' || c == ':' || c == '"' || c == '{' || c == '[')
			break;
		advance(sc);
	}
	return sc->i > start ? 0 : -1;
}

/*
 * The scanner stands at the value for path[d] (already matched).  Descend
 * through step d.  Returns 0 when the rest of the path was found, 1 when
 * step d does not exist here, -1 on malformed text.
 */
static int descend(struct scan *sc, const ht_jsonpos_step *path, size_t depth,
                   size_t d, ht_jsonpos *out)
{
	const ht_jsonpos_step *st;
	int close;
	size_t n = 0;

	out->depth = d;
	out->value_line = sc->line;
	out->value_column = sc->col;
	if (d == depth)
		return 0;
	if (d > MAX_NESTING)
		return -1;
	st = &path[d];
	close = st->key ? '}' : ']';
	if (peek(sc) != (st->key ? '{' : '['))
		return 1;
	advance(sc);
	skip_ws(sc);
	if (peek(sc) == close)
		return 1;
	for (;;) {
		int match = 0;
		int kl = 0, kc = 0;

		skip_ws(sc);
		if (st->key) {
			kl = sc->line;
			kc = sc->col;
			if (scan_string(sc, st->key, &match) < 0)
				return -1;
			skip_ws(sc);
			if (peek(sc) != ':')
				return -1;
			advance(sc);
			skip_ws(sc);
		} else {
			match = n == st->index;
		}
		if (match) {
			/* deeper matches overwrite these */
			out->key_line = kl;
			out->key_column = kc;
			return descend(sc, path, depth, d + 1, out);
		}
		if (skip_value(sc, (int)d + 1) < 0)
			return -1;
		n++;
		skip_ws(sc);
		if (peek(sc) == ',') {
			advance(sc);
			continue;
		}
		if (peek(sc) == close)
			return 1;
		return -1;
	}
}

int ht_jsonpos_find(const char *text, size_t len, const ht_jsonpos_step *path,
                    size_t depth, ht_jsonpos *out)
{
	struct scan sc = {text, len, 0, 1, 1};
	int r;

	memset(out, 0, sizeof *out);
	if (!text)
		return -1;
	skip_ws(&sc);
	if (peek(&sc) < 0) {
		out->value_line = sc.line;
		out->value_column = sc.col;
		return -1;
	}
	r = descend(&sc, path, depth, 0, out);
	return r > 0 ? 1 : r;
}

int ht_jsonpos_find_keys(const char *text, size_t len, const char *const *keys,
                         size_t depth, ht_jsonpos *out)
{
	ht_jsonpos_step *steps;
	size_t k;
	int r;

	if (depth == 0)
		return ht_jsonpos_find(text, len, NULL, 0, out);
	steps = calloc(depth, sizeof *steps);
	if (!steps) {
		memset(out, 0, sizeof *out);
		return -1;
	}
	for (k = 0; k < depth; k++)
		steps[k].key = keys[k];
	r = ht_jsonpos_find(text, len, steps, depth, out);
	free(steps);
	return r;
}
