/*
 * options.h - the aws provider's instance, shared by its modules (aws.c,
 * lambda.c, ecr.c, quotas.c, runtime.c), its options and the lazily made
 * AWS clients (credentials, endpoints, HTTP, S3).
 */
#ifndef HT_PROVIDER_AWS_OPTIONS_H
#define HT_PROVIDER_AWS_OPTIONS_H

#include <jansson.h>

#include <hypertest/plugin.h>

#include "credentials.h"
#include "endpoints.h"
#include "http.h"
#include "s3.h"

/* Lambda's limit on a synchronous response (the figure its message names). */
#define AWS_LAMBDA_MAX_RESPONSE ((size_t)6291556)

typedef struct aws_options {
	char *region;           /* NULL: from the environment or the profile */
	char *function_name;    /* required */
	char *bucket;           /* required */
	char *ecr_registry;     /* host[:port] of the registry, NULL: ECR's proxyEndpoint */
	int ecr_plain_http;     /* ecrRegistry was an http:// URL */
	char *repository;       /* default: imageName without its tag */
	char *tag;              /* default: imageName's tag, else "latest" */
	char *base_image;       /* NULL when none */
	long update_max_wait_ms; /* lambdaUpdateMaxWaitTime (s), default 600 s */
	char *profile;
	char *ca_bundle;        /* caBundle: the CA bundle, before AWS_CA_BUNDLE & co. */
	int max_retries;        /* retries after the first attempt, default 10 */
	long retry_budget_ms;   /* sum of backoff delays of one request, default 60000 */
	long request_timeout_ms; /* requestTimeout (s): one attempt at most, default 960 s */
	int log_http;           /* logHttp: request and response headers at debug level (redacted) */
	int http_client;        /* httpClient: AWS_HTTP_CLIENT_* of the invocations' client */
	int http2;              /* httpVersion: AWS_HTTP2_* of the invocations */
	long concurrency;       /* the configuration's "concurrency" (0: unknown) */
	/* provisioning (provision.c) */
	char *project_name;     /* projectName: the tag's value; default repository or directory */
	char *role_name;        /* roleName: default "<functionName>-role" */
	long ecr_keep;          /* ecrLifecycleKeep: images kept, 0: no lifecycle policy; 10 */
	long expire_days;       /* bucketExpireDays: runs expire after, 0: never; 30 */
	long memory_mb;         /* memoryMB, default 2048 */
	long timeout_s;         /* timeoutSeconds, default 300 */
	long ephemeral_mb;      /* ephemeralStorageMB, default 2048 */
	long reserved;          /* reservedConcurrency, -1: not managed */
	long role_wait_ms;      /* roleWaitTime (s): a new role becoming assumable, default 120 */
	char *platform;         /* the configuration's "platform", NULL: linux/amd64 */
	json_t *json;           /* the options object (endpoint strings point into it) */
	aws_endpoints_options eps;
} aws_options;

typedef struct aws_provider {
	hypertest_core *core;
	hypertest_upcalls up;
	aws_options o;
	/* made by aws_ready() on first use */
	int ready;
	aws_credentials creds;
	aws_endpoint ep[AWS_SVC_COUNT];
	aws_http_sigv4 sig[AWS_SVC_COUNT];
	aws_tls *tls;           /* CA store and TLS sessions of both clients */
	aws_http *http;         /* blocking requests */
	aws_http *ihttp;        /* invocations (asynchronous) */
	int invoke_ended;       /* INVOKE_END: 1, then 2 once the last one was freed */
	aws_s3 s3;
	int function_side;      /* credentials from the environment, region AWS_REGION */
	/* function side: the bucket of the invocation being handled */
	char *invocation_bucket;
	char *invoke_url;       /* the Invoke URL and its name in messages */
	char *invoke_what;
	int arm64; /* the function's architecture is arm64 (GetFunction) */
} aws_provider;

/* Record an error for the core (up.set_error) and return code. */
int aws_p_fail(aws_provider *p, int code, const char *fmt, ...) AWS_PRINTF(3, 4);
/* The error of a failed step (code, and its message err, which this takes
 * and frees) as the core's error; returns code (HYPERTEST_ERR_PROVIDER when
 * code is 0). */
int aws_p_err_take(aws_provider *p, int code, char *err);
void aws_p_log(aws_provider *p, int level, const char *fmt, ...) AWS_PRINTF(3, 4);
const char *aws_p_core_str(aws_provider *p, int what);
/* The command under way was asked to stop (HYPERTEST_UP_CANCELLED; a core
 * without that upcall never asks). */
int aws_p_cancelled(aws_provider *p);
/* Sleep ms in slices of AWS_HTTP_CANCEL_SLICE_MS, looking at
 * aws_p_cancelled between them: nonzero (at once) when cancelled. */
int aws_p_sleep(aws_provider *p, long ms);

/* Parse and check options_json into p->o (errors name the key). */
int aws_options_parse(aws_provider *p, const char *options_json);
void aws_options_free(aws_options *o);
/* The key of names closest to key (edit distance at most 3), or NULL. */
const char *aws_suggest(const char *key, const char *const *names, size_t n);

/* Credentials, endpoints and HTTP clients, made once. */
int aws_ready(aws_provider *p);
/* The same, with the message of an error in *err (aws_fail's form)
 * instead of the core's. */
int aws_ready_err(aws_provider *p, char **err);
void aws_unready(aws_provider *p);

/* A JSON request to a service endpoint (blocking, signed, retried); the
 * answer parsed into *out (may be NULL).  path is encoded already; target:
 * the X-Amz-Target of JSON 1.1 services (ECR, Service Quotas), else NULL
 * (Lambda's REST-JSON).  body may be NULL.  *error_code (may be NULL)
 * receives the AWS error code of a failed call (caller frees). */
int aws_json_call(aws_provider *p, int service, const char *method, const char *path,
                  const char *target, const char *body, const char *what, json_t **out,
                  char **error_code, char **err);

#endif /* HT_PROVIDER_AWS_OPTIONS_H */
