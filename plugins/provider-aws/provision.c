/*
 * provision.c - the aws provider's provisioning operations (plugin ABI
 * 1.3): the plan, its application and destroy over the four resources
 * (ECR repository, S3 bucket, IAM role, Lambda function), and what the
 * resource modules share: items, tags, the partition, the architecture.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"
#include "quotas.h"

int aws_plan_add(aws_plan *pl, const char *type, const char *name, const char *action,
                 const char *reason, char **err)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "name", name, "action", action,
	                      "reason", reason);
	if (!o || json_array_append_new(pl->items, o) != 0)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}

void aws_reason_add(htp_buf *reason, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	s = htp_vstrdupf(fmt, ap);
	va_end(ap);
	if (reason->len)
		htp_buf_str(reason, "; ");
	htp_buf_str(reason, s ? s : "?");
	free(s);
}

const char *aws_partition(aws_provider *p)
{
	/* the region in use; before any request (a template): the option or
	 * the environment's */
	const char *r = p->creds.region ? p->creds.region
	                : p->o.region ? p->o.region
	                : getenv("AWS_REGION") ? getenv("AWS_REGION") : "";
	if (strncmp(r, "cn-", 3) == 0)
		return "aws-cn";
	if (strncmp(r, "us-gov-", 7) == 0)
		return "aws-us-gov";
	return "aws";
}

int aws_tags_ours(aws_provider *p, json_t *tags)
{
	const char *v = json_string_value(json_object_get(tags, AWS_TAG_PROJECT));
	return v && strcmp(v, p->o.project_name) == 0;
}

json_t *aws_tags_wanted(aws_provider *p)
{
	return json_pack("{s:s, s:s}", AWS_TAG_PROJECT, p->o.project_name, AWS_TAG_TOOL,
	                 AWS_TAG_TOOL_VALUE);
}

json_t *aws_tags_missing(aws_provider *p, json_t *have)
{
	json_t *want = aws_tags_wanted(p), *v;
	const char *k;
	void *tmp;
	if (!want)
		return NULL;
	json_object_foreach_safe(want, tmp, k, v) {
		const char *h = json_string_value(json_object_get(have, k));
		if (h && strcmp(h, json_string_value(v)) == 0)
			json_object_del(want, k);
	}
	if (json_object_size(want) == 0) {
		json_decref(want);
		return NULL;
	}
	return want;
}

const char *aws_platform_arch(aws_provider *p)
{
	const char *pl = p->o.platform ? p->o.platform : "linux/amd64";
	return strncmp(pl, "linux/arm64", 11) == 0 ? "arm64" : "x86_64";
}

/* ---- the operations ------------------------------------------------------------------- */

static int hand_over(aws_provider *p, aws_plan *pl, hypertest_buffer *out)
{
	char *text = json_dumps(pl->items, JSON_COMPACT);
	int rc;
	if (!text)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = p->up.buffer_append(out, text, strlen(text));
	free(text);
	return rc ? aws_p_fail(p, rc, "cannot hand over the answer") : 0;
}

/* The quota, logged; one that cannot be read is a warning, except after a
 * cancel (HYPERTEST_ERR_CANCELLED and its message into *errp). */
static int report_quota(aws_provider *p, char **errp)
{
	char *err = NULL;
	double quota = 0;
	int rc = aws_quota_lambda_concurrency(p, &quota, &err);
	if (rc == HYPERTEST_ERR_CANCELLED) {
		free(*errp);
		*errp = err;
		return rc;
	}
	if (rc != 0)
		aws_p_log(p, HYPERTEST_LOG_WARNING, "cannot read the Lambda concurrency quota: %s",
		          aws_msg(err));
	else if (p->o.concurrency > 0 && quota < (double)p->o.concurrency)
		aws_p_log(p, HYPERTEST_LOG_WARNING,
		          "the account's Lambda concurrency quota is %.0f, below the configured "
		          "concurrency %ld: invocations over it are throttled",
		          quota, p->o.concurrency);
	else
		aws_p_log(p, HYPERTEST_LOG_INFO,
		          "the account's Lambda concurrency quota is %.0f (configured concurrency %ld)",
		          quota, p->o.concurrency);
	free(err);
	return 0;
}

/* One resource's step: looks at it, adds its item to the plan and, when
 * the plan is applied, carries the action out. */
typedef int (*aws_step)(aws_plan *pl, char **err);

static int quota_step(aws_plan *pl, char **err)
{
	return report_quota(pl->p, err);
}

/* Runs steps (NULL-terminated) in order on a new plan, to the first
 * failure, then hands the plan's items over. */
static int run_steps(aws_provider *p, int apply, unsigned flags, const aws_step *steps,
                     hypertest_buffer *out)
{
	aws_plan pl = {p, apply, flags, NULL, NULL};
	char *err = NULL;
	int rc;
	if ((rc = aws_ready(p)))
		return rc;
	if (!(pl.items = json_array()))
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	for (; *steps && !rc; steps++)
		rc = (*steps)(&pl, &err);
	/* err may hold the message of a failure looked at and passed over */
	if (rc)
		rc = aws_p_err_take(p, rc, err);
	else
		free(err), rc = hand_over(p, &pl, out);
	json_decref(pl.items);
	free(pl.role_arn);
	return rc;
}

/* the role before the function (which needs its ARN) */
static const aws_step provision_steps[] = {aws_prov_repository, aws_prov_bucket, aws_prov_role,
                                           aws_prov_function, quota_step, NULL};
/* the function first (it uses the role and the image), the bucket last */
static const aws_step destroy_steps[] = {aws_destroy_function, aws_destroy_role,
                                         aws_destroy_repository, aws_destroy_bucket, NULL};

int aws_provision_plan(void *self, hypertest_buffer *out)
{
	return run_steps(self, 0, 0, provision_steps, out);
}

int aws_provision_apply(void *self, hypertest_buffer *out)
{
	return run_steps(self, 1, 0, provision_steps, out);
}

int aws_resources_destroy(void *self, unsigned flags, hypertest_buffer *out)
{
	return run_steps(self, !(flags & HYPERTEST_DESTROY_LIST), flags, destroy_steps, out);
}
