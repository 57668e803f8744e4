/*
 * provision-cfn.c - the resources of provisioning as a CloudFormation
 * template (HYPERTEST_PROVIDER_PROVISION_EMIT, format "cloudformation"),
 * for teams that keep their infrastructure in their own repositories: the
 * same repository, bucket, role and function, in the same shape and with
 * the same tags, made from the options alone (no AWS call).  The image is
 * a parameter: Lambda needs it to exist when the stack is created.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provision.h"

static const char hexdigits[] = "0123456789abcdef";

/* [{"Key": k, "Value": v}, ...] */
static json_t *cfn_tags(aws_provider *p)
{
	json_t *want = aws_tags_wanted(p), *arr = json_array(), *v;
	const char *k;
	json_object_foreach(want, k, v)
		json_array_append_new(arr, json_pack("{s:s, s:O}", "Key", k, "Value", v));
	json_decref(want);
	return arr;
}

static json_t *repository(aws_provider *p)
{
	json_t *props = json_pack("{s:s, s:{s:b}, s:s, s:o}", "RepositoryName", p->o.repository,
	                          "ImageScanningConfiguration", "ScanOnPush", 0,
	                          "ImageTagMutability", "MUTABLE", "Tags", cfn_tags(p));
	if (props && p->o.ecr_keep > 0) {
		char *text = htp_strdupf(
		    "{\"rules\":[{\"rulePriority\":1,\"description\":\"hypertest: keep the last %ld "
		    "images\",\"selection\":{\"tagStatus\":\"any\",\"countType\":"
		    "\"imageCountMoreThan\",\"countNumber\":%ld},\"action\":{\"type\":\"expire\"}}]}",
		    p->o.ecr_keep, p->o.ecr_keep);
		json_object_set_new(props, "LifecyclePolicy",
		                    json_pack("{s:s}", "LifecyclePolicyText", text ? text : ""));
		free(text);
	}
	return json_pack("{s:s, s:o}", "Type", "AWS::ECR::Repository", "Properties", props);
}

static json_t *bucket(aws_provider *p)
{
	json_t *props = json_pack(
	    "{s:s, s:{s:b, s:b, s:b, s:b}, s:{s:[{s:{s:s}}]}, s:o}", "BucketName", p->o.bucket,
	    "PublicAccessBlockConfiguration", "BlockPublicAcls", 1, "IgnorePublicAcls", 1,
	    "BlockPublicPolicy", 1, "RestrictPublicBuckets", 1, "BucketEncryption",
	    "ServerSideEncryptionConfiguration", "ServerSideEncryptionByDefault", "SSEAlgorithm",
	    "AES256", "Tags", cfn_tags(p));
	if (props && p->o.expire_days > 0) {
		json_t *rules = json_array();
		int i;
		for (i = 0; i < 16; i++) {
			char id[32], prefix[2] = {hexdigits[i], 0};
			snprintf(id, sizeof id, "hypertest-runs-%c", hexdigits[i]);
			json_array_append_new(rules, json_pack("{s:s, s:s, s:s, s:I}", "Id", id, "Prefix",
			                                       prefix, "Status", "Enabled",
			                                       "ExpirationInDays",
			                                       (json_int_t)p->o.expire_days));
		}
		json_object_set_new(props, "LifecycleConfiguration", json_pack("{s:o}", "Rules", rules));
	}
	/* a bucket holding runs outlives the stack, as destroy keeps it */
	return json_pack("{s:s, s:s, s:s, s:o}", "Type", "AWS::S3::Bucket", "DeletionPolicy",
	                 "Retain", "UpdateReplacePolicy", "Retain", "Properties", props);
}

static json_t *role(aws_provider *p)
{
	const char *part = aws_partition(p);
	char *managed = htp_strdupf("arn:%s:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
	                            part);
	char *objects = htp_strdupf("arn:%s:s3:::%s/*", part, p->o.bucket);
	json_t *r = json_pack(
	    "{s:s, s:{s:s, s:s, s:{s:s, s:[{s:s, s:{s:s}, s:s}]}, s:[s], s:[{s:s, s:{s:s, "
	    "s:[{s:s, s:[s,s], s:s}]}}], s:o}}",
	    "Type", "AWS::IAM::Role", "Properties", "RoleName", p->o.role_name, "Description",
	    "hypertest: the Lambda function's execution role", "AssumeRolePolicyDocument", "Version",
	    "2012-10-17", "Statement", "Effect", "Allow", "Principal", "Service",
	    "lambda.amazonaws.com", "Action", "sts:AssumeRole", "ManagedPolicyArns",
	    managed ? managed : "", "Policies", "PolicyName", "hypertest-bucket-objects",
	    "PolicyDocument", "Version", "2012-10-17", "Statement", "Effect", "Allow", "Action",
	    "s3:PutObject", "s3:GetObject", "Resource", objects ? objects : "", "Tags", cfn_tags(p));
	free(managed);
	free(objects);
	return r;
}

static json_t *function(aws_provider *p)
{
	json_t *props = json_pack(
	    "{s:s, s:s, s:s, s:{s:{s:s}}, s:{s:[s,s]}, s:[s], s:I, s:I, s:{s:I}, s:o}",
	    "FunctionName", p->o.function_name, "Description", "hypertest: one test per invocation",
	    "PackageType", "Image", "Code", "ImageUri", "Ref", "ImageUri", "Role", "Fn::GetAtt",
	    "ExecutionRole", "Arn", "Architectures", aws_platform_arch(p), "MemorySize",
	    (json_int_t)p->o.memory_mb, "Timeout", (json_int_t)p->o.timeout_s, "EphemeralStorage",
	    "Size", (json_int_t)p->o.ephemeral_mb, "Tags", cfn_tags(p));
	if (props && p->o.reserved >= 0)
		json_object_set_new(props, "ReservedConcurrentExecutions", json_integer(p->o.reserved));
	return json_pack("{s:s, s:o}", "Type", "AWS::Lambda::Function", "Properties", props);
}

static json_t *template(aws_provider *p)
{
	char *image = htp_strdupf("The function's container image in ECR, pushed by `hypertest "
	                          "deploy` (for example <account>.dkr.ecr.<region>.amazonaws.com/"
	                          "%s@sha256:...)",
	                          p->o.repository ? p->o.repository : "REPOSITORY");
	json_t *t = json_pack("{s:s, s:s, s:{s:{s:s, s:s}}, s:{s:o, s:o, s:o, s:o}}",
	                      "AWSTemplateFormatVersion", "2010-09-09", "Description",
	                      "hypertest: the cloud resources of the aws provider",
	                      "Parameters", "ImageUri", "Type", "String", "Description",
	                      image ? image : "", "Resources", "Repository", repository(p), "Bucket",
	                      bucket(p), "ExecutionRole", role(p), "Function", function(p));
	free(image);
	return t;
}

int aws_provision_emit(void *self, const char *format, hypertest_buffer *out)
{
	aws_provider *p = self;
	json_t *t;
	char *text;
	int rc;
	if (!format || strcmp(format, "cloudformation") != 0)
		return aws_p_fail(p, HYPERTEST_ERR_UNSUPPORTED,
		                  "provider 'aws' cannot write a template in format '%s' (known: "
		                  "cloudformation)",
		                  format ? format : "(none)");
	if (!p->o.repository)
		return aws_p_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option 'repository' is not set and the configuration has no "
		                  "imageName: no ECR repository for the template");
	t = template(p);
	text = t ? json_dumps(t, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(t);
	if (!text)
		return aws_p_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = p->up.buffer_append(out, text, strlen(text)) || p->up.buffer_append(out, "\n", 1);
	free(text);
	return rc ? aws_p_fail(p, HYPERTEST_ERR_NOMEM, "cannot hand over the template") : 0;
}
