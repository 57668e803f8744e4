/*
 * probe-plugin.c - a plugin module that uses every type of the plugin ABI
 * (plugin.h and common.h), so that its debug information, read by abidw,
 * describes that ABI: the descriptor and the dispatch entry, every enum,
 * every upcall and operation function type, and the ids, which are macros
 * and reach the debug information through the enums below.
 *
 * Each type is held by an exported variable of its own: adding an id, an
 * upcall or an operation adds a variable and an enumerator (a compatible
 * change), while changing a layout, a value or a signature changes one of
 * them (an incompatible one).  hypertest_upcalls is not among them: it is
 * compiled into each plugin and may grow in any release.
 *
 * The module is also a working plugin (a runner and a provider named
 * "probe" answering doctor), so that, built against the headers of the
 * baseline, it shows that such a module loads in the current core.
 */
#include <stdlib.h>

#include <hypertest/plugin.h>

#include "probe-ids.h"

#define PROBE_EXPORT HYPERTEST_PLUGIN_EXPORT

/* ---- one exported variable per type ----------------------------------------- */

/* constants and ids */
PROBE_EXPORT enum probe_abi_constant probe_abi_constant;
PROBE_EXPORT enum probe_upcall_id probe_upcall_id;
PROBE_EXPORT enum probe_operation_id probe_operation_id;

/* common.h */
PROBE_EXPORT enum hypertest_error probe_error;
PROBE_EXPORT enum hypertest_log_level probe_log_level;
PROBE_EXPORT enum hypertest_status probe_status;
PROBE_EXPORT enum hypertest_check_status probe_check_status;
PROBE_EXPORT enum hypertest_destroy_flag probe_destroy_flag;

/* plugin.h: enums */
PROBE_EXPORT enum hypertest_plugin_kind probe_plugin_kind;
PROBE_EXPORT enum hypertest_result_field probe_result_field;
PROBE_EXPORT enum hypertest_core_str probe_core_str;

/* plugin.h: the frozen structs, the table entry's function type, the init */
PROBE_EXPORT hypertest_plugin_descriptor probe_descriptor;
PROBE_EXPORT hypertest_dispatch probe_dispatch;
PROBE_EXPORT hypertest_fn probe_fn;
PROBE_EXPORT hypertest_plugin_init_fn probe_init_fn;

/* plugin.h: the opaque handles */
PROBE_EXPORT hypertest_core *probe_core;
PROBE_EXPORT hypertest_list *probe_list;
PROBE_EXPORT hypertest_layer *probe_layer;
PROBE_EXPORT hypertest_result *probe_result;
PROBE_EXPORT hypertest_invocation *probe_invocation;
PROBE_EXPORT hypertest_buffer *probe_buffer;
PROBE_EXPORT hypertest_params *probe_params;
PROBE_EXPORT hypertest_checks *probe_checks;
PROBE_EXPORT hypertest_function *probe_function;

/* plugin.h: the upcalls */
PROBE_EXPORT hypertest_UP_LOG_fn probe_UP_LOG;
PROBE_EXPORT hypertest_UP_SET_ERROR_fn probe_UP_SET_ERROR;
PROBE_EXPORT hypertest_UP_REGISTER_fn probe_UP_REGISTER;
PROBE_EXPORT hypertest_UP_LIST_ADD_fn probe_UP_LIST_ADD;
PROBE_EXPORT hypertest_UP_LAYER_ADD_fn probe_UP_LAYER_ADD;
PROBE_EXPORT hypertest_UP_LAYER_SET_fn probe_UP_LAYER_SET;
PROBE_EXPORT hypertest_UP_RESULT_SET_STATUS_fn probe_UP_RESULT_SET_STATUS;
PROBE_EXPORT hypertest_UP_RESULT_SET_STR_fn probe_UP_RESULT_SET_STR;
PROBE_EXPORT hypertest_UP_RESULT_SET_DURATION_fn probe_UP_RESULT_SET_DURATION;
PROBE_EXPORT hypertest_UP_INVOKE_DONE_fn probe_UP_INVOKE_DONE;
PROBE_EXPORT hypertest_UP_BUFFER_APPEND_fn probe_UP_BUFFER_APPEND;
PROBE_EXPORT hypertest_UP_PARAM_SET_fn probe_UP_PARAM_SET;
PROBE_EXPORT hypertest_UP_DOCTOR_CHECK_fn probe_UP_DOCTOR_CHECK;
PROBE_EXPORT hypertest_UP_FUNCTION_HANDLE_fn probe_UP_FUNCTION_HANDLE;
PROBE_EXPORT hypertest_UP_CORE_STR_fn probe_UP_CORE_STR;
PROBE_EXPORT hypertest_UP_INVOCATION_TEST_ID_fn probe_UP_INVOCATION_TEST_ID;
PROBE_EXPORT hypertest_UP_IMAGE_UNPACK_fn probe_UP_IMAGE_UNPACK;
#ifdef HYPERTEST_UP_BUFFER_NEW
PROBE_EXPORT hypertest_UP_BUFFER_NEW_fn probe_UP_BUFFER_NEW;
PROBE_EXPORT hypertest_UP_BUFFER_DATA_fn probe_UP_BUFFER_DATA;
PROBE_EXPORT hypertest_UP_BUFFER_FREE_fn probe_UP_BUFFER_FREE;
#endif
#ifdef HYPERTEST_UP_INVOCATION_USAGE
PROBE_EXPORT hypertest_UP_INVOCATION_USAGE_fn probe_UP_INVOCATION_USAGE;
#endif
#ifdef HYPERTEST_UP_CANCELLED
PROBE_EXPORT hypertest_UP_CANCELLED_fn probe_UP_CANCELLED;
#endif

/* plugin.h: the operations */
PROBE_EXPORT hypertest_OP_CREATE_fn probe_OP_CREATE;
PROBE_EXPORT hypertest_OP_DESTROY_fn probe_OP_DESTROY;
PROBE_EXPORT hypertest_OP_DOCTOR_fn probe_OP_DOCTOR;
PROBE_EXPORT hypertest_RUNNER_LIST_TESTS_fn probe_RUNNER_LIST_TESTS;
PROBE_EXPORT hypertest_RUNNER_TEST_DIR_fn probe_RUNNER_TEST_DIR;
PROBE_EXPORT hypertest_RUNNER_IMAGE_CONTENT_fn probe_RUNNER_IMAGE_CONTENT;
PROBE_EXPORT hypertest_RUNNER_RUN_TEST_fn probe_RUNNER_RUN_TEST;
PROBE_EXPORT hypertest_PROVIDER_IMAGE_TARGET_fn probe_PROVIDER_IMAGE_TARGET;
PROBE_EXPORT hypertest_PROVIDER_OBJECT_PUT_fn probe_PROVIDER_OBJECT_PUT;
PROBE_EXPORT hypertest_PROVIDER_OBJECT_GET_fn probe_PROVIDER_OBJECT_GET;
PROBE_EXPORT hypertest_PROVIDER_FUNCTION_UPDATE_fn probe_PROVIDER_FUNCTION_UPDATE;
PROBE_EXPORT hypertest_PROVIDER_FUNCTION_DIGEST_fn probe_PROVIDER_FUNCTION_DIGEST;
PROBE_EXPORT hypertest_PROVIDER_INVOKE_START_fn probe_PROVIDER_INVOKE_START;
PROBE_EXPORT hypertest_PROVIDER_INVOKE_WAIT_fn probe_PROVIDER_INVOKE_WAIT;
PROBE_EXPORT hypertest_PROVIDER_INVOKE_CANCEL_fn probe_PROVIDER_INVOKE_CANCEL;
PROBE_EXPORT hypertest_PROVIDER_SERVE_fn probe_PROVIDER_SERVE;
PROBE_EXPORT hypertest_PROVIDER_ARTIFACTS_STORE_fn probe_PROVIDER_ARTIFACTS_STORE;
PROBE_EXPORT hypertest_PROVIDER_PAYLOAD_FIELDS_fn probe_PROVIDER_PAYLOAD_FIELDS;
PROBE_EXPORT hypertest_PROVIDER_OBJECT_URL_fn probe_PROVIDER_OBJECT_URL;
PROBE_EXPORT hypertest_PROVIDER_OBJECT_LIST_fn probe_PROVIDER_OBJECT_LIST;
PROBE_EXPORT hypertest_PROVIDER_PROVISION_PLAN_fn probe_PROVIDER_PROVISION_PLAN;
PROBE_EXPORT hypertest_PROVIDER_PROVISION_APPLY_fn probe_PROVIDER_PROVISION_APPLY;
PROBE_EXPORT hypertest_PROVIDER_RESOURCES_DESTROY_fn probe_PROVIDER_RESOURCES_DESTROY;
PROBE_EXPORT hypertest_PROVIDER_PROVISION_EMIT_fn probe_PROVIDER_PROVISION_EMIT;
PROBE_EXPORT hypertest_PROVIDER_INVOKE_END_fn probe_PROVIDER_INVOKE_END;

/* ---- a working plugin: doctor through the upcalls ----------------------------- */

static hypertest_upcalls up;

struct probe {
	hypertest_core *core;
	int kind;
};

static int probe_create(hypertest_core *core, const char *options_json, void **self,
                        int kind)
{
	struct probe *p = calloc(1, sizeof *p);
	(void)options_json;
	if (!p)
		return HYPERTEST_ERR_NOMEM;
	p->core = core;
	p->kind = kind;
	*self = p;
	return HYPERTEST_OK;
}

static int runner_create(hypertest_core *core, const char *options_json, void **self)
{
	return probe_create(core, options_json, self, HYPERTEST_KIND_RUNNER);
}

static int provider_create(hypertest_core *core, const char *options_json, void **self)
{
	return probe_create(core, options_json, self, HYPERTEST_KIND_PROVIDER);
}

static void destroy(void *self)
{
	free(self);
}

static int doctor(void *self, hypertest_checks *checks)
{
	struct probe *p = self;
	const char *version = up.core_str(p->core, HYPERTEST_CORE_VERSION);
	up.doctor_check(checks, p->kind == HYPERTEST_KIND_RUNNER ? "probe runner" : "probe provider",
	                version && *version ? HYPERTEST_CHECK_OK : HYPERTEST_CHECK_FAILED,
	                version ? version : "no core version");
	return HYPERTEST_OK;
}

static const char *test_dir(void *self)
{
	(void)self;
	return "tests";
}

static const hypertest_dispatch runner_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, runner_create),
	HYPERTEST_OP(HYPERTEST_OP_DESTROY, destroy),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, test_dir),
	HYPERTEST_OP_END,
};

static const hypertest_dispatch provider_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, provider_create),
	HYPERTEST_OP(HYPERTEST_OP_DESTROY, destroy),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP_END,
};

HYPERTEST_PLUGIN_DEFINE("probe", "1.0", "uses every type of the plugin ABI", "MIT")
{
	int rc;
	if (hypertest_upcalls_bind(&up, upcalls) != 0 || !up.core_str || !up.doctor_check)
		return -1;
	rc = up.register_plugin(core, HYPERTEST_KIND_RUNNER, "probe", "ABI probe runner",
	                        runner_ops);
	if (rc == 0)
		rc = up.register_plugin(core, HYPERTEST_KIND_PROVIDER, "probe",
		                        "ABI probe provider", provider_ops);
	return rc;
}
