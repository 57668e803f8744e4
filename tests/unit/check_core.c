/*
 * check_core.c - the core through the public API, with the fixture plugins:
 * plugin loading and its failures, events, deploy, invoke with a provider
 * that completes asynchronously, response validation, the results file,
 * and every bad input that must give a clear error and lose nothing.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <hypertest/hypertest.h>

#include "core.h"
#include "image.h"
#include "report.h"

static char fixtures_dir[1024];

/* ---- helpers ------------------------------------------------------------------ */

static char *tmpdir(void)
{
	char *d = strdup("/tmp/ht-core-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[2048];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static char *read_text(const char *path)
{
	char *data = NULL;
	size_t len;
	if (ht_read_file(path, &data, &len, NULL) != HYPERTEST_OK)
		return NULL;
	return data;
}

/* A plugin directory holding symbolic links to the named fixture modules. */
static char *plugin_dir(const char *const *modules)
{
	char *d = tmpdir();
	char src[2048], dst[2048];
	for (; *modules; modules++) {
		snprintf(src, sizeof src, "%s/%s.so", fixtures_dir, *modules);
		snprintf(dst, sizeof dst, "%s/%s.so", d, *modules);
		ck_assert_msg(symlink(src, dst) == 0, "symlink %s: %s", src, strerror(errno));
	}
	return d;
}

static void rm_rf(const char *path)
{
	ht_rm_rf(path, NULL);
}

/* A project using the fixture plugins: count tests, provider options. */
static char *make_project(long count, const char *provider_extra)
{
	char *d = tmpdir();
	char cfg[4096], tests[2048];
	snprintf(tests, sizeof tests, "%s/tests", d);
	mkdir(tests, 0755);
	write_file(d, "tests/a.test", "echo a\r\n");
	snprintf(cfg, sizeof cfg,
	         "{\n  \"concurrency\": 100,\n  \"imageName\": \"fixture/hypertest\",\n"
	         "  \"testRunner\": {\"plugin\": \"fixture\", \"options\": {\"count\": %ld}},\n"
	         "  \"cloudProvider\": {\"plugin\": \"fixture\", \"options\": {\"delayMs\": 20%s%s}}\n}\n",
	         count, provider_extra ? ", " : "", provider_extra ? provider_extra : "");
	write_file(d, "hypertest.config.json", cfg);
	return d;
}

typedef struct recorder {
	int counts[16];
	int max_in_flight;
	int order_ok;
	char last_step_error[2048];
	char steps[256];
	json_t *events;
} recorder;

static void on_event(const hypertest_event *ev, void *ud)
{
	recorder *r = ud;
	int type = hypertest_event_type(ev);
	ck_assert_int_gt(type, 0);
	ck_assert_int_lt(type, 16);
	r->counts[type]++;
	if (type == HYPERTEST_EVENT_TEST_START) {
		int64_t f = hypertest_event_int(ev, HYPERTEST_FIELD_IN_FLIGHT);
		if (f > r->max_in_flight)
			r->max_in_flight = (int)f;
	}
	if (type == HYPERTEST_EVENT_STEP_END) {
		strncat(r->steps, hypertest_event_str(ev, HYPERTEST_FIELD_STEP),
		        sizeof r->steps - strlen(r->steps) - 2);
		strcat(r->steps, ",");
		ck_assert_int_ge(hypertest_event_int(ev, HYPERTEST_FIELD_DURATION), 0);
	}
	if (type == HYPERTEST_EVENT_STEP_ERROR)
		snprintf(r->last_step_error, sizeof r->last_step_error, "%s: %s",
		         hypertest_event_str(ev, HYPERTEST_FIELD_STEP),
		         hypertest_event_str(ev, HYPERTEST_FIELD_MESSAGE));
	if (r->events)
		json_array_append_new(r->events, json_loads(hypertest_event_json(ev), 0, NULL));
}

static hypertest *open_project(const char *project, const char *plugins, recorder *rec)
{
	hypertest *h = hypertest_new();
	ck_assert_ptr_nonnull(h);
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	if (rec)
		hypertest_set_event_callback(h, on_event, rec);
	return h;
}

/* Free what a test made: its handle, project and plugin directories. */
static void finish(hypertest *h, char *project, char *plugins)
{
	hypertest_free(h);
	rm_rf(project);
	rm_rf(plugins);
	free(project);
	free(plugins);
}

static const char *const good_only[] = {"fixture-good", NULL};

/* ---- plugin loading ------------------------------------------------------------- */

START_TEST(test_plugin_states)
{
	static const char *const all[] = {"fixture-good", "fixture-old-minor", "fixture-major",
	                                  "fixture-noinit", "fixture-initfail",
	                                  "fixture-unknown-op", NULL};
	char *plugins = plugin_dir(all), marker[2048], garbage[2048];
	hypertest *h;
	size_t i, n;
	int seen_good = 0, seen_old = 0, seen_major = 0, seen_noinit = 0, seen_initfail = 0,
	    seen_future = 0, seen_garbage = 0;

	snprintf(marker, sizeof marker, "%s/major-ran", plugins);
	setenv("HT_FIXTURE_MARKER", marker, 1);
	snprintf(garbage, sizeof garbage, "%s/zz-garbage.so", plugins);
	write_file(plugins, "zz-garbage.so", "this is not an ELF file\n");
	h = open_project(plugins, plugins, NULL);
	ck_assert_int_eq(hypertest_plugins_scan(h), HYPERTEST_OK);
	n = hypertest_plugin_count(h);
	for (i = 0; i < n; i++) {
		const char *name = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_NAME);
		const char *state = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_STATE);
		const char *path = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_PATH);
		const char *error = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ERROR);
		if (strstr(path, "fixture-good")) {
			ck_assert_str_eq(state, "loaded");
			ck_assert_str_eq(hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ABI),
			                 hypertest_plugin_abi_version());
			seen_good++;
		} else if (strstr(path, "fixture-old-minor")) {
			ck_assert_str_eq(state, "loaded");
			ck_assert_str_eq(name, "oldminor");
			ck_assert_str_eq(hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ABI), "1.0");
			seen_old++;
		} else if (strstr(path, "fixture-major")) {
			ck_assert_str_eq(state, "failed");
			ck_assert_msg(strstr(error, "2.0") && strstr(error, hypertest_plugin_abi_version()),
			              "message names both versions: %s", error);
			seen_major++;
		} else if (strstr(path, "fixture-noinit")) {
			ck_assert_str_eq(state, "failed");
			ck_assert_ptr_nonnull(strstr(error, "hypertest_plugin_init"));
			seen_noinit++;
		} else if (strstr(path, "fixture-initfail")) {
			ck_assert_str_eq(state, "failed");
			ck_assert_ptr_nonnull(strstr(error, "license server is down"));
			seen_initfail++;
		} else if (strstr(path, "fixture-unknown-op")) {
			ck_assert_str_eq(state, "loaded");
			ck_assert_str_eq(name, "futureop");
			seen_future++;
		} else if (strstr(path, "zz-garbage")) {
			ck_assert_str_eq(state, "failed");
			ck_assert_ptr_nonnull(strstr(error, "cannot load module"));
			seen_garbage++;
		}
	}
	ck_assert_int_eq(seen_good, 2); /* a runner and a provider */
	ck_assert_int_eq(seen_old, 1);
	ck_assert_int_eq(seen_major, 1);
	ck_assert_int_eq(seen_noinit, 1);
	ck_assert_int_eq(seen_initfail, 1);
	ck_assert_int_eq(seen_future, 1);
	ck_assert_int_eq(seen_garbage, 1);
	ck_assert_msg(access(marker, F_OK) != 0, "the ABI 2.0 module's code ran");
	ck_assert_ptr_nonnull(strstr(hypertest_plugin_search_path(h), plugins));
	hypertest_free(h);
	unsetenv("HT_FIXTURE_MARKER");
	rm_rf(plugins);
	free(plugins);
}
END_TEST

START_TEST(test_plugin_shadowing)
{
	char *first = plugin_dir(good_only), *second = plugin_dir(good_only);
	char path[4096];
	hypertest *h = hypertest_new();
	size_t i, loaded = 0, shadowed = 0;

	snprintf(path, sizeof path, "%s:%s", first, second);
	setenv("HYPERTEST_PLUGIN_PATH", path, 1);
	ck_assert_int_eq(hypertest_plugins_scan(h), HYPERTEST_OK);
	for (i = 0; i < hypertest_plugin_count(h); i++) {
		const char *state = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_STATE);
		const char *p = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_PATH);
		/* plugins installed on this machine are on the path too */
		if (strcmp(hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_NAME), "fixture") != 0)
			continue;
		if (!strcmp(state, "loaded")) {
			ck_assert_ptr_nonnull(strstr(p, first));
			loaded++;
		} else if (!strcmp(state, "shadowed")) {
			ck_assert_ptr_nonnull(strstr(p, second));
			ck_assert_ptr_nonnull(strstr(hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ERROR), first));
			shadowed++;
		}
	}
	ck_assert_int_eq(loaded, 2);
	ck_assert_int_eq(shadowed, 2);
	hypertest_free(h);
	rm_rf(first);
	rm_rf(second);
	free(first);
	free(second);
}
END_TEST

/* HYPERTEST_PLUGIN_MODULES: those files alone are loaded, no directory
 * searched (not even the installed one); a file that cannot be loaded is a
 * failed entry naming it. */
START_TEST(test_plugin_modules_env)
{
	static const char *const two[] = {"fixture-good", "fixture-old-minor", NULL};
	char *plugins = plugin_dir(two);
	char only[4096];
	hypertest *h = hypertest_new();
	size_t i, oldminor = 0, missing = 0;

	snprintf(only, sizeof only, "%s/fixture-old-minor.so:%s/absent.so", plugins, plugins);
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	setenv("HYPERTEST_PLUGIN_MODULES", only, 1);
	ck_assert_int_eq(hypertest_plugins_scan(h), HYPERTEST_OK);
	ck_assert_str_eq(hypertest_plugin_search_path(h), only);
	for (i = 0; i < hypertest_plugin_count(h); i++) {
		const char *path = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_PATH);
		const char *state = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_STATE);
		if (strstr(path, "fixture-old-minor.so")) {
			ck_assert_str_eq(state, "loaded");
			oldminor++;
		} else {
			ck_assert_msg(strstr(path, "absent.so") != NULL, "loaded %s", path);
			ck_assert_str_eq(state, "failed");
			ck_assert_ptr_nonnull(
			    strstr(hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ERROR), "cannot load module"));
			missing++;
		}
	}
	ck_assert_int_eq(oldminor, 1);
	ck_assert_int_eq(missing, 1);
	unsetenv("HYPERTEST_PLUGIN_MODULES");
	hypertest_free(h);
	rm_rf(plugins);
	free(plugins);
}
END_TEST

/* HYPERTEST_CORE_FUNCTION_MODULES: the provider's module, then the
 * runner's; one file when both are in one module. */
START_TEST(test_function_modules_key)
{
	static const char *const two[] = {"fixture-good", "fixture-old-minor", NULL};
	char *plugins = plugin_dir(two);
	char *project = make_project(1, NULL);
	char out[4096], cfg[4096], want[4096], *got;
	hypertest_run *run = NULL;
	hypertest *h;

	snprintf(out, sizeof out, "%s/modules.txt", project);
	setenv("HT_FIXTURE_MODULES_OUT", out, 1);
	h = open_project(project, plugins, NULL);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	/* the provider is created first: not deployed, the run fails after */
	(void)hypertest_invoke(h, &run);
	hypertest_run_free(run);
	run = NULL;
	got = read_text(out);
	snprintf(want, sizeof want, "%s/fixture-good.so", plugins);
	ck_assert_str_eq(got ? got : "(none)", want);
	free(got);
	hypertest_free(h);
	unlink(out);

	snprintf(cfg, sizeof cfg,
	         "{\"concurrency\": 1, \"testRunner\": {\"plugin\": \"oldminor\"},\n"
	         " \"cloudProvider\": {\"plugin\": \"fixture\", \"options\": {}}}\n");
	write_file(project, "hypertest.config.json", cfg);
	h = open_project(project, plugins, NULL);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	(void)hypertest_invoke(h, &run);
	hypertest_run_free(run);
	got = read_text(out);
	snprintf(want, sizeof want, "%s/fixture-good.so:%s/fixture-old-minor.so", plugins, plugins);
	ck_assert_str_eq(got ? got : "(none)", want);
	free(got);
	unsetenv("HT_FIXTURE_MODULES_OUT");
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_unknown_plugin_lists_found)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(3, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "testRunner.plugin", "\"nosuch\""), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_PLUGIN);
	ck_assert_ptr_null(run);
	ck_assert_msg(strstr(hypertest_errmsg(h), "'nosuch'") &&
	                  strstr(hypertest_errmsg(h), "'fixture'") &&
	                  strstr(hypertest_errmsg(h), plugins),
	              "message: %s", hypertest_errmsg(h));
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_abi_mismatch_named)
{
	static const char *const major[] = {"fixture-major", NULL};
	char *plugins = plugin_dir(major);
	char *project = make_project(3, NULL);
	hypertest *h = open_project(project, plugins, NULL);

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_deploy(h), HYPERTEST_ERR_PLUGIN);
	ck_assert_msg(strstr(hypertest_errmsg(h), "plugin ABI 2.0 is not supported"),
	              "message: %s", hypertest_errmsg(h));
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_unknown_operation_ignored)
{
	static const char *const mods[] = {"fixture-good", "fixture-unknown-op", NULL};
	char *plugins = plugin_dir(mods);
	char *project = make_project(3, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	char *manifest, path[2048];

	/* the futureop runner lists one test through its known operations */
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "testRunner.plugin", "\"futureop\""), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "driftDetectionPolicy", "\"silence\""), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	snprintf(path, sizeof path, "%s/bucket/hypertest.manifest.json", project);
	manifest = read_text(path);
	ck_assert_ptr_nonnull(manifest);
	ck_assert_ptr_nonnull(strstr(manifest, "\"future\": true"));
	free(manifest);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_total(run), 1);
	hypertest_run_free(run);
	finish(h, project, plugins);
}
END_TEST

/* ---- deploy and invoke ------------------------------------------------------------- */

START_TEST(test_deploy_then_invoke_1000_at_100)
{
	char *plugins = plugin_dir(good_only);
	char stats[2048], extra[2200], *project, *text, path[2048];
	recorder rec;
	hypertest *h;
	hypertest_run *run = NULL;
	json_t *doc, *list, *st;
	size_t i;

	memset(&rec, 0, sizeof rec);
	snprintf(stats, sizeof stats, "/tmp/ht-stats-%d.json", (int)getpid());
	snprintf(extra, sizeof extra, "\"statsFile\": \"%s\", \"failEvery\": 100", stats);
	project = make_project(1000, extra);
	h = open_project(project, plugins, &rec);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_str_eq(rec.steps, "pull,build,push,manifest,update,");
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_ptr_nonnull(run);
	ck_assert_uint_eq(hypertest_run_total(run), 1000);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_FAILED), 10);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_SUCCESS), 990);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_TEST_START], 1000);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_TEST_END], 1000);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_RUN_START], 1);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_RUN_END], 1);
	ck_assert_int_le(rec.max_in_flight, 100);
	ck_assert_int_eq(rec.max_in_flight, 100);

	/* the provider's own count: never more than 100 at once */
	hypertest_free(h);
	h = NULL;
	st = json_load_file(stats, 0, NULL);
	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "maxInFlight")), 100);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "started")), 1000);
	/* INVOKE_END once, right after the last start (invocations still in
	 * flight), and before the results were published */
	ck_assert_int_eq(json_integer_value(json_object_get(st, "ended")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "startedAtEnd")), 1000);
	ck_assert_int_gt(json_integer_value(json_object_get(st, "inFlightAtEnd")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "startsAfterEnd")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "resultsBeforeEnd")), 0);
	json_decref(st);
	unlink(stats);

	/* every test is in the results file, locally and in the bucket */
	ck_assert_ptr_nonnull(hypertest_run_results_path(run));
	snprintf(path, sizeof path, "%s/hypertest.results.json", project);
	ck_assert_str_eq(hypertest_run_results_path(run), path);
	doc = json_load_file(path, 0, NULL);
	ck_assert_ptr_nonnull(doc);
	list = json_object_get(doc, "testResults");
	ck_assert_uint_eq(json_array_size(list), 1000);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "tests"), "total")), 1000);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(doc, "tests"), "failed")), 10);
	for (i = 0; i < json_array_size(list); i++) {
		json_t *t = json_array_get(list, i);
		ck_assert_ptr_nonnull(json_object_get(t, "testId"));
		ck_assert_ptr_nonnull(json_object_get(t, "context"));
	}
	json_decref(doc);
	snprintf(path, sizeof path, "%s/bucket/%s/hypertest.results.json", project,
	         hypertest_run_id(run));
	text = read_text(path);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, hypertest_run_results_json(run));
	free(text);
	hypertest_run_free(run);
	rm_rf(project);
	rm_rf(plugins);
	free(project);
	free(plugins);
}
END_TEST

/* The results file has exactly the keys of the TypeScript format (plus context). */
START_TEST(test_results_schema)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(2, "\"failEvery\": 2");
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	json_t *doc, *t0, *t1;
	const char *key;
	json_t *v;
	static const char *const top[] = {"runId", "startDate", "endDate", "duration", "tests",
	                                  "testResults", NULL};
	static const char *const per_test[] = {"testId", "name", "filePath", "status", "startDate",
	                                       "endDate", "duration", "context", NULL};
	size_t i;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	doc = json_loads(hypertest_run_results_json(run), 0, NULL);
	ck_assert_ptr_nonnull(doc);
	for (i = 0; top[i]; i++)
		ck_assert_msg(json_object_get(doc, top[i]) != NULL, "missing %s", top[i]);
	/* the TypeScript schema's members, and the one added beside them */
	ck_assert_uint_eq(json_object_size(doc), 7);
	ck_assert_int_eq(json_integer_value(json_object_get(doc, "concurrency")), 100);
	json_object_foreach(json_object_get(doc, "tests"), key, v)
		ck_assert_msg(!strcmp(key, "total") || !strcmp(key, "success") ||
		                  !strcmp(key, "skipped") || !strcmp(key, "failed"),
		              "unexpected %s", key);
	ck_assert_int_eq(strlen(json_string_value(json_object_get(doc, "startDate"))), 24);
	ck_assert_int_eq(json_string_value(json_object_get(doc, "startDate"))[23], 'Z');
	t0 = json_array_get(json_object_get(doc, "testResults"), 0);
	t1 = json_array_get(json_object_get(doc, "testResults"), 1);
	for (i = 0; per_test[i]; i++) {
		ck_assert_msg(json_object_get(t0, per_test[i]) != NULL, "missing %s", per_test[i]);
		ck_assert_msg(json_object_get(t1, per_test[i]) != NULL, "missing %s", per_test[i]);
	}
	ck_assert_str_eq(json_string_value(json_object_get(t0, "status")), "success");
	ck_assert_ptr_null(json_object_get(t0, "error"));
	/* the added fields: the invocation's timing, where its logs are */
	{
		json_t *a = json_object_get(t0, "artifacts");
		char want[128];
		snprintf(want, sizeof want, "%s/%s/stdout.log", hypertest_run_id(run),
		         json_string_value(json_object_get(t0, "testId")));
		ck_assert_str_eq(json_string_value(json_object_get(a, "stdout")), want);
		ck_assert_int_ge(json_integer_value(json_object_get(t0, "endTime")),
		                 json_integer_value(json_object_get(t0, "startTime")));
		ck_assert_int_gt(json_integer_value(json_object_get(t0, "startTime")), 0);
		ck_assert_ptr_null(json_object_get(t0, "expectedDuration")); /* no history yet */
	}
	/* a passed test's duration is the one the function reported */
	ck_assert_int_eq(json_integer_value(json_object_get(t0, "duration")), 20);
	ck_assert_str_eq(json_string_value(json_object_get(t1, "status")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(t1, "error"), "message")),
	                 "test 1 failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(t1, "error"), "stackTrace")),
	                 "at fixture.c:1");
	ck_assert_str_eq(hypertest_run_test_str(run, 1, HYPERTEST_TEST_MESSAGE), "test 1 failed");
	ck_assert_str_eq(hypertest_run_test_str(run, 0, HYPERTEST_TEST_CONTEXT), "{\"n\":0}");
	json_decref(doc);
	hypertest_run_free(run);
	finish(h, project, plugins);
}
END_TEST

/* Responses that are not JSON, too large or of the wrong shape fail only their test. */
START_TEST(test_bad_responses)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(
	    8, "\"responses\": {\"0\": \"not json\", \"1\": \"[1,2]\", \"2\": \"{\\\"success\\\": 1}\","
	       " \"3\": \"{\\\"success\\\": true, \\\"name\\\": 7}\", \"4\": \"\","
	       " \"5\": \"{\\\"success\\\": \\\"skipped\\\"}\","
	       " \"6\": \"{\\\"errorMessage\\\": \\\"boom\\\", \\\"errorType\\\": \\\"Error\\\"}\"}");
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	const char *msg;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_total(run), 8);
	msg = hypertest_run_test_str(run, 0, HYPERTEST_TEST_MESSAGE);
	ck_assert_msg(strstr(msg, "not JSON") && strstr(msg, "not json"), "%s", msg);
	ck_assert_ptr_nonnull(strstr(hypertest_run_test_str(run, 1, HYPERTEST_TEST_MESSAGE), "not a JSON object"));
	ck_assert_ptr_nonnull(strstr(hypertest_run_test_str(run, 2, HYPERTEST_TEST_MESSAGE), "'success'"));
	ck_assert_ptr_nonnull(strstr(hypertest_run_test_str(run, 3, HYPERTEST_TEST_MESSAGE), "'name'"));
	ck_assert_ptr_nonnull(strstr(hypertest_run_test_str(run, 4, HYPERTEST_TEST_MESSAGE), "empty"));
	ck_assert_int_eq(hypertest_run_test_status(run, 5), HYPERTEST_STATUS_SKIPPED);
	ck_assert_str_eq(hypertest_run_test_str(run, 5, HYPERTEST_TEST_NAME), "unknown");
	ck_assert_str_eq(hypertest_run_test_str(run, 5, HYPERTEST_TEST_FILE_PATH), "unknown");
	ck_assert_ptr_nonnull(strstr(hypertest_run_test_str(run, 6, HYPERTEST_TEST_MESSAGE), "Error: boom"));
	ck_assert_int_eq(hypertest_run_test_status(run, 7), HYPERTEST_STATUS_SUCCESS);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_FAILED), 6);
	hypertest_run_free(run);
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_response_too_large)
{
	ht_test_result r;
	size_t big = 6u * 1024 * 1024 + 1;
	char *text = malloc(big + 1);
	memset(&r, 0, sizeof r);
	memset(text, ' ', big);
	memcpy(text, "{\"success\":true}", 16);
	text[big] = '\0';
	ht_result_from_response(&r, text, big, 6u * 1024 * 1024);
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
	ck_assert_ptr_nonnull(strstr(r.message, "too large"));
	ck_assert_ptr_nonnull(strstr(r.message, "6291457"));
	ht_test_result_clear(&r);
	/* at the limit it is accepted */
	memset(&r, 0, sizeof r);
	ht_result_from_response(&r, text, big - 1, 6u * 1024 * 1024);
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_SUCCESS);
	ht_test_result_clear(&r);
	free(text);
}
END_TEST

/* A duration no int64_t holds (found by tests/fuzz: UBSan, a double of
 * 1e300 converted) fails the test; 10^12 ms is the largest taken. */
START_TEST(test_response_huge_duration)
{
	static const char *const bad[] = {"1e300", "-1", "1e19", "9.3e18", "1000000000001"};
	ht_test_result r;
	char text[128];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		memset(&r, 0, sizeof r);
		snprintf(text, sizeof text, "{\"success\": true, \"duration\": %s}", bad[i]);
		ht_result_from_response(&r, text, strlen(text), 1024);
		ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
		ck_assert_msg(strstr(r.message, "'duration'"), "%s", r.message);
		ht_test_result_clear(&r);
	}
	memset(&r, 0, sizeof r);
	snprintf(text, sizeof text, "{\"success\": true, \"duration\": 1e12}");
	ht_result_from_response(&r, text, strlen(text), 1024);
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_SUCCESS);
	ck_assert_int_eq(r.duration, 1000000000000LL);
	ht_test_result_clear(&r);
}
END_TEST

/* ---- bad input: clear errors, nothing lost ------------------------------------ */

START_TEST(test_missing_config)
{
	char *project = tmpdir();
	hypertest *h = hypertest_new();
	hypertest_run *run = NULL;
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "hypertest.config.json"));
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "hypertest init"));
	hypertest_free(h);
	rm_rf(project);
	free(project);
}
END_TEST

START_TEST(test_invalid_config_position)
{
	char *project = tmpdir();
	hypertest *h = hypertest_new();
	write_file(project, "hypertest.config.json", "{\n  \"concurrency\": 30,\n  \"imageName\": [1]\n}\n");
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(hypertest_errmsg(h), "hypertest.config.json:3:") &&
	                  strstr(hypertest_errmsg(h), "imageName"),
	              "%s", hypertest_errmsg(h));
	hypertest_free(h);
	rm_rf(project);
	free(project);
}
END_TEST

START_TEST(test_platform_key)
{
	char *project = tmpdir();
	hypertest *h = hypertest_new();
	char *v;
	write_file(project, "hypertest.config.json", "{\n  \"platform\": \"linux\"\n}\n");
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(hypertest_errmsg(h), "hypertest.config.json:2:") &&
	                  strstr(hypertest_errmsg(h), "os/architecture"),
	              "%s", hypertest_errmsg(h));
	write_file(project, "hypertest.config.json", "{\"platform\": \"linux/arm/v7\"}");
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	v = hypertest_config_get(h, "platform");
	ck_assert_str_eq(v, "\"linux/arm/v7\"");
	hypertest_string_free(v);
	hypertest_free(h);
	rm_rf(project);
	free(project);
}
END_TEST

START_TEST(test_manifest_missing_and_malformed)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(3, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	char bucket[2048];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_MANIFEST);
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "hypertest deploy"));
	snprintf(bucket, sizeof bucket, "%s/bucket", project);
	write_file(bucket, "hypertest.manifest.json", "{\"imageDigest\": \"sha256:00\"}");
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_MANIFEST);
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "imageDigest"));
	write_file(bucket, "hypertest.manifest.json", "{\"imageDigest\": ");
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_MANIFEST);
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "hypertest.manifest.json:1:"));
	ck_assert_ptr_null(run);
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_empty_test_dir)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(3, NULL);
	char file[2048];
	recorder rec;
	hypertest *h;

	memset(&rec, 0, sizeof rec);
	snprintf(file, sizeof file, "%s/tests/a.test", project);
	unlink(file);
	h = open_project(project, plugins, &rec);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_deploy(h), HYPERTEST_ERR_EMPTY);
	ck_assert_msg(strstr(hypertest_errmsg(h), "step 'manifest'") &&
	                  strstr(hypertest_errmsg(h), "tests"),
	              "%s", hypertest_errmsg(h));
	ck_assert_ptr_nonnull(strstr(rec.last_step_error, "manifest: "));
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_results_not_writable)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(4, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	json_t *doc;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	/* a results file name whose parent is a regular file cannot be written, even as root */
	write_file(project, "blocker", "x");
	ck_assert_int_eq(hypertest_config_set(h, "resultsFileName", "\"blocker/results.json\""),
	                 HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_ptr_null(hypertest_run_results_path(run));
	doc = json_loads(hypertest_run_results_json(run), 0, NULL);
	ck_assert_ptr_nonnull(doc);
	ck_assert_uint_eq(json_array_size(json_object_get(doc, "testResults")), 4);
	json_decref(doc);
	hypertest_run_free(run);
	finish(h, project, plugins);
}
END_TEST

/* As in the TypeScript hypertest: another image than the manifest's stops
 * the invoke unless the policy is "silence"; ".json" appended to names. */
START_TEST(test_image_drift_is_an_error)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(2, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	const char *msg;
	char path[2048];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "resultsFileName", "\"myresults\""), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "buildManifestFileName", "\"mymanifest\""),
	                 HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	snprintf(path, sizeof path, "%s/bucket/mymanifest.json", project);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	snprintf(path, sizeof path, "%s/myresults.json", project);
	ck_assert_int_eq(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/myresults", project);
	ck_assert_int_ne(access(path, F_OK), 0);
	hypertest_run_free(run);
	run = NULL;
	write_file(project, "bucket/function-digest",
	           "sha256:1111111111111111111111111111111111111111111111111111111111111111");
	/* the default policy ("warning") */
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_DRIFT);
	ck_assert_ptr_null(run);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "runs image sha256:1111111111111111") && strstr(msg, "expects sha256:") &&
	                  strstr(msg, "hypertest deploy"),
	              "%s", msg);
	ck_assert_int_eq(hypertest_config_set(h, "driftDetectionPolicy", "\"silence\""), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_drift_policies)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(2, NULL);
	hypertest *h;
	hypertest_run *run = NULL;
	recorder rec;

	memset(&rec, 0, sizeof rec);
	rec.events = json_array();
	h = open_project(project, plugins, &rec);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_LOG], 0);
	write_file(project, "tests/a.test", "echo changed\n");
	/* warning (the default): a log line, the run goes on */
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_LOG], 1);
	{
		json_t *last = json_array_get(rec.events, json_array_size(rec.events) - 1);
		size_t k;
		int found = 0;
		for (k = 0; k < json_array_size(rec.events); k++) {
			json_t *e = json_array_get(rec.events, k);
			if (!strcmp(json_string_value(json_object_get(e, "event")), "log") &&
			    json_integer_value(json_object_get(e, "level")) == HYPERTEST_LOG_WARNING &&
			    strstr(json_string_value(json_object_get(e, "message")), "drift"))
				found = 1;
		}
		ck_assert_msg(found, "no drift warning");
		(void)last;
	}
	/* error: nothing runs */
	ck_assert_int_eq(hypertest_config_set(h, "driftDetectionPolicy", "\"error\""), HYPERTEST_OK);
	run = NULL;
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_DRIFT);
	ck_assert_ptr_null(run);
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "changed since the last deploy"));
	/* silence: no word */
	ck_assert_int_eq(hypertest_config_set(h, "driftDetectionPolicy", "\"silence\""), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_LOG], 1);
	json_decref(rec.events);
	finish(h, project, plugins);
}
END_TEST

/* ---- units ---------------------------------------------------------------------- */

START_TEST(test_schedule_order)
{
	int64_t known[] = {-1, 500, 100, -1, 900, 100};
	size_t order[6];
	ht_schedule_order(known, 6, order);
	/* never seen first, in manifest order; then longest first, ties in manifest order */
	ck_assert_uint_eq(order[0], 0);
	ck_assert_uint_eq(order[1], 3);
	ck_assert_uint_eq(order[2], 4);
	ck_assert_uint_eq(order[3], 1);
	ck_assert_uint_eq(order[4], 2);
	ck_assert_uint_eq(order[5], 5);
}
END_TEST

START_TEST(test_history_orders_second_run)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(3, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	char path[2048];
	ht_history *hist;
	json_t *ctx;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	snprintf(path, sizeof path, "%s/.hypertest/history.json", project);
	hist = ht_history_load(path, NULL);
	ctx = json_pack("{s:i}", "n", 1);
	ck_assert_int_ge(ht_history_get(hist, ctx), 20);
	json_decref(ctx);
	ctx = json_pack("{s:i}", "n", 99);
	ck_assert_int_eq(ht_history_get(hist, ctx), -1);
	json_decref(ctx);
	ht_history_free(hist);
	finish(h, project, plugins);
}
END_TEST

/* The second run starts the tests longest first. */
typedef struct start_order {
	int n;
	long order[16];
} start_order;

static void on_start(const hypertest_event *ev, void *ud)
{
	start_order *so = ud;
	if (hypertest_event_type(ev) == HYPERTEST_EVENT_TEST_START && so->n < 16)
		so->order[so->n++] = (long)hypertest_event_int(ev, HYPERTEST_FIELD_INDEX);
}

/* The steps are wide (150 ms): under a heavy load a test of 15 ms once ran
 * longer than one of 30. */
START_TEST(test_longest_first_on_second_run)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(5, "\"delayStepMs\": 150");
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	start_order so;
	int i;

	hypertest_set_event_callback(h, on_start, &so);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "concurrency", "1"), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	memset(&so, 0, sizeof so);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(so.order[i], i); /* never seen: manifest order */
	memset(&so, 0, sizeof so);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	hypertest_run_free(run);
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(so.order[i], 4 - i); /* known: longest first */
	finish(h, project, plugins);
}
END_TEST

/* What the fixture provider's statsFile says about INVOKE_END: ended,
 * startedAtEnd, inFlightAtEnd, startsAfterEnd, resultsBeforeEnd. */
static void stats_of(const char *path, long long out[5])
{
	static const char *const keys[] = {"ended", "startedAtEnd", "inFlightAtEnd",
	                                   "startsAfterEnd", "resultsBeforeEnd"};
	json_t *st = json_load_file(path, 0, NULL);
	int k;
	ck_assert_msg(st != NULL, "no stats in %s", path);
	for (k = 0; k < 5; k++)
		out[k] = json_integer_value(json_object_get(st, keys[k]));
	json_decref(st);
	unlink(path);
}

/* A project whose provider writes its statsFile (the path in stats). */
static char *project_with_stats(long count, const char *extra, char *stats, size_t size)
{
	char opts[2400];
	snprintf(stats, size, "/tmp/ht-stats-%d.json", (int)getpid());
	snprintf(opts, sizeof opts, "\"statsFile\": \"%s\"%s%s", stats, extra ? ", " : "",
	         extra ? extra : "");
	return make_project(count, opts);
}

/* With retries, INVOKE_END waits until no test in flight can fail into a
 * retry: test 3 (the last to answer, failing every attempt) is retried
 * after every test started, and INVOKE_END follows that retry's start. */
START_TEST(test_invoke_end_after_last_retry)
{
	char *plugins = plugin_dir(good_only), stats[2048];
	char *project = project_with_stats(4, "\"failEvery\": 4, \"delayStepMs\": 10", stats,
	                                   sizeof stats);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	long long e[5];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "retries", "1"), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_FAILED), 1);
	hypertest_run_free(run);
	hypertest_free(h);
	stats_of(stats, e);
	ck_assert_int_eq(e[0], 1);
	ck_assert_int_eq(e[1], 5); /* four tests and the retry */
	ck_assert_int_eq(e[2], 1); /* the retry, still in flight */
	ck_assert_int_eq(e[3], 0);
	ck_assert_int_eq(e[4], 0);

	/* every test passes, each could have been retried until it answered:
	 * INVOKE_END only after the last answer, still before the results */
	h = open_project(project, plugins, NULL);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "retries", "2"), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "cloudProvider.options.failEvery", "0"),
	                 HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_SUCCESS), 4);
	hypertest_run_free(run);
	finish(h, project, plugins);
	stats_of(stats, e);
	ck_assert_int_eq(e[0], 1);
	ck_assert_int_eq(e[1], 4);
	ck_assert_int_eq(e[2], 0);
	ck_assert_int_eq(e[3], 0);
	ck_assert_int_eq(e[4], 0);
}
END_TEST

/* --max-failures: INVOKE_END as the run stops, with invocations in flight. */
START_TEST(test_invoke_end_max_failures)
{
	char *plugins = plugin_dir(good_only), stats[2048];
	char *project = project_with_stats(300, "\"failEvery\": 1", stats, sizeof stats);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	long long e[5];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "concurrency", "10"), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "retries", "3"), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_set_invoke_option(h, HYPERTEST_INVOKE_MAX_FAILURES, "3"),
	                 HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_gt(hypertest_run_count(run, HYPERTEST_STATUS_SKIPPED), 0);
	hypertest_run_free(run);
	finish(h, project, plugins);
	stats_of(stats, e);
	ck_assert_int_eq(e[0], 1);
	ck_assert_int_lt(e[1], 300);
	ck_assert_int_eq(e[3], 0);
	ck_assert_int_eq(e[4], 0);
}
END_TEST

/* A provider without INVOKE_END (built for an older minor version) runs as before. */
START_TEST(test_invoke_end_missing)
{
	static const char *const noend[] = {"fixture-noend", NULL};
	char *plugins = plugin_dir(noend), stats[2048];
	char *project = project_with_stats(50, "\"failEvery\": 10", stats, sizeof stats);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	long long e[5];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "retries", "1"), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_total(run), 50);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_FAILED), 5);
	hypertest_run_free(run);
	finish(h, project, plugins);
	stats_of(stats, e);
	ck_assert_int_eq(e[0], 0);
}
END_TEST

/* A cancel in the middle of a run: invocations in flight are cancelled, the
 * rest never start, and the results gathered so far are written. */
typedef struct canceller {
	hypertest *h;
	int ended;
} canceller;

static void cancel_after_ten(const hypertest_event *ev, void *ud)
{
	canceller *c = ud;
	if (hypertest_event_type(ev) == HYPERTEST_EVENT_TEST_END && ++c->ended == 10)
		hypertest_cancel(c->h);
}

START_TEST(test_cancel_keeps_results)
{
	char *plugins = plugin_dir(good_only), stats[2048];
	char *project = project_with_stats(200, NULL, stats, sizeof stats);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	canceller c = {h, 0};
	size_t i, cancelled = 0;
	long long e[5];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "concurrency", "10"), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	hypertest_set_event_callback(h, cancel_after_ten, &c);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_total(run), 200);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_SUCCESS), 10);
	for (i = 0; i < 200; i++) {
		const char *m = hypertest_run_test_str(run, i, HYPERTEST_TEST_MESSAGE);
		if (m && strstr(m, "cancel"))
			cancelled++;
	}
	ck_assert_uint_eq(cancelled, 190);
	ck_assert_ptr_nonnull(hypertest_run_results_path(run));
	hypertest_run_free(run);
	finish(h, project, plugins);
	/* INVOKE_END once as the run stopped, nothing started after it */
	stats_of(stats, e);
	ck_assert_int_eq(e[0], 1);
	ck_assert_int_lt(e[1], 200);
	ck_assert_int_eq(e[3], 0);
	ck_assert_int_eq(e[4], 0);
}
END_TEST

/* The configuration baked into the image reads the same on the function side. */
START_TEST(test_deployed_config_round_trip)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(2, NULL);
	char layout[2048], root[2048], cfg[2100];
	hypertest *h = open_project(project, plugins, NULL), *fh;
	char *v;
	ht_err err;

	setenv("HT_CORE_TEST_VAR", "x", 1);
	unsetenv("HT_CORE_UNSET");
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "testRunner.options.label",
	                                      "\"cost $$5 ${HT_CORE_TEST_VAR} $${HT_CORE_UNSET}\""),
	                 HYPERTEST_OK);
	v = hypertest_config_get(h, "testRunner.options.label");
	ck_assert_str_eq(v, "\"cost $5 x ${HT_CORE_UNSET}\"");
	hypertest_string_free(v);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	snprintf(layout, sizeof layout, "%s/bucket/image", project);
	snprintf(root, sizeof root, "%s/root", project);
	ck_assert_msg(ht_image_unpack_layout(layout, "latest", root, &err) == HYPERTEST_OK, "%s",
	              err.msg);
	unsetenv("HT_CORE_TEST_VAR");
	snprintf(cfg, sizeof cfg, "%s/var/task/hypertest.config.json", root);
	fh = hypertest_new();
	ck_assert_msg(hypertest_config_load_file(fh, cfg) == HYPERTEST_OK, "%s", hypertest_errmsg(fh));
	v = hypertest_config_get(fh, "testRunner.options.label");
	ck_assert_str_eq(v, "\"cost $5 x ${HT_CORE_UNSET}\"");
	hypertest_string_free(v);
	hypertest_free(fh);
	finish(h, project, plugins);
}
END_TEST

START_TEST(test_strerror_every_code)
{
	int code;
	ck_assert_str_eq(hypertest_strerror(HYPERTEST_OK), "success");
	for (code = 1; code <= 21; code++)
		ck_assert_str_ne(hypertest_strerror(code), "unknown error");
	ck_assert_str_eq(hypertest_strerror(9999), "unknown error");
}
END_TEST

START_TEST(test_dry_run_mutates_nothing)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(3, NULL);
	hypertest *h = open_project(project, plugins, NULL);
	hypertest_run *run = NULL;
	char path[2048];

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_set_flags(h, HYPERTEST_FLAG_DRY_RUN), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	snprintf(path, sizeof path, "%s/bucket/hypertest.manifest.json", project);
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/bucket/function-digest", project);
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/bucket/image", project);
	ck_assert_int_ne(access(path, F_OK), 0);
	/* a real deploy, then a dry invoke: nothing invoked, nothing written */
	hypertest_set_flags(h, 0);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	hypertest_set_flags(h, HYPERTEST_FLAG_DRY_RUN);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_uint_eq(hypertest_run_count(run, HYPERTEST_STATUS_SKIPPED), 3);
	ck_assert_ptr_null(hypertest_run_results_path(run));
	snprintf(path, sizeof path, "%s/hypertest.results.json", project);
	ck_assert_int_ne(access(path, F_OK), 0);
	hypertest_run_free(run);
	finish(h, project, plugins);
}
END_TEST

/* invoke builds the report from the bucket; hypertest_report builds it again,
 * with JUnit XML. */
START_TEST(test_report_built)
{
	char *plugins = plugin_dir(good_only);
	char *project = make_project(4, "\"failEvery\": 2");
	recorder rec;
	hypertest *h;
	hypertest_run *run = NULL;
	char path[2048], *html, *xml;

	memset(&rec, 0, sizeof rec);
	h = open_project(project, plugins, &rec);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_REPORT], 1);
	snprintf(path, sizeof path, "%s/.hypertest/reports/%s/index.html", project,
	         hypertest_run_id(run));
	html = read_text(path);
	ck_assert_ptr_nonnull(html);
	ck_assert_ptr_nonnull(strstr(html, "test 1 failed"));
	ck_assert_ptr_nonnull(strstr(html, "at fixture.c:1"));
	ck_assert_ptr_nonnull(strstr(html, "<b id=count-failed>2</b>"));
	free(html);
	snprintf(path, sizeof path, "%s/bucket/%s/report/index.html", project, hypertest_run_id(run));
	ck_assert_int_eq(access(path, F_OK), 0);
	/* again, with JUnit XML, for the run of the local results file */
	ck_assert_int_eq(hypertest_set_junit_output(h, "out/junit.xml"), HYPERTEST_OK);
	ck_assert_msg(hypertest_report(h, NULL) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_REPORT], 3);
	snprintf(path, sizeof path, "%s/out/junit.xml", project);
	xml = read_text(path);
	ck_assert_ptr_nonnull(xml);
	ck_assert_ptr_nonnull(strstr(xml, "<testsuite name=\"hypertest\" tests=\"4\" failures=\"2\""));
	ck_assert_ptr_nonnull(strstr(xml, "<failure message=\"test 1 failed\""));
	free(xml);
	/* "report": false and HYPERTEST_FLAG_NO_REPORT: none */
	hypertest_run_free(run);
	ck_assert_int_eq(hypertest_set_junit_output(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "report", "false"), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_REPORT], 3);
	hypertest_run_free(run);
	ck_assert_int_eq(hypertest_config_set(h, "report", "true"), HYPERTEST_OK);
	hypertest_set_flags(h, HYPERTEST_FLAG_NO_REPORT);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	ck_assert_int_eq(rec.counts[HYPERTEST_EVENT_REPORT], 3);
	hypertest_run_free(run);
	/* a run the bucket does not hold */
	ck_assert_int_eq(hypertest_report(h, "no-such-run"), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(hypertest_errmsg(h), "no run 'no-such-run' in the bucket"));
	finish(h, project, plugins);
}
END_TEST

/* A provider built for ABI 1.2 loads, and report names it. */
START_TEST(test_report_old_provider)
{
	static const char *const mods[] = {"fixture-good", "fixture-old-provider", NULL};
	char *plugins = plugin_dir(mods);
	char *project = make_project(1, NULL);
	hypertest *h = open_project(project, plugins, NULL);

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_set(h, "cloudProvider", "{\"plugin\": \"oldprov\"}"),
	                 HYPERTEST_OK);
	ck_assert_int_eq(hypertest_report(h, "r1"), HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_msg(strstr(hypertest_errmsg(h),
	                     "provider 'oldprov' cannot read its bucket (built for ABI 1.2") != NULL,
	              "%s", hypertest_errmsg(h));
	finish(h, project, plugins);
}
END_TEST

/* Text for XML 1.0: what is not allowed becomes U+FFFD, the rest is kept. */
START_TEST(test_xml_text)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		{"plain \t\n\r text", 14, "plain \t\n\r text"},
		{"a\x01" "b\x1b[31mc", 9, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD[31mc"},
		{"nul\0x", 5, "nul\xEF\xBF\xBDx"},
		{"bad \xff\xfe", 6, "bad \xEF\xBF\xBD\xEF\xBF\xBD"},
		{"sur \xed\xa0\x80!", 8, "sur \xEF\xBF\xBD!"},              /* U+D800 */
		{"over \xc0\xaf", 7, "over \xEF\xBF\xBD"},                   /* overlong '/' */
		{"cut \xe2\x82", 6, "cut \xEF\xBF\xBD\xEF\xBF\xBD"},      /* truncated */
		{"euro \xe2\x82\xac ok", 11, "euro \xe2\x82\xac ok"},
		{"emoji \xf0\x9f\x98\x80", 10, "emoji \xf0\x9f\x98\x80"},
		{"nonchar \xef\xbf\xbe", 11, "nonchar \xEF\xBF\xBD"},       /* U+FFFE */
		{"]]> \"q\" 's' <&>", 15, "]]> \"q\" 's' <&>"},
	};
	size_t i;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = ht_xml_text(cases[i].in, cases[i].len);
		ck_assert_ptr_nonnull(got);
		ck_assert_msg(strcmp(got, cases[i].out) == 0, "case %zu: got '%s'", i, got);
		free(got);
	}
}
END_TEST

/* Every string of the results HTML-escaped; the embedded JSON cannot end
 * its script element. */
START_TEST(test_report_html_escapes)
{
	static const char results[] =
	    "{\"runId\": \"r1\", \"startDate\": \"2026-01-01T00:00:00.000Z\","
	    " \"endDate\": \"2026-01-01T00:00:01.000Z\", \"testResults\": ["
	    "{\"testId\": \"t1\", \"name\": \"</script><img src=x onerror=alert(1)>\","
	    " \"filePath\": \"a&b\\\"c\", \"status\": \"failed\", \"duration\": 5,"
	    " \"startTime\": 1767225600000, \"endTime\": 1767225600005,"
	    " \"error\": {\"message\": \"<!-- x --> \\u0007 ]]>\", \"stackTrace\": \"<s>\"}},"
	    "{\"testId\": \"t2\", \"name\": \"ok\", \"filePath\": \"f\", \"status\": \"success\","
	    " \"duration\": 3, \"startTime\": 1767225600001, \"endTime\": 1767225600004}]}";
	ht_report r;
	ht_err err;
	char *html;
	const char *p;
	int scripts = 0;

	ht_err_clear(&err);
	ck_assert_int_eq(ht_report_parse(&r, results, strlen(results), &err), HYPERTEST_OK);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_int_eq(r.tests[0].end_ms - r.tests[0].start_ms, 5);
	html = ht_report_html(&r);
	ck_assert_ptr_nonnull(html);
	ck_assert_ptr_null(strstr(html, "<img"));
	ck_assert_ptr_null(strstr(html, "<!-- x"));
	ck_assert_ptr_null(strstr(html, "<s>"));
	ck_assert_ptr_null(strstr(html, "\x07"));
	ck_assert_ptr_nonnull(strstr(html, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
	ck_assert_ptr_nonnull(strstr(html, "a&amp;b&quot;c"));
	ck_assert_ptr_nonnull(strstr(html, "\\u003c/script>\\u003cimg"));
	for (p = html; (p = strstr(p, "</script>")) != NULL; p++)
		scripts++;
	ck_assert_int_eq(scripts, 2); /* the data's and the code's */
	free(html);
	ht_report_clear(&r);
	/* malformed results: a clear error */
	ck_assert_int_ne(ht_report_parse(&r, "{\"runId\": 1}", 12, &err), HYPERTEST_OK);
	ck_assert_ptr_nonnull(strstr(err.msg, "'runId' and 'testResults'"));
	ht_report_clear(&r);
}
END_TEST

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = tcase_create("plugins");
	tcase_add_test(tc, test_plugin_states);
	tcase_add_test(tc, test_plugin_shadowing);
	tcase_add_test(tc, test_plugin_modules_env);
	tcase_add_test(tc, test_function_modules_key);
	tcase_add_test(tc, test_unknown_plugin_lists_found);
	tcase_add_test(tc, test_abi_mismatch_named);
	tcase_add_test(tc, test_unknown_operation_ignored);
	suite_add_tcase(s, tc);
	tc = tcase_create("run");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_deploy_then_invoke_1000_at_100);
	tcase_add_test(tc, test_results_schema);
	tcase_add_test(tc, test_bad_responses);
	tcase_add_test(tc, test_response_too_large);
	tcase_add_test(tc, test_response_huge_duration);
	tcase_add_test(tc, test_history_orders_second_run);
	tcase_add_test(tc, test_dry_run_mutates_nothing);
	tcase_add_test(tc, test_longest_first_on_second_run);
	tcase_add_test(tc, test_invoke_end_after_last_retry);
	tcase_add_test(tc, test_invoke_end_max_failures);
	tcase_add_test(tc, test_invoke_end_missing);
	tcase_add_test(tc, test_cancel_keeps_results);
	tcase_add_test(tc, test_deployed_config_round_trip);
	tcase_add_test(tc, test_report_built);
	tcase_add_test(tc, test_report_old_provider);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tcase_add_test(tc, test_missing_config);
	tcase_add_test(tc, test_invalid_config_position);
	tcase_add_test(tc, test_platform_key);
	tcase_add_test(tc, test_manifest_missing_and_malformed);
	tcase_add_test(tc, test_empty_test_dir);
	tcase_add_test(tc, test_results_not_writable);
	tcase_add_test(tc, test_drift_policies);
	tcase_add_test(tc, test_image_drift_is_an_error);
	suite_add_tcase(s, tc);
	tc = tcase_create("units");
	tcase_add_test(tc, test_schedule_order);
	tcase_add_test(tc, test_strerror_every_code);
	tcase_add_test(tc, test_xml_text);
	tcase_add_test(tc, test_report_html_escapes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *build = getenv("HT_TESTS_BUILDDIR");
	SRunner *sr;
	int failed;

	snprintf(fixtures_dir, sizeof fixtures_dir, "%s/abi/.libs", build ? build : HT_TESTS_BUILDDIR);
	sr = srunner_create(core_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
