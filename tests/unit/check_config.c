/*
 * check_config.c - tests of the configuration module (config.c) and of the
 * JSON position locator (jsonpos.c): loading, defaults, every validation
 * error with its exact file:line:column, ${VAR} references, overrides and
 * the plugin path.  Expected positions were counted by hand from the JSON
 * texts below (lines and columns 1-based, columns in characters).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "config.h"
#include "jsonpos.h"

/* ---- scratch directory ------------------------------------------------------- */

static char tmp_root[4096];

static void tmp_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmp_root, sizeof tmp_root, "%s/check_config.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		abort();
	}
}

static void tmp_teardown(void)
{
	ht_rm_rf(tmp_root, NULL);
}

/* Write text to tmp_root/name; returns the path (malloc'd). */
static char *write_tmp(const char *name, const char *text)
{
	char *path = ht_path_join(tmp_root, name);
	ht_err err;

	ck_assert_ptr_nonnull(path);
	ck_assert_int_eq(ht_write_file_atomic(path, text, strlen(text), &err), 0);
	return path;
}

/* ---- helpers ------------------------------------------------------------------- */

static ht_config *load_ok(const char *json)
{
	ht_config *cfg = ht_config_new();
	ht_err err = {0, ""};
	int rc;

	ck_assert_ptr_nonnull(cfg);
	rc = ht_config_load_string(cfg, json, "test.json", &err);
	ck_assert_msg(rc == 0, "load failed: %s", err.msg);
	return cfg;
}

/* Loading json must fail with exactly this message. */
#define LOAD_ERR(json, expected) load_err(json, expected, __LINE__)
static void load_err(const char *json, const char *expected, int line)
{
	ht_config *cfg = ht_config_new();
	ht_err err = {0, ""};
	int rc = ht_config_load_string(cfg, json, "test.json", &err);

	ck_assert_msg(rc == HYPERTEST_ERR_CONFIG, "line %d: rc %d (%s)", line, rc, err.msg);
	ck_assert_msg(strcmp(err.msg, expected) == 0, "line %d:\n got      <%s>\n expected <%s>", line,
	              err.msg, expected);
	ck_assert_int_eq(err.code, HYPERTEST_ERR_CONFIG);
	ck_assert(!ht_config_loaded(cfg));
	ht_config_free(cfg);
}

#define SET_ERR(cfg, key, value, expected) set_err(cfg, key, value, expected, __LINE__)
static void set_err(ht_config *cfg, const char *key, const char *value, const char *expected,
                    int line)
{
	ht_err err = {0, ""};
	int rc = ht_config_set(cfg, key, value, &err);

	ck_assert_msg(rc == HYPERTEST_ERR_CONFIG, "line %d: rc %d (%s)", line, rc, err.msg);
	ck_assert_msg(strcmp(err.msg, expected) == 0, "line %d:\n got      <%s>\n expected <%s>", line,
	              err.msg, expected);
}

static void set_ok(ht_config *cfg, const char *key, const char *value)
{
	ht_err err = {0, ""};
	int rc = ht_config_set(cfg, key, value, &err);
	ck_assert_msg(rc == 0, "set %s=%s failed: %s", key, value, err.msg);
}

#define GET_EQ(cfg, key, expected) get_eq(cfg, key, expected, __LINE__)
static void get_eq(const ht_config *cfg, const char *key, const char *expected, int line)
{
	char *v = ht_config_get_json(cfg, key);
	if (!expected) {
		ck_assert_msg(v == NULL, "line %d: %s is %s, expected absent", line, key, v);
		return;
	}
	ck_assert_msg(v != NULL, "line %d: %s absent", line, key);
	ck_assert_msg(strcmp(v, expected) == 0, "line %d: %s is <%s>, expected <%s>", line, key, v,
	              expected);
	free(v);
}

#define OPTIONS_EQ(cfg, section, expected)                                            \
	do {                                                                              \
		char *o_ = ht_config_plugin_options(cfg, section);                            \
		ck_assert_ptr_nonnull(o_);                                                    \
		ck_assert_str_eq(o_, expected);                                               \
		free(o_);                                                                     \
	} while (0)

/* ---- jsonpos ------------------------------------------------------------------- */

START_TEST(jsonpos_nested_objects)
{
	const char *t =
		"{\n"
		"  \"testRunner\": {\"plugin\": \"x\"},\n"
		"  \"cloudProvider\": {\n"
		"    \"plugin\": \"aws\",\n"
		"    \"options\": {\n"
		"      \"region\":\t\"eu\"\n"
		"    }\n"
		"  }\n"
		"}\n";
	const char *path[] = {"cloudProvider", "options", "region"};
	ht_jsonpos p;

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), path, 3, &p), 0);
	ck_assert_uint_eq(p.depth, 3);
	ck_assert_int_eq(p.key_line, 6);
	ck_assert_int_eq(p.key_column, 7);
	ck_assert_int_eq(p.value_line, 6);
	ck_assert_int_eq(p.value_column, 17); /* the tab is one column */

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), path, 2, &p), 0);
	ck_assert_int_eq(p.key_line, 5);
	ck_assert_int_eq(p.key_column, 5);
	ck_assert_int_eq(p.value_line, 5);
	ck_assert_int_eq(p.value_column, 16);

	/* the root */
	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), path, 0, &p), 0);
	ck_assert_uint_eq(p.depth, 0);
	ck_assert_int_eq(p.key_line, 0);
	ck_assert_int_eq(p.value_line, 1);
	ck_assert_int_eq(p.value_column, 1);
}
END_TEST

START_TEST(jsonpos_missing_gives_ancestor)
{
	const char *t =
		"{\"a\": 1,\n"
		" \"cloudProvider\": {\"plugin\": \"aws\",\n"
		"   \"options\": {}}}";
	const char *path[] = {"cloudProvider", "options", "region"};
	const char *none[] = {"nothing", "here"};
	const char *through_number[] = {"a", "b"};
	ht_jsonpos p;

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), path, 3, &p), 1);
	ck_assert_uint_eq(p.depth, 2);
	ck_assert_int_eq(p.key_line, 3);
	ck_assert_int_eq(p.key_column, 4);
	ck_assert_int_eq(p.value_line, 3);
	ck_assert_int_eq(p.value_column, 15);

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), none, 2, &p), 1);
	ck_assert_uint_eq(p.depth, 0);
	ck_assert_int_eq(p.value_line, 1);
	ck_assert_int_eq(p.value_column, 1);

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), through_number, 2, &p), 1);
	ck_assert_uint_eq(p.depth, 1);
	ck_assert_int_eq(p.key_line, 1);
	ck_assert_int_eq(p.key_column, 2);
	ck_assert_int_eq(p.value_column, 7);
}
END_TEST

START_TEST(jsonpos_arrays)
{
	const char *t =
		"[0,\n"
		" {\"a\": [true, null,\n"
		"        {\"b\": \"x\"}, -1.5e3]},\n"
		" []]";
	ht_jsonpos_step b_path[] = {{NULL, 1}, {"a", 0}, {NULL, 2}, {"b", 0}};
	ht_jsonpos_step num_path[] = {{NULL, 1}, {"a", 0}, {NULL, 3}};
	ht_jsonpos_step past_end[] = {{NULL, 1}, {"a", 0}, {NULL, 4}};
	ht_jsonpos_step empty[] = {{NULL, 2}, {NULL, 0}};
	ht_jsonpos p;

	ck_assert_int_eq(ht_jsonpos_find(t, strlen(t), b_path, 4, &p), 0);
	ck_assert_int_eq(p.key_line, 3);
	ck_assert_int_eq(p.key_column, 10);
	ck_assert_int_eq(p.value_line, 3);
	ck_assert_int_eq(p.value_column, 15);

	ck_assert_int_eq(ht_jsonpos_find(t, strlen(t), num_path, 3, &p), 0);
	ck_assert_int_eq(p.key_line, 0); /* an element has no key */
	ck_assert_int_eq(p.value_line, 3);
	ck_assert_int_eq(p.value_column, 21);

	ck_assert_int_eq(ht_jsonpos_find(t, strlen(t), past_end, 3, &p), 1);
	ck_assert_uint_eq(p.depth, 2);
	ck_assert_int_eq(p.key_line, 2);
	ck_assert_int_eq(p.key_column, 3);
	ck_assert_int_eq(p.value_line, 2);
	ck_assert_int_eq(p.value_column, 8);

	ck_assert_int_eq(ht_jsonpos_find(t, strlen(t), empty, 2, &p), 1);
	ck_assert_uint_eq(p.depth, 1);
	ck_assert_int_eq(p.value_line, 4);
	ck_assert_int_eq(p.value_column, 2);

	/* an object where an array is looked for */
	ck_assert_int_eq(ht_jsonpos_find(t, strlen(t), (ht_jsonpos_step[]){{"x", 0}}, 1, &p), 1);
	ck_assert_uint_eq(p.depth, 0);
}
END_TEST

START_TEST(jsonpos_same_key_two_depths)
{
	const char *t =
		"{\"inner\": {\"name\": 1, \"deep\": {\"name\": 2}},\n"
		"  \"name\": 3,\n"
		"  \"deep\": {\"name\": 4}}";
	const char *top[] = {"name"};
	const char *in[] = {"inner", "name"};
	const char *in_deep[] = {"inner", "deep", "name"};
	const char *deep[] = {"deep", "name"};
	ht_jsonpos p;

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), top, 1, &p), 0);
	ck_assert_int_eq(p.key_line, 2);
	ck_assert_int_eq(p.key_column, 3);
	ck_assert_int_eq(p.value_column, 11);

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), in, 2, &p), 0);
	ck_assert_int_eq(p.key_line, 1);
	ck_assert_int_eq(p.key_column, 12);
	ck_assert_int_eq(p.value_column, 20);

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), in_deep, 3, &p), 0);
	ck_assert_int_eq(p.key_line, 1);
	ck_assert_int_eq(p.key_column, 32);
	ck_assert_int_eq(p.value_column, 40);

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), deep, 2, &p), 0);
	ck_assert_int_eq(p.key_line, 3);
	ck_assert_int_eq(p.key_column, 12);
	ck_assert_int_eq(p.value_column, 20);
}
END_TEST

START_TEST(jsonpos_escapes_and_utf8)
{
	/* {"k\"{": "}\"[", "x": {"y": "\\\"}"}, "d": 1} */
	const char *t = "{\"k\\\"{\": \"}\\\"[\", \"x\": {\"y\": \"\\\\\\\"}\"}, \"d\": 1}";
	const char *d[] = {"d"};
	const char *odd[] = {"k\"{"};
	const char *y[] = {"x", "y"};
	/* {"é": 1, "b": 2, "\u0041\ud83d\ude00": 3} */
	const char *u = "{\"\xc3\xa9\": 1, \"b\": 2, \"\\u0041\\ud83d\\ude00\": 3}";
	const char *b[] = {"b"};
	const char *emoji[] = {"A\xf0\x9f\x98\x80"};
	const char *prefix[] = {"A"};
	ht_jsonpos p;

	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), d, 1, &p), 0);
	ck_assert_int_eq(p.key_column, 39);
	ck_assert_int_eq(p.value_column, 44);
	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), odd, 1, &p), 0);
	ck_assert_int_eq(p.key_column, 2);
	ck_assert_int_eq(p.value_column, 10);
	ck_assert_int_eq(ht_jsonpos_find_keys(t, strlen(t), y, 2, &p), 0);
	ck_assert_int_eq(p.key_column, 24);
	ck_assert_int_eq(p.value_column, 29);

	ck_assert_int_eq(ht_jsonpos_find_keys(u, strlen(u), b, 1, &p), 0);
	ck_assert_int_eq(p.key_column, 10);
	ck_assert_int_eq(p.value_column, 15);
	ck_assert_int_eq(ht_jsonpos_find_keys(u, strlen(u), emoji, 1, &p), 0);
	ck_assert_int_eq(p.key_column, 18);
	ck_assert_int_eq(p.value_column, 40);
	ck_assert_int_eq(ht_jsonpos_find_keys(u, strlen(u), prefix, 1, &p), 1);
}
END_TEST

START_TEST(jsonpos_malformed)
{
	const char *path[] = {"b"};
	ht_jsonpos p;

	ck_assert_int_eq(ht_jsonpos_find_keys("{\"a\" 1, \"b\": 2}", 15, path, 1, &p), -1);
	ck_assert_int_eq(ht_jsonpos_find_keys("{\"a\": \"unterminated", 19, path, 1, &p), -1);
	ck_assert_int_eq(ht_jsonpos_find_keys("   ", 3, path, 1, &p), -1);
	/* the length bounds the text: "b" lies beyond it */
	ck_assert_int_eq(ht_jsonpos_find_keys("{\"a\": 1, \"b\": 2}", 8, path, 1, &p), -1);
}
END_TEST

/* ---- loading and defaults ------------------------------------------------------------ */

START_TEST(minimal_and_defaults)
{
	ht_config *cfg = ht_config_new();
	ht_err err = {0, ""};

	/* before any load: the defaults */
	ck_assert(!ht_config_loaded(cfg));
	ck_assert_int_eq(ht_config_concurrency(cfg), 30);
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_WARNING);

	ck_assert_int_eq(ht_config_load_string(cfg, "{}", "test.json", &err), 0);
	ck_assert(ht_config_loaded(cfg));
	ck_assert_ptr_null(ht_config_path(cfg));
	ck_assert_int_eq(ht_config_concurrency(cfg), 30);
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_WARNING);
	ck_assert_str_eq(ht_config_str(cfg, "buildManifestFileName"), "hypertest.manifest.json");
	ck_assert_str_eq(ht_config_str(cfg, "resultsFileName"), "hypertest.results.json");
	ck_assert_ptr_null(ht_config_str(cfg, "imageName"));
	ck_assert_ptr_null(ht_config_str(cfg, "localImageName"));
	ck_assert_ptr_null(ht_config_str(cfg, "localBaseImageName"));
	ck_assert_ptr_null(ht_config_plugin_path(cfg, "/x"));
	ck_assert_ptr_null(ht_config_plugin_name(cfg, "testRunner"));
	ck_assert_ptr_null(ht_config_plugin_name(cfg, "cloudProvider"));
	OPTIONS_EQ(cfg, "testRunner", "{}");
	OPTIONS_EQ(cfg, "cloudProvider", "{}");
	GET_EQ(cfg, "concurrency", "30");
	GET_EQ(cfg, "driftDetectionPolicy", "\"warning\"");
	GET_EQ(cfg, "buildManifestFileName", "\"hypertest.manifest.json\"");
	GET_EQ(cfg, "resultsFileName", "\"hypertest.results.json\"");
	GET_EQ(cfg, "imageName", NULL);
	GET_EQ(cfg, "testRunner", NULL);
	GET_EQ(cfg, "testRunner.options", NULL);
	GET_EQ(cfg, "", NULL);
	GET_EQ(cfg, "concurrency.", NULL);
	GET_EQ(cfg, "concurrency.x", NULL);
	ht_config_free(cfg);

	/* without an origin, messages say "<string>" */
	cfg = ht_config_new();
	ck_assert_int_eq(ht_config_load_string(cfg, "{\"x\": 1}", NULL, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "<string>:1:2: unknown key 'x'");
	ht_config_free(cfg);

	/* a section without options gets {} */
	cfg = load_ok("{\"testRunner\": {\"plugin\": \"command\"}}");
	ck_assert_str_eq(ht_config_plugin_name(cfg, "testRunner"), "command");
	OPTIONS_EQ(cfg, "testRunner", "{}");
	GET_EQ(cfg, "testRunner", "{\"options\":{},\"plugin\":\"command\"}");
	ht_config_free(cfg);
}
END_TEST

START_TEST(design_example_verbatim)
{
	/* DESIGN.md, "Configuration", as written there */
	const char *text =
		"{\n"
		"  \"concurrency\": 30,\n"
		"  \"imageName\": \"my-app/hypertest\",\n"
		"  \"driftDetectionPolicy\": \"warning\",\n"
		"  \"testRunner\": {\"plugin\": \"playwright\", \"options\": {}},\n"
		"  \"cloudProvider\": {\"plugin\": \"aws\", \"options\": {\"region\": \"eu-central-1\",\n"
		"    \"functionName\": \"my-app-hypertest\", \"bucketName\": \"my-app-hypertest-artifacts\",\n"
		"    \"ecrRegistry\": \"123456789012.dkr.ecr.eu-central-1.amazonaws.com\",\n"
		"    \"baseImage\": \"123456789012.dkr.ecr.eu-central-1.amazonaws.com/hypertest/base-playwright:latest\"}}\n"
		"}\n";
	char *path = write_tmp("hypertest.config.json", text);
	ht_config *cfg = ht_config_new();
	ht_err err = {0, ""};
	char *opts;

	ck_assert_msg(ht_config_load_file(cfg, path, &err) == 0, "%s", err.msg);
	ck_assert(ht_config_loaded(cfg));
	ck_assert_str_eq(ht_config_path(cfg), path);
	ck_assert_int_eq(ht_config_concurrency(cfg), 30);
	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "my-app/hypertest");
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_WARNING);
	ck_assert_str_eq(ht_config_plugin_name(cfg, "testRunner"), "playwright");
	ck_assert_str_eq(ht_config_plugin_name(cfg, "cloudProvider"), "aws");
	OPTIONS_EQ(cfg, "testRunner", "{}");
	opts = ht_config_plugin_options(cfg, "cloudProvider");
	ck_assert_str_eq(opts,
	                 "{\"baseImage\":\"123456789012.dkr.ecr.eu-central-1.amazonaws.com/hypertest/"
	                 "base-playwright:latest\",\"bucketName\":\"my-app-hypertest-artifacts\","
	                 "\"ecrRegistry\":\"123456789012.dkr.ecr.eu-central-1.amazonaws.com\","
	                 "\"functionName\":\"my-app-hypertest\",\"region\":\"eu-central-1\"}");
	free(opts);
	GET_EQ(cfg, "cloudProvider.options.region", "\"eu-central-1\"");
	ht_config_free(cfg);
	free(path);
}
END_TEST

START_TEST(full_config)
{
	ht_config *cfg = load_ok(
		"{\n"
		"  \"$schema\": \"https://example.org/hypertest.schema.json\",\n"
		"  \"// a comment\": \"anything ${NOT_EXPANDED_HERE}\",\n"
		"  \"_comment_about_images\": [1, 2],\n"
		"  \"imageName\": \"img\",\n"
		"  \"localImageName\": \"local-img\",\n"
		"  \"localBaseImageName\": \"base-img\",\n"
		"  \"buildManifestFileName\": \"m/manifest.json\",\n"
		"  \"resultsFileName\": \"..results.json\",\n"
		"  \"driftDetectionPolicy\": \"error\",\n"
		"  \"concurrency\": 100000,\n"
		"  \"pluginPath\": \"/opt/plugins\",\n"
		"  \"testRunner\": {\"plugin\": \"command\", \"//\": \"c\",\n"
		"                 \"options\": {\"command\": [\"npx\", \"jest\"], \"_comment\": 1}},\n"
		"  \"cloudProvider\": {\"plugin\": \"local\", \"options\": {\"b\": 1, \"a\": {\"d\": 2, \"c\": 1}}}\n"
		"}\n");
	char *dump;

	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "img");
	ck_assert_str_eq(ht_config_str(cfg, "localImageName"), "local-img");
	ck_assert_str_eq(ht_config_str(cfg, "localBaseImageName"), "base-img");
	ck_assert_str_eq(ht_config_str(cfg, "buildManifestFileName"), "m/manifest.json");
	ck_assert_str_eq(ht_config_str(cfg, "resultsFileName"), "..results.json");
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_ERROR);
	ck_assert_int_eq(ht_config_concurrency(cfg), 100000);
	OPTIONS_EQ(cfg, "testRunner", "{\"command\":[\"npx\",\"jest\"]}");
	OPTIONS_EQ(cfg, "cloudProvider", "{\"a\":{\"c\":1,\"d\":2},\"b\":1}");
	GET_EQ(cfg, "$schema", NULL);
	GET_EQ(cfg, "testRunner.options.command.1", "\"jest\"");
	GET_EQ(cfg, "testRunner.options.command.2", NULL);
	dump = ht_config_dump(cfg);
	ck_assert_str_eq(dump,
	                 "{\n"
	                 "  \"buildManifestFileName\": \"m/manifest.json\",\n"
	                 "  \"cloudProvider\": {\n"
	                 "    \"options\": {\n"
	                 "      \"a\": {\n"
	                 "        \"c\": 1,\n"
	                 "        \"d\": 2\n"
	                 "      },\n"
	                 "      \"b\": 1\n"
	                 "    },\n"
	                 "    \"plugin\": \"local\"\n"
	                 "  },\n"
	                 "  \"concurrency\": 100000,\n"
	                 "  \"driftDetectionPolicy\": \"error\",\n"
	                 "  \"imageName\": \"img\",\n"
	                 "  \"localBaseImageName\": \"base-img\",\n"
	                 "  \"localImageName\": \"local-img\",\n"
	                 "  \"pluginPath\": \"/opt/plugins\",\n"
	                 "  \"resultsFileName\": \"..results.json\",\n"
	                 "  \"testRunner\": {\n"
	                 "    \"options\": {\n"
	                 "      \"command\": [\n"
	                 "        \"npx\",\n"
	                 "        \"jest\"\n"
	                 "      ]\n"
	                 "    },\n"
	                 "    \"plugin\": \"command\"\n"
	                 "  }\n"
	                 "}");
	free(dump);
	ht_config_free(cfg);
}
END_TEST

START_TEST(dump_has_defaults)
{
	ht_config *cfg = load_ok("{\"imageName\": \"x\", \"concurrency\": 1}");
	char *dump = ht_config_dump(cfg);

	ck_assert_str_eq(dump,
	                 "{\n"
	                 "  \"buildManifestFileName\": \"hypertest.manifest.json\",\n"
	                 "  \"concurrency\": 1,\n"
	                 "  \"driftDetectionPolicy\": \"warning\",\n"
	                 "  \"imageName\": \"x\",\n"
	                 "  \"resultsFileName\": \"hypertest.results.json\"\n"
	                 "}");
	free(dump);
	ht_config_free(cfg);
}
END_TEST

START_TEST(drift_policies)
{
	ht_config *cfg = load_ok("{\"driftDetectionPolicy\": \"silence\"}");
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_SILENCE);
	ht_config_free(cfg);
	cfg = load_ok("{\"driftDetectionPolicy\": \"ignore\"}");
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_SILENCE);
	GET_EQ(cfg, "driftDetectionPolicy", "\"silence\"");
	ht_config_free(cfg);
	cfg = load_ok("{\"driftDetectionPolicy\": \"warning\"}");
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_WARNING);
	ht_config_free(cfg);

	LOAD_ERR("{\"driftDetectionPolicy\": \"eror\"}",
	         "test.json:1:26: key 'driftDetectionPolicy': expected \"silence\", \"warning\" or "
	         "\"error\", got \"eror\" (did you mean \"error\"?)");
	/* "warn" is 3 edits from "warning": too far for a suggestion (at most max(2, 4/3)) */
	LOAD_ERR("{\"driftDetectionPolicy\": \"warn\"}",
	         "test.json:1:26: key 'driftDetectionPolicy': expected \"silence\", \"warning\" or "
	         "\"error\", got \"warn\"");
	LOAD_ERR("{\"driftDetectionPolicy\": \"loud\"}",
	         "test.json:1:26: key 'driftDetectionPolicy': expected \"silence\", \"warning\" or "
	         "\"error\", got \"loud\"");
	LOAD_ERR("{\"driftDetectionPolicy\": 1}",
	         "test.json:1:26: key 'driftDetectionPolicy': expected \"silence\", \"warning\" or "
	         "\"error\", got 1");
}
END_TEST

START_TEST(log_levels)
{
	static const char *const ok[] = {"error", "warning", "info", "debug"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "{\"logLevel\": \"%s\"}", ok[i]);
		ht_config *cfg = load_ok(text);
		ck_assert_str_eq(ht_config_str(cfg, "logLevel"), ok[i]);
		ht_config_free(cfg);
	}
	LOAD_ERR("{\"logLevel\": \"debgu\"}",
	         "test.json:1:14: key 'logLevel': expected \"error\", \"warning\", \"info\" or "
	         "\"debug\", got \"debgu\" (did you mean \"debug\"?)");
	LOAD_ERR("{\"logLevel\": 3}",
	         "test.json:1:14: key 'logLevel': expected \"error\", \"warning\", \"info\" or "
	         "\"debug\", got 3");
}
END_TEST

START_TEST(load_file_errors)
{
	ht_config *cfg = ht_config_new();
	ht_err err = {0, ""};
	char *missing = ht_path_join(tmp_root, "nope.json");
	char *bad = write_tmp("bad.json", "{\n  \"concurrency\": \"thirty\"\n}\n");
	char *good = write_tmp("good.json", "{\"imageName\": \"kept\"}");
	char *expected;

	ck_assert_int_eq(ht_config_load_file(cfg, missing, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, missing));
	ck_assert(!ht_config_loaded(cfg));

	ck_assert_int_eq(ht_config_load_file(cfg, good, &err), 0);
	ck_assert_int_eq(ht_config_load_file(cfg, bad, &err), HYPERTEST_ERR_CONFIG);
	expected = ht_asprintf("%s:2:18: key 'concurrency': expected an integer from 1 to 100000, "
	                       "got \"thirty\"", bad);
	ck_assert_str_eq(err.msg, expected);
	/* a failed load leaves the previous document in place */
	ck_assert(ht_config_loaded(cfg));
	ck_assert_str_eq(ht_config_path(cfg), good);
	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "kept");
	free(expected);
	free(missing);
	free(bad);
	free(good);
	ht_config_free(cfg);
}
END_TEST

/* ---- errors and their positions -------------------------------------------------- */

START_TEST(syntax_errors)
{
	LOAD_ERR("{\n"
	         "  \"imageName\": \"x\"\n"
	         "  \"concurrency\": 3\n"
	         "}\n",
	         "test.json:3:15: '}' expected near '\"concurrency\"'");
	/* columns count characters: "é" is one */
	LOAD_ERR("{\"\xc3\xa9\": 1 x}", "test.json:1:9: '}' expected near 'x'");
	LOAD_ERR("[1, 2]", "test.json:1:1: expected a JSON object at the top level, got an array");
	LOAD_ERR("", "test.json:1:1: the configuration is empty (expected a JSON object)");
}
END_TEST

START_TEST(duplicate_key)
{
	LOAD_ERR("{\n"
	         " \"concurrency\": 1,\n"
	         " \"concurrency\": 2\n"
	         "}",
	         "test.json:3:14: duplicate object key near '\"concurrency\"'");
	LOAD_ERR("{\"testRunner\": {\"plugin\": \"a\",\n"
	         "                \"plugin\": \"b\"}}",
	         "test.json:2:24: duplicate object key near '\"plugin\"'");
}
END_TEST

START_TEST(unknown_keys)
{
	LOAD_ERR("{\n"
	         "  \"imageName\": \"x\",\n"
	         "  \"concurency\": 10\n"
	         "}\n",
	         "test.json:3:3: unknown key 'concurency' (did you mean 'concurrency'?)");
	LOAD_ERR("{\"imagename\": \"x\"}",
	         "test.json:1:2: unknown key 'imagename' (did you mean 'imageName'?)");
	LOAD_ERR("{\"concurrency\": 3,\n"
	         "   \"zzz\": 1}",
	         "test.json:2:4: unknown key 'zzz'");
	LOAD_ERR("{\"workers\": 4}", "test.json:1:2: unknown key 'workers'");
	LOAD_ERR("{\n"
	         "  \"testRunner\": {\n"
	         "    \"plugin\": \"command\",\n"
	         "    \"plugn\": \"x\"\n"
	         "  }\n"
	         "}",
	         "test.json:4:5: unknown key 'testRunner.plugn' (did you mean 'testRunner.plugin'?)");
	LOAD_ERR("{\"cloudProvider\": {\"plugin\": \"aws\", \"region\": \"eu\"}}",
	         "test.json:1:37: unknown key 'cloudProvider.region'");
}
END_TEST

START_TEST(type_errors)
{
	LOAD_ERR("{\n"
	         "  \"imageName\": \"x\",\n"
	         "  \"concurrency\":   \"thirty\"\n"
	         "}\n",
	         "test.json:3:20: key 'concurrency': expected an integer from 1 to 100000, got \"thirty\"");
	LOAD_ERR("{\"concurrency\": 0}",
	         "test.json:1:17: key 'concurrency': expected an integer from 1 to 100000, got 0");
	LOAD_ERR("{\"concurrency\": 100001}",
	         "test.json:1:17: key 'concurrency': expected an integer from 1 to 100000, got 100001");
	LOAD_ERR("{\"concurrency\": 2.5}",
	         "test.json:1:17: key 'concurrency': expected an integer from 1 to 100000, got 2.5");
	LOAD_ERR("{\"concurrency\": 30.0}",
	         "test.json:1:17: key 'concurrency': expected an integer from 1 to 100000, got 30.0");
	LOAD_ERR("{\"concurrency\": -3}",
	         "test.json:1:17: key 'concurrency': expected an integer from 1 to 100000, got -3");
	LOAD_ERR("{\"imageName\": [\"a\"]}",
	         "test.json:1:15: key 'imageName': expected a string, got an array");
	LOAD_ERR("{\"localImageName\": null}",
	         "test.json:1:20: key 'localImageName': expected a string, got null");
	LOAD_ERR("{\"localBaseImageName\": true}",
	         "test.json:1:24: key 'localBaseImageName': expected a string, got true");
	/* a long value is shortened in the message */
	LOAD_ERR("{\"concurrency\": \"0123456789012345678901234567890123456789012345678901234567890123456789"
	         "0123456789\"}",
	         "test.json:1:17: key 'concurrency': expected an integer from 1 to 100000, got "
	         "\"012345678901234567890123456789012345678901234567890123456789012345678...");
	LOAD_ERR("{\"pluginPath\": 3}",
	         "test.json:1:16: key 'pluginPath': expected a ':'-separated string or an array of "
	         "directories, got 3");
	LOAD_ERR("{\"pluginPath\": [\"a\",\n"
	         "                {}]}",
	         "test.json:2:17: key 'pluginPath[1]': expected a directory (a string), got an object");
}
END_TEST

START_TEST(file_name_errors)
{
	LOAD_ERR("{\"resultsFileName\": \"\"}",
	         "test.json:1:21: key 'resultsFileName': expected a non-empty file name, got \"\"");
	LOAD_ERR("{\"buildManifestFileName\": 5}",
	         "test.json:1:27: key 'buildManifestFileName': expected a non-empty file name, got 5");
	LOAD_ERR("{\"resultsFileName\": \"../r.json\"}",
	         "test.json:1:21: key 'resultsFileName': a file name cannot contain a '..' segment, "
	         "got \"../r.json\"");
	LOAD_ERR("{\"resultsFileName\": \"a/../../r.json\"}",
	         "test.json:1:21: key 'resultsFileName': a file name cannot contain a '..' segment, "
	         "got \"a/../../r.json\"");
	LOAD_ERR("{\"buildManifestFileName\": \"out/..\"}",
	         "test.json:1:27: key 'buildManifestFileName': a file name cannot contain a '..' "
	         "segment, got \"out/..\"");
	LOAD_ERR("{\"buildManifestFileName\": \"/etc/m.json\"}",
	         "test.json:1:27: key 'buildManifestFileName': expected a relative file name, got the "
	         "absolute path \"/etc/m.json\"");
}
END_TEST

START_TEST(section_errors)
{
	LOAD_ERR("{\"imageName\": \"x\",\n"
	         " \"cloudProvider\": {\"options\": {}}}",
	         "test.json:2:19: key 'cloudProvider.plugin': missing (the name of the plugin to use)");
	LOAD_ERR("{\"testRunner\": \"playwright\"}",
	         "test.json:1:16: key 'testRunner': expected an object {\"plugin\": NAME, \"options\": "
	         "{...}}, got \"playwright\"");
	LOAD_ERR("{\"testRunner\": {\"plugin\": \"\"}}",
	         "test.json:1:27: key 'testRunner.plugin': expected the plugin's name (a non-empty "
	         "string), got \"\"");
	LOAD_ERR("{\"testRunner\": {\"plugin\": 7}}",
	         "test.json:1:27: key 'testRunner.plugin': expected the plugin's name (a non-empty "
	         "string), got 7");
	LOAD_ERR("{\"cloudProvider\": {\"plugin\": \"aws\",\n"
	         "  \"options\": [\"eu\"]}}",
	         "test.json:2:14: key 'cloudProvider.options': expected an object, got an array");
}
END_TEST

/* ---- environment references --------------------------------------------------------- */

START_TEST(env_expansion)
{
	ht_config *cfg;

	setenv("HT_CHECK_REGION", "eu-west-1", 1);
	setenv("HT_CHECK_IMAGE", "registry/app", 1);
	setenv("HT_CHECK_EMPTY", "", 1);
	unsetenv("HT_CHECK_UNSET");
	unsetenv("HT_CHECK_TAG");
	cfg = load_ok(
		"{\"imageName\": \"${HT_CHECK_IMAGE}:${HT_CHECK_TAG:-latest}\",\n"
		" \"localImageName\": \"$$HOME and $ and $x and ${HT_CHECK_EMPTY:-fallback} end$\",\n"
		" \"localBaseImageName\": \"[${HT_CHECK_EMPTY}]${HT_CHECK_REGION:-unused}$$$$\",\n"
		" \"cloudProvider\": {\"plugin\": \"aws\", \"options\": {\n"
		"   \"region\": \"${HT_CHECK_REGION}\",\n"
		"   \"deep\": {\"list\": [\"a-${HT_CHECK_REGION}\", 3, {\"x\": \"${HT_CHECK_UNSET:-d}\"}]},\n"
		"   \"${HT_CHECK_REGION}\": \"keys stay\"}}}");
	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "registry/app:latest");
	ck_assert_str_eq(ht_config_str(cfg, "localImageName"), "$HOME and $ and $x and fallback end$");
	ck_assert_str_eq(ht_config_str(cfg, "localBaseImageName"), "[]eu-west-1$$");
	OPTIONS_EQ(cfg, "cloudProvider",
	           "{\"${HT_CHECK_REGION}\":\"keys stay\",\"deep\":{\"list\":[\"a-eu-west-1\",3,"
	           "{\"x\":\"d\"}]},\"region\":\"eu-west-1\"}");
	ht_config_free(cfg);

	/* a value is expanded once: references inside a variable's value stay */
	setenv("HT_CHECK_NESTED", "${HT_CHECK_REGION}$$", 1);
	cfg = load_ok("{\"imageName\": \"${HT_CHECK_NESTED}\"}");
	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "${HT_CHECK_REGION}$$");
	ht_config_free(cfg);

	/* expansion happens before validation */
	setenv("HT_CHECK_UP", "..", 1);
	LOAD_ERR("{\"resultsFileName\": \"${HT_CHECK_UP}/r.json\"}",
	         "test.json:1:21: key 'resultsFileName': a file name cannot contain a '..' segment, "
	         "got \"../r.json\"");
	cfg = load_ok("{\"pluginPath\": [\"${HT_CHECK_REGION}/p\"]}");
	{
		char *pp = ht_config_plugin_path(cfg, "/base");
		ck_assert_str_eq(pp, "/base/eu-west-1/p");
		free(pp);
	}
	ht_config_free(cfg);
}
END_TEST

START_TEST(env_errors)
{
	unsetenv("HT_CHECK_UNSET");
	LOAD_ERR("{\n"
	         "  \"cloudProvider\": {\n"
	         "    \"plugin\": \"aws\",\n"
	         "    \"options\": {\"regions\": [\"a\", \"${HT_CHECK_UNSET}\"]}\n"
	         "  }\n"
	         "}\n",
	         "test.json:4:34: key 'cloudProvider.options.regions[1]': environment variable "
	         "'HT_CHECK_UNSET' is not set (write ${HT_CHECK_UNSET:-default} for a default)");
	LOAD_ERR("{\"imageName\": \"x${HT_CHECK_UNSET}\"}",
	         "test.json:1:15: key 'imageName': environment variable 'HT_CHECK_UNSET' is not set "
	         "(write ${HT_CHECK_UNSET:-default} for a default)");
	LOAD_ERR("{\"imageName\": \"${HT-CHECK}\"}",
	         "test.json:1:15: key 'imageName': invalid environment reference '${HT-CHECK}' (use "
	         "${NAME} or ${NAME:-default}, NAME made of letters, digits and '_'; $$ for a '$')");
	LOAD_ERR("{\"imageName\": \"${}\"}",
	         "test.json:1:15: key 'imageName': invalid environment reference '${}' (use "
	         "${NAME} or ${NAME:-default}, NAME made of letters, digits and '_'; $$ for a '$')");
	LOAD_ERR("{\"imageName\": \"${1X}\"}",
	         "test.json:1:15: key 'imageName': invalid environment reference '${1X}' (use "
	         "${NAME} or ${NAME:-default}, NAME made of letters, digits and '_'; $$ for a '$')");
	LOAD_ERR("{\"imageName\": \"${A:x}\"}",
	         "test.json:1:15: key 'imageName': invalid environment reference '${A:x}' (use "
	         "${NAME} or ${NAME:-default}, NAME made of letters, digits and '_'; $$ for a '$')");
	setenv("HT_CHECK_BINARY", "\xff\xfe", 1);
	LOAD_ERR("{\"imageName\": \"${HT_CHECK_BINARY}\"}",
	         "test.json:1:15: key 'imageName': the value after expanding environment variables is "
	         "not valid UTF-8");
	LOAD_ERR("{\"imageName\": \"a ${HT_CHECK\"}",
	         "test.json:1:15: key 'imageName': unterminated '${' in \"a ${HT_CHECK\"");
	/* a comment is not expanded, so an unset variable there is no error */
	{
		ht_config *cfg = load_ok("{\"//\": \"${HT_CHECK_UNSET}\"}");
		ht_config_free(cfg);
	}
}
END_TEST

/* ---- overrides ------------------------------------------------------------------------- */

static const char *aws_config =
	"{\n"
	"  \"concurrency\": 5,\n"
	"  \"cloudProvider\": {\"plugin\": \"aws\",\n"
	"                    \"options\": {\"region\": \"eu-central-1\", \"bucketName\": \"b\"}}\n"
	"}\n";

START_TEST(override_nested_key)
{
	ht_config *cfg = load_ok(aws_config);

	unsetenv("HT_CHECK_UNSET_TOO");
	set_ok(cfg, "cloudProvider.options.region", "\"us-east-1\"");
	OPTIONS_EQ(cfg, "cloudProvider", "{\"bucketName\":\"b\",\"region\":\"us-east-1\"}");
	set_ok(cfg, "concurrency", "12");
	ck_assert_int_eq(ht_config_concurrency(cfg), 12);
	set_ok(cfg, "cloudProvider.options.limits", "{\"memory\": 2048, \"list\": [1, 2]}");
	GET_EQ(cfg, "cloudProvider.options.limits.list", "[1,2]");
	/* a bare word is a string */
	set_ok(cfg, "imageName", "my-app/hypertest:v1");
	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "my-app/hypertest:v1");
	set_ok(cfg, "driftDetectionPolicy", "error");
	ck_assert_int_eq(ht_config_drift_policy(cfg), HT_DRIFT_ERROR);
	/* comment keys set by an override vanish like the file's */
	set_ok(cfg, "//note", "\"${HT_CHECK_UNSET_TOO}\"");
	set_ok(cfg, "cloudProvider.options._comment", "x");
	GET_EQ(cfg, "//note", NULL);
	GET_EQ(cfg, "cloudProvider.options._comment", NULL);
	/* JSON text is JSON: "true" is a boolean, "\"true\"" a string */
	set_ok(cfg, "cloudProvider.options.flag", "true");
	GET_EQ(cfg, "cloudProvider.options.flag", "true");
	set_ok(cfg, "cloudProvider.options.flag", "\"true\"");
	GET_EQ(cfg, "cloudProvider.options.flag", "\"true\"");
	ht_config_free(cfg);
}
END_TEST

START_TEST(override_creates_objects)
{
	ht_config *cfg = load_ok("{\"imageName\": \"x\"}");

	/* the section does not exist: the override creates it, without a plugin */
	SET_ERR(cfg, "cloudProvider.options.region", "eu",
	        "override cloudProvider.options.region: key 'cloudProvider.plugin': missing (the name "
	        "of the plugin to use)");
	GET_EQ(cfg, "cloudProvider", NULL);
	set_ok(cfg, "cloudProvider.plugin", "local");
	set_ok(cfg, "cloudProvider.options.region", "eu");
	set_ok(cfg, "cloudProvider.options.a.b.c", "1");
	OPTIONS_EQ(cfg, "cloudProvider", "{\"a\":{\"b\":{\"c\":1}},\"region\":\"eu\"}");
	ht_config_free(cfg);

	/* before any load, onto an empty document */
	cfg = ht_config_new();
	set_ok(cfg, "testRunner", "{\"plugin\": \"command\"}");
	ck_assert(!ht_config_loaded(cfg));
	ck_assert_str_eq(ht_config_plugin_name(cfg, "testRunner"), "command");
	ht_config_free(cfg);
}
END_TEST

START_TEST(override_invalid)
{
	ht_config *cfg = load_ok(aws_config);
	ht_err err = {0, ""};

	SET_ERR(cfg, "concurrency", "0",
	        "override concurrency: key 'concurrency': expected an integer from 1 to 100000, got 0");
	SET_ERR(cfg, "concurrency", "thirty",
	        "override concurrency: key 'concurrency': expected an integer from 1 to 100000, got "
	        "\"thirty\"");
	ck_assert_int_eq(ht_config_concurrency(cfg), 5); /* unchanged */
	SET_ERR(cfg, "concurency", "3",
	        "override concurency: unknown key 'concurency' (did you mean 'concurrency'?)");
	SET_ERR(cfg, "cloudProvider.plugn", "\"x\"",
	        "override cloudProvider.plugn: unknown key 'cloudProvider.plugn' (did you mean "
	        "'cloudProvider.plugin'?)");
	SET_ERR(cfg, "testRunner.options", "{\"a\" 1}",
	        "override testRunner.options:1:6: ':' expected near '1'");
	SET_ERR(cfg, "imageName", "\"unterminated",
	        "override imageName:1:13: premature end of input near '\"unterminated'");
	/* a position inside an object value */
	SET_ERR(cfg, "testRunner", "{\"plugin\": 3}",
	        "override testRunner:1:12: key 'testRunner.plugin': expected the plugin's name (a "
	        "non-empty string), got 3");
	SET_ERR(cfg, "testRunner", "{\n \"options\": {}}",
	        "override testRunner:1:1: key 'testRunner.plugin': missing (the name of the plugin to "
	        "use)");
	SET_ERR(cfg, "concurrency.x", "1",
	        "override concurrency.x: key 'concurrency' is not an object (got 5)");
	SET_ERR(cfg, "cloudProvider.options.region.x", "1",
	        "override cloudProvider.options.region.x: key 'cloudProvider.options.region' is not "
	        "an object (got \"eu-central-1\")");
	SET_ERR(cfg, "a..b", "1", "override a..b: invalid key (expected names separated by '.')");
	SET_ERR(cfg, "", "1", "override : invalid key (expected names separated by '.')");
	ck_assert_int_eq(ht_config_set(cfg, NULL, "1", &err), HYPERTEST_ERR_INVALID);
	SET_ERR(cfg, "imageName", "bad\xff", "override imageName: the value is not valid UTF-8");
	/* none of these stuck */
	GET_EQ(cfg, "testRunner", NULL);
	OPTIONS_EQ(cfg, "cloudProvider", "{\"bucketName\":\"b\",\"region\":\"eu-central-1\"}");
	ck_assert_int_eq(ht_config_load_string(cfg, aws_config, "again.json", &err), 0);
	ck_assert_int_eq(ht_config_concurrency(cfg), 5);
	ht_config_free(cfg);
}
END_TEST

START_TEST(override_env)
{
	ht_config *cfg = load_ok(aws_config);

	setenv("HT_CHECK_REGION", "ap-south-1", 1);
	unsetenv("HT_CHECK_UNSET");
	set_ok(cfg, "cloudProvider.options.region", "${HT_CHECK_REGION}");
	GET_EQ(cfg, "cloudProvider.options.region", "\"ap-south-1\"");
	set_ok(cfg, "cloudProvider.options.list", "[\"$$\", \"${HT_CHECK_UNSET:-z}\"]");
	GET_EQ(cfg, "cloudProvider.options.list", "[\"$\",\"z\"]");
	SET_ERR(cfg, "cloudProvider.options.x", "{\"y\": [\"${HT_CHECK_UNSET}\"]}",
	        "override cloudProvider.options.x:1:8: key 'cloudProvider.options.x.y[0]': environment "
	        "variable 'HT_CHECK_UNSET' is not set (write ${HT_CHECK_UNSET:-default} for a default)");
	SET_ERR(cfg, "imageName", "${HT_CHECK_UNSET}",
	        "override imageName: key 'imageName': environment variable 'HT_CHECK_UNSET' is not set "
	        "(write ${HT_CHECK_UNSET:-default} for a default)");
	ht_config_free(cfg);
}
END_TEST

START_TEST(override_survives_reload)
{
	ht_config *cfg = ht_config_new();
	ht_err err = {0, ""};
	char *path = write_tmp("c.json", "{\"concurrency\": 3,\n \"testRunner\": \"command\"}");

	set_ok(cfg, "concurrency", "7");
	ck_assert_int_eq(ht_config_load_string(cfg,
	                                       "{\"concurrency\": 3, \"testRunner\": {\"plugin\": \"c\"}}",
	                                       "one.json", &err), 0);
	ck_assert_int_eq(ht_config_concurrency(cfg), 7);
	set_ok(cfg, "testRunner.options.workers", "2");
	/* an object or array value gets positions inside its text */
	SET_ERR(cfg, "imageName", "[1]",
	        "override imageName:1:1: key 'imageName': expected a string, got an array");
	/* the second load keeps both overrides; the failed one was not kept */
	ck_assert_msg(ht_config_load_string(cfg,
	                                    "{\"concurrency\": 4, \"imageName\": \"i\",\n"
	                                    " \"testRunner\": {\"plugin\": \"command\"}}",
	                                    "two.json", &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_config_concurrency(cfg), 7);
	ck_assert_str_eq(ht_config_str(cfg, "imageName"), "i");
	OPTIONS_EQ(cfg, "testRunner", "{\"workers\":2}");
	/* a later override of the same key replaces the earlier */
	set_ok(cfg, "concurrency", "8");
	ck_assert_int_eq(ht_config_load_string(cfg, "{\"testRunner\": {\"plugin\": \"x\"}}",
	                                       "three.json", &err), 0);
	ck_assert_int_eq(ht_config_concurrency(cfg), 8);
	OPTIONS_EQ(cfg, "testRunner", "{\"workers\":2}");
	/* an override that no longer fits the new file makes the load fail */
	ck_assert_int_eq(ht_config_load_file(cfg, path, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "override testRunner.options.workers: key 'testRunner' is not an "
	                          "object (got \"command\")");
	/* an error in the file itself still points into the file */
	ck_assert_int_eq(ht_config_load_string(cfg,
	                                       "{\"testRunner\": {\"plugin\": \"x\"},\n"
	                                       " \"cloudProvider\": {}}",
	                                       "four.json", &err), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(err.msg, "four.json:2:19: key 'cloudProvider.plugin': missing (the name of "
	                          "the plugin to use)");
	free(path);
	ht_config_free(cfg);
}
END_TEST

START_TEST(override_replaced_by_ancestor)
{
	ht_config *cfg = load_ok("{\"testRunner\": {\"plugin\": \"a\"}}");
	ht_err err = {0, ""};

	set_ok(cfg, "testRunner.options.x", "1");
	set_ok(cfg, "testRunner", "{\"plugin\": \"b\"}");
	OPTIONS_EQ(cfg, "testRunner", "{}");
	/* the first override is gone: it would not fit this file, the second does */
	ck_assert_msg(ht_config_load_string(cfg, "{\"testRunner\": \"str\"}", "t.json", &err) == 0,
	              "%s", err.msg);
	ck_assert_str_eq(ht_config_plugin_name(cfg, "testRunner"), "b");
	OPTIONS_EQ(cfg, "testRunner", "{}");
	ht_config_free(cfg);
}
END_TEST

/* ---- plugin path ------------------------------------------------------------------------- */

START_TEST(plugin_path_forms)
{
	ht_config *cfg = load_ok("{\"pluginPath\": \"plugins:/opt/p::lib/../mods/\"}");
	char *pp, *dir, *path, *expected;
	ht_err err = {0, ""};

	pp = ht_config_plugin_path(cfg, "/proj");
	ck_assert_str_eq(pp, "/proj/plugins:/opt/p:/proj/mods");
	free(pp);
	ht_config_free(cfg);

	cfg = load_ok("{\"pluginPath\": [\"rel/a\", \"/abs/b\", \"\", \"./c\"]}");
	pp = ht_config_plugin_path(cfg, "/proj/x");
	ck_assert_str_eq(pp, "/proj/x/rel/a:/abs/b:/proj/x/c");
	free(pp);
	GET_EQ(cfg, "pluginPath.1", "\"/abs/b\"");
	ht_config_free(cfg);

	cfg = load_ok("{\"pluginPath\": []}");
	pp = ht_config_plugin_path(cfg, "/proj");
	ck_assert_str_eq(pp, "");
	free(pp);
	ht_config_free(cfg);

	/* without a base directory: the loaded file's directory */
	dir = ht_path_join(tmp_root, "proj");
	ck_assert_int_eq(ht_mkdir_p(dir, &err), 0);
	path = write_tmp("proj/hypertest.config.json", "{\"pluginPath\": \"p1:/abs\"}");
	cfg = ht_config_new();
	ck_assert_int_eq(ht_config_load_file(cfg, path, &err), 0);
	pp = ht_config_plugin_path(cfg, NULL);
	expected = ht_asprintf("%s/p1:/abs", dir);
	ck_assert_str_eq(pp, expected);
	free(pp);
	free(expected);
	free(path);
	free(dir);
	ht_config_free(cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("jsonpos");

	tcase_add_test(tc, jsonpos_nested_objects);
	tcase_add_test(tc, jsonpos_missing_gives_ancestor);
	tcase_add_test(tc, jsonpos_arrays);
	tcase_add_test(tc, jsonpos_same_key_two_depths);
	tcase_add_test(tc, jsonpos_escapes_and_utf8);
	tcase_add_test(tc, jsonpos_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, minimal_and_defaults);
	tcase_add_test(tc, design_example_verbatim);
	tcase_add_test(tc, full_config);
	tcase_add_test(tc, dump_has_defaults);
	tcase_add_test(tc, drift_policies);
	tcase_add_test(tc, log_levels);
	tcase_add_test(tc, load_file_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, syntax_errors);
	tcase_add_test(tc, duplicate_key);
	tcase_add_test(tc, unknown_keys);
	tcase_add_test(tc, type_errors);
	tcase_add_test(tc, file_name_errors);
	tcase_add_test(tc, section_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("env");
	tcase_add_test(tc, env_expansion);
	tcase_add_test(tc, env_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("overrides");
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, override_nested_key);
	tcase_add_test(tc, override_creates_objects);
	tcase_add_test(tc, override_invalid);
	tcase_add_test(tc, override_env);
	tcase_add_test(tc, override_survives_reload);
	tcase_add_test(tc, override_replaced_by_ancestor);
	suite_add_tcase(s, tc);

	tc = tcase_create("plugin_path");
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, plugin_path_forms);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
