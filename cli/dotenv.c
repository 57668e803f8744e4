/*
 * dotenv.c - the project's .env, read by the hypertest program before the
 * configuration (as the TypeScript hypertest does at start-up), so that
 * ${VAR} references in hypertest.config.json and the plugins see it.
 *
 * The program loads it into its own environment with setenv(); the library
 * never does (an embedder's process environment is its own).
 *
 * Syntax, as dotenv reads it:
 *   # comment                    blank lines and comment lines are skipped
 *   KEY=value                    spaces around KEY, '=' and value are trimmed;
 *                                " #" starts a comment after an unquoted value
 *   export KEY=value             the "export " prefix is allowed
 *   KEY='literal $value'         single quotes: taken as they are
 *   KEY="a\nb \"c\""             double quotes: \n \r \t \\ \" are escapes
 * Quoted values may span lines.  KEY is [A-Za-z_][A-Za-z0-9_.-]*.
 * A variable already set is never overridden.  The whole file is checked
 * before anything is set: an error (FILE:LINE: what) sets nothing.  Values
 * never appear in messages.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DOTENV_MAX (1024 * 1024) /* bytes: a larger .env is refused */

struct pair {
	char *key, *value;
};

static int is_key_start(int c)
{
	return isalpha(c) || c == '_';
}

static int is_key_char(int c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

static int set_error(char *err, size_t errlen, const char *path, int line, const char *what,
                     const char *key)
{
	if (key)
		snprintf(err, errlen, "%s:%d: %s (variable %s)", path, line, what, key);
	else
		snprintf(err, errlen, "%s:%d: %s", path, line, what);
	return -1;
}

/* Where parse is in the text. */
typedef struct cursor {
	const char *p, *end, *path;
	int line;
	char *err;
	size_t errlen;
} cursor;

static void skip_blanks(cursor *c, int cr)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || (cr && *c->p == '\r')))
		c->p++;
}

/* Past the end of the current line. */
static void next_line(cursor *c)
{
	while (c->p < c->end && *c->p != '\n')
		c->p++;
	if (c->p < c->end)
		c->p++, c->line++;
}

/* An optional "export ", then KEY and '='; *key malloc'd. */
static int read_key(cursor *c, char **key)
{
	const char *ks, *ke;

	if ((size_t)(c->end - c->p) > 7 && !strncmp(c->p, "export", 6) &&
	    (c->p[6] == ' ' || c->p[6] == '\t')) {
		c->p += 7;
		skip_blanks(c, 0);
	}
	ks = c->p;
	if (c->p < c->end && is_key_start((unsigned char)*c->p))
		while (c->p < c->end && is_key_char((unsigned char)*c->p))
			c->p++;
	ke = c->p;
	if (ke == ks)
		return set_error(c->err, c->errlen, c->path, c->line,
		                 "expected a variable name ([A-Za-z_][A-Za-z0-9_.-]*) at the start of "
		                 "the line", NULL);
	skip_blanks(c, 0);
	if (c->p >= c->end || *c->p != '=') {
		char *k = strndup(ks, (size_t)(ke - ks));
		set_error(c->err, c->errlen, c->path, c->line, "expected KEY=VALUE", k);
		free(k);
		return -1;
	}
	c->p++;
	if (!(*key = strndup(ks, (size_t)(ke - ks)))) {
		snprintf(c->err, c->errlen, "%s: out of memory", c->path);
		return -1;
	}
	return 0;
}

/* A value in single or double quotes (escapes \n \r \t \\ \" in double
 * quotes), which may span lines; then nothing but a comment. */
static int read_quoted(cursor *c, const char *key, char *value, size_t *vlen)
{
	int start_line = c->line;
	char q = *c->p++;

	for (;;) {
		if (c->p >= c->end)
			return set_error(c->err, c->errlen, c->path, start_line,
			                 q == '"' ? "unterminated double quote"
			                          : "unterminated single quote",
			                 key);
		if (*c->p == q) {
			c->p++;
			break;
		}
		if (*c->p == '\n')
			c->line++;
		if (q == '"' && *c->p == '\\' && c->p + 1 < c->end) {
			char e = c->p[1];
			char r = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
			if (e == 'n' || e == 'r' || e == 't' || e == '\\' || e == '"') {
				value[(*vlen)++] = r;
				c->p += 2;
				continue;
			}
		}
		value[(*vlen)++] = *c->p++;
	}
	skip_blanks(c, 1);
	if (c->p < c->end && *c->p != '\n' && *c->p != '#')
		return set_error(c->err, c->errlen, c->path, c->line, "text after the closing quote",
		                 key);
	return 0;
}

/* An unquoted value: up to the end of the line or a '#' after a blank,
 * trailing blanks dropped. */
static void read_bare(cursor *c, char *value, size_t *vlen)
{
	const char *vs = c->p, *ve;
	while (c->p < c->end && *c->p != '\n' &&
	       !(*c->p == '#' && (c->p == vs || c->p[-1] == ' ' || c->p[-1] == '\t')))
		c->p++;
	ve = c->p;
	while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
		ve--;
	memcpy(value, vs, (size_t)(ve - vs));
	*vlen = (size_t)(ve - vs);
}

/* The next KEY=VALUE: 1 with a pair, 0 at the end, -1 with err set. */
static int read_pair(cursor *c, struct pair *out)
{
	char *key = NULL, *value = NULL;
	size_t vlen = 0;
	int start_line;

	for (;;) { /* blank and comment lines */
		skip_blanks(c, 1);
		if (c->p >= c->end)
			return 0;
		if (*c->p != '\n' && *c->p != '#')
			break;
		next_line(c);
	}
	start_line = c->line;
	if (read_key(c, &key))
		return -1;
	if (!(value = malloc((size_t)(c->end - c->p) + 1))) {
		snprintf(c->err, c->errlen, "%s: out of memory", c->path);
		goto fail;
	}
	skip_blanks(c, 0);
	if (c->p < c->end && (*c->p == '\'' || *c->p == '"')) {
		if (read_quoted(c, key, value, &vlen))
			goto fail;
	} else {
		read_bare(c, value, &vlen);
	}
	value[vlen] = '\0';
	if (memchr(value, '\0', vlen)) {
		set_error(c->err, c->errlen, c->path, start_line, "a NUL byte in the value", key);
		goto fail;
	}
	next_line(c); /* the rest: a comment */
	out->key = key;
	out->value = value;
	return 1;
fail:
	free(key);
	free(value);
	return -1;
}

/* Parse text into pairs; -1 with err set on a syntax error or no memory. */
static int parse(const char *path, const char *text, size_t len, struct pair **out, size_t *n_out,
                 char *err, size_t errlen)
{
	cursor c = {text, text + len, path, 1, err, errlen};
	struct pair *pairs = NULL, pair;
	size_t n = 0;
	int rc;

	while ((rc = read_pair(&c, &pair)) == 1) {
		struct pair *np = realloc(pairs, (n + 1) * sizeof *np);
		if (!np) {
			free(pair.key);
			free(pair.value);
			snprintf(err, errlen, "%s: out of memory", path);
			rc = -1;
			break;
		}
		pairs = np;
		pairs[n++] = pair;
	}
	if (rc == 0) {
		*out = pairs;
		*n_out = n;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		free(pairs[i].key);
		free(pairs[i].value);
	}
	free(pairs);
	return -1;
}

int cli_dotenv_load(const char *dir, char *err, size_t errlen)
{
	size_t plen = strlen(dir) + sizeof "/.env";
	char *path = malloc(plen), *text = NULL;
	struct pair *pairs = NULL;
	size_t n = 0, len = 0;
	FILE *f;
	int rc = -1;

	if (!path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(path, plen, "%s/.env", dir);
	f = fopen(path, "rb");
	if (!f) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(path);
		return rc;
	}
	text = malloc(DOTENV_MAX + 1);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	len = fread(text, 1, DOTENV_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (len > DOTENV_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, DOTENV_MAX);
		goto out;
	}
	if (parse(path, text, len, &pairs, &n, err, errlen))
		goto out;
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && setenv(pairs[i].key, pairs[i].value, 0) != 0) {
			snprintf(err, errlen, "%s: cannot set %s: %s", path, pairs[i].key, strerror(errno));
			rc = -1;
		}
		free(pairs[i].key);
		free(pairs[i].value);
	}
	free(pairs);
out:
	fclose(f);
	free(text);
	free(path);
	return rc;
}
