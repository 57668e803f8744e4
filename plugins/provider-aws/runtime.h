/*
 * runtime.h - the function side of the aws provider: serving invocations
 * through the Lambda Runtime API (or one payload from stdin to stdout when
 * AWS_LAMBDA_RUNTIME_API is not set), and storing each test's artifacts in
 * S3 with the function's own credentials.
 */
#ifndef HT_PROVIDER_AWS_RUNTIME_H
#define HT_PROVIDER_AWS_RUNTIME_H

#include "options.h"

/* HYPERTEST_PROVIDER_SERVE */
int aws_runtime_serve(void *self, hypertest_function *fn);
/* HYPERTEST_PROVIDER_ARTIFACTS_STORE: dir's files below prefix in the
 * bucket the current payload named ("bucketName"), else the option's. */
int aws_runtime_artifacts_store(void *self, const char *prefix, const char *dir);

#endif /* HT_PROVIDER_AWS_RUNTIME_H */
