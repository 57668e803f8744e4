/*
 * ecr.c - ECR for the aws provider (JSON 1.1, target
 * AmazonEC2ContainerRegistry_V20150921.*): the registry login from
 * GetAuthorizationToken and a tag's digest from BatchGetImage.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ecr.h"

#define ECR_TARGET "AmazonEC2ContainerRegistry_V20150921."

char *aws_base64_decode(const char *in, size_t *len)
{
	size_t n = strlen(in), pad = 0;
	unsigned char *out;
	int got;
	if (n % 4 != 0)
		return NULL;
	if (n && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 2] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (got < 0 || (size_t)got < pad) {
		free(out);
		return NULL;
	}
	got -= (int)pad;
	out[got] = '\0';
	if (len)
		*len = (size_t)got;
	return (char *)out;
}

int aws_ecr_host_parse(const char *host, char *account, char *region)
{
	const char *s = host, *r, *e;
	int i;
	for (i = 0; i < 12; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	if (strncmp(s + 12, ".dkr.ecr.", 9) != 0)
		return 0;
	r = s + 21;
	e = strstr(r, ".amazonaws.com");
	if (!e || e == r || (strcmp(e, ".amazonaws.com") != 0 && strcmp(e, ".amazonaws.com.cn") != 0))
		return 0;
	for (s = r; s < e; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-')
			return 0;
	if (e - r >= 64)
		return 0;
	if (account) {
		memcpy(account, host, 12);
		account[12] = '\0';
	}
	if (region) {
		memcpy(region, r, (size_t)(e - r));
		region[e - r] = '\0';
	}
	return 1;
}

void aws_ecr_login_free(aws_ecr_login *l)
{
	free(l->username);
	if (l->password)
		memset(l->password, 0, strlen(l->password));
	free(l->password);
	free(l->proxy_endpoint);
	memset(l, 0, sizeof *l);
}

int aws_ecr_get_login(aws_provider *p, aws_ecr_login *out, char **err)
{
	json_t *doc = NULL, *data;
	const char *tok, *proxy;
	char *plain, *colon;
	int rc;
	memset(out, 0, sizeof *out);
	rc = aws_json_call(p, AWS_SVC_ECR, "POST", "/", ECR_TARGET "GetAuthorizationToken", "{}",
	                   "ECR GetAuthorizationToken", &doc, NULL, err);
	if (rc)
		return rc;
	data = json_array_get(json_object_get(doc, "authorizationData"), 0);
	tok = json_string_value(json_object_get(data, "authorizationToken"));
	proxy = json_string_value(json_object_get(data, "proxyEndpoint"));
	plain = tok ? aws_base64_decode(tok, NULL) : NULL;
	colon = plain ? strchr(plain, ':') : NULL;
	if (!colon) {
		if (plain)
			memset(plain, 0, strlen(plain));
		free(plain);
		json_decref(doc);
		return aws_fail(err, HYPERTEST_ERR_PROVIDER,
		                "ECR GetAuthorizationToken: no authorizationToken of the form "
		                "base64(user:password) in the answer");
	}
	*colon = '\0';
	out->username = strdup(plain);
	out->password = strdup(colon + 1);
	out->proxy_endpoint = proxy ? strdup(proxy) : NULL;
	memset(colon + 1, 0, strlen(colon + 1));
	free(plain);
	json_decref(doc);
	if (!out->username || !out->password || (proxy && !out->proxy_endpoint)) {
		aws_ecr_login_free(out);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int aws_ecr_tag_digest(aws_provider *p, const char *repository, const char *tag, char **digest,
                       char **err)
{
	json_t *req = json_pack("{s:s, s:[{s:s}], s:[s,s,s,s]}", "repositoryName", repository,
	                        "imageIds", "imageTag", tag, "acceptedMediaTypes",
	                        "application/vnd.oci.image.manifest.v1+json",
	                        "application/vnd.oci.image.index.v1+json",
	                        "application/vnd.docker.distribution.manifest.v2+json",
	                        "application/vnd.docker.distribution.manifest.list.v2+json");
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL, what[512], *code = NULL;
	json_t *doc = NULL, *img, *fail;
	const char *d;
	int rc;
	*digest = NULL;
	json_decref(req);
	if (!body)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	snprintf(what, sizeof what, "ECR BatchGetImage %s:%s", repository, tag);
	rc = aws_json_call(p, AWS_SVC_ECR, "POST", "/", ECR_TARGET "BatchGetImage", body, what, &doc,
	                   &code, err);
	free(body);
	/* no repository, no image */
	if (rc && code && strcmp(code, "RepositoryNotFoundException") == 0)
		rc = HYPERTEST_ERR_NOT_FOUND;
	free(code);
	if (rc)
		return rc;
	img = json_array_get(json_object_get(doc, "images"), 0);
	d = json_string_value(json_object_get(json_object_get(img, "imageId"), "imageDigest"));
	if (d && strncmp(d, "sha256:", 7) == 0) {
		*digest = strdup(d);
		rc = *digest ? 0 : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	} else {
		fail = json_array_get(json_object_get(doc, "failures"), 0);
		rc = aws_fail(err, HYPERTEST_ERR_NOT_FOUND, "%s: %s%s%s", what,
		              json_string_value(json_object_get(fail, "failureCode"))
		                  ? json_string_value(json_object_get(fail, "failureCode"))
		                  : "no such image",
		              json_string_value(json_object_get(fail, "failureReason")) ? ": " : "",
		              json_string_value(json_object_get(fail, "failureReason"))
		                  ? json_string_value(json_object_get(fail, "failureReason"))
		                  : "");
	}
	json_decref(doc);
	return rc;
}
