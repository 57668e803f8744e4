/*
 * sigv4.c - AWS Signature Version 4 (canonical request, string to sign,
 * signing key, Authorization header and presigned query), with the shared
 * helpers of the aws provider: errors, strings, header lists, URI encoding,
 * SHA-256.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/crypto.h>

#include "sigv4.h"

/* ---- errors --------------------------------------------------------------- */

int aws_fail(char **err, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	if (!err)
		return code;
	if (code == HYPERTEST_ERR_NOMEM) {
		msg = NULL;
	} else {
		va_start(ap, fmt);
		msg = htp_vstrdupf(fmt, ap);
		va_end(ap);
	}
	free(*err);
	*err = msg;
	return code;
}

/* ---- header lists --------------------------------------------------------- */

int aws_headers_add(aws_headers *h, const char *name, const char *value)
{
	char *n, *v;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		aws_header *p = realloc(h->v, cap * sizeof *p);
		if (!p)
			return -1;
		h->v = p;
		h->cap = cap;
	}
	n = strdup(name);
	v = strdup(value ? value : "");
	if (!n || !v) {
		free(n);
		free(v);
		return -1;
	}
	h->v[h->n].name = n;
	h->v[h->n].value = v;
	h->n++;
	return 0;
}

void aws_headers_remove(aws_headers *h, const char *name)
{
	size_t i = 0, j = 0;
	for (; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, name) == 0) {
			free(h->v[i].name);
			free(h->v[i].value);
		} else {
			h->v[j++] = h->v[i];
		}
	}
	h->n = j;
}

int aws_headers_set(aws_headers *h, const char *name, const char *value)
{
	aws_headers_remove(h, name);
	return aws_headers_add(h, name, value);
}

const char *aws_headers_get(const aws_headers *h, const char *name)
{
	size_t i;
	for (i = 0; h && i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0)
			return h->v[i].value;
	return NULL;
}

void aws_headers_free(aws_headers *h)
{
	size_t i;
	for (i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

/* ---- encoding and hashing ------------------------------------------------- */

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

int aws_uri_encode(htp_buf *out, const char *s, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, run;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			/* the run of characters kept as they are, at once */
			for (run = 1; i + run < len && (unreserved((unsigned char)s[i + run]) ||
			                                (keep_slash && s[i + run] == '/'));
			     run++)
				;
			if (htp_buf_add(out, &s[i], run) < 0)
				return -1;
			i += run - 1;
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			if (htp_buf_add(out, e, 3) < 0)
				return -1;
		}
	}
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aws_uri_decode(htp_buf *out, const char *s, size_t len)
{
	size_t i;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if (htp_buf_add(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;
	for (i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void aws_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL);
	to_hex(md, 32, out);
}

/* SHA-256 of a then b on ctx, a context set up for SHA-256 once for the
 * signature (EVP_sha256() fetches the digest by name at every set-up,
 * which cost as much as the digests of a request): 0 or -1. */
static int sha256_on(EVP_MD_CTX *ctx, const void *a, size_t alen, const void *b, size_t blen,
                     unsigned char out[32])
{
	unsigned int len = 0;
	return EVP_DigestInit_ex(ctx, NULL, NULL) && EVP_DigestUpdate(ctx, a, alen) &&
	               (!blen || EVP_DigestUpdate(ctx, b, blen)) && EVP_DigestFinal_ex(ctx, out, &len)
	           ? 0
	           : -1;
}

void aws_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- canonical request ---------------------------------------------------- */

/* Remove empty, "." and ".." segments (a leading '/' stays, a trailing one
 * stays when something is left). */
static char *normalize_path(const char *path)
{
	size_t n = strlen(path), nseg = 0, i, start;
	const char **seg = calloc(n / 2 + 2, sizeof *seg);
	size_t *seglen = calloc(n / 2 + 2, sizeof *seglen);
	htp_buf b = {0};
	char *res = NULL;
	if (!seg || !seglen)
		goto out;
	for (start = 0; start <= n; start = i + 1) {
		for (i = start; i < n && path[i] != '/'; i++)
			;
		size_t len = i - start;
		const char *s = path + start;
		if (len == 0 || (len == 1 && s[0] == '.'))
			continue;
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			if (nseg)
				nseg--;
			continue;
		}
		seg[nseg] = s;
		seglen[nseg++] = len;
	}
	if (htp_buf_str(&b, path[0] == '/' ? "/" : "") < 0)
		goto out;
	for (i = 0; i < nseg; i++)
		if ((i && htp_buf_str(&b, "/") < 0) || htp_buf_add(&b, seg[i], seglen[i]) < 0)
			goto out;
	if (nseg && n && path[n - 1] == '/' && htp_buf_str(&b, "/") < 0)
		goto out;
	res = htp_buf_take(&b);
out:
	htp_buf_free(&b);
	free(seg);
	free(seglen);
	return res;
}

static int canonical_uri(htp_buf *out, const aws_sigv4_params *p, const char *path)
{
	char *norm = NULL;
	const char *s;
	int rc;
	if (!path || !*path)
		path = "/";
	if (p->normalize_path) {
		norm = normalize_path(path);
		if (!norm)
			return -1;
		if (!*norm) {
			free(norm);
			norm = strdup("/");
			if (!norm)
				return -1;
		}
	}
	s = norm ? norm : path;
	if (p->double_encode) {
		rc = aws_uri_encode(out, s, strlen(s), 1);
	} else {
		/* taken as encoded; only bytes that may not appear are escaped */
		rc = 0;
		for (; *s && rc == 0; s++) {
			if (unreserved((unsigned char)*s) || *s == '/' || *s == '%')
				rc = htp_buf_add(out, s, 1);
			else
				rc = aws_uri_encode(out, s, 1, 0);
		}
	}
	free(norm);
	return rc;
}

typedef struct qparam {
	char *key, *value; /* encoded */
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

/* Decode then re-encode one key or value. */
static char *reencode(const char *s, size_t len)
{
	htp_buf d = {0}, e = {0};
	char *r = NULL;
	if (aws_uri_decode(&d, s, len) == 0 && htp_buf_str(&d, "") == 0 &&
	    aws_uri_encode(&e, d.data, d.len, 0) == 0)
		r = htp_buf_take(&e);
	htp_buf_free(&d);
	htp_buf_free(&e);
	return r;
}

typedef struct qlist {
	qparam *v;
	size_t n, cap;
} qlist;

static void qlist_free(qlist *q)
{
	size_t i;
	for (i = 0; i < q->n; i++) {
		free(q->v[i].key);
		free(q->v[i].value);
	}
	free(q->v);
}

/* Add an encoded pair (takes ownership). */
static int qlist_push(qlist *q, char *k, char *v)
{
	if (!k || !v) {
		free(k);
		free(v);
		return -1;
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		qparam *p = realloc(q->v, cap * sizeof *p);
		if (!p) {
			free(k);
			free(v);
			return -1;
		}
		q->v = p;
		q->cap = cap;
	}
	q->v[q->n].key = k;
	q->v[q->n].value = v;
	q->n++;
	return 0;
}

static int qlist_parse(qlist *q, const char *query)
{
	const char *s = query, *amp, *eq;
	if (!s)
		return 0;
	while (*s) {
		size_t len;
		amp = strchr(s, '&');
		len = amp ? (size_t)(amp - s) : strlen(s);
		if (len) {
			eq = memchr(s, '=', len);
			size_t klen = eq ? (size_t)(eq - s) : len;
			if (qlist_push(q, reencode(s, klen),
			               eq ? reencode(eq + 1, len - klen - 1) : strdup("")) < 0)
				return -1;
		}
		s += len;
		if (*s == '&')
			s++;
	}
	return 0;
}

static int qlist_add_raw(qlist *q, const char *k, const char *v)
{
	return qlist_push(q, reencode(k, strlen(k)), reencode(v, strlen(v)));
}

static int is_skipped_header(const char *lname)
{
	static const char *const skip[] = {
	    "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
	    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
	    "user-agent", "x-amzn-trace-id", "x-amz-date", "x-amz-security-token", NULL};
	size_t i;
	for (i = 0; skip[i]; i++)
		if (strcmp(lname, skip[i]) == 0)
			return 1;
	return 0;
}

typedef struct chdr {
	char *name;  /* lower-case */
	char *value; /* trimmed, runs of blanks collapsed */
	size_t seq;  /* input order, for a stable sort */
} chdr;

static int chdr_cmp(const void *a, const void *b)
{
	const chdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static char *lower_dup(const char *s)
{
	char *r = strdup(s), *t;
	for (t = r; t && *t; t++)
		if (*t >= 'A' && *t <= 'Z')
			*t = (char)(*t - 'A' + 'a');
	return r;
}

/* v without leading and trailing white space, each run of it inside one
 * space (never longer than v). */
static char *trim_value(const char *v)
{
	char *r = malloc(strlen(v) + 1), *o = r;
	int space = 0;
	if (!r)
		return NULL;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n' || *v == '\v' || *v == '\f') {
			space = 1;
			continue;
		}
		if (space && o > r)
			*o++ = ' ';
		space = 0;
		*o++ = *v;
	}
	*o = '\0';
	return r;
}

typedef struct clist {
	chdr *v;
	size_t n, cap;
} clist;

static void clist_free(clist *c)
{
	size_t i;
	for (i = 0; i < c->n; i++) {
		free(c->v[i].name);
		free(c->v[i].value);
	}
	free(c->v);
}

static int clist_add(clist *c, const char *name, const char *value)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		chdr *p = realloc(c->v, cap * sizeof *p);
		if (!p)
			return -1;
		c->v = p;
		c->cap = cap;
	}
	c->v[c->n].name = lower_dup(name);
	c->v[c->n].value = trim_value(value);
	c->v[c->n].seq = c->n;
	if (!c->v[c->n].name || !c->v[c->n].value) {
		free(c->v[c->n].name);
		free(c->v[c->n].value);
		return -1;
	}
	c->n++;
	return 0;
}

void aws_sigv4_defaults(aws_sigv4_params *p, const char *service)
{
	int s3 = service && strcmp(service, "s3") == 0;
	p->service = service;
	p->normalize_path = !s3;
	p->double_encode = !s3;
	p->content_sha256_header = s3;
}

/* HMAC-SHA256 (RFC 2104) on ctx (see sha256_on; OpenSSL's HMAC() fetches
 * the MAC and the digest by name at every call): 0 or -1. */
static int hmac(EVP_MD_CTX *ctx, const void *key, size_t keylen, const char *msg,
                unsigned char out[32])
{
	unsigned char k[64], ipad[64], opad[64], inner[32];
	size_t i;
	int rc = 0;
	memset(k, 0, sizeof k);
	if (keylen > sizeof k)
		rc = sha256_on(ctx, key, keylen, NULL, 0, k);
	else
		memcpy(k, key, keylen);
	for (i = 0; i < sizeof k; i++) {
		ipad[i] = k[i] ^ 0x36;
		opad[i] = k[i] ^ 0x5c;
	}
	if (rc == 0)
		rc = sha256_on(ctx, ipad, sizeof ipad, msg, strlen(msg), inner);
	if (rc == 0)
		rc = sha256_on(ctx, opad, sizeof opad, inner, sizeof inner, out);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(ipad, sizeof ipad);
	OPENSSL_cleanse(opad, sizeof opad);
	OPENSSL_cleanse(inner, sizeof inner);
	return rc;
}

void aws_sigv4_result_free(aws_sigv4_result *r)
{
	free(r->canonical_request);
	free(r->string_to_sign);
	free(r->query);
	aws_headers_free(&r->add_headers);
	memset(r, 0, sizeof *r);
}

/* What one signature is built from, section by section. */
typedef struct sign_ctx {
	const aws_sigv4_params *p;
	const aws_sigv4_request *req;
	int presign;
	char date[17], payload[65], expires[32];
	const char *hash, *given, *token;
	htp_buf cr, sts, signed_hdrs, scope, cred;
	qlist q;
	clist c;
	EVP_MD_CTX *md; /* SHA-256, set up once (sha256_on) */
} sign_ctx;

static void sign_ctx_free(sign_ctx *x)
{
	EVP_MD_CTX_free(x->md);
	htp_buf_free(&x->cr);
	htp_buf_free(&x->sts);
	htp_buf_free(&x->signed_hdrs);
	htp_buf_free(&x->scope);
	htp_buf_free(&x->cred);
	qlist_free(&x->q);
	clist_free(&x->c);
}

/* The canonical headers (sorted, lower-case names, trimmed values) and the
 * signed-headers list.  0 or -1 (no memory). */
static int sign_headers(sign_ctx *x)
{
	const aws_sigv4_params *p = x->p;
	const aws_headers *h = x->req->headers;
	for (size_t i = 0; h && i < h->n; i++) {
		char *l = lower_dup(h->v[i].name);
		int skip = !l || is_skipped_header(l);
		free(l);
		if (!skip && clist_add(&x->c, h->v[i].name, h->v[i].value) < 0)
			return -1;
	}
	if (!x->presign) {
		if (clist_add(&x->c, "x-amz-date", x->date) < 0)
			return -1;
		if (x->token && !p->omit_session_token &&
		    clist_add(&x->c, "x-amz-security-token", x->token) < 0)
			return -1;
		if (p->content_sha256_header && !x->given &&
		    clist_add(&x->c, "x-amz-content-sha256", x->hash) < 0)
			return -1;
	}
	clist *c = &x->c;
	if (c->n)
		qsort(c->v, c->n, sizeof *c->v, chdr_cmp);
	for (size_t i = 0; i < c->n; i++)
		if (i == 0 || strcmp(c->v[i].name, c->v[i - 1].name) != 0)
			if ((x->signed_hdrs.len && htp_buf_str(&x->signed_hdrs, ";") < 0) ||
			    htp_buf_str(&x->signed_hdrs, c->v[i].name) < 0)
				return -1;
	if (!x->signed_hdrs.data && htp_buf_str(&x->signed_hdrs, "") < 0)
		return -1;
	return 0;
}

/* The canonical query: the request's, with the X-Amz-* parameters of a
 * presigned URL.  0 or -1. */
static int sign_query(sign_ctx *x)
{
	if (qlist_parse(&x->q, x->req->query) < 0)
		return -1;
	snprintf(x->expires, sizeof x->expires, "%ld", x->p->expires);
	if (x->presign) {
		if (qlist_add_raw(&x->q, "X-Amz-Algorithm", "AWS4-HMAC-SHA256") < 0 ||
		    qlist_add_raw(&x->q, "X-Amz-Credential", x->cred.data) < 0 ||
		    qlist_add_raw(&x->q, "X-Amz-Date", x->date) < 0 ||
		    qlist_add_raw(&x->q, "X-Amz-Expires", x->expires) < 0 ||
		    qlist_add_raw(&x->q, "X-Amz-SignedHeaders", x->signed_hdrs.data) < 0)
			return -1;
		if (x->token && !x->p->omit_session_token &&
		    qlist_add_raw(&x->q, "X-Amz-Security-Token", x->token) < 0)
			return -1;
	}
	if (x->q.n)
		qsort(x->q.v, x->q.n, sizeof *x->q.v, qparam_cmp);
	return 0;
}

/* The canonical request and the string to sign.  0 or -1. */
static int sign_canonical_request(sign_ctx *x)
{
	htp_buf *cr = &x->cr;
	const clist *c = &x->c;
	/* (strings put one after the other: a printf for each part cost a
	 * fifth of the signature) */
	htp_buf_str(cr, x->req->method);
	if (htp_buf_str(cr, "\n") < 0 || canonical_uri(cr, x->p, x->req->path) < 0)
		return -1;
	htp_buf_str(cr, "\n");
	for (size_t i = 0; i < x->q.n; i++) {
		if (i)
			htp_buf_str(cr, "&");
		htp_buf_str(cr, x->q.v[i].key);
		htp_buf_str(cr, "=");
		htp_buf_str(cr, x->q.v[i].value);
	}
	htp_buf_str(cr, "\n");
	for (size_t i = 0; i < c->n; i++) {
		int same_next = i + 1 < c->n && strcmp(c->v[i].name, c->v[i + 1].name) == 0;
		int same_prev = i > 0 && strcmp(c->v[i].name, c->v[i - 1].name) == 0;
		if (!same_prev) {
			htp_buf_str(cr, c->v[i].name);
			htp_buf_str(cr, ":");
		}
		htp_buf_str(cr, c->v[i].value);
		htp_buf_str(cr, same_next ? "," : "\n");
	}
	htp_buf_str(cr, "\n");
	htp_buf_str(cr, x->signed_hdrs.data);
	htp_buf_str(cr, "\n");
	if (htp_buf_str(cr, x->hash) < 0) /* (a failure above sticks: nomem) */
		return -1;
	char crhash[65];
	unsigned char d[32];
	if (sha256_on(x->md, cr->data, cr->len, NULL, 0, d) < 0)
		return -1;
	to_hex(d, 32, crhash);
	htp_buf_str(&x->sts, "AWS4-HMAC-SHA256\n");
	htp_buf_str(&x->sts, x->date);
	htp_buf_str(&x->sts, "\n");
	htp_buf_str(&x->sts, x->scope.data);
	htp_buf_str(&x->sts, "\n");
	return htp_buf_str(&x->sts, crhash);
}

/* The signing key of the date, region and service into k (from the
 * params' cache when the secret and scope are the same): 0 or -1. */
static int signing_key(const aws_sigv4_params *p, EVP_MD_CTX *ctx, const char *date,
                       const char *secret, size_t secret_len, unsigned char k[32])
{
	char d8[9], kscope[sizeof p->key_cache->scope];
	unsigned char shash[32], k1[32];
	int rc = 0;
	memcpy(d8, date, 8);
	d8[8] = '\0';
	int n = snprintf(kscope, sizeof kscope, "%s/%s/%s", d8, p->region, p->service);
	int cacheable = p->key_cache && n > 0 && (size_t)n < sizeof kscope;
	if (cacheable && sha256_on(ctx, secret, secret_len, NULL, 0, shash) < 0)
		return -1;
	if (cacheable && !strcmp(p->key_cache->scope, kscope) &&
	    CRYPTO_memcmp(p->key_cache->secret_hash, shash, 32) == 0) {
		memcpy(k, p->key_cache->key, 32);
	} else {
		if (hmac(ctx, secret, secret_len, d8, k1) < 0 || hmac(ctx, k1, 32, p->region, k) < 0 ||
		    hmac(ctx, k, 32, p->service, k1) < 0 || hmac(ctx, k1, 32, "aws4_request", k) < 0)
			rc = -1;
		if (cacheable && rc == 0) {
			memcpy(p->key_cache->scope, kscope, sizeof kscope);
			memcpy(p->key_cache->secret_hash, shash, 32);
			memcpy(p->key_cache->key, k, 32);
		}
	}
	OPENSSL_cleanse(shash, sizeof shash);
	OPENSSL_cleanse(k1, sizeof k1);
	return rc;
}

/* The signature of the string to sign into out->signature.  0 or -1. */
static int sign_signature(sign_ctx *x, aws_sigv4_result *out)
{
	htp_buf secret = {0};
	unsigned char k[32], sig[32];
	if (htp_buf_addf(&secret, "AWS4%s", x->p->secret_access_key) < 0) {
		htp_buf_free(&secret);
		return -1;
	}
	int rc = signing_key(x->p, x->md, x->date, secret.data, secret.len, k);
	OPENSSL_cleanse(secret.data, secret.len);
	htp_buf_free(&secret);
	if (rc == 0)
		rc = hmac(x->md, k, 32, x->sts.data, sig);
	if (rc == 0)
		to_hex(sig, 32, out->signature);
	OPENSSL_cleanse(sig, sizeof sig);
	OPENSSL_cleanse(k, sizeof k);
	return rc;
}

/* The headers that sign a request (Authorization, X-Amz-Date...).  0 or -1. */
static int sign_add_headers(sign_ctx *x, aws_sigv4_result *out)
{
	htp_buf auth = {0};
	int rc = -1;
	if (x->token && aws_headers_add(&out->add_headers, "X-Amz-Security-Token", x->token) < 0)
		return -1;
	if (aws_headers_add(&out->add_headers, "X-Amz-Date", x->date) < 0)
		return -1;
	if (x->p->content_sha256_header && !x->given &&
	    aws_headers_add(&out->add_headers, "x-amz-content-sha256", x->hash) < 0)
		return -1;
	if (htp_buf_addf(&auth, "AWS4-HMAC-SHA256 Credential=%s, SignedHeaders=%s, Signature=%s",
	                 x->cred.data, x->signed_hdrs.data, out->signature) == 0 &&
	    aws_headers_add(&out->add_headers, "Authorization", auth.data) == 0)
		rc = 0;
	htp_buf_free(&auth);
	return rc;
}

/* The query string of a presigned URL.  0 or -1. */
static int sign_add_query(sign_ctx *x, aws_sigv4_result *out)
{
	htp_buf qs = {0};
	int bad = 0;
	const char *query = x->req->query;
	if (query && *query)
		bad |= htp_buf_addf(&qs, "%s&", query);
	bad |= htp_buf_str(&qs, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
	bad |= aws_uri_encode(&qs, x->cred.data, x->cred.len, 0);
	bad |= htp_buf_addf(&qs, "&X-Amz-Date=%s&X-Amz-SignedHeaders=", x->date);
	bad |= aws_uri_encode(&qs, x->signed_hdrs.data, x->signed_hdrs.len, 0);
	bad |= htp_buf_addf(&qs, "&X-Amz-Expires=%s", x->expires);
	if (x->token) {
		bad |= htp_buf_str(&qs, "&X-Amz-Security-Token=");
		bad |= aws_uri_encode(&qs, x->token, strlen(x->token), 0);
	}
	bad |= htp_buf_addf(&qs, "&X-Amz-Signature=%s", out->signature);
	if (bad) {
		htp_buf_free(&qs);
		return -1;
	}
	out->query = htp_buf_take(&qs);
	return 0;
}

int aws_sigv4_sign(const aws_sigv4_params *p, const aws_sigv4_request *req, int form,
                   aws_sigv4_result *out, char **err)
{
	sign_ctx x;
	memset(&x, 0, sizeof x);
	memset(out, 0, sizeof *out);
	if (!p->access_key_id || !*p->access_key_id || !p->secret_access_key || !p->region ||
	    !*p->region || !p->service || !*p->service || !req->method)
		return aws_fail(err, HYPERTEST_ERR_INVALID,
		                "SigV4: access key, secret, region, service and method are required");
	if (!aws_headers_get(req->headers, "host"))
		return aws_fail(err, HYPERTEST_ERR_INVALID, "SigV4: the request has no Host header");
	x.p = p;
	x.req = req;
	x.presign = form == AWS_SIGV4_QUERY;
	x.token = p->session_token && *p->session_token ? p->session_token : NULL;
	aws_amz_date(p->time, x.date);
	if (!(x.md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(x.md, EVP_sha256(), NULL)) {
		sign_ctx_free(&x);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "SigV4: out of memory");
	}

	/* payload hash */
	x.given = aws_headers_get(req->headers, "x-amz-content-sha256");
	int failed = 0;
	if (x.given) {
		x.hash = x.given;
	} else if (p->payload_hash) {
		x.hash = p->payload_hash;
	} else {
		unsigned char d[32] = {0};
		failed = sha256_on(x.md, req->body ? req->body : "", req->body_len, NULL, 0, d) < 0;
		to_hex(d, 32, x.payload);
		x.hash = x.payload;
	}

	/* credential scope, then each part of the signature */
	failed = failed ||
	         htp_buf_addf(&x.scope, "%.8s/%s/%s/aws4_request", x.date, p->region, p->service) < 0 ||
	         htp_buf_addf(&x.cred, "%s/%s", p->access_key_id, x.scope.data) < 0 ||
	         sign_headers(&x) < 0 || sign_query(&x) < 0 || sign_canonical_request(&x) < 0 ||
	         sign_signature(&x, out) < 0 ||
	         (x.presign ? sign_add_query(&x, out) : sign_add_headers(&x, out)) < 0;
	if (!failed) {
		out->canonical_request = htp_buf_take(&x.cr);
		out->string_to_sign = htp_buf_take(&x.sts);
	}
	sign_ctx_free(&x);
	if (failed) {
		aws_sigv4_result_free(out);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "SigV4: out of memory");
	}
	return 0;
}
