/*
 * hypertest/plugin.h - the plugin ABI of hypertest.
 *
 * A plugin module is a shared object that exports two symbols:
 *
 *   hypertest_plugin_info   a const hypertest_plugin_descriptor: magic and
 *                           the ABI version it was built for.  The core
 *                           reads it before it calls any code of the module
 *                           and refuses a module of another major version.
 *   hypertest_plugin_init   called once after the check, with the table of
 *                           functions the core offers (upcalls).  It
 *                           registers one or more plugins, each with its
 *                           own table of operations.
 *
 * HYPERTEST_PLUGIN_DEFINE() writes both.  Tables are arrays of
 * { id, function } ending with { 0, NULL }.  Ids are permanent: never
 * renumbered, never reused.  A receiver ignores ids it does not know, so a
 * new operation or upcall is just a new id: a plugin built for ABI 1.0
 * loads in every core 1.x (ABI history, ABI.md has it in full: 1.0 upcalls
 * 1-17 and operations 1-51; 1.1 added upcalls 18-20; 1.2 added
 * HYPERTEST_CORE_FUNCTION_INIT_ERROR, a key of HYPERTEST_UP_CORE_STR; 1.3
 * added operation 52, HYPERTEST_PROVIDER_OBJECT_LIST, upcall 21,
 * HYPERTEST_UP_INVOCATION_USAGE, operations 53-56, provisioning, upcall
 * 22, HYPERTEST_UP_CANCELLED, operation 57, HYPERTEST_PROVIDER_INVOKE_END,
 * and the keys 11-13 of HYPERTEST_UP_CORE_STR),
 * and
 * a core copes with a plugin that lacks an operation added later (it reports
 * HYPERTEST_ERR_UNSUPPORTED where the operation is required).
 *
 * A plugin includes this header only and links nothing of libhypertest.
 * Its configuration reaches it as JSON text.  See hypertest-plugin(7).
 */
#ifndef HYPERTEST_PLUGIN_H
#define HYPERTEST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hypertest/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HYPERTEST_PLUGIN_ABI_MAJOR 1
#define HYPERTEST_PLUGIN_ABI_MINOR 3
#define HYPERTEST_PLUGIN_MAGIC 0x48545031u /* "HTP1" */

/* ---- descriptor ------------------------------------------------------------ */

typedef struct hypertest_plugin_descriptor {
	uint32_t magic;     /* HYPERTEST_PLUGIN_MAGIC */
	uint16_t abi_major; /* HYPERTEST_PLUGIN_ABI_MAJOR when built */
	uint16_t abi_minor; /* HYPERTEST_PLUGIN_ABI_MINOR when built */
	const char *module; /* module name, for messages */
	const char *version;
	const char *description;
	const char *license;
	void *reserved[8]; /* zero */
} hypertest_plugin_descriptor;

/* ---- tables --------------------------------------------------------------- */

typedef void (*hypertest_fn)(void);
typedef struct hypertest_dispatch {
	int id;          /* 0 ends the table */
	hypertest_fn fn;
} hypertest_dispatch;

/* Opaque handles the core lends to plugins. */
typedef struct hypertest_core hypertest_core;             /* the core, for one plugin instance */
typedef struct hypertest_list hypertest_list;             /* receives test contexts */
typedef struct hypertest_layer hypertest_layer;           /* receives image content */
typedef struct hypertest_result hypertest_result;         /* receives one test's result */
typedef struct hypertest_invocation hypertest_invocation; /* one invocation in flight */
typedef struct hypertest_buffer hypertest_buffer;         /* receives bytes */
typedef struct hypertest_params hypertest_params;         /* receives key/value strings */
typedef struct hypertest_checks hypertest_checks;         /* receives doctor checks */
typedef struct hypertest_function hypertest_function;     /* function side: runs one payload */

/* Plugin kinds. */
enum hypertest_plugin_kind {
	HYPERTEST_KIND_RUNNER = 1,
	HYPERTEST_KIND_PROVIDER = 2
};

/* Fields of a test result (HYPERTEST_UP_RESULT_SET_STR). */
enum hypertest_result_field {
	HYPERTEST_RESULT_NAME = 1,
	HYPERTEST_RESULT_FILE_PATH = 2,
	HYPERTEST_RESULT_MESSAGE = 3,
	HYPERTEST_RESULT_STACK_TRACE = 4
};

/* What HYPERTEST_UP_CORE_STR can tell. */
enum hypertest_core_str {
	HYPERTEST_CORE_PROJECT_DIR = 1,      /* absolute project directory */
	HYPERTEST_CORE_STATE_DIR = 2,        /* the project's .hypertest folder */
	HYPERTEST_CORE_FUNCTION_PROGRAM = 3, /* the function runtime program */
	HYPERTEST_CORE_PLUGIN_PATH = 4,      /* directories searched, ':'-separated */
	HYPERTEST_CORE_VERSION = 5,          /* hypertest version */
	HYPERTEST_CORE_CONFIG_PATH = 6,      /* the configuration file, or "" */
	HYPERTEST_CORE_IMAGE_NAME = 7,       /* the configuration's imageName */
	HYPERTEST_CORE_RUNNER_NAME = 8,      /* name of the configured runner plugin */
	HYPERTEST_CORE_DRY_RUN = 9,          /* "1" in dry-run mode, else "0" */
	/* since ABI 1.2: on the function side, why the function cannot run
	 * tests ("" when it can), e.g. the runner module could not be loaded;
	 * a provider's SERVE reports it as its platform's initialisation error
	 * (AWS Lambda: /runtime/init/error) or answers every invocation failed */
	HYPERTEST_CORE_FUNCTION_INIT_ERROR = 10,
	/* since ABI 1.3: the configuration's concurrency (decimal) and platform
	 * ("" when it names none), whatever the configuration was read from (a
	 * provider need not read the file again, which may not be JSON) */
	HYPERTEST_CORE_CONCURRENCY = 11,
	HYPERTEST_CORE_PLATFORM = 12,
	/* since ABI 1.3: the module files of the configured provider and
	 * runner plugins, ':'-separated, the provider's first (one file when
	 * both come from the same module; "" unless both are loaded).  A
	 * provider that starts the function program on this machine passes it
	 * as HYPERTEST_PLUGIN_MODULES, so that the function loads those
	 * modules alone rather than every module of the plugin path */
	HYPERTEST_CORE_FUNCTION_MODULES = 13
};

/* ---- upcalls: what the core offers --------------------------------------- */

#define HYPERTEST_UP_LOG 1
typedef void (*hypertest_UP_LOG_fn)(hypertest_core *core, int level, const char *message);
/* The detail of the error code the current operation is about to return. */
#define HYPERTEST_UP_SET_ERROR 2
typedef void (*hypertest_UP_SET_ERROR_fn)(hypertest_core *core, int code, const char *message);
/* From hypertest_plugin_init only: register a plugin of this module.  The
 * ops table must stay valid while the module is loaded (make it static). */
#define HYPERTEST_UP_REGISTER 3
typedef int (*hypertest_UP_REGISTER_fn)(hypertest_core *core, int kind, const char *name,
                                        const char *description,
                                        const hypertest_dispatch *ops);
#define HYPERTEST_UP_LIST_ADD 4
typedef int (*hypertest_UP_LIST_ADD_fn)(hypertest_list *list, const char *context_json);
/* Add a file or a directory (recursively) at path image_path of the layer;
 * a relative image_path is taken from the function's working directory. */
#define HYPERTEST_UP_LAYER_ADD 5
typedef int (*hypertest_UP_LAYER_ADD_fn)(hypertest_layer *layer, const char *source_path,
                                         const char *image_path);
/* Image settings: "env" (NAME=VALUE, may repeat), "workdir", "label" (KEY=VALUE). */
#define HYPERTEST_UP_LAYER_SET 6
typedef int (*hypertest_UP_LAYER_SET_fn)(hypertest_layer *layer, const char *key,
                                         const char *value);
#define HYPERTEST_UP_RESULT_SET_STATUS 7
typedef void (*hypertest_UP_RESULT_SET_STATUS_fn)(hypertest_result *result, int status);
#define HYPERTEST_UP_RESULT_SET_STR 8
typedef void (*hypertest_UP_RESULT_SET_STR_fn)(hypertest_result *result, int field,
                                               const char *value);
#define HYPERTEST_UP_RESULT_SET_DURATION 9
typedef void (*hypertest_UP_RESULT_SET_DURATION_fn)(hypertest_result *result, int64_t ms);
/* Complete an invocation.  Call it from inside PROVIDER_INVOKE_WAIT (on the
 * core's thread), exactly once per started invocation.  With error_code 0,
 * response is the function's response; otherwise the test fails with
 * error_message.  inv is invalid afterwards. */
#define HYPERTEST_UP_INVOKE_DONE 10
typedef void (*hypertest_UP_INVOKE_DONE_fn)(hypertest_invocation *inv, const char *response,
                                            size_t len, int error_code,
                                            const char *error_message);
#define HYPERTEST_UP_BUFFER_APPEND 11
typedef int (*hypertest_UP_BUFFER_APPEND_fn)(hypertest_buffer *buf, const void *data,
                                             size_t len);
#define HYPERTEST_UP_PARAM_SET 12
typedef int (*hypertest_UP_PARAM_SET_fn)(hypertest_params *params, const char *key,
                                         const char *value);
#define HYPERTEST_UP_DOCTOR_CHECK 13
typedef void (*hypertest_UP_DOCTOR_CHECK_fn)(hypertest_checks *checks, const char *check,
                                             int status, const char *message);
/* Function side: run one payload with the runner; the response (always a
 * valid function response, "failed" if the runner crashed or hung) is
 * appended to response.  Artifacts are stored through
 * HYPERTEST_PROVIDER_ARTIFACTS_STORE before it returns. */
#define HYPERTEST_UP_FUNCTION_HANDLE 14
typedef int (*hypertest_UP_FUNCTION_HANDLE_fn)(hypertest_function *fn, const char *payload,
                                               size_t len, hypertest_buffer *response);
#define HYPERTEST_UP_CORE_STR 15
typedef const char *(*hypertest_UP_CORE_STR_fn)(hypertest_core *core, int what);
/* The test id of an invocation (for the provider's own messages). */
#define HYPERTEST_UP_INVOCATION_TEST_ID 16
typedef const char *(*hypertest_UP_INVOCATION_TEST_ID_fn)(hypertest_invocation *inv);
/* Unpack the image tagged ref of the OCI image layout at layout_dir into
 * dest_dir (created; must be empty or missing). */
#define HYPERTEST_UP_IMAGE_UNPACK 17
typedef int (*hypertest_UP_IMAGE_UNPACK_fn)(hypertest_core *core, const char *layout_dir,
                                            const char *ref, const char *dest_dir);
/* Buffers a plugin owns (for PROVIDER_SERVE's responses, for instance).
 * Since ABI 1.1. */
#define HYPERTEST_UP_BUFFER_NEW 18
typedef hypertest_buffer *(*hypertest_UP_BUFFER_NEW_fn)(hypertest_core *core);
/* The bytes appended so far (NUL-terminated; *len may be NULL). */
#define HYPERTEST_UP_BUFFER_DATA 19
typedef const char *(*hypertest_UP_BUFFER_DATA_fn)(hypertest_buffer *buf, size_t *len);
#define HYPERTEST_UP_BUFFER_FREE 20
typedef void (*hypertest_UP_BUFFER_FREE_fn)(hypertest_buffer *buf);
/* What an invocation used, for the run's cost: call it before
 * HYPERTEST_UP_INVOKE_DONE, once per quantity it knows.  Quantities:
 * "billedMs" (the billed duration), "memoryMB" (the function's memory
 * size), "pricePerGBSecond" and "pricePerRequest" (the provider's list
 * prices, in dollars), "cpuMs" (CPU time of the function's processes) and
 * "maxRssKB" (their peak resident memory).  Unknown quantities are
 * ignored.  Since ABI 1.3; a core without it leaves the member NULL. */
#define HYPERTEST_UP_INVOCATION_USAGE 21
typedef void (*hypertest_UP_INVOCATION_USAGE_fn)(hypertest_invocation *inv,
                                                 const char *quantity, double value);
/* Nonzero once the command under way was asked to stop (hypertest_cancel(),
 * the first SIGINT or SIGTERM of the hypertest program) and the plugin's
 * blocking work is to be cut short: a plugin that waits or retries polls it
 * (a few times a second) and then fails with HYPERTEST_ERR_CANCELLED and a
 * message saying what it was doing ("cancelled while ...").  It answers for
 * hypertest deploy, provision and destroy, and while invoke prepares its
 * run (manifest, function digest); once the run has started, 0 (invoke
 * stops its invocations through HYPERTEST_PROVIDER_INVOKE_CANCEL and still
 * writes the results).  Cheap and safe from any thread (an atomic the
 * signal handler sets).  Since ABI 1.3; a core without it leaves the
 * member NULL: never cancelled. */
#define HYPERTEST_UP_CANCELLED 22
typedef int (*hypertest_UP_CANCELLED_fn)(hypertest_core *core);
/* next upcall id: 23 */

/* ---- operations: what a plugin offers -------------------------------------- */

/* Both kinds.  options_json is the plugin's "options" object (environment
 * references expanded); validate it and report errors naming the key. */
#define HYPERTEST_OP_CREATE 1
typedef int (*hypertest_OP_CREATE_fn)(hypertest_core *core, const char *options_json,
                                      void **self);
#define HYPERTEST_OP_DESTROY 2
typedef void (*hypertest_OP_DESTROY_fn)(void *self);
#define HYPERTEST_OP_DOCTOR 3
typedef int (*hypertest_OP_DOCTOR_fn)(void *self, hypertest_checks *checks);

/* Runners. */
#define HYPERTEST_RUNNER_LIST_TESTS 20
typedef int (*hypertest_RUNNER_LIST_TESTS_fn)(void *self, hypertest_list *list);
/* The test directory whose hash detects drift (relative to the project). */
#define HYPERTEST_RUNNER_TEST_DIR 21
typedef const char *(*hypertest_RUNNER_TEST_DIR_fn)(void *self);
#define HYPERTEST_RUNNER_IMAGE_CONTENT 22
typedef int (*hypertest_RUNNER_IMAGE_CONTENT_fn)(void *self, hypertest_layer *layer);
/* Function side: run the one test of context_json, with artifacts_dir
 * (existing, empty) for its artifacts; report through result.  Return 0
 * when a result was set (passed, failed or skipped alike). */
#define HYPERTEST_RUNNER_RUN_TEST 23
typedef int (*hypertest_RUNNER_RUN_TEST_fn)(void *self, const char *context_json,
                                            const char *artifacts_dir,
                                            hypertest_result *result);

/* Providers. */
/* Where deploy pulls the base image from and pushes the built image to.
 * Keys: "layout" (an OCI image layout directory) or "registry",
 * "repository", "username", "password", "token"; "tag" (the reference the
 * image is stored under, default "latest"); the base image as "baseImage"
 * (a reference) or "baseLayout" (an OCI layout directory) with "baseRef"
 * (its tag there), "baseUsername", "basePassword"; "platform" (default
 * linux/amd64). */
#define HYPERTEST_PROVIDER_IMAGE_TARGET 40
typedef int (*hypertest_PROVIDER_IMAGE_TARGET_fn)(void *self, hypertest_params *target);
/* Bucket objects: key is a path below the bucket's root. */
#define HYPERTEST_PROVIDER_OBJECT_PUT 41
typedef int (*hypertest_PROVIDER_OBJECT_PUT_fn)(void *self, const char *key, const void *data,
                                                size_t len, const char *content_type);
/* HYPERTEST_ERR_NOT_FOUND when there is no such object. */
#define HYPERTEST_PROVIDER_OBJECT_GET 42
typedef int (*hypertest_PROVIDER_OBJECT_GET_fn)(void *self, const char *key,
                                                hypertest_buffer *out);
/* Point the function at the image and wait until the update is live. */
#define HYPERTEST_PROVIDER_FUNCTION_UPDATE 43
typedef int (*hypertest_PROVIDER_FUNCTION_UPDATE_fn)(void *self, const char *image_ref,
                                                     const char *image_digest);
/* The digest of the image the function runs now ("sha256:..."). */
#define HYPERTEST_PROVIDER_FUNCTION_DIGEST 44
typedef int (*hypertest_PROVIDER_FUNCTION_DIGEST_fn)(void *self, hypertest_buffer *digest);
/* Start one invocation; return at once.  Completion is reported later with
 * HYPERTEST_UP_INVOKE_DONE.  A non-zero return means it did not start (the
 * core fails that test with the error set). */
#define HYPERTEST_PROVIDER_INVOKE_START 45
typedef int (*hypertest_PROVIDER_INVOKE_START_fn)(void *self, hypertest_invocation *inv,
                                                  const char *payload, size_t len);
/* Wait up to timeout_ms (-1: until one completes) and report completions.
 * Returns how many completed, or a negated error code. */
#define HYPERTEST_PROVIDER_INVOKE_WAIT 46
typedef int (*hypertest_PROVIDER_INVOKE_WAIT_fn)(void *self, int timeout_ms);
/* Abandon every invocation in flight; each is completed with
 * HYPERTEST_ERR_CANCELLED by the next INVOKE_WAIT. */
#define HYPERTEST_PROVIDER_INVOKE_CANCEL 47
typedef void (*hypertest_PROVIDER_INVOKE_CANCEL_fn)(void *self);
/* Function side: receive payloads and answer each through fn. */
#define HYPERTEST_PROVIDER_SERVE 48
typedef int (*hypertest_PROVIDER_SERVE_fn)(void *self, hypertest_function *fn);
/* Function side: store a directory's files below prefix ("{runId}/{testId}").
 * dir is the function's own and is removed once this returns: the provider
 * may move its entries (or dir itself) instead of copying them. */
#define HYPERTEST_PROVIDER_ARTIFACTS_STORE 49
typedef int (*hypertest_PROVIDER_ARTIFACTS_STORE_fn)(void *self, const char *prefix,
                                                     const char *dir);
/* String fields added to every payload (the aws provider's "bucketName"). */
#define HYPERTEST_PROVIDER_PAYLOAD_FIELDS 50
typedef int (*hypertest_PROVIDER_PAYLOAD_FIELDS_fn)(void *self, hypertest_params *fields);
/* Where an object is, for people ("s3://bucket/key", a path). */
#define HYPERTEST_PROVIDER_OBJECT_URL 51
typedef int (*hypertest_PROVIDER_OBJECT_URL_fn)(void *self, const char *key,
                                                hypertest_buffer *url);
/* List the objects whose keys start with prefix ("{runId}/"), each as one
 * parameter: the key, and its size in bytes as decimal text.  Order is not
 * significant.  Since ABI 1.3; `hypertest report` needs it to find a run's
 * artifacts. */
#define HYPERTEST_PROVIDER_OBJECT_LIST 52
typedef int (*hypertest_PROVIDER_OBJECT_LIST_fn)(void *self, const char *prefix,
                                                 hypertest_params *objects);
/* Provisioning (since ABI 1.3): the cloud resources the provider needs.
 * Each appends to out a JSON array of one object per resource:
 *   {"type": "bucket", "name": "...", "action": "...", "reason": "..."}
 * with "type" the provider's word for it ("repository", "bucket", "role",
 * "function", "directory"), "action" one of "exists" (nothing to do),
 * "create", "update", "delete", "keep" (destroy leaves it) and "reason"
 * saying why, for people.  PROVISION_PLAN calls no mutating API. */
#define HYPERTEST_PROVIDER_PROVISION_PLAN 53
typedef int (*hypertest_PROVIDER_PROVISION_PLAN_fn)(void *self, hypertest_buffer *out);
/* Create what is missing and correct what exists in the wrong shape;
 * out lists what was done (the plan's actions, now carried out). */
#define HYPERTEST_PROVIDER_PROVISION_APPLY 54
typedef int (*hypertest_PROVIDER_PROVISION_APPLY_fn)(void *self, hypertest_buffer *out);
/* Remove what provisioning created (only what carries the project's tag).
 * flags: HYPERTEST_DESTROY_* below; with HYPERTEST_DESTROY_LIST nothing is
 * removed and out lists what would be ("delete" or "keep", with why). */
#define HYPERTEST_PROVIDER_RESOURCES_DESTROY 55
typedef int (*hypertest_PROVIDER_RESOURCES_DESTROY_fn)(void *self, unsigned flags,
                                                       hypertest_buffer *out);
/* The same resources as a template in format ("cloudformation"), appended
 * to out, made from the configuration alone (no cloud call), for teams
 * that keep their infrastructure in their own repositories.
 * HYPERTEST_ERR_UNSUPPORTED for a format the provider does not write.
 * Since ABI 1.3. */
#define HYPERTEST_PROVIDER_PROVISION_EMIT 56
typedef int (*hypertest_PROVIDER_PROVISION_EMIT_fn)(void *self, const char *format,
                                                    hypertest_buffer *out);
/* No HYPERTEST_PROVIDER_INVOKE_START follows in this run: invocations in
 * flight still complete through INVOKE_WAIT, and the provider may release
 * its connections as they become idle.  The core calls it at most once per
 * run, as soon as it knows no test starts again (every test started, no
 * retry waiting or possible, or the run was stopped), and at the latest
 * when the last invocation completed, before the results are published.
 * Optional; since ABI 1.3. */
#define HYPERTEST_PROVIDER_INVOKE_END 57
typedef void (*hypertest_PROVIDER_INVOKE_END_fn)(void *self);
/* next operation id: 58 */

/* A table entry whose function must have the operation's type:
 *   static const hypertest_dispatch ops[] = {
 *       HYPERTEST_OP(HYPERTEST_OP_CREATE, my_create), ..., HYPERTEST_OP_END };  */
#define HYPERTEST_OP(ID, fn) { ID, (hypertest_fn)(1 ? (fn) : (ID##_fn_check)0) }
#define HYPERTEST_OP_END { 0, (hypertest_fn)0 }
/* (ID##_fn_check resolves through these aliases) */
#define HYPERTEST_OP_CREATE_fn_check hypertest_OP_CREATE_fn
#define HYPERTEST_OP_DESTROY_fn_check hypertest_OP_DESTROY_fn
#define HYPERTEST_OP_DOCTOR_fn_check hypertest_OP_DOCTOR_fn
#define HYPERTEST_RUNNER_LIST_TESTS_fn_check hypertest_RUNNER_LIST_TESTS_fn
#define HYPERTEST_RUNNER_TEST_DIR_fn_check hypertest_RUNNER_TEST_DIR_fn
#define HYPERTEST_RUNNER_IMAGE_CONTENT_fn_check hypertest_RUNNER_IMAGE_CONTENT_fn
#define HYPERTEST_RUNNER_RUN_TEST_fn_check hypertest_RUNNER_RUN_TEST_fn
#define HYPERTEST_PROVIDER_IMAGE_TARGET_fn_check hypertest_PROVIDER_IMAGE_TARGET_fn
#define HYPERTEST_PROVIDER_OBJECT_PUT_fn_check hypertest_PROVIDER_OBJECT_PUT_fn
#define HYPERTEST_PROVIDER_OBJECT_GET_fn_check hypertest_PROVIDER_OBJECT_GET_fn
#define HYPERTEST_PROVIDER_FUNCTION_UPDATE_fn_check hypertest_PROVIDER_FUNCTION_UPDATE_fn
#define HYPERTEST_PROVIDER_FUNCTION_DIGEST_fn_check hypertest_PROVIDER_FUNCTION_DIGEST_fn
#define HYPERTEST_PROVIDER_INVOKE_START_fn_check hypertest_PROVIDER_INVOKE_START_fn
#define HYPERTEST_PROVIDER_INVOKE_WAIT_fn_check hypertest_PROVIDER_INVOKE_WAIT_fn
#define HYPERTEST_PROVIDER_INVOKE_CANCEL_fn_check hypertest_PROVIDER_INVOKE_CANCEL_fn
#define HYPERTEST_PROVIDER_SERVE_fn_check hypertest_PROVIDER_SERVE_fn
#define HYPERTEST_PROVIDER_ARTIFACTS_STORE_fn_check hypertest_PROVIDER_ARTIFACTS_STORE_fn
#define HYPERTEST_PROVIDER_PAYLOAD_FIELDS_fn_check hypertest_PROVIDER_PAYLOAD_FIELDS_fn
#define HYPERTEST_PROVIDER_OBJECT_URL_fn_check hypertest_PROVIDER_OBJECT_URL_fn
#define HYPERTEST_PROVIDER_OBJECT_LIST_fn_check hypertest_PROVIDER_OBJECT_LIST_fn
#define HYPERTEST_PROVIDER_PROVISION_PLAN_fn_check hypertest_PROVIDER_PROVISION_PLAN_fn
#define HYPERTEST_PROVIDER_PROVISION_APPLY_fn_check hypertest_PROVIDER_PROVISION_APPLY_fn
#define HYPERTEST_PROVIDER_RESOURCES_DESTROY_fn_check hypertest_PROVIDER_RESOURCES_DESTROY_fn
#define HYPERTEST_PROVIDER_PROVISION_EMIT_fn_check hypertest_PROVIDER_PROVISION_EMIT_fn
#define HYPERTEST_PROVIDER_INVOKE_END_fn_check hypertest_PROVIDER_INVOKE_END_fn

/* ---- the module's entry points ------------------------------------------- */

#if defined(__GNUC__) && __GNUC__ >= 4
#define HYPERTEST_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define HYPERTEST_PLUGIN_EXPORT
#endif

typedef int (*hypertest_plugin_init_fn)(hypertest_core *core, const hypertest_dispatch *upcalls);

/* What every module defines (HYPERTEST_PLUGIN_DEFINE writes both). */
extern HYPERTEST_PLUGIN_EXPORT const hypertest_plugin_descriptor hypertest_plugin_info;
HYPERTEST_PLUGIN_EXPORT int hypertest_plugin_init(hypertest_core *core,
                                                  const hypertest_dispatch *upcalls);

/* Define the descriptor and declare the init function:
 *   HYPERTEST_PLUGIN_DEFINE("my-module", "1.0", "what it does", "MIT")
 *   int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *up) {...} */
#define HYPERTEST_PLUGIN_DEFINE(module_, version_, description_, license_)                    \
	HYPERTEST_PLUGIN_EXPORT const hypertest_plugin_descriptor hypertest_plugin_info = {      \
		HYPERTEST_PLUGIN_MAGIC, HYPERTEST_PLUGIN_ABI_MAJOR, HYPERTEST_PLUGIN_ABI_MINOR,     \
		module_, version_, description_, license_, {0, 0, 0, 0, 0, 0, 0, 0}};               \
	HYPERTEST_PLUGIN_EXPORT int hypertest_plugin_init(hypertest_core *core,                  \
	                                                  const hypertest_dispatch *upcalls)

/* ---- convenience: the upcalls as a struct of typed pointers ---------------- */

/* This struct is compiled into the plugin only and is never passed to the
 * core, so it may grow in any release.  A member stays NULL when the core
 * does not offer that upcall (an older core). */
typedef struct hypertest_upcalls {
	hypertest_UP_LOG_fn log;
	hypertest_UP_SET_ERROR_fn set_error;
	hypertest_UP_REGISTER_fn register_plugin;
	hypertest_UP_LIST_ADD_fn list_add;
	hypertest_UP_LAYER_ADD_fn layer_add;
	hypertest_UP_LAYER_SET_fn layer_set;
	hypertest_UP_RESULT_SET_STATUS_fn result_set_status;
	hypertest_UP_RESULT_SET_STR_fn result_set_str;
	hypertest_UP_RESULT_SET_DURATION_fn result_set_duration;
	hypertest_UP_INVOKE_DONE_fn invoke_done;
	hypertest_UP_BUFFER_APPEND_fn buffer_append;
	hypertest_UP_PARAM_SET_fn param_set;
	hypertest_UP_DOCTOR_CHECK_fn doctor_check;
	hypertest_UP_FUNCTION_HANDLE_fn function_handle;
	hypertest_UP_CORE_STR_fn core_str;
	hypertest_UP_INVOCATION_TEST_ID_fn invocation_test_id;
	hypertest_UP_IMAGE_UNPACK_fn image_unpack;
	hypertest_UP_BUFFER_NEW_fn buffer_new;
	hypertest_UP_BUFFER_DATA_fn buffer_data;
	hypertest_UP_BUFFER_FREE_fn buffer_free;
	hypertest_UP_INVOCATION_USAGE_fn invocation_usage; /* 1.3 */
	hypertest_UP_CANCELLED_fn cancelled;               /* 1.3 */
} hypertest_upcalls;

/* (aliases for hypertest_upcalls_bind) */
#define HYPERTEST_UP_LOG_fn_check hypertest_UP_LOG_fn
#define HYPERTEST_UP_SET_ERROR_fn_check hypertest_UP_SET_ERROR_fn
#define HYPERTEST_UP_REGISTER_fn_check hypertest_UP_REGISTER_fn
#define HYPERTEST_UP_LIST_ADD_fn_check hypertest_UP_LIST_ADD_fn
#define HYPERTEST_UP_LAYER_ADD_fn_check hypertest_UP_LAYER_ADD_fn
#define HYPERTEST_UP_LAYER_SET_fn_check hypertest_UP_LAYER_SET_fn
#define HYPERTEST_UP_RESULT_SET_STATUS_fn_check hypertest_UP_RESULT_SET_STATUS_fn
#define HYPERTEST_UP_RESULT_SET_STR_fn_check hypertest_UP_RESULT_SET_STR_fn
#define HYPERTEST_UP_RESULT_SET_DURATION_fn_check hypertest_UP_RESULT_SET_DURATION_fn
#define HYPERTEST_UP_INVOKE_DONE_fn_check hypertest_UP_INVOKE_DONE_fn
#define HYPERTEST_UP_BUFFER_APPEND_fn_check hypertest_UP_BUFFER_APPEND_fn
#define HYPERTEST_UP_PARAM_SET_fn_check hypertest_UP_PARAM_SET_fn
#define HYPERTEST_UP_DOCTOR_CHECK_fn_check hypertest_UP_DOCTOR_CHECK_fn
#define HYPERTEST_UP_FUNCTION_HANDLE_fn_check hypertest_UP_FUNCTION_HANDLE_fn
#define HYPERTEST_UP_CORE_STR_fn_check hypertest_UP_CORE_STR_fn
#define HYPERTEST_UP_INVOCATION_TEST_ID_fn_check hypertest_UP_INVOCATION_TEST_ID_fn
#define HYPERTEST_UP_IMAGE_UNPACK_fn_check hypertest_UP_IMAGE_UNPACK_fn
#define HYPERTEST_UP_BUFFER_NEW_fn_check hypertest_UP_BUFFER_NEW_fn
#define HYPERTEST_UP_BUFFER_DATA_fn_check hypertest_UP_BUFFER_DATA_fn
#define HYPERTEST_UP_BUFFER_FREE_fn_check hypertest_UP_BUFFER_FREE_fn
#define HYPERTEST_UP_INVOCATION_USAGE_fn_check hypertest_UP_INVOCATION_USAGE_fn
#define HYPERTEST_UP_CANCELLED_fn_check hypertest_UP_CANCELLED_fn

/* Fill *up from the table given to hypertest_plugin_init; unknown ids are
 * ignored.  Returns 0, or -1 if an upcall every core has is missing. */
static inline int hypertest_upcalls_bind(hypertest_upcalls *up, const hypertest_dispatch *t)
{
	memset(up, 0, sizeof *up);
	for (; t && t->id != 0; t++) {
		switch (t->id) {
#define HYPERTEST_BIND_(ID, member) \
	case ID: up->member = (ID##_fn_check)t->fn; break;
			HYPERTEST_BIND_(HYPERTEST_UP_LOG, log)
			HYPERTEST_BIND_(HYPERTEST_UP_SET_ERROR, set_error)
			HYPERTEST_BIND_(HYPERTEST_UP_REGISTER, register_plugin)
			HYPERTEST_BIND_(HYPERTEST_UP_LIST_ADD, list_add)
			HYPERTEST_BIND_(HYPERTEST_UP_LAYER_ADD, layer_add)
			HYPERTEST_BIND_(HYPERTEST_UP_LAYER_SET, layer_set)
			HYPERTEST_BIND_(HYPERTEST_UP_RESULT_SET_STATUS, result_set_status)
			HYPERTEST_BIND_(HYPERTEST_UP_RESULT_SET_STR, result_set_str)
			HYPERTEST_BIND_(HYPERTEST_UP_RESULT_SET_DURATION, result_set_duration)
			HYPERTEST_BIND_(HYPERTEST_UP_INVOKE_DONE, invoke_done)
			HYPERTEST_BIND_(HYPERTEST_UP_BUFFER_APPEND, buffer_append)
			HYPERTEST_BIND_(HYPERTEST_UP_PARAM_SET, param_set)
			HYPERTEST_BIND_(HYPERTEST_UP_DOCTOR_CHECK, doctor_check)
			HYPERTEST_BIND_(HYPERTEST_UP_FUNCTION_HANDLE, function_handle)
			HYPERTEST_BIND_(HYPERTEST_UP_CORE_STR, core_str)
			HYPERTEST_BIND_(HYPERTEST_UP_INVOCATION_TEST_ID, invocation_test_id)
			HYPERTEST_BIND_(HYPERTEST_UP_IMAGE_UNPACK, image_unpack)
			HYPERTEST_BIND_(HYPERTEST_UP_BUFFER_NEW, buffer_new)
			HYPERTEST_BIND_(HYPERTEST_UP_BUFFER_DATA, buffer_data)
			HYPERTEST_BIND_(HYPERTEST_UP_BUFFER_FREE, buffer_free)
			HYPERTEST_BIND_(HYPERTEST_UP_INVOCATION_USAGE, invocation_usage)
			HYPERTEST_BIND_(HYPERTEST_UP_CANCELLED, cancelled)
#undef HYPERTEST_BIND_
		default:
			break; /* an upcall of a newer core */
		}
	}
	return (up->log && up->set_error && up->register_plugin) ? 0 : -1;
}

#ifdef __cplusplus
}
#endif

#endif /* HYPERTEST_PLUGIN_H */
