/*
 * results.c - function responses turned into test results, and what a run
 * tells the embedder of them (hypertest_run_*).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* The largest duration a response may report, in milliseconds (about 31
 * years): far beyond any run, far below what an int64_t holds. */
#define HT_DURATION_MAX 1e12

void ht_test_result_clear(ht_test_result *r)
{
	free(r->name);
	free(r->file_path);
	free(r->message);
	free(r->stack_trace);
	free(r->warnings);
	r->name = r->file_path = r->message = r->stack_trace = r->warnings = NULL;
}

/* The response's "warnings" (an addition to the TypeScript format: what
 * the function could not do, such as artifacts not stored), one a line;
 * anything but an array of strings is ignored. */
static void take_warnings(ht_test_result *r, json_t *doc)
{
	json_t *w = json_object_get(doc, "warnings"), *item;
	ht_buf b = HT_BUF_INIT;
	size_t i;

	if (!json_is_array(w))
		return;
	json_array_foreach(w, i, item) {
		const char *s = json_string_value(item);
		size_t k;
		if (!s || !*s)
			continue;
		if (b.len)
			ht_buf_puts(&b, "\n");
		for (k = 0; s[k]; k++) /* one line each */
			ht_buf_append(&b, s[k] == '\n' || s[k] == '\r' ? " " : &s[k], 1);
	}
	free(r->warnings);
	r->warnings = b.len ? ht_buf_steal(&b) : NULL;
	ht_buf_free(&b);
}

void ht_result_fail(ht_test_result *r, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->status = HYPERTEST_STATUS_FAILED;
	free(r->message);
	r->message = ht_strdup(msg);
	free(r->stack_trace);
	r->stack_trace = NULL;
	r->duration = -1;
}

/* A short, printable excerpt of a response for messages. */
static void excerpt(const char *s, size_t len, char out[120])
{
	size_t i, n = len < 100 ? len : 100;
	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[n] = '\0';
	if (len > n)
		strcat(out, "...");
}

static int opt_string(json_t *obj, const char *key, char **out, ht_test_result *r)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		ht_result_fail(r, "malformed function response: '%s' must be a string", key);
		return -1;
	}
	free(*out);
	*out = ht_strdup(json_string_value(v));
	return 0;
}

void ht_result_from_response(ht_test_result *r, const char *response, size_t len,
                             size_t max_len)
{
	json_error_t jerr;
	json_t *doc, *success, *dur;
	char ex[120];

	r->duration = -1;
	if (len > max_len) {
		ht_result_fail(r, "function response too large: %zu bytes (the limit is %zu)", len,
		               max_len);
		return;
	}
	if (!response || len == 0) {
		ht_result_fail(r, "empty function response");
		return;
	}
	doc = json_loadb(response, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		excerpt(response, len, ex);
		ht_result_fail(r, "function response is not JSON (%d:%d: %s): %s", jerr.line,
		               jerr.column, jerr.text, ex);
		return;
	}
	if (!json_is_object(doc)) {
		excerpt(response, len, ex);
		ht_result_fail(r, "function response is not a JSON object: %s", ex);
		json_decref(doc);
		return;
	}
	success = json_object_get(doc, "success");
	/* A function that threw: Lambda's {"errorMessage", "errorType", "stackTrace"}. */
	if (!success && json_is_string(json_object_get(doc, "errorMessage"))) {
		json_t *st = json_object_get(doc, "stackTrace");
		ht_result_fail(r, "function error: %s%s%s",
		               json_is_string(json_object_get(doc, "errorType"))
		                   ? json_string_value(json_object_get(doc, "errorType"))
		                   : "",
		               json_is_string(json_object_get(doc, "errorType")) ? ": " : "",
		               json_string_value(json_object_get(doc, "errorMessage")));
		if (json_is_array(st)) {
			ht_buf b = HT_BUF_INIT;
			size_t i;
			for (i = 0; i < json_array_size(st); i++)
				if (json_is_string(json_array_get(st, i)))
					ht_buf_printf(&b, "%s%s", i ? "\n" : "",
					              json_string_value(json_array_get(st, i)));
			r->stack_trace = ht_buf_steal(&b);
		}
		json_decref(doc);
		return;
	}
	if (json_is_true(success))
		r->status = HYPERTEST_STATUS_SUCCESS;
	else if (json_is_false(success))
		r->status = HYPERTEST_STATUS_FAILED;
	else if (json_is_string(success) && !strcmp(json_string_value(success), "skipped"))
		r->status = HYPERTEST_STATUS_SKIPPED;
	else {
		ht_result_fail(r, success ? "malformed function response: 'success' must be true, false "
		                            "or \"skipped\""
		                          : "malformed function response: no 'success' member");
		json_decref(doc);
		return;
	}
	if (opt_string(doc, "name", &r->name, r) || opt_string(doc, "filePath", &r->file_path, r) ||
	    opt_string(doc, "message", &r->message, r) ||
	    opt_string(doc, "stackTrace", &r->stack_trace, r)) {
		json_decref(doc);
		return;
	}
	dur = json_object_get(doc, "duration");
	if (dur && !json_is_null(dur)) {
		if (!json_is_number(dur) || !(json_number_value(dur) >= 0) ||
		    json_number_value(dur) > HT_DURATION_MAX) {
			ht_result_fail(r, "malformed function response: 'duration' must be a number of "
			                  "milliseconds from 0 to %.0f",
			               HT_DURATION_MAX);
			json_decref(doc);
			return;
		}
		r->duration = (int64_t)(json_number_value(dur) + 0.5);
	}
	if (r->status == HYPERTEST_STATUS_FAILED && !r->message)
		r->message = ht_strdup("malformed function response: a failed test without 'message'");
	take_warnings(r, doc);
	json_decref(doc);
}

/* ---- hypertest_run accessors ----------------------------------------------- */

const char *hypertest_run_id(const hypertest_run *run)
{
	return run ? run->run_id : NULL;
}

size_t hypertest_run_total(const hypertest_run *run)
{
	return run ? run->n : 0;
}

size_t hypertest_run_count(const hypertest_run *run, int status)
{
	if (!run || status < 0 || status > 2)
		return 0;
	return run->counts[status];
}

int64_t hypertest_run_duration(const hypertest_run *run)
{
	return run ? run->end_ms - run->start_ms : -1;
}

int hypertest_run_test_status(const hypertest_run *run, size_t i)
{
	return run && i < run->n ? run->tests[i].status : -1;
}

int64_t hypertest_run_test_duration(const hypertest_run *run, size_t i)
{
	return run && i < run->n ? run->tests[i].duration : -1;
}

const char *hypertest_run_test_str(const hypertest_run *run, size_t i, int field)
{
	const ht_test_result *t;

	if (!run || i >= run->n)
		return NULL;
	t = &run->tests[i];
	switch (field) {
	case HYPERTEST_TEST_ID: return t->test_id;
	case HYPERTEST_TEST_NAME: return t->name ? t->name : "unknown";
	case HYPERTEST_TEST_FILE_PATH: return t->file_path ? t->file_path : "unknown";
	case HYPERTEST_TEST_MESSAGE: return t->message;
	case HYPERTEST_TEST_STACK_TRACE: return t->stack_trace;
	case HYPERTEST_TEST_START_DATE: return t->start_date;
	case HYPERTEST_TEST_END_DATE: return t->end_date;
	case HYPERTEST_TEST_CONTEXT: return t->context_text;
	default: return NULL;
	}
}

size_t hypertest_run_flaky(const hypertest_run *run)
{
	return run ? run->flaky : 0;
}

int hypertest_run_test_attempts(const hypertest_run *run, size_t i)
{
	return run && i < run->n ? run->tests[i].attempts : -1;
}

const char *hypertest_run_results_json(const hypertest_run *run)
{
	return run ? run->results_json : NULL;
}

const char *hypertest_run_results_path(const hypertest_run *run)
{
	return run ? run->results_path : NULL;
}

void hypertest_run_free(hypertest_run *run)
{
	size_t i;
	if (!run)
		return;
	for (i = 0; i < run->n; i++) {
		ht_test_result_clear(&run->tests[i]);
		json_decref(run->tests[i].context);
		ht_attempt_log_clear(&run->tests[i]);
		json_decref(run->tests[i].usage);
		free(run->tests[i].context_text);
	}
	free(run->tests);
	free(run->run_id);
	free(run->results_json);
	free(run->results_path);
	json_decref(run->cost);
	free(run);
}
