/*
 * check_results.c - the results file written in one pass from the tests'
 * records (ht_results_json) against the construction it replaced, kept
 * here as the reference: the whole document built as a JSON tree,
 * serialized, parsed again to add the loop's fields (attempts, flaky,
 * stopped), serialized, parsed again to add the cost, serialized.  The
 * bytes must be the same for runs with retries, flaky tests, tests not
 * run, failures with stack traces, warnings, cost, contexts of every JSON
 * type, text that is not UTF-8, and no tests at all.  Then the report's
 * reading of such a file a test at a time: the same page and JUnit XML as
 * from the whole document read at once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <hypertest/hypertest.h>

#include "core.h"
#include "report.h"

static const char *const status_names[] = {"success", "failed", "skipped"};

/* ---- the reference: the construction before the one-pass writer ---------------- */

/* Each attempt's record as the reference keeps it (a JSON array a test). */
typedef struct ref_run {
	hypertest_run run;
	json_t *logs[16];
} ref_run;

static void ref_attempt_record(json_t **log, const ht_test_result *t, int64_t end_ms)
{
	json_t *a = json_object();
	char date[32];
	int64_t duration = t->status == HYPERTEST_STATUS_SUCCESS && t->duration >= 0
	                       ? t->duration
	                       : end_ms - t->attempt_start_ms;

	if (!*log)
		*log = json_array();
	json_object_set_new(a, "status", json_string(status_names[t->status]));
	ht_iso8601(t->attempt_start_ms, date);
	json_object_set_new(a, "startDate", json_string(date));
	ht_iso8601(end_ms, date);
	json_object_set_new(a, "endDate", json_string(date));
	json_object_set_new(a, "duration", json_integer((json_int_t)duration));
	if (t->status == HYPERTEST_STATUS_FAILED) {
		json_t *error = json_object();
		json_object_set_new(error, "message", json_string(t->message ? t->message : ""));
		if (t->stack_trace)
			json_object_set_new(error, "stackTrace", json_string(t->stack_trace));
		json_object_set_new(a, "error", error);
	}
	json_array_append_new(*log, a);
}

static char *ref_dump(const char *run_id, int64_t start_ms, int64_t end_ms,
                      const ht_test_result *tests, size_t n, long concurrency)
{
	json_t *doc = json_object(), *counts = json_object(), *list = json_array();
	size_t count[3] = {0, 0, 0}, i;
	char date[32];
	char *text;

	for (i = 0; i < n; i++) {
		const ht_test_result *t = &tests[i];
		json_t *e = json_object();
		count[t->status]++;
		json_object_set_new(e, "testId", json_string(t->test_id));
		json_object_set_new(e, "name", json_string(t->name ? t->name : "unknown"));
		json_object_set_new(e, "filePath", json_string(t->file_path ? t->file_path : "unknown"));
		json_object_set_new(e, "status", json_string(status_names[t->status]));
		ht_iso8601(t->start_ms, date);
		json_object_set_new(e, "startDate", json_string(date));
		ht_iso8601(t->end_ms, date);
		json_object_set_new(e, "endDate", json_string(date));
		json_object_set_new(e, "duration", json_integer((json_int_t)t->duration));
		if (t->status == HYPERTEST_STATUS_FAILED) {
			json_t *error = json_object();
			json_object_set_new(error, "message", json_string(t->message ? t->message : ""));
			if (t->stack_trace)
				json_object_set_new(error, "stackTrace", json_string(t->stack_trace));
			json_object_set_new(e, "error", error);
		}
		if (t->context)
			json_object_set(e, "context", t->context);
		json_object_set_new(e, "startTime", json_integer((json_int_t)t->start_ms));
		json_object_set_new(e, "endTime", json_integer((json_int_t)t->end_ms));
		if (t->expected_ms >= 0)
			json_object_set_new(e, "expectedDuration", json_integer((json_int_t)t->expected_ms));
		if (t->status == HYPERTEST_STATUS_SKIPPED && t->message)
			json_object_set_new(e, "skipMessage", json_string(t->message));
		{
			json_t *a = json_object();
			char key[256];
			snprintf(key, sizeof key, "%s/%s/", run_id, t->test_id);
			json_object_set_new(a, "prefix", json_string(key));
			snprintf(key, sizeof key, "%s/%s/stdout.log", run_id, t->test_id);
			json_object_set_new(a, "stdout", json_string(key));
			snprintf(key, sizeof key, "%s/%s/stderr.log", run_id, t->test_id);
			json_object_set_new(a, "stderr", json_string(key));
			json_object_set_new(e, "artifacts", a);
		}
		if (t->warnings) {
			json_t *w = json_array();
			const char *line = t->warnings, *nl;
			for (; line; line = nl ? nl + 1 : NULL) {
				nl = strchr(line, '\n');
				json_array_append_new(w, json_stringn(line, nl ? (size_t)(nl - line)
				                                                 : strlen(line)));
			}
			json_object_set_new(e, "warnings", w);
		}
		json_array_append_new(list, e);
	}
	json_object_set_new(doc, "runId", json_string(run_id));
	ht_iso8601(start_ms, date);
	json_object_set_new(doc, "startDate", json_string(date));
	ht_iso8601(end_ms, date);
	json_object_set_new(doc, "endDate", json_string(date));
	json_object_set_new(doc, "duration", json_integer((json_int_t)(end_ms - start_ms)));
	json_object_set_new(counts, "total", json_integer((json_int_t)n));
	json_object_set_new(counts, "success", json_integer((json_int_t)count[0]));
	json_object_set_new(counts, "skipped", json_integer((json_int_t)count[2]));
	json_object_set_new(counts, "failed", json_integer((json_int_t)count[1]));
	json_object_set_new(doc, "tests", counts);
	json_object_set_new(doc, "testResults", list);
	if (concurrency > 0)
		json_object_set_new(doc, "concurrency", json_integer((json_int_t)concurrency));
	text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	return text;
}

static char *ref_add_loop_fields(char *text, const ref_run *rr)
{
	const hypertest_run *run = &rr->run;
	json_t *doc = json_loads(text, 0, NULL);
	json_t *list = json_object_get(doc, "testResults"), *counts = json_object_get(doc, "tests");
	char *out;
	size_t i;

	ck_assert_msg(doc && json_array_size(list) == run->n, "%s", text);
	for (i = 0; i < run->n; i++) {
		const ht_test_result *t = &run->tests[i];
		json_t *e = json_array_get(list, i);
		if (t->flaky)
			json_object_set_new(e, "flaky", json_true());
		if (t->status == HYPERTEST_STATUS_SKIPPED && t->message)
			json_object_set_new(e, "message", json_string(t->message));
		json_object_set_new(e, "attempts", rr->logs[i] ? json_incref(rr->logs[i]) : json_array());
	}
	if (json_is_object(counts) && run->retries > 0)
		json_object_set_new(counts, "flaky", json_integer((json_int_t)run->flaky));
	if (run->stopped_after > 0) {
		json_t *s = json_object();
		char msg[96];
		snprintf(msg, sizeof msg, "stopped after %ld failures", run->stopped_after);
		json_object_set_new(s, "maxFailures", json_integer(run->stopped_after));
		json_object_set_new(s, "message", json_string(msg));
		json_object_set_new(doc, "stopped", s);
	}
	out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	free(text);
	return out;
}

static char *ref_add_cost(char *text, const hypertest_run *run)
{
	json_t *doc, *list;
	char *out;
	size_t i;

	if (!run->cost)
		return text;
	doc = json_loads(text, 0, NULL);
	list = json_object_get(doc, "testResults");
	ck_assert_msg(doc && json_array_size(list) == run->n, "%s", text);
	for (i = 0; i < run->n; i++)
		if (run->tests[i].usage)
			json_object_set(json_array_get(list, i), "cost", run->tests[i].usage);
	json_object_set(doc, "cost", run->cost);
	out = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(doc);
	free(text);
	return out;
}

static char *ref_results(const ref_run *rr)
{
	const hypertest_run *run = &rr->run;
	char *text = ref_dump(run->run_id, run->start_ms, run->end_ms, run->tests, run->n,
	                      run->concurrency);
	ck_assert_ptr_nonnull(text);
	return ref_add_cost(ref_add_loop_fields(text, rr), run);
}

/* ---- fixtures ---------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* An attempt of test i that ended at end_ms, recorded both ways. */
static void attempt(ref_run *rr, size_t i, int status, const char *message, const char *stack,
                    int64_t start_ms, int64_t end_ms, int64_t duration)
{
	ht_test_result *t = &rr->run.tests[i];
	free(t->message);
	free(t->stack_trace);
	t->message = dup_or_null(message);
	t->stack_trace = dup_or_null(stack);
	t->status = status;
	t->duration = duration;
	t->attempt_start_ms = start_ms;
	if (!t->attempts++)
		t->start_ms = start_ms;
	t->end_ms = end_ms;
	ht_attempt_record(t, end_ms);
	ref_attempt_record(&rr->logs[i], t, end_ms);
}

static json_t *ctx(const char *text)
{
	json_error_t jerr;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	ck_assert_msg(v != NULL, "%s: %s", text, jerr.text);
	return v;
}

static void init_run(ref_run *rr, size_t n)
{
	size_t i;
	memset(rr, 0, sizeof *rr);
	ck_assert_uint_le(n, 16);
	rr->run.run_id = strdup("6d3c2f9e-1b0a-4c5d-8e7f-0123456789ab");
	rr->run.tests = calloc(n ? n : 1, sizeof *rr->run.tests);
	rr->run.n = n;
	rr->run.start_ms = 1700000000123;
	rr->run.end_ms = 1700000009876;
	for (i = 0; i < n; i++) {
		snprintf(rr->run.tests[i].test_id, sizeof rr->run.tests[i].test_id,
		         "00000000-0000-4000-8000-%012zu", i);
		rr->run.tests[i].expected_ms = -1;
		rr->run.tests[i].duration = -1;
		rr->run.tests[i].status = HYPERTEST_STATUS_FAILED;
	}
}

/* Every kind of test a run has. */
static void fill_run(ref_run *rr)
{
	ht_test_result *t = rr->run.tests;
	int64_t s = 1700000000200;

	/* 0: passed at once, named, with a context of every JSON type and cost */
	t[0].context = ctx("{\"id\": \"t0\", \"n\": 12345678901234, \"r\": 0.1, \"big\": 1e300, "
	                   "\"neg\": -0.0, \"one\": 1.0, \"t\": true, \"f\": false, \"z\": null, "
	                   "\"o\": {}, \"a\": [], \"nested\": {\"x\": [1, [2, {\"y\": \"a/b\"}]]}, "
	                   "\"s\": \"line\\nnext \\\"q\\\" \\\\ \\t \\u0001 \\u00e9\\u4e2d\\ud83d\\ude00\"}");
	t[0].name = strdup("passes \"quoted\" é");
	t[0].file_path = strdup("tests/a.spec.ts");
	t[0].expected_ms = 1500;
	attempt(rr, 0, HYPERTEST_STATUS_SUCCESS, NULL, NULL, s, s + 1000, 987);
	ht_usage_add(&t[0], "memoryMB", 1024);
	ht_usage_add(&t[0], "billedMs", 988);
	ht_usage_add(&t[0], "pricePerGBSecond", 0.0000166667);
	/* 1: failed three times, a stack trace, warnings */
	t[1].context = ctx("{\"id\": \"t1\"}");
	t[1].name = strdup("fails");
	t[1].file_path = strdup("tests/b.spec.ts");
	attempt(rr, 1, HYPERTEST_STATUS_FAILED, "boom 1", "at a\n\tat b", s, s + 10, -1);
	attempt(rr, 1, HYPERTEST_STATUS_FAILED, "function error: Error: boom 2", NULL, s + 20,
	        s + 40, -1);
	attempt(rr, 1, HYPERTEST_STATUS_FAILED, "expected 1\n to be 2 \x7f", "stack\r\nline", s + 50,
	        s + 90, -1);
	t[1].warnings = strdup("artifact a: not stored: a symbolic link loop\nsecond warning");
	ht_usage_add(&t[1], "cpuMs", 12.5);
	ht_usage_add(&t[1], "maxRssKB", 20480);
	/* 2: flaky: failed, then passed on a retry */
	t[2].context = ctx("{\"id\": \"t2\", \"tags\": [\"a\", \"b\"]}");
	t[2].name = strdup("flaky");
	attempt(rr, 2, HYPERTEST_STATUS_FAILED, "first try", NULL, s, s + 5, -1);
	attempt(rr, 2, HYPERTEST_STATUS_SUCCESS, NULL, NULL, s + 6, s + 16, 9);
	t[2].flaky = 1;
	rr->run.flaky = 1;
	/* 3: not run (stopped), no context, never named */
	t[3].status = HYPERTEST_STATUS_SKIPPED;
	t[3].message = strdup("not run: stopped after 1 failures");
	t[3].duration = 0;
	t[3].start_ms = t[3].end_ms = s + 100;
	/* 4: a message cut inside a UTF-8 sequence (JSON has no string for it) */
	t[4].context = ctx("{\"id\": \"t4\"}");
	attempt(rr, 4, HYPERTEST_STATUS_FAILED, "cut here: \xc3", "\xe4\xb8", s, s + 3, -1);
	/* 5: skipped by the function, with a warning */
	t[5].context = ctx("[\"a context\", 1, 2.5]");
	t[5].name = strdup("skipped");
	t[5].file_path = strdup("tests/c.py");
	attempt(rr, 5, HYPERTEST_STATUS_SKIPPED, "skipped: no GPU", NULL, s, s + 2, 1);
	t[5].warnings = strdup("only one");
	/* 6: failed without a message, the duration the function gave */
	t[6].context = ctx("{\"id\": \"\"}");
	t[6].expected_ms = 0;
	attempt(rr, 6, HYPERTEST_STATUS_FAILED, NULL, NULL, s, s + 7, 5);
}

static void free_run(ref_run *rr)
{
	size_t i;
	for (i = 0; i < rr->run.n; i++) {
		ht_test_result_clear(&rr->run.tests[i]);
		json_decref(rr->run.tests[i].context);
		json_decref(rr->run.tests[i].usage);
		ht_attempt_log_clear(&rr->run.tests[i]);
		json_decref(rr->logs[i]);
	}
	free(rr->run.tests);
	free(rr->run.run_id);
	json_decref(rr->run.cost);
}

/* The one-pass file against the reference, byte for byte; on a
 * difference, where it starts. */
static void assert_same(const ref_run *rr)
{
	char *want = ref_results(rr), *got = ht_results_json(&rr->run);
	size_t k = 0;

	ck_assert_ptr_nonnull(got);
	while (want[k] && want[k] == got[k])
		k++;
	ck_assert_msg(!want[k] && !got[k],
	              "the results differ at byte %zu:\nreference: ...%.200s\nwritten:   ...%.200s", k,
	              want + (k > 60 ? k - 60 : 0), got + (k > 60 ? k - 60 : 0));
	free(want);
	free(got);
}

/* ---- tests ------------------------------------------------------------------------- */

START_TEST(test_full_run)
{
	ref_run rr;
	init_run(&rr, 7);
	fill_run(&rr);
	rr.run.concurrency = 4;
	rr.run.retries = 2;
	rr.run.stopped_after = 1;
	rr.run.cost = ctx("{\"invocations\": 9, \"billedMs\": 1000.0, \"gbSeconds\": 0.9765625, "
	                  "\"cpuMs\": 12.5, \"maxRssKB\": 20480.0, \"pricePerGBSecond\": 1.66667e-05, "
	                  "\"pricePerRequest\": 2e-07, \"dollars\": 1.8076e-05}");
	assert_same(&rr);
	free_run(&rr);
}
END_TEST

/* No retries (no "flaky" count), no stop, no cost, no concurrency. */
START_TEST(test_plain_run)
{
	ref_run rr;
	init_run(&rr, 7);
	fill_run(&rr);
	assert_same(&rr);
	free_run(&rr);
}
END_TEST

START_TEST(test_one_test)
{
	ref_run rr;
	init_run(&rr, 1);
	rr.run.concurrency = 1;
	rr.run.retries = 1;
	rr.run.tests[0].name = strdup("only");
	attempt(&rr, 0, HYPERTEST_STATUS_SUCCESS, NULL, NULL, 1700000000300, 1700000000400, 100);
	assert_same(&rr);
	free_run(&rr);
}
END_TEST

/* A run with nothing to run (a rerun of a run without failures). */
START_TEST(test_no_tests)
{
	ref_run rr;
	init_run(&rr, 0);
	assert_same(&rr);
	rr.run.concurrency = 10;
	rr.run.retries = 3;
	assert_same(&rr);
	free_run(&rr);
}
END_TEST

/* Tests never started: no attempt recorded, the empty "attempts". */
START_TEST(test_not_started)
{
	ref_run rr;
	size_t i;
	init_run(&rr, 3);
	for (i = 0; i < 3; i++) {
		rr.run.tests[i].context = ctx("{\"id\": \"x\"}");
		ht_result_fail(&rr.run.tests[i], "cancelled before it started");
		rr.run.tests[i].start_ms = rr.run.tests[i].end_ms = 1700000000500;
	}
	rr.run.concurrency = 2;
	assert_same(&rr);
	free_run(&rr);
}
END_TEST

/* Every kind of test, with retries, a stop and cost. */
static void stopped_run_with_cost(ref_run *rr)
{
	init_run(rr, 7);
	fill_run(rr);
	rr->run.concurrency = 4;
	rr->run.retries = 2;
	rr->run.stopped_after = 1;
	rr->run.cost = ctx("{\"invocations\": 9, \"billedMs\": 1000.0, \"gbSeconds\": 0.9765625, "
	                   "\"pricePerGBSecond\": 1.66667e-05, \"dollars\": 1.8076e-05}");
}

/* ---- the report reads the file a test at a time ------------------------------------ */

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = calloc(1, 1 << 20);
	size_t n;
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, (1 << 20) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* The HTML page and the JUnit XML of a model, which goes. */
static void pages_of(ht_report *r, char **html, char **junit)
{
	char path[] = "/tmp/ht-results-junit-XXXXXX";
	ht_err err;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	ht_err_clear(&err);
	*html = ht_report_html(r);
	ck_assert_ptr_nonnull(*html);
	ck_assert_msg(ht_report_junit(r, path, &err) == HYPERTEST_OK, "%s", err.msg);
	*junit = read_all(path);
	unlink(path);
	ht_report_clear(r);
}

/* The HTML page and the JUnit XML of results text. */
static void report_of(const char *results, char **html, char **junit)
{
	ht_report r;
	ht_err err;

	ht_err_clear(&err);
	ck_assert_msg(ht_report_parse(&r, results, strlen(results), &err) == HYPERTEST_OK, "%s",
	              err.msg);
	pages_of(&r, html, junit);
}

/* got is want, byte for byte; on a difference, where it starts. */
static void assert_same_text(const char *what, const char *want, const char *got)
{
	size_t k = 0;

	while (want[k] && want[k] == got[k])
		k++;
	ck_assert_msg(!want[k] && !got[k],
	              "the %s differs at byte %zu:\nwant: ...%.200s\ngot:  ...%.200s", what, k,
	              want + (k > 60 ? k - 60 : 0), got + (k > 60 ? k - 60 : 0));
}

/* The report that hypertest invoke builds from the run's records is the
 * one its results file gives (hypertest report). */
static void assert_same_report(const ref_run *rr)
{
	char *text = ht_results_json(&rr->run), *html, *junit, *want_html, *want_junit;
	ht_report r;
	ht_err err;

	ck_assert_ptr_nonnull(text);
	report_of(text, &want_html, &want_junit);
	ht_err_clear(&err);
	ck_assert_msg(ht_report_from_run(&r, &rr->run, &err) == HYPERTEST_OK, "%s", err.msg);
	pages_of(&r, &html, &junit);
	assert_same_text("HTML", want_html, html);
	assert_same_text("JUnit XML", want_junit, junit);
	free(text);
	free(html);
	free(junit);
	free(want_html);
	free(want_junit);
}

/* A results file the one-at-a-time reading gives up on (a second
 * "testResults", the one that counts for JSON parsers) is read whole: its
 * report is the reference for the file without the first list. */
START_TEST(test_report_by_test)
{
	ref_run rr;
	char *text, *twice, *html, *junit, *whole_html, *whole_junit, *at;
	ht_report r;
	ht_err err;

	stopped_run_with_cost(&rr);
	text = ht_results_json(&rr.run);
	ck_assert_ptr_nonnull(text);
	at = strstr(text, "\n  \"testResults\": [");
	ck_assert_ptr_nonnull(at);
	twice = calloc(1, strlen(text) + 64);
	memcpy(twice, text, (size_t)(at - text) + 1);
	strcat(twice, "  \"testResults\": [{\"status\": \"failed\"}],");
	strcat(twice, at);
	report_of(text, &html, &junit);
	report_of(twice, &whole_html, &whole_junit);
	ck_assert_str_eq(html, whole_html);
	ck_assert_str_eq(junit, whole_junit);
	/* what the model holds: the strings copied, the attempts of the tests
	 * that had more than one */
	ht_err_clear(&err);
	ck_assert_int_eq(ht_report_parse(&r, text, strlen(text), &err), HYPERTEST_OK);
	ck_assert_uint_eq(r.n, 7);
	ck_assert_str_eq(r.tests[0].name, "passes \"quoted\" \xc3\xa9");
	ck_assert_str_eq(r.tests[1].message, "expected 1\n to be 2 \x7f");
	ck_assert_str_eq(r.tests[1].stack, "stack\r\nline");
	ck_assert_uint_eq(json_array_size(r.tests[1].attempts), 3);
	ck_assert_int_eq(r.tests[2].flaky, 1);
	ck_assert_ptr_null(r.tests[0].attempts);
	ck_assert_int_eq(r.tests[1].start_ms, 1700000000200);
	ck_assert_int_eq(r.tests[1].end_ms, 1700000000290);
	ck_assert_int_eq(r.tests[2].duration, 9);
	ck_assert_int_eq(r.tests[0].expected, 1500);
	ck_assert_int_eq(r.tests[1].expected, -1);
	ck_assert_str_eq(r.tests[3].name, "unknown");
	ck_assert_str_eq(r.tests[3].message, "not run: stopped after 1 failures");
	ck_assert_ptr_null(r.tests[4].message); /* not UTF-8: not in the file */
	ck_assert_ptr_nonnull(r.tests[0].cost);
	ck_assert_str_eq(r.stopped_message, "stopped after 1 failures");
	ck_assert_uint_eq(r.counts[HYPERTEST_STATUS_FAILED], 3);
	ht_report_clear(&r);
	free(text);
	free(twice);
	free(html);
	free(junit);
	free(whole_html);
	free(whole_junit);
	free_run(&rr);
}
END_TEST

START_TEST(test_report_from_run)
{
	ref_run rr;
	ht_report r;
	ht_err err;
	size_t i;

	stopped_run_with_cost(&rr);
	assert_same_report(&rr);
	ht_err_clear(&err);
	ck_assert_int_eq(ht_report_from_run(&r, &rr.run, &err), HYPERTEST_OK);
	ck_assert_ptr_null(r.tests[4].message); /* not UTF-8: not in the file either */
	ck_assert_ptr_null(r.tests[4].stack);
	ck_assert_str_eq(r.tests[6].message, ""); /* failed without one */
	ck_assert_ptr_null(r.tests[0].message);
	ck_assert_uint_eq(json_array_size(r.tests[1].attempts), 3);
	ck_assert_ptr_nonnull(r.tests[1].cost);
	ck_assert_str_eq(r.run_id, rr.run.run_id);
	ht_report_clear(&r);
	/* without cost: no test's cost either */
	json_decref(rr.run.cost);
	rr.run.cost = NULL;
	assert_same_report(&rr);
	ck_assert_int_eq(ht_report_from_run(&r, &rr.run, &err), HYPERTEST_OK);
	for (i = 0; i < r.n; i++)
		ck_assert_ptr_null(r.tests[i].cost);
	ht_report_clear(&r);
	free_run(&rr);
	/* no tests; tests never started */
	init_run(&rr, 0);
	assert_same_report(&rr);
	free_run(&rr);
	init_run(&rr, 3);
	for (i = 0; i < 3; i++) {
		rr.run.tests[i].context = ctx("{\"id\": \"x\"}");
		ht_result_fail(&rr.run.tests[i], "cancelled before it started");
		rr.run.tests[i].start_ms = rr.run.tests[i].end_ms = 1700000000500;
	}
	assert_same_report(&rr);
	free_run(&rr);
}
END_TEST

/* The payload of a test's attempt, as the JSON tree gave it. */
static char *ref_payload(const char *run_id, const ht_test_result *t, json_t *fields)
{
	json_t *p = json_object();
	char *text;
	json_object_set_new(p, "runId", json_string(run_id));
	json_object_set_new(p, "testId", json_string(t->test_id));
	json_object_set(p, "context", t->context);
	if (t->attempts > 1)
		json_object_set_new(p, "attempt", json_integer(t->attempts));
	if (fields)
		json_object_update_missing(p, fields);
	text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(p);
	return text;
}

/* ht_payload builds the common case by hand: the same bytes, for contexts
 * of every JSON type, first and later attempts, ids JSON would escape,
 * extra fields. */
START_TEST(test_payload)
{
	static const char *const run_ids[] = {"6d3c2f9e-1b0a-4c5d-8e7f-0123456789ab", "run \"one\""};
	json_t *fields = ctx("{\"runId\": \"ignored\", \"deadline\": 12, \"extra\": [1, \"x\"]}");
	ref_run rr;
	size_t i, r, f;

	init_run(&rr, 7);
	fill_run(&rr);
	rr.run.tests[3].context = json_string("a scalar context");
	for (r = 0; r < 2; r++)
		for (f = 0; f < 2; f++)
			for (i = 0; i < 7; i++) {
				ht_test_result *t = &rr.run.tests[i];
				for (int a = 1; a <= 3; a += 2) {
					int saved = t->attempts;
					char *want, *got;
					t->attempts = a;
					want = ref_payload(run_ids[r], t, f ? fields : NULL);
					got = ht_payload(run_ids[r], t, f ? fields : NULL);
					t->attempts = saved;
					ck_assert_ptr_nonnull(got);
					assert_same_text("payload", want, got);
					free(want);
					free(got);
				}
			}
	/* the context's text is kept for the results */
	ck_assert_ptr_nonnull(rr.run.tests[0].context_text);
	for (i = 0; i < 7; i++) {
		free(rr.run.tests[i].context_text);
		rr.run.tests[i].context_text = NULL;
	}
	json_decref(fields);
	free_run(&rr);
}
END_TEST

/* What is wrong with a file is said as before: where, or which test. */
START_TEST(test_report_errors)
{
	static const char *const bad[][2] = {
	    {"{\"runId\": \"r\", \"testResults\": [{}, 3]}", "testResults[1] is not an object"},
	    {"{\"runId\": \"r\", \"testResults\": [{}, ]}", "line 1, column 36"},
	    {"{\"runId\": \"r\", \"testResults\": {}}", "'runId' and 'testResults'"},
	    {"{\"testResults\": []}", "'runId' and 'testResults'"},
	    {"[]", "'runId' and 'testResults'"},
	    {"{\"runId\": \"r\", \"testResults\": []} x", "end of file expected"},
	};
	size_t k;

	for (k = 0; k < sizeof bad / sizeof *bad; k++) {
		ht_report r;
		ht_err err;
		ht_err_clear(&err);
		ck_assert_int_ne(ht_report_parse(&r, bad[k][0], strlen(bad[k][0]), &err), HYPERTEST_OK);
		ck_assert_msg(strstr(err.msg, bad[k][1]) != NULL, "%s: %s", bad[k][0], err.msg);
		ht_report_clear(&r);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("results");
	TCase *tc = tcase_create("file");
	tcase_add_test(tc, test_full_run);
	tcase_add_test(tc, test_plain_run);
	tcase_add_test(tc, test_one_test);
	tcase_add_test(tc, test_no_tests);
	tcase_add_test(tc, test_not_started);
	tcase_add_test(tc, test_report_by_test);
	tcase_add_test(tc, test_report_from_run);
	tcase_add_test(tc, test_payload);
	tcase_add_test(tc, test_report_errors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
