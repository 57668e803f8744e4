/*
 * runtime.c - the aws provider inside the function.  With
 * AWS_LAMBDA_RUNTIME_API set: the Lambda Runtime API loop (GET
 * /2018-06-01/runtime/invocation/next, blocking without a time limit; the
 * payload through up.function_handle; POST .../invocation/{id}/response, or
 * .../error when no response came; /runtime/init/error when serving cannot
 * start).  Without it: one payload from stdin, its response to stdout (the
 * same image then runs under the local provider and in tests).  Artifacts
 * go to S3 with the environment's credentials (the function's role) and
 * AWS_REGION, into the bucket the payload named.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define RUNTIME_PATH "/2018-06-01/runtime"

/* ---- stdin / stdout -------------------------------------------------------------------------- */

static int read_all(int fd, htp_buf *out)
{
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r > 0) {
			if (htp_buf_add(out, chunk, (size_t)r) < 0) {
				errno = ENOMEM;
				return -1;
			}
		} else if (r == 0) {
			return htp_buf_add(out, "", 0);
		} else if (errno == EAGAIN) {
			struct pollfd pfd = {fd, POLLIN, 0};
			poll(&pfd, 1, -1);
		} else if (errno != EINTR) {
			return -1;
		}
	}
}

/* Remember the payload's bucketName for ARTIFACTS_STORE. */
static void note_bucket(aws_provider *p, const char *payload, size_t len)
{
	json_t *doc = json_loadb(payload, len, 0, NULL);
	const char *b = json_string_value(json_object_get(doc, "bucketName"));
	free(p->invocation_bucket);
	p->invocation_bucket = b && *b ? strdup(b) : NULL;
	json_decref(doc);
}

/* Run one payload; *resp (a core buffer) holds the response or is empty. */
static int handle(aws_provider *p, hypertest_function *fn, const char *payload, size_t len,
                  hypertest_buffer **resp)
{
	note_bucket(p, payload, len);
	*resp = p->up.buffer_new(p->core);
	if (!*resp)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	return p->up.function_handle(fn, payload, len, *resp);
}

static int serve_stdio(aws_provider *p, hypertest_function *fn)
{
	htp_buf in = {0};
	hypertest_buffer *resp = NULL;
	const char *data;
	size_t n = 0;
	int rc;
	if (read_all(0, &in) != 0) {
		htp_buf_free(&in);
		return aws_p_fail(p, HYPERTEST_ERR_IO, "cannot read the payload from stdin: %s",
		                  strerror(errno));
	}
	rc = handle(p, fn, in.data, in.len, &resp);
	htp_buf_free(&in);
	data = resp ? p->up.buffer_data(resp, &n) : NULL;
	if (data && n > 0) {
		int e = htp_write_all(1, data, n);
		rc = e == 0 ? 0
		            : aws_p_fail(p, HYPERTEST_ERR_IO, "cannot write the response: %s", strerror(e));
	} else if (rc == 0) {
		rc = aws_p_fail(p, HYPERTEST_ERR_PROVIDER, "the function gave no response");
	}
	if (resp)
		p->up.buffer_free(resp);
	return rc;
}

/* ---- the Runtime API ----------------------------------------------------------------------- */

static int rt_call(aws_provider *p, aws_http *h, const char *base, const char *method,
                   const char *path, const char *error_type, const char *body, size_t len,
                   aws_http_response *resp, char **err)
{
	aws_http_request req;
	char *url = NULL;
	int rc;
	if (asprintf(&url, "%s%s", base, path) < 0)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = aws_http_request_init(&req, method, url, url);
	free(url);
	if (rc < 0 || aws_headers_add(&req.headers, "Content-Type", "application/json") < 0 ||
	    (error_type &&
	     aws_headers_add(&req.headers, "Lambda-Runtime-Function-Error-Type", error_type) < 0)) {
		if (rc == 0)
			aws_http_request_clear(&req);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	req.body = body;
	req.body_len = len;
	rc = aws_http_perform(h, &req, resp, err);
	aws_http_request_clear(&req);
	(void)p;
	return rc;
}

/* {"errorMessage": msg, "errorType": type} to path. */
static int rt_error(aws_provider *p, aws_http *h, const char *base, const char *path,
                    const char *type, const char *msg)
{
	json_t *doc = json_pack("{s:s, s:s}", "errorMessage", msg, "errorType", type);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	aws_http_response resp;
	char *err = NULL;
	int rc;
	json_decref(doc);
	if (!text)
		return HYPERTEST_ERR_NOMEM;
	rc = rt_call(p, h, base, "POST", path, type, text, strlen(text), &resp, &err);
	aws_http_response_clear(&resp);
	free(text);
	if (rc)
		aws_p_log(p, HYPERTEST_LOG_ERROR, "cannot report an error: %s", aws_msg(err));
	free(err);
	return rc;
}

static void rt_log(void *ud, int level, const char *msg)
{
	aws_provider *p = ud;
	if (p->up.log)
		p->up.log(p->core, level, msg);
}

static int serve_runtime_api(aws_provider *p, hypertest_function *fn, const char *api)
{
	aws_http_config cfg = {0};
	aws_http *h;
	char *err = NULL;
	char *base = NULL;
	int rc = 0;
	if (asprintf(&base, "http://%s" RUNTIME_PATH, api) < 0)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	cfg.timeout_ms = 0; /* /next blocks until there is work */
	cfg.max_response = AWS_LAMBDA_MAX_RESPONSE;
	cfg.log = rt_log;
	cfg.log_ud = p;
	cfg.concurrency = 1;
	h = aws_http_new(&cfg, &err);
	if (!h) {
		free(base);
		return aws_p_err_take(p, err ? HYPERTEST_ERR_HTTP : HYPERTEST_ERR_NOMEM, err);
	}
	for (;;) {
		aws_http_response next;
		hypertest_buffer *resp = NULL;
		const char *id, *deadline, *data;
		char path[512];
		size_t n = 0;
		int hrc;
		rc = rt_call(p, h, base, "GET", "/invocation/next", NULL, NULL, 0, &next, &err);
		if (rc) {
			aws_http_response_clear(&next);
			rc = aws_p_err_take(p, rc, err);
			err = NULL;
			break;
		}
		id = aws_headers_get(&next.headers, "Lambda-Runtime-Aws-Request-Id");
		deadline = aws_headers_get(&next.headers, "Lambda-Runtime-Deadline-Ms");
		if (!id || !*id || strlen(id) > 200 || strpbrk(id, "/?#%")) {
			aws_p_log(p, HYPERTEST_LOG_ERROR,
			          "Runtime API: an invocation without a usable Lambda-Runtime-Aws-Request-Id");
			aws_http_response_clear(&next);
			continue;
		}
		/* the deadline is for information: it is not always in the future */
		aws_p_log(p, HYPERTEST_LOG_DEBUG, "invocation %s (deadline %s)", id,
		          deadline ? deadline : "none");
		hrc = handle(p, fn, next.body.data ? next.body.data : "", next.body.len, &resp);
		data = resp ? p->up.buffer_data(resp, &n) : NULL;
		if (data && n > 0) {
			aws_http_response ans;
			snprintf(path, sizeof path, "/invocation/%s/response", id);
			if (rt_call(p, h, base, "POST", path, NULL, data, n, &ans, &err) != 0) {
				aws_p_log(p, HYPERTEST_LOG_ERROR, "cannot send the response of %s: %s", id,
				          aws_msg(err));
				if (ans.status == 413) {
					snprintf(path, sizeof path, "/invocation/%s/error", id);
					rt_error(p, h, base, path, "Function.ResponseSizeTooLarge",
					         "the response is larger than Lambda accepts");
				}
			}
			aws_http_response_clear(&ans);
		} else {
			char msg[2300];
			snprintf(msg, sizeof msg, "hypertest-function could not handle the payload: %s",
			         !resp ? "out of memory" : hrc ? "error" : "no response");
			snprintf(path, sizeof path, "/invocation/%s/error", id);
			rt_error(p, h, base, path, "Runtime.HandlerError", msg);
		}
		if (resp)
			p->up.buffer_free(resp);
		aws_http_response_clear(&next);
	}
	aws_http_free(h);
	free(base);
	free(err);
	return rc;
}

int aws_runtime_serve(void *self, hypertest_function *fn)
{
	aws_provider *p = self;
	const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
	p->function_side = 1;
	if (!p->up.function_handle || !p->up.buffer_new || !p->up.buffer_data ||
	    !p->up.buffer_free) {
		char msg[80];
		snprintf(msg, sizeof msg, "this core lacks the upcalls to serve (%d, %d-%d)",
		         HYPERTEST_UP_FUNCTION_HANDLE, HYPERTEST_UP_BUFFER_NEW, HYPERTEST_UP_BUFFER_FREE);
		int rc = aws_p_fail(p, HYPERTEST_ERR_UNSUPPORTED, "%s", msg);
		if (api && *api) {
			aws_http *h = aws_http_new(NULL, NULL);
			char *base = NULL;
			if (h && asprintf(&base, "http://%s" RUNTIME_PATH, api) >= 0)
				rt_error(p, h, base, "/init/error", "Runtime.InitError", msg);
			free(base);
			aws_http_free(h);
		}
		return rc;
	}
	/* since ABI 1.2: the function cannot run tests (its runner did not load) */
	const char *init = p->up.core_str ? p->up.core_str(p->core, HYPERTEST_CORE_FUNCTION_INIT_ERROR)
	                                  : NULL;
	if (init && *init && api && *api) {
		aws_http *h = aws_http_new(NULL, NULL);
		char *base = NULL;
		if (h && asprintf(&base, "http://%s" RUNTIME_PATH, api) >= 0)
			rt_error(p, h, base, "/init/error", "Runtime.InitError", init);
		free(base);
		aws_http_free(h);
		return aws_p_fail(p, HYPERTEST_ERR_PLUGIN, "%s", init);
	}
	if (api && *api)
		return serve_runtime_api(p, fn, api);
	return serve_stdio(p, fn); /* with an init error: answered failed, saying why */
}

/* ---- artifacts ------------------------------------------------------------------------------ */

/* Each artifact not stored is a warning, which the core adds to the
 * test's result. */
static void artifact_warn(void *ud, const char *msg)
{
	aws_p_log(ud, HYPERTEST_LOG_WARNING, "%s", msg);
}

int aws_runtime_artifacts_store(void *self, const char *prefix, const char *dir)
{
	aws_provider *p = self;
	char *err = NULL;
	aws_s3 s;
	size_t count = 0, lost = 0;
	int rc;
	p->function_side = 1;
	if ((rc = aws_ready(p)))
		return rc;
	aws_s3_init(&s, p->http, &p->creds, &p->ep[AWS_SVC_S3],
	            p->invocation_bucket ? p->invocation_bucket : p->o.bucket);
	rc = aws_s3_upload_dir(&s, prefix, dir, &count, &lost, artifact_warn, p, &err);
	if (rc)
		return aws_p_err_take(p, rc, err);
	free(err);
	aws_p_log(p, HYPERTEST_LOG_DEBUG, "stored %zu artifacts in s3://%s/%s/ (%zu not stored)",
	          count, p->invocation_bucket ? p->invocation_bucket : p->o.bucket, prefix, lost);
	return 0;
}
