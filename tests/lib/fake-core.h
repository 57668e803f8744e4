/*
 * fake-core.h - a small stand-in for the core in the tests of plugin
 * modules (check_runner_*, check_provider_*, local-helper): the handles the
 * core lends to plugins, with fields that record what a plugin reported;
 * the upcalls most tests share; an upcall table of those with a test's own
 * additions or replacements; and loading a module as the core does
 * (dlopen, descriptor, init).  fake-core.c is compiled into each program.
 */
#ifndef HT_TESTS_FAKE_CORE_H
#define HT_TESTS_FAKE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include <hypertest/plugin.h>

/* The trees, when the build does not name them (tests/Makefile.am does). */
#ifndef HT_TOP_BUILDDIR
#define HT_TOP_BUILDDIR "."
#endif
#ifndef HT_TOP_SRCDIR
#define HT_TOP_SRCDIR "."
#endif
#ifndef HT_TESTS_BUILDDIR
#define HT_TESTS_BUILDDIR "."
#endif
#ifndef HT_TESTS_SRCDIR
#define HT_TESTS_SRCDIR "."
#endif

/* ---- the handles (every field a test reads; unused ones stay zero) ---- */

struct hypertest_core {
	/* what HYPERTEST_UP_CORE_STR answers ("" when unset, but project_dir) */
	const char *project_dir;
	char program[512];     /* HYPERTEST_CORE_FUNCTION_PROGRAM */
	char plugin_path[512]; /* HYPERTEST_CORE_PLUGIN_PATH */
	char config_path[512]; /* HYPERTEST_CORE_CONFIG_PATH */
	char image_name[256];  /* HYPERTEST_CORE_IMAGE_NAME */
	char concurrency[24];  /* HYPERTEST_CORE_CONCURRENCY ("": an older core's answer) */
	char init_error[512];  /* HYPERTEST_CORE_FUNCTION_INIT_ERROR */
	/* set_error and log */
	int error_code;
	char error[16384];
	int errors; /* how many times set_error was called */
	char last_log[8192];
	/* check_provider_aws: every log line, '\n'-separated */
	char *logs;
	size_t logs_len;
	/* check_provider_local: its image_unpack */
	int unpacks;
	int unpack_fail;
	int real_unpack; /* the core's unpack instead of the fake */
	char unpack_layout[512], unpack_ref[256], unpack_dest[512];
};

struct hypertest_list {
	char *items[128]; /* strdup'ed contexts: fake_list_free */
	size_t n;
};

struct hypertest_layer {
	char *src[64], *dst[64]; /* strdup'ed: fake_layer_free */
	size_t n;
};

struct hypertest_result {
	int status, has_status, has_duration;
	int64_t duration;
	char *name, *file_path, *message, *stack; /* strdup'ed: fake_result_free */
};

struct hypertest_checks {
	int n;
	char name[16][64];
	int status[16];
	char msg[16][4096];
};

struct hypertest_params {
	int n;
	char key[16][64];
	char val[16][1024];
};

struct hypertest_buffer {
	char *data; /* NUL-terminated */
	size_t len;
};

struct hypertest_invocation {
	char test_id[64]; /* what HYPERTEST_UP_INVOCATION_TEST_ID answers */
	int done;
	int code;
	char *response; /* NUL-terminated copy */
	size_t len;
	char *message;
	double end; /* fake_now_s() when it was done */
};

struct hypertest_function {
	void *self; /* the provider instance (for ARTIFACTS_STORE) */
	const char *artifacts_dir;
	int calls;
	char payload[4096];
	int fail;
};

/* ---- the shared upcalls ---- */

/* What HYPERTEST_UP_REGISTER was told (reset by fake_load). */
struct fake_registry {
	int kind;
	char name[64];
	const hypertest_dispatch *ops;
	int registrations;
};
extern struct fake_registry fake_reg;

void fake_up_log(hypertest_core *core, int level, const char *message);
void fake_up_set_error(hypertest_core *core, int code, const char *message);
int fake_up_register(hypertest_core *core, int kind, const char *name, const char *description,
                     const hypertest_dispatch *ops);
int fake_up_list_add(hypertest_list *list, const char *context_json);
int fake_up_layer_add(hypertest_layer *layer, const char *source_path, const char *image_path);
void fake_up_result_set_status(hypertest_result *r, int status);
void fake_up_result_set_str(hypertest_result *r, int field, const char *value);
void fake_up_result_set_duration(hypertest_result *r, int64_t ms);
void fake_up_invoke_done(hypertest_invocation *inv, const char *response, size_t len,
                         int error_code, const char *error_message);
int fake_up_buffer_append(hypertest_buffer *buf, const void *data, size_t len);
int fake_up_param_set(hypertest_params *params, const char *key, const char *value);
void fake_up_doctor_check(hypertest_checks *checks, const char *check, int status,
                          const char *message);
const char *fake_up_core_str(hypertest_core *core, int what);
const char *fake_up_invocation_test_id(hypertest_invocation *inv);
hypertest_buffer *fake_up_buffer_new(hypertest_core *core);
const char *fake_up_buffer_data(hypertest_buffer *buf, size_t *len);
void fake_up_buffer_free(hypertest_buffer *buf);

/* The table of the shared upcalls above, where each entry of extra (ended
 * by {0, NULL}; may be NULL) replaces the one of the same id or is added.
 * The table is static: valid until the next call.  (It, the buffer
 * upcalls, set_error, core_str, fake_find_op and register without
 * fake_load's expectations use no ck_assert: local-helper, which is no
 * Check program, uses them.) */
const hypertest_dispatch *fake_upcalls(const hypertest_dispatch *extra);

/* ---- the module ---- */

/* dlopen path, check its descriptor (magic, ABI major), call its init with
 * upcalls and check that it registered one plugin, of kind (unless 0) and
 * named name (unless NULL).  Fails the test otherwise. */
void *fake_load(const char *path, hypertest_core *core, const hypertest_dispatch *upcalls,
                int kind, const char *name);

/* The registered plugin's operation id: NULL when it has none (fake_find_op)
 * or a failed test (fake_op, and OP(ID) with the operation's type). */
hypertest_fn fake_find_op(int id);
hypertest_fn fake_op(int id);
#define OP(ID) ((ID##_fn_check)fake_op(ID))

/* ---- helpers ---- */

void fake_list_free(hypertest_list *l);
void fake_layer_free(hypertest_layer *l);
void fake_result_free(hypertest_result *r);
double fake_now_s(void); /* CLOCK_MONOTONIC, in seconds */
void fake_rm_tree(const char *path);

#endif /* HT_TESTS_FAKE_CORE_H */
