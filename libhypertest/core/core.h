/*
 * core.h - the handle and the objects the core lends to plugins, shared by
 * the core's modules (core/: hypertest.c, events.c, plugins.c, host.c,
 * function.c) and by the commands (commands/: deploy.c, invoke.c, doctor.c,
 * manifest.c, results.c, history.c).
 */
#ifndef HT_CORE_H
#define HT_CORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <hypertest/hypertest.h>
#include <hypertest/plugin.h>

#include "config.h"
#include "util.h"

/* A layer being built (oci/layer.h); the core only carries the pointer. */
typedef struct ht_layer ht_layer;
struct hypertest_invocation;

/* ---- operations the core reaches through the handle ------------------------ */

/* What the upcalls need from the folders the core may not call (oci/,
 * commands/): building a layer, unpacking an image, completing an
 * invocation.  commands/ installs its table on the handle
 * (ht_command_ops_install) at the start of each command; on a handle where
 * no command ran (hypertest-function serving a function), h->ops is NULL
 * and those upcalls answer HYPERTEST_ERR_UNSUPPORTED. */
typedef struct ht_ops {
	int (*layer_add_path)(ht_layer *lb, const char *source_path, const char *image_path,
	                      ht_err *err);
	int (*layer_set)(ht_layer *lb, const char *key, const char *value, ht_err *err);
	int (*image_unpack_layout)(const char *dir, const char *ref, const char *dest, ht_err *err);
	const char *(*invocation_test_id)(struct hypertest_invocation *inv);
	void (*invocation_done)(struct hypertest_invocation *inv, const char *response, size_t len,
	                        int error_code, const char *error_message);
	void (*invocation_usage)(struct hypertest_invocation *inv, const char *quantity,
	                         double value);
} ht_ops;

/* ---- plugins ------------------------------------------------------------- */

enum ht_plugin_state { HT_PLUGIN_LOADED = 0, HT_PLUGIN_SHADOWED = 1, HT_PLUGIN_FAILED = 2 };

typedef struct ht_module ht_module;

typedef struct ht_plugin {
	int kind; /* HYPERTEST_KIND_*, 0 for a module that failed */
	int state;
	char *name;
	char *description;
	char *path;
	char *version;
	char *error;
	char abi[16];
	const hypertest_dispatch *ops;
	ht_module *module;
} ht_plugin;

typedef struct ht_plugin_registry {
	ht_module **modules;
	size_t nmodules;
	ht_plugin *plugins;
	size_t nplugins;
	char *search_path;
} ht_plugin_registry;

/* The handle a plugin instance gets as hypertest_core *. */
struct hypertest_core {
	hypertest *h;
	ht_plugin *plugin;   /* NULL while a module registers */
	ht_module *module;   /* set while a module registers */
	ht_plugin_registry *reg;    /* set while a module registers */
	int registered;
};

/* A created plugin: its ops, its self pointer and its core handle. */
typedef struct ht_instance {
	struct hypertest_core core;
	void *self;
} ht_instance;

/* ---- the handle ------------------------------------------------------------ */

struct hypertest {
	ht_err err;
	char *project_dir;
	unsigned flags;
	ht_config *cfg;
	hypertest_event_cb event_cb;
	void *event_ud;
	hypertest_log_cb log_cb;
	void *log_ud;
	int log_level;
	ht_plugin_registry reg;
	int scanned;
	char *scanned_extra; /* the configuration's plugin path at the last scan */
	char *function_program;
	char *state_dir;
	char *deploy_output; /* an OCI layout directory deploy also writes, or NULL */
	char *junit_output;  /* JUnit XML written after each run, or NULL */
	char *function_init_error; /* why the function side cannot run tests, or NULL */
	char concurrency_text[24]; /* HYPERTEST_CORE_CONCURRENCY's answer */
	char *function_modules;    /* HYPERTEST_CORE_FUNCTION_MODULES's answer */
	const ht_ops *ops; /* installed by commands/, NULL until a command runs */
	/* Function side, while the provider stores a test's artifacts: what it
	 * logs as a warning or an error (an artifact not stored) is collected
	 * here for the response's "warnings"; NULL otherwise. */
	json_t *collect_warnings;
	size_t collect_dropped; /* warnings beyond HT_WARNINGS_MAX, counted */
	json_t *invoke_opts; /* hypertest_set_invoke_option (commands/loop.c), or NULL */
	/* hypertest_cancel, from a signal handler or another thread; reset by
	 * the commands that honour it.  Lock-free atomics: async-signal-safe,
	 * and free of data races with the threads that read them. */
	atomic_int cancelled;
	/* a cancel also ends the plugins' blocking work (HYPERTEST_UP_CANCELLED
	 * answers it): set by deploy, provision and destroy while they run, by
	 * invoke while it prepares the run (not while it publishes) */
	atomic_int cancel_plugins;
};

/* hypertest_cancel stores into h->cancelled from a signal handler: only a
 * lock-free atomic may be (C11 7.14.1.1). */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "atomic_int is not always lock-free");

/* ---- objects lent to plugins ------------------------------------------------ */

struct hypertest_list {
	json_t *contexts; /* array */
	ht_err *err;
};

struct hypertest_layer {
	hypertest *h;
	ht_layer *layer;
	const char *project_dir;
	ht_err *err;
};

struct hypertest_result {
	int status; /* -1 until set */
	char *name, *file_path, *message, *stack_trace;
	int64_t duration; /* -1 until set */
};

struct hypertest_buffer {
	ht_buf buf;
};

typedef struct ht_param {
	char *key, *value;
} ht_param;

struct hypertest_params {
	ht_param *items;
	size_t n, cap;
	int unique_keys; /* the caller knows no key comes twice (a listing):
	                    PARAM_SET appends without looking for it */
};

struct hypertest_checks {
	hypertest *h;
	const char *plugin;
	int failed, warnings;
};

struct hypertest_function {
	hypertest *h;
	ht_instance *provider;
	ht_instance *runner;
};

typedef struct ht_run_state ht_run_state;

struct hypertest_invocation {
	hypertest *h;
	ht_run_state *run;
	size_t index;
	int in_flight;
};

/* ---- hypertest.c ----------------------------------------------------------- */

/* Record an error on the handle; returns code. */
int ht_fail(hypertest *h, int code, const char *fmt, ...) HT_PRINTF(3, 4);
/* Make sure a configuration is loaded (the project's file by default). */
int ht_require_config(hypertest *h);
/* Where JUnit XML goes: hypertest_set_junit_output's, else the "junit"
 * key's, else NULL. */
const char *ht_junit_output(hypertest *h);
/* The project's .hypertest directory (absolute). */
const char *ht_state_dir(hypertest *h);
const char *ht_function_program(hypertest *h);

/* ---- events.c ----------------------------------------------------------------- */

void ht_log(hypertest *h, int level, const char *fmt, ...) HT_PRINTF(3, 4);
/* Emit an event: pairs of (field, value) ended by 0; string fields take a
 * const char *, integer fields an int64_t. */
void ht_emit(hypertest *h, int type, ...);
const char *ht_event_key(int field);

/* ---- plugins.c -------------------------------------------------------------- */

int ht_plugins_scan(hypertest *h);
void ht_registry_free(ht_plugin_registry *reg);
/* Find a loaded plugin by kind and name; error lists what was found. */
int ht_plugin_find(hypertest *h, int kind, const char *name, ht_plugin **out);
/* The same without an error: NULL when there is none. */
ht_plugin *ht_plugin_lookup(hypertest *h, int kind, const char *name);
hypertest_fn ht_op(const ht_plugin *p, int id);
/* Close the modules of every plugin but keep[0..n) (NULLs allowed). */
const char *ht_function_modules(hypertest *h);
void ht_plugins_release_unused(ht_plugin_registry *reg, const ht_plugin *const *keep, size_t n);
/* Create an instance of the configured plugin of a section ("testRunner",
 * "cloudProvider"). */
int ht_instance_create(hypertest *h, int kind, ht_instance **out);
void ht_instance_destroy(ht_instance *inst);
/* Look up an operation of an instance; NULL when the plugin lacks it. */
#define HT_OP(inst, ID) ((ID##_fn_check)ht_op((inst)->core.plugin, ID))
/* Set a "plugin 'x': operation failed" error after an operation returned rc,
 * keeping the detail the plugin gave. */
int ht_plugin_error(hypertest *h, ht_instance *inst, int rc, const char *what);
/* Module loading, for the registry: registers through host.c. */
int ht_module_register(struct hypertest_core *core, int kind, const char *name,
                       const char *description, const hypertest_dispatch *ops);

/* ---- host.c ------------------------------------------------------------------ */

extern const hypertest_dispatch ht_upcalls[];
void ht_result_init(struct hypertest_result *r);
void ht_result_clear(struct hypertest_result *r);
void ht_params_clear(struct hypertest_params *p);
const char *ht_params_get(const struct hypertest_params *p, const char *key);

/* ---- manifest.c ---------------------------------------------------------------- */

typedef struct ht_manifest {
	char *image_digest;
	char *test_dir_hash;
	json_t *contexts; /* array of objects */
} ht_manifest;

char *ht_manifest_dump(const char *image_digest, const char *test_dir_hash, json_t *contexts);
/* The largest manifest read (64 MiB: about 300,000 tests). */
#define HT_MANIFEST_MAX ((size_t)64 << 20)
int ht_manifest_parse(const char *text, size_t len, const char *origin, ht_manifest *m,
                      ht_err *err);
void ht_manifest_clear(ht_manifest *m);

/* ---- results.c --------------------------------------------------------------- */

/* One attempt of a test (commands/loop.c), as the results file's "attempts"
 * list it. */
typedef struct ht_attempt {
	int status;
	int64_t start_ms, end_ms, duration;
	char *message, *stack_trace; /* a failed attempt's, else NULL */
} ht_attempt;

typedef struct ht_test_result {
	char test_id[37];
	int status;
	char *name, *file_path, *message, *stack_trace;
	char *warnings; /* the response's "warnings", one a line, or NULL */
	int64_t start_ms, end_ms, duration;
	json_t *context;
	char *context_text;           /* its compact text: at its first start (ht_payload) or at the end */
	char start_date[32], end_date[32];
	int64_t expected_ms;          /* its duration in the history before the run, or -1 */
	char history_key[65];         /* its key in the history ("": none) */
	/* retries (commands/loop.c) */
	int attempts, flaky;
	int64_t attempt_start_ms;
	ht_attempt *attempt_log; /* the attempts that ended, in order */
	int n_attempt_log;
	json_t *usage;       /* what the provider reported (cost.c), or NULL */
} ht_test_result;

/* Turn a function response into a result (validated: size, JSON, shape). */
void ht_result_from_response(ht_test_result *r, const char *response, size_t len,
                             size_t max_len);
void ht_result_fail(ht_test_result *r, const char *fmt, ...) HT_PRINTF(2, 3);
void ht_test_result_clear(ht_test_result *r);

struct hypertest_run {
	char *run_id;
	int64_t start_ms, end_ms;
	ht_test_result *tests;
	size_t n;
	size_t counts[3];
	long concurrency;
	char *results_json;
	char *results_path;
	size_t flaky;
	long stopped_after; /* > 0: stopped after that many failures */
	long retries;       /* the configuration's "retries" */
	json_t *cost;       /* the run's cost (cost.c), or NULL */
};

/* ---- results_file.c ------------------------------------------------------------- */

/* The results file of DESIGN.md ("Results file") of a finished run
 * (run->cost summed), written from the tests' records one entry at a time;
 * NULL when out of memory.  Fields added beside the TypeScript schema's
 * (never changing them): per test "startTime"/"endTime" (epoch ms of the
 * invocation), "expectedDuration" (from the history, when known),
 * "skipMessage", "artifacts" {"prefix","stdout","stderr"} (bucket keys),
 * "warnings", "flaky", "message" (a test not run), "attempts", "cost"; per
 * run "concurrency", "tests.flaky" (with retries), "stopped", "cost". */
char *ht_results_json(const hypertest_run *run);
/* Of that document: the run's members with "testResults" empty, and a
 * test's "attempts" array (NULL when out of memory). */
json_t *ht_results_doc(const hypertest_run *run);
json_t *ht_results_attempts(const ht_test_result *t);

/* ---- invoke.c -------------------------------------------------------------------- */

/* The payload of test t's next attempt, DESIGN.md ("Invoke payload") as
 * compact JSON: runId, testId, context, attempt after the first, then the
 * members of fields that are not among them; t->context_text is filled
 * on the way.  NULL when out of memory. */
char *ht_payload(const char *run_id, ht_test_result *t, json_t *fields);

/* ---- loop.c: retries, selection, stopping early --------------------------------- */

/* Record the attempt that just ended (t's status, message, times). */
void ht_attempt_record(ht_test_result *t, int64_t end_ms);
void ht_attempt_log_clear(ht_test_result *t);
/* Reset t for its next attempt, keeping name and file path. */
void ht_attempt_reset(ht_test_result *t);
/* Choose the manifest's contexts this invoke runs (h->invoke_opts): a new
 * array in *out (a reference to all of them without options); *why names
 * the selection for messages (NULL without one).  An empty *out with rc OK
 * means nothing to rerun. */
int ht_select_tests(hypertest *h, json_t *contexts, json_t **out, char **why);
long ht_invoke_max_failures(hypertest *h);

/* ---- cost.c: what the provider reported each invocation used ------------------ */

void ht_usage_add(ht_test_result *t, const char *quantity, double value);
/* Sum the tests' usage into run->cost (prices: the config's "cost" object
 * over the provider's). */
void ht_cost_total(hypertest *h, hypertest_run *run);

/* ---- history.c ------------------------------------------------------------------ */

typedef struct ht_history ht_history;
/* Never NULL but for lack of memory; err (may be NULL) says why the file
 * could not be used (too large, unreadable): the history then starts empty. */
ht_history *ht_history_load(const char *path, ht_err *err);
/* Known duration of a context, or -1. */
int64_t ht_history_get(const ht_history *hist, json_t *context);
void ht_history_set(ht_history *hist, json_t *context, int64_t ms);
/* The same by the context's key, made once (the SHA-256, in hex, of its
 * compact JSON with sorted keys); an empty key is none. */
int ht_history_key(json_t *context, char hex[65]);
int64_t ht_history_get_key(const ht_history *hist, const char *key);
void ht_history_set_key(ht_history *hist, const char *key, int64_t ms);
int ht_history_save(ht_history *hist, ht_err *err);
void ht_history_free(ht_history *hist);
/* Order in which tests start: never seen first (in manifest order), then by
 * known duration, longest first.  order receives n indexes. */
void ht_schedule_order(const int64_t *known, size_t n, size_t *order);

/* ---- function.c ------------------------------------------------------------------ */

/* The most warnings a function response carries (the rest are counted). */
#define HT_WARNINGS_MAX 100
/* A JSON string of s, with every byte of an invalid UTF-8 sequence
 * replaced by '?' (file names need not be UTF-8). */
json_t *ht_json_text(const char *s);
int ht_function_handle(struct hypertest_function *fn, const char *payload, size_t len,
                       struct hypertest_buffer *response);

#endif /* HT_CORE_H */
