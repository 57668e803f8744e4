/*
 * check_runner_pytest.c - the "pytest" runner plugin with the real pytest on
 * tests/projects/pytest-project: options, listing, every status mapping with
 * its message, doctor, image content; and the XML reader of
 * plugins/common (linked in).  Skipped (77) without pytest.  The
 * module is $HT_TOP_BUILDDIR/plugins/.libs/runner-pytest.so (or
 * $HT_RUNNER_PYTEST_MODULE).
 */
#include "runners-core.h"

#include <errno.h>
#include <sys/stat.h>

#include "../../plugins/common/htplugin.h"

static hypertest_core core;
static char python[256], project[4096], tmp[64];
static void *module;
static void *self;
static int last_art; /* number of the last artifacts directory */

static void setup(void)
{
	const char *m = getenv("HT_RUNNER_PYTEST_MODULE");
	char path[4096];
	snprintf(path, sizeof path, "%s/plugins/.libs/runner-pytest.so", HT_TOP_BUILDDIR);
	const char *src = getenv("HT_TOP_SRCDIR");
	snprintf(project, sizeof project, "%s/tests/projects/pytest-project", src && *src ? src : HT_TOP_SRCDIR);
	memset(&core, 0, sizeof core);
	core.project_dir = project;
	module = fake_load(m && *m ? m : path, &core, fake_upcalls(NULL), HYPERTEST_KIND_RUNNER, NULL);
	snprintf(tmp, sizeof tmp, "/tmp/ht-pytest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(chdir(project), 0); /* the function runs in the task root */
	self = NULL;
}

static void teardown(void)
{
	if (self)
		OP(HYPERTEST_OP_DESTROY)(self);
	fake_rm_tree(tmp);
	dlclose(module);
	fake_reg.ops = NULL;
}

static int create(const char *fmt, const char *extra)
{
	char opts[4096];
	snprintf(opts, sizeof opts, fmt, python, extra ? extra : "");
	return OP(HYPERTEST_OP_CREATE)(&core, opts, &self);
}
#define STD "{\"python\": \"%s\"%s}"

/* ---- options -------------------------------------------------------------------------- */

static void create_fails(const char *opts, const char *msg)
{
	void *s = (void *)1;
	ck_assert_int_eq(OP(HYPERTEST_OP_CREATE)(&core, opts, &s),
	                 HYPERTEST_ERR_CONFIG);
	ck_assert_ptr_null(s);
	ck_assert_str_eq(core.error, msg);
}

START_TEST(options)
{
	create_fails("{\"testdir\": \"t\"}", "runner 'pytest': unknown option 'testdir' (did you mean 'testDir'?)");
	create_fails("{\"zzzzzzzzzz\": 1}", "runner 'pytest': unknown option 'zzzzzzzzzz' (known: "
	             "python, args, rootDir, testDir, include)");
	create_fails("{\"args\": \"-x\"}", "runner 'pytest': option 'args': expected an array of strings");
	create_fails("{\"args\": [1]}", "runner 'pytest': option 'args': element 1 is not a string");
	create_fails("{\"python\": \"\"}", "runner 'pytest': option 'python': expected a non-empty string");
	create_fails("{\"testDir\": \"../x\"}", "runner 'pytest': option 'testDir': '../x' must not contain '..'");
	create_fails("{\"include\": [\"/etc\"]}",
	             "runner 'pytest': option 'include': '/etc' must be relative to the project directory");
	create_fails("{\"rootDir\": \"py\", \"testDir\": \"tests\"}",
	             "runner 'pytest': option 'testDir': 'tests' is not inside rootDir 'py'");
	create_fails("[]", "runner 'pytest': options: expected an object");
	ck_assert_int_eq(create(STD, ", \"testDir\": \"tests/\""), 0);
	ck_assert_str_eq(OP(HYPERTEST_RUNNER_TEST_DIR)(self), "tests");
}
END_TEST

/* ---- listing -------------------------------------------------------------------------- */

static const char *const node_ids[] = {
	"tests/test_basic.py::test_passes",
	"tests/test_basic.py::test_fails",
	"tests/test_basic.py::test_skipped",
	"tests/test_basic.py::test_xfail",
	"tests/test_basic.py::test_xpass",
	"tests/test_basic.py::test_xpass_strict",
	"tests/test_basic.py::test_artifacts_path",
	"tests/test_params.py::test_ids[a b]",
	"tests/test_params.py::test_ids[x[1]]",
	"tests/test_params.py::test_ids[k::v]",
	"tests/test_params.py::TestGroup::test_in_class",
	"tests/test_params.py::TestGroup::test_param_in_class[one <&> two]",
	"tests/test_params.py::TestGroup::test_param_in_class[two]",
	"tests/test_params.py::TestGroup::test_fixture_error",
	NULL};

START_TEST(listing)
{
	struct hypertest_list l = {0};
	ck_assert_int_eq(create(STD, NULL), 0);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_LIST_TESTS)(self, &l), 0);
	size_t n = 0;
	for (; node_ids[n]; n++) {
		ck_assert_uint_lt(n, l.n);
		json_t *o = json_loads(l.items[n], 0, NULL);
		ck_assert_ptr_nonnull(o);
		ck_assert_uint_eq(json_object_size(o), 1);
		ck_assert_str_eq(json_string_value(json_object_get(o, "nodeid")), node_ids[n]);
		json_decref(o);
	}
	ck_assert_uint_eq(l.n, n);
	for (size_t i = 0; i < l.n; i++)
		free(l.items[i]);
}
END_TEST

static void write_text(const char *dir, const char *name, const char *text)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(listing_errors)
{
	char dir[256];
	snprintf(dir, sizeof dir, "%s/tests", tmp);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	core.project_dir = tmp;
	ck_assert_int_eq(create(STD, NULL), 0);
	struct hypertest_list l = {0};
	hypertest_RUNNER_LIST_TESTS_fn list = OP(HYPERTEST_RUNNER_LIST_TESTS);
	ck_assert_int_eq(list(self, &l), HYPERTEST_ERR_EMPTY);
	ck_assert_msg(strstr(core.error, "runner 'pytest': pytest collected no tests in '") != NULL, "%s", core.error);
	ck_assert_msg(strstr(core.error, "exited with status 5") != NULL, "%s", core.error);
	write_text(dir, "test_ok.py", "def test_a():\n    pass\n");
	write_text(dir, "test_bad.py", "import nosuchmodule\n");
	ck_assert_int_eq(list(self, &l), HYPERTEST_ERR_RUNNER);
	ck_assert_uint_eq(l.n, 0); /* all or nothing */
	ck_assert_msg(strstr(core.error, "runner 'pytest': pytest --collect-only failed in '") != NULL, "%s", core.error);
	ck_assert_msg(strstr(core.error, "No module named 'nosuchmodule'") != NULL, "%s", core.error);
	ck_assert_msg(strstr(core.error, "1 error") != NULL, "%s", core.error);
	/* output that is not -q's: addopts with another -q */
	remove("never-there");
	write_text(dir, "test_bad.py", "def test_b():\n    pass\n");
	write_text(tmp, "pytest.ini", "[pytest]\naddopts = -q\n");
	ck_assert_int_eq(list(self, &l), HYPERTEST_ERR_RUNNER);
	ck_assert_msg(strstr(core.error, "line 1 is not a node id: 'tests/test_") != NULL, "%s", core.error);
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

/* ---- running -------------------------------------------------------------------------- */

static struct hypertest_result run(const char *nodeid)
{
	struct hypertest_result r;
	memset(&r, 0, sizeof r);
	char art[256], ctx[1024];
	static int n;
	last_art = n;
	snprintf(art, sizeof art, "%s/art%d", tmp, n++);
	ck_assert_int_eq(mkdir(art, 0755), 0);
	json_t *o = json_pack("{s:s}", "nodeid", nodeid);
	char *c = json_dumps(o, JSON_COMPACT);
	snprintf(ctx, sizeof ctx, "%s", c);
	free(c);
	json_decref(o);
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_RUN_TEST)(self, ctx, art, &r), 0);
	ck_assert(r.has_status);
	char p[512];
	struct stat st;
	snprintf(p, sizeof p, "%s/stdout.log", art);
	ck_assert_int_eq(stat(p, &st), 0);
	snprintf(p, sizeof p, "%s/stderr.log", art);
	ck_assert_int_eq(stat(p, &st), 0);
	return r;
}

static void expect(const char *nodeid, int status, const char *name, const char *file,
                   const char *message)
{
	struct hypertest_result r = run(nodeid);
	ck_assert_msg(r.status == status, "%s: status %d, message %s", nodeid, r.status,
	              r.message ? r.message : "(none)");
	ck_assert_str_eq(r.name, name);
	ck_assert_str_eq(r.file_path, file);
	if (message)
		ck_assert_str_eq(r.message ? r.message : "(none)", message);
	else
		ck_assert_msg(r.message == NULL, "%s: unexpected message %s", nodeid, r.message);
	ck_assert(r.has_duration && r.duration >= 0);
	fake_result_free(&r);
}

START_TEST(statuses)
{
	ck_assert_int_eq(create(STD, NULL), 0);
	const char *b = "tests/test_basic.py", *p = "tests/test_params.py";
	expect("tests/test_basic.py::test_passes", HYPERTEST_STATUS_SUCCESS, "test_passes", b, NULL);
	expect("tests/test_basic.py::test_skipped", HYPERTEST_STATUS_SKIPPED, "test_skipped", b,
	       "not on this machine");
	expect("tests/test_basic.py::test_xfail", HYPERTEST_STATUS_SKIPPED, "test_xfail", b, "known bug 12");
	expect("tests/test_basic.py::test_xpass", HYPERTEST_STATUS_SUCCESS, "test_xpass", b, NULL);
	expect("tests/test_basic.py::test_xpass_strict", HYPERTEST_STATUS_FAILED, "test_xpass_strict", b,
	       "[XPASS(strict)] must fail");
	expect("tests/test_params.py::test_ids[a b]", HYPERTEST_STATUS_SUCCESS, "test_ids[a b]", p, NULL);
	expect("tests/test_params.py::test_ids[x[1]]", HYPERTEST_STATUS_SUCCESS, "test_ids[x[1]]", p, NULL);
	expect("tests/test_params.py::test_ids[k::v]", HYPERTEST_STATUS_SUCCESS, "test_ids[k::v]", p, NULL);
	expect("tests/test_params.py::TestGroup::test_in_class", HYPERTEST_STATUS_SUCCESS,
	       "TestGroup > test_in_class", p, NULL);
	expect("tests/test_params.py::TestGroup::test_param_in_class[one <&> two]",
	       HYPERTEST_STATUS_SUCCESS, "TestGroup > test_param_in_class[one <&> two]", p, NULL);
	expect("tests/test_params.py::TestGroup::test_param_in_class[two]", HYPERTEST_STATUS_FAILED,
	       "TestGroup > test_param_in_class[two]", p, "assert 2 < 2");
	expect("tests/test_params.py::TestGroup::test_fixture_error", HYPERTEST_STATUS_FAILED,
	       "TestGroup > test_fixture_error", p,
	       "failed on setup with \"RuntimeError: fixture exploded\"");

	struct hypertest_result r = run("tests/test_basic.py::test_fails");
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(r.message, "AssertionError: the answer is off by one\nassert 41 == 42");
	ck_assert_ptr_nonnull(r.stack);
	ck_assert_msg(strstr(r.stack, ">       assert value == 42, \"the answer is off by one\"\n") != NULL, "%s", r.stack);
	ck_assert_msg(strstr(r.stack, "tests/test_basic.py:11: AssertionError") != NULL, "%s", r.stack);
	fake_result_free(&r);

	/* HT_TEST_ARTIFACTS_OUTPUT_PATH: the test writes into its artifacts directory */
	r = run("tests/test_basic.py::test_artifacts_path");
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_SUCCESS);
	fake_result_free(&r);
	{
		char path[512];
		struct stat st;
		snprintf(path, sizeof path, "%s/art%d/from-test.txt", tmp, last_art);
		ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	}

	r = run("tests/test_basic.py::test_nope");
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
	const char *head = "pytest usage error (exit status 4) for node id "
	                   "'tests/test_basic.py::test_nope':\n";
	ck_assert_msg(!strncmp(r.message, head, strlen(head)), "%s", r.message);
	ck_assert_msg(strstr(r.message, "ERROR: not found:") != NULL, "%s", r.message);
	fake_result_free(&r);
}
END_TEST

START_TEST(not_collected)
{
	/* "-k" deselects it: pytest exits 5 */
	ck_assert_int_eq(create(STD, ", \"args\": [\"-k\", \"no_such_keyword\"]"), 0);
	struct hypertest_result r = run("tests/test_basic.py::test_passes");
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(r.message, "node id not found: tests/test_basic.py::test_passes");
	fake_result_free(&r);
}
END_TEST

START_TEST(no_python)
{
	ck_assert_int_eq(OP(HYPERTEST_OP_CREATE)(
	                     &core, "{\"python\": \"/nonexistent/python3\"}", &self), 0);
	struct hypertest_result r = run("tests/test_basic.py::test_passes");
	ck_assert_int_eq(r.status, HYPERTEST_STATUS_FAILED);
	ck_assert_str_eq(r.message, "pytest wrote no JUnit report: cannot run '/nonexistent/python3': "
	                            "No such file or directory");
	fake_result_free(&r);
	struct hypertest_checks c = {0};
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.name[1], "runner.pytest.pytest");
	ck_assert_int_eq(c.status[1], HYPERTEST_CHECK_FAILED);
	ck_assert_str_eq(c.msg[1], "/nonexistent/python3 -m pytest --version: cannot run "
	                               "'/nonexistent/python3': No such file or directory");
}
END_TEST

START_TEST(doctor_and_image)
{
	ck_assert_int_eq(create(STD, ", \"include\": [\"tests/test_basic.py\"]"), 0);
	struct hypertest_checks c = {0};
	ck_assert_int_eq(OP(HYPERTEST_OP_DOCTOR)(self, &c), 0);
	ck_assert_uint_eq(c.n, 2);
	ck_assert_str_eq(c.name[0], "runner.pytest.testDir");
	ck_assert_int_eq(c.status[0], HYPERTEST_CHECK_OK);
	ck_assert_int_eq(c.status[1], HYPERTEST_CHECK_OK);
	ck_assert_msg(strstr(c.msg[1], " -m pytest: pytest ") != NULL, "%s", c.msg[1]);

	struct hypertest_layer l = {0};
	ck_assert_int_eq(OP(HYPERTEST_RUNNER_IMAGE_CONTENT)(self, &l), 0);
	ck_assert_uint_eq(l.n, 3); /* tests, pytest.ini (no other root files), the include */
	ck_assert_str_eq(l.dst[0], "tests");
	ck_assert_str_eq(l.dst[1], "pytest.ini");
	ck_assert_str_eq(l.dst[2], "tests/test_basic.py");
	char want[8192];
	snprintf(want, sizeof want, "%s/pytest.ini", project);
	ck_assert_str_eq(l.src[1], want);
	fake_layer_free(&l);
}
END_TEST

/* ---- the XML reader ------------------------------------------------------------------- */

START_TEST(xml_reader)
{
	const char *doc = "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ELEMENT a ANY>]>\n"
	                  "<!-- c --><a k='v &amp; &lt;w&gt;' q=\"&quot;&apos;&#10;&#x41;\tz\">"
	                  "x&#233;<b/>y<![CDATA[<&>]]>\r\n<c>in</c><?pi x?>z</a> <!-- end -->";
	char *err = NULL;
	htp_xml *x = htp_xml_parse(doc, strlen(doc), &err);
	ck_assert_msg(x != NULL, "%s", err);
	ck_assert_str_eq(x->name, "a");
	ck_assert_str_eq(htp_xml_attr(x, "k"), "v & <w>");
	ck_assert_str_eq(htp_xml_attr(x, "q"), "\"'\nA z");
	ck_assert_str_eq(x->text, "x\xC3\xA9y<&>\nz");
	ck_assert_uint_eq(x->n_kids, 2);
	ck_assert_str_eq(htp_xml_child(x, "c")->text, "in");
	size_t n;
	htp_xml **all = htp_xml_find_all(x, "b", &n);
	ck_assert_uint_eq(n, 1);
	free(all);
	htp_xml_free(x);

	static const struct {
		const char *doc, *error;
	} bad[] = {
		{"<a>", "line 1, column 4: unexpected end of the document (unclosed element)"},
		{"<a></b>", "line 1, column 4: end tag does not match the open element"},
		{"<a>&nbsp;</a>", "line 1, column 4: unknown entity (only &lt; &gt; &amp; &quot; &apos; and &#...; are known)"},
		{"<a>&#0;</a>", "line 1, column 4: malformed character reference"},
		{"<a>&#xD800;</a>", "line 1, column 4: malformed character reference"},
		{"<a x='1' x='2'/>", "line 1, column 10: attribute given twice"},
		{"<a x=1/>", "line 1, column 6: expected a quoted attribute value"},
		{"<a/>\n<b/>", "line 2, column 1: content after the root element"},
		{"text", "line 1, column 1: text before the root element"},
		{"", "line 1, column 1: no root element"},
		{"<a><![CDATA[x</a>", "line 1, column 13: unterminated CDATA section"},
		{"<a x='<'/>", "line 1, column 6: '<' in an attribute value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		ck_assert_ptr_null(htp_xml_parse(bad[i].doc, strlen(bad[i].doc), &err));
		ck_assert_msg(err && !strcmp(err, bad[i].error), "%s: %s", bad[i].doc, err);
		free(err);
	}
	/* nesting is bounded */
	char deep[300 * 3 + 1] = "";
	for (int i = 0; i < 300; i++)
		strcat(deep, "<a>");
	err = NULL;
	ck_assert_ptr_null(htp_xml_parse(deep, strlen(deep), &err));
	ck_assert_msg(err && strstr(err, "elements nested too deeply"), "%s", err);
	free(err);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------ */

static int find_python(void)
{
	const char *env = getenv("HT_PYTHON");
	const char *cands[] = {env && *env ? env : "python3", "/usr/bin/python3", NULL};
	for (int i = 0; cands[i]; i++) {
		char *argv[] = {(char *)cands[i], "-m", "pytest", "--version", NULL};
		if (runs_ok(argv)) {
			snprintf(python, sizeof python, "%s", cands[i]);
			return 1;
		}
	}
	return 0;
}

int main(void)
{
	Suite *s = suite_create("runner-pytest");
	TCase *x = tcase_create("xml");
	tcase_add_test(x, xml_reader);
	suite_add_tcase(s, x);
	int have = find_python();
	if (have) {
		TCase *t = tcase_create("pytest");
		tcase_add_checked_fixture(t, setup, teardown);
		tcase_set_timeout(t, 120);
		tcase_add_test(t, options);
		tcase_add_test(t, listing);
		tcase_add_test(t, listing_errors);
		tcase_add_test(t, statuses);
		tcase_add_test(t, not_collected);
		tcase_add_test(t, no_python);
		tcase_add_test(t, doctor_and_image);
		suite_add_tcase(s, t);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (!have && !failed) {
		fprintf(stderr, "pytest not found (python3 -m pytest): skipped\n");
		return 77;
	}
	return failed ? 1 : 0;
}
