/*
 * s3.c - S3 for the aws provider: PutObject, GetObject, multipart upload
 * (CreateMultipartUpload, UploadPart, CompleteMultipartUpload, and
 * AbortMultipartUpload when something fails), directory upload with
 * content types from file extensions, ListObjectsV2 page after page.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3.h"

void aws_s3_init(aws_s3 *s, aws_http *http, const aws_credentials *creds,
                 const aws_endpoint *endpoint, const char *bucket)
{
	memset(s, 0, sizeof *s);
	s->http = http;
	s->creds = creds;
	s->endpoint = endpoint;
	s->bucket = bucket;
	s->multipart_threshold = (size_t)64 << 20;
	s->part_size = AWS_S3_MIN_PART_SIZE;
	s->sig.creds = creds;
	s->sig.region = endpoint->signing_region;
	s->sig.service = endpoint->signing_name;
}

char *aws_s3_object_url(const aws_s3 *s, const char *key)
{
	htp_buf b = {0};
	htp_buf_addf(&b, "s3://%s/%s", s->bucket, key ? key : "");
	return htp_buf_take(&b);
}

const char *aws_content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {"html", "text/html"},       {"htm", "text/html"},         {"css", "text/css"},
	    {"js", "text/javascript"},   {"mjs", "text/javascript"},   {"json", "application/json"},
	    {"txt", "text/plain"},       {"log", "text/plain"},        {"md", "text/markdown"},
	    {"csv", "text/csv"},         {"xml", "application/xml"},   {"svg", "image/svg+xml"},
	    {"png", "image/png"},        {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},        {"webp", "image/webp"},       {"ico", "image/x-icon"},
	    {"webm", "video/webm"},      {"mp4", "video/mp4"},         {"zip", "application/zip"},
	    {"gz", "application/gzip"},  {"tar", "application/x-tar"}, {"pdf", "application/pdf"},
	    {"wasm", "application/wasm"}};
	const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
	size_t i;
	if (dot && (!slash || dot > slash) && dot[1])
		for (i = 0; i < sizeof types / sizeof *types; i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* One request to bucket/key?query; resp is the caller's to clear. */
static int s3_request(aws_s3 *s, const char *op, const char *method, const char *key,
                      const char *query, const char *content_type, const void *body,
                      size_t len, size_t max, aws_http_response *resp, char **err)
{
	aws_http_request r;
	char *url = aws_s3_url(s->endpoint, s->bucket, key, query);
	htp_buf what = {0};
	int rc;
	if (!url || htp_buf_addf(&what, "S3 %s s3://%s/%s", op, s->bucket, key ? key : "") < 0 ||
	    aws_http_request_init(&r, method, url, what.data) < 0) {
		free(url);
		htp_buf_free(&what);
		memset(resp, 0, sizeof *resp);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	free(url);
	htp_buf_free(&what);
	if (content_type && aws_headers_add(&r.headers, "Content-Type", content_type) < 0) {
		aws_http_request_clear(&r);
		memset(resp, 0, sizeof *resp);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	r.body = body;
	r.body_len = len;
	r.max_response = max;
	r.max_what = max ? "an object read whole from the bucket" : NULL;
	r.sign = aws_http_sign_sigv4;
	r.sign_ud = &s->sig;
	rc = aws_http_perform(s->http, &r, resp, err);
	aws_http_request_clear(&r);
	/* a missing bucket is no missing object */
	if (rc == HYPERTEST_ERR_NOT_FOUND && resp->error_code &&
	    strcmp(resp->error_code, "NoSuchBucket") == 0)
		rc = HYPERTEST_ERR_PROVIDER;
	return rc;
}

int aws_s3_put(aws_s3 *s, const char *key, const void *data, size_t len,
               const char *content_type, char **err)
{
	aws_http_response resp;
	int rc = s3_request(s, "PutObject", "PUT", key, NULL,
	                    content_type ? content_type : "application/octet-stream", data, len,
	                    0, &resp, err);
	aws_http_response_clear(&resp);
	return rc;
}

int aws_s3_get(aws_s3 *s, const char *key, htp_buf *out, char **err)
{
	aws_http_response resp;
	int rc = s3_request(s, "GetObject", "GET", key, NULL, NULL, NULL, 0, AWS_S3_GET_MAX,
	                    &resp, err);
	if (rc == 0 && htp_buf_add(out, resp.body.data ? resp.body.data : "", resp.body.len) < 0)
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	aws_http_response_clear(&resp);
	return rc;
}

/* The text of <tag> in an XML body (caller frees), or NULL. */
static char *xml_value(const htp_buf *body, const char *tag)
{
	char open[64], close[64];
	const char *s, *e;
	if (!body->data)
		return NULL;
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	s = strstr(body->data, open);
	if (!s)
		return NULL;
	s += strlen(open);
	e = strstr(s, close);
	return e ? strndup(s, (size_t)(e - s)) : NULL;
}

/* The text between <tag> and </tag> in [s, end), XML entities decoded
 * (caller frees); NULL when absent.  *next is after the closing tag. */
static char *xml_field(const char *s, const char *end, const char *tag, const char **next)
{
	char open[64], close[64];
	const char *a, *b;
	htp_buf out = {0};
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	a = strstr(s, open);
	if (!a || a >= end)
		return NULL;
	a += strlen(open);
	b = strstr(a, close);
	if (!b || b > end)
		return NULL;
	if (next)
		*next = b + strlen(close);
	while (a < b) {
		static const struct {
			const char *ent;
			char c;
		} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
		size_t i, done = 0;
		if (*a == '&') {
			for (i = 0; i < sizeof ents / sizeof *ents; i++) {
				size_t n = strlen(ents[i].ent);
				if ((size_t)(b - a) >= n && !strncmp(a, ents[i].ent, n)) {
					htp_buf_add(&out, &ents[i].c, 1);
					a += n;
					done = 1;
					break;
				}
			}
			if (!done && a[1] == '#') { /* &#NN; and &#xNN; (ASCII only) */
				char *e;
				long v = a[2] == 'x' ? strtol(a + 3, &e, 16) : strtol(a + 2, &e, 10);
				if (*e == ';' && v > 0 && v < 128) {
					char c = (char)v;
					htp_buf_add(&out, &c, 1);
					a = e + 1;
					done = 1;
				}
			}
		}
		if (!done)
			htp_buf_add(&out, a++, 1);
	}
	if (!out.data)
		htp_buf_str(&out, "");
	return htp_buf_take(&out);
}

int aws_s3_list(aws_s3 *s, const char *prefix, aws_s3_list_fn fn, void *ud, char **err)
{
	char *token = NULL;
	int rc = 0;
	do {
		aws_http_response resp;
		htp_buf q = {0};
		const char *p, *end;
		char *trunc;
		htp_buf_str(&q, "list-type=2&prefix=");
		aws_uri_encode(&q, prefix ? prefix : "", prefix ? strlen(prefix) : 0, 0);
		if (s->list_page)
			htp_buf_addf(&q, "&max-keys=%zu", s->list_page);
		if (token) {
			htp_buf_str(&q, "&continuation-token=");
			aws_uri_encode(&q, token, strlen(token), 0);
		}
		free(token);
		token = NULL;
		if (!q.data) {
			htp_buf_free(&q);
			return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		}
		rc = s3_request(s, "ListObjectsV2", "GET", NULL, q.data, NULL, NULL, 0, 0, &resp, err);
		htp_buf_free(&q);
		if (rc) {
			aws_http_response_clear(&resp);
			return rc;
		}
		p = resp.body.data ? resp.body.data : "";
		end = p + resp.body.len;
		for (;;) {
			const char *c = strstr(p, "<Contents>"), *ce;
			char *key, *size;
			if (!c)
				break;
			ce = strstr(c, "</Contents>");
			if (!ce)
				break;
			key = xml_field(c, ce, "Key", NULL);
			size = xml_field(c, ce, "Size", NULL);
			if (key && rc == 0)
				rc = fn(ud, key, size ? strtoll(size, NULL, 10) : 0);
			free(key);
			free(size);
			p = ce + strlen("</Contents>");
			if (rc)
				break;
		}
		trunc = xml_field(resp.body.data ? resp.body.data : "", end, "IsTruncated", NULL);
		if (rc == 0 && trunc && !strcmp(trunc, "true")) {
			token = xml_field(resp.body.data, end, "NextContinuationToken", NULL);
			if (!token)
				rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
				              "S3 ListObjectsV2 s3://%s/%s: truncated listing without "
				              "NextContinuationToken",
				              s->bucket, prefix ? prefix : "");
		}
		free(trunc);
		aws_http_response_clear(&resp);
	} while (rc == 0 && token);
	free(token);
	return rc;
}

static int read_full(int fd, char *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, buf + *got, len - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

static void abort_upload(aws_s3 *s, const char *key, const char *query)
{
	aws_http_response resp;
	char *ignored = NULL;
	s3_request(s, "AbortMultipartUpload", "DELETE", key, query, NULL, NULL, 0, 0, &resp, &ignored);
	aws_http_response_clear(&resp);
	free(ignored);
}

int aws_s3_put_file_multipart(aws_s3 *s, const char *key, const char *path,
                              const char *content_type, char **err)
{
	aws_http_response resp;
	htp_buf complete = {0}, q = {0};
	char *upload_id = NULL, *buf = NULL;
	size_t part_size = s->part_size < AWS_S3_MIN_PART_SIZE ? AWS_S3_MIN_PART_SIZE : s->part_size;
	struct stat st;
	int fd, rc, part = 0;
	off_t done = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = aws_fail(err, HYPERTEST_ERR_IO, "S3 upload %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	/* at most 10,000 parts */
	while ((off_t)part_size * 10000 < st.st_size)
		part_size *= 2;

	rc = s3_request(s, "CreateMultipartUpload", "POST", key, "uploads=",
	                content_type ? content_type : "application/octet-stream", NULL, 0, 0,
	                &resp, err);
	if (rc == 0) {
		upload_id = xml_value(&resp.body, "UploadId");
		if (!upload_id)
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
			              "S3 CreateMultipartUpload s3://%s/%s: no UploadId in the answer",
			              s->bucket, key);
	}
	aws_http_response_clear(&resp);
	if (rc) {
		close(fd);
		return rc;
	}
	buf = malloc(part_size);
	if (!buf)
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	htp_buf_str(&complete, "<CompleteMultipartUpload>");
	while (rc == 0 && (done < st.st_size || part == 0)) {
		size_t got;
		const char *etag;
		if (read_full(fd, buf, part_size, &got) < 0) {
			rc = aws_fail(err, HYPERTEST_ERR_IO, "S3 upload %s: %s", path, strerror(errno));
			break;
		}
		if (got == 0 && part > 0)
			break;
		part++;
		q.len = 0;
		htp_buf_addf(&q, "partNumber=%d&uploadId=", part);
		aws_uri_encode(&q, upload_id, strlen(upload_id), 0);
		rc = s3_request(s, "UploadPart", "PUT", key, q.data, NULL, buf, got, 0, &resp, err);
		etag = aws_headers_get(&resp.headers, "ETag");
		if (rc == 0 && !etag)
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
			              "S3 UploadPart s3://%s/%s: part %d has no ETag", s->bucket, key, part);
		if (rc == 0)
			htp_buf_addf(&complete, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>",
			             part, etag);
		aws_http_response_clear(&resp);
		done += (off_t)got;
		if (got < part_size)
			break;
	}
	close(fd);
	free(buf);
	htp_buf_str(&complete, "</CompleteMultipartUpload>");
	q.len = 0;
	htp_buf_str(&q, "uploadId=");
	aws_uri_encode(&q, upload_id, strlen(upload_id), 0);
	if (rc == 0) {
		rc = s3_request(s, "CompleteMultipartUpload", "POST", key, q.data, "application/xml",
		                complete.data, complete.len, 0, &resp, err);
		/* S3 may answer 200 with an error in the body */
		if (rc == 0 && resp.body.data && strstr(resp.body.data, "<Error>")) {
			char *code = xml_value(&resp.body, "Code"), *msg = xml_value(&resp.body, "Message");
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
			              "S3 CompleteMultipartUpload s3://%s/%s: %s: %s", s->bucket, key,
			              code ? code : "error", msg ? msg : "");
			free(code);
			free(msg);
		}
		aws_http_response_clear(&resp);
	}
	if (rc)
		abort_upload(s, key, q.data);
	htp_buf_free(&q);
	htp_buf_free(&complete);
	free(upload_id);
	return rc;
}

int aws_s3_put_file(aws_s3 *s, const char *key, const char *path, const char *content_type,
                    char **err)
{
	struct stat st;
	char *data;
	size_t got;
	int fd, rc;
	if (!content_type)
		content_type = aws_content_type(path);
	if (stat(path, &st) < 0)
		return aws_fail(err, HYPERTEST_ERR_IO, "S3 upload %s: %s", path, strerror(errno));
	if ((size_t)st.st_size >= s->multipart_threshold)
		return aws_s3_put_file_multipart(s, key, path, content_type, err);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return aws_fail(err, HYPERTEST_ERR_IO, "S3 upload %s: %s", path, strerror(errno));
	data = malloc((size_t)st.st_size + 1);
	if (!data) {
		close(fd);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (read_full(fd, data, (size_t)st.st_size, &got) < 0) {
		rc = aws_fail(err, HYPERTEST_ERR_IO, "S3 upload %s: %s", path, strerror(errno));
	} else {
		rc = aws_s3_put(s, key, data, got, content_type, err);
	}
	close(fd);
	free(data);
	return rc;
}

struct upload_walk {
	aws_s3 *s;
	const char *prefix, *dir;
	size_t count, lost;
	aws_s3_warn_fn warn;
	void *ud;
};

static void not_stored(struct upload_walk *w, const char *rel, const char *why)
{
	htp_buf msg = {0};
	w->lost++;
	if (w->warn && htp_buf_addf(&msg, "artifact %s: not stored: %s", rel, why) == 0)
		w->warn(w->ud, msg.data);
	htp_buf_free(&msg);
}

/* The same rules as the local provider's copy: regular files and
 * directories are stored; a symbolic link is never followed (so nothing
 * outside dir is uploaded and a loop cannot stop the upload); everything
 * that is not stored is reported through warn, and the upload goes on. */
static const char *special_why(const char *path, const struct stat *lst)
{
	struct stat st;
	if (S_ISLNK(lst->st_mode)) {
		if (stat(path, &st) != 0)
			return errno == ELOOP ? "a symbolic link loop" : "a dangling symbolic link";
		return "a symbolic link (links are not followed)";
	}
	if (S_ISFIFO(lst->st_mode))
		return "a FIFO (only regular files and directories are stored)";
	if (S_ISSOCK(lst->st_mode))
		return "a socket (only regular files and directories are stored)";
	return "a device (only regular files and directories are stored)";
}

static int upload_tree(struct upload_walk *w, const char *rel, char **err)
{
	htp_buf path = {0};
	DIR *d;
	struct dirent *e;
	int rc = 0;
	htp_buf_addf(&path, "%s%s%s", w->dir, *rel ? "/" : "", rel);
	d = path.data ? opendir(path.data) : NULL;
	if (!d) {
		if (!*rel)
			rc = aws_fail(err, HYPERTEST_ERR_IO, "artifacts %s: %s", path.data ? path.data : "",
			              strerror(errno));
		else
			not_stored(w, rel, strerror(errno));
		htp_buf_free(&path);
		return rc;
	}
	while ((e = readdir(d))) {
		htp_buf full = {0}, sub = {0}, key = {0};
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		htp_buf_addf(&full, "%s/%s", path.data, e->d_name);
		htp_buf_addf(&sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (!full.data || !sub.data) {
			not_stored(w, e->d_name, "out of memory");
		} else if (lstat(full.data, &st) < 0) {
			not_stored(w, sub.data, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			upload_tree(w, sub.data, err);
		} else if (S_ISREG(st.st_mode)) {
			char *perr = NULL;
			htp_buf_addf(&key, "%s%s%s", w->prefix,
			             *w->prefix && w->prefix[strlen(w->prefix) - 1] != '/' ? "/" : "",
			             sub.data);
			if (aws_s3_put_file(w->s, key.data, full.data, NULL, &perr) == 0)
				w->count++;
			else
				not_stored(w, sub.data, aws_msg(perr));
			free(perr);
		} else {
			not_stored(w, sub.data, special_why(full.data, &st));
		}
		htp_buf_free(&full);
		htp_buf_free(&sub);
		htp_buf_free(&key);
	}
	closedir(d);
	htp_buf_free(&path);
	return rc;
}

int aws_s3_upload_dir(aws_s3 *s, const char *prefix, const char *dir, size_t *count,
                      size_t *lost, aws_s3_warn_fn warn, void *ud, char **err)
{
	struct upload_walk w = {s, prefix ? prefix : "", dir, 0, 0, warn, ud};
	int rc = upload_tree(&w, "", err);
	if (count)
		*count = w.count;
	if (lost)
		*lost = w.lost;
	return rc;
}
