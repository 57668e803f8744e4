/*
 * iam.c - the function's execution role (IAM, query protocol, XML
 * answers; a global service signed for us-east-1 whatever the region):
 * trust for lambda.amazonaws.com, the managed AWSLambdaBasicExecutionRole
 * (logs), an inline policy allowing exactly s3:PutObject and s3:GetObject
 * on the bucket's objects, the project's tags.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"

#define IAM_VERSION "2010-05-08"
#define INLINE_POLICY "hypertest-bucket-objects"
#define LAMBDA_PRINCIPAL "lambda.amazonaws.com"

/* ---- the query protocol ------------------------------------------------------------------- */

/* Call Action with params (name, value, ..., NULL; values encoded here);
 * *doc (may be NULL) the parsed answer.  *code (may be NULL): the AWS
 * error code of a failure, caller frees. */
static int iam_call(aws_provider *p, const char *action, const char *const *params,
                    htp_xml **doc, char **code, char **err)
{
	aws_http_request r;
	aws_http_response resp;
	htp_buf body = {0};
	char *url = htp_strdupf("%s/", p->ep[AWS_SVC_IAM].url), what[512], *perr = NULL;
	size_t i;
	int rc;
	if (doc)
		*doc = NULL;
	if (code)
		*code = NULL;
	htp_buf_addf(&body, "Action=%s&Version=" IAM_VERSION, action);
	for (i = 0; params && params[i]; i += 2) {
		htp_buf_addf(&body, "&%s=", params[i]);
		aws_uri_encode(&body, params[i + 1], strlen(params[i + 1]), 0);
	}
	snprintf(what, sizeof what, "IAM %s %s", action, p->o.role_name);
	if (!url || !body.data || aws_http_request_init(&r, "POST", url, what) < 0) {
		free(url);
		htp_buf_free(&body);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	free(url);
	if (aws_headers_add(&r.headers, "Content-Type",
	                    "application/x-www-form-urlencoded; charset=utf-8") < 0) {
		aws_http_request_clear(&r);
		htp_buf_free(&body);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	r.body_len = body.len;
	r.body = r.body_owned = htp_buf_take(&body);
	r.sign = aws_http_sign_sigv4;
	r.sign_ud = &p->sig[AWS_SVC_IAM];
	rc = aws_http_perform(p->http, &r, &resp, err);
	if (rc && code && resp.error_code)
		*code = strdup(resp.error_code);
	if (rc == 0 && doc) {
		*doc = htp_xml_parse(resp.body.data ? resp.body.data : "", resp.body.len, &perr);
		if (!*doc)
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "%s: the answer is not XML (%s)", what,
			              perr ? perr : "out of memory");
		free(perr);
	}
	aws_http_response_clear(&resp);
	aws_http_request_clear(&r);
	return rc;
}

static int code_is(const char *code, const char *want)
{
	return code && strcmp(code, want) == 0;
}

/* The text of the first element named name below doc, or NULL. */
static const char *find_text(htp_xml *doc, const char *name)
{
	size_t n = 0;
	htp_xml **v = htp_xml_find_all(doc, name, &n);
	const char *s = n ? v[0]->text : NULL;
	free(v);
	return s;
}

/* A policy document of an answer (URL-encoded JSON), parsed. */
static json_t *policy_doc(const char *encoded)
{
	htp_buf b = {0};
	json_t *j;
	if (!encoded || aws_uri_decode(&b, encoded, strlen(encoded)) < 0 || !b.data) {
		htp_buf_free(&b);
		return NULL;
	}
	j = json_loadb(b.data, b.len, 0, NULL);
	htp_buf_free(&b);
	return j;
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

/* ---- the wanted shape --------------------------------------------------------------------- */

static json_t *trust_wanted(void)
{
	return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}]}", "Version", "2012-10-17", "Statement",
	                 "Effect", "Allow", "Principal", "Service", LAMBDA_PRINCIPAL, "Action",
	                 "sts:AssumeRole");
}

static json_t *inline_wanted(aws_provider *p)
{
	char res[512];
	snprintf(res, sizeof res, "arn:%s:s3:::%s/*", aws_partition(p), p->o.bucket);
	return json_pack("{s:s, s:[{s:s, s:[s,s], s:s}]}", "Version", "2012-10-17", "Statement",
	                 "Effect", "Allow", "Action", "s3:PutObject", "s3:GetObject", "Resource", res);
}

static char *managed_arn(aws_provider *p)
{
	return htp_strdupf("arn:%s:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
	                   aws_partition(p));
}

/* Does a statement of the trust policy let Lambda assume the role? */
static int value_has(json_t *v, const char *s)
{
	size_t i;
	json_t *e;
	if (json_is_string(v))
		return strcmp(json_string_value(v), s) == 0;
	json_array_foreach(v, i, e)
		if (json_is_string(e) && strcmp(json_string_value(e), s) == 0)
			return 1;
	return 0;
}

static int trust_ok(json_t *doc)
{
	json_t *st = json_object_get(doc, "Statement"), *s;
	size_t i;
	if (json_is_object(st))
		return value_has(json_object_get(st, "Effect"), "Allow") &&
		       value_has(json_object_get(json_object_get(st, "Principal"), "Service"),
		                 LAMBDA_PRINCIPAL) &&
		       value_has(json_object_get(st, "Action"), "sts:AssumeRole");
	json_array_foreach(st, i, s)
		if (value_has(json_object_get(s, "Effect"), "Allow") &&
		    value_has(json_object_get(json_object_get(s, "Principal"), "Service"),
		              LAMBDA_PRINCIPAL) &&
		    value_has(json_object_get(s, "Action"), "sts:AssumeRole"))
			return 1;
	return 0;
}

/* ---- looking ------------------------------------------------------------------------------ */

typedef struct role_state {
	int exists;
	char *arn;
	json_t *tags;     /* object */
	int trust_ok, managed_ok, inline_ok;
} role_state;

static void role_state_free(role_state *s)
{
	free(s->arn);
	json_decref(s->tags);
	memset(s, 0, sizeof *s);
}

static int get_role(aws_provider *p, role_state *s, char **err)
{
	const char *params[] = {"RoleName", p->o.role_name, NULL};
	htp_xml *doc = NULL, **roles, *role, *arn;
	char *code = NULL;
	size_t i, n = 0;
	json_t *trust;
	int rc = iam_call(p, "GetRole", params, &doc, &code, err);
	memset(s, 0, sizeof *s);
	s->tags = json_object();
	if (rc) {
		if (code_is(code, "NoSuchEntity"))
			rc = 0;
		free(code);
		return rc;
	}
	s->exists = 1;
	roles = htp_xml_find_all(doc, "Role", &n);
	role = n ? roles[0] : NULL;
	free(roles);
	arn = role ? htp_xml_child(role, "Arn") : NULL;
	if (!arn || !arn->text || !(s->arn = strdup(arn->text))) {
		htp_xml_free(doc);
		return aws_fail(err, HYPERTEST_ERR_PROVIDER, "IAM GetRole %s: no Role/Arn in the answer",
		                p->o.role_name);
	}
	trust = policy_doc(find_text(role, "AssumeRolePolicyDocument"));
	s->trust_ok = trust && trust_ok(trust);
	json_decref(trust);
	if (htp_xml_child(role, "Tags")) {
		htp_xml *t = htp_xml_child(role, "Tags");
		for (i = 0; i < t->n_kids; i++) {
			htp_xml *k = htp_xml_child(t->kids[i], "Key"), *v = htp_xml_child(t->kids[i], "Value");
			if (k && k->text)
				json_object_set_new(s->tags, k->text, json_string(v && v->text ? v->text : ""));
		}
	}
	htp_xml_free(doc);
	return 0;
}

/* The managed and inline policies. */
static int role_policies(aws_provider *p, role_state *s, char **err)
{
	const char *params[] = {"RoleName", p->o.role_name, NULL};
	const char *pparams[] = {"RoleName", p->o.role_name, "PolicyName", INLINE_POLICY, NULL};
	htp_xml *doc = NULL, **v;
	char *code = NULL, *arn = managed_arn(p);
	size_t i, n = 0;
	json_t *have, *want;
	int rc = iam_call(p, "ListAttachedRolePolicies", params, &doc, NULL, err);
	if (!rc) {
		v = htp_xml_find_all(doc, "PolicyArn", &n);
		for (i = 0; v && arn && i < n; i++)
			if (v[i]->text && strcmp(v[i]->text, arn) == 0)
				s->managed_ok = 1;
		free(v);
		htp_xml_free(doc);
		doc = NULL;
	}
	free(arn);
	if (!rc)
		rc = iam_call(p, "GetRolePolicy", pparams, &doc, &code, err);
	if (rc && code_is(code, "NoSuchEntity")) {
		rc = 0;
	} else if (!rc) {
		have = policy_doc(find_text(doc, "PolicyDocument"));
		want = inline_wanted(p);
		s->inline_ok = have && want && json_equal(have, want);
		json_decref(have);
		json_decref(want);
	}
	free(code);
	htp_xml_free(doc);
	return rc;
}

int aws_iam_role_arn(aws_provider *p, char **arn, char **err)
{
	role_state s;
	int rc = get_role(p, &s, err);
	*arn = NULL;
	if (!rc && !s.exists)
		rc = aws_fail(err, HYPERTEST_ERR_NOT_FOUND,
		              "IAM role %s does not exist: `hypertest provision` creates it",
		              p->o.role_name);
	else if (!rc)
		*arn = s.arn, s.arn = NULL;
	role_state_free(&s);
	return rc;
}

/* ---- changing ----------------------------------------------------------------------------- */

static int tag_params(aws_provider *p, json_t *tags, const char ***params, char ***owned)
{
	size_t n = json_object_size(tags), i = 2, j = 0;
	const char *k;
	json_t *v;
	*params = calloc(2 + 4 * n + 1, sizeof **params);
	*owned = calloc(2 * n + 1, sizeof **owned);
	if (!*params || !*owned)
		return -1;
	(*params)[0] = "RoleName";
	(*params)[1] = p->o.role_name;
	json_object_foreach(tags, k, v) {
		(*owned)[j] = htp_strdupf("Tags.member.%zu.Key", j / 2 + 1);
		(*owned)[j + 1] = htp_strdupf("Tags.member.%zu.Value", j / 2 + 1);
		if (!(*owned)[j] || !(*owned)[j + 1])
			return -1;
		(*params)[i++] = (*owned)[j];
		(*params)[i++] = k;
		(*params)[i++] = (*owned)[j + 1];
		(*params)[i++] = json_string_value(v);
		j += 2;
	}
	return 0;
}

/* CreateRole (extra: more parameters) or TagRole with tags. */
static int call_with_tags(aws_provider *p, const char *action, json_t *tags,
                          const char *const *extra, htp_xml **doc, char **err)
{
	const char **params = NULL, **all = NULL;
	char **owned = NULL;
	size_t n = 0, m = 0, i;
	int rc;
	if (tag_params(p, tags, &params, &owned) < 0) {
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	while (params[n])
		n++;
	while (extra && extra[m])
		m++;
	if (!(all = calloc(n + m + 1, sizeof *all))) {
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(all, params, n * sizeof *all);
	if (m)
		memcpy(all + n, extra, m * sizeof *all);
	rc = iam_call(p, action, all, doc, NULL, err);
out:
	for (i = 0; owned && owned[i]; i++)
		free(owned[i]);
	free(owned);
	free(params);
	free(all);
	return rc;
}

static int put_inline(aws_provider *p, char **err)
{
	char *doc = dump(inline_wanted(p));
	const char *params[] = {"RoleName", p->o.role_name, "PolicyName", INLINE_POLICY,
	                        "PolicyDocument", doc, NULL};
	int rc = doc ? iam_call(p, "PutRolePolicy", params, NULL, NULL, err)
	             : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	free(doc);
	return rc;
}

static int attach_managed(aws_provider *p, char **err)
{
	char *arn = managed_arn(p);
	const char *params[] = {"RoleName", p->o.role_name, "PolicyArn", arn, NULL};
	int rc = arn ? iam_call(p, "AttachRolePolicy", params, NULL, NULL, err)
	             : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	free(arn);
	return rc;
}

static int update_trust(aws_provider *p, char **err)
{
	char *doc = dump(trust_wanted());
	const char *params[] = {"RoleName", p->o.role_name, "PolicyDocument", doc, NULL};
	int rc = doc ? iam_call(p, "UpdateAssumeRolePolicy", params, NULL, NULL, err)
	             : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	free(doc);
	return rc;
}

static int create_role(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	char *trust = dump(trust_wanted());
	const char *extra[] = {"AssumeRolePolicyDocument", trust, "Description",
	                       "hypertest: the Lambda function's execution role", NULL};
	json_t *tags = aws_tags_wanted(p);
	htp_xml *doc = NULL;
	const char *arn;
	int rc = trust && tags ? call_with_tags(p, "CreateRole", tags, extra, &doc, err)
	                       : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	free(trust);
	json_decref(tags);
	if (rc)
		return rc;
	arn = find_text(doc, "Arn");
	if (!arn || !(pl->role_arn = strdup(arn)))
		rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "IAM CreateRole %s: no Arn in the answer",
		              p->o.role_name);
	htp_xml_free(doc);
	if (!rc)
		rc = attach_managed(p, err);
	if (!rc)
		rc = put_inline(p, err);
	return rc;
}

int aws_prov_role(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	role_state s;
	json_t *missing = NULL;
	htp_buf why = {0};
	int rc = get_role(p, &s, err);
	if (!rc && !s.exists) {
		if (pl->apply)
			rc = create_role(pl, err);
		if (!rc)
			rc = aws_plan_add(pl, "role", p->o.role_name, "create",
			                  "does not exist (trusting lambda.amazonaws.com, with "
			                  "AWSLambdaBasicExecutionRole and s3:PutObject/GetObject on the "
			                  "bucket's objects)",
			                  err);
		role_state_free(&s);
		return rc;
	}
	if (!rc)
		rc = role_policies(p, &s, err);
	if (!rc) {
		missing = aws_tags_missing(p, s.tags);
		if (!s.trust_ok)
			aws_reason_add(&why, "the trust policy does not let lambda.amazonaws.com assume it "
			                     "(replaced)");
		if (!s.managed_ok)
			aws_reason_add(&why, "AWSLambdaBasicExecutionRole is not attached");
		if (!s.inline_ok)
			aws_reason_add(&why, "the inline policy %s is not exactly s3:PutObject/GetObject on "
			                     "the bucket's objects", INLINE_POLICY);
		if (missing)
			aws_reason_add(&why, "the project's tags are missing");
	}
	if (!rc && pl->apply && !s.trust_ok)
		rc = update_trust(p, err);
	if (!rc && pl->apply && !s.managed_ok)
		rc = attach_managed(p, err);
	if (!rc && pl->apply && !s.inline_ok)
		rc = put_inline(p, err);
	if (!rc && pl->apply && missing)
		rc = call_with_tags(p, "TagRole", missing, NULL, NULL, err);
	if (!rc)
		rc = aws_plan_add(pl, "role", p->o.role_name, why.len ? "update" : "exists",
		                  why.len ? why.data : "exists as configured", err);
	if (!rc)
		pl->role_arn = s.arn, s.arn = NULL;
	htp_buf_free(&why);
	json_decref(missing);
	role_state_free(&s);
	return rc;
}

/* Each value of an element named name in the answer of action. */
static int list_names(aws_provider *p, const char *action, const char *name, char ***out,
                      char **err)
{
	const char *params[] = {"RoleName", p->o.role_name, NULL};
	htp_xml *doc = NULL, **v;
	size_t i, n = 0;
	int rc = iam_call(p, action, params, &doc, NULL, err);
	*out = NULL;
	if (rc)
		return rc;
	v = htp_xml_find_all(doc, name, &n);
	*out = calloc(n + 1, sizeof **out);
	for (i = 0; *out && v && i < n; i++)
		(*out)[i] = strdup(v[i]->text ? v[i]->text : "");
	free(v);
	htp_xml_free(doc);
	return *out ? 0 : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

int aws_destroy_role(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	role_state s;
	char **names = NULL;
	size_t i;
	int rc = get_role(p, &s, err);
	if (rc || !s.exists) {
		role_state_free(&s);
		return rc;
	}
	if (!aws_tags_ours(p, s.tags)) {
		aws_p_log(p, HYPERTEST_LOG_INFO, "IAM role %s is not tagged %s=%s: left alone",
		          p->o.role_name, AWS_TAG_PROJECT, p->o.project_name);
		role_state_free(&s);
		return 0;
	}
	role_state_free(&s);
	if (pl->apply) {
		/* a role goes only without policies */
		rc = list_names(p, "ListRolePolicies", "member", &names, err);
		for (i = 0; !rc && names[i]; i++) {
			const char *params[] = {"RoleName", p->o.role_name, "PolicyName", names[i], NULL};
			rc = iam_call(p, "DeleteRolePolicy", params, NULL, NULL, err);
		}
		htp_strv_free(names);
		names = NULL;
		if (!rc)
			rc = list_names(p, "ListAttachedRolePolicies", "PolicyArn", &names, err);
		for (i = 0; !rc && names[i]; i++) {
			const char *params[] = {"RoleName", p->o.role_name, "PolicyArn", names[i], NULL};
			rc = iam_call(p, "DetachRolePolicy", params, NULL, NULL, err);
		}
		htp_strv_free(names);
		if (!rc)
			rc = iam_call(p, "DeleteRole", (const char *const[]){"RoleName", p->o.role_name, NULL},
			              NULL, NULL, err);
	}
	if (!rc)
		rc = aws_plan_add(pl, "role", p->o.role_name, "delete",
		                  "tagged for this project; its policies are removed first", err);
	return rc;
}
