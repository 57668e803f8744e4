/*
 * deploy.c - hypertest deploy: pull the base image, build the image (the
 * runner's test layer with the deployed configuration), push it, store the
 * manifest, point the function at the image.  Each step is an event with
 * its duration; a failing step stops the deploy and says which and why.
 */
#include <stdlib.h>
#include <string.h>

#include "command_ops.h"
#include "core.h"
#include "dirhash.h"
#include "image.h"
#include "registry.h"
#include "runtime_layer.h"

#define HT_TASK_ROOT "/var/task" /* the function's working directory in the image */

typedef struct deploy_state {
	hypertest *h;
	ht_instance *provider, *runner;
	struct hypertest_params target;
	ht_registry *registry; /* shared by pull and push, so that layers can be mounted */
	ht_image *image;
	char digest[80];
	char *ref;
	int pushed;
} deploy_state;

typedef int (*step_fn)(deploy_state *ds);

static int run_step(deploy_state *ds, const char *name, step_fn fn)
{
	hypertest *h = ds->h;
	int64_t t0 = ht_monotonic_ms();
	int rc;

	ht_emit(h, HYPERTEST_EVENT_STEP_START, HYPERTEST_FIELD_STEP, name, 0);
	ht_err_clear(&h->err);
	rc = h->cancelled ? ht_fail(h, HYPERTEST_ERR_CANCELLED, "cancelled") : fn(ds);
	if (rc != HYPERTEST_OK) {
		if (!h->err.msg[0])
			ht_fail(h, rc, "%s", hypertest_strerror(rc));
		ht_err_prefix(&h->err, "deploy failed at step '%s'", name);
		ht_emit(h, HYPERTEST_EVENT_STEP_ERROR, HYPERTEST_FIELD_STEP, name,
		        HYPERTEST_FIELD_DURATION, (int64_t)(ht_monotonic_ms() - t0),
		        HYPERTEST_FIELD_MESSAGE, h->err.msg, HYPERTEST_FIELD_CODE, (int64_t)rc, 0);
		return rc;
	}
	ht_emit(h, HYPERTEST_EVENT_STEP_END, HYPERTEST_FIELD_STEP, name, HYPERTEST_FIELD_DURATION,
	        (int64_t)(ht_monotonic_ms() - t0), HYPERTEST_FIELD_MESSAGE, h->err.msg, 0);
	ht_err_clear(&h->err);
	return HYPERTEST_OK;
}

static int dry(deploy_state *ds, const char *what)
{
	if (!(ds->h->flags & HYPERTEST_FLAG_DRY_RUN))
		return 0;
	ht_err_set(&ds->h->err, HYPERTEST_OK, "dry run: %s skipped", what);
	return 1;
}

/* The registry client, with the credentials the provider named for the
 * registry host of ref (key_user/key_password in the target). */
static int registry_for(deploy_state *ds, const char *ref, const char *key_user,
                        const char *key_password)
{
	hypertest *h = ds->h;
	const char *user = ht_params_get(&ds->target, key_user);
	const char *password = ht_params_get(&ds->target, key_password);
	const char *plain = ht_params_get(&ds->target, "plainHttp");
	ht_image_ref parsed;
	int rc;

	if (!ds->registry) {
		if (!(ds->registry = ht_registry_new(&h->err)))
			return h->err.code ? h->err.code : HYPERTEST_ERR_NOMEM;
		/* the first SIGINT/SIGTERM ends a pull or push under way */
		ht_registry_set_cancel(ds->registry, &h->cancelled);
	}
	if ((rc = ht_image_ref_parse(ref, &parsed, &h->err)))
		return rc;
	if (user && password)
		rc = ht_registry_set_credentials(ds->registry, parsed.registry, user, password, &h->err);
	if (rc == HYPERTEST_OK && plain && !strcmp(plain, "1"))
		rc = ht_registry_set_plain_http(ds->registry, parsed.registry, 1, &h->err);
	ht_image_ref_free(&parsed);
	return rc;
}

static int step_pull(deploy_state *ds)
{
	hypertest *h = ds->h;
	/* the provider's platform, else the configuration's, else linux/amd64 */
	const char *platform = ht_params_get(&ds->target, "platform")
	                           ? ht_params_get(&ds->target, "platform")
	                           : ht_config_str(h->cfg, "platform");
	const char *base_layout = ht_params_get(&ds->target, "baseLayout");
	const char *base_image = ht_params_get(&ds->target, "baseImage");

	if (base_layout) {
		int rc = ht_image_from_layout(base_layout, ht_params_get(&ds->target, "baseRef"),
		                              platform, &ds->image, &h->err);
		if (rc == HYPERTEST_OK)
			ht_err_set(&h->err, HYPERTEST_OK, "base image from %s", base_layout);
		return rc;
	}
	if (base_image && *base_image) {
		int rc = registry_for(ds, base_image, "baseUsername", "basePassword");
		if (rc == HYPERTEST_OK)
			rc = ht_image_from_registry(ds->registry, base_image, platform, &ds->image, &h->err);
		if (rc == HYPERTEST_OK)
			ht_err_set(&h->err, HYPERTEST_OK, "base image %s", base_image);
		return rc;
	}
	ds->image = ht_image_new(platform, &h->err);
	if (!ds->image)
		return h->err.code ? h->err.code : HYPERTEST_ERR_NOMEM;
	ht_err_set(&h->err, HYPERTEST_OK, "no base image");
	return HYPERTEST_OK;
}

/* The configuration baked into the image has its environment references
 * expanded already; "$" is written as "$$" so that the function side, which
 * expands again, reads the same values. */
static void escape_dollars(json_t *v)
{
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
			escape_dollars(child);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			escape_dollars(child);
	} else if (json_is_string(v) && strchr(json_string_value(v), '$')) {
		ht_buf b = HT_BUF_INIT;
		const char *s = json_string_value(v);
		for (; *s; s++) {
			if (*s == '$')
				ht_buf_puts(&b, "$$");
			else
				ht_buf_append(&b, s, 1);
		}
		if (b.data)
			json_string_set(v, b.data);
		ht_buf_free(&b);
	}
}

static char *deployed_config(hypertest *h)
{
	char *text = ht_config_dump(h->cfg);
	json_t *doc = text ? json_loads(text, 0, NULL) : NULL;

	free(text);
	if (!doc)
		return NULL;
	escape_dollars(doc);
	text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(doc);
	return text;
}

/* The runtime layer (runtime_layer.c) for the function program and the
 * provider's and runner's modules, appended under the test layer lb, which
 * records its digest in a label. */
static int append_runtime_layer(deploy_state *ds, ht_layer *lb, const char *work)
{
	hypertest *h = ds->h;
	const char *modules[2] = {ds->provider->core.plugin->path, ds->runner->core.plugin->path};
	ht_layer *rl = NULL;
	int rc = ht_runtime_layer(ht_function_program(h), modules, 2,
	                          ht_image_architecture(ds->image), &rl, &h->err);
	if (rc == HYPERTEST_OK)
		rc = ht_image_append_layer(ds->image, rl, work, &h->err);
	ht_layer_free(rl);
	if (rc == HYPERTEST_OK) {
		char *label = ht_asprintf("org.hypertest.runtime.layer=%s",
		                          ht_image_last_layer_digest(ds->image));
		rc = label ? ht_layer_set(lb, "label", label, &h->err)
		           : ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		free(label);
		if (rc == HYPERTEST_OK)
			ht_log(h, HYPERTEST_LOG_DEBUG, "runtime layer %s", ht_image_last_layer_digest(ds->image));
	}
	return rc;
}

static int step_build(deploy_state *ds)
{
	hypertest *h = ds->h;
	hypertest_RUNNER_IMAGE_CONTENT_fn content = HT_OP(ds->runner, HYPERTEST_RUNNER_IMAGE_CONTENT);
	struct hypertest_layer layer;
	ht_layer *lb = ht_layer_new();
	char *config = deployed_config(h);
	char *work = ht_path_join(ht_state_dir(h), "build");
	int rc;

	if (!lb || !config || !work) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (ht_params_get(&ds->target, "runtimeLayer") &&
	    !strcmp(ht_params_get(&ds->target, "runtimeLayer"), "1") &&
	    (rc = append_runtime_layer(ds, lb, work)))
		goto out;
	layer.h = h;
	layer.layer = lb;
	layer.project_dir = h->project_dir;
	layer.err = &h->err;
	if ((rc = ht_layer_set(lb, "workdir", HT_TASK_ROOT, &h->err)) ||
	    (rc = ht_layer_set(lb, "env", "HYPERTEST_FUNCTION_CONFIG=" HT_TASK_ROOT
	                                  "/hypertest.config.json", &h->err)) ||
	    (rc = ht_layer_set(lb, "label", "org.opencontainers.image.title=hypertest tests",
	                       &h->err)) ||
	    (rc = ht_layer_add_data(lb, HT_TASK_ROOT "/hypertest.config.json", config, strlen(config),
	                            0644, &h->err)))
		goto out;
	/* hypertest's own state, the results file and the manifest never go into
	 * the image, even when the test directory holds them ("testDir": ".") */
	for (const char *const *s = (const char *const[]){".hypertest", "resultsFileName",
	                                                   "buildManifestFileName", NULL};
	     *s; s++) {
		const char *rel = **s == '.' ? *s : ht_config_str(h->cfg, *s);
		char *abs = rel ? ht_abspath(h->project_dir, rel) : NULL;
		rc = abs ? ht_layer_skip_source(lb, abs, &h->err) : ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		free(abs);
		if (rc)
			goto out;
	}
	if (content) {
		ht_err_clear(&h->err);
		rc = content(ds->runner->self, &layer);
		if (rc) {
			rc = ht_plugin_error(h, ds->runner, rc, "image content");
			goto out;
		}
	}
	rc = ht_image_append_layer(ds->image, lb, work, &h->err);
	if (rc == HYPERTEST_OK && (rc = ht_image_digest(ds->image, ds->digest, &h->err)) == HYPERTEST_OK)
		ht_err_set(&h->err, HYPERTEST_OK, "image %s (layers: %zu built, %zu unchanged)",
		           ds->digest, ht_image_layers_built(ds->image),
		           ht_image_layers_reused(ds->image));
out:
	ht_layer_free(lb);
	free(config);
	free(work);
	return rc;
}

static int step_push(deploy_state *ds)
{
	hypertest *h = ds->h;
	const char *layout = ht_params_get(&ds->target, "layout");
	const char *registry = ht_params_get(&ds->target, "registry");
	const char *tag = ht_params_get(&ds->target, "tag");
	char written[80];
	int rc;

	ds->ref = ht_strdup(tag && *tag ? tag : "latest");
	if (!ds->ref)
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	if (h->deploy_output) {
		/* a copy for the user to inspect, written even in a dry run */
		rc = ht_image_write_layout(ds->image, h->deploy_output, ds->ref, written, &h->err);
		if (rc)
			return ht_err_prefix(&h->err, "writing the image to %s", h->deploy_output);
		ht_log(h, HYPERTEST_LOG_INFO, "image written to the OCI layout %s as %s",
		       h->deploy_output, ds->ref);
	}
	if (dry(ds, "push"))
		return HYPERTEST_OK;
	if (layout) {
		rc = ht_image_write_layout(ds->image, layout, ds->ref, written, &h->err);
		if (rc)
			return rc;
		if (strcmp(written, ds->digest) != 0)
			return ht_fail(h, HYPERTEST_ERR_DIGEST, "image written as %s, built as %s", written,
			               ds->digest);
		ds->pushed = 1;
		ht_err_set(&h->err, HYPERTEST_OK, "%s:%s", layout, ds->ref);
		return HYPERTEST_OK;
	}
	if (registry) {
		const char *repository = ht_params_get(&ds->target, "repository");
		char *ref;
		if (!repository || !*repository)
			return ht_fail(h, HYPERTEST_ERR_PROVIDER,
			               "provider '%s' named registry %s but no repository",
			               ds->provider->core.plugin->name, registry);
		ref = ht_asprintf("%s/%s:%s", registry, repository, ds->ref);
		if (!ref)
			return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		rc = registry_for(ds, ref, "username", "password");
		if (rc == HYPERTEST_OK)
			rc = ht_image_push_registry(ds->image, ds->registry, ref, written, &h->err);
		if (rc == HYPERTEST_OK && strcmp(written, ds->digest) != 0)
			rc = ht_fail(h, HYPERTEST_ERR_DIGEST, "image pushed as %s, built as %s", written,
			             ds->digest);
		if (rc == HYPERTEST_OK) {
			ds->pushed = 1;
			free(ds->ref);
			ds->ref = ref;
			ht_err_set(&h->err, HYPERTEST_OK, "%s (%zu of %zu layers uploaded, the others "
			           "already there)", ref, ht_image_layers_uploaded(ds->image),
			           ht_image_layer_count(ds->image));
			return HYPERTEST_OK;
		}
		free(ref);
		return rc;
	}
	return ht_fail(h, HYPERTEST_ERR_PROVIDER,
	               "provider '%s' named no image target (neither 'layout' nor 'registry')",
	               ds->provider->core.plugin->name);
}

/* The test directory's hash, remembered in .hypertest/dirhash-cache.json
 * while its files keep their sizes, times and inodes. */
static int dirhash_cached(hypertest *h, const char *dir, char hex[65])
{
	char *cache = ht_path_join(ht_state_dir(h), "dirhash-cache.json");
	if (!cache)
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	int rc = ht_dirhash_project(dir, h->project_dir, ht_config_str(h->cfg, "resultsFileName"),
	                            ht_config_str(h->cfg, "buildManifestFileName"), cache, hex,
	                            &h->err);
	free(cache);
	return rc;
}

static int step_manifest(deploy_state *ds)
{
	hypertest *h = ds->h;
	hypertest_RUNNER_LIST_TESTS_fn list = HT_OP(ds->runner, HYPERTEST_RUNNER_LIST_TESTS);
	hypertest_RUNNER_TEST_DIR_fn test_dir = HT_OP(ds->runner, HYPERTEST_RUNNER_TEST_DIR);
	hypertest_PROVIDER_OBJECT_PUT_fn put = HT_OP(ds->provider, HYPERTEST_PROVIDER_OBJECT_PUT);
	const char *name = ht_config_str(h->cfg, "buildManifestFileName");
	struct hypertest_list tl;
	char hex[65], *dir = NULL, *text = NULL;
	int rc;

	if (!list || !test_dir)
		return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
		               "runner '%s' cannot list tests (no LIST_TESTS/TEST_DIR operation)",
		               ds->runner->core.plugin->name);
	tl.contexts = json_array();
	tl.err = &h->err;
	ht_err_clear(&h->err);
	rc = list(ds->runner->self, &tl);
	if (rc) {
		rc = ht_plugin_error(h, ds->runner, rc, "listing the tests");
		goto out;
	}
	if (json_array_size(tl.contexts) == 0) {
		rc = ht_fail(h, HYPERTEST_ERR_EMPTY, "runner '%s' found no tests",
		             ds->runner->core.plugin->name);
		goto out;
	}
	dir = ht_abspath(h->project_dir, test_dir(ds->runner->self));
	if (!dir) {
		rc = ht_fail(h, HYPERTEST_ERR_RUNNER, "runner '%s' names no test directory",
		             ds->runner->core.plugin->name);
		goto out;
	}
	if ((rc = dirhash_cached(h, dir, hex)))
		goto out;
	text = ht_manifest_dump(ds->digest, hex, tl.contexts);
	if (!text) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (dry(ds, "storing the manifest")) {
		ht_log(h, HYPERTEST_LOG_INFO, "dry run: the manifest would list %zu tests",
		       json_array_size(tl.contexts));
		goto out;
	}
	if (!put) {
		rc = ht_fail(h, HYPERTEST_ERR_UNSUPPORTED, "provider '%s' cannot store objects",
		             ds->provider->core.plugin->name);
		goto out;
	}
	ht_err_clear(&h->err);
	rc = put(ds->provider->self, name, text, strlen(text), "application/json");
	if (rc)
		rc = ht_plugin_error(h, ds->provider, rc, "storing the manifest");
	else
		ht_err_set(&h->err, HYPERTEST_OK, "%zu tests", json_array_size(tl.contexts));
out:
	json_decref(tl.contexts);
	free(dir);
	free(text);
	return rc;
}

static int step_update(deploy_state *ds)
{
	hypertest *h = ds->h;
	hypertest_PROVIDER_FUNCTION_UPDATE_fn update =
	    HT_OP(ds->provider, HYPERTEST_PROVIDER_FUNCTION_UPDATE);
	int rc;

	if (dry(ds, "updating the function"))
		return HYPERTEST_OK;
	if (!update)
		return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED, "provider '%s' cannot update the function",
		               ds->provider->core.plugin->name);
	ht_err_clear(&h->err);
	rc = update(ds->provider->self, ds->ref, ds->digest);
	if (rc)
		return ht_plugin_error(h, ds->provider, rc, "updating the function");
	ht_err_set(&h->err, HYPERTEST_OK, "function runs %s", ds->digest);
	return HYPERTEST_OK;
}

int hypertest_deploy(hypertest *h)
{
	hypertest_PROVIDER_IMAGE_TARGET_fn target;
	deploy_state ds;
	int rc;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	memset(&ds, 0, sizeof ds);
	ds.h = h;
	atomic_store(&h->cancelled, 0);
	atomic_store(&h->cancel_plugins, 1); /* a cancel ends the provider's waits too */
	ht_command_ops_install(h);
	if ((rc = ht_require_config(h)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &ds.provider)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_RUNNER, &ds.runner)))
		goto out;
	target = HT_OP(ds.provider, HYPERTEST_PROVIDER_IMAGE_TARGET);
	if (!target) {
		rc = ht_fail(h, HYPERTEST_ERR_UNSUPPORTED, "provider '%s' names no image target",
		             ds.provider->core.plugin->name);
		goto out;
	}
	ht_err_clear(&h->err);
	if ((rc = target(ds.provider->self, &ds.target))) {
		rc = ht_plugin_error(h, ds.provider, rc, "image target");
		goto out;
	}
	if ((rc = run_step(&ds, "pull", step_pull)) || (rc = run_step(&ds, "build", step_build)) ||
	    (rc = run_step(&ds, "push", step_push)) ||
	    (rc = run_step(&ds, "manifest", step_manifest)) ||
	    (rc = run_step(&ds, "update", step_update)))
		goto out;
	ht_err_clear(&h->err);
out:
	atomic_store(&h->cancel_plugins, 0);
	ht_params_clear(&ds.target);
	ht_image_free(ds.image);
	ht_registry_unref(ds.registry);
	free(ds.ref);
	ht_instance_destroy(ds.runner);
	ht_instance_destroy(ds.provider);
	return rc;
}
