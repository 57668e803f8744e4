/*
 * discover.c - LIST_TESTS of the "ctest" runner: `ctest --show-only=json-v1
 * ARGS` in the build directory gives one context per test,
 * {"name": NAME, "index": N, "buildDir": ABS}, N counting from 1 as ctest
 * numbers its tests ("Test #N"), ABS the build directory the tests run in
 * (CMake build trees are not relocatable, so the image holds it at that
 * absolute path).  Also `ctest --version`.
 */
#define _GNU_SOURCE
#include "ctest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_OUTPUT_MAX (256ull << 20)

/* Run ctest with argv in the build directory, output in memory. */
static int run_ctest(ct_runner *r, char **argv, rn_run *run, const char *what)
{
	char *dir = ct_build_dir(r), *error = NULL;
	int rc;
	memset(run, 0, sizeof *run);
	run->argv = argv;
	run->cwd = dir;
	run->limit = LIST_OUTPUT_MAX;
	run->tail_cap = CT_MESSAGE_BYTES;
	if (!dir)
		return rn_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
	if ((rc = rn_run_program(run, &error))) {
		rn_fail(&ct_up, r->core, rc, CT_PREFIX "%s", error ? error : "out of memory");
	} else if (rn_run_exit_code(run) != 0) {
		char *why = rn_run_outcome(run), *tail = rn_run_output_tail(run, CT_MESSAGE_BYTES);
		rc = rn_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER, CT_PREFIX "%s in '%s' failed: %s%s%s",
		             what, dir, why ? why : "failed", tail && *tail ? "\n" : "", tail ? tail : "");
		free(why);
		free(tail);
	} else if (run->out.total > run->out.kept || run->out.nomem) {
		rc = rn_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		             CT_PREFIX "%s printed more than %llu bytes", what,
		             (unsigned long long)LIST_OUTPUT_MAX);
	}
	free(error);
	free(dir);
	return rc;
}

int ct_version(ct_runner *r)
{
	if (r->major)
		return 0;
	char *argv[] = {r->ctest, "--version", NULL};
	rn_run run;
	int rc = run_ctest(r, argv, &run, "ctest --version");
	const char *out = run.out.mem ? run.out.mem : "", *v = strstr(out, "version ");
	if (!rc && (!v || sscanf(v, "version %d.%d", &r->major, &r->minor) != 2 || r->major < 1)) {
		r->major = 0;
		rc = rn_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		             CT_PREFIX "cannot read the version of '%s' in: %.200s", r->ctest, out);
	}
	rn_run_free(&run);
	return rc;
}

static int add_tests(ct_runner *r, hypertest_list *list, json_t *tests, const char *build)
{
	size_t i;
	json_t *t;
	json_array_foreach(tests, i, t) {
		json_t *name = json_object_get(t, "name");
		if (!json_is_string(name) || !json_string_length(name))
			return rn_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
			               CT_PREFIX "ctest --show-only=json-v1: test %zu has no name", i + 1);
	}
	json_array_foreach(tests, i, t) {
		json_t *o = json_pack("{s:O,s:I,s:s}", "name", json_object_get(t, "name"), "index",
		                      (json_int_t)(i + 1), "buildDir", build);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text)
			return rn_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
		int rc = ct_up.list_add(list, text);
		free(text);
		if (rc)
			return rc;
	}
	return 0;
}

int ct_list_tests(void *self, hypertest_list *list)
{
	ct_runner *r = self;
	if (!ct_up.list_add)
		return rn_fail(&ct_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		               CT_PREFIX "the core cannot receive tests");
	size_t n_args = rn_strv_len(r->args), k = 0;
	char **argv = calloc(n_args + 3, sizeof *argv), *build = ct_build_dir(r);
	rn_run run;
	memset(&run, 0, sizeof run);
	int rc;
	if (!argv || !build) {
		rc = rn_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
		goto done;
	}
	argv[k++] = r->ctest;
	argv[k++] = "--show-only=json-v1";
	for (size_t i = 0; i < n_args; i++)
		argv[k++] = r->args[i];
	if ((rc = run_ctest(r, argv, &run, "ctest --show-only=json-v1")))
		goto done;
	json_error_t jerr;
	json_t *doc = json_loadb(run.out.mem ? run.out.mem : "", run.out.mem_len, 0, &jerr);
	json_t *tests = json_object_get(doc, "tests");
	if (!json_is_array(tests))
		rc = rn_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		             CT_PREFIX "ctest --show-only=json-v1 in '%s': %s%s (ctest 3.14 or newer "
		             "is needed)",
		             build, doc ? "no \"tests\" array" : "not JSON: ", doc ? "" : jerr.text);
	else if (json_array_size(tests) == 0)
		rc = rn_fail(&ct_up, r->core, HYPERTEST_ERR_EMPTY,
		             CT_PREFIX "ctest lists no tests in '%s' (is it a CMake build directory with "
		             "enable_testing()?)",
		             build);
	else
		rc = add_tests(r, list, tests, build);
	json_decref(doc);
done:
	free(argv); /* borrowed strings */
	free(build);
	rn_run_free(&run);
	return rc;
}
