/*
 * check_provider_aws.c - tests of the aws provider plugin, loaded with
 * dlopen() and driven through the upcalls of fake-core.c (no core),
 * against the local services of tests/services/aws (endpoint.py: Lambda, ECR and
 * Service Quotas checking every SigV4 with botocore; s3rver behind the
 * signature-checking S3 front; docker-registry with AWS:<token> basic
 * auth): options, the image target, the bucket, function updates (success,
 * Failed, timeout), the running digest, invocations (2,000 in flight,
 * throttling retried, a spent retry budget, function errors, cancel),
 * serving a payload from stdin with artifacts, the Runtime API loop and
 * its init errors (the core's too: HYPERTEST_CORE_FUNCTION_INIT_ERROR),
 * doctor, secrets kept out of every message, and every request's signature
 * accepted.
 *
 * The services: those named by HT_AWS_ENDPOINT & co. in the environment
 * (CI starts them once), else started here with tests/services/aws/services.sh;
 * exit 77 (skip) when they cannot start (no python3-botocore, no npm...).
 * HT_PROVIDER_AWS_SO overrides where the module is.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

/* ---- the test's core: fake-core.c's upcalls, and these ----------------------------- */

static struct hypertest_core C;
static void *module;
static int invocations_done;

/* Every message the plugin gives (log, error, doctor check, invocation
 * error) is kept in C.logs: the tests look for lines in it and make sure
 * no secret is there. */
static void add_log(const char *line)
{
	size_t n = strlen(line);
	C.logs = realloc(C.logs, C.logs_len + n + 2);
	memcpy(C.logs + C.logs_len, line, n);
	C.logs_len += n;
	C.logs[C.logs_len++] = '\n';
	C.logs[C.logs_len] = '\0';
}

static void up_log(hypertest_core *core, int level, const char *message)
{
	(void)core;
	(void)level;
	add_log(message);
}

static void up_set_error(hypertest_core *core, int code, const char *message)
{
	fake_up_set_error(core, code, message);
	add_log(message);
}

static void up_invoke_done(hypertest_invocation *inv, const char *response, size_t len,
                           int error_code, const char *error_message)
{
	fake_up_invoke_done(inv, response, len, error_code, error_message);
	if (error_message)
		add_log(error_message);
	invocations_done++;
}

static const char *param(const hypertest_params *p, const char *key)
{
	for (int i = 0; i < p->n; i++)
		if (!strcmp(p->key[i], key))
			return p->val[i];
	return NULL;
}

static void up_doctor_check(hypertest_checks *checks, const char *check, int status,
                            const char *message)
{
	fake_up_doctor_check(checks, check, status, message);
	add_log(message);
}

/* The function: store an artifact, answer {"success": true, "name": <testId>}. */
static int up_function_handle(hypertest_function *fn, const char *payload, size_t len,
                              hypertest_buffer *response)
{
	json_t *doc = json_loadb(payload, len, 0, NULL);
	const char *run = json_string_value(json_object_get(doc, "runId"));
	const char *test = json_string_value(json_object_get(doc, "testId"));
	char prefix[256], out[512];
	fn->calls++;
	snprintf(fn->payload, sizeof fn->payload, "%.*s", (int)len, payload);
	if (memmem(payload, len, "\"fail\"", 6)) {
		json_decref(doc);
		return HYPERTEST_ERR_RUNNER; /* and no response */
	}
	if (run && test && fn->artifacts_dir) {
		hypertest_PROVIDER_ARTIFACTS_STORE_fn store =
		    (hypertest_PROVIDER_ARTIFACTS_STORE_fn)fake_find_op(HYPERTEST_PROVIDER_ARTIFACTS_STORE);
		snprintf(prefix, sizeof prefix, "%s/%s", run, test);
		if (!store || store(fn->self, prefix, fn->artifacts_dir) != 0) {
			json_decref(doc);
			return HYPERTEST_ERR_PROVIDER;
		}
	}
	int n = snprintf(out, sizeof out, "{\"success\":true,\"name\":\"%s\"}", test ? test : "?");
	json_decref(doc);
	return fake_up_buffer_append(response, out, (size_t)n);
}

static const char *up_invocation_test_id(hypertest_invocation *inv)
{
	(void)inv;
	return "test";
}

static const hypertest_dispatch upcalls[] = {
	{HYPERTEST_UP_LOG, (hypertest_fn)up_log},
	{HYPERTEST_UP_SET_ERROR, (hypertest_fn)up_set_error},
	{HYPERTEST_UP_INVOKE_DONE, (hypertest_fn)up_invoke_done},
	{HYPERTEST_UP_DOCTOR_CHECK, (hypertest_fn)up_doctor_check},
	{HYPERTEST_UP_FUNCTION_HANDLE, (hypertest_fn)up_function_handle},
	{HYPERTEST_UP_INVOCATION_TEST_ID, (hypertest_fn)up_invocation_test_id},
	{0, NULL}};

/* ---- the services ------------------------------------------------------------------ */

static char services_dir[256];
static long long first_seq; /* requests of this run have a greater seq */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Read DIR/env ("export NAME=VALUE" or NAME='VALUE') into the environment. */
static int load_env(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char *s = line, *eq;
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(s, "export ", 7) != 0)
			continue;
		s += 7;
		if (!(eq = strchr(s, '=')))
			continue;
		*eq++ = '\0';
		if (*eq == '\'' && strlen(eq) >= 2 && eq[strlen(eq) - 1] == '\'') {
			eq[strlen(eq) - 1] = '\0';
			eq++;
		}
		setenv(s, eq, 1);
	}
	fclose(f);
	return 0;
}

static int run_services(const char *verb)
{
	pid_t pid = fork();
	int ws = 0;
	if (pid == 0) {
		char script[600];
		snprintf(script, sizeof script, "%s/services/aws/services.sh", HT_TESTS_SRCDIR);
		execl("/bin/bash", "bash", script, verb, services_dir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &ws, 0) < 0)
		return -1;
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static pid_t services_owner;

static void stop_services(void)
{
	/* Check's forked test processes run atexit handlers too */
	if (services_dir[0] && getpid() == services_owner) {
		run_services("stop");
		fake_rm_tree(services_dir);
	}
}

/* ---- HTTP to the control API ------------------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *ud)
{
	fake_up_buffer_append(ud, data, size * n);
	return size * n;
}

/* method path [body] against url; the answer (caller frees), status into *status. */
static char *http(const char *method, const char *url, const char *body, long *status)
{
	CURL *c = curl_easy_init();
	hypertest_buffer b = {NULL, 0};
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	long st = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (status)
		*status = st;
	return b.data ? b.data : strdup("");
}

static json_t *control(const char *method, const char *path, const char *fmt, ...)
{
	char url[1024], body[8192];
	long st;
	va_list ap;
	snprintf(url, sizeof url, "%s%s", env("HT_AWS_CONTROL"), path);
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(body, sizeof body, fmt, ap);
		va_end(ap);
	}
	char *text = http(method, url, fmt ? body : NULL, &st);
	ck_assert_msg(st == 200, "%s %s: %ld %s", method, path, st, text);
	json_t *doc = json_loads(text, 0, NULL);
	free(text);
	return doc;
}

/* A function of this test only (name unique per process). */
static const char *new_function(const char *behaviour)
{
	static char name[64];
	static int n;
	snprintf(name, sizeof name, "ck-%d-%d", (int)getpid(), ++n);
	char path[128];
	snprintf(path, sizeof path, "/function/%s", name);
	json_decref(control("POST", path, "%s", behaviour));
	return name;
}

static json_t *function_info(const char *name)
{
	char path[128];
	snprintf(path, sizeof path, "/function/%s", name);
	return control("GET", path, NULL);
}

/* ---- a small image in the registry ---------------------------------------------------------- */

static void sha256_hex(const char *data, size_t len, char out[72])
{
	unsigned char md[32];
	SHA256((const unsigned char *)data, len, md);
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* Push a manifest with an empty config to repo:tag; the manifest digest into out. */
static void push_image(const char *repo, const char *tag, char out[72])
{
	const char *reg = env("HT_ECR_REGISTRY");
	char url[1024], cfgd[72], manifest[1024], *loc_body;
	const char *config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
	                     "\"layers\",\"diff_ids\":[]},\"config\":{}}";
	CURL *c;
	long st;
	char *location = NULL;
	struct curl_slist *h;
	hypertest_buffer b = {NULL, 0};
	sha256_hex(config, strlen(config), cfgd);
	/* monolithic blob upload: POST then PUT ?digest= */
	snprintf(url, sizeof url, "%s/v2/%s/blobs/uploads/", reg, repo);
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERNAME, env("HT_ECR_USER"));
	curl_easy_setopt(c, CURLOPT_PASSWORD, env("HT_ECR_PASSWORD"));
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	ck_assert_int_eq(st, 202);
	{
		struct curl_header *hd;
		ck_assert_int_eq(curl_easy_header(c, "Location", 0, CURLH_HEADER, -1, &hd), CURLHE_OK);
		if (hd->value[0] == '/')
			ck_assert_int_ge(asprintf(&location, "%s%s", reg, hd->value), 0);
		else
			location = strdup(hd->value);
	}
	curl_easy_cleanup(c);
	free(b.data);
	snprintf(url, sizeof url, "%s%sdigest=%s", location, strchr(location, '?') ? "&" : "?", cfgd);
	free(location);
	c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERNAME, env("HT_ECR_USER"));
	curl_easy_setopt(c, CURLOPT_PASSWORD, env("HT_ECR_PASSWORD"));
	h = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, config);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	b.data = NULL;
	b.len = 0;
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	ck_assert_int_eq(st, 201);
	curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(b.data);
	snprintf(manifest, sizeof manifest,
	         "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	         "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	         "\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}",
	         cfgd, strlen(config));
	sha256_hex(manifest, strlen(manifest), out);
	snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", reg, repo, tag);
	c = curl_easy_init();
	h = curl_slist_append(NULL, "Content-Type: application/vnd.oci.image.manifest.v1+json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_USERNAME, env("HT_ECR_USER"));
	curl_easy_setopt(c, CURLOPT_PASSWORD, env("HT_ECR_PASSWORD"));
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, manifest);
	b.data = NULL;
	b.len = 0;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	ck_assert_msg(st == 201, "manifest PUT: %ld %s", st, b.data ? b.data : "");
	loc_body = b.data;
	free(loc_body);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
}

/* ---- fixture ---------------------------------------------------------------------------- */

static char tmpdir[256];

static void setup(void)
{
	free(C.logs);
	memset(&C, 0, sizeof C);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/ck-aws-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(C.config_path, sizeof C.config_path, "%s/hypertest.config.json", tmpdir);
	FILE *f = fopen(C.config_path, "w");
	fputs("{\"concurrency\": 100, \"imageName\": \"hypertest/ck\"}\n", f);
	fclose(f);
	snprintf(C.image_name, sizeof C.image_name, "hypertest/ck");
	const char *so = env("HT_PROVIDER_AWS_SO");
	module = fake_load(so ? so : HT_TOP_BUILDDIR "/plugins/.libs/provider-aws.so", &C,
	                   fake_upcalls(upcalls), HYPERTEST_KIND_PROVIDER, "aws");
}

static void teardown(void)
{
	if (module)
		dlclose(module);
	module = NULL;
	fake_rm_tree(tmpdir); /* the test's own directory, left behind before */
}

/* Options for the services: extra is more JSON members (may be ""). */
static char *options(const char *function, const char *extra)
{
	static char buf[4096];
	snprintf(buf, sizeof buf,
	         "{\"region\": \"us-east-1\", \"functionName\": \"%s\", \"bucketName\": \"%s\", "
	         "\"ecrRegistry\": \"%s\", \"endpoints\": {\"lambda\": \"%s\", \"ecr\": \"%s\", "
	         "\"servicequotas\": \"%s\", \"s3\": \"%s\"}%s%s}",
	         function, env("HT_S3_BUCKET"), env("HT_ECR_REGISTRY"), env("HT_AWS_ENDPOINT"),
	         env("HT_AWS_ENDPOINT"), env("HT_AWS_ENDPOINT"), env("HT_S3_CHECKED_ENDPOINT"),
	         *extra ? ", " : "", extra);
	return buf;
}

static void *create_ok(const char *opts)
{
	void *self = NULL;
	int rc = OP(HYPERTEST_OP_CREATE)(&C, opts, &self);
	ck_assert_msg(rc == 0, "create(%s): %d %s", opts, rc, C.error);
	return self;
}

static int create_fails(const char *opts)
{
	void *self = NULL;
	C.error[0] = '\0';
	int rc = OP(HYPERTEST_OP_CREATE)(&C, opts, &self);
	ck_assert_msg(rc != 0, "create(%s) succeeded", opts);
	ck_assert_ptr_null(self);
	return rc;
}

/* ---- options ----------------------------------------------------------------------------- */

START_TEST(test_options)
{
	ck_assert_int_eq(create_fails("{\"bucketName\": \"b\"}"), HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(C.error, "option 'functionName' is required");
	create_fails("{\"functionName\": \"f\"}");
	ck_assert_str_eq(C.error, "option 'bucketName' is required");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"functonName\": \"x\"}");
	ck_assert_str_eq(C.error, "unknown option 'functonName' (did you mean 'functionName'?)");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"zzz\": 1}");
	ck_assert_ptr_nonnull(strstr(C.error, "unknown option 'zzz' (known: region,"));
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"maxRetries\": \"3\"}");
	ck_assert_str_eq(C.error, "option 'maxRetries' must be an integer from 0 to 100");
	create_fails("{\"functionName\": 7, \"bucketName\": \"b\"}");
	ck_assert_str_eq(C.error, "option 'functionName' must be a non-empty string");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"ecrRegistry\": "
	             "\"http://127.0.0.1:5000/some/path\"}");
	ck_assert_ptr_nonnull(strstr(C.error, "option 'ecrRegistry' must be a registry host"));
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"lambdaUpdateMaxWaitTime\": 0}");
	ck_assert_ptr_nonnull(strstr(C.error, "option 'lambdaUpdateMaxWaitTime' must be"));
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"endpoints\": {\"sqs\": "
	             "\"http://x\"}}");
	ck_assert_ptr_nonnull(strstr(C.error, "endpoints.sqs"));
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"repository\": \"a/b:tag\"}");
	ck_assert_ptr_nonnull(strstr(C.error, "option 'repository'"));
	create_fails("[1]");
	ck_assert_str_eq(C.error, "the options must be a JSON object");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpClient\": \"libcurl\"}");
	ck_assert_str_eq(C.error, "option 'httpClient' must be \"auto\", \"builtin\" or \"curl\"");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpClient\": 1}");
	ck_assert_str_eq(C.error, "option 'httpClient' must be \"auto\", \"builtin\" or \"curl\"");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpClinet\": \"curl\"}");
	ck_assert_str_eq(C.error, "unknown option 'httpClinet' (did you mean 'httpClient'?)");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpVersion\": 2}");
	ck_assert_str_eq(C.error, "option 'httpVersion' must be \"1.1\", \"2\" or \"auto\"");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpVersion\": \"h2\"}");
	ck_assert_str_eq(C.error, "option 'httpVersion' must be \"1.1\", \"2\" or \"auto\"");
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpversion\": \"2\"}");
	ck_assert_str_eq(C.error, "unknown option 'httpversion' (did you mean 'httpVersion'?)");
	void *self = create_ok("{\"functionName\": \"f\", \"bucketName\": \"b\", \"region\": "
	                       "\"eu-west-1\", \"maxRetries\": 0, \"retryBudgetMs\": 10, "
	                       "\"requestTimeout\": 2.5, \"s3ForcePathStyle\": true, \"profile\": "
	                       "\"p\", \"logHttp\": false, \"baseImage\": \"alpine:3\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
	for (int i = 0; i < 3; i++) {
		static const char *const clients[] = {"auto", "builtin", "curl"};
		char opts[160];
		snprintf(opts, sizeof opts,
		         "{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpClient\": \"%s\"}",
		         clients[i]);
		self = create_ok(opts);
		OP(HYPERTEST_OP_DESTROY)(self);
	}
	self = create_ok("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpVersion\": \"1.1\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
#ifdef HAVE_NGHTTP2
	self = create_ok("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpVersion\": \"2\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpVersion\": \"auto\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
#else
	create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\", \"httpVersion\": \"auto\"}");
	ck_assert_ptr_nonnull(strstr(C.error, "option 'httpVersion' \"auto\": this hypertest was built without HTTP/2"));
#endif
}
END_TEST

START_TEST(test_options_config_cap)
{
	/* the configuration read again for its "concurrency", with the core's
	 * cap (1 MiB): valid JSON past it is refused, naming the file */
	FILE *f = fopen(C.config_path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("{\"concurrency\": 100,", f);
	for (int i = 0; i < (1 << 20) / 64 + 1; i++)
		fputs("                                                               \n", f);
	fputs("\"imageName\": \"hypertest/ck\"}\n", f);
	fclose(f);
	ck_assert_int_eq(create_fails("{\"functionName\": \"f\", \"bucketName\": \"b\"}"),
	                 HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(C.error, C.config_path) &&
	                  strstr(C.error, "larger than 1 MiB, the limit for a configuration file"),
	              "%s", C.error);
	/* nothing read of an endless device (the core refuses it before) */
	snprintf(C.config_path, sizeof C.config_path, "/dev/zero");
	void *self = create_ok("{\"functionName\": \"f\", \"bucketName\": \"b\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_payload_fields_and_url)
{
	void *self = create_ok(options("f", ""));
	hypertest_params params = {0};
	hypertest_buffer url = {NULL, 0};
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_PAYLOAD_FIELDS)(self, &params), 0);
	ck_assert_int_eq(params.n, 1);
	ck_assert_str_eq(param(&params, "bucketName"), env("HT_S3_BUCKET"));
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_URL)(self, "run/x.json", &url), 0);
	char want[256];
	snprintf(want, sizeof want, "s3://%s/run/x.json", env("HT_S3_BUCKET"));
	ck_assert_str_eq(url.data, want);
	free(url.data);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- image target ------------------------------------------------------------------------ */

START_TEST(test_image_target)
{
	const char *reg = env("HT_ECR_REGISTRY") + strlen("http://");
	char extra[512];
	snprintf(C.image_name, sizeof C.image_name, "team/app:v2");
	snprintf(extra, sizeof extra, "\"baseImage\": \"%s/base/img:1\"", reg);
	void *self = create_ok(options("f", extra));
	hypertest_params t = {0};
	ck_assert_msg(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t) == 0, "%s", C.error);
	ck_assert_str_eq(param(&t, "registry"), reg);
	ck_assert_str_eq(param(&t, "repository"), "team/app");
	ck_assert_str_eq(param(&t, "tag"), "v2");
	ck_assert_str_eq(param(&t, "username"), env("HT_ECR_USER"));
	ck_assert_str_eq(param(&t, "password"), env("HT_ECR_PASSWORD"));
	ck_assert_str_eq(param(&t, "plainHttp"), "1");
	ck_assert_str_eq(param(&t, "baseUsername"), env("HT_ECR_USER"));
	ck_assert_str_eq(param(&t, "basePassword"), env("HT_ECR_PASSWORD"));
	/* the login works at the registry */
	char url[512];
	long st;
	snprintf(url, sizeof url, "http://%s:%s@%s/v2/", param(&t, "username"), param(&t, "password"),
	         reg);
	free(http("GET", url, NULL, &st));
	ck_assert_int_eq(st, 200);
	OP(HYPERTEST_OP_DESTROY)(self);

	/* a base image elsewhere gets no ECR credentials; the option repository wins */
	self = create_ok(options("f", "\"baseImage\": \"docker.io/library/alpine:3\", "
	                              "\"repository\": \"other/repo\""));
	memset(&t, 0, sizeof t);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t), 0);
	ck_assert_str_eq(param(&t, "repository"), "other/repo");
	ck_assert_str_eq(param(&t, "tag"), "latest");
	ck_assert_str_eq(param(&t, "baseImage"), "docker.io/library/alpine:3");
	ck_assert_ptr_null(param(&t, "baseUsername"));
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- the bucket -------------------------------------------------------------------------- */

START_TEST(test_objects)
{
	void *self = create_ok(options("f", ""));
	char key[128];
	hypertest_buffer out = {NULL, 0};
	snprintf(key, sizeof key, "ck-%d/hypertest.manifest.json", (int)getpid());
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &out), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(C.error, "NoSuchKey"));
	ck_assert_msg(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, key, "{\"a\": 1}", 8,
	                                                "application/json") == 0,
	              "%s", C.error);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &out), 0);
	ck_assert_uint_eq(out.len, 8);
	ck_assert_str_eq(out.data, "{\"a\": 1}");
	free(out.data);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* a bucket that does not exist is no "not found" */
	char opts[4096];
	snprintf(opts, sizeof opts, "%s", options("f", ""));
	char *b = strstr(opts, env("HT_S3_BUCKET"));
	memcpy(b, "zz", 2);
	self = create_ok(opts);
	out.data = NULL;
	out.len = 0;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &out), HYPERTEST_ERR_PROVIDER);
	ck_assert_ptr_nonnull(strstr(C.error, "NoSuchBucket"));
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- function updates ------------------------------------------------------------------------ */

START_TEST(test_update_success)
{
	char digest[72], repo[64], ref[256], want[512];
	snprintf(repo, sizeof repo, "ck/update-%d", (int)getpid());
	push_image(repo, "latest", digest);
	const char *fn = new_function("{\"mode\": \"success\", \"updateDelayMs\": 600}");
	void *self = create_ok(options(fn, ""));
	snprintf(ref, sizeof ref, "%s/%s:latest", env("HT_ECR_REGISTRY") + 7, repo);
	double t0 = fake_now_s();
	ck_assert_msg(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, ref, digest) == 0, "%s",
	              C.error);
	ck_assert_double_ge(fake_now_s() - t0, 0.6); /* it waited for the update */
	json_t *info = function_info(fn);
	json_t *cfg = json_object_get(info, "configuration");
	ck_assert_str_eq(json_string_value(json_object_get(cfg, "LastUpdateStatus")), "Successful");
	ck_assert_str_eq(json_string_value(json_object_get(cfg, "CodeSha256")), digest + 7);
	json_decref(info);
	/* the running digest, through GetFunction */
	hypertest_buffer d = {NULL, 0};
	ck_assert_msg(OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST)(self, &d) == 0, "%s", C.error);
	ck_assert_str_eq(d.data, digest);
	free(d.data);
	/* the image URI was pinned by digest in the account's ECR registry */
	snprintf(want, sizeof want, "123456789012.dkr.ecr.us-east-1.amazonaws.com/%s@%s", repo, digest);
	ck_assert_ptr_nonnull(strstr(C.logs, want));
	/* a second update right away waits for nothing it cannot */
	ck_assert_msg(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, ref, digest) == 0, "%s",
	              C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_update_failed)
{
	char digest[72], repo[64], ref[256];
	snprintf(repo, sizeof repo, "ck/failed-%d", (int)getpid());
	push_image(repo, "latest", digest);
	const char *fn = new_function("{\"updateDelayMs\": 200, \"updateFailure\": {\"reason\": "
	                              "\"the image cannot be pulled (ck)\", \"reasonCode\": "
	                              "\"ImageAccessDenied\"}}");
	void *self = create_ok(options(fn, ""));
	snprintf(ref, sizeof ref, "%s/%s:latest", env("HT_ECR_REGISTRY") + 7, repo);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, ref, digest),
	                 HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(C.error, "failed: the image cannot be pulled (ck) "
	                                   "(ImageAccessDenied)"),
	              "%s", C.error);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_update_timeout)
{
	char digest[72], repo[64], ref[256];
	snprintf(repo, sizeof repo, "ck/timeout-%d", (int)getpid());
	push_image(repo, "latest", digest);
	/* an update of 60 s against a limit of 1 s: the provider gives up long
	 * before the update ends (the bound leaves room for a loaded machine's
	 * polls; without the limit the call takes the whole 60 s) */
	const char *fn = new_function("{\"updateDelayMs\": 60000}");
	void *self = create_ok(options(fn, "\"lambdaUpdateMaxWaitTime\": 1"));
	snprintf(ref, sizeof ref, "%s/%s:latest", env("HT_ECR_REGISTRY") + 7, repo);
	double t0 = fake_now_s();
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, ref, digest),
	                 HYPERTEST_ERR_TIMEOUT);
	double took = fake_now_s() - t0;
	ck_assert_msg(took < 20, "took %.2f s", took);
	ck_assert_ptr_nonnull(strstr(C.error, "lambdaUpdateMaxWaitTime"));
	OP(HYPERTEST_OP_DESTROY)(self);
	/* an image that is not in the registry is refused by Lambda */
	fn = new_function("{}");
	self = create_ok(options(fn, ""));
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(
	                     self, ref,
	                     "sha256:0000000000000000000000000000000000000000000000000000000000000000"),
	                 HYPERTEST_ERR_HTTP);
	ck_assert_ptr_nonnull(strstr(C.error, "InvalidParameterValueException"));
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- invocations ------------------------------------------------------------------------------ */

/* Start n invocations at once, wait for all; the wall time. */
static double invoke_all(void *self, hypertest_invocation *inv, int n)
{
	char payload[256];
	double t0 = fake_now_s();
	invocations_done = 0;
	for (int i = 0; i < n; i++) {
		snprintf(payload, sizeof payload,
		         "{\"runId\": \"r\", \"testId\": \"t%d\", \"context\": {\"name\": \"test %d\"}}",
		         i, i);
		ck_assert_msg(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, &inv[i], payload,
		                                                  strlen(payload)) == 0,
		              "%s", C.error);
	}
	while (invocations_done < n) {
		int got = OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 5000);
		ck_assert_int_ge(got, 0);
		ck_assert_msg(fake_now_s() - t0 < 120, "only %d of %d done", invocations_done, n);
	}
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 0), 0);
	return fake_now_s() - t0;
}

static void free_invocations(hypertest_invocation *inv, int n)
{
	for (int i = 0; i < n; i++) {
		free(inv[i].response);
		free(inv[i].message);
	}
	free(inv);
}

START_TEST(test_invoke_2000)
{
	enum { N = 2000 };
	FILE *f = fopen(C.config_path, "w");
	fputs("{\"concurrency\": 2000}\n", f);
	fclose(f);
	json_decref(control("POST", "/quota", "{\"value\": 5000}"));
	/* each answer 4 s late, so that even on a loaded machine the last
	 * request arrives before the first answer: all N are in flight at once */
	const char *fn = new_function("{\"mode\": \"success\", \"delayMs\": 4000}");
	void *self = create_ok(options(fn, ""));
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	/* connections first, as a run's first wave would not have them either */
	double wall = invoke_all(self, inv, N);
	for (int i = 0; i < N; i++) {
		char want[64];
		ck_assert_msg(inv[i].code == 0, "%d: %s", i, inv[i].message);
		snprintf(want, sizeof want, "\"name\": \"test %d\"", i);
		ck_assert_msg(strstr(inv[i].response, want), "%s", inv[i].response);
	}
	json_t *info = function_info(fn);
	json_t *st = json_object_get(info, "stats");
	ck_assert_int_eq(json_integer_value(json_object_get(st, "maxInFlight")), N);
	ck_assert_int_eq(json_integer_value(json_object_get(st, "invocations")), N);
	json_decref(info);
	/* how fast is bench/aws-invoke.sh's to measure, not this test's */
	fprintf(stderr, "check_provider_aws: %d invocations of 4 s, all in flight at once: %.2f s\n",
	        N, wall);
	free_invocations(inv, N);
	/* no proxy variable: the builtin client */
	ck_assert_msg(C.logs && strstr(C.logs, "at most 2000 transfers at once, over the builtin "
	                                       "HTTP/1.1 client"),
	              "%s", C.logs ? C.logs : "no log");

	/* a second wave finds the first one's connections idle in the multi
	 * handles it goes to, and opens none */
	char path[128];
	snprintf(path, sizeof path, "/function/%s", fn);
	json_decref(control("POST", path, "{\"mode\": \"success\", \"delayMs\": 500}"));
	json_t *stats = control("GET", "/stats", NULL);
	json_int_t accepted = json_integer_value(json_object_get(stats, "connectionsAccepted"));
	json_decref(stats);
	inv = calloc(N, sizeof *inv);
	invoke_all(self, inv, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(inv[i].code == 0, "%d: %s", i, inv[i].message);
	free_invocations(inv, N);
	stats = control("GET", "/stats", NULL);
	/* one connection since: this test's own request for the figures */
	ck_assert_int_eq(json_integer_value(json_object_get(stats, "connectionsAccepted")) - accepted,
	                 1);
	json_decref(stats);
	OP(HYPERTEST_OP_DESTROY)(self);
	json_decref(control("POST", "/quota", "{\"value\": 1000}"));
}
END_TEST

/* The core reads the manifest just before it invokes: meanwhile the
 * provider opens as many connections as the configured concurrency (100,
 * from the fixture's configuration), with signed requests, and the
 * invocations find them open. */
/* Warm-up requests of function fn the endpoint logged after sequence
 * number since: GETs of the Invoke path, each signed (auth "ok"). */
static int warm_requests(const char *fn, json_int_t since)
{
	json_t *reqs = control("GET", "/requests", NULL), *r;
	char path[256];
	size_t i;
	int n = 0;
	snprintf(path, sizeof path, "/2015-03-31/functions/%s/invocations", fn);
	json_array_foreach(json_object_get(reqs, "requests"), i, r) {
		const char *m = json_string_value(json_object_get(r, "method"));
		const char *p = json_string_value(json_object_get(r, "path"));
		if (json_integer_value(json_object_get(r, "seq")) <= since || !m || !p ||
		    strcmp(m, "GET") != 0 || strcmp(p, path) != 0)
			continue;
		ck_assert_str_eq(json_string_value(json_object_get(r, "auth")), "ok");
		ck_assert_int_eq(json_integer_value(json_object_get(r, "status")), 404);
		n++;
	}
	json_decref(reqs);
	return n;
}

/* How many times what occurs in text. */
static int count_lines(const char *text, const char *what)
{
	int n = 0;
	for (const char *p = text; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The core reads the manifest just before it invokes: meanwhile the
 * provider opens as many connections as the configured concurrency (100,
 * from the fixture's configuration), with signed requests (one first,
 * then 100, one of them on the first's connection), and the invocations
 * find them open. */
START_TEST(test_invoke_warm_up)
{
	enum { N = 100 };
	const char *fn = new_function("{\"mode\": \"success\"}");
	void *self = create_ok(options(fn, ""));
	hypertest_buffer out = {NULL, 0};
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	json_t *reqs = control("GET", "/requests", NULL), *r, *stats;
	json_int_t since = -1, accepted;
	double t0 = fake_now_s();
	size_t i;
	json_array_foreach(json_object_get(reqs, "requests"), i, r)
		if (json_integer_value(json_object_get(r, "seq")) > since)
			since = json_integer_value(json_object_get(r, "seq"));
	json_decref(reqs);

	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "no/such/manifest.json", &out),
	                 HYPERTEST_ERR_NOT_FOUND);
	/* the warm-up goes on by itself while nothing calls the provider */
	while (warm_requests(fn, since) < 1 + N) {
		struct timespec ts = {0, 50000000};
		ck_assert_msg(fake_now_s() - t0 < 60, "%d warm-up requests", warm_requests(fn, since));
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(warm_requests(fn, since), 1 + N);
	/* another object read starts nothing, and says nothing of a warm-up */
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "no/such/manifest.json", &out),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_int_eq(count_lines(C.logs, "Lambda: opening up to 100 connections to "), 1);
	stats = control("GET", "/stats", NULL);
	accepted = json_integer_value(json_object_get(stats, "connectionsAccepted"));
	json_decref(stats);
	invoke_all(self, inv, N);
	for (int k = 0; k < N; k++)
		ck_assert_msg(inv[k].code == 0, "%d: %s", k, inv[k].message);
	free_invocations(inv, N);
	stats = control("GET", "/stats", NULL);
	/* the invocations went over the warm-up's connections: the only new
	 * one is this request's for the figures */
	ck_assert_int_eq(json_integer_value(json_object_get(stats, "connectionsAccepted")) - accepted,
	                 1);
	json_decref(stats);
	ck_assert_int_eq(warm_requests(fn, since), 1 + N);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_throttled_retried)
{
	enum { N = 40 };
	const char *fn = new_function("{\"mode\": \"success\", \"throttle\": {\"burst\": 2, "
	                              "\"every\": 5}, \"retryAfter\": 0, \"serverErrors\": "
	                              "{\"burst\": 1, \"every\": 7, \"status\": [500, 503]}}");
	void *self = create_ok(options(fn, "\"maxRetries\": 20"));
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	invoke_all(self, inv, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(inv[i].code == 0, "%d: %s", i, inv[i].message);
	json_t *info = function_info(fn);
	json_t *statuses = json_object_get(json_object_get(info, "stats"), "statuses");
	ck_assert_int_eq(json_integer_value(json_object_get(statuses, "200")), N);
	ck_assert_int_gt(json_integer_value(json_object_get(statuses, "429")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(statuses, "500")) +
	                     json_integer_value(json_object_get(statuses, "503")),
	                 0);
	json_decref(info);
	free_invocations(inv, N);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_budget_spent)
{
	enum { N = 10 };
	/* every other invocation is throttled with Retry-After: 1 s, more than the budget */
	const char *fn = new_function("{\"mode\": \"success\", \"throttle\": {\"burst\": 1, "
	                              "\"every\": 2}, \"retryAfter\": 1}");
	void *self = create_ok(options(fn, "\"retryBudgetMs\": 200"));
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	double wall = invoke_all(self, inv, N);
	int failed = 0;
	for (int i = 0; i < N; i++) {
		if (inv[i].code == 0) {
			ck_assert_ptr_nonnull(strstr(inv[i].response, "\"success\": true"));
			continue;
		}
		failed++;
		ck_assert_int_eq(inv[i].code, HYPERTEST_ERR_HTTP);
		ck_assert_msg(strstr(inv[i].message, "HTTP 429 TooManyRequestsException: Rate Exceeded."),
		              "%s", inv[i].message);
		ck_assert_ptr_nonnull(strstr(inv[i].message, fn));
	}
	ck_assert_int_eq(failed, N / 2);
	ck_assert_msg(wall < 1.0, "%.2f s: the budget was not respected", wall);
	free_invocations(inv, N);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_function_error)
{
	const char *fn = new_function("{\"mode\": \"functionError\", \"errorMessage\": \"kaboom in "
	                              "the handler\", \"errorType\": \"CustomError\"}");
	void *self = create_ok(options(fn, ""));
	hypertest_invocation *inv = calloc(1, sizeof *inv);
	invoke_all(self, inv, 1);
	ck_assert_int_ne(inv[0].code, 0);
	ck_assert_ptr_null(inv[0].response);
	ck_assert_msg(strstr(inv[0].message, "function error (Unhandled) CustomError: kaboom in the "
	                                     "handler"),
	              "%s", inv[0].message);
	free_invocations(inv, 1);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* an unknown function: the test fails with Lambda's code */
	self = create_ok(options("no-such-function-ck", ""));
	inv = calloc(1, sizeof *inv);
	invoke_all(self, inv, 1);
	ck_assert_int_eq(inv[0].code, HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(inv[0].message, "HTTP 404 ResourceNotFoundException"), "%s",
	              inv[0].message);
	free_invocations(inv, 1);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

START_TEST(test_invoke_cancel)
{
	enum { N = 20 };
	const char *fn = new_function("{\"mode\": \"success\", \"delayMs\": 5000}");
	void *self = create_ok(options(fn, ""));
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	char payload[] = "{\"runId\": \"r\", \"testId\": \"t\", \"context\": {}}";
	invocations_done = 0;
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_START)(self, &inv[i], payload,
		                                                     strlen(payload)),
		                 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 200), 0);
	double t0 = fake_now_s();
	OP(HYPERTEST_PROVIDER_INVOKE_CANCEL)(self);
	ck_assert_int_eq(invocations_done, 0); /* completions come from WAIT only */
	while (invocations_done < N)
		ck_assert_int_gt(OP(HYPERTEST_PROVIDER_INVOKE_WAIT)(self, 1000), 0);
	ck_assert_double_lt(fake_now_s() - t0, 1.0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(inv[i].code, HYPERTEST_ERR_CANCELLED);
	free_invocations(inv, N);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- Lambda's cap on a synchronous response --------------------------------------------------- */

/* Lambda refuses to return more than this (the figure its error message names). */
#define LAMBDA_MAX_RESPONSE 6291556

/* The peak resident size since the last reset (kB), or -1; reset: start a new peak. */
static long peak_rss_kb(int reset)
{
	char line[256];
	long kb = -1;
	FILE *f;
	if (reset) {
		f = fopen("/proc/self/clear_refs", "w");
		if (!f || fputs("5", f) < 0 || fclose(f) != 0)
			return -1;
	}
	f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, reset ? "VmRSS: %ld kB" : "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Answers over the cap (endpoint.py's "oversize": a 200 with that many bytes,
 * which Lambda itself never sends) fail exactly those tests, with a message
 * naming the limit, without a retry and without holding the whole body; the
 * others complete; an answer of exactly the cap passes. */
START_TEST(test_invoke_oversize)
{
	enum { N = 6 };
	char behaviour[512];
	snprintf(behaviour, sizeof behaviour,
	         "{\"mode\": \"success\", \"oversize\": {\"bytes\": %d, \"testIds\": [\"t1\", \"t4\"]}}",
	         LAMBDA_MAX_RESPONSE + 1);
	const char *fn = new_function(behaviour);
	char name[64];
	snprintf(name, sizeof name, "%s", fn);
	void *self = create_ok(options(name, ""));
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	invoke_all(self, inv, N);
	for (int i = 0; i < N; i++) {
		char want[64];
		if (i == 1 || i == 4) {
			ck_assert_int_eq(inv[i].code, HYPERTEST_ERR_HTTP);
			ck_assert_ptr_null(inv[i].response);
			ck_assert_msg(strstr(inv[i].message, "response larger than 6291556 bytes") &&
			                  strstr(inv[i].message, name),
			              "%d: %s", i, inv[i].message);
			continue;
		}
		ck_assert_msg(inv[i].code == 0, "%d: %s", i, inv[i].message);
		snprintf(want, sizeof want, "\"name\": \"test %d\"", i);
		ck_assert_msg(strstr(inv[i].response, want), "%d: %s", i, inv[i].response);
	}
	/* the endpoint did send those two oversized, and nothing was tried twice */
	json_t *info = function_info(name);
	json_t *st = json_object_get(info, "stats");
	ck_assert_int_eq(json_integer_value(json_object_get(st, "invocations")), N);
	json_decref(info);
	json_t *reqs = control("GET", "/requests?last=50", NULL);
	size_t k, oversized = 0;
	json_t *r;
	json_array_foreach(json_object_get(reqs, "requests"), k, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		if (path && strstr(path, name) && json_object_get(r, "oversize"))
			oversized++;
	}
	json_decref(reqs);
	ck_assert_int_eq(oversized, 2);
	free_invocations(inv, N);

	/* exactly the cap is still a response; far over it costs no more memory than the cap */
	snprintf(behaviour, sizeof behaviour,
	         "{\"mode\": \"success\", \"oversize\": {\"bytes\": %d, \"testIds\": [\"t0\"]}}",
	         LAMBDA_MAX_RESPONSE);
	json_decref(control("POST", "/function/ck-oversize-edge", "%s", behaviour));
	OP(HYPERTEST_OP_DESTROY)(self);
	self = create_ok(options("ck-oversize-edge", ""));
	inv = calloc(1, sizeof *inv);
	invoke_all(self, inv, 1);
	ck_assert_msg(inv[0].code == 0, "%s", inv[0].message);
	ck_assert_uint_eq(strlen(inv[0].response), LAMBDA_MAX_RESPONSE);
	ck_assert_ptr_nonnull(strstr(inv[0].response, "\"name\": \"t0\""));
	free_invocations(inv, 1);
	json_decref(control("POST", "/function/ck-oversize-edge",
	                    "{\"mode\": \"success\", \"oversize\": {\"bytes\": %d, \"testIds\": "
	                    "[\"t0\"]}}",
	                    64 << 20));
	inv = calloc(1, sizeof *inv);
	long base = peak_rss_kb(1);
	invoke_all(self, inv, 1);
	long peak = peak_rss_kb(0);
	ck_assert_int_eq(inv[0].code, HYPERTEST_ERR_HTTP);
	ck_assert_ptr_nonnull(strstr(inv[0].message, "response larger than 6291556 bytes"));
	if (base > 0 && peak > 0)
		ck_assert_msg(peak - base < 40 * 1024, "a 64 MiB answer raised the peak by %ld kB",
		              peak - base);
	else
		fprintf(stderr, "check_provider_aws: no /proc/self/clear_refs: memory not measured\n");
	free_invocations(inv, 1);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- the function side ------------------------------------------------------------------------ */

START_TEST(test_serve_stdin)
{
	char art[300], path[400], payload[512], key[256];
	snprintf(art, sizeof art, "%s/art", tmpdir);
	mkdir(art, 0700);
	snprintf(path, sizeof path, "%s/log.txt", art);
	FILE *f = fopen(path, "w");
	fputs("artifact text\n", f);
	fclose(f);
	/* the payload names the bucket; the option names another that does not exist */
	snprintf(payload, sizeof payload,
	         "{\"runId\": \"run-%d\", \"testId\": \"t1\", \"context\": {}, \"bucketName\": \"%s\"}",
	         (int)getpid(), env("HT_S3_BUCKET"));
	snprintf(path, sizeof path, "%s/payload.json", tmpdir);
	f = fopen(path, "w");
	fputs(payload, f);
	fclose(f);
	char opts[4096];
	snprintf(opts, sizeof opts, "%s", options("f", "\"profile\": \"does-not-exist\""));
	char *b = strstr(opts, env("HT_S3_BUCKET"));
	memcpy(b, "zz", 2);
	void *self = create_ok(opts);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 0);
	close(fd);
	snprintf(path, sizeof path, "%s/out.json", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int saved = dup(1);
	dup2(fd, 1);
	close(fd);
	unsetenv("AWS_LAMBDA_RUNTIME_API");
	hypertest_function fn = {.self = self, .artifacts_dir = art};
	int rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn);
	fflush(stdout);
	dup2(saved, 1);
	ck_assert_msg(rc == 0, "%s", C.error);
	ck_assert_int_eq(fn.calls, 1);
	ck_assert_str_eq(fn.payload, payload);
	f = fopen(path, "r");
	char out[512] = "";
	ck_assert_ptr_nonnull(fgets(out, sizeof out, f));
	fclose(f);
	ck_assert_str_eq(out, "{\"success\":true,\"name\":\"t1\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
	/* the artifact is in the payload's bucket */
	self = create_ok(options("f", ""));
	hypertest_buffer got = {NULL, 0};
	snprintf(key, sizeof key, "run-%d/t1/log.txt", (int)getpid());
	ck_assert_msg(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &got) == 0, "%s", C.error);
	ck_assert_str_eq(got.data, "artifact text\n");
	free(got.data);
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- the Runtime API loop, against a small Runtime API of the test's own ---------------- */

typedef struct rtapi {
	int listen_fd, port;
	const char *payloads[4];
	int n_payloads, next;
	char posted_path[4][256], posted_body[4][1024], posted_type[4][128], posted_ctype[4][128];
	int n_posted;
	int n_get;         /* GET .../invocation/next */
	int n_refused;     /* anything the Runtime API does not have (answered 404) */
	int saw_keepalive; /* a second request on one connection */
} rtapi;

/* The paths a runtime may POST to: init/error, invocation/{id}/response|error. */
static int rtapi_post_ok(const char *path)
{
	const char *pre = "/2018-06-01/runtime/invocation/", *id, *slash;
	if (!strcmp(path, "/2018-06-01/runtime/init/error"))
		return 1;
	if (strncmp(path, pre, strlen(pre)) != 0)
		return 0;
	id = path + strlen(pre);
	slash = strchr(id, '/');
	return slash && slash > id && (!strcmp(slash, "/response") || !strcmp(slash, "/error"));
}

static int read_request(int fd, char *buf, size_t cap, char **body, size_t *body_len)
{
	size_t n = 0;
	char *end;
	while (!(end = memmem(buf, n, "\r\n\r\n", 4))) {
		ssize_t r = n < cap - 1 ? read(fd, buf + n, cap - 1 - n) : -1;
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*body = end + 4;
	char *cl = strcasestr(buf, "\r\ncontent-length:");
	size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
	while ((size_t)(buf + n - *body) < want) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*body_len = want;
	return 0;
}

static void *rtapi_main(void *ud)
{
	rtapi *a = ud;
	for (;;) {
		int c = accept(a->listen_fd, NULL, NULL), nreq = 0;
		if (c < 0)
			return NULL;
		for (;;) {
			char buf[16384], *body, out[2048], *ty;
			size_t blen;
			if (read_request(c, buf, sizeof buf, &body, &blen) < 0)
				break;
			if (++nreq > 1)
				a->saw_keepalive = 1;
			if (!strncmp(buf, "GET /2018-06-01/runtime/invocation/next ", 40)) {
				a->n_get++;
				if (a->next < a->n_payloads) {
					const char *pl = a->payloads[a->next++];
					snprintf(out, sizeof out,
					         "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: req-%d\r\n"
					         "Lambda-Runtime-Deadline-Ms: 5000\r\nContent-Type: application/json"
					         "\r\nContent-Length: %zu\r\n\r\n%s",
					         a->next, strlen(pl), pl);
				} else {
					snprintf(out, sizeof out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
					                          "Connection: close\r\n\r\n");
				}
			} else if (!strncmp(buf, "POST ", 5) && a->n_posted < 4 &&
			           (snprintf(a->posted_path[a->n_posted], sizeof a->posted_path[0],
			                     "%.*s", (int)strcspn(buf + 5, " "), buf + 5),
			            rtapi_post_ok(a->posted_path[a->n_posted]))) {
				int i = a->n_posted++;
				snprintf(a->posted_body[i], sizeof a->posted_body[i], "%.*s", (int)blen, body);
				ty = strcasestr(buf, "\r\nLambda-Runtime-Function-Error-Type: ");
				if (ty && ty < body)
					snprintf(a->posted_type[i], sizeof a->posted_type[i], "%.*s",
					         (int)strcspn(ty + 38, "\r"), ty + 38);
				ty = strcasestr(buf, "\r\nContent-Type: ");
				if (ty && ty < body)
					snprintf(a->posted_ctype[i], sizeof a->posted_ctype[i], "%.*s",
					         (int)strcspn(ty + 16, "\r"), ty + 16);
				snprintf(out, sizeof out, "HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n"
				                          "{\"status\":\"OK\"}");
			} else {
				a->n_refused++;
				snprintf(out, sizeof out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
			}
			if (write(c, out, strlen(out)) < 0)
				break;
		}
		close(c);
	}
}

/* Start the fake on a free 127.0.0.1 port (a thread); AWS_LAMBDA_RUNTIME_API names it. */
static void rtapi_start(rtapi *a)
{
	struct sockaddr_in sin = {0};
	socklen_t sl = sizeof sin;
	pthread_t th;
	char api[64];
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(a->listen_fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(a->listen_fd, 8), 0);
	getsockname(a->listen_fd, (struct sockaddr *)&sin, &sl);
	a->port = ntohs(sin.sin_port);
	ck_assert_int_eq(pthread_create(&th, NULL, rtapi_main, a), 0);
	pthread_detach(th);
	snprintf(api, sizeof api, "127.0.0.1:%d", a->port);
	setenv("AWS_LAMBDA_RUNTIME_API", api, 1);
}

START_TEST(test_serve_runtime_api)
{
	rtapi a;
	memset(&a, 0, sizeof a);
	a.payloads[0] = "{\"runId\": \"r\", \"testId\": \"t1\", \"context\": {}}";
	a.payloads[1] = "{\"runId\": \"r\", \"testId\": \"t2\", \"context\": {\"fail\": 1}}";
	a.n_payloads = 2;
	rtapi_start(&a);
	void *self = create_ok(options("f", ""));
	hypertest_function fn = {.self = self};
	ck_assert_str_eq(C.init_error, ""); /* core_str: the function can run tests */
	/* serves both, then stops when /next answers 404 (Lambda never does) */
	int rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn);
	ck_assert_int_eq(rc, HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(C.error, "/2018-06-01/runtime/invocation/next"));
	ck_assert_int_eq(fn.calls, 2);
	ck_assert_int_eq(a.n_posted, 2);
	ck_assert_str_eq(a.posted_path[0], "/2018-06-01/runtime/invocation/req-1/response");
	ck_assert_str_eq(a.posted_body[0], "{\"success\":true,\"name\":\"t1\"}");
	ck_assert_str_eq(a.posted_path[1], "/2018-06-01/runtime/invocation/req-2/error");
	ck_assert_str_eq(a.posted_type[1], "Runtime.HandlerError");
	json_t *e = json_loads(a.posted_body[1], 0, NULL);
	ck_assert_str_eq(json_string_value(json_object_get(e, "errorType")), "Runtime.HandlerError");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(e, "errorMessage")),
	                             "could not handle the payload"));
	json_decref(e);
	ck_assert_int_eq(a.saw_keepalive, 1); /* one connection for the whole loop */
	ck_assert_int_eq(a.n_get, 3);
	ck_assert_int_eq(a.n_refused, 0);
	OP(HYPERTEST_OP_DESTROY)(self);
	unsetenv("AWS_LAMBDA_RUNTIME_API");
}
END_TEST

/* When serving cannot start, the runtime reports it at /runtime/init/error
 * (the Lambda error JSON and Lambda-Runtime-Function-Error-Type), asks for
 * no invocation, and fails.  The case the provider itself sees: a core of
 * ABI 1.0, which lacks the buffer upcalls (18-20) serving needs. */
START_TEST(test_serve_init_error)
{
	hypertest_dispatch old_core[64];
	size_t n = 0;
	for (const hypertest_dispatch *d = fake_upcalls(upcalls); d->id; d++)
		if (d->id <= 17) /* ABI 1.0: upcalls 1-17 */
			old_core[n++] = *d;
	old_core[n] = (hypertest_dispatch){0, NULL};
	hypertest_plugin_init_fn init;
	*(void **)&init = dlsym(module, "hypertest_plugin_init");
	ck_assert_int_eq(init(&C, old_core), 0);

	rtapi a;
	memset(&a, 0, sizeof a);
	a.payloads[0] = "{\"runId\": \"r\", \"testId\": \"t1\", \"context\": {}}";
	a.n_payloads = 1;
	rtapi_start(&a);
	void *self = create_ok(options("f", ""));
	hypertest_function fn = {.self = self};
	int rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn);
	ck_assert_int_eq(rc, HYPERTEST_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(C.error, "lacks the upcalls to serve"));
	ck_assert_int_eq(fn.calls, 0);
	ck_assert_int_eq(a.n_get, 0); /* no invocation was taken */
	ck_assert_int_eq(a.n_refused, 0);
	ck_assert_int_eq(a.n_posted, 1);
	ck_assert_str_eq(a.posted_path[0], "/2018-06-01/runtime/init/error");
	ck_assert_str_eq(a.posted_type[0], "Runtime.InitError");
	ck_assert_str_eq(a.posted_ctype[0], "application/json");
	json_error_t jerr;
	json_t *e = json_loads(a.posted_body[0], 0, &jerr);
	ck_assert_msg(json_is_object(e), "not JSON: %s (%s)", a.posted_body[0], jerr.text);
	ck_assert_int_eq(json_object_size(e), 2);
	ck_assert_str_eq(json_string_value(json_object_get(e, "errorType")), "Runtime.InitError");
	ck_assert_str_eq(json_string_value(json_object_get(e, "errorMessage")), C.error);
	json_decref(e);
	OP(HYPERTEST_OP_DESTROY)(self);
	unsetenv("AWS_LAMBDA_RUNTIME_API");
}
END_TEST

/* ABI 1.2: the core says the function cannot run tests (its runner did not
 * load: core_str(HYPERTEST_CORE_FUNCTION_INIT_ERROR) is not "").  With the
 * Runtime API the provider reports exactly that at /runtime/init/error, takes
 * no invocation and fails; without it (stdin) the payload still goes to the
 * core, which answers it failed. */
START_TEST(test_serve_core_init_error)
{
	const char *why = "unknown runner plugin 'no-such-runner'; found: 'command' \"quoted\"";
	snprintf(C.init_error, sizeof C.init_error, "%s", why);
	rtapi a;
	memset(&a, 0, sizeof a);
	a.payloads[0] = "{\"runId\": \"r\", \"testId\": \"t1\", \"context\": {}}";
	a.n_payloads = 1;
	rtapi_start(&a);
	void *self = create_ok(options("f", ""));
	hypertest_function fn = {.self = self};
	C.error[0] = '\0';
	int rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn);
	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(C.error, why) != NULL, "%s", C.error);
	ck_assert_int_eq(fn.calls, 0);
	ck_assert_int_eq(a.n_get, 0); /* no invocation was taken */
	ck_assert_int_eq(a.n_refused, 0);
	ck_assert_int_eq(a.n_posted, 1);
	ck_assert_str_eq(a.posted_path[0], "/2018-06-01/runtime/init/error");
	ck_assert_str_eq(a.posted_type[0], "Runtime.InitError");
	ck_assert_str_eq(a.posted_ctype[0], "application/json");
	json_error_t jerr;
	json_t *e = json_loads(a.posted_body[0], 0, &jerr);
	ck_assert_msg(json_is_object(e), "not JSON: %s (%s)", a.posted_body[0], jerr.text);
	ck_assert_int_eq(json_object_size(e), 2);
	ck_assert_str_eq(json_string_value(json_object_get(e, "errorType")), "Runtime.InitError");
	ck_assert_str_eq(json_string_value(json_object_get(e, "errorMessage")), why);
	json_decref(e);
	OP(HYPERTEST_OP_DESTROY)(self);
	unsetenv("AWS_LAMBDA_RUNTIME_API");

	/* stdin: the payload is handed over and its response written */
	char path[400];
	const char *payload = "{\"runId\": \"r\", \"testId\": \"t2\", \"context\": {}}";
	snprintf(path, sizeof path, "%s/payload.json", tmpdir);
	FILE *f = fopen(path, "w");
	fputs(payload, f);
	fclose(f);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 0);
	close(fd);
	snprintf(path, sizeof path, "%s/out.json", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int saved = dup(1);
	dup2(fd, 1);
	close(fd);
	self = create_ok(options("f", ""));
	hypertest_function fn2 = {.self = self};
	rc = OP(HYPERTEST_PROVIDER_SERVE)(self, &fn2);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	ck_assert_msg(rc == 0, "%s", C.error);
	ck_assert_int_eq(fn2.calls, 1);
	ck_assert_str_eq(fn2.payload, payload);
	f = fopen(path, "r");
	char out[512] = "";
	ck_assert_ptr_nonnull(fgets(out, sizeof out, f));
	fclose(f);
	ck_assert_str_eq(out, "{\"success\":true,\"name\":\"t2\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- doctor ----------------------------------------------------------------------------------- */

static int find_check(const hypertest_checks *c, const char *name)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name))
			return i;
	ck_abort_msg("no check %s", name);
	return -1;
}

START_TEST(test_doctor)
{
	/* the CA bundle line below: from no variable of the caller's */
	unsetenv("AWS_CA_BUNDLE");
	unsetenv("HYPERTEST_CA_BUNDLE");
	json_decref(control("POST", "/quota", "{\"value\": 1000}"));
	const char *fn = new_function("{\"mode\": \"success\"}");
	void *self = create_ok(options(fn, ""));
	hypertest_checks c = {0};
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	int i = find_check(&c, "provider.aws.credentials");
	ck_assert_int_eq(c.status[i], HYPERTEST_CHECK_OK);
	ck_assert_str_eq(c.msg[i], "access key ...MPLE from environment");
	i = find_check(&c, "provider.aws.region");
	ck_assert_str_eq(c.msg[i], "us-east-1 (from option)");
	i = find_check(&c, "provider.aws.function");
	ck_assert_msg(c.status[i] == HYPERTEST_CHECK_OK, "%s", c.msg[i]);
	i = find_check(&c, "provider.aws.bucket");
	ck_assert_msg(c.status[i] == HYPERTEST_CHECK_OK, "%s", c.msg[i]);
	i = find_check(&c, "provider.aws.registry");
	ck_assert_msg(c.status[i] == HYPERTEST_CHECK_OK, "%s", c.msg[i]);
	i = find_check(&c, "provider.aws.concurrency");
	ck_assert_msg(c.status[i] == HYPERTEST_CHECK_OK, "%s", c.msg[i]);
	ck_assert_str_eq(c.msg[i], "Lambda concurrency quota 1000 >= the configured concurrency 100");
	/* a configuration that is no JSON file (a module node read): the
	 * concurrency comes from the core, not from reading the file again */
	{
		char mjs[sizeof C.config_path], json_path[sizeof C.config_path];
		hypertest_checks c2 = {0};
		memcpy(json_path, C.config_path, sizeof json_path);
		snprintf(mjs, sizeof mjs, "%s/hypertest.config.mjs", tmpdir);
		FILE *f = fopen(mjs, "w");
		ck_assert_ptr_nonnull(f);
		fputs("export default {concurrency: 250};\n", f);
		fclose(f);
		snprintf(C.config_path, sizeof C.config_path, "%s", mjs);
		snprintf(C.concurrency, sizeof C.concurrency, "250");
		void *other = create_ok(options(fn, ""));
		ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(other, &c2), 0);
		i = find_check(&c2, "provider.aws.concurrency");
		ck_assert_str_eq(c2.msg[i], "Lambda concurrency quota 1000 >= the configured concurrency 250");
		OP(HYPERTEST_OP_DESTROY)(other);
		memcpy(C.config_path, json_path, sizeof json_path); /* an older core's answers again */
		C.concurrency[0] = '\0';
	}
	/* the CA bundle and where it came from */
	i = find_check(&c, "provider.aws.ca-bundle");
	ck_assert_int_eq(c.status[i], HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(c.msg[i], "(from libcurl's default)") ||
	                  strstr(c.msg[i], "(from OpenSSL's default paths)"),
	              "%s", c.msg[i]);
	OP(HYPERTEST_OP_DESTROY)(self);
	{
		char ca[300], extra[400], want[400];
		FILE *pem;
		snprintf(ca, sizeof ca, "%s/ca.pem", tmpdir);
		pem = fopen(ca, "w");
		ck_assert_ptr_nonnull(pem);
		fclose(pem);
		setenv("AWS_CA_BUNDLE", ca, 1);
		memset(&c, 0, sizeof c);
		self = create_ok(options(fn, ""));
		ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
		i = find_check(&c, "provider.aws.ca-bundle");
		snprintf(want, sizeof want, "%s (from AWS_CA_BUNDLE)", ca);
		ck_assert_str_eq(c.msg[i], want);
		OP(HYPERTEST_OP_DESTROY)(self);
		/* the option before AWS_CA_BUNDLE */
		snprintf(extra, sizeof extra, "\"caBundle\": \"%s/\"", tmpdir);
		memset(&c, 0, sizeof c);
		self = create_ok(options(fn, extra));
		ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
		i = find_check(&c, "provider.aws.ca-bundle");
		snprintf(want, sizeof want, "CA directory %s/ (from option caBundle)", tmpdir);
		ck_assert_str_eq(c.msg[i], want);
		OP(HYPERTEST_OP_DESTROY)(self);
		/* a bundle that cannot be read */
		setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem", 1);
		memset(&c, 0, sizeof c);
		self = create_ok(options(fn, ""));
		ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
		i = find_check(&c, "provider.aws.credentials");
		ck_assert_int_eq(c.status[i], HYPERTEST_CHECK_FAILED);
		ck_assert_str_eq(c.msg[i], "CA bundle /nonexistent/ca.pem (from AWS_CA_BUNDLE): cannot "
		                           "read: No such file or directory");
		OP(HYPERTEST_OP_DESTROY)(self);
		unsetenv("AWS_CA_BUNDLE");
		unlink(ca);
	}

	/* no function, no bucket, concurrency over the quota */
	FILE *f = fopen(C.config_path, "w");
	fputs("{\"concurrency\": 3000}\n", f);
	fclose(f);
	char opts[4096];
	snprintf(opts, sizeof opts, "%s", options("no-such-function-ck", ""));
	memcpy(strstr(opts, env("HT_S3_BUCKET")), "zz", 2);
	self = create_ok(opts);
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	i = find_check(&c, "provider.aws.function");
	ck_assert_int_eq(c.status[i], HYPERTEST_CHECK_FAILED);
	ck_assert_ptr_nonnull(strstr(c.msg[i], "ResourceNotFoundException"));
	i = find_check(&c, "provider.aws.bucket");
	ck_assert_int_eq(c.status[i], HYPERTEST_CHECK_FAILED);
	ck_assert_ptr_nonnull(strstr(c.msg[i], "NoSuchBucket"));
	i = find_check(&c, "provider.aws.concurrency");
	ck_assert_int_eq(c.status[i], HYPERTEST_CHECK_WARNING);
	ck_assert_ptr_nonnull(strstr(c.msg[i], "below the configured concurrency 3000"));
	OP(HYPERTEST_OP_DESTROY)(self);

	/* no credentials at all */
	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	self = create_ok(options(fn, ""));
	memset(&c, 0, sizeof c);
	C.error[0] = '\0';
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_int_eq(c.n, 1);
	ck_assert_str_eq(c.name[0], "provider.aws.credentials");
	ck_assert_int_eq(c.status[0], HYPERTEST_CHECK_FAILED);
	ck_assert_str_eq(c.msg[0], "incomplete AWS credentials in the environment: "
	                           "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
	ck_assert_str_eq(C.error, ""); /* the check carries it, not the core's error */
	OP(HYPERTEST_OP_DESTROY)(self);
}
END_TEST

/* ---- temporary credentials (the Lambda role's case) ------------------------------------------ */

typedef struct temp_creds {
	char akid[64], secret[128], token[256];
} temp_creds;

/* New temporary credentials, taught to endpoint.py, put in the environment. */
static void temp_credentials(temp_creds *t)
{
	static int n;
	snprintf(t->akid, sizeof t->akid, "ASIACK%dN%d", (int)getpid(), ++n);
	snprintf(t->secret, sizeof t->secret, "ck/temp+secret-%d-%d", (int)getpid(), n);
	snprintf(t->token, sizeof t->token, "ck-session/token+%d-%d=EXAMPLE//tail", (int)getpid(), n);
	json_decref(control("POST", "/credentials",
	                    "{\"%s\": {\"secret\": \"%s\", \"sessionToken\": \"%s\"}}", t->akid,
	                    t->secret, t->token));
	setenv("AWS_ACCESS_KEY_ID", t->akid, 1);
	setenv("AWS_SECRET_ACCESS_KEY", t->secret, 1);
	setenv("AWS_SESSION_TOKEN", t->token, 1);
}

/* Of the last requests whose path contains part: how many, how many authentic
 * with key akid, and how many of all carried X-Amz-Security-Token. */
static void count_requests(const char *part, const char *akid, int *all, int *ok, int *tok)
{
	json_t *reqs = control("GET", "/requests?last=500", NULL), *r;
	size_t i;
	*all = *ok = *tok = 0;
	json_array_foreach(json_object_get(reqs, "requests"), i, r) {
		const char *path = json_string_value(json_object_get(r, "path"));
		const char *key = json_string_value(json_object_get(r, "accessKeyId"));
		const char *auth = json_string_value(json_object_get(r, "auth"));
		if (!path || !strstr(path, part))
			continue;
		(*all)++;
		*ok += auth && !strcmp(auth, "ok") && key && !strcmp(key, akid);
		*tok += json_is_true(json_object_get(r, "securityToken"));
	}
	json_decref(reqs);
}

/* Invoke with a session token: every request carries it and is accepted; a
 * wrong or missing token is refused as AWS refuses it. */
START_TEST(test_session_token_invoke)
{
	enum { N = 3 };
	temp_creds t;
	char name[64];
	int all, ok, tok;
	temp_credentials(&t);
	snprintf(name, sizeof name, "%s", new_function("{\"mode\": \"success\"}"));
	void *self = create_ok(options(name, "\"maxRetries\": 0"));
	hypertest_invocation *inv = calloc(N, sizeof *inv);
	invoke_all(self, inv, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(inv[i].code == 0, "%d: %s", i, inv[i].message);
	free_invocations(inv, N);
	OP(HYPERTEST_OP_DESTROY)(self);
	count_requests(name, t.akid, &all, &ok, &tok);
	ck_assert_int_eq(all, N);
	ck_assert_int_eq(ok, N);
	ck_assert_int_eq(tok, N);

	/* a wrong token, then none: refused, each once (no retry of a refusal) */
	const char *bad[] = {"ck-wrong-session-token", NULL};
	for (int k = 0; k < 2; k++) {
		if (bad[k])
			setenv("AWS_SESSION_TOKEN", bad[k], 1);
		else
			unsetenv("AWS_SESSION_TOKEN");
		self = create_ok(options(name, "\"maxRetries\": 0"));
		inv = calloc(1, sizeof *inv);
		invoke_all(self, inv, 1);
		ck_assert_int_eq(inv[0].code, HYPERTEST_ERR_AUTH);
		ck_assert_msg(strstr(inv[0].message, "HTTP 403 UnrecognizedClientException: The security "
		                                     "token included in the request is invalid."),
		              "%s", inv[0].message);
		free_invocations(inv, 1);
		OP(HYPERTEST_OP_DESTROY)(self);
		count_requests(name, t.akid, &all, &ok, &tok);
		ck_assert_int_eq(all, N + 1 + k);
		ck_assert_int_eq(ok, N);
		ck_assert_int_eq(tok, N + 1); /* the wrong token was sent; no token, none */
	}
}
END_TEST

/* Serve one payload from stdin (the function side without the Runtime API);
 * the response's first line into out. */
static int serve_stdin(void *self, hypertest_function *fn, const char *payload, char *out,
                       size_t cap)
{
	char path[400];
	FILE *f;
	int fd, saved, rc;
	snprintf(path, sizeof path, "%s/payload-%d.json", tmpdir, fn->calls);
	f = fopen(path, "w");
	fputs(payload, f);
	fclose(f);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	dup2(fd, 0);
	close(fd);
	snprintf(path, sizeof path, "%s/out-%d.json", tmpdir, fn->calls);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	fflush(stdout);
	saved = dup(1);
	dup2(fd, 1);
	close(fd);
	unsetenv("AWS_LAMBDA_RUNTIME_API");
	rc = OP(HYPERTEST_PROVIDER_SERVE)(self, fn);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	f = fopen(path, "r");
	if (!fgets(out, (int)cap, f))
		out[0] = '\0';
	fclose(f);
	return rc;
}

/* The function side stores artifacts with the role's temporary credentials,
 * through the signature-checking S3 front; a wrong token stores nothing. */
START_TEST(test_session_token_artifacts)
{
	char art[300], path[400], payload[512], key[256], out[512], run[64];
	const char *akid0 = strdup(env("AWS_ACCESS_KEY_ID")),
	           *secret0 = strdup(env("AWS_SECRET_ACCESS_KEY"));
	temp_creds t;
	int all, ok, tok;
	snprintf(art, sizeof art, "%s/art", tmpdir);
	mkdir(art, 0700);
	snprintf(path, sizeof path, "%s/trace.txt", art);
	FILE *f = fopen(path, "w");
	fputs("stored with a session token\n", f);
	fclose(f);
	snprintf(run, sizeof run, "tok-%d", (int)getpid());
	temp_credentials(&t);
	void *self = create_ok(options("f", ""));
	hypertest_function fn = {.self = self, .artifacts_dir = art};
	snprintf(payload, sizeof payload,
	         "{\"runId\": \"%s\", \"testId\": \"good\", \"context\": {}, \"bucketName\": \"%s\"}",
	         run, env("HT_S3_BUCKET"));
	int rc = serve_stdin(self, &fn, payload, out, sizeof out);
	ck_assert_msg(rc == 0, "%s", C.error);
	ck_assert_str_eq(out, "{\"success\":true,\"name\":\"good\"}");
	OP(HYPERTEST_OP_DESTROY)(self);
	snprintf(key, sizeof key, "%s/good/trace.txt", run);
	count_requests(key, t.akid, &all, &ok, &tok);
	ck_assert_int_ge(all, 1);
	ck_assert_int_eq(ok, all);
	ck_assert_int_eq(tok, all);

	/* a wrong token: refused by the front; the artifact is reported not
	 * stored (a warning, which the core puts in the response) and the
	 * function still answers */
	setenv("AWS_SESSION_TOKEN", "ck-wrong-session-token", 1);
	self = create_ok(options("f", "\"maxRetries\": 0"));
	fn.self = self;
	snprintf(payload, sizeof payload,
	         "{\"runId\": \"%s\", \"testId\": \"bad\", \"context\": {}, \"bucketName\": \"%s\"}",
	         run, env("HT_S3_BUCKET"));
	free(C.logs);
	C.logs = NULL;
	C.logs_len = 0;
	rc = serve_stdin(self, &fn, payload, out, sizeof out);
	ck_assert_msg(rc == 0, "%s", C.error);
	ck_assert_str_eq(out, "{\"success\":true,\"name\":\"bad\"}");
	ck_assert_msg(C.logs && strstr(C.logs, "artifact trace.txt: not stored: ") &&
	                  strstr(C.logs, "HTTP 403 UnrecognizedClientException"),
	              "%s", C.logs ? C.logs : "(nothing logged)");
	OP(HYPERTEST_OP_DESTROY)(self);

	/* what is in the bucket, read with the long-term key */
	setenv("AWS_ACCESS_KEY_ID", akid0, 1);
	setenv("AWS_SECRET_ACCESS_KEY", secret0, 1);
	unsetenv("AWS_SESSION_TOKEN");
	self = create_ok(options("f", ""));
	hypertest_buffer got = {NULL, 0};
	ck_assert_msg(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &got) == 0, "%s", C.error);
	ck_assert_str_eq(got.data, "stored with a session token\n");
	free(got.data);
	snprintf(key, sizeof key, "%s/bad/trace.txt", run);
	got.data = NULL;
	got.len = 0;
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, key, &got), HYPERTEST_ERR_NOT_FOUND);
	OP(HYPERTEST_OP_DESTROY)(self);
	free((void *)akid0);
	free((void *)secret0);
}
END_TEST

/* ---- secrets ----------------------------------------------------------------------------------- */

START_TEST(test_no_secrets)
{
	const char *secret = env("AWS_SECRET_ACCESS_KEY"), *token = env("HT_ECR_PASSWORD");
	const char *fn = new_function("{\"mode\": \"functionError\"}");
	void *self = create_ok(options(fn, "\"logHttp\": true"));
	hypertest_checks c = {0};
	hypertest_params t = {0};
	hypertest_buffer out = {NULL, 0};
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_IMAGE_TARGET)(self, &t), 0);
	OP(HYPERTEST_PROVIDER_OBJECT_GET)(self, "no/such/key", &out);
	OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "ck-secret/x", "x", 1, NULL);
	hypertest_invocation *inv = calloc(1, sizeof *inv), *inv2;
	invoke_all(self, inv, 1);
	OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE)(self, "127.0.0.1:1/x:latest",
	                                       "sha256:1111111111111111111111111111111111111111111111111111111111111111");
	OP(HYPERTEST_OP_DESTROY)(self);
	/* a refused signature: the error message must not carry the secret either */
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-ck-0123456789", 1);
	self = create_ok(options(fn, "\"logHttp\": true, \"maxRetries\": 0"));
	OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "ck-secret/y", "y", 1, NULL);
	ck_assert_ptr_nonnull(strstr(C.error, "SignatureDoesNotMatch"));
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	OP(HYPERTEST_OP_DESTROY)(self);
	/* temporary credentials: the session token is sent, never logged; a wrong one neither */
	temp_creds tc;
	temp_credentials(&tc);
	self = create_ok(options(fn, "\"logHttp\": true"));
	OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "ck-secret/z", "z", 1, NULL);
	inv2 = calloc(1, sizeof *inv2);
	invoke_all(self, inv2, 1);
	memset(&c, 0, sizeof c);
	OP(HYPERTEST_OP_DOCTOR)(self, &c);
	OP(HYPERTEST_OP_DESTROY)(self);
	setenv("AWS_SESSION_TOKEN", "ck-wrong-session-token-0123456789", 1);
	self = create_ok(options(fn, "\"logHttp\": true, \"maxRetries\": 0"));
	ck_assert_int_eq(OP(HYPERTEST_PROVIDER_OBJECT_PUT)(self, "ck-secret/w", "w", 1, NULL),
	                 HYPERTEST_ERR_AUTH);
	OP(HYPERTEST_OP_DESTROY)(self);
	ck_assert_msg(strstr(C.logs, "> X-Amz-Security-Token: <redacted>"),
	              "no redacted X-Amz-Security-Token line in %zu bytes of log", C.logs_len);
	ck_assert_ptr_null(strstr(C.logs, tc.token));
	ck_assert_ptr_null(strstr(C.logs, tc.secret));
	ck_assert_ptr_null(strstr(C.logs, "ck-wrong-session-token-0123456789"));
	ck_assert_ptr_nonnull(C.logs);
	/* verbose output was on: request headers were logged, redacted */
	ck_assert_msg(strstr(C.logs, "> Authorization: <redacted>"), "%s", C.logs);
	ck_assert_ptr_null(strstr(C.logs, secret));
	ck_assert_ptr_null(strstr(C.logs, "wrong-secret-ck-0123456789"));
	ck_assert_ptr_null(strstr(C.logs, token));
	ck_assert_ptr_null(strstr(C.logs, "Signature="));
	free_invocations(inv, 1);
	free_invocations(inv2, 1);
	free(out.data);
}
END_TEST

/* ---- every request was authentic ---------------------------------------------------------- */

START_TEST(test_signatures_all_ok)
{
	json_t *reqs = control("GET", "/requests", NULL);
	size_t i, n = 0, bad = 0;
	json_t *r;
	json_t *list = json_object_get(reqs, "requests");
	ck_assert_ptr_nonnull(list);
	json_array_foreach(list, i, r) {
		const char *auth = json_string_value(json_object_get(r, "auth"));
		if (!auth || json_integer_value(json_object_get(r, "seq")) <= first_seq)
			continue; /* the control API; requests before this run */
		n++;
		if (strcmp(auth, "ok") != 0)
			bad++, fprintf(stderr, "not authentic: %s\n", json_dumps(r, JSON_COMPACT));
	}
	ck_assert_int_gt(n, 2000);
	ck_assert_int_eq(bad, 0);
	json_decref(reqs);
}
END_TEST

int main(void)
{
	if (!env("HT_AWS_ENDPOINT")) {
		services_owner = getpid();
		snprintf(services_dir, sizeof services_dir, "/tmp/ck-aws-services-%d", (int)getpid());
		if (run_services("start") != 0) {
			fprintf(stderr, "check_provider_aws: the services did not start: skipped\n");
			return 77;
		}
		char path[400];
		snprintf(path, sizeof path, "%s/env", services_dir);
		load_env(path);
		atexit(stop_services);
	}
	if (!env("HT_AWS_ENDPOINT") || !env("HT_S3_CHECKED_ENDPOINT") || !env("HT_ECR_REGISTRY")) {
		fprintf(stderr, "check_provider_aws: no endpoint.py, s3rver or registry: skipped\n");
		return 77;
	}
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_ENDPOINT_URL");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	{
		/* no ck_assert outside a test: plain libcurl */
		char url[512];
		hypertest_buffer b = {NULL, 0};
		CURL *c = curl_easy_init();
		snprintf(url, sizeof url, "%s/requests?last=1", env("HT_AWS_CONTROL"));
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
		CURLcode rc = curl_easy_perform(c);
		curl_easy_cleanup(c);
		if (rc != CURLE_OK) {
			fprintf(stderr, "check_provider_aws: %s does not answer: skipped\n", url);
			free(b.data);
			curl_global_cleanup();
			return 77;
		}
		json_t *last = b.data ? json_loads(b.data, 0, NULL) : NULL;
		json_t *r = json_array_get(json_object_get(last, "requests"), 0);
		first_seq = r ? json_integer_value(json_object_get(r, "seq")) : -1;
		json_decref(last);
		free(b.data);
	}

	Suite *s = suite_create("provider-aws");
	TCase *tc = tcase_create("aws");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_options);
	tcase_add_test(tc, test_options_config_cap);
	tcase_add_test(tc, test_payload_fields_and_url);
	tcase_add_test(tc, test_image_target);
	tcase_add_test(tc, test_objects);
	tcase_add_test(tc, test_update_success);
	tcase_add_test(tc, test_update_failed);
	tcase_add_test(tc, test_update_timeout);
	tcase_add_test(tc, test_invoke_2000);
	tcase_add_test(tc, test_invoke_warm_up);
	tcase_add_test(tc, test_invoke_throttled_retried);
	tcase_add_test(tc, test_invoke_budget_spent);
	tcase_add_test(tc, test_invoke_function_error);
	tcase_add_test(tc, test_invoke_cancel);
	tcase_add_test(tc, test_invoke_oversize);
	tcase_add_test(tc, test_serve_stdin);
	tcase_add_test(tc, test_serve_runtime_api);
	tcase_add_test(tc, test_serve_init_error);
	tcase_add_test(tc, test_serve_core_init_error);
	tcase_add_test(tc, test_doctor);
	/* before test_no_secrets, which signs with a wrong secret on purpose */
	tcase_add_test(tc, test_signatures_all_ok);
	/* these send refused tokens and secrets on purpose */
	tcase_add_test(tc, test_session_token_invoke);
	tcase_add_test(tc, test_session_token_artifacts);
	tcase_add_test(tc, test_no_secrets);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
