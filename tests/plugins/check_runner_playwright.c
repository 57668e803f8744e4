/*
 * check_runner_playwright.c - tests of the "playwright" runner plugin.
 *
 * The escaping of grep patterns is tested directly (grep.c is compiled into
 * this program).  Everything else goes through the module, loaded as the
 * core loads it (dlopen, init with the upcalls of fake-core.c): the
 * module is $HT_RUNNER_PLAYWRIGHT_MODULE or
 * $HT_TOP_BUILDDIR/plugins/.libs/runner-playwright.so.
 *
 * The listing and running tests use the real Playwright project
 * tests/projects/playwright-project: it is copied to a temporary directory
 * and `npm ci` installs @playwright/test there (node_modules are never
 * committed).  Without node and npm, or when npm ci fails (no registry),
 * those tests are skipped: the program exits 77 after the others passed.
 */
#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

#include "../../plugins/runner-playwright/playwright.h"

#define N_TESTS 17 /* tests per project in the fixture project */

/* ---- files ------------------------------------------------------------------------------ */

static char base[64];       /* this process's scratch directory */
static char project[256];   /* the fixture project with node_modules, or "" */

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		if (n + 65536 + 1 > cap) { /* (also used outside tests: no ck_assert) */
			cap = (n + 65536 + 1) * 2;
			char *b = realloc(buf, cap);
			if (!b) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		size_t got = fread(buf + n, 1, 65536, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

/* Copy a file tree (regular files and directories), leaving out
 * node_modules and Playwright's test-results. */
static int copy_tree(const char *from, const char *to)
{
	struct stat st;
	if (lstat(from, &st) != 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		const char *name = strrchr(from, '/') ? strrchr(from, '/') + 1 : from;
		if (!strcmp(name, "node_modules") || !strcmp(name, "test-results"))
			return 0;
		if (mkdir(to, 0755) != 0 && errno != EEXIST)
			return -1;
		DIR *d = opendir(from);
		if (!d)
			return -1;
		struct dirent *e;
		int rc = 0;
		while (!rc && (e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			char a[4096], b[4096];
			snprintf(a, sizeof a, "%s/%s", from, e->d_name);
			snprintf(b, sizeof b, "%s/%s", to, e->d_name);
			rc = copy_tree(a, b);
		}
		closedir(d);
		return rc;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	char *data = slurp(from);
	if (!data)
		return -1;
	FILE *f = fopen(to, "wb");
	if (!f) {
		free(data);
		return -1;
	}
	size_t len = (size_t)st.st_size;
	int rc = fwrite(data, 1, len, f) == len ? 0 : -1;
	fclose(f);
	free(data);
	return rc;
}

/* Run argv (PATH lookup) in dir with output into log; the exit status or -1. */
static int run_in(const char *dir, const char *log, char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int null = open("/dev/null", O_RDONLY);
		if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
		    chdir(dir) != 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The fixture project in base/project with its node_modules; a reason to
 * skip otherwise. */
static const char *prepare_project(void)
{
	static char why[512];
	char src[4096], log[4096];
	char *version_node[] = {"node", "--version", NULL};
	char *version_npm[] = {"npm", "--version", NULL};
	char *ci[] = {"npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", NULL};
	snprintf(project, sizeof project, "%s/project", base);
	snprintf(log, sizeof log, "%s/npm.log", base);
	snprintf(src, sizeof src, "%s/projects/playwright-project",
	         env_or("HT_TESTS_SRCDIR", HT_TESTS_SRCDIR));
	if (run_in(base, log, version_node) != 0 || run_in(base, log, version_npm) != 0)
		return "node or npm is not installed";
	if (copy_tree(src, project) != 0) {
		snprintf(why, sizeof why, "cannot copy %.300s: %s", src, strerror(errno));
		return why;
	}
	if (run_in(project, log, ci) != 0) {
		char *out = slurp(log);
		snprintf(why, sizeof why, "npm ci failed in %s: %.300s", project, out ? out : "");
		free(out);
		return why;
	}
	return NULL;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void *module;
static hypertest_core core;
static char artifacts[512];
static int artifacts_n;

static void setup(void)
{
	char modpath[4096];
	if (getenv("HT_RUNNER_PLAYWRIGHT_MODULE") && *getenv("HT_RUNNER_PLAYWRIGHT_MODULE"))
		snprintf(modpath, sizeof modpath, "%s", getenv("HT_RUNNER_PLAYWRIGHT_MODULE"));
	else
		snprintf(modpath, sizeof modpath, "%s/plugins/.libs/runner-playwright.so",
		         env_or("HT_TOP_BUILDDIR", HT_TOP_BUILDDIR));
	memset(&core, 0, sizeof core);
	core.project_dir = project[0] ? project : base;
	/* the function's working directory is the task root: here the project */
	ck_assert_int_eq(chdir(core.project_dir), 0);
	module = fake_load(modpath, &core, fake_upcalls(NULL), HYPERTEST_KIND_RUNNER, NULL);
}

static void teardown(void)
{
	if (module)
		dlclose(module);
	module = NULL;
}

static void *create(const char *opts)
{
	void *self = NULL;
	int rc = OP(HYPERTEST_OP_CREATE)(&core, opts, &self);
	ck_assert_msg(rc == 0, "create(%s) = %d: %s", opts, rc, core.error);
	ck_assert_ptr_nonnull(self);
	return self;
}

static void destroy(void *self)
{
	OP(HYPERTEST_OP_DESTROY)(self);
}

/* create must refuse opts with code and a message containing each of the
 * NULL-terminated words. */
static void refused(const char *opts, int code, ...)
{
	void *self = (void *)1;
	core.error[0] = '\0';
	int rc = OP(HYPERTEST_OP_CREATE)(&core, opts, &self);
	ck_assert_msg(rc == code, "create(%s) = %d, expected %d (%s)", opts, rc, code, core.error);
	ck_assert_ptr_null(self);
	va_list ap;
	va_start(ap, code);
	for (const char *w; (w = va_arg(ap, const char *));)
		ck_assert_msg(strstr(core.error, w), "'%s' not in '%s'", w, core.error);
	va_end(ap);
}

/* The "grep" value of a context. */
static char *grep_of(const char *context)
{
	json_error_t err;
	json_t *o = json_loads(context, 0, &err);
	ck_assert_msg(o != NULL, "%s: %s", context, err.text);
	ck_assert_uint_eq(json_object_size(o), 1);
	json_t *g = json_object_get(o, "grep");
	ck_assert(json_is_string(g));
	char *s = strdup(json_string_value(g));
	json_decref(o);
	return s;
}

static int run_context(void *self, const char *context, hypertest_result *res)
{
	snprintf(artifacts, sizeof artifacts, "%s/artifacts-%d-%d", base, (int)getpid(),
	         ++artifacts_n);
	ck_assert_int_eq(mkdir(artifacts, 0755), 0);
	memset(res, 0, sizeof *res);
	return OP(HYPERTEST_RUNNER_RUN_TEST)(self, context, artifacts, res);
}

/* Run a context that must give a result. */
static void run_ok(void *self, const char *context, hypertest_result *res)
{
	int rc = run_context(self, context, res);
	ck_assert_msg(rc == 0, "run_test(%s) = %d: %s", context, rc, core.error);
	ck_assert(res->has_status);
	ck_assert(res->has_duration);
	ck_assert_int_ge(res->duration, 0);
}

/* ---- escaping (grep.c, no Playwright needed) --------------------------------------------- */

static char *escaped(const char *s)
{
	htp_buf b = {0};
	pw_regex_escape(&b, s);
	char *r = htp_buf_take(&b);
	ck_assert_ptr_nonnull(r);
	return r;
}

#define ESCAPES_TO(in, want)                                  \
	do {                                                      \
		char *got_ = escaped(in);                             \
		ck_assert_str_eq(got_, want);                         \
		free(got_);                                           \
	} while (0)

START_TEST(t_escape)
{
	/* the rules of escape-string-regexp; C escapes: "\\" is one backslash */
	ESCAPES_TO("(a|b)", "\\(a\\|b\\)");
	ESCAPES_TO("[x]", "\\[x\\]");
	ESCAPES_TO("a.b", "a\\.b");
	ESCAPES_TO("x-y", "x\\x2dy");
	ESCAPES_TO("$1", "\\$1");
	ESCAPES_TO("back\\slash", "back\\\\slash");
	ESCAPES_TO("{n}^*+?", "\\{n\\}\\^\\*\\+\\?");
	ESCAPES_TO("ünïcødé ✓ 日本", "ünïcødé ✓ 日本");
	ESCAPES_TO("a/b c_d,e:f'g\"h#i%j&k=l<m>n@o!p~q`r", "a/b c_d,e:f'g\"h#i%j&k=l<m>n@o!p~q`r");
	ESCAPES_TO("", "");
	ESCAPES_TO("--", "\\x2d\\x2d");
}
END_TEST

START_TEST(t_pattern)
{
	const char *titles[] = {"group [x]", "choice (a|b)"};
	char *p = pw_grep_pattern("alpha", "nested/regex-titles.spec.ts", titles, 2);
	/* every backslash doubled, as the TypeScript hypertest writes it */
	ck_assert_str_eq(p, "^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts group \\\\[x\\\\] "
	                    "choice \\\\(a\\\\|b\\\\)$");
	free(p);
	const char *slash[] = {"back\\slash"};
	p = pw_grep_pattern("p-1", "a.spec.ts", slash, 1);
	ck_assert_str_eq(p, "^p\\\\x2d1 a\\\\.spec\\\\.ts back\\\\\\\\slash$");
	free(p);
	p = pw_grep_pattern("", "a.spec.ts", slash, 0); /* an unnamed project */
	ck_assert_str_eq(p, "^ a\\\\.spec\\\\.ts $");
	free(p);
}
END_TEST

START_TEST(t_undouble)
{
	char *s = pw_grep_undouble("^a\\\\.b \\\\x2d back\\\\\\\\slash$");
	ck_assert_str_eq(s, "^a\\.b \\x2d back\\\\slash$");
	free(s);
	s = pw_grep_undouble("lone \\. stays, three \\\\\\ give two");
	ck_assert_str_eq(s, "lone \\. stays, three \\\\ give two");
	free(s);
	s = pw_grep_undouble("");
	ck_assert_str_eq(s, "");
	free(s);
	/* round trip */
	const char *titles[] = {"dollar $1 {n} (a|b) [x] a.b x-y ünï back\\slash"};
	char *doubled = pw_grep_pattern("beta", "s.spec.ts", titles, 1);
	s = pw_grep_undouble(doubled);
	ck_assert_str_eq(s, "^beta s\\.spec\\.ts dollar \\$1 \\{n\\} \\(a\\|b\\) \\[x\\] a\\.b "
	                    "x\\x2dy ünï back\\\\slash$");
	free(s);
	free(doubled);
}
END_TEST

START_TEST(t_strip_ansi)
{
	char s[] = "Error: \x1b[2mexpect(\x1b[22m\x1b[31mreceived\x1b[39m) \x1b[1;31mx\x1b[0m";
	pw_strip_ansi(s);
	ck_assert_str_eq(s, "Error: expect(received) x");
}
END_TEST

/* ---- the module, options (no Playwright needed) ------------------------------------------ */

START_TEST(t_module)
{
	const hypertest_plugin_descriptor *d = dlsym(module, "hypertest_plugin_info");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->magic, HYPERTEST_PLUGIN_MAGIC);
	ck_assert_uint_eq(d->abi_major, HYPERTEST_PLUGIN_ABI_MAJOR);
	ck_assert_str_eq(d->module, "runner-playwright");
	ck_assert_str_eq(fake_reg.name, "playwright");
	const int ids[] = {HYPERTEST_OP_CREATE, HYPERTEST_OP_DESTROY, HYPERTEST_OP_DOCTOR,
	                   HYPERTEST_RUNNER_LIST_TESTS, HYPERTEST_RUNNER_TEST_DIR,
	                   HYPERTEST_RUNNER_IMAGE_CONTENT, HYPERTEST_RUNNER_RUN_TEST};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		ck_assert_ptr_nonnull(fake_op(ids[i]));
	ck_assert_ptr_null(dlsym(module, "pw_grep_pattern")); /* only the entry points */
}
END_TEST

START_TEST(t_options)
{
	destroy(create(NULL));
	destroy(create("{}"));
	destroy(create("{\"command\": [\"node\", \"cli.js\", \"test\"], \"config\": \"pw/c.ts\", "
	               "\"projects\": [\"a\", \"b\"], \"include\": [\"node_modules\"]}"));
	destroy(create("{\"projects\": \"all\"}"));
	destroy(create("{\"projects\": \"first\"}"));
	refused("[]", HYPERTEST_ERR_CONFIG, "expected an object", NULL);
	refused("{\"comand\": [\"x\"]}", HYPERTEST_ERR_CONFIG, "'comand'", "command", NULL);
	refused("{\"command\": \"npx playwright test\"}", HYPERTEST_ERR_CONFIG, "'command'", NULL);
	refused("{\"command\": []}", HYPERTEST_ERR_CONFIG, "'command'", "non-empty", NULL);
	refused("{\"command\": [\"\"]}", HYPERTEST_ERR_CONFIG, "'command'", "empty", NULL);
	refused("{\"command\": [\"npx\", 3]}", HYPERTEST_ERR_CONFIG, "'command'", "element 2", NULL);
	refused("{\"config\": 7}", HYPERTEST_ERR_CONFIG, "'config'", NULL);
	refused("{\"config\": \"/etc/pw.ts\"}", HYPERTEST_ERR_CONFIG, "'config'", "relative", NULL);
	refused("{\"config\": \"../pw.ts\"}", HYPERTEST_ERR_CONFIG, "'config'", "..", NULL);
	refused("{\"projects\": \"some\"}", HYPERTEST_ERR_CONFIG, "'projects'", "first", NULL);
	refused("{\"projects\": []}", HYPERTEST_ERR_CONFIG, "'projects'", NULL);
	refused("{\"projects\": [\"a\", \"a\"]}", HYPERTEST_ERR_CONFIG, "'projects'", "repeats",
	        NULL);
	refused("{\"include\": [\"a/../../b\"]}", HYPERTEST_ERR_CONFIG, "'include'", "..", NULL);
	refused("{\"include\": \"node_modules\"}", HYPERTEST_ERR_CONFIG, "'include'", NULL);
}
END_TEST

/* A report whose file suites hold no test (found by tests/fuzz): no test,
 * said, and no sort of an empty list (UBSan: qsort of NULL + 0). */
START_TEST(t_report_without_tests)
{
	static const char report[] =
	    "{\"config\": {\"projects\": [{\"name\": \"a\", \"testDir\": \"/p\"}]},"
	    " \"suites\": [{\"title\": \"a.spec.ts\", \"file\": \"a.spec.ts\", \"specs\": []}]}";
	pw_options o = {0};
	pw_listing l;
	pw_outcome out;
	char *error = NULL;
	if (pw_listing_parse(report, strlen(report), &o, &l, &error) == 0) {
		ck_assert_uint_eq(l.n, 0);
		pw_listing_free(&l);
	}
	free(error);
	error = NULL;
	/* as the outcome of a run: the test failed, no test in the report */
	ck_assert_int_eq(pw_outcome_parse(report, strlen(report), "x", "/p", &out, &error), 0);
	ck_assert_int_eq(out.status, HYPERTEST_STATUS_FAILED);
	ck_assert_ptr_nonnull(out.message);
	pw_outcome_free(&out);
	free(error);
}
END_TEST

/* A listing whose project has a relative testDir (found by tests/fuzz: the
 * common ancestor of "/p/specs" and "p/specs/nested" was looked for for
 * ever): refused, naming it. */
START_TEST(t_listing_relative_test_dir)
{
	static const char report[] =
	    "{\"config\": {\"projects\": [{\"name\": \"a\", \"testDir\": \"/p/specs\"},"
	    " {\"name\": \"b\", \"testDir\": \"p/specs/nested\"}]}, \"suites\": []}";
	pw_options o = {0};
	pw_listing l;
	char *error = NULL;
	o.projects = PW_PROJECTS_ALL;
	ck_assert_int_eq(pw_listing_parse(report, strlen(report), &o, &l, &error),
	                 HYPERTEST_ERR_RUNNER);
	ck_assert_msg(error && strstr(error, "project 2") && strstr(error, "p/specs/nested") &&
	              strstr(error, "absolute"), "%s", error ? error : "(null)");
	free(error);
}
END_TEST

/* A command that writes no report: the test fails with what it printed. */
START_TEST(t_run_without_report)
{
	void *self = create("{\"command\": [\"/bin/sh\", \"-c\", \"echo cannot start >&2; exit 3\", "
	                    "\"sh\"]}");
	hypertest_result res;
	run_ok(self, "{\"grep\": \"^alpha a\\\\\\\\.spec\\\\\\\\.ts t$\"}", &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_ptr_nonnull(res.message);
	ck_assert_msg(strstr(res.message, "no report") && strstr(res.message, "status 3") &&
	                  strstr(res.message, "cannot start"),
	              "%s", res.message);
	ck_assert_str_eq(res.name, "^alpha a\\.spec\\.ts t$"); /* undoubled */
	fake_result_free(&res);
	/* the list command fails the same way, with an error */
	hypertest_list l = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), HYPERTEST_ERR_RUNNER);
	ck_assert_msg(strstr(core.error, "cannot start"), "%s", core.error);
	ck_assert_uint_eq(l.n, 0);
	destroy(self);
	/* a program that does not exist */
	self = create("{\"command\": [\"/nonexistent/playwright\"]}");
	run_ok(self, "{\"grep\": \"^x$\"}", &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_msg(strstr(res.message, "/nonexistent/playwright"), "%s", res.message);
	fake_result_free(&res);
	destroy(self);
}
END_TEST

START_TEST(t_bad_context)
{
	void *self = create("{\"command\": [\"/bin/true\"]}");
	hypertest_result res;
	ck_assert_int_eq(run_context(self, "{\"id\": \"x\"}", &res), HYPERTEST_ERR_INVALID);
	ck_assert_msg(strstr(core.error, "grep"), "%s", core.error);
	ck_assert_int_eq(run_context(self, "not json", &res), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(run_context(self, "{\"grep\": \"\"}", &res), HYPERTEST_ERR_INVALID);
	ck_assert(!res.has_status);
	destroy(self);
}
END_TEST

/* ---- listing the real project -------------------------------------------------------------- */

/* The alpha contexts, in source order, as the TypeScript hypertest writes
 * them (computed with its rules: escape-string-regexp, then backslashes
 * doubled).  In C, "\\\\" is the two backslashes of one doubled pair. */
static const char *const alpha_greps[N_TESTS] = {
	"^alpha basic\\\\.spec\\\\.ts top level passes$",
	"^alpha basic\\\\.spec\\\\.ts outer inside outer$",
	"^alpha basic\\\\.spec\\\\.ts outer inner deep test$",
	"^alpha basic\\\\.spec\\\\.ts loop case 1$",
	"^alpha basic\\\\.spec\\\\.ts loop case 2$",
	"^alpha basic\\\\.spec\\\\.ts loop case 3$",
	"^alpha basic\\\\.spec\\\\.ts fails on purpose$",
	"^alpha basic\\\\.spec\\\\.ts times out on purpose$",
	"^alpha basic\\\\.spec\\\\.ts skipped on purpose$",
	"^alpha browser\\\\.spec\\\\.ts chromium renders a loopback page$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts group \\\\[x\\\\] choice \\\\(a\\\\|b\\\\)$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts group \\\\[x\\\\] dotted a\\\\.b$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts dash x\\\\x2dy$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts dollar \\\\$1 and caret \\\\^ and star "
	"\\\\* and plus \\\\+ and question \\\\?$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts braces \\\\{n\\\\} and back\\\\\\\\slash$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts unicode ünïcødé ✓$",
	"^alpha nested/regex\\\\x2dtitles\\\\.spec\\\\.ts dash x$",
};

static void list(void *self, hypertest_list *l)
{
	memset(l, 0, sizeof *l);
	int rc = OP(HYPERTEST_RUNNER_LIST_TESTS)(self, l);
	ck_assert_msg(rc == 0, "list = %d: %s", rc, core.error);
}

START_TEST(t_list_first)
{
	void *self = create("{}"); /* npx playwright test, the first project */
	hypertest_list l;
	list(self, &l);
	ck_assert_uint_eq(l.n, N_TESTS);
	for (size_t i = 0; i < l.n; i++) {
		char *g = grep_of(l.items[i]);
		ck_assert_str_eq(g, alpha_greps[i]);
		free(g);
	}
	/* the context text itself: {"grep": ...} with JSON's escapes */
	ck_assert_str_eq(l.items[0], "{\"grep\":\"^alpha basic\\\\\\\\.spec\\\\\\\\.ts top level "
	                             "passes$\"}");
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "specs");
	fake_list_free(&l);
	destroy(self);
}
END_TEST

START_TEST(t_list_projects)
{
	void *self = create("{\"projects\": \"all\"}");
	hypertest_list l;
	list(self, &l);
	ck_assert_uint_eq(l.n, 2 * N_TESTS);
	for (size_t i = 0; i < l.n; i++) {
		char *g = grep_of(l.items[i]);
		const char *want = alpha_greps[i % N_TESTS];
		if (i < N_TESTS)
			ck_assert_str_eq(g, want);
		else /* the same tests in beta */
			ck_assert_msg(!strncmp(g, "^beta ", 6) && !strcmp(g + 6, want + 7), "%s", g);
		free(g);
	}
	fake_list_free(&l);
	destroy(self);

	self = create("{\"projects\": [\"beta\"], \"config\": \"playwright.config.ts\"}");
	list(self, &l);
	ck_assert_uint_eq(l.n, N_TESTS);
	char *g = grep_of(l.items[3]);
	ck_assert_str_eq(g, "^beta basic\\\\.spec\\\\.ts loop case 1$");
	free(g);
	fake_list_free(&l);
	destroy(self);

	self = create("{\"projects\": [\"alpha\", \"gamma\"]}");
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), HYPERTEST_ERR_CONFIG);
	ck_assert_msg(strstr(core.error, "'projects'") && strstr(core.error, "'gamma'") &&
	                  strstr(core.error, "'alpha', 'beta'"),
	              "%s", core.error);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(OP(HYPERTEST_RUNNER_TEST_DIR)(self));
	destroy(self);
}
END_TEST

/* TEST_DIR without a listing before it lists; a spec that does not load
 * is an error naming it. */
START_TEST(t_list_errors)
{
	void *self = create("{\"projects\": [\"beta\"]}");
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "specs");
	destroy(self);

	char path[512];
	snprintf(path, sizeof path, "%s/specs/broken-%d.spec.ts", project, (int)getpid());
	write_text(path, "import { test } from '@playwright/test';\ntest('x', () => {\n");
	self = create("{}");
	hypertest_list l = {0};
	int rc = OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l);
	unlink(path);
	ck_assert_int_eq(rc, HYPERTEST_ERR_RUNNER);
	ck_assert_msg(strstr(core.error, "broken-"), "%s", core.error);
	ck_assert_uint_eq(l.n, 0);
	destroy(self);
}
END_TEST

START_TEST(t_image_content)
{
	void *self = create("{\"include\": [\"node_modules/@playwright\"]}");
	hypertest_layer layer = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_IMAGE_CONTENT)(self, &layer), 0);
	const char *want[] = {"specs", "playwright.config.ts", "package.json", "package-lock.json",
	                      "node_modules/@playwright"};
	ck_assert_uint_eq(layer.n, 5);
	for (size_t i = 0; i < layer.n; i++) {
		char src[4096];
		snprintf(src, sizeof src, "%s/%s", project, want[i]);
		ck_assert_str_eq(layer.dst[i], want[i]);
		ck_assert_str_eq(layer.src[i], src);
		free(layer.src[i]);
		free(layer.dst[i]);
	}
	destroy(self);
	/* a config named by the option must exist */
	self = create("{\"config\": \"missing.config.ts\"}");
	memset(&layer, 0, sizeof layer);
	ck_assert_int_ne(OP(HYPERTEST_RUNNER_IMAGE_CONTENT)(self, &layer), 0);
	ck_assert_msg(strstr(core.error, "missing.config.ts"), "%s", core.error);
	for (size_t i = 0; i < layer.n; i++)
		free(layer.src[i]), free(layer.dst[i]);
	destroy(self);
}
END_TEST

START_TEST(t_doctor)
{
	void *self = create("{}");
	hypertest_checks c = {0};
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.name[0], "runner.playwright.command");
	ck_assert_int_eq(c.status[0], HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(c.msg[0], "Version 1."), "%s", c.msg[0]);
	ck_assert_str_eq(c.name[1], "runner.playwright.config");
	ck_assert_int_eq(c.status[1], HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(c.msg[1], "playwright.config.ts"), "%s", c.msg[1]);
	destroy(self);

	self = create("{\"command\": [\"/nonexistent/npx\"]}");
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_int_eq(c.status[0], HYPERTEST_CHECK_FAILED);
	ck_assert_msg(strstr(c.msg[0], "/nonexistent/npx"), "%s", c.msg[0]);
	destroy(self);
}
END_TEST

/* ---- running tests of a manifest in the TypeScript format ------------------------------- */

/* A manifest as the TypeScript hypertest wrote it (contexts with doubled
 * backslashes, JSON-escaped once more in the file), and the test each
 * context must run. */
static const char ts_manifest[] =
    "{\"imageDigest\": \"sha256:0000000000000000000000000000000000000000000000000000000000000000\","
    " \"testDirHash\": \"00\", \"invokePayloadContexts\": ["
    "{\"grep\": \"^alpha nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts group \\\\\\\\[x\\\\\\\\] "
    "choice \\\\\\\\(a\\\\\\\\|b\\\\\\\\)$\"},"
    "{\"grep\": \"^beta nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts group \\\\\\\\[x\\\\\\\\] "
    "dotted a\\\\\\\\.b$\"},"
    "{\"grep\": \"^alpha nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts dash x\\\\\\\\x2dy$\"},"
    "{\"grep\": \"^alpha nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts dash x$\"},"
    "{\"grep\": \"^alpha nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts dollar \\\\\\\\$1 and "
    "caret \\\\\\\\^ and star \\\\\\\\* and plus \\\\\\\\+ and question \\\\\\\\?$\"},"
    "{\"grep\": \"^beta nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts braces \\\\\\\\{n\\\\\\\\} "
    "and back\\\\\\\\\\\\\\\\slash$\"},"
    "{\"grep\": \"^alpha nested/regex\\\\\\\\x2dtitles\\\\\\\\.spec\\\\\\\\.ts unicode ünïcødé ✓$\"},"
    "{\"grep\": \"^beta basic\\\\\\\\.spec\\\\\\\\.ts loop case 2$\"},"
    "{\"grep\": \"^alpha basic\\\\\\\\.spec\\\\\\\\.ts outer inner deep test$\"}"
    "]}";

static const char *const ts_manifest_names[] = {
	"[alpha] nested/regex-titles.spec.ts > group [x] > choice (a|b)",
	"[beta] nested/regex-titles.spec.ts > group [x] > dotted a.b",
	"[alpha] nested/regex-titles.spec.ts > dash x-y",
	"[alpha] nested/regex-titles.spec.ts > dash x",
	"[alpha] nested/regex-titles.spec.ts > dollar $1 and caret ^ and star * and plus + and "
	"question ?",
	"[beta] nested/regex-titles.spec.ts > braces {n} and back\\slash",
	"[alpha] nested/regex-titles.spec.ts > unicode ünïcødé ✓",
	"[beta] basic.spec.ts > loop case 2",
	"[alpha] basic.spec.ts > outer > inner > deep test",
};

START_TEST(t_ts_manifest)
{
	json_error_t err;
	json_t *m = json_loads(ts_manifest, 0, &err);
	ck_assert_msg(m != NULL, "%s", err.text);
	json_t *contexts = json_object_get(m, "invokePayloadContexts");
	size_t n = sizeof ts_manifest_names / sizeof ts_manifest_names[0];
	ck_assert_uint_eq(json_array_size(contexts), n);
	void *self = create("{}");
	json_t *ctx;
	size_t i;
	json_array_foreach(contexts, i, ctx) {
		char *text = json_dumps(ctx, JSON_COMPACT);
		hypertest_result res;
		run_ok(self, text, &res);
		ck_assert_msg(res.status == HYPERTEST_STATUS_SUCCESS, "%s: %d %s", text, res.status,
		              res.message ? res.message : "");
		ck_assert_str_eq(res.name, ts_manifest_names[i]);
		ck_assert_str_eq(res.file_path, i < 7 ? "specs/nested/regex-titles.spec.ts"
		                                      : "specs/basic.spec.ts");
		fake_result_free(&res);
		free(text);
	}
	/* what this plugin lists runs the same tests: its dash x-y context */
	hypertest_list l;
	list(self, &l);
	hypertest_result res;
	run_ok(self, l.items[12], &res);
	ck_assert_str_eq(res.name, ts_manifest_names[2]);
	fake_result_free(&res);
	fake_list_free(&l);
	destroy(self);
	json_decref(m);
}
END_TEST

/* The report Playwright wrote, for the duration it measured. */
static int64_t report_duration(void)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/playwright-results.json", artifacts);
	json_error_t err;
	json_t *r = json_load_file(path, 0, &err);
	ck_assert_msg(r != NULL, "%s: %s", path, err.text);
	json_t *suite = json_array_get(json_object_get(r, "suites"), 0);
	json_t *spec = json_array_get(json_object_get(suite, "specs"), 0);
	while (!spec) { /* in a describe */
		suite = json_array_get(json_object_get(suite, "suites"), 0);
		ck_assert_ptr_nonnull(suite);
		spec = json_array_get(json_object_get(suite, "specs"), 0);
	}
	json_t *result = json_array_get(
	    json_object_get(json_array_get(json_object_get(spec, "tests"), 0), "results"), 0);
	int64_t d = (int64_t)json_number_value(json_object_get(result, "duration"));
	json_decref(r);
	return d;
}

static void run_grep(void *self, const char *doubled_grep, hypertest_result *res)
{
	json_t *ctx = json_pack("{s:s}", "grep", doubled_grep);
	char *text = json_dumps(ctx, JSON_COMPACT);
	json_decref(ctx);
	run_ok(self, text, res);
	free(text);
}

START_TEST(t_status_passed)
{
	void *self = create("{}");
	hypertest_result res;
	run_grep(self, alpha_greps[0], &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SUCCESS);
	ck_assert_str_eq(res.name, "[alpha] basic.spec.ts > top level passes");
	ck_assert_int_eq(res.duration, report_duration());
	ck_assert_ptr_null(res.message);
	/* the artifacts: report, logs, Playwright's output folder */
	const char *files[] = {"playwright-results.json", "stdout.log", "stderr.log", "test-results"};
	for (size_t i = 0; i < 4; i++) {
		char path[1024];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", artifacts, files[i]);
		ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	}
	fake_result_free(&res);
	destroy(self);
}
END_TEST

START_TEST(t_status_failed)
{
	void *self = create("{}");
	hypertest_result res;
	run_grep(self, alpha_greps[6], &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(res.name, "[alpha] basic.spec.ts > fails on purpose");
	ck_assert_ptr_nonnull(res.message);
	ck_assert_msg(strstr(res.message, "one is not two") && strstr(res.message, "Expected: 2"),
	              "%s", res.message);
	ck_assert_ptr_null(strchr(res.message, '\x1b')); /* no colours */
	ck_assert_ptr_nonnull(res.stack);
	ck_assert_msg(strstr(res.stack, "basic.spec.ts:"), "%s", res.stack);
	ck_assert_int_eq(res.duration, report_duration());
	char path[1024];
	snprintf(path, sizeof path, "%s/test-results", artifacts);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	fake_result_free(&res);

	run_grep(self, alpha_greps[7], &res); /* timedOut */
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_msg(strstr(res.message, "timeout") || strstr(res.message, "Timeout"), "%s",
	              res.message);
	fake_result_free(&res);
	destroy(self);
}
END_TEST

START_TEST(t_status_skipped)
{
	void *self = create("{}");
	hypertest_result res;
	run_grep(self, alpha_greps[8], &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_SKIPPED);
	ck_assert_str_eq(res.name, "[alpha] basic.spec.ts > skipped on purpose");
	fake_result_free(&res);
	destroy(self);
}
END_TEST

START_TEST(t_status_browser)
{
	void *self = create("{\"projects\": [\"beta\"]}");
	hypertest_result res;
	run_grep(self, "^beta browser\\\\.spec\\\\.ts chromium renders a loopback page$", &res);
	if (access("/usr/bin/chromium", X_OK) == 0)
		ck_assert_msg(res.status == HYPERTEST_STATUS_SUCCESS, "%s",
		              res.message ? res.message : "");
	else
		ck_assert_int_eq(res.status, HYPERTEST_STATUS_SKIPPED);
	fake_result_free(&res);
	destroy(self);
}
END_TEST

START_TEST(t_status_count)
{
	void *self = create("{}");
	hypertest_result res;
	run_grep(self, "^gamma nothing$", &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_msg(strstr(res.message, "no test matched --grep ^gamma nothing$"), "%s",
	              res.message);
	fake_result_free(&res);

	/* no "$": the three loop cases match */
	run_grep(self, "^alpha basic\\\\.spec\\\\.ts loop case", &res);
	ck_assert_int_eq(res.status, HYPERTEST_STATUS_FAILED);
	ck_assert_msg(strstr(res.message, "3 tests matched --grep ^alpha basic\\.spec\\.ts loop case") &&
	                  strstr(res.message, "[alpha] basic.spec.ts > loop case 1") &&
	                  strstr(res.message, "[alpha] basic.spec.ts > loop case 3"),
	              "%s", res.message);
	fake_result_free(&res);
	destroy(self);
}
END_TEST

/* ---- main -------------------------------------------------------------------------------------- */

static Suite *offline_suite(void)
{
	Suite *s = suite_create("runner-playwright");
	TCase *tc = tcase_create("escape");
	tcase_add_test(tc, t_escape);
	tcase_add_test(tc, t_report_without_tests);
	tcase_add_test(tc, t_listing_relative_test_dir);
	tcase_add_test(tc, t_pattern);
	tcase_add_test(tc, t_undouble);
	tcase_add_test(tc, t_strip_ansi);
	suite_add_tcase(s, tc);
	tc = tcase_create("options");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_module);
	tcase_add_test(tc, t_options);
	tcase_add_test(tc, t_run_without_report);
	tcase_add_test(tc, t_bad_context);
	suite_add_tcase(s, tc);
	return s;
}

static Suite *project_suite(void)
{
	Suite *s = suite_create("runner-playwright-project");
	TCase *tc = tcase_create("list");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, t_list_first);
	tcase_add_test(tc, t_list_projects);
	tcase_add_test(tc, t_list_errors);
	tcase_add_test(tc, t_image_content);
	tcase_add_test(tc, t_doctor);
	suite_add_tcase(s, tc);
	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, t_ts_manifest);
	tcase_add_test(tc, t_status_passed);
	tcase_add_test(tc, t_status_failed);
	tcase_add_test(tc, t_status_skipped);
	tcase_add_test(tc, t_status_browser);
	tcase_add_test(tc, t_status_count);
	suite_add_tcase(s, tc);
	return s;
}

static int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

int main(void)
{
	snprintf(base, sizeof base, "/tmp/ht-runner-playwright-XXXXXX");
	if (!mkdtemp(base)) {
		perror(base);
		return 1;
	}
	int failed = run_suite(offline_suite());
	const char *why = prepare_project();
	int skipped = why != NULL;
	if (why) {
		fprintf(stderr, "check_runner_playwright: skipping the Playwright tests: %s\n", why);
		project[0] = '\0';
	} else {
		failed += run_suite(project_suite());
	}
	if (chdir("/") == 0)
		fake_rm_tree(base);
	if (failed)
		return 1;
	return skipped ? 77 : 0;
}
