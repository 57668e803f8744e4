/*
 * registry_http.c - the registry client object and its HTTP exchanges over
 * libcurl: credentials and plain-HTTP hosts, one easy handle per request
 * sharing connections, DNS and TLS sessions through a locked CURLSH, and
 * authentication: a 401 answer's WWW-Authenticate challenge says Basic or
 * Bearer (realm, service, scope); Bearer tokens come from the realm and are
 * cached per registry and scope until they expire; later requests to that
 * registry authenticate up front.
 *
 * TLS: the certificate store is built once per client from the CA bundle
 * (SSL_CERT_FILE, else libcurl's default CA file, else its directory) on
 * the first HTTPS connection and installed in every connection's SSL_CTX
 * after it; libcurl's own CA options are cleared, as libcurl would
 * otherwise parse the whole bundle again for each new connection (it does
 * not cache its store while a CA directory is set, and Debian's build sets
 * one).  A libcurl on another TLS library (or another OpenSSL) is given
 * SSL_CERT_FILE, if set, with no CA directory.  Verification stays on.
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
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "registry_http.h"

#define ERROR_BODY_MAX 65536
#define TOKEN_MARGIN_MS 10000
#define DEFAULT_TOKEN_LIFE_S 60

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
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
	X509_STORE *store; /* under lock; built on the first HTTPS connection */
	char store_error[512];
	int no_ctx_callback; /* a libcurl on another TLS library */
	struct host *hosts;
	size_t n_hosts;
	struct token *tokens;
	size_t n_tokens;
	const atomic_int *cancel; /* ht_registry_set_cancel */
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

/* Is libcurl built on the OpenSSL we use ("OpenSSL/3.0.22": the same major
 * version, 1.1 for 1.1.x)?  Only then may its SSL_CTX get our store. */
static int curl_has_our_openssl(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	const char *s = v ? v->ssl_version : NULL;
	char want[32];
	snprintf(want, sizeof want, "OpenSSL/%lu.", (unsigned long)(OPENSSL_VERSION_NUMBER >> 28));
	if (!s || strncmp(s, want, strlen(want)) != 0)
		return 0;
	return OPENSSL_VERSION_NUMBER >> 28 >= 3 || strncmp(s + strlen(want), "1.", 2) == 0;
}

/* Install the client's store in a new connection's SSL_CTX (built once). */
static CURLcode ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *user)
{
	ht_registry *reg = user;
	(void)easy;
	pthread_mutex_lock(&reg->lock);
	if (!reg->store) {
		const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
		const char *env = getenv("SSL_CERT_FILE");
		const char *file = env && *env ? env : v->age >= CURLVERSION_SEVENTH ? v->cainfo : NULL;
		const char *dir = v->age >= CURLVERSION_SEVENTH ? v->capath : NULL;
		X509_STORE *s = X509_STORE_new();
		int ok = 0;
		if (file && file != env && access(file, R_OK) != 0)
			file = NULL; /* libcurl's default, missing here: its directory */
		ERR_clear_error();
		if (s && (file || dir))
			ok = X509_STORE_load_locations(s, file, file ? NULL : dir) == 1;
		else if (s)
			ok = X509_STORE_set_default_paths(s) == 1;
		if (!ok) {
			char detail[256];
			ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
			snprintf(reg->store_error, sizeof reg->store_error, "CA bundle %s: %s",
			         file ? file : dir ? dir : "(OpenSSL's default paths)", detail);
			X509_STORE_free(s);
			pthread_mutex_unlock(&reg->lock);
			return CURLE_SSL_CACERT_BADFILE;
		}
		X509_STORE_set_flags(s, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
		reg->store = s;
	}
	X509_STORE_up_ref(reg->store);
	SSL_CTX_set_cert_store(ssl_ctx, reg->store); /* takes that reference */
	pthread_mutex_unlock(&reg->lock);
	return CURLE_OK;
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
	reg->no_ctx_callback = !curl_has_our_openssl();
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
	if (reg->store)
		X509_STORE_free(reg->store);
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

void ht_registry_set_cancel(ht_registry *reg, const atomic_int *flag)
{
	reg->cancel = flag;
}

static int cancelled(const ht_registry *reg)
{
	return reg->cancel && atomic_load(reg->cancel) != 0;
}

/* libcurl calls it often while data flows and about once a second while
 * none does (a registry that stalls): non-zero aborts the transfer. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancelled(user);
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
char *ht_registry_base_url(ht_registry *reg, const char *registry)
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

void ht_http_resp_reset(struct ht_http_resp *r)
{
	free(r->location);
	free(r->docker_digest);
	free(r->content_type);
	free(r->www_auth);
	ht_buf_free(&r->body);
	memset(r, 0, sizeof *r);
}

struct xfer {
	const struct ht_http_req *req;
	struct ht_http_resp *resp;
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
	struct ht_http_resp *r = x->resp;
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
	struct ht_http_resp *r = x->resp;
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

/* The request's own headers: Accept, Content-Type, Authorization, and no
 * "Expect: 100-continue". */
static struct curl_slist *request_headers(const struct ht_http_req *req, const char *auth)
{
	struct curl_slist *hdrs = NULL;
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
	return curl_slist_append(hdrs, "Expect:");
}

/* What every request of the client sets: the URL, the shared cache, the CA
 * store, time limits, the callbacks and the protocols allowed. */
static void common_options(CURL *h, const struct ht_http_req *req, ht_registry *reg,
                           struct xfer *x, struct curl_slist *hdrs, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_SHARE, reg->share);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (!reg->no_ctx_callback) {
		curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
		curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, reg);
		curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	} else if (getenv("SSL_CERT_FILE") && *getenv("SSL_CERT_FILE")) {
		curl_easy_setopt(h, CURLOPT_CAINFO, getenv("SSL_CERT_FILE"));
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hypertest");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, reg);
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
}

/* The method, and the body when there is one (fsize: the file's size). */
static void method_options(CURL *h, const struct ht_http_req *req, struct xfer *x,
                           long long fsize)
{
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
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
		                 (curl_off_t)(req->file ? fsize : (long long)req->len));
		if (strcmp(req->method, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
}

/* What a finished transfer comes to: 0, or an error naming the registry,
 * the method and the path. */
static int outcome(const struct ht_http_req *req, ht_registry *reg, struct ht_http_resp *resp,
                   CURLcode cr, const char *errbuf, ht_err *err)
{
	char path[512];
	if (cr == CURLE_ABORTED_BY_CALLBACK && cancelled(reg))
		return ht_err_set(err, HYPERTEST_ERR_CANCELLED, "registry %s: %s %s: cancelled",
		                  req->registry, req->method, url_path(req->url, path, sizeof path));
	if (resp->sink_failed)
		return ht_err_set(err, resp->sink_err.code, "%s", resp->sink_err.msg);
	if (resp->too_big)
		return ht_err_set(err, HYPERTEST_ERR_HTTP,
		                  "registry %s: %s %s: answer larger than %zu bytes", req->registry,
		                  req->method, url_path(req->url, path, sizeof path), req->max_body);
	if (cr == CURLE_OK)
		return 0;
	char detail[sizeof reg->store_error];
	if (cr == CURLE_SSL_CACERT_BADFILE) {
		pthread_mutex_lock(&reg->lock);
		snprintf(detail, sizeof detail, "%s", reg->store_error);
		pthread_mutex_unlock(&reg->lock);
	} else {
		snprintf(detail, sizeof detail, "%s", errbuf);
	}
	return ht_err_set(err, HYPERTEST_ERR_HTTP, "registry %s: %s %s: %s%s%s", req->registry,
	                  req->method, url_path(req->url, path, sizeof path), curl_easy_strerror(cr),
	                  detail[0] ? ": " : "", detail);
}

static int perform(const struct ht_http_req *req, const char *auth, ht_registry *reg,
                   struct ht_http_resp *resp, ht_err *err)
{
	struct xfer x = {req, resp, NULL, req->data, req->len, -1};
	struct curl_slist *hdrs = NULL;
	char path[512], errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0;
	long long fsize = 0;
	if (cancelled(reg)) {
		rc = ht_err_set(err, HYPERTEST_ERR_CANCELLED, "registry %s: %s %s: cancelled",
		                req->registry, req->method, url_path(req->url, path, sizeof path));
		goto out;
	}
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
	hdrs = request_headers(req, auth);
	common_options(x.h, req, reg, &x, hdrs, errbuf);
	method_options(x.h, req, &x, fsize);
	CURLcode cr = curl_easy_perform(x.h);
	curl_easy_getinfo(x.h, CURLINFO_RESPONSE_CODE, &resp->status);
	rc = outcome(req, reg, resp, cr, errbuf, err);
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
int ht_registry_http_error(const struct ht_http_req *req, const struct ht_http_resp *resp, ht_err *err)
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
	struct ht_http_req req = {.registry = registry, .method = "GET", .url = url.data,
	                       .accept = "application/json", .max_body = 1 << 20};
	struct ht_http_resp resp;
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
	ht_http_resp_reset(&resp);
	ht_buf_free(&url);
	return rc;
}

/* The Authorization value to send up front (NULL: none known yet). */
static int auth_value(ht_registry *reg, const struct ht_http_req *req, char **out, ht_err *err)
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
static int answer_challenge(ht_registry *reg, const struct ht_http_req *req, const char *challenge,
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
int ht_registry_request(ht_registry *reg, const struct ht_http_req *req, struct ht_http_resp *resp,
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
			ht_http_resp_reset(resp);
			rc = perform(req, auth, reg, resp, err);
		}
	}
	free(auth);
	return rc;
}
