/*
 * check_s3.c - tests of the aws provider's S3 operations
 * (plugins/provider-aws/s3.c) against an S3-compatible server such as
 * s3rver 3: put/get round trips with content types, a missing key, a
 * multipart upload of a 20 MiB file, a directory upload, a listing (keys
 * that need escaping in XML and URLs), GetObject's cap (64 MiB, on the
 * Content-Length of a real object and on a chunked answer), and an error
 * answer parsed into code and message (a bucket that does not exist).
 *
 * HT_S3_ENDPOINT (http://127.0.0.1:PORT) and HT_S3_BUCKET name the server
 * and an existing bucket; without them the program exits 77 (skip).
 * Credentials: HT_S3_ACCESS_KEY_ID / HT_S3_SECRET_ACCESS_KEY, default
 * S3RVER / S3RVER (s3rver's).
 */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws-sigv4-httpd.h"
#include "s3.h"

static const char *endpoint_url, *bucket;
static aws_credentials creds;
static aws_endpoint ep;
static aws_http *http;
static char tmpdir[256], run[64];

/* What the http layer logged (one line per request at least). */
static htp_buf logged;

static void log_cb(void *ud, int level, const char *msg)
{
	(void)ud;
	(void)level;
	htp_buf_addf(&logged, "%s\n", msg);
}

static int count_lines(const char *needle1, const char *needle2)
{
	const char *p = logged.data;
	int n = 0;
	while (p && *p) {
		const char *e = strchr(p, '\n');
		char *line = strndup(p, e ? (size_t)(e - p) : strlen(p));
		if (strstr(line, needle1) && strstr(line, needle2))
			n++;
		free(line);
		p = e ? e + 1 : NULL;
	}
	return n;
}

static void setup(void)
{
	aws_endpoints_options o = {"us-east-1", {NULL}, 0};
	char *err = NULL;
	const char *k = getenv("HT_S3_ACCESS_KEY_ID"), *s = getenv("HT_S3_SECRET_ACCESS_KEY");
	/* the services' environment (tests/services/aws/services.sh) names its key pair */
	if (!k || !s) {
		k = getenv("AWS_ACCESS_KEY_ID");
		s = getenv("AWS_SECRET_ACCESS_KEY");
	}
	memset(&creds, 0, sizeof creds);
	creds.access_key_id = strdup(k ? k : "S3RVER");
	creds.secret_access_key = strdup(s ? s : "S3RVER");
	creds.region = strdup("us-east-1");
	o.overrides[AWS_SVC_S3] = endpoint_url;
	ck_assert_msg(aws_endpoint_resolve(&ep, AWS_SVC_S3, &o, &err) == 0, "%s", aws_msg(err));
	ck_assert_int_eq(ep.path_style, 1); /* an IP address */
	{
		aws_http_config cfg = {0};
		cfg.max_response = (size_t)64 << 20; /* the 20 MiB object comes back whole */
		cfg.log = log_cb;
		http = aws_http_new(&cfg, &err);
	}
	ck_assert_ptr_nonnull(http);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/check-s3-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	/* keys unique per run: the server may keep objects between runs */
	snprintf(run, sizeof run, "run-%ld-%d", (long)time(NULL), (int)getpid());
	free(err);
}

static void teardown(void)
{
	aws_http_free(http);
	aws_endpoint_free(&ep);
	aws_credentials_free(&creds);
	{
		static const char *const dirs[] = {"/art/sub/deep", "/art/sub", "/art", ""};
		char p[600];
		size_t i;
		for (i = 0; i < 4; i++) {
			snprintf(p, sizeof p, "%s%s", tmpdir, dirs[i]);
			rmdir(p);
		}
	}
}

static char *key_of(const char *name)
{
	static char k[512];
	snprintf(k, sizeof k, "%s/%s", run, name);
	return k;
}

/* A GET through the http layer, to look at response headers. */
static void raw_get(const char *key, aws_http_response *resp)
{
	aws_s3 s;
	aws_http_request r;
	char *err = NULL;
	char *url;
	aws_s3_init(&s, http, &creds, &ep, bucket);
	url = aws_s3_url(&ep, bucket, key, NULL);
	aws_http_request_init(&r, "GET", url, "raw GET");
	r.sign = aws_http_sign_sigv4;
	r.sign_ud = &s.sig;
	ck_assert_msg(aws_http_perform(http, &r, resp, &err) == 0, "%s", aws_msg(err));
	aws_http_request_clear(&r);
	free(url);
	free(err);
}

struct listed {
	char keys[8][256];
	long long sizes[8];
	int n;
};

static int on_listed(void *ud, const char *key, long long size)
{
	struct listed *l = ud;
	ck_assert_int_lt(l->n, 8);
	snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
	l->sizes[l->n++] = size;
	return 0;
}

START_TEST(test_list)
{
	static const char *const names[] = {"list/a&b <c>.txt", "list/d\"e'f.log", "list/sub/g h",
	                                    "list/i+j%k", "list/l"};
	aws_s3 s;
	char *err = NULL;
	struct listed l;
	char want[512];
	int i, j;

	aws_s3_init(&s, http, &creds, &ep, bucket);
	for (i = 0; i < 5; i++)
		ck_assert_msg(aws_s3_put(&s, key_of(names[i]), "12345", (size_t)i + 1, NULL, &err) == 0,
		              "%s", aws_msg(err));
	/* an object beside the prefix is not listed */
	ck_assert_int_eq(aws_s3_put(&s, key_of("listx"), "x", 1, NULL, &err), 0);
	/* (one page: s3rver 3 answers 500 to a truncated ListObjectsV2 page;
	 * continuation is tested against the small server below) */
	memset(&l, 0, sizeof l);
	snprintf(want, sizeof want, "%s/list/", run);
	ck_assert_msg(aws_s3_list(&s, want, on_listed, &l, &err) == 0, "%s", aws_msg(err));
	ck_assert_int_eq(l.n, 5);
	for (i = 0; i < 5; i++) {
		int found = 0;
		snprintf(want, sizeof want, "%s/%s", run, names[i]);
		for (j = 0; j < l.n; j++)
			if (strcmp(l.keys[j], want) == 0) {
				ck_assert_int_eq(l.sizes[j], i + 1);
				found = 1;
			}
		ck_assert_msg(found, "%s not listed", want);
	}
	/* an empty prefix below the run: nothing */
	memset(&l, 0, sizeof l);
	snprintf(want, sizeof want, "%s/nothing/", run);
	ck_assert_int_eq(aws_s3_list(&s, want, on_listed, &l, &err), 0);
	ck_assert_int_eq(l.n, 0);
	free(err);
}
END_TEST

START_TEST(test_put_get)
{
	aws_s3 s;
	char *err = NULL;
	htp_buf out = {0};
	aws_http_response resp;
	const char body[] = "{\"hello\": \"world\", \"bin\": \"\x01\x02\xff\"}";
	aws_s3_init(&s, http, &creds, &ep, bucket);
	ck_assert_msg(aws_s3_put(&s, key_of("dir/a b+c.json"), body, sizeof body - 1,
	                         "application/json", &err) == 0,
	              "%s", aws_msg(err));
	ck_assert_msg(aws_s3_get(&s, key_of("dir/a b+c.json"), &out, &err) == 0, "%s", aws_msg(err));
	ck_assert_uint_eq(out.len, sizeof body - 1);
	ck_assert_int_eq(memcmp(out.data, body, out.len), 0);
	htp_buf_free(&out);
	raw_get(key_of("dir/a b+c.json"), &resp);
	ck_assert_str_eq(aws_headers_get(&resp.headers, "Content-Type"), "application/json");
	aws_http_response_clear(&resp);
	/* an empty object */
	ck_assert_int_eq(aws_s3_put(&s, key_of("empty"), "", 0, NULL, &err), 0);
	ck_assert_int_eq(aws_s3_get(&s, key_of("empty"), &out, &err), 0);
	ck_assert_uint_eq(out.len, 0);
	htp_buf_free(&out);
	free(err);
}
END_TEST

START_TEST(test_missing_key)
{
	aws_s3 s;
	char *err = NULL;
	htp_buf out = {0};
	aws_s3_init(&s, http, &creds, &ep, bucket);
	ck_assert_int_eq(aws_s3_get(&s, key_of("no/such/key"), &out, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(aws_msg(err), "S3 GetObject s3://") && strstr(aws_msg(err), "HTTP 404 NoSuchKey"),
	              "%s", aws_msg(err));
	htp_buf_free(&out);
	free(err);
}
END_TEST

START_TEST(test_no_such_bucket)
{
	aws_s3 s;
	char *err = NULL;
	htp_buf out = {0};
	aws_s3_init(&s, http, &creds, &ep, "no-such-bucket-hypertest");
	ck_assert_int_eq(aws_s3_put(&s, "k", "x", 1, NULL, &err), HYPERTEST_ERR_PROVIDER);
	ck_assert_msg(strstr(aws_msg(err),
	                     "S3 PutObject s3://no-such-bucket-hypertest/k: HTTP 404 NoSuchBucket: "),
	              "%s", aws_msg(err));
	ck_assert_int_eq(aws_s3_get(&s, "k", &out, &err), HYPERTEST_ERR_PROVIDER);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "NoSuchBucket"));
	htp_buf_free(&out);
	free(err);
}
END_TEST

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
}

START_TEST(test_multipart)
{
	enum { SIZE = 20 << 20 };
	aws_s3 s;
	char *err = NULL;
	htp_buf out = {0};
	aws_http_response resp;
	char path[512], want[65], got[65];
	unsigned char *data = malloc(SIZE);
	unsigned long long x = 88172645463325252ULL;
	size_t i;
	for (i = 0; i < SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		data[i] = (unsigned char)x;
	}
	snprintf(path, sizeof path, "%s/big.bin", tmpdir);
	write_file(path, data, SIZE);
	aws_sha256_hex(data, SIZE, want);
	free(data);

	aws_s3_init(&s, http, &creds, &ep, bucket);
	s.multipart_threshold = 1 << 20;
	ck_assert_msg(aws_s3_put_file(&s, key_of("big.bin"), path, NULL, &err) == 0, "%s", aws_msg(err));
	ck_assert_msg(aws_s3_get(&s, key_of("big.bin"), &out, &err) == 0, "%s", aws_msg(err));
	ck_assert_uint_eq(out.len, SIZE);
	aws_sha256_hex(out.data, out.len, got);
	ck_assert_str_eq(got, want);
	htp_buf_free(&out);
	/* it went in parts of 8 + 8 + 4 MiB */
	ck_assert_int_eq(count_lines("POST ", "?uploads= -> ok"), 1);
	ck_assert_int_eq(count_lines("PUT ", "?partNumber=") , 3);
	ck_assert_int_eq(count_lines("POST ", "?uploadId="), 1);
	ck_assert_int_eq(count_lines("DELETE ", "?uploadId="), 0);
	/* a file below the threshold is one PutObject */
	logged.len = 0;
	write_file(path, "small", 5);
	ck_assert_int_eq(aws_s3_put_file(&s, key_of("small.bin"), path, NULL, &err), 0);
	ck_assert_int_eq(count_lines("PUT ", "small.bin -> ok"), 1);
	ck_assert_int_eq(count_lines("", "partNumber="), 0);
	raw_get(key_of("small.bin"), &resp);
	ck_assert_str_eq(resp.body.data, "small");
	aws_http_response_clear(&resp);
	unlink(path);
	htp_buf_free(&logged);
	free(err);
}
END_TEST

START_TEST(test_upload_dir)
{
	aws_s3 s;
	char *err = NULL;
	char p[512];
	size_t n = 0, i;
	static const char *const files[] = {"index.html", "sub/data.json", "sub/deep/shot.png",
	                                    "trace.zip", "noext"};
	static const char *const types[] = {"text/html", "application/json", "image/png",
	                                    "application/zip", "application/octet-stream"};
	snprintf(p, sizeof p, "%s/art", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/art/sub", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/art/sub/deep", tmpdir);
	mkdir(p, 0755);
	for (i = 0; i < 5; i++) {
		snprintf(p, sizeof p, "%s/art/%s", tmpdir, files[i]);
		write_file(p, files[i], strlen(files[i]));
	}
	aws_s3_init(&s, http, &creds, &ep, bucket);
	snprintf(p, sizeof p, "%s/art", tmpdir);
	ck_assert_msg(aws_s3_upload_dir(&s, key_of("artifacts"), p, &n, NULL, NULL, NULL, &err) == 0, "%s", aws_msg(err));
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < 5; i++) {
		char k[512];
		aws_http_response resp;
		snprintf(k, sizeof k, "%s/artifacts/%s", run, files[i]);
		raw_get(k, &resp);
		ck_assert_str_eq(resp.body.data, files[i]);
		ck_assert_str_eq(aws_headers_get(&resp.headers, "Content-Type"), types[i]);
		aws_http_response_clear(&resp);
		snprintf(p, sizeof p, "%s/art/%s", tmpdir, files[i]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/nonexistent", tmpdir);
	ck_assert_int_eq(aws_s3_upload_dir(&s, "x", p, &n, NULL, NULL, NULL, &err), HYPERTEST_ERR_IO);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), p));
	free(err);
}
END_TEST

/* ListObjectsV2 page after page, against a small server that answers three
 * pages: the continuation token is sent back encoded, keys are decoded;
 * then a truncated page without a token is an error. */
struct pages {
	int bad_token;      /* a page said "truncated" and gave no token */
	char queries[3][512];
};

static void pages_handler(void *ud, const char *req, size_t len, int seq, htp_buf *out)
{
	struct pages *pg = ud;
	const char *sp = strchr(req, ' '), *end = sp ? strchr(sp + 1, ' ') : NULL;
	static const char head[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
	    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>";
	char body[2048];
	(void)len;
	if (sp && end && seq < 3)
		snprintf(pg->queries[seq], sizeof pg->queries[0], "%.*s", (int)(end - sp - 1), sp + 1);
	if (pg->bad_token)
		snprintf(body, sizeof body, "%s<IsTruncated>true</IsTruncated></ListBucketResult>", head);
	else if (seq == 0)
		snprintf(body, sizeof body,
		         "%s<Contents><Key>r/a&amp;b &lt;c&gt;</Key><Size>3</Size></Contents>"
		         "<Contents><Key>r/d&#34;e</Key><Size>4</Size></Contents>"
		         "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/1+=</NextContinuationToken>"
		         "</ListBucketResult>", head);
	else if (seq == 1)
		snprintf(body, sizeof body,
		         "%s<Contents><Key>r/f</Key><Size>5</Size></Contents><IsTruncated>true</IsTruncated>"
		         "<NextContinuationToken>t2</NextContinuationToken></ListBucketResult>", head);
	else
		snprintf(body, sizeof body,
		         "%s<Contents><Key>r/g</Key><Size>1234567890123</Size></Contents>"
		         "<IsTruncated>false</IsTruncated></ListBucketResult>", head);
	httpd_reply(out, 200, "Content-Type: application/xml\r\n", body);
}

START_TEST(test_list_continuation)
{
	struct pages pg;
	httpd *d;
	aws_endpoints_options o = {"us-east-1", {NULL}, 0};
	aws_endpoint e;
	aws_credentials c;
	aws_http *hc;
	aws_http_config cfg = {0};
	aws_s3 s;
	char *err = NULL;
	struct listed l;
	char url[64];

	memset(&pg, 0, sizeof pg);
	d = httpd_start(pages_handler, &pg, 0);
	ck_assert_ptr_nonnull(d);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", httpd_port(d));
	o.overrides[AWS_SVC_S3] = url;
	ck_assert_msg(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err) == 0, "%s", aws_msg(err));
	memset(&c, 0, sizeof c);
	c.access_key_id = strdup("AKIDEXAMPLE");
	c.secret_access_key = strdup("secret");
	c.region = strdup("us-east-1");
	hc = aws_http_new(&cfg, &err);
	ck_assert_ptr_nonnull(hc);
	aws_s3_init(&s, hc, &c, &e, "b");
	s.list_page = 2;
	memset(&l, 0, sizeof l);
	ck_assert_msg(aws_s3_list(&s, "r/", on_listed, &l, &err) == 0, "%s", aws_msg(err));
	ck_assert_int_eq(l.n, 4);
	ck_assert_str_eq(l.keys[0], "r/a&b <c>");
	ck_assert_int_eq(l.sizes[0], 3);
	ck_assert_str_eq(l.keys[1], "r/d\"e");
	ck_assert_str_eq(l.keys[2], "r/f");
	ck_assert_str_eq(l.keys[3], "r/g");
	ck_assert_int_eq(l.sizes[3], 1234567890123LL);
	ck_assert_msg(strstr(pg.queries[0], "list-type=2") && strstr(pg.queries[0], "prefix=r%2F") &&
	                  strstr(pg.queries[0], "max-keys=2") && !strstr(pg.queries[0], "continuation"),
	              "%s", pg.queries[0]);
	ck_assert_msg(strstr(pg.queries[1], "continuation-token=tok%2F1%2B%3D"), "%s", pg.queries[1]);
	ck_assert_msg(strstr(pg.queries[2], "continuation-token=t2"), "%s", pg.queries[2]);
	/* truncated, no token: an error, not an endless loop */
	pg.bad_token = 1;
	memset(&l, 0, sizeof l);
	ck_assert_int_eq(aws_s3_list(&s, "r/", on_listed, &l, &err), HYPERTEST_ERR_PROVIDER);
	ck_assert_ptr_nonnull(strstr(aws_msg(err), "truncated listing without NextContinuationToken"));
	aws_http_free(hc);
	aws_endpoint_free(&e);
	aws_credentials_free(&c);
	httpd_stop(d);
	free(err);
}
END_TEST

static void collect_warning(void *ud, const char *msg)
{
	htp_buf_addf(ud, "%s\n", msg);
}

/* The artifacts rules (the same as the local provider's): regular files and
 * directories are stored; a link to a file or a directory outside, a loop,
 * a dangling link and a FIFO are not, each is reported, and the upload goes
 * on past them. */
START_TEST(test_upload_dir_rules)
{
	aws_s3 s;
	char *err = NULL;
	htp_buf warnings = {0};
	char p[600], q[600], k[512];
	size_t n = 0, lost = 0;
	aws_http_response resp;
	snprintf(p, sizeof p, "%s/outside", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/outside/secret.txt", tmpdir);
	write_file(p, "secret", 6);
	snprintf(p, sizeof p, "%s/rules", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/rules/sub", tmpdir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/rules/a.txt", tmpdir);
	write_file(p, "a", 1);
	snprintf(p, sizeof p, "%s/rules/sub/z.txt", tmpdir);
	write_file(p, "z", 1);
	snprintf(p, sizeof p, "%s/rules/dir-link", tmpdir);
	snprintf(q, sizeof q, "%s/outside", tmpdir);
	ck_assert_int_eq(symlink(q, p), 0);
	snprintf(p, sizeof p, "%s/rules/file-link", tmpdir);
	snprintf(q, sizeof q, "%s/outside/secret.txt", tmpdir);
	ck_assert_int_eq(symlink(q, p), 0);
	snprintf(p, sizeof p, "%s/rules/loop", tmpdir);
	ck_assert_int_eq(symlink("loop", p), 0);
	snprintf(p, sizeof p, "%s/rules/sub/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(p, 0644), 0);
	aws_s3_init(&s, http, &creds, &ep, bucket);
	snprintf(p, sizeof p, "%s/rules", tmpdir);
	ck_assert_msg(aws_s3_upload_dir(&s, key_of("rules"), p, &n, &lost, collect_warning,
	                                &warnings, &err) == 0,
	              "%s", aws_msg(err));
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(lost, 4);
	ck_assert_ptr_nonnull(warnings.data);
	ck_assert_msg(strstr(warnings.data, "artifact loop: not stored: a symbolic link loop\n"),
	              "%s", warnings.data);
	ck_assert_msg(strstr(warnings.data, "artifact dir-link: not stored: a symbolic link "
	                                    "(links are not followed)\n"),
	              "%s", warnings.data);
	ck_assert_msg(strstr(warnings.data, "artifact file-link: not stored: a symbolic link"),
	              "%s", warnings.data);
	ck_assert_msg(strstr(warnings.data, "artifact sub/fifo: not stored: a FIFO"), "%s",
	              warnings.data);
	snprintf(k, sizeof k, "%s/rules/sub/z.txt", run);
	raw_get(k, &resp);
	ck_assert_str_eq(resp.body.data, "z");
	aws_http_response_clear(&resp);
	{
		static const char *const absent[] = {"rules/dir-link/secret.txt", "rules/file-link",
		                                     "rules/loop", "rules/sub/fifo"};
		for (size_t i = 0; i < 4; i++) {
			htp_buf out = {0};
			ck_assert_int_eq(aws_s3_get(&s, key_of(absent[i]), &out, &err),
			                 HYPERTEST_ERR_NOT_FOUND);
			htp_buf_free(&out);
		}
	}
	htp_buf_free(&warnings);
	{
		static const char *const made[] = {"rules/a.txt", "rules/sub/z.txt", "rules/sub/fifo",
		                                   "rules/dir-link", "rules/file-link", "rules/loop",
		                                   "outside/secret.txt"};
		for (size_t i = 0; i < 7; i++) {
			snprintf(p, sizeof p, "%s/%s", tmpdir, made[i]);
			unlink(p);
		}
		snprintf(p, sizeof p, "%s/rules/sub", tmpdir);
		rmdir(p);
		snprintf(p, sizeof p, "%s/rules", tmpdir);
		rmdir(p);
		snprintf(p, sizeof p, "%s/outside", tmpdir);
		rmdir(p);
	}
	free(err);
}
END_TEST

/* GetObject reads no more than AWS_S3_GET_MAX (64 MiB): a real object one
 * byte larger is refused on its Content-Length, before its body, by a
 * client whose own cap (the provider's 256 MiB) would have taken it. */
START_TEST(test_get_cap)
{
	size_t size = AWS_S3_GET_MAX + 1;
	char *data = malloc(size);
	aws_http_config cfg = {0};
	aws_http *big;
	aws_s3 s;
	char *err = NULL;
	htp_buf out = {0};
	ck_assert_ptr_nonnull(data);
	memset(data, 'x', size);
	cfg.max_response = (size_t)256 << 20;
	cfg.log = log_cb;
	big = aws_http_new(&cfg, &err);
	ck_assert_ptr_nonnull(big);
	aws_s3_init(&s, big, &creds, &ep, bucket);
	ck_assert_msg(aws_s3_put(&s, key_of("too-big.json"), data, size, NULL, &err) == 0, "%s",
	              aws_msg(err));
	free(data);
	ck_assert_int_eq(aws_s3_get(&s, key_of("too-big.json"), &out, &err), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(aws_msg(err), "S3 GetObject s3://") && strstr(aws_msg(err), "too-big.json") &&
	                  strstr(aws_msg(err), "67108865 bytes (Content-Length)") &&
	                  strstr(aws_msg(err), "more than 64 MiB, the limit for an object read whole"),
	              "%s", aws_msg(err));
	ck_assert_uint_eq(out.len, 0);
	/* one at the cap comes back whole */
	ck_assert_int_eq(aws_s3_put(&s, key_of("at-cap"), "{}", 2, NULL, &err), 0);
	ck_assert_msg(aws_s3_get(&s, key_of("at-cap"), &out, &err) == 0, "%s", aws_msg(err));
	htp_buf_free(&out);
	aws_http_free(big);
	free(err);
}
END_TEST

/* An answer without a length (chunked) past the cap: cut off once the cap
 * is passed, with the same limit in the message. */
static void chunked_handler(void *ud, const char *req, size_t len, int seq, htp_buf *out)
{
	size_t n = AWS_S3_GET_MAX + 1;
	(void)ud;
	(void)req;
	(void)len;
	(void)seq;
	htp_buf_addf(out, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                  "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", n);
	char *body = malloc(n);
	ck_assert_ptr_nonnull(body);
	memset(body, 'y', n);
	htp_buf_add(out, body, n);
	free(body);
	htp_buf_addf(out, "\r\n0\r\n\r\n");
}

START_TEST(test_get_cap_chunked)
{
	httpd *d = httpd_start(chunked_handler, NULL, 0);
	aws_endpoints_options o = {"us-east-1", {NULL}, 0};
	aws_endpoint e;
	aws_credentials c;
	aws_http_config cfg = {0};
	aws_http *hc;
	aws_s3 s;
	char *err = NULL;
	htp_buf out = {0};
	char url[64];
	ck_assert_ptr_nonnull(d);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", httpd_port(d));
	o.overrides[AWS_SVC_S3] = url;
	ck_assert_msg(aws_endpoint_resolve(&e, AWS_SVC_S3, &o, &err) == 0, "%s", aws_msg(err));
	memset(&c, 0, sizeof c);
	c.access_key_id = strdup("AKIDEXAMPLE");
	c.secret_access_key = strdup("secret");
	c.region = strdup("us-east-1");
	cfg.max_response = (size_t)256 << 20; /* the provider's */
	cfg.max_attempts = 1;
	hc = aws_http_new(&cfg, &err);
	ck_assert_ptr_nonnull(hc);
	aws_s3_init(&s, hc, &c, &e, "b");
	ck_assert_int_eq(aws_s3_get(&s, "hypertest.manifest.json", &out, &err), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(aws_msg(err), "S3 GetObject s3://b/hypertest.manifest.json: response larger "
	                              "than 64 MiB, the limit for an object read whole"),
	              "%s", aws_msg(err));
	ck_assert_uint_eq(out.len, 0);
	aws_http_free(hc);
	aws_endpoint_free(&e);
	aws_credentials_free(&c);
	httpd_stop(d);
	free(err);
}
END_TEST

int main(void)
{
	Suite *su;
	TCase *tc;
	SRunner *sr;
	int failed;

	/* the signature-checking front of s3rver when there is one: s3rver
	 * itself does not verify Signature V4 */
	endpoint_url = getenv("HT_S3_CHECKED_ENDPOINT");
	if (!endpoint_url || !*endpoint_url)
		endpoint_url = getenv("HT_S3_ENDPOINT");
	bucket = getenv("HT_S3_BUCKET");
	su = suite_create("s3");
	tc = tcase_create("small server");
	tcase_add_test(tc, test_list_continuation);
	tcase_add_test(tc, test_get_cap_chunked);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(su, tc);
	if (!endpoint_url || !*endpoint_url || !bucket || !*bucket) {
		fprintf(stderr, "check_s3: HT_S3_ENDPOINT and HT_S3_BUCKET are not set: "
		                "the s3rver cases are skipped\n");
		sr = srunner_create(su);
		srunner_run_all(sr, CK_NORMAL);
		failed = srunner_ntests_failed(sr);
		srunner_free(sr);
		return failed ? 1 : 0;
	}
	tc = tcase_create("s3rver");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_put_get);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_missing_key);
	tcase_add_test(tc, test_no_such_bucket);
	tcase_add_test(tc, test_multipart);
	tcase_add_test(tc, test_upload_dir);
	tcase_add_test(tc, test_upload_dir_rules);
	tcase_add_test(tc, test_get_cap);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
