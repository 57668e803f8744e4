/*
 * options.c - the options of the "command" runner: parsing and checking the
 * JSON object (every error names its key), and the argv templates.
 *
 * Options:
 *   testDir           string, default "tests": the test directory, relative
 *                     to the project directory (and, in the image, to the
 *                     function's working directory, the task root).
 *   list              argv run in the project directory to list the tests:
 *                     one id per line on stdout (a trailing \r is removed,
 *                     empty lines are skipped); or
 *   tests             a fixed array of test ids.  Exactly one of the two.
 *   run               argv run for one test, in the function's working
 *                     directory (required).
 *   skipExitCode      exit status meaning "skipped", 1..255, default 77.
 *   env               object of strings added to the environment of the
 *                     list and run commands.
 *   messageBytes      tail of stderr kept as a failure message (default 4096).
 *   outputLimitBytes  cap of stdout.log and stderr.log (default 16 MiB).
 *   include           more relative paths copied into the image.
 *
 * Templates: in every argv element "{id}", "{testDir}" and "{artifactsDir}"
 * are replaced, every occurrence ("list" knows only {testDir}); "{{" and
 * "}}" stand for literal braces, and any other brace is an error.
 */
#define _GNU_SOURCE
#include "command.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hypertest/common.h>
#include <jansson.h>

#define PREFIX "runner 'command': "
#define DEFAULT_MESSAGE_BYTES 4096
#define MAX_MESSAGE_BYTES (4u << 20) /* responses are at most 6 MB */
#define DEFAULT_OUTPUT_LIMIT (16ull << 20)
#define MAX_OUTPUT_LIMIT (1ull << 40)

/* ---- argv templates --------------------------------------------------------------- */

static const char *const placeholder_names[] = {"{id}", "{testDir}", "{artifactsDir}"};

int cmd_template_expand(const char *s, unsigned allowed, const char *const values[3],
                        htp_buf *out, const char **where)
{
	while (*s) {
		size_t plain = strcspn(s, "{}");
		if (out)
			htp_buf_add(out, s, plain);
		s += plain;
		if (!*s)
			break;
		if (s[0] == s[1]) { /* "{{" or "}}" */
			if (out)
				htp_buf_add(out, s, 1);
			s += 2;
			continue;
		}
		*where = s;
		if (s[0] == '}')
			return TPL_LONE_CLOSE;
		size_t i;
		for (i = 0; i < 3; i++)
			if (!strncmp(s, placeholder_names[i], strlen(placeholder_names[i])))
				break;
		if (i == 3)
			return TPL_UNKNOWN;
		if (!(allowed & (1u << i)))
			return TPL_NOT_HERE;
		if (out)
			htp_buf_add(out, values[i], strlen(values[i]));
		s += strlen(placeholder_names[i]);
	}
	return TPL_OK;
}

char **cmd_argv_expand(char **tpl, const char *const values[3])
{
	size_t n = 0;
	while (tpl[n])
		n++;
	char **argv = calloc(n + 1, sizeof *argv);
	if (!argv)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		htp_buf b = {0};
		const char *where;
		htp_buf_add(&b, "", 0);
		cmd_template_expand(tpl[i], PH_ALL, values, &b, &where); /* checked in CREATE */
		if (b.nomem) {
			free(b.data);
			htp_strv_free(argv);
			return NULL;
		}
		argv[i] = b.data;
	}
	return argv;
}

/* ---- parsing ---------------------------------------------------------------------- */

static const char *const option_names[] = {
	"testDir", "list", "tests", "run", "skipExitCode", "env", "messageBytes",
	"outputLimitBytes", "include", NULL};

/* Levenshtein distance, ASCII case ignored, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return (size_t)-1;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up_ = row[j];
			int same = (a[i - 1] | 0x20) == (b[j - 1] | 0x20);
			size_t best = diag + !same;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up_;
		}
	}
	return row[lb];
}

static int unknown_option(char **error, const char *key)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	for (size_t i = 0; option_names[i]; i++) {
		size_t d = edit_distance(key, option_names[i]);
		if (d < best_d)
			best_d = d, best = option_names[i];
	}
	size_t len = strlen(key);
	if (best && best_d <= 3 && best_d < len)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "unknown option '%s' (did you mean '%s'?)", key, best);
	return htp_errorf(error, HYPERTEST_ERR_CONFIG,
	                  PREFIX "unknown option '%s' (known: testDir, list, tests, run, skipExitCode, "
	                  "env, messageBytes, outputLimitBytes, include)",
	                  key);
}

/* A relative path without ".." that stays below its base. */
static int bad_relative_path(char **error, const char *key, const char *what,
                             const char *path)
{
	if (!*path)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG, PREFIX "option '%s': %s is empty",
		                  key, what);
	if (path[0] == '/')
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': %s '%s' must be relative to the project directory",
		                  key, what, path);
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option '%s': %s '%s' must not contain '..'", key,
			                  what, path);
		p += len;
		p += strspn(p, "/");
	}
	return 0;
}

/* An array of strings: copied to *out (NULL-terminated), with its length. */
static int opt_strings(char **error, json_t *v, const char *key, int non_empty,
                       char ***out, size_t *count)
{
	if (!json_is_array(v))
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': expected an array of strings", key);
	size_t n = json_array_size(v);
	if (non_empty && n == 0)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': expected a non-empty array of strings", key);
	char **s = calloc(n + 1, sizeof *s);
	if (!s)
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e)) {
			htp_strv_free(s);
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option '%s': expected an array of strings (element %zu is not "
			                  "a string)",
			                  key, i + 1);
		}
		if (!(s[i] = strdup(json_string_value(e)))) {
			htp_strv_free(s);
			return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		}
	}
	*out = s;
	if (count)
		*count = n;
	return 0;
}

static int opt_argv(char **error, json_t *v, const char *key, unsigned allowed,
                    char ***out)
{
	int rc = opt_strings(error, v, key, 1, out, NULL);
	if (rc)
		return rc;
	if (!(*out)[0][0])
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': the program (element 1) is empty", key);
	for (size_t i = 0; (*out)[i]; i++) {
		const char *where = NULL;
		const char *const none[3] = {"", "", ""};
		int t = cmd_template_expand((*out)[i], allowed, none, NULL, &where);
		if (t == TPL_OK)
			continue;
		if (t == TPL_LONE_CLOSE)
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option '%s': element %zu ('%s'): a single '}' (write '}}' "
			                  "for a literal brace)",
			                  key, i + 1, (*out)[i]);
		int len = (int)strcspn(where + 1, "{}") + 2;
		if (t == TPL_UNKNOWN)
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option '%s': element %zu ('%s'): unknown placeholder '%.*s' "
			                  "(known: {id}, {testDir}, {artifactsDir}; write '{{' and '}}' "
			                  "for literal braces)",
			                  key, i + 1, (*out)[i], where[len - 1] == '}' ? len : len - 1, where);
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': element %zu ('%s'): placeholder '%.*s' is not "
		                  "available here (only {testDir})",
		                  key, i + 1, (*out)[i], len, where);
	}
	return 0;
}

static int opt_int(char **error, json_t *v, const char *key, long long min,
                   long long max, long long *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': expected an integer from %lld to %lld", key,
		                  min, max);
	*out = json_integer_value(v);
	return 0;
}

static int opt_env(cmd_options *opt, json_t *v, char **error)
{
	if (!json_is_object(v))
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option 'env': expected an object of strings");
	opt->env = calloc(json_object_size(v) + 1, sizeof *opt->env);
	if (!opt->env)
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	size_t i = 0;
	const char *name;
	json_t *value;
	json_object_foreach(v, name, value) {
		if (!*name || strchr(name, '='))
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option 'env': invalid variable name '%s'", name);
		if (!json_is_string(value))
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option 'env': variable '%s': expected a string",
			                  name);
		if (asprintf(&opt->env[i], "%s=%s", name, json_string_value(value)) < 0) {
			opt->env[i] = NULL;
			return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		}
		if (!strcmp(name, "PATH"))
			opt->path_env = opt->env[i] + 5;
		i++;
	}
	return 0;
}

static int parse_options(cmd_options *opt, json_t *obj, char **error)
{
	const char *key;
	json_t *v;
	long long n;
	int rc;

	json_object_foreach(obj, key, v) {
		size_t i;
		for (i = 0; option_names[i] && strcmp(key, option_names[i]); i++)
			;
		if (!option_names[i])
			return unknown_option(error, key);
	}

	v = json_object_get(obj, "testDir");
	if (v && !json_is_string(v))
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option 'testDir': expected a string");
	opt->test_dir = strdup(v ? json_string_value(v) : "tests");
	if (!opt->test_dir)
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	if ((rc = bad_relative_path(error, "testDir", "the test directory", opt->test_dir)))
		return rc;
	for (size_t len = strlen(opt->test_dir); len > 1 && opt->test_dir[len - 1] == '/';)
		opt->test_dir[--len] = '\0';

	json_t *list = json_object_get(obj, "list"), *tests = json_object_get(obj, "tests");
	if (list && tests)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "options 'list' and 'tests' exclude each other: give one of them");
	if (!list && !tests)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option 'list' (a command that prints the test ids) or 'tests' "
		                  "(an array of test ids) is required");
	if (list && (rc = opt_argv(error, list, "list", PH_TEST_DIR, &opt->list)))
		return rc;
	if (tests) {
		if ((rc = opt_strings(error, tests, "tests", 0, &opt->tests, &opt->n_tests)))
			return rc;
		json_t *seen = json_object(); /* a hash set: thousands of ids */
		if (!seen)
			return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		for (size_t i = 0; i < opt->n_tests; i++) {
			rc = 0;
			if (!opt->tests[i][0])
				rc = htp_errorf(error, HYPERTEST_ERR_CONFIG,
				                PREFIX "option 'tests': element %zu is empty",
				                i + 1);
			else if (json_object_get(seen, opt->tests[i]))
				rc = htp_errorf(error, HYPERTEST_ERR_CONFIG,
				                PREFIX "option 'tests': element %zu repeats '%s'",
				                i + 1, opt->tests[i]);
			else if (json_object_set_new_nocheck(seen, opt->tests[i], json_true()))
				rc = htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
			if (rc) {
				json_decref(seen);
				return rc;
			}
		}
		json_decref(seen);
	}

	v = json_object_get(obj, "run");
	if (!v)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option 'run' (the command that runs one test) is required");
	if ((rc = opt_argv(error, v, "run", PH_ALL, &opt->run)))
		return rc;

	opt->skip_code = 77;
	if ((v = json_object_get(obj, "skipExitCode"))) {
		if ((rc = opt_int(error, v, "skipExitCode", 1, 255, &n)))
			return rc;
		opt->skip_code = (int)n;
	}
	opt->message_bytes = DEFAULT_MESSAGE_BYTES;
	if ((v = json_object_get(obj, "messageBytes"))) {
		if ((rc = opt_int(error, v, "messageBytes", 0, MAX_MESSAGE_BYTES, &n)))
			return rc;
		opt->message_bytes = (size_t)n;
	}
	opt->output_limit = DEFAULT_OUTPUT_LIMIT;
	if ((v = json_object_get(obj, "outputLimitBytes"))) {
		if ((rc = opt_int(error, v, "outputLimitBytes", 0, (long long)MAX_OUTPUT_LIMIT, &n)))
			return rc;
		opt->output_limit = (uint64_t)n;
	}
	if ((v = json_object_get(obj, "env")) && (rc = opt_env(opt, v, error)))
		return rc;
	if ((v = json_object_get(obj, "include"))) {
		if ((rc = opt_strings(error, v, "include", 0, &opt->include, NULL)))
			return rc;
		for (char **p = opt->include; *p; p++)
			if ((rc = bad_relative_path(error, "include", "path", *p)))
				return rc;
	}
	return 0;
}

void cmd_options_free(cmd_options *o)
{
	free(o->test_dir);
	htp_strv_free(o->list);
	htp_strv_free(o->tests);
	htp_strv_free(o->run);
	htp_strv_free(o->env);
	htp_strv_free(o->include);
	memset(o, 0, sizeof *o);
}

int cmd_options_parse(cmd_options *o, const char *json, char **error)
{
	memset(o, 0, sizeof *o);
	*error = NULL;
	json_error_t jerr;
	json_t *root = json_loads(json && *json ? json : "{}", JSON_REJECT_DUPLICATES, &jerr);
	int rc;
	if (!root)
		rc = htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                PREFIX "invalid options (line %d, column %d): %s", jerr.line,
		                jerr.column, jerr.text);
	else if (!json_is_object(root))
		rc = htp_errorf(error, HYPERTEST_ERR_CONFIG, PREFIX "options: expected an object");
	else
		rc = parse_options(o, root, error);
	json_decref(root);
	if (rc)
		cmd_options_free(o);
	return rc;
}
