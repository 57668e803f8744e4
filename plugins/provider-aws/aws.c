/*
 * aws.c - the "aws" cloud provider: Lambda functions with container images
 * in ECR, the bucket in S3, Service Quotas for doctor, every request signed
 * with SigV4.  This file: registration and the operation table, create and
 * destroy, doctor, the image target (ECR) and the bucket operations (S3).
 * Options: options.c; Lambda: lambda.c; ECR: ecr.c; Service Quotas:
 * quotas.c; the function side: runtime.c; provisioning: provision.c and its
 * modules (provision-ecr.c, provision-s3.c, iam.c, provision-lambda.c,
 * provision-cfn.c).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecr.h"
#include "lambda.h"
#include "options.h"
#include "provision.h"
#include "quotas.h"
#include "runtime.h"

/* Bound once by hypertest_plugin_init; each instance keeps a copy. */
static hypertest_upcalls bound_up;

static void aws_destroy(void *self)
{
	aws_provider *p = self;
	if (!p)
		return;
	aws_unready(p);
	aws_options_free(&p->o);
	free(p->invocation_bucket);
	free(p->invoke_url);
	free(p->invoke_what);
	free(p);
}

static int aws_create(hypertest_core *core, const char *options_json, void **self)
{
	aws_provider *p = calloc(1, sizeof *p);
	int rc;
	if (!p)
		return HYPERTEST_ERR_NOMEM;
	p->core = core;
	p->up = bound_up;
	if ((rc = aws_options_parse(p, options_json))) {
		aws_destroy(p);
		return rc;
	}
	*self = p;
	return 0;
}

/* ---- doctor ----------------------------------------------------------------------------- */

static void check(aws_provider *p, hypertest_checks *c, const char *name, int status,
                  const char *fmt, ...) AWS_PRINTF(5, 6);
static void check(aws_provider *p, hypertest_checks *c, const char *name, int status,
                  const char *fmt, ...)
{
	char msg[2048], *red;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	red = aws_redact(msg, p->ready ? &p->creds : NULL);
	p->up.doctor_check(c, name, status, red ? red : "(message dropped)");
	free(red);
}

static void doctor_function(aws_provider *p, hypertest_checks *c)
{
	char *err = NULL;
	json_t *fn = NULL;
	const char *type, *uri;
	if (aws_lambda_get_function(p, &fn, &err) != 0) {
		check(p, c, "provider.aws.function", HYPERTEST_CHECK_FAILED, "%s", aws_msg(err));
		free(err);
		return;
	}
	free(err);
	type = json_string_value(json_object_get(json_object_get(fn, "Configuration"), "PackageType"));
	uri = json_string_value(json_object_get(json_object_get(fn, "Code"), "ImageUri"));
	if (!type || strcmp(type, "Image") != 0)
		check(p, c, "provider.aws.function", HYPERTEST_CHECK_FAILED,
		      "Lambda function %s has PackageType %s: hypertest needs a container image "
		      "function (PackageType Image)",
		      p->o.function_name, type ? type : "(none)");
	else
		check(p, c, "provider.aws.function", HYPERTEST_CHECK_OK,
		      "Lambda function %s runs a container image (%s)", p->o.function_name,
		      uri ? uri : "no image yet");
	json_decref(fn);
}

static void doctor_bucket(aws_provider *p, hypertest_checks *c)
{
	char *err = NULL;
	htp_buf out = {0};
	int rc = aws_s3_get(&p->s3, ".hypertest-doctor-probe", &out, &err);
	htp_buf_free(&out);
	if (rc == 0 || rc == HYPERTEST_ERR_NOT_FOUND)
		check(p, c, "provider.aws.bucket", HYPERTEST_CHECK_OK, "bucket s3://%s is reachable (%s)",
		      p->o.bucket, p->ep[AWS_SVC_S3].url);
	else
		check(p, c, "provider.aws.bucket", HYPERTEST_CHECK_FAILED, "bucket s3://%s: %s",
		      p->o.bucket, aws_msg(err));
	free(err);
}

static void doctor_registry(aws_provider *p, hypertest_checks *c)
{
	aws_ecr_login login;
	char *err = NULL;
	if (aws_ecr_get_login(p, &login, &err) != 0) {
		check(p, c, "provider.aws.registry", HYPERTEST_CHECK_FAILED, "%s", aws_msg(err));
		free(err);
		return;
	}
	free(err);
	check(p, c, "provider.aws.registry", HYPERTEST_CHECK_OK,
	      "ECR login for %s obtained (user %s)",
	      p->o.ecr_registry ? p->o.ecr_registry
	                        : login.proxy_endpoint ? login.proxy_endpoint : "the account's registry",
	      login.username);
	aws_ecr_login_free(&login);
}

static void doctor_quota(aws_provider *p, hypertest_checks *c)
{
	char *err = NULL;
	double quota = 0;
	if (aws_quota_lambda_concurrency(p, &quota, &err) != 0) {
		check(p, c, "provider.aws.concurrency", HYPERTEST_CHECK_WARNING,
		      "cannot read the Lambda concurrency quota: %s", aws_msg(err));
	} else if (p->o.concurrency > 0 && quota < (double)p->o.concurrency) {
		check(p, c, "provider.aws.concurrency", HYPERTEST_CHECK_WARNING,
		      "the account's Lambda concurrency quota (%s) is %.0f, below the configured "
		      "concurrency %ld: invocations over it are throttled (429) and retried",
		      AWS_QUOTA_LAMBDA_CONCURRENCY, quota, p->o.concurrency);
	} else if (p->o.concurrency > 0) {
		check(p, c, "provider.aws.concurrency", HYPERTEST_CHECK_OK,
		      "Lambda concurrency quota %.0f >= the configured concurrency %ld", quota,
		      p->o.concurrency);
	} else {
		check(p, c, "provider.aws.concurrency", HYPERTEST_CHECK_OK,
		      "Lambda concurrency quota %.0f (the configured concurrency is unknown)", quota);
	}
	free(err);
}

static int aws_doctor(void *self, hypertest_checks *c)
{
	aws_provider *p = self;
	const char *id;
	size_t n;
	if (!p->up.doctor_check)
		return aws_p_fail(p, HYPERTEST_ERR_UNSUPPORTED, "no doctor upcall");
	char *err = NULL;
	if (aws_ready_err(p, &err) != 0) {
		check(p, c, "provider.aws.credentials", HYPERTEST_CHECK_FAILED, "%s", aws_msg(err));
		free(err);
		return 0;
	}
	id = p->creds.access_key_id;
	n = strlen(id);
	check(p, c, "provider.aws.credentials", HYPERTEST_CHECK_OK,
	      "access key ...%s%s from %s", n > 4 ? id + n - 4 : "",
	      p->creds.session_token ? " with a session token" : "", p->creds.creds_source);
	check(p, c, "provider.aws.region", HYPERTEST_CHECK_OK, "%s (from %s)", p->creds.region,
	      p->creds.region_source ? p->creds.region_source : "?");
	{
		int dir = 0;
		const char *ca = aws_tls_ca(p->tls, &dir);
		check(p, c, "provider.aws.ca-bundle", HYPERTEST_CHECK_OK, "%s%s (from %s)",
		      dir ? "CA directory " : "", ca ? ca : "OpenSSL's default paths",
		      aws_tls_ca_source(p->tls));
	}
	doctor_function(p, c);
	doctor_bucket(p, c);
	doctor_registry(p, c);
	doctor_quota(p, c);
	return 0;
}

/* ---- image target ------------------------------------------------------------------------ */

/* The registry host of an image reference ("" when it has none). */
static size_t ref_host_len(const char *ref)
{
	const char *slash = strchr(ref, '/');
	size_t n = slash ? (size_t)(slash - ref) : 0;
	if (!slash || (!memchr(ref, '.', n) && !memchr(ref, ':', n) && strncmp(ref, "localhost", n)))
		return 0;
	return n;
}

static int aws_image_target(void *self, hypertest_params *t)
{
	aws_provider *p = self;
	aws_ecr_login login;
	char *err = NULL;
	char *host = NULL;
	int plain = p->o.ecr_plain_http, rc;
	if ((rc = aws_ready(p)))
		return rc;
	if (!p->o.repository)
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'repository' is not set and the configuration has no "
		                  "imageName");
	if ((rc = aws_ecr_get_login(p, &login, &err)) != 0)
		return aws_p_err_take(p, rc, err);
	free(err);
	if (p->o.ecr_registry) {
		host = strdup(p->o.ecr_registry);
	} else if (login.proxy_endpoint) {
		const char *s = login.proxy_endpoint;
		if (strncmp(s, "http://", 7) == 0)
			plain = 1, s += 7;
		else if (strncmp(s, "https://", 8) == 0)
			s += 8;
		host = strndup(s, strcspn(s, "/"));
	} else {
		aws_ecr_login_free(&login);
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'ecrRegistry' is not set and ECR named no proxyEndpoint");
	}
	if (!host) {
		aws_ecr_login_free(&login);
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	rc = p->up.param_set(t, "registry", host) || p->up.param_set(t, "repository", p->o.repository) ||
	     p->up.param_set(t, "tag", p->o.tag ? p->o.tag : "latest") ||
	     p->up.param_set(t, "username", login.username) ||
	     p->up.param_set(t, "password", login.password) ||
	     (plain && p->up.param_set(t, "plainHttp", "1")) ||
	     /* the function runtime travels with the image: any base will do */
	     p->up.param_set(t, "runtimeLayer", "1");
	if (rc == 0 && p->o.base_image) {
		size_t n = ref_host_len(p->o.base_image);
		rc = p->up.param_set(t, "baseImage", p->o.base_image);
		if (rc == 0 && n == strlen(host) && strncmp(p->o.base_image, host, n) == 0)
			rc = p->up.param_set(t, "baseUsername", login.username) ||
			     p->up.param_set(t, "basePassword", login.password);
	}
	aws_ecr_login_free(&login);
	free(host);
	return rc ? aws_p_fail(p, HYPERTEST_ERR_NOMEM, "cannot set the image target") : 0;
}

/* ---- the bucket ----------------------------------------------------------------------------- */

static int aws_object_put(void *self, const char *key, const void *data, size_t len,
                          const char *content_type)
{
	aws_provider *p = self;
	char *err = NULL;
	int rc = aws_ready(p);
	if (rc == 0 && (rc = aws_s3_put(&p->s3, key, data, len, content_type, &err)))
		aws_p_err_take(p, rc, err);
	else
		free(err);
	return rc;
}

static int aws_object_get(void *self, const char *key, hypertest_buffer *out)
{
	aws_provider *p = self;
	char *err = NULL;
	htp_buf b = {0};
	int rc = aws_ready(p);
	/* the core reads an object (the manifest) just before it invokes: the
	 * invocations' connections open meanwhile */
	if (rc == 0)
		aws_lambda_warm(p);
	if (rc == 0 && (rc = aws_s3_get(&p->s3, key, &b, &err)))
		aws_p_err_take(p, rc, err);
	else
		free(err);
	if (rc == 0 && b.len && p->up.buffer_append(out, b.data, b.len))
		rc = aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	htp_buf_free(&b);
	return rc;
}

static int aws_object_url(void *self, const char *key, hypertest_buffer *url)
{
	aws_provider *p = self;
	char *s = NULL;
	int rc;
	if (asprintf(&s, "s3://%s/%s", p->o.bucket, key) < 0)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = p->up.buffer_append(url, s, strlen(s));
	free(s);
	return rc ? aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory") : 0;
}

struct list_ctx {
	aws_provider *p;
	hypertest_params *objects;
};

static int list_one(void *ud, const char *key, long long size)
{
	struct list_ctx *c = ud;
	char n[32];
	snprintf(n, sizeof n, "%lld", size);
	return c->p->up.param_set(c->objects, key, n)
	           ? aws_p_fail(c->p, HYPERTEST_ERR_NOMEM, "out of memory")
	           : 0;
}

static int aws_object_list(void *self, const char *prefix, hypertest_params *objects)
{
	aws_provider *p = self;
	char *err = NULL;
	struct list_ctx c = {p, objects};
	int rc = aws_ready(p);
	/* without a message, list_one failed and told the core already */
	if (rc == 0 && (rc = aws_s3_list(&p->s3, prefix, list_one, &c, &err)) && err)
		aws_p_err_take(p, rc, err);
	else
		free(err);
	return rc;
}

static int aws_payload_fields(void *self, hypertest_params *fields)
{
	aws_provider *p = self;
	return p->up.param_set(fields, "bucketName", p->o.bucket)
	           ? aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory")
	           : 0;
}

/* ---- registration ------------------------------------------------------------------------- */

static const hypertest_dispatch aws_ops[] = {
    HYPERTEST_OP(HYPERTEST_OP_CREATE, aws_create),
    HYPERTEST_OP(HYPERTEST_OP_DESTROY, aws_destroy),
    HYPERTEST_OP(HYPERTEST_OP_DOCTOR, aws_doctor),
    HYPERTEST_OP(HYPERTEST_PROVIDER_IMAGE_TARGET, aws_image_target),
    HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_PUT, aws_object_put),
    HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_GET, aws_object_get),
    HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_URL, aws_object_url),
    HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_LIST, aws_object_list),
    HYPERTEST_OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE, aws_lambda_function_update),
    HYPERTEST_OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST, aws_lambda_function_digest),
    HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_START, aws_lambda_invoke_start),
    HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_WAIT, aws_lambda_invoke_wait),
    HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_CANCEL, aws_lambda_invoke_cancel),
    HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_END, aws_lambda_invoke_end),
    HYPERTEST_OP(HYPERTEST_PROVIDER_SERVE, aws_runtime_serve),
    HYPERTEST_OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE, aws_runtime_artifacts_store),
    HYPERTEST_OP(HYPERTEST_PROVIDER_PAYLOAD_FIELDS, aws_payload_fields),
    HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_PLAN, aws_provision_plan),
    HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_APPLY, aws_provision_apply),
    HYPERTEST_OP(HYPERTEST_PROVIDER_RESOURCES_DESTROY, aws_resources_destroy),
    HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_EMIT, aws_provision_emit),
    HYPERTEST_OP_END};

HYPERTEST_PLUGIN_DEFINE("provider-aws", "0.1.0",
                        "AWS Lambda with container images, ECR and S3", "MIT")
{
	return htp_register(&bound_up, core, upcalls, HYPERTEST_KIND_PROVIDER, "aws",
	                    "runs each test in its own AWS Lambda invocation", aws_ops);
}
