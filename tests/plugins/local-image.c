/*
 * local-image.c - the local provider's isolation "image" with a real OCI
 * image (built here with the core's image API) whose root holds only a
 * static busybox (see check_provider_local.c).
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

#include "image.h" /* the core's own, to build real images */

/* ---- isolation "image" ------------------------------------------------------------- */

/* A statically linked busybox (Debian package busybox-static). */
const char *busybox_path(void)
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
	 * it (nor report its error to the core), and switching to "image" then
	 * says what is missing. */
	self = create_ok("{\"isolation\": \"bubblewrap\", \"imageDir\": \"img\"}");
	C.error[0] = '\0';
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest), 0);
	ck_assert_str_eq(C.error, "");
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok(image_options);
	hypertest_invocation *inv = inv_new(1);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, "x", 1), HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "no entry point recorded"), "%s", C.error);
	inv_free(inv);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* functionImage: the update unpacks and records the image of that layout
 * (its tag, default latest), not the digest deploy built. */
START_TEST(test_function_image)
{
	char digest[80];
	C.real_unpack = 1;
	build_busybox_image(1, digest); /* <project>/img, tagged latest */
	void *self = create_ok("{\"isolation\": \"lambda\", \"imageDir\": \"built\", "
	                       "\"functionImage\": \"oci:img\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest1), 0);
	ck_assert_str_eq(C.unpack_layout, pathf("%s/img", C.project_dir));
	hypertest_buffer b = {0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &b), 0);
	ck_assert_str_eq(b.data, digest);
	free(b.data);
	json_t *cur = json_load_file(pathf("%s/.hypertest/function/current", C.project_dir), 0, NULL);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(cur, "imageConfig"), "Entrypoint"));
	json_decref(cur);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* a tag the layout does not have: named, with the option */
	self = create_ok("{\"isolation\": \"image\", \"functionImage\": \"oci:img:v9\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "functionImage") && strstr(C.error, "no image tagged 'v9'"),
	              "%s", C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* no layout there */
	self = create_ok("{\"isolation\": \"lambda\", \"functionImage\": \"oci:nowhere\"}");
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "functionImage") && strstr(C.error, "nowhere/index.json"),
	              "%s", C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* index.json of the image layout is read with the core's cap on an OCI
 * index (4 MiB): a valid one padded past it is refused, saying so; a FIFO
 * in its place is refused at once instead of blocking the update. */
START_TEST(test_image_index_cap)
{
	char digest[80];
	C.real_unpack = 1;
	build_busybox_image(1, digest);
	char *ipath = pathf("%s/img/index.json", C.project_dir);
	FILE *f = fopen(ipath, "a");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < ((size_t)4 << 20); i += 64)
		fputs("                                                               \n", f);
	fclose(f);
	void *self = create_ok(image_options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "index.json: larger than 4 MiB, the limit for an OCI image "
	                              "index"), "%s", C.error);
	ck_assert_int_eq(C.unpacks, 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_int_eq(unlink(ipath), 0);
	ck_assert_int_eq(mkfifo(ipath, 0600), 0);
	self = create_ok(image_options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "latest", digest),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(C.error, "index.json: not a regular file"), "%s", C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

void add_image_tests(TCase *t)
{
	tcase_add_test(t, test_function_image);
	tcase_add_test(t, test_image_target_and_doctor);
	tcase_add_test(t, test_image_invoke);
	tcase_add_test(t, test_image_timeout);
	tcase_add_test(t, test_image_no_entrypoint);
	tcase_add_test(t, test_image_config_verified);
	tcase_add_test(t, test_image_index_cap);
}
