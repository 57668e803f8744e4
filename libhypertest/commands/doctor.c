/*
 * doctor.c - hypertest doctor: the core's own checks (configuration,
 * plugins, test directory), then each plugin's.
 */
#include <stdlib.h>
#include <string.h>

#include "command_ops.h"
#include "core.h"
#include "dirhash.h"

static void check(struct hypertest_checks *c, const char *name, int status, const char *fmt, ...)
    HT_PRINTF(4, 5);
static void check(struct hypertest_checks *c, const char *name, int status, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (status == HYPERTEST_CHECK_FAILED)
		c->failed++;
	else if (status == HYPERTEST_CHECK_WARNING)
		c->warnings++;
	ht_emit(c->h, HYPERTEST_EVENT_DOCTOR_CHECK, HYPERTEST_FIELD_CHECK, name,
	        HYPERTEST_FIELD_STATUS, (int64_t)status, HYPERTEST_FIELD_MESSAGE, msg,
	        HYPERTEST_FIELD_PLUGIN, c->plugin ? c->plugin : "", 0);
}

static ht_instance *create(hypertest *h, struct hypertest_checks *c, int kind, const char *what)
{
	ht_instance *inst = NULL;
	ht_err_clear(&h->err);
	if (ht_instance_create(h, kind, &inst) != HYPERTEST_OK) {
		check(c, what, HYPERTEST_CHECK_FAILED, "%s", h->err.msg);
		return NULL;
	}
	check(c, what, HYPERTEST_CHECK_OK, "'%s' from %s (ABI %s)", inst->core.plugin->name,
	      inst->core.plugin->path, inst->core.plugin->abi);
	return inst;
}

static void plugin_checks(hypertest *h, struct hypertest_checks *c, ht_instance *inst)
{
	hypertest_OP_DOCTOR_fn doctor = HT_OP(inst, HYPERTEST_OP_DOCTOR);
	int rc;

	if (!doctor)
		return;
	c->plugin = inst->core.plugin->name;
	ht_err_clear(&h->err);
	rc = doctor(inst->self, c);
	if (rc != HYPERTEST_OK)
		check(c, "plugin", HYPERTEST_CHECK_FAILED, "checks of '%s' failed: %s",
		      inst->core.plugin->name, h->err.msg[0] ? h->err.msg : hypertest_strerror(rc));
	c->plugin = NULL;
}

int hypertest_doctor(hypertest *h)
{
	struct hypertest_checks c;
	ht_instance *runner = NULL, *provider = NULL;
	size_t i, failed_modules = 0;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	memset(&c, 0, sizeof c);
	c.h = h;
	ht_err_clear(&h->err);
	ht_command_ops_install(h);
	if (ht_require_config(h) != HYPERTEST_OK) {
		check(&c, "config", HYPERTEST_CHECK_FAILED, "%s", h->err.msg);
		return ht_fail(h, HYPERTEST_ERR_CHECK, "1 check failed: the configuration");
	}
	check(&c, "config", HYPERTEST_CHECK_OK, "%s (concurrency %ld)",
	      ht_config_path(h->cfg)     ? ht_config_path(h->cfg)
	      : ht_config_origin(h->cfg) ? ht_config_origin(h->cfg)
	                                 : "configuration string",
	      ht_config_concurrency(h->cfg));
	ht_plugins_scan(h);
	for (i = 0; i < h->reg.nplugins; i++)
		if (h->reg.plugins[i].state == HT_PLUGIN_FAILED) {
			failed_modules++;
			check(&c, "plugins", HYPERTEST_CHECK_WARNING, "%s: %s", h->reg.plugins[i].path,
			      h->reg.plugins[i].error);
		}
	if (!failed_modules)
		check(&c, "plugins", HYPERTEST_CHECK_OK, "%zu plugins on %s", h->reg.nplugins,
		      h->reg.search_path);
	runner = create(h, &c, HYPERTEST_KIND_RUNNER, "runner");
	provider = create(h, &c, HYPERTEST_KIND_PROVIDER, "provider");
	if (runner && HT_OP(runner, HYPERTEST_RUNNER_TEST_DIR)) {
		const char *rel = HT_OP(runner, HYPERTEST_RUNNER_TEST_DIR)(runner->self);
		char *dir = rel ? ht_abspath(h->project_dir, rel) : NULL;
		char hex[65];
		ht_err err;
		if (!dir)
			check(&c, "testDir", HYPERTEST_CHECK_FAILED, "the runner names no test directory");
		else if (ht_dirhash_project(dir, h->project_dir, ht_config_str(h->cfg, "resultsFileName"),
	                       ht_config_str(h->cfg, "buildManifestFileName"), NULL, hex, &err) != HYPERTEST_OK)
			check(&c, "testDir", HYPERTEST_CHECK_FAILED, "%s", err.msg);
		else
			check(&c, "testDir", HYPERTEST_CHECK_OK, "%s (hash %.12s)", dir, hex);
		free(dir);
	}
	if (runner)
		plugin_checks(h, &c, runner);
	if (provider)
		plugin_checks(h, &c, provider);
	ht_instance_destroy(runner);
	ht_instance_destroy(provider);
	if (c.failed)
		return ht_fail(h, HYPERTEST_ERR_CHECK, "%d check%s failed", c.failed,
		               c.failed == 1 ? "" : "s");
	ht_err_clear(&h->err);
	return HYPERTEST_OK;
}
