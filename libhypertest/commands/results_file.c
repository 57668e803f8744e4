/*
 * results_file.c - the results file of DESIGN.md ("Results file") of a
 * finished run, written in one pass from the tests' records: the run's
 * members around an empty "testResults", then each test's entry built,
 * serialized into place and freed before the next one, so that the whole
 * document never exists as a JSON tree.  The bytes are those jansson
 * writes for the whole document (JSON_INDENT(2), members in insertion
 * order): an entry sits two levels deep, so each line break of its own
 * serialization is followed by four more spaces.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static const char *const status_names[] = {"success", "failed", "skipped"};

#define DUMP_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER)
#define ENTRY_INDENT "    " /* testResults[i] of the document */

/* A failed attempt's or test's "error": {"message", "stackTrace"}. */
static json_t *error_object(const char *message, const char *stack_trace)
{
	json_t *error = json_object();
	json_object_set_new(error, "message", json_string(message ? message : ""));
	if (stack_trace)
		json_object_set_new(error, "stackTrace", json_string(stack_trace));
	return error;
}

json_t *ht_results_attempts(const ht_test_result *t)
{
	json_t *list = json_array();
	char date[32];
	int i;

	for (i = 0; list && i < t->n_attempt_log; i++) {
		const ht_attempt *at = &t->attempt_log[i];
		json_t *a = json_object();
		json_object_set_new(a, "status", json_string(status_names[at->status]));
		ht_iso8601(at->start_ms, date);
		json_object_set_new(a, "startDate", json_string(date));
		ht_iso8601(at->end_ms, date);
		json_object_set_new(a, "endDate", json_string(date));
		json_object_set_new(a, "duration", json_integer((json_int_t)at->duration));
		if (at->status == HYPERTEST_STATUS_FAILED)
			json_object_set_new(a, "error", error_object(at->message, at->stack_trace));
		json_array_append_new(list, a);
	}
	return list;
}

/* The members of the TypeScript schema, then the ones added beside them. */
static void entry_base(json_t *e, const char *run_id, const ht_test_result *t)
{
	char date[32], key[256];
	json_t *a;

	json_object_set_new(e, "testId", json_string(t->test_id));
	json_object_set_new(e, "name", json_string(t->name ? t->name : "unknown"));
	json_object_set_new(e, "filePath", json_string(t->file_path ? t->file_path : "unknown"));
	json_object_set_new(e, "status", json_string(status_names[t->status]));
	ht_iso8601(t->start_ms, date);
	json_object_set_new(e, "startDate", json_string(date));
	ht_iso8601(t->end_ms, date);
	json_object_set_new(e, "endDate", json_string(date));
	json_object_set_new(e, "duration", json_integer((json_int_t)t->duration));
	if (t->status == HYPERTEST_STATUS_FAILED)
		json_object_set_new(e, "error", error_object(t->message, t->stack_trace));
	if (t->context)
		json_object_set(e, "context", t->context);
	json_object_set_new(e, "startTime", json_integer((json_int_t)t->start_ms));
	json_object_set_new(e, "endTime", json_integer((json_int_t)t->end_ms));
	if (t->expected_ms >= 0)
		json_object_set_new(e, "expectedDuration", json_integer((json_int_t)t->expected_ms));
	if (t->status == HYPERTEST_STATUS_SKIPPED && t->message)
		json_object_set_new(e, "skipMessage", json_string(t->message));
	a = json_object();
	snprintf(key, sizeof key, "%s/%s/", run_id, t->test_id);
	json_object_set_new(a, "prefix", json_string(key));
	snprintf(key, sizeof key, "%s/%s/stdout.log", run_id, t->test_id);
	json_object_set_new(a, "stdout", json_string(key));
	snprintf(key, sizeof key, "%s/%s/stderr.log", run_id, t->test_id);
	json_object_set_new(a, "stderr", json_string(key));
	json_object_set_new(e, "artifacts", a);
	if (t->warnings) {
		json_t *w = json_array();
		const char *line = t->warnings, *nl;
		for (; line; line = nl ? nl + 1 : NULL) {
			nl = strchr(line, '\n');
			json_array_append_new(w, json_stringn(line, nl ? (size_t)(nl - line) : strlen(line)));
		}
		json_object_set_new(e, "warnings", w);
	}
}

/* One test's entry: the base members, the loop's ("flaky", "message" of a
 * test not run, "attempts") and its "cost" when the run has one. */
static json_t *entry_object(const hypertest_run *run, const ht_test_result *t)
{
	json_t *e = json_object();

	if (!e)
		return NULL;
	entry_base(e, run->run_id, t);
	if (t->flaky)
		json_object_set_new(e, "flaky", json_true());
	if (t->status == HYPERTEST_STATUS_SKIPPED && t->message)
		json_object_set_new(e, "message", json_string(t->message));
	json_object_set_new(e, "attempts", ht_results_attempts(t));
	if (run->cost && t->usage)
		json_object_set(e, "cost", t->usage);
	return e;
}

/* The run's members, with "testResults" an empty array. */
json_t *ht_results_doc(const hypertest_run *run)
{
	json_t *doc = json_object(), *counts = json_object();
	size_t count[3] = {0, 0, 0}, i;
	char date[32];

	if (!doc || !counts) {
		json_decref(doc);
		json_decref(counts);
		return NULL;
	}
	for (i = 0; i < run->n; i++)
		count[run->tests[i].status]++;
	json_object_set_new(doc, "runId", json_string(run->run_id));
	ht_iso8601(run->start_ms, date);
	json_object_set_new(doc, "startDate", json_string(date));
	ht_iso8601(run->end_ms, date);
	json_object_set_new(doc, "endDate", json_string(date));
	json_object_set_new(doc, "duration", json_integer((json_int_t)(run->end_ms - run->start_ms)));
	json_object_set_new(counts, "total", json_integer((json_int_t)run->n));
	json_object_set_new(counts, "success", json_integer((json_int_t)count[0]));
	json_object_set_new(counts, "skipped", json_integer((json_int_t)count[2]));
	json_object_set_new(counts, "failed", json_integer((json_int_t)count[1]));
	/* "flaky" when retries were on: a run without them keeps the counts of
	 * the TypeScript version as they were */
	if (run->retries > 0)
		json_object_set_new(counts, "flaky", json_integer((json_int_t)run->flaky));
	json_object_set_new(doc, "tests", counts);
	json_object_set_new(doc, "testResults", json_array());
	if (run->concurrency > 0)
		json_object_set_new(doc, "concurrency", json_integer((json_int_t)run->concurrency));
	if (run->stopped_after > 0) {
		json_t *s = json_object();
		char msg[96];
		snprintf(msg, sizeof msg, "stopped after %ld failures", run->stopped_after);
		json_object_set_new(s, "maxFailures", json_integer(run->stopped_after));
		json_object_set_new(s, "message", json_string(msg));
		json_object_set_new(doc, "stopped", s);
	}
	if (run->cost)
		json_object_set(doc, "cost", run->cost);
	return doc;
}

/* json_dump_callback's sink: an entry's serialization, each line break
 * followed by the entry's depth in the document. */
static int put_indented(const char *s, size_t len, void *data)
{
	ht_buf *b = data;
	const char *nl;

	while ((nl = memchr(s, '\n', len)) != NULL) {
		size_t k = (size_t)(nl - s) + 1;
		if (ht_buf_append(b, s, k) || ht_buf_puts(b, ENTRY_INDENT))
			return -1;
		s += k;
		len -= k;
	}
	return ht_buf_append(b, s, len) ? -1 : 0;
}

static int put_entries(ht_buf *b, const hypertest_run *run)
{
	size_t i;

	for (i = 0; i < run->n; i++) {
		json_t *e = entry_object(run, &run->tests[i]);
		int bad = !e || ht_buf_puts(b, i ? ",\n" ENTRY_INDENT : "\n" ENTRY_INDENT) ||
		          json_dump_callback(e, put_indented, b, DUMP_FLAGS) != 0;
		json_decref(e);
		if (bad)
			return -1;
	}
	return run->n ? ht_buf_puts(b, "\n  ") : 0;
}

char *ht_results_json(const hypertest_run *run)
{
	static const char slot[] = "\n  \"testResults\": [";
	json_t *doc = ht_results_doc(run);
	char *head = doc ? json_dumps(doc, DUMP_FLAGS) : NULL;
	/* the first such line is the member's: the ones before it are the run
	 * id, dates and counts, whose strings hold no line break */
	char *at = head ? strstr(head, slot) : NULL;
	ht_buf b = HT_BUF_INIT;
	char *text = NULL;

	json_decref(doc);
	if (at && at[sizeof slot - 1] == ']') {
		at += sizeof slot - 1;
		if (!ht_buf_append(&b, head, (size_t)(at - head)) && !put_entries(&b, run) &&
		    !ht_buf_puts(&b, at)) {
			/* the buffer grew by doubling: give back what the text
			 * does not use (kept for the run's life) */
			char *fit = realloc(b.data, b.len + 1);
			if (fit) {
				b.data = fit;
				b.cap = b.len + 1;
			}
			text = ht_buf_steal(&b);
		}
	}
	ht_buf_free(&b);
	free(head);
	return text;
}
