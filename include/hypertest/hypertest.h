/*
 * hypertest/hypertest.h - the embedding API of libhypertest.
 *
 * A hypertest handle holds one project's configuration, its plugins and the
 * last error.  A handle is used by one thread at a time; separate handles
 * may be used from separate threads.  The library never prints and never
 * exits: everything reaches the caller through return codes, the handle's
 * error message, events and the log callback.
 *
 * See libhypertest(3).
 */
#ifndef HYPERTEST_HYPERTEST_H
#define HYPERTEST_HYPERTEST_H

#include <stddef.h>
#include <stdint.h>

#include <hypertest/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library these headers belong to. */
#define HYPERTEST_VERSION_MAJOR 0
#define HYPERTEST_VERSION_MINOR 1
#define HYPERTEST_VERSION_PATCH 0
#define HYPERTEST_VERSION_NUMBER \
	((HYPERTEST_VERSION_MAJOR << 16) | (HYPERTEST_VERSION_MINOR << 8) | HYPERTEST_VERSION_PATCH)

typedef struct hypertest hypertest;             /* one project */
typedef struct hypertest_run hypertest_run;     /* the outcome of one invoke */
typedef struct hypertest_event hypertest_event; /* valid during a callback only */

/* ---- versions and errors ------------------------------------------------ */

HYPERTEST_EXPORT const char *hypertest_version(void);
HYPERTEST_EXPORT unsigned hypertest_version_number(void);
/* "major.minor" of the plugin ABI this library implements. */
HYPERTEST_EXPORT const char *hypertest_plugin_abi_version(void);
/* Text of an error code; never NULL. */
HYPERTEST_EXPORT const char *hypertest_strerror(int code);

/* ---- handles ------------------------------------------------------------- */

HYPERTEST_EXPORT hypertest *hypertest_new(void);
HYPERTEST_EXPORT void hypertest_free(hypertest *h);
/* Detail of the last error on this handle ("" if none): which file, line and
 * column, which key, which plugin, which HTTP status and AWS error code. */
HYPERTEST_EXPORT const char *hypertest_errmsg(const hypertest *h);
/* Code of the last error on this handle. */
HYPERTEST_EXPORT int hypertest_errcode(const hypertest *h);

/* The project directory (default: the current directory).  Relative paths of
 * the configuration are taken from it. */
HYPERTEST_EXPORT int hypertest_set_project_dir(hypertest *h, const char *dir);
HYPERTEST_EXPORT const char *hypertest_project_dir(const hypertest *h);

/* Behaviour flags. */
enum hypertest_flag {
	HYPERTEST_FLAG_DRY_RUN = 1u << 0,  /* call no mutating provider operation */
	HYPERTEST_FLAG_NO_REPORT = 1u << 1 /* invoke builds no HTML report (the
	                                      "report" key false does the same) */
};
HYPERTEST_EXPORT int hypertest_set_flags(hypertest *h, unsigned flags);

/* ---- configuration --------------------------------------------------------- */

/* Read a configuration file; NULL means hypertest.config.json in the project
 * directory.  Errors name the file, line, column and key. */
HYPERTEST_EXPORT int hypertest_config_load_file(hypertest *h, const char *path);
/* Read a configuration from JSON text; origin names it in error messages. */
HYPERTEST_EXPORT int hypertest_config_load_string(hypertest *h, const char *json,
                                                  const char *origin);
/* Override one key after loading.  key is a dotted path ("concurrency",
 * "cloudProvider.options.region"); json_value is JSON text ("30", "\"x\"").
 * Overrides are kept across later loads. */
HYPERTEST_EXPORT int hypertest_config_set(hypertest *h, const char *key, const char *json_value);
/* The effective value of a key, as JSON text with environment references
 * expanded, or NULL.  Free with hypertest_string_free(). */
HYPERTEST_EXPORT char *hypertest_config_get(hypertest *h, const char *key);
HYPERTEST_EXPORT void hypertest_string_free(char *s);

/* ---- events and logs ------------------------------------------------------- */

enum hypertest_event_type {
	HYPERTEST_EVENT_LOG = 1,          /* LEVEL, MESSAGE */
	HYPERTEST_EVENT_RUN_START = 2,    /* RUN_ID, TOTAL, CONCURRENCY */
	HYPERTEST_EVENT_TEST_START = 3,   /* RUN_ID, TEST_ID, INDEX, IN_FLIGHT, NAME (from
	                                     the test's context, when it has one) */
	HYPERTEST_EVENT_TEST_END = 4,     /* TEST_ID, INDEX, STATUS, NAME, FILE_PATH, WARNINGS,
	                                     DURATION, MESSAGE, DONE, TOTAL,
	                                     STACK_TRACE (a failure's, when it has one) */
	HYPERTEST_EVENT_RUN_END = 5,      /* RUN_ID, TOTAL, PASSED, FAILED, SKIPPED,
	                                     DURATION, PATH, URL */
	HYPERTEST_EVENT_STEP_START = 6,   /* STEP */
	HYPERTEST_EVENT_STEP_END = 7,     /* STEP, DURATION, MESSAGE */
	HYPERTEST_EVENT_STEP_ERROR = 8,   /* STEP, DURATION, MESSAGE, CODE */
	HYPERTEST_EVENT_DOCTOR_CHECK = 9, /* CHECK, STATUS, MESSAGE, PLUGIN */
	HYPERTEST_EVENT_REPORT = 10       /* RUN_ID, STEP ("html" or "junit"), PATH (the
	                                     local file), URL (the report in the bucket),
	                                     ARTIFACTS (where the run's artifacts are) */
};

enum hypertest_event_field {
	HYPERTEST_FIELD_LEVEL = 1,       /* int: enum hypertest_log_level */
	HYPERTEST_FIELD_MESSAGE = 2,     /* string */
	HYPERTEST_FIELD_RUN_ID = 3,      /* string */
	HYPERTEST_FIELD_TEST_ID = 4,     /* string */
	HYPERTEST_FIELD_TOTAL = 5,       /* int */
	HYPERTEST_FIELD_CONCURRENCY = 6, /* int */
	HYPERTEST_FIELD_INDEX = 7,       /* int: position of the test in the manifest */
	HYPERTEST_FIELD_STATUS = 8,      /* int: enum hypertest_status, or for a doctor
	                                    check enum hypertest_check_status */
	HYPERTEST_FIELD_NAME = 9,        /* string */
	HYPERTEST_FIELD_FILE_PATH = 10,  /* string */
	HYPERTEST_FIELD_DURATION = 11,   /* int: milliseconds */
	HYPERTEST_FIELD_PASSED = 12,     /* int */
	HYPERTEST_FIELD_FAILED = 13,     /* int */
	HYPERTEST_FIELD_SKIPPED = 14,    /* int */
	HYPERTEST_FIELD_PATH = 15,       /* string: local results file ("" if none) */
	HYPERTEST_FIELD_STEP = 16,       /* string: pull, build, push, manifest, update */
	HYPERTEST_FIELD_CODE = 17,       /* int: error code */
	HYPERTEST_FIELD_CHECK = 18,      /* string: name of a doctor check */
	HYPERTEST_FIELD_PLUGIN = 19,     /* string */
	HYPERTEST_FIELD_DONE = 20,       /* int: tests finished so far */
	HYPERTEST_FIELD_IN_FLIGHT = 21,  /* int: invocations in flight */
	HYPERTEST_FIELD_URL = 22,        /* string: where the provider stored the results */
	HYPERTEST_FIELD_ARTIFACTS = 23,  /* string: where the run's artifacts are */
	HYPERTEST_FIELD_STACK_TRACE = 24, /* string */
	HYPERTEST_FIELD_WARNINGS = 25    /* string: what the function could not do for the
	                                    test (artifacts not stored), one a line; absent
	                                    when nothing went wrong */
};

typedef void (*hypertest_event_cb)(const hypertest_event *ev, void *userdata);
typedef void (*hypertest_log_cb)(int level, const char *message, void *userdata);

HYPERTEST_EXPORT int hypertest_set_event_callback(hypertest *h, hypertest_event_cb cb,
                                                  void *userdata);
/* Log lines at or above max_level (HYPERTEST_LOG_INFO by default) go to the
 * log callback and as HYPERTEST_EVENT_LOG events. */
HYPERTEST_EXPORT int hypertest_set_log_callback(hypertest *h, hypertest_log_cb cb,
                                                void *userdata);
HYPERTEST_EXPORT int hypertest_set_log_level(hypertest *h, int max_level);

HYPERTEST_EXPORT int hypertest_event_type(const hypertest_event *ev);
/* A string field, or NULL when the event has none. */
HYPERTEST_EXPORT const char *hypertest_event_str(const hypertest_event *ev, int field);
/* An integer field, or -1 when the event has none. */
HYPERTEST_EXPORT int64_t hypertest_event_int(const hypertest_event *ev, int field);
/* The whole event as one line of JSON. */
HYPERTEST_EXPORT const char *hypertest_event_json(const hypertest_event *ev);

/* ---- commands ------------------------------------------------------------- */

/* Also write the image deploy builds to an OCI image layout, target
 * "oci:DIRECTORY" (relative to the project directory), to inspect it or load
 * it elsewhere; written in a dry run too.  NULL: no copy (the default). */
HYPERTEST_EXPORT int hypertest_set_deploy_output(hypertest *h, const char *target);
/* Options of the next invokes on this handle: which tests run and when the
 * run stops early.  value NULL clears the option.  HYPERTEST_INVOKE_ONLY
 * adds one test id or name each call (a test matches any of them);
 * HYPERTEST_INVOKE_GREP and HYPERTEST_INVOKE_GREP_INVERT take a POSIX
 * extended regular expression matched against test names (an invalid one
 * is HYPERTEST_ERR_INVALID); HYPERTEST_INVOKE_RERUN a results file whose
 * failed or not-run tests run again; HYPERTEST_INVOKE_LAST_FAILED ("1")
 * does the same with the project's own results file;
 * HYPERTEST_INVOKE_MAX_FAILURES a positive whole number of failed tests
 * after which no more start.  Selection never changes the manifest. */
enum hypertest_invoke_option {
	HYPERTEST_INVOKE_ONLY = 1,
	HYPERTEST_INVOKE_GREP = 2,
	HYPERTEST_INVOKE_GREP_INVERT = 3,
	HYPERTEST_INVOKE_RERUN = 4,
	HYPERTEST_INVOKE_LAST_FAILED = 5,
	HYPERTEST_INVOKE_MAX_FAILURES = 6
};
HYPERTEST_EXPORT int hypertest_set_invoke_option(hypertest *h, int option, const char *value);
/* Build and push the image, store the manifest, update the function. */
HYPERTEST_EXPORT int hypertest_deploy(hypertest *h);
/* Run every test of the manifest.  Returns HYPERTEST_OK when the run took
 * place (whatever the tests' outcome: read the run) and sets *run; on an
 * error before any test ran, *run is NULL.  Results already collected are
 * always kept: if the results file cannot be written, an error is logged,
 * hypertest_run_results_path() is NULL and hypertest_run_results_json()
 * still holds them. */
HYPERTEST_EXPORT int hypertest_invoke(hypertest *h, hypertest_run **run);
/* Run the checks of the core and of both plugins; HYPERTEST_ERR_CHECK if one
 * failed. */
HYPERTEST_EXPORT int hypertest_doctor(hypertest *h);
/* Create the cloud resources the configured provider needs and correct
 * those in the wrong shape; a second call changes nothing.  With
 * HYPERTEST_FLAG_DRY_RUN only the plan is made and nothing is changed.
 * *result (when result is not NULL) receives a JSON array, one object per
 * resource: {"type", "name", "action", "reason"}, "action" one of "exists",
 * "create", "update"; free it with hypertest_string_free().
 * HYPERTEST_ERR_UNSUPPORTED for a provider without provisioning. */
HYPERTEST_EXPORT int hypertest_provision(hypertest *h, char **result);
/* Remove the resources provisioning created (only those carrying the
 * project's tag).  flags: enum hypertest_destroy_flag; with
 * HYPERTEST_DESTROY_LIST nothing is removed.  *result as for
 * hypertest_provision(), "action" one of "delete" and "keep". */
HYPERTEST_EXPORT int hypertest_destroy(hypertest *h, unsigned flags, char **result);
/* The resources hypertest_provision() makes, as a template for another
 * tool: format "cloudformation" (a JSON CloudFormation template) for the
 * aws provider.  Made from the configuration alone: nothing is created and
 * no cloud API is called.  *text receives it; free it with
 * hypertest_string_free().  HYPERTEST_ERR_UNSUPPORTED for a provider
 * without templates or a format it does not write.  Since 0.1.0. */
HYPERTEST_EXPORT int hypertest_provision_emit(hypertest *h, const char *format, char **text);
/* Function side: serve invocations through the provider until it stops. */
HYPERTEST_EXPORT int hypertest_function_serve(hypertest *h);
/* Also write JUnit XML of each run to path (relative to the project
 * directory), at the end of invoke and in hypertest_report().  NULL: the
 * configuration's "junit" key, or none (the default). */
HYPERTEST_EXPORT int hypertest_set_junit_output(hypertest *h, const char *path);
/* Build the summary report of run_id (NULL: the run of the local results
 * file) from the bucket, through the provider: {runId}/report/index.html
 * in the bucket and .hypertest/reports/{runId}/index.html locally, and
 * JUnit XML when set.  Each file written is announced with a
 * HYPERTEST_EVENT_REPORT event.  invoke does the same at the end of a run
 * unless HYPERTEST_FLAG_NO_REPORT or the "report" key false. */
HYPERTEST_EXPORT int hypertest_report(hypertest *h, const char *run_id);
/* Ask a running deploy, invoke, provision or destroy on this handle to stop
 * (async-signal-safe, and safe from another thread: it stores into a
 * lock-free atomic).  An invoke's invocations in flight are cancelled and
 * the results gathered so far are written; before its run starts, and in
 * the other commands, the provider's call under way ends and the command
 * fails with HYPERTEST_ERR_CANCELLED.  A cancel made before a command
 * starts is forgotten. */
HYPERTEST_EXPORT void hypertest_cancel(hypertest *h);

/* ---- runs ------------------------------------------------------------------- */

enum hypertest_test_field {
	HYPERTEST_TEST_ID = 1,
	HYPERTEST_TEST_NAME = 2,
	HYPERTEST_TEST_FILE_PATH = 3,
	HYPERTEST_TEST_MESSAGE = 4,
	HYPERTEST_TEST_STACK_TRACE = 5,
	HYPERTEST_TEST_START_DATE = 6,
	HYPERTEST_TEST_END_DATE = 7,
	HYPERTEST_TEST_CONTEXT = 8 /* JSON text */
};

HYPERTEST_EXPORT const char *hypertest_run_id(const hypertest_run *run);
HYPERTEST_EXPORT size_t hypertest_run_total(const hypertest_run *run);
/* Number of tests with the given enum hypertest_status. */
HYPERTEST_EXPORT size_t hypertest_run_count(const hypertest_run *run, int status);
HYPERTEST_EXPORT int64_t hypertest_run_duration(const hypertest_run *run);
/* Per test, i < hypertest_run_total(), in manifest order. */
HYPERTEST_EXPORT int hypertest_run_test_status(const hypertest_run *run, size_t i);
HYPERTEST_EXPORT int64_t hypertest_run_test_duration(const hypertest_run *run, size_t i);
/* NULL when the test has no such field (a passing test has no message). */
HYPERTEST_EXPORT const char *hypertest_run_test_str(const hypertest_run *run, size_t i,
                                                   int field);
/* Tests that failed and then passed on a retry (counted as passed). */
HYPERTEST_EXPORT size_t hypertest_run_flaky(const hypertest_run *run);
/* How many times test i was invoked (0: not run; more than 1: retried). */
HYPERTEST_EXPORT int hypertest_run_test_attempts(const hypertest_run *run, size_t i);
/* The results file as written (JSON text). */
HYPERTEST_EXPORT const char *hypertest_run_results_json(const hypertest_run *run);
/* Where it was written locally, or NULL if it could not be. */
HYPERTEST_EXPORT const char *hypertest_run_results_path(const hypertest_run *run);
HYPERTEST_EXPORT void hypertest_run_free(hypertest_run *run);

/* ---- plugins ---------------------------------------------------------------- */

enum hypertest_plugin_field {
	HYPERTEST_PLUGIN_NAME = 1,        /* "command" */
	HYPERTEST_PLUGIN_KIND = 2,        /* "runner" or "provider" ("" for a failed module) */
	HYPERTEST_PLUGIN_PATH = 3,        /* module file */
	HYPERTEST_PLUGIN_ABI = 4,         /* "1.0" */
	HYPERTEST_PLUGIN_STATE = 5,       /* "loaded", "shadowed" or "failed" */
	HYPERTEST_PLUGIN_ERROR = 6,       /* why it failed, or "" */
	HYPERTEST_PLUGIN_VERSION = 7,     /* the module's own version */
	HYPERTEST_PLUGIN_DESCRIPTION = 8
};

/* Search the plugin path (HYPERTEST_PLUGIN_PATH, the configuration's
 * pluginPath, then the installed plugin directory) and load every module.
 * Called by deploy, invoke and doctor when needed. */
HYPERTEST_EXPORT int hypertest_plugins_scan(hypertest *h);
/* Entries found by the last scan: one per registered plugin, one per failed
 * module. */
HYPERTEST_EXPORT size_t hypertest_plugin_count(const hypertest *h);
HYPERTEST_EXPORT const char *hypertest_plugin_str(const hypertest *h, size_t i, int field);
/* The directories searched, in order, separated by ':'. */
HYPERTEST_EXPORT const char *hypertest_plugin_search_path(const hypertest *h);

#ifdef __cplusplus
}
#endif

#endif /* HYPERTEST_HYPERTEST_H */
