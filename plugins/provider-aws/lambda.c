/*
 * lambda.c - Lambda (REST-JSON, 2015-03-31) for the aws provider:
 * GetFunction, UpdateFunctionCode with the image pinned by digest and a
 * wait (GetFunctionConfiguration with backoff) until LastUpdateStatus is
 * Successful, the running image's digest, and Invoke (RequestResponse)
 * through the HTTP layer's multi handle: one thread, reused connections,
 * completions reported from INVOKE_WAIT.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp */
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

#include "ecr.h"
#include "lambda.h"
#include "provision.h"

/* "/2015-03-31/functions/NAME" + tail (NAME encoded). */
static char *function_path(aws_provider *p, const char *tail)
{
	htp_buf b = {0};
	if (htp_buf_str(&b, "/2015-03-31/functions/") < 0 ||
	    aws_uri_encode(&b, p->o.function_name, strlen(p->o.function_name), 0) < 0 ||
	    htp_buf_str(&b, tail) < 0) {
		htp_buf_free(&b);
		return NULL;
	}
	return htp_buf_take(&b);
}

static int lambda_get(aws_provider *p, const char *tail, const char *op, json_t **out,
                      char **err)
{
	char what[512], *path = function_path(p, tail);
	int rc;
	if (!path)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	snprintf(what, sizeof what, "Lambda %s %s", op, p->o.function_name);
	rc = aws_json_call(p, AWS_SVC_LAMBDA, "GET", path, NULL, NULL, what, out, NULL, err);
	free(path);
	return rc;
}

int aws_lambda_get_function(aws_provider *p, json_t **out, char **err)
{
	return lambda_get(p, "", "GetFunction", out, err);
}

/* ---- UpdateFunctionCode ------------------------------------------------------------------- */

int aws_lambda_image_uri(aws_provider *p, const char *repository, const char *digest,
                         char **uri, char **err)
{
	char account[13], region[64];
	const char *arn;
	json_t *fn = NULL;
	int rc;
	*uri = NULL;
	if (p->o.ecr_registry && aws_ecr_host_parse(p->o.ecr_registry, NULL, NULL)) {
		*uri = htp_strdupf("%s/%s@%s", p->o.ecr_registry, repository, digest);
		return *uri ? 0 : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	/* not an ECR host: Lambda takes images from ECR only, so name the ECR
	 * registry of the function's own account and region */
	if ((rc = aws_lambda_get_function(p, &fn, err)) != 0)
		return rc;
	arn = json_string_value(json_object_get(json_object_get(fn, "Configuration"), "FunctionArn"));
	if (!arn || sscanf(arn, "arn:%*[^:]:lambda:%63[^:]:%12[0-9]:function:", region, account) != 2 ||
	    strlen(account) != 12) {
		json_decref(fn);
		return aws_fail(err, HYPERTEST_ERR_PROVIDER,
		                "Lambda GetFunction %s: no FunctionArn with an account and region",
		                p->o.function_name);
	}
	json_decref(fn);
	*uri = htp_strdupf("%s.dkr.ecr.%s.amazonaws.com/%s@%s", account, region, repository, digest);
	if (!*uri)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	aws_p_log(p, HYPERTEST_LOG_DEBUG, "registry %s is not ECR: the function is pointed at %s",
	          p->o.ecr_registry ? p->o.ecr_registry : "(none)", *uri);
	return 0;
}

/* A deploy cancelled while the function updates: the update goes on in
 * Lambda and ends on its own (the next deploy waits for it first). */
static int cancelled_wait(aws_provider *p, int before, const char *uri, char **err)
{
	if (before)
		return aws_fail(err, HYPERTEST_ERR_CANCELLED,
		                "Lambda %s: cancelled while waiting for an earlier update of the "
		                "function to finish",
		                p->o.function_name);
	return aws_fail(err, HYPERTEST_ERR_CANCELLED,
	                "Lambda %s: cancelled while waiting for the function update to %s (the "
	                "update goes on in Lambda)",
	                p->o.function_name, uri);
}

/* Poll GetFunctionConfiguration until no update is in progress, looking at
 * a cancel between polls (in slices of AWS_HTTP_CANCEL_SLICE_MS).  before:
 * waiting for someone else's update (a Failed one does not matter). */
static int wait_update(aws_provider *p, long long deadline, const char *uri, int before,
                       char **err)
{
	long delay = 200;
	for (;;) {
		json_t *cfg = NULL;
		const char *st, *reason, *code;
		int rc = lambda_get(p, "/configuration", "GetFunctionConfiguration", &cfg, err);
		if (rc == HYPERTEST_ERR_CANCELLED)
			return cancelled_wait(p, before, uri, err);
		if (rc)
			return rc;
		st = json_string_value(json_object_get(cfg, "LastUpdateStatus"));
		reason = json_string_value(json_object_get(cfg, "LastUpdateStatusReason"));
		code = json_string_value(json_object_get(cfg, "LastUpdateStatusReasonCode"));
		if (!st || strcmp(st, "Successful") == 0 || (before && strcmp(st, "Failed") == 0)) {
			json_decref(cfg);
			return 0;
		}
		if (strcmp(st, "Failed") == 0) {
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
			              "Lambda %s: the update to %s failed: %s%s%s%s",
			              p->o.function_name, uri, reason ? reason : "no reason given",
			              code ? " (" : "", code ? code : "", code ? ")" : "");
			json_decref(cfg);
			return rc;
		}
		json_decref(cfg);
		if (htp_now_ms() + delay > deadline)
			return aws_fail(err, HYPERTEST_ERR_TIMEOUT,
			                "Lambda %s: %s still in progress after %.3g s "
			                "(option lambdaUpdateMaxWaitTime)",
			                p->o.function_name, before ? "an earlier update" : "the update",
			                (double)p->o.update_max_wait_ms / 1000);
		if (aws_p_sleep(p, delay))
			return cancelled_wait(p, before, uri, err);
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
}

/* "registry/repo/sitory:tag" -> "repo/sitory" */
static char *ref_repository(const char *ref)
{
	const char *s = strchr(ref, '/'), *e;
	if (!s)
		return NULL;
	s++;
	e = strchr(s, '@');
	if (!e) {
		const char *slash = strrchr(s, '/');
		e = strrchr(slash ? slash : s, ':');
	}
	return e ? strndup(s, (size_t)(e - s)) : strdup(s);
}

/* Deploy before the function exists: create it (with provisioning's
 * shape and role) on repository@digest.  *created: it did not exist. */
static int create_if_missing(aws_provider *p, const char *repo, const char *digest, int *created,
                             char **err)
{
	char *path = function_path(p, ""), *code = NULL, *arn = NULL, *uri = NULL, *base = NULL;
	json_t *fn = NULL;
	int rc;
	*created = 0;
	if (!path)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = aws_json_call(p, AWS_SVC_LAMBDA, "GET", path, NULL, NULL, "Lambda GetFunction", &fn,
	                   &code, err);
	free(path);
	json_decref(fn);
	if (rc == 0 || !code || strcmp(code, "ResourceNotFoundException") != 0) {
		free(code);
		return rc;
	}
	free(code);
	if ((rc = aws_iam_role_arn(p, &arn, err)))
		return rc;
	if (p->o.ecr_registry && aws_ecr_host_parse(p->o.ecr_registry, NULL, NULL))
		uri = htp_strdupf("%s/%s@%s", p->o.ecr_registry, repo, digest);
	else if ((rc = aws_ecr_repository_uri(p, &base, err)) == 0)
		uri = htp_strdupf("%s@%s", base, digest);
	if (!rc && !uri)
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	if (!rc) {
		aws_p_log(p, HYPERTEST_LOG_INFO, "Lambda %s does not exist: creating it on %s",
		          p->o.function_name, uri);
		rc = aws_lambda_create(p, uri, arn, err);
	}
	*created = rc == 0;
	free(base);
	free(uri);
	free(arn);
	return rc;
}

int aws_lambda_function_update(void *self, const char *image_ref, const char *image_digest)
{
	aws_provider *p = self;
	long long deadline = htp_now_ms() + p->o.update_max_wait_ms;
	char *err = NULL;
	char *repo, *uri = NULL, *path = NULL, *body = NULL, *code = NULL, what[512];
	json_t *doc;
	int rc;
	if ((rc = aws_ready(p)))
		return rc;
	if (!image_digest || strncmp(image_digest, "sha256:", 7) != 0)
		return aws_p_fail(p, HYPERTEST_ERR_INVALID, "FUNCTION_UPDATE needs an image digest");
	repo = image_ref ? ref_repository(image_ref) : NULL;
	if (!repo && p->o.repository)
		repo = strdup(p->o.repository);
	if (!repo)
		return aws_p_fail(p, HYPERTEST_ERR_INVALID, "image reference '%s' names no repository",
		                  image_ref ? image_ref : "");
	{
		int created = 0;
		rc = create_if_missing(p, repo, image_digest, &created, &err);
		if (rc || created) {
			free(repo);
			if (rc)
				return aws_p_err_take(p, rc, err);
			free(err);
			return 0;
		}
	}
	rc = aws_lambda_image_uri(p, repo, image_digest, &uri, &err);
	free(repo);
	if (rc)
		return aws_p_err_take(p, rc, err);
	doc = json_pack("{s:s}", "ImageUri", uri);
	body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	path = function_path(p, "/code");
	if (!body || !path) {
		rc = aws_fail(&err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	snprintf(what, sizeof what, "Lambda UpdateFunctionCode %s", p->o.function_name);
	for (;;) {
		/* an update in progress (ours from before, or someone's) answers 409 */
		if ((rc = wait_update(p, deadline, uri, 1, &err)))
			goto out;
		free(code);
		rc = aws_json_call(p, AWS_SVC_LAMBDA, "PUT", path, NULL, body, what, NULL, &code, &err);
		if (rc == 0 || !code || strcmp(code, "ResourceConflictException") != 0)
			break;
		if (htp_now_ms() >= deadline) {
			rc = aws_fail(&err, HYPERTEST_ERR_TIMEOUT,
			              "%s: the function stayed busy for %.3g s (option "
			              "lambdaUpdateMaxWaitTime)",
			              what, (double)p->o.update_max_wait_ms / 1000);
			break;
		}
		if (aws_p_sleep(p, 500)) {
			rc = aws_fail(&err, HYPERTEST_ERR_CANCELLED,
			              "%s: cancelled while the function was busy with another update",
			              what);
			break;
		}
	}
	if (rc == 0) {
		aws_p_log(p, HYPERTEST_LOG_INFO, "Lambda %s: updating to %s", p->o.function_name, uri);
		rc = wait_update(p, deadline, uri, 0, &err);
	}
out:
	if (rc)
		aws_p_err_take(p, rc, err);
	else
		free(err);
	free(code);
	free(uri);
	free(body);
	free(path);
	return rc;
}

/* ---- the running image's digest ----------------------------------------------------------- */

int aws_lambda_function_digest(void *self, hypertest_buffer *digest)
{
	aws_provider *p = self;
	char *err = NULL;
	json_t *fn = NULL, *code;
	const char *resolved, *uri, *at;
	char *found = NULL;
	int rc;
	if ((rc = aws_ready(p)))
		return rc;
	if ((rc = aws_lambda_get_function(p, &fn, &err)))
		return aws_p_err_take(p, rc, err);
	{
		json_t *arch = json_object_get(json_object_get(fn, "Configuration"), "Architectures");
		const char *a = json_string_value(json_array_get(arch, 0));
		p->arm64 = a && !strcmp(a, "arm64");
	}
	code = json_object_get(fn, "Code");
	resolved = json_string_value(json_object_get(code, "ResolvedImageUri"));
	uri = json_string_value(json_object_get(code, "ImageUri"));
	if (resolved && (at = strstr(resolved, "@sha256:")))
		found = strdup(at + 1);
	else if (uri && (at = strstr(uri, "@sha256:")))
		found = strdup(at + 1);
	else if (uri) {
		/* a tag: ask ECR which digest it names */
		const char *slash = strchr(uri, '/'), *colon = slash ? strrchr(slash, ':') : NULL;
		char *repo = slash ? strndup(slash + 1, colon ? (size_t)(colon - slash - 1)
		                                              : strlen(slash + 1))
		                   : NULL;
		if (!repo)
			rc = aws_fail(&err, HYPERTEST_ERR_PROVIDER, "Lambda %s runs image '%s': no repository",
			              p->o.function_name, uri);
		else
			rc = aws_ecr_tag_digest(p, repo, colon ? colon + 1 : "latest", &found, &err);
		free(repo);
	} else {
		rc = aws_fail(&err, HYPERTEST_ERR_PROVIDER,
		              "Lambda %s has no container image (GetFunction gives no Code.ImageUri)",
		              p->o.function_name);
	}
	json_decref(fn);
	if (rc)
		return aws_p_err_take(p, rc, err);
	free(err);
	if (!found)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = p->up.buffer_append(digest, found, strlen(found));
	free(found);
	return rc ? aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory") : 0;
}

/* ---- Invoke ---------------------------------------------------------------------------------- */

/* Are the invocations offered HTTP/2 (httpVersion): "2" always, "auto"
 * over https only. */
static int offers_h2(const aws_provider *p)
{
	return p->o.http2 == AWS_HTTP2_ON || (p->o.http2 == AWS_HTTP2_TLS &&
	                                      strncasecmp(p->ep[AWS_SVC_LAMBDA].url, "https:", 6) == 0);
}

/* The Invoke URL and its name in messages, made once. */
static int invoke_target(aws_provider *p)
{
	if (p->invoke_url && p->invoke_what)
		return 0;
	if (!p->invoke_url) {
		char *path = function_path(p, "/invocations");
		if (!path || asprintf(&p->invoke_url, "%s%s", p->ep[AWS_SVC_LAMBDA].url, path) < 0)
			p->invoke_url = NULL;
		free(path);
	}
	if (!p->invoke_url || asprintf(&p->invoke_what, "Lambda Invoke %s", p->o.function_name) < 0) {
		p->invoke_what = NULL;
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	return 0;
}

typedef struct pending {
	aws_provider *p;
	hypertest_invocation *inv;
} pending;

/* Lambda's list prices (us-east-1, per GB-second and per request). */
#define PRICE_GBS_X86 0.0000166667
#define PRICE_GBS_ARM64 0.0000133334
#define PRICE_REQUEST 0.0000002

/* The billed duration and memory size of the REPORT line of the log tail
 * (X-Amz-Log-Result, base64), handed to the core for the run's cost. */
static void report_usage(aws_provider *p, hypertest_invocation *inv, aws_http_response *resp)
{
	const char *tail = aws_headers_get(&resp->headers, "X-Amz-Log-Result");
	char *log, *rep, *b, *m;
	size_t len;

	if (!tail || !p->up.invocation_usage || !(log = aws_base64_decode(tail, &len)))
		return;
	rep = strstr(log, "REPORT RequestId:");
	b = rep ? strstr(rep, "Billed Duration: ") : NULL;
	m = rep ? strstr(rep, "Memory Size: ") : NULL;
	if (b && m) {
		double billed = strtod(b + strlen("Billed Duration: "), NULL);
		double mb = strtod(m + strlen("Memory Size: "), NULL);
		p->up.invocation_usage(inv, "memoryMB", mb);
		p->up.invocation_usage(inv, "pricePerGBSecond", p->arm64 ? PRICE_GBS_ARM64 : PRICE_GBS_X86);
		p->up.invocation_usage(inv, "pricePerRequest", PRICE_REQUEST);
		p->up.invocation_usage(inv, "billedMs", billed);
	}
	free(log);
}

static void invoke_done(void *ud, aws_http_request *req, aws_http_response *resp, int code,
                        const char *message)
{
	pending *pd = ud;
	aws_provider *p = pd->p;
	hypertest_invocation *inv = pd->inv;
	const char *ferr;
	(void)req;
	free(pd);
	if (code) {
		p->up.invoke_done(inv, NULL, 0, code, message ? message : "Lambda Invoke failed");
		return;
	}
	report_usage(p, inv, resp);
	ferr = aws_headers_get(&resp->headers, "X-Amz-Function-Error");
	if (ferr) {
		json_t *doc = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
		const char *m = json_string_value(json_object_get(doc, "errorMessage"));
		const char *t = json_string_value(json_object_get(doc, "errorType"));
		char *msg = NULL;
		if (asprintf(&msg, "Lambda %s: function error (%s)%s%s: %.2000s", p->o.function_name,
		             ferr, t ? " " : "", t ? t : "",
		             m ? m : (resp->body.data ? resp->body.data : "no message")) < 0)
			msg = NULL;
		json_decref(doc);
		p->up.invoke_done(inv, NULL, 0, HYPERTEST_ERR_PROVIDER,
		                  msg ? msg : "Lambda: function error");
		free(msg);
		return;
	}
	p->up.invoke_done(inv, resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
}

int aws_lambda_invoke_start(void *self, hypertest_invocation *inv, const char *payload, size_t len)
{
	aws_provider *p = self;
	aws_http_request *req;
	char *err = NULL;
	pending *pd;
	int rc;
	if ((rc = aws_ready(p)) || (rc = invoke_target(p)))
		return rc;
	pd = malloc(sizeof *pd);
	req = aws_http_request_new("POST", p->invoke_url, p->invoke_what);
	if (!pd || !req || !(req->body_owned = malloc(len ? len : 1)) ||
	    aws_headers_add(&req->headers, "Content-Type", "application/json") < 0 ||
	    aws_headers_add(&req->headers, "X-Amz-Invocation-Type", "RequestResponse") < 0 ||
	    aws_headers_add(&req->headers, "X-Amz-Log-Type", "Tail") < 0) {
		free(pd);
		aws_http_request_free(req);
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	memcpy(req->body_owned, payload, len);
	req->body = req->body_owned;
	req->body_len = len;
	req->sign = aws_http_sign_sigv4;
	req->sign_ud = &p->sig[AWS_SVC_LAMBDA];
	pd->p = p;
	pd->inv = inv;
	if ((rc = aws_http_multi_add(p->ihttp, req, invoke_done, pd, &err))) {
		free(pd);
		return aws_p_err_take(p, rc, err);
	}
	free(err);
	return 0;
}

/* After INVOKE_END, once the last invocation is done: what the
 * invocations' HTTP client freed, thousands of small blocks, goes back to
 * the system rather than staying in malloc's free lists, where the larger
 * buffers of the results and the report do not fit. */
static void end_trim(aws_provider *p)
{
	if (p->invoke_ended != 1 || aws_http_multi_pending(p->ihttp) > 0)
		return;
	p->invoke_ended = 2;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

int aws_lambda_invoke_wait(void *self, int timeout_ms)
{
	aws_provider *p = self;
	int n;
	if (!p->ihttp)
		return 0;
	n = aws_http_multi_wait(p->ihttp, timeout_ms);
	end_trim(p);
	return n;
}

void aws_lambda_warm(aws_provider *p)
{
	char *err = NULL;
	aws_http_request *req;
	size_t n = p->o.concurrency > 0 ? (size_t)p->o.concurrency : 0, opening = 0;
	if (n == 0 || !p->ihttp || p->function_side || invoke_target(p) != 0)
		return;
	/* GET of the Invoke path, signed: Lambda answers 404 UnknownOperation
	 * after checking the signature, and keeps the connection */
	if (!(req = aws_http_request_new("GET", p->invoke_url, "Lambda warm-up")))
		return;
	req->sign = aws_http_sign_sigv4;
	req->sign_ud = &p->sig[AWS_SVC_LAMBDA];
	/* logged once the warm-up has started: not on every object read */
	if (aws_http_warm(p->ihttp, req, n, &opening, &err) != 0)
		aws_p_log(p, HYPERTEST_LOG_DEBUG, "Lambda: no warm-up: %s", aws_msg(err));
	else if (opening)
		aws_p_log(p, HYPERTEST_LOG_DEBUG,
		          "Lambda: opening up to %zu connections to %s ahead of the invocations%s", opening,
		          p->ep[AWS_SVC_LAMBDA].url,
		          offers_h2(p) ? " (over HTTP/2, as many as their streams "
		                         "need once the first tells how many it takes)"
		                       : "");
	free(err);
	aws_http_request_free(req);
}

void aws_lambda_invoke_cancel(void *self)
{
	aws_provider *p = self;
	if (p->ihttp)
		aws_http_multi_cancel(p->ihttp);
}

void aws_lambda_invoke_end(void *self)
{
	aws_provider *p = self;
	if (!p->ihttp || p->invoke_ended)
		return;
	aws_http_release_idle(p->ihttp);
	p->invoke_ended = 1;
	aws_p_log(p, HYPERTEST_LOG_DEBUG,
	          "Lambda: no invocation starts again: %zu HTTP %s left (%s client), each freed "
	          "as its invocation ends",
	          aws_http_handles(p->ihttp),
	          strcmp(aws_http_transport(p->ihttp), "builtin") ? "handles" : "connections",
	          aws_http_transport(p->ihttp));
	end_trim(p);
}
