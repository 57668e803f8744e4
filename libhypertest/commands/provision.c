/*
 * provision.c - hypertest provision and hypertest destroy: the provider's
 * cloud resources, through the operations of plugin ABI 1.3; and the same
 * resources as a template (provision --emit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "command_ops.h"
#include "core.h"

/* The provider's answer must be a JSON array of objects with string
 * "type", "name", "action" and "reason"; *canon receives it as compact
 * JSON, written by us (so "\"action\":\"create\"" occurs only as a member). */
static int check_answer(hypertest *h, ht_instance *inst, const char *what, const ht_buf *b,
                        char **canon)
{
	json_error_t jerr;
	json_t *arr, *item;
	size_t i;
	int rc = HYPERTEST_OK;

	arr = json_loadb(b->data ? b->data : "", b->len, 0, &jerr);
	if (!arr || !json_is_array(arr)) {
		json_decref(arr);
		return ht_fail(h, HYPERTEST_ERR_PROVIDER,
		               "provider '%s': %s: the answer is not a JSON array (%s)",
		               inst->core.plugin->name, what, arr ? "another JSON value" : jerr.text);
	}
	json_array_foreach(arr, i, item) {
		static const char *const keys[] = {"type", "name", "action", "reason"};
		size_t k;
		for (k = 0; k < sizeof keys / sizeof keys[0]; k++)
			if (!json_is_string(json_object_get(item, keys[k]))) {
				rc = ht_fail(h, HYPERTEST_ERR_PROVIDER,
				             "provider '%s': %s: item %zu has no string \"%s\"",
				             inst->core.plugin->name, what, i, keys[k]);
				break;
			}
		if (rc)
			break;
		ht_log(h, HYPERTEST_LOG_INFO, "%s %s: %s (%s)",
		       json_string_value(json_object_get(item, "type")),
		       json_string_value(json_object_get(item, "name")),
		       json_string_value(json_object_get(item, "action")),
		       json_string_value(json_object_get(item, "reason")));
	}
	if (!rc && !(*canon = json_dumps(arr, JSON_COMPACT)))
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	json_decref(arr);
	return rc;
}

/* A provider without the operation: built before ABI 1.3, or one that
 * does not offer provisioning. */
static int unsupported(hypertest *h, ht_instance *inst)
{
	unsigned major = 0, minor = 0;
	const ht_plugin *p = inst->core.plugin;

	if (sscanf(p->abi, "%u.%u", &major, &minor) == 2 && major == 1 && minor < 3)
		return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
		               "provider '%s': provisioning not supported (built for ABI %s)", p->name,
		               p->abi);
	return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
	               "provider '%s': provisioning not supported by this provider", p->name);
}

/* canon was made by jansson: hand it over in memory hypertest_string_free()
 * frees. */
static int hand_back(hypertest *h, char *canon, char **result)
{
	int rc = HYPERTEST_OK;
	if (result && !(*result = ht_strdup(canon)))
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	free(canon);
	return rc;
}

/* provision and destroy keep nothing for after a cancel: for their whole
 * run, hypertest_cancel ends the provider's requests and waits too
 * (HYPERTEST_UP_CANCELLED).  A cancel from before the command is
 * forgotten. */
static void cancellable(hypertest *h, int on)
{
	if (on)
		atomic_store(&h->cancelled, 0);
	atomic_store(&h->cancel_plugins, on);
}

int hypertest_provision(hypertest *h, char **result)
{
	ht_instance *provider = NULL;
	struct hypertest_buffer out;
	char *canon = NULL;
	const char *what;
	int rc;

	if (result)
		*result = NULL;
	if (!h)
		return HYPERTEST_ERR_INVALID;
	memset(&out, 0, sizeof out);
	ht_err_clear(&h->err);
	ht_command_ops_install(h);
	cancellable(h, 1);
	if ((rc = ht_require_config(h)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &provider))) {
		cancellable(h, 0);
		return rc;
	}
	if (h->flags & HYPERTEST_FLAG_DRY_RUN) {
		hypertest_PROVIDER_PROVISION_PLAN_fn plan =
		    HT_OP(provider, HYPERTEST_PROVIDER_PROVISION_PLAN);
		what = "provision plan";
		rc = plan ? plan(provider->self, &out) : unsupported(h, provider);
	} else {
		hypertest_PROVIDER_PROVISION_APPLY_fn apply =
		    HT_OP(provider, HYPERTEST_PROVIDER_PROVISION_APPLY);
		what = "provision";
		rc = apply ? apply(provider->self, &out) : unsupported(h, provider);
	}
	if (rc == HYPERTEST_OK)
		rc = check_answer(h, provider, what, &out.buf, &canon);
	else if (rc != HYPERTEST_ERR_UNSUPPORTED || h->err.msg[0] == '\0')
		rc = ht_plugin_error(h, provider, rc, what);
	if (rc == HYPERTEST_OK)
		rc = hand_back(h, canon, result);
	ht_buf_free(&out.buf);
	ht_instance_destroy(provider);
	cancellable(h, 0);
	return rc;
}

int hypertest_destroy(hypertest *h, unsigned flags, char **result)
{
	ht_instance *provider = NULL;
	hypertest_PROVIDER_RESOURCES_DESTROY_fn destroy;
	struct hypertest_buffer out;
	char *canon = NULL;
	int rc;

	if (result)
		*result = NULL;
	if (!h)
		return HYPERTEST_ERR_INVALID;
	if (flags & ~(unsigned)(HYPERTEST_DESTROY_LIST | HYPERTEST_DESTROY_FORCE))
		return ht_fail(h, HYPERTEST_ERR_INVALID, "hypertest_destroy: unknown flags 0x%x", flags);
	memset(&out, 0, sizeof out);
	ht_err_clear(&h->err);
	ht_command_ops_install(h);
	cancellable(h, 1);
	if ((rc = ht_require_config(h)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &provider))) {
		cancellable(h, 0);
		return rc;
	}
	if (h->flags & HYPERTEST_FLAG_DRY_RUN)
		flags |= HYPERTEST_DESTROY_LIST;
	destroy = HT_OP(provider, HYPERTEST_PROVIDER_RESOURCES_DESTROY);
	rc = destroy ? destroy(provider->self, flags, &out) : unsupported(h, provider);
	if (rc == HYPERTEST_OK)
		rc = check_answer(h, provider, "destroy", &out.buf, &canon);
	else if (destroy)
		rc = ht_plugin_error(h, provider, rc, "destroy");
	if (rc == HYPERTEST_OK)
		rc = hand_back(h, canon, result);
	ht_buf_free(&out.buf);
	ht_instance_destroy(provider);
	cancellable(h, 0);
	return rc;
}

int hypertest_provision_emit(hypertest *h, const char *format, char **text)
{
	ht_instance *provider = NULL;
	hypertest_PROVIDER_PROVISION_EMIT_fn emit;
	struct hypertest_buffer out;
	int rc;

	if (text)
		*text = NULL;
	if (!h)
		return HYPERTEST_ERR_INVALID;
	if (!format || !*format || !text)
		return ht_fail(h, HYPERTEST_ERR_INVALID, "hypertest_provision_emit: no format or text");
	memset(&out, 0, sizeof out);
	ht_err_clear(&h->err);
	ht_command_ops_install(h);
	if ((rc = ht_require_config(h)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &provider)))
		return rc;
	emit = HT_OP(provider, HYPERTEST_PROVIDER_PROVISION_EMIT);
	if (!emit)
		rc = ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
		             "provider '%s' writes no templates (format '%s')",
		             provider->core.plugin->name, format);
	else if ((rc = emit(provider->self, format, &out)) != HYPERTEST_OK)
		rc = ht_plugin_error(h, provider, rc, "provision --emit");
	else if (!out.buf.len)
		rc = ht_fail(h, HYPERTEST_ERR_PROVIDER, "provider '%s': an empty %s template",
		             provider->core.plugin->name, format);
	else if (!(*text = ht_strdup(out.buf.data)))
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	ht_buf_free(&out.buf);
	ht_instance_destroy(provider);
	return rc;
}
