/*
 * invoke.c - hypertest invoke: fetch the manifest, detect drift, invoke the
 * function once per test with at most `concurrency` in flight (longest
 * known tests first), collect the responses and write the results file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "command_ops.h"
#include "core.h"
#include "dirhash.h"
#include "report.h"

#define HT_MAX_RESPONSE (6u * 1024 * 1024) /* Lambda's synchronous response limit */
#define HT_WAIT_SLICE_MS 250               /* how often a cancel request is noticed */
#define HT_START_BATCH 64                  /* starts between two looks at the provider */
#define HT_CANCEL_GRACE_MS 10000           /* after a cancel, how long to wait for stragglers */

struct ht_run_state {
	hypertest *h;
	ht_instance *provider;
	hypertest_run *run;
	struct hypertest_invocation *invs;
	ht_history *hist;
	size_t in_flight, max_in_flight, done;
	long retries;          /* the configuration's "retries" */
	long max_failures;     /* 0: no limit */
	size_t failures;       /* tests that ended failed */
	int no_retry;          /* the provider failed: nothing is retried */
	size_t *retry_queue;   /* failed tests waiting for their next attempt */
	size_t n_retry;
	size_t retriable;      /* tests in flight that would be retried if they failed */
};

const char *ht_invocation_test_id(struct hypertest_invocation *inv)
{
	return inv->run->run->tests[inv->index].test_id;
}

/* What to call a test the function did not name (it never answered): the
 * first string of its manifest context (every runner puts the test's
 * identity there: "id", "nodeid", "name", "grep"), else its test id.  The
 * results file keeps "unknown" as its name (DESIGN.md, "Results file"); this
 * is for events. */
static const char *display_name(const ht_test_result *t)
{
	const char *key;
	json_t *v;

	if (t->name)
		return t->name;
	json_object_foreach(t->context, key, v)
		if (json_is_string(v) && json_string_length(v) > 0)
			return json_string_value(v);
	return t->test_id;
}

/* Whether --max-failures was reached: nothing more starts. */
static int stopping(const ht_run_state *st)
{
	return st->max_failures > 0 && st->failures >= (size_t)st->max_failures;
}

void ht_invocation_usage(struct hypertest_invocation *inv, const char *quantity, double value)
{
	if (inv->in_flight)
		ht_usage_add(&inv->run->run->tests[inv->index], quantity, value);
}

/* answered: the function responded, so the time it took is worth
 * remembering for the next run's order; a test cancelled, never started or
 * lost with its provider leaves its earlier duration alone. */
static void finish_test(ht_run_state *st, size_t i, int answered)
{
	ht_test_result *t = &st->run->tests[i];

	t->end_ms = ht_now_ms();
	if (!t->attempts)
		t->attempt_start_ms = t->start_ms;
	if (t->status != HYPERTEST_STATUS_SUCCESS || t->duration < 0)
		t->duration = t->end_ms - t->attempt_start_ms;
	if (answered && t->attempts)
		ht_history_set_key(st->hist, t->history_key, t->end_ms - t->attempt_start_ms);
	if (t->status == HYPERTEST_STATUS_SUCCESS && t->attempts > 1) {
		t->flaky = 1;
		st->run->flaky++;
	}
	if (t->status == HYPERTEST_STATUS_FAILED)
		st->failures++;
	st->done++;
	ht_emit(st->h, HYPERTEST_EVENT_TEST_END, HYPERTEST_FIELD_RUN_ID, st->run->run_id,
	        HYPERTEST_FIELD_TEST_ID, t->test_id, HYPERTEST_FIELD_INDEX, (int64_t)i,
	        HYPERTEST_FIELD_STATUS, (int64_t)t->status, HYPERTEST_FIELD_NAME,
	        display_name(t), HYPERTEST_FIELD_FILE_PATH,
	        t->file_path ? t->file_path : "unknown", HYPERTEST_FIELD_DURATION,
	        (int64_t)t->duration, HYPERTEST_FIELD_MESSAGE, t->message, HYPERTEST_FIELD_DONE,
	        (int64_t)st->done, HYPERTEST_FIELD_TOTAL, (int64_t)st->run->n,
	        HYPERTEST_FIELD_IN_FLIGHT, (int64_t)st->in_flight, HYPERTEST_FIELD_STACK_TRACE,
	        t->status == HYPERTEST_STATUS_FAILED ? t->stack_trace : NULL, HYPERTEST_FIELD_WARNINGS,
	        t->warnings, 0);
}

void ht_invocation_done(struct hypertest_invocation *inv, const char *response, size_t len,
                        int error_code, const char *error_message)
{
	ht_run_state *st = inv->run;
	ht_test_result *t = &st->run->tests[inv->index];

	if (!inv->in_flight) {
		ht_log(st->h, HYPERTEST_LOG_WARNING,
		       "provider completed test %s twice; the second completion is ignored", t->test_id);
		return;
	}
	inv->in_flight = 0;
	st->in_flight--;
	if (t->attempts <= st->retries)
		st->retriable--;
	if (error_code != HYPERTEST_OK)
		ht_result_fail(t, "%s", error_message && *error_message
		                            ? error_message
		                            : hypertest_strerror(error_code));
	else
		ht_result_from_response(t, response, len, HT_MAX_RESPONSE);
	ht_attempt_record(t, ht_now_ms());
	if (t->status == HYPERTEST_STATUS_FAILED && t->attempts <= st->retries && !st->no_retry &&
	    !st->h->cancelled && !stopping(st)) {
		ht_log(st->h, HYPERTEST_LOG_INFO, "test %s failed on attempt %d of %ld: retrying",
		       t->name ? t->name : t->test_id, t->attempts, st->retries + 1);
		st->retry_queue[st->n_retry++] = inv->index;
		return;
	}
	finish_test(st, inv->index, error_code == HYPERTEST_OK);
}

/* The payload's "attempt" (added field; from 2 on): the function stores the
 * artifacts of a retry under {runId}/{testId}/attempt-N/. */
/* Only letters, digits, '-' and '_' (nothing JSON escapes)? */
static int plain_id(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return 0;
	return 1;
}

char *ht_payload(const char *run_id, ht_test_result *t, json_t *fields)
{
	json_t *p;
	char *text;

	/* The common case without a JSON tree: the context's text, kept for
	 * the test's next attempts and its results, between the ids.  The
	 * bytes are jansson's (check_results.c). */
	if (!fields && (json_is_object(t->context) || json_is_array(t->context)) && plain_id(run_id) &&
	    plain_id(t->test_id)) {
		if (!t->context_text &&
		    !(t->context_text = json_dumps(t->context, JSON_COMPACT | JSON_PRESERVE_ORDER)))
			return NULL;
		if (t->attempts > 1)
			return ht_asprintf("{\"runId\":\"%s\",\"testId\":\"%s\",\"context\":%s,"
			                   "\"attempt\":%d}",
			                   run_id, t->test_id, t->context_text, t->attempts);
		return ht_asprintf("{\"runId\":\"%s\",\"testId\":\"%s\",\"context\":%s}", run_id,
		                   t->test_id, t->context_text);
	}
	if (!(p = json_object()))
		return NULL;
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

/* A name for a test before its result names it: the first string member
 * of its context among the runners' usual ones, else NULL. */
static const char *context_name(json_t *context)
{
	static const char *const keys[] = {"name", "title", "nodeId", "nodeid", "test", "id", NULL};
	size_t k;
	for (k = 0; keys[k]; k++) {
		json_t *v = json_object_get(context, keys[k]);
		if (json_is_string(v) && *json_string_value(v))
			return json_string_value(v);
	}
	return NULL;
}

static void start_test(ht_run_state *st, size_t i, json_t *fields)
{
	hypertest_PROVIDER_INVOKE_START_fn start =
	    HT_OP(st->provider, HYPERTEST_PROVIDER_INVOKE_START);
	struct hypertest_invocation *inv = &st->invs[i];
	ht_test_result *t = &st->run->tests[i];
	char *payload;
	int rc;

	if (t->attempts++ == 0)
		t->start_ms = ht_now_ms();
	else
		ht_attempt_reset(t);
	t->attempt_start_ms = ht_now_ms();
	payload = ht_payload(st->run->run_id, t, fields);
	inv->in_flight = 1;
	st->in_flight++;
	if (t->attempts <= st->retries)
		st->retriable++;
	if (st->in_flight > st->max_in_flight)
		st->max_in_flight = st->in_flight;
	ht_emit(st->h, HYPERTEST_EVENT_TEST_START, HYPERTEST_FIELD_RUN_ID, st->run->run_id,
	        HYPERTEST_FIELD_TEST_ID, t->test_id, HYPERTEST_FIELD_INDEX, (int64_t)i,
	        HYPERTEST_FIELD_IN_FLIGHT, (int64_t)st->in_flight, HYPERTEST_FIELD_NAME,
	        context_name(t->context), 0);
	if (!payload) {
		ht_invocation_done(inv, NULL, 0, HYPERTEST_ERR_NOMEM, "out of memory");
		return;
	}
	ht_err_clear(&st->h->err);
	rc = start(st->provider->self, inv, payload, strlen(payload));
	free(payload);
	if (rc != HYPERTEST_OK && inv->in_flight) {
		char msg[sizeof st->h->err.msg + 64];
		snprintf(msg, sizeof msg, "invocation did not start: %s",
		         st->h->err.msg[0] ? st->h->err.msg : hypertest_strerror(rc));
		ht_invocation_done(inv, NULL, 0, rc, msg);
	}
}

/* Fail every test still in flight (the provider stopped answering). */
static void abandon_in_flight(ht_run_state *st, const char *why)
{
	size_t i;
	st->no_retry = 1;
	for (i = 0; i < st->run->n; i++)
		if (st->invs[i].in_flight)
			ht_invocation_done(&st->invs[i], NULL, 0, HYPERTEST_ERR_PROVIDER, why);
}

/* Nothing more starts (cancel, --max-failures): tests waiting for a retry
 * end with their last attempt; tests not started are skipped (stopped) or
 * failed (cancelled). */
static void stop_rest(ht_run_state *st, const size_t *order, size_t *next, size_t n)
{
	char msg[96];

	while (st->n_retry)
		finish_test(st, st->retry_queue[--st->n_retry], 0);
	snprintf(msg, sizeof msg, "not run: stopped after %ld failures", st->max_failures);
	for (; *next < n; (*next)++) {
		size_t i = order[*next];
		ht_test_result *t = &st->run->tests[i];
		t->start_ms = ht_now_ms();
		if (st->h->cancelled) {
			ht_result_fail(t, "cancelled before it started");
		} else {
			t->status = HYPERTEST_STATUS_SKIPPED;
			free(t->message);
			t->message = ht_strdup(msg);
			t->duration = 0;
		}
		finish_test(st, i, 0);
	}
}

/* Whether no test can start again: the run was stopped (cancel,
 * --max-failures: stop_rest() empties the queue and nothing is queued
 * again), or every test started, none waits for a retry and none in flight
 * could be queued for one (retries exhausted, or the provider failed). */
static int starts_over(const ht_run_state *st, size_t next)
{
	if (st->h->cancelled || stopping(st))
		return 1;
	return next == st->run->n && st->n_retry == 0 && (st->no_retry || st->retriable == 0);
}

/* INVOKE_END, once per run, where the provider has it. */
static void end_starts(ht_run_state *st, int *ended)
{
	hypertest_PROVIDER_INVOKE_END_fn end = HT_OP(st->provider, HYPERTEST_PROVIDER_INVOKE_END);

	if (*ended)
		return;
	*ended = 1;
	if (end)
		end(st->provider->self);
}

static void run_loop(ht_run_state *st, const size_t *order, long concurrency, json_t *fields)
{
	hypertest *h = st->h;
	hypertest_PROVIDER_INVOKE_WAIT_fn wait = HT_OP(st->provider, HYPERTEST_PROVIDER_INVOKE_WAIT);
	hypertest_PROVIDER_INVOKE_CANCEL_fn cancel =
	    HT_OP(st->provider, HYPERTEST_PROVIDER_INVOKE_CANCEL);
	size_t n = st->run->n, next = 0;
	int64_t cancel_deadline = -1;
	int ended = 0;

	while (st->done < n) {
		/* Start in batches with a look at the provider between them (a
		 * wait of 0 ms), so that the first requests are on their way
		 * while the later ones are being prepared. */
		size_t batch = 0;
		/* Retries first: they are the run's longest path. */
		while (!h->cancelled && !stopping(st) && st->n_retry &&
		       st->in_flight < (size_t)concurrency && batch++ < HT_START_BATCH) {
			size_t r = st->retry_queue[0];
			memmove(st->retry_queue, st->retry_queue + 1, --st->n_retry * sizeof *st->retry_queue);
			start_test(st, r, fields);
		}
		while (!h->cancelled && !stopping(st) && next < n &&
		       st->in_flight < (size_t)concurrency && batch++ < HT_START_BATCH)
			start_test(st, order[next++], fields);
		if (stopping(st) && (next < n || st->n_retry)) {
			if (!st->run->stopped_after)
				ht_log(h, HYPERTEST_LOG_WARNING,
				       "stopped after %ld failures: %zu tests not run, waiting for %zu in "
				       "flight",
				       st->max_failures, n - next, st->in_flight);
			st->run->stopped_after = st->max_failures;
			stop_rest(st, order, &next, n);
		}
		if (h->cancelled)
			stop_rest(st, order, &next, n);
		if (starts_over(st, next))
			end_starts(st, &ended);
		int more = !h->cancelled && !stopping(st) &&
		           (next < n || st->n_retry) && st->in_flight < (size_t)concurrency;
		if (h->cancelled && cancel_deadline < 0) {
			ht_log(h, HYPERTEST_LOG_WARNING, "cancelled: stopping %zu invocations in flight",
			       st->in_flight);
			if (cancel)
				cancel(st->provider->self);
			cancel_deadline = ht_monotonic_ms() + HT_CANCEL_GRACE_MS;
		}
		if (st->in_flight == 0)
			continue;
		if (cancel_deadline >= 0 && ht_monotonic_ms() > cancel_deadline) {
			abandon_in_flight(st, "cancelled; the provider did not confirm in time");
			break;
		}
		ht_err_clear(&h->err);
		{
			int rc = wait(st->provider->self, more ? 0 : HT_WAIT_SLICE_MS);
			if (rc < 0) {
				char why[sizeof h->err.msg + 64];
				snprintf(why, sizeof why, "provider failed while waiting: %s",
				         h->err.msg[0] ? h->err.msg : hypertest_strerror(-rc));
				ht_log(h, HYPERTEST_LOG_ERROR, "%s", why);
				if (cancel)
					cancel(st->provider->self);
				abandon_in_flight(st, why);
				while (st->n_retry)
					finish_test(st, st->retry_queue[--st->n_retry], 0);
				for (; next < n; next++) {
					size_t i = order[next];
					st->run->tests[i].start_ms = ht_now_ms();
					ht_result_fail(&st->run->tests[i], "not started: %s", why);
					finish_test(st, i, 0);
				}
				break;
			}
		}
	}
	end_starts(st, &ended);
}

/* Compare the manifest with the local test directory and the deployed
 * image; act on the drift policy. */
static int check_drift(hypertest *h, ht_instance *runner, ht_instance *provider,
                       const ht_manifest *m)
{
	int policy = ht_config_drift_policy(h->cfg);
	hypertest_RUNNER_TEST_DIR_fn test_dir = HT_OP(runner, HYPERTEST_RUNNER_TEST_DIR);
	hypertest_PROVIDER_FUNCTION_DIGEST_fn fdigest =
	    HT_OP(provider, HYPERTEST_PROVIDER_FUNCTION_DIGEST);
	ht_buf problems = HT_BUF_INIT;
	char *image_mismatch = NULL;
	int rc = HYPERTEST_OK;

	if (policy == HT_DRIFT_SILENCE)
		return HYPERTEST_OK;
	if (test_dir) {
		const char *rel = test_dir(runner->self);
		char *dir = rel ? ht_abspath(h->project_dir, rel) : NULL;
		char *cache = ht_path_join(ht_state_dir(h), "dirhash-cache.json");
		char hex[65];
		ht_err err;
		ht_err_clear(&err);
		if (!dir)
			ht_buf_printf(&problems, "the runner names no test directory");
		else if (ht_dirhash_project(dir, h->project_dir, ht_config_str(h->cfg, "resultsFileName"),
		                            ht_config_str(h->cfg, "buildManifestFileName"), cache, hex,
		                            &err) != HYPERTEST_OK)
			ht_buf_printf(&problems, "cannot hash the test directory: %s", err.msg);
		else if (strcmp(hex, m->test_dir_hash) != 0)
			ht_buf_printf(&problems,
			              "the test directory %s changed since the last deploy (hash %.12s, "
			              "deployed %.12s)",
			              dir, hex, m->test_dir_hash);
		free(dir);
		free(cache);
	}
	if (fdigest) {
		hypertest_buffer buf;
		int frc;
		memset(&buf, 0, sizeof buf);
		ht_err_clear(&h->err);
		frc = fdigest(provider->self, &buf);
		if (frc == HYPERTEST_ERR_CANCELLED) {
			ht_buf_free(&buf.buf);
			ht_buf_free(&problems);
			return ht_plugin_error(h, provider, frc, "reading the function's image digest");
		}
		if (frc == HYPERTEST_OK && buf.buf.data && strcmp(buf.buf.data, m->image_digest) != 0)
			image_mismatch = ht_asprintf("the function runs image %s, the manifest expects %s",
			                             buf.buf.data, m->image_digest);
		else if (frc != HYPERTEST_OK)
			ht_buf_printf(&problems, "%scannot read the function's image digest: %s",
			              problems.len ? "; " : "",
			              h->err.msg[0] ? h->err.msg : hypertest_strerror(frc));
		ht_buf_free(&buf.buf);
	}
	/* As in the TypeScript hypertest, tests never run from contexts built for
	 * another image: a digest mismatch stops the invoke unless the policy is
	 * "silence" (which skips these checks altogether). */
	if (image_mismatch) {
		rc = ht_fail(h, HYPERTEST_ERR_DRIFT,
		             "image drift: %s%s%s; run 'hypertest deploy' to update the function and "
		             "the manifest",
		             image_mismatch, problems.len ? "; also " : "",
		             problems.len ? problems.data : "");
		free(image_mismatch);
		ht_buf_free(&problems);
		return rc;
	}
	if (problems.len) {
		if (policy == HT_DRIFT_ERROR)
			rc = ht_fail(h, HYPERTEST_ERR_DRIFT,
			             "drift (driftDetectionPolicy \"error\"): %s; run 'hypertest deploy'",
			             problems.data);
		else
			ht_log(h, HYPERTEST_LOG_WARNING, "drift: %s; run 'hypertest deploy' to update",
			       problems.data);
	}
	ht_buf_free(&problems);
	return rc;
}

static int fetch_manifest(hypertest *h, ht_instance *provider, ht_manifest *m)
{
	hypertest_PROVIDER_OBJECT_GET_fn get = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_GET);
	const char *name = ht_config_str(h->cfg, "buildManifestFileName");
	hypertest_buffer buf;
	int rc;

	if (!get)
		return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
		               "provider '%s' cannot read objects (no OBJECT_GET operation)",
		               provider->core.plugin->name);
	memset(&buf, 0, sizeof buf);
	ht_err_clear(&h->err);
	rc = get(provider->self, name, &buf);
	if (rc == HYPERTEST_ERR_NOT_FOUND) {
		ht_buf_free(&buf.buf);
		return ht_fail(h, HYPERTEST_ERR_MANIFEST,
		               "no manifest '%s' in the bucket of provider '%s': run 'hypertest deploy' "
		               "first",
		               name, provider->core.plugin->name);
	}
	if (rc != HYPERTEST_OK) {
		ht_buf_free(&buf.buf);
		return ht_plugin_error(h, provider, rc, "reading the manifest");
	}
	rc = ht_manifest_parse(buf.buf.data ? buf.buf.data : "", buf.buf.len, name, m, &h->err);
	ht_buf_free(&buf.buf);
	return rc;
}

static json_t *payload_fields(hypertest *h, ht_instance *provider)
{
	hypertest_PROVIDER_PAYLOAD_FIELDS_fn pf = HT_OP(provider, HYPERTEST_PROVIDER_PAYLOAD_FIELDS);
	struct hypertest_params params = {NULL, 0, 0, 0};
	json_t *obj;
	size_t i;

	if (!pf)
		return NULL;
	ht_err_clear(&h->err);
	if (pf(provider->self, &params) != HYPERTEST_OK) {
		ht_log(h, HYPERTEST_LOG_WARNING,
		       "provider '%s' could not name its payload fields: %s",
		       provider->core.plugin->name, h->err.msg[0] ? h->err.msg : "unknown error");
		ht_params_clear(&params);
		return NULL;
	}
	obj = json_object();
	for (i = 0; obj && i < params.n; i++)
		json_object_set_new(obj, params.items[i].key, json_string(params.items[i].value));
	ht_params_clear(&params);
	return obj;
}

/* Write the results locally and to the bucket; announce the end. */
static void publish(hypertest *h, ht_instance *provider, hypertest_run *run)
{
	const char *name = ht_config_str(h->cfg, "resultsFileName");
	char *path = ht_abspath(h->project_dir, name);
	char *key = ht_asprintf("%s/%s", run->run_id, name);
	hypertest_buffer url;
	ht_err err;
	size_t i;

	for (i = 0; i < run->n; i++) {
		ht_test_result *t = &run->tests[i];
		run->counts[t->status]++;
		ht_iso8601(t->start_ms, t->start_date);
		ht_iso8601(t->end_ms, t->end_date);
		if (!t->context_text) /* (a test started has it) */
			t->context_text = json_dumps(t->context, JSON_COMPACT | JSON_PRESERVE_ORDER);
	}
	ht_cost_total(h, run);
	run->results_json = ht_results_json(run);
	memset(&url, 0, sizeof url);
	ht_err_clear(&err);
	if (!run->results_json) {
		ht_log(h, HYPERTEST_LOG_ERROR, "out of memory while writing the results");
	} else if (h->flags & HYPERTEST_FLAG_DRY_RUN) {
		ht_log(h, HYPERTEST_LOG_INFO, "dry run: results not written");
	} else {
		if (path && ht_write_file_atomic(path, run->results_json, strlen(run->results_json),
		                                 &err) == HYPERTEST_OK)
			run->results_path = ht_strdup(path);
		else
			ht_log(h, HYPERTEST_LOG_ERROR, "cannot write the results file: %s", err.msg);
		{
			hypertest_PROVIDER_OBJECT_PUT_fn put = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_PUT);
			hypertest_PROVIDER_OBJECT_URL_fn ou = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_URL);
			int rc = HYPERTEST_ERR_UNSUPPORTED;
			ht_err_clear(&h->err);
			if (put && key)
				rc = put(provider->self, key, run->results_json, strlen(run->results_json),
				         "application/json");
			if (rc != HYPERTEST_OK)
				ht_log(h, HYPERTEST_LOG_ERROR, "cannot upload the results to the bucket: %s",
				       h->err.msg[0] ? h->err.msg : hypertest_strerror(rc));
			else if (ou && key)
				ou(provider->self, key, &url);
		}
	}
	ht_emit(h, HYPERTEST_EVENT_RUN_END, HYPERTEST_FIELD_RUN_ID, run->run_id, HYPERTEST_FIELD_TOTAL,
	        (int64_t)run->n, HYPERTEST_FIELD_PASSED, (int64_t)run->counts[HYPERTEST_STATUS_SUCCESS],
	        HYPERTEST_FIELD_FAILED, (int64_t)run->counts[HYPERTEST_STATUS_FAILED],
	        HYPERTEST_FIELD_SKIPPED, (int64_t)run->counts[HYPERTEST_STATUS_SKIPPED],
	        HYPERTEST_FIELD_DURATION, (int64_t)(run->end_ms - run->start_ms), HYPERTEST_FIELD_PATH,
	        run->results_path ? run->results_path : "", HYPERTEST_FIELD_URL,
	        url.buf.data ? url.buf.data : "", 0);
	ht_buf_free(&url.buf);
	free(path);
	free(key);
}

static hypertest_run *new_run(const ht_manifest *m)
{
	hypertest_run *run = calloc(1, sizeof *run);
	char id[37];
	size_t i, n = json_array_size(m->contexts);

	if (!run)
		return NULL;
	run->tests = calloc(n ? n : 1, sizeof *run->tests);
	if (!run->tests || ht_uuid_v4(id) != HYPERTEST_OK || !(run->run_id = ht_strdup(id))) {
		free(run->tests);
		free(run->run_id);
		free(run);
		return NULL;
	}
	run->n = n;
	for (i = 0; i < n; i++) {
		ht_uuid_v4(run->tests[i].test_id);
		run->tests[i].context = json_incref(json_array_get(m->contexts, i));
		run->tests[i].status = HYPERTEST_STATUS_FAILED;
		run->tests[i].duration = -1;
	}
	return run;
}

/* Descriptors kept beside the invocations: the process's own, the
 * plugins', files, a connection to the bucket. */
#define FD_RESERVE 64

/* Every invocation in flight holds at least one descriptor (a connection,
 * a pipe): a run whose concurrency cannot have that many is refused
 * before it starts, rather than failing invocations with EMFILE.  The
 * library never changes the process's limits (the embedder's to set; the
 * hypertest program raises its soft limit to the hard one). */
static int check_fd_limit(hypertest *h, long concurrency, size_t n_tests)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return HYPERTEST_OK;
	unsigned long long in_flight = (unsigned long long)concurrency;
	if (in_flight > n_tests)
		in_flight = n_tests;
	unsigned long long need = in_flight + FD_RESERVE;
	if (need <= (unsigned long long)rl.rlim_cur)
		return HYPERTEST_OK;
	return ht_fail(h, HYPERTEST_ERR_INVALID,
	               "concurrency %ld needs about %llu file descriptors; the limit is %llu "
	               "(ulimit -n)%s",
	               concurrency, need, (unsigned long long)rl.rlim_cur,
	               rl.rlim_max != RLIM_INFINITY && need > (unsigned long long)rl.rlim_max
	                       ? ", and the hard limit too: lower concurrency or raise the hard limit"
	                       : "");
}

/* The tests --only, --grep, --rerun and --last-failed select, logged.  When
 * a rerun finds nothing to run, *out is an empty run and the invoke ends. */
static int apply_selection(hypertest *h, ht_manifest *m, hypertest_run **out)
{
	json_t *sel = NULL;
	char *why = NULL;
	size_t all = json_array_size(m->contexts), k;
	ht_buf names = HT_BUF_INIT;
	hypertest_run *run;
	int rc;

	if ((rc = ht_select_tests(h, m->contexts, &sel, &why)))
		return rc;
	json_decref(m->contexts);
	m->contexts = sel;
	if (!why)
		return HYPERTEST_OK;
	if (json_array_size(sel) == 0) {
		ht_log(h, HYPERTEST_LOG_INFO, "nothing to rerun: no test of %s", why);
		free(why);
		if (!(run = new_run(m)))
			return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		run->start_ms = run->end_ms = ht_now_ms();
		*out = run;
		return HYPERTEST_OK;
	}
	for (k = 0; k < json_array_size(sel) && k < 20; k++) {
		json_t *c = json_array_get(sel, k);
		const char *nm = json_string_value(json_object_get(c, "name"));
		char *txt = NULL;
		if (!nm)
			nm = json_string_value(json_object_get(c, "id"));
		if (!nm)
			nm = json_string_value(json_object_get(c, "nodeid"));
		if (!nm)
			nm = txt = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
		ht_buf_printf(&names, "%s%s", k ? ", " : "", nm ? nm : "?");
		free(txt);
	}
	ht_log(h, HYPERTEST_LOG_INFO, "selected %zu of %zu tests (%s): %s%s", json_array_size(sel),
	       all, why, names.data ? names.data : "", json_array_size(sel) > 20 ? ", ..." : "");
	ht_buf_free(&names);
	free(why);
	return HYPERTEST_OK;
}

/* The durations of earlier runs; a file that cannot be read is a warning. */
static ht_history *load_history(hypertest *h, const char *path)
{
	ht_err herr;
	ht_history *hist;

	ht_err_clear(&herr);
	hist = ht_history_load(path, &herr);
	if (herr.code != HYPERTEST_OK)
		ht_log(h, HYPERTEST_LOG_WARNING, "test durations of earlier runs not used: %s",
		       herr.msg);
	return hist;
}

/* --dry-run: each test logged in the order it would start, and skipped. */
static void dry_run(hypertest *h, hypertest_run *run, const size_t *order)
{
	for (size_t i = 0; i < run->n; i++) {
		ht_test_result *t = &run->tests[order[i]];
		const char *name = context_name(t->context);
		char *ctx = name ? NULL : json_dumps(t->context, JSON_COMPACT | JSON_SORT_KEYS);
		if (t->expected_ms >= 0)
			ht_log(h, HYPERTEST_LOG_INFO, "would start %zu/%zu: %s (expected %lld.%03lld s)",
			       i + 1, run->n, name ? name : ctx ? ctx : "?",
			       (long long)(t->expected_ms / 1000), (long long)(t->expected_ms % 1000));
		else
			ht_log(h, HYPERTEST_LOG_INFO, "would start %zu/%zu: %s (no history)", i + 1,
			       run->n, name ? name : ctx ? ctx : "?");
		free(ctx);
		t->start_ms = t->end_ms = ht_now_ms();
		t->status = HYPERTEST_STATUS_SKIPPED;
		t->message = ht_strdup("dry run: not invoked");
		t->duration = 0;
	}
}

static void log_usage(hypertest *h, const hypertest_run *run, size_t max_in_flight)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		ht_log(h, HYPERTEST_LOG_DEBUG,
		       "%zu tests in %lld ms, at most %zu in flight; this process: %ld ms user "
		       "CPU, %ld ms system CPU, %ld KB max RSS",
		       run->n, (long long)(run->end_ms - run->start_ms), max_in_flight,
		       (long)(ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000),
		       (long)(ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000),
		       (long)ru.ru_maxrss);
}

/* After a run: the durations saved, and the report built from the bucket
 * (the results are in hand whatever happens to either). */
static void save_and_report(hypertest *h, ht_instance *provider, const hypertest_run *run,
                            ht_history *hist)
{
	ht_err err;
	int html = !(h->flags & HYPERTEST_FLAG_NO_REPORT) && ht_config_report(h->cfg);
	const char *junit = ht_junit_output(h);

	if (ht_history_save(hist, &err) != HYPERTEST_OK)
		ht_log(h, HYPERTEST_LOG_WARNING, "cannot save test durations: %s", err.msg);
	if ((html || junit) && run->results_json &&
	    ht_report_run(h, provider, run->run_id, run, html, junit) != HYPERTEST_OK)
		ht_log(h, HYPERTEST_LOG_ERROR, "cannot build the report: %s", h->err.msg);
}

int hypertest_invoke(hypertest *h, hypertest_run **out)
{
	ht_instance *provider = NULL, *runner = NULL;
	ht_manifest m;
	ht_run_state st;
	hypertest_run *run = NULL;
	json_t *fields = NULL;
	int64_t *known = NULL;
	size_t *order = NULL, i;
	long concurrency;
	char *hist_path = NULL;
	int rc;

	if (!h || !out)
		return h ? ht_fail(h, HYPERTEST_ERR_INVALID, "hypertest_invoke: run is NULL")
		         : HYPERTEST_ERR_INVALID;
	*out = NULL;
	memset(&m, 0, sizeof m);
	memset(&st, 0, sizeof st);
	atomic_store(&h->cancelled, 0);
	/* while the run is prepared, a cancel ends the provider's blocking
	 * requests too (the manifest, the function's image): nothing to save */
	atomic_store(&h->cancel_plugins, 1);
	ht_command_ops_install(h);
	if ((rc = ht_require_config(h)) || (rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &provider)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_RUNNER, &runner)))
		goto out;
	if (!HT_OP(provider, HYPERTEST_PROVIDER_INVOKE_START) ||
	    !HT_OP(provider, HYPERTEST_PROVIDER_INVOKE_WAIT)) {
		rc = ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
		             "provider '%s' (%s) cannot invoke functions (no INVOKE_START/INVOKE_WAIT)",
		             provider->core.plugin->name, provider->core.plugin->path);
		goto out;
	}
	if ((rc = fetch_manifest(h, provider, &m)) || (rc = check_drift(h, runner, provider, &m)))
		goto out;
	if (json_array_size(m.contexts) == 0) {
		rc = ht_fail(h, HYPERTEST_ERR_EMPTY, "the manifest lists no tests");
		goto out;
	}
	if ((rc = apply_selection(h, &m, out)) || *out)
		goto out;
	run = new_run(&m);
	known = calloc(json_array_size(m.contexts), sizeof *known);
	order = calloc(json_array_size(m.contexts), sizeof *order);
	st.invs = calloc(json_array_size(m.contexts), sizeof *st.invs);
	st.retry_queue = calloc(json_array_size(m.contexts), sizeof *st.retry_queue);
	hist_path = ht_path_join(ht_state_dir(h), "history.json");
	if (!run || !known || !order || !st.invs || !st.retry_queue || !hist_path) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	st.h = h;
	st.provider = provider;
	st.run = run;
	st.hist = load_history(h, hist_path);
	for (i = 0; i < run->n; i++) {
		st.invs[i].h = h;
		st.invs[i].run = &st;
		st.invs[i].index = i;
		if (ht_history_key(run->tests[i].context, run->tests[i].history_key) != HYPERTEST_OK)
			run->tests[i].history_key[0] = '\0';
		known[i] = ht_history_get_key(st.hist, run->tests[i].history_key);
		run->tests[i].expected_ms = known[i];
	}
	ht_schedule_order(known, run->n, order);
	fields = payload_fields(h, provider);
	concurrency = ht_config_concurrency(h->cfg);
	run->concurrency = concurrency;
	st.retries = run->retries = ht_config_retries(h->cfg);
	st.max_failures = ht_invoke_max_failures(h);
	if (!(h->flags & HYPERTEST_FLAG_DRY_RUN) && (rc = check_fd_limit(h, concurrency, run->n)))
		goto out;
	/* from here on a cancel stops the invocations; the results are still
	 * published and the report built, through the provider */
	atomic_store(&h->cancel_plugins, 0);
	run->start_ms = ht_now_ms();
	ht_emit(h, HYPERTEST_EVENT_RUN_START, HYPERTEST_FIELD_RUN_ID, run->run_id,
	        HYPERTEST_FIELD_TOTAL, (int64_t)run->n, HYPERTEST_FIELD_CONCURRENCY,
	        (int64_t)concurrency, 0);
	if (h->flags & HYPERTEST_FLAG_DRY_RUN)
		dry_run(h, run, order);
	else
		run_loop(&st, order, concurrency, fields);
	run->end_ms = ht_now_ms();
	log_usage(h, run, st.max_in_flight);
	publish(h, provider, run);
	if (!(h->flags & HYPERTEST_FLAG_DRY_RUN))
		save_and_report(h, provider, run, st.hist);
	*out = run;
	run = NULL;
	rc = HYPERTEST_OK;
	ht_err_clear(&h->err);
out:
	atomic_store(&h->cancel_plugins, 0);
	json_decref(fields);
	ht_history_free(st.hist);
	free(st.invs);
	free(st.retry_queue);
	free(known);
	free(order);
	free(hist_path);
	hypertest_run_free(run);
	ht_manifest_clear(&m);
	ht_instance_destroy(runner);
	ht_instance_destroy(provider);
	return rc;
}
