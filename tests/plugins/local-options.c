/*
 * local-options.c - the local provider's options, bucket, artifacts and
 * function updates (see check_provider_local.c).
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
#include "local-fixture.h"
#include "check_provider_local.h"

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

/* Without functionDir the unpacked image and the scratch directories live
 * in the user's cache, one directory per project keyed by its path, never
 * in the project where a runner's listing would find them. */
START_TEST(test_options_function_dir_default)
{
	char cache[600], other[600];
	snprintf(cache, sizeof cache, "%s/cache", C.project_dir);
	setenv("XDG_CACHE_HOME", cache, 1);
	void *self = create_raw_ok("{}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "hypertest:latest", digest1), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(file_size(pathf("%s/.hypertest/function", C.project_dir)), -1);
	DIR *d = opendir(pathf("%s/hypertest/local", cache));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	int n = 0;
	char *name = NULL;
	const char *base = strrchr(C.project_dir, '/') + 1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			n++;
			name = pathf("%s", e->d_name);
		}
	closedir(d);
	ck_assert_int_eq(n, 1);
	/* <project name>-<16 hex digits> */
	ck_assert_uint_eq(strlen(name), strlen(base) + 17);
	ck_assert_int_eq(strncmp(name, base, strlen(base)), 0);
	ck_assert_int_eq(name[strlen(base)], '-');
	ck_assert_uint_eq(strspn(name + strlen(base) + 1, "0123456789abcdef"), 16);
	char *fn = pathf("%s/hypertest/local/%s/function", cache, name);
	json_t *cur = json_load_file(pathf("%s/current", fn), 0, NULL);
	ck_assert_ptr_nonnull(cur);
	ck_assert_str_eq(json_string_value(json_object_get(cur, "root")),
	                 pathf("%s/images/%s/root", fn, digest1 + 7));
	json_decref(cur);

	/* The same project finds it again; another project has its own. */
	self = create_raw_ok("{}");
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), 0);
	ck_assert_str_eq(b.data, digest1);
	free(b.data);
	OP(HYPERTEST_OP_DESTROY)(self);
	snprintf(other, sizeof other, "%s/sub/%s", C.project_dir, base);
	C.project_dir = other;
	self = create_raw_ok("{}");
	memset(&b, 0, sizeof b);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), HYPERTEST_ERR_NOT_FOUND);
	OP(HYPERTEST_OP_DESTROY)(self);
	C.project_dir = project_dir;

	/* HOME when XDG_CACHE_HOME is not absolute; the project without either. */
	setenv("XDG_CACHE_HOME", "relative", 1);
	setenv("HOME", cache, 1);
	self = create_raw_ok("{}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "hypertest:latest", digest1), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(file_size(pathf("%s/.cache/hypertest/local/%s/function/current", cache,
	                                 name)) > 0, 1);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	self = create_raw_ok("{}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "hypertest:latest", digest1), 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(file_size(pathf("%s/.hypertest/function/current", C.project_dir)) > 0, 1);
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
	{"{\"functionImage\": \"oci:x\"}", "'functionImage' needs isolation"},
	{"{\"functionImage\": \"x\", \"isolation\": \"lambda\"}", "'functionImage'"},
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

/* An object is read with the manifest's cap (64 MiB): one byte more is
 * refused without reading it all; a FIFO is refused at once. */
START_TEST(test_bucket_get_cap)
{
	void *self = create_ok("{\"bucketDir\": \"bkt\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "big", "x", 1, NULL), 0);
	char *path = pathf("%s/bkt/big", C.project_dir);
	ck_assert_int_eq(truncate(path, ((off_t)64 << 20) + 1), 0); /* sparse */
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "big", &b), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(C.error, "bkt/big: larger than 64 MiB, the limit for an object read "
	                              "whole from the bucket"), "%s", C.error);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_int_eq(mkfifo(pathf("%s/bkt/fifo", C.project_dir), 0600), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "fifo", &b), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(C.error, "bkt/fifo: not a regular file"), "%s", C.error);
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

/* OBJECT_LIST: every regular file below the prefix, with its size; dot
 * files (atomic writes under way), symbolic links and what they point to
 * are not objects; the bucket directory itself may be a link. */
static const char *listed(const hypertest_params *ps, const char *key)
{
	for (int i = 0; i < ps->n; i++)
		if (!strcmp(ps->key[i], key))
			return ps->val[i];
	return NULL;
}

START_TEST(test_bucket_list)
{
	ck_assert_int_eq(mkdir(pathf("%s/real-bucket", C.project_dir), 0777), 0);
	ck_assert_int_eq(symlink("real-bucket", pathf("%s/bkt", C.project_dir)), 0);
	void *self = create_ok("{\"bucketDir\": \"bkt\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "run/t1/stdout.log", "abc", 3,
	                                                    NULL), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "run/t1/sub/shot.png", "", 0,
	                                                    NULL), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "run/hypertest.results.json",
	                                                    "{}", 2, NULL), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "runner/x", "x", 1, NULL), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "other/y", "y", 1, NULL), 0);
	const char *b = pathf("%s/real-bucket", C.project_dir);
	write_text(pathf("%s/run/t1/.stdout.log.tmp", b), "partial");
	ck_assert_int_eq(mkdir(pathf("%s/outside", C.project_dir), 0777), 0);
	write_text(pathf("%s/outside/secret", C.project_dir), "s");
	ck_assert_int_eq(symlink(pathf("%s/outside", C.project_dir), pathf("%s/run/t1/dirlink", b)),
	                 0);
	ck_assert_int_eq(symlink(pathf("%s/outside/secret", C.project_dir),
	                         pathf("%s/run/t1/filelink", b)), 0);
	ck_assert_int_eq(mkfifo(pathf("%s/run/t1/fifo", b), 0600), 0);

	hypertest_params ps;
	memset(&ps, 0, sizeof ps);
	ck_assert_msg(OP(HYPERTEST_PROVIDER_OBJECT_LIST)(self, "run/", &ps) == 0, "%s", C.error);
	ck_assert_int_eq(ps.n, 3);
	ck_assert_str_eq(listed(&ps, "run/t1/stdout.log"), "3");
	ck_assert_str_eq(listed(&ps, "run/t1/sub/shot.png"), "0");
	ck_assert_str_eq(listed(&ps, "run/hypertest.results.json"), "2");
	/* a prefix that ends inside a name */
	memset(&ps, 0, sizeof ps);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_LIST)(self, "run", &ps), 0);
	ck_assert_int_eq(ps.n, 4);
	ck_assert_str_eq(listed(&ps, "runner/x"), "1");
	memset(&ps, 0, sizeof ps);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_LIST)(self, "run/t1/sub/", &ps), 0);
	ck_assert_int_eq(ps.n, 1);
	memset(&ps, 0, sizeof ps);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_LIST)(self, "", &ps), 0);
	ck_assert_int_eq(ps.n, 5);
	/* nothing under the prefix, and no bucket at all: empty, no error */
	memset(&ps, 0, sizeof ps);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_LIST)(self, "nope/", &ps), 0);
	ck_assert_int_eq(ps.n, 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok("{\"bucketDir\": \"no-bucket-yet\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_LIST)(self, "run/", &ps), 0);
	ck_assert_int_eq(ps.n, 0);
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
	/* links are never followed (hypertest.config(5), ARTIFACTS) */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "run/test/link.txt", &b),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(C.last_log, ": not stored: a symbolic link (links are not followed)"),
	              "%s", C.last_log);
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

/* The artifacts directory is the function's own (plugin.h): on the bucket's
 * file system it is moved there whole, with the modes a copy has (files
 * 0644, directories 0777 & ~umask); a file with another link, or a key
 * already stored, is copied instead. */
static mode_t mode_of(const char *path)
{
	struct stat st;
	ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

START_TEST(test_artifacts_store_moved)
{
	void *self = create_ok("{\"bucketDir\": \"bkt\"}");
	mode_t mask = umask(022);
	umask(mask);
	char *art = strdup(pathf("%s/art", C.project_dir));
	ck_assert_int_eq(mkdir(art, 0700), 0);
	ck_assert_int_eq(mkdir(pathf("%s/sub", art), 0700), 0);
	write_text(pathf("%s/log.txt", art), "log");
	write_text(pathf("%s/sub/run.sh", art), "sh");
	ck_assert_int_eq(chmod(pathf("%s/log.txt", art), 0600), 0);
	ck_assert_int_eq(chmod(pathf("%s/sub/run.sh", art), 0755), 0);
	ck_assert_msg(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, "run/test", art) == 0, "%s",
	              C.error);
	ck_assert_int_eq(file_size(art), -1); /* moved, not copied */
	char *dst = strdup(pathf("%s/bkt/run/test", C.project_dir));
	ck_assert_str_eq(read_text(pathf("%s/log.txt", dst)), "log");
	ck_assert_str_eq(read_text(pathf("%s/sub/run.sh", dst)), "sh");
	ck_assert_int_eq(mode_of(pathf("%s/log.txt", dst)), 0644);
	ck_assert_int_eq(mode_of(pathf("%s/sub/run.sh", dst)), 0644);
	ck_assert_int_eq(mode_of(dst), 0777 & ~mask);
	ck_assert_int_eq(mode_of(pathf("%s/sub", dst)), 0777 & ~mask);

	/* the same key again: merged by a copy, what was there stays */
	ck_assert_int_eq(mkdir(art, 0700), 0);
	write_text(pathf("%s/more.txt", art), "more");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, "run/test", art), 0);
	ck_assert_str_eq(read_text(pathf("%s/more.txt", dst)), "more");
	ck_assert_str_eq(read_text(pathf("%s/log.txt", dst)), "log");
	ck_assert_str_eq(read_text(pathf("%s/more.txt", art)), "more"); /* copied */

	/* a hard link to a file elsewhere: copied; the file keeps its mode */
	ck_assert_int_eq(unlink(pathf("%s/more.txt", art)), 0);
	write_text(pathf("%s/outside.txt", C.project_dir), "outside");
	ck_assert_int_eq(chmod(pathf("%s/outside.txt", C.project_dir), 0600), 0);
	ck_assert_int_eq(link(pathf("%s/outside.txt", C.project_dir), pathf("%s/hard.txt", art)), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE)(self, "run/other", art), 0);
	ck_assert_str_eq(read_text(pathf("%s/bkt/run/other/hard.txt", C.project_dir)), "outside");
	ck_assert_int_eq(mode_of(pathf("%s/outside.txt", C.project_dir)), 0600);
	ck_assert_int_eq(mode_of(pathf("%s/bkt/run/other/hard.txt", C.project_dir)), 0644);
	ck_assert_int_eq(file_size(pathf("%s/hard.txt", art)), 7);
	free(art);
	free(dst);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- function update ------------------------------------------------------------------ */

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

void add_options_tests(TCase *t)
{
	tcase_add_test(t, test_options_defaults);
	tcase_add_test(t, test_options_function_dir_default);
	tcase_add_test(t, test_options_paths);
	tcase_add_loop_test(t, test_options_invalid, 0,
	                    (int)(sizeof bad_options / sizeof bad_options[0]));
	tcase_add_test(t, test_bwrap_missing);
	tcase_add_test(t, test_nofile_raised);
}

void add_bucket_tests(TCase *t)
{
	tcase_add_test(t, test_bucket_put_get);
	tcase_add_test(t, test_bucket_get_cap);
	tcase_add_loop_test(t, test_bucket_bad_keys, 0, (int)(sizeof bad_keys / sizeof bad_keys[0]));
	tcase_add_test(t, test_bucket_list);
	tcase_add_test(t, test_artifacts_store);
	tcase_add_test(t, test_artifacts_store_moved);
	tcase_add_test(t, test_function_update);
}
