/*
 * fixture-abi-1-1.c - a module built for plugin ABI 1.1, which added the
 * buffers a plugin owns (HYPERTEST_UP_BUFFER_NEW, _DATA, _FREE).  It must
 * keep loading in every later 1.x core, and those upcalls must keep doing
 * what 1.1 said.  Registers a runner and a provider "minor11"; their doctor
 * check "buffers" fills a buffer of its own and reads it back.
 */
#include <stdlib.h>
#include <string.h>

#include <hypertest/plugin.h>

HYPERTEST_PLUGIN_EXPORT const hypertest_plugin_descriptor hypertest_plugin_info = {
	HYPERTEST_PLUGIN_MAGIC, 1, 1, "fixture-abi-1-1", "1.1", "built for ABI 1.1", "MIT",
	{0, 0, 0, 0, 0, 0, 0, 0}};

/* the upcalls of ABI 1.1, by id */
struct minor11 {
	hypertest_core *core;
	hypertest_UP_DOCTOR_CHECK_fn doctor_check;
	hypertest_UP_BUFFER_APPEND_fn buffer_append;
	hypertest_UP_BUFFER_NEW_fn buffer_new;
	hypertest_UP_BUFFER_DATA_fn buffer_data;
	hypertest_UP_BUFFER_FREE_fn buffer_free;
};

static struct minor11 bound; /* written once, by hypertest_plugin_init */

static int create(hypertest_core *core, const char *options, void **self)
{
	struct minor11 *m = malloc(sizeof *m);
	(void)options;
	if (!m)
		return HYPERTEST_ERR_NOMEM;
	*m = bound;
	m->core = core;
	*self = m;
	return 0;
}

static void destroy(void *self)
{
	free(self);
}

static int doctor(void *self, hypertest_checks *checks)
{
	struct minor11 *m = self;
	hypertest_buffer *b = m->buffer_new(m->core);
	const char *data;
	size_t len = 0;
	int ok;

	if (!b) {
		m->doctor_check(checks, "buffers", HYPERTEST_CHECK_FAILED, "BUFFER_NEW gave NULL");
		return 0;
	}
	m->buffer_append(b, "abi ", 4);
	m->buffer_append(b, "1.1", 3);
	data = m->buffer_data(b, &len);
	ok = data && len == 7 && strcmp(data, "abi 1.1") == 0 && m->buffer_data(b, NULL) == data;
	m->doctor_check(checks, "buffers", ok ? HYPERTEST_CHECK_OK : HYPERTEST_CHECK_FAILED,
	                ok ? "abi 1.1" : "a plugin's buffer lost its bytes");
	m->buffer_free(b);
	return 0;
}

static const char *test_dir(void *self)
{
	(void)self;
	return "tests";
}

static const hypertest_dispatch runner_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_OP_DESTROY, destroy),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, test_dir),
	HYPERTEST_OP_END,
};

static const hypertest_dispatch provider_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_OP_DESTROY, destroy),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP_END,
};

HYPERTEST_PLUGIN_EXPORT int hypertest_plugin_init(hypertest_core *core,
                                                  const hypertest_dispatch *upcalls);
int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls)
{
	const hypertest_dispatch *u;
	hypertest_UP_REGISTER_fn reg = NULL;

	for (u = upcalls; u->id; u++) {
		switch (u->id) {
		case HYPERTEST_UP_REGISTER: reg = (hypertest_UP_REGISTER_fn)u->fn; break;
		case HYPERTEST_UP_DOCTOR_CHECK:
			bound.doctor_check = (hypertest_UP_DOCTOR_CHECK_fn)u->fn;
			break;
		case HYPERTEST_UP_BUFFER_APPEND:
			bound.buffer_append = (hypertest_UP_BUFFER_APPEND_fn)u->fn;
			break;
		case HYPERTEST_UP_BUFFER_NEW: bound.buffer_new = (hypertest_UP_BUFFER_NEW_fn)u->fn; break;
		case HYPERTEST_UP_BUFFER_DATA:
			bound.buffer_data = (hypertest_UP_BUFFER_DATA_fn)u->fn;
			break;
		case HYPERTEST_UP_BUFFER_FREE:
			bound.buffer_free = (hypertest_UP_BUFFER_FREE_fn)u->fn;
			break;
		default: break;
		}
	}
	/* a core of ABI >= 1.1 offers every one of them */
	if (!reg || !bound.doctor_check || !bound.buffer_append || !bound.buffer_new ||
	    !bound.buffer_data || !bound.buffer_free)
		return -1;
	if (reg(core, HYPERTEST_KIND_RUNNER, "minor11", "ABI 1.1 runner", runner_ops) != 0)
		return -1;
	return reg(core, HYPERTEST_KIND_PROVIDER, "minor11", "ABI 1.1 provider", provider_ops);
}
