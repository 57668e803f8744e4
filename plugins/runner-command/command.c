/*
 * command.c - the "command" test runner: runs any test tool, one process per
 * test, never through a shell (the process handling is in spawn.c).
 *
 * Options (the runner's "options" object):
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
 *   outputLimitBytes  cap of stdout.log and stderr.log (default 16 MiB);
 *                     the rest is read and dropped, and a line
 *                     "[output truncated after N bytes]" is appended.
 *   include           more relative paths copied into the image.
 *
 * In every argv element "{id}", "{testDir}" and "{artifactsDir}" are
 * replaced (every occurrence; "list" knows only {testDir}); "{{" and "}}"
 * stand for literal braces, and any other brace is an error.  argv[0] is a
 * path when it contains a slash, else it is looked up in PATH (the PATH of
 * "env" if it sets one).  The program is started with execve, so a script
 * needs a "#!" line.
 *
 * A test passes with exit status 0, is skipped with skipExitCode and fails
 * otherwise; its stdout and stderr go to stdout.log and stderr.log in the
 * artifacts directory.
 */
#define _GNU_SOURCE
#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hypertest/plugin.h>
#include <jansson.h>

extern char **environ;

/* enum hypertest_check_status of hypertest.h, which a plugin does not include */
enum { CHECK_OK = 0, CHECK_WARNING = 1, CHECK_FAILED = 2 };

#define PREFIX "runner 'command': "
#define DEFAULT_MESSAGE_BYTES 4096
#define MAX_MESSAGE_BYTES (4u << 20)            /* responses are at most 6 MB */
#define DEFAULT_OUTPUT_LIMIT (16ull << 20)
#define MAX_OUTPUT_LIMIT (1ull << 40)
#define LIST_OUTPUT_MAX (64ull << 20)

static hypertest_upcalls up; /* bound once by hypertest_plugin_init */

typedef struct runner {
	hypertest_core *core;
	char *test_dir;
	char **list;    /* argv template, or NULL */
	char **tests;   /* fixed ids, or NULL */
	size_t n_tests;
	char **run;     /* argv template */
	int skip_code;
	char **env;     /* "NAME=VALUE" added to the environment */
	const char *path_env; /* PATH of env, or NULL */
	size_t message_bytes;
	uint64_t output_limit;
	char **include;
} runner;

/* ---- small helpers -------------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int fail(hypertest_core *core, int code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (up.set_error)
		up.set_error(core, code, msg ? msg : PREFIX "out of memory");
	free(msg);
	return code;
}

static void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static char *path_join(const char *dir, const char *rel)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", dir, rel) < 0)
		return NULL;
	return s;
}

static const char *project_dir(const runner *r)
{
	const char *p = up.core_str ? up.core_str(r->core, HYPERTEST_CORE_PROJECT_DIR) : NULL;
	return (p && *p) ? p : ".";
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A growable string. */
typedef struct strbuf {
	char *p;
	size_t len, cap;
	int nomem;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->nomem = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* Length of the valid UTF-8 character at p (n bytes left), 0 if invalid. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return c ? 1 : 0; /* NUL cannot travel in a C string */
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	unsigned cp = c & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* The stderr tail as a message: starting at a character boundary when it was
 * cut, without trailing newlines, invalid bytes as U+FFFD, at most max bytes. */
static char *tail_message(const char *tail, size_t n, int was_cut, size_t max)
{
	const unsigned char *p = (const unsigned char *)tail;
	for (int i = 0; was_cut && i < 3 && n > 0 && (p[0] & 0xC0) == 0x80; i++)
		p++, n--;
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	strbuf b = {0};
	sb_add(&b, "", 0);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_char(p + i, n - i);
		if (len) {
			sb_add(&b, (const char *)p + i, len);
			i += len;
		} else {
			sb_add(&b, "\xEF\xBF\xBD", 3);
			i++;
		}
	}
	if (b.nomem) {
		free(b.p);
		return NULL;
	}
	if (b.len > max) { /* replacements made it longer: cut again in front */
		size_t start = b.len - max;
		while (start < b.len && ((unsigned char)b.p[start] & 0xC0) == 0x80)
			start++;
		memmove(b.p, b.p + start, b.len - start + 1);
	}
	return b.p;
}

/* ---- argv templates --------------------------------------------------------------- */

static const char *const placeholder_names[] = {"{id}", "{testDir}", "{artifactsDir}"};
enum { PH_ID = 1, PH_TEST_DIR = 2, PH_ARTIFACTS = 4, PH_ALL = 7 };

enum { TPL_OK = 0, TPL_UNKNOWN, TPL_NOT_HERE, TPL_LONE_CLOSE };

/* Expand s into out (or only check it when out is NULL).  Placeholders not in
 * `allowed` are errors; *where points at the offending brace. */
static int template_expand(const char *s, unsigned allowed, const char *const values[3],
                           strbuf *out, const char **where)
{
	while (*s) {
		size_t plain = strcspn(s, "{}");
		if (out)
			sb_add(out, s, plain);
		s += plain;
		if (!*s)
			break;
		if (s[0] == s[1]) { /* "{{" or "}}" */
			if (out)
				sb_add(out, s, 1);
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
			sb_add(out, values[i], strlen(values[i]));
		s += strlen(placeholder_names[i]);
	}
	return TPL_OK;
}

/* argv from a template; NULL when out of memory. */
static char **argv_expand(char **tpl, const char *const values[3])
{
	size_t n = 0;
	while (tpl[n])
		n++;
	char **argv = calloc(n + 1, sizeof *argv);
	if (!argv)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		strbuf b = {0};
		const char *where;
		sb_add(&b, "", 0);
		template_expand(tpl[i], PH_ALL, values, &b, &where); /* checked in CREATE */
		if (b.nomem) {
			free(b.p);
			strv_free(argv);
			return NULL;
		}
		argv[i] = b.p;
	}
	return argv;
}

/* The environment of the commands: ours with the "env" option on top. */
static char **env_build(const runner *r)
{
	size_t n = 0, m = 0;
	for (char **e = environ; e && *e; e++)
		n++;
	for (char **e = r->env; e && *e; e++)
		m++;
	char **envp = calloc(n + m + 1, sizeof *envp);
	if (!envp)
		return NULL;
	size_t k = 0;
	for (char **e = environ; e && *e; e++) {
		int overridden = 0;
		for (char **o = r->env; o && *o && !overridden; o++) {
			size_t len = strcspn(*o, "=") + 1; /* "NAME=" */
			overridden = !strncmp(*e, *o, len);
		}
		if (!overridden)
			envp[k++] = *e;
	}
	for (char **o = r->env; o && *o; o++)
		envp[k++] = *o;
	return envp; /* borrowed strings: free the array only */
}

/* ---- options ---------------------------------------------------------------------- */

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

static int unknown_option(hypertest_core *core, const char *key)
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
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "unknown option '%s' (did you mean '%s'?)", key, best);
	return fail(core, HYPERTEST_ERR_CONFIG,
	            PREFIX "unknown option '%s' (known: testDir, list, tests, run, skipExitCode, "
	                   "env, messageBytes, outputLimitBytes, include)",
	            key);
}

/* A relative path without ".." that stays below its base. */
static int bad_relative_path(hypertest_core *core, const char *key, const char *what,
                             const char *path)
{
	if (!*path)
		return fail(core, HYPERTEST_ERR_CONFIG, PREFIX "option '%s': %s is empty", key, what);
	if (path[0] == '/')
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option '%s': %s '%s' must be relative to the project directory",
		            key, what, path);
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return fail(core, HYPERTEST_ERR_CONFIG,
			            PREFIX "option '%s': %s '%s' must not contain '..'", key, what, path);
		p += len;
		p += strspn(p, "/");
	}
	return 0;
}

/* An array of strings: copied to *out (NULL-terminated), with its length. */
static int opt_strings(hypertest_core *core, json_t *v, const char *key, int non_empty,
                       char ***out, size_t *count)
{
	if (!json_is_array(v))
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option '%s': expected an array of strings", key);
	size_t n = json_array_size(v);
	if (non_empty && n == 0)
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option '%s': expected a non-empty array of strings", key);
	char **s = calloc(n + 1, sizeof *s);
	if (!s)
		return fail(core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e)) {
			strv_free(s);
			return fail(core, HYPERTEST_ERR_CONFIG,
			            PREFIX "option '%s': expected an array of strings (element %zu is not "
			                   "a string)",
			            key, i + 1);
		}
		if (!(s[i] = strdup(json_string_value(e)))) {
			strv_free(s);
			return fail(core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		}
	}
	*out = s;
	if (count)
		*count = n;
	return 0;
}

static int opt_argv(hypertest_core *core, json_t *v, const char *key, unsigned allowed,
                    char ***out)
{
	int rc = opt_strings(core, v, key, 1, out, NULL);
	if (rc)
		return rc;
	if (!(*out)[0][0])
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option '%s': the program (element 1) is empty", key);
	for (size_t i = 0; (*out)[i]; i++) {
		const char *where = NULL;
		const char *const none[3] = {"", "", ""};
		int t = template_expand((*out)[i], allowed, none, NULL, &where);
		if (t == TPL_OK)
			continue;
		if (t == TPL_LONE_CLOSE)
			return fail(core, HYPERTEST_ERR_CONFIG,
			            PREFIX "option '%s': element %zu ('%s'): a single '}' (write '}}' "
			                   "for a literal brace)",
			            key, i + 1, (*out)[i]);
		int len = (int)strcspn(where + 1, "{}") + 2;
		if (t == TPL_UNKNOWN)
			return fail(core, HYPERTEST_ERR_CONFIG,
			            PREFIX "option '%s': element %zu ('%s'): unknown placeholder '%.*s' "
			                   "(known: {id}, {testDir}, {artifactsDir}; write '{{' and '}}' "
			                   "for literal braces)",
			            key, i + 1, (*out)[i], where[len - 1] == '}' ? len : len - 1, where);
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option '%s': element %zu ('%s'): placeholder '%.*s' is not "
		                   "available here (only {testDir})",
		            key, i + 1, (*out)[i], len, where);
	}
	return 0;
}

static int opt_int(hypertest_core *core, json_t *v, const char *key, long long min,
                   long long max, long long *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option '%s': expected an integer from %lld to %lld", key, min, max);
	*out = json_integer_value(v);
	return 0;
}

static int opt_env(runner *r, json_t *v)
{
	if (!json_is_object(v))
		return fail(r->core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option 'env': expected an object of strings");
	r->env = calloc(json_object_size(v) + 1, sizeof *r->env);
	if (!r->env)
		return fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	size_t i = 0;
	const char *name;
	json_t *value;
	json_object_foreach(v, name, value) {
		if (!*name || strchr(name, '='))
			return fail(r->core, HYPERTEST_ERR_CONFIG,
			            PREFIX "option 'env': invalid variable name '%s'", name);
		if (!json_is_string(value))
			return fail(r->core, HYPERTEST_ERR_CONFIG,
			            PREFIX "option 'env': variable '%s': expected a string", name);
		if (asprintf(&r->env[i], "%s=%s", name, json_string_value(value)) < 0) {
			r->env[i] = NULL;
			return fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		}
		if (!strcmp(name, "PATH"))
			r->path_env = r->env[i] + 5;
		i++;
	}
	return 0;
}

static int parse_options(runner *r, json_t *o)
{
	hypertest_core *core = r->core;
	const char *key;
	json_t *v;
	long long n;
	int rc;

	json_object_foreach(o, key, v) {
		size_t i;
		for (i = 0; option_names[i] && strcmp(key, option_names[i]); i++)
			;
		if (!option_names[i])
			return unknown_option(core, key);
	}

	v = json_object_get(o, "testDir");
	if (v && !json_is_string(v))
		return fail(core, HYPERTEST_ERR_CONFIG, PREFIX "option 'testDir': expected a string");
	r->test_dir = strdup(v ? json_string_value(v) : "tests");
	if (!r->test_dir)
		return fail(core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	if ((rc = bad_relative_path(core, "testDir", "the test directory", r->test_dir)))
		return rc;
	for (size_t len = strlen(r->test_dir); len > 1 && r->test_dir[len - 1] == '/';)
		r->test_dir[--len] = '\0';

	json_t *list = json_object_get(o, "list"), *tests = json_object_get(o, "tests");
	if (list && tests)
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "options 'list' and 'tests' exclude each other: give one of them");
	if (!list && !tests)
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option 'list' (a command that prints the test ids) or 'tests' "
		                   "(an array of test ids) is required");
	if (list && (rc = opt_argv(core, list, "list", PH_TEST_DIR, &r->list)))
		return rc;
	if (tests) {
		if ((rc = opt_strings(core, tests, "tests", 0, &r->tests, &r->n_tests)))
			return rc;
		for (size_t i = 0; i < r->n_tests; i++) {
			if (!r->tests[i][0])
				return fail(core, HYPERTEST_ERR_CONFIG,
				            PREFIX "option 'tests': element %zu is empty", i + 1);
			for (size_t j = 0; j < i; j++)
				if (!strcmp(r->tests[i], r->tests[j]))
					return fail(core, HYPERTEST_ERR_CONFIG,
					            PREFIX "option 'tests': element %zu repeats '%s'", i + 1,
					            r->tests[i]);
		}
	}

	v = json_object_get(o, "run");
	if (!v)
		return fail(core, HYPERTEST_ERR_CONFIG,
		            PREFIX "option 'run' (the command that runs one test) is required");
	if ((rc = opt_argv(core, v, "run", PH_ALL, &r->run)))
		return rc;

	r->skip_code = 77;
	if ((v = json_object_get(o, "skipExitCode"))) {
		if ((rc = opt_int(core, v, "skipExitCode", 1, 255, &n)))
			return rc;
		r->skip_code = (int)n;
	}
	r->message_bytes = DEFAULT_MESSAGE_BYTES;
	if ((v = json_object_get(o, "messageBytes"))) {
		if ((rc = opt_int(core, v, "messageBytes", 0, MAX_MESSAGE_BYTES, &n)))
			return rc;
		r->message_bytes = (size_t)n;
	}
	r->output_limit = DEFAULT_OUTPUT_LIMIT;
	if ((v = json_object_get(o, "outputLimitBytes"))) {
		if ((rc = opt_int(core, v, "outputLimitBytes", 0, (long long)MAX_OUTPUT_LIMIT, &n)))
			return rc;
		r->output_limit = (uint64_t)n;
	}
	if ((v = json_object_get(o, "env")) && (rc = opt_env(r, v)))
		return rc;
	if ((v = json_object_get(o, "include"))) {
		if ((rc = opt_strings(core, v, "include", 0, &r->include, NULL)))
			return rc;
		for (char **p = r->include; *p; p++)
			if ((rc = bad_relative_path(core, "include", "path", *p)))
				return rc;
	}
	return 0;
}

/* ---- operations ------------------------------------------------------------------- */

static void op_destroy(void *self)
{
	runner *r = self;
	if (!r)
		return;
	free(r->test_dir);
	strv_free(r->list);
	strv_free(r->tests);
	strv_free(r->run);
	strv_free(r->env);
	strv_free(r->include);
	free(r);
}

static int op_create(hypertest_core *core, const char *options_json, void **self)
{
	*self = NULL;
	runner *r = calloc(1, sizeof *r);
	if (!r)
		return fail(core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	r->core = core;
	json_error_t jerr;
	json_t *o = json_loads(options_json && *options_json ? options_json : "{}",
	                       JSON_REJECT_DUPLICATES, &jerr);
	int rc;
	if (!o)
		rc = fail(core, HYPERTEST_ERR_CONFIG, PREFIX "invalid options (line %d, column %d): %s",
		          jerr.line, jerr.column, jerr.text);
	else if (!json_is_object(o))
		rc = fail(core, HYPERTEST_ERR_CONFIG, PREFIX "options: expected an object");
	else
		rc = parse_options(r, o);
	json_decref(o);
	if (rc) {
		op_destroy(r);
		return rc;
	}
	*self = r;
	return 0;
}

static const char *op_test_dir(void *self)
{
	return ((runner *)self)->test_dir;
}

static int check_line(runner *r, const char *p, size_t len, size_t line)
{
	if (memchr(p, '\0', len))
		return fail(r->core, HYPERTEST_ERR_RUNNER,
		            PREFIX "list command '%s': line %zu contains a NUL byte", r->list[0], line);
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_char((const unsigned char *)p + i, len - i)))
			return fail(r->core, HYPERTEST_ERR_RUNNER,
			            PREFIX "list command '%s': line %zu is not valid UTF-8 text",
			            r->list[0], line);
	return 0;
}

/* Hand {"id": id} to the core. */
static int add_context(runner *r, hypertest_list *list, const char *id, size_t len)
{
	json_t *o = json_pack("{s:s%}", "id", id, len);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	int rc = up.list_add(list, text);
	free(text);
	return rc;
}

/* Say why a command did not end well (NULL when it exited 0). */
static char *outcome_text(const cmd_spawn *sp, const char *program)
{
	char *s = NULL, sigbuf[32];
	int n = 0;
	if (sp->start_errno)
		n = asprintf(&s, "cannot run '%s': %s%s", program,
		             sp->start_chdir ? "cannot enter its directory: " : "",
		             strerror(sp->start_errno));
	else if (sp->status_lost)
		n = asprintf(&s, "the exit status of '%s' was lost (is SIGCHLD ignored?)", program);
	else if (WIFSIGNALED(sp->status))
		n = asprintf(&s, "killed by signal %s",
		             cmd_signal_name(WTERMSIG(sp->status), sigbuf, sizeof sigbuf));
	else if (WIFEXITED(sp->status) && WEXITSTATUS(sp->status) != 0)
		n = asprintf(&s, "exited with status %d", WEXITSTATUS(sp->status));
	return n < 0 ? NULL : s;
}

static char *err_tail(const runner *r, const cmd_sink *err)
{
	size_t n;
	const char *t = cmd_sink_tail(err, &n);
	return tail_message(t, n, err->total > n, r->message_bytes);
}

static int run_list(runner *r, hypertest_list *list)
{
	const char *pdir = project_dir(r);
	const char *const values[3] = {"", r->test_dir, ""};
	char **argv = argv_expand(r->list, values);
	char **envp = env_build(r);
	char *path = NULL;
	cmd_sink out, err;
	int rc = cmd_sink_init(&out, -1, LIST_OUTPUT_MAX, 0) |
	         cmd_sink_init(&err, -1, 0, r->message_bytes);
	if (!argv || !envp || rc) {
		rc = fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}
	cmd_spawn sp = {.argv = argv, .envp = envp, .cwd = pdir, .out = &out, .err = &err};
	int e = cmd_find_program(argv[0], r->path_env ? r->path_env : getenv("PATH"), pdir, 0,
	                         &path);
	if (e)
		sp.start_errno = e;
	else if ((e = cmd_spawn_run((sp.path = path, &sp))))
		sp.start_errno = e;
	char *why = outcome_text(&sp, argv[0]);
	if (why) {
		char *tail = err_tail(r, &err);
		rc = fail(r->core, HYPERTEST_ERR_RUNNER, PREFIX "list command '%s' failed: %s%s%s",
		          argv[0], why, tail && *tail ? ": " : "", tail ? tail : "");
		free(tail);
		free(why);
		goto done;
	}
	if (out.total > out.kept || out.nomem) {
		rc = fail(r->core, HYPERTEST_ERR_RUNNER,
		          PREFIX "list command '%s' printed more than %llu bytes", argv[0],
		          (unsigned long long)LIST_OUTPUT_MAX);
		goto done;
	}
	/* check every line before the first is added: all or nothing */
	size_t count = 0;
	for (int adding = 0; adding < 2 && !rc; adding++) {
		size_t line = 0;
		for (const char *p = out.mem ? out.mem : "", *end = p + out.mem_len; p < end && !rc;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			line++;
			if (len > 0 && p[len - 1] == '\r')
				len--;
			if (len > 0 && adding) {
				rc = add_context(r, list, p, len);
				count++;
			} else if (len > 0) {
				rc = check_line(r, p, len, line);
			}
			if (!nl)
				break;
			p = nl + 1;
		}
	}
	if (!rc && count == 0)
		rc = fail(r->core, HYPERTEST_ERR_EMPTY,
		          PREFIX "list command '%s' printed no test ids (one per line expected)",
		          argv[0]);
done:
	free(path);
	strv_free(argv);
	free(envp);
	cmd_sink_free(&out);
	cmd_sink_free(&err);
	return rc;
}

static int op_list_tests(void *self, hypertest_list *list)
{
	runner *r = self;
	if (!up.list_add)
		return fail(r->core, HYPERTEST_ERR_UNSUPPORTED, PREFIX "the core cannot receive tests");
	if (r->list)
		return run_list(r, list);
	if (r->n_tests == 0)
		return fail(r->core, HYPERTEST_ERR_EMPTY, PREFIX "option 'tests' lists no test");
	for (size_t i = 0; i < r->n_tests; i++) {
		int rc = add_context(r, list, r->tests[i], strlen(r->tests[i]));
		if (rc)
			return rc;
	}
	return 0;
}

static int add_to_layer(runner *r, hypertest_layer *layer, const char *key, const char *rel)
{
	char *src = path_join(project_dir(r), rel);
	if (!src)
		return fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	struct stat st;
	int rc = stat(src, &st) != 0 ? fail(r->core, HYPERTEST_ERR_NOT_FOUND,
	                                    PREFIX "option '%s': '%s': %s", key, src,
	                                    strerror(errno))
	                             : up.layer_add(layer, src, rel);
	free(src);
	return rc;
}

static int op_image_content(void *self, hypertest_layer *layer)
{
	runner *r = self;
	if (!up.layer_add)
		return fail(r->core, HYPERTEST_ERR_UNSUPPORTED, PREFIX "the core cannot build layers");
	int rc = add_to_layer(r, layer, "testDir", r->test_dir);
	for (char **p = r->include; !rc && p && *p; p++)
		rc = add_to_layer(r, layer, "include", *p);
	return rc;
}

static int open_log(runner *r, const char *dir, const char *name, int *fd)
{
	char *path = path_join(dir, name);
	if (!path)
		return fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;
	if (*fd < 0)
		rc = fail(r->core, HYPERTEST_ERR_IO, PREFIX "cannot create '%s': %s", path,
		          strerror(errno));
	free(path);
	return rc;
}

static void set_result(runner *r, hypertest_result *result, const char *id,
                       const cmd_spawn *sp, const cmd_sink *err, const char *program,
                       int64_t duration)
{
	struct stat st;
	up.result_set_str(result, HYPERTEST_RESULT_NAME, id);
	up.result_set_str(result, HYPERTEST_RESULT_FILE_PATH,
	                  stat(id, &st) == 0 && S_ISREG(st.st_mode) ? id : r->test_dir);
	up.result_set_duration(result, duration);
	int code = (!sp->start_errno && !sp->status_lost && WIFEXITED(sp->status))
	               ? WEXITSTATUS(sp->status) : -1;
	if (code == 0 || code == r->skip_code) {
		up.result_set_status(result, code == 0 ? HYPERTEST_STATUS_SUCCESS
		                                       : HYPERTEST_STATUS_SKIPPED);
		return;
	}
	up.result_set_status(result, HYPERTEST_STATUS_FAILED);
	char *why = outcome_text(sp, program);
	char *tail = err_tail(r, err);
	char *msg = NULL;
	if (!tail || !*tail || sp->start_errno)
		msg = NULL;
	else if (code > 0)
		msg = strdup(tail);
	else if (asprintf(&msg, "%s\n%s", why ? why : "failed", tail) < 0)
		msg = NULL;
	up.result_set_str(result, HYPERTEST_RESULT_MESSAGE, msg ? msg : why ? why : "failed");
	free(msg);
	free(tail);
	free(why);
}

static int op_run_test(void *self, const char *context_json, const char *artifacts_dir,
                       hypertest_result *result)
{
	runner *r = self;
	if (!up.result_set_status || !up.result_set_str || !up.result_set_duration)
		return fail(r->core, HYPERTEST_ERR_UNSUPPORTED, PREFIX "the core cannot take results");
	json_error_t jerr;
	json_t *ctx = json_loads(context_json ? context_json : "", 0, &jerr);
	json_t *jid = json_object_get(ctx, "id");
	if (!json_is_string(jid) || !json_string_length(jid)) {
		int rc = ctx ? fail(r->core, HYPERTEST_ERR_INVALID,
		                    PREFIX "test context: expected an object with a string \"id\"")
		             : fail(r->core, HYPERTEST_ERR_INVALID,
		                    PREFIX "test context is not JSON (column %d): %s", jerr.column,
		                    jerr.text);
		json_decref(ctx);
		return rc;
	}
	int out_fd = -1, err_fd = -1, rc;
	char *id = strdup(json_string_value(jid));
	json_decref(ctx);
	const char *const values[3] = {id ? id : "", r->test_dir, artifacts_dir};
	char **argv = id ? argv_expand(r->run, values) : NULL;
	char **envp = env_build(r);
	char *path = NULL;
	cmd_sink out, err;
	memset(&out, 0, sizeof out);
	memset(&err, 0, sizeof err);
	if (!argv || !envp) {
		rc = fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}
	if ((rc = open_log(r, artifacts_dir, "stdout.log", &out_fd)) ||
	    (rc = open_log(r, artifacts_dir, "stderr.log", &err_fd)))
		goto done;
	if (cmd_sink_init(&out, out_fd, r->output_limit, 0) ||
	    cmd_sink_init(&err, err_fd, r->output_limit, r->message_bytes)) {
		rc = fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}

	int64_t start = now_ms();
	cmd_spawn sp = {.argv = argv, .envp = envp, .out = &out, .err = &err};
	int e = cmd_find_program(argv[0], r->path_env ? r->path_env : getenv("PATH"), NULL, 0,
	                         &path);
	if (e)
		sp.start_errno = e;
	else if ((e = cmd_spawn_run((sp.path = path, &sp))))
		sp.start_errno = e;
	int64_t duration = now_ms() - start;

	if (sp.start_errno) { /* leave the reason in the artifacts too */
		char *why = outcome_text(&sp, argv[0]);
		if (why) {
			dprintf(err_fd, "%s\n", why);
			free(why);
		}
	}
	const char *logs[2] = {"stdout.log", "stderr.log"};
	cmd_sink *sinks[2] = {&out, &err};
	for (int i = 0; i < 2; i++) {
		int werr = cmd_sink_finish(sinks[i]);
		if (werr && up.log) {
			char *m = NULL;
			if (asprintf(&m, PREFIX "test '%s': writing %s: %s", id, logs[i],
			             strerror(werr)) >= 0)
				up.log(r->core, HYPERTEST_LOG_WARNING, m);
			free(m);
		}
	}
	set_result(r, result, id, &sp, &err, argv[0], duration);
	rc = 0;
done:
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	cmd_sink_free(&out);
	cmd_sink_free(&err);
	free(path);
	strv_free(argv);
	free(envp);
	free(id);
	return rc;
}

/* One doctor check of a command's program. */
static void check_program(runner *r, hypertest_checks *checks, const char *name, char **tpl,
                          int missing_status)
{
	char *msg = NULL, *found = NULL;
	const char *const values[3] = {"", r->test_dir, ""};
	const char *where;
	int status;
	if (template_expand(tpl[0], PH_TEST_DIR, values, NULL, &where) != TPL_OK) {
		status = CHECK_WARNING;
		if (asprintf(&msg, "program '%s' depends on the test and is not checked", tpl[0]) < 0)
			msg = NULL;
	} else {
		char **argv = argv_expand(tpl, values);
		int e = argv ? cmd_find_program(argv[0], r->path_env ? r->path_env : getenv("PATH"),
		                                project_dir(r), 1, &found)
		             : ENOMEM;
		status = e ? missing_status : CHECK_OK;
		int n;
		if (!e)
			n = asprintf(&msg, "'%s' is %s", argv[0], found);
		else if (missing_status == CHECK_WARNING)
			n = asprintf(&msg, "'%s': %s on this machine (it may exist in the image)",
			             argv ? argv[0] : tpl[0], strerror(e));
		else
			n = asprintf(&msg, "'%s': %s", argv ? argv[0] : tpl[0], strerror(e));
		if (n < 0)
			msg = NULL;
		strv_free(argv);
	}
	up.doctor_check(checks, name, status, msg ? msg : "out of memory");
	free(msg);
	free(found);
}

static int op_doctor(void *self, hypertest_checks *checks)
{
	runner *r = self;
	if (!up.doctor_check)
		return fail(r->core, HYPERTEST_ERR_UNSUPPORTED, PREFIX "the core takes no checks");
	char *dir = path_join(project_dir(r), r->test_dir), *msg = NULL;
	struct stat st;
	int status = CHECK_OK, n;
	if (!dir)
		return fail(r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	if (stat(dir, &st) != 0)
		status = CHECK_FAILED, n = asprintf(&msg, "'%s': %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		status = CHECK_FAILED, n = asprintf(&msg, "'%s' is not a directory", dir);
	else
		n = asprintf(&msg, "'%s' exists", dir);
	up.doctor_check(checks, "runner.command.testDir", status, n < 0 ? "out of memory" : msg);
	free(dir);
	free(msg);
	/* the list command runs here, the run command in the image */
	if (r->list)
		check_program(r, checks, "runner.command.list", r->list, CHECK_FAILED);
	check_program(r, checks, "runner.command.run", r->run, CHECK_WARNING);
	return 0;
}

/* ---- the module ------------------------------------------------------------------- */

int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls);

HYPERTEST_PLUGIN_DEFINE("runner-command", "1.0", "runs any test tool, one process per test",
                        "MIT")
{
	static const hypertest_dispatch ops[] = {
		HYPERTEST_OP(HYPERTEST_OP_CREATE, op_create),
		HYPERTEST_OP(HYPERTEST_OP_DESTROY, op_destroy),
		HYPERTEST_OP(HYPERTEST_OP_DOCTOR, op_doctor),
		HYPERTEST_OP(HYPERTEST_RUNNER_LIST_TESTS, op_list_tests),
		HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, op_test_dir),
		HYPERTEST_OP(HYPERTEST_RUNNER_IMAGE_CONTENT, op_image_content),
		HYPERTEST_OP(HYPERTEST_RUNNER_RUN_TEST, op_run_test),
		HYPERTEST_OP_END};
	hypertest_upcalls bound;
	if (hypertest_upcalls_bind(&bound, upcalls) != 0)
		return HYPERTEST_ERR_ABI;
	up = bound;
	return up.register_plugin(core, HYPERTEST_KIND_RUNNER, "command",
	                          "runs any test tool, one process per test", ops);
}
