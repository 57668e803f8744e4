/*
 * function.c - the function side: serve invocations through the provider,
 * running each payload's one test with the runner and answering with the
 * function response of DESIGN.md ("Function response").  Whatever the
 * runner does, a response is produced.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* runId and testId become path segments in the bucket. */
static int safe_id(const char *s)
{
	size_t n = 0;
	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return 0;
	return n > 0 && n <= 128;
}

json_t *ht_json_text(const char *s)
{
	json_t *j = json_string(s);
	char *copy;
	size_t i;

	if (j || !s)
		return j;
	copy = ht_strdup(s);
	if (!copy)
		return NULL;
	for (i = 0; copy[i]; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static void respond(struct hypertest_buffer *out, const struct hypertest_result *r,
                    const char *fallback_name, json_t *warnings)
{
	json_t *doc = json_object();
	char *text;

	if (r->status == HYPERTEST_STATUS_SUCCESS)
		json_object_set_new(doc, "success", json_true());
	else if (r->status == HYPERTEST_STATUS_SKIPPED)
		json_object_set_new(doc, "success", json_string("skipped"));
	else {
		json_object_set_new(doc, "success", json_false());
		json_object_set_new(doc, "message", json_string(r->message ? r->message : "failed"));
	}
	json_object_set_new(doc, "name", json_string(r->name ? r->name : fallback_name));
	json_object_set_new(doc, "filePath", json_string(r->file_path ? r->file_path : "unknown"));
	if (r->status == HYPERTEST_STATUS_FAILED && r->stack_trace)
		json_object_set_new(doc, "stackTrace", json_string(r->stack_trace));
	if (r->status == HYPERTEST_STATUS_SKIPPED && r->message)
		json_object_set_new(doc, "message", json_string(r->message));
	if (r->duration >= 0)
		json_object_set_new(doc, "duration", json_integer((json_int_t)r->duration));
	/* added to the TypeScript format: what could not be stored */
	if (json_array_size(warnings) > 0)
		json_object_set(doc, "warnings", warnings);
	text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	if (text)
		ht_buf_puts(&out->buf, text);
	else
		ht_buf_puts(&out->buf, "{\"success\":false,\"message\":\"out of memory\"}");
	free(text);
}

static void set_failed(struct hypertest_result *r, const char *msg)
{
	r->status = HYPERTEST_STATUS_FAILED;
	free(r->message);
	r->message = ht_strdup(msg);
}

int ht_function_handle(struct hypertest_function *fn, const char *payload, size_t len,
                       struct hypertest_buffer *response)
{
	hypertest *h = fn->h;
	hypertest_RUNNER_RUN_TEST_fn run =
	    fn->runner ? HT_OP(fn->runner, HYPERTEST_RUNNER_RUN_TEST) : NULL;
	hypertest_PROVIDER_ARTIFACTS_STORE_fn store =
	    HT_OP(fn->provider, HYPERTEST_PROVIDER_ARTIFACTS_STORE);
	struct hypertest_result r;
	json_error_t jerr;
	json_t *doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *run_id, *test_id, *context;
	char *ctx_text = NULL, *dir = NULL, *prefix = NULL;
	const char *tmp = getenv("TMPDIR");
	json_t *warnings = json_array();

	ht_result_init(&r);
	run_id = json_object_get(doc, "runId");
	test_id = json_object_get(doc, "testId");
	context = json_object_get(doc, "context");
	if (!doc) {
		char msg[300];
		snprintf(msg, sizeof msg, "invalid payload: not JSON (%d:%d: %s)", jerr.line,
		         jerr.column, jerr.text);
		set_failed(&r, msg);
	} else if (!json_is_string(run_id) || !safe_id(json_string_value(run_id)) ||
	           !json_is_string(test_id) || !safe_id(json_string_value(test_id))) {
		set_failed(&r, "invalid payload: 'runId' and 'testId' must be ids of letters, digits "
		               "and '-'");
	} else if (!json_is_object(context)) {
		set_failed(&r, "invalid payload: 'context' must be an object");
	} else if (!fn->runner) {
		char msg[sizeof h->err.msg + 64];
		snprintf(msg, sizeof msg, "the function cannot run tests: %s",
		         h->function_init_error ? h->function_init_error : "no runner");
		set_failed(&r, msg);
	} else if (!run) {
		set_failed(&r, "the runner cannot run tests (no RUN_TEST operation)");
	} else {
		ctx_text = json_dumps(context, JSON_COMPACT | JSON_PRESERVE_ORDER);
		dir = ht_asprintf("%s/hypertest-artifacts-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		/* A retry (the added payload field "attempt", 2 and up) keeps
		 * its artifacts beside the first attempt's: {runId}/{testId}/attempt-N. */
		json_t *attempt = json_object_get(doc, "attempt");
		if (json_is_integer(attempt) && json_integer_value(attempt) > 1)
			prefix = ht_asprintf("%s/%s/attempt-%lld", json_string_value(run_id),
			                     json_string_value(test_id),
			                     (long long)json_integer_value(attempt));
		else
			prefix = ht_asprintf("%s/%s", json_string_value(run_id),
			                     json_string_value(test_id));
		if (!ctx_text || !dir || !prefix || !mkdtemp(dir)) {
			set_failed(&r, "cannot create the artifacts directory");
			free(dir);
			dir = NULL;
		} else {
			int rc;
			ht_err_clear(&h->err);
			rc = run(fn->runner->self, ctx_text, dir, &r);
			if (rc != HYPERTEST_OK) {
				char msg[sizeof h->err.msg + 64];
				snprintf(msg, sizeof msg, "runner '%s' failed: %s",
				         fn->runner->core.plugin->name,
				         h->err.msg[0] ? h->err.msg : hypertest_strerror(rc));
				set_failed(&r, msg);
			} else if (r.status < 0) {
				set_failed(&r, "the runner reported no result");
			}
			if (store) {
				/* every artifact the provider could not store, and why,
				 * goes into the response: never only into a log */
				ht_err_clear(&h->err);
				h->collect_warnings = warnings;
				h->collect_dropped = 0;
				rc = store(fn->provider->self, prefix, dir);
				h->collect_warnings = NULL;
				if (h->collect_dropped) {
					char more[96];
					snprintf(more, sizeof more, "and %zu more artifacts not stored",
					         h->collect_dropped);
					json_array_append_new(warnings, json_string(more));
				}
				if (rc != HYPERTEST_OK) {
					char msg[sizeof h->err.msg + 64];
					snprintf(msg, sizeof msg, "artifacts not stored: %s",
					         h->err.msg[0] ? h->err.msg : hypertest_strerror(rc));
					json_array_append_new(warnings, ht_json_text(msg));
					ht_log(h, HYPERTEST_LOG_ERROR, "%s: %s", prefix, msg);
				}
			}
		}
	}
	respond(response, &r, "unknown", warnings);
	json_decref(warnings);
	if (dir) {
		ht_err err;
		ht_rm_rf(dir, &err);
	}
	ht_result_clear(&r);
	json_decref(doc);
	free(ctx_text);
	free(dir);
	free(prefix);
	return HYPERTEST_OK;
}

/* A function serves with one provider and one runner: the other modules
 * of the plugin path are closed (ht_plugins_release_unused) before those
 * two are created, so that the holes the closing leaves in the heap are
 * filled by their allocations rather than left for every child of a fork
 * server to copy.  When either is missing nothing is closed: the error
 * lists what was found. */
static void keep_own_plugins(hypertest *h)
{
	const ht_plugin *keep[2];

	if (ht_plugins_scan(h) != HYPERTEST_OK) {
		ht_err_clear(&h->err);
		return;
	}
	keep[0] = ht_plugin_lookup(h, HYPERTEST_KIND_PROVIDER,
	                           ht_config_plugin_name(h->cfg, "cloudProvider"));
	keep[1] = ht_plugin_lookup(h, HYPERTEST_KIND_RUNNER,
	                           ht_config_plugin_name(h->cfg, "testRunner"));
	if (keep[0] && keep[1])
		ht_plugins_release_unused(&h->reg, keep, 2);
}

int hypertest_function_serve(hypertest *h)
{
	struct hypertest_function fn;
	hypertest_PROVIDER_SERVE_fn serve;
	int rc;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	memset(&fn, 0, sizeof fn);
	fn.h = h;
	if ((rc = ht_require_config(h)))
		goto out;
	keep_own_plugins(h);
	if ((rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &fn.provider)))
		goto out;
	/* Without a runner the provider still serves: it reports why to its
	 * platform (HYPERTEST_CORE_FUNCTION_INIT_ERROR), and every invocation
	 * it hands over is answered failed with that message. */
	free(h->function_init_error);
	h->function_init_error = NULL;
	if ((rc = ht_instance_create(h, HYPERTEST_KIND_RUNNER, &fn.runner))) {
		h->function_init_error = ht_strdup(h->err.msg[0] ? h->err.msg : hypertest_strerror(rc));
		if (!h->function_init_error)
			goto out;
		ht_log(h, HYPERTEST_LOG_ERROR, "the function cannot run tests: %s",
		       h->function_init_error);
		fn.runner = NULL;
	}
	serve = HT_OP(fn.provider, HYPERTEST_PROVIDER_SERVE);
	if (!serve) {
		rc = ht_fail(h, HYPERTEST_ERR_UNSUPPORTED, "provider '%s' cannot serve invocations",
		             fn.provider->core.plugin->name);
		goto out;
	}
	ht_err_clear(&h->err);
	rc = serve(fn.provider->self, &fn);
	if (rc)
		rc = ht_plugin_error(h, fn.provider, rc, "serving invocations");
	else if (h->function_init_error)
		rc = ht_fail(h, HYPERTEST_ERR_PLUGIN, "%s", h->function_init_error);
out:
	ht_instance_destroy(fn.runner);
	ht_instance_destroy(fn.provider);
	return rc;
}
