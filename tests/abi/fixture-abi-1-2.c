/*
 * fixture-abi-1-2.c - a module built for plugin ABI 1.2, which added
 * HYPERTEST_CORE_FUNCTION_INIT_ERROR for HYPERTEST_UP_CORE_STR ("" when the
 * function can run tests; an older core answers NULL).  It must keep
 * loading in every later 1.x core, and the core must keep answering it.
 * Registers a runner and a provider "minor12"; their doctor check
 * "initError" reports what the core answered.
 */
#include <stdlib.h>

#include <hypertest/plugin.h>

HYPERTEST_PLUGIN_EXPORT const hypertest_plugin_descriptor hypertest_plugin_info = {
	HYPERTEST_PLUGIN_MAGIC, 1, 2, "fixture-abi-1-2", "1.2", "built for ABI 1.2", "MIT",
	{0, 0, 0, 0, 0, 0, 0, 0}};

static hypertest_upcalls up; /* written once, by hypertest_plugin_init */

static int create(hypertest_core *core, const char *options, void **self)
{
	(void)options;
	*self = core;
	return 0;
}

static int doctor(void *self, hypertest_checks *checks)
{
	const char *e = up.core_str((hypertest_core *)self, HYPERTEST_CORE_FUNCTION_INIT_ERROR);
	up.doctor_check(checks, "initError", e && !*e ? HYPERTEST_CHECK_OK : HYPERTEST_CHECK_FAILED,
	                !e ? "the core does not know HYPERTEST_CORE_FUNCTION_INIT_ERROR"
	                : *e ? e : "none (ABI 1.2)");
	return 0;
}

static const char *test_dir(void *self)
{
	(void)self;
	return "tests";
}

static const hypertest_dispatch runner_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, test_dir),
	HYPERTEST_OP_END,
};

static const hypertest_dispatch provider_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, create),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, doctor),
	HYPERTEST_OP_END,
};

HYPERTEST_PLUGIN_EXPORT int hypertest_plugin_init(hypertest_core *core,
                                                  const hypertest_dispatch *upcalls);
int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls)
{
	if (hypertest_upcalls_bind(&up, upcalls) != 0 || !up.core_str || !up.doctor_check)
		return -1;
	if (up.register_plugin(core, HYPERTEST_KIND_RUNNER, "minor12", "ABI 1.2 runner",
	                       runner_ops) != 0)
		return -1;
	return up.register_plugin(core, HYPERTEST_KIND_PROVIDER, "minor12", "ABI 1.2 provider",
	                          provider_ops);
}
