/*
 * check_aws_credentials.c - tests of the aws provider's credentials,
 * endpoints, secret redaction and HTTP layer (plugins/provider-aws/
 * credentials.c, endpoints.c, http.c), the last against the small server
 * of aws-sigv4-httpd.c: AWS error parsing, retries and their budget, the
 * blocking and the asynchronous mode (2,000 requests in flight at once,
 * connection reuse, cancel), and that no secret reaches a log line or an
 * error message.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "aws-sigv4-httpd.h"
#include "credentials.h"
#include "endpoints.h"
#include "http.h"

static char tmpdir[256];

static void clear_env(void)
{
	static const char *const vars[] = {
	    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_LAMBDA",
	    "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_SERVICE_QUOTAS", NULL};
	size_t i;
	for (i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static void setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check-aws-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	clear_env();
	setenv("HOME", tmpdir, 1); /* no ~/.aws of the machine */
}

static void teardown(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "%s/credentials", tmpdir);
	unlink(cmd);
	snprintf(cmd, sizeof cmd, "%s/config", tmpdir);
	unlink(cmd);
	rmdir(tmpdir);
}

static char *write_tmp(const char *name, const char *text)
{
	static char path[512];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

/* Wait until every request of h has completed. */
static void drain(aws_http *h)
{
	while (aws_http_multi_pending(h))
		ck_assert_int_ge(aws_http_multi_wait(h, -1), 0);
}

/* ---- credentials ----------------------------------------------------------------- */

START_TEST(test_env_credentials)
{
	aws_credentials c;
	char *err = NULL;
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	setenv("AWS_DEFAULT_REGION", "eu-west-3", 1);
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), 0);
	ck_assert_str_eq(c.access_key_id, "AKIDENV");
	ck_assert_str_eq(c.secret_access_key, "envsecret");
	ck_assert_str_eq(c.session_token, "envtoken");
	ck_assert_str_eq(c.creds_source, "environment");
	ck_assert_str_eq(c.region, "eu-west-3");
	ck_assert_str_eq(c.region_source, "environment (AWS_DEFAULT_REGION)");
	aws_credentials_free(&c);
	setenv("AWS_REGION", "us-west-2", 1); /* before AWS_DEFAULT_REGION */
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), 0);
	ck_assert_str_eq(c.region, "us-west-2");
	aws_credentials_free(&c);
	{
		aws_credentials_options o = {NULL, "ap-south-1"}; /* the option first */
		ck_assert_int_eq(aws_credentials_load(&c, &o, &err), 0);
		ck_assert_str_eq(c.region, "ap-south-1");
		ck_assert_str_eq(c.region_source, "option");
		aws_credentials_free(&c);
	}
	unsetenv("AWS_SECRET_ACCESS_KEY");
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_AUTH);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "AWS_SECRET_ACCESS_KEY"));
	free(err);
}
END_TEST

START_TEST(test_profile_files)
{
	aws_credentials c;
	char *err = NULL;
	char cred[512], conf[512];
	snprintf(cred, sizeof cred, "%s",
	         write_tmp("credentials", "# shared credentials\n"
	                                  "[default]\n"
	                                  "aws_access_key_id = AKIDDEFAULT\n"
	                                  "aws_secret_access_key = defaultsecret\n"
	                                  "\n"
	                                  "  ; an indented comment\n"
	                                  "[dev]\n"
	                                  "aws_access_key_id=AKIDDEV   \n"
	                                  "\taws_secret_access_key =  devsecret\n"
	                                  "aws_session_token = devtoken\n"));
	snprintf(conf, sizeof conf, "%s",
	         write_tmp("config", "[default]\n"
	                             "region = us-east-2\n"
	                             "[profile   dev]\n"
	                             "region = eu-north-1\n"
	                             "s3 =\n"
	                             "    max_concurrent_requests = 20\n"
	                             "[profile cfgonly]\n"
	                             "aws_access_key_id = AKIDCFG\n"
	                             "aws_secret_access_key = cfgsecret\n"
	                             "region = sa-east-1\n"));
	/* $HOME/.aws is not used: name the files */
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);

	ck_assert_msg(aws_credentials_load(&c, NULL, &err) == 0, "%s", aws_msg(err));
	ck_assert_str_eq(c.access_key_id, "AKIDDEFAULT");
	ck_assert_str_eq(c.region, "us-east-2");
	{
		char want[600];
		snprintf(want, sizeof want, "%s [profile default]", cred);
		ck_assert_str_eq(c.creds_source, want);
		snprintf(want, sizeof want, "%s [profile default]", conf);
		ck_assert_str_eq(c.region_source, want);
	}
	ck_assert_ptr_null(c.session_token);
	aws_credentials_free(&c);

	setenv("AWS_PROFILE", "dev", 1);
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), 0);
	ck_assert_str_eq(c.access_key_id, "AKIDDEV");
	ck_assert_str_eq(c.secret_access_key, "devsecret");
	ck_assert_str_eq(c.session_token, "devtoken");
	ck_assert_str_eq(c.region, "eu-north-1");
	ck_assert_str_eq(c.profile, "dev");
	aws_credentials_free(&c);

	/* the option beats AWS_PROFILE and the environment's keys */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	{
		aws_credentials_options o = {"cfgonly", NULL};
		ck_assert_int_eq(aws_credentials_load(&c, &o, &err), 0);
		ck_assert_str_eq(c.access_key_id, "AKIDCFG");
		ck_assert_str_eq(c.region, "sa-east-1");
		aws_credentials_free(&c);
		o.profile = "nosuch";
		ck_assert_int_eq(aws_credentials_load(&c, &o, &err), HYPERTEST_ERR_NOT_FOUND);
		ck_assert_ptr_nonnull(strstr(aws_msg(err), "\"nosuch\""));
	}
	/* without the option the environment's keys come first */
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), 0);
	ck_assert_str_eq(c.access_key_id, "AKIDENV");
	ck_assert_str_eq(c.region, "eu-north-1"); /* AWS_PROFILE's region */
	aws_credentials_free(&c);
	free(err);
}
END_TEST

START_TEST(test_ini_errors)
{
	aws_credentials c;
	char *err = NULL;
	char want[600];
	char *cred = write_tmp("credentials", "[default]\n"
	                                      "aws_access_key_id = A\n"
	                                      "# fine\n"
	                                      "this line is wrong\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_CONFIG);
	snprintf(want, sizeof want, "%s:4:", cred);
	ck_assert_msg(strstr(aws_msg(err), want), "%s", aws_msg(err));

	cred = write_tmp("credentials", "key = value\n");
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), ":1:"));
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "before any [section]"));

	cred = write_tmp("credentials", "\n\n[default\n");
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), ":3:"));

	/* keys without a secret */
	cred = write_tmp("credentials", "[default]\naws_access_key_id = A\n");
	setenv("AWS_REGION", "us-east-1", 1);
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_AUTH);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "aws_secret_access_key"));

	/* nothing anywhere */
	unlink(cred);
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_AUTH);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "no AWS credentials"));

	/* no region */
	unsetenv("AWS_REGION");
	setenv("AWS_ACCESS_KEY_ID", "A", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "B", 1);
	ck_assert_int_eq(aws_credentials_load(&c, NULL, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "no AWS region"));
	free(err);
}
END_TEST

/* ---- endpoints -------------------------------------------------------------------- */

static char *resolve(int svc, const aws_endpoints_options *o, int *path_style, char **source)
{
	aws_endpoint e;
	char *err = NULL;
	char *url;
	ck_assert_int_eq(aws_endpoint_resolve(&e, svc, o, &err), 0);
	url = strdup(e.url);
	if (path_style)
		*path_style = e.path_style;
	if (source)
		*source = strdup(e.source);
	aws_endpoint_free(&e);
	free(err);
	return url;
}

START_TEST(test_endpoint_defaults)
{
	aws_endpoints_options o = {"eu-central-1", {NULL}, 0};
	char *u;
	int ps;
	u = resolve(AWS_SVC_LAMBDA, &o, NULL, NULL);
	ck_assert_str_eq(u, "https://lambda.eu-central-1.amazonaws.com");
	free(u);
	u = resolve(AWS_SVC_S3, &o, &ps, NULL);
	ck_assert_str_eq(u, "https://s3.eu-central-1.amazonaws.com");
	ck_assert_int_eq(ps, 0);
	free(u);
	u = resolve(AWS_SVC_ECR, &o, NULL, NULL);
	ck_assert_str_eq(u, "https://api.ecr.eu-central-1.amazonaws.com");
	free(u);
	u = resolve(AWS_SVC_SERVICE_QUOTAS, &o, NULL, NULL);
	ck_assert_str_eq(u, "https://servicequotas.eu-central-1.amazonaws.com");
	free(u);
	o.region = "cn-north-1";
	u = resolve(AWS_SVC_LAMBDA, &o, NULL, NULL);
	ck_assert_str_eq(u, "https://lambda.cn-north-1.amazonaws.com.cn");
	free(u);
	{
		aws_endpoint e;
		char *err = NULL;
		o.region = "eu-west-1";
		ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_SERVICE_QUOTAS, &o, &err), 0);
		ck_assert_str_eq(e.signing_name, "servicequotas");
		ck_assert_str_eq(e.signing_region, "eu-west-1");
		u = aws_s3_url(&e, "b", "k", NULL);
		aws_endpoint_free(&e);
		free(u);
		o.region = NULL;
		ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err), HYPERTEST_ERR_CONFIG);
		free(err);
	}
}
END_TEST

/* IAM is global: one endpoint per partition, signed for its home region
 * whatever the configured region, also behind an endpoint override. */
START_TEST(test_endpoint_iam)
{
	aws_endpoints_options o = {"eu-central-1", {NULL}, 0};
	aws_endpoint e;
	char *err = NULL;
	ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_IAM, &o, &err), 0);
	ck_assert_str_eq(e.url, "https://iam.amazonaws.com");
	ck_assert_str_eq(e.signing_name, "iam");
	ck_assert_str_eq(e.signing_region, "us-east-1");
	aws_endpoint_free(&e);
	o.region = "cn-northwest-1";
	ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_IAM, &o, &err), 0);
	ck_assert_str_eq(e.url, "https://iam.cn-north-1.amazonaws.com.cn");
	ck_assert_str_eq(e.signing_region, "cn-north-1");
	aws_endpoint_free(&e);
	o.region = "ap-southeast-2";
	setenv("AWS_ENDPOINT_URL_IAM", "http://127.0.0.1:9", 1);
	ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_IAM, &o, &err), 0);
	unsetenv("AWS_ENDPOINT_URL_IAM");
	ck_assert_str_eq(e.url, "http://127.0.0.1:9");
	ck_assert_str_eq(e.source, "environment (AWS_ENDPOINT_URL_IAM)");
	ck_assert_str_eq(e.signing_region, "us-east-1");
	aws_endpoint_free(&e);
	free(err);
}
END_TEST

START_TEST(test_endpoint_precedence)
{
	aws_endpoints_options o = {"us-east-1", {NULL}, 0};
	char *u, *src;
	setenv("AWS_ENDPOINT_URL", "http://global.example:1000/", 1);
	u = resolve(AWS_SVC_LAMBDA, &o, NULL, &src);
	ck_assert_str_eq(u, "http://global.example:1000");
	ck_assert_str_eq(src, "environment (AWS_ENDPOINT_URL)");
	free(u);
	free(src);
	setenv("AWS_ENDPOINT_URL_LAMBDA", "http://lambda.example:2000", 1);
	setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", "http://sq.example:3000", 1);
	u = resolve(AWS_SVC_LAMBDA, &o, NULL, &src);
	ck_assert_str_eq(u, "http://lambda.example:2000");
	ck_assert_str_eq(src, "environment (AWS_ENDPOINT_URL_LAMBDA)");
	free(u);
	free(src);
	u = resolve(AWS_SVC_SERVICE_QUOTAS, &o, NULL, NULL);
	ck_assert_str_eq(u, "http://sq.example:3000");
	free(u);
	u = resolve(AWS_SVC_ECR, &o, NULL, NULL); /* only the global one */
	ck_assert_str_eq(u, "http://global.example:1000");
	free(u);
	o.overrides[AWS_SVC_LAMBDA] = "https://option.example";
	u = resolve(AWS_SVC_LAMBDA, &o, NULL, &src);
	ck_assert_str_eq(u, "https://option.example");
	ck_assert_str_eq(src, "option endpoints.lambda");
	free(u);
	free(src);
	/* a bad URL in the environment is an error naming the variable */
	{
		aws_endpoint e;
		char *err = NULL;
		setenv("AWS_ENDPOINT_URL_S3", "ftp://x", 1);
		ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err), HYPERTEST_ERR_CONFIG);
		ck_assert_ptr_nonnull(strstr(aws_msg(err), "AWS_ENDPOINT_URL_S3"));
		free(err);
	}
}
END_TEST

START_TEST(test_s3_addressing)
{
	aws_endpoints_options o = {"eu-west-1", {NULL}, 0};
	aws_endpoint e;
	char *err = NULL;
	char *u;
	ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err), 0);
	u = aws_s3_url(&e, "my-bucket", "run 1/a+b.txt", NULL);
	ck_assert_str_eq(u, "https://my-bucket.s3.eu-west-1.amazonaws.com/run%201/a%2Bb.txt");
	free(u);
	u = aws_s3_url(&e, "dotted.bucket", "k", "uploads=");
	ck_assert_str_eq(u, "https://s3.eu-west-1.amazonaws.com/dotted.bucket/k?uploads=");
	free(u);
	aws_endpoint_free(&e);
	o.s3_force_path_style = 1;
	ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err), 0);
	u = aws_s3_url(&e, "my-bucket", "k", NULL);
	ck_assert_str_eq(u, "https://s3.eu-west-1.amazonaws.com/my-bucket/k");
	free(u);
	aws_endpoint_free(&e);
	/* automatic for IP addresses and localhost */
	o.s3_force_path_style = 0;
	{
		static const char *const urls[] = {"http://127.0.0.1:4568", "http://localhost:9000/",
		                                   "http://[::1]:9000"};
		size_t i;
		for (i = 0; i < 3; i++) {
			o.overrides[AWS_SVC_S3] = urls[i];
			ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err), 0);
			ck_assert_msg(e.path_style, "%s", urls[i]);
			aws_endpoint_free(&e);
		}
	}
	o.overrides[AWS_SVC_S3] = "http://minio.example:9000";
	ck_assert_int_eq(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err), 0);
	u = aws_s3_url(&e, "b", "", NULL);
	ck_assert_str_eq(u, "http://b.minio.example:9000/");
	free(u);
	aws_endpoint_free(&e);
	free(err);
}
END_TEST

START_TEST(test_endpoint_options_json)
{
	aws_endpoints_options o = {0};
	char *err = NULL;
	json_t *j = json_loads("{\"endpoints\": {\"s3\": \"http://127.0.0.1:4568\", \"ecr\": "
	                       "\"https://ecr.local\"}, \"s3ForcePathStyle\": true}",
	                       0, NULL);
	ck_assert_int_eq(aws_endpoints_options_from_json(&o, j, &err), 0);
	ck_assert_str_eq(o.overrides[AWS_SVC_S3], "http://127.0.0.1:4568");
	ck_assert_str_eq(o.overrides[AWS_SVC_ECR], "https://ecr.local");
	ck_assert_ptr_null(o.overrides[AWS_SVC_LAMBDA]);
	ck_assert_int_eq(o.s3_force_path_style, 1);
	json_decref(j);
	j = json_loads("{\"endpoints\": {\"sqs\": \"http://x\"}}", 0, NULL);
	ck_assert_int_eq(aws_endpoints_options_from_json(&o, j, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "endpoints.sqs"));
	json_decref(j);
	j = json_loads("{\"endpoints\": {\"s3\": \"127.0.0.1:4568\"}}", 0, NULL);
	ck_assert_int_eq(aws_endpoints_options_from_json(&o, j, &err), HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "endpoints.s3"));
	json_decref(j);
	j = json_loads("{\"s3ForcePathStyle\": \"yes\"}", 0, NULL);
	ck_assert_int_eq(aws_endpoints_options_from_json(&o, j, &err), HYPERTEST_ERR_CONFIG);
	json_decref(j);
	free(err);
}
END_TEST

/* ---- redaction ---------------------------------------------------------------------- */

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "FQoGZXIvYXdzEJr//////////wEaDtoken+with/chars=="

static aws_credentials test_creds(void)
{
	aws_credentials c = {0};
	c.access_key_id = (char *)"AKIDTEST";
	c.secret_access_key = (char *)SECRET;
	c.session_token = (char *)TOKEN;
	c.region = (char *)"us-east-1";
	return c;
}

START_TEST(test_redact)
{
	aws_credentials c = test_creds();
	htp_buf enc = {0};
	char *r;
	aws_uri_encode(&enc, TOKEN, strlen(TOKEN), 0);
	r = aws_redact("> Authorization: AWS4-HMAC-SHA256 Credential=AKIDTEST/x, Signature=abc\r\n"
	               "x-amz-security-token: somethingelse\n"
	               "GET /k?X-Amz-Signature=deadbeef&x=1 and secret " SECRET " token " TOKEN,
	               &c);
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_null(strstr(r, "Signature=abc"));
	ck_assert_ptr_null(strstr(r, "somethingelse"));
	ck_assert_ptr_null(strstr(r, "deadbeef"));
	ck_assert_ptr_null(strstr(r, SECRET));
	ck_assert_ptr_null(strstr(r, TOKEN));
	ck_assert_ptr_nonnull(strstr(r, "> Authorization: <redacted>\r\n"));
	ck_assert_ptr_nonnull(strstr(r, "X-Amz-Signature=<redacted>&x=1"));
	free(r);
	{
		htp_buf s = {0};
		htp_buf_addf(&s, "url?a=1&X-Amz-Security-Token=%s&b=2 and %s", enc.data, enc.data);
		r = aws_redact(s.data, &c);
		ck_assert_ptr_null(strstr(r, enc.data));
		ck_assert_str_eq(r, "url?a=1&X-Amz-Security-Token=<redacted>&b=2 and <redacted>");
		free(r);
		htp_buf_free(&s);
	}
	htp_buf_free(&enc);
}
END_TEST

/* ---- HTTP: a log that remembers ------------------------------------------------------------ */

static htp_buf logged;

static void log_cb(void *ud, int level, const char *msg)
{
	(void)ud;
	htp_buf_addf(&logged, "[%d] %s\n", level, msg);
}

/* The asynchronous mode's transport of the tests run for each (loop
 * tests: _i indexes transports). */
static const int transports[] = {AWS_HTTP_CLIENT_BUILTIN, AWS_HTTP_CLIENT_CURL};
static int http_client;

static aws_http *client(long concurrency, int attempts, int verbose, const aws_credentials *c)
{
	aws_http_config cfg = {0};
	char *err = NULL;
	aws_http *h;
	cfg.client = http_client;
	cfg.concurrency = concurrency;
	cfg.max_attempts = attempts;
	cfg.retry_base_ms = 20;
	cfg.retry_cap_ms = 200;
	cfg.verbose = verbose;
	cfg.log = log_cb;
	cfg.creds = c;
	h = aws_http_new(&cfg, &err);
	ck_assert_msg(h != NULL, "%s", aws_msg(err));
	free(err);
	return h;
}

static char *url_of(httpd *d, const char *path)
{
	static char u[256];
	snprintf(u, sizeof u, "http://127.0.0.1:%d%s", httpd_port(d), path);
	return u;
}

/* Answers by the path of the request. */
static void handler(void *ud, const char *req, size_t len, int seq, htp_buf *out)
{
	int *flaky = ud;
	if (strncmp(req, "PUT /denied", 11) == 0) {
		/* like S3's SignatureDoesNotMatch: the body echoes what was signed */
		const char *tok = strstr(req, "x-amz-security-token: ");
		htp_buf body = {0};
		htp_buf_str(&body, "<?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code>"
		                    "<Message>Access Denied for token ");
		if (tok)
			htp_buf_add(&body, tok + 22, strcspn(tok + 22, "\r"));
		htp_buf_str(&body, "</Message></Error>");
		httpd_reply(out, 403, "Content-Type: application/xml\r\n", body.data);
		htp_buf_free(&body);
	} else if (strncmp(req, "POST /json", 10) == 0) {
		httpd_reply(out, 400, "Content-Type: application/x-amz-json-1.1\r\n",
		            "{\"__type\": \"com.amazonaws.lambda#InvalidParameterValueException\", "
		            "\"message\": \"bad &amp; wrong\"}");
	} else if (strncmp(req, "GET /typeheader", 15) == 0) {
		httpd_reply(out, 404,
		            "x-amzn-ErrorType: ResourceNotFoundException:http://internal.amazon.com/\r\n",
		            "{\"Message\": \"Function not found: fn\"}");
	} else if (strncmp(req, "GET /xml", 8) == 0) {
		httpd_reply(out, 404, NULL,
		            "<Error><Code>NoSuchKey</Code><Message>The key &lt;k&gt; does not "
		            "exist</Message></Error>");
	} else if (strncmp(req, "GET /flaky", 10) == 0 && flaky && *flaky > 0) {
		(*flaky)--;
		httpd_reply(out, 503, "Retry-After: 1\r\n", "<Error><Code>SlowDown</Code></Error>");
	} else if (strncmp(req, "GET /throttle", 13) == 0 && flaky && *flaky > 0) {
		(*flaky)--;
		httpd_reply(out, 400, NULL, "{\"__type\": \"ThrottlingException\"}");
	} else if (strncmp(req, "GET /warm", 9) == 0) {
		/* not answered before the client has started every request of a
		 * batch (a faster answer lets it reuse one connection for all) */
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
		httpd_reply(out, 200, NULL, "warm");
	} else if (strncmp(req, "GET /always503", 14) == 0) {
		httpd_reply(out, 503, NULL, "");
	} else if (strncmp(req, "GET /big", 8) == 0) {
		static char big[100000];
		memset(big, 'x', sizeof big - 1);
		httpd_reply(out, 200, NULL, big);
	} else if (strncmp(req, "PUT /echo", 9) == 0 || strncmp(req, "POST /echo", 10) == 0) {
		/* answer with the request head, to look at what was sent */
		htp_buf head = {0};
		htp_buf_add(&head, req, (size_t)(strstr(req, "\r\n\r\n") - req));
		httpd_reply(out, 200, NULL, head.data);
		htp_buf_free(&head);
	} else {
		htp_buf b = {0};
		htp_buf_addf(&b, "ok %d", seq);
		httpd_reply(out, 200, NULL, b.data);
		htp_buf_free(&b);
	}
	(void)len;
}

static int perform(aws_http *h, const char *method, const char *url, const char *what,
                   const aws_http_sigv4 *sig, aws_http_response *resp, char **err)
{
	aws_http_request r;
	int rc;
	ck_assert_int_eq(aws_http_request_init(&r, method, url, what), 0);
	if (sig) {
		r.sign = aws_http_sign_sigv4;
		r.sign_ud = (void *)sig;
	}
	rc = aws_http_perform(h, &r, resp, err);
	aws_http_request_clear(&r);
	return rc;
}

START_TEST(test_no_secret_logged)
{
	aws_credentials c = test_creds();
	aws_http_sigv4 sig = {.creds = &c, .region = "us-east-1", .service = "s3"};
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(4, 1, 1, &c);
	aws_http_response resp;
	char *err = NULL;
	char *sigval, presigned[512];
	int rc;

	/* a failing request whose error body echoes the session token */
	rc = perform(h, "PUT", url_of(d, "/denied/key"), "S3 PutObject s3://bucket/denied/key",
	             &sig, &resp, &err);
	ck_assert_int_eq(rc, HYPERTEST_ERR_AUTH);
	ck_assert_int_eq(resp.status, 403);
	ck_assert_str_eq(resp.error_code, "AccessDenied");
	ck_assert_msg(strncmp(aws_msg(err), "S3 PutObject s3://bucket/denied/key: HTTP 403 AccessDenied: "
	                               "Access Denied for token ",
	                      93) == 0,
	              "%s", aws_msg(err));
	ck_assert_ptr_null(strstr(aws_msg(err), TOKEN));
	aws_http_response_clear(&resp);

	/* a verbose request that succeeds */
	rc = perform(h, "PUT", url_of(d, "/echo"), "S3 PutObject echo", &sig, &resp, &err);
	ck_assert_int_eq(rc, 0);
	/* the server saw the secrets that must not be logged */
	ck_assert_ptr_nonnull(strstr(resp.body.data, TOKEN));
	sigval = strstr(resp.body.data, "Signature=");
	ck_assert_ptr_nonnull(sigval);
	sigval = strndup(sigval + 10, 64);
	aws_http_response_clear(&resp);

	/* a failing transport error on a presigned-like URL */
	snprintf(presigned, sizeof presigned,
	         "http://127.0.0.1:1/x?X-Amz-Signature=%s&X-Amz-Security-Token=%s", sigval, "tok");
	rc = perform(h, "GET", presigned, "S3 GetObject presigned", NULL, &resp, &err);
	ck_assert_int_eq(rc, HYPERTEST_ERR_HTTP);
	ck_assert_ptr_null(strstr(aws_msg(err), sigval));
	aws_http_response_clear(&resp);

	ck_assert_ptr_nonnull(logged.data);
	ck_assert_ptr_nonnull(strstr(logged.data, "> PUT /echo")); /* verbose did log */
	ck_assert_ptr_nonnull(strstr(logged.data, "Authorization: <redacted>"));
	ck_assert_msg(!strstr(logged.data, SECRET), "secret logged:\n%s", logged.data);
	ck_assert_msg(!strstr(logged.data, TOKEN), "token logged:\n%s", logged.data);
	ck_assert_msg(!strstr(logged.data, sigval), "signature logged:\n%s", logged.data);
	free(sigval);
	aws_http_free(h);
	httpd_stop(d);
	htp_buf_free(&logged);
	free(err);
}
END_TEST

START_TEST(test_error_parsing)
{
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(4, 1, 0, NULL);
	aws_http_response resp;
	char *err = NULL;
	ck_assert_int_eq(perform(h, "POST", url_of(d, "/json"), "Lambda UpdateFunctionCode fn",
	                         NULL, &resp, &err),
	                 HYPERTEST_ERR_HTTP);
	ck_assert_str_eq(aws_msg(err), "Lambda UpdateFunctionCode fn: HTTP 400 "
	                          "InvalidParameterValueException: bad &amp; wrong");
	aws_http_response_clear(&resp);
	ck_assert_int_eq(perform(h, "GET", url_of(d, "/typeheader"), "Lambda GetFunction fn", NULL,
	                         &resp, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_str_eq(aws_msg(err),
	                 "Lambda GetFunction fn: HTTP 404 ResourceNotFoundException: Function not found: fn");
	aws_http_response_clear(&resp);
	ck_assert_int_eq(perform(h, "GET", url_of(d, "/xml"), "S3 GetObject s3://b/k", NULL, &resp,
	                         &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_str_eq(aws_msg(err), "S3 GetObject s3://b/k: HTTP 404 NoSuchKey: The key <k> does not exist");
	ck_assert_str_eq(resp.error_code, "NoSuchKey");
	aws_http_response_clear(&resp);
	/* a response larger than the cap */
	{
		aws_http_config cfg = {0};
		aws_http *small;
		cfg.max_response = 1000;
		small = aws_http_new(&cfg, &err);
		ck_assert_int_eq(perform(small, "GET", url_of(d, "/big"), "GET big", NULL, &resp, &err),
		                 HYPERTEST_ERR_HTTP);
		ck_assert_ptr_nonnull(strstr(aws_msg(err), "larger than 1000 bytes"));
		aws_http_response_clear(&resp);
		aws_http_free(small);
	}
	aws_http_free(h);
	httpd_stop(d);
	free(err);
}
END_TEST

START_TEST(test_retries_blocking)
{
	int flaky = 2;
	httpd *d = httpd_start(handler, &flaky, 0);
	aws_http *h = client(4, 5, 0, NULL);
	aws_http_response resp;
	char *err = NULL;
	ck_assert_int_eq(perform(h, "GET", url_of(d, "/flaky"), "GET flaky", NULL, &resp, &err), 0);
	ck_assert_int_eq(resp.attempts, 3);
	ck_assert_int_eq(resp.status, 200);
	aws_http_response_clear(&resp);
	flaky = 1; /* a throttling code in a 400 is retried too */
	ck_assert_int_eq(perform(h, "GET", url_of(d, "/throttle"), "GET throttle", NULL, &resp, &err),
	                 0);
	ck_assert_int_eq(resp.attempts, 2);
	aws_http_response_clear(&resp);
	/* a plain 400 is not */
	ck_assert_int_eq(perform(h, "POST", url_of(d, "/json"), "POST json", NULL, &resp, &err),
	                 HYPERTEST_ERR_HTTP);
	ck_assert_int_eq(resp.attempts, 1);
	aws_http_response_clear(&resp);
	/* max attempts */
	ck_assert_int_eq(perform(h, "GET", url_of(d, "/always503"), "GET 503", NULL, &resp, &err),
	                 HYPERTEST_ERR_HTTP);
	ck_assert_int_eq(resp.attempts, 5);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "(after 5 attempts)"));
	aws_http_response_clear(&resp);
	/* connection reuse: one connection for all of that */
	ck_assert_int_eq(httpd_max_connections(d), 1);
	aws_http_free(h);
	/* the delay budget stops retries before max attempts */
	{
		aws_http_config cfg = {0};
		cfg.max_attempts = 100;
		cfg.retry_base_ms = 50;
		cfg.retry_cap_ms = 50;
		cfg.retry_budget_ms = 60;
		h = aws_http_new(&cfg, &err);
		ck_assert_int_eq(perform(h, "GET", url_of(d, "/always503"), "GET 503", NULL, &resp, &err),
		                 HYPERTEST_ERR_HTTP);
		ck_assert_int_lt(resp.attempts, 100);
		ck_assert_int_ge(resp.attempts, 2);
		aws_http_response_clear(&resp);
		aws_http_free(h);
	}
	httpd_stop(d);
	free(err);
}
END_TEST

START_TEST(test_request_headers)
{
	aws_credentials c = test_creds();
	aws_http_sigv4 sig = {.creds = &c, .region = "us-east-1", .service = "lambda"};
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(4, 1, 0, &c);
	aws_http_request r;
	aws_http_response resp;
	char *err = NULL;
	char host[64];
	ck_assert_int_eq(aws_http_request_init(&r, "POST", url_of(d, "/echo"), "POST echo"), 0);
	r.body = "{\"a\": 1}";
	r.body_len = 8;
	r.sign = aws_http_sign_sigv4;
	r.sign_ud = &sig;
	ck_assert_int_eq(aws_http_perform(h, &r, &resp, &err), 0);
	snprintf(host, sizeof host, "Host: 127.0.0.1:%d\r\n", httpd_port(d));
	ck_assert_ptr_nonnull(strstr(resp.body.data, host));
	ck_assert_ptr_null(strcasestr(resp.body.data, "Expect:"));
	ck_assert_ptr_null(strcasestr(resp.body.data, "x-www-form-urlencoded"));
	ck_assert_ptr_nonnull(strstr(resp.body.data, "SignedHeaders=host;x-amz-date;x-amz-security-token"));
	aws_http_response_clear(&resp);
	aws_http_request_clear(&r);
	aws_http_free(h);
	httpd_stop(d);
	free(err);
}
END_TEST

/* ---- asynchronous mode -------------------------------------------------------------------- */

typedef struct tally {
	int ok, failed, cancelled, order[8], norder;
	long statuses;
} tally;

static void done_cb(void *ud, aws_http_request *req, aws_http_response *resp, int code,
                    const char *message)
{
	tally *t = ud;
	if (code == 0)
		t->ok++;
	else if (code == HYPERTEST_ERR_CANCELLED)
		t->cancelled++;
	else
		t->failed++;
	if (t->norder < 8)
		t->order[t->norder++] = req->url[strlen(req->url) - 1];
	(void)resp;
	(void)message;
}

static void add(aws_http *h, const char *url, tally *t)
{
	char *err = NULL;
	aws_http_request *r = aws_http_request_new("GET", url, "GET");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(aws_http_multi_add(h, r, done_cb, t, &err), 0);
	free(err);
}

START_TEST(test_multi_2000_in_flight)
{
	http_client = transports[_i];
	enum { N = 2000 };
	httpd *d = httpd_start(handler, NULL, N); /* answers only once N are pending */
	aws_http *h = client(N, 1, 0, NULL);
	tally t = {0};
	int i, rounds = 0;
	time_t start = time(NULL);
	for (i = 0; i < N; i++)
		add(h, url_of(d, "/x"), &t);
	ck_assert_int_eq(aws_http_multi_pending(h), N);
	while (aws_http_multi_pending(h) && time(NULL) - start < 60) {
		ck_assert_int_ge(aws_http_multi_wait(h, 1000), 0);
		rounds++;
	}
	ck_assert_int_eq(t.ok, N);
	ck_assert_int_eq(httpd_requests(d), N);
	ck_assert_int_ge(httpd_max_connections(d), N);
	/* kept alive: another round reuses the connections */
	for (i = 0; i < 200; i++)
		add(h, url_of(d, "/y"), &t);
	while (aws_http_multi_pending(h) && time(NULL) - start < 90)
		aws_http_multi_wait(h, 1000);
	ck_assert_int_eq(t.ok, N + 200);
	ck_assert_int_eq(httpd_max_connections(d), N);
	aws_http_free(h);
	httpd_stop(d);
}
END_TEST

/* Requests made while the warm-up's are still in flight (the endpoint
 * answers one warm-up request at a time, 50 ms each) wait for them: they
 * reuse their connections and their easy handles, and make none. */
START_TEST(test_multi_warm_up_hand_over)
{
	http_client = transports[_i];
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(8, 1, 0, NULL);
	char *err = NULL;
	tally t = {0};
	time_t start = time(NULL);
	size_t opening = 0;
	int i;
	aws_http_request *warm = aws_http_request_new("GET", url_of(d, "/warm"), "warm-up");
	ck_assert_ptr_nonnull(warm);
	ck_assert_int_eq(aws_http_warm(h, warm, 8, &opening, &err), 0);
	ck_assert_uint_eq(opening, 8);
	/* the first is answered, the other 8 are sent one after the other */
	while (httpd_requests(d) < 2 && time(NULL) - start < 60) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < 8; i++)
		add(h, url_of(d, "/x"), &t);
	drain(h);
	ck_assert_int_eq(t.ok, 8);
	ck_assert_int_eq(httpd_requests(d), 17);
	ck_assert_int_eq(httpd_connections(d), 8);
	/* libcurl: the warm-up's 9 handles (the first, then 8), none more;
	 * builtin (no handles): the warm-up's 8 connections, none more */
	ck_assert_uint_eq(aws_http_handles(h), transports[_i] == AWS_HTTP_CLIENT_CURL ? 9 : 8);
	free(err);
	aws_http_request_free(warm);
	aws_http_free(h);
	httpd_stop(d);
}
END_TEST

/* Warm-up requests answered at once (by the time the next one starts,
 * the previous one's connection may be idle): still one connection each,
 * as many as asked, none of them lent to another warm-up request. */
START_TEST(test_multi_warm_up_fast_answers)
{
	http_client = transports[_i];
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(8, 1, 0, NULL);
	char *err = NULL;
	size_t opening = 0;
	aws_http_request *warm = aws_http_request_new("GET", url_of(d, "/x"), "warm-up");
	ck_assert_ptr_nonnull(warm);
	ck_assert_int_eq(aws_http_warm(h, warm, 8, &opening, &err), 0);
	ck_assert_uint_eq(opening, 8);
	while (aws_http_warm_left(h))
		ck_assert_int_ge(aws_http_multi_wait(h, 100), 0);
	ck_assert_int_eq(httpd_requests(d), 9);
	ck_assert_int_eq(httpd_connections(d), 8);
	free(err);
	aws_http_request_free(warm);
	aws_http_free(h);
	httpd_stop(d);
}
END_TEST

START_TEST(test_multi_warm_up)
{
	http_client = transports[_i];
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(8, 1, 0, NULL);
	char *err = NULL;
	tally t = {0};
	time_t start = time(NULL);
	size_t opening = 99;
	int i;
	aws_http_request *warm = aws_http_request_new("GET", url_of(d, "/warm"), "warm-up");
	ck_assert_ptr_nonnull(warm);
	/* asked for 50: no more than the client's concurrency (8) */
	ck_assert_int_eq(aws_http_warm(h, warm, 50, &opening, &err), 0);
	ck_assert_uint_eq(opening, 8);
	/* its own thread drives them (one, then 8 on 8 connections, one of
	 * them the first's): this one does not touch the client */
	while (httpd_requests(d) < 9 && time(NULL) - start < 60) {
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(httpd_requests(d), 9);
	while (aws_http_warm_left(h))
		ck_assert_int_ge(aws_http_multi_wait(h, 100), 0);
	ck_assert_int_eq(aws_http_multi_pending(h), 0);
	ck_assert_int_eq(httpd_connections(d), 8);
	/* the requests find the connections open */
	for (i = 0; i < 8; i++)
		add(h, url_of(d, "/x"), &t);
	drain(h);
	ck_assert_int_eq(t.ok, 8);
	ck_assert_int_eq(httpd_requests(d), 17);
	ck_assert_int_eq(httpd_connections(d), 8);
	/* once per client */
	ck_assert_int_eq(aws_http_warm(h, warm, 8, &opening, &err), 0);
	ck_assert_uint_eq(opening, 0);
	ck_assert_int_eq(aws_http_warm_left(h), 0);
	ck_assert_int_eq(httpd_requests(d), 17);
	aws_http_request_free(warm);
	aws_http_free(h);
	httpd_stop(d);
	free(err);
}
END_TEST

START_TEST(test_multi_retry_does_not_block)
{
	http_client = transports[_i];
	int flaky = 1;
	httpd *d = httpd_start(handler, &flaky, 0);
	aws_http_config cfg = {0};
	char *err = NULL;
	aws_http *h;
	tally t = {0};
	cfg.client = http_client;
	cfg.max_attempts = 3;
	cfg.retry_base_ms = 10;
	cfg.retry_cap_ms = 2000; /* Retry-After: 1 makes A wait a second */
	h = aws_http_new(&cfg, &err);
	add(h, url_of(d, "/flaky/A"), &t);
	/* let A get its 503 before B starts */
	while (httpd_requests(d) < 1)
		aws_http_multi_wait(h, 10);
	add(h, url_of(d, "/flaky/B"), &t);
	drain(h);
	ck_assert_int_eq(t.ok, 2);
	ck_assert_int_eq(httpd_requests(d), 3);
	/* B was answered while A waited for its retry */
	ck_assert_int_eq(t.norder, 2);
	ck_assert_int_eq(t.order[0], 'B');
	ck_assert_int_eq(t.order[1], 'A');
	aws_http_free(h);
	httpd_stop(d);
	free(err);
}
END_TEST

/* After aws_http_release_idle the idle easy handles (libcurl) and idle
 * connections are freed at once, the requests in flight complete as
 * before and their handles or connections are freed too: libcurl closes
 * an idle connection as each of them gives its own back, the builtin
 * transport closes theirs. */
START_TEST(test_multi_release_idle)
{
	int curl = transports[_i] == AWS_HTTP_CLIENT_CURL;
	http_client = transports[_i];
	httpd *d = httpd_start(handler, NULL, 8); /* the first 8 answered together */
	aws_http *h = client(8, 1, 0, NULL);
	tally t = {0};
	time_t start = time(NULL);
	int i;
	for (i = 0; i < 8; i++)
		add(h, url_of(d, "/x"), &t);
	drain(h);
	ck_assert_int_eq(t.ok, 8);
	ck_assert_uint_eq(aws_http_handles(h), 8);
	ck_assert_int_eq(httpd_open(d), 8);
	/* 4 reuse 4 idle handles and connections; the other 4 go now */
	for (i = 0; i < 4; i++)
		add(h, url_of(d, "/y"), &t);
	aws_http_release_idle(h);
	ck_assert_uint_eq(aws_http_handles(h), 4);
	ck_assert_uint_eq(aws_http_multi_pending(h), 4);
	drain(h);
	ck_assert_int_eq(t.ok, 12);
	ck_assert_int_eq(t.failed, 0);
	ck_assert_uint_eq(aws_http_handles(h), 0);
	ck_assert_int_eq(httpd_connections(d), 8); /* reused, none opened */
	/* libcurl: each of the 4 gave its connection back and one idle was
	 * closed; builtin: all closed */
	while (httpd_open(d) > (curl ? 4 : 0) && time(NULL) - start < 60) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(httpd_open(d), curl ? 4 : 0);
	/* a request after it still works (libcurl: on a connection kept) */
	add(h, url_of(d, "/z"), &t);
	drain(h);
	ck_assert_int_eq(t.ok, 13);
	ck_assert_uint_eq(aws_http_handles(h), 0);
	ck_assert_int_eq(httpd_connections(d), curl ? 8 : 9);
	aws_http_free(h);
	httpd_stop(d);
}
END_TEST

/* aws_http_release_idle right after requests that wait for the warm-up's
 * connections (a run of fewer tests than its concurrency): they still get
 * them, and no connection is opened beside the warm-up's.  Then the
 * builtin transport has closed every connection; libcurl closes an idle
 * one only as a request gives its own back: 8 - 2 are left. */
START_TEST(test_multi_release_idle_warm_up)
{
	int curl = transports[_i] == AWS_HTTP_CLIENT_CURL;
	http_client = transports[_i];
	httpd *d = httpd_start(handler, NULL, 0);
	aws_http *h = client(8, 1, 0, NULL);
	char *err = NULL;
	tally t = {0};
	time_t start = time(NULL);
	size_t opening = 0;
	aws_http_request *warm = aws_http_request_new("GET", url_of(d, "/warm"), "warm-up");
	ck_assert_ptr_nonnull(warm);
	ck_assert_int_eq(aws_http_warm(h, warm, 8, &opening, &err), 0);
	ck_assert_uint_eq(opening, 8);
	while (httpd_requests(d) < 2 && time(NULL) - start < 60) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	add(h, url_of(d, "/x"), &t);
	add(h, url_of(d, "/x"), &t);
	aws_http_release_idle(h);
	drain(h);
	ck_assert_int_eq(t.ok, 2);
	ck_assert_int_eq(t.failed, 0);
	ck_assert_int_eq(httpd_connections(d), 8);
	while (aws_http_warm_left(h))
		ck_assert_int_ge(aws_http_multi_wait(h, 100), 0);
	ck_assert_uint_eq(aws_http_handles(h), 0);
	while (httpd_open(d) > (curl ? 6 : 0) && time(NULL) - start < 60) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(httpd_open(d), curl ? 6 : 0);
	free(err);
	aws_http_request_free(warm);
	aws_http_free(h);
	httpd_stop(d);
}
END_TEST

START_TEST(test_multi_cancel)
{
	http_client = transports[_i];
	httpd *d = httpd_start(handler, NULL, 1000000); /* never answers */
	aws_http *h = client(8, 1, 0, NULL);
	tally t = {0};
	int i, n;
	for (i = 0; i < 20; i++)
		add(h, url_of(d, "/x"), &t);
	ck_assert_int_eq(aws_http_multi_wait(h, 200), 0);
	aws_http_multi_cancel(h);
	ck_assert_int_eq(t.cancelled, 0); /* reported by the next wait */
	n = aws_http_multi_wait(h, 0);
	ck_assert_int_eq(n, 20);
	ck_assert_int_eq(t.cancelled, 20);
	ck_assert_int_eq(aws_http_multi_pending(h), 0);
	ck_assert_int_eq(aws_http_multi_wait(h, -1), 0); /* nothing left: returns at once */
	aws_http_free(h);
	httpd_stop(d);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aws-credentials");
	TCase *tc;
	SRunner *sr;
	int failed;

	tc = tcase_create("credentials");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_env_credentials);
	tcase_add_test(tc, test_profile_files);
	tcase_add_test(tc, test_ini_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("endpoints");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_endpoint_defaults);
	tcase_add_test(tc, test_endpoint_precedence);
	tcase_add_test(tc, test_endpoint_iam);
	tcase_add_test(tc, test_s3_addressing);
	tcase_add_test(tc, test_endpoint_options_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("redaction");
	tcase_add_test(tc, test_redact);
	tcase_add_test(tc, test_no_secret_logged);
	suite_add_tcase(s, tc);

	tc = tcase_create("http");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_error_parsing);
	tcase_add_test(tc, test_retries_blocking);
	tcase_add_test(tc, test_request_headers);
	tcase_add_loop_test(tc, test_multi_2000_in_flight, 0, 2);
	tcase_add_loop_test(tc, test_multi_warm_up, 0, 2);
	tcase_add_loop_test(tc, test_multi_warm_up_hand_over, 0, 2);
	tcase_add_loop_test(tc, test_multi_warm_up_fast_answers, 0, 2);
	tcase_add_loop_test(tc, test_multi_retry_does_not_block, 0, 2);
	tcase_add_loop_test(tc, test_multi_cancel, 0, 2);
	tcase_add_loop_test(tc, test_multi_release_idle, 0, 2);
	tcase_add_loop_test(tc, test_multi_release_idle_warm_up, 0, 2);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
