/*
 * collect.c - LIST_TESTS of the "pytest" runner: `PYTHON -m pytest
 * --collect-only -q TESTDIR` in rootDir, one context {"nodeid": ...} per
 * line of its output up to the first empty line (the summary follows it).
 * A node id is taken whole, spaces, brackets and "::" in parameter ids
 * included; a line without "::" means the output is not what -q prints
 * (an "addopts" with -q or -v, say) and is an error.  Exit status 5 (no
 * tests) is HYPERTEST_ERR_EMPTY; any other failure HYPERTEST_ERR_RUNNER
 * with the tail of pytest's output.
 */
#define _GNU_SOURCE
#include "pytest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_OUTPUT_MAX (64ull << 20)
#define TAIL_BYTES 4096

static int add_context(pyt_runner *r, hypertest_list *list, const char *id, size_t len)
{
	json_t *o = json_pack("{s:s%}", "nodeid", id, len);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM, PYT_PREFIX "out of memory");
	int rc = pyt_up.list_add(list, text);
	free(text);
	return rc;
}

/* Check (adding == 0) or add every node id line of out. */
static int each_line(pyt_runner *r, hypertest_list *list, const char *out, size_t n, int adding,
                     size_t *count)
{
	size_t line = 0;
	*count = 0;
	for (const char *p = out, *end = out + n; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0)
			break; /* the summary follows */
		if (adding) {
			int rc = add_context(r, list, p, len);
			if (rc)
				return rc;
		} else {
			for (size_t i = 0, c; i < len; i += c)
				if (!(c = htp_utf8_char((const unsigned char *)p + i, len - i)))
					return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_RUNNER,
					                PYT_PREFIX "pytest --collect-only: line %zu is not UTF-8 "
					                "text",
					                line);
			if (!memmem(p, len, "::", 2))
				return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_RUNNER,
				                PYT_PREFIX "pytest --collect-only: line %zu is not a node id: "
				                "'%.*s' (do options or addopts change -q?)",
				                line, (int)(len > 200 ? 200 : len), p);
		}
		(*count)++;
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

int pyt_list_tests(void *self, hypertest_list *list)
{
	pyt_runner *r = self;
	static const char *const extra[] = {"--collect-only", "-q", NULL};
	if (!pyt_up.list_add)
		return htp_fail(&pyt_up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		               PYT_PREFIX "the core cannot receive tests");
	char *root = htp_path_join(pyt_project_dir(r), r->root_dir), *error = NULL;
	htp_run run = {.argv = pyt_argv(r, extra, r->test_arg), .envp = pyt_env(NULL), .cwd = root,
	              .limit = LIST_OUTPUT_MAX, .tail_cap = TAIL_BYTES};
	int rc;
	if (!root || !run.argv || !run.envp) {
		rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_NOMEM, PYT_PREFIX "out of memory");
		goto done;
	}
	if ((rc = htp_run_program(&run, &error))) {
		htp_fail(&pyt_up, r->core, rc, PYT_PREFIX "%s", error ? error : "out of memory");
		goto done;
	}
	int code = htp_run_exit_code(&run);
	if (code != 0) {
		char *why = htp_run_outcome(&run), *tail = htp_run_output_tail(&run, TAIL_BYTES);
		rc = htp_fail(&pyt_up, r->core,
		              code == 5 ? HYPERTEST_ERR_EMPTY : HYPERTEST_ERR_RUNNER,
		              PYT_PREFIX "%s in '%s': %s%s%s",
		              code == 5 ? "pytest collected no tests" : "pytest --collect-only failed",
		              root, why ? why : "failed", tail && *tail ? "\n" : "",
		              tail ? tail : "");
		free(why);
		free(tail);
		goto done;
	}
	if (run.out.total > run.out.kept || run.out.nomem) {
		rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_RUNNER,
		              PYT_PREFIX "pytest --collect-only printed more than %llu bytes",
		              (unsigned long long)LIST_OUTPUT_MAX);
		goto done;
	}
	size_t count = 0;
	const char *out = run.out.mem.data ? run.out.mem.data : "";
	rc = each_line(r, list, out, run.out.mem.len, 0, &count);
	if (!rc && count == 0)
		rc = htp_fail(&pyt_up, r->core, HYPERTEST_ERR_EMPTY,
		              PYT_PREFIX "pytest --collect-only printed no node ids");
	if (!rc)
		rc = each_line(r, list, out, run.out.mem.len, 1, &count);
done:
	free(error);
	free(root);
	htp_strv_free(run.argv);
	free(run.envp);
	htp_run_free(&run);
	return rc;
}
