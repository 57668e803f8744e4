/*
 * run-test.c - RUN_TEST of the "ctest" runner: in ART/ctest, a directory of
 * its own in the artifacts whose CTestTestfile.cmake only says
 * subdirs("BUILD") (see discover.c: the build tree, read-only in an image,
 * is never written to; Testing/Temporary/LastTest.log lands in ART/ctest),
 *   ctest --output-on-failure --no-tests=error --output-junit ART/junit.xml ARGS -R ^NAME$
 * (NAME regex-escaped; --output-junit from ctest 3.21, --no-tests=error from
 * 3.17), stdout and stderr into ART/stdout.log and stderr.log.  ctest numbers
 * the tests there as in BUILD itself, so the index of the context names
 * the same test.  The testcase
 * of the JUnit report: status "run" passes, "fail" fails with the tail of
 * the test's output (or "timed out" when ctest's line for the test says
 * ***Timeout), "disabled" and "notrun" while ctest succeeded are skipped
 * (SKIP_RETURN_CODE, SKIP_REGULAR_EXPRESSION, DISABLED); a test not run for
 * another reason fails.  Older ctest: the line "N/M Test #I: NAME ....
 * STATUS  T sec" of its output decides, the output after it is the message.
 */
#define _GNU_SOURCE
#include "ctest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPORT_MAX (64u << 20)

char *ct_regex_exact(const char *name)
{
	htp_buf b = {0};
	htp_buf_add(&b, "^", 1);
	for (const char *p = name; *p; p++) {
		if (strchr("^$.[]|()*+?\\{}", *p))
			htp_buf_add(&b, "\\", 1);
		htp_buf_add(&b, p, 1);
	}
	htp_buf_add(&b, "$", 1);
	return htp_buf_take(&b);
}

__attribute__((format(printf, 2, 3)))
static void failed(hypertest_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = htp_vstrdupf(fmt, ap);
	va_end(ap);
	char *clean = msg ? htp_text_clean(msg, strlen(msg), 0, CT_MESSAGE_BYTES * 2) : NULL;
	ct_up.result_set_status(res, HYPERTEST_STATUS_FAILED);
	ct_up.result_set_str(res, HYPERTEST_RESULT_MESSAGE, clean ? clean : "failed");
	free(clean);
	free(msg);
}

static void skipped(hypertest_result *res, const char *why)
{
	ct_up.result_set_status(res, HYPERTEST_STATUS_SKIPPED);
	if (why && *why)
		ct_up.result_set_str(res, HYPERTEST_RESULT_MESSAGE, why);
}

/* ctest's line for test #index: the status after the dot leader
 * ("Passed", "***Failed", "***Timeout", ...), its length in *len, and where
 * the next line starts in *next.  NULL when there is no such line. */
static const char *status_line(const char *out, long index, const char *name, size_t *len,
                               const char **next)
{
	char tag[48];
	snprintf(tag, sizeof tag, "Test #%ld: ", index);
	for (const char *p = strstr(out, tag); p; p = strstr(p + 1, tag)) {
		const char *s = p + strlen(tag), *eol = strchr(s, '\n');
		if (!eol)
			eol = s + strlen(s);
		if (strncmp(s, name, strlen(name)))
			continue;
		s += strlen(name);
		while (s < eol && (*s == ' ' || *s == '.'))
			s++;
		const char *e = strstr(s, " sec");
		if (!e || e > eol)
			e = eol;
		while (e > s && (e[-1] == ' ' || e[-1] == '.' || (e[-1] >= '0' && e[-1] <= '9')))
			e--; /* the time */
		*len = (size_t)(e - s);
		*next = *eol ? eol + 1 : eol;
		return s;
	}
	return NULL;
}

static int has_status(const char *st, size_t len, const char *word)
{
	return st && len >= strlen(word) && !strncmp(st, word, strlen(word));
}

/* The output --output-on-failure printed after the status line. */
static char *output_after(const char *next)
{
	const char *end = next;
	for (const char *l = next; *l;) {
		const char *eol = strchr(l, '\n');
		const char *pct = strstr(l, "% tests passed");
		if (pct && (!eol || pct < eol))
			break;
		end = eol ? eol + 1 : l + strlen(l);
		if (!eol)
			break;
		l = eol + 1;
	}
	return htp_text_clean(next, (size_t)(end - next), 0, CT_MESSAGE_BYTES);
}

/* ctest < 3.21: only its output. */
static void from_output(const char *out, long index, const char *name, hypertest_result *res)
{
	size_t len = 0;
	const char *next = NULL, *st = status_line(out, index, name, &len, &next);
	if (!st) {
		char *tail = htp_text_clean(out, strlen(out), 0, CT_MESSAGE_BYTES);
		failed(res, "test '%s' did not run%s%s", name, tail && *tail ? ":\n" : "", tail ? tail : "");
		free(tail);
	} else if (has_status(st, len, "Passed")) {
		ct_up.result_set_status(res, HYPERTEST_STATUS_SUCCESS);
	} else if (has_status(st, len, "***Skipped")) {
		skipped(res, "skipped");
	} else if (has_status(st, len, "***Not Run (Disabled)")) {
		skipped(res, "disabled");
	} else if (has_status(st, len, "***Timeout")) {
		failed(res, "timed out");
	} else {
		char *o = output_after(next);
		if (o && *o)
			failed(res, "%s", o);
		else
			failed(res, "%.*s", (int)len, st);
		free(o);
	}
}

static void from_junit(const htp_xml *tc, const char *out, long index, const char *name,
                       int ctest_ok, hypertest_result *res)
{
	const char *status = htp_xml_attr(tc, "status"), *t = htp_xml_attr(tc, "time");
	htp_xml *sys = htp_xml_child(tc, "system-out"), *skip = htp_xml_child(tc, "skipped");
	size_t len = 0;
	const char *next, *st = status_line(out, index, name, &len, &next);
	char *end;
	double s = t ? strtod(t, &end) : -1;
	if (t && end != t && s >= 0 && s <= 1e9)
		ct_up.result_set_duration(res, (int64_t)(s * 1000 + 0.5));
	if (status && !strcmp(status, "run")) {
		ct_up.result_set_status(res, HYPERTEST_STATUS_SUCCESS);
	} else if (status && !strcmp(status, "disabled")) {
		skipped(res, "disabled");
	} else if (status && !strcmp(status, "notrun") && ctest_ok) {
		skipped(res, skip ? htp_xml_attr(skip, "message") : NULL);
	} else if (has_status(st, len, "***Timeout")) {
		failed(res, "timed out");
	} else {
		const char *why = skip ? htp_xml_attr(skip, "message") : NULL; /* "notrun": why not */
		const char *f = htp_xml_attr(tc, "status");
		char *o = sys && sys->text ? htp_text_clean(sys->text, sys->text_len, 0, CT_MESSAGE_BYTES)
		                           : NULL;
		if (why && *why)
			failed(res, "not run: %s%s%s", why, o && *o ? "\n" : "", o ? o : "");
		else if (o && *o)
			failed(res, "%s", o);
		else
			failed(res, "failed (status '%s', no output)", f ? f : "?");
		free(o);
	}
}

static void read_report(const char *path, const char *out, long index, const char *name,
                        int ctest_ok, hypertest_result *res)
{
	char *data = NULL, *error = NULL;
	size_t len, n = 0, matching = 0;
	int e = htp_read_file(path, REPORT_MAX, &data, &len);
	if (e) {
		failed(res, "cannot read the JUnit report of ctest (%s): %s", path, strerror(e));
		return;
	}
	htp_xml *doc = htp_xml_parse(data, len, &error), **cases = NULL, *match = NULL;
	free(data);
	if (!doc) {
		failed(res, "the JUnit report of ctest (%s) is not valid XML: %s", path,
		       error ? error : "out of memory");
		free(error);
		return;
	}
	cases = htp_xml_find_all(doc, "testcase", &n);
	for (size_t i = 0; cases && i < n; i++) {
		const char *nm = htp_xml_attr(cases[i], "name");
		if (nm && !strcmp(nm, name))
			match = match ? match : cases[i], matching++;
	}
	if (!cases) {
		failed(res, "out of memory");
	} else if (matching == 1) {
		from_junit(match, out, index, name, ctest_ok, res);
	} else if (matching > 1) {
		failed(res, "the JUnit report has %zu testcases named '%s'", matching, name);
	} else {
		char *tail = htp_text_clean(out, strlen(out), 0, CT_MESSAGE_BYTES);
		failed(res, "test '%s' did not run (the JUnit report has %zu other testcases)%s%s", name, n,
		       tail && *tail ? ":\n" : "", tail ? tail : "");
		free(tail);
	}
	free(cases);
	htp_xml_free(doc);
}

/* The context's name and index. */
static int context_of(ct_runner *r, const char *context_json, char **name, long *index)
{
	json_error_t jerr;
	json_t *ctx = json_loads(context_json ? context_json : "", 0, &jerr);
	json_t *n = json_object_get(ctx, "name"), *i = json_object_get(ctx, "index");
	int rc = 0;
	*name = NULL;
	if (!ctx)
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_INVALID,
		              CT_PREFIX "test context is not JSON (column %d): %s", jerr.column,
		              jerr.text);
	else if (!json_is_string(n) || !json_string_length(n) || !json_is_integer(i) ||
	         json_integer_value(i) < 1)
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_INVALID,
		              CT_PREFIX "test context: expected {\"name\": string, \"index\": number}");
	else if (!(*name = strdup(json_string_value(n))))
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
	else
		*index = (long)json_integer_value(i);
	json_decref(ctx);
	return rc;
}

/* The absolute build directory: the context's "buildDir" (where the image
 * holds it), else the option. */
static char *build_dir_for(ct_runner *r, const char *context_json)
{
	json_t *ctx = json_loads(context_json, 0, NULL);
	json_t *b = json_object_get(ctx, "buildDir");
	char *opt = json_is_string(b) && json_string_value(b)[0] == '/' ? NULL : ct_build_dir(r);
	char *dir = opt ? ct_absolute(opt) : json_is_string(b) ? strdup(json_string_value(b)) : NULL;
	free(opt);
	json_decref(ctx);
	return dir;
}

/* *dir = ART/ctest with the CTestTestfile.cmake for build (malloc'd);
 * 0 or an error code (reported). */
static int scratch_for(ct_runner *r, const char *art, const char *build, char **dir)
{
	int rc;
	if (!(*dir = htp_path_join(art, "ctest")))
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
	if (mkdir(*dir, 0755) != 0 && errno != EEXIST)
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_IO, CT_PREFIX "cannot make '%s': %s",
		              *dir, strerror(errno));
	else
		rc = ct_write_testfile(r, *dir, build);
	if (rc) {
		free(*dir);
		*dir = NULL;
	}
	return rc;
}

int ct_run_test(void *self, const char *context_json, const char *artifacts_dir,
                hypertest_result *res)
{
	ct_runner *r = self;
	if (!ct_up.result_set_status || !ct_up.result_set_str || !ct_up.result_set_duration)
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                CT_PREFIX "the core cannot take results");
	char *name = NULL, *error = NULL, *abs_art = NULL;
	long index = 0;
	int rc = context_of(r, context_json, &name, &index);
	if (rc)
		return rc;
	if ((rc = ct_version(r))) {
		free(name);
		return rc;
	}
	int junit_ok = r->major > 3 || (r->major == 3 && r->minor >= 21);
	int no_tests_ok = r->major > 3 || (r->major == 3 && r->minor >= 17);
	abs_art = ct_absolute(artifacts_dir);
	char *junit = abs_art ? htp_path_join(abs_art, "junit.xml") : NULL;
	char *out_log = abs_art ? htp_path_join(abs_art, "stdout.log") : NULL;
	char *err_log = abs_art ? htp_path_join(abs_art, "stderr.log") : NULL;
	char *regex = ct_regex_exact(name), *build = build_dir_for(r, context_json);
	size_t n_args = htp_strv_len(r->args), k = 0;
	char **argv = calloc(n_args + 9, sizeof *argv), *out = NULL, *scratch = NULL;
	char *art_var = NULL;
	if (abs_art && asprintf(&art_var, "HT_TEST_ARTIFACTS_OUTPUT_PATH=%s", abs_art) < 0)
		art_var = NULL;
	char *env_extra[] = {art_var, NULL};
	htp_run run = {.argv = argv, .envp = art_var ? htp_env_with(env_extra) : NULL, .out_path = out_log, .err_path = err_log,
	              .limit = CT_OUTPUT_LIMIT, .tail_cap = CT_MESSAGE_BYTES};
	if (!junit || !out_log || !err_log || !regex || !build || !argv || !run.envp) {
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
		goto done;
	}
	if ((rc = scratch_for(r, abs_art, build, &scratch)))
		goto done;
	run.cwd = scratch;
	argv[k++] = r->ctest;
	argv[k++] = "--output-on-failure";
	if (no_tests_ok)
		argv[k++] = "--no-tests=error";
	if (junit_ok) {
		argv[k++] = "--output-junit";
		argv[k++] = junit;
	}
	for (size_t i = 0; i < n_args; i++)
		argv[k++] = r->args[i];
	argv[k++] = "-R";
	argv[k++] = regex;
	if ((rc = htp_run_program(&run, &error))) {
		htp_fail(&ct_up, r->core, rc, CT_PREFIX "%s", error ? error : "out of memory");
		goto done;
	}
	ct_up.result_set_str(res, HYPERTEST_RESULT_NAME, name);
	ct_up.result_set_str(res, HYPERTEST_RESULT_FILE_PATH, r->test_dir);
	ct_up.result_set_duration(res, run.duration_ms);
	size_t out_len;
	int e = htp_read_file(out_log, CT_OUTPUT_LIMIT + 4096, &out, &out_len);
	if (e || htp_run_exit_code(&run) < 0) {
		char *why = htp_run_outcome(&run), *tail = htp_run_output_tail(&run, CT_MESSAGE_BYTES);
		failed(res, "%s%s%s", e ? strerror(e) : why ? why : "failed", tail && *tail ? "\n" : "",
		       tail ? tail : "");
		free(why);
		free(tail);
	} else if (junit_ok) {
		read_report(junit, out, index, name, htp_run_exit_code(&run) == 0, res);
	} else {
		from_output(out, index, name, res);
	}
	rc = 0;
done:
	free(error);
	free(out);
	free(abs_art);
	free(junit);
	free(out_log);
	free(err_log);
	free(regex);
	free(build);
	free(scratch);
	free(argv);
	free(run.envp);
	free(art_var);
	htp_run_free(&run);
	free(name);
	return rc;
}
