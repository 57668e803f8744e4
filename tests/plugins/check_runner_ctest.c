/*
 * check_runner_ctest.c - the "ctest" runner plugin with the real CMake/CTest
 * on tests/projects/ctest-project (configured and built into a temporary
 * directory): options, listing, every status mapping with its message, the
 * regex escaping, doctor and image content; a relative build directory
 * with the function's project directory elsewhere, a read-only build tree
 * (under bwrap --ro-bind, as in an image) and a build tree left as it was.
 * Skipped (77) without cmake.
 * The module is $HT_TOP_BUILDDIR/plugins/.libs/runner-ctest.so (or
 * $HT_RUNNER_CTEST_MODULE).
 */
#include "runners-core.h"

#include <errno.h>
#include <sys/stat.h>

static hypertest_core core;
static char tmp[64], build[128], source[4096], start_dir[4096];
static void *module, *self;

static void setup(void)
{
	const char *m = getenv("HT_RUNNER_CTEST_MODULE"), *src = getenv("HT_TOP_SRCDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/plugins/.libs/runner-ctest.so", HT_TOP_BUILDDIR);
	snprintf(source, sizeof source, "%s/tests/projects/ctest-project", src && *src ? src : HT_TOP_SRCDIR);
	memset(&core, 0, sizeof core);
	core.project_dir = tmp;
	ck_assert_ptr_nonnull(getcwd(start_dir, sizeof start_dir));
	module = fake_load(m && *m ? m : path, &core, fake_upcalls(NULL), HYPERTEST_KIND_RUNNER, NULL);
	self = NULL;
}

static void teardown(void)
{
	if (self)
		OP(HYPERTEST_OP_DESTROY)(self);
	dlclose(module);
	fake_reg.ops = NULL;
	ck_assert_int_eq(chdir(start_dir), 0);
}

static int create(const char *opts)
{
	return OP(HYPERTEST_OP_CREATE)(&core, opts, &self);
}

START_TEST(options)
{
	void *s = (void *)1;
	ck_assert_int_eq(OP(HYPERTEST_OP_CREATE)(&core, "{}", &s), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': option 'buildDir' is required");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"buildDri\": 1}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': unknown option 'buildDri' (did you mean 'buildDir'?)");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"args\": [\"-C\", 2]}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': option 'args': element 2 is not a string");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"sourceDir\": \"/src\"}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(core.error, "runner 'ctest': option 'sourceDir': '/src' must be relative to the project directory");
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"sourceDir\": \"src\"}"), 0);
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "src");
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(create("{\"buildDir\": \"b\"}"), 0);
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "tests");
}
END_TEST

static const char *const names[] = {"passes", "fails", "math.add(1+1)", "mathXadd11",
                                    "chars [a-z]*?|^$\\{}", "skipped_by_code", "skipped_by_regex",
                                    "disabled", "times_out", NULL};

START_TEST(listing)
{
	struct hypertest_list l = {0};
	ck_assert_int_eq(create("{\"buildDir\": \"build\", \"sourceDir\": \"src\"}"), 0);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), 0);
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
	snprintf(art, sizeof art, "%s/art%d-%d", tmp, (int)getpid(), n++); /* a fork per test */
	ck_assert_int_eq(mkdir(art, 0755), 0);
	json_t *o = json_pack("{s:s,s:I,s:s}", "name", names[index], "index", (json_int_t)index + 1,
	                      "buildDir", build);
	ctx = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_RUN_TEST)(self, ctx, art, &r), 0);
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
	/* ctest ran in a directory of the artifacts, not in the build tree */
	snprintf(p, sizeof p, "%s/ctest/Testing/Temporary/LastTest.log", art);
	ck_assert_msg(stat(p, &st) == 0, "%s: %s", p, strerror(errno));
	fake_result_free(&r);
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
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_int_eq(c.status[0], HYPERTEST_CHECK_OK);
	ck_assert_str_eq(c.name[1], "runner.ctest.ctest");
	ck_assert_msg(!strncmp(c.msg[1], "ctest 3.", 8), "%s", c.msg[1]);
	struct hypertest_layer l = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_IMAGE_CONTENT)(self, &l), 0);
	ck_assert_uint_ge(l.n, 2);
	ck_assert_str_eq(l.dst[0], build); /* at its absolute path */
	for (size_t i = 1; i < l.n; i++)
		ck_assert_msg(!strncmp(l.dst[i], tmp, strlen(tmp)) && strstr(l.dst[i], "/src/") &&
		              !strcmp(l.src[i], l.dst[i]), "%s", l.dst[i]);
	fake_layer_free(&l);
}
END_TEST

/* The function side: its project directory is another one (the image's
 * task root, without the build tree), the current directory a third; the
 * context names the build tree at its absolute path. */
START_TEST(relative_build_dir_elsewhere)
{
	char task[128];
	snprintf(task, sizeof task, "%s/task", tmp);
	ck_assert_int_eq(mkdir(task, 0755), 0);
	core.project_dir = task;
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(create("{\"buildDir\": \"build\", \"sourceDir\": \"src\"}"), 0);
	expect(0, HYPERTEST_STATUS_SUCCESS, NULL);
	expect(1, HYPERTEST_STATUS_FAILED, "checking 2 + 2 == 5\nFAILED: 2 + 2 is 4, not 5");
	rmdir(task);
}
END_TEST

/* A relative project directory: the contexts still name the absolute,
 * resolved build tree (where IMAGE_CONTENT puts it). */
START_TEST(relative_project_dir)
{
	struct hypertest_list l = {0};
	ck_assert_int_eq(chdir(tmp), 0);
	core.project_dir = ".";
	ck_assert_int_eq(create("{\"buildDir\": \"src/../build\", \"sourceDir\": \"src\"}"), 0);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), 0);
	ck_assert_uint_eq(l.n, 9);
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = json_loads(l.items[i], 0, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(o, "buildDir")), build);
		json_decref(o);
		free(l.items[i]);
	}
	OP(HYPERTEST_OP_DESTROY)(self);
	self = NULL;
	ck_assert_int_eq(create("{\"buildDir\": \"nothing-here\"}"), 0);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), HYPERTEST_ERR_NOT_FOUND);
	char want[256];
	snprintf(want, sizeof want, "runner 'ctest': option 'buildDir': '%s/nothing-here': No such file or directory", tmp);
	ck_assert_str_eq(core.error, want);
}
END_TEST

/* A read-only build tree, as in a function image: ctest run through bwrap
 * with the build tree bound read-only (root writes through chmod). */
START_TEST(read_only_build_tree)
{
	char *probe[] = {"bwrap", "--bind", "/", "/", "--ro-bind", build, build, "--dev", "/dev",
	                 "--", "true", NULL};
	if (!runs_ok(probe)) {
		fprintf(stderr, "read_only_build_tree: bwrap cannot make a sandbox here: skipped\n");
		return;
	}
	char script[256], opts[512], *err = NULL;
	snprintf(script, sizeof script, "%s/ro-ctest", tmp);
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\nexec bwrap --bind / / --ro-bind '%s' '%s' --dev /dev -- ctest \"$@\"\n",
	        build, build);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(script, 0755), 0);
	/* the sandbox really is read-only */
	char probe_file[200];
	snprintf(probe_file, sizeof probe_file, "%s/probe", build);
	char *touch[] = {"bwrap", "--bind", "/", "/", "--ro-bind", build, build, "--dev", "/dev",
	                 "--", "touch", probe_file, NULL};
	ck_assert(!runs_ok(touch));
	ck_assert_int_eq(asprintf(&err, "{\"buildDir\": \"build\", \"sourceDir\": \"src\", \"ctest\": \"%s\"}", script), (int)strlen(err));
	strcpy(opts, err);
	free(err);
	ck_assert_int_eq(create(opts), 0);
	struct hypertest_list l = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), 0);
	ck_assert_uint_eq(l.n, 9);
	for (size_t i = 0; i < l.n; i++)
		free(l.items[i]);
	expect(0, HYPERTEST_STATUS_SUCCESS, NULL);
	expect(3, HYPERTEST_STATUS_FAILED, "checking 1 + 1 == 3\nFAILED: 1 + 1 is 2, not 3");
	expect(8, HYPERTEST_STATUS_FAILED, "timed out");
	unlink(script);
}
END_TEST

/* A build directory whose path has CMake's special characters: the
 * stand-in CTestTestfile.cmake names it literally (a symbolic link to the
 * build tree, whose test commands are absolute paths).  A backslash CMake
 * takes for a separator: refused with a message. */
START_TEST(odd_build_path)
{
	char odd[sizeof build], saved[sizeof build];
	snprintf(odd, sizeof odd, "%s/o]=]dd ]]${x};\"y'[==[#", tmp);
	ck_assert_int_eq(symlink(build, odd), 0);
	memcpy(saved, build, sizeof build);
	memcpy(build, odd, sizeof build);
	ck_assert_int_eq(create("{\"buildDir\": \"elsewhere\", \"sourceDir\": \"src\"}"), 0);
	expect(2, HYPERTEST_STATUS_SUCCESS, NULL);
	expect(1, HYPERTEST_STATUS_FAILED, "checking 2 + 2 == 5\nFAILED: 2 + 2 is 4, not 5");
	unlink(odd);

	struct hypertest_result r;
	memset(&r, 0, sizeof r);
	char ctx[256], want[512];
	snprintf(odd, sizeof odd, "%s/back\\slash", tmp);
	ck_assert_int_eq(symlink(saved, odd), 0);
	snprintf(ctx, sizeof ctx, "{\"name\": \"passes\", \"index\": 1, \"buildDir\": \"%s/back\\\\slash\"}", tmp);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_RUN_TEST)(self, ctx, tmp, &r),
	                 HYPERTEST_ERR_CONFIG);
	snprintf(want, sizeof want, "runner 'ctest': build directory '%s': CMake reads a backslash in a "
	         "path as a directory separator", odd);
	ck_assert_str_eq(core.error, want);
	fake_result_free(&r);
	unlink(odd);
	memcpy(build, saved, sizeof build);
}
END_TEST

/* A project with tests in subdirectories: the listing numbers them as ctest
 * does in the build directory itself (ctest -N there), and a test runs in
 * its own directory of the build tree (cmake -E cat of a relative path). */
START_TEST(nested_numbering)
{
	char dir[128], path[256], bdir[160];
	snprintf(dir, sizeof dir, "%s/nested", tmp);
	snprintf(bdir, sizeof bdir, "%s/b", dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/sub", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	static const char *const files[][2] = {
		{"CMakeLists.txt", "cmake_minimum_required(VERSION 3.19)\nproject(nested NONE)\n"
		                   "enable_testing()\nadd_test(NAME first COMMAND ${CMAKE_COMMAND} -E true)\n"
		                   "add_subdirectory(sub)\n"
		                   "add_test(NAME last COMMAND ${CMAKE_COMMAND} -E true)\n"},
		{"sub/CMakeLists.txt", "file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/marker here)\n"
		                       "add_test(NAME in_sub COMMAND ${CMAKE_COMMAND} -E cat marker)\n"}};
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
		FILE *f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fputs(files[i][1], f);
		ck_assert_int_eq(fclose(f), 0);
	}
	char *conf[] = {"cmake", "-S", dir, "-B", bdir, NULL};
	ck_assert(runs_ok(conf));
	/* ctest's own numbering, in the build directory */
	char out[256], line[512], own[4][64] = {{0}};
	snprintf(out, sizeof out, "%s/ctest-N.txt", dir);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || chdir(bdir) != 0)
			_exit(126);
		execlp("ctest", "ctest", "-N", (char *)NULL);
		_exit(127);
	}
	int st;
	ck_assert(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	FILE *p = fopen(out, "r");
	ck_assert_ptr_nonnull(p);
	int n_own = 0, num;
	char name[64];
	while (fgets(line, sizeof line, p))
		if (sscanf(line, " Test #%d: %63s", &num, name) == 2 && num >= 1 && num <= 3)
			snprintf(own[num], sizeof own[num], "%s", name), n_own++;
	fclose(p);
	ck_assert_int_eq(n_own, 3);

	core.project_dir = dir;
	ck_assert_int_eq(create("{\"buildDir\": \"b\", \"sourceDir\": \".\", \"testDir\": \"sub\"}"), 0);
	struct hypertest_list l = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), 0);
	ck_assert_uint_eq(l.n, 3);
	char *in_sub = NULL;
	for (size_t i = 0; i < l.n; i++) {
		json_t *o = json_loads(l.items[i], 0, NULL);
		const char *nm = json_string_value(json_object_get(o, "name"));
		json_int_t idx = json_integer_value(json_object_get(o, "index"));
		ck_assert_int_ge(idx, 1);
		ck_assert_int_le(idx, 3);
		ck_assert_str_eq(nm, own[idx]);
		if (!strcmp(nm, "in_sub"))
			in_sub = l.items[i];
		else
			free(l.items[i]);
		json_decref(o);
	}
	ck_assert_ptr_nonnull(in_sub);
	struct hypertest_result r;
	memset(&r, 0, sizeof r);
	snprintf(path, sizeof path, "%s/art", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_RUN_TEST)(self, in_sub, path, &r), 0);
	ck_assert_msg(r.status == HYPERTEST_STATUS_SUCCESS, "in_sub: %d %s", r.status, r.message);
	fake_result_free(&r);
	free(in_sub);
}
END_TEST

/* Every entry of the build tree: path, type, size, modification time. */
static char snapshot_buf[1 << 20];
static size_t snapshot_len;
static int snap_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)flag, (void)ftw;
	int n = snprintf(snapshot_buf + snapshot_len, sizeof snapshot_buf - snapshot_len,
	                 "%s %o %lld %lld.%09ld\n", p, (unsigned)sb->st_mode, (long long)sb->st_size,
	                 (long long)sb->st_mtim.tv_sec, sb->st_mtim.tv_nsec);
	ck_assert(n > 0 && (size_t)n < sizeof snapshot_buf - snapshot_len);
	snapshot_len += (size_t)n;
	return 0;
}
static char *snapshot(const char *dir)
{
	snapshot_len = 0;
	ck_assert_int_eq(nftw(dir, snap_entry, 16, FTW_PHYS), 0);
	return strdup(snapshot_buf);
}

/* Listing and running leave the user's build tree as it was (no
 * Testing/Temporary/LastTest.log written there): the drift check hashes it. */
START_TEST(build_tree_untouched)
{
	char *before = snapshot(build);
	ck_assert_int_eq(create("{\"buildDir\": \"build\", \"sourceDir\": \"src\"}"), 0);
	struct hypertest_list l = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), 0);
	for (size_t i = 0; i < l.n; i++)
		free(l.items[i]);
	expect(0, HYPERTEST_STATUS_SUCCESS, NULL);
	expect(1, HYPERTEST_STATUS_FAILED, "checking 2 + 2 == 5\nFAILED: 2 + 2 is 4, not 5");
	char *after = snapshot(build);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
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
	snprintf(srcdir, sizeof srcdir, "%s/tests/projects/ctest-project", src && *src ? src : HT_TOP_SRCDIR);
	snprintf(dst, sizeof dst, "%s/src", tmp);
	char *copy[] = {"cp", "-R", srcdir, dst, NULL};
	char *conf[] = {"cmake", "-S", dst, "-B", build, NULL};
	char *make[] = {"cmake", "--build", build, NULL};
	if (!runs_ok(copy) || !runs_ok(conf) || !runs_ok(make)) {
		fprintf(stderr, "cannot configure and build %s in %s\n", srcdir, build);
		fake_rm_tree(tmp);
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
	tcase_add_test(t, relative_build_dir_elsewhere);
	tcase_add_test(t, relative_project_dir);
	tcase_add_test(t, read_only_build_tree);
	tcase_add_test(t, build_tree_untouched);
	tcase_add_test(t, odd_build_path);
	tcase_add_test(t, nested_numbering);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	fake_rm_tree(tmp);
	return failed ? 1 : 0;
}
