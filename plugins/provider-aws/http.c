/*
 * http.c - the aws provider's HTTP layer over libcurl: request/response
 * records, the SigV4 signing hook, AWS error parsing, retries (exponential
 * backoff, full jitter, a budget), the blocking mode (one reusable easy
 * handle); the asynchronous mode is http-multi.c.  Everything logged or
 * reported is redacted.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http-int.h"

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- logging ------------------------------------------------------------------------ */

static void logf_(aws_http *h, int level, const char *fmt, ...) AWS_PRINTF(3, 4);
static void logf_(aws_http *h, int level, const char *fmt, ...)
{
	char msg[2048], *red;
	va_list ap;
	if (!h->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	red = aws_redact(msg, h->cfg.creds);
	h->cfg.log(h->cfg.log_ud, level, red ? red : "(log line dropped: out of memory)");
	free(red);
}

void aws_http_logf(aws_http *h, int level, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	logf_(h, level, "%s", msg);
}

/* Record an error with its message redacted. */
static int fail_red(aws_http *h, char **err, int code, const char *fmt, ...) AWS_PRINTF(4, 5);
static int fail_red(aws_http *h, char **err, int code, const char *fmt, ...)
{
	char msg[2048], *red;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	red = aws_redact(msg, h ? h->cfg.creds : NULL);
	aws_fail(err, code, "%s", red ? red : "(message dropped: out of memory)");
	free(red);
	return code;
}

void aws_http_log_lines(aws_http *h, const char *prefix, const char *data, size_t size)
{
	char *text, *line, *next;
	if (!h->cfg.log)
		return;
	text = strndup(data, size);
	if (!text)
		return;
	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (*line)
			logf_(h, HYPERTEST_LOG_DEBUG, "%s%s", prefix, line);
	}
	free(text);
}

static int debug_cb(CURL *easy, curl_infotype type, char *data, size_t size, void *ud)
{
	const char *prefix;
	(void)easy;
	if (type == CURLINFO_TEXT)
		prefix = "* ";
	else if (type == CURLINFO_HEADER_OUT)
		prefix = "> ";
	else if (type == CURLINFO_HEADER_IN)
		prefix = "< ";
	else
		return 0; /* bodies are not logged */
	aws_http_log_lines(ud, prefix, data, size);
	return 0;
}

/* ---- requests and responses ------------------------------------------------------ */

int aws_http_request_init(aws_http_request *r, const char *method, const char *url,
                          const char *what)
{
	memset(r, 0, sizeof *r);
	r->method = strdup(method);
	r->url = strdup(url);
	r->what = strdup(what ? what : method);
	if (!r->method || !r->url || !r->what) {
		aws_http_request_clear(r);
		return -1;
	}
	return 0;
}

void aws_http_request_clear(aws_http_request *r)
{
	free(r->method);
	free(r->url);
	free(r->what);
	free(r->body_owned);
	aws_headers_free(&r->headers);
	memset(r, 0, sizeof *r);
}

aws_http_request *aws_http_request_new(const char *method, const char *url, const char *what)
{
	aws_http_request *r = malloc(sizeof *r);
	if (r && aws_http_request_init(r, method, url, what) < 0) {
		free(r);
		r = NULL;
	}
	return r;
}

void aws_http_request_free(aws_http_request *r)
{
	if (!r)
		return;
	aws_http_request_clear(r);
	free(r);
}

void aws_http_response_clear(aws_http_response *r)
{
	aws_headers_free(&r->headers);
	htp_buf_free(&r->body);
	free(r->error_code);
	free(r->error_message);
	memset(r, 0, sizeof *r);
}

/* ---- URL pieces ----------------------------------------------------------------------- */

/* Host header value, path and query of an http(s) URL (malloc'd). */
static int split_url(const char *url, char **host, char **path, char **query)
{
	const char *p, *hend, *qs;
	int https = strncasecmp(url, "https://", 8) == 0;
	*host = *path = *query = NULL;
	if (https)
		p = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else
		return -1;
	hend = p + strcspn(p, "/?");
	if (hend == p)
		return -1;
	/* drop a default port */
	{
		size_t n = (size_t)(hend - p);
		const char *colon = NULL, *s;
		for (s = hend; s > p; s--)
			if (s[-1] == ':') {
				colon = s - 1;
				break;
			} else if (s[-1] == ']') {
				break;
			}
		if (colon && ((https && strncmp(colon, ":443", 4) == 0 && colon + 4 == hend) ||
		              (!https && strncmp(colon, ":80", 3) == 0 && colon + 3 == hend)))
			n = (size_t)(colon - p);
		*host = strndup(p, n);
		for (char *c = *host; c && *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	qs = strchr(hend, '?');
	*path = qs ? strndup(hend, (size_t)(qs - hend)) : strdup(hend);
	if (*path && !**path) {
		free(*path);
		*path = strdup("/");
	}
	*query = qs ? strdup(qs + 1) : NULL;
	if (!*host || !*path || (qs && !*query)) {
		free(*host);
		free(*path);
		free(*query);
		return -1;
	}
	return 0;
}

int aws_http_sign_sigv4(void *ud, const aws_http_request *req, aws_headers *headers,
                        char **err)
{
	aws_http_sigv4 *s = ud;
	aws_sigv4_params p = {0};
	aws_sigv4_request sr;
	aws_sigv4_result res;
	char *host, *path, *query;
	size_t i;
	int rc;
	if (!s->creds)
		return aws_fail(err, HYPERTEST_ERR_AUTH, "%s: no AWS credentials", req->what);
	if (split_url(req->url, &host, &path, &query) < 0)
		return aws_fail(err, HYPERTEST_ERR_INVALID, "%s: not an http(s) URL", req->what);
	aws_sigv4_defaults(&p, s->service);
	p.access_key_id = s->creds->access_key_id;
	p.secret_access_key = s->creds->secret_access_key;
	p.session_token = s->creds->session_token;
	p.region = s->region;
	p.time = time(NULL);
	p.payload_hash = s->payload_hash;
	p.key_cache = &s->key_cache;
	sr.method = req->method;
	sr.path = path;
	sr.query = query;
	sr.headers = headers;
	sr.body = req->body;
	sr.body_len = req->body_len;
	rc = aws_sigv4_sign(&p, &sr, AWS_SIGV4_HEADER, &res, err);
	for (i = 0; rc == 0 && i < res.add_headers.n; i++)
		if (aws_headers_set(headers, res.add_headers.v[i].name, res.add_headers.v[i].value) < 0)
			rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0)
		aws_sigv4_result_free(&res);
	free(host);
	free(path);
	free(query);
	return rc;
}

/* ---- AWS errors ---------------------------------------------------------------------- */

static char *xml_text(const char *body, const char *tag)
{
	char open[64], close[64];
	const char *s, *e;
	htp_buf b = {0};
	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	s = strstr(body, open);
	if (!s)
		return NULL;
	s += strlen(open);
	e = strstr(s, close);
	if (!e)
		return NULL;
	while (s < e) {
		static const struct {
			const char *ent, *ch;
		} ents[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}, {"&quot;", "\""},
		            {"&apos;", "'"}};
		size_t i;
		int hit = 0;
		for (i = 0; i < sizeof ents / sizeof *ents && *s == '&'; i++)
			if (strncmp(s, ents[i].ent, strlen(ents[i].ent)) == 0) {
				htp_buf_str(&b, ents[i].ch);
				s += strlen(ents[i].ent);
				hit = 1;
				break;
			}
		if (!hit)
			htp_buf_add(&b, s++, 1);
	}
	return htp_buf_take(&b);
}

static char *clean_code(const char *code)
{
	const char *hash = strrchr(code, '#');
	char *r;
	if (hash)
		code = hash + 1;
	r = strndup(code, strcspn(code, ":"));
	return r;
}

void aws_http_parse_error(aws_http_response *resp)
{
	const char *hdr = aws_headers_get(&resp->headers, "x-amzn-ErrorType");
	const char *body = resp->body.data;
	free(resp->error_code);
	free(resp->error_message);
	resp->error_code = resp->error_message = NULL;
	if (body && resp->body.len) {
		const char *s = body;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '{') {
			json_t *j = json_loadb(body, resp->body.len, 0, NULL);
			if (json_is_object(j)) {
				const char *k[] = {"__type", "code", "Code"};
				const char *m[] = {"message", "Message", "errorMessage"};
				size_t i;
				for (i = 0; i < 3 && !resp->error_code; i++)
					if (json_is_string(json_object_get(j, k[i])))
						resp->error_code = clean_code(json_string_value(json_object_get(j, k[i])));
				for (i = 0; i < 3 && !resp->error_message; i++)
					if (json_is_string(json_object_get(j, m[i])))
						resp->error_message = strdup(json_string_value(json_object_get(j, m[i])));
			}
			json_decref(j);
		} else if (*s == '<') {
			resp->error_code = xml_text(body, "Code");
			resp->error_message = xml_text(body, "Message");
		}
	}
	if (hdr && *hdr) {
		free(resp->error_code);
		resp->error_code = clean_code(hdr);
	}
	if (resp->error_code && !*resp->error_code) {
		free(resp->error_code);
		resp->error_code = NULL;
	}
}

int aws_http_retryable(long status, const char *code)
{
	static const char *const codes[] = {
	    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	    "TooManyRequestsException", "ProvisionedThroughputExceededException",
	    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	    "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException", "InternalError",
	    "ServiceUnavailable", NULL};
	size_t i;
	if (status == 429 || status >= 500)
		return 1;
	for (i = 0; code && codes[i]; i++)
		if (strcmp(code, codes[i]) == 0)
			return 1;
	return 0;
}

static int retryable_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* ---- proxies ----------------------------------------------------------------------------- */

/* The first of two variables with a value: its name. */
static const char *env_name_of(const char *a, const char *b)
{
	const char *v = getenv(a);
	if (v && *v)
		return a;
	v = getenv(b);
	return v && *v ? b : NULL;
}

static const char *env_of(const char *a, const char *b)
{
	const char *name = env_name_of(a, b);
	return name ? getenv(name) : NULL;
}

/* Does the NO_PROXY list name host ("*", a name or a domain suffix, an
 * address; ports and a leading dot ignored)? */
static int no_proxy_names(const char *list, const char *host)
{
	size_t hl = strlen(host);
	while (*list) {
		size_t n;
		const char *e;
		list += strspn(list, ", \t");
		n = strcspn(list, ", \t");
		e = list;
		if (n == 1 && *list == '*')
			return 1;
		if (n && *e == '.')
			e++, n--;
		/* a port after the name: not looked at */
		if (n && e[0] != '[') {
			const char *colon = memchr(e, ':', n);
			if (colon && !memchr(colon + 1, ':', (size_t)(e + n - colon - 1)))
				n = (size_t)(colon - e);
		}
		if (n && n <= hl && strncasecmp(host + hl - n, e, n) == 0 &&
		    (n == hl || host[hl - n - 1] == '.'))
			return 1;
		list += strcspn(list, ",");
	}
	return 0;
}

const char *aws_http_proxy_variable(const char *url)
{
	char *host = NULL, *path = NULL, *query = NULL, *h;
	int https = strncasecmp(url, "https://", 8) == 0, rc;
	const char *proxy = https ? env_name_of("HTTPS_PROXY", "https_proxy")
	                          : env_name_of("http_proxy", "HTTP_PROXY");
	const char *no = env_of("NO_PROXY", "no_proxy");
	if (!proxy)
		proxy = env_name_of("ALL_PROXY", "all_proxy");
	if (!proxy)
		return NULL;
	if (!no || split_url(url, &host, &path, &query) < 0) {
		return proxy;
	}
	/* the name without port and brackets */
	h = host;
	if (*h == '[') {
		h++;
		h[strcspn(h, "]")] = '\0';
	} else {
		h[strcspn(h, ":")] = '\0';
	}
	rc = !no_proxy_names(no, h);
	free(host);
	free(path);
	free(query);
	return rc ? proxy : NULL;
}

int aws_http_proxy_applies(const char *url)
{
	return aws_http_proxy_variable(url) != NULL;
}

/* ---- the client ------------------------------------------------------------------------- */

static unsigned long long rng_next(aws_http *h)
{
	/* xorshift64* */
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	return h->rng * 2685821657736338717ULL;
}

aws_http *aws_http_new(const aws_http_config *cfg, char **err)
{
	aws_http *h;
	struct rlimit rl;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		aws_fail(err, HYPERTEST_ERR_HTTP, "libcurl: %s", curl_easy_strerror(global_rc));
		return NULL;
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		return NULL;
	}
	h->epfd = -1;
	if (cfg)
		h->cfg = *cfg;
	if (h->cfg.concurrency <= 0)
		h->cfg.concurrency = 64;
	if (h->cfg.max_attempts <= 0)
		h->cfg.max_attempts = 5;
	if (h->cfg.retry_base_ms <= 0)
		h->cfg.retry_base_ms = 100;
	if (h->cfg.retry_cap_ms <= 0)
		h->cfg.retry_cap_ms = 20000;
	if (h->cfg.retry_budget_ms <= 0)
		h->cfg.retry_budget_ms = 30000;
	if (h->cfg.connect_timeout_ms <= 0)
		h->cfg.connect_timeout_ms = 10000;
	if (h->cfg.max_handshakes <= 0)
		h->cfg.max_handshakes = 1024;
	if (h->cfg.max_response == 0)
		h->cfg.max_response = 16u << 20;
	if (getrandom(&h->rng, sizeof h->rng, 0) != (ssize_t)sizeof h->rng || h->rng == 0)
		h->rng = (unsigned long long)htp_now_ms() * 0x9E3779B97F4A7C15ULL + 1;

	/* enough descriptors for the connections we may open */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)h->cfg.concurrency + 256) {
		rlim_t want = (rlim_t)h->cfg.concurrency + 256;
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->cfg.tls) {
		h->tls = aws_tls_ref(h->cfg.tls);
	} else if (!(h->tls = aws_tls_new_default(err))) {
		h->cfg.tls = NULL;
		aws_http_free(h);
		return NULL;
	}
	h->cfg.tls = h->tls;
	h->easy = curl_easy_init();
	if (!h->easy || h->epfd < 0 || aws_http_shards_init(h) < 0) {
		aws_http_free(h);
		aws_fail(err, HYPERTEST_ERR_NOMEM, "libcurl: cannot create handles");
		return NULL;
	}
	h->transport = h->cfg.client == AWS_HTTP_CLIENT_CURL      ? AWS_TRANSPORT_CURL
	               : h->cfg.client == AWS_HTTP_CLIENT_BUILTIN ? AWS_TRANSPORT_BUILTIN
	                                                          : AWS_TRANSPORT_UNDECIDED;
	return h;
}

void aws_http_free(aws_http *h)
{
	if (!h)
		return;
	aws_http_multi_release(h);
	if (h->easy)
		curl_easy_cleanup(h->easy);
	aws_tls_unref(h->tls);
	if (h->epfd >= 0)
		close(h->epfd);
	free(h);
}

/* ---- one attempt ---------------------------------------------------------------------- */

/* The cap on t's response body. */
static size_t max_response(const transfer *t)
{
	return t->req->max_response ? t->req->max_response : t->h->cfg.max_response;
}

static size_t write_cb(char *data, size_t size, size_t n, void *ud)
{
	transfer *t = ud;
	size_t len = size * n;
	if (t->resp.body.len + len > max_response(t)) {
		t->overflow = 1;
		return 0;
	}
	if (htp_buf_add(&t->resp.body, data, len) < 0)
		return 0;
	return len;
}

static size_t header_cb(char *data, size_t size, size_t n, void *ud)
{
	transfer *t = ud;
	size_t len = size * n;
	const char *colon;
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		aws_headers_free(&t->resp.headers); /* a new response (after 100 Continue) */
		const char *sp = memchr(data, ' ', len);
		t->hstatus = sp ? strtol(sp + 1, NULL, 10) : 0;
		return len;
	}
	/* a success announcing more than the request's own cap: refused
	 * before its body */
	if (t->req->max_response && t->hstatus >= 200 && t->hstatus < 300 && len > 15 &&
	    strncasecmp(data, "content-length:", 15) == 0) {
		char num[32];
		size_t k = len - 15 < sizeof num - 1 ? len - 15 : sizeof num - 1;
		memcpy(num, data + 15, k);
		num[k] = '\0';
		char *end;
		long long cl = strtoll(num, &end, 10);
		if (end != num && cl >= 0 && (unsigned long long)cl > max_response(t)) {
			t->overflow = 1;
			t->announced = cl;
			return 0;
		}
	}
	colon = memchr(data, ':', len);
	if (colon) {
		char *name = strndup(data, (size_t)(colon - data));
		const char *v = colon + 1, *e = data + len;
		char *value;
		while (v < e && (*v == ' ' || *v == '\t'))
			v++;
		while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		value = strndup(v, (size_t)(e - v));
		if (name && value)
			aws_headers_add(&t->resp.headers, name, value);
		free(name);
		free(value);
	}
	return len;
}

size_t aws_http_on_header(transfer *t, const char *data, size_t size)
{
	return header_cb((char *)data, 1, size, t);
}

size_t aws_http_on_body(transfer *t, const char *data, size_t size)
{
	return write_cb((char *)data, 1, size, t);
}

int aws_http_header_list(aws_http *h, const aws_http_request *r, struct curl_slist **out,
                         char **err)
{
	aws_headers hdrs = {0};
	char *host = NULL, *path = NULL, *query = NULL;
	struct curl_slist *list = NULL;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (split_url(r->url, &host, &path, &query) < 0)
		return fail_red(h, err, HYPERTEST_ERR_INVALID, "%s: \"%s\" is not an http(s) URL",
		                r->what, r->url);
	if (!aws_headers_get(&r->headers, "host") && aws_headers_add(&hdrs, "Host", host) < 0)
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	for (i = 0; rc == 0 && i < r->headers.n; i++)
		if (aws_headers_add(&hdrs, r->headers.v[i].name, r->headers.v[i].value) < 0)
			rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0 && r->sign)
		rc = r->sign(r->sign_ud, r, &hdrs, err);
	if (rc == 0 && !aws_headers_get(&hdrs, "content-type"))
		rc = aws_headers_add(&hdrs, "Content-Type", "") < 0 ? HYPERTEST_ERR_NOMEM : 0;
	if (rc == 0)
		rc = aws_headers_add(&hdrs, "Expect", "") < 0 ? HYPERTEST_ERR_NOMEM : 0;
	for (i = 0; rc == 0 && i < hdrs.n; i++) {
		htp_buf line = {0};
		struct curl_slist *n;
		/* "Name:" removes a header curl would add; "Name;" sends it empty */
		if (htp_buf_addf(&line, "%s:%s%s", hdrs.v[i].name, *hdrs.v[i].value ? " " : "",
		                 hdrs.v[i].value) < 0 ||
		    !(n = curl_slist_append(list, line.data)))
			rc = HYPERTEST_ERR_NOMEM;
		else
			list = n;
		htp_buf_free(&line);
	}
	aws_headers_free(&hdrs);
	free(host);
	free(path);
	free(query);
	if (rc) {
		curl_slist_free_all(list);
		if (rc == HYPERTEST_ERR_NOMEM)
			return aws_fail(err, rc, "%s: out of memory", r->what);
		return rc; /* the signing hook said why */
	}
	*out = list;
	return 0;
}

int aws_http_rebuild(aws_http *h, transfer *t, char **err)
{
	struct curl_slist *l = NULL;
	int rc;
	if (t->warm)
		return aws_hev_build(h, t, h->warm_headers, "GET", h->warm_url, NULL, 0, err);
	if ((rc = aws_http_header_list(h, t->req, &l, err)))
		return rc;
	rc = aws_hev_build(h, t, l, t->req->method, t->req->url, t->req->body, t->req->body_len, err);
	curl_slist_free_all(l);
	return rc;
}

void aws_http_small_buffers(CURL *e)
{
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, AWS_RECV_BUFFER);
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, AWS_UPLOAD_BUFFER);
}

void aws_http_version(aws_http *h, CURL *e, const char *url)
{
	/* over https only, where ALPN decides: libcurl 7.88's connections of
	 * prior knowledge (h2c) fail their second request with "Error in the
	 * HTTP2 framing layer", so plain http stays HTTP/1.1 on libcurl */
	if (!h->cfg.http2 || strncasecmp(url, "https:", 6) != 0)
		return;
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	/* a request waits for a connection that may carry it as a stream
	 * rather than open one of its own */
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
}

int aws_http_setup_attempt(aws_http *h, transfer *t, char **err)
{
	aws_http_request *r = t->req;
	int rc;
	CURL *e = t->easy;

	if (e)
		curl_easy_reset(e);
	curl_slist_free_all(t->slist);
	t->slist = NULL;
	aws_headers_free(&t->resp.headers);
	htp_buf_free(&t->resp.body);
	t->resp.status = 0;
	t->overflow = 0;
	t->announced = -1;
	t->hstatus = 0;
	t->errbuf[0] = '\0';
	if ((rc = aws_http_header_list(h, r, &t->slist, err)))
		return rc;
	if (!e) { /* the builtin transport */
		rc = aws_hev_build(h, t, t->slist, r->method, r->url, r->body, r->body_len, err);
		curl_slist_free_all(t->slist);
		t->slist = NULL;
		if (rc == 0)
			t->resp.attempts++;
		return rc;
	}

	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->slist);
	aws_tls_setup(h->tls, e);
	if (e != h->easy) {
		aws_http_small_buffers(e);
		aws_http_version(h, e, r->url);
	}
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms);
	if (h->cfg.timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->cfg.timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "hypertest-aws");
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (h->cfg.verbose && h->cfg.log) {
		curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_cb);
		curl_easy_setopt(e, CURLOPT_DEBUGDATA, h);
	}
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "GET") == 0 && !r->body_len) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "DELETE") == 0) {
			if (r->body_len) {
				curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
				curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
			}
		} else {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_len ? r->body : "");
		}
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	}
	t->resp.attempts++;
	return 0;
}

int aws_http_outcome(aws_http *h, transfer *t, CURLcode cc, int *code, char **err,
                     long *delay_ms)
{
	aws_http_request *r = t->req;
	int max_attempts = r->max_attempts > 0 ? r->max_attempts : h->cfg.max_attempts;
	int retry = 0;
	long status = 0;
	char *e = NULL;

	if (t->easy)
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	else
		status = t->hstatus;
	t->resp.status = cc == CURLE_OK ? status : 0;
	if (cc != CURLE_OK) {
		if (t->overflow) {
			size_t max = max_response(t);
			char cap[32];
			if (max % (1u << 20) == 0)
				snprintf(cap, sizeof cap, "%zu MiB", max >> 20);
			else
				snprintf(cap, sizeof cap, "%zu bytes", max);
			if (t->announced >= 0)
				*code = fail_red(h, &e, HYPERTEST_ERR_HTTP,
				                 "%s: the response has %lld bytes (Content-Length), more "
				                 "than %s, the limit for %s",
				                 r->what, t->announced, cap,
				                 r->max_what ? r->max_what : "a response");
			else
				*code = fail_red(h, &e, HYPERTEST_ERR_HTTP,
				                 "%s: response larger than %s, the limit for %s", r->what, cap,
				                 r->max_what ? r->max_what : "a response");
		} else if (cc == CURLE_SSL_CACERT_BADFILE) {
			char why[512];
			aws_tls_load_error(h->tls, why, sizeof why);
			*code = fail_red(h, &e, HYPERTEST_ERR_HTTP, "%s: %s: %s", r->what,
			                 curl_easy_strerror(cc), why);
		} else
			*code = fail_red(h, &e, HYPERTEST_ERR_HTTP, "%s: %s: %s", r->what,
			                 curl_easy_strerror(cc), t->errbuf[0] ? t->errbuf : "no detail");
		retry = !t->overflow && retryable_curl(cc);
	} else if (status >= 200 && status < 300) {
		*code = 0;
	} else {
		aws_http_parse_error(&t->resp);
		*code = status == 404 ? HYPERTEST_ERR_NOT_FOUND
		        : status == 401 || status == 403 ? HYPERTEST_ERR_AUTH
		                                         : HYPERTEST_ERR_HTTP;
		if (t->resp.error_code || t->resp.error_message)
			fail_red(h, &e, *code, "%s: HTTP %ld%s%s%s%s", r->what, status,
			         t->resp.error_code ? " " : "",
			         t->resp.error_code ? t->resp.error_code : "",
			         t->resp.error_message ? ": " : "",
			         t->resp.error_message ? t->resp.error_message : "");
		else
			fail_red(h, &e, *code, "%s: HTTP %ld%s%.200s", r->what, status,
			         t->resp.body.len ? ": " : "", t->resp.body.len ? t->resp.body.data : "");
		retry = aws_http_retryable(status, t->resp.error_code);
	}
	/* asynchronous mode: a first attempt that succeeded is logged in verbose
	 * mode only (with thousands in flight the line costs more than the request) */
	if (*code != 0 || t->resp.attempts > 1 || h->cfg.verbose || t->easy == h->easy)
		logf_(h, HYPERTEST_LOG_DEBUG, "%s %s -> %s (attempt %d)", r->method, r->url,
		      *code == 0 ? "ok" : aws_msg(e), t->resp.attempts);
	if (*code && retry && t->resp.attempts < max_attempts) {
		/* full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] */
		long ceiling = h->cfg.retry_base_ms;
		const char *ra = aws_headers_get(&t->resp.headers, "retry-after");
		int i;
		for (i = 1; i < t->resp.attempts && ceiling < h->cfg.retry_cap_ms; i++)
			ceiling *= 2;
		if (ceiling > h->cfg.retry_cap_ms)
			ceiling = h->cfg.retry_cap_ms;
		*delay_ms = (long)(rng_next(h) % (unsigned long long)(ceiling + 1));
		if (ra && isdigit((unsigned char)*ra)) {
			long s = strtol(ra, NULL, 10) * 1000;
			if (s > *delay_ms)
				*delay_ms = s > h->cfg.retry_cap_ms ? h->cfg.retry_cap_ms : s;
		}
		if (t->delay_total + *delay_ms <= h->cfg.retry_budget_ms) {
			t->delay_total += *delay_ms;
			logf_(h, HYPERTEST_LOG_DEBUG, "%s: retrying in %ld ms", r->what, *delay_ms);
			free(e);
			return OUTCOME_RETRY;
		}
	}
	if (*code) {
		if (retry && t->resp.attempts > 1)
			aws_fail(err, *code, "%s (after %d attempts)", aws_msg(e), t->resp.attempts);
		else
			aws_fail(err, *code, "%s", aws_msg(e));
	}
	free(e);
	return OUTCOME_DONE;
}

/* ---- blocking mode ---------------------------------------------------------------------- */

static int cancelled(const aws_http *h)
{
	return h->cfg.cancelled && h->cfg.cancelled(h->cfg.cancel_ud);
}

/* libcurl calls it during a transfer (at least once a second when nothing
 * moves): nonzero aborts the transfer with CURLE_ABORTED_BY_CALLBACK. */
static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return cancelled(ud);
}

int aws_http_sleep(long ms, int (*stop)(void *ud), void *ud)
{
	long long end = htp_now_ms() + ms;
	for (;;) {
		long long left = end - htp_now_ms();
		long slice;
		struct timespec ts;
		if (stop && stop(ud))
			return 1;
		if (left <= 0)
			return 0;
		slice = left < AWS_HTTP_CANCEL_SLICE_MS ? (long)left : AWS_HTTP_CANCEL_SLICE_MS;
		ts.tv_sec = slice / 1000;
		ts.tv_nsec = (slice % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

int aws_http_perform(aws_http *h, aws_http_request *req, aws_http_response *resp, char **err)
{
	transfer t;
	int code = 0;
	memset(&t, 0, sizeof t);
	memset(resp, 0, sizeof *resp);
	t.h = h;
	t.req = req;
	t.easy = h->easy;
	for (;;) {
		CURLcode cc;
		long delay = 0;
		if (cancelled(h)) {
			code = fail_red(h, err, HYPERTEST_ERR_CANCELLED, "%s: cancelled", req->what);
			break;
		}
		code = aws_http_setup_attempt(h, &t, err);
		if (code)
			break;
		if (h->cfg.cancelled) {
			curl_easy_setopt(t.easy, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
			curl_easy_setopt(t.easy, CURLOPT_XFERINFODATA, h);
			curl_easy_setopt(t.easy, CURLOPT_NOPROGRESS, 0L);
		}
		cc = curl_easy_perform(t.easy);
		if (cc == CURLE_ABORTED_BY_CALLBACK && cancelled(h)) {
			logf_(h, HYPERTEST_LOG_DEBUG, "%s %s -> cancelled (attempt %d)", req->method,
			      req->url, t.resp.attempts);
			code = fail_red(h, err, HYPERTEST_ERR_CANCELLED, "%s: cancelled", req->what);
			break;
		}
		if (aws_http_outcome(h, &t, cc, &code, err, &delay) == OUTCOME_DONE)
			break;
		if (aws_http_sleep(delay, h->cfg.cancelled, h->cfg.cancel_ud)) {
			code = fail_red(h, err, HYPERTEST_ERR_CANCELLED,
			                "%s: cancelled while waiting to retry after attempt %d",
			                req->what, t.resp.attempts);
			break;
		}
	}
	curl_slist_free_all(t.slist);
	curl_easy_reset(h->easy); /* drop pointers into t */
	*resp = t.resp;
	return code;
}
