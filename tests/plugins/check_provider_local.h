/*
 * check_provider_local.h - the test cases of the local provider's tests,
 * one file each (local-*.c), put together into one suite by
 * check_provider_local.c; their shared set-up is lib/local-fixture.c.
 */
#ifndef HT_TESTS_CHECK_PROVIDER_LOCAL_H
#define HT_TESTS_CHECK_PROVIDER_LOCAL_H

#include <check.h>

/* local-options.c: options, the bucket, artifacts, function updates */
void add_options_tests(TCase *t);
void add_bucket_tests(TCase *t);
/* local-invoke.c: invocations, with and without the zygote, at scale */
void add_invoke_tests(TCase *t);
void add_invoke_exec_tests(TCase *t);
void add_scale_tests(TCase *t);
void add_invoke_bwrap_tests(TCase *t);
/* local-zygote.c: the zygote, and isolation "bubblewrap" */
void add_zygote_tests(TCase *t);
void add_zygote_bwrap_tests(TCase *t);
/* local-function.c: the function side (serve, doctor) */
void add_function_side_tests(TCase *t);
void add_function_bwrap_tests(TCase *t);
/* local-image.c: isolation "image" with a real busybox image */
const char *busybox_path(void);
void add_image_tests(TCase *t);

#endif /* HT_TESTS_CHECK_PROVIDER_LOCAL_H */
