/*
 * endpoints.c - endpoint resolution for the aws provider: option, then
 * AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, then the standard
 * regional endpoint; S3 addressing (virtual-hosted unless path style was
 * asked for or the endpoint is an IP address or localhost).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "endpoints.h"

static const char *const keys[AWS_SVC_COUNT] = {"s3", "lambda", "ecr", "servicequotas", "iam"};
static const char *const envs[AWS_SVC_COUNT] = {"S3", "LAMBDA", "ECR", "SERVICE_QUOTAS", "IAM"};
/* host name prefix of the standard endpoint */
static const char *const prefixes[AWS_SVC_COUNT] = {"s3", "lambda", "api.ecr",
                                                    "servicequotas", "iam"};

/* IAM is global: one endpoint per partition, signed for the partition's
 * home region whatever the configured region is. */
static const char *iam_region(const char *region)
{
	if (strncmp(region, "cn-", 3) == 0)
		return "cn-north-1";
	if (strncmp(region, "us-gov-", 7) == 0)
		return "us-gov-west-1";
	return "us-east-1";
}

const char *aws_service_key(int service)
{
	return service >= 0 && service < AWS_SVC_COUNT ? keys[service] : "?";
}

const char *aws_service_env(int service)
{
	return service >= 0 && service < AWS_SVC_COUNT ? envs[service] : "?";
}

/* Split url into its host part [start, end) (port excluded); -1 if not
 * http(s)://host[:port][/...]. */
static int url_host(const char *url, const char **hs, const char **he)
{
	const char *p, *end;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return -1;
	end = p + strcspn(p, "/?#");
	if (end == p)
		return -1;
	if (memchr(p, '@', (size_t)(end - p)))
		return -1; /* no user info */
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close)
			return -1;
		*hs = p;
		*he = close + 1;
		p = close + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		*hs = p;
		*he = colon ? colon : end;
		p = *he;
		if (*he == *hs)
			return -1;
	}
	if (*p == ':') {
		const char *d = p + 1;
		if (d == end)
			return -1;
		for (; d < end; d++)
			if (!isdigit((unsigned char)*d))
				return -1;
	} else if (p != end) {
		return -1;
	}
	if (end[0] == '?' || end[0] == '#')
		return -1;
	return 0;
}

int aws_endpoint_url_valid(const char *url)
{
	const char *hs, *he;
	return url && url_host(url, &hs, &he) == 0;
}

/* An IPv4 or IPv6 address, "localhost" or a name below it. */
static int host_needs_path_style(const char *hs, const char *he)
{
	size_t n = (size_t)(he - hs);
	const char *p;
	int dots = 0;
	if (*hs == '[')
		return 1;
	if ((n == 9 && strncasecmp(hs, "localhost", 9) == 0) ||
	    (n > 10 && strncasecmp(he - 10, ".localhost", 10) == 0))
		return 1;
	for (p = hs; p < he; p++) {
		if (*p == '.')
			dots++;
		else if (!isdigit((unsigned char)*p))
			return 0;
	}
	return dots == 3;
}

int aws_endpoints_options_from_json(aws_endpoints_options *o, json_t *options, char **err)
{
	json_t *eps = json_object_get(options, "endpoints"), *fps, *v;
	const char *k;
	int i;
	for (i = 0; i < AWS_SVC_COUNT; i++)
		o->overrides[i] = NULL;
	o->s3_force_path_style = 0;
	if (eps && !json_is_object(eps))
		return aws_fail(err, HYPERTEST_ERR_CONFIG,
		                "option \"endpoints\" must be an object such as "
		                "{\"s3\": \"http://127.0.0.1:4568\"}");
	json_object_foreach(eps, k, v) {
		for (i = 0; i < AWS_SVC_COUNT; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == AWS_SVC_COUNT)
			return aws_fail(err, HYPERTEST_ERR_CONFIG,
			                "option \"endpoints.%s\": unknown service (known: s3, lambda, ecr, "
			                "servicequotas, iam)",
			                k);
		if (!json_is_string(v))
			return aws_fail(err, HYPERTEST_ERR_CONFIG,
			                "option \"endpoints.%s\" must be a URL string", k);
		if (!aws_endpoint_url_valid(json_string_value(v)))
			return aws_fail(err, HYPERTEST_ERR_CONFIG,
			                "option \"endpoints.%s\": \"%s\" is not http(s)://host[:port][/path]",
			                k, json_string_value(v));
		o->overrides[i] = json_string_value(v);
	}
	fps = json_object_get(options, "s3ForcePathStyle");
	if (fps && !json_is_boolean(fps))
		return aws_fail(err, HYPERTEST_ERR_CONFIG, "option \"s3ForcePathStyle\" must be true or false");
	o->s3_force_path_style = json_is_true(fps);
	return 0;
}

void aws_endpoint_free(aws_endpoint *e)
{
	free(e->url);
	free(e->source);
	free(e->signing_region);
	memset(e, 0, sizeof *e);
}

int aws_endpoint_resolve(aws_endpoint *e, int service, const aws_endpoints_options *o,
                         char **err)
{
	char var[64];
	const char *url = NULL, *hs, *he;
	htp_buf src = {0}, u = {0};
	memset(e, 0, sizeof *e);
	if (service < 0 || service >= AWS_SVC_COUNT)
		return aws_fail(err, HYPERTEST_ERR_INVALID, "unknown AWS service %d", service);
	if (!o || !o->region || !*o->region)
		return aws_fail(err, HYPERTEST_ERR_CONFIG, "%s endpoint: no AWS region", keys[service]);
	snprintf(var, sizeof var, "AWS_ENDPOINT_URL_%s", envs[service]);
	if (o->overrides[service]) {
		url = o->overrides[service];
		htp_buf_addf(&src, "option endpoints.%s", keys[service]);
	} else if (getenv(var) && *getenv(var)) {
		url = getenv(var);
		htp_buf_addf(&src, "environment (%s)", var);
	} else if (getenv("AWS_ENDPOINT_URL") && *getenv("AWS_ENDPOINT_URL")) {
		url = getenv("AWS_ENDPOINT_URL");
		htp_buf_str(&src, "environment (AWS_ENDPOINT_URL)");
	}
	if (url) {
		size_t n = strlen(url);
		if (!aws_endpoint_url_valid(url)) {
			int rc = aws_fail(err, HYPERTEST_ERR_CONFIG,
			                  "%s endpoint from %s: \"%s\" is not http(s)://host[:port][/path]",
			                  keys[service], src.data, url);
			htp_buf_free(&src);
			return rc;
		}
		while (n > 0 && url[n - 1] == '/')
			n--;
		htp_buf_add(&u, url, n);
	} else if (service == AWS_SVC_IAM) {
		const char *home = iam_region(o->region);
		if (strcmp(home, "us-east-1") == 0)
			htp_buf_str(&u, "https://iam.amazonaws.com");
		else
			htp_buf_addf(&u, "https://iam.%s.amazonaws.com%s", home,
			             strncmp(home, "cn-", 3) == 0 ? ".cn" : "");
		htp_buf_str(&src, "default");
	} else {
		int cn = strncmp(o->region, "cn-", 3) == 0;
		htp_buf_addf(&u, "https://%s.%s.amazonaws.com%s", prefixes[service], o->region,
		             cn ? ".cn" : "");
		htp_buf_str(&src, "default");
	}
	e->service = service;
	e->url = htp_buf_take(&u);
	e->source = htp_buf_take(&src);
	e->signing_name = keys[service];
	e->signing_region = strdup(service == AWS_SVC_IAM ? iam_region(o->region) : o->region);
	if (!e->url || !e->source || !e->signing_region) {
		aws_endpoint_free(e);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (service == AWS_SVC_S3) {
		url_host(e->url, &hs, &he);
		e->path_style = o->s3_force_path_style || host_needs_path_style(hs, he);
	}
	return 0;
}

char *aws_s3_url(const aws_endpoint *e, const char *bucket, const char *key, const char *query)
{
	htp_buf b = {0};
	const char *hs, *he;
	int path_style = e->path_style;
	if (url_host(e->url, &hs, &he) < 0)
		return NULL;
	/* a dotted bucket name does not match the certificate of *.s3...: path style */
	if (!path_style && strchr(bucket, '.') && strncasecmp(e->url, "https:", 6) == 0)
		path_style = 1;
	if (path_style) {
		htp_buf_str(&b, e->url);
		htp_buf_str(&b, "/");
		aws_uri_encode(&b, bucket, strlen(bucket), 0);
	} else {
		htp_buf_add(&b, e->url, (size_t)(hs - e->url));
		aws_uri_encode(&b, bucket, strlen(bucket), 0);
		htp_buf_str(&b, ".");
		htp_buf_str(&b, hs);
	}
	htp_buf_str(&b, "/");
	if (key && *key)
		aws_uri_encode(&b, key, strlen(key), 1);
	if (query && *query) {
		htp_buf_str(&b, "?");
		htp_buf_str(&b, query);
	}
	if (!b.data) {
		htp_buf_free(&b);
		return NULL;
	}
	return htp_buf_take(&b);
}
