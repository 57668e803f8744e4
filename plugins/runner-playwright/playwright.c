/*
 * playwright.c - the "playwright" test runner: lists the tests of a
 * Playwright project and runs one of them per invocation, never through a
 * shell.  Options in options.c, reports in report.c, grep patterns in
 * grep.c; running programs with plugins/common.
 *
 * Listing runs `<command> [--config C] --list --reporter=json` in the
 * project directory and gives one context {"grep": "^<project> <spec>
 * <titles>$"} per (project, test), in the TypeScript hypertest's format.
 * The test directory (for drift) is the chosen projects' testDir, relative
 * to the project directory; it is known after a listing, so TEST_DIR and
 * IMAGE_CONTENT list the tests first when that has not happened yet.
 *
 * The image gets the test directory, the config file (option "config", or
 * the first playwright.config.{ts,js,mjs,cjs,mts,cts}), package.json and
 * package-lock.json when they exist, and the "include" paths.  node_modules
 * are the base image's business: Node finds them in the task root or in a
 * directory above it (/var/node_modules, /node_modules), or the project
 * puts them into the image with "include": ["node_modules"].
 *
 * Running (function side) turns the doubled backslashes of the context back
 * into single ones and runs `<command> [--config C] --grep <pattern>
 * --reporter=json --workers=1 --output=ARTIFACTS/test-results` in the
 * working directory, with PLAYWRIGHT_JSON_OUTPUT_NAME=ARTIFACTS/playwright-results.json;
 * stdout.log and stderr.log go to ARTIFACTS too.  Exactly one test must
 * have run: its outcome is the result.
 */
#define _GNU_SOURCE
#include "playwright.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "runner 'playwright': "
#define REPORT_MAX (256u << 20)   /* listing or run report read at most */
#define LOG_LIMIT (16ull << 20)   /* stdout.log, stderr.log */
#define TAIL_BYTES 4096           /* output kept for messages */

static hypertest_upcalls up; /* bound once by hypertest_plugin_init */

typedef struct runner {
	hypertest_core *core;
	pw_options o;
	int listed;        /* listing below is valid */
	pw_listing listing;
	char *test_dir;    /* relative to the project directory */
} runner;

static const char *const config_names[] = {
	"playwright.config.ts", "playwright.config.js", "playwright.config.mjs",
	"playwright.config.cjs", "playwright.config.mts", "playwright.config.cts", NULL};

static const char *project_dir(const runner *r)
{
	const char *p = up.core_str ? up.core_str(r->core, HYPERTEST_CORE_PROJECT_DIR) : NULL;
	return (p && *p) ? p : ".";
}

static int nomem(const runner *r)
{
	return htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
}

/* ---- running Playwright ------------------------------------------------------------ */

/* command + [--config C] + extra (NULL-terminated); NULL when out of memory.
 * config: the config to pass instead of the option's (the Lambda wrapper). */
static char **make_argv_config(const runner *r, const char *config, const char *const *extra)
{
	size_t n = htp_strv_len(r->o.command), m = 0;
	while (extra[m])
		m++;
	char **argv = calloc(n + m + 3, sizeof *argv);
	if (!argv)
		return NULL;
	size_t k = 0;
	int ok = 1;
	for (size_t i = 0; i < n; i++)
		ok &= !!(argv[k++] = strdup(r->o.command[i]));
	if (!config)
		config = r->o.config;
	if (config) {
		ok &= !!(argv[k++] = strdup("--config"));
		ok &= !!(argv[k++] = strdup(config));
	}
	for (size_t i = 0; i < m; i++)
		ok &= !!(argv[k++] = strdup(extra[i]));
	if (!ok) {
		for (size_t i = 0; i < k; i++)
			free(argv[i]);
		free(argv);
		return NULL;
	}
	return argv;
}

static char **make_argv(const runner *r, const char *const *extra)
{
	return make_argv_config(r, NULL, extra);
}

/* The environment: ours, the JSON report going to report_path; inside
 * Lambda with HOME and the XDG directories in the writable place (lambda,
 * when not NULL: their strings, owned by the caller); when running a test,
 * HT_TEST_ARTIFACTS_OUTPUT_PATH names its artifacts directory (as in the
 * TypeScript hypertest: tests write their own artifacts there; *art_var is
 * the caller's to free). */
static char **make_env_lambda(const char *report_path, char **name_var, char **lambda,
                              const char *artifacts, char **art_var)
{
	*name_var = NULL;
	*art_var = NULL;
	if (asprintf(name_var, "PLAYWRIGHT_JSON_OUTPUT_NAME=%s", report_path) < 0) {
		*name_var = NULL;
		return NULL;
	}
	if (artifacts && asprintf(art_var, "HT_TEST_ARTIFACTS_OUTPUT_PATH=%s", artifacts) < 0) {
		*art_var = NULL;
		return NULL;
	}
	/* empty values count as unset for Playwright: nothing overrides NAME */
	static char file_var[] = "PLAYWRIGHT_JSON_OUTPUT_FILE=";
	static char dir_var[] = "PLAYWRIGHT_JSON_OUTPUT_DIR=";
	char *extra[9] = {*name_var, file_var, dir_var, *art_var, NULL};
	size_t k = *art_var ? 4 : 3;
	for (size_t i = 0; lambda && lambda[i] && i < 4; i++)
		extra[k++] = lambda[i];
	return htp_env_with(extra);
}

static char **make_env(const char *report_path, char **name_var)
{
	char *art_var;
	return make_env_lambda(report_path, name_var, NULL, NULL, &art_var);
}

/* "why: tail" of a run that gave no usable report (malloc'd). */
static char *run_failure(const htp_run *run, const char *what)
{
	char *why = htp_run_outcome(run), *tail = htp_run_output_tail(run, TAIL_BYTES), *s = NULL;
	if (asprintf(&s, "%s%s%s%s%s", what, why ? ": " : "", why ? why : "",
	             tail && *tail ? "\n" : "", tail ? tail : "") < 0)
		s = NULL;
	free(why);
	free(tail);
	return s;
}

/* ---- listing -------------------------------------------------------------------------- */

/* test_dir (absolute, from the report) relative to the project directory. */
static int relative_test_dir(runner *r, const char *abs)
{
	char pd[PATH_MAX], td[PATH_MAX];
	if (!realpath(project_dir(r), pd))
		return htp_fail(&up, r->core, HYPERTEST_ERR_IO, PREFIX "project directory '%s': %s",
		                project_dir(r), strerror(errno));
	if (!realpath(abs, td))
		return htp_fail(&up, r->core, HYPERTEST_ERR_NOT_FOUND,
		                PREFIX "Playwright's testDir '%s': %s", abs, strerror(errno));
	size_t n = strlen(pd);
	const char *rel = NULL;
	if (!strcmp(td, pd))
		rel = ".";
	else if (!strncmp(td, pd, n) && (td[n] == '/' || n == 1))
		rel = td + (n == 1 ? 1 : n + 1);
	if (!rel)
		return htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER,
		                PREFIX "Playwright's testDir '%s' is outside the project directory '%s'",
		                td, pd);
	free(r->test_dir);
	return (r->test_dir = strdup(rel)) ? 0 : nomem(r);
}

static int list_now(runner *r)
{
	static const char *const extra[] = {"--list", "--reporter=json", NULL};
	const char *tmp = getenv("TMPDIR");
	char *dir = NULL, *report = NULL, *name_var = NULL, **envp = NULL, *error = NULL;
	char *data = NULL;
	size_t len = 0;
	char **argv = make_argv(r, extra);
	htp_run run;
	memset(&run, 0, sizeof run);
	int rc;
	if (!argv || asprintf(&dir, "%s/hypertest-playwright-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) {
		dir = NULL;
		rc = nomem(r);
		goto out;
	}
	if (!mkdtemp(dir)) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_IO, PREFIX "cannot create '%s': %s", dir,
		              strerror(errno));
		free(dir);
		dir = NULL;
		goto out;
	}
	if (!(report = htp_path_join(dir, "list.json")) || !(envp = make_env(report, &name_var))) {
		rc = nomem(r);
		goto out;
	}
	run.argv = argv;
	run.envp = envp;
	run.cwd = project_dir(r);
	run.limit = LOG_LIMIT;
	run.tail_cap = TAIL_BYTES;
	if ((rc = htp_run_program(&run, &error))) {
		rc = htp_fail(&up, r->core, rc, PREFIX "listing the tests: %s",
		              error ? error : "out of memory");
		goto out;
	}
	int e = htp_read_file(report, REPORT_MAX, &data, &len);
	if (e) {
		char *msg = run_failure(&run, "Playwright wrote no listing");
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER, PREFIX "%s (%s: %s)",
		              msg ? msg : "Playwright wrote no listing", report, strerror(e));
		free(msg);
		goto out;
	}
	pw_listing_free(&r->listing);
	r->listed = 0;
	if ((rc = pw_listing_parse(data, len, &r->o, &r->listing, &error))) {
		/* a report without tests and a failed command: say what it printed */
		char *msg = htp_run_exit_code(&run) != 0 ? run_failure(&run, "") : NULL;
		htp_fail(&up, r->core, rc, "%s%s", error ? error : PREFIX "out of memory",
		         msg && *msg ? msg : "");
		free(msg);
		goto out;
	}
	if ((rc = relative_test_dir(r, r->listing.test_dir)))
		goto out;
	r->listed = 1;
out:
	if (report)
		unlink(report);
	if (dir)
		rmdir(dir);
	htp_run_free(&run);
	htp_strv_free(argv);
	free(envp);
	free(name_var);
	free(report);
	free(dir);
	free(error);
	free(data);
	return rc;
}

static int op_list_tests(void *self, hypertest_list *list)
{
	runner *r = self;
	if (!up.list_add)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core cannot receive tests");
	int rc = list_now(r); /* always afresh: the tests may have changed */
	for (size_t i = 0; !rc && i < r->listing.n; i++)
		rc = up.list_add(list, r->listing.contexts[i]);
	return rc;
}

static const char *op_test_dir(void *self)
{
	runner *r = self;
	if (!r->listed && list_now(r) != 0)
		return NULL; /* the error was set */
	return r->test_dir;
}

/* ---- the image ---------------------------------------------------------------------------- */

static int add_path(runner *r, hypertest_layer *layer, const char *rel, int required,
                    const char *key)
{
	char *src = htp_path_join(project_dir(r), rel);
	if (!src)
		return nomem(r);
	struct stat st;
	int rc = 0;
	if (stat(src, &st) != 0) {
		if (required)
			rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOT_FOUND,
			              PREFIX "option '%s': '%s': %s", key, src, strerror(errno));
	} else {
		rc = up.layer_add(layer, src, rel);
	}
	free(src);
	return rc;
}

/* The config file the image gets: the option, or the first usual name. */
static const char *config_file(const runner *r)
{
	if (r->o.config)
		return r->o.config;
	for (size_t i = 0; config_names[i]; i++) {
		char *p = htp_path_join(project_dir(r), config_names[i]);
		int found = p && access(p, F_OK) == 0;
		free(p);
		if (found)
			return config_names[i];
	}
	return NULL;
}

static int op_image_content(void *self, hypertest_layer *layer)
{
	runner *r = self;
	if (!up.layer_add)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core cannot build layers");
	if (!r->listed) {
		int rc = list_now(r);
		if (rc)
			return rc;
	}
	const char *config = config_file(r);
	int rc = add_path(r, layer, r->test_dir, 1, "testDir");
	if (!rc && config)
		rc = add_path(r, layer, config, 1, "config");
	if (!rc)
		rc = add_path(r, layer, "package.json", 0, NULL);
	if (!rc)
		rc = add_path(r, layer, "package-lock.json", 0, NULL);
	for (char **p = r->o.include; !rc && p && *p; p++)
		rc = add_path(r, layer, *p, 1, "include");
	return rc;
}

/* ---- running one test ---------------------------------------------------------------- */

/* The pattern of a context, undoubled; NULL with the error set. */
static char *context_grep(runner *r, const char *context_json)
{
	json_error_t jerr;
	json_t *ctx = json_loads(context_json ? context_json : "", 0, &jerr);
	json_t *g = json_object_get(ctx, "grep");
	char *grep = NULL;
	if (!ctx)
		htp_fail(&up, r->core, HYPERTEST_ERR_INVALID,
		         PREFIX "test context is not JSON (column %d): %s", jerr.column, jerr.text);
	else if (!json_is_string(g) || !json_string_length(g))
		htp_fail(&up, r->core, HYPERTEST_ERR_INVALID,
		         PREFIX "test context: expected an object with a string \"grep\"");
	else if (!(grep = pw_grep_undouble(json_string_value(g))))
		nomem(r);
	json_decref(ctx);
	return grep;
}

static void set_result(const pw_outcome *oc, int64_t measured, hypertest_result *result)
{
	up.result_set_status(result, oc->status);
	if (oc->name)
		up.result_set_str(result, HYPERTEST_RESULT_NAME, oc->name);
	if (oc->file_path)
		up.result_set_str(result, HYPERTEST_RESULT_FILE_PATH, oc->file_path);
	if (oc->message)
		up.result_set_str(result, HYPERTEST_RESULT_MESSAGE, oc->message);
	if (oc->stack)
		up.result_set_str(result, HYPERTEST_RESULT_STACK_TRACE, oc->stack);
	up.result_set_duration(result, oc->duration >= 0 ? oc->duration : measured);
}

static int op_run_test(void *self, const char *context_json, const char *artifacts_dir,
                       hypertest_result *result)
{
	runner *r = self;
	if (!up.result_set_status || !up.result_set_str || !up.result_set_duration)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core cannot take results");
	char *grep = context_grep(r, context_json);
	if (!grep)
		return HYPERTEST_ERR_INVALID;
	char art[PATH_MAX], cwd[PATH_MAX];
	char *report = NULL, *output = NULL, *out_log = NULL, *err_log = NULL, *name_var = NULL;
	char **argv = NULL, **envp = NULL, *error = NULL, *data = NULL;
	char *wrapper = NULL, *user_config = NULL, **lambda_env = NULL, *art_var = NULL;
	size_t len = 0;
	htp_run run;
	memset(&run, 0, sizeof run);
	int rc = 0;
	if (!realpath(artifacts_dir, art) || !getcwd(cwd, sizeof cwd)) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_IO, PREFIX "artifacts directory '%s': %s",
		              artifacts_dir, strerror(errno));
		goto out;
	}
	report = htp_path_join(art, "playwright-results.json");
	out_log = htp_path_join(art, "stdout.log");
	err_log = htp_path_join(art, "stderr.log");
	if (asprintf(&output, "--output=%s/test-results", art) < 0)
		output = NULL;
	const char *extra[] = {"--grep", grep, "--reporter=json", "--workers=1", output, NULL};
	if (pw_in_lambda()) {
		/* inside Lambda: Chromium's launch arguments through a wrapper of
		 * the user's config (lambda.c) */
		const char *config = config_file(r);
		char *dir = realpath(project_dir(r), NULL);
		user_config = config && dir ? htp_path_join(dir, config) : NULL;
		if (!dir || (config && !user_config) || !(lambda_env = pw_lambda_env_vars())) {
			free(dir);
			rc = nomem(r);
			goto out;
		}
		wrapper = pw_lambda_wrapper(user_config, dir, &error);
		free(dir);
		if (!wrapper) {
			rc = error ? htp_fail(&up, r->core, HYPERTEST_ERR_IO, PREFIX "%s", error) : nomem(r);
			goto out;
		}
	}
	if (!report || !out_log || !err_log || !output ||
	    !(argv = make_argv_config(r, wrapper, extra)) ||
	    !(envp = make_env_lambda(report, &name_var, lambda_env, art, &art_var))) {
		rc = nomem(r);
		goto out;
	}
	run.argv = argv;
	run.envp = envp;
	run.out_path = out_log;
	run.err_path = err_log;
	run.limit = LOG_LIMIT;
	run.tail_cap = TAIL_BYTES;
	if ((rc = htp_run_program(&run, &error))) {
		rc = htp_fail(&up, r->core, rc, PREFIX "running '%s': %s", grep,
		              error ? error : "out of memory");
		goto out;
	}
	pw_outcome oc;
	memset(&oc, 0, sizeof oc);
	int e = htp_read_file(report, REPORT_MAX, &data, &len);
	if (!e && (rc = pw_outcome_parse(data, len, grep, cwd, &oc, &error)) == HYPERTEST_ERR_NOMEM) {
		rc = nomem(r);
		goto out;
	}
	if (e || rc) { /* no usable report: the test failed, and the output says why */
		char *msg = run_failure(&run, e ? "Playwright wrote no report" : error);
		oc.status = HYPERTEST_STATUS_FAILED;
		oc.duration = -1;
		oc.name = strdup(grep);
		oc.message = msg;
		rc = 0;
	}
	set_result(&oc, run.duration_ms, result);
	pw_outcome_free(&oc);
out:
	htp_run_free(&run);
	htp_strv_free(argv);
	free(envp);
	free(name_var);
	free(art_var);
	free(report);
	free(output);
	free(out_log);
	free(err_log);
	free(error);
	free(data);
	free(grep);
	free(wrapper);
	free(user_config);
	htp_strv_free(lambda_env);
	return rc;
}

/* ---- doctor ------------------------------------------------------------------------------ */

static int op_doctor(void *self, hypertest_checks *checks)
{
	runner *r = self;
	if (!up.doctor_check)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core takes no checks");
	/* the command runs: `<command> --version` in the project directory */
	char *argv[64 + 2];
	size_t n = htp_strv_len(r->o.command);
	if (n > 64)
		n = 64;
	for (size_t i = 0; i < n; i++)
		argv[i] = r->o.command[i];
	argv[n] = "--version";
	argv[n + 1] = NULL;
	htp_run run;
	memset(&run, 0, sizeof run);
	run.argv = argv;
	run.cwd = project_dir(r);
	run.limit = TAIL_BYTES;
	run.tail_cap = TAIL_BYTES;
	char *error = NULL, *msg = NULL;
	int status = HYPERTEST_CHECK_OK;
	if (htp_run_program(&run, &error)) {
		status = HYPERTEST_CHECK_FAILED;
		msg = error, error = NULL;
	} else if (htp_run_exit_code(&run) != 0) {
		status = HYPERTEST_CHECK_FAILED;
		msg = run_failure(&run, "the Playwright command does not run");
	} else {
		char *version = htp_run_tail(&run, 0, 200);
		if (version) /* first line */
			version[strcspn(version, "\r\n")] = '\0';
		if (asprintf(&msg, "'%s' runs (%s)", r->o.command[0],
		             version && *version ? version : "no version printed") < 0)
			msg = NULL;
		free(version);
	}
	up.doctor_check(checks, "runner.playwright.command", status, msg ? msg : "out of memory");
	free(msg);
	free(error);
	htp_run_free(&run);

	const char *config = config_file(r);
	char *path = config ? htp_path_join(project_dir(r), config) : NULL;
	int pn = 0;
	msg = NULL;
	if (!config) {
		status = HYPERTEST_CHECK_WARNING;
		pn = asprintf(&msg, "no playwright.config.{ts,js,mjs,cjs,mts,cts} in '%s': Playwright's "
		                   "defaults apply", project_dir(r));
	} else if (path && access(path, R_OK) != 0) {
		status = HYPERTEST_CHECK_FAILED;
		pn = asprintf(&msg, "option 'config': '%s': %s", path, strerror(errno));
	} else if (path) {
		status = HYPERTEST_CHECK_OK;
		pn = asprintf(&msg, "'%s'", path);
	}
	if (pn < 0)
		msg = NULL;
	up.doctor_check(checks, "runner.playwright.config", status, msg ? msg : "out of memory");
	free(msg);
	free(path);
	return 0;
}

/* ---- create, destroy, the module ---------------------------------------------------------- */

static void op_destroy(void *self)
{
	runner *r = self;
	if (!r)
		return;
	pw_options_free(&r->o);
	pw_listing_free(&r->listing);
	free(r->test_dir);
	free(r);
}

static int op_create(hypertest_core *core, const char *options_json, void **self)
{
	*self = NULL;
	runner *r = calloc(1, sizeof *r);
	if (!r)
		return htp_fail(&up, core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	r->core = core;
	char *error = NULL;
	int rc = pw_options_parse(&r->o, options_json, &error);
	if (rc) {
		htp_fail(&up, core, rc, "%s", error ? error : PREFIX "out of memory");
		free(error);
		free(r);
		return rc;
	}
	*self = r;
	return 0;
}

int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls);

HYPERTEST_PLUGIN_DEFINE("runner-playwright", "1.0",
                        "runs Playwright tests, one test per invocation", "MIT")
{
	static const hypertest_dispatch ops[] = {
		HYPERTEST_OP(HYPERTEST_OP_CREATE, op_create),
		HYPERTEST_OP(HYPERTEST_OP_DESTROY, op_destroy),
		HYPERTEST_OP(HYPERTEST_OP_DOCTOR, op_doctor),
		HYPERTEST_OP(HYPERTEST_RUNNER_LIST_TESTS, op_list_tests),
		HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, op_test_dir),
		HYPERTEST_OP(HYPERTEST_RUNNER_IMAGE_CONTENT, op_image_content),
		HYPERTEST_OP(HYPERTEST_RUNNER_RUN_TEST, op_run_test),
		HYPERTEST_OP_END};
	return htp_register(&up, core, upcalls, HYPERTEST_KIND_RUNNER, "playwright",
	                    "runs Playwright tests, one test per invocation", ops);
}
