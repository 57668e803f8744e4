/*
 * registry_http.h - the registry client's plumbing, for registry.c: one
 * HTTP exchange with a registry, authenticated (Basic, or a Bearer token
 * for the request's scopes, from the cache or after the registry's 401
 * challenge), and the registry's error answers turned into ht_err.
 */
#ifndef HT_REGISTRY_HTTP_H
#define HT_REGISTRY_HTTP_H

#include <stddef.h>

#include "registry.h"
#include "util.h"

/* Where the body of a 2xx answer goes when it is not kept in memory. */
typedef int (*ht_body_sink)(void *ctx, const void *data, size_t len, ht_err *err);

struct ht_http_req {
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
	ht_body_sink sink; /* or where a 2xx answer's body goes */
	void *sink_ctx;
	const char *const *scopes; /* NULL-terminated */
};

struct ht_http_resp {
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

/* Scopes are "repository:NAME:ACTIONS"; tokens are cached per registry and
 * scope list.  A 401 is answered once (challenge, credentials or token,
 * same request again); resp->status tells the final answer.  Transport
 * failures are HYPERTEST_ERR_HTTP naming the registry, method and path. */
int ht_registry_request(ht_registry *reg, const struct ht_http_req *req,
                        struct ht_http_resp *resp, ht_err *err);
void ht_http_resp_reset(struct ht_http_resp *r);

/* "http(s)://registry" (malloc'd): plain HTTP for localhost, 127.0.0.0/8,
 * [::1] and hosts set so. */
char *ht_registry_base_url(ht_registry *reg, const char *registry);

/* HYPERTEST_ERR_AUTH (401, 403), _NOT_FOUND (404) or _HTTP, with the status
 * and the registry's errors[0].code and message. */
int ht_registry_http_error(const struct ht_http_req *req, const struct ht_http_resp *resp,
                           ht_err *err);

#endif /* HT_REGISTRY_HTTP_H */
