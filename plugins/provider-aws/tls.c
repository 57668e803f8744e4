/*
 * tls.c - the aws provider's TLS settings: the CA bundle and where it came
 * from, one certificate store built from it on the first HTTPS connection
 * and installed (one more reference) in the SSL_CTX of every connection
 * after, and one libcurl share of TLS sessions and DNS answers for every
 * handle of the instance.
 *
 * Why: libcurl (7.88) builds a fresh store from the CA file for each new
 * connection as long as a CA directory is also set, which Debian's build
 * does by default; a bundle of 150 roots costs about 12 ms of CPU and
 * 0.9 MB per connection.  Here the CA file and directory options of
 * libcurl are cleared, so libcurl loads nothing, and the callback hands
 * each SSL_CTX the shared store.  With a libcurl built on another TLS
 * library (or another OpenSSL) the file is given to libcurl instead, with
 * no CA directory, which lets libcurl's own store cache work.
 *
 * The builtin HTTP client of the asynchronous mode (http-conn.c) needs no
 * callback: one SSL_CTX per instance (aws_tls_ctx) holds the same store,
 * and its connections' TLS sessions are kept here, one per host and port,
 * for the next connections to resume.  The sessions libcurl's connections
 * negotiate are kept here too (the callback chains libcurl's new-session
 * callback), so that the invocations resume the session of the drift
 * check's GetFunction, and parallel S3 uploads that of the manifest's GET.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "tls.h"

struct aws_tls {
	pthread_mutex_t mu;        /* the reference count and the store */
	unsigned refs;
	char *ca;                  /* file or directory; NULL: OpenSSL's default paths */
	int ca_is_dir;
	char *source;
	X509_STORE *store;         /* built on the first HTTPS connection */
	unsigned loads;
	char load_error[512];      /* why the store could not be built */
	int no_ctx_callback;       /* libcurl refused CURLOPT_SSL_CTX_FUNCTION */
	int can_trim;              /* aws_tls_trim may call SSL_free_buffers */
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	/* the builtin transport (http-conn.c): one SSL_CTX, made on its first
	 * HTTPS connection, and one TLS session kept per host and port */
	SSL_CTX *ctx;
	int safe_free_buffers;     /* SSL_free_buffers has the fix of CVE-2024-4741 */
	struct tls_session {
		char *key;             /* "host:port" */
		SSL_SESSION *sess;
	} *sessions;
	size_t nsessions;
	int (*curl_new_cb)(SSL *, SSL_SESSION *); /* libcurl's, chained */
};

/* What a libcurl connection's SSL_CTX (one per connection with libcurl
 * 7.88) carries, as ex data under ex_index: its aws_tls (borrowed) and
 * the "host:port" of the URL it was made for. */
typedef struct curl_ctx_data {
	aws_tls *t;
	char key[];
} curl_ctx_data;

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_index = -1; /* written once, under ex_once */

static void ex_index_make(void)
{
	ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
}

static int keep_session(aws_tls *t, const char *key, SSL_SESSION *sess);

int aws_tls_curl_has_our_openssl(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	const char *s = v ? v->ssl_version : NULL;
	char want[32];
	/* "OpenSSL/3.0.22": the same major version (1.1 for 1.1.x) as ours */
	snprintf(want, sizeof want, "OpenSSL/%lu.", (unsigned long)(OPENSSL_VERSION_NUMBER >> 28));
	if (!s || strncmp(s, want, strlen(want)) != 0)
		return 0;
	return OPENSSL_VERSION_NUMBER >> 28 >= 3 ||
	       strncmp(s + strlen(want), "1.", 2) == 0; /* 1.1.x, not 1.0.x */
}

/* ---- the share's locks ------------------------------------------------------------- */

static void share_lock(CURL *easy, curl_lock_data data, curl_lock_access access, void *ud)
{
	aws_tls *t = ud;
	(void)easy;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&t->locks[data]);
}

static void share_unlock(CURL *easy, curl_lock_data data, void *ud)
{
	aws_tls *t = ud;
	(void)easy;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&t->locks[data]);
}

/* ---- choosing the bundle ------------------------------------------------------------ */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static aws_tls *make(const char *option, const char *profile_value, const char *profile_source,
                     int strict, char **err);

/* SSL_free_buffers of the OpenSSL loaded has the fix of CVE-2024-4741. */
static int free_buffers_is_safe(void)
{
	unsigned long v = OpenSSL_version_num();
	unsigned long major = v >> 28, minor = (v >> 20) & 0xff, patch = (v >> 4) & 0xff;
	static const unsigned long fixed[] = {14, 6, 2, 1}; /* 3.0.14, 3.1.6, 3.2.2, 3.3.1 */
	if (major != 3)
		return 0;
	return minor >= 4 || patch >= fixed[minor];
}

aws_tls *aws_tls_new(const char *option, const char *profile_value, const char *profile_source,
                     char **err)
{
	return make(option, profile_value, profile_source, 1, err);
}

aws_tls *aws_tls_new_default(char **err)
{
	return make(NULL, NULL, NULL, 0, err);
}

/* strict: refuse an unreadable bundle now; else its first HTTPS connection
 * fails, naming it */
static aws_tls *make(const char *option, const char *profile_value, const char *profile_source,
                     int strict, char **err)
{
	aws_tls *t;
	const char *ca = NULL, *source = NULL;
	struct stat st;
	int i;
	if (option && *option)
		ca = option, source = "option caBundle";
	else if (env("AWS_CA_BUNDLE"))
		ca = env("AWS_CA_BUNDLE"), source = "AWS_CA_BUNDLE";
	else if (profile_value && *profile_value)
		ca = profile_value, source = profile_source ? profile_source : "the profile's ca_bundle";
	else if (env("HYPERTEST_CA_BUNDLE"))
		ca = env("HYPERTEST_CA_BUNDLE"), source = "HYPERTEST_CA_BUNDLE";
	if (ca && (stat(ca, &st) != 0 || access(ca, R_OK) != 0)) {
		if (strict) {
			aws_fail(err, HYPERTEST_ERR_CONFIG, "CA bundle %s (from %s): cannot read: %s", ca,
			         source, strerror(errno));
			return NULL;
		}
		memset(&st, 0, sizeof st); /* taken for a file */
	}
	if (!(t = calloc(1, sizeof *t))) {
		aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->mu, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&t->locks[i], NULL);
	t->refs = 1;
	if (ca) {
		t->ca = strdup(ca);
		t->ca_is_dir = S_ISDIR(st.st_mode);
	} else {
		/* libcurl's default: its CA file, else its CA directory */
		const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
		source = "libcurl's default";
		if (v && v->age >= CURLVERSION_SEVENTH && v->cainfo && *v->cainfo &&
		    access(v->cainfo, R_OK) == 0) {
			t->ca = strdup(v->cainfo);
		} else if (v && v->age >= CURLVERSION_SEVENTH && v->capath && *v->capath) {
			t->ca = strdup(v->capath);
			t->ca_is_dir = 1;
		} else {
			source = "OpenSSL's default paths";
		}
	}
	t->source = strdup(source);
	t->share = curl_share_init();
	if ((ca && !t->ca) || !t->source || !t->share) {
		aws_tls_unref(t);
		aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		return NULL;
	}
	curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(t->share, CURLSHOPT_USERDATA, t);
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	/* the callback is handed an SSL_CTX of libcurl's OpenSSL: it must be ours */
	t->no_ctx_callback = !aws_tls_curl_has_our_openssl();
	t->safe_free_buffers = free_buffers_is_safe();
	t->can_trim = !t->no_ctx_callback && t->safe_free_buffers;
	return t;
}

aws_tls *aws_tls_ref(aws_tls *t)
{
	pthread_mutex_lock(&t->mu);
	t->refs++;
	pthread_mutex_unlock(&t->mu);
	return t;
}

void aws_tls_unref(aws_tls *t)
{
	unsigned left;
	int i;
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	left = --t->refs;
	pthread_mutex_unlock(&t->mu);
	if (left)
		return;
	if (t->share)
		curl_share_cleanup(t->share);
	if (t->store)
		X509_STORE_free(t->store);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	for (size_t k = 0; k < t->nsessions; k++) {
		free(t->sessions[k].key);
		SSL_SESSION_free(t->sessions[k].sess);
	}
	free(t->sessions);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&t->locks[i]);
	pthread_mutex_destroy(&t->mu);
	free(t->ca);
	free(t->source);
	free(t);
}

const char *aws_tls_ca(const aws_tls *t, int *ca_is_dir)
{
	if (ca_is_dir)
		*ca_is_dir = t->ca_is_dir;
	return t->ca;
}

const char *aws_tls_ca_source(const aws_tls *t)
{
	return t->source;
}

unsigned aws_tls_store_loads(aws_tls *t)
{
	unsigned n;
	pthread_mutex_lock(&t->mu);
	n = t->loads;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void aws_tls_load_error(aws_tls *t, char *buf, size_t size)
{
	pthread_mutex_lock(&t->mu);
	snprintf(buf, size, "%s", t->load_error[0] ? t->load_error : "no detail");
	pthread_mutex_unlock(&t->mu);
}

/* ---- the shared store ---------------------------------------------------------------- */

/* Build the store (t->mu held); 0, or -1 with t->load_error set. */
static int build_store(aws_tls *t)
{
	X509_STORE *s = X509_STORE_new();
	int ok;
	if (!s) {
		snprintf(t->load_error, sizeof t->load_error, "out of memory");
		return -1;
	}
	ERR_clear_error();
	if (!t->ca)
		ok = X509_STORE_set_default_paths(s);
	else if (t->ca_is_dir)
		ok = X509_STORE_load_locations(s, NULL, t->ca);
	else
		ok = X509_STORE_load_locations(s, t->ca, NULL);
	if (ok != 1) {
		char detail[256];
		ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
		snprintf(t->load_error, sizeof t->load_error, "CA bundle %s (from %s): %s",
		         t->ca ? t->ca : "(OpenSSL's default paths)", t->source, detail);
		X509_STORE_free(s);
		return -1;
	}
	/* what libcurl sets on a store of its own */
	X509_STORE_set_flags(s, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
	t->store = s;
	t->loads++;
	return 0;
}

/* "host:port" of the URL easy is requesting (the host without an IPv6
 * address's brackets, as the builtin transport names it), or -1. */
static int curl_session_key(CURL *easy, char *key, size_t size)
{
	char *url = NULL, *host = NULL, *port = NULL;
	CURLU *u;
	int rc = -1;
	if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || !url ||
	    !(u = curl_url()))
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		size_t n = strlen(host);
		for (char *c = host; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		int bracketed = n > 1 && host[0] == '[' && host[n - 1] == ']';
		int w = snprintf(key, size, "%.*s:%s", (int)(bracketed ? n - 2 : n),
		                 host + bracketed, port);
		rc = w > 0 && (size_t)w < size ? 0 : -1;
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return rc;
}

/* A new session of a libcurl connection: one more reference kept for the
 * builtin transport, then libcurl's own callback (its session cache). */
static int curl_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	curl_ctx_data *d = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
	int (*chained)(SSL *, SSL_SESSION *) = NULL;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t n;
	if (!d)
		return 0;
	pthread_mutex_lock(&d->t->mu);
	chained = d->t->curl_new_cb;
	pthread_mutex_unlock(&d->t->mu);
	/* a name sent must be the key's host (a context made for another URL
	 * is never keyed wrongly) */
	n = sni ? strlen(sni) : 0;
	if (!sni || (strncmp(d->key, sni, n) == 0 && d->key[n] == ':')) {
		SSL_SESSION_up_ref(sess);
		if (!keep_session(d->t, d->key, sess))
			SSL_SESSION_free(sess);
	}
	return chained ? chained(ssl, sess) : 0;
}

/* Put curl_session_cb in front of libcurl's new-session callback of
 * ssl_ctx (libcurl sets it before calling ssl_ctx_cb; without it, as with
 * CURLOPT_SSL_SESSIONID_CACHE off, the client cache is turned on for
 * ours alone). */
static void chain_sessions(aws_tls *t, CURL *easy, SSL_CTX *ssl_ctx)
{
	int (*cb)(SSL *, SSL_SESSION *);
	char key[300];
	curl_ctx_data *d;
	pthread_once(&ex_once, ex_index_make);
	if (ex_index < 0 || curl_session_key(easy, key, sizeof key) != 0 ||
	    SSL_CTX_get_ex_data(ssl_ctx, ex_index) || !(d = malloc(sizeof *d + strlen(key) + 1)))
		return;
	d->t = t;
	strcpy(d->key, key);
	if (!SSL_CTX_set_ex_data(ssl_ctx, ex_index, d)) {
		free(d);
		return;
	}
	cb = SSL_CTX_sess_get_new_cb(ssl_ctx);
	if (cb == curl_session_cb)
		return;
	if (cb) {
		pthread_mutex_lock(&t->mu);
		t->curl_new_cb = cb;
		pthread_mutex_unlock(&t->mu);
	} else {
		SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_CLIENT |
		                                            SSL_SESS_CACHE_NO_INTERNAL_STORE);
	}
	SSL_CTX_sess_set_new_cb(ssl_ctx, curl_session_cb);
}

static CURLcode ssl_ctx_cb(CURL *easy, void *ssl_ctx, void *ud)
{
	aws_tls *t = ud;
	X509_STORE *s;
	pthread_mutex_lock(&t->mu);
	if (!t->store && build_store(t) < 0) {
		pthread_mutex_unlock(&t->mu);
		return CURLE_SSL_CACERT_BADFILE;
	}
	s = t->store;
	X509_STORE_up_ref(s);
	pthread_mutex_unlock(&t->mu);
	SSL_CTX_set_cert_store(ssl_ctx, s); /* takes the reference, frees libcurl's empty store */
	/* a connection waiting for its answer (a second, for a Lambda test)
	 * keeps no 34 KB of empty TLS buffers: thousands of them do */
	SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	chain_sessions(t, easy, ssl_ctx);
	return CURLE_OK;
}

void aws_tls_trim(aws_tls *t, CURL *e)
{
	struct curl_tlssessioninfo *ti = NULL;
	if (!t->can_trim || curl_easy_getinfo(e, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
	    ti->backend != CURLSSLBACKEND_OPENSSL || !ti->internals)
		return;
	(void)SSL_free_buffers(ti->internals); /* 0: data pending, kept */
}

void aws_tls_setup(aws_tls *t, CURL *e)
{
	curl_easy_setopt(e, CURLOPT_SHARE, t->share);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!t->no_ctx_callback) {
		curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
		curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, t);
		/* libcurl loads nothing itself: the callback installs the store */
		curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
		return;
	}
	curl_easy_setopt(e, CURLOPT_CAINFO, t->ca && !t->ca_is_dir ? t->ca : NULL);
	curl_easy_setopt(e, CURLOPT_CAPATH, t->ca && t->ca_is_dir ? t->ca : NULL);
}

/* ---- the builtin transport's SSL_CTX and sessions --------------------------------------- */

/* How long a kept session is preferred to newer ones (s). */
#define SESSION_REFRESH_S 60

/* Keep sess (the caller's reference, taken when this returns 1) for key,
 * unless the one kept is still resumable and young: thousands of
 * connections at once each bring two tickets. */
static int keep_session(aws_tls *t, const char *key, SSL_SESSION *sess)
{
	size_t i;
	pthread_mutex_lock(&t->mu);
	for (i = 0; i < t->nsessions && strcmp(t->sessions[i].key, key) != 0; i++)
		;
	if (i == t->nsessions) {
		struct tls_session *p = realloc(t->sessions, (i + 1) * sizeof *p);
		char *k = strdup(key);
		if (!p || !k) {
			if (p)
				t->sessions = p;
			free(k);
			pthread_mutex_unlock(&t->mu);
			return 0;
		}
		t->sessions = p;
		t->sessions[i].key = k;
		t->sessions[i].sess = NULL;
		t->nsessions++;
	}
	if (t->sessions[i].sess && SSL_SESSION_is_resumable(t->sessions[i].sess) &&
	    time(NULL) - SSL_SESSION_get_time(t->sessions[i].sess) < SESSION_REFRESH_S) {
		pthread_mutex_unlock(&t->mu);
		return 0;
	}
	SSL_SESSION_free(t->sessions[i].sess);
	t->sessions[i].sess = sess;
	pthread_mutex_unlock(&t->mu);
	return 1;
}

/* A new session of one of our connections: kept for its host and port
 * (SSL's app data), replacing the one before. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	aws_tls *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *key = SSL_get_app_data(ssl);
	return t && key ? keep_session(t, key, sess) : 0;
}

SSL_CTX *aws_tls_ctx(aws_tls *t, char *why, size_t size)
{
	SSL_CTX *ctx;
	pthread_mutex_lock(&t->mu);
	if (t->ctx) {
		ctx = t->ctx;
		pthread_mutex_unlock(&t->mu);
		return ctx;
	}
	if (!t->store && build_store(t) < 0) {
		snprintf(why, size, "%s", t->load_error);
		pthread_mutex_unlock(&t->mu);
		return NULL;
	}
	if (!(ctx = SSL_CTX_new(TLS_client_method()))) {
		snprintf(why, size, "cannot make an SSL_CTX");
		pthread_mutex_unlock(&t->mu);
		return NULL;
	}
	X509_STORE_up_ref(t->store);
	SSL_CTX_set_cert_store(ctx, t->store);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* never off */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x08http/1.1", 9);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	SSL_CTX_set_app_data(ctx, t);
	t->ctx = ctx;
	pthread_mutex_unlock(&t->mu);
	return ctx;
}

SSL_SESSION *aws_tls_session(aws_tls *t, const char *key)
{
	SSL_SESSION *s = NULL;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nsessions; i++)
		if (strcmp(t->sessions[i].key, key) == 0) {
			/* a copy: OpenSSL marks the session of a connection that
			 * fails (a fatal alert, say) not resumable, and that must
			 * not be the one every other connection resumes */
			s = t->sessions[i].sess ? SSL_SESSION_dup(t->sessions[i].sess) : NULL;
			break;
		}
	pthread_mutex_unlock(&t->mu);
	return s;
}

int aws_tls_can_free_buffers(const aws_tls *t)
{
	return t->safe_free_buffers;
}
