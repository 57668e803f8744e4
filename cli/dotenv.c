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

/* Parse text into pairs; -1 with err set on a syntax error or no memory. */
static int parse(const char *path, const char *text, size_t len, struct pair **out, size_t *n_out,
                 char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	int line = 1;
	struct pair *pairs = NULL;
	size_t n = 0;

	while (p < end) {
		const char *ks, *ke;
		char *key = NULL, *value = NULL;
		size_t vlen = 0;
		int start_line = line;

		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p < end && (*p == '\n' || *p == '#')) { /* blank or comment line */
			while (p < end && *p != '\n')
				p++;
			if (p < end)
				p++, line++;
			continue;
		}
		if (p >= end)
			break;
		if ((size_t)(end - p) > 7 && !strncmp(p, "export", 6) && (p[6] == ' ' || p[6] == '\t')) {
			p += 7;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
		}
		ks = p;
		if (p < end && is_key_start((unsigned char)*p))
			while (p < end && is_key_char((unsigned char)*p))
				p++;
		ke = p;
		if (ke == ks)
			goto bad_key;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || *p != '=') {
			char *k = strndup(ks, (size_t)(ke - ks));
			set_error(err, errlen, path, line, "expected KEY=VALUE", k);
			free(k);
			goto fail;
		}
		p++;
		key = strndup(ks, (size_t)(ke - ks));
		value = malloc((size_t)(end - p) + 1);
		if (!key || !value)
			goto nomem;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p < end && (*p == '\'' || *p == '"')) {
			char q = *p++;
			for (;;) {
				if (p >= end) {
					set_error(err, errlen, path, start_line,
					          q == '"' ? "unterminated double quote"
					                   : "unterminated single quote",
					          key);
					goto fail_kv;
				}
				if (*p == q) {
					p++;
					break;
				}
				if (*p == '\n')
					line++;
				if (q == '"' && *p == '\\' && p + 1 < end) {
					char c = p[1];
					char r = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
					if (c == 'n' || c == 'r' || c == 't' || c == '\\' || c == '"') {
						value[vlen++] = r;
						p += 2;
						continue;
					}
				}
				value[vlen++] = *p++;
			}
			while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
				p++;
			if (p < end && *p != '\n' && *p != '#') {
				set_error(err, errlen, path, line, "text after the closing quote", key);
				goto fail_kv;
			}
		} else {
			const char *vs = p;
			while (p < end && *p != '\n' && !(*p == '#' && (p == vs || p[-1] == ' ' || p[-1] == '\t')))
				p++;
			const char *ve = p;
			while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
				ve--;
			memcpy(value, vs, (size_t)(ve - vs));
			vlen = (size_t)(ve - vs);
		}
		value[vlen] = '\0';
		if (memchr(value, '\0', vlen)) {
			set_error(err, errlen, path, start_line, "a NUL byte in the value", key);
			goto fail_kv;
		}
		while (p < end && *p != '\n') /* the rest: a comment */
			p++;
		if (p < end)
			p++, line++;
		{
			struct pair *np = realloc(pairs, (n + 1) * sizeof *np);
			if (!np)
				goto nomem;
			pairs = np;
			pairs[n].key = key;
			pairs[n].value = value;
			n++;
		}
		continue;
	bad_key:
		set_error(err, errlen, path, line,
		          "expected a variable name ([A-Za-z_][A-Za-z0-9_.-]*) at the start of the line",
		          NULL);
		goto fail;
	nomem:
		snprintf(err, errlen, "%s: out of memory", path);
	fail_kv:
		free(key);
		free(value);
		goto fail;
	}
	*out = pairs;
	*n_out = n;
	return 0;
fail:
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
