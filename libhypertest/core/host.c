/*
 * host.c - the upcalls: what the core offers plugins, as a table of
 * numbered functions (include/hypertest/plugin.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* What only the commands implement (layers, images, invocations) is
 * reached through the handle's table of operations (core.h), which the
 * commands install: the core never calls oci/ or commands/ by name, so a
 * program linked with core/ alone (hypertest-function) does without them
 * and without the libraries they need (libarchive, libcurl).  There those
 * upcalls answer HYPERTEST_ERR_UNSUPPORTED. */
static const ht_ops *ops_of(const hypertest *h)
{
	return h ? h->ops : NULL;
}

static const char *kind_word(const struct hypertest_core *core)
{
	if (!core->plugin)
		return "plugin module";
	return core->plugin->kind == HYPERTEST_KIND_RUNNER ? "runner" : "provider";
}

static void up_log(hypertest_core *core, int level, const char *message)
{
	if (!core || !message)
		return;
	if (level < HYPERTEST_LOG_ERROR)
		level = HYPERTEST_LOG_ERROR;
	if (level > HYPERTEST_LOG_DEBUG)
		level = HYPERTEST_LOG_DEBUG;
	if (core->h->collect_warnings && level <= HYPERTEST_LOG_WARNING && core->plugin &&
	    core->plugin->kind == HYPERTEST_KIND_PROVIDER) {
		if (json_array_size(core->h->collect_warnings) < HT_WARNINGS_MAX)
			json_array_append_new(core->h->collect_warnings, ht_json_text(message));
		else
			core->h->collect_dropped++;
	}
	ht_log(core->h, level, "%s '%s': %s", kind_word(core),
	       core->plugin ? core->plugin->name : (core->module ? "?" : "?"), message);
}

static void up_set_error(hypertest_core *core, int code, const char *message)
{
	if (!core)
		return;
	ht_err_set(&core->h->err, code, "%s", message ? message : hypertest_strerror(code));
}

static int up_register(hypertest_core *core, int kind, const char *name, const char *description,
                       const hypertest_dispatch *ops)
{
	return ht_module_register(core, kind, name, description, ops);
}

static int up_list_add(hypertest_list *list, const char *context_json)
{
	json_error_t jerr;
	json_t *v;

	if (!list || !context_json)
		return HYPERTEST_ERR_INVALID;
	v = json_loads(context_json, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(v)) {
		json_decref(v);
		return ht_err_set(list->err, HYPERTEST_ERR_RUNNER,
		                  "test context %zu is not a JSON object: %s",
		                  json_array_size(list->contexts) + 1,
		                  jerr.text[0] ? jerr.text : "another JSON type");
	}
	if (json_array_append_new(list->contexts, v) != 0)
		return HYPERTEST_ERR_NOMEM;
	return HYPERTEST_OK;
}

static int up_layer_add(hypertest_layer *layer, const char *source_path, const char *image_path)
{
	const ht_ops *ops;
	char *src;
	int rc;

	if (!layer || !source_path || !image_path)
		return HYPERTEST_ERR_INVALID;
	ops = ops_of(layer->h);
	if (!ops || !ops->layer_add_path)
		return HYPERTEST_ERR_UNSUPPORTED;
	src = ht_abspath(layer->project_dir, source_path);
	if (!src)
		return HYPERTEST_ERR_NOMEM;
	rc = ops->layer_add_path(layer->layer, src, image_path, layer->err);
	free(src);
	return rc;
}

static int up_layer_set(hypertest_layer *layer, const char *key, const char *value)
{
	const ht_ops *ops;

	if (!layer || !key || !value)
		return HYPERTEST_ERR_INVALID;
	ops = ops_of(layer->h);
	if (!ops || !ops->layer_set)
		return HYPERTEST_ERR_UNSUPPORTED;
	return ops->layer_set(layer->layer, key, value, layer->err);
}

void ht_result_init(struct hypertest_result *r)
{
	memset(r, 0, sizeof *r);
	r->status = -1;
	r->duration = -1;
}

void ht_result_clear(struct hypertest_result *r)
{
	free(r->name);
	free(r->file_path);
	free(r->message);
	free(r->stack_trace);
	ht_result_init(r);
}

static void up_result_set_status(hypertest_result *r, int status)
{
	if (r && status >= HYPERTEST_STATUS_SUCCESS && status <= HYPERTEST_STATUS_SKIPPED)
		r->status = status;
}

static void up_result_set_str(hypertest_result *r, int field, const char *value)
{
	char **slot = NULL;

	if (!r)
		return;
	switch (field) {
	case HYPERTEST_RESULT_NAME: slot = &r->name; break;
	case HYPERTEST_RESULT_FILE_PATH: slot = &r->file_path; break;
	case HYPERTEST_RESULT_MESSAGE: slot = &r->message; break;
	case HYPERTEST_RESULT_STACK_TRACE: slot = &r->stack_trace; break;
	default: return;
	}
	free(*slot);
	*slot = ht_strdup(value);
}

static void up_result_set_duration(hypertest_result *r, int64_t ms)
{
	if (r && ms >= 0)
		r->duration = ms;
}

static int up_buffer_append(hypertest_buffer *b, const void *data, size_t len)
{
	if (!b || (!data && len))
		return HYPERTEST_ERR_INVALID;
	return ht_buf_append(&b->buf, data, len);
}

static hypertest_buffer *up_buffer_new(hypertest_core *core)
{
	(void)core;
	return calloc(1, sizeof(hypertest_buffer));
}

static const char *up_buffer_data(hypertest_buffer *b, size_t *len)
{
	if (!b)
		return NULL;
	if (len)
		*len = b->buf.len;
	return b->buf.data ? b->buf.data : "";
}

static void up_buffer_free(hypertest_buffer *b)
{
	if (b) {
		ht_buf_free(&b->buf);
		free(b);
	}
}

void ht_params_clear(struct hypertest_params *p)
{
	size_t i;
	for (i = 0; i < p->n; i++) {
		free(p->items[i].key);
		free(p->items[i].value);
	}
	free(p->items);
	p->items = NULL;
	p->n = p->cap = 0;
}

const char *ht_params_get(const struct hypertest_params *p, const char *key)
{
	size_t i;
	for (i = 0; i < p->n; i++)
		if (!strcmp(p->items[i].key, key))
			return p->items[i].value;
	return NULL;
}

static int up_param_set(hypertest_params *p, const char *key, const char *value)
{
	ht_param *grown;
	size_t i;

	if (!p || !key || !value)
		return HYPERTEST_ERR_INVALID;
	for (i = 0; !p->unique_keys && i < p->n; i++) {
		if (!strcmp(p->items[i].key, key)) {
			char *v = ht_strdup(value);
			if (!v)
				return HYPERTEST_ERR_NOMEM;
			free(p->items[i].value);
			p->items[i].value = v;
			return HYPERTEST_OK;
		}
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		grown = realloc(p->items, cap * sizeof *grown);
		if (!grown)
			return HYPERTEST_ERR_NOMEM;
		p->items = grown;
		p->cap = cap;
	}
	p->items[p->n].key = ht_strdup(key);
	p->items[p->n].value = ht_strdup(value);
	if (!p->items[p->n].key || !p->items[p->n].value) {
		free(p->items[p->n].key);
		free(p->items[p->n].value);
		return HYPERTEST_ERR_NOMEM;
	}
	p->n++;
	return HYPERTEST_OK;
}

static void up_doctor_check(hypertest_checks *c, const char *check, int status,
                            const char *message)
{
	if (!c || !check)
		return;
	if (status == HYPERTEST_CHECK_FAILED)
		c->failed++;
	else if (status == HYPERTEST_CHECK_WARNING)
		c->warnings++;
	else
		status = HYPERTEST_CHECK_OK;
	ht_emit(c->h, HYPERTEST_EVENT_DOCTOR_CHECK, HYPERTEST_FIELD_CHECK, check,
	        HYPERTEST_FIELD_STATUS, (int64_t)status, HYPERTEST_FIELD_MESSAGE,
	        message ? message : "", HYPERTEST_FIELD_PLUGIN, c->plugin ? c->plugin : "", 0);
}

static int up_function_handle(hypertest_function *fn, const char *payload, size_t len,
                              hypertest_buffer *response)
{
	if (!fn || !payload || !response)
		return HYPERTEST_ERR_INVALID;
	return ht_function_handle(fn, payload, len, response);
}

static const char *up_core_str(hypertest_core *core, int what)
{
	hypertest *h;

	if (!core)
		return NULL;
	h = core->h;
	switch (what) {
	case HYPERTEST_CORE_PROJECT_DIR: return h->project_dir;
	case HYPERTEST_CORE_STATE_DIR: return ht_state_dir(h);
	case HYPERTEST_CORE_FUNCTION_PROGRAM: return ht_function_program(h);
	case HYPERTEST_CORE_PLUGIN_PATH: return hypertest_plugin_search_path(h);
	case HYPERTEST_CORE_VERSION: return hypertest_version();
	case HYPERTEST_CORE_CONFIG_PATH:
		return ht_config_path(h->cfg) ? ht_config_path(h->cfg) : "";
	case HYPERTEST_CORE_IMAGE_NAME: return ht_config_str(h->cfg, "imageName");
	case HYPERTEST_CORE_RUNNER_NAME: return ht_config_plugin_name(h->cfg, "testRunner");
	case HYPERTEST_CORE_DRY_RUN: return (h->flags & HYPERTEST_FLAG_DRY_RUN) ? "1" : "0";
	case HYPERTEST_CORE_FUNCTION_INIT_ERROR:
		return h->function_init_error ? h->function_init_error : "";
	case HYPERTEST_CORE_CONCURRENCY:
		snprintf(h->concurrency_text, sizeof h->concurrency_text, "%ld",
		         ht_config_concurrency(h->cfg));
		return h->concurrency_text;
	case HYPERTEST_CORE_FUNCTION_MODULES: return ht_function_modules(h);
	case HYPERTEST_CORE_PLATFORM: {
		const char *s = ht_config_str(h->cfg, "platform");
		return s ? s : "";
	}
	default: return NULL;
	}
}

static const char *up_invocation_test_id(hypertest_invocation *inv)
{
	const ht_ops *ops = inv ? ops_of(inv->h) : NULL;

	return ops && ops->invocation_test_id ? ops->invocation_test_id(inv) : NULL;
}

static void up_invoke_done(hypertest_invocation *inv, const char *response, size_t len,
                           int error_code, const char *error_message)
{
	const ht_ops *ops = inv ? ops_of(inv->h) : NULL;

	if (ops && ops->invocation_done)
		ops->invocation_done(inv, response, len, error_code, error_message);
}

static void up_invocation_usage(hypertest_invocation *inv, const char *quantity, double value)
{
	const ht_ops *ops = inv ? ops_of(inv->h) : NULL;

	if (ops && ops->invocation_usage && quantity)
		ops->invocation_usage(inv, quantity, value);
}

/* Read from any of the plugin's threads while a signal handler or another
 * thread may set h->cancelled: atomic loads, no lock. */
static int up_cancelled(hypertest_core *core)
{
	hypertest *h = core ? core->h : NULL;

	if (!h || !atomic_load(&h->cancel_plugins))
		return 0;
	return atomic_load(&h->cancelled) != 0;
}

static int up_image_unpack(hypertest_core *core, const char *layout_dir, const char *ref,
                           const char *dest_dir)
{
	const ht_ops *ops;

	if (!core || !layout_dir || !dest_dir)
		return HYPERTEST_ERR_INVALID;
	ops = ops_of(core->h);
	if (!ops || !ops->image_unpack_layout)
		return HYPERTEST_ERR_UNSUPPORTED;
	return ops->image_unpack_layout(layout_dir, ref, dest_dir, &core->h->err);
}

#define UP(ID, fn) {ID, (hypertest_fn)(1 ? (fn) : (ID##_fn_check)0)}

const hypertest_dispatch ht_upcalls[] = {
	UP(HYPERTEST_UP_LOG, up_log),
	UP(HYPERTEST_UP_SET_ERROR, up_set_error),
	UP(HYPERTEST_UP_REGISTER, up_register),
	UP(HYPERTEST_UP_LIST_ADD, up_list_add),
	UP(HYPERTEST_UP_LAYER_ADD, up_layer_add),
	UP(HYPERTEST_UP_LAYER_SET, up_layer_set),
	UP(HYPERTEST_UP_RESULT_SET_STATUS, up_result_set_status),
	UP(HYPERTEST_UP_RESULT_SET_STR, up_result_set_str),
	UP(HYPERTEST_UP_RESULT_SET_DURATION, up_result_set_duration),
	UP(HYPERTEST_UP_INVOKE_DONE, up_invoke_done),
	UP(HYPERTEST_UP_BUFFER_APPEND, up_buffer_append),
	UP(HYPERTEST_UP_PARAM_SET, up_param_set),
	UP(HYPERTEST_UP_DOCTOR_CHECK, up_doctor_check),
	UP(HYPERTEST_UP_FUNCTION_HANDLE, up_function_handle),
	UP(HYPERTEST_UP_CORE_STR, up_core_str),
	UP(HYPERTEST_UP_INVOCATION_TEST_ID, up_invocation_test_id),
	UP(HYPERTEST_UP_IMAGE_UNPACK, up_image_unpack),
	UP(HYPERTEST_UP_BUFFER_NEW, up_buffer_new),
	UP(HYPERTEST_UP_BUFFER_DATA, up_buffer_data),
	UP(HYPERTEST_UP_BUFFER_FREE, up_buffer_free),
	UP(HYPERTEST_UP_INVOCATION_USAGE, up_invocation_usage),
	UP(HYPERTEST_UP_CANCELLED, up_cancelled),
	{0, NULL},
};
