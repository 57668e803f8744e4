/*
 * check_abi.c - plugins built for every earlier minor version of the plugin
 * ABI keep loading and working in this core: the fixtures built for ABI 1.1,
 * 1.2 and 1.3 (tests/abi/fixtures/fixture-old-minor.c, for 1.0, is checked by
 * check_core), and the ABI probe built against the headers of the ABI
 * baseline (tests/abi/baseline/).  Each is loaded by a scan and then
 * called through doctor, where it uses the upcalls of its version.
 */
#define _XOPEN_SOURCE 700
#include <check.h>
#include <ftw.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hypertest/hypertest.h>

static char modules_dir[1024];

static char *tmpdir(void)
{
	char *d = strdup("/tmp/ht-abi-XXXXXX");
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(mkdtemp(d));
	return d;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(char *dir)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static const char *const modules[] = {"fixture-abi-1-1", "fixture-abi-1-2", "fixture-abi-1-3",
                                      "probe-baseline", NULL};

/* A plugin directory with symbolic links to the modules above. */
static char *plugin_dir(void)
{
	char *d = tmpdir(), src[2048], dst[2048];
	const char *const *m;
	for (m = modules; *m; m++) {
		snprintf(src, sizeof src, "%s/%s.so", modules_dir, *m);
		snprintf(dst, sizeof dst, "%s/%s.so", d, *m);
		ck_assert_msg(symlink(src, dst) == 0, "symlink %s: %s", src, strerror(errno));
	}
	return d;
}

/* "major.minor" of the plugin ABI of the baseline's headers. */
static void baseline_abi(char *out, size_t size)
{
	char path[2048], line[512];
	int major = -1, minor = -1;
	FILE *f;
	snprintf(path, sizeof path, "%s/abi/baseline/include/hypertest/plugin.h", HT_TESTS_SRCDIR);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		sscanf(line, "#define HYPERTEST_PLUGIN_ABI_MAJOR %d", &major);
		sscanf(line, "#define HYPERTEST_PLUGIN_ABI_MINOR %d", &minor);
	}
	fclose(f);
	ck_assert_msg(major >= 0 && minor >= 0, "no ABI version in %s", path);
	snprintf(out, size, "%d.%d", major, minor);
}

START_TEST(test_earlier_minors_load)
{
	char *plugins = plugin_dir(), baseline[32];
	hypertest *h = hypertest_new();
	size_t i;
	int seen11 = 0, seen12 = 0, seen13 = 0, seen_probe = 0;

	baseline_abi(baseline, sizeof baseline);
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	ck_assert_int_eq(hypertest_plugins_scan(h), HYPERTEST_OK);
	for (i = 0; i < hypertest_plugin_count(h); i++) {
		const char *path = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_PATH);
		const char *state = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_STATE);
		const char *abi = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ABI);
		const char *name = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_NAME);
		const char *error = hypertest_plugin_str(h, i, HYPERTEST_PLUGIN_ERROR);
		ck_assert_msg(strcmp(state, "loaded") == 0, "%s: %s (%s)", path, state, error);
		if (strstr(path, "fixture-abi-1-1")) {
			ck_assert_str_eq(abi, "1.1");
			ck_assert_str_eq(name, "minor11");
			seen11++;
		} else if (strstr(path, "fixture-abi-1-2")) {
			ck_assert_str_eq(abi, "1.2");
			ck_assert_str_eq(name, "minor12");
			seen12++;
		} else if (strstr(path, "fixture-abi-1-3")) {
			ck_assert_str_eq(abi, "1.3");
			ck_assert_str_eq(name, "minor13");
			seen13++;
		} else if (strstr(path, "probe-baseline")) {
			ck_assert_str_eq(abi, baseline);
			ck_assert_str_eq(name, "probe");
			seen_probe++;
		}
	}
	/* a runner and a provider each */
	ck_assert_int_eq(seen11, 2);
	ck_assert_int_eq(seen12, 2);
	ck_assert_int_eq(seen13, 2);
	ck_assert_int_eq(seen_probe, 2);
	hypertest_free(h);
	unsetenv("HYPERTEST_PLUGIN_PATH");
	rm_rf(plugins);
}
END_TEST

/* ---- doctor through each module: its upcalls answer as its version says ---- */

struct checks_seen {
	char text[8192];
};

static void on_event(const hypertest_event *ev, void *ud)
{
	struct checks_seen *s = ud;
	size_t n = strlen(s->text);
	if (hypertest_event_type(ev) != HYPERTEST_EVENT_DOCTOR_CHECK)
		return;
	snprintf(s->text + n, sizeof s->text - n, "%s|%lld|%s\n",
	         hypertest_event_str(ev, HYPERTEST_FIELD_CHECK),
	         (long long)hypertest_event_int(ev, HYPERTEST_FIELD_STATUS),
	         hypertest_event_str(ev, HYPERTEST_FIELD_MESSAGE));
}

static void doctor_with(const char *plugin, const char *const *expected)
{
	char *plugins = plugin_dir(), *project = tmpdir(), path[2048], cfg[1024];
	struct checks_seen seen = {{0}};
	hypertest *h = hypertest_new();
	int rc;

	snprintf(path, sizeof path, "%s/tests", project);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/tests/a.test", project);
	write_file(path, "a\n");
	snprintf(path, sizeof path, "%s/hypertest.config.json", project);
	snprintf(cfg, sizeof cfg,
	         "{\"imageName\": \"abi/hypertest\", \"testRunner\": {\"plugin\": \"%s\"},"
	         " \"cloudProvider\": {\"plugin\": \"%s\"}}\n",
	         plugin, plugin);
	write_file(path, cfg);

	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	hypertest_set_event_callback(h, on_event, &seen);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	rc = hypertest_doctor(h);
	for (; *expected; expected++)
		ck_assert_msg(strstr(seen.text, *expected), "'%s' missing from the checks:\n%s",
		              *expected, seen.text);
	ck_assert_msg(rc == HYPERTEST_OK, "doctor: %s\n%s", hypertest_errmsg(h), seen.text);
	hypertest_free(h);
	unsetenv("HYPERTEST_PLUGIN_PATH");
	rm_rf(project);
	rm_rf(plugins);
}

START_TEST(test_abi_1_1_buffers)
{
	/* the runner's and the provider's own check, with their buffers */
	static const char *const expected[] = {"buffers|0|abi 1.1\nbuffers|0|abi 1.1\n", NULL};
	doctor_with("minor11", expected);
}
END_TEST

START_TEST(test_abi_1_2_init_error)
{
	static const char *const expected[] = {"initError|0|none (ABI 1.2)\ninitError|0|none (ABI 1.2)\n",
	                                       NULL};
	doctor_with("minor12", expected);
}
END_TEST

/* A provider built for ABI 1.2 has no provisioning operations: provision
 * and destroy say so, naming the plugin and its ABI. */
START_TEST(test_abi_1_2_no_provisioning)
{
	char *plugins = plugin_dir(), *project = tmpdir(), path[2048], *res = (char *)1;
	hypertest *h = hypertest_new();
	const char *want = "provider 'minor12': provisioning not supported (built for ABI 1.2)";

	snprintf(path, sizeof path, "%s/hypertest.config.json", project);
	write_file(path, "{\"imageName\": \"abi/hypertest\", \"testRunner\": {\"plugin\": "
	                 "\"minor12\"}, \"cloudProvider\": {\"plugin\": \"minor12\"}}\n");
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_provision(h, &res), HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_ptr_null(res);
	ck_assert_str_eq(hypertest_errmsg(h), want);
	ck_assert_int_eq(hypertest_set_flags(h, HYPERTEST_FLAG_DRY_RUN), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_provision(h, NULL), HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_str_eq(hypertest_errmsg(h), want);
	ck_assert_int_eq(hypertest_destroy(h, HYPERTEST_DESTROY_LIST, &res), HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_str_eq(hypertest_errmsg(h), want);
	ck_assert_int_eq(hypertest_provision_emit(h, "cloudformation", &res),
	                 HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_ptr_null(res);
	ck_assert_str_eq(hypertest_errmsg(h),
	                 "provider 'minor12' writes no templates (format 'cloudformation')");
	hypertest_free(h);
	unsetenv("HYPERTEST_PLUGIN_PATH");
	rm_rf(project);
	rm_rf(plugins);
}
END_TEST

/* A provider built for ABI 1.3: the core calls its provisioning
 * operations, hands back their answer as compact JSON, passes the destroy
 * flags, and refuses an answer that is not the array it must be. */
static hypertest *handle_13(char *plugins, char *project, const char *answer)
{
	char path[2048], cfg[512];
	hypertest *h = hypertest_new();

	snprintf(path, sizeof path, "%s/hypertest.config.json", project);
	snprintf(cfg, sizeof cfg,
	         "{\"imageName\": \"abi/hypertest\", \"testRunner\": {\"plugin\": \"minor13\"}, "
	         "\"cloudProvider\": {\"plugin\": \"minor13\", \"options\": {\"answer\": \"%s\"}}}\n",
	         answer);
	write_file(path, cfg);
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
	ck_assert_int_eq(hypertest_set_project_dir(h, project), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), HYPERTEST_OK);
	return h;
}

START_TEST(test_abi_1_3_provisioning)
{
	char *plugins = plugin_dir(), *project = tmpdir(), *res = NULL;
	hypertest *h = handle_13(plugins, project, "good");
	static const struct {
		const char *answer, *error;
	} bad[] = {
	    {"bad", "provider 'minor13': provision: the answer is not a JSON array"},
	    {"missing", "provider 'minor13': provision: item 0 has no string \"reason\""},
	    {"fail", "provider 'minor13': the fixture refuses"},
	};
	size_t i;

	ck_assert_int_eq(hypertest_provision(h, &res), HYPERTEST_OK);
	ck_assert_str_eq(res, "[{\"type\":\"thing\",\"name\":\"t\",\"action\":\"create\","
	                      "\"reason\":\"applied\"}]");
	hypertest_string_free(res);
	ck_assert_int_eq(hypertest_destroy(h, HYPERTEST_DESTROY_FORCE, &res), HYPERTEST_OK);
	ck_assert_ptr_nonnull(strstr(res, "\"reason\":\"flags=2\""));
	hypertest_string_free(res);
	ck_assert_int_eq(hypertest_destroy(h, 4, &res), HYPERTEST_ERR_INVALID);
	ck_assert_ptr_null(res);
	/* the template: handed back as the provider wrote it */
	ck_assert_int_eq(hypertest_provision_emit(h, "cloudformation", &res), HYPERTEST_OK);
	ck_assert_str_eq(res, "format:cloudformation");
	hypertest_string_free(res);
	ck_assert_int_eq(hypertest_provision_emit(h, "terraform", &res), HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_ptr_null(res);
	ck_assert_str_eq(hypertest_errmsg(h), "provider 'minor13': no such format");
	ck_assert_int_eq(hypertest_provision_emit(h, NULL, &res), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(hypertest_set_flags(h, HYPERTEST_FLAG_DRY_RUN), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_provision(h, &res), HYPERTEST_OK);
	ck_assert_ptr_nonnull(strstr(res, "\"reason\":\"planned\""));
	hypertest_string_free(res);
	/* a dry run only lists */
	ck_assert_int_eq(hypertest_destroy(h, HYPERTEST_DESTROY_FORCE, &res), HYPERTEST_OK);
	ck_assert_ptr_nonnull(strstr(res, "\"reason\":\"flags=3\""));
	hypertest_string_free(res);
	hypertest_free(h);

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		h = handle_13(plugins, project, bad[i].answer);
		res = NULL;
		ck_assert_int_ne(hypertest_provision(h, &res), HYPERTEST_OK);
		ck_assert_ptr_null(res);
		ck_assert_msg(strstr(hypertest_errmsg(h), bad[i].error), "%s: '%s' lacks '%s'",
		              bad[i].answer, hypertest_errmsg(h), bad[i].error);
		hypertest_free(h);
	}
	unsetenv("HYPERTEST_PLUGIN_PATH");
	rm_rf(project);
	rm_rf(plugins);
}
END_TEST

/* HYPERTEST_UP_CANCELLED (ABI 1.3): offered to the plugins, and a cancel
 * from before a command does not reach its requests (a stale cancel must
 * not end a later command). */
START_TEST(test_abi_1_3_cancelled_upcall)
{
	char *plugins = plugin_dir(), *project = tmpdir(), *res = NULL;
	hypertest *h = handle_13(plugins, project, "cancel");

	ck_assert_int_eq(hypertest_set_flags(h, HYPERTEST_FLAG_DRY_RUN), HYPERTEST_OK);
	ck_assert_int_eq(hypertest_provision(h, &res), HYPERTEST_OK);
	ck_assert_ptr_nonnull(strstr(res, "\"reason\":\"cancelled=0\""));
	hypertest_string_free(res);
	hypertest_cancel(h);
	ck_assert_int_eq(hypertest_provision(h, &res), HYPERTEST_OK);
	ck_assert_msg(strstr(res, "\"reason\":\"cancelled=0\""), "%s", res);
	hypertest_string_free(res);
	hypertest_free(h);
	unsetenv("HYPERTEST_PLUGIN_PATH");
	rm_rf(project);
	rm_rf(plugins);
}
END_TEST

/* hypertest_cancel from another thread, again and again until stopped
 * (a command forgets a cancel from before it: one of these comes after). */
struct canceller {
	hypertest *h;
	atomic_int stop;
	pthread_t thread;
};

static void *cancel_loop(void *arg)
{
	struct canceller *c = arg;
	struct timespec ms = {0, 1000000L};

	while (!atomic_load(&c->stop)) {
		hypertest_cancel(c->h);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

static void canceller_start(struct canceller *c, hypertest *h)
{
	c->h = h;
	atomic_init(&c->stop, 0);
	ck_assert_int_eq(pthread_create(&c->thread, NULL, cancel_loop, c), 0);
}

static void canceller_stop(struct canceller *c)
{
	atomic_store(&c->stop, 1);
	ck_assert_int_eq(pthread_join(c->thread, NULL), 0);
}

/* A cancel ends the provider's blocking work while invoke prepares the run
 * (the manifest read here), during provision and during destroy: the
 * fixture's operations wait for HYPERTEST_UP_CANCELLED.  Once such a
 * command has returned, the upcall answers 0 again for the next command on
 * the handle (provision --emit, which forgets no cancel), a cancel or not. */
START_TEST(test_abi_1_3_cancelled_during_commands)
{
	char *plugins = plugin_dir(), *project = tmpdir(), *res = NULL;
	hypertest *h = handle_13(plugins, project, "cancel");
	hypertest_run *run = NULL;
	struct canceller c;

	canceller_start(&c, h);
	ck_assert_int_eq(hypertest_invoke(h, &run), HYPERTEST_ERR_CANCELLED);
	canceller_stop(&c);
	ck_assert_ptr_null(run);
	ck_assert_msg(strstr(hypertest_errmsg(h), "cancelled while reading hypertest.manifest.json"),
	              "%s", hypertest_errmsg(h));
	hypertest_cancel(h);
	ck_assert_int_eq(hypertest_provision_emit(h, "cloudformation", &res), HYPERTEST_OK);
	ck_assert_str_eq(res, "format:cloudformation cancelled=0");
	hypertest_string_free(res);

	canceller_start(&c, h);
	ck_assert_int_eq(hypertest_provision(h, &res), HYPERTEST_ERR_CANCELLED);
	canceller_stop(&c);
	ck_assert_ptr_null(res);
	ck_assert_str_eq(hypertest_errmsg(h), "provider 'minor13': cancelled while applying");
	ck_assert_int_eq(hypertest_provision_emit(h, "cloudformation", &res), HYPERTEST_OK);
	ck_assert_str_eq(res, "format:cloudformation cancelled=0");
	hypertest_string_free(res);

	canceller_start(&c, h);
	ck_assert_int_eq(hypertest_destroy(h, 0, &res), HYPERTEST_ERR_CANCELLED);
	canceller_stop(&c);
	ck_assert_ptr_null(res);
	ck_assert_str_eq(hypertest_errmsg(h), "provider 'minor13': cancelled while destroying");
	ck_assert_int_eq(hypertest_provision_emit(h, "cloudformation", &res), HYPERTEST_OK);
	ck_assert_str_eq(res, "format:cloudformation cancelled=0");
	hypertest_string_free(res);

	hypertest_free(h);
	unsetenv("HYPERTEST_PLUGIN_PATH");
	rm_rf(project);
	rm_rf(plugins);
}
END_TEST

START_TEST(test_baseline_probe_works)
{
	char expected_runner[256], expected_provider[256];
	const char *expected[3];
	snprintf(expected_runner, sizeof expected_runner, "probe runner|0|%s\n", hypertest_version());
	snprintf(expected_provider, sizeof expected_provider, "probe provider|0|%s\n",
	         hypertest_version());
	expected[0] = expected_runner;
	expected[1] = expected_provider;
	expected[2] = NULL;
	doctor_with("probe", expected);
}
END_TEST

int main(void)
{
	const char *build = getenv("HT_TESTS_BUILDDIR");
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("abi");
	SRunner *sr;
	int failed;

	snprintf(modules_dir, sizeof modules_dir, "%s/abi/.libs", build ? build : HT_TESTS_BUILDDIR);
	tcase_add_test(tc, test_earlier_minors_load);
	tcase_add_test(tc, test_abi_1_1_buffers);
	tcase_add_test(tc, test_abi_1_2_init_error);
	tcase_add_test(tc, test_abi_1_2_no_provisioning);
	tcase_add_test(tc, test_abi_1_3_provisioning);
	tcase_add_test(tc, test_abi_1_3_cancelled_upcall);
	tcase_add_test(tc, test_abi_1_3_cancelled_during_commands);
	tcase_add_test(tc, test_baseline_probe_works);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
