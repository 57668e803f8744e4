/*
 * fixture-abi-1-3.c - a module built for plugin ABI 1.3, which added,
 * beside HYPERTEST_PROVIDER_OBJECT_LIST (52), the provider operations
 * HYPERTEST_PROVIDER_PROVISION_PLAN (53), HYPERTEST_PROVIDER_PROVISION_APPLY
 * (54), HYPERTEST_PROVIDER_RESOURCES_DESTROY (55), PROVISION_EMIT (56) and
 * INVOKE_END (57, which has nothing to release here).  Registers a runner and a
 * provider "minor13".  The provider's option "answer" picks what its
 * operations hand back: "good" (the default) a valid array, "bad" text
 * that is no JSON, "missing" an item without "reason", "fail" an error.
 * RESOURCES_DESTROY names the flags it got in its reason ("flags=N"); with
 * "cancel", PROVISION_PLAN and PROVISION_EMIT name what
 * HYPERTEST_UP_CANCELLED (22) answers ("cancelled=N", "cancelled=unbound"
 * from a core without it), and PROVISION_APPLY, RESOURCES_DESTROY and
 * OBJECT_GET (invoke's manifest) block until it answers nonzero, then fail
 * with HYPERTEST_ERR_CANCELLED "cancelled while ..." (after 20 s without
 * it: HYPERTEST_ERR_PROVIDER "never cancelled while ...").  INVOKE_START and
 * INVOKE_WAIT are there for invoke to begin, and refuse.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hypertest/plugin.h>

HYPERTEST_PLUGIN_EXPORT const hypertest_plugin_descriptor hypertest_plugin_info = {
	HYPERTEST_PLUGIN_MAGIC, 1, 3, "fixture-abi-1-3", "1.3", "built for ABI 1.3", "MIT",
	{0, 0, 0, 0, 0, 0, 0, 0}};

static hypertest_upcalls up; /* written once, by hypertest_plugin_init */

struct fixture {
	hypertest_core *core;
	char answer[16];
};

static struct fixture instances[4];
static int ninstances; /* the core creates instances on one thread */

static int create(hypertest_core *core, const char *options, void **self)
{
	struct fixture *f = &instances[ninstances++ % 4];
	const char *a = options ? strstr(options, "\"answer\"") : NULL;

	f->core = core;
	strcpy(f->answer, "good");
	if (a && (a = strchr(a + 8, '"')))
		sscanf(a + 1, "%15[a-z]", f->answer);
	*self = f;
	return 0;
}

static int answer(struct fixture *f, const char *good, hypertest_buffer *out)
{
	const char *text = good;

	if (strcmp(f->answer, "fail") == 0) {
		up.set_error(f->core, HYPERTEST_ERR_PROVIDER, "the fixture refuses");
		return HYPERTEST_ERR_PROVIDER;
	}
	if (strcmp(f->answer, "bad") == 0)
		text = "not json";
	else if (strcmp(f->answer, "missing") == 0)
		text = "[{\"type\": \"thing\", \"name\": \"t\", \"action\": \"create\"}]";
	return up.buffer_append(out, text, strlen(text));
}

/* "cancel": wait for HYPERTEST_UP_CANCELLED, as a provider's blocking
 * request does (bounded: a core that never answers fails the caller). */
static int wait_cancelled(struct fixture *f, const char *what)
{
	struct timespec ms = {0, 1000000L};
	char msg[256];
	int i;

	for (i = 0; i < 20000; i++) {
		if (up.cancelled && up.cancelled(f->core)) {
			snprintf(msg, sizeof msg, "cancelled while %s", what);
			up.set_error(f->core, HYPERTEST_ERR_CANCELLED, msg);
			return HYPERTEST_ERR_CANCELLED;
		}
		nanosleep(&ms, NULL);
	}
	snprintf(msg, sizeof msg, "never cancelled while %s", what);
	up.set_error(f->core, HYPERTEST_ERR_PROVIDER, msg);
	return HYPERTEST_ERR_PROVIDER;
}

static int object_get(void *self, const char *key, hypertest_buffer *out)
{
	struct fixture *f = self;
	char what[256];

	(void)out;
	if (strcmp(f->answer, "cancel") != 0) {
		up.set_error(f->core, HYPERTEST_ERR_NOT_FOUND, "no such object");
		return HYPERTEST_ERR_NOT_FOUND;
	}
	snprintf(what, sizeof what, "reading %s", key);
	return wait_cancelled(f, what);
}

static int invoke_start(void *self, hypertest_invocation *inv, const char *payload, size_t len)
{
	(void)inv;
	(void)payload;
	(void)len;
	up.set_error(((struct fixture *)self)->core, HYPERTEST_ERR_UNSUPPORTED, "no function");
	return HYPERTEST_ERR_UNSUPPORTED;
}

static int invoke_wait(void *self, int timeout_ms)
{
	(void)self;
	(void)timeout_ms;
	return -HYPERTEST_ERR_UNSUPPORTED;
}

static int plan(void *self, hypertest_buffer *out)
{
	struct fixture *f = self;

	if (strcmp(f->answer, "cancel") == 0) {
		char text[160], state[16] = "unbound";
		if (up.cancelled)
			snprintf(state, sizeof state, "%d", up.cancelled(f->core));
		snprintf(text, sizeof text,
		         "[{\"type\": \"thing\", \"name\": \"t\", \"action\": \"create\", "
		         "\"reason\": \"cancelled=%s\"}]", state);
		return up.buffer_append(out, text, strlen(text));
	}
	return answer(self, "[{\"type\": \"thing\", \"name\": \"t\", \"action\": \"create\", "
	                    "\"reason\": \"planned\"}]", out);
}

static int apply(void *self, hypertest_buffer *out)
{
	if (strcmp(((struct fixture *)self)->answer, "cancel") == 0)
		return wait_cancelled(self, "applying");
	return answer(self, "[{\"type\": \"thing\", \"name\": \"t\", \"action\": \"create\", "
	                    "\"reason\": \"applied\"}]", out);
}

static int destroy_resources(void *self, unsigned flags, hypertest_buffer *out)
{
	char text[256];
	if (strcmp(((struct fixture *)self)->answer, "cancel") == 0)
		return wait_cancelled(self, "destroying");
	snprintf(text, sizeof text,
	         "[{\"type\": \"thing\", \"name\": \"t\", \"action\": \"delete\", "
	         "\"reason\": \"flags=%u\"}]", flags);
	return answer(self, text, out);
}

/* the template: "format:FORMAT" */
static int emit(void *self, const char *format, hypertest_buffer *out)
{
	struct fixture *f = self;
	char text[128];
	snprintf(text, sizeof text, "format:%s", format);
	if (strcmp(f->answer, "cancel") == 0)
		snprintf(text, sizeof text, "format:%s cancelled=%d", format,
		         up.cancelled ? up.cancelled(f->core) : -1);
	if (strcmp(format, "cloudformation") != 0) {
		up.set_error(((struct fixture *)self)->core, HYPERTEST_ERR_UNSUPPORTED, "no such format");
		return HYPERTEST_ERR_UNSUPPORTED;
	}
	return answer(self, text, out);
}

static void invoke_end(void *self)
{
	(void)self;
}

static const char *test_dir(void *self)
{
	(void)self;
	return "tests";
}

static const hypertest_dispatch runner_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, test_dir),
	HYPERTEST_OP_END,
};

static const hypertest_dispatch provider_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_PLAN, plan),
	HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_APPLY, apply),
	HYPERTEST_OP(HYPERTEST_PROVIDER_RESOURCES_DESTROY, destroy_resources),
	HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_EMIT, emit),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_GET, object_get),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_START, invoke_start),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_WAIT, invoke_wait),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_END, invoke_end),
	HYPERTEST_OP_END,
};

HYPERTEST_PLUGIN_EXPORT int hypertest_plugin_init(hypertest_core *core,
                                                  const hypertest_dispatch *upcalls);
int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls)
{
	if (hypertest_upcalls_bind(&up, upcalls) != 0 || !up.buffer_append || !up.set_error)
		return -1;
	if (up.register_plugin(core, HYPERTEST_KIND_RUNNER, "minor13", "ABI 1.3 runner",
	                       runner_ops) != 0)
		return -1;
	return up.register_plugin(core, HYPERTEST_KIND_PROVIDER, "minor13", "ABI 1.3 provider",
	                          provider_ops);
}
