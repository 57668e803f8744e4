/*
 * registry.c - OCI distribution API client over libcurl: references,
 * authentication (none, Basic, Bearer challenge with a token cache keyed by
 * registry and scope), manifests and blobs with verified digests, uploads
 * (POST, PATCH, PUT; cross-repository mounts) and manifest pushes.
 *
 * Each request uses its own easy handle; the handles share connections,
 * DNS and TLS sessions through a locked CURLSH.  A 401 answer is met once:
 * its WWW-Authenticate challenge tells how to authenticate, and the request
 * is sent again; later requests to that registry authenticate up front.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "oci_layout.h"
#include "registry.h"

#define DOCKER_HUB "registry-1.docker.io"
#define MANIFEST_MAX (4 << 20)
#define CONFIG_MAX (64 << 20)
#define ERROR_BODY_MAX 65536
#define TOKEN_MARGIN_MS 10000
#define DEFAULT_TOKEN_LIFE_S 60
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

/* ---- the client ------------------------------------------------------------------ */

enum auth_scheme { AUTH_UNKNOWN = 0, AUTH_BASIC, AUTH_BEARER };

struct host {
	char *name;
	char *user, *password;
	int plain, plain_set;
	enum auth_scheme scheme;
	char *realm, *service; /* Bearer */
};

struct token {
	char *key; /* "host scope scope..." */
	char *value;
	int64_t expires_ms;
};

struct ht_registry {
	pthread_mutex_t lock; /* refs, hosts, tokens */
	int refs;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	struct host *hosts;
	size_t n_hosts;
	struct token *tokens;
	size_t n_tokens;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
	(void)h;
	(void)access;
	ht_registry *reg = user;
	pthread_mutex_lock(&reg->share_lock[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
	(void)h;
	ht_registry *reg = user;
	pthread_mutex_unlock(&reg->share_lock[data]);
}

ht_registry *ht_registry_new(ht_err *err)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		ht_err_set(err, HYPERTEST_ERR_HTTP, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	ht_registry *reg = calloc(1, sizeof *reg);
	if (!reg) {
		nomem(err);
		return NULL;
	}
	pthread_mutex_init(&reg->lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&reg->share_lock[i], NULL);
	reg->refs = 1;
	reg->share = curl_share_init();
	if (!reg->share) {
		ht_registry_unref(reg);
		nomem(err);
		return NULL;
	}
	curl_share_setopt(reg->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(reg->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(reg->share, CURLSHOPT_USERDATA, reg);
	curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	return reg;
}

ht_registry *ht_registry_ref(ht_registry *reg)
{
	pthread_mutex_lock(&reg->lock);
	reg->refs++;
	pthread_mutex_unlock(&reg->lock);
	return reg;
}

void ht_registry_unref(ht_registry *reg)
{
	if (!reg)
		return;
	pthread_mutex_lock(&reg->lock);
	int last = --reg->refs == 0;
	pthread_mutex_unlock(&reg->lock);
	if (!last)
		return;
	if (reg->share)
		curl_share_cleanup(reg->share);
	for (size_t i = 0; i < reg->n_hosts; i++) {
		struct host *h = &reg->hosts[i];
		free(h->name);
		free(h->user);
		if (h->password)
			memset(h->password, 0, strlen(h->password));
		free(h->password);
		free(h->realm);
		free(h->service);
	}
	for (size_t i = 0; i < reg->n_tokens; i++) {
		free(reg->tokens[i].key);
		free(reg->tokens[i].value);
	}
	free(reg->hosts);
	free(reg->tokens);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&reg->share_lock[i]);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* The entry of registry name (created); call with the lock held. */
static struct host *host_get(ht_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n_hosts; i++)
		if (!strcmp(reg->hosts[i].name, name))
			return &reg->hosts[i];
	struct host *n = realloc(reg->hosts, (reg->n_hosts + 1) * sizeof *n);
	if (!n)
		return NULL;
	reg->hosts = n;
	struct host *h = &reg->hosts[reg->n_hosts];
	memset(h, 0, sizeof *h);
	if (!(h->name = ht_strdup(name)))
		return NULL;
	reg->n_hosts++;
	return h;
}

int ht_registry_set_credentials(ht_registry *reg, const char *registry, const char *user,
                                const char *password, ht_err *err)
{
	pthread_mutex_lock(&reg->lock);
	struct host *h = host_get(reg, registry);
	char *u = ht_strdup(user), *p = ht_strdup(password);
	int rc = 0;
	if (!h || (user && !u) || (password && !p)) {
		free(u);
		free(p);
		rc = nomem(err);
	} else {
		free(h->user);
		free(h->password);
		h->user = u;
		h->password = p;
	}
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

int ht_registry_set_plain_http(ht_registry *reg, const char *registry, int plain, ht_err *err)
{
	pthread_mutex_lock(&reg->lock);
	struct host *h = host_get(reg, registry);
	if (h) {
		h->plain = plain;
		h->plain_set = 1;
	}
	pthread_mutex_unlock(&reg->lock);
	return h ? 0 : nomem(err);
}

static int default_plain(const char *registry)
{
	return !strncmp(registry, "localhost", 9) || !strncmp(registry, "127.", 4) ||
	       !strncmp(registry, "[::1]", 5);
}

/* "http(s)://registry" (malloc'd). */
static char *base_url(ht_registry *reg, const char *registry)
{
	pthread_mutex_lock(&reg->lock);
	int plain = default_plain(registry);
	for (size_t i = 0; i < reg->n_hosts; i++)
		if (!strcmp(reg->hosts[i].name, registry) && reg->hosts[i].plain_set)
			plain = reg->hosts[i].plain;
	pthread_mutex_unlock(&reg->lock);
	return ht_asprintf("%s://%s", plain ? "http" : "https", registry);
}

/* ---- one HTTP exchange ------------------------------------------------------------ */

typedef int (*body_sink)(void *ctx, const void *data, size_t len, ht_err *err);

struct http_req {
	const char *registry; /* for messages and authentication */
	const char *method;
	const char *url;
	const char *accept;
	const char *content_type;
	const void *data; /* request body in memory, or */
	size_t len;
	const char *file; /* a file (the whole of it) */
	int has_body;
	int follow;       /* follow redirects (blob downloads) */
	size_t max_body;  /* of a 2xx answer kept in memory */
	body_sink sink;   /* or where a 2xx answer's body goes */
	void *sink_ctx;
	const char *const *scopes; /* NULL-terminated */
};

struct http_resp {
	long status;
	char *location;
	char *docker_digest;
	char *content_type;
	char *www_auth;
	ht_buf body;
	int too_big;
	int sink_failed;
	ht_err sink_err;
};

static void resp_reset(struct http_resp *r)
{
	free(r->location);
	free(r->docker_digest);
	free(r->content_type);
	free(r->www_auth);
	ht_buf_free(&r->body);
	memset(r, 0, sizeof *r);
}

struct xfer {
	const struct http_req *req;
	struct http_resp *resp;
	CURL *h;
	/* upload */
	const char *data;
	size_t left;
	int fd;
};

static char *trimmed(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' '))
		n--;
	return strndup(s, n);
}

static size_t on_header(char *buf, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	struct http_resp *r = x->resp;
	size_t len = size * n;
	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) { /* a new answer (redirect, 100) */
		free(r->location);
		free(r->docker_digest);
		free(r->content_type);
		free(r->www_auth);
		r->location = r->docker_digest = r->content_type = r->www_auth = NULL;
		return len;
	}
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	size_t kl = (size_t)(colon - buf);
	char **slot = NULL;
	if (kl == 8 && !strncasecmp(buf, "location", kl))
		slot = &r->location;
	else if (kl == 21 && !strncasecmp(buf, "docker-content-digest", kl))
		slot = &r->docker_digest;
	else if (kl == 12 && !strncasecmp(buf, "content-type", kl))
		slot = &r->content_type;
	else if (kl == 16 && !strncasecmp(buf, "www-authenticate", kl))
		slot = &r->www_auth;
	if (!slot)
		return len;
	char *v = trimmed(colon + 1, len - kl - 1);
	if (!v)
		return 0;
	if (slot == &r->www_auth && *slot && strncasecmp(v, "bearer", 6) != 0) {
		free(v); /* keep a Bearer challenge over another scheme */
		return len;
	}
	free(*slot);
	*slot = v;
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	struct http_resp *r = x->resp;
	size_t len = size * n;
	long status = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	int ok = status >= 200 && status < 300;
	if (ok && x->req->sink) {
		if (x->req->sink(x->req->sink_ctx, buf, len, &r->sink_err) != 0) {
			r->sink_failed = 1;
			return 0;
		}
		return len;
	}
	size_t max = ok && x->req->max_body ? x->req->max_body : ERROR_BODY_MAX;
	if (r->body.len + len > max) {
		if (ok && x->req->max_body) {
			r->too_big = 1;
			return 0;
		}
		len = max > r->body.len ? max - r->body.len : 0; /* keep the start of an error */
		if (len && ht_buf_append(&r->body, buf, len) != 0)
			return 0;
		return size * n;
	}
	if (ht_buf_append(&r->body, buf, len) != 0)
		return 0;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	size_t want = size * n;
	if (x->fd >= 0) {
		ssize_t got;
		do
			got = read(x->fd, buf, want);
		while (got < 0 && errno == EINTR);
		return got < 0 ? CURL_READFUNC_ABORT : (size_t)got;
	}
	if (want > x->left)
		want = x->left;
	memcpy(buf, x->data, want);
	x->data += want;
	x->left -= want;
	return want;
}

/* The request path without its query, for messages. */
static const char *url_path(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	snprintf(out, outlen, "%s", p ? p : url);
	char *q = strchr(out, '?');
	if (q)
		*q = '\0';
	return out;
}

static int perform(const struct http_req *req, const char *auth, ht_registry *reg,
                   struct http_resp *resp, ht_err *err)
{
	struct xfer x = {req, resp, NULL, req->data, req->len, -1};
	struct curl_slist *hdrs = NULL;
	char path[512];
	int rc = 0;
	long long fsize = 0;
	if (req->file) {
		x.fd = open(req->file, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (x.fd < 0 || fstat(x.fd, &st) != 0) {
			rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", req->file, strerror(errno));
			goto out;
		}
		fsize = st.st_size;
	}
	x.h = curl_easy_init();
	if (!x.h) {
		rc = nomem(err);
		goto out;
	}
	CURL *h = x.h;
	char line[8192];
	if (req->accept) {
		snprintf(line, sizeof line, "Accept: %s", req->accept);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (req->content_type) {
		snprintf(line, sizeof line, "Content-Type: %s", req->content_type);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (auth) {
		snprintf(line, sizeof line, "Authorization: %s", auth);
		hdrs = curl_slist_append(hdrs, line);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_SHARE, reg->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hypertest");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (req->follow) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	}
	if (!strcmp(req->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(req->method, "POST") && !req->has_body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(req->method, "GET") != 0 && !req->has_body) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, &x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
		                 (curl_off_t)(req->file ? fsize : (long long)req->len));
		if (strcmp(req->method, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
	CURLcode cr = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (resp->sink_failed) {
		rc = ht_err_set(err, resp->sink_err.code, "%s", resp->sink_err.msg);
	} else if (resp->too_big) {
		rc = ht_err_set(err, HYPERTEST_ERR_HTTP, "registry %s: %s %s: answer larger than %zu bytes",
		                req->registry, req->method, url_path(req->url, path, sizeof path),
		                req->max_body);
	} else if (cr != CURLE_OK) {
		rc = ht_err_set(err, HYPERTEST_ERR_HTTP, "registry %s: %s %s: %s", req->registry,
		                req->method, url_path(req->url, path, sizeof path), curl_easy_strerror(cr));
	}
out:
	if (x.h)
		curl_easy_cleanup(x.h);
	curl_slist_free_all(hdrs);
	if (x.fd >= 0)
		close(x.fd);
	return rc;
}

/* An error from a registry answer: the status and the registry's own
 * errors[0].code and message. */
static int http_error(const struct http_req *req, const struct http_resp *resp, ht_err *err)
{
	char path[512];
	const char *code = NULL, *message = NULL;
	json_t *j = resp->body.len ? json_loadb(resp->body.data, resp->body.len, 0, NULL) : NULL;
	json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
	code = json_string_value(json_object_get(e0, "code"));
	message = json_string_value(json_object_get(e0, "message"));
	int kind = resp->status == 401 || resp->status == 403 ? HYPERTEST_ERR_AUTH
	           : resp->status == 404                      ? HYPERTEST_ERR_NOT_FOUND
	                                                      : HYPERTEST_ERR_HTTP;
	int rc = ht_err_set(err, kind, "registry %s: %s %s: HTTP %ld%s%s%s%s", req->registry,
	                    req->method, url_path(req->url, path, sizeof path), resp->status,
	                    code ? " " : "", code ? code : "", message ? ": " : "",
	                    message ? message : "");
	json_decref(j);
	return rc;
}

/* ---- authentication ------------------------------------------------------------- */

/* The value of key in a challenge 'Scheme k1="v1",k2=v2' (malloc'd), or
 * NULL.  Quoted values may hold commas and backslash escapes. */
static char *challenge_param(const char *ch, const char *key)
{
	const char *p = ch + strcspn(ch, " "); /* after the scheme */
	size_t kl = strlen(key);
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *k = p;
		while (*p && *p != '=' && *p != ',')
			p++;
		if (*p != '=')
			continue;
		int match = (size_t)(p - k) == kl && !strncasecmp(k, key, kl);
		p++;
		ht_buf v = HT_BUF_INIT;
		ht_buf_append(&v, "", 0);
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				ht_buf_append(&v, p, 1);
			}
			if (*p == '"')
				p++;
		} else {
			size_t n = strcspn(p, ", ");
			ht_buf_append(&v, p, n);
			p += n;
		}
		if (match)
			return ht_buf_steal(&v);
		ht_buf_free(&v);
	}
	return NULL;
}

static char *scope_key(const char *registry, const char *const *scopes)
{
	ht_buf b = HT_BUF_INIT;
	ht_buf_puts(&b, registry);
	for (size_t i = 0; scopes && scopes[i]; i++) {
		ht_buf_puts(&b, " ");
		ht_buf_puts(&b, scopes[i]);
	}
	return ht_buf_steal(&b);
}

struct creds {
	char *user, *password;
	enum auth_scheme scheme;
	char *realm, *service;
};

static void creds_free(struct creds *c)
{
	free(c->user);
	if (c->password)
		memset(c->password, 0, strlen(c->password));
	free(c->password);
	free(c->realm);
	free(c->service);
}

static void creds_get(ht_registry *reg, const char *registry, struct creds *c)
{
	memset(c, 0, sizeof *c);
	pthread_mutex_lock(&reg->lock);
	for (size_t i = 0; i < reg->n_hosts; i++) {
		struct host *h = &reg->hosts[i];
		if (strcmp(h->name, registry) != 0)
			continue;
		c->user = ht_strdup(h->user);
		c->password = ht_strdup(h->password);
		c->scheme = h->scheme;
		c->realm = ht_strdup(h->realm);
		c->service = ht_strdup(h->service);
	}
	pthread_mutex_unlock(&reg->lock);
}

static char *basic_header(const struct creds *c)
{
	char *plain = ht_asprintf("%s:%s", c->user ? c->user : "", c->password ? c->password : "");
	if (!plain)
		return NULL;
	size_t n = strlen(plain);
	char *out = malloc(6 + 4 * ((n + 2) / 3) + 1);
	if (out) {
		memcpy(out, "Basic ", 6);
		EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, (int)n);
	}
	memset(plain, 0, n);
	free(plain);
	return out;
}

static char *token_cached(ht_registry *reg, const char *key)
{
	char *v = NULL;
	int64_t now = ht_now_ms();
	pthread_mutex_lock(&reg->lock);
	for (size_t i = 0; i < reg->n_tokens; i++)
		if (!strcmp(reg->tokens[i].key, key) && reg->tokens[i].expires_ms > now)
			v = ht_strdup(reg->tokens[i].value);
	pthread_mutex_unlock(&reg->lock);
	return v;
}

static void token_store(ht_registry *reg, const char *key, const char *value, int64_t expires)
{
	pthread_mutex_lock(&reg->lock);
	struct token *t = NULL;
	for (size_t i = 0; i < reg->n_tokens && !t; i++)
		if (!strcmp(reg->tokens[i].key, key))
			t = &reg->tokens[i];
	if (!t) {
		struct token *n = realloc(reg->tokens, (reg->n_tokens + 1) * sizeof *n);
		if (n) {
			reg->tokens = n;
			t = &reg->tokens[reg->n_tokens];
			memset(t, 0, sizeof *t);
			if ((t->key = ht_strdup(key)) != NULL)
				reg->n_tokens++;
			else
				t = NULL;
		}
	}
	if (t) {
		char *v = ht_strdup(value);
		if (v) {
			free(t->value);
			t->value = v;
			t->expires_ms = expires;
		}
	}
	pthread_mutex_unlock(&reg->lock);
}

/* Ask the token service named by the challenge for a token for scopes. */
static int fetch_token(ht_registry *reg, const char *registry, const struct creds *c,
                       const char *const *scopes, const char *extra_scope, char **token,
                       ht_err *err)
{
	*token = NULL;
	CURL *esc = curl_easy_init();
	if (!esc)
		return nomem(err);
	ht_buf url = HT_BUF_INIT;
	ht_buf_puts(&url, c->realm);
	char sep = strchr(c->realm, '?') ? '&' : '?';
	if (c->service) {
		char *e = curl_easy_escape(esc, c->service, 0);
		ht_buf_printf(&url, "%cservice=%s", sep, e ? e : "");
		curl_free(e);
		sep = '&';
	}
	int have_extra = 0;
	for (size_t i = 0; scopes && scopes[i]; i++) {
		char *e = curl_easy_escape(esc, scopes[i], 0);
		ht_buf_printf(&url, "%cscope=%s", sep, e ? e : "");
		curl_free(e);
		sep = '&';
		if (extra_scope && !strcmp(extra_scope, scopes[i]))
			have_extra = 1;
	}
	if (extra_scope && !have_extra) {
		char *e = curl_easy_escape(esc, extra_scope, 0);
		ht_buf_printf(&url, "%cscope=%s", sep, e ? e : "");
		curl_free(e);
	}
	curl_easy_cleanup(esc);
	if (!url.data)
		return nomem(err);
	char *basic = c->user ? basic_header(c) : NULL;
	struct http_req req = {.registry = registry, .method = "GET", .url = url.data,
	                       .accept = "application/json", .max_body = 1 << 20};
	struct http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = perform(&req, basic, reg, &resp, err);
	free(basic);
	if (!rc && resp.status != 200) {
		char path[512];
		rc = ht_err_set(err, HYPERTEST_ERR_AUTH, "registry %s: token service %s: HTTP %ld%s%.200s",
		                registry, url_path(c->realm, path, sizeof path), resp.status,
		                resp.body.len ? ": " : "", resp.body.len ? resp.body.data : "");
	}
	json_t *j = NULL;
	if (!rc) {
		j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
		const char *t = json_string_value(json_object_get(j, "token"));
		if (!t)
			t = json_string_value(json_object_get(j, "access_token"));
		json_int_t life = json_integer_value(json_object_get(j, "expires_in"));
		if (life <= 0)
			life = DEFAULT_TOKEN_LIFE_S;
		if (!t || !*t) {
			rc = ht_err_set(err, HYPERTEST_ERR_AUTH, "registry %s: token service %s gave no token",
			                registry, c->realm);
		} else {
			*token = ht_strdup(t);
			char *key = scope_key(registry, scopes);
			if (*token && key)
				token_store(reg, key, t, ht_now_ms() + (int64_t)life * 1000 - TOKEN_MARGIN_MS);
			free(key);
			if (!*token)
				rc = nomem(err);
		}
	}
	json_decref(j);
	resp_reset(&resp);
	ht_buf_free(&url);
	return rc;
}

/* The Authorization value to send up front (NULL: none known yet). */
static int auth_value(ht_registry *reg, const struct http_req *req, char **out, ht_err *err)
{
	*out = NULL;
	struct creds c;
	creds_get(reg, req->registry, &c);
	int rc = 0;
	if (c.scheme == AUTH_BASIC && c.user) {
		if (!(*out = basic_header(&c)))
			rc = nomem(err);
	} else if (c.scheme == AUTH_BEARER && c.realm) {
		char *key = scope_key(req->registry, req->scopes);
		char *tok = key ? token_cached(reg, key) : NULL;
		free(key);
		if (!tok)
			rc = fetch_token(reg, req->registry, &c, req->scopes, NULL, &tok, err);
		if (!rc) {
			*out = ht_asprintf("Bearer %s", tok);
			if (!*out)
				rc = nomem(err);
		}
		free(tok);
	}
	creds_free(&c);
	return rc;
}

/* Learn from a 401 challenge; *auth receives what to send now. */
static int answer_challenge(ht_registry *reg, const struct http_req *req, const char *challenge,
                            char **auth, ht_err *err)
{
	*auth = NULL;
	if (!challenge)
		return ht_err_set(err, HYPERTEST_ERR_AUTH,
		                  "registry %s: %s answered 401 without a WWW-Authenticate challenge",
		                  req->registry, req->method);
	int bearer = !strncasecmp(challenge, "bearer", 6);
	int basic = !strncasecmp(challenge, "basic", 5);
	if (!bearer && !basic)
		return ht_err_set(err, HYPERTEST_ERR_AUTH, "registry %s: unsupported challenge '%.100s'",
		                  req->registry, challenge);
	char *realm = bearer ? challenge_param(challenge, "realm") : NULL;
	char *service = bearer ? challenge_param(challenge, "service") : NULL;
	char *scope = bearer ? challenge_param(challenge, "scope") : NULL;
	int rc = 0;
	if (bearer && !realm) {
		rc = ht_err_set(err, HYPERTEST_ERR_AUTH, "registry %s: Bearer challenge without realm",
		                req->registry);
		goto out;
	}
	pthread_mutex_lock(&reg->lock);
	struct host *h = host_get(reg, req->registry);
	if (h) {
		h->scheme = bearer ? AUTH_BEARER : AUTH_BASIC;
		free(h->realm);
		free(h->service);
		h->realm = realm;
		h->service = service;
		realm = service = NULL;
	}
	pthread_mutex_unlock(&reg->lock);
	if (!h) {
		rc = nomem(err);
		goto out;
	}
	struct creds c;
	creds_get(reg, req->registry, &c);
	if (basic) {
		if (!c.user)
			rc = ht_err_set(err, HYPERTEST_ERR_AUTH,
			                "registry %s asks for a user name and password and none was given",
			                req->registry);
		else if (!(*auth = basic_header(&c)))
			rc = nomem(err);
	} else {
		char *tok = NULL;
		rc = fetch_token(reg, req->registry, &c, req->scopes, scope, &tok, err);
		if (!rc && !(*auth = ht_asprintf("Bearer %s", tok)))
			rc = nomem(err);
		free(tok);
	}
	creds_free(&c);
out:
	free(realm);
	free(service);
	free(scope);
	return rc;
}

/* A request with authentication: up front when the registry's scheme is
 * known, else after its 401 challenge (once). */
static int request(ht_registry *reg, const struct http_req *req, struct http_resp *resp,
                   ht_err *err)
{
	char *auth = NULL;
	int rc = auth_value(reg, req, &auth, err);
	if (!rc)
		rc = perform(req, auth, reg, resp, err);
	if (!rc && resp->status == 401) {
		char *challenge = resp->www_auth ? ht_strdup(resp->www_auth) : NULL;
		free(auth);
		rc = answer_challenge(reg, req, challenge, &auth, err);
		free(challenge);
		if (!rc) {
			resp_reset(resp);
			rc = perform(req, auth, reg, resp, err);
		}
	}
	free(auth);
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
	char *base = base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/manifests/%s", base, repository, reference) : NULL;
	char *scope = ht_asprintf("repository:%s:pull", repository);
	const char *scopes[] = {scope, NULL};
	struct http_req req = {.registry = registry, .method = "GET", .url = url,
	                       .accept = ACCEPT_MANIFESTS, .max_body = MANIFEST_MAX, .scopes = scopes};
	struct http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url && scope ? request(reg, &req, &resp, err) : nomem(err);
	if (!rc && resp.status != 200)
		rc = http_error(&req, &resp, err);
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
	resp_reset(&resp);
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
	char *base = base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/blobs/%s", base, repository, digest) : NULL;
	char *scope = ht_asprintf("repository:%s:pull", repository);
	const char *scopes[] = {scope, NULL};
	struct http_req req = {.registry = registry, .method = "GET", .url = url, .follow = 1,
	                       .sink = blob_sink_write, .sink_ctx = s, .scopes = scopes};
	struct http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url && scope ? request(reg, &req, &resp, err) : nomem(err);
	if (!rc && resp.status != 200)
		rc = http_error(&req, &resp, err);
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
	resp_reset(&resp);
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
	char *base = base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/blobs/%s", base, repository, digest) : NULL;
	struct http_req req = {.registry = registry, .method = "HEAD", .url = url, .scopes = scopes};
	struct http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url ? request(reg, &req, &resp, err) : nomem(err);
	if (!rc) {
		if (resp.status == 200)
			*exists = 1;
		else if (resp.status != 404)
			rc = http_error(&req, &resp, err);
	}
	resp_reset(&resp);
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
static int upload_location(const struct http_req *req, const struct http_resp *resp,
                           char **next, ht_err *err)
{
	*next = NULL;
	if (resp->status != 202)
		return http_error(req, resp, err);
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
	char *base = base_url(reg, registry);
	char *location = NULL, *url = NULL, *edigest = NULL;
	CURL *esc = NULL;
	struct http_resp resp;
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
	struct http_req post = {.registry = registry, .method = "POST", .url = url, .scopes = scopes};
	rc = url && edigest ? request(reg, &post, &resp, err) : nomem(err);
	if (!rc && mount_from && resp.status == 201)
		goto done; /* mounted */
	if (!rc)
		rc = upload_location(&post, &resp, &location, err);
	if (!rc && !src) {
		/* not mounted, and nothing to upload: give the session back */
		resp_reset(&resp);
		struct http_req del = {.registry = registry, .method = "DELETE", .url = location,
		                       .scopes = scopes};
		request(reg, &del, &resp, NULL);
		rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND,
		                "registry %s: blob %s could not be mounted from %s into %s", registry,
		                digest, mount_from, repository);
	}
	/* the bytes, in one PATCH */
	if (!rc) {
		resp_reset(&resp);
		struct http_req patch = {.registry = registry, .method = "PATCH", .url = location,
		                         .content_type = "application/octet-stream", .data = src->data,
		                         .len = src->len, .file = src->data ? NULL : src->path,
		                         .has_body = 1, .scopes = scopes};
		rc = request(reg, &patch, &resp, err);
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
		resp_reset(&resp);
		free(url);
		url = ht_asprintf("%s%cdigest=%s", location, strchr(location, '?') ? '&' : '?', edigest);
		struct http_req put = {.registry = registry, .method = "PUT", .url = url, .data = "",
		                       .has_body = 1, .scopes = scopes};
		rc = url ? request(reg, &put, &resp, err) : nomem(err);
		if (!rc && resp.status != 201)
			rc = http_error(&put, &resp, err);
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
	resp_reset(&resp);
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
	char *base = base_url(reg, registry);
	char *url = base ? ht_asprintf("%s/v2/%s/manifests/%s", base, repository, reference) : NULL;
	char *scope = ht_asprintf("repository:%s:pull,push", repository);
	const char *scopes[] = {scope, NULL};
	struct http_req req = {.registry = registry, .method = "PUT", .url = url,
	                       .content_type = media_type, .data = body, .len = len, .has_body = 1,
	                       .scopes = scopes};
	struct http_resp resp;
	memset(&resp, 0, sizeof resp);
	int rc = url && scope ? request(reg, &req, &resp, err) : nomem(err);
	if (!rc && resp.status != 201 && resp.status != 200)
		rc = http_error(&req, &resp, err);
	if (!rc && resp.docker_digest && strcmp(resp.docker_digest, computed) != 0)
		rc = ht_err_set(err, HYPERTEST_ERR_DIGEST,
		                "registry %s: manifest pushed to %s:%s: digest mismatch: expected %s, "
		                "registry says %s",
		                registry, repository, reference, computed, resp.docker_digest);
	if (!rc)
		memcpy(digest, computed, strlen(computed) + 1);
	resp_reset(&resp);
	free(base);
	free(url);
	free(scope);
	return rc;
}
