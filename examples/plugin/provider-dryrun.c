/*
 * provider-dryrun.c - an example cloud provider plugin for hypertest, built
 * out of tree from the installed headers alone.
 *
 * It keeps its bucket in the project's .hypertest/dryrun-bucket folder and
 * completes every invocation at once
 * with a passing response, so that `hypertest invoke` can be tried with any
 * runner without running anything.  It shows the whole shape of a provider:
 * the descriptor, the registration, a dispatch table of typed operations,
 * and the asynchronous invoke contract (start returns at once; completions
 * are reported from inside wait).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <hypertest/plugin.h>

HYPERTEST_PLUGIN_DEFINE("provider-dryrun", "1.0", "example provider: invokes nothing", "MIT");

static hypertest_upcalls up;

struct dryrun {
	hypertest_core *core;
	char *bucket; /* .hypertest/dryrun-bucket of the project */
	hypertest_invocation **pending;
	size_t npending, cap;
};

static char *join(const char *a, const char *b)
{
	char *p = malloc(strlen(a) + strlen(b) + 2);
	if (p) {
		strcpy(p, a);
		strcat(p, "/");
		strcat(p, b);
	}
	return p;
}

static int create(hypertest_core *core, const char *options, void **self)
{
	struct dryrun *d = calloc(1, sizeof *d);
	(void)options;
	if (!d || !(d->bucket = join(up.core_str(core, HYPERTEST_CORE_STATE_DIR), "dryrun-bucket"))) {
		free(d);
		return HYPERTEST_ERR_NOMEM;
	}
	d->core = core;
	*self = d;
	return HYPERTEST_OK;
}

static void destroy(void *self)
{
	struct dryrun *d = self;
	free(d->bucket);
	free(d->pending);
	free(d);
}

static int image_target(void *self, hypertest_params *target)
{
	struct dryrun *d = self;
	const char *state = up.core_str(d->core, HYPERTEST_CORE_STATE_DIR);
	size_t n = strlen(state) + sizeof "/dryrun-image";
	char *layout = malloc(n);
	int rc;
	if (!layout)
		return HYPERTEST_ERR_NOMEM;
	strcpy(layout, state);
	strcat(layout, "/dryrun-image");
	rc = up.param_set(target, "layout", layout);
	free(layout);
	return rc;
}

/* The file of a key, its parent directories created. */
static char *object_path(struct dryrun *d, const char *key)
{
	char *path = join(d->bucket, key), *p;
	if (!path || strstr(key, "..")) {
		free(path);
		return NULL;
	}
	for (p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	return path;
}

static int object_put(void *self, const char *key, const void *data, size_t len,
                      const char *content_type)
{
	struct dryrun *d = self;
	char *path = object_path(d, key);
	FILE *f = path ? fopen(path, "wb") : NULL;
	int ok;
	(void)content_type;
	free(path);
	if (!f) {
		up.set_error(d->core, HYPERTEST_ERR_IO, "provider 'dryrun': cannot write the object");
		return HYPERTEST_ERR_IO;
	}
	ok = fwrite(data, 1, len, f) == len;
	ok = fclose(f) == 0 && ok;
	return ok ? HYPERTEST_OK : HYPERTEST_ERR_IO;
}

static int object_get(void *self, const char *key, hypertest_buffer *out)
{
	struct dryrun *d = self;
	char *path = object_path(d, key), chunk[4096];
	FILE *f = path ? fopen(path, "rb") : NULL;
	size_t n;
	free(path);
	if (!f)
		return HYPERTEST_ERR_NOT_FOUND;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		up.buffer_append(out, chunk, n);
	fclose(f);
	return HYPERTEST_OK;
}

static int function_update(void *self, const char *image_ref, const char *digest)
{
	(void)image_ref;
	return object_put(self, ".function-digest", digest, strlen(digest), "text/plain");
}

static int invoke_start(void *self, hypertest_invocation *inv, const char *payload, size_t len)
{
	struct dryrun *d = self;
	(void)payload;
	(void)len;
	if (d->npending == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		hypertest_invocation **grown = realloc(d->pending, cap * sizeof *grown);
		if (!grown)
			return HYPERTEST_ERR_NOMEM;
		d->pending = grown;
		d->cap = cap;
	}
	d->pending[d->npending++] = inv;
	return HYPERTEST_OK;
}

static int invoke_wait(void *self, int timeout_ms)
{
	static const char response[] = "{\"success\":true,\"name\":\"not run (dryrun provider)\"}";
	struct dryrun *d = self;
	int done = 0;
	(void)timeout_ms;
	while (d->npending > 0) {
		up.invoke_done(d->pending[--d->npending], response, sizeof response - 1, 0, NULL);
		done++;
	}
	return done;
}

static int doctor(void *self, hypertest_checks *checks)
{
	(void)self;
	up.doctor_check(checks, "provider.dryrun", 0, "nothing to check: nothing runs");
	return HYPERTEST_OK;
}

static const hypertest_dispatch ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_OP_DESTROY, destroy),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP(HYPERTEST_PROVIDER_IMAGE_TARGET, image_target),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_PUT, object_put),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_GET, object_get),
	HYPERTEST_OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE, function_update),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_START, invoke_start),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_WAIT, invoke_wait),
	HYPERTEST_OP_END,
};

int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls)
{
	if (hypertest_upcalls_bind(&up, upcalls) != 0)
		return HYPERTEST_ERR_ABI;
	return up.register_plugin(core, HYPERTEST_KIND_PROVIDER, "dryrun",
	                          "example: completes every invocation at once, runs nothing", ops);
}
