/*
 * fake-core.c - the shared part of the tests' stand-in for the core: the
 * upcalls that record what a plugin reports into the handles of
 * fake-core.h, the upcall table, and loading a module (see fake-core.h).
 */
#define _GNU_SOURCE
#include "fake-core.h"

#include <check.h>
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct fake_registry fake_reg;
static int want_kind;         /* what fake_load expects REGISTER to be told */
static const char *want_name; /* (0 and NULL: anything) */

void fake_up_log(hypertest_core *core, int level, const char *message)
{
	(void)level;
	snprintf(core->last_log, sizeof core->last_log, "%s", message);
}

void fake_up_set_error(hypertest_core *core, int code, const char *message)
{
	core->error_code = code;
	snprintf(core->error, sizeof core->error, "%s", message);
	core->errors++;
}

int fake_up_register(hypertest_core *core, int kind, const char *name, const char *description,
                     const hypertest_dispatch *ops)
{
	(void)core;
	(void)description;
	if (want_kind)
		ck_assert_int_eq(kind, want_kind);
	if (want_name)
		ck_assert_str_eq(name, want_name);
	fake_reg.kind = kind;
	snprintf(fake_reg.name, sizeof fake_reg.name, "%s", name);
	fake_reg.ops = ops;
	fake_reg.registrations++;
	return 0;
}

int fake_up_list_add(hypertest_list *list, const char *context_json)
{
	ck_assert_uint_lt(list->n, sizeof list->items / sizeof list->items[0]);
	list->items[list->n++] = strdup(context_json);
	return 0;
}

int fake_up_layer_add(hypertest_layer *layer, const char *source_path, const char *image_path)
{
	ck_assert_uint_lt(layer->n, sizeof layer->src / sizeof layer->src[0]);
	layer->src[layer->n] = strdup(source_path);
	layer->dst[layer->n++] = strdup(image_path);
	return 0;
}

void fake_up_result_set_status(hypertest_result *r, int status)
{
	r->status = status;
	r->has_status = 1;
}

void fake_up_result_set_str(hypertest_result *r, int field, const char *value)
{
	char **slot = field == HYPERTEST_RESULT_NAME          ? &r->name
	              : field == HYPERTEST_RESULT_FILE_PATH   ? &r->file_path
	              : field == HYPERTEST_RESULT_MESSAGE     ? &r->message
	              : field == HYPERTEST_RESULT_STACK_TRACE ? &r->stack
	                                                      : NULL;
	ck_assert_msg(slot != NULL, "result field %d", field);
	free(*slot);
	*slot = strdup(value);
}

void fake_up_result_set_duration(hypertest_result *r, int64_t ms)
{
	r->duration = ms;
	r->has_duration = 1;
}

void fake_up_invoke_done(hypertest_invocation *inv, const char *response, size_t len,
                         int error_code, const char *error_message)
{
	ck_assert_int_eq(inv->done, 0); /* exactly once */
	inv->done = 1;
	inv->code = error_code;
	inv->end = fake_now_s();
	if (response) {
		inv->response = malloc(len + 1);
		ck_assert_ptr_nonnull(inv->response);
		memcpy(inv->response, response, len);
		inv->response[len] = '\0';
		inv->len = len;
	}
	if (error_message)
		inv->message = strdup(error_message);
}

int fake_up_buffer_append(hypertest_buffer *buf, const void *data, size_t len)
{
	char *nb = realloc(buf->data, buf->len + len + 1);
	if (!nb)
		return HYPERTEST_ERR_NOMEM;
	buf->data = nb;
	memcpy(buf->data + buf->len, data, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
	return 0;
}

int fake_up_param_set(hypertest_params *params, const char *key, const char *value)
{
	ck_assert_int_lt(params->n, (int)(sizeof params->key / sizeof params->key[0]));
	snprintf(params->key[params->n], sizeof params->key[0], "%s", key);
	snprintf(params->val[params->n], sizeof params->val[0], "%s", value);
	params->n++;
	return 0;
}

void fake_up_doctor_check(hypertest_checks *checks, const char *check, int status,
                          const char *message)
{
	ck_assert_int_lt(checks->n, (int)(sizeof checks->name / sizeof checks->name[0]));
	snprintf(checks->name[checks->n], sizeof checks->name[0], "%s", check);
	checks->status[checks->n] = status;
	snprintf(checks->msg[checks->n], sizeof checks->msg[0], "%s", message);
	checks->n++;
}

const char *fake_up_core_str(hypertest_core *core, int what)
{
	switch (what) {
	case HYPERTEST_CORE_PROJECT_DIR:
		return core->project_dir;
	case HYPERTEST_CORE_FUNCTION_PROGRAM:
		return core->program;
	case HYPERTEST_CORE_PLUGIN_PATH:
		return core->plugin_path;
	case HYPERTEST_CORE_CONFIG_PATH:
		return core->config_path;
	case HYPERTEST_CORE_IMAGE_NAME:
		return core->image_name;
	case HYPERTEST_CORE_CONCURRENCY:
		return core->concurrency;
	case HYPERTEST_CORE_FUNCTION_INIT_ERROR:
		return core->init_error;
	default:
		return "";
	}
}

const char *fake_up_invocation_test_id(hypertest_invocation *inv)
{
	return inv->test_id;
}

hypertest_buffer *fake_up_buffer_new(hypertest_core *core)
{
	(void)core;
	return calloc(1, sizeof(hypertest_buffer));
}

const char *fake_up_buffer_data(hypertest_buffer *buf, size_t *len)
{
	if (len)
		*len = buf->len;
	return buf->data ? buf->data : "";
}

void fake_up_buffer_free(hypertest_buffer *buf)
{
	free(buf->data);
	free(buf);
}

static const hypertest_dispatch shared_upcalls[] = {
	{HYPERTEST_UP_LOG, (hypertest_fn)fake_up_log},
	{HYPERTEST_UP_SET_ERROR, (hypertest_fn)fake_up_set_error},
	{HYPERTEST_UP_REGISTER, (hypertest_fn)fake_up_register},
	{HYPERTEST_UP_LIST_ADD, (hypertest_fn)fake_up_list_add},
	{HYPERTEST_UP_LAYER_ADD, (hypertest_fn)fake_up_layer_add},
	{HYPERTEST_UP_RESULT_SET_STATUS, (hypertest_fn)fake_up_result_set_status},
	{HYPERTEST_UP_RESULT_SET_STR, (hypertest_fn)fake_up_result_set_str},
	{HYPERTEST_UP_RESULT_SET_DURATION, (hypertest_fn)fake_up_result_set_duration},
	{HYPERTEST_UP_INVOKE_DONE, (hypertest_fn)fake_up_invoke_done},
	{HYPERTEST_UP_BUFFER_APPEND, (hypertest_fn)fake_up_buffer_append},
	{HYPERTEST_UP_PARAM_SET, (hypertest_fn)fake_up_param_set},
	{HYPERTEST_UP_DOCTOR_CHECK, (hypertest_fn)fake_up_doctor_check},
	{HYPERTEST_UP_CORE_STR, (hypertest_fn)fake_up_core_str},
	{HYPERTEST_UP_INVOCATION_TEST_ID, (hypertest_fn)fake_up_invocation_test_id},
	{HYPERTEST_UP_BUFFER_NEW, (hypertest_fn)fake_up_buffer_new},
	{HYPERTEST_UP_BUFFER_DATA, (hypertest_fn)fake_up_buffer_data},
	{HYPERTEST_UP_BUFFER_FREE, (hypertest_fn)fake_up_buffer_free},
	{0, NULL}};

const hypertest_dispatch *fake_upcalls(const hypertest_dispatch *extra)
{
	static hypertest_dispatch table[40];
	const size_t max = sizeof table / sizeof table[0] - 1; /* and the end */
	size_t n = 0;
	for (const hypertest_dispatch *d = shared_upcalls; d->id; d++)
		table[n++] = *d;
	for (const hypertest_dispatch *e = extra; e && e->id; e++) {
		size_t i = 0;
		while (i < n && table[i].id != e->id)
			i++;
		if (i >= max) { /* (no ck_assert: local-helper runs no Check tests) */
			fprintf(stderr, "fake_upcalls: more than %zu upcalls\n", max);
			abort();
		}
		table[i] = *e;
		if (i == n)
			n++;
	}
	table[n] = (hypertest_dispatch){0, NULL};
	return table;
}

void *fake_load(const char *path, hypertest_core *core, const hypertest_dispatch *upcalls,
                int kind, const char *name)
{
	memset(&fake_reg, 0, sizeof fake_reg);
	want_kind = kind;
	want_name = name;
	void *m = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(m != NULL, "dlopen %s: %s", path, dlerror());
	const hypertest_plugin_descriptor *d = dlsym(m, "hypertest_plugin_info");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->magic, HYPERTEST_PLUGIN_MAGIC);
	ck_assert_uint_eq(d->abi_major, HYPERTEST_PLUGIN_ABI_MAJOR);
	hypertest_plugin_init_fn init;
	*(void **)&init = dlsym(m, "hypertest_plugin_init");
	ck_assert_ptr_nonnull(init);
	ck_assert_int_eq(init(core, upcalls), 0);
	ck_assert_int_eq(fake_reg.registrations, 1);
	ck_assert_ptr_nonnull(fake_reg.ops);
	return m;
}

hypertest_fn fake_find_op(int id)
{
	for (const hypertest_dispatch *d = fake_reg.ops; d && d->id; d++)
		if (d->id == id)
			return d->fn;
	return NULL;
}

hypertest_fn fake_op(int id)
{
	hypertest_fn fn = fake_find_op(id);
	ck_assert_msg(fn != NULL, "operation %d missing", id);
	return fn;
}

void fake_list_free(hypertest_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	memset(l, 0, sizeof *l);
}

void fake_layer_free(hypertest_layer *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->src[i]);
		free(l->dst[i]);
	}
	memset(l, 0, sizeof *l);
}

void fake_result_free(hypertest_result *r)
{
	free(r->name);
	free(r->file_path);
	free(r->message);
	free(r->stack);
	memset(r, 0, sizeof *r);
}

double fake_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Directories made writable first (a deployed image is read-only). */
static int unseal_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D || flag == FTW_DNR || (st && S_ISDIR(st->st_mode)))
		chmod(path, 0700);
	return 0;
}

void fake_rm_tree(const char *path)
{
	nftw(path, unseal_entry, 16, FTW_PHYS);
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
