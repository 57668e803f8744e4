/*
 * discover.c - LIST_TESTS of the "ctest" runner: `ctest --show-only=json-v1
 * ARGS` gives one context per test, {"name": NAME, "index": N, "buildDir":
 * ABS}, N counting from 1 as ctest numbers its tests ("Test #N"), ABS the
 * resolved build directory the tests run in (CMake build trees are not
 * relocatable, so the image holds it at that absolute path).  Also
 * `ctest --version` and the stand-in CTestTestfile.cmake.
 *
 * ctest writes Testing/Temporary/LastTest.log (and more) into the directory
 * it runs in, so it never runs in the build directory: it runs in a scratch
 * directory whose CTestTestfile.cmake only says subdirs("BUILD").  ctest
 * numbers and names the tests as in BUILD itself and runs each in its own
 * directory of BUILD, while the user's build tree stays as it was (and a
 * read-only one, as in a function image, works).  Listing uses a temporary
 * directory under $TMPDIR (or /tmp), removed afterwards.
 */
#define _GNU_SOURCE
#include "ctest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIST_OUTPUT_MAX (256ull << 20)

char *ct_absolute(const char *path)
{
	if (path[0] == '/')
		return strdup(path);
	char *cwd = getcwd(NULL, 0), *abs = cwd ? htp_path_join(cwd, path) : NULL;
	free(cwd);
	return abs;
}

/* The text of dir/CTestTestfile.cmake; NULL with errno. */
static char *testfile_text(const char *build)
{
	/* a bracket argument [==[...]==] (no escapes, no variables) whose
	 * closing bracket is not in the path */
	static const char eqs[] = "================================";
	char end[sizeof eqs + 2];
	int n = 0;
	for (;; n++) {
		if (n >= (int)sizeof eqs) {
			errno = EINVAL;
			return NULL;
		}
		snprintf(end, sizeof end, "]%.*s]", n, eqs);
		if (!strstr(build, end))
			break;
	}
	htp_buf b = {0};
	htp_buf_str(&b, "# written by hypertest's ctest runner: the tests of one build directory\n"
	               "subdirs([");
	htp_buf_add(&b, eqs, (size_t)n);
	htp_buf_str(&b, "[");
	htp_buf_str(&b, build);
	htp_buf_str(&b, end);
	htp_buf_str(&b, ")\n");
	char *text = htp_buf_take(&b);
	if (!text)
		errno = ENOMEM;
	return text;
}

int ct_write_testfile(ct_runner *r, const char *dir, const char *build)
{
	if (strchr(build, '\\'))
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_CONFIG,
		                CT_PREFIX "build directory '%s': CMake reads a backslash in a path as "
		                "a directory separator", build);
	char *text = testfile_text(build), *path = htp_path_join(dir, "CTestTestfile.cmake");
	int e = !text ? errno : !path ? ENOMEM : 0, fd = -1;
	if (!e && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		e = errno;
	for (size_t off = 0, len = text ? strlen(text) : 0; !e && off < len;) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno != EINTR)
			e = errno;
		else if (w > 0)
			off += (size_t)w;
	}
	if (fd >= 0 && close(fd) != 0 && !e)
		e = errno;
	free(text);
	free(path);
	if (!e)
		return 0;
	return htp_fail(&ct_up, r->core, e == ENOMEM ? HYPERTEST_ERR_NOMEM : HYPERTEST_ERR_IO,
	                CT_PREFIX "cannot write '%s/CTestTestfile.cmake' (for '%s'): %s", dir,
	                build, strerror(e));
}

/* Run ctest with argv in dir (NULL: where we are), output in memory. */
static int run_ctest(ct_runner *r, char **argv, const char *dir, htp_run *run, const char *what)
{
	char *error = NULL;
	int rc;
	memset(run, 0, sizeof *run);
	run->argv = argv;
	run->cwd = dir;
	run->limit = LIST_OUTPUT_MAX;
	run->tail_cap = CT_MESSAGE_BYTES;
	if ((rc = htp_run_program(run, &error))) {
		htp_fail(&ct_up, r->core, rc, CT_PREFIX "%s", error ? error : "out of memory");
	} else if (htp_run_exit_code(run) != 0) {
		char *why = htp_run_outcome(run), *tail = htp_run_output_tail(run, CT_MESSAGE_BYTES);
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		              CT_PREFIX "%s%s%s%s failed: %s%s%s", what, dir ? " in '" : "",
		              dir ? dir : "", dir ? "'" : "", why ? why : "failed",
		              tail && *tail ? "\n" : "", tail ? tail : "");
		free(why);
		free(tail);
	} else if (run->out.total > run->out.kept || run->out.nomem) {
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		              CT_PREFIX "%s printed more than %llu bytes", what,
		              (unsigned long long)LIST_OUTPUT_MAX);
	}
	free(error);
	return rc;
}

int ct_version(ct_runner *r)
{
	if (r->major)
		return 0;
	char *argv[] = {r->ctest, "--version", NULL};
	htp_run run;
	int rc = run_ctest(r, argv, NULL, &run, "ctest --version");
	const char *out = run.out.mem.data ? run.out.mem.data : "", *v = strstr(out, "version ");
	if (!rc && (!v || sscanf(v, "version %d.%d", &r->major, &r->minor) != 2 || r->major < 1)) {
		r->major = 0;
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		              CT_PREFIX "cannot read the version of '%s' in: %.200s", r->ctest,
		              out);
	}
	htp_run_free(&run);
	return rc;
}

static int add_tests(ct_runner *r, hypertest_list *list, json_t *tests, const char *build)
{
	size_t i;
	json_t *t;
	json_array_foreach(tests, i, t) {
		json_t *name = json_object_get(t, "name");
		if (!json_is_string(name) || !json_string_length(name))
			return htp_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
			                CT_PREFIX "ctest --show-only=json-v1: test %zu has no name",
			                i + 1);
	}
	json_array_foreach(tests, i, t) {
		json_t *o = json_pack("{s:O,s:I,s:s}", "name", json_object_get(t, "name"), "index",
		                      (json_int_t)(i + 1), "buildDir", build);
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text)
			return htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM,
			                CT_PREFIX "out of memory");
		int rc = ct_up.list_add(list, text);
		free(text);
		if (rc)
			return rc;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* A new empty directory under $TMPDIR (or /tmp), malloc'd; NULL with errno. */
static char *scratch_dir(void)
{
	const char *t = getenv("TMPDIR");
	char *dir = NULL;
	if (asprintf(&dir, "%s/hypertest-ctest-XXXXXX", t && *t ? t : "/tmp") < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (!mkdtemp(dir)) {
		int e = errno;
		free(dir);
		errno = e;
		return NULL;
	}
	return dir;
}

int ct_list_tests(void *self, hypertest_list *list)
{
	ct_runner *r = self;
	if (!ct_up.list_add)
		return htp_fail(&ct_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                CT_PREFIX "the core cannot receive tests");
	size_t n_args = htp_strv_len(r->args), k = 0;
	char **argv = calloc(n_args + 3, sizeof *argv), *given = ct_build_dir(r);
	char *plain = given ? ct_absolute(given) : NULL, *build = NULL, *scratch = NULL;
	htp_run run;
	memset(&run, 0, sizeof run);
	int rc;
	if (!argv || !plain) {
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_NOMEM, CT_PREFIX "out of memory");
		goto done;
	}
	/* the path the image holds it at (as IMAGE_CONTENT resolves it) */
	if (!(build = realpath(plain, NULL))) {
		rc = htp_fail(&ct_up, r->core,
		              errno == ENOMEM ? HYPERTEST_ERR_NOMEM : HYPERTEST_ERR_NOT_FOUND,
		              CT_PREFIX "option 'buildDir': '%s': %s", plain, strerror(errno));
		goto done;
	}
	if (!(scratch = scratch_dir())) {
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_IO,
		              CT_PREFIX "cannot make a temporary directory in '%s': %s",
		              getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		              strerror(errno));
		goto done;
	}
	if ((rc = ct_write_testfile(r, scratch, build)))
		goto done;
	argv[k++] = r->ctest;
	argv[k++] = "--show-only=json-v1";
	for (size_t i = 0; i < n_args; i++)
		argv[k++] = r->args[i];
	if ((rc = run_ctest(r, argv, scratch, &run, "ctest --show-only=json-v1")))
		goto done;
	json_error_t jerr;
	json_t *doc = json_loadb(run.out.mem.data ? run.out.mem.data : "", run.out.mem.len, 0, &jerr);
	json_t *tests = json_object_get(doc, "tests");
	if (!json_is_array(tests))
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_RUNNER,
		              CT_PREFIX "ctest --show-only=json-v1 for '%s': %s%s (ctest 3.14 or newer "
		              "is needed)",
		              build, doc ? "no \"tests\" array" : "not JSON: ", doc ? "" : jerr.text);
	else if (json_array_size(tests) == 0)
		rc = htp_fail(&ct_up, r->core, HYPERTEST_ERR_EMPTY,
		              CT_PREFIX "ctest lists no tests in '%s' (is it a CMake build directory with "
		              "enable_testing()?)",
		              build);
	else
		rc = add_tests(r, list, tests, build);
	json_decref(doc);
done:
	if (scratch)
		nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(scratch);
	free(argv); /* borrowed strings */
	free(given);
	free(plain);
	free(build);
	htp_run_free(&run);
	return rc;
}
