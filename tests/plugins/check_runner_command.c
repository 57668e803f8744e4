/*
 * check_runner_command.c - tests of the "command" runner plugin, loaded as
 * the core loads it (dlopen, descriptor, init with an upcall table), with
 * the small stand-in for the core of fake-core.c.  Test programs:
 * argv-dump and runner-command-helper (found in $HT_TESTS_BUILDDIR/lib); the
 * module is $HT_RUNNER_COMMAND_MODULE or
 * $HT_TOP_BUILDDIR/plugins/.libs/runner-command.so.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

/* ---- the upcalls: fake-core.c's, and these ------------------------------------- */

/* The command runner reports no stack traces. */
static void up_result_set_str(hypertest_result *r, int field, const char *value)
{
	ck_assert_int_ne(field, HYPERTEST_RESULT_STACK_TRACE);
	fake_up_result_set_str(r, field, value);
}

static const hypertest_dispatch upcalls[] = {
	{HYPERTEST_UP_RESULT_SET_STR, (hypertest_fn)up_result_set_str},
	{9999, (hypertest_fn)fake_up_log}, /* an upcall of a newer core: ignored */
	{0, NULL}};

/* ---- fixture ------------------------------------------------------------------------- */

static void *module;
static hypertest_core core;
static char base[64], project[128], root[128], helper[4096], argv_dump[4096];
static char artifacts[256];
static int artifacts_n;

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			cap = (n + 65536 + 1) * 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
		size_t got = fread(buf + n, 1, 65536, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *artifact(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", artifacts, name);
	return read_file(path, len);
}

static void setup(void)
{
	char modpath[4096], buf[4096];
	if (getenv("HT_RUNNER_COMMAND_MODULE") && *getenv("HT_RUNNER_COMMAND_MODULE"))
		snprintf(modpath, sizeof modpath, "%s", getenv("HT_RUNNER_COMMAND_MODULE"));
	else
		snprintf(modpath, sizeof modpath, "%s/plugins/.libs/runner-command.so",
		         env_or("HT_TOP_BUILDDIR", HT_TOP_BUILDDIR));
	const char *bin = env_or("HT_TESTS_BUILDDIR", HT_TESTS_BUILDDIR);
	snprintf(helper, sizeof helper, "%s/lib/runner-command-helper", bin);
	snprintf(argv_dump, sizeof argv_dump, "%s/lib/argv-dump", bin);
	ck_assert_msg(access(helper, X_OK) == 0, "%s: %s", helper, strerror(errno));

	snprintf(base, sizeof base, "/tmp/ht-runner-command-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	snprintf(project, sizeof project, "%s/project", base);
	snprintf(root, sizeof root, "%s/root", base);
	snprintf(buf, sizeof buf, "%s/tests", project);
	ck_assert_int_eq(mkdir(project, 0755) | mkdir(buf, 0755), 0);
	snprintf(buf, sizeof buf, "%s/tests", root);
	ck_assert_int_eq(mkdir(root, 0755) | mkdir(buf, 0755), 0);
	ck_assert_int_eq(chdir(root), 0); /* the function's working directory */

	memset(&core, 0, sizeof core);
	core.project_dir = project;
	module = fake_load(modpath, &core, fake_upcalls(upcalls), 0, NULL);
}

static void teardown(void)
{
	if (chdir("/") == 0 && base[0])
		fake_rm_tree(base);
	if (module)
		dlclose(module);
	module = NULL;
}

/* ---- calling the plugin ------------------------------------------------------------- */

/* Options from a jansson pack format. */
static char *options(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_error_t err;
	json_t *o = json_vpack_ex(&err, 0, fmt, ap);
	va_end(ap);
	ck_assert_msg(o != NULL, "pack: %s", err.text);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static void *create(char *opts)
{
	void *self = NULL;
	int rc = OP(HYPERTEST_OP_CREATE)(&core, opts, &self);
	ck_assert_msg(rc == 0, "create(%s) = %d: %s", opts, rc, core.error);
	ck_assert_ptr_nonnull(self);
	free(opts);
	return self;
}

static void destroy(void *self)
{
	OP(HYPERTEST_OP_DESTROY)(self);
}

/* Run the test whose context is given, in a fresh artifacts directory. */
static int run_context(void *self, const char *context, hypertest_result *res)
{
	snprintf(artifacts, sizeof artifacts, "%s/artifacts-%d", base, ++artifacts_n);
	ck_assert_int_eq(mkdir(artifacts, 0755), 0);
	memset(res, 0, sizeof *res);
	return OP(HYPERTEST_RUNNER_RUN_TEST)(self, context, artifacts, res);
}

static void run_id(void *self, const char *id, hypertest_result *res)
{
	json_t *ctx = json_pack("{s:s}", "id", id);
	char *text = json_dumps(ctx, JSON_COMPACT);
	json_decref(ctx);
	int rc = run_context(self, text, res);
	ck_assert_msg(rc == 0, "run_test(%s) = %d: %s", text, rc, core.error);
	free(text);
	ck_assert(res->has_status);
	ck_assert(res->has_duration);
	ck_assert_int_ge(res->duration, 0);
	ck_assert_str_eq(res->name, id);
}

/* Run one test with the given run argv (NULL-terminated) and extra options. */
static void run_argv(hypertest_result *res, const char *id, json_t *extra, ...)
{
	va_list ap;
	json_t *run = json_array();
	va_start(ap, extra);
	for (const char *a; (a = va_arg(ap, const char *));)
		ck_assert_int_eq(json_array_append_new(run, json_string(a)), 0);
	va_end(ap);
	json_t *o = extra ? extra : json_object();
	json_object_set_new(o, "run", run);
	json_object_set_new(o, "tests", json_pack("[s]", id));
	void *self = create(json_dumps(o, JSON_COMPACT));
	json_decref(o);
	run_id(self, id, res);
	destroy(self);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t read_pid(const char *path)
{
	char *s = read_file(path, NULL);
	pid_t pid = (pid_t)atol(s);
	free(s);
	ck_assert_int_gt(pid, 1);
	return pid;
}

/* Reap pid (we are a subreaper), waiting at most ms; returns its status or -1. */
static int reap_within(pid_t pid, int ms)
{
	int status;
	for (int64_t end = now_ms() + ms; now_ms() < end; usleep(10000))
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
	return -1;
}

/* ---- module and options --------------------------------------------------------------- */

START_TEST(t_descriptor)
{
	const hypertest_plugin_descriptor *d = dlsym(module, "hypertest_plugin_info");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->magic, HYPERTEST_PLUGIN_MAGIC);
	ck_assert_uint_eq(d->abi_major, HYPERTEST_PLUGIN_ABI_MAJOR);
	ck_assert_uint_eq(d->abi_minor, HYPERTEST_PLUGIN_ABI_MINOR);
	ck_assert_str_eq(d->module, "runner-command");
	ck_assert_int_eq(fake_reg.kind, HYPERTEST_KIND_RUNNER);
	ck_assert_str_eq(fake_reg.name, "command");
	const int ids[] = {HYPERTEST_OP_CREATE, HYPERTEST_OP_DESTROY, HYPERTEST_OP_DOCTOR,
	                   HYPERTEST_RUNNER_LIST_TESTS, HYPERTEST_RUNNER_TEST_DIR,
	                   HYPERTEST_RUNNER_IMAGE_CONTENT, HYPERTEST_RUNNER_RUN_TEST};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		ck_assert_ptr_nonnull(fake_op(ids[i]));
	/* only the two entry points are exported */
	ck_assert_ptr_null(dlsym(module, "htp_spawn_run"));
}
END_TEST

START_TEST(t_init_needs_upcalls)
{
	hypertest_plugin_init_fn init = (hypertest_plugin_init_fn)dlsym(module, "hypertest_plugin_init");
	const hypertest_dispatch none[] = {{HYPERTEST_UP_LOG, (hypertest_fn)fake_up_log}, {0, NULL}};
	fake_reg.registrations = 0;
	ck_assert_int_ne(init(&core, none), 0);
	ck_assert_int_eq(fake_reg.registrations, 0);
}
END_TEST

static const struct {
	const char *json, *message;
} bad_options[] = {
	{"[]", "runner 'command': options: expected an object"},
	{"{", "runner 'command': invalid options (line 1"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\"],\"run\":[\"y\"]}", "invalid options"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\"],\"rnu\":1}",
	 "runner 'command': unknown option 'rnu' (did you mean 'run'?)"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\"],\"testdir\":\"t\"}", "(did you mean 'testDir'?)"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\"],\"zzzzzzzzz\":1}",
	 "unknown option 'zzzzzzzzz' (known: testDir, list,"},
	{"{\"tests\":[\"a\"]}", "option 'run' (the command that runs one test) is required"},
	{"{\"tests\":[\"a\"],\"run\":\"x\"}", "runner 'command': option 'run': expected an array of strings"},
	{"{\"tests\":[\"a\"],\"run\":[]}", "option 'run': expected a non-empty array of strings"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\",1]}", "option 'run': expected an array of strings (element 2"},
	{"{\"tests\":[\"a\"],\"run\":[\"\"]}", "option 'run': the program (element 1) is empty"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\",\"{foo}\"]}",
	 "option 'run': element 2 ('{foo}'): unknown placeholder '{foo}'"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\",\"a{b\"]}", "unknown placeholder '{b'"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\",\"{ID}\"]}", "unknown placeholder '{ID}'"},
	{"{\"tests\":[\"a\"],\"run\":[\"x\",\"a}b\"]}", "option 'run': element 2 ('a}b'): a single '}'"},
	{"{\"run\":[\"x\"]}", "option 'list' (a command that prints the test ids) or 'tests'"},
	{"{\"run\":[\"x\"],\"list\":[\"l\"],\"tests\":[\"a\"]}", "options 'list' and 'tests' exclude"},
	{"{\"run\":[\"x\"],\"tests\":\"a\"}", "option 'tests': expected an array of strings"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\",\"\"]}", "option 'tests': element 2 is empty"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\",\"b\",\"a\"]}", "option 'tests': element 3 repeats 'a'"},
	{"{\"run\":[\"x\"],\"list\":\"l\"}", "option 'list': expected an array of strings"},
	{"{\"run\":[\"x\"],\"list\":[\"l\",\"{id}\"]}",
	 "option 'list': element 2 ('{id}'): placeholder '{id}' is not available here"},
	{"{\"run\":[\"x\"],\"list\":[\"l\",\"{artifactsDir}\"]}", "placeholder '{artifactsDir}' is not"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"skipExitCode\":256}",
	 "option 'skipExitCode': expected an integer from 1 to 255"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"skipExitCode\":0}", "option 'skipExitCode': expected"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"skipExitCode\":\"77\"}", "option 'skipExitCode': expected"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"skipExitCode\":7.5}", "option 'skipExitCode': expected"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"testDir\":5}", "option 'testDir': expected a string"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"testDir\":\"/abs\"}",
	 "option 'testDir': the test directory '/abs' must be relative"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"testDir\":\"\"}", "option 'testDir': the test directory is empty"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"testDir\":\"a/../../b\"}", "must not contain '..'"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"env\":[]}", "option 'env': expected an object of strings"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"env\":{\"A\":1}}", "option 'env': variable 'A': expected a string"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"env\":{\"A=B\":\"x\"}}", "option 'env': invalid variable name 'A=B'"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"env\":{\"\":\"x\"}}", "option 'env': invalid variable name ''"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"messageBytes\":-1}", "option 'messageBytes': expected an integer from 0"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"outputLimitBytes\":\"big\"}", "option 'outputLimitBytes': expected an integer"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"include\":\"x\"}", "option 'include': expected an array of strings"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"include\":[\"/etc\"]}", "option 'include': path '/etc' must be relative"},
	{"{\"run\":[\"x\"],\"tests\":[\"a\"],\"include\":[\"x/../../y\"]}", "option 'include': path 'x/../../y' must not contain '..'"},
};

START_TEST(t_bad_options)
{
	const char *json = bad_options[_i].json;
	void *self = (void *)1;
	core.errors = 0;
	int rc = OP(HYPERTEST_OP_CREATE)(&core, json, &self);
	ck_assert_msg(rc == HYPERTEST_ERR_CONFIG, "%s: rc %d", json, rc);
	ck_assert_ptr_null(self);
	ck_assert_int_eq(core.errors, 1);
	ck_assert_int_eq(core.error_code, HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(core.error, bad_options[_i].message) != NULL, "%s: got \"%s\"", json,
	              core.error);
}
END_TEST

START_TEST(t_good_options)
{
	void *self = create(options("{s:[s], s:[s,s], s:s, s:i, s:{s:s}, s:i, s:i, s:[s]}", "run",
	                            "x", "tests", "a", "b", "testDir", "spec/unit/", "skipExitCode",
	                            5, "env", "A", "b", "messageBytes", 0, "outputLimitBytes", 0,
	                            "include", "extra"));
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "spec/unit");
	destroy(self);
	self = create(options("{s:[s], s:[s]}", "run", "x", "list", "l"));
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "tests");
	destroy(self);
	/* no options at all: run is required */
	void *none = NULL;
	ck_assert_int_eq(OP(HYPERTEST_OP_CREATE)(&core, NULL, &none), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(core.error, "option 'list'"));
}
END_TEST

/* ---- listing ------------------------------------------------------------------------------ */

START_TEST(t_list_command)
{
	static const char ids[] = "alpha\r\nbeta\n\n gamma delta\n\r\n\xc3\xbcn\xc3\xaf\nlast";
	char path[512];
	snprintf(path, sizeof path, "%s/tests/ids.txt", project); /* only in the project */
	write_file(path, ids, sizeof ids - 1, 0644);
	void *self = create(options("{s:[s], s:[s,s,s]}", "run", "x", "list", helper, "cat",
	                            "{testDir}/ids.txt"));
	hypertest_list list = {0};
	int rc = OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &list);
	ck_assert_msg(rc == 0, "%s", core.error);
	ck_assert_uint_eq(list.n, 5);
	ck_assert_str_eq(list.items[0], "{\"id\":\"alpha\"}");
	ck_assert_str_eq(list.items[1], "{\"id\":\"beta\"}");
	ck_assert_str_eq(list.items[2], "{\"id\":\" gamma delta\"}");
	ck_assert_str_eq(list.items[3], "{\"id\":\"\xc3\xbcn\xc3\xaf\"}");
	ck_assert_str_eq(list.items[4], "{\"id\":\"last\"}");
	fake_list_free(&list);
	destroy(self);
}
END_TEST

START_TEST(t_list_fixed)
{
	const char *ids[] = {"a b", "x\ny", "\"q\" 'r'", "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\x89"};
	void *self = create(options("{s:[s], s:[s,s,s,s]}", "run", "x", "tests", ids[0], ids[1],
	                            ids[2], ids[3]));
	hypertest_list list = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &list), 0);
	ck_assert_uint_eq(list.n, 4);
	ck_assert_str_eq(list.items[0], "{\"id\":\"a b\"}");
	ck_assert_str_eq(list.items[1], "{\"id\":\"x\\ny\"}");
	for (size_t i = 0; i < 4; i++) {
		json_t *ctx = json_loads(list.items[i], 0, NULL);
		ck_assert_ptr_nonnull(ctx);
		ck_assert_uint_eq(json_object_size(ctx), 1);
		ck_assert_str_eq(json_string_value(json_object_get(ctx, "id")), ids[i]);
		json_decref(ctx);
	}
	fake_list_free(&list);
	destroy(self);
}
END_TEST

static void expect_list_error(void *self, int code, const char *part1, const char *part2)
{
	hypertest_list list = {0};
	core.errors = 0;
	int rc = OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &list);
	ck_assert_msg(rc == code, "rc %d, error %s", rc, core.error);
	ck_assert_int_eq(core.error_code, code);
	ck_assert_uint_eq(list.n, 0);
	ck_assert_msg(strstr(core.error, part1) != NULL, "\"%s\" lacks \"%s\"", core.error, part1);
	if (part2)
		ck_assert_msg(strstr(core.error, part2) != NULL, "\"%s\" lacks \"%s\"", core.error,
		              part2);
	destroy(self);
}

START_TEST(t_list_failures)
{
	char path[512], expect[8192];
	snprintf(expect, sizeof expect, "list command '%s' failed: exited with status 3: boom", helper);
	expect_list_error(create(options("{s:[s], s:[s,s,s,s]}", "run", "x", "list", helper, "exit",
	                                 "3", "boom\n")),
	                  HYPERTEST_ERR_RUNNER, expect, NULL);
	expect_list_error(create(options("{s:[s], s:[s]}", "run", "x", "list",
	                                 "no-such-program-hypertest")),
	                  HYPERTEST_ERR_RUNNER,
	                  "cannot run 'no-such-program-hypertest': No such file or directory", NULL);
	expect_list_error(create(options("{s:[s], s:[s,s,s]}", "run", "x", "list", helper, "segv",
	                                 "crashing\n")),
	                  HYPERTEST_ERR_RUNNER, "killed by signal SIGSEGV: crashing", NULL);
	expect_list_error(create(options("{s:[s], s:[s,s,s]}", "run", "x", "list", helper, "exit",
	                                 "0")),
	                  HYPERTEST_ERR_EMPTY, "printed no test ids", NULL);
	snprintf(path, sizeof path, "%s/blank.txt", project);
	write_file(path, "\n\r\n\n", 4, 0644);
	expect_list_error(create(options("{s:[s], s:[s,s,s]}", "run", "x", "list", helper, "cat",
	                                 "blank.txt")),
	                  HYPERTEST_ERR_EMPTY, "printed no test ids", NULL);
	snprintf(path, sizeof path, "%s/bad.txt", project);
	write_file(path, "ok\nbad \xff\n", 9, 0644);
	expect_list_error(create(options("{s:[s], s:[s,s,s]}", "run", "x", "list", helper, "cat",
	                                 "bad.txt")),
	                  HYPERTEST_ERR_RUNNER, "line 2 is not valid UTF-8", NULL);
	snprintf(path, sizeof path, "%s/nul.txt", project);
	write_file(path, "ok\nn\0l\n", 7, 0644);
	expect_list_error(create(options("{s:[s], s:[s,s,s]}", "run", "x", "list", helper, "cat",
	                                 "nul.txt")),
	                  HYPERTEST_ERR_RUNNER, "line 2 contains a NUL byte", NULL);
	expect_list_error(create(options("{s:[s], s:[]}", "run", "x", "tests")), HYPERTEST_ERR_EMPTY,
	                  "option 'tests' lists no test", NULL);
}
END_TEST

/* ---- running ------------------------------------------------------------------------------- */

START_TEST(t_run_pass)
{
	hypertest_result res;
	run_argv(&res, "suite one", NULL, helper, "exit", "0", "err text", "out text", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	ck_assert_str_eq(res.file_path, "tests");
	ck_assert_ptr_null(res.message);
	char *out = artifact("stdout.log", NULL), *err = artifact("stderr.log", NULL);
	ck_assert_str_eq(out, "out text");
	ck_assert_str_eq(err, "err text");
	free(out);
	free(err);
	fake_result_free(&res);
}
END_TEST

START_TEST(t_run_duration)
{
	hypertest_result res;
	run_argv(&res, "slow", NULL, helper, "sleep-ms", "300", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	ck_assert_int_ge(res.duration, 300);
	ck_assert_int_lt(res.duration, 5000);
	fake_result_free(&res);
}
END_TEST

START_TEST(t_run_file_path)
{
	write_file("tests/a_test.sh", "", 0, 0644); /* relative to the working directory */
	hypertest_result res;
	run_argv(&res, "tests/a_test.sh", NULL, helper, "exit", "0", NULL);
	ck_assert_str_eq(res.file_path, "tests/a_test.sh");
	fake_result_free(&res);
	run_argv(&res, "tests/none.sh", json_pack("{s:s}", "testDir", "spec"), helper, "exit", "1",
	         NULL);
	ck_assert_str_eq(res.file_path, "spec");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_run_fail)
{
	hypertest_result res;
	run_argv(&res, "t", NULL, helper, "exit", "1", "line1\nline2\n", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.message, "line1\nline2");
	ck_assert_str_eq(res.file_path, "tests");
	fake_result_free(&res);
	run_argv(&res, "t", NULL, helper, "exit", "2", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.message, "exited with status 2");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_run_skip)
{
	hypertest_result res;
	run_argv(&res, "t", NULL, helper, "exit", "77", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SKIPPED);
	fake_result_free(&res);
	run_argv(&res, "t", json_pack("{s:i}", "skipExitCode", 5), helper, "exit", "5", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SKIPPED);
	fake_result_free(&res);
	run_argv(&res, "t", json_pack("{s:i}", "skipExitCode", 5), helper, "exit", "77", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.message, "exited with status 77");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_run_signal)
{
	hypertest_result res;
	run_argv(&res, "t", NULL, helper, "segv", "about to crash\n", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.message, "killed by signal SIGSEGV\nabout to crash");
	fake_result_free(&res);
	run_argv(&res, "t", NULL, helper, "segv", NULL);
	ck_assert_str_eq(res.message, "killed by signal SIGSEGV");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_run_exec_failure)
{
	hypertest_result res;
	run_argv(&res, "t", NULL, "/nonexistent/prog", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.message, "cannot run '/nonexistent/prog': No such file or directory");
	char *err = artifact("stderr.log", NULL);
	ck_assert_str_eq(err, "cannot run '/nonexistent/prog': No such file or directory\n");
	free(err);
	fake_result_free(&res);
	run_argv(&res, "t", NULL, "no-such-program-hypertest", "{id}", NULL);
	ck_assert_str_eq(res.message,
	                 "cannot run 'no-such-program-hypertest': No such file or directory");
	fake_result_free(&res);
	write_file("tests/noexec", "#!/bin/sh\n", 10, 0644);
	run_argv(&res, "t", NULL, "tests/noexec", NULL);
	ck_assert_str_eq(res.message, "cannot run 'tests/noexec': Permission denied");
	fake_result_free(&res);
	write_file("tests/noshebang", "exit 0\n", 7, 0755);
	run_argv(&res, "t", NULL, "./tests/noshebang", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.message, "cannot run './tests/noshebang': Exec format error");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_ids_byte_for_byte)
{
	char pwned[256], pwned2[256], cmd[600], cmd2[600];
	snprintf(pwned, sizeof pwned, "%s/pwned", base);
	snprintf(pwned2, sizeof pwned2, "%s/pwned2", base);
	snprintf(cmd, sizeof cmd, "$(touch %s)", pwned);
	snprintf(cmd2, sizeof cmd2, "`touch %s`;touch %s", pwned2, pwned2);
	const char *ids[] = {cmd, cmd2, "with space", "it's \"quoted\" \\back",
	                     "line1\nline2\r\n", "\xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x8e\x89",
	                     "semi;colon|pipe&amp>redir<in", "*glob?[a]", "-dash", "$HOME ${PATH}",
	                     "{id}"};
	size_t n = sizeof ids / sizeof ids[0];
	json_t *tests = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(tests, json_string(ids[i]));
	void *self = create(options("{s:[s,s,s,s], s:o}", "run", argv_dump, "{artifactsDir}/argv.bin",
	                            "{id}", "<{id}>", "tests", tests));
	/* the contexts LIST_TESTS made are what RUN_TEST gets */
	hypertest_list list = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &list), 0);
	ck_assert_uint_eq(list.n, n);
	for (size_t i = 0; i < n; i++) {
		hypertest_result res;
		ck_assert_int_eq(run_context(self, list.items[i], &res), 0);
		ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
		ck_assert_str_eq(res.name, ids[i]);
		size_t len, idlen = strlen(ids[i]);
		char *got = artifact("argv.bin", &len);
		ck_assert_uint_eq(len, 2 * idlen + 4);
		ck_assert_mem_eq(got, ids[i], idlen + 1);
		ck_assert_int_eq(got[idlen + 1], '<');
		ck_assert_mem_eq(got + idlen + 2, ids[i], idlen);
		ck_assert_mem_eq(got + 2 * idlen + 2, ">", 2);
		free(got);
		fake_result_free(&res);
	}
	ck_assert_int_ne(access(pwned, F_OK), 0);
	ck_assert_int_ne(access(pwned2, F_OK), 0);
	fake_list_free(&list);
	destroy(self);
}
END_TEST

START_TEST(t_placeholders)
{
	hypertest_result res;
	run_argv(&res, "X", json_pack("{s:s}", "testDir", "spec"), argv_dump,
	         "{artifactsDir}/argv.bin", "{{id}}", "{{{id}}}", "a}}b{{c", "{testDir}", "{id}{id}",
	         "{artifactsDir}", "{{}}", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	char expect[1024];
	int n = snprintf(expect, sizeof expect, "{id}%c{X}%ca}b{c%cspec%cXX%c%s%c{}", 0, 0, 0, 0, 0,
	                 artifacts, 0);
	size_t len;
	char *got = artifact("argv.bin", &len);
	ck_assert_uint_eq(len, (size_t)n + 1);
	ck_assert_mem_eq(got, expect, (size_t)n + 1);
	free(got);
	fake_result_free(&res);
}
END_TEST

START_TEST(t_output_flood)
{
	hypertest_result res;
	int64_t start = now_ms();
	run_argv(&res, "t", NULL, helper, "flood", "50000000", "3000000", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	ck_assert_int_lt(now_ms() - start, 60000);
	size_t len;
	char *out = artifact("stdout.log", &len);
	static const char note[] = "\n[output truncated after 16777216 bytes]\n";
	ck_assert_uint_eq(len, 16777216 + sizeof note - 1);
	ck_assert_int_eq(out[0], 'o');
	ck_assert_int_eq(out[16777215], 'o');
	ck_assert_str_eq(out + 16777216, note);
	free(out);
	char *err = artifact("stderr.log", &len);
	ck_assert_uint_eq(len, 3000000);
	ck_assert_int_eq(err[len - 1], 'e');
	free(err);
	fake_result_free(&res);

	/* a small cap on a failing test's stderr: the message is still the real tail */
	run_argv(&res, "t", json_pack("{s:i}", "outputLimitBytes", 1000), helper, "exit", "1",
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "0123456789abcdefghijklmnopqrstuvwxyz" "0123456789abcdefghijklmnopqrstuvwxyz"
	         "THE END",
	         NULL);
	err = artifact("stderr.log", &len);
	ck_assert_uint_eq(len, 1000 + strlen("\n[output truncated after 1000 bytes]\n"));
	ck_assert_str_eq(err + 1000, "\n[output truncated after 1000 bytes]\n");
	free(err);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_uint_eq(strlen(res.message), 1015);
	ck_assert_str_eq(res.message + 1015 - 7, "THE END");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_message_tail)
{
	hypertest_result res;
	char big[10004];
	memset(big, 'e', 10000);
	memcpy(big + 10000, "END", 4);
	run_argv(&res, "t", NULL, helper, "exit", "1", big, NULL);
	ck_assert_uint_eq(strlen(res.message), 4096);
	ck_assert_str_eq(res.message + 4093, "END");
	fake_result_free(&res);
	/* "0123456789éé": the last 3 bytes start inside the first é */
	run_argv(&res, "t", json_pack("{s:i}", "messageBytes", 3), helper, "exit", "1",
	         "0123456789\xc3\xa9\xc3\xa9", NULL);
	ck_assert_str_eq(res.message, "\xc3\xa9");
	fake_result_free(&res);
	/* invalid UTF-8 becomes U+FFFD (JSON options cannot carry it: write a file) */
	write_file("tests/stderr.txt", "bad \xff byte\n", 10, 0644);
	run_argv(&res, "t", NULL, helper, "cat", "tests/stderr.txt", "2", "1", NULL);
	ck_assert_str_eq(res.message, "bad \xef\xbf\xbd byte");
	fake_result_free(&res);
	/* messageBytes 0: no tail, only the status */
	run_argv(&res, "t", json_pack("{s:i}", "messageBytes", 0), helper, "exit", "4", "ignored",
	         NULL);
	ck_assert_str_eq(res.message, "exited with status 4");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_grandchild_killed)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	hypertest_result res;
	int64_t start = now_ms();
	run_argv(&res, "t", NULL, helper, "grandchild", "{artifactsDir}/gpid", NULL);
	ck_assert_int_lt(now_ms() - start, 5000); /* the grandchild sleeps 60 s */
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	char path[512];
	snprintf(path, sizeof path, "%s/gpid", artifacts);
	int status = reap_within(read_pid(path), 5000);
	ck_assert_msg(status != -1, "the grandchild survived");
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	char *out = artifact("stdout.log", NULL);
	ck_assert_str_eq(out, "parent done\n");
	free(out);
	fake_result_free(&res);
}
END_TEST

START_TEST(t_escaped_grandchild_does_not_hang)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	hypertest_result res;
	int64_t start = now_ms();
	run_argv(&res, "t", NULL, helper, "escape", "{artifactsDir}/gpid", NULL);
	ck_assert_int_lt(now_ms() - start, 5000);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	char path[512];
	snprintf(path, sizeof path, "%s/gpid", artifacts);
	pid_t gpid = read_pid(path);
	/* it left the group, so it still runs with the pipe open: the grace period ended the run */
	ck_assert_int_eq(reap_within(gpid, 100), -1);
	kill(gpid, SIGKILL);
	ck_assert_int_ne(reap_within(gpid, 5000), -1);
	fake_result_free(&res);
}
END_TEST

START_TEST(t_dies_with_function)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	char pidfile[256];
	snprintf(pidfile, sizeof pidfile, "%s/test.pid", base);
	void *self = create(options("{s:[s,s,s,s], s:[s]}", "run", helper, "sleep-pid", pidfile,
	                            "60", "tests", "t"));
	pid_t function = fork();
	ck_assert_int_ge(function, 0);
	if (function == 0) {
		hypertest_result res;
		run_context(self, "{\"id\":\"t\"}", &res);
		_exit(0);
	}
	int64_t end = now_ms() + 5000;
	while (access(pidfile, F_OK) != 0 && now_ms() < end)
		usleep(10000);
	pid_t test = read_pid(pidfile);
	ck_assert_int_eq(kill(function, SIGKILL), 0);
	int status;
	ck_assert_int_eq(waitpid(function, &status, 0), function);
	status = reap_within(test, 5000);
	ck_assert_msg(status != -1, "the test outlived the function");
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	destroy(self);
}
END_TEST

START_TEST(t_environment)
{
	signal(SIGPIPE, SIG_IGN); /* the test must not inherit it */
	setenv("HT_RC_INHERITED", "yes", 1);
	setenv("HT_RC_OVERRIDE", "old", 1);
	/* the artifacts directory wins over ours and over the "env" option */
	setenv("HT_TEST_ARTIFACTS_OUTPUT_PATH", "stale", 1);
	hypertest_result res;
	run_argv(&res, "t",
	         json_pack("{s:{s:s,s:s,s:s}}", "env", "HT_RC_VAR", "v a l", "HT_RC_OVERRIDE", "new",
	                   "HT_TEST_ARTIFACTS_OUTPUT_PATH", "option"),
	         helper, "info", "HT_RC_VAR", "HT_RC_INHERITED", "HT_RC_OVERRIDE",
	         "HT_TEST_ARTIFACTS_OUTPUT_PATH", NULL);
	unsetenv("HT_TEST_ARTIFACTS_OUTPUT_PATH");
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	char *out = artifact("stdout.log", NULL), real[PATH_MAX], want[2 * PATH_MAX];
	ck_assert_ptr_nonnull(realpath(artifacts, real));
	snprintf(want, sizeof want,
	         "own_group=1\nstdin=0\nsigpipe=default\nHT_RC_VAR=v a l (1)\n"
	         "HT_RC_INHERITED=yes (1)\nHT_RC_OVERRIDE=new (1)\n"
	         "HT_TEST_ARTIFACTS_OUTPUT_PATH=%s (1)\n",
	         real);
	ck_assert_str_eq(out, want);
	free(out);
	fake_result_free(&res);
}
END_TEST

START_TEST(t_path_lookup)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", helper);
	*strrchr(dir, '/') = '\0';
	hypertest_result res;
	run_argv(&res, "t", json_pack("{s:{s:s}}", "env", "PATH", dir), "runner-command-helper",
	         "exit", "0", NULL);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	fake_result_free(&res);
	run_argv(&res, "t", json_pack("{s:{s:s}}", "env", "PATH", "/nonexistent"),
	         "runner-command-helper", "exit", "0", NULL);
	ck_assert_str_eq(res.message,
	                 "cannot run 'runner-command-helper': No such file or directory");
	fake_result_free(&res);
}
END_TEST

START_TEST(t_bad_context)
{
	void *self = create(options("{s:[s], s:[s]}", "run", helper, "tests", "t"));
	const char *contexts[] = {"not json", "{\"x\":1}", "{\"id\":\"\"}", "{\"id\":5}", "[]"};
	for (size_t i = 0; i < sizeof contexts / sizeof contexts[0]; i++) {
		hypertest_result res;
		core.errors = 0;
		ck_assert_int_eq(run_context(self, contexts[i], &res), HYPERTEST_ERR_INVALID);
		ck_assert_int_eq(core.errors, 1);
		ck_assert_ptr_nonnull(strstr(core.error, "test context"));
		ck_assert(!res.has_status);
	}
	destroy(self);
}
END_TEST

/* ---- image and doctor -------------------------------------------------------------------- */

START_TEST(t_image_content)
{
	char path[512], expect[512];
	snprintf(path, sizeof path, "%s/extra", project);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/file.cfg", project);
	write_file(path, "x", 1, 0644);
	void *self = create(options("{s:[s], s:[s], s:[s,s]}", "run", "x", "tests", "t", "include",
	                            "extra", "file.cfg"));
	hypertest_layer layer = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_IMAGE_CONTENT)(self, &layer), 0);
	ck_assert_uint_eq(layer.n, 3);
	const char *rel[] = {"tests", "extra", "file.cfg"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(expect, sizeof expect, "%s/%s", project, rel[i]);
		ck_assert_str_eq(layer.src[i], expect);
		ck_assert_str_eq(layer.dst[i], rel[i]);
		free(layer.src[i]);
		free(layer.dst[i]);
	}
	destroy(self);

	self = create(options("{s:[s], s:[s], s:[s]}", "run", "x", "tests", "t", "include", "nope"));
	memset(&layer, 0, sizeof layer);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_IMAGE_CONTENT)(self, &layer), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(core.error, "option 'include'"));
	ck_assert_ptr_nonnull(strstr(core.error, "/nope"));
	for (size_t i = 0; i < layer.n; i++) {
		free(layer.src[i]);
		free(layer.dst[i]);
	}
	destroy(self);
}
END_TEST

START_TEST(t_doctor)
{
	void *self = create(options("{s:[s,s], s:[s]}", "run", helper, "{id}", "list", helper));
	hypertest_checks c = {0};
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_str_eq(c.name[0], "runner.command.testDir");
	ck_assert_int_eq(c.status[0], 0);
	ck_assert_str_eq(c.name[1], "runner.command.list");
	ck_assert_int_eq(c.status[1], 0);
	ck_assert_str_eq(c.name[2], "runner.command.run");
	ck_assert_int_eq(c.status[2], 0);
	memset(&c, 0, sizeof c);
	destroy(self);

	/* missing test directory and programs: run may exist in the image, list must exist here */
	self = create(options("{s:[s], s:[s], s:s}", "run", "no-such-program-hypertest", "list",
	                      "./no-such-lister", "testDir", "missing"));
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_uint_eq(c.n, 3);
	ck_assert_int_eq(c.status[0], 2);
	ck_assert_ptr_nonnull(strstr(c.msg[0], "missing"));
	ck_assert_int_eq(c.status[1], 2);
	ck_assert_ptr_nonnull(strstr(c.msg[1], "./no-such-lister"));
	ck_assert_int_eq(c.status[2], 1);
	ck_assert_ptr_nonnull(strstr(c.msg[2], "no-such-program-hypertest"));
	ck_assert_ptr_nonnull(strstr(c.msg[2], "may exist in the image"));
	destroy(self);
}
END_TEST

static Suite *runner_command_suite(void)
{
	Suite *s = suite_create("runner-command");
	TCase *tc = tcase_create("options");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_descriptor);
	tcase_add_test(tc, t_init_needs_upcalls);
	tcase_add_loop_test(tc, t_bad_options, 0, (int)(sizeof bad_options / sizeof bad_options[0]));
	tcase_add_test(tc, t_good_options);
	suite_add_tcase(s, tc);

	tc = tcase_create("list");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_list_command);
	tcase_add_test(tc, t_list_fixed);
	tcase_add_test(tc, t_list_failures);
	suite_add_tcase(s, tc);

	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_run_pass);
	tcase_add_test(tc, t_run_duration);
	tcase_add_test(tc, t_run_file_path);
	tcase_add_test(tc, t_run_fail);
	tcase_add_test(tc, t_run_skip);
	tcase_add_test(tc, t_run_signal);
	tcase_add_test(tc, t_run_exec_failure);
	tcase_add_test(tc, t_ids_byte_for_byte);
	tcase_add_test(tc, t_placeholders);
	tcase_add_test(tc, t_output_flood);
	tcase_add_test(tc, t_message_tail);
	tcase_add_test(tc, t_grandchild_killed);
	tcase_add_test(tc, t_escaped_grandchild_does_not_hang);
	tcase_add_test(tc, t_dies_with_function);
	tcase_add_test(tc, t_environment);
	tcase_add_test(tc, t_path_lookup);
	tcase_add_test(tc, t_bad_context);
	suite_add_tcase(s, tc);

	tc = tcase_create("image-doctor");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_image_content);
	tcase_add_test(tc, t_doctor);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(runner_command_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
