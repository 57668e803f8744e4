/*
 * lambda.h - the Lambda side of the aws provider: GetFunction,
 * UpdateFunctionCode and waiting for it (GetFunctionConfiguration), the
 * running image's digest, and asynchronous Invoke (thousands in flight on
 * one thread through the HTTP layer's multi mode).
 */
#ifndef HT_PROVIDER_AWS_LAMBDA_H
#define HT_PROVIDER_AWS_LAMBDA_H

#include "options.h"

/* GetFunction: the whole answer into *out. */
int aws_lambda_get_function(aws_provider *p, json_t **out, char **err);

/* The provider operations (they report errors through up.set_error). */
int aws_lambda_function_update(void *self, const char *image_ref, const char *image_digest);
int aws_lambda_function_digest(void *self, hypertest_buffer *digest);
int aws_lambda_invoke_start(void *self, hypertest_invocation *inv, const char *payload,
                            size_t len);
int aws_lambda_invoke_wait(void *self, int timeout_ms);
void aws_lambda_invoke_cancel(void *self);
/* No invocation starts again: the invocations' HTTP client frees its idle
 * handles and connections, and the others as they finish. */
void aws_lambda_invoke_end(void *self);

/* The ImageUri Lambda is given for repository@digest: in ecrRegistry when
 * that is an ECR host, else in the ECR registry of the function's account
 * and region (a registry outside ECR, as in tests).  Caller frees. */
int aws_lambda_image_uri(aws_provider *p, const char *repository, const char *digest,
                         char **uri, char **err);

/* Open connections to the Lambda endpoint (as many as the configuration's
 * concurrency, at most) while the caller does other work: called when the
 * manifest is read, which is what `hypertest invoke` does first. */
void aws_lambda_warm(aws_provider *p);

#endif /* HT_PROVIDER_AWS_LAMBDA_H */
