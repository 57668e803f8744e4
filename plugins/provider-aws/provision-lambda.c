/*
 * provision-lambda.c - the Lambda function of provisioning (REST-JSON):
 * PackageType Image on the deployed image (repository:tag in ECR), the
 * architecture of the configuration's platform, memoryMB, timeoutSeconds,
 * ephemeralStorageMB, reservedConcurrency when set, the execution role,
 * the project's tags; waits until the function is Active.  Without an
 * image yet, the function is left to the first deploy, which creates it
 * (aws_lambda_create) with the same shape.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ecr.h"
#include "provision.h"

/* Sleep between polls; nonzero when the command was cancelled meanwhile
 * (a deploy creating the function: HYPERTEST_UP_CANCELLED). */
static int sleep_ms(aws_provider *p, long ms, const char *what, char **err)
{
	if (!aws_p_sleep(p, ms))
		return 0;
	return aws_fail(err, HYPERTEST_ERR_CANCELLED, "Lambda %s: cancelled while %s",
	                p->o.function_name, what);
}

static char *fn_path(aws_provider *p, const char *base, const char *tail)
{
	htp_buf b = {0};
	htp_buf_str(&b, base);
	aws_uri_encode(&b, p->o.function_name, strlen(p->o.function_name), 0);
	htp_buf_str(&b, tail);
	return htp_buf_take(&b);
}

/* A Lambda call on the function; body consumed (may be NULL). */
static int lambda_call(aws_provider *p, const char *op, const char *method, const char *path,
                       json_t *body, json_t **out, char **code, char **err)
{
	char what[512], *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc;
	json_decref(body);
	if (code)
		*code = NULL;
	if (out)
		*out = NULL;
	if (!path || (body && !text)) {
		free(text);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	snprintf(what, sizeof what, "Lambda %s %s", op, p->o.function_name);
	rc = aws_json_call(p, AWS_SVC_LAMBDA, method, path, NULL, text, what, out, code, err);
	free(text);
	return rc;
}

static int code_is(const char *code, const char *want)
{
	return code && strcmp(code, want) == 0;
}

/* GetFunction: *fn NULL when it does not exist. */
static int get_function(aws_provider *p, json_t **fn, char **err)
{
	char *path = fn_path(p, "/2015-03-31/functions/", ""), *code = NULL;
	int rc = lambda_call(p, "GetFunction", "GET", path, NULL, fn, &code, err);
	free(path);
	if (rc && code_is(code, "ResourceNotFoundException"))
		rc = 0;
	free(code);
	return rc;
}

/* Poll GetFunctionConfiguration until State is Active and no update is in
 * progress (lambdaUpdateMaxWaitTime at most). */
static int wait_active(aws_provider *p, char **err)
{
	long long deadline = htp_now_ms() + p->o.update_max_wait_ms;
	char *path = fn_path(p, "/2015-03-31/functions/", "/configuration");
	long delay = 200;
	int rc;
	for (;;) {
		json_t *cfg = NULL;
		const char *st, *up, *why;
		rc = lambda_call(p, "GetFunctionConfiguration", "GET", path, NULL, &cfg, NULL, err);
		if (rc)
			break;
		st = json_string_value(json_object_get(cfg, "State"));
		up = json_string_value(json_object_get(cfg, "LastUpdateStatus"));
		if (st && strcmp(st, "Failed") == 0) {
			why = json_string_value(json_object_get(cfg, "StateReason"));
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "Lambda %s: State Failed: %s",
			              p->o.function_name, why ? why : "no reason given");
		} else if (up && strcmp(up, "Failed") == 0) {
			why = json_string_value(json_object_get(cfg, "LastUpdateStatusReason"));
			rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "Lambda %s: the update failed: %s",
			              p->o.function_name, why ? why : "no reason given");
		} else if ((!st || strcmp(st, "Active") == 0) && (!up || strcmp(up, "InProgress") != 0)) {
			json_decref(cfg);
			break;
		}
		json_decref(cfg);
		if (rc)
			break;
		if (htp_now_ms() + delay > deadline) {
			rc = aws_fail(err, HYPERTEST_ERR_TIMEOUT,
			              "Lambda %s: not Active after %.3g s (option lambdaUpdateMaxWaitTime)",
			              p->o.function_name, (double)p->o.update_max_wait_ms / 1000);
			break;
		}
		if ((rc = sleep_ms(p, delay, "waiting for the function to be Active", err)))
			break;
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
	free(path);
	return rc;
}

/* A call that changes the function, retried while an update is in
 * progress (409 ResourceConflictException). */
static int change(aws_provider *p, const char *op, const char *method, char *path, json_t *body,
                  char **err)
{
	long long deadline = htp_now_ms() + p->o.update_max_wait_ms;
	char *code = NULL;
	int rc;
	for (;;) {
		if ((rc = wait_active(p, err)))
			break;
		free(code);
		rc = lambda_call(p, op, method, path, json_incref(body), NULL, &code, err);
		if (!rc || !code_is(code, "ResourceConflictException") || htp_now_ms() >= deadline)
			break;
		if ((rc = sleep_ms(p, 500, "the function was busy with an update", err)))
			break;
	}
	free(code);
	free(path);
	json_decref(body);
	return rc;
}

int aws_lambda_create(aws_provider *p, const char *image_uri, const char *role_arn,
                      char **err)
{
	long long deadline = htp_now_ms() + p->o.role_wait_ms;
	long delay = 1000;
	json_t *body = json_pack("{s:s, s:s, s:{s:s}, s:s, s:I, s:I, s:{s:I}, s:[s], s:o, s:s}",
	                         "FunctionName", p->o.function_name, "Role", role_arn, "Code",
	                         "ImageUri", image_uri, "PackageType", "Image", "MemorySize",
	                         (json_int_t)p->o.memory_mb, "Timeout", (json_int_t)p->o.timeout_s,
	                         "EphemeralStorage", "Size", (json_int_t)p->o.ephemeral_mb,
	                         "Architectures", aws_platform_arch(p), "Tags", aws_tags_wanted(p),
	                         "Description", "hypertest: one test per invocation");
	char *code = NULL;
	int rc;
	if (!body)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	for (;;) {
		free(code);
		rc = lambda_call(p, "CreateFunction", "POST", "/2015-03-31/functions",
		                 json_incref(body), NULL, &code, err);
		/* a new role takes a while to be assumable by Lambda everywhere */
		if (!rc || !code_is(code, "InvalidParameterValueException") || !err || !*err ||
		    !strstr(*err, "assume"))
			break;
		if (htp_now_ms() + delay > deadline) {
			aws_fail(err, rc, "%s (still after %.3g s: option roleWaitTime)", *err,
			         (double)p->o.role_wait_ms / 1000);
			break;
		}
		aws_p_log(p, HYPERTEST_LOG_INFO,
		          "Lambda %s: the role is not assumable yet (IAM propagates); again in %ld ms",
		          p->o.function_name, delay);
		if ((rc = sleep_ms(p, delay, "waiting for the role to be assumable", err)))
			break;
		delay = delay * 2 > 8000 ? 8000 : delay * 2;
	}
	free(code);
	json_decref(body);
	if (!rc && p->o.reserved >= 0)
		rc = change(p, "PutFunctionConcurrency", "PUT",
		            fn_path(p, "/2017-10-31/functions/", "/concurrency"),
		            json_pack("{s:I}", "ReservedConcurrentExecutions", (json_int_t)p->o.reserved),
		            err);
	if (!rc)
		rc = wait_active(p, err);
	return rc;
}

/* The ImageUri of repository:tag, or NULL (*why says why) without one. */
static int image_uri(aws_provider *p, char **uri, const char **why, char **err)
{
	const char *tag = p->o.tag ? p->o.tag : "latest";
	char *digest = NULL, *repo_uri = NULL;
	char *e2 = NULL;
	int rc;
	*uri = NULL;
	*why = NULL;
	if (!p->o.repository) {
		*why = "no repository configured";
		return 0;
	}
	if ((rc = aws_ecr_repository_uri(p, &repo_uri, err)) == HYPERTEST_ERR_NOT_FOUND) {
		*why = "no image yet: the repository does not exist";
		return 0;
	}
	if (rc)
		return rc;
	if ((rc = aws_ecr_tag_digest(p, p->o.repository, tag, &digest, &e2)) != 0) {
		free(repo_uri);
		if (rc != HYPERTEST_ERR_NOT_FOUND) {
			aws_fail(err, rc, "%s", aws_msg(e2));
			free(e2);
			return rc;
		}
		free(e2);
		*why = "no image yet in the repository";
		return 0;
	}
	if (p->o.ecr_registry && aws_ecr_host_parse(p->o.ecr_registry, NULL, NULL))
		*uri = htp_strdupf("%s/%s@%s", p->o.ecr_registry, p->o.repository, digest);
	else
		*uri = htp_strdupf("%s@%s", repo_uri, digest);
	free(repo_uri);
	free(digest);
	return *uri ? 0 : aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

static long cfg_long(json_t *cfg, const char *k1, const char *k2)
{
	json_t *v = json_object_get(cfg, k1);
	if (k2)
		v = json_object_get(v, k2);
	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static int create_missing(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	const char *none = NULL;
	char *uri = NULL;
	htp_buf why = {0};
	int rc = image_uri(p, &uri, &none, err);
	if (rc)
		return rc;
	htp_buf_addf(&why, "does not exist (%s, %ld MB, %ld s, %ld MB of /tmp", aws_platform_arch(p),
	             p->o.memory_mb, p->o.timeout_s, p->o.ephemeral_mb);
	if (p->o.reserved >= 0)
		htp_buf_addf(&why, ", %ld reserved", p->o.reserved);
	htp_buf_str(&why, ")");
	if (!uri && pl->apply)
		htp_buf_addf(&why, "; not created yet (%s): the first `hypertest deploy` creates it",
		             none);
	else if (!uri)
		htp_buf_addf(&why, "; %s: the first `hypertest deploy` creates it", none);
	else if (pl->apply && !pl->role_arn)
		rc = aws_fail(err, HYPERTEST_ERR_PROVIDER, "Lambda %s: the role's ARN is unknown",
		              p->o.function_name);
	else if (pl->apply)
		rc = aws_lambda_create(p, uri, pl->role_arn, err);
	if (!rc)
		rc = aws_plan_add(pl, "function", p->o.function_name, "create", why.data, err);
	free(uri);
	htp_buf_free(&why);
	return rc;
}

int aws_prov_function(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	json_t *fn = NULL, *cfg, *tags, *missing = NULL, *upd;
	const char *type, *arch, *role, *arn;
	htp_buf why = {0};
	long mem, tmo, eph, res;
	int rc = get_function(p, &fn, err);
	if (rc)
		return rc;
	if (!fn)
		return create_missing(pl, err);
	cfg = json_object_get(fn, "Configuration");
	tags = json_object_get(fn, "Tags");
	type = json_string_value(json_object_get(cfg, "PackageType"));
	arch = json_string_value(json_array_get(json_object_get(cfg, "Architectures"), 0));
	role = json_string_value(json_object_get(cfg, "Role"));
	arn = json_string_value(json_object_get(cfg, "FunctionArn"));
	mem = cfg_long(cfg, "MemorySize", NULL);
	tmo = cfg_long(cfg, "Timeout", NULL);
	eph = cfg_long(cfg, "EphemeralStorage", "Size");
	res = cfg_long(json_object_get(fn, "Concurrency"), "ReservedConcurrentExecutions", NULL);
	if (type && strcmp(type, "Image") != 0) {
		rc = aws_fail(err, HYPERTEST_ERR_CONFIG,
		              "Lambda %s has PackageType %s: hypertest needs a container image function; "
		              "delete it (or name another functionName) and provision again",
		              p->o.function_name, type);
		json_decref(fn);
		return rc;
	}
	upd = json_object();
	if (mem != p->o.memory_mb) {
		aws_reason_add(&why, "memory %ld MB, want %ld MB", mem, p->o.memory_mb);
		json_object_set_new(upd, "MemorySize", json_integer(p->o.memory_mb));
	}
	if (tmo != p->o.timeout_s) {
		aws_reason_add(&why, "timeout %ld s, want %ld s", tmo, p->o.timeout_s);
		json_object_set_new(upd, "Timeout", json_integer(p->o.timeout_s));
	}
	if (eph != p->o.ephemeral_mb) {
		aws_reason_add(&why, "ephemeral storage %ld MB, want %ld MB", eph, p->o.ephemeral_mb);
		json_object_set_new(upd, "EphemeralStorage",
		                    json_pack("{s:I}", "Size", (json_int_t)p->o.ephemeral_mb));
	}
	if (!pl->role_arn || !role || strcmp(role, pl->role_arn) != 0) {
		aws_reason_add(&why, "its role is %s, want %s", role ? role : "(none)",
		               pl->role_arn ? pl->role_arn : p->o.role_name);
		if (pl->role_arn)
			json_object_set_new(upd, "Role", json_string(pl->role_arn));
	}
	if (arch && strcmp(arch, aws_platform_arch(p)) != 0)
		aws_reason_add(&why, "architecture %s, the image's platform needs %s", arch,
		               aws_platform_arch(p));
	if (p->o.reserved >= 0 && res < 0)
		aws_reason_add(&why, "no reserved concurrency, want %ld", p->o.reserved);
	else if (p->o.reserved >= 0 && res != p->o.reserved)
		aws_reason_add(&why, "reserved concurrency %ld, want %ld", res, p->o.reserved);
	if ((missing = aws_tags_missing(p, tags)))
		aws_reason_add(&why, "the project's tags are missing");
	if (pl->apply && json_object_size(upd))
		rc = change(p, "UpdateFunctionConfiguration", "PUT",
		            fn_path(p, "/2015-03-31/functions/", "/configuration"), json_incref(upd), err);
	if (!rc && pl->apply && arch && strcmp(arch, aws_platform_arch(p)) != 0) {
		const char *img = json_string_value(json_object_get(json_object_get(fn, "Code"),
		                                                    "ImageUri"));
		rc = change(p, "UpdateFunctionCode", "PUT", fn_path(p, "/2015-03-31/functions/", "/code"),
		            json_pack("{s:s, s:[s]}", "ImageUri", img ? img : "", "Architectures",
		                      aws_platform_arch(p)),
		            err);
	}
	if (!rc && pl->apply && p->o.reserved >= 0 && res != p->o.reserved)
		rc = change(p, "PutFunctionConcurrency", "PUT",
		            fn_path(p, "/2017-10-31/functions/", "/concurrency"),
		            json_pack("{s:I}", "ReservedConcurrentExecutions", (json_int_t)p->o.reserved),
		            err);
	if (!rc && pl->apply && missing) {
		htp_buf path = {0};
		htp_buf_str(&path, "/2017-03-31/tags/");
		aws_uri_encode(&path, arn ? arn : "", arn ? strlen(arn) : 0, 0);
		rc = change(p, "TagResource", "POST", htp_buf_take(&path),
		            json_pack("{s:O}", "Tags", missing), err);
	}
	if (!rc && pl->apply)
		rc = wait_active(p, err);
	if (!rc)
		rc = aws_plan_add(pl, "function", p->o.function_name, why.len ? "update" : "exists",
		                  why.len ? why.data : "exists as configured", err);
	htp_buf_free(&why);
	json_decref(upd);
	json_decref(missing);
	json_decref(fn);
	return rc;
}

int aws_destroy_function(aws_plan *pl, char **err)
{
	aws_provider *p = pl->p;
	json_t *fn = NULL;
	int rc = get_function(p, &fn, err);
	if (rc || !fn)
		return rc;
	if (!aws_tags_ours(p, json_object_get(fn, "Tags"))) {
		aws_p_log(p, HYPERTEST_LOG_INFO, "Lambda function %s is not tagged %s=%s: left alone",
		          p->o.function_name, AWS_TAG_PROJECT, p->o.project_name);
		json_decref(fn);
		return 0;
	}
	json_decref(fn);
	if (pl->apply) {
		char *path = fn_path(p, "/2015-03-31/functions/", "");
		rc = lambda_call(p, "DeleteFunction", "DELETE", path, NULL, NULL, NULL, err);
		free(path);
	}
	if (!rc)
		rc = aws_plan_add(pl, "function", p->o.function_name, "delete", "tagged for this project",
		                  err);
	return rc;
}
