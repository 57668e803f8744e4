/*
 * provision.h - what the aws provider's provisioning modules share
 * (plugin ABI 1.3, operations 53-55): the plan's items, the project's tags,
 * the shape every resource is wanted in, and one function per resource and
 * mode.  provision.c runs them in order (repository, bucket, role,
 * function) and hands the items to the core; provision-ecr.c,
 * provision-s3.c, iam.c and provision-lambda.c know one service each.
 *
 * A resource function looks at what exists (read-only calls), adds one item
 * to the plan with its action ("exists", "create", "update") and why, and,
 * when apply is set, carries the action out.  Destroy functions add
 * "delete" or "keep", and delete unless list is set.  Only resources whose
 * tag AWS_TAG_PROJECT has the project's name are ever deleted.
 */
#ifndef HT_PROVIDER_AWS_PROVISION_H
#define HT_PROVIDER_AWS_PROVISION_H

#include "options.h"

#define AWS_TAG_PROJECT "hypertest:project" /* value: the project's name */
#define AWS_TAG_TOOL "managed-by"           /* value: "hypertest" */
#define AWS_TAG_TOOL_VALUE "hypertest"

/* The plan being made: items (a JSON array) and the role's ARN, known once
 * the role was looked at (the function needs it). */
typedef struct aws_plan {
	aws_provider *p;
	int apply;         /* carry the actions out */
	unsigned flags;    /* destroy: HYPERTEST_DESTROY_* */
	json_t *items;
	char *role_arn;    /* NULL while unknown (a role yet to be created in a plan) */
} aws_plan;

/* Append {"type", "name", "action", "reason"}; 0 or HYPERTEST_ERR_NOMEM. */
int aws_plan_add(aws_plan *pl, const char *type, const char *name, const char *action,
                 const char *reason, char **err);
/* One reason among several: "a; b; c". */
void aws_reason_add(htp_buf *reason, const char *fmt, ...) AWS_PRINTF(2, 3);

/* "aws", "aws-cn" or "aws-us-gov" for the configured region. */
const char *aws_partition(aws_provider *p);
/* Do these tags (a JSON object key -> value) carry the project's tag? */
int aws_tags_ours(aws_provider *p, json_t *tags);
/* The tags every resource gets, as a JSON object (new reference). */
json_t *aws_tags_wanted(aws_provider *p);
/* The tags of wanted missing from have (an object), or NULL when none
 * (new reference). */
json_t *aws_tags_missing(aws_provider *p, json_t *have);

/* Lambda's architecture for the configuration's platform: "arm64" or
 * "x86_64". */
const char *aws_platform_arch(aws_provider *p);

/* ---- the resources -------------------------------------------------------------------- */

int aws_prov_repository(aws_plan *pl, char **err);   /* provision-ecr.c */
int aws_destroy_repository(aws_plan *pl, char **err);
/* The repository's URI ("<account>.dkr.ecr.<region>.amazonaws.com/name"),
 * caller frees; HYPERTEST_ERR_NOT_FOUND when it does not exist. */
int aws_ecr_repository_uri(aws_provider *p, char **uri, char **err);

int aws_prov_bucket(aws_plan *pl, char **err);       /* provision-s3.c */
int aws_destroy_bucket(aws_plan *pl, char **err);

int aws_prov_role(aws_plan *pl, char **err);         /* iam.c */
int aws_destroy_role(aws_plan *pl, char **err);
/* The role's ARN (caller frees); HYPERTEST_ERR_NOT_FOUND without a role. */
int aws_iam_role_arn(aws_provider *p, char **arn, char **err);

int aws_prov_function(aws_plan *pl, char **err);     /* provision-lambda.c */
int aws_destroy_function(aws_plan *pl, char **err);
/* CreateFunction on image_uri with the configured shape and the role
 * (retried while IAM has not propagated a new role), then wait until it
 * is Active.  For deploy, when the function does not exist yet. */
int aws_lambda_create(aws_provider *p, const char *image_uri, const char *role_arn,
                      char **err);

/* The operations (provision.c). */
int aws_provision_plan(void *self, hypertest_buffer *out);
int aws_provision_apply(void *self, hypertest_buffer *out);
int aws_resources_destroy(void *self, unsigned flags, hypertest_buffer *out);
/* The resources as a template (provision-cfn.c): format "cloudformation". */
int aws_provision_emit(void *self, const char *format, hypertest_buffer *out);

#endif /* HT_PROVIDER_AWS_PROVISION_H */
