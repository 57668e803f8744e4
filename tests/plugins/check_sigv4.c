/*
 * check_sigv4.c - tests of the aws provider's Signature Version 4 signer
 * (plugins/provider-aws/sigv4.c):
 *
 *  - every case of the AWS SigV4 test suite (shared/aws-sigv4-testsuite/v4,
 *    or the folder named by HYPERTEST_SIGV4_SUITE), signed in the header and
 *    the query form, compared byte for byte with the canonical request,
 *    string to sign, signature and signed request of the case;
 *  - ~30 random requests signed by botocore (aws-sigv4-botocore.py) and by
 *    us, Authorization headers compared (skipped without python3/botocore;
 *    HT_SIGV4_SEED picks the seed);
 *  - the helpers: URI encoding, path handling, payload choices.
 *
 * Without the suite the program says why and exits 77 (skip).
 */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sigv4.h"

extern char **environ;

static char *suite_dir;

/* ---- small file helpers ----------------------------------------------------- */

static char *read_file(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	FILE *f;
	htp_buf b = {0};
	char chunk[8192];
	size_t n;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		htp_buf_add(&b, chunk, n);
	fclose(f);
	if (len)
		*len = b.len;
	return htp_buf_take(&b);
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *find_suite(void)
{
	const char *env = getenv("HYPERTEST_SIGV4_SUITE");
	const char *top = getenv("HT_TOP_SRCDIR");
	char p[4096];
	static const char *const rel[] = {"/../shared/aws-sigv4-testsuite/v4",
	                                  "/../../shared/aws-sigv4-testsuite/v4", NULL};
	size_t i;
	if (env && *env) {
		if (is_dir(env))
			return strdup(env);
		fprintf(stderr, "check_sigv4: HYPERTEST_SIGV4_SUITE=%s is not a directory\n", env);
		return NULL;
	}
#ifdef HT_TOP_SRCDIR
	if (!top || !*top)
		top = HT_TOP_SRCDIR;
#endif
	if (!top || !*top) {
		fprintf(stderr, "check_sigv4: neither HYPERTEST_SIGV4_SUITE nor HT_TOP_SRCDIR is set\n");
		return NULL;
	}
	for (i = 0; rel[i]; i++) {
		snprintf(p, sizeof p, "%s%s", top, rel[i]);
		if (is_dir(p))
			return strdup(p);
	}
	fprintf(stderr,
	        "check_sigv4: no SigV4 test suite: tried %s/../shared/aws-sigv4-testsuite/v4 and "
	        "%s/../../shared/aws-sigv4-testsuite/v4 (set HYPERTEST_SIGV4_SUITE)\n",
	        top, top);
	return NULL;
}

/* ---- request.txt ---------------------------------------------------------- */

typedef struct raw_request {
	char *method, *path, *query, *version;
	aws_headers headers; /* values as written (not trimmed) */
	htp_buf raw_headers; /* the header lines exactly as written, each + "\n" */
	char *body;
	size_t body_len;
} raw_request;

static void raw_request_free(raw_request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	free(r->version);
	aws_headers_free(&r->headers);
	htp_buf_free(&r->raw_headers);
	free(r->body);
}

/* Request line, header lines (a line starting with a blank continues the
 * previous value), a blank line, the body.  Returns 0 or -1. */
static int parse_request(const char *text, size_t len, raw_request *r)
{
	const char *p = text, *end = text + len, *eol, *sp1, *sp2, *q;
	memset(r, 0, sizeof *r);
	eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	for (sp2 = eol; sp2 > p && sp2[-1] != ' '; sp2--)
		;
	if (!sp1 || sp2 <= sp1 + 1)
		return -1;
	sp2--;
	r->method = strndup(p, (size_t)(sp1 - p));
	r->version = strndup(sp2 + 1, (size_t)(eol - sp2 - 1));
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	r->path = strndup(sp1 + 1, (size_t)((q ? q : sp2) - sp1 - 1));
	r->query = q ? strndup(q + 1, (size_t)(sp2 - q - 1)) : NULL;
	p = eol < end ? eol + 1 : end;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		if (eol == p) { /* blank line: the body follows */
			p++;
			break;
		}
		htp_buf_add(&r->raw_headers, p, (size_t)(eol - p));
		htp_buf_str(&r->raw_headers, "\n");
		if ((*p == ' ' || *p == '\t') && r->headers.n) {
			aws_header *h = &r->headers.v[r->headers.n - 1];
			htp_buf v = {0};
			htp_buf_str(&v, h->value);
			htp_buf_str(&v, " ");
			htp_buf_add(&v, p, (size_t)(eol - p));
			free(h->value);
			h->value = htp_buf_take(&v);
		} else {
			const char *colon = memchr(p, ':', (size_t)(eol - p));
			char *name, *value;
			if (!colon)
				return -1;
			name = strndup(p, (size_t)(colon - p));
			value = strndup(colon + 1, (size_t)(eol - colon - 1));
			aws_headers_add(&r->headers, name, value);
			free(name);
			free(value);
		}
		p = eol < end ? eol + 1 : end;
	}
	r->body_len = (size_t)(end - p);
	r->body = malloc(r->body_len + 1);
	memcpy(r->body, p, r->body_len);
	r->body[r->body_len] = '\0';
	return 0;
}

static time_t parse_iso(const char *s)
{
	struct tm tm = {0};
	if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return (time_t)-1;
	return timegm(&tm);
}

/* ---- one case of the suite ------------------------------------------------- */

static void compare(htp_buf *report, const char *casename, const char *what,
                    const char *expected, const char *got, int *bad)
{
	if (!expected) {
		htp_buf_addf(report, "%s: %s: expected file missing\n", casename, what);
		(*bad)++;
		return;
	}
	if (!got || strcmp(expected, got) != 0) {
		htp_buf_addf(report, "%s: %s differs:\n--- expected\n%s\n--- got\n%s\n", casename,
		             what, expected, got ? got : "(null)");
		(*bad)++;
	}
}

static int run_case(const char *name, htp_buf *report)
{
	char dir[4096], *ctxtext, *reqtext, file[256];
	size_t reqlen;
	json_t *ctx;
	json_error_t jerr;
	raw_request r;
	aws_sigv4_params p;
	int bad = 0, form;

	snprintf(dir, sizeof dir, "%s/%s", suite_dir, name);
	ctxtext = read_file(dir, "context.json", NULL);
	reqtext = read_file(dir, "request.txt", &reqlen);
	if (!ctxtext || !reqtext) {
		htp_buf_addf(report, "%s: context.json or request.txt missing\n", name);
		free(ctxtext);
		free(reqtext);
		return 1;
	}
	ctx = json_loads(ctxtext, 0, &jerr);
	if (!ctx || parse_request(reqtext, reqlen, &r) < 0) {
		htp_buf_addf(report, "%s: cannot parse context.json or request.txt\n", name);
		json_decref(ctx);
		free(ctxtext);
		free(reqtext);
		return 1;
	}

	memset(&p, 0, sizeof p);
	aws_sigv4_defaults(&p, json_string_value(json_object_get(ctx, "service")));
	p.access_key_id = json_string_value(
	    json_object_get(json_object_get(ctx, "credentials"), "access_key_id"));
	p.secret_access_key = json_string_value(
	    json_object_get(json_object_get(ctx, "credentials"), "secret_access_key"));
	p.session_token =
	    json_string_value(json_object_get(json_object_get(ctx, "credentials"), "token"));
	p.region = json_string_value(json_object_get(ctx, "region"));
	p.time = parse_iso(json_string_value(json_object_get(ctx, "timestamp")));
	p.normalize_path = json_is_true(json_object_get(ctx, "normalize"));
	p.omit_session_token = json_is_true(json_object_get(ctx, "omit_session_token"));
	p.content_sha256_header = json_is_true(json_object_get(ctx, "sign_body"));
	p.expires = (long)json_integer_value(json_object_get(ctx, "expiration_in_seconds"));

	for (form = AWS_SIGV4_HEADER; form <= AWS_SIGV4_QUERY; form++) {
		const char *prefix = form == AWS_SIGV4_HEADER ? "header" : "query";
		aws_sigv4_request req = {r.method, r.path, r.query, &r.headers, r.body, r.body_len};
		aws_sigv4_result res;
		char *err = NULL;
		htp_buf sreq = {0};
		char *exp;
		size_t i;

		if (aws_sigv4_sign(&p, &req, form, &res, &err) != 0) {
			htp_buf_addf(report, "%s: %s form: %s\n", name, prefix, aws_msg(err));
			free(err);
			bad++;
			continue;
		}
		snprintf(file, sizeof file, "%s-canonical-request.txt", prefix);
		exp = read_file(dir, file, NULL);
		compare(report, name, file, exp, res.canonical_request, &bad);
		free(exp);
		snprintf(file, sizeof file, "%s-string-to-sign.txt", prefix);
		exp = read_file(dir, file, NULL);
		compare(report, name, file, exp, res.string_to_sign, &bad);
		free(exp);
		snprintf(file, sizeof file, "%s-signature.txt", prefix);
		exp = read_file(dir, file, NULL);
		compare(report, name, file, exp, res.signature, &bad);
		free(exp);

		if (form == AWS_SIGV4_HEADER) {
			htp_buf_addf(&sreq, "%s %s%s%s %s\n", r.method, r.path, r.query ? "?" : "",
			             r.query ? r.query : "", r.version);
			htp_buf_str(&sreq, r.raw_headers.data ? r.raw_headers.data : "");
			for (i = 0; i < res.add_headers.n; i++)
				htp_buf_addf(&sreq, "%s:%s\n", res.add_headers.v[i].name,
				             res.add_headers.v[i].value);
		} else {
			htp_buf_addf(&sreq, "%s %s?%s %s\n", r.method, r.path, res.query, r.version);
			htp_buf_str(&sreq, r.raw_headers.data ? r.raw_headers.data : "");
		}
		htp_buf_str(&sreq, "\n");
		htp_buf_add(&sreq, r.body, r.body_len);
		snprintf(file, sizeof file, "%s-signed-request.txt", prefix);
		exp = read_file(dir, file, NULL);
		compare(report, name, file, exp, sreq.data, &bad);
		free(exp);
		htp_buf_free(&sreq);
		aws_sigv4_result_free(&res);
		free(err);
	}
	raw_request_free(&r);
	json_decref(ctx);
	free(ctxtext);
	free(reqtext);
	return bad;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_suite_cases)
{
	DIR *d = opendir(suite_dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, i, failed = 0;
	htp_buf report = {0};
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char p[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", suite_dir, e->d_name);
		if (!is_dir(p))
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, name_cmp);
	ck_assert_msg(n > 0, "no case folders in %s", suite_dir);
	for (i = 0; i < n; i++) {
		if (run_case(names[i], &report))
			failed++;
		free(names[i]);
	}
	free(names);
	if (failed)
		fprintf(stderr, "%s", report.data);
	ck_assert_msg(failed == 0, "%zu of %zu SigV4 cases failed (details above)", failed, n);
	fprintf(stderr, "check_sigv4: %zu suite cases passed in both forms\n", n);
	htp_buf_free(&report);
}
END_TEST

/* ---- unit tests of the helpers ------------------------------------------------- */

static char *encode(const char *s, int keep_slash)
{
	htp_buf b = {0};
	aws_uri_encode(&b, s, strlen(s), keep_slash);
	return htp_buf_take(&b);
}

START_TEST(test_uri_encode)
{
	char *s = encode("a b/c~d%e+f=\xe1\x88\xb4-_.", 0);
	ck_assert_str_eq(s, "a%20b%2Fc~d%25e%2Bf%3D%E1%88%B4-_.");
	free(s);
	s = encode("/a b/c", 1);
	ck_assert_str_eq(s, "/a%20b/c");
	free(s);
	{
		htp_buf b = {0};
		aws_uri_decode(&b, "%E1%88%b4+%zz%4", 15);
		ck_assert_str_eq(b.data, "\xe1\x88\xb4+%zz%4");
		htp_buf_free(&b);
	}
}
END_TEST

/* Sign a GET of path?query at host, return the canonical request. */
static char *canon(const char *service, const char *path, const char *query,
                   const char *payload_hash)
{
	aws_headers h = {0};
	aws_sigv4_params p = {0};
	aws_sigv4_result res;
	char *err = NULL;
	char *cr;
	aws_headers_add(&h, "Host", "example.com");
	aws_sigv4_defaults(&p, service);
	p.access_key_id = "AKID";
	p.secret_access_key = "SECRET";
	p.region = "eu-west-1";
	p.time = 1440938160;
	p.payload_hash = payload_hash;
	aws_sigv4_request req = {"GET", path, query, &h, NULL, 0};
	ck_assert_int_eq(aws_sigv4_sign(&p, &req, AWS_SIGV4_HEADER, &res, &err), 0);
	cr = strdup(res.canonical_request);
	aws_sigv4_result_free(&res);
	aws_headers_free(&h);
	free(err);
	return cr;
}

START_TEST(test_path_by_service)
{
	/* lambda: normalized, encoded once more; s3: as given */
	char *a = canon("lambda", "/a/./b/../c//d%20e/", NULL, NULL);
	char *b = canon("s3", "/a/./b/../c//d%20e/", NULL, NULL);
	ck_assert_ptr_nonnull(strstr(a, "GET\n/a/c/d%2520e/\n"));
	ck_assert_ptr_nonnull(strstr(b, "GET\n/a/./b/../c//d%20e/\n"));
	/* s3 signs x-amz-content-sha256 */
	ck_assert_ptr_nonnull(strstr(b, "x-amz-content-sha256:e3b0c442"));
	ck_assert_ptr_null(strstr(a, "x-amz-content-sha256"));
	free(a);
	free(b);
}
END_TEST

START_TEST(test_query_and_payload)
{
	char *a = canon("s3", "/k", "b=2&a=&c&a=1&%7E=x+y", AWS_UNSIGNED_PAYLOAD);
	ck_assert_ptr_nonnull(strstr(a, "\na=&a=1&b=2&c=&~=x%2By\n"));
	ck_assert_ptr_nonnull(strstr(a, "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"));
	ck_assert_str_eq(a + strlen(a) - strlen("\nUNSIGNED-PAYLOAD"), "\nUNSIGNED-PAYLOAD");
	free(a);
}
END_TEST

START_TEST(test_given_content_sha256)
{
	aws_headers h = {0};
	aws_sigv4_params p = {0};
	aws_sigv4_result res;
	char *err = NULL;
	size_t i, n = 0;
	aws_headers_add(&h, "Host", "example.com");
	aws_headers_add(&h, "X-Amz-Content-SHA256", "abc123");
	aws_sigv4_defaults(&p, "s3");
	p.access_key_id = "AKID";
	p.secret_access_key = "SECRET";
	p.region = "eu-west-1";
	p.session_token = "TOKEN";
	aws_sigv4_request req = {"PUT", "/x", NULL, &h, "body", 4};
	ck_assert_int_eq(aws_sigv4_sign(&p, &req, AWS_SIGV4_HEADER, &res, &err), 0);
	ck_assert_str_eq(res.canonical_request + strlen(res.canonical_request) - 7, "\nabc123");
	for (i = 0; i < res.add_headers.n; i++)
		if (strcasecmp(res.add_headers.v[i].name, "x-amz-content-sha256") == 0)
			n++;
	ck_assert_int_eq(n, 0); /* not added twice */
	ck_assert_str_eq(aws_headers_get(&res.add_headers, "X-Amz-Security-Token"), "TOKEN");
	ck_assert_ptr_nonnull(strstr(res.canonical_request, "x-amz-security-token:TOKEN\n"));
	aws_sigv4_result_free(&res);
	/* no Host: refused */
	aws_headers_remove(&h, "host");
	ck_assert_int_eq(aws_sigv4_sign(&p, &req, AWS_SIGV4_HEADER, &res, &err),
	                 HYPERTEST_ERR_INVALID);
	aws_headers_free(&h);
	free(err);
}
END_TEST

/* ---- botocore cross-check -------------------------------------------------------- */

static unsigned long long rng_state;

static unsigned rnd(unsigned n)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)((rng_state >> 33) % n);
}

static void random_text(htp_buf *b, const char *const *alphabet, size_t nalpha, unsigned maxlen)
{
	unsigned i, n = rnd(maxlen + 1);
	for (i = 0; i < n; i++)
		htp_buf_str(b, alphabet[rnd((unsigned)nalpha)]);
}

static const char *const path_chars[] = {"a", "Z", "0", " ", "%", "~", "+", "=", "&", "-",
                                         "_", "!", "'", "(", "*", ":", "@", ",", "$",
                                         "\xc3\xa9", "\xe1\x88\xb4", "\xf0\x9f\x98\x80"};
static const char *const value_chars[] = {"a", "B", "9", " ", "  ", "\t", "   ", "-", ",", ";",
                                          "\"", "/", "=", "%", "~", ":"};

/* Run the helper with json on stdin; returns its stdout or NULL; *status is
 * its exit status. */
static char *run_helper(const char *script, const char *json, int *status)
{
	int in[2], out[2], st;
	pid_t pid;
	posix_spawn_file_actions_t fa;
	char *argv[] = {(char *)"python3", (char *)script, NULL};
	htp_buf b = {0};
	size_t off = 0, len = strlen(json);
	char chunk[4096];
	ssize_t n;

	*status = -1;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (posix_spawnp(&pid, "python3", &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		return NULL;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	signal(SIGPIPE, SIG_IGN);
	while (off < len && (n = write(in[1], json + off, len - off)) > 0)
		off += (size_t)n;
	close(in[1]);
	while ((n = read(out[0], chunk, sizeof chunk)) > 0)
		htp_buf_add(&b, chunk, (size_t)n);
	close(out[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return htp_buf_take(&b);
}

static char *helper_path(void)
{
	const char *dir = getenv("HT_TESTS_SRCDIR");
	char p[4096];
#ifdef HT_TESTS_SRCDIR
	if (!dir || !*dir)
		dir = HT_TESTS_SRCDIR;
#endif
	if (!dir || !*dir)
		dir = ".";
	snprintf(p, sizeof p, "%s/plugins/aws-sigv4-botocore.py", dir);
	return strdup(p);
}

static const char *const services[] = {"lambda", "s3", "ecr", "servicequotas"};
static const char *const regions[] = {"us-east-1", "eu-central-1", "ap-southeast-2",
                                      "cn-north-1"};
static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};
static const char *const qkeys[] = {"a", "A", "list-type", "x y", "prefix", "k\xc3\xa9",
                                    "~t", "a-b", "a.b"};

#define NRANDOM 30

typedef struct signed_req {
	char *what;      /* service method url */
	char *auth;      /* our Authorization header */
	char *canonical; /* our canonical request */
} signed_req;

static void base64_add(htp_buf *out, const unsigned char *d, size_t len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t k;
	for (k = 0; k < len; k += 3) {
		unsigned v = (unsigned)d[k] << 16;
		char o[4];
		if (k + 1 < len)
			v |= (unsigned)d[k + 1] << 8;
		if (k + 2 < len)
			v |= d[k + 2];
		o[0] = tbl[(v >> 18) & 63];
		o[1] = tbl[(v >> 12) & 63];
		o[2] = k + 1 < len ? tbl[(v >> 6) & 63] : '=';
		o[3] = k + 2 < len ? tbl[v & 63] : '=';
		htp_buf_add(out, o, 4);
	}
	htp_buf_str(out, "");
}

/* One random request: signed by us into *sr, described for botocore. */
static json_t *random_request(signed_req *sr)
{
	const char *service = services[rnd(4)];
	const char *region = regions[rnd(4)];
	const char *method = methods[rnd(5)];
	const char *host = rnd(2) ? "example.amazonaws.com" : "127.0.0.1:4568";
	int https = host[0] == 'e';
	htp_buf raw = {0}, path = {0}, query = {0}, url = {0}, body = {0}, b64 = {0}, what = {0};
	aws_headers h = {0};
	json_t *spec, *jh;
	char date[17];
	unsigned j, nseg, nq, nh, n;
	aws_sigv4_params p = {0};
	aws_sigv4_result res;
	char *err = NULL;
	time_t t = (time_t)(1420070400 + rnd(500000000));

	/* path: segments with spaces, unicode, %, ~, dots, empty ones */
	nseg = 1 + rnd(4);
	for (j = 0; j < nseg; j++) {
		unsigned kind = rnd(10);
		htp_buf_str(&raw, "/");
		if (kind == 0)
			htp_buf_str(&raw, ".");
		else if (kind == 1)
			htp_buf_str(&raw, "..");
		else if (kind != 2)
			random_text(&raw, path_chars, sizeof path_chars / sizeof *path_chars, 8);
	}
	if (rnd(3) == 0)
		htp_buf_str(&raw, "/");
	aws_uri_encode(&path, raw.data, raw.len, 1);
	/* query: repeated keys, empty values, keys without '=' */
	nq = rnd(6);
	for (j = 0; j < nq; j++) {
		const char *k = qkeys[rnd(sizeof qkeys / sizeof *qkeys)];
		htp_buf v = {0};
		random_text(&v, path_chars, sizeof path_chars / sizeof *path_chars, 6);
		if (j)
			htp_buf_str(&query, "&");
		aws_uri_encode(&query, k, strlen(k), 0);
		if (rnd(5)) {
			htp_buf_str(&query, "=");
			aws_uri_encode(&query, v.data ? v.data : "", v.len, 0);
		}
		htp_buf_free(&v);
	}
	htp_buf_addf(&url, "%s://%s%s%s%s", https ? "https" : "http", host, path.data,
	             nq ? "?" : "", nq ? query.data : "");
	/* headers: runs of blanks, repeated names */
	aws_headers_add(&h, "Host", host);
	nh = rnd(5);
	for (j = 0; j < nh; j++) {
		htp_buf v = {0};
		char name[32];
		snprintf(name, sizeof name, "X-Test-%u", rnd(3));
		random_text(&v, value_chars, sizeof value_chars / sizeof *value_chars, 12);
		htp_buf_str(&v, "v");
		if (rnd(2))
			htp_buf_str(&v, "   ");
		aws_headers_add(&h, name, v.data);
		htp_buf_free(&v);
	}
	if (rnd(2))
		aws_headers_add(&h, "Content-Type", "application/json;  charset=utf-8");
	n = rnd(3) ? rnd(300) : 0;
	for (j = 0; j < n; j++) {
		char c = (char)rnd(256);
		htp_buf_add(&body, &c, 1);
	}

	aws_sigv4_defaults(&p, service);
	p.access_key_id = "AKIDRANDOM";
	/* a secret longer than HMAC's block once "AWS4" is put before it, and
	 * so hashed first, one time in three */
	p.secret_access_key = rnd(3)
	                          ? "s3cr3t/KEY+example"
	                          : "a-secret-access-key-longer-than-the-64-bytes-of-a-SHA-256-block/"
	                            "+0123456789";
	p.session_token = rnd(2) ? "TOKEN/with+chars==" : NULL;
	p.region = region;
	p.time = t;
	aws_sigv4_request req = {method, path.data, nq ? query.data : NULL, &h, body.data,
	                         body.len};
	ck_assert_int_eq(aws_sigv4_sign(&p, &req, AWS_SIGV4_HEADER, &res, &err), 0);
	sr->auth = strdup(aws_headers_get(&res.add_headers, "Authorization"));
	sr->canonical = strdup(res.canonical_request);
	htp_buf_addf(&what, "%s %s %s", service, method, url.data);
	sr->what = htp_buf_take(&what);

	aws_amz_date(t, date);
	spec = json_object();
	json_object_set_new(spec, "method", json_string(method));
	json_object_set_new(spec, "url", json_string(url.data));
	jh = json_array();
	for (j = 1; j < h.n; j++) /* not Host: botocore derives it from the URL */
		json_array_append_new(jh, json_pack("[ss]", h.v[j].name, h.v[j].value));
	json_object_set_new(spec, "headers", jh);
	base64_add(&b64, (const unsigned char *)body.data, body.len);
	json_object_set_new(spec, "body_b64", json_string(b64.data));
	json_object_set_new(spec, "service", json_string(service));
	json_object_set_new(spec, "region", json_string(region));
	json_object_set_new(spec, "access_key", json_string(p.access_key_id));
	json_object_set_new(spec, "secret_key", json_string(p.secret_access_key));
	json_object_set_new(spec, "token",
	                    p.session_token ? json_string(p.session_token) : json_null());
	json_object_set_new(spec, "timestamp", json_string(date));

	aws_sigv4_result_free(&res);
	aws_headers_free(&h);
	htp_buf_free(&raw);
	htp_buf_free(&path);
	htp_buf_free(&query);
	htp_buf_free(&url);
	htp_buf_free(&body);
	htp_buf_free(&b64);
	free(err);
	return spec;
}

START_TEST(test_botocore_random)
{
	char *script = helper_path(), *json, *out;
	const char *seedenv = getenv("HT_SIGV4_SEED");
	unsigned long long seed =
	    seedenv ? strtoull(seedenv, NULL, 0) : (unsigned long long)time(NULL);
	signed_req sr[NRANDOM];
	json_t *specs = json_array(), *answers;
	json_error_t jerr;
	int i, status, mismatches = 0;
	htp_buf report = {0};

	rng_state = seed;
	fprintf(stderr, "check_sigv4: botocore cross-check, seed %llu (HT_SIGV4_SEED)\n", seed);
	for (i = 0; i < NRANDOM; i++)
		json_array_append_new(specs, random_request(&sr[i]));
	json = json_dumps(specs, JSON_COMPACT);
	out = run_helper(script, json, &status);
	if (!out || status == 77 || status == 127 || status == -1) {
		fprintf(stderr, "check_sigv4: botocore cross-check skipped: python3 or botocore "
		                "missing (status %d)\n", status);
	} else {
		ck_assert_msg(status == 0, "%s failed (status %d)", script, status);
		answers = json_loads(out, 0, &jerr);
		ck_assert_msg(json_is_array(answers) && json_array_size(answers) == NRANDOM,
		              "unexpected helper output: %s", out);
		for (i = 0; i < NRANDOM; i++) {
			json_t *a = json_array_get(answers, (size_t)i);
			const char *auth = json_string_value(json_object_get(a, "authorization"));
			if (!auth || strcmp(auth, sr[i].auth) != 0) {
				mismatches++;
				htp_buf_addf(&report,
				             "request %d (%s):\n--- botocore\n%s\n%s\n--- ours\n%s\n%s\n", i,
				             sr[i].what, auth ? auth : "(none)",
				             json_string_value(json_object_get(a, "canonical_request")),
				             sr[i].auth, sr[i].canonical);
			}
		}
		json_decref(answers);
		if (mismatches) /* the details are too long for Check's message */
			fprintf(stderr, "%s", report.data);
		ck_assert_msg(mismatches == 0,
		              "seed %llu: %d of %d requests differ from botocore (details above)", seed,
		              mismatches, NRANDOM);
		fprintf(stderr, "check_sigv4: %d random requests agree with botocore\n", NRANDOM);
	}
	for (i = 0; i < NRANDOM; i++) {
		free(sr[i].what);
		free(sr[i].auth);
		free(sr[i].canonical);
	}
	json_decref(specs);
	free(json);
	free(out);
	htp_buf_free(&report);
	free(script);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sigv4");
	TCase *tc = tcase_create("suite");
	SRunner *sr;
	int failed;

	suite_dir = find_suite();
	if (!suite_dir)
		return 77;
	tcase_add_test(tc, test_suite_cases);
	suite_add_tcase(s, tc);
	tc = tcase_create("helpers");
	tcase_add_test(tc, test_uri_encode);
	tcase_add_test(tc, test_path_by_service);
	tcase_add_test(tc, test_query_and_payload);
	tcase_add_test(tc, test_given_content_sha256);
	suite_add_tcase(s, tc);
	tc = tcase_create("botocore");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_botocore_random);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free(suite_dir);
	return failed ? 1 : 0;
}
