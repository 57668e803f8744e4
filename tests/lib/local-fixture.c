/*
 * local-fixture.c - what the local provider's tests share
 * (plugins/check_provider_local and its local-*.c): the test's core (the
 * upcalls of fake-core.c and the function and image upcalls below), the
 * module loaded with dlopen() in setup(), and helpers to create, deploy and
 * invoke.  See local-fixture.h.
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

#include "image.h" /* the core's own, to build real images */

/* ---- the test's core: fake-core.c's upcalls, and these ----------------------------- */

struct hypertest_core C;
char project_dir[256]; /* C.project_dir */
void *module;

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

void write_text(const char *path, const char *text)
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

char *helper_path(void)
{
	const char *env = getenv("HT_LOCAL_HELPER");
	static char path[512];
	snprintf(path, sizeof path, "%s", env && *env ? env : HT_TESTS_BUILDDIR "/lib/local-helper");
	return path;
}

/* CPU time of this process (not of its children). */
double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void setup(void)
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
void setup_exec(void)
{
	setup();
	setenv("HYPERTEST_LOCAL_NO_ZYGOTE", "1", 1);
}

int zygote_mode(void)
{
	const char *no = getenv("HYPERTEST_LOCAL_NO_ZYGOTE");
	return !(no && *no && strcmp(no, "0"));
}

void teardown(void)
{
	fake_rm_tree(C.project_dir);
	if (module)
		dlclose(module);
	module = NULL;
}

/* The tests look into the project's .hypertest/function: options without a
 * functionDir get that one (the default, in the user's cache, has a test of
 * its own in local-options.c). */
void *create_ok(const char *options)
{
	void *self = NULL;
	json_t *o = options ? json_loads(options, JSON_DECODE_ANY, NULL) : NULL;
	char *with = NULL;
	if (!o || json_is_null(o)) {
		json_decref(o);
		o = json_object();
	}
	if (json_is_object(o) && !json_object_get(o, "functionDir")) {
		json_object_set_new(o, "functionDir", json_string(".hypertest/function"));
		with = json_dumps(o, JSON_COMPACT);
	}
	json_decref(o);
	int rc = OP(HYPERTEST_OP_CREATE)(&C, with ? with : options, &self);
	ck_assert_msg(rc == 0, "create(%s): %d %s", options, rc, C.error);
	free(with);
	return self;
}

/* create() with the options as they are. */
void *create_raw_ok(const char *options)
{
	void *self = NULL;
	int rc = OP(HYPERTEST_OP_CREATE)(&C, options, &self);
	ck_assert_msg(rc == 0, "create(%s): %d %s", options, rc, C.error);
	return self;
}

/* printf into one of 64 rotating buffers: a result stays valid for the
 * next 63 calls. */
char *pathf(const char *fmt, ...)
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

const char digest1[] =
	"sha256:1111111111111111111111111111111111111111111111111111111111111111";
const char digest2[] =
	"sha256:2222222222222222222222222222222222222222222222222222222222222222";

void *deployed(const char *options)
{
	void *self = create_ok(options);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "hypertest:latest", digest1), 0);
	return self;
}

hypertest_invocation *inv_new(int i)
{
	hypertest_invocation *inv = calloc(1, sizeof *inv);
	snprintf(inv->test_id, sizeof inv->test_id, "00000000-0000-4000-8000-%012d", i);
	return inv;
}

void inv_free(hypertest_invocation *inv)
{
	free(inv->response);
	free(inv->message);
	free(inv);
}

void start(void *self, hypertest_invocation *inv, const char *payload)
{
	int rc = OP(HYPERTEST_PROVIDER_INVOKE_START)(self, inv, payload, strlen(payload));
	ck_assert_msg(rc == 0, "start: %d %s", rc, C.error);
}

/* Wait until n invocations completed (at most limit_s seconds). */
void wait_n(void *self, int n, double limit_s)
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
hypertest_invocation *run_one(void *self, const char *payload)
{
	hypertest_invocation *inv = inv_new(1);
	start(self, inv, payload);
	wait_n(self, 1, 30);
	ck_assert(inv->done);
	return inv;
}

off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The heartbeat file stopped growing (its writers are dead). */
void assert_heartbeat_stopped(const char *file)
{
	usleep(150000);
	off_t a = file_size(file);
	usleep(300000);
	off_t b = file_size(file);
	ck_assert_msg(a > 0, "no heartbeat in %s", file);
	ck_assert_msg(a == b, "%s still grows (%ld -> %ld): a process survived", file, (long)a,
	              (long)b);
}

void wait_heartbeat(const char *file)
{
	double end = fake_now_s() + 10;
	while (file_size(file) <= 0) {
		ck_assert_msg(fake_now_s() < end, "no heartbeat in %s", file);
		usleep(10000);
	}
}
char *read_text(const char *path)
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

/* Value of NAME=... in the helper's env report. */
const char *field(const char *report, const char *name)
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

/* Entries of /proc/PID/task/PID/children (up to max of them in pids). */
int children_of(long pid, long *pids, int max)
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
void wait_zygote_children(void *self, int n)
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

int check_status(const hypertest_checks *c, const char *name, const char **msg)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name)) {
			if (msg)
				*msg = c->msg[i];
			return c->status[i];
		}
	return -1;
}

int have_bwrap(void)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path ? path : "");
	for (char *dir = strtok(buf, ":"); dir; dir = strtok(NULL, ":"))
		if (access(pathf("%s/bwrap", dir), X_OK) == 0)
			return 1;
	return 0;
}
