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
 * One suite, its test cases in local-options.c, local-invoke.c,
 * local-zygote.c, local-function.c and local-image.c, their shared set-up
 * in lib/local-fixture.c.
 *
 * HT_PROVIDER_LOCAL_SO and HT_LOCAL_HELPER override where the module and
 * the helper are.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "local-fixture.h"
#include "check_provider_local.h"

static Suite *suite(void)
{
	Suite *s = suite_create("provider-local");
	TCase *t = tcase_create("options");
	tcase_add_checked_fixture(t, setup, teardown);
	add_options_tests(t);
	suite_add_tcase(s, t);

	t = tcase_create("bucket");
	tcase_add_checked_fixture(t, setup, teardown);
	add_bucket_tests(t);
	suite_add_tcase(s, t);

	t = tcase_create("invoke");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	add_invoke_tests(t);
	suite_add_tcase(s, t);

	t = tcase_create("zygote");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 60);
	add_zygote_tests(t);
	suite_add_tcase(s, t);

	t = tcase_create("invoke-exec");
	tcase_add_checked_fixture(t, setup_exec, teardown);
	tcase_set_timeout(t, 120);
	add_invoke_exec_tests(t);
	suite_add_tcase(s, t);

	t = tcase_create("scale");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 300);
	add_scale_tests(t);
	suite_add_tcase(s, t);

	if (have_bwrap()) {
		t = tcase_create("bubblewrap");
		tcase_add_checked_fixture(t, setup, teardown);
		tcase_set_timeout(t, 60);
		add_zygote_bwrap_tests(t);
		add_invoke_bwrap_tests(t);
		add_function_bwrap_tests(t);
		suite_add_tcase(s, t);
	} else {
		fprintf(stderr, "bwrap is not on PATH: the bubblewrap tests do not run\n");
	}

	if (have_bwrap() && access(busybox_path(), X_OK) == 0) {
		t = tcase_create("image");
		tcase_add_checked_fixture(t, setup, teardown);
		tcase_set_timeout(t, 60);
		add_image_tests(t);
		suite_add_tcase(s, t);
	} else {
		fprintf(stderr, "bwrap or %s (Debian package busybox-static) missing: the "
		        "isolation \"image\" tests do not run\n", busybox_path());
	}

	t = tcase_create("function side");
	tcase_add_checked_fixture(t, setup, teardown);
	add_function_side_tests(t);
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
