/*
 * options.c - the aws provider's options (checked, errors naming the key,
 * unknown keys with a suggestion), its error, log and cancel helpers, the clients
 * it makes on first use (credentials, endpoints, HTTP, S3) and the signed
 * JSON call every control-plane operation goes through.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

/* ---- errors and logs ------------------------------------------------------------------ */

int aws_p_fail(aws_provider *p, int code, const char *fmt, ...)
{
	char msg[2048], *red;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	red = aws_redact(msg, p->ready ? &p->creds : NULL);
	if (p->up.set_error)
		p->up.set_error(p->core, code, red ? red : "(message dropped)");
	free(red);
	return code;
}

int aws_p_err_take(aws_provider *p, int code, char *err)
{
	int rc = aws_p_fail(p, code ? code : HYPERTEST_ERR_PROVIDER, "%s", aws_msg(err));
	free(err);
	return rc;
}

void aws_p_log(aws_provider *p, int level, const char *fmt, ...)
{
	char msg[2048], *red;
	va_list ap;
	if (!p->up.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	red = aws_redact(msg, p->ready ? &p->creds : NULL);
	if (red)
		p->up.log(p->core, level, red);
	free(red);
}

const char *aws_p_core_str(aws_provider *p, int what)
{
	const char *s = p->up.core_str ? p->up.core_str(p->core, what) : NULL;
	return s ? s : "";
}

/* ---- suggestions ------------------------------------------------------------------------ */

static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev[64], cur[64];
	if (la >= 63 || lb >= 63)
		return 99;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + ((a[i - 1] | 32) != (b[j - 1] | 32));
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof *prev);
	}
	return prev[lb];
}

const char *aws_suggest(const char *key, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t bd = 4, i;
	for (i = 0; i < n; i++) {
		size_t d = distance(key, names[i]);
		if (d < bd) {
			bd = d;
			best = names[i];
		}
	}
	return best;
}

/* ---- options -------------------------------------------------------------------------------- */

static const char *const option_names[] = {
    "region",      "functionName", "bucketName", "ecrRegistry",
    "repository",  "baseImage",    "lambdaUpdateMaxWaitTime",
    "profile",     "endpoints",    "s3ForcePathStyle",
    "maxRetries",  "retryBudgetMs", "requestTimeout", "logHttp",
    "caBundle",    "projectName",  "roleName", "ecrLifecycleKeep", "bucketExpireDays",
    "memoryMB",    "timeoutSeconds", "ephemeralStorageMB", "reservedConcurrency",
    "roleWaitTime", "httpClient", "httpVersion"};
/* The core's cap on a configuration file (1 MiB). */
#define AWS_CONFIG_MAX ((size_t)1 << 20)
#define N_OPTIONS (sizeof option_names / sizeof option_names[0])

static int opt_string(aws_provider *p, const char *key, int required, char **out)
{
	json_t *v = json_object_get(p->o.json, key);
	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return aws_p_fail(p, HYPERTEST_ERR_CONFIG, "option '%s' is required", key);
		return 0;
	}
	if (!json_is_string(v) || !*json_string_value(v))
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG, "option '%s' must be a non-empty string",
		                  key);
	if (!(*out = strdup(json_string_value(v))))
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}

static int opt_number(aws_provider *p, const char *key, double def, double min, double max,
                      int integral, double *out)
{
	json_t *v = json_object_get(p->o.json, key);
	double d;
	*out = def;
	if (!v)
		return 0;
	d = json_number_value(v);
	if (!json_is_number(v) || (integral && !json_is_integer(v)) || !isfinite(d) || d < min ||
	    d > max)
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG, "option '%s' must be %s from %g to %g", key,
		                  integral ? "an integer" : "a number", min, max);
	*out = d;
	return 0;
}

/* ecrRegistry: host[:port], or http(s)://host[:port] (http: plain HTTP). */
static int opt_registry(aws_provider *p)
{
	char *s = NULL, *host;
	size_t n;
	int rc = opt_string(p, "ecrRegistry", 0, &s);
	if (rc || !s)
		return rc;
	host = s;
	if (strncmp(s, "http://", 7) == 0) {
		p->o.ecr_plain_http = 1;
		host = s + 7;
	} else if (strncmp(s, "https://", 8) == 0) {
		host = s + 8;
	}
	n = strlen(host);
	while (n > 0 && host[n - 1] == '/')
		n--;
	if (n == 0 || memchr(host, '/', n) || memchr(host, '@', n) || memchr(host, '?', n)) {
		free(s);
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'ecrRegistry' must be a registry host such as "
		                  "123456789012.dkr.ecr.eu-central-1.amazonaws.com (or an http(s):// "
		                  "URL without a path)");
	}
	p->o.ecr_registry = strndup(host, n);
	free(s);
	return p->o.ecr_registry ? 0 : aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* repository and tag: the option, else the configuration's imageName. */
static int opt_repository(aws_provider *p)
{
	char *repo = NULL;
	const char *image = aws_p_core_str(p, HYPERTEST_CORE_IMAGE_NAME), *slash, *colon;
	int rc = opt_string(p, "repository", 0, &repo);
	if (rc)
		return rc;
	if (!repo && *image) {
		slash = strrchr(image, '/');
		colon = strrchr(slash ? slash : image, ':');
		repo = colon ? strndup(image, (size_t)(colon - image)) : strdup(image);
		if (colon && colon[1] && !(p->o.tag = strdup(colon + 1)))
			return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	} else if (repo) {
		slash = strrchr(repo, '/');
		colon = strrchr(slash ? slash : repo, ':');
		if (colon) {
			free(repo);
			return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
			                  "option 'repository' must be a repository name without a tag");
		}
	}
	p->o.repository = repo;
	return 0;
}

/* The configuration's "concurrency" (into *n, 0 when unknown) and
 * "platform": from the core (ABI 1.3, whatever the configuration was read
 * from: a JSON file, a module, a string), else, from an older core, by
 * reading the JSON file again with the core's cap: one that grew past it
 * meanwhile (or was replaced by something endless) is an error naming it. */
static int config_concurrency(aws_provider *p, long *n)
{
	const char *path = aws_p_core_str(p, HYPERTEST_CORE_CONFIG_PATH);
	const char *conc = aws_p_core_str(p, HYPERTEST_CORE_CONCURRENCY);
	json_t *doc, *v;
	char *text = NULL;
	size_t len = 0;
	*n = 0;
	if (*conc) {
		const char *platform = aws_p_core_str(p, HYPERTEST_CORE_PLATFORM);
		*n = strtol(conc, NULL, 10);
		if (*n < 0)
			*n = 0;
		if (*platform && !(p->o.platform = strdup(platform)))
			return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		return 0;
	}
	if (!*path)
		return 0;
	int e = htp_read_file(path, AWS_CONFIG_MAX, &text, &len);
	if (e == EFBIG)
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG, "%s: larger than %zu MiB, the limit for a "
		                  "configuration file", path, AWS_CONFIG_MAX >> 20);
	doc = e == 0 ? json_loadb(text, len, 0, NULL) : NULL;
	free(text);
	v = json_object_get(doc, "concurrency");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		*n = (long)json_integer_value(v);
	else if (json_is_object(doc) && !v)
		*n = 30; /* the core's default */
	v = json_object_get(doc, "platform");
	if (json_is_string(v))
		p->o.platform = strdup(json_string_value(v));
	json_decref(doc);
	return 0;
}

/* The provisioning options (provision.c). */
static int opt_provision(aws_provider *p)
{
	const char *dir, *base;
	double d;
	int rc;
	if ((rc = opt_string(p, "projectName", 0, &p->o.project_name)) ||
	    (rc = opt_string(p, "roleName", 0, &p->o.role_name)))
		return rc;
	if (!p->o.project_name) {
		dir = aws_p_core_str(p, HYPERTEST_CORE_PROJECT_DIR);
		base = strrchr(dir, '/');
		base = base && base[1] ? base + 1 : dir;
		p->o.project_name = strdup(p->o.repository ? p->o.repository : *base ? base : "hypertest");
	}
	if (!p->o.role_name && asprintf(&p->o.role_name, "%.59s-role", p->o.function_name) < 0)
		p->o.role_name = NULL;
	if (!p->o.project_name || !p->o.role_name)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (strlen(p->o.project_name) > 256)
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'projectName' must be at most 256 characters (a tag value)");
	if (strlen(p->o.role_name) > 64 || strspn(p->o.role_name,
	                                          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                                          "0123456789+=,.@_-") != strlen(p->o.role_name))
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'roleName' must be 1 to 64 of A-Z a-z 0-9 +=,.@_- (an IAM "
		                  "role name), got '%s'",
		                  p->o.role_name);
	if ((rc = opt_number(p, "ecrLifecycleKeep", 10, 0, 10000, 1, &d)))
		return rc;
	p->o.ecr_keep = (long)d;
	if ((rc = opt_number(p, "bucketExpireDays", 30, 0, 36500, 1, &d)))
		return rc;
	p->o.expire_days = (long)d;
	if ((rc = opt_number(p, "memoryMB", 2048, 128, 10240, 1, &d)))
		return rc;
	p->o.memory_mb = (long)d;
	if ((rc = opt_number(p, "timeoutSeconds", 300, 1, 900, 1, &d)))
		return rc;
	p->o.timeout_s = (long)d;
	if ((rc = opt_number(p, "ephemeralStorageMB", 2048, 512, 10240, 1, &d)))
		return rc;
	p->o.ephemeral_mb = (long)d;
	if ((rc = opt_number(p, "reservedConcurrency", -1, 0, 1000000, 1, &d)))
		return rc;
	p->o.reserved = (long)d;
	if ((rc = opt_number(p, "roleWaitTime", 120, 0, 3600, 0, &d)))
		return rc;
	p->o.role_wait_ms = (long)(d * 1000);
	return 0;
}

int aws_options_parse(aws_provider *p, const char *options_json)
{
	json_error_t jerr;
	char *err = NULL;
	const char *key;
	json_t *v;
	double d;
	int rc = 0;

	p->o.json = options_json && *options_json ? json_loads(options_json, JSON_DECODE_ANY, &jerr)
	                                          : json_object();
	if (p->o.json && json_is_null(p->o.json)) {
		json_decref(p->o.json);
		p->o.json = json_object();
	}
	if (!json_is_object(p->o.json))
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG, "the options must be a JSON object");
	json_object_foreach(p->o.json, key, v) {
		size_t i;
		for (i = 0; i < N_OPTIONS && strcmp(key, option_names[i]) != 0; i++)
			;
		if (i == N_OPTIONS) {
			const char *s = aws_suggest(key, option_names, N_OPTIONS);
			if (s)
				return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
				                  "unknown option '%s' (did you mean '%s'?)", key, s);
			return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
			                  "unknown option '%s' (known: region, functionName, bucketName, "
			                  "ecrRegistry, repository, baseImage, lambdaUpdateMaxWaitTime, "
			                  "profile, endpoints, s3ForcePathStyle, maxRetries, retryBudgetMs, "
			                  "requestTimeout, logHttp, caBundle, httpClient, httpVersion)",
			                  key);
		}
	}
	if ((rc = opt_string(p, "region", 0, &p->o.region)) ||
	    (rc = opt_string(p, "functionName", 1, &p->o.function_name)) ||
	    (rc = opt_string(p, "bucketName", 1, &p->o.bucket)) || (rc = opt_registry(p)) ||
	    (rc = opt_repository(p)) || (rc = opt_string(p, "baseImage", 0, &p->o.base_image)) ||
	    (rc = opt_string(p, "profile", 0, &p->o.profile)) ||
	    (rc = opt_string(p, "caBundle", 0, &p->o.ca_bundle)))
		return rc;
	if (strchr(p->o.function_name, '/') || strchr(p->o.function_name, '?'))
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'functionName' must be a function name or ARN");
	if ((rc = opt_number(p, "lambdaUpdateMaxWaitTime", 600, 0.001, 86400, 0, &d)))
		return rc;
	p->o.update_max_wait_ms = (long)(d * 1000);
	if ((rc = opt_number(p, "maxRetries", 10, 0, 100, 1, &d)))
		return rc;
	p->o.max_retries = (int)d;
	if ((rc = opt_number(p, "retryBudgetMs", 60000, 0, 3600000, 1, &d)))
		return rc;
	p->o.retry_budget_ms = (long)d;
	if ((rc = opt_number(p, "requestTimeout", 960, 0.001, 86400, 0, &d)))
		return rc;
	p->o.request_timeout_ms = (long)(d * 1000);
	v = json_object_get(p->o.json, "logHttp");
	if (v && !json_is_boolean(v))
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG, "option 'logHttp' must be true or false");
	p->o.log_http = json_is_true(v);
	v = json_object_get(p->o.json, "httpClient");
	if (v) {
		const char *c = json_string_value(v);
		if (c && strcmp(c, "auto") == 0)
			p->o.http_client = AWS_HTTP_CLIENT_AUTO;
		else if (c && strcmp(c, "builtin") == 0)
			p->o.http_client = AWS_HTTP_CLIENT_BUILTIN;
		else if (c && strcmp(c, "curl") == 0)
			p->o.http_client = AWS_HTTP_CLIENT_CURL;
		else
			return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
			                  "option 'httpClient' must be \"auto\", \"builtin\" or \"curl\"");
	}
	/* HTTP/2 where the server chooses it by ALPN, as libcurl does for the
	 * single requests: HTTP/1.1 to a server that does not, and over http */
#ifdef HAVE_NGHTTP2
	p->o.http2 = AWS_HTTP2_TLS;
#else
	p->o.http2 = AWS_HTTP2_OFF;
#endif
	v = json_object_get(p->o.json, "httpVersion");
	if (v) {
		const char *c = json_string_value(v);
		if (c && strcmp(c, "1.1") == 0)
			p->o.http2 = AWS_HTTP2_OFF;
		else if (c && strcmp(c, "2") == 0)
			p->o.http2 = AWS_HTTP2_ON;
		else if (c && strcmp(c, "auto") == 0)
			p->o.http2 = AWS_HTTP2_TLS;
		else
			return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
			                  "option 'httpVersion' must be \"1.1\", \"2\" or \"auto\"");
#ifndef HAVE_NGHTTP2
		if (p->o.http2 != AWS_HTTP2_OFF)
			return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
			                  "option 'httpVersion' \"%s\": this hypertest was built without "
			                  "HTTP/2 (configure found no libnghttp2; Debian package "
			                  "libnghttp2-dev)", c);
#endif
	}
	if ((rc = aws_endpoints_options_from_json(&p->o.eps, p->o.json, &err)) != 0)
		return aws_p_err_take(p, rc, err);
	free(err);
	if ((rc = config_concurrency(p, &p->o.concurrency)))
		return rc;
	return opt_provision(p);
}

void aws_options_free(aws_options *o)
{
	free(o->region);
	free(o->function_name);
	free(o->bucket);
	free(o->ecr_registry);
	free(o->repository);
	free(o->tag);
	free(o->base_image);
	free(o->profile);
	free(o->ca_bundle);
	free(o->project_name);
	free(o->role_name);
	free(o->platform);
	json_decref(o->json);
	memset(o, 0, sizeof *o);
}

int aws_p_cancelled(aws_provider *p)
{
	return p->up.cancelled && p->up.cancelled(p->core);
}

static int cancelled_cb(void *ud)
{
	return aws_p_cancelled(ud);
}

int aws_p_sleep(aws_provider *p, long ms)
{
	return aws_http_sleep(ms, cancelled_cb, p);
}

/* ---- clients ------------------------------------------------------------------------------- */

static void http_log(void *ud, int level, const char *msg)
{
	aws_provider *p = ud;
	if (p->up.log)
		p->up.log(p->core, level, msg);
}

/* A failed step of aws_ready_err: its message err into *errp. */
static int ready_fail(char **errp, int code, char *err)
{
	free(*errp);
	*errp = err;
	return code;
}

int aws_ready_err(aws_provider *p, char **errp)
{
	aws_credentials_options co = {p->o.profile, p->o.region};
	aws_http_config cfg = {0};
	char *err = NULL;
	int i, rc;
	if (p->ready)
		return 0;
	if (p->function_side) {
		/* the function's role: the environment; the region Lambda runs in */
		const char *r = getenv("AWS_REGION");
		co.profile = NULL;
		if (r && *r)
			co.region = r;
	}
	aws_unready(p);
	rc = aws_credentials_load(&p->creds, &co, &err);
	if (rc)
		return ready_fail(errp, rc, err);
	p->o.eps.region = p->creds.region;
	for (i = 0; i < AWS_SVC_COUNT; i++) {
		if ((rc = aws_endpoint_resolve(&p->ep[i], i, &p->o.eps, &err)) != 0) {
			aws_unready(p);
			return ready_fail(errp, rc, err);
		}
		p->sig[i].creds = &p->creds;
		p->sig[i].region = p->ep[i].signing_region;
		p->sig[i].service = p->ep[i].signing_name;
		p->sig[i].payload_hash = NULL;
	}
	/* one CA store and one TLS session cache for every client */
	if (!(p->tls = aws_tls_new(p->o.ca_bundle, p->creds.ca_bundle, p->creds.ca_bundle_source,
	                           &err))) {
		aws_unready(p);
		return ready_fail(errp, err ? HYPERTEST_ERR_CONFIG : HYPERTEST_ERR_NOMEM, err);
	}
	cfg.tls = p->tls;
	cfg.max_attempts = p->o.max_retries + 1;
	cfg.retry_budget_ms = p->o.retry_budget_ms > 0 ? p->o.retry_budget_ms : 1;
	cfg.timeout_ms = p->o.request_timeout_ms;
	cfg.log = http_log;
	cfg.log_ud = p;
	/* a cancelled deploy ends the blocking request under way */
	cfg.cancelled = cancelled_cb;
	cfg.cancel_ud = p;
	cfg.creds = &p->creds;
	cfg.verbose = p->o.log_http;
	cfg.concurrency = 16;
	cfg.max_response = (size_t)256 << 20;
	if (!(p->http = aws_http_new(&cfg, &err))) {
		aws_unready(p);
		return ready_fail(errp, err ? HYPERTEST_ERR_HTTP : HYPERTEST_ERR_NOMEM, err);
	}
	/* invocations: as many connections as the core may keep in flight */
	cfg.concurrency = p->o.concurrency > 64 ? p->o.concurrency : 64;
	if (cfg.concurrency > 20000)
		cfg.concurrency = 20000;
	cfg.max_response = AWS_LAMBDA_MAX_RESPONSE;
	cfg.client = p->o.http_client;
	cfg.http2 = p->o.http2;
	if (!(p->ihttp = aws_http_new(&cfg, &err))) {
		aws_unready(p);
		return ready_fail(errp, err ? HYPERTEST_ERR_HTTP : HYPERTEST_ERR_NOMEM, err);
	}
	aws_s3_init(&p->s3, p->http, &p->creds, &p->ep[AWS_SVC_S3], p->o.bucket);
	free(err);
	p->ready = 1;
	return 0;
}

int aws_ready(aws_provider *p)
{
	char *err = NULL;
	int rc = aws_ready_err(p, &err);
	if (rc)
		return aws_p_err_take(p, rc, err);
	free(err);
	return 0;
}

void aws_unready(aws_provider *p)
{
	int i;
	aws_http_free(p->ihttp);
	aws_http_free(p->http);
	p->ihttp = p->http = NULL;
	aws_tls_unref(p->tls);
	p->tls = NULL;
	for (i = 0; i < AWS_SVC_COUNT; i++)
		aws_endpoint_free(&p->ep[i]);
	memset(p->ep, 0, sizeof p->ep);
	aws_credentials_free(&p->creds);
	memset(&p->creds, 0, sizeof p->creds);
	p->ready = 0;
}

int aws_json_call(aws_provider *p, int service, const char *method, const char *path,
                  const char *target, const char *body, const char *what, json_t **out,
                  char **error_code, char **err)
{
	aws_http_request req;
	aws_http_response resp;
	char *url;
	int rc;
	if (out)
		*out = NULL;
	if (error_code)
		*error_code = NULL;
	if (!(url = malloc(strlen(p->ep[service].url) + strlen(path) + 1)))
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	strcpy(url, p->ep[service].url);
	strcat(url, path);
	rc = aws_http_request_init(&req, method, url, what);
	free(url);
	if (rc < 0)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	if (aws_headers_add(&req.headers, "Content-Type",
	                    target ? "application/x-amz-json-1.1" : "application/json") < 0 ||
	    (target && aws_headers_add(&req.headers, "X-Amz-Target", target) < 0) ||
	    (body && !(req.body_owned = strdup(body)))) {
		aws_http_request_clear(&req);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	req.body = req.body_owned;
	req.body_len = body ? strlen(body) : 0;
	req.sign = aws_http_sign_sigv4;
	req.sign_ud = &p->sig[service];
	rc = aws_http_perform(p->http, &req, &resp, err);
	if (rc == 0 && out && resp.body.len) {
		json_error_t jerr;
		*out = json_loadb(resp.body.data, resp.body.len, 0, &jerr);
		if (!*out)
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "%s: the answer is not JSON (%s)", what,
			              jerr.text);
	}
	if (rc && error_code && resp.error_code)
		*error_code = strdup(resp.error_code);
	aws_http_response_clear(&resp);
	aws_http_request_clear(&req);
	return rc;
}
