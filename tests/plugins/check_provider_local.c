/*
 * check_provider_local.c - tests of the local provider plugin, loaded with
 * dlopen() and driven through the upcalls of fake-core.c (no core):
 * options, the bucket, function updates, invocations (parallelism,
 * timeouts, oversized responses, crashes, cancel, parent death, bubblewrap),
 * serving payloads, artifacts and doctor; isolation "image" with a real
 * OCI image (built here with the core's image API) whose root holds only
 * a static busybox.  The function program is
 * local-helper (see local-helper.c), which serves as the zygote with
 * isolation "none" (through this module's own SERVE); the tests of
 * invocations run again with HYPERTEST_LOCAL_NO_ZYGOTE=1 (one exec each).
 *
 * HT_PROVIDER_LOCAL_SO and HT_LOCAL_HELPER override where the module and
 * the helper are.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

#include "image.h" /* the core's own, to build real images */

/* ---- the test's core: fake-core.c's upcalls, and these ----------------------------- */

static struct hypertest_core C;
static char project_dir[256]; /* C.project_dir */
static void *module;

/* A function that answers {"len": N, "head": first bytes}. */
static int up_function_handle(hypertest_function *fn, const char *payload, size_t len,
                              hypertest_buffer *response)
{
	char out[256];
	fn->calls++;
	if (fn->fail)
		return HYPERTEST_ERR_RUNNER;
	int n = snprintf(out, sizeof out, "{\"len\": %zu, \"head\": \"%.8s\"}", len, payload);
	return fake_up_buffer_append(response, out, (size_t)n);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

/* A fake unpack: dest/var/task with a configuration and a tests folder. */
static int up_image_unpack(hypertest_core *core, const char *layout_dir, const char *ref,
                           const char *dest_dir)
{
	char path[1024];
	core->unpacks++;
	snprintf(core->unpack_layout, sizeof core->unpack_layout, "%s", layout_dir);
	snprintf(core->unpack_ref, sizeof core->unpack_ref, "%s", ref);
	snprintf(core->unpack_dest, sizeof core->unpack_dest, "%s", dest_dir);
	struct stat st;
	ck_assert_msg(stat(dest_dir, &st) != 0, "unpack into an existing %s", dest_dir);
	if (core->real_unpack) {
		ht_err err = {0};
		int rc = ht_image_unpack_layout(layout_dir, ref, dest_dir, &err);
		if (rc)
			fake_up_set_error(core, rc, err.msg);
		return rc;
	}
	if (core->unpack_fail) {
		mkdir(dest_dir, 0777); /* leaves a partial image behind */
		fake_up_set_error(core, HYPERTEST_ERR_IMAGE, "fake unpack failed");
		return HYPERTEST_ERR_IMAGE;
	}
	const char *dirs[] = {"", "/var", "/var/task", "/var/task/tests"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s%s", dest_dir, dirs[i]);
		ck_assert_int_eq(mkdir(path, 0777), 0);
	}
	snprintf(path, sizeof path, "%s/var/task/hypertest.config.json", dest_dir);
	write_text(path, "{}");
	snprintf(path, sizeof path, "%s/var/task/tests/a.test", dest_dir);
	write_text(path, ref);
	return 0;
}

static const hypertest_dispatch upcalls[] = {
	{HYPERTEST_UP_FUNCTION_HANDLE, (hypertest_fn)up_function_handle},
	{HYPERTEST_UP_IMAGE_UNPACK, (hypertest_fn)up_image_unpack},
	{0, NULL}};

/* ---- helpers -------------------------------------------------------------------- */

static char *helper_path(void)
{
	const char *env = getenv("HT_LOCAL_HELPER");
	static char path[512];
	snprintf(path, sizeof path, "%s", env && *env ? env : HT_TESTS_BUILDDIR "/local-helper");
	return path;
}

/* CPU time of this process (not of its children). */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void setup(void)
{
	memset(&C, 0, sizeof C);
	char tmpl[] = "/tmp/ht-local-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	snprintf(project_dir, sizeof project_dir, "%s", tmpl);
	C.project_dir = project_dir;
	snprintf(C.program, sizeof C.program, "%s", helper_path());
	snprintf(C.plugin_path, sizeof C.plugin_path, "/plugins/a:/plugins/b");
	const char *so = getenv("HT_PROVIDER_LOCAL_SO");
	if (!so || !*so) /* the helper loads it too, as the zygote */
		setenv("HT_PROVIDER_LOCAL_SO", HT_TOP_BUILDDIR "/plugins/.libs/provider-local.so", 1);
	so = getenv("HT_PROVIDER_LOCAL_SO");
	module = fake_load(so, &C, fake_upcalls(upcalls), HYPERTEST_KIND_PROVIDER, "local");
}

/* The same tests with one exec per invocation. */
static void setup_exec(void)
{
	setup();
	setenv("HYPERTEST_LOCAL_NO_ZYGOTE", "1", 1);
}

static int zygote_mode(void)
{
	const char *no = getenv("HYPERTEST_LOCAL_NO_ZYGOTE");
	return !(no && *no && strcmp(no, "0"));
}

static void teardown(void)
{
	fake_rm_tree(C.project_dir);
	if (module)
		dlclose(module);
	module = NULL;
}

static void *create_ok(const char *options)
{
	void *self = NULL;
	int rc = OP(HYPERTEST_OP_CREATE)(&C, options, &self);
	ck_assert_msg(rc == 0, "create(%s): %d %s", options, rc, C.error);
	return self;
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* printf into one of 64 rotating buffers: a result stays valid for the
 * next 63 calls. */
static char *pathf(const char *fmt, ...)
{
	static char bufs[64][2048];
	static int i;
	char *b = bufs[i++ % 64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b, sizeof bufs[0], fmt, ap);
	va_end(ap);
	return b;
}

static const char digest1[] =
	"sha256:1111111111111111111111111111111111111111111111111111111111111111";
static const char digest2[] =
	"sha256:2222222222222222222222222222222222222222222222222222222222222222";

static void *deployed(const char *options)
{
	void *self = create_ok(options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "hypertest:latest", digest1), 0);
	return self;
}

static hypertest_invocation *inv_new(int i)
{
	hypertest_invocation *inv = calloc(1, sizeof *inv);
	snprintf(inv->test_id, sizeof inv->test_id, "00000000-0000-4000-8000-%012d", i);
	return inv;
}

static void inv_free(hypertest_invocation *inv)
{
	free(inv->response);
	free(inv->message);
	free(inv);
}

static void start(void *self, hypertest_invocation *inv, const char *payload)
{
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, payload, strlen(payload));
	ck_assert_msg(rc == 0, "start: %d %s", rc, C.error);
}

/* Wait until n invocations completed (at most limit_s seconds). */
static void wait_n(void *self, int n, double limit_s)
{
	double end = fake_now_s() + limit_s;
	int got = 0;
	while (got < n) {
		ck_assert_msg(fake_now_s() < end, "only %d of %d invocations completed", got, n);
		int r = OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 100);
		ck_assert_int_ge(r, 0);
		got += r;
	}
	ck_assert_int_eq(got, n);
}

/* Run one invocation to its end. */
static hypertest_invocation *run_one(void *self, const char *payload)
{
	hypertest_invocation *inv = inv_new(1);
	start(self, inv, payload);
	wait_n(self, 1, 30);
	ck_assert(inv->done);
	return inv;
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The heartbeat file stopped growing (its writers are dead). */
static void assert_heartbeat_stopped(const char *file)
{
	usleep(150000);
	off_t a = file_size(file);
	usleep(300000);
	off_t b = file_size(file);
	ck_assert_msg(a > 0, "no heartbeat in %s", file);
	ck_assert_msg(a == b, "%s still grows (%ld -> %ld): a process survived", file, (long)a,
	              (long)b);
}

static void wait_heartbeat(const char *file)
{
	double end = fake_now_s() + 10;
	while (file_size(file) <= 0) {
		ck_assert_msg(fake_now_s() < end, "no heartbeat in %s", file);
		usleep(10000);
	}
}

/* ---- options -------------------------------------------------------------------- */

START_TEST(test_options_defaults)
{
	void *self = create_ok("{}");
	hypertest_params target;
	memset(&target, 0, sizeof target);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &target), 0);
	ck_assert_int_eq(target.n, 1);
	ck_assert_str_eq(target.key[0], "layout");
	ck_assert_str_eq(target.val[0], pathf("%s/.hypertest/image", C.project_dir));
	hypertest_buffer url = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_URL)(self, "run/x.json", &url), 0);
	ck_assert_str_eq(url.data, pathf("%s/.hypertest/bucket/run/x.json", C.project_dir));
	free(url.data);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* NULL and "null" options are the defaults too. */
	OP(HYPERTEST_OP_DESTROY)(create_ok(NULL));
	OP(HYPERTEST_OP_DESTROY)(create_ok("null"));
}
END_TEST

START_TEST(test_options_paths)
{
	void *self = create_ok("{\"imageDir\": \"/abs/img\", \"bucketDir\": \"b\", "
	                       "\"baseImage\": \"oci:/abs/base:v1\"}");
	hypertest_params t;
	memset(&t, 0, sizeof t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t), 0);
	ck_assert_int_eq(t.n, 3);
	ck_assert_str_eq(t.key[0], "layout");
	ck_assert_str_eq(t.val[0], "/abs/img");
	ck_assert_str_eq(t.key[1], "baseLayout");
	ck_assert_str_eq(t.val[1], "/abs/base");
	ck_assert_str_eq(t.key[2], "baseRef");
	ck_assert_str_eq(t.val[2], "v1");
	hypertest_buffer url = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_URL)(self, "k", &url), 0);
	ck_assert_str_eq(url.data, pathf("%s/b/k", C.project_dir));
	free(url.data);
	OP(HYPERTEST_OP_DESTROY)(self);

	self = create_ok("{\"baseImage\": \"oci:base\"}");
	memset(&t, 0, sizeof t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t), 0);
	ck_assert_int_eq(t.n, 2);
	ck_assert_str_eq(t.key[1], "baseLayout");
	ck_assert_str_eq(t.val[1], pathf("%s/base", C.project_dir));
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

static const struct {
	const char *options, *expect;
} bad_options[] = {
	{"{\"timeout\": 0}", "'timeout'"},
	{"{\"timeout\": \"10\"}", "'timeout'"},
	{"{\"memoryMB\": -1}", "'memoryMB'"},
	{"{\"memoryMB\": 1.5}", "'memoryMB'"},
	{"{\"maxResponseBytes\": 0}", "'maxResponseBytes'"},
	{"{\"isolation\": \"docker\"}", "'isolation'"},
	{"{\"isolation\": true}", "'isolation'"},
	{"{\"imageDir\": 5}", "'imageDir'"},
	{"{\"bucketDir\": \"\"}", "'bucketDir'"},
	{"{\"functionDir\": null}", "'functionDir'"},
	{"{\"baseImage\": \"docker://x\"}", "'baseImage'"},
	{"{\"baseImage\": \"oci:dir:\"}", "'baseImage'"},
	{"{\"baseImage\": \"oci:\"}", "'baseImage'"},
	{"{\"bogus\": 1}", "'bogus'"},
	{"[1]", "object"},
	{"{", "object"},
};

START_TEST(test_options_invalid)
{
	void *self = (void *)1;
	C.error[0] = '\0';
	int rc = OP(HYPERTEST_OP_CREATE)(&C, bad_options[_i].options, &self);
	ck_assert_int_eq(rc, HYPERTEST_ERR_CONFIG);
	ck_assert_int_eq(C.error_code, HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(C.error, bad_options[_i].expect) != NULL,
	              "error for %s does not name %s: %s", bad_options[_i].options,
	              bad_options[_i].expect, C.error);
	ck_assert_ptr_eq(self, (void *)1); /* untouched */
}
END_TEST

START_TEST(test_bwrap_missing)
{
	char empty[600];
	snprintf(empty, sizeof empty, "%s/nobin", C.project_dir);
	mkdir(empty, 0777);
	setenv("PATH", empty, 1);
	void *self = NULL;
	int rc = OP(HYPERTEST_OP_CREATE)(&C, "{\"isolation\": \"bubblewrap\"}", &self);
	ck_assert_int_eq(rc, HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(C.error, "bwrap") && strstr(C.error, "PATH"), "%s",
	              C.error);
}
END_TEST

START_TEST(test_nofile_raised)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t hard = rl.rlim_max;
	rl.rlim_cur = 256 < hard ? 256 : hard;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	void *self = create_ok("{}");
	getrlimit(RLIMIT_NOFILE, &rl);
	ck_assert_uint_eq(rl.rlim_cur, hard);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- bucket ------------------------------------------------------------------------ */

START_TEST(test_bucket_put_get)
{
	void *self = create_ok("{\"bucketDir\": \"bkt\"}");
	const char *key = "run-1/hypertest.results.json";
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, key, "{\"a\":1}", 7,
	                                                   "application/json"), 0);
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &b), 0);
	ck_assert_uint_eq(b.len, 7);
	ck_assert_str_eq(b.data, "{\"a\":1}");
	free(b.data);
	/* Overwritten in place, no temporary file left. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, key, "xy", 2, NULL), 0);
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &b), 0);
	ck_assert_str_eq(b.data, "xy");
	free(b.data);
	DIR *d = opendir(pathf("%s/bkt/run-1", C.project_dir));
	ck_assert_ptr_nonnull(d);
	int files = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			files++;
		else
			ck_assert_msg(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."),
			              "temporary file %s left", e->d_name);
	closedir(d);
	ck_assert_int_eq(files, 1);
	/* Empty objects are objects. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "empty", "", 0, NULL), 0);
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "empty", &b), 0);
	ck_assert_uint_eq(b.len, 0);
	free(b.data);
	/* Missing: not found. */
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "run-1/nope", &b),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "nodir/nope", &b),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(C.error, "nodir/nope") != NULL, "%s", C.error);
	ck_assert_uint_eq(b.len, 0);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

static const char *const bad_keys[] = {"", "/etc/passwd", "..", "../x", "a/../b", "a/..",
                                       "a//b", "a/", "./a", "a/./b"};

START_TEST(test_bucket_bad_keys)
{
	void *self = create_ok("{\"bucketDir\": \"bkt\"}");
	const char *key = bad_keys[_i];
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, key, "x", 1, NULL),
	                 HYPERTEST_ERR_INVALID);
	ck_assert_msg(strstr(C.error, pathf("'%s'", key)) != NULL, "%s", C.error);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &b), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_URL)(self, key, &b), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, key, C.project_dir),
	                 HYPERTEST_ERR_INVALID);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(file_size(pathf("%s/x", C.project_dir)), -1);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_artifacts_store)
{
	void *self = create_ok("{\"bucketDir\": \"bkt\"}");
	char art[1024];
	snprintf(art, sizeof art, "%s/art", C.project_dir);
	mkdir(art, 0777);
	mkdir(pathf("%s/art/sub", C.project_dir), 0777);
	write_text(pathf("%s/art/log.txt", C.project_dir), "log");
	write_text(pathf("%s/art/sub/shot.png", C.project_dir), "png");
	write_text(pathf("%s/outside.txt", C.project_dir), "linked");
	ck_assert_int_eq(symlink(pathf("%s/outside.txt", C.project_dir),
	                         pathf("%s/art/link.txt", C.project_dir)), 0);
	ck_assert_int_eq(symlink(art, pathf("%s/art/loop", C.project_dir)), 0);
	ck_assert_msg(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, "run/test", art) == 0, "%s", C.error);
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "run/test/sub/shot.png", &b), 0);
	ck_assert_str_eq(b.data, "png");
	free(b.data);
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "run/test/link.txt", &b), 0);
	ck_assert_str_eq(b.data, "linked");
	free(b.data);
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "run/test/log.txt", &b), 0);
	ck_assert_str_eq(b.data, "log");
	free(b.data);
	ck_assert_int_eq(file_size(pathf("%s/bkt/run/test/loop", C.project_dir)), -1);

	/* On the function side the bucket is $HYPERTEST_LOCAL_BUCKET. */
	setenv("HYPERTEST_LOCAL_BUCKET", pathf("%s/other-bucket", C.project_dir), 1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, "r2/t2", art), 0);
	unsetenv("HYPERTEST_LOCAL_BUCKET");
	ck_assert_int_eq(file_size(pathf("%s/other-bucket/r2/t2/log.txt", C.project_dir)), 3);
	ck_assert_int_eq(file_size(pathf("%s/bkt/r2", C.project_dir)), -1);
	/* A missing directory is an error that names it. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, "r3", "/nonexistent-dir"),
	                 HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(C.error, "/nonexistent-dir") != NULL, "%s", C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- function update ------------------------------------------------------------------ */

static char *read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

START_TEST(test_function_update)
{
	void *self = create_ok("{\"functionDir\": \"fn\", \"imageDir\": \"img\"}");
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "my/img:latest", digest1), 0);
	ck_assert_int_eq(C.unpacks, 1);
	ck_assert_str_eq(C.unpack_layout, pathf("%s/img", C.project_dir));
	ck_assert_str_eq(C.unpack_ref, "my/img:latest");
	char *img1 = pathf("%s/fn/images/%s/root", C.project_dir, digest1 + 7);
	ck_assert_str_eq(C.unpack_dest, img1);
	json_t *cur = json_load_file(pathf("%s/fn/current", C.project_dir), 0, NULL);
	ck_assert_ptr_nonnull(cur);
	ck_assert_str_eq(json_string_value(json_object_get(cur, "digest")), digest1);
	ck_assert_str_eq(json_string_value(json_object_get(cur, "root")), img1);
	json_decref(cur);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), 0);
	ck_assert_str_eq(b.data, digest1);
	free(b.data);

	/* The same image again: not unpacked twice. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "my/img:latest", digest1), 0);
	ck_assert_int_eq(C.unpacks, 1);

	/* A new image replaces the old one, which is removed. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "my/img:v2", digest2), 0);
	ck_assert_int_eq(C.unpacks, 2);
	ck_assert_int_eq(file_size(img1), -1);
	ck_assert_int_eq(file_size(pathf("%s/fn/images/%s", C.project_dir, digest1 + 7)), -1);
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), 0);
	ck_assert_str_eq(b.data, digest2);
	free(b.data);

	/* A failed unpack leaves the deployed function alone; the partial
	 * image is cleared before the next attempt. */
	C.unpack_fail = 1;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "my/img:v1", digest1),
	                 HYPERTEST_ERR_IMAGE);
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), 0);
	ck_assert_str_eq(b.data, digest2);
	free(b.data);
	C.unpack_fail = 0;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "my/img:v1", digest1), 0);
	ck_assert_int_eq(C.unpacks, 4);
	ck_assert_int_eq(file_size(pathf("%s/var/task/hypertest.config.json", img1)), 2);

	/* Not a digest. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "x", "sha256:../../etc"),
	                 HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "x", "nodigest"),
	                 HYPERTEST_ERR_INVALID);
	OP(HYPERTEST_OP_DESTROY)(self);

	/* A damaged current file is reported, naming it. */
	write_text(pathf("%s/fn/current", C.project_dir), "{\"digest\": 1}");
	self = create_ok("{\"functionDir\": \"fn\"}");
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(C.error, "fn/current") != NULL, "%s", C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- invocations ----------------------------------------------------------------- */

START_TEST(test_invoke_not_deployed)
{
	void *self = create_ok("{}");
	hypertest_invocation *inv = inv_new(1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "echo 0", 6),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(C.error, "deploy") != NULL, "%s", C.error);
	/* Nothing in flight: wait returns at once, even without a timeout. */
	double t0 = fake_now_s();
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, -1), 0);
	ck_assert(fake_now_s() - t0 < 0.5);
	ck_assert_int_eq(inv->done, 0);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_missing_program)
{
	snprintf(C.program, sizeof C.program, "%s/no-such-program", C.project_dir);
	void *self = deployed("{}");
	hypertest_invocation *inv = inv_new(1);
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "echo 0", 6);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(C.error, "no-such-program") != NULL, "%s", C.error);
	ck_assert_int_eq(inv->done, 0);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_exec_fails)
{
	/* An executable file the kernel cannot run: the start fails and says
	 * why (the child reports exec's error before the parent goes on). */
	snprintf(C.program, sizeof C.program, "%s/not-a-program", C.project_dir);
	write_text(C.program, "\x01\x02 garbage");
	chmod(C.program, 0755);
	void *self = deployed("{}");
	hypertest_invocation *inv = inv_new(1);
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "echo 0", 6);
	ck_assert_int_eq(rc, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(C.error, "not-a-program") && strstr(C.error, strerror(ENOEXEC)),
	              "%s", C.error);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	ck_assert_int_eq(inv->done, 0);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* the failed child was reaped */
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* Value of NAME=... in the helper's env report. */
static const char *field(const char *report, const char *name)
{
	static char val[2048];
	char key[80];
	snprintf(key, sizeof key, "\n%s=", name);
	const char *s = strstr(report, key);
	if (!s && !strncmp(report, key + 1, strlen(key + 1)))
		s = report - 1;
	ck_assert_msg(s != NULL, "%s missing in %s", name, report);
	s += strlen(key);
	size_t n = strcspn(s, "\n");
	snprintf(val, sizeof val, "%.*s", (int)n, s);
	return val;
}

/* The number of entries of a directory, -1 when it is not there. */
static int dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

static unsigned long pid_ns(void)
{
	char buf[64];
	unsigned long ns = 0;
	ssize_t n = readlink("/proc/self/ns/pid", buf, sizeof buf - 1);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_int_eq(sscanf(buf, "pid:[%lu]", &ns), 1);
	return ns;
}

/* a directory of links as an orchestrator leaves it, with a link inside */
static char *links_dir(const char *base, unsigned long ns, long pid, const char *x)
{
	char *dir = strdup(pathf("%s/hypertest-%lu-%ld-%s", base, ns, pid, x));
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(symlink(C.project_dir, pathf("%s/1", dir)), 0);
	return dir;
}

/* TMPDIR is a short name: a link in a directory of the provider's own, to
 * the invocation's .hypertest/tmp, while it runs; a Unix socket's path
 * has 107 bytes at most, and programs put sockets below TMPDIR.  The
 * directories that orchestrators killed outright left are removed, and
 * only those. */
START_TEST(test_invoke_tmpdir)
{
	/* a TMPDIR of this test's own, which other tests' orchestrators leave
	 * alone (the provider takes a TMPDIR of 40 bytes at most) */
	char base[] = "/tmp/ck-links-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(base));
	setenv("TMPDIR", base, 1);
	unsigned long ns = pid_ns();
	pid_t gone = fork();
	if (gone == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(gone, NULL, 0), gone);
	char *stale = links_dir(base, ns, gone, "Stale1");
	char *alive = links_dir(base, ns, (long)getppid(), "Alive1");
	char *other_ns = links_dir(base, ns + 1, gone, "OthNs1");
	char *odd = links_dir(base, ns, gone, "Seven77");
	void *self = deployed("{}");
	char *fifo = pathf("%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	/* one invocation waits at the gate; another tells the links' directory */
	hypertest_invocation *waiting = inv_new(1);
	start(self, waiting, pathf("genv %s", fifo));
	hypertest_invocation *other = inv_new(2);
	start(self, other, "env");
	double end = fake_now_s() + 30;
	while (!other->done) {
		ck_assert_msg(fake_now_s() < end, "the second invocation did not complete");
		ck_assert_int_ge(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 100), 0);
	}
	ck_assert_msg(other->code == 0, "%s", other->message);
	/* the left directory of a process that is gone, and only that, is removed */
	struct stat st;
	ck_assert_msg(lstat(stale, &st) != 0 && errno == ENOENT, "%s is still there", stale);
	char *kept[] = {alive, other_ns, odd};
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(lstat(pathf("%s/1", kept[i]), &st) == 0, "%s was removed", kept[i]);
		ck_assert_int_eq(unlink(pathf("%s/1", kept[i])), 0);
		ck_assert_int_eq(rmdir(kept[i]), 0);
		free(kept[i]);
	}
	free(stale);
	char *link = strdup(field(other->response, "TMPDIR"));
	char *dir = strdup(link);
	*strrchr(dir, '/') = '\0';
	char *want_dir = pathf("%s/hypertest-%lu-%ld-", base, pid_ns(), (long)getpid());
	ck_assert_msg(strncmp(dir, want_dir, strlen(want_dir)) == 0 &&
	                  strlen(dir) == strlen(want_dir) + 6,
	              "TMPDIR %s is not in %sXXXXXX", link, want_dir);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	/* the waiting one's link, to its scratch directory's tmp */
	char target[1024], want[1024], *mine = NULL;
	snprintf(want, sizeof want, "%s/.hypertest/function/scratch/%s/.hypertest/tmp",
	         C.project_dir, waiting->test_id);
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || !strcmp(pathf("%s/%s", dir, e->d_name), link))
			continue; /* the other's, if still there */
		ssize_t n = readlink(pathf("%s/%s", dir, e->d_name), target, sizeof target - 1);
		ck_assert_int_gt(n, 0);
		target[n] = '\0';
		ck_assert_str_eq(target, want);
		mine = strdup(pathf("%s/%s", dir, e->d_name));
	}
	closedir(d);
	ck_assert_msg(mine, "no link for the waiting invocation in %s", dir);
	ck_assert_int_eq(write(gate, "g", 1), 1);
	wait_n(self, 1, 30);
	close(gate);
	ck_assert_msg(waiting->code == 0, "%s", waiting->message);
	ck_assert_str_eq(field(waiting->response, "TMPDIR"), mine);
	/* both ended: their links are gone, the directory when the provider is */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	end = fake_now_s() + 10;
	while (dir_entries(dir) != 0 && fake_now_s() < end)
		OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 50);
	ck_assert_int_eq(dir_entries(dir), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(dir_entries(dir), -1);
	ck_assert_int_eq(rmdir(base), 0);
	free(mine);
	free(dir);
	free(link);
	inv_free(waiting);
	inv_free(other);
}
END_TEST

START_TEST(test_invoke_environment)
{
	setenv("LOCAL_TEST_MARK", "inherited", 1);
	setenv("HOME", "/should/be/replaced", 1);
	signal(SIGPIPE, SIG_IGN); /* must not reach the function */
	void *self = deployed("{\"bucketDir\": \"bkt\"}");
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	const char *r = inv->response;
	char root[1024], scratch[1024];
	snprintf(root, sizeof root, "%s/.hypertest/function/images/%s/root", C.project_dir,
	         digest1 + 7);
	snprintf(scratch, sizeof scratch, "%s/.hypertest/function/scratch/%s", C.project_dir,
	         inv->test_id);
	ck_assert_str_eq(field(r, "cwd"), scratch);
	ck_assert_str_eq(field(r, "PWD"), scratch);
	ck_assert_str_eq(field(r, "HOME"), pathf("%s/.hypertest/home", scratch));
	/* TMPDIR: a short link to scratch/.hypertest/tmp (test_invoke_tmpdir) */
	ck_assert_msg(strlen(field(r, "TMPDIR")) <= 64, "%s", field(r, "TMPDIR"));
	ck_assert_str_eq(field(r, "HYPERTEST_FUNCTION_CONFIG"),
	                 pathf("%s/var/task/hypertest.config.json", root));
	ck_assert_str_eq(field(r, "HYPERTEST_PLUGIN_PATH"), "/plugins/a:/plugins/b");
	ck_assert_str_eq(field(r, "HYPERTEST_LOCAL_BUCKET"), pathf("%s/bkt", C.project_dir));
	ck_assert_str_eq(field(r, "LOCAL_TEST_MARK"), "inherited");
	ck_assert_str_eq(field(r, "pid"), field(r, "pgid")); /* a group of its own */
	ck_assert_str_eq(field(r, "sigpipe"), "default");
	ck_assert_str_eq(field(r, "blocked"), "0");
	ck_assert_str_eq(field(r, "HYPERTEST_LOCAL_ZYGOTE_FD"), "(unset)");
	if (!getenv("LD_BIND_NOW")) /* the zygote's own */
		ck_assert_str_eq(field(r, "LD_BIND_NOW"), "(unset)");
	/* A child of the zygote, or of this process with exec. */
	long ppid = atol(field(r, "ppid"));
	if (zygote_mode())
		ck_assert_int_ne(ppid, getpid());
	else
		ck_assert_int_eq(ppid, getpid());
	/* The scratch directory is gone once the invocation completed and the
	 * process was reaped. */
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(file_size(scratch), -1);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_scratch_files)
{
	void *self = deployed("{}");
	/* The image's files are reachable from the working directory, through
	 * links ("tests/.." is the task root itself), read-only: root alone
	 * writes there (and the next deploy repairs the image). */
	hypertest_invocation *inv = run_one(self, "write tests/../scratch-file");
	char *root = pathf("%s/.hypertest/function/images/%s/root", C.project_dir, digest1 + 7);
	if (geteuid() == 0) {
		ck_assert_str_eq(inv->response, "ok");
		ck_assert_int_eq(file_size(pathf("%s/var/task/scratch-file", root)), 0);
	} else {
		ck_assert_str_eq(inv->response, strerror(EACCES));
		ck_assert_int_eq(file_size(pathf("%s/var/task/scratch-file", root)), -1);
	}
	inv_free(inv);
	/* New files of a test land in its scratch directory, not in the image. */
	inv = run_one(self, "write new-file");
	ck_assert_str_eq(inv->response, "ok");
	ck_assert_int_eq(file_size(pathf("%s/var/task/new-file", root)), -1);
	inv_free(inv);
	/* HOME is writable. */
	inv = run_one(self, "write .hypertest/home/x");
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* Names in functionDir/scratch/.pool, and how many start with prefix. */
static int pool_count(const char *prefix, int *total)
{
	DIR *d = opendir(pathf("%s/.hypertest/function/scratch/.pool", C.project_dir));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	int n = 0, all = 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		all++;
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	}
	closedir(d);
	*total = all;
	return n;
}

static void run_expect(void *self, const char *payload, const char *response)
{
	hypertest_invocation *inv = run_one(self, payload);
	ck_assert_msg(inv->code == 0, "%s: %s", payload, inv->message);
	ck_assert_msg(!strcmp(inv->response, response), "%s: %s, not %s", payload, inv->response,
	              response);
	inv_free(inv);
}

START_TEST(test_scratch_reuse)
{
	void *self = deployed("{}");
	int total;
	run_expect(self, "write leftover", "ok");
	run_expect(self, "write .hypertest/home/h", "ok");
	run_expect(self, "write .hypertest/tmp/t", "ok");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	/* One directory, reused each time and clean each time. */
	ck_assert_int_eq(pool_count("1111111111111111-", &total), 1);
	ck_assert_int_eq(total, 1);
	run_expect(self, "exists leftover", "no");
	run_expect(self, "exists .hypertest/home/h", "no");
	run_expect(self, "exists .hypertest/tmp/t", "no");
	run_expect(self, "exists tests/a.test", "yes");
	/* A test that removes one of the links: its directory is not reused. */
	run_expect(self, "rm tests", "ok");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(pool_count("", &total), 0);
	run_expect(self, "exists tests/a.test", "yes");
	OP(HYPERTEST_OP_DESTROY)(self);

	/* The pool outlives the provider (the next run reuses it)... */
	ck_assert_int_eq(pool_count("1111111111111111-", &total), 1);
	self = create_ok("{}");
	run_expect(self, "exists leftover", "no");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(pool_count("1111111111111111-", &total), 1);
	ck_assert_int_eq(total, 1);
	/* ...but not a new image. */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "t:2", digest2), 0);
	run_expect(self, "exists tests/a.test", "yes");
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	ck_assert_int_eq(pool_count("2222222222222222-", &total), 1);
	ck_assert_int_eq(total, 1);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_big_payload)
{
	void *self = deployed("{\"maxResponseBytes\": 4000000}");
	size_t n = 3000000; /* far more than a pipe holds */
	char *payload = malloc(n + 1);
	memcpy(payload, "echo 0\n", 7);
	for (size_t i = 7; i < n; i++)
		payload[i] = (char)('a' + i % 26);
	payload[n] = '\0';
	hypertest_invocation *inv = run_one(self, payload);
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_uint_eq(inv->len, n);
	ck_assert(memcmp(inv->response, payload, n) == 0);
	inv_free(inv);
	/* A function that does not read its payload: no SIGPIPE for us. */
	memcpy(payload, "noread\n", 7);
	inv = run_one(self, payload);
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	free(payload);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* Entries of /proc/PID/task/PID/children (up to max of them in pids). */
static int children_of(long pid, long *pids, int max)
{
	FILE *f = fopen(pathf("/proc/%ld/task/%ld/children", pid, pid), "r");
	int n = 0;
	long c;
	if (!f)
		return -1;
	while (fscanf(f, "%ld", &c) == 1) {
		if (n < max)
			pids[n] = c;
		n++;
	}
	fclose(f);
	return n;
}

/* Wait until the zygote (our only child) has n children. */
static void wait_zygote_children(void *self, int n)
{
	long zyg = 0;
	ck_assert_int_eq(children_of(getpid(), &zyg, 1), 1);
	double end = fake_now_s() + 60;
	int have;
	while ((have = children_of(zyg, NULL, 0)) < n) {
		ck_assert_msg(fake_now_s() < end, "the zygote has %d children, not %d", have, n);
		ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 20), 0);
	}
}

/* n invocations of payload PREFIX#i at once; each must answer its own
 * payload. */
static void run_parallel(void *self, int n, const char *prefix, int gate)
{
	hypertest_invocation **invs = calloc((size_t)n, sizeof *invs);
	char payload[1200];
	for (int i = 0; i < n; i++) {
		invs[i] = inv_new(i);
		snprintf(payload, sizeof payload, "%s\n#%d", prefix, i);
		start(self, invs[i], payload);
	}
	if (gate >= 0) {
		/* the function processes are our children (exec): all n alive
		 * together at the gate, which one after another never would be */
		double end = fake_now_s() + 120;
		int have;
		while ((have = children_of(getpid(), NULL, 0)) < n) {
			ck_assert_msg(fake_now_s() < end, "%d function processes at the gate, not %d", have,
			              n);
			ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 20), 0);
		}
		char *bytes = malloc((size_t)n);
		memset(bytes, 'g', (size_t)n);
		ck_assert_int_eq(write(gate, bytes, (size_t)n), n);
		free(bytes);
	}
	wait_n(self, n, 300);
	for (int i = 0; i < n; i++) {
		snprintf(payload, sizeof payload, "%s\n#%d", prefix, i);
		ck_assert_msg(invs[i]->code == 0, "%d: %s", i, invs[i]->message);
		ck_assert_str_eq(invs[i]->response, payload);
		inv_free(invs[i]);
	}
	free(invs);
}

START_TEST(test_invoke_parallel)
{
	/* With exec, the function processes are this test's children (with
	 * the zygote: test_invoke_in_flight, test_zygote_children). */
	setenv("HYPERTEST_LOCAL_NO_ZYGOTE", "1", 1);
	void *self = deployed("{}");
	/* 300 execs of the (possibly sanitized) function program */
	int n = 300;
	/* A first round makes the scratch directories (later ones reuse them),
	 * then n that answer at once, then n that wait at a gate until all of
	 * them are running. */
	run_parallel(self, n, "echo 0", -1);
	run_parallel(self, n, "echo 0", -1);
	char *fifo = pathf("%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	char *payload = strdup(pathf("gate %s", fifo)); /* pathf's buffers rotate */
	run_parallel(self, n, payload, gate);
	free(payload);
	close(gate);
	/* Only the pool of clean directories is left. */
	OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	DIR *d = opendir(pathf("%s/.hypertest/function/scratch", C.project_dir));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	int left = 0;
	while ((e = readdir(d)) != NULL)
		left += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, ".pool");
	closedir(d);
	ck_assert_int_eq(left, 0);
}
END_TEST

START_TEST(test_invoke_in_flight)
{
	/* n functions wait at a gate: all of them are in flight at once, and
	 * when the gate opens the one loop completes them all. */
	void *self = deployed("{}");
	/* with the zygote 1000; with an exec each (bubblewrap's path), 300 */
	int n = zygote_mode() ? 1000 : 300;
	char fifo[1024];
	snprintf(fifo, sizeof fifo, "%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	hypertest_invocation **invs = calloc((size_t)n, sizeof *invs);
	double t0 = fake_now_s(), cpu0 = cpu_s();
	for (int i = 0; i < n; i++) {
		invs[i] = inv_new(i);
		start(self, invs[i], pathf("gate %s\n#%d", fifo, i));
	}
	if (zygote_mode()) /* the forks follow the requests */
		wait_zygote_children(self, n);
	double started = fake_now_s() - t0, start_cpu = cpu_s() - cpu0;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 200), 0);
	char *bytes = malloc((size_t)n);
	memset(bytes, 'g', (size_t)n);
	double t1 = fake_now_s(), cpu1 = cpu_s();
	ck_assert_int_eq(write(gate, bytes, (size_t)n), n);
	wait_n(self, n, 300);
	double drained = fake_now_s() - t1, cpu = cpu_s() - cpu1;
	fprintf(stderr, "local provider: %d invocations in flight: started in %.3f s (%.3f s of CPU "
	        "here), completed %.3f s after the gate opened (%.3f s of CPU here)\n", n, started,
	        start_cpu, drained, cpu);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(invs[i]->code == 0, "%d: %s", i, invs[i]->message);
		ck_assert_str_eq(invs[i]->response, pathf("gate %s\n#%d", fifo, i));
		inv_free(invs[i]);
	}
	/* How fast they complete is measured by bench/local.sh, not here:
	 * this test shows that all n are in flight together and that one loop
	 * completes them all, whatever the machine's load. */
	free(invs);
	free(bytes);
	close(gate);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_timeout)
{
	void *self = deployed("{\"timeout\": 0.3}");
	char *beat = pathf("%s/beat", C.project_dir);
	hypertest_invocation *inv = inv_new(1);
	char payload[1024];
	snprintf(payload, sizeof payload, "hang2 %s", beat);
	double t0 = fake_now_s();
	start(self, inv, payload);
	wait_n(self, 1, 10);
	double t = fake_now_s() - t0;
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_TIMEOUT);
	ck_assert_str_eq(inv->message, "timed out after 0.3 s");
	ck_assert_msg(t >= 0.3 && t < 0.8, "timeout after %.3f s", t);
	/* The whole group died: the helper's child stopped beating. */
	assert_heartbeat_stopped(beat);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_wait_timeout)
{
	void *self = deployed("{}");
	hypertest_invocation *inv = inv_new(1);
	start(self, inv, "echo 400");
	double t0 = fake_now_s();
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 100), 0);
	double t = fake_now_s() - t0;
	ck_assert_msg(t >= 0.09 && t < 0.3, "wait(100) took %.3f s", t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, -1), 1);
	ck_assert_str_eq(inv->response, "echo 400");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_oversized)
{
	void *self = deployed("{\"maxResponseBytes\": 100000}");
	hypertest_invocation *inv = run_one(self, "big 100000");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_uint_eq(inv->len, 100000);
	inv_free(inv);
	inv = run_one(self, "big 100001");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "response larger than 100000 bytes");
	ck_assert_ptr_null(inv->response);
	inv_free(inv);
	inv = run_one(self, "big 3000000");
	ck_assert_str_eq(inv->message, "response larger than 100000 bytes");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_failures)
{
	void *self = deployed("{}");
	hypertest_invocation *inv = run_one(self, "crash");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "signal 11") != NULL, "%s", inv->message);
	inv_free(inv);

	inv = run_one(self, "exit 3 something broke\n");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "function exited with status 3; stderr: something broke");
	inv_free(inv);

	inv = run_one(self, "silent");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "function exited without a response");
	inv_free(inv);

	/* Only the last 4 KiB of stderr are kept. */
	inv = run_one(self, "flood 100000");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	const char *m = inv->message;
	ck_assert_msg(strstr(m, "function exited with status 1; stderr: ...") == m, "%s", m);
	ck_assert_msg(strstr(m, "<END>") != NULL, "%s", m);
	size_t tail = strlen(m) - strlen("function exited with status 1; stderr: ...");
	ck_assert_uint_le(tail, 4096);
	ck_assert_uint_ge(tail, 4000);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_cancel)
{
	void *self = deployed("{}");
	hypertest_invocation *invs[5];
	char beats[5][1024];
	for (int i = 0; i < 5; i++) {
		invs[i] = inv_new(i);
		snprintf(beats[i], sizeof beats[i], "%s/beat%d", C.project_dir, i);
		start(self, invs[i], pathf("hang2 %s", beats[i]));
	}
	for (int i = 0; i < 5; i++)
		wait_heartbeat(beats[i]);
	double t0 = fake_now_s();
	OP(HYPERTEST_PROVIDER_INVOKE_CANCEL)(self);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 1000), 5);
	ck_assert(fake_now_s() - t0 < 0.5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(invs[i]->code, HYPERTEST_ERR_CANCELLED);
		inv_free(invs[i]);
	}
	for (int i = 0; i < 5; i++)
		assert_heartbeat_stopped(beats[i]);
	/* Invocations started later run normally. */
	hypertest_invocation *inv = run_one(self, "echo 0");
	ck_assert_int_eq(inv->code, 0);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_destroy_in_flight)
{
	/* Destroying the provider kills and reaps what still runs. */
	void *self = deployed("{}");
	char beat[1024];
	snprintf(beat, sizeof beat, "%s/beat", C.project_dir);
	hypertest_invocation *inv = inv_new(1);
	start(self, inv, pathf("hang2 %s", beat));
	wait_heartbeat(beat);
	double t0 = fake_now_s();
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert(fake_now_s() - t0 < 1.0);
	ck_assert_int_eq(inv->done, 0); /* never completed: the core is going away */
	assert_heartbeat_stopped(beat);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1); /* no child left, not even a zombie */
	ck_assert_int_eq(errno, ECHILD);
	inv_free(inv);
}
END_TEST

/* An orchestrator killed with SIGKILL leaves no function process behind. */
static void orchestrator_dies(const char *options, const char *mode)
{
	/* The heartbeats go to the bucket, writable even in a sandbox. */
	char beat[3][1024];
	mkdir(pathf("%s/bkt", C.project_dir), 0777);
	for (int i = 0; i < 3; i++)
		snprintf(beat[i], sizeof beat[i], "%s/bkt/beat%d", C.project_dir, i);
	void *self = deployed(options); /* deploy in the parent: the child only invokes */
	OP(HYPERTEST_OP_DESTROY)(self);
	pid_t orch = fork();
	ck_assert_int_ge(orch, 0);
	if (orch == 0) {
		void *s = create_ok(options);
		for (int i = 0; i < 3; i++)
			start(s, inv_new(i), pathf("%s %s", mode, beat[i]));
		for (;;)
			OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(s, -1);
	}
	for (int i = 0; i < 3; i++)
		wait_heartbeat(beat[i]);
	kill(orch, SIGKILL);
	waitpid(orch, NULL, 0);
	for (int i = 0; i < 3; i++)
		assert_heartbeat_stopped(beat[i]);
}

START_TEST(test_invoke_parent_death)
{
	/* Reparented orphans come to us and are reaped here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	orchestrator_dies("{\"bucketDir\": \"bkt\"}", "hang");
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}
END_TEST

START_TEST(test_bwrap_parent_death)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* In the sandbox even the function's own children die with it. */
	orchestrator_dies("{\"isolation\": \"bubblewrap\", \"bucketDir\": \"bkt\"}", "hang2");
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}
END_TEST

START_TEST(test_invoke_no_pidfd)
{
	setenv("HYPERTEST_LOCAL_NO_PIDFD", "1", 1);
	void *self = deployed("{\"timeout\": 60}");
	hypertest_invocation *invs[20];
	char payload[64];
	for (int i = 0; i < 20; i++) {
		invs[i] = inv_new(i);
		snprintf(payload, sizeof payload, i == 7 ? "crash" : "echo %d", i * 5);
		start(self, invs[i], payload);
	}
	wait_n(self, 20, 120);
	for (int i = 0; i < 20; i++) {
		if (i == 7) {
			ck_assert_msg(strstr(invs[i]->message, "signal 11") != NULL, "%s",
			              invs[i]->message);
		} else {
			snprintf(payload, sizeof payload, "echo %d", i * 5);
			ck_assert_msg(invs[i]->code == 0, "%d: %s", i, invs[i]->message);
			ck_assert_str_eq(invs[i]->response, payload);
		}
		inv_free(invs[i]);
	}
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_reaped_elsewhere)
{
	/* With SIGCHLD ignored the kernel reaps the children itself: each
	 * invocation still completes, with a message that says why it failed
	 * (pidfd and polling alike). */
	signal(SIGCHLD, SIG_IGN);
	if (zygote_mode()) {
		/* The zygote reaps its children, whatever this process does. */
		void *self = deployed("{\"timeout\": 5}");
		hypertest_invocation *inv = run_one(self, "echo 0");
		ck_assert_msg(inv->code == 0, "%s", inv->message);
		ck_assert_str_eq(inv->response, "echo 0");
		inv_free(inv);
		OP(HYPERTEST_OP_DESTROY)(self);
		return;
	}
	for (int poll = 0; poll < 2; poll++) {
		if (poll)
			setenv("HYPERTEST_LOCAL_NO_PIDFD", "1", 1);
		void *self = deployed("{\"timeout\": 5}");
		hypertest_invocation *inv = run_one(self, "echo 0");
		ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
		ck_assert_msg(strstr(inv->message, "exit status was lost") != NULL, "%s", inv->message);
		inv_free(inv);
		OP(HYPERTEST_OP_DESTROY)(self);
	}
}
END_TEST

START_TEST(test_invoke_memory_limit)
{
#if defined(__SANITIZE_ADDRESS__)
	return; /* AddressSanitizer's reservations exceed any sensible RLIMIT_AS */
#endif
	void *self = deployed("{\"memoryMB\": 64}");
	hypertest_invocation *inv = run_one(self, "alloc 256");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "status 4") && strstr(inv->message, "alloc failed"), "%s",
	              inv->message);
	inv_free(inv);
	inv = run_one(self, "alloc 16");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
	self = deployed("{}");
	inv = run_one(self, "alloc 256");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_str_eq(inv->response, "allocated");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- the zygote ---------------------------------------------------------------- */

/* A field of /proc/PID/stat after the command (3: ppid); -1 if gone. */
static long proc_stat_field(long pid, int index)
{
	char buf[2048];
	FILE *f = fopen(pathf("/proc/%ld/stat", pid), "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	long v = -1;
	for (int i = 2; s && i <= index; i++) {
		s = strchr(s + 1, ' ');
		if (s && i == index)
			v = strtol(s + 1, NULL, 10);
	}
	return v;
}

/* "Max address space" of /proc/PID/limits: its soft limit, as text. */
static const char *as_limit(long pid)
{
	static char val[64];
	char line[512];
	FILE *f = fopen(pathf("/proc/%ld/limits", pid), "r");
	ck_assert_ptr_nonnull(f);
	val[0] = '\0';
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "Max address space", 17))
			sscanf(line + 17, "%63s", val);
	fclose(f);
	return val;
}

static int zygote_pid_of(void *self)
{
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	int z = atoi(field(inv->response, "ppid"));
	inv_free(inv);
	return z;
}

START_TEST(test_zygote_children)
{
	/* Every invocation is a fresh process forked by one zygote, a child of
	 * ours running the function program; memoryMB limits each child, not
	 * the zygote. */
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer reserved terabytes before the limit: any sensible
	 * RLIMIT_AS makes its next mmap fail, so a limit of 128 TiB */
	const char *mem = "134217728", *limit = "140737488355328";
#else
	const char *mem = "512", *limit = "536870912";
#endif
	void *self = deployed(pathf("{\"memoryMB\": %s}", mem));
	enum { N = 8 };
	hypertest_invocation *invs[N];
	char *fifo = pathf("%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	int gate = open(fifo, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(gate, 0);
	for (int i = 0; i < N; i++) {
		invs[i] = inv_new(i);
		start(self, invs[i], pathf("genv %s", fifo));
	}
	/* all alive together at the gate, so their pids must differ */
	wait_zygote_children(self, N);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	/* kept open until all have read: a reader still to open the FIFO would
	 * wait for a writer forever */
	ck_assert_int_eq(write(gate, "ggggggggg", N), N);
	long pids[N], zyg = 0;
	char exe[1024], helper[1024];
	ck_assert_ptr_nonnull(realpath(helper_path(), helper));
	wait_n(self, N, 60);
	close(gate);
	for (int i = 0; i < N; i++) {
		ck_assert_msg(invs[i]->code == 0, "%s", invs[i]->message);
		const char *r = invs[i]->response;
		pids[i] = atol(field(r, "pid"));
		long ppid = atol(field(r, "ppid"));
		if (i == 0)
			zyg = ppid;
		ck_assert_int_eq(ppid, zyg);
		ck_assert_int_ne(pids[i], zyg);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(pids[i], pids[j]); /* alive together: distinct processes */
		ck_assert_str_eq(field(r, "pgid"), field(r, "pid"));
		ck_assert_str_eq(field(r, "cwd"), pathf("%s/.hypertest/function/scratch/%s",
		                                        C.project_dir, invs[i]->test_id));
		ck_assert_str_eq(field(r, "HOME"), pathf("%s/.hypertest/function/scratch/%s/.hypertest/home",
		                                         C.project_dir, invs[i]->test_id));
		inv_free(invs[i]);
	}
	ck_assert_int_ne(zyg, getpid());
	ck_assert_int_eq(proc_stat_field(zyg, 3), getpid()); /* the zygote is our child */
	ssize_t n = readlink(pathf("/proc/%ld/exe", zyg), exe, sizeof exe - 1);
	ck_assert_int_gt(n, 0);
	exe[n] = '\0';
	ck_assert_str_eq(exe, helper);
	ck_assert_str_eq(as_limit(zyg), "unlimited");
	/* A child, while it runs, has the limit. */
	hypertest_invocation *inv = inv_new(99);
	start(self, inv, "env 5000");
	long child = -1;
	for (int i = 0; i < 3000 && child < 0; i++) {
		FILE *f = fopen(pathf("/proc/%ld/task/%ld/children", zyg, zyg), "r");
		if (f) {
			if (fscanf(f, "%ld", &child) != 1)
				child = -1;
			fclose(f);
		}
		if (child < 0) {
			OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 10);
		}
	}
	ck_assert_msg(child > 0, "no child of the zygote seen");
	/* it sets its limit right after fork: wait for that, however loaded
	 * the machine, but no longer than the invocation lives */
	for (int i = 0; i < 400 && strcmp(as_limit(child), limit) != 0; i++)
		usleep(10000);
	ck_assert_str_eq(as_limit(child), limit);
	OP(HYPERTEST_PROVIDER_INVOKE_CANCEL)(self);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 1000), 1);
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_CANCELLED);
	inv_free(inv);
	/* Destroy: the zygote exits and is reaped. */
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(kill((pid_t)zyg, 0), -1);
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
}
END_TEST

START_TEST(test_zygote_crash)
{
	/* A child that crashes is reported with its signal; the zygote lives on. */
	void *self = deployed("{}");
	int zyg = zygote_pid_of(self);
	hypertest_invocation *inv = run_one(self, "crash");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "function killed by signal 11") != NULL, "%s",
	              inv->message);
	inv_free(inv);
	ck_assert_int_eq(zygote_pid_of(self), zyg);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_zygote_killed)
{
	/* The zygote dies while invocations run: they fail and say why, the
	 * next ones start with exec. */
	void *self = deployed("{}");
	int zyg = zygote_pid_of(self);
	char fifo[1024];
	snprintf(fifo, sizeof fifo, "%s/gate", C.project_dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	hypertest_invocation *invs[3];
	for (int i = 0; i < 3; i++) {
		invs[i] = inv_new(i);
		start(self, invs[i], pathf("gate %s", fifo));
	}
	long kids[3];
	int nkids = 0;
	for (int t = 0; t < 500 && nkids < 3; t++) {
		OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 10);
		FILE *f = fopen(pathf("/proc/%d/task/%d/children", zyg, zyg), "r");
		ck_assert_ptr_nonnull(f);
		for (nkids = 0; nkids < 3 && fscanf(f, "%ld", &kids[nkids]) == 1; nkids++)
			;
		fclose(f);
	}
	ck_assert_int_eq(nkids, 3);
	C.last_log[0] = '\0';
	ck_assert_int_eq(kill(zyg, SIGKILL), 0);
	wait_n(self, 3, 10);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(invs[i]->code, HYPERTEST_ERR_PROVIDER);
		const char *m = invs[i]->message;
		ck_assert_msg(strstr(m, pathf("the function zygote (pid %d) ended: killed by signal 9",
		                              zyg)) && strstr(m, "the next ones start with exec"),
		              "%s", m);
		inv_free(invs[i]);
	}
	ck_assert_msg(strstr(C.last_log, "with exec") != NULL, "%s", C.last_log);
	/* Its children died with it. */
	for (int i = 0; i < 3; i++) {
		int t = 0;
		while (proc_stat_field(kids[i], 3) > 0 && t++ < 200)
			usleep(10000);
		ck_assert_msg(proc_stat_field(kids[i], 3) < 0 ||
		                  proc_stat_field(kids[i], 3) == 1, "child %ld lives on", kids[i]);
	}
	/* The rest runs, with exec. */
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_int_eq(atol(field(inv->response, "ppid")), getpid());
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_zygote_program_not_zygote)
{
	/* A function program that does not serve as a zygote (here: it cannot
	 * load the module): a warning, and every invocation starts with exec. */
	setenv("HT_PROVIDER_LOCAL_SO", "/nonexistent/provider-local.so", 1);
	void *self = deployed("{}");
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	ck_assert_int_eq(atol(field(inv->response, "ppid")), getpid());
	ck_assert_msg(strstr(C.last_log, "did not serve as a zygote") &&
	              strstr(C.last_log, "/nonexistent/provider-local.so"), "%s", C.last_log);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_bubblewrap)
{
	void *self = deployed("{\"isolation\": \"bubblewrap\", \"bucketDir\": \"bkt\"}");
	char root[1024], scratch[1024];
	snprintf(root, sizeof root, "%s/.hypertest/function/images/%s/root", C.project_dir,
	         digest1 + 7);
	hypertest_invocation *inv = run_one(self, "env");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	snprintf(scratch, sizeof scratch, "%s/.hypertest/function/scratch/%s", C.project_dir,
	         inv->test_id);
	ck_assert_str_eq(field(inv->response, "cwd"), scratch);
	ck_assert_str_eq(field(inv->response, "HYPERTEST_FUNCTION_CONFIG"),
	                 pathf("%s/var/task/hypertest.config.json", root));
	ck_assert_int_lt(atoi(field(inv->response, "pid")), 10); /* a pid namespace */
	inv_free(inv);
	/* The image is read-only, the scratch directory and the bucket are not. */
	inv = run_one(self, "write tests/../x");
	ck_assert_str_eq(inv->response, strerror(EROFS));
	inv_free(inv);
	inv = run_one(self, pathf("write %s/y", C.project_dir));
	ck_assert_str_eq(inv->response, strerror(EROFS));
	inv_free(inv);
	inv = run_one(self, "write z");
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	inv = run_one(self, pathf("write %s/bkt/w", C.project_dir));
	ck_assert_str_eq(inv->response, "ok");
	inv_free(inv);
	ck_assert_int_eq(file_size(pathf("%s/bkt/w", C.project_dir)), 0);
	/* bwrap turns a signal into status 128 + N; the message says which. */
	inv = run_one(self, "crash");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(inv->message, "status 139 (killed by signal 11") != NULL, "%s",
	              inv->message);
	inv_free(inv);
	inv = run_one(self, "exit 3 oops");
	ck_assert_str_eq(inv->message, "function exited with status 3; stderr: oops");
	inv_free(inv);
	/* A timeout kills the sandbox and all in it. */
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok("{\"isolation\": \"bubblewrap\", \"bucketDir\": \"bkt\", \"timeout\": 0.5}");
	char *beat = pathf("%s/bkt/beat", C.project_dir);
	inv = inv_new(9);
	start(self, inv, pathf("hang2 %s", beat));
	wait_n(self, 1, 10);
	ck_assert_str_eq(inv->message, "timed out after 0.5 s");
	assert_heartbeat_stopped(beat);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- serve ------------------------------------------------------------------------- */

START_TEST(test_serve)
{
	void *self = create_ok("{}");
	char *in = pathf("%s/payload", C.project_dir);
	char out[1024];
	snprintf(out, sizeof out, "%s/response", C.project_dir);
	write_text(in, "{\"runId\": \"r\"}");
	int fd = open(in, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int saved = dup(1);
	dup2(fd, 1);
	close(fd);
	hypertest_function fn = {0};
	int rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn);
	dup2(saved, 1);
	close(saved);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(fn.calls, 1);
	ck_assert_str_eq(read_text(out), "{\"len\": 14, \"head\": \"{\"runId\"\"}");

	/* No response at all: an error. */
	fd = open(in, O_RDONLY);
	dup2(fd, 0);
	close(fd);
	fn.fail = 1;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_SERVE)(self, &fn), HYPERTEST_ERR_RUNNER);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- doctor -------------------------------------------------------------------------- */

static int check_status(const hypertest_checks *c, const char *name, const char **msg)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name)) {
			if (msg)
				*msg = c->msg[i];
			return c->status[i];
		}
	return -1;
}

START_TEST(test_doctor)
{
	void *self = create_ok("{}");
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(check_status(&c, "provider.local.bucket", NULL), HYPERTEST_CHECK_OK);
	ck_assert_int_eq(check_status(&c, "provider.local.function", NULL), HYPERTEST_CHECK_OK);
	ck_assert_int_eq(check_status(&c, "provider.local.deployed", NULL), HYPERTEST_CHECK_WARNING);
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", NULL), -1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "t", digest1), 0);
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	const char *msg;
	ck_assert_int_eq(check_status(&c, "provider.local.deployed", &msg), HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(msg, digest1) != NULL, "%s", msg);
	OP(HYPERTEST_OP_DESTROY)(self);

	/* A bucket below a file, a missing program. */
	write_text(pathf("%s/file", C.project_dir), "");
	snprintf(C.program, sizeof C.program, "/nonexistent/hypertest-function");
	self = create_ok("{\"bucketDir\": \"file/bucket\"}");
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(check_status(&c, "provider.local.bucket", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "file/bucket") != NULL, "%s", msg);
	ck_assert_int_eq(check_status(&c, "provider.local.function", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "/nonexistent/hypertest-function") != NULL, "%s", msg);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_doctor_bubblewrap)
{
	void *self = create_ok("{\"isolation\": \"bubblewrap\"}");
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(c.n, 4);
	const char *msg;
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", &msg), HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(msg, "bwrap") != NULL, "%s", msg);
	/* bwrap gone after create: the check fails and says why. */
	char empty[600];
	snprintf(empty, sizeof empty, "%s/nobin", C.project_dir);
	mkdir(empty, 0777);
	setenv("PATH", empty, 1);
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "bwrap") != NULL, "%s", msg);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- isolation "image" ------------------------------------------------------------- */

/* A statically linked busybox (Debian package busybox-static). */
static const char *busybox_path(void)
{
	const char *env = getenv("HT_BUSYBOX");
	return env && *env ? env : "/bin/busybox";
}

/* The entry point of the test image: the payload on stdin, a report on
 * stdout ("NAME=value" lines), the payload as an artifact in the bucket;
 * "hang" beats in the bucket forever (and so does a child), "fail" writes
 * on stderr and exits with 3, "big" answers 5000 bytes. */
static const char image_script[] =
	"p=$(/bin/busybox cat)\n"
	"case \"$p\" in\n"
	"hang) (while :; do echo . >> \"$HYPERTEST_LOCAL_BUCKET/beat2\"; /bin/busybox usleep 20000; "
	"done) &\n"
	"      while :; do echo . >> \"$HYPERTEST_LOCAL_BUCKET/beat\"; /bin/busybox usleep 20000; "
	"done ;;\n"
	"fail) echo oops >&2; exit 3 ;;\n"
	"big) /bin/busybox head -c 5000 /dev/zero; exit 0 ;;\n"
	"esac\n"
	"echo \"$p\" > \"$HYPERTEST_LOCAL_BUCKET/artifact.txt\"\n"
	"echo \"payload=$p\"\n"
	"echo \"args=$0 $*\"\n"
	"echo \"cwd=$(pwd)\"\n"
	"echo \"pid=$$\"\n"
	"if [ -e /image-marker ]; then echo marker=present; else echo marker=absent; fi\n"
	"if [ -e /etc/hostname ]; then echo hostname=present; else echo hostname=absent; fi\n"
	"if [ -e /usr ]; then echo usr=present; else echo usr=absent; fi\n"
	"if echo x > /x 2>/dev/null; then echo root=writable; else echo root=read-only; fi\n"
	"if echo x > \"$HOME/h\" && echo x > \"$TMPDIR/t\"; then echo home=writable; fi\n"
	"echo \"IMAGE_MARK=${IMAGE_MARK-(unset)}\"\n"
	"echo \"LOCAL_TEST_MARK=${LOCAL_TEST_MARK-(unset)}\"\n"
	"echo \"HOME=${HOME-(unset)}\"\n"
	"echo \"TMPDIR=${TMPDIR-(unset)}\"\n"
	"echo \"HYPERTEST_LOCAL_BUCKET=${HYPERTEST_LOCAL_BUCKET-(unset)}\"\n"
	"echo \"HYPERTEST_FUNCTION_CONFIG=${HYPERTEST_FUNCTION_CONFIG-(unset)}\"\n"
	"echo \"HYPERTEST_PLUGIN_PATH=${HYPERTEST_PLUGIN_PATH-(unset)}\"\n"
	"echo \"PATH=${PATH-(unset)}\"\n"
	"echo \"PWD=${PWD-(unset)}\"\n";

/* Build the test image into the OCI layout <project>/img (tag latest): a
 * root of /bin/busybox, /bin/sh (busybox too) and /image-marker; Env
 * IMAGE_MARK and PATH; with entrypoint, Entrypoint ["/bin/sh", "-c",
 * image_script, "entry"] and Cmd ["a b", "c"].  *digest: the manifest's. */
static void build_busybox_image(int entrypoint, char digest[80])
{
	ht_err err = {0};
	ht_image *img = ht_image_new(NULL, &err);
	ck_assert_msg(img != NULL, "%s", err.msg);
	ht_layer *lb = ht_layer_new();
	ck_assert_ptr_nonnull(lb);
	ck_assert_msg(ht_layer_add_path(lb, busybox_path(), "/bin/busybox", &err) == 0, "%s",
	              err.msg);
	ck_assert_msg(ht_layer_add_path(lb, busybox_path(), "/bin/sh", &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_layer_add_data(lb, "/image-marker", "busybox\n", 8, 0644, &err) == 0, "%s",
	              err.msg);
	ck_assert_int_eq(ht_layer_set(lb, "env", "IMAGE_MARK=from-image", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "PATH=/bin", &err), 0);
	if (entrypoint) {
		json_t *ep = json_pack("[s, s, s, s]", "/bin/sh", "-c", image_script, "entry");
		char *text = json_dumps(ep, 0);
		ck_assert_msg(ht_layer_set(lb, "entrypoint", text, &err) == 0, "%s", err.msg);
		ck_assert_msg(ht_layer_set(lb, "cmd", "[\"a b\", \"c\"]", &err) == 0, "%s", err.msg);
		free(text);
		json_decref(ep);
	}
	char *work = pathf("%s/build", C.project_dir);
	ck_assert_msg(ht_image_append_layer(img, lb, work, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_write_layout(img, pathf("%s/img", C.project_dir), "latest", digest,
	                                    &err) == 0, "%s", err.msg);
	ht_layer_free(lb);
	ht_image_free(img);
}

static const char image_options[] =
	"{\"isolation\": \"image\", \"imageDir\": \"img\", \"bucketDir\": \"bkt\"}";

/* The test image deployed through the provider's update. */
static void *image_deployed(const char *options, char digest[80])
{
	C.real_unpack = 1;
	build_busybox_image(1, digest);
	void *self = create_ok(options);
	int rc = OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest);
	ck_assert_msg(rc == 0, "update: %d %s", rc, C.error);
	return self;
}

START_TEST(test_image_target_and_doctor)
{
	void *self = create_ok(image_options);
	hypertest_params t;
	memset(&t, 0, sizeof t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t), 0);
	int found = 0;
	for (int i = 0; i < t.n; i++)
		if (!strcmp(t.key[i], "runtimeLayer"))
			found = !strcmp(t.val[i], "1");
	ck_assert_msg(found, "runtimeLayer is not \"1\" in the image target");
	/* doctor checks bwrap as for "bubblewrap" */
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	ck_assert_int_eq(check_status(&c, "provider.local.bubblewrap", NULL), HYPERTEST_CHECK_OK);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* the other isolations ask for no runtime layer */
	self = create_ok("{\"isolation\": \"bubblewrap\"}");
	memset(&t, 0, sizeof t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t), 0);
	for (int i = 0; i < t.n; i++)
		ck_assert_str_ne(t.key[i], "runtimeLayer");
	OP(HYPERTEST_OP_DESTROY)(self);
	/* without bwrap, "image" cannot be created */
	char *empty = pathf("%s/nobin", C.project_dir);
	mkdir(empty, 0777);
	setenv("PATH", empty, 1);
	void *none = NULL;
	ck_assert_int_eq(OP(HYPERTEST_OP_CREATE)(&C, image_options, &none), HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(C.error, "\"image\"") && strstr(C.error, "bwrap"), "%s",
	              C.error);
	/* ... except on the function side, in the image (started by this
	 * provider: HYPERTEST_LOCAL_BUCKET set), which only serves */
	setenv("HYPERTEST_LOCAL_BUCKET", "/tmp/.hypertest-bucket", 1);
	self = create_ok(image_options);
	C.real_unpack = 1;
	char digest[80];
	build_busybox_image(1, digest);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest), 0);
	hypertest_invocation *inv = inv_new(1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "x", 1), HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(C.error, "bwrap") != NULL, "%s", C.error);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_image_invoke)
{
	char digest[80];
	setenv("LOCAL_TEST_MARK", "inherited", 1);
	void *self = image_deployed(image_options, digest);
	/* current records the image config */
	json_t *cur = json_load_file(pathf("%s/.hypertest/function/current", C.project_dir), 0, NULL);
	ck_assert_ptr_nonnull(cur);
	json_t *ep = json_object_get(json_object_get(cur, "imageConfig"), "Entrypoint");
	ck_assert_str_eq(json_string_value(json_array_get(ep, 0)), "/bin/sh");
	ck_assert_str_eq(json_string_value(json_array_get(ep, 2)), image_script);
	json_decref(cur);

	hypertest_invocation *inv = run_one(self, "hello");
	ck_assert_msg(inv->code == 0, "%s", inv->message);
	const char *r = inv->response;
	ck_assert_str_eq(field(r, "payload"), "hello");
	ck_assert_str_eq(field(r, "args"), "entry a b c"); /* Entrypoint + Cmd, no shell */
	ck_assert_str_eq(field(r, "cwd"), "/var/task");    /* no WorkingDir: Lambda's */
	ck_assert_str_eq(field(r, "PWD"), "/var/task");
	ck_assert_int_lt(atoi(field(r, "pid")), 10);       /* a pid namespace */
	/* / is the image */
	ck_assert_str_eq(field(r, "marker"), "present");
	ck_assert_str_eq(field(r, "hostname"), "absent");
	ck_assert_str_eq(field(r, "usr"), "absent");
	ck_assert_str_eq(field(r, "root"), "read-only");
	ck_assert_str_eq(field(r, "home"), "writable");
	/* the image's environment, not the orchestrator's */
	ck_assert_str_eq(field(r, "IMAGE_MARK"), "from-image");
	ck_assert_str_eq(field(r, "PATH"), "/bin");
	ck_assert_str_eq(field(r, "LOCAL_TEST_MARK"), "(unset)");
	ck_assert_str_eq(field(r, "HYPERTEST_PLUGIN_PATH"), "(unset)");
	ck_assert_str_eq(field(r, "HYPERTEST_FUNCTION_CONFIG"), "/var/task/hypertest.config.json");
	ck_assert_str_eq(field(r, "HYPERTEST_LOCAL_BUCKET"), "/tmp/.hypertest-bucket");
	ck_assert_str_eq(field(r, "HOME"), "/tmp/.hypertest-scratch/.hypertest/home");
	ck_assert_str_eq(field(r, "TMPDIR"), "/tmp/.hypertest-scratch/.hypertest/tmp");
	/* the artifact reached the bucket */
	ck_assert_str_eq(read_text(pathf("%s/bkt/artifact.txt", C.project_dir)), "hello\n");
	inv_free(inv);

	/* failures and the response cap, as with bubblewrap */
	inv = run_one(self, "fail");
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_PROVIDER);
	ck_assert_str_eq(inv->message, "function exited with status 3; stderr: oops");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok("{\"isolation\": \"image\", \"imageDir\": \"img\", \"bucketDir\": \"bkt\", "
	                 "\"maxResponseBytes\": 4999}");
	inv = run_one(self, "big");
	ck_assert_str_eq(inv->message, "response larger than 4999 bytes");
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_image_timeout)
{
	char digest[80];
	void *self = image_deployed("{\"isolation\": \"image\", \"imageDir\": \"img\", "
	                            "\"bucketDir\": \"bkt\", \"timeout\": 0.5}", digest);
	hypertest_invocation *inv = inv_new(1);
	double t0 = fake_now_s();
	start(self, inv, "hang");
	wait_n(self, 1, 10);
	double t = fake_now_s() - t0;
	ck_assert_int_eq(inv->code, HYPERTEST_ERR_TIMEOUT);
	ck_assert_str_eq(inv->message, "timed out after 0.5 s");
	ck_assert_msg(t >= 0.5 && t < 2, "timeout after %.3f s", t);
	/* the sandbox died with everything in it */
	assert_heartbeat_stopped(pathf("%s/bkt/beat", C.project_dir));
	assert_heartbeat_stopped(pathf("%s/bkt/beat2", C.project_dir));
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_image_no_entrypoint)
{
	char digest[80];
	C.real_unpack = 1;
	build_busybox_image(0, digest);
	void *self = create_ok(image_options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest), 0);
	hypertest_invocation *inv = inv_new(1);
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "x", 1);
	ck_assert_int_eq(rc, HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "no entry point") && strstr(C.error, digest) &&
	              strstr(C.error, "deploy again"), "%s", C.error);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	ck_assert_int_eq(inv->done, 0);
	inv_free(inv);
	hypertest_checks c;
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	const char *msg;
	ck_assert_int_eq(check_status(&c, "provider.local.deployed", &msg), HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(msg, "no entry point") != NULL, "%s", msg);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* What update reads from the layout is checked against its digests. */
START_TEST(test_image_config_verified)
{
	char digest[80];
	C.real_unpack = 1;
	build_busybox_image(1, digest);
	/* unpacked (and recorded) once, with another isolation */
	void *self = create_ok("{\"isolation\": \"bubblewrap\", \"imageDir\": \"img\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* A digest the layout does not list (its tag unpacks). */
	self = create_ok(image_options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest1),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "index.json") && strstr(C.error, digest1), "%s",
	              C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* the config blob, found through index.json and the manifest */
	json_t *index = json_load_file(pathf("%s/img/index.json", C.project_dir), 0, NULL);
	const char *md = json_string_value(
	    json_object_get(json_array_get(json_object_get(index, "manifests"), 0), "digest"));
	ck_assert_str_eq(md, digest);
	json_t *man = json_load_file(pathf("%s/img/blobs/sha256/%s", C.project_dir, md + 7), 0, NULL);
	char cd[80];
	snprintf(cd, sizeof cd, "%s",
	         json_string_value(json_object_get(json_object_get(man, "config"), "digest")));
	char *cpath = pathf("%s/img/blobs/sha256/%s", C.project_dir, cd + 7);
	json_decref(man);
	json_decref(index);
	/* one byte of it changed, the size kept: "Entrypoint" -> "Entrypoinu" */
	FILE *f = fopen(cpath, "r");
	ck_assert_ptr_nonnull(f);
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	char *at = strstr(text, "\"Entrypoint\"");
	ck_assert_ptr_nonnull(at);
	at[10] = 'u';
	chmod(cpath, 0644);
	f = fopen(cpath, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, n, f), n);
	fclose(f);

	self = create_ok(image_options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "does not match its digest") &&
	              strstr(C.error, cd + 7), "%s", C.error);
	ck_assert_int_eq(C.unpacks, 1); /* the config is read before unpacking */
	OP(HYPERTEST_OP_DESTROY)(self);
	/* Other isolations do not need the config: the update succeeds without
	 * it, and switching to "image" then says what is missing. */
	self = create_ok("{\"isolation\": \"bubblewrap\", \"imageDir\": \"img\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok(image_options);
	hypertest_invocation *inv = inv_new(1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "x", 1), HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "no entry point recorded"), "%s", C.error);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

static int have_bwrap(void)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path ? path : "");
	for (char *dir = strtok(buf, ":"); dir; dir = strtok(NULL, ":"))
		if (access(pathf("%s/bwrap", dir), X_OK) == 0)
			return 1;
	return 0;
}

static Suite *suite(void)
{
	Suite *s = suite_create("provider-local");
	TCase *t = tcase_create("options");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, test_options_defaults);
	tcase_add_test(t, test_options_paths);
	tcase_add_loop_test(t, test_options_invalid, 0,
	                    (int)(sizeof bad_options / sizeof bad_options[0]));
	tcase_add_test(t, test_bwrap_missing);
	tcase_add_test(t, test_nofile_raised);
	suite_add_tcase(s, t);

	t = tcase_create("bucket");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, test_bucket_put_get);
	tcase_add_loop_test(t, test_bucket_bad_keys, 0, (int)(sizeof bad_keys / sizeof bad_keys[0]));
	tcase_add_test(t, test_artifacts_store);
	tcase_add_test(t, test_function_update);
	suite_add_tcase(s, t);

	t = tcase_create("invoke");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_invoke_not_deployed);
	tcase_add_test(t, test_invoke_missing_program);
	tcase_add_test(t, test_invoke_exec_fails);
	tcase_add_test(t, test_invoke_environment);
	tcase_add_test(t, test_invoke_tmpdir);
	tcase_add_test(t, test_invoke_scratch_files);
	tcase_add_test(t, test_scratch_reuse);
	tcase_add_test(t, test_invoke_big_payload);
	tcase_add_test(t, test_invoke_timeout);
	tcase_add_test(t, test_invoke_wait_timeout);
	tcase_add_test(t, test_invoke_oversized);
	tcase_add_test(t, test_invoke_failures);
	tcase_add_test(t, test_invoke_cancel);
	tcase_add_test(t, test_invoke_parent_death);
	tcase_add_test(t, test_destroy_in_flight);
	tcase_add_test(t, test_invoke_no_pidfd);
	tcase_add_test(t, test_invoke_memory_limit);
	tcase_add_test(t, test_invoke_reaped_elsewhere);
	suite_add_tcase(s, t);

	t = tcase_create("zygote");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	tcase_add_test(t, test_zygote_children);
	tcase_add_test(t, test_zygote_crash);
	tcase_add_test(t, test_zygote_killed);
	tcase_add_test(t, test_zygote_program_not_zygote);
	suite_add_tcase(s, t);

	/* The invocation tests again, with one exec per invocation. */
	t = tcase_create("invoke-exec");
	tcase_add_checked_fixture(t, setup_exec, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, test_invoke_environment);
	tcase_add_test(t, test_invoke_tmpdir);
	tcase_add_test(t, test_invoke_big_payload);
	tcase_add_test(t, test_invoke_timeout);
	tcase_add_test(t, test_invoke_oversized);
	tcase_add_test(t, test_invoke_failures);
	tcase_add_test(t, test_invoke_cancel);
	tcase_add_test(t, test_invoke_parent_death);
	tcase_add_test(t, test_destroy_in_flight);
	tcase_add_test(t, test_invoke_no_pidfd);
	tcase_add_test(t, test_invoke_memory_limit);
	tcase_add_test(t, test_invoke_reaped_elsewhere);
	tcase_add_test(t, test_invoke_in_flight);
	suite_add_tcase(s, t);

	t = tcase_create("scale");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 300);
	tcase_add_test(t, test_invoke_parallel);
	tcase_add_test(t, test_invoke_in_flight);
	suite_add_tcase(s, t);

	if (have_bwrap()) {
		t = tcase_create("bubblewrap");
		tcase_add_checked_fixture(t, setup, teardown);
		tcase_set_timeout(t, 60);
		tcase_add_test(t, test_invoke_bubblewrap);
		tcase_add_test(t, test_bwrap_parent_death);
		tcase_add_test(t, test_doctor_bubblewrap);
		suite_add_tcase(s, t);
	} else {
		fprintf(stderr, "bwrap is not on PATH: the bubblewrap tests do not run\n");
	}

	if (have_bwrap() && access(busybox_path(), X_OK) == 0) {
		t = tcase_create("image");
		tcase_add_checked_fixture(t, setup, teardown);
		tcase_set_timeout(t, 60);
		tcase_add_test(t, test_image_target_and_doctor);
		tcase_add_test(t, test_image_invoke);
		tcase_add_test(t, test_image_timeout);
		tcase_add_test(t, test_image_no_entrypoint);
		tcase_add_test(t, test_image_config_verified);
		suite_add_tcase(s, t);
	} else {
		fprintf(stderr, "bwrap or %s (Debian package busybox-static) missing: the "
		        "isolation \"image\" tests do not run\n", busybox_path());
	}

	t = tcase_create("function side");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_add_test(t, test_serve);
	tcase_add_test(t, test_doctor);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_ENV);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
