/*
 * provision-s3.c - the S3 bucket of provisioning (REST-XML): created in
 * the configured region (a LocationConstraint outside us-east-1), public
 * access blocked, server-side encryption (SSE-S3), runs expiring after
 * bucketExpireDays (one lifecycle rule per first hex digit of a run id, so
 * the manifest and anything else at the top never expires), the project's
 * tags.  Destroy removes a tagged bucket, emptying it only when forced.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "provision.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define RULE_PREFIX "hypertest-runs-"

static const char hexdigits[] = "0123456789abcdef";

/* base64(MD5(body)) for Content-MD5 into out[25]. */
static void content_md5(const char *body, size_t len, char out[25])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(body, len, md, &n, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)n);
}

/* One request on the bucket (?query); resp is the caller's to clear. */
static int s3_call(aws_provider *p, const char *op, const char *method, const char *key,
                   const char *query, const char *body, aws_http_response *resp, char **err)
{
	aws_http_request r;
	char *url = aws_s3_url(&p->ep[AWS_SVC_S3], p->o.bucket, key, query), what[512], md5[25];
	int rc;
	memset(resp, 0, sizeof *resp);
	snprintf(what, sizeof what, "S3 %s s3://%s/%s", op, p->o.bucket, key ? key : "");
	if (!url || aws_http_request_init(&r, method, url, what) < 0) {
		free(url);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	free(url);
	if (body) {
		content_md5(body, strlen(body), md5);
		if (aws_headers_add(&r.headers, "Content-Type", "application/xml") < 0 ||
		    aws_headers_add(&r.headers, "Content-MD5", md5) < 0) {
			aws_http_request_clear(&r);
			return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		}
		r.body = body;
		r.body_len = strlen(body);
	}
	r.sign = aws_http_sign_sigv4;
	r.sign_ud = &p->s3.sig;
	rc = aws_http_perform(p->http, &r, resp, err);
	aws_http_request_clear(&r);
	return rc;
}

/* A call whose answer does not matter. */
static int s3_do(aws_provider *p, const char *op, const char *method, const char *key,
                 const char *query, const char *body, char **err)
{
	aws_http_response resp;
	int rc = s3_call(p, op, method, key, query, body, &resp, err);
	aws_http_response_clear(&resp);
	return rc;
}

/* A GET of a bucket subresource, parsed: *doc NULL when the answer was
 * 404 with missing_code (the configuration does not exist). */
static int s3_get_doc(aws_provider *p, const char *op, const char *query,
                      const char *missing_code, htp_xml **doc, char **err)
{
	aws_http_response resp;
	char *perr = NULL;
	int rc = s3_call(p, op, "GET", NULL, query, NULL, &resp, err);
	*doc = NULL;
	if (rc == HYPERTEST_ERR_NOT_FOUND && resp.error_code &&
	    strcmp(resp.error_code, missing_code) == 0) {
		rc = 0;
	} else if (rc == 0) {
		*doc = htp_xml_parse(resp.body.data ? resp.body.data : "", resp.body.len, &perr);
		if (!*doc)
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "S3 %s s3://%s: the answer is not XML (%s)",
			              op, p->o.bucket, perr ? perr : "out of memory");
		free(perr);
	}
	aws_http_response_clear(&resp);
	return rc;
}

static void xml_esc(htp_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': htp_buf_str(b, "&amp;"); break;
		case '<': htp_buf_str(b, "&lt;"); break;
		case '>': htp_buf_str(b, "&gt;"); break;
		case '"': htp_buf_str(b, "&quot;"); break;
		default: htp_buf_add(b, s, 1);
		}
	}
}

static const char *kid_text(htp_xml *e, const char *name)
{
	htp_xml *k = htp_xml_child(e, name);
	return k && k->text ? k->text : "";
}

/* ---- looking ------------------------------------------------------------------------------ */

/* HeadBucket: 1 exists, 0 does not. */
static int bucket_exists(aws_provider *p, int *exists, char **err)
{
	aws_http_response resp;
	int rc = s3_call(p, "HeadBucket", "HEAD", NULL, NULL, NULL, &resp, err);
	aws_http_response_clear(&resp);
	*exists = rc == 0;
	return rc == HYPERTEST_ERR_NOT_FOUND ? 0 : rc;
}

/* The bucket's tags as an object (empty without a tag set). */
static int bucket_tags(aws_provider *p, json_t **tags, char **err)
{
	htp_xml *doc = NULL, **v;
	size_t i, n = 0;
	int rc = s3_get_doc(p, "GetBucketTagging", "tagging", "NoSuchTagSet", &doc, err);
	*tags = json_object();
	if (rc || !doc)
		return rc;
	v = htp_xml_find_all(doc, "Tag", &n);
	for (i = 0; v && i < n; i++)
		json_object_set_new(*tags, kid_text(v[i], "Key"), json_string(kid_text(v[i], "Value")));
	free(v);
	htp_xml_free(doc);
	return 0;
}

static int public_access_ok(aws_provider *p, int *ok, char **err)
{
	static const char *const flags[] = {"BlockPublicAcls", "IgnorePublicAcls",
	                                    "BlockPublicPolicy", "RestrictPublicBuckets"};
	htp_xml *doc = NULL;
	size_t i;
	int rc = s3_get_doc(p, "GetPublicAccessBlock", "publicAccessBlock",
	                    "NoSuchPublicAccessBlockConfiguration", &doc, err);
	*ok = doc != NULL;
	for (i = 0; doc && i < 4; i++)
		if (strcmp(kid_text(doc, flags[i]), "true") != 0)
			*ok = 0;
	htp_xml_free(doc);
	return rc;
}

static int encryption_ok(aws_provider *p, int *ok, char **err)
{
	htp_xml *doc = NULL, **v;
	size_t n = 0;
	int rc = s3_get_doc(p, "GetBucketEncryption", "encryption",
	                    "ServerSideEncryptionConfigurationNotFoundError", &doc, err);
	v = doc ? htp_xml_find_all(doc, "SSEAlgorithm", &n) : NULL;
	*ok = n > 0 && v[0]->text && *v[0]->text;
	free(v);
	htp_xml_free(doc);
	return rc;
}

/* Do the bucket's lifecycle rules expire runs after expire_days?  *others:
 * how many rules are not ours (a new configuration replaces them). */
static int lifecycle_ok(aws_provider *p, int *ok, size_t *others, char **err)
{
	htp_xml *doc = NULL, **v;
	size_t i, n = 0, found = 0;
	char days[32];
	int rc = s3_get_doc(p, "GetBucketLifecycleConfiguration", "lifecycle",
	                    "NoSuchLifecycleConfiguration", &doc, err);
	*others = 0;
	snprintf(days, sizeof days, "%ld", p->o.expire_days);
	v = doc ? htp_xml_find_all(doc, "Rule", &n) : NULL;
	for (i = 0; v && i < n; i++) {
		const char *id = kid_text(v[i], "ID"), *prefix;
		htp_xml *filter = htp_xml_child(v[i], "Filter");
		prefix = filter ? kid_text(filter, "Prefix") : kid_text(v[i], "Prefix");
		if (strncmp(id, RULE_PREFIX, strlen(RULE_PREFIX)) != 0) {
			(*others)++;
			continue;
		}
		if (strcmp(id + strlen(RULE_PREFIX), prefix) == 0 && strlen(prefix) == 1 &&
		    strchr(hexdigits, *prefix) &&
		    strcmp(kid_text(v[i], "Status"), "Enabled") == 0 &&
		    htp_xml_child(v[i], "Expiration") &&
		    strcmp(kid_text(htp_xml_child(v[i], "Expiration"), "Days"), days) == 0)
			found++;
	}
	*ok = found == 16 && n - *others == 16;
	free(v);
	htp_xml_free(doc);
	return rc;
}

/* ---- changing ----------------------------------------------------------------------------- */

static int create_bucket(aws_provider *p, char **err)
{
	const char *region = p->creds.region;
	htp_buf b = {0};
	int rc;
	if (strcmp(region, "us-east-1") == 0)
		return s3_do(p, "CreateBucket", "PUT", NULL, NULL, NULL, err);
	htp_buf_addf(&b,
	             "<CreateBucketConfiguration xmlns=\"" S3_NS "\"><LocationConstraint>%s"
	             "</LocationConstraint></CreateBucketConfiguration>",
	             region);
	rc = b.data ? s3_do(p, "CreateBucket", "PUT", NULL, NULL, b.data, err)
	            : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	htp_buf_free(&b);
	return rc;
}

static int put_public_access(aws_provider *p, char **err)
{
	return s3_do(p, "PutPublicAccessBlock", "PUT", NULL, "publicAccessBlock",
	             "<PublicAccessBlockConfiguration xmlns=\"" S3_NS "\">"
	             "<BlockPublicAcls>true</BlockPublicAcls><IgnorePublicAcls>true</IgnorePublicAcls>"
	             "<BlockPublicPolicy>true</BlockPublicPolicy>"
	             "<RestrictPublicBuckets>true</RestrictPublicBuckets>"
	             "</PublicAccessBlockConfiguration>",
	             err);
}

static int put_encryption(aws_provider *p, char **err)
{
	return s3_do(p, "PutBucketEncryption", "PUT", NULL, "encryption",
	             "<ServerSideEncryptionConfiguration xmlns=\"" S3_NS "\"><Rule>"
	             "<ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm>"
	             "</ApplyServerSideEncryptionByDefault></Rule>"
	             "</ServerSideEncryptionConfiguration>",
	             err);
}

static int put_lifecycle(aws_provider *p, char **err)
{
	htp_buf b = {0};
	int i, rc;
	htp_buf_str(&b, "<LifecycleConfiguration xmlns=\"" S3_NS "\">");
	for (i = 0; i < 16; i++)
		htp_buf_addf(&b,
		             "<Rule><ID>" RULE_PREFIX "%c</ID><Filter><Prefix>%c</Prefix></Filter>"
		             "<Status>Enabled</Status><Expiration><Days>%ld</Days></Expiration></Rule>",
		             hexdigits[i], hexdigits[i], p->o.expire_days);
	htp_buf_str(&b, "</LifecycleConfiguration>");
	rc = b.data ? s3_do(p, "PutBucketLifecycleConfiguration", "PUT", NULL, "lifecycle", b.data,
	                    err)
	            : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	htp_buf_free(&b);
	return rc;
}

/* PutBucketTagging replaces the set: the bucket's tags and ours. */
static int put_tags(aws_provider *p, json_t *have, char **err)
{
	json_t *all = json_deep_copy(have), *want = aws_tags_wanted(p), *v;
	htp_buf b = {0};
	const char *k;
	int rc;
	json_object_update(all, want);
	htp_buf_str(&b, "<Tagging xmlns=\"" S3_NS "\"><TagSet>");
	json_object_foreach(all, k, v) {
		htp_buf_str(&b, "<Tag><Key>");
		xml_esc(&b, k);
		htp_buf_str(&b, "</Key><Value>");
		xml_esc(&b, json_string_value(v) ? json_string_value(v) : "");
		htp_buf_str(&b, "</Value></Tag>");
	}
	htp_buf_str(&b, "</TagSet></Tagging>");
	rc = b.data && all && want ? s3_do(p, "PutBucketTagging", "PUT", NULL, "tagging", b.data, err)
	                           : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	htp_buf_free(&b);
	json_decref(all);
	json_decref(want);
	return rc;
}

/* ---- provision and destroy ---------------------------------------------------------------- */

int aws_prov_bucket(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	json_t *tags = NULL, *missing = NULL;
	htp_buf why = {0};
	size_t others = 0;
	int rc, exists, pab = 1, enc = 1, life = 1;
	if ((rc = bucket_exists(p, &exists, err)))
		return rc;
	if (!exists) {
		htp_buf_addf(&why, "does not exist (in %s; public access blocked, SSE-S3", p->creds.region);
		if (p->o.expire_days > 0)
			htp_buf_addf(&why, ", runs expire after %ld days", p->o.expire_days);
		htp_buf_str(&why, ")");
		if (pl->apply) {
			tags = json_object();
			rc = create_bucket(p, err);
			if (!rc)
				rc = put_public_access(p, err);
			if (!rc)
				rc = put_encryption(p, err);
			if (!rc && p->o.expire_days > 0)
				rc = put_lifecycle(p, err);
			if (!rc)
				rc = put_tags(p, tags, err);
			json_decref(tags);
		}
		if (!rc)
			rc = aws_plan_add(pl, "bucket", p->o.bucket, "create", why.data, err);
		htp_buf_free(&why);
		return rc;
	}
	rc = bucket_tags(p, &tags, err);
	if (!rc)
		rc = public_access_ok(p, &pab, err);
	if (!rc)
		rc = encryption_ok(p, &enc, err);
	if (!rc && p->o.expire_days > 0)
		rc = lifecycle_ok(p, &life, &others, err);
	if (!rc) {
		missing = aws_tags_missing(p, tags);
		if (!pab)
			aws_reason_add(&why, "public access is not blocked");
		if (!enc)
			aws_reason_add(&why, "no default server-side encryption");
		if (!life)
			aws_reason_add(&why, "runs do not expire after %ld days%s", p->o.expire_days,
			               others ? " (the bucket's other lifecycle rules are replaced)" : "");
		if (missing)
			aws_reason_add(&why, "the project's tags are missing");
	}
	if (!rc && pl->apply && !pab)
		rc = put_public_access(p, err);
	if (!rc && pl->apply && !enc)
		rc = put_encryption(p, err);
	if (!rc && pl->apply && !life)
		rc = put_lifecycle(p, err);
	if (!rc && pl->apply && missing)
		rc = put_tags(p, tags, err);
	if (!rc)
		rc = aws_plan_add(pl, "bucket", p->o.bucket, why.len ? "update" : "exists",
		                  why.len ? why.data : "exists as configured", err);
	htp_buf_free(&why);
	json_decref(missing);
	json_decref(tags);
	return rc;
}

struct keys {
	char **v;
	size_t n, cap;
	int keep; /* collect the keys, not just count them */
};

static int collect(void *ud, const char *key, long long size)
{
	struct keys *k = ud;
	(void)size;
	if (k->keep && k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		char **v = realloc(k->v, cap * sizeof *v);
		if (!v)
			return HYPERTEST_ERR_NOMEM;
		k->v = v;
		k->cap = cap;
	}
	if (k->keep && !(k->v[k->n] = strdup(key)))
		return HYPERTEST_ERR_NOMEM;
	k->n++;
	return 0;
}

int aws_destroy_bucket(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	struct keys k = {NULL, 0, 0, 0};
	json_t *tags = NULL;
	char reason[160];
	size_t i;
	int rc, exists, force = (pl->flags & HYPERTEST_DESTROY_FORCE) != 0;
	if ((rc = bucket_exists(p, &exists, err)) || !exists)
		return rc;
	if ((rc = bucket_tags(p, &tags, err)))
		return rc;
	if (!aws_tags_ours(p, tags)) {
		aws_p_log(p, HYPERTEST_LOG_INFO, "S3 bucket %s is not tagged %s=%s: left alone",
		          p->o.bucket, AWS_TAG_PROJECT, p->o.project_name);
		json_decref(tags);
		return 0;
	}
	json_decref(tags);
	k.keep = force && pl->apply;
	if ((rc = aws_s3_list(&p->s3, "", collect, &k, err))) {
		if (rc == HYPERTEST_ERR_NOMEM)
			aws_fail(err, rc, "out of memory");
		goto out;
	}
	if (k.n > 0 && !force) {
		snprintf(reason, sizeof reason, "holds %zu object%s (--force empties it)", k.n,
		         k.n == 1 ? "" : "s");
		rc = aws_plan_add(pl, "bucket", p->o.bucket, "keep", reason, err);
		goto out;
	}
	for (i = 0; pl->apply && i < k.n && !rc; i++)
		rc = s3_do(p, "DeleteObject", "DELETE", k.v[i], NULL, NULL, err);
	if (!rc && pl->apply)
		rc = s3_do(p, "DeleteBucket", "DELETE", NULL, NULL, NULL, err);
	if (k.n)
		snprintf(reason, sizeof reason, "tagged for this project; %zu object%s deleted first", k.n,
		         k.n == 1 ? "" : "s");
	else
		snprintf(reason, sizeof reason, "tagged for this project; empty");
	if (!rc)
		rc = aws_plan_add(pl, "bucket", p->o.bucket, "delete", reason, err);
out:
	for (i = 0; k.keep && i < k.n; i++)
		free(k.v[i]);
	free(k.v);
	return rc;
}
