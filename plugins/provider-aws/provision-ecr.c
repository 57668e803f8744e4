/*
 * provision-ecr.c - the ECR repository of provisioning (JSON 1.1): scan on
 * push off, a lifecycle policy keeping the last ecrLifecycleKeep images,
 * the project's tags; DescribeRepositories, ListTagsForResource and
 * GetLifecyclePolicy to look, CreateRepository,
 * PutImageScanningConfiguration, PutLifecyclePolicy and TagResource to
 * change, DeleteRepository (with its images: deploy rebuilds them) to
 * destroy.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"

#define ECR_TARGET "AmazonEC2ContainerRegistry_V20150921."

/* One ECR call; req is consumed.  *code: the AWS error code, caller frees. */
static int ecr_call(aws_provider *p, const char *op, json_t *req, json_t **out, char **code,
                    char **err)
{
	char target[128], what[512], *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	int rc;
	json_decref(req);
	if (out)
		*out = NULL;
	if (code)
		*code = NULL;
	if (!body)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	snprintf(target, sizeof target, ECR_TARGET "%s", op);
	snprintf(what, sizeof what, "ECR %s %s", op, p->o.repository);
	rc = aws_json_call(p, AWS_SVC_ECR, "POST", "/", target, body, what, out, code, err);
	free(body);
	return rc;
}

static int code_is(const char *code, const char *want)
{
	return code && strcmp(code, want) == 0;
}

/* DescribeRepositories: *repo (new reference) or NULL when it does not exist. */
static int describe(aws_provider *p, json_t **repo, char **err)
{
	json_t *out = NULL;
	char *code = NULL;
	int rc = ecr_call(p, "DescribeRepositories",
	                  json_pack("{s:[s]}", "repositoryNames", p->o.repository), &out, &code, err);
	*repo = NULL;
	if (rc && code_is(code, "RepositoryNotFoundException"))
		rc = 0;
	else if (rc == 0)
		*repo = json_incref(json_array_get(json_object_get(out, "repositories"), 0));
	free(code);
	json_decref(out);
	return rc;
}

int aws_ecr_repository_uri(aws_provider *p, char **uri, char **err)
{
	json_t *repo = NULL;
	const char *s;
	int rc = describe(p, &repo, err);
	*uri = NULL;
	if (rc)
		return rc;
	s = json_string_value(json_object_get(repo, "repositoryUri"));
	if (!s)
		rc = aws_fail(err, HYPERTEST_ERR_NOT_FOUND, "ECR repository %s does not exist%s",
		              p->o.repository, repo ? " (or has no repositoryUri)" : "");
	else if (!(*uri = strdup(s)))
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	json_decref(repo);
	return rc;
}

/* [{"Key": k, "Value": v}, ...] of a tag object. */
static json_t *tag_list(json_t *tags)
{
	json_t *arr = json_array(), *v;
	const char *k;
	json_object_foreach(tags, k, v)
		json_array_append_new(arr, json_pack("{s:s, s:O}", "Key", k, "Value", v));
	return arr;
}

/* The repository's tags as an object. */
static int repo_tags(aws_provider *p, const char *arn, json_t **tags, char **err)
{
	json_t *out = NULL, *t;
	size_t i;
	int rc = ecr_call(p, "ListTagsForResource", json_pack("{s:s}", "resourceArn", arn), &out,
	                  NULL, err);
	*tags = json_object();
	if (rc == 0)
		json_array_foreach(json_object_get(out, "tags"), i, t)
			if (json_is_string(json_object_get(t, "Key")))
				json_object_set(*tags, json_string_value(json_object_get(t, "Key")),
				                json_object_get(t, "Value"));
	json_decref(out);
	return rc;
}

static json_t *lifecycle_wanted(aws_provider *p)
{
	char desc[96];
	snprintf(desc, sizeof desc, "hypertest: keep the last %ld images", p->o.ecr_keep);
	return json_pack("{s:[{s:i, s:s, s:{s:s, s:s, s:I}, s:{s:s}}]}", "rules", "rulePriority", 1,
	                 "description", desc, "selection", "tagStatus", "any", "countType",
	                 "imageCountMoreThan", "countNumber", (json_int_t)p->o.ecr_keep, "action",
	                 "type", "expire");
}

/* Is the repository's lifecycle policy the wanted one? */
static int lifecycle_ok(aws_provider *p, int *ok, char **err)
{
	json_t *out = NULL, *have = NULL, *want;
	char *code = NULL;
	const char *text;
	int rc = ecr_call(p, "GetLifecyclePolicy", json_pack("{s:s}", "repositoryName",
	                                                     p->o.repository),
	                  &out, &code, err);
	*ok = 0;
	if (rc && code_is(code, "LifecyclePolicyNotFoundException"))
		rc = 0;
	else if (rc == 0 && (text = json_string_value(json_object_get(out, "lifecyclePolicyText"))))
		have = json_loads(text, 0, NULL);
	want = lifecycle_wanted(p);
	*ok = have && want && json_equal(have, want);
	json_decref(have);
	json_decref(want);
	json_decref(out);
	free(code);
	return rc;
}

static int put_lifecycle(aws_provider *p, char **err)
{
	json_t *want = lifecycle_wanted(p);
	char *text = want ? json_dumps(want, JSON_COMPACT) : NULL;
	int rc;
	json_decref(want);
	if (!text)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = ecr_call(p, "PutLifecyclePolicy",
	              json_pack("{s:s, s:s}", "repositoryName", p->o.repository,
	                        "lifecyclePolicyText", text),
	              NULL, NULL, err);
	free(text);
	return rc;
}

static int no_repository(char **err)
{
	return aws_fail(err, HYPERTEST_ERR_CONFIG,
	                "option 'repository' is not set and the configuration has no imageName: "
	                "no ECR repository to provision");
}

int aws_prov_repository(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	json_t *repo = NULL, *tags = NULL, *missing = NULL;
	htp_buf why = {0};
	const char *arn;
	int rc, scan_ok, life_ok = 1;
	if (!p->o.repository)
		return no_repository(err);
	if ((rc = describe(p, &repo, err)))
		return rc;
	if (!repo) {
		if (pl->apply) {
			json_t *want = aws_tags_wanted(p);
			rc = ecr_call(p, "CreateRepository",
			              json_pack("{s:s, s:o, s:{s:b}, s:s}", "repositoryName",
			                        p->o.repository, "tags", tag_list(want),
			                        "imageScanningConfiguration", "scanOnPush", 0,
			                        "imageTagMutability", "MUTABLE"),
			              NULL, NULL, err);
			json_decref(want);
			if (!rc && p->o.ecr_keep > 0)
				rc = put_lifecycle(p, err);
		}
		if (!rc && p->o.ecr_keep > 0)
			htp_buf_addf(&why, "does not exist (scan on push off, keeping the last %ld images)",
			             p->o.ecr_keep);
		else if (!rc)
			htp_buf_str(&why, "does not exist (scan on push off, no lifecycle policy)");
		if (!rc)
			rc = aws_plan_add(pl, "repository", p->o.repository, "create", why.data, err);
		htp_buf_free(&why);
		return rc;
	}
	arn = json_string_value(json_object_get(repo, "repositoryArn"));
	scan_ok = !json_is_true(json_object_get(json_object_get(repo, "imageScanningConfiguration"),
	                                        "scanOnPush"));
	if (!arn)
		rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
		              "ECR DescribeRepositories %s: no repositoryArn in the answer",
		              p->o.repository);
	if (!rc)
		rc = repo_tags(p, arn, &tags, err);
	if (!rc && p->o.ecr_keep > 0)
		rc = lifecycle_ok(p, &life_ok, err);
	if (!rc) {
		missing = aws_tags_missing(p, tags);
		if (!scan_ok)
			aws_reason_add(&why, "scan on push is on");
		if (!life_ok)
			aws_reason_add(&why, "the lifecycle policy does not keep exactly the last %ld images",
			               p->o.ecr_keep);
		if (missing)
			aws_reason_add(&why, "the project's tags are missing");
	}
	if (!rc && pl->apply && !scan_ok)
		rc = ecr_call(p, "PutImageScanningConfiguration",
		              json_pack("{s:s, s:{s:b}}", "repositoryName", p->o.repository,
		                        "imageScanningConfiguration", "scanOnPush", 0),
		              NULL, NULL, err);
	if (!rc && pl->apply && !life_ok)
		rc = put_lifecycle(p, err);
	if (!rc && pl->apply && missing)
		rc = ecr_call(p, "TagResource",
		              json_pack("{s:s, s:o}", "resourceArn", arn, "tags", tag_list(missing)), NULL,
		              NULL, err);
	if (!rc)
		rc = aws_plan_add(pl, "repository", p->o.repository, why.len ? "update" : "exists",
		                  why.len ? why.data : "exists as configured", err);
	htp_buf_free(&why);
	json_decref(missing);
	json_decref(tags);
	json_decref(repo);
	return rc;
}

int aws_destroy_repository(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	json_t *repo = NULL, *tags = NULL;
	const char *arn;
	int rc;
	if (!p->o.repository)
		return 0;
	if ((rc = describe(p, &repo, err)) || !repo)
		return rc;
	arn = json_string_value(json_object_get(repo, "repositoryArn"));
	rc = arn ? repo_tags(p, arn, &tags, err) : 0;
	if (!rc && !aws_tags_ours(p, tags)) {
		aws_p_log(p, HYPERTEST_LOG_INFO,
		          "ECR repository %s is not tagged %s=%s: left alone", p->o.repository,
		          AWS_TAG_PROJECT, p->o.project_name);
	} else if (!rc) {
		if (pl->apply)
			rc = ecr_call(p, "DeleteRepository",
			              json_pack("{s:s, s:b}", "repositoryName", p->o.repository, "force", 1),
			              NULL, NULL, err);
		if (!rc)
			rc = aws_plan_add(pl, "repository", p->o.repository, "delete",
			                  "tagged for this project; its images go with it", err);
	}
	json_decref(tags);
	json_decref(repo);
	return rc;
}
