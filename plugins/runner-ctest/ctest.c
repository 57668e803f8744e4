/*
 * ctest.c - the "ctest" test runner: its options, the image content and the
 * doctor checks; listing is in discover.c, running one test in run-test.c.
 *
 * Options:
 *   buildDir   the CMake build directory (required): absolute, or relative
 *              to the project directory
 *   sourceDir  the source directory, relative to the project, default "."
 *   testDir    hashed for drift, relative to the project; default sourceDir,
 *              or "tests" when sourceDir is "." (the project directory
 *              holds .hypertest, which changes with every deploy)
 *   ctest      the program, default "ctest" (looked up in PATH)
 *   args       more arguments for every ctest run (-C Release, ...)
 * The image holds the build and source directories at their absolute
 * paths (CTestTestfile.cmake names them), .hypertest and .git left out.
 */
#define _GNU_SOURCE
#include "ctest.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

hypertest_upcalls ct_up;

static const char *const option_names[] = {"buildDir", "sourceDir", "testDir", "ctest", "args",
                                           NULL};

const char *ct_project_dir(const ct_runner *r)
{
	const char *p = ct_up.core_str ? ct_up.core_str(r->core, HYPERTEST_CORE_PROJECT_DIR) : NULL;
	return p && *p ? p : ".";
}

char *ct_build_dir(const ct_runner *r)
{
	return r->build_dir[0] == '/' ? strdup(r->build_dir)
	                              : htp_path_join(ct_project_dir(r), r->build_dir);
}

/* ---- options ----------------------------------------------------------------------- */

static int parse_options(ct_runner *r, json_t *o, char **error)
{
	int rc;
	if ((rc = htp_options_known(CT_PREFIX, o, option_names, error)) ||
	    (rc = htp_opt_string(CT_PREFIX, o, "buildDir", NULL, &r->build_dir, error)) ||
	    (rc = htp_opt_relpath(CT_PREFIX, o, "sourceDir", ".", &r->source_dir, error)) ||
	    (rc = htp_opt_relpath(CT_PREFIX, o, "testDir",
	                         strcmp(r->source_dir, ".") ? r->source_dir : "tests", &r->test_dir,
	                         error)) ||
	    (rc = htp_opt_string(CT_PREFIX, o, "ctest", "ctest", &r->ctest, error)) ||
	    (rc = htp_opt_strings(CT_PREFIX, o, "args", 0, &r->args, error)))
		return rc;
	for (size_t n = strlen(r->build_dir); n > 1 && r->build_dir[n - 1] == '/';)
		r->build_dir[--n] = '\0';
	return 0;
}

static void op_destroy(void *self)
{
	ct_runner *r = self;
	if (!r)
		return;
	free(r->ctest);
	htp_strv_free(r->args);
	free(r->build_dir);
	free(r->source_dir);
	free(r->test_dir);
	free(r);
}

static int op_create(hypertest_core *core, const char *options_json, void **self)
{
	*self = NULL;
	ct_runner *r = calloc(1, sizeof *r);
	char *error = NULL;
	json_t *o = NULL;
	if (!r)
		return htp_fail(&ct_up, core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
	r->core = core;
	int rc = htp_options_load(CT_PREFIX, options_json, &o, &error);
	if (!rc)
		rc = parse_options(r, o, &error);
	json_decref(o);
	if (rc) {
		htp_fail(&ct_up, core, rc, "%s", error ? error : CT_PREFIX "out of memory");
		free(error);
		op_destroy(r);
		return rc;
	}
	*self = r;
	return 0;
}

static const char *op_test_dir(void *self)
{
	return ((ct_runner *)self)->test_dir;
}

/* ---- image --------------------------------------------------------------------------- */

/* dir (absolute, resolved) at the same path in the image; with skip_state,
 * entry by entry without .hypertest, .git and the build directory. */
static int add_dir(ct_runner *r, hypertest_layer *layer, const char *dir, const char *key,
                   int by_entry, const char *build)
{
	if (!by_entry)
		return ct_up.layer_add(layer, dir, dir);
	DIR *d = opendir(dir);
	if (!d)
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOT_FOUND,
		                CT_PREFIX "option '%s': '%s': %s", key, dir, strerror(errno));
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, ".hypertest") || !strcmp(e->d_name, ".git"))
			continue;
		char *p = htp_path_join(dir, e->d_name);
		if (!p)
			rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM,
			              CT_PREFIX "out of memory");
		else if (strcmp(p, build))
			rc = ct_up.layer_add(layer, p, p);
		free(p);
	}
	closedir(d);
	return rc;
}

static int op_image_content(void *self, hypertest_layer *layer)
{
	ct_runner *r = self;
	if (!ct_up.layer_add)
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                CT_PREFIX "the core cannot build layers");
	char *b = ct_build_dir(r), *s = htp_path_join(ct_project_dir(r), r->source_dir);
	char *build = b ? realpath(b, NULL) : NULL, *source = s ? realpath(s, NULL) : NULL;
	int rc;
	if (!b || !s)
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
	else if (!build || !source)
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOT_FOUND,
		              CT_PREFIX "option '%s': '%s': %s", build ? "sourceDir" : "buildDir",
		              build ? s : b, strerror(errno));
	else if (!(rc = add_dir(r, layer, build, "buildDir", 0, build))) {
		size_t bl = strlen(build);
		/* the build directory inside the sources: skip it there */
		int inside = !strncmp(source, build, strlen(source)) && bl > strlen(source);
		if (!(strncmp(build, source, bl) == 0 && (source[bl] == '/' || !source[bl])))
			rc = add_dir(r, layer, source, "sourceDir", 1, inside ? build : "");
	}
	free(b);
	free(s);
	free(build);
	free(source);
	return rc;
}

/* ---- doctor --------------------------------------------------------------------------- */

static int op_doctor(void *self, hypertest_checks *checks)
{
	ct_runner *r = self;
	if (!ct_up.doctor_check)
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                CT_PREFIX "the core takes no checks");
	char *b = ct_build_dir(r), *f = b ? htp_path_join(b,
	                                                  "CTestTestfile.cmake") : NULL, *msg = NULL;
	struct stat st;
	int status = HYPERTEST_CHECK_FAILED, n = -1;
	if (f && stat(f, &st) != 0)
		n = asprintf(&msg, "'%s': %s (configure the project with CMake and enable_testing())", f,
		             strerror(errno));
	else if (f)
		status = HYPERTEST_CHECK_OK, n = asprintf(&msg, "'%s' exists", f);
	ct_up.doctor_check(checks, "runner.ctest.buildDir", status, n < 0 ? "out of memory" : msg);
	free(msg);
	msg = NULL;
	if (status == HYPERTEST_CHECK_OK) {
		r->major = 0;
		if (ct_version(r) != 0)
			n = asprintf(&msg, "'%s --version' failed", r->ctest), status = HYPERTEST_CHECK_FAILED;
		else if (r->major < 3 || (r->major == 3 && r->minor < 21))
			n = asprintf(&msg, "ctest %d.%d: older than 3.21 (no --output-junit), results are read "
			             "from its output", r->major, r->minor), status = HYPERTEST_CHECK_WARNING;
		else
			n = asprintf(&msg, "ctest %d.%d", r->major, r->minor);
		ct_up.doctor_check(checks, "runner.ctest.ctest", status, n < 0 ? "out of memory" : msg);
	}
	free(msg);
	free(f);
	free(b);
	return 0;
}

/* ---- the module ------------------------------------------------------------------------ */

int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls);

HYPERTEST_PLUGIN_DEFINE("runner-ctest", "1.0", "runs CTest tests, one test per invocation", "MIT")
{
	static const hypertest_dispatch ops[] = {
		HYPERTEST_OP(HYPERTEST_OP_CREATE, op_create),
		HYPERTEST_OP(HYPERTEST_OP_DESTROY, op_destroy),
		HYPERTEST_OP(HYPERTEST_OP_DOCTOR, op_doctor),
		HYPERTEST_OP(HYPERTEST_RUNNER_LIST_TESTS, ct_list_tests),
		HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, op_test_dir),
		HYPERTEST_OP(HYPERTEST_RUNNER_IMAGE_CONTENT, op_image_content),
		HYPERTEST_OP(HYPERTEST_RUNNER_RUN_TEST, ct_run_test),
		HYPERTEST_OP_END};
	return htp_register(&ct_up, core, upcalls, HYPERTEST_KIND_RUNNER, "ctest",
	                    "runs CTest tests, one test per invocation", ops);
}
