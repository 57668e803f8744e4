/*
 * loop.c - the test engineer's loop around invoke: the options of the next
 * invokes (hypertest_set_invoke_option), the selection of the tests that
 * run (--only, --grep, --grep-invert, --rerun, --last-failed), and the
 * record of each attempt of a test (the results file's "attempts").
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

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
	ht_attempt *log = realloc(t->attempt_log, ((size_t)t->n_attempt_log + 1) * sizeof *log), *a;

	if (!log)
		return;
	t->attempt_log = log;
	a = &log[t->n_attempt_log++];
	a->status = t->status;
	a->start_ms = t->attempt_start_ms;
	a->end_ms = end_ms;
	a->duration = t->status == HYPERTEST_STATUS_SUCCESS && t->duration >= 0
	                  ? t->duration
	                  : end_ms - t->attempt_start_ms;
	a->message = a->stack_trace = NULL;
	if (t->status == HYPERTEST_STATUS_FAILED) {
		a->message = t->message ? ht_strdup(t->message) : NULL;
		a->stack_trace = t->stack_trace ? ht_strdup(t->stack_trace) : NULL;
	}
}

void ht_attempt_log_clear(ht_test_result *t)
{
	int i;
	for (i = 0; i < t->n_attempt_log; i++) {
		free(t->attempt_log[i].message);
		free(t->attempt_log[i].stack_trace);
	}
	free(t->attempt_log);
	t->attempt_log = NULL;
	t->n_attempt_log = 0;
}

void ht_attempt_reset(ht_test_result *t)
{
	free(t->message);
	free(t->stack_trace);
	t->message = t->stack_trace = NULL;
	t->status = HYPERTEST_STATUS_FAILED;
	t->duration = -1;
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

/* What the options select, while ht_select_tests works. */
typedef struct selection {
	json_t *only, *prev, *rerun;
	const char *grep, *grep_inv, *rerun_path;
	regex_t re, re_inv;
	int have_re, have_inv;
	char *results_path, *matched_only;
	ht_buf desc;
} selection;

/* The options; 0 when none of them selects anything. */
static int sel_read_options(selection *s, json_t *opts)
{
	if (!opts)
		return 0;
	s->only = json_object_get(opts, "only");
	s->grep = json_string_value(json_object_get(opts, "grep"));
	s->grep_inv = json_string_value(json_object_get(opts, "grepInvert"));
	s->rerun_path = json_string_value(json_object_get(opts, "rerun"));
	return s->only || s->grep || s->grep_inv || s->rerun_path ||
	       json_is_true(json_object_get(opts, "lastFailed"));
}

/* The project's last results (names of tests by context), and the list of
 * entries to rerun from --last-failed and --rerun. */
static int sel_load_results(hypertest *h, selection *s, json_t *opts)
{
	s->results_path = ht_abspath(h->project_dir, ht_config_str(h->cfg, "resultsFileName"));
	if (s->results_path && !access(s->results_path, F_OK)) {
		s->prev = load_results(h, s->results_path, "results file");
		ht_err_clear(&h->err);
	}
	if (json_is_true(json_object_get(opts, "lastFailed"))) {
		if (!s->prev)
			return ht_fail(h, HYPERTEST_ERR_NOT_FOUND,
			               "--last-failed: no results file %s (run 'hypertest invoke' first)",
			               s->results_path ? s->results_path : "");
		s->rerun = json_incref(s->prev);
		ht_buf_printf(&s->desc, "the tests that failed or did not run in %s", s->results_path);
	}
	if (!s->rerun_path)
		return HYPERTEST_OK;
	char *p = ht_abspath(h->project_dir, s->rerun_path);
	json_t *list = p ? load_results(h, p, "--rerun") : NULL;
	if (!list) {
		free(p);
		return h->err.code ? h->err.code : HYPERTEST_ERR_NOMEM;
	}
	if (s->rerun) {
		json_array_extend(s->rerun, list);
		json_decref(list);
	} else {
		s->rerun = list;
	}
	ht_buf_printf(&s->desc, "%sthe tests that failed or did not run in %s",
	              s->desc.len ? " and " : "", p);
	free(p);
	return HYPERTEST_OK;
}

static int sel_compile(hypertest *h, selection *s)
{
	if (s->grep && regcomp(&s->re, s->grep, REG_EXTENDED | REG_NOSUB) == 0)
		s->have_re = 1;
	if (s->grep_inv && regcomp(&s->re_inv, s->grep_inv, REG_EXTENDED | REG_NOSUB) == 0)
		s->have_inv = 1;
	if ((s->grep && !s->have_re) || (s->grep_inv && !s->have_inv))
		return ht_fail(h, HYPERTEST_ERR_INVALID, "invalid regular expression '%s'",
		               s->grep && !s->have_re ? s->grep : s->grep_inv);
	s->matched_only = calloc(json_array_size(s->only) + 1, 1);
	return s->matched_only ? HYPERTEST_OK : ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* Whether a test named by --only: marks the --only entries it matches. */
static int sel_only(selection *s, const char *cname, const char *lname, const char *lid)
{
	int any = 0;
	for (size_t k = 0; k < json_array_size(s->only); k++) {
		const char *w = json_string_value(json_array_get(s->only, k));
		if ((cname && !strcmp(w, cname)) || (lname && !strcmp(w, lname)) ||
		    (lid && !strcmp(w, lid))) {
			any = 1;
			s->matched_only[k] = 1;
		}
	}
	return any;
}

/* Whether the test of context ctx is selected. */
static int sel_keep(selection *s, json_t *ctx)
{
	char *cname = context_name(ctx);
	json_t *last = s->prev ? find_entry(s->prev, ctx, cname) : NULL;
	const char *lname = last ? json_string_value(json_object_get(last, "name")) : NULL;
	const char *lid = last ? json_string_value(json_object_get(last, "testId")) : NULL;
	int keep = 1;

	if (lname && !strcmp(lname, "unknown"))
		lname = NULL;
	if (s->rerun) {
		json_t *e = find_entry(s->rerun, ctx, cname);
		keep = e && entry_wants_rerun(e);
	}
	if (keep && s->only)
		keep = sel_only(s, cname, lname, lid);
	if (keep && s->have_re)
		keep = name_matches(&s->re, cname, lname);
	if (keep && s->have_inv)
		keep = !(regexec(&s->re_inv, cname ? cname : "", 0, NULL, 0) == 0 ||
		         (lname && regexec(&s->re_inv, lname, 0, NULL, 0) == 0));
	free(cname);
	return keep;
}

/* An --only entry that matched nothing is an error; else the description. */
static int sel_finish(hypertest *h, selection *s)
{
	size_t n_only = json_array_size(s->only);
	for (size_t k = 0; k < n_only; k++)
		if (!s->matched_only[k])
			return ht_fail(h, HYPERTEST_ERR_NOT_FOUND,
			               "--only '%s': no test has that id or name",
			               json_string_value(json_array_get(s->only, k)));
	if (s->only)
		ht_buf_printf(&s->desc, "%s%zu test%s named by --only", s->desc.len ? ", " : "",
		              n_only, n_only == 1 ? "" : "s");
	if (s->grep)
		ht_buf_printf(&s->desc, "%snames matching '%s'", s->desc.len ? ", " : "", s->grep);
	if (s->grep_inv)
		ht_buf_printf(&s->desc, "%snames not matching '%s'", s->desc.len ? ", " : "",
		              s->grep_inv);
	return HYPERTEST_OK;
}

int ht_select_tests(hypertest *h, json_t *contexts, json_t **out, char **why)
{
	selection s = {.desc = HT_BUF_INIT};
	json_t *sel = NULL, *ctx;
	size_t i;
	int rc;

	*out = NULL;
	*why = NULL;
	if (!sel_read_options(&s, h->invoke_opts)) {
		*out = json_incref(contexts);
		return HYPERTEST_OK;
	}
	if ((rc = sel_load_results(h, &s, h->invoke_opts)) || (rc = sel_compile(h, &s)))
		goto out;
	if (!(sel = json_array())) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	json_array_foreach(contexts, i, ctx)
		if (sel_keep(&s, ctx))
			json_array_append(sel, ctx);
	if ((rc = sel_finish(h, &s)))
		goto out;
	if (json_array_size(sel) == 0 && !s.rerun) {
		rc = ht_fail(h, HYPERTEST_ERR_NOT_FOUND, "no test matches the selection (%s)",
		             s.desc.data ? s.desc.data : "the selection");
		goto out;
	}
	*out = sel;
	sel = NULL;
	*why = ht_buf_steal(&s.desc);
out:
	if (s.have_re)
		regfree(&s.re);
	if (s.have_inv)
		regfree(&s.re_inv);
	ht_buf_free(&s.desc);
	json_decref(sel);
	json_decref(s.prev);
	json_decref(s.rerun);
	free(s.matched_only);
	free(s.results_path);
	return rc;
}
