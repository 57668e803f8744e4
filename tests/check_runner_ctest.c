/*
 * check_runner_ctest.c - the "ctest" runner plugin with the real CMake/CTest
 * on tests/runners/ctest-project (configured and built into a temporary
 * directory): options, listing, every status mapping with its message, the
 * regex escaping, doctor and image content.  Skipped (77) without cmake.
 * The module is $HT_TOP_BUILDDIR/plugins/.libs/runner-ctest.so (or
 * $HT_RUNNER_CTEST_MODULE).
 */
#include "runners-core.h"

#include <sys/stat.h>

#ifndef HT_TOP_BUILDDIR
#define HT_TOP_BUILDDIR "."
#endif
#ifndef HT_TOP_SRCDIR
#define HT_TOP_SRCDIR "."
#endif

static hypertest_core core;
static char tmp[64], build[128], source[4096];
static void *module, *self;

static void setup(void)
{
	const char *m = getenv("HT_RUNNER_CTEST_MODULE"), *src = getenv("HT_TOP_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/plugins/.libs/runner-ctest.so", HT_TOP_BUILDDIR);
	snprintf(source, sizeof source, "%s/tests/runners/ctest-project", src && *src ? src : HT_TOP_SRCDIR);
	memset(&core, 0, sizeof core);
	core.project_dir = tmp;
	module = load_module(m && *m ? m : path, &core);
	self = NULL;
}

static void teardown(void)
{
	if (self)
		((hypertest_OP_DESTROY_fn)op(HYPERTEST_OP_DESTROY))(self);
	dlclose(module);
	reg_ops = NULL;
}

static int create(const char *opts)
{
	return ((hypertest_OP_CREATE_fn)op(HYPERTEST_OP_CREATE))(&core, opts, &self);
}

START_TEST(options)
{
	void *s = (void *)1;
	ck_assert_int_eq(((hypertest_OP_CREATE_fn)op(HYPERTEST_OP_CREATE))(&core, "{}", &s), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': option 'buildDir' is required");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"buildDri\": 1}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': unknown option 'buildDri' (did you mean 'buildDir'?)");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"args\": [\"-C\", 2]}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': option 'args': element 2 is not a string");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"sourceDir\": \"/src\"}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': option 'sourceDir': '/src' must be relative to the project directory");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"sourceDir\": \"src\"}"), 0);
	ck_assert_str_eq(((hypertest_RUNNER_TEST_DIR_fn)op(HYPERTEST_RUNNER_TEST_DIR))(self), "src");
	((hypertest_OP_DESTROY_fn)op(HYPERTEST_OP_DESTROY))(self);
	ck_assert_int_eq(create("{\"buildDir\": \"b\"}"), 0);
	ck_assert_str_eq(((hypertest_RUNNER_TEST_DIR_fn)op(HYPERTEST_RUNNER_TEST_DIR))(self), "tests");
}
END_TEST

static const char *const names[] = {"passes", "fails", "math.add(1+1)", "mathXadd11",
                                    "chars [a-z]*?|^$\\{}", "skipped_by_code", "skipped_by_regex",
                                    "disabled", "times_out", NULL};

START_TEST(listing)
{
	struct hypertest_list l = {0};
	ck_assert_int_eq(create("{\"buildDir\": \"build\", \"sourceDir\": \"src\"}"), 0);
	ck_assert_int_eq(((hypertest_RUNNER_LIST_TESTS_fn)op(HYPERTEST_RUNNER_LIST_TESTS))(self, &l), 0);
	size_t i = 0;
	for (; names[i]; i++) {
		ck_assert_uint_lt(i, l.n);
		json_t *o = json_loads(l.items[i], 0, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(o, "name")), names[i]);
		ck_assert_int_eq(json_integer_value(json_object_get(o, "index")), (json_int_t)i + 1);
		ck_assert_str_eq(json_string_value(json_object_get(o, "buildDir")), build);
		json_decref(o);
		free(l.items[i]);
	}
	ck_assert_uint_eq(l.n, i);
}
END_TEST

static void expect(size_t index, int status, const char *message)
{
	struct hypertest_result r;
	memset(&r, 0, sizeof r);
	char art[256], *ctx;
	static int n;
	snprintf(art, sizeof art, "%s/art%d", tmp, n++);
	ck_assert_int_eq(mkdir(art, 0755), 0);
	json_t *o = json_pack("{s:s,s:I,s:s}", "name", names[index], "index", (json_int_t)index + 1,
	                      "buildDir", build);
	ctx = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ck_assert_int_eq(((hypertest_RUNNER_RUN_TEST_fn)op(HYPERTEST_RUNNER_RUN_TEST))(self, ctx, art, &r), 0);
	free(ctx);
	ck_assert_msg(r.status == status, "%s: status %d (%s)", names[index], r.status, r.message);
	ck_assert_str_eq(r.name, names[index]);
	ck_assert_str_eq(r.file_path, "src");
	if (message)
		ck_assert_str_eq(r.message ? r.message : "(none)", message);
	else
		ck_assert_msg(!r.message, "%s: %s", names[index], r.message);
	char p[512];
	struct stat st;
	snprintf(p, sizeof p, "%s/junit.xml", art);
	ck_assert_int_eq(stat(p, &st), 0);
	result_free(&r);
}

START_TEST(statuses)
{
	ck_assert_int_eq(create("{\"buildDir\": \"build\", \"sourceDir\": \"src\"}"), 0);
	expect(0, HYPERTEST_STATUS_SUCCESS, NULL);
	expect(1, HYPERTEST_STATUS_FAILED, "checking 2 + 2 == 5\nFAILED: 2 + 2 is 4, not 5");
	expect(2, HYPERTEST_STATUS_SUCCESS, NULL); /* only it: mathXadd11 would fail */
	expect(3, HYPERTEST_STATUS_FAILED, "checking 1 + 1 == 3\nFAILED: 1 + 1 is 2, not 3");
	expect(4, HYPERTEST_STATUS_SUCCESS, NULL);
	expect(5, HYPERTEST_STATUS_SKIPPED, "SKIP_RETURN_CODE=77");
	expect(6, HYPERTEST_STATUS_SKIPPED, "SKIP_REGULAR_EXPRESSION_MATCHED");
	expect(7, HYPERTEST_STATUS_SKIPPED, "disabled");
	expect(8, HYPERTEST_STATUS_FAILED, "timed out");
}
END_TEST

START_TEST(doctor_and_image)
{
	ck_assert_int_eq(create("{\"buildDir\": \"build\", \"sourceDir\": \"src\"}"), 0);
	struct hypertest_checks c = {0};
	ck_assert_int_eq(((hypertest_OP_DOCTOR_fn)op(HYPERTEST_OP_DOCTOR))(self, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_int_eq(c.status[0], HYPERTEST_CHECK_OK);
	ck_assert_str_eq(c.name[1], "runner.ctest.ctest");
	ck_assert_msg(!strncmp(c.message[1], "ctest 3.", 8), "%s", c.message[1]);
	struct hypertest_layer l = {0};
	ck_assert_int_eq(((hypertest_RUNNER_IMAGE_CONTENT_fn)op(HYPERTEST_RUNNER_IMAGE_CONTENT))(self, &l), 0);
	ck_assert_uint_ge(l.n, 2);
	ck_assert_str_eq(l.dst[0], build); /* at its absolute path */
	for (size_t i = 1; i < l.n; i++)
		ck_assert_msg(!strncmp(l.dst[i], tmp, strlen(tmp)) && strstr(l.dst[i], "/src/") &&
		              !strcmp(l.src[i], l.dst[i]), "%s", l.dst[i]);
	checks_free(&c);
	layer_free(&l);
}
END_TEST

int main(void)
{
	char *cm[] = {"cmake", "--version", NULL}, *ct[] = {"ctest", "--version", NULL};
	if (!runs_ok(cm) || !runs_ok(ct)) {
		fprintf(stderr, "cmake/ctest not found: skipped\n");
		return 77;
	}
	char pattern[] = "/tmp/ht-ctest-XXXXXX", *real;
	if (!mkdtemp(pattern) || !(real = realpath(pattern, NULL))) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(tmp, sizeof tmp, "%s", real);
	free(real);
	snprintf(build, sizeof build, "%s/build", tmp);
	const char *src = getenv("HT_TOP_SRCDIR");
	char srcdir[4096], dst[200];
	snprintf(srcdir, sizeof srcdir, "%s/tests/runners/ctest-project", src && *src ? src : HT_TOP_SRCDIR);
	snprintf(dst, sizeof dst, "%s/src", tmp);
	char *copy[] = {"cp", "-R", srcdir, dst, NULL};
	char *conf[] = {"cmake", "-S", dst, "-B", build, NULL};
	char *make[] = {"cmake", "--build", build, NULL};
	if (!runs_ok(copy) || !runs_ok(conf) || !runs_ok(make)) {
		fprintf(stderr, "cannot configure and build %s in %s\n", srcdir, build);
		rm_tree(tmp);
		return 1;
	}
	Suite *s = suite_create("runner-ctest");
	TCase *t = tcase_create("ctest");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, options);
	tcase_add_test(t, listing);
	tcase_add_test(t, statuses);
	tcase_add_test(t, doctor_and_image);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(tmp);
	return failed ? 1 : 0;
}
