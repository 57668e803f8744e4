/*
 * pytest.c - the "pytest" test runner: its options, the image content and
 * the doctor checks; listing is in collect.c, running one test in
 * run-test.c.
 *
 * Options (paths relative to the project directory):
 *   python   the interpreter, default "python3" (looked up in PATH)
 *   args     more arguments for pytest, before the test ids
 *   rootDir  where pytest runs (and node ids start), default "."
 *   testDir  the tests, default "tests": collected, hashed for drift and
 *            put into the image; inside rootDir
 *   include  more paths for the image
 * pytest runs as `PYTHON -m pytest -p no:cacheprovider --rootdir=. ...` in
 * rootDir with PYTHONDONTWRITEBYTECODE=1, so it writes nothing into the
 * project.  pytest.ini, pyproject.toml, tox.ini, setup.cfg and conftest.py
 * of rootDir go into the image too.
 */
#define _GNU_SOURCE
#include "pytest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

hypertest_upcalls pyt_up;

static const char *const option_names[] = {"python", "args", "rootDir", "testDir", "include",
                                           NULL};
static const char *const root_files[] = {"pytest.ini", "pyproject.toml", "tox.ini",
                                         "setup.cfg", "conftest.py", NULL};

const char *pyt_project_dir(const pyt_runner *r)
{
	const char *p = pyt_up.core_str ? pyt_up.core_str(r->core, HYPERTEST_CORE_PROJECT_DIR) : NULL;
	return p && *p ? p : ".";
}

char **pyt_argv(const pyt_runner *r, const char *const *extra, const char *last)
{
	size_t n_extra = htp_strv_len((char *const *)extra), n_args = htp_strv_len(r->args), k = 0;
	char **argv = calloc(n_extra + n_args + 9, sizeof *argv);
	const char *fixed[] = {r->python, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir=."};
	if (!argv)
		return NULL;
	for (size_t i = 0; i < 6; i++)
		if (!(argv[k++] = strdup(fixed[i])))
			goto nomem;
	for (size_t i = 0; i < n_extra; i++)
		if (!(argv[k++] = strdup(extra[i])))
			goto nomem;
	for (size_t i = 0; i < n_args; i++)
		if (!(argv[k++] = strdup(r->args[i])))
			goto nomem;
	if (!(argv[k++] = strdup("--")) || !(argv[k++] = strdup(last)))
		goto nomem;
	return argv;
nomem:
	htp_strv_free(argv);
	return NULL;
}

char **pyt_env(char *art_var)
{
	static char dont_write[] = "PYTHONDONTWRITEBYTECODE=1";
	char *const extra[] = {dont_write, art_var, NULL};
	return htp_env_with(extra);
}

/* ---- options ----------------------------------------------------------------------- */

static int parse_options(pyt_runner *r, json_t *o, char **error)
{
	int rc;
	if ((rc = htp_options_known(PYT_PREFIX, o, option_names, error)) ||
	    (rc = htp_opt_string(PYT_PREFIX, o, "python", "python3", &r->python, error)) ||
	    (rc = htp_opt_strings(PYT_PREFIX, o, "args", 0, &r->args, error)) ||
	    (rc = htp_opt_relpath(PYT_PREFIX, o, "rootDir", ".", &r->root_dir, error)) ||
	    (rc = htp_opt_relpath(PYT_PREFIX, o, "testDir", "tests", &r->test_dir, error)) ||
	    (rc = htp_opt_strings(PYT_PREFIX, o, "include", 1, &r->include, error)))
		return rc;
	size_t rl = strlen(r->root_dir);
	const char *arg = r->test_dir;
	if (strcmp(r->root_dir, ".")) {
		if (strncmp(r->test_dir, r->root_dir, rl) || (r->test_dir[rl] && r->test_dir[rl] != '/')) {
			if (asprintf(error, PYT_PREFIX "option 'testDir': '%s' is not inside rootDir '%s'",
			             r->test_dir, r->root_dir) < 0)
				*error = NULL;
			return HYPERTEST_ERR_CONFIG;
		}
		arg = r->test_dir[rl] ? r->test_dir + rl + 1 : ".";
	}
	if (!(r->test_arg = strdup(arg)))
		return HYPERTEST_ERR_NOMEM;
	return 0;
}

static void op_destroy(void *self)
{
	pyt_runner *r = self;
	if (!r)
		return;
	free(r->python);
	htp_strv_free(r->args);
	free(r->root_dir);
	free(r->test_dir);
	free(r->test_arg);
	htp_strv_free(r->include);
	free(r);
}

static int op_create(hypertest_core *core, const char *options_json, void **self)
{
	*self = NULL;
	pyt_runner *r = calloc(1, sizeof *r);
	char *error = NULL;
	json_t *o = NULL;
	if (!r)
		return htp_fail(&pyt_up, core, HYPERTEST_ERR_NOMEM, PYT_PREFIX "out of memory");
	r->core = core;
	int rc = htp_options_load(PYT_PREFIX, options_json, &o, &error);
	if (!rc)
		rc = parse_options(r, o, &error);
	json_decref(o);
	if (rc) {
		htp_fail(&pyt_up, core, rc, "%s", error ? error : PYT_PREFIX "out of memory");
		free(error);
		op_destroy(r);
		return rc;
	}
	*self = r;
	return 0;
}

static const char *op_test_dir(void *self)
{
	return ((pyt_runner *)self)->test_dir;
}

/* ---- image --------------------------------------------------------------------------- */

static int add_path(pyt_runner *r, hypertest_layer *layer, const char *rel, const char *key,
                    int optional)
{
	char *src = htp_path_join(pyt_project_dir(r), rel);
	struct stat st;
	int rc = 0;
	if (!src)
		return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM, PYT_PREFIX "out of memory");
	if (stat(src, &st) != 0) {
		if (!optional)
			rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOT_FOUND,
			              PYT_PREFIX "option '%s': '%s': %s", key, src,
			              strerror(errno));
	} else {
		rc = pyt_up.layer_add(layer, src, rel);
	}
	free(src);
	return rc;
}

static int op_image_content(void *self, hypertest_layer *layer)
{
	pyt_runner *r = self;
	if (!pyt_up.layer_add)
		return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PYT_PREFIX "the core cannot build layers");
	int rc = add_path(r, layer, r->test_dir, "testDir", 0);
	for (size_t i = 0; !rc && root_files[i]; i++) {
		char *rel = htp_path_join(r->root_dir, root_files[i]);
		rc = rel ? add_path(r, layer, rel, "rootDir", 1)
		         : htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM,
		                    PYT_PREFIX "out of memory");
		free(rel);
	}
	for (char **p = r->include; !rc && *p; p++)
		rc = add_path(r, layer, *p, "include", 0);
	return rc;
}

/* ---- doctor --------------------------------------------------------------------------- */

static void check_pytest(pyt_runner *r, hypertest_checks *checks, const char *root)
{
	htp_run run = {.cwd = root, .limit = 65536, .tail_cap = 2048};
	char **envp = pyt_env(NULL), *error = NULL, *msg = NULL;
	int status = HYPERTEST_CHECK_FAILED;
	char *argv[] = {r->python, "-m", "pytest", "--version", NULL};
	run.argv = argv;
	run.envp = envp;
	if (!envp || htp_run_program(&run, &error)) {
		msg = error;
		error = NULL;
	} else {
		char *out = htp_run_output_tail(&run, 2048), *why = htp_run_outcome(&run);
		if (!why) {
			status = HYPERTEST_CHECK_OK;
			if (asprintf(&msg, "%s -m pytest: %s", r->python, out ? out : "") < 0)
				msg = NULL;
		} else if (asprintf(&msg, "%s -m pytest --version: %s%s%s", r->python, why,
		                    out && *out ? ": " : "", out ? out : "") < 0) {
			msg = NULL;
		}
		free(out);
		free(why);
	}
	pyt_up.doctor_check(checks, "runner.pytest.pytest", status, msg ? msg : "out of memory");
	free(msg);
	free(error);
	free(envp);
	htp_run_free(&run);
}

static int op_doctor(void *self, hypertest_checks *checks)
{
	pyt_runner *r = self;
	if (!pyt_up.doctor_check)
		return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PYT_PREFIX "the core takes no checks");
	char *dir = htp_path_join(pyt_project_dir(r), r->test_dir), *msg = NULL;
	char *root = htp_path_join(pyt_project_dir(r), r->root_dir);
	struct stat st;
	int status = HYPERTEST_CHECK_FAILED, n = -1;
	if (dir && stat(dir, &st) != 0)
		n = asprintf(&msg, "'%s': %s", dir, strerror(errno));
	else if (dir && !S_ISDIR(st.st_mode))
		n = asprintf(&msg, "'%s' is not a directory", dir);
	else if (dir)
		status = HYPERTEST_CHECK_OK, n = asprintf(&msg, "'%s' exists", dir);
	pyt_up.doctor_check(checks, "runner.pytest.testDir", status, n < 0 ? "out of memory" : msg);
	if (root)
		check_pytest(r, checks, root);
	free(dir);
	free(root);
	free(msg);
	return 0;
}

/* ---- the module ------------------------------------------------------------------------ */

int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls);

HYPERTEST_PLUGIN_DEFINE("runner-pytest", "1.0", "runs pytest tests, one node id per invocation",
                        "MIT")
{
	static const hypertest_dispatch ops[] = {
		HYPERTEST_OP(HYPERTEST_OP_CREATE, op_create),
		HYPERTEST_OP(HYPERTEST_OP_DESTROY, op_destroy),
		HYPERTEST_OP(HYPERTEST_OP_DOCTOR, op_doctor),
		HYPERTEST_OP(HYPERTEST_RUNNER_LIST_TESTS, pyt_list_tests),
		HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, op_test_dir),
		HYPERTEST_OP(HYPERTEST_RUNNER_IMAGE_CONTENT, op_image_content),
		HYPERTEST_OP(HYPERTEST_RUNNER_RUN_TEST, pyt_run_test),
		HYPERTEST_OP_END};
	return htp_register(&pyt_up, core, upcalls, HYPERTEST_KIND_RUNNER, "pytest",
	                    "runs pytest tests, one node id per invocation", ops);
}
