/*
 * check_reliability.c - the core where careless or hostile input used to
 * slip through: an empty plugin directory, absurd durations in responses,
 * the history of a cancelled run, names of tests that never answered,
 * warnings carried from a response to the results, plugin option errors
 * without a position, output file names that are directories or the
 * configuration itself, a byte-order mark, an empty configuration, and
 * files too large to read whole.
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
#include "oci_layout.h"

static char fixtures_dir[1024];

static char *tmpdir(void)
{
	char *d = strdup("/tmp/ht-rel-XXXXXX");
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

static char *fixture_plugins(void)
{
	char *d = tmpdir();
	char src[2048], dst[2048];
	snprintf(src, sizeof src, "%s/fixture-good.so", fixtures_dir);
	snprintf(dst, sizeof dst, "%s/fixture-good.so", d);
	ck_assert_msg(symlink(src, dst) == 0, "symlink %s: %s", src, strerror(errno));
	return d;
}

/* A project using the fixture plugins; extra core keys before the sections. */
static char *make_project(long count, const char *extra)
{
	char *d = tmpdir();
	char cfg[4096], tests[2048];
	snprintf(tests, sizeof tests, "%s/tests", d);
	mkdir(tests, 0755);
	write_file(d, "tests/a.test", "echo a\n");
	snprintf(cfg, sizeof cfg,
	         "{\n  \"concurrency\": 10,\n  \"imageName\": \"fixture/hypertest\",\n%s"
	         "  \"testRunner\": {\"plugin\": \"fixture\",\n    \"options\": {\"count\": %ld}},\n"
	         "  \"cloudProvider\": {\"plugin\": \"fixture\", \"options\": {\"delayMs\": 5}}\n}\n",
	         extra ? extra : "", count);
	write_file(d, "hypertest.config.json", cfg);
	return d;
}

static hypertest *open_project(const char *project, const char *plugins)
{
	hypertest *h = hypertest_new();
	ck_assert_ptr_nonnull(h);
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	return h;
}

static void finish(hypertest *h, char *project, char *plugins)
{
	hypertest_free(h);
	ht_rm_rf(project, NULL);
	ht_rm_rf(plugins, NULL);
	free(project);
	free(plugins);
}

/* ---- item 14: a plugin directory without modules (qsort(NULL, 0)) --------------- */

START_TEST(test_empty_plugin_dir)
{
	char *empty = tmpdir();
	hypertest *h = hypertest_new();
	setenv("HYPERTEST_PLUGIN_PATH", empty, 1);
	ck_assert_int_eq(hypertest_set_project_dir(h, empty), HYPERTEST_OK);
	/* under UBSan the old code stopped here: null pointer passed to qsort */
	ck_assert_int_eq(hypertest_plugins_scan(h), HYPERTEST_OK);
	hypertest_free(h);
	ht_rm_rf(empty, NULL);
	free(empty);
}
END_TEST

/* ---- item 14: a duration no long holds ------------------------------------------- */

START_TEST(test_absurd_duration)
{
	static const char *const bad[] = {"{\"success\": true, \"duration\": 1e300}",
	                                  "{\"success\": true, \"duration\": 9.3e18}",
	                                  "{\"success\": false, \"message\": \"x\", \"duration\": 1e19}"};
	size_t i;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ht_test_result r;
		memset(&r, 0, sizeof r);
		ht_result_from_response(&r, bad[i], strlen(bad[i]), 1 << 20);
		ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
		ck_assert_msg(r.message && strstr(r.message, "'duration'"), "%s: %s", bad[i],
		              r.message ? r.message : "(no message)");
		ht_test_result_clear(&r);
	}
	{
		const char *ok = "{\"success\": true, \"duration\": 86400000.4}";
		ht_test_result r;
		memset(&r, 0, sizeof r);
		ht_result_from_response(&r, ok, strlen(ok), 1 << 20);
		ck_assert_int_eq(r.status, HYPERTEST_STATUS_SUCCESS);
		ck_assert_int_eq(r.duration, 86400000);
		ht_test_result_clear(&r);
	}
}
END_TEST

/* ---- items 7-9: a response's warnings reach the results file ----------------------- */

START_TEST(test_warnings_in_results)
{
	const char *resp = "{\"success\": true, \"name\": \"t\", \"duration\": 5, \"warnings\": "
	                   "[\"artifact a: not stored: a symbolic link loop\", 7, "
	                   "\"artifact p: not stored: a FIFO\\nsecond line\"]}";
	ht_test_result r;
	char *text;
	json_t *doc, *w;
	memset(&r, 0, sizeof r);
	strcpy(r.test_id, "00000000-0000-4000-8000-000000000000");
	ht_result_from_response(&r, resp, strlen(resp), 1 << 20);
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_SUCCESS);
	ck_assert_ptr_nonnull(r.warnings);
	{
		hypertest_run run;
		memset(&run, 0, sizeof run);
		run.run_id = (char *)"run";
		run.end_ms = 10;
		run.tests = &r;
		run.n = 1;
		run.concurrency = 1;
		text = ht_results_json(&run);
	}
	ck_assert_ptr_nonnull(text);
	doc = json_loads(text, 0, NULL);
	w = json_object_get(json_array_get(json_object_get(doc, "testResults"), 0), "warnings");
	ck_assert_msg(json_is_array(w) && json_array_size(w) == 2, "%s", text);
	ck_assert_str_eq(json_string_value(json_array_get(w, 0)),
	                 "artifact a: not stored: a symbolic link loop");
	ck_assert_str_eq(json_string_value(json_array_get(w, 1)),
	                 "artifact p: not stored: a FIFO second line");
	/* nothing else changed: the status and the TypeScript fields */
	ck_assert_str_eq(json_string_value(json_object_get(
	                     json_array_get(json_object_get(doc, "testResults"), 0), "status")),
	                 "success");
	json_decref(doc);
	free(text);
	ht_test_result_clear(&r);
}
END_TEST

/* ---- items 10 and 15: a cancelled run ------------------------------------------------ */

typedef struct canceller {
	hypertest *h;
	int ended;
	int unknown_names;
	int unnamed_seen;
} canceller;

static void cancel_after_ten(const hypertest_event *ev, void *ud)
{
	canceller *c = ud;
	if (hypertest_event_type(ev) != HYPERTEST_EVENT_TEST_END)
		return;
	if (hypertest_event_int(ev, HYPERTEST_FIELD_STATUS) == HYPERTEST_STATUS_FAILED) {
		const char *name = hypertest_event_str(ev, HYPERTEST_FIELD_NAME);
		c->unnamed_seen++;
		if (!name || !strcmp(name, "unknown"))
			c->unknown_names++;
		else
			ck_assert_str_eq(name, hypertest_event_str(ev, HYPERTEST_FIELD_TEST_ID));
	}
	if (++c->ended == 10)
		hypertest_cancel(c->h);
}

START_TEST(test_cancelled_run_history)
{
	char *plugins = fixture_plugins();
	char *project = make_project(200, NULL);
	hypertest *h = open_project(project, plugins);
	hypertest_run *run = NULL;
	canceller c = {h, 0, 0, 0};
	char path[2048];
	json_t *doc, *durations, *v;
	const char *key;
	size_t answered;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_msg(hypertest_deploy(h) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	hypertest_set_event_callback(h, cancel_after_ten, &c);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_OK);
	answered = hypertest_run_count(run, HYPERTEST_STATUS_SUCCESS);
	ck_assert_uint_ge(answered, 10);
	ck_assert_uint_lt(answered, 200);
	/* item 15: tests that never answered are named from their context, or by id */
	ck_assert_int_gt(c.unnamed_seen, 0);
	ck_assert_int_eq(c.unknown_names, 0);
	/* the results file keeps "unknown" (DESIGN.md, "Results file") */
	ck_assert_ptr_nonnull(strstr(hypertest_run_results_json(run), "\"unknown\""));
	hypertest_run_free(run);
	/* item 10: only the answered tests have a duration in the history */
	snprintf(path, sizeof path, "%s/.hypertest/history.json", project);
	doc = json_load_file(path, 0, NULL);
	durations = json_object_get(doc, "durations");
	ck_assert_msg(json_is_object(durations), "no history at %s", path);
	ck_assert_uint_eq(json_object_size(durations), answered);
	json_object_foreach(durations, key, v)
		ck_assert_int_gt(json_integer_value(v), 0);
	json_decref(doc);
	finish(h, project, plugins);
}
END_TEST

/* ---- item 15: a plugin's option error says where the option is ---------------------- */

START_TEST(test_plugin_option_position)
{
	char *plugins = fixture_plugins();
	char *project = make_project(-1, NULL);
	hypertest *h = open_project(project, plugins);
	const char *msg;

	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_deploy(h), HYPERTEST_ERR_CONFIG);
	msg = hypertest_errmsg(h);
	/* "count": -1 is on line 5, its value at column 26 */
	ck_assert_msg(strstr(msg, "hypertest.config.json:5:26: key 'testRunner.options.count': "),
	              "%s", msg);
	ck_assert_msg(strstr(msg, "option 'count' < 0"), "%s", msg);
	finish(h, project, plugins);
}
END_TEST

/* ---- item 15: a byte-order mark, an empty configuration ------------------------------ */

START_TEST(test_bom_and_empty_config)
{
	char *d = tmpdir();
	hypertest *h = hypertest_new();
	const char *msg;
	ck_assert_int_eq(hypertest_set_project_dir(h, d), HYPERTEST_OK);
	write_file(d, "hypertest.config.json", "\xEF\xBB\xBF{\"concurrency\": 3,\n \"bogus\": 1}\n");
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
	/* read past the mark, positions count from what follows it */
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "hypertest.config.json:2:2: unknown key 'bogus'"), "%s", msg);
	write_file(d, "hypertest.config.json", "\xEF\xBB\xBF{\"concurrency\": 3}\n");
	ck_assert_msg(hypertest_config_load_file(h, NULL) == HYPERTEST_OK, "%s", hypertest_errmsg(h));
	write_file(d, "hypertest.config.json", "");
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "hypertest.config.json:1:1: "), "%s", msg);
	write_file(d, "hypertest.config.json", "\n  \n");
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "hypertest.config.json:1:1: "), "%s", msg);
	hypertest_free(h);
	ht_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* ---- item 13: output file names ------------------------------------------------------ */

START_TEST(test_results_file_name)
{
	static const char *const refused_at_load[] = {".", "out/", "a//b.json", "./x.json",
	                                              "a/./b.json"};
	char *plugins = fixture_plugins();
	char *project, extra[256];
	hypertest *h;
	const char *msg;
	size_t i;

	for (i = 0; i < sizeof refused_at_load / sizeof refused_at_load[0]; i++) {
		snprintf(extra, sizeof extra, "  \"resultsFileName\": \"%s\",\n", refused_at_load[i]);
		project = make_project(3, extra);
		h = open_project(project, plugins);
		ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
		msg = hypertest_errmsg(h);
		ck_assert_msg(strstr(msg, "hypertest.config.json:4:22: key 'resultsFileName': "),
		              "%s: %s", refused_at_load[i], msg);
		hypertest_free(h);
		ht_rm_rf(project, NULL);
		free(project);
		snprintf(extra, sizeof extra, "  \"buildManifestFileName\": \"%s\",\n",
		         refused_at_load[i]);
		project = make_project(3, extra);
		h = open_project(project, plugins);
		ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_ERR_CONFIG);
		msg = hypertest_errmsg(h);
		ck_assert_msg(strstr(msg, "key 'buildManifestFileName': "), "%s: %s",
		              refused_at_load[i], msg);
		hypertest_free(h);
		ht_rm_rf(project, NULL);
		free(project);
	}
	/* a directory of the project, and the configuration file itself: refused
	 * before anything runs, at the key */
	/* "out" is "out.json" once ".json" is appended, as the TypeScript
	 * hypertest does: that is the directory */
	project = make_project(3, "  \"resultsFileName\": \"out\",\n");
	snprintf(extra, sizeof extra, "%s/out.json", project);
	mkdir(extra, 0755);
	h = open_project(project, plugins);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_deploy(h), HYPERTEST_ERR_CONFIG);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "hypertest.config.json:4:22: key 'resultsFileName': ") &&
	                  strstr(msg, "is a directory"),
	              "%s", msg);
	hypertest_free(h);
	ht_rm_rf(project, NULL);
	free(project);
	project = make_project(3, "  \"resultsFileName\": \"hypertest.config.json\",\n");
	h = open_project(project, plugins);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_deploy(h), HYPERTEST_ERR_CONFIG);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "key 'resultsFileName': ") && strstr(msg, "configuration file"),
	              "%s", msg);
	/* the configuration is still there, untouched */
	snprintf(extra, sizeof extra, "%s/hypertest.config.json", project);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	hypertest_free(h);
	ht_rm_rf(project, NULL);
	free(project);
	ht_rm_rf(plugins, NULL);
	free(plugins);
}
END_TEST

/* ---- item 12: inputs read whole have a cap ---------------------------------------- */

START_TEST(test_read_caps)
{
	char *d = tmpdir(), path[2048], *data = NULL;
	size_t len;
	ht_err err;
	hypertest *h = hypertest_new();
	const char *msg;
	FILE *f;
	json_t *index = NULL;

	/* /dev/zero as the configuration: refused at the cap, at once */
	ck_assert_int_eq(hypertest_config_load_file(h, "/dev/zero"), HYPERTEST_ERR_IO);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "/dev/zero: larger than 1 MiB, the limit for a configuration file"),
	              "%s", msg);
	/* a FIFO nobody writes to: read as empty, never waited on */
	snprintf(path, sizeof path, "%s/fifo.json", d);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	ck_assert_int_eq(hypertest_config_load_file(h, path), HYPERTEST_ERR_CONFIG);
	msg = hypertest_errmsg(h);
	ck_assert_msg(strstr(msg, "fifo.json:1:1: the configuration is empty"), "%s", msg);
	hypertest_free(h);
	/* the cap of a plain read */
	snprintf(path, sizeof path, "%s/big", d);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < 3000; i++)
		fputs("0123456789", f);
	fclose(f);
	ht_err_clear(&err);
	ck_assert_int_eq(ht_read_file_max(path, 29999, "a test file", &data, &len, &err),
	                 HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, "larger than 29999 bytes, the limit for a test file"), "%s",
	              err.msg);
	ck_assert_int_eq(ht_read_file_max(path, 30000, "a test file", &data, &len, &err),
	                 HYPERTEST_OK);
	ck_assert_uint_eq(len, 30000);
	free(data);
	/* an OCI layout whose index.json is too large */
	snprintf(path, sizeof path, "%s/layout", d);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/layout/index.json", d);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"schemaVersion\": 2, \"manifests\": [], \"x\": \"", f);
	for (int i = 0; i < (5 << 20) / 16; i++)
		fputs("0123456789abcdef", f);
	fputs("\"}", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/layout", d);
	ht_err_clear(&err);
	ck_assert_int_ne(ht_oci_index_read(path, &index, &err), 0);
	ck_assert_msg(strstr(err.msg, "larger than 4 MiB, the limit for an OCI image index"), "%s",
	              err.msg);
	ht_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* A FIFO among a layout's blobs is refused, not waited on. */
START_TEST(test_fifo_blob)
{
	static const char digest[] =
	    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	char *d = tmpdir(), path[2048], *data = NULL;
	size_t len = 0;
	ht_err err;
	ht_oci_blob_reader *r = NULL;

	snprintf(path, sizeof path, "%s/blobs", d);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/blobs/sha256", d);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/blobs/sha256/%s", d, digest + 7);
	ck_assert_int_eq(mkfifo(path, 0644), 0);
	ht_err_clear(&err);
	/* the old code blocked here for ever (no writer) */
	ck_assert_int_ne(ht_oci_blob_read(d, digest, -1, &data, &len, &err), 0);
	ck_assert_msg(strstr(err.msg, "not a regular file"), "%s", err.msg);
	ht_err_clear(&err);
	ck_assert_int_ne(ht_oci_blob_open(d, digest, -1, &r, &err), 0);
	ck_assert_msg(strstr(err.msg, "not a regular file"), "%s", err.msg);
	ht_rm_rf(d, NULL);
	free(d);
}
END_TEST

static Suite *reliability_suite(void)
{
	Suite *s = suite_create("reliability");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_empty_plugin_dir);
	tcase_add_test(tc, test_absurd_duration);
	tcase_add_test(tc, test_warnings_in_results);
	tcase_add_test(tc, test_cancelled_run_history);
	tcase_add_test(tc, test_plugin_option_position);
	tcase_add_test(tc, test_bom_and_empty_config);
	tcase_add_test(tc, test_results_file_name);
	tcase_add_test(tc, test_read_caps);
	tcase_add_test(tc, test_fifo_blob);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *build = getenv("HT_TESTS_BUILDDIR");
	SRunner *sr;
	int failed;

	snprintf(fixtures_dir, sizeof fixtures_dir, "%s/abi/.libs", build ? build : HT_TESTS_BUILDDIR);
	sr = srunner_create(reliability_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
