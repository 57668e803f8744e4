/*
 * registry.c - OCI distribution API operations: image references with
 * Docker Hub defaults, manifests and blobs fetched with verified digests,
 * blob uploads (HEAD, then a cross-repository mount or POST, PATCH, PUT)
 * and manifest pushes.  The HTTP exchanges and their authentication are in
 * registry_http.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "oci_layout.h"
#include "registry_http.h"

#define DOCKER_HUB "registry-1.docker.io"
#define MANIFEST_MAX HT_OCI_MANIFEST_MAX
#define CONFIG_MAX HT_OCI_CONFIG_MAX
#define ACCEPT_MANIFESTS                                                                   \
	HT_MT_OCI_MANIFEST ", " HT_MT_OCI_INDEX ", " HT_MT_DOCKER_MANIFEST ", " HT_MT_DOCKER_LIST

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* ---- references ------------------------------------------------------------------ */

static int valid_name(const char *s)
{
	/* path components of lowercase letters and digits, separated by '.',
	 * '_' or '-' runs, joined by '/' */
	if (!*s)
		return 0;
	char prev = '/';
	for (; *s; s++) {
		char c = *s;
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		int sep = c == '.' || c == '_' || c == '-';
		if (!alnum && !sep && c != '/')
			return 0;
		if ((sep || c == '/') && (prev == '/' || (c == '/' && (prev == '.' || prev == '_' ||
		                                                        prev == '-'))))
			return 0;
		prev = c;
	}
	return prev != '/' && prev != '.' && prev != '_' && prev != '-';
}

static int valid_tag(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || t[0] == '.' || t[0] == '-')
		return 0;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') ||
		      *t == '_' || *t == '.' || *t == '-'))
			return 0;
	return 1;
}

static int valid_host(const char *h)
{
	if (!*h)
		return 0;
	for (; *h; h++)
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
		      *h == '.' || *h == '-' || *h == ':' || *h == '[' || *h == ']'))
			return 0;
	return 1;
}

void ht_image_ref_free(ht_image_ref *ref)
{
	if (!ref)
		return;
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof *ref);
}

int ht_image_ref_parse(const char *text, ht_image_ref *out, ht_err *err)
{
	memset(out, 0, sizeof *out);
	if (!text || !*text)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "empty image reference");
	char *s = ht_strdup(text);
	if (!s)
		return nomem(err);
	int rc = 0;
	char *at = strrchr(s, '@');
	if (at) {
		*at = '\0';
		if (!ht_oci_digest_valid(at + 1)) {
			rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
			                "image reference '%s': digest '%s' is not sha256:<64 hex>", text,
			                at + 1);
			goto out;
		}
		out->digest = ht_strdup(at + 1);
	}
	char *name = s;
	char *slash = strchr(s, '/');
	if (slash && (memchr(s, '.', (size_t)(slash - s)) || memchr(s, ':', (size_t)(slash - s)) ||
	              (slash - s == 9 && !strncmp(s, "localhost", 9)))) {
		*slash = '\0';
		out->registry = ht_strdup(s);
		name = slash + 1;
	}
	char *last = strrchr(name, '/');
	char *colon = strrchr(last ? last : name, ':');
	if (colon) {
		*colon = '\0';
		out->tag = ht_strdup(colon + 1);
		if (out->tag && !valid_tag(out->tag)) {
			rc = ht_err_set(err, HYPERTEST_ERR_INVALID, "image reference '%s': bad tag '%s'", text,
			                out->tag);
			goto out;
		}
	}
	if (!out->registry || !strcmp(out->registry, "docker.io") ||
	    !strcmp(out->registry, "index.docker.io")) {
		free(out->registry);
		out->registry = ht_strdup(DOCKER_HUB);
		out->repository = strchr(name, '/') ? ht_strdup(name) : ht_asprintf("library/%s", name);
	} else {
		out->repository = ht_strdup(name);
	}
	if (!out->tag && !out->digest)
		out->tag = ht_strdup("latest");
	if (!out->registry || !out->repository || (!out->tag && !out->digest)) {
		rc = nomem(err);
		goto out;
	}
	if (!valid_host(out->registry))
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID, "image reference '%s': bad registry '%s'",
		                text, out->registry);
	else if (!valid_name(out->repository))
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
		                "image reference '%s': bad repository name '%s' (lowercase letters, "
		                "digits, '.', '_', '-', '/')",
		                text, out->repository);
out:
	free(s);
	if (rc)
		ht_image_ref_free(out);
	return rc;
}

/* ---- operations ------------------------------------------------------------------ */

static int sha256_text(const void *data, size_t len, char digest[80])
{
	char hex[65];
	if (ht_sha256_hex(data, len, hex) != 0)
		return -1;
	snprintf(digest, 80, "sha256:%s", hex);
	return 0;
}

static char *media_type_of(const char *content_type)
{
	if (!content_type)
		return ht_strdup("");
	size_t n = strcspn(content_type, "; ");
	return strndup(content_type, n);
}

int ht_registry_get_manifest(ht_registry *reg, const char *registry, const char *repository,
                             const char *reference, char **body, size_t *len, char **media_type,
                             char digest[80], ht_err *err)
{
	*body = NULL;
	*media_type = NULL;
	char *base = ht_registry_base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/manifests/%s", base, repository, reference) : NULL;
	char *scope = ht_asprintf("repository:%s:pull", repository);
	const char *scopes[] = {scope, NULL};
	struct ht_http_req req = {.registry = registry, .method = "GET", .url = url,
	                       .accept = ACCEPT_MANIFESTS, .max_body = MANIFEST_MAX, .scopes = scopes};
	struct ht_http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url && scope ? ht_registry_request(reg, &req, &resp, err) : nomem(err);
	if (!rc && resp.status != 200)
		rc = ht_registry_http_error(&req, &resp, err);
	if (!rc) {
		if (sha256_text(resp.body.data ? resp.body.data : "", resp.body.len, digest) != 0)
			rc = nomem(err);
		else if (ht_oci_digest_valid(reference) && strcmp(reference, digest) != 0)
			rc = ht_err_set(err, HYPERTEST_ERR_DIGEST,
			                "registry %s: manifest %s of %s: digest mismatch: expected %s, actual %s",
			                registry, reference, repository, reference, digest);
		else if (resp.docker_digest && ht_oci_digest_valid(resp.docker_digest) &&
		         strcmp(resp.docker_digest, digest) != 0)
			rc = ht_err_set(err, HYPERTEST_ERR_DIGEST,
			                "registry %s: manifest %s of %s: digest mismatch: expected %s "
			                "(Docker-Content-Digest), actual %s",
			                registry, reference, repository, resp.docker_digest, digest);
	}
	if (!rc) {
		*media_type = media_type_of(resp.content_type);
		*len = resp.body.len;
		*body = ht_buf_steal(&resp.body);
		if (!*media_type || !*body) {
			free(*media_type);
			free(*body);
			*media_type = *body = NULL;
			rc = nomem(err);
		}
	}
	ht_http_resp_reset(&resp);
	free(base);
	free(url);
	free(scope);
	return rc;
}

/* Hashing sink for blob downloads. */
struct blob_sink {
	EVP_MD_CTX *sha;
	unsigned long long size;
	int fd;          /* file, or -1 for memory */
	const char *path;
	ht_buf mem;
	size_t max;
};

static int blob_sink_write(void *ctx, const void *data, size_t len, ht_err *err)
{
	struct blob_sink *s = ctx;
	EVP_DigestUpdate(s->sha, data, len);
	s->size += len;
	if (s->fd < 0) {
		if (s->mem.len + len > s->max)
			return ht_err_set(err, HYPERTEST_ERR_IMAGE, "blob larger than %zu bytes", s->max);
		return ht_buf_append(&s->mem, data, len) ? nomem(err) : 0;
	}
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(s->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ht_err_set(err, HYPERTEST_ERR_IO, "%s: write: %s", s->path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int blob_download(ht_registry *reg, const char *registry, const char *repository,
                         const char *digest, long long size, struct blob_sink *s, ht_err *err)
{
	if (!ht_oci_digest_valid(digest))
		return ht_err_set(err, HYPERTEST_ERR_IMAGE, "registry %s: invalid digest '%s'", registry,
		                  digest ? digest : "(null)");
	s->sha = EVP_MD_CTX_new();
	if (!s->sha || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1)
		return nomem(err);
	char *base = ht_registry_base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/blobs/%s", base, repository, digest) : NULL;
	char *scope = ht_asprintf("repository:%s:pull", repository);
	const char *scopes[] = {scope, NULL};
	struct ht_http_req req = {.registry = registry, .method = "GET", .url = url, .follow = 1,
	                       .sink = blob_sink_write, .sink_ctx = s, .scopes = scopes};
	struct ht_http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url && scope ? ht_registry_request(reg, &req, &resp, err) : nomem(err);
	if (!rc && resp.status != 200)
		rc = ht_registry_http_error(&req, &resp, err);
	if (!rc) {
		char actual[80];
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int n = 0;
		static const char hx[] = "0123456789abcdef";
		EVP_DigestFinal_ex(s->sha, md, &n);
		memcpy(actual, "sha256:", 7);
		for (unsigned i = 0; i < n; i++) {
			actual[7 + 2 * i] = hx[md[i] >> 4];
			actual[8 + 2 * i] = hx[md[i] & 15];
		}
		actual[7 + 2 * n] = '\0';
		if (strcmp(actual, digest) != 0)
			rc = ht_err_set(err, HYPERTEST_ERR_DIGEST,
			                "registry %s: blob of %s: digest mismatch: expected %s, actual %s",
			                registry, repository, digest, actual);
		else if (size >= 0 && s->size != (unsigned long long)size)
			rc = ht_err_set(err, HYPERTEST_ERR_IMAGE,
			                "registry %s: blob %s of %s has %llu bytes, descriptor says %lld",
			                registry, digest, repository, s->size, size);
	}
	ht_http_resp_reset(&resp);
	EVP_MD_CTX_free(s->sha);
	s->sha = NULL;
	free(base);
	free(url);
	free(scope);
	return rc;
}

int ht_registry_get_blob_data(ht_registry *reg, const char *registry, const char *repository,
                              const char *digest, long long size, char **data, size_t *len,
                              ht_err *err)
{
	*data = NULL;
	struct blob_sink s;
	memset(&s, 0, sizeof s);
	s.fd = -1;
	s.max = CONFIG_MAX;
	int rc = blob_download(reg, registry, repository, digest, size, &s, err);
	if (!rc) {
		*len = s.mem.len;
		ht_buf_append(&s.mem, "", 0);
		*data = ht_buf_steal(&s.mem);
		if (!*data)
			rc = nomem(err);
	}
	ht_buf_free(&s.mem);
	return rc;
}

int ht_registry_get_blob(ht_registry *reg, const char *registry, const char *repository,
                         const char *digest, long long size, const char *layout_dir, ht_err *err)
{
	if (ht_oci_blob_exists(layout_dir, digest))
		return 0;
	char *tmp = ht_asprintf("%s/blobs/sha256/.download-XXXXXX", layout_dir);
	if (!tmp)
		return nomem(err);
	struct blob_sink s;
	memset(&s, 0, sizeof s);
	s.fd = mkstemp(tmp);
	s.path = tmp;
	if (s.fd < 0) {
		int rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	int rc = blob_download(reg, registry, repository, digest, size, &s, err);
	if (close(s.fd) != 0 && !rc)
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: close: %s", tmp, strerror(errno));
	if (!rc)
		rc = ht_oci_blob_put_rename(layout_dir, tmp, digest, err);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

static int head_blob(ht_registry *reg, const char *registry, const char *repository,
                     const char *digest, const char *const *scopes, int *exists, ht_err *err)
{
	*exists = 0;
	if (!ht_oci_digest_valid(digest))
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "registry %s: invalid digest '%s'", registry,
		                  digest ? digest : "(null)");
	char *base = ht_registry_base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/blobs/%s", base, repository, digest) : NULL;
	struct ht_http_req req = {.registry = registry, .method = "HEAD", .url = url, .scopes = scopes};
	struct ht_http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url ? ht_registry_request(reg, &req, &resp, err) : nomem(err);
	if (!rc) {
		if (resp.status == 200)
			*exists = 1;
		else if (resp.status != 404)
			rc = ht_registry_http_error(&req, &resp, err);
	}
	ht_http_resp_reset(&resp);
	free(base);
	free(url);
	return rc;
}

int ht_registry_blob_exists(ht_registry *reg, const char *registry, const char *repository,
                            const char *digest, int *exists, ht_err *err)
{
	char *scope = ht_asprintf("repository:%s:pull", repository);
	const char *scopes[] = {scope, NULL};
	int rc = scope ? head_blob(reg, registry, repository, digest, scopes, exists, err)
	               : nomem(err);
	free(scope);
	return rc;
}

/* A Location header made absolute against the request's URL (malloc'd). */
static char *resolve_location(const char *request_url, const char *location)
{
	CURLU *u = curl_url();
	char *out = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, request_url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK) {
		char *s = NULL;
		if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
			out = ht_strdup(s);
			curl_free(s);
		}
	}
	curl_url_cleanup(u);
	return out;
}

/* The upload session a 202 answer names, or an error. */
static int upload_location(const struct ht_http_req *req, const struct ht_http_resp *resp,
                           char **next, ht_err *err)
{
	*next = NULL;
	if (resp->status != 202)
		return ht_registry_http_error(req, resp, err);
	if (!resp->location)
		return ht_err_set(err, HYPERTEST_ERR_HTTP, "registry %s: %s: 202 without Location",
		                  req->registry, req->method);
	*next = resolve_location(req->url, resp->location);
	return *next ? 0 : ht_err_set(err, HYPERTEST_ERR_HTTP, "registry %s: bad Location '%.200s'",
	                              req->registry, resp->location);
}

int ht_registry_push_blob(ht_registry *reg, const char *registry, const char *repository,
                          const char *digest, const ht_blob_source *src, const char *mount_from,
                          int *uploaded, ht_err *err)
{
	if (uploaded)
		*uploaded = 0;
	char *push_scope = ht_asprintf("repository:%s:pull,push", repository);
	char *from_scope = mount_from ? ht_asprintf("repository:%s:pull", mount_from) : NULL;
	const char *scopes[] = {push_scope, from_scope, NULL};
	char *base = ht_registry_base_url(reg, registry);
	char *location = NULL, *url = NULL, *edigest = NULL;
	CURL *esc = NULL;
	struct ht_http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = 0, exists = 0;
	if (!push_scope || (mount_from && !from_scope) || !base) {
		rc = nomem(err);
		goto out;
	}
	if ((rc = head_blob(reg, registry, repository, digest, scopes, &exists, err)) != 0 || exists)
		goto out;
	if (!src && !mount_from) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND, "registry %s: %s has no blob %s", registry,
		                repository, digest);
		goto out;
	}

	/* start: a mount, or an upload session */
	esc = curl_easy_init();
	edigest = esc ? curl_easy_escape(esc, digest, 0) : NULL;
	if (mount_from)
		url = ht_asprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", base, repository,
		                  edigest ? edigest : "", mount_from);
	else
		url = ht_asprintf("%s/v2/%s/blobs/uploads/", base, repository);
	struct ht_http_req post = {.registry = registry, .method = "POST", .url = url, .scopes = scopes};
	rc = url && edigest ? ht_registry_request(reg, &post, &resp, err) : nomem(err);
	if (!rc && mount_from && resp.status == 201)
		goto done; /* mounted */
	if (!rc)
		rc = upload_location(&post, &resp, &location, err);
	if (!rc && !src) {
		/* not mounted, and nothing to upload: give the session back */
		ht_http_resp_reset(&resp);
		struct ht_http_req del = {.registry = registry, .method = "DELETE", .url = location,
		                       .scopes = scopes};
		ht_registry_request(reg, &del, &resp, NULL);
		rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND,
		                "registry %s: blob %s could not be mounted from %s into %s", registry,
		                digest, mount_from, repository);
	}
	/* the bytes, in one PATCH */
	if (!rc) {
		ht_http_resp_reset(&resp);
		struct ht_http_req patch = {.registry = registry, .method = "PATCH", .url = location,
		                         .content_type = "application/octet-stream", .data = src->data,
		                         .len = src->len, .file = src->data ? NULL : src->path,
		                         .has_body = 1, .scopes = scopes};
		rc = ht_registry_request(reg, &patch, &resp, err);
		char *next = NULL;
		if (!rc)
			rc = upload_location(&patch, &resp, &next, err);
		if (!rc) {
			free(location);
			location = next;
		}
	}
	/* and the end, naming the digest */
	if (!rc) {
		ht_http_resp_reset(&resp);
		free(url);
		url = ht_asprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', edigest);
		struct ht_http_req put = {.registry = registry, .method = "PUT", .url = url, .data = "",
		                       .has_body = 1, .scopes = scopes};
		rc = url ? ht_registry_request(reg, &put, &resp, err) : nomem(err);
		if (!rc && resp.status != 201)
			rc = ht_registry_http_error(&put, &resp, err);
		if (!rc && uploaded)
			*uploaded = 1;
	}
done:
	if (!rc && resp.docker_digest && strcmp(resp.docker_digest, digest) != 0)
		rc = ht_err_set(err, HYPERTEST_ERR_DIGEST,
		                "registry %s: blob pushed to %s: digest mismatch: expected %s, actual %s",
		                registry, repository, digest, resp.docker_digest);
out:
	curl_free(edigest);
	if (esc)
		curl_easy_cleanup(esc);
	ht_http_resp_reset(&resp);
	free(location);
	free(url);
	free(base);
	free(push_scope);
	free(from_scope);
	return rc;
}

int ht_registry_put_manifest(ht_registry *reg, const char *registry, const char *repository,
                             const char *reference, const char *media_type, const char *body,
                             size_t len, char digest[80], ht_err *err)
{
	char computed[80];
	if (sha256_text(body, len, computed) != 0)
		return nomem(err);
	char *base = ht_registry_base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/manifests/%s", base, repository, reference) : NULL;
	char *scope = ht_asprintf("repository:%s:pull,push", repository);
	const char *scopes[] = {scope, NULL};
	struct ht_http_req req = {.registry = registry, .method = "PUT", .url = url,
	                       .content_type = media_type, .data = body, .len = len, .has_body = 1,
	                       .scopes = scopes};
	struct ht_http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url && scope ? ht_registry_request(reg, &req, &resp, err) : nomem(err);
	if (!rc && resp.status != 201 && resp.status != 200)
		rc = ht_registry_http_error(&req, &resp, err);
	if (!rc && resp.docker_digest && strcmp(resp.docker_digest, computed) != 0)
		rc = ht_err_set(err, HYPERTEST_ERR_DIGEST,
		                "registry %s: manifest pushed to %s:%s: digest mismatch: expected %s, "
		                "registry says %s",
		                registry, repository, reference, computed, resp.docker_digest);
	if (!rc)
		memcpy(digest, computed, strlen(computed) + 1);
	ht_http_resp_reset(&resp);
	free(base);
	free(url);
	free(scope);
	return rc;
}
