/*
 * run-test.c - RUN_TEST of the "pytest" runner: `PYTHON -m pytest -p
 * no:cacheprovider --rootdir=. --junitxml=ARTIFACTS/junit.xml -q ARGS --
 * NODEID` in rootDir, stdout and stderr into ARTIFACTS/stdout.log and
 * stderr.log, then the one testcase of the JUnit report for that node id
 * becomes the result:
 *   no child               success, duration = time * 1000
 *   <failure>, <error>     failed: message attribute, text as stackTrace
 *                          (strict XPASS is a <failure>, a fixture error an <error>)
 *   <skipped>              skipped, its message (skip and xfail)
 * Exit status 5 (nothing collected) fails with "node id not found: ID";
 * no report, no testcase or several for the node id fail saying so.
 */
#define _GNU_SOURCE
#include "pytest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPORT_MAX (64u << 20)

static void set_str(hypertest_result *res, int field, const char *s, size_t max)
{
	char *clean = htp_text_clean(s, strlen(s), 0, 0);
	if (clean && max && strlen(clean) > max) { /* keep the head of a message */
		size_t cut = max;
		while (cut > 0 && ((unsigned char)clean[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(clean + cut, "\xE2\x80\xA6", 4); /* "..." (max leaves room enough) */
	}
	pyt_up.result_set_str(res, field, clean ? clean : s);
	free(clean);
}

__attribute__((format(printf, 2, 3)))
static void failed(hypertest_result *res, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = htp_vstrdupf(fmt, ap);
	va_end(ap);
	pyt_up.result_set_status(res, HYPERTEST_STATUS_FAILED);
	set_str(res, HYPERTEST_RESULT_MESSAGE, msg ? msg : "failed", PYT_MESSAGE_BYTES * 4);
	free(msg);
}

static int64_t duration_of(const htp_xml *tc)
{
	const char *t = htp_xml_attr(tc, "time");
	char *end;
	double s = t ? strtod(t, &end) : 0;
	if (!t || end == t || !(s >= 0 && s <= 1e9)) /* NaN fails too */
		return -1;
	return (int64_t)(s * 1000 + 0.5);
}

/* The result of the testcase element. */
static void map_case(const htp_xml *tc, hypertest_result *res)
{
	const htp_xml *bad = NULL, *skip = NULL;
	htp_buf stack = {0};
	for (size_t i = 0; i < tc->n_kids; i++) {
		const htp_xml *k = tc->kids[i];
		if (!strcmp(k->name, "failure") || !strcmp(k->name, "error")) {
			if (!bad)
				bad = k;
			if (k->text && *k->text) {
				htp_buf_str(&stack, stack.len ? "\n\n" : "");
				htp_buf_str(&stack, k->text);
			}
		} else if (!strcmp(k->name, "skipped") && !skip) {
			skip = k;
		}
	}
	int64_t ms = duration_of(tc);
	if (ms >= 0)
		pyt_up.result_set_duration(res, ms);
	if (bad) {
		const char *m = htp_xml_attr(bad, "message");
		pyt_up.result_set_status(res, HYPERTEST_STATUS_FAILED);
		set_str(res, HYPERTEST_RESULT_MESSAGE,
		        m && *m ? m : !strcmp(bad->name, "error") ? "error" : "failed", PYT_MESSAGE_BYTES);
		if (stack.data) {
			char *st = htp_text_clean(stack.data, stack.len, 0, PYT_STACK_BYTES);
			if (st)
				pyt_up.result_set_str(res, HYPERTEST_RESULT_STACK_TRACE, st);
			free(st);
		}
	} else if (skip) {
		const char *m = htp_xml_attr(skip, "message");
		pyt_up.result_set_status(res, HYPERTEST_STATUS_SKIPPED);
		if (m && *m)
			set_str(res, HYPERTEST_RESULT_MESSAGE, m, PYT_MESSAGE_BYTES);
	} else {
		pyt_up.result_set_status(res, HYPERTEST_STATUS_SUCCESS);
	}
	free(stack.data);
}

/* The report's testcases for the node id, mapped, or a failure saying why. */
static void read_report(const char *path, const pyt_nodeid *id, const char *nodeid,
                        hypertest_result *res)
{
	char *data = NULL, *error = NULL;
	size_t len;
	int e = htp_read_file(path, REPORT_MAX, &data, &len);
	if (e) {
		failed(res, "cannot read the JUnit report of pytest (%s): %s", path, strerror(e));
		return;
	}
	htp_xml *doc = htp_xml_parse(data, len, &error);
	free(data);
	if (!doc) {
		failed(res, "the JUnit report of pytest (%s) is not valid XML: %s", path,
		       error ? error : "out of memory");
		free(error);
		return;
	}
	size_t n = 0, matching = 0;
	htp_xml **cases = htp_xml_find_all(doc, "testcase", &n), *match = NULL;
	for (size_t i = 0; cases && i < n; i++) {
		const char *cls = htp_xml_attr(cases[i], "classname"), *name = htp_xml_attr(cases[i], "name");
		if (cls && name && !strcmp(cls, id->classname) && !strcmp(name, id->name))
			match = match ? match : cases[i], matching++;
	}
	if (!cases)
		failed(res, "out of memory");
	else if (matching == 1) {
		const char *file = htp_xml_attr(match, "file"); /* junit_family xunit1 only */
		if (file && *file)
			set_str(res, HYPERTEST_RESULT_FILE_PATH, file, 0);
		map_case(match, res);
	} else if (matching > 1)
		failed(res, "the JUnit report has %zu testcases for node id '%s' (classname '%s', name '%s')",
		       matching, nodeid, id->classname, id->name);
	else if (n == 0)
		failed(res, "the JUnit report has no testcase: node id '%s' did not run", nodeid);
	else
		failed(res, "the JUnit report has no testcase for node id '%s' (classname '%s', name "
		       "'%s'), only %zu others (the first: classname '%s', name '%s')",
		       nodeid, id->classname, id->name, n,
		       htp_xml_attr(cases[0], "classname") ? htp_xml_attr(cases[0], "classname") : "",
		       htp_xml_attr(cases[0], "name") ? htp_xml_attr(cases[0], "name") : "");
	free(cases);
	htp_xml_free(doc);
}

static char *context_nodeid(pyt_runner *r, const char *context_json, int *rc)
{
	json_error_t jerr;
	json_t *ctx = json_loads(context_json ? context_json : "", 0, &jerr);
	json_t *v = json_object_get(ctx, "nodeid");
	char *id = NULL;
	*rc = 0;
	if (!ctx)
		*rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_INVALID,
		               PYT_PREFIX "test context is not JSON (column %d): %s", jerr.column,
		               jerr.text);
	else if (!json_is_string(v) || !json_string_length(v))
		*rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_INVALID,
		               PYT_PREFIX "test context: expected an object with a string \"nodeid\"");
	else if (!(id = strdup(json_string_value(v))))
		*rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM, PYT_PREFIX "out of memory");
	json_decref(ctx);
	return id;
}

int pyt_run_test(void *self, const char *context_json, const char *artifacts_dir,
                 hypertest_result *res)
{
	pyt_runner *r = self;
	if (!pyt_up.result_set_status || !pyt_up.result_set_str || !pyt_up.result_set_duration)
		return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PYT_PREFIX "the core cannot take results");
	int rc;
	char *nodeid = context_nodeid(r, context_json, &rc);
	if (!nodeid)
		return rc;
	pyt_nodeid id;
	if ((rc = pyt_nodeid_parse(nodeid, &id))) {
		rc = rc == ENOMEM ? htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM,
		                             PYT_PREFIX "out of memory")
		                  : htp_fail(&pyt_up, r->core, HYPERTEST_ERR_INVALID,
		                             PYT_PREFIX "test context: '%s' is not a node id (no '::')",
		                             nodeid);
		free(nodeid);
		return rc;
	}
	char *junit = htp_path_join(artifacts_dir, "junit.xml"), *opt = NULL, *error = NULL;
	char *out_log = htp_path_join(artifacts_dir, "stdout.log");
	char *err_log = htp_path_join(artifacts_dir, "stderr.log");
	if (junit && asprintf(&opt, "--junitxml=%s", junit) < 0)
		opt = NULL;
	const char *extra[] = {opt, "-q", NULL};
	char art[PATH_MAX], *art_var = NULL;
	if (asprintf(&art_var, "HT_TEST_ARTIFACTS_OUTPUT_PATH=%s",
	             realpath(artifacts_dir, art) ? art : artifacts_dir) < 0)
		art_var = NULL;
	htp_run run = {.argv = opt ? pyt_argv(r, extra, nodeid) : NULL,
	              .envp = art_var ? pyt_env(art_var) : NULL,
	              .cwd = r->root_dir, .out_path = out_log, .err_path = err_log,
	              .limit = PYT_OUTPUT_LIMIT, .tail_cap = PYT_MESSAGE_BYTES};
	if (!out_log || !err_log || !run.argv || !run.envp) {
		rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM, PYT_PREFIX "out of memory");
		goto done;
	}
	if ((rc = htp_run_program(&run, &error))) {
		htp_fail(&pyt_up, r->core, rc, PYT_PREFIX "%s", error ? error : "out of memory");
		goto done;
	}
	pyt_up.result_set_str(res, HYPERTEST_RESULT_NAME, id.title);
	pyt_up.result_set_str(res, HYPERTEST_RESULT_FILE_PATH, id.file);
	pyt_up.result_set_duration(res, run.duration_ms);
	int code = htp_run_exit_code(&run);
	struct stat st;
	if (code == 5) {
		failed(res, "node id not found: %s", nodeid);
	} else if ((code < 0 || code > 1) && stat(junit, &st) != 0) {
		char *why = htp_run_outcome(&run), *tail = htp_run_output_tail(&run, PYT_MESSAGE_BYTES);
		failed(res, "pytest wrote no JUnit report: %s%s%s", why ? why : "failed",
		       tail && *tail ? "\n" : "", tail ? tail : "");
		free(why);
		free(tail);
	} else if (code == 4) { /* usage error: "ERROR: not found: ..." for instance */
		char *tail = htp_run_output_tail(&run, PYT_MESSAGE_BYTES);
		failed(res, "pytest usage error (exit status 4) for node id '%s'%s%s", nodeid,
		       tail && *tail ? ":\n" : "", tail ? tail : "");
		free(tail);
	} else {
		read_report(junit, &id, nodeid, res);
	}
	rc = 0;
done:
	free(error);
	free(junit);
	free(opt);
	free(out_log);
	free(err_log);
	htp_strv_free(run.argv);
	free(art_var);
	free(run.envp);
	htp_run_free(&run);
	pyt_nodeid_free(&id);
	free(nodeid);
	return rc;
}
