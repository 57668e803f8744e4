/*
 * options.c - checking a runner's JSON options: unknown keys (with the
 * nearest known one as a suggestion), strings, relative paths and arrays of
 * strings; every message names the key.
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int htp_options_load(const char *prefix, const char *json, json_t **obj, char **error)
{
	json_error_t jerr;
	*obj = NULL;
	*error = NULL;
	json_t *root = json_loads(json && *json ? json : "{}", JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  "%sinvalid options (line %d, column %d): %s", prefix, jerr.line,
		                  jerr.column, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return htp_errorf(error, HYPERTEST_ERR_CONFIG, "%soptions: expected an object",
		                  prefix);
	}
	*obj = root;
	return 0;
}

/* Edit distance with ASCII case ignored (two rows; names are short). */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return (size_t)-1;
	size_t prev[64], cur[64];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + ((a[i - 1] | 0x20) != (b[j - 1] | 0x20));
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof *prev);
	}
	return prev[lb];
}

int htp_options_known(const char *prefix, json_t *obj, const char *const known[], char **error)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		size_t i, best = 0, best_d = (size_t)-1;
		for (i = 0; known[i] && strcmp(key, known[i]); i++) {
			size_t d = distance(key, known[i]);
			if (d < best_d)
				best_d = d, best = i;
		}
		if (known[i])
			continue;
		if (best_d <= 3 && best_d < strlen(key))
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  "%sunknown option '%s' (did you mean '%s'?)", prefix, key,
			                  known[best]);
		htp_buf list = {0};
		for (i = 0; known[i]; i++) {
			htp_buf_str(&list, i ? ", " : "");
			htp_buf_str(&list, known[i]);
		}
		int rc = htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                    "%sunknown option '%s' (known: %s)", prefix, key,
		                    list.data ? list.data : "");
		free(list.data);
		return rc;
	}
	return 0;
}

int htp_opt_string(const char *prefix, json_t *obj, const char *key, const char *def,
                   char **out, char **error)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v && !json_is_string(v))
		return htp_errorf(error, HYPERTEST_ERR_CONFIG, "%soption '%s': expected a string",
		                  prefix, key);
	const char *s = v ? json_string_value(v) : def;
	if (!s)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG, "%soption '%s' is required", prefix,
		                  key);
	if (!*s)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  "%soption '%s': expected a non-empty string", prefix, key);
	if (!(*out = strdup(s)))
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, "%sout of memory", prefix);
	return 0;
}

/* 0 when path is relative, not empty and free of ".." components. */
static int check_relpath(const char *prefix, const char *key, const char *path, char **error)
{
	if (!*path)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG, "%soption '%s': empty path", prefix,
		                  key);
	if (path[0] == '/')
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  "%soption '%s': '%s' must be relative to the project directory",
		                  prefix, key, path);
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && !strncmp(p, "..", 2))
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  "%soption '%s': '%s' must not contain '..'", prefix, key,
			                  path);
		p += len;
		p += strspn(p, "/");
	}
	return 0;
}

static void strip_slashes(char *s)
{
	for (size_t n = strlen(s); n > 1 && s[n - 1] == '/';)
		s[--n] = '\0';
}

int htp_opt_relpath(const char *prefix, json_t *obj, const char *key, const char *def,
                    char **out, char **error)
{
	int rc = htp_opt_string(prefix, obj, key, def, out, error);
	if (!rc && (rc = check_relpath(prefix, key, *out, error))) {
		free(*out);
		*out = NULL;
	}
	if (!rc)
		strip_slashes(*out);
	return rc;
}

int htp_opt_strings(const char *prefix, json_t *obj, const char *key, int relpaths,
                    char ***out, char **error)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (v && !json_is_array(v))
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  "%soption '%s': expected an array of strings", prefix, key);
	size_t n = v ? json_array_size(v) : 0;
	char **s = calloc(n + 1, sizeof *s);
	if (!s)
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, "%sout of memory", prefix);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		int rc = 0;
		if (!json_is_string(e))
			rc = htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                "%soption '%s': element %zu is not a string", prefix, key,
			                i + 1);
		else if (!(s[i] = strdup(json_string_value(e))))
			rc = htp_errorf(error, HYPERTEST_ERR_NOMEM, "%sout of memory", prefix);
		else if (relpaths && !(rc = check_relpath(prefix, key, s[i], error)))
			strip_slashes(s[i]);
		if (rc) {
			htp_strv_free(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}
