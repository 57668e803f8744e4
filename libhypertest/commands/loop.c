/*
 * loop.c - the test engineer's loop around invoke: the options of the next
 * invokes (hypertest_set_invoke_option), the selection of the tests that
 * run (--only, --grep, --grep-invert, --rerun, --last-failed), the record
 * of each attempt of a retried test, and the fields these add to the
 * results file ("flaky", "attempts", "stopped").
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static const char *const status_names[] = {"success", "failed", "skipped"};

/* ---- options ------------------------------------------------------------------ */

static const char *option_key(int option)
{
	switch (option) {
	case HYPERTEST_INVOKE_ONLY: return "only";
	case HYPERTEST_INVOKE_GREP: return "grep";
	case HYPERTEST_INVOKE_GREP_INVERT: return "grepInvert";
	case HYPERTEST_INVOKE_RERUN: return "rerun";
	case HYPERTEST_INVOKE_LAST_FAILED: return "lastFailed";
	case HYPERTEST_INVOKE_MAX_FAILURES: return "maxFailures";
	default: return NULL;
	}
}

int hypertest_set_invoke_option(hypertest *h, int option, const char *value)
{
	const char *key = option_key(option);
	json_t *v = NULL;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	if (!key)
		return ht_fail(h, HYPERTEST_ERR_INVALID, "unknown invoke option %d", option);
	if (!h->invoke_opts && !(h->invoke_opts = json_object()))
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	if (!value) {
		json_object_del(h->invoke_opts, key);
		return HYPERTEST_OK;
	}
	switch (option) {
	case HYPERTEST_INVOKE_GREP:
	case HYPERTEST_INVOKE_GREP_INVERT: {
		regex_t re;
		int rc = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char msg[256];
			regerror(rc, &re, msg, sizeof msg);
			return ht_fail(h, HYPERTEST_ERR_INVALID, "--%s '%s': invalid regular expression: %s",
			               option == HYPERTEST_INVOKE_GREP ? "grep" : "grep-invert", value, msg);
		}
		regfree(&re);
		v = json_string(value);
		break;
	}
	case HYPERTEST_INVOKE_MAX_FAILURES: {
		char *end;
		long n = strtol(value, &end, 10);
		if (!*value || *end || n <= 0 || n > 1000000000L)
			return ht_fail(h, HYPERTEST_ERR_INVALID,
			               "--max-failures '%s': expected a positive whole number", value);
		v = json_integer(n);
		break;
	}
	case HYPERTEST_INVOKE_ONLY: {
		json_t *list = json_object_get(h->invoke_opts, key);
		if (!list) {
			list = json_array();
			if (!list || json_object_set_new(h->invoke_opts, key, list))
				return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		}
		if (json_array_append_new(list, json_string(value)))
			return ht_fail(h, HYPERTEST_ERR_INVALID, "--only '%s': not UTF-8 text", value);
		return HYPERTEST_OK;
	}
	case HYPERTEST_INVOKE_LAST_FAILED: v = json_true(); break;
	default: v = json_string(value); break;
	}
	if (!v)
		return ht_fail(h, HYPERTEST_ERR_INVALID, "invoke option '%s': not UTF-8 text", value);
	if (json_object_set_new(h->invoke_opts, key, v))
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	return HYPERTEST_OK;
}

long ht_invoke_max_failures(hypertest *h)
{
	json_t *v = h->invoke_opts ? json_object_get(h->invoke_opts, "maxFailures") : NULL;
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* ---- attempts ----------------------------------------------------------------- */

void ht_attempt_record(ht_test_result *t, int64_t end_ms)
{
	json_t *a = json_object();
	char date[32];
	int64_t duration = t->status == HYPERTEST_STATUS_SUCCESS && t->duration >= 0
	                       ? t->duration
	                       : end_ms - t->attempt_start_ms;

	if (!a)
		return;
	if (!t->attempt_log && !(t->attempt_log = json_array())) {
		json_decref(a);
		return;
	}
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
	json_array_append_new(t->attempt_log, a);
}

void ht_attempt_reset(ht_test_result *t)
{
	free(t->message);
	free(t->stack_trace);
	t->message = t->stack_trace = NULL;
	t->status = HYPERTEST_STATUS_FAILED;
	t->duration = -1;
}

/* ---- results file fields -------------------------------------------------------- */

char *ht_results_add_loop_fields(char *text, const hypertest_run *run)
{
	json_t *doc, *list, *counts;
	char *out;
	size_t i;

	if (!text)
		return NULL;
	doc = json_loads(text, 0, NULL);
	list = json_object_get(doc, "testResults");
	counts = json_object_get(doc, "tests");
	if (!doc || !json_is_array(list) || json_array_size(list) != run->n) {
		json_decref(doc);
		return text;
	}
	for (i = 0; i < run->n; i++) {
		const ht_test_result *t = &run->tests[i];
		json_t *e = json_array_get(list, i);
		if (t->flaky)
			json_object_set_new(e, "flaky", json_true());
		if (t->status == HYPERTEST_STATUS_SKIPPED && t->message)
			json_object_set_new(e, "message", json_string(t->message));
		json_object_set_new(e, "attempts",
		                    t->attempt_log ? json_incref(t->attempt_log) : json_array());
	}
	/* "flaky" when retries were on: a run without them keeps the counts of
	 * the TypeScript version as they were */
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
	if (!out)
		return text;
	free(text);
	return out;
}

/* ---- selection ------------------------------------------------------------------- */

/* The name a context gives its test before it ran: the runner's "name",
 * "id", "nodeid" or "grep" member, else the context as compact JSON. */
static char *context_name(json_t *ctx)
{
	static const char *const keys[] = {"name", "id", "nodeid", "grep", NULL};
	size_t k;

	for (k = 0; keys[k]; k++)
		if (json_is_string(json_object_get(ctx, keys[k])))
			return ht_strdup(json_string_value(json_object_get(ctx, keys[k])));
	return json_dumps(ctx, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* A results file's testResults, or NULL (with an error on h) */
static json_t *load_results(hypertest *h, const char *path, const char *what)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	json_t *list;

	if (!doc) {
		ht_fail(h, HYPERTEST_ERR_IO, "%s %s: %s (line %d, column %d)", what, path, jerr.text,
		        jerr.line, jerr.column);
		return NULL;
	}
	list = json_object_get(doc, "testResults");
	if (!json_is_array(list)) {
		ht_fail(h, HYPERTEST_ERR_INVALID, "%s %s: no 'testResults' array (not a results file)",
		        what, path);
		json_decref(doc);
		return NULL;
	}
	json_incref(list);
	json_decref(doc);
	return list;
}

/* Whether a results entry failed or was not run. */
static int entry_wants_rerun(json_t *e)
{
	const char *status = json_string_value(json_object_get(e, "status"));
	json_t *err = json_object_get(e, "error");
	const char *msg = json_string_value(json_object_get(e, "message"));

	if (!msg && json_is_object(err))
		msg = json_string_value(json_object_get(err, "message"));
	if (!status || !strcmp(status, "failed"))
		return 1;
	return !strcmp(status, "skipped") && msg && !strncmp(msg, "not run", 7);
}

/* The entry of list for a context: same context, else same name. */
static json_t *find_entry(json_t *list, json_t *ctx, const char *cname)
{
	size_t i;
	json_t *e;

	json_array_foreach(list, i, e) {
		json_t *c = json_object_get(e, "context");
		if (c && json_equal(c, ctx))
			return e;
	}
	json_array_foreach(list, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));
		if (!json_object_get(e, "context") && n && cname && !strcmp(n, cname))
			return e;
	}
	return NULL;
}

static int name_matches(const regex_t *re, const char *a, const char *b)
{
	return (a && regexec(re, a, 0, NULL, 0) == 0) || (b && regexec(re, b, 0, NULL, 0) == 0);
}

int ht_select_tests(hypertest *h, json_t *contexts, json_t **out, char **why)
{
	json_t *opts = h->invoke_opts, *only = NULL, *prev = NULL, *rerun = NULL, *sel = NULL;
	const char *grep = NULL, *grep_inv = NULL, *rerun_path = NULL;
	regex_t re, re_inv;
	int have_re = 0, have_inv = 0, rc = HYPERTEST_OK;
	char *results_path = NULL, *matched_only = NULL;
	ht_buf desc = HT_BUF_INIT;
	size_t i, k;
	json_t *ctx;

	*out = NULL;
	*why = NULL;
	if (opts) {
		only = json_object_get(opts, "only");
		grep = json_string_value(json_object_get(opts, "grep"));
		grep_inv = json_string_value(json_object_get(opts, "grepInvert"));
		rerun_path = json_string_value(json_object_get(opts, "rerun"));
	}
	if (!only && !grep && !grep_inv && !rerun_path &&
	    !(opts && json_is_true(json_object_get(opts, "lastFailed")))) {
		*out = json_incref(contexts);
		return HYPERTEST_OK;
	}
	/* The project's last results: names of tests by context, and --last-failed. */
	results_path = ht_abspath(h->project_dir, ht_config_str(h->cfg, "resultsFileName"));
	if (results_path && !access(results_path, F_OK)) {
		prev = load_results(h, results_path, "results file");
		ht_err_clear(&h->err);
	}
	if (opts && json_is_true(json_object_get(opts, "lastFailed"))) {
		if (!prev) {
			rc = ht_fail(h, HYPERTEST_ERR_NOT_FOUND,
			             "--last-failed: no results file %s (run 'hypertest invoke' first)",
			             results_path ? results_path : "");
			goto out;
		}
		rerun = json_incref(prev);
		ht_buf_printf(&desc, "the tests that failed or did not run in %s", results_path);
	}
	if (rerun_path) {
		char *p = ht_abspath(h->project_dir, rerun_path);
		json_t *list = p ? load_results(h, p, "--rerun") : NULL;
		if (!list) {
			free(p);
			rc = h->err.code ? h->err.code : HYPERTEST_ERR_NOMEM;
			goto out;
		}
		if (rerun) {
			json_array_extend(rerun, list);
			json_decref(list);
		} else {
			rerun = list;
		}
		ht_buf_printf(&desc, "%sthe tests that failed or did not run in %s",
		              desc.len ? " and " : "", p);
		free(p);
	}
	if (grep && regcomp(&re, grep, REG_EXTENDED | REG_NOSUB) == 0)
		have_re = 1;
	if (grep_inv && regcomp(&re_inv, grep_inv, REG_EXTENDED | REG_NOSUB) == 0)
		have_inv = 1;
	if ((grep && !have_re) || (grep_inv && !have_inv)) {
		rc = ht_fail(h, HYPERTEST_ERR_INVALID, "invalid regular expression '%s'",
		             grep && !have_re ? grep : grep_inv);
		goto out;
	}
	matched_only = calloc(json_array_size(only) + 1, 1);
	sel = json_array();
	if (!sel || !matched_only) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(contexts, i, ctx) {
		char *cname = context_name(ctx);
		json_t *last = prev ? find_entry(prev, ctx, cname) : NULL;
		const char *lname = last ? json_string_value(json_object_get(last, "name")) : NULL;
		const char *lid = last ? json_string_value(json_object_get(last, "testId")) : NULL;
		int keep = 1;

		if (lname && !strcmp(lname, "unknown"))
			lname = NULL;
		if (rerun) {
			json_t *e = find_entry(rerun, ctx, cname);
			keep = e && entry_wants_rerun(e);
		}
		if (keep && only) {
			int any = 0;
			for (k = 0; k < json_array_size(only); k++) {
				const char *w = json_string_value(json_array_get(only, k));
				if ((cname && !strcmp(w, cname)) || (lname && !strcmp(w, lname)) ||
				    (lid && !strcmp(w, lid))) {
					any = 1;
					matched_only[k] = 1;
				}
			}
			keep = any;
		}
		if (keep && have_re)
			keep = name_matches(&re, cname, lname);
		if (keep && have_inv)
			keep = !(regexec(&re_inv, cname ? cname : "", 0, NULL, 0) == 0 ||
			         (lname && regexec(&re_inv, lname, 0, NULL, 0) == 0));
		if (keep)
			json_array_append(sel, ctx);
		free(cname);
	}
	for (k = 0; k < json_array_size(only); k++)
		if (!matched_only[k]) {
			rc = ht_fail(h, HYPERTEST_ERR_NOT_FOUND, "--only '%s': no test has that id or name",
			             json_string_value(json_array_get(only, k)));
			goto out;
		}
	if (only)
		ht_buf_printf(&desc, "%s%zu test%s named by --only", desc.len ? ", " : "",
		              json_array_size(only), json_array_size(only) == 1 ? "" : "s");
	if (grep)
		ht_buf_printf(&desc, "%snames matching '%s'", desc.len ? ", " : "", grep);
	if (grep_inv)
		ht_buf_printf(&desc, "%snames not matching '%s'", desc.len ? ", " : "", grep_inv);
	if (json_array_size(sel) == 0 && !rerun) {
		rc = ht_fail(h, HYPERTEST_ERR_NOT_FOUND, "no test matches the selection (%s)",
		             desc.data ? desc.data : "the selection");
		goto out;
	}
	*out = sel;
	sel = NULL;
	*why = ht_buf_steal(&desc);
out:
	if (have_re)
		regfree(&re);
	if (have_inv)
		regfree(&re_inv);
	ht_buf_free(&desc);
	json_decref(sel);
	json_decref(prev);
	json_decref(rerun);
	free(matched_only);
	free(results_path);
	return rc;
}
