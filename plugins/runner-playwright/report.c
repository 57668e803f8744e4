/*
 * report.c - reads Playwright's JSON reports (--reporter=json).
 *
 * The report has config.rootDir and config.projects[] (name, testDir, both
 * absolute), and suites: one per spec file ("file" relative to rootDir, the
 * path Playwright's --grep sees), holding specs and nested describe suites;
 * each spec has one test per project ("projectName") with its results.
 *
 * Listing: one context {"grep": pattern} per (project, test) of the chosen
 * projects, tests in the order of their place in the file, projects in the
 * config's order.  Running: exactly one test is expected in the report.
 */
#define _GNU_SOURCE
#include "playwright.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hypertest/common.h>
#include <jansson.h>

#define PREFIX "runner 'playwright': "
#define MAX_DEPTH 64   /* nested describes */
#define MAX_LISTED 10  /* titles named when several tests ran */

static const char *str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

void pw_strip_ansi(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\x1b' && r[1] == '[') {
			r += 2;
			while (*r && ((unsigned char)*r < 0x40 || (unsigned char)*r > 0x7e))
				r++; /* parameter and intermediate bytes */
			if (*r)
				r++; /* the final byte */
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* The first message of the report's own errors (a spec that does not
 * load, a broken config), or NULL. */
static const char *report_error(json_t *root)
{
	json_t *errors = json_object_get(root, "errors");
	json_t *first = json_is_array(errors) ? json_array_get(errors, 0) : NULL;
	return first ? str(first, "message") : NULL;
}

/* ---- walking the suites ------------------------------------------------------------ */

/* One test of the report, as the walk meets it. */
typedef struct found {
	const char *file;         /* of the file suite */
	const char *titles[MAX_DEPTH + 1];
	size_t n_titles;          /* describes + the spec's title */
	json_t *spec, *test;
	long line, column;
	size_t seq;               /* order of meeting, for a stable sort */
} found;

typedef struct walk {
	found *items;
	size_t n, cap;
	int nomem, too_deep;
} walk;

static void walk_suite(walk *w, json_t *suite, const char *file, const char **titles,
                       size_t depth)
{
	if (depth > MAX_DEPTH) {
		w->too_deep = 1;
		return;
	}
	json_t *spec, *test, *child;
	size_t i, j;
	json_array_foreach(json_object_get(suite, "specs"), i, spec) {
		const char *title = str(spec, "title");
		json_array_foreach(json_object_get(spec, "tests"), j, test) {
			if (w->n == w->cap) {
				size_t cap = w->cap ? 2 * w->cap : 64;
				found *p = realloc(w->items, cap * sizeof *p);
				if (!p) {
					w->nomem = 1;
					return;
				}
				w->items = p;
				w->cap = cap;
			}
			found *f = &w->items[w->n];
			memset(f, 0, sizeof *f);
			f->file = file;
			memcpy(f->titles, titles, depth * sizeof *titles);
			f->titles[depth] = title ? title : "";
			f->n_titles = depth + 1;
			f->spec = spec;
			f->test = test;
			f->line = (long)json_integer_value(json_object_get(spec, "line"));
			f->column = (long)json_integer_value(json_object_get(spec, "column"));
			f->seq = w->n++;
		}
	}
	json_array_foreach(json_object_get(suite, "suites"), i, child) {
		const char *title = str(child, "title");
		titles[depth] = title ? title : "";
		walk_suite(w, child, file, titles, depth + 1);
	}
}

/* Every test of the report, file by file (as listed), in source order. */
static int by_place(const void *a, const void *b)
{
	const found *x = a, *y = b; /* of one file */
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void walk_report(walk *w, json_t *root)
{
	json_t *file_suite;
	size_t i;
	json_array_foreach(json_object_get(root, "suites"), i, file_suite) {
		const char *file = str(file_suite, "file");
		if (!file)
			file = str(file_suite, "title");
		const char *titles[MAX_DEPTH + 1];
		size_t start = w->n;
		/* the file suite itself is not a describe: its title is the path */
		walk_suite(w, file_suite, file ? file : "", titles, 0);
		if (w->nomem || w->too_deep)
			return;
		if (w->n > start) /* items is NULL while no test was met */
			qsort(w->items + start, w->n - start, sizeof *w->items, by_place);
	}
}

/* ---- listing ------------------------------------------------------------------------- */

static int path_is_below(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	return !strncmp(dir, path, n) && (path[n] == '/' || path[n] == '\0' || (n && dir[n - 1] == '/'));
}

/* Shorten the common ancestor *anc so that dir is below it. */
static void common_ancestor(char *anc, const char *dir)
{
	while (!path_is_below(anc, dir)) {
		char *slash = strrchr(anc, '/');
		if (!slash || !strcmp(anc, "/"))
			return; /* nothing shorter to try */
		if (slash == anc)
			slash[1] = '\0'; /* "/" */
		else
			*slash = '\0';
	}
}

static int add_context(pw_listing *l, const char *pattern)
{
	json_t *o = json_pack("{s:s}", "grep", pattern);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	char **p = text ? realloc(l->contexts, (l->n + 1) * sizeof *p) : NULL;
	if (!p) {
		free(text);
		return HYPERTEST_ERR_NOMEM;
	}
	l->contexts = p;
	l->contexts[l->n++] = text;
	return 0;
}

/* The projects chosen: indexes into config.projects. */
static int choose_projects(json_t *projects, const pw_options *o, size_t *chosen, size_t *n,
                           char **error)
{
	size_t count = json_array_size(projects);
	*n = 0;
	if (count == 0)
		return htp_errorf(error, HYPERTEST_ERR_RUNNER, PREFIX "the Playwright config has no project");
	for (size_t i = 0; i < count; i++) {
		const char *dir = str(json_array_get(projects, i), "testDir");
		if (!str(json_array_get(projects, i), "name") || !dir)
			return htp_errorf(error, HYPERTEST_ERR_RUNNER,
			           PREFIX "the listing report's project %zu has no name or testDir", i + 1);
		/* Playwright resolves it: a relative one has no common ancestor */
		if (dir[0] != '/')
			return htp_errorf(error, HYPERTEST_ERR_RUNNER,
			           PREFIX "the listing report's project %zu has a testDir that is not an "
			                  "absolute path: '%.200s'", i + 1, dir);
	}
	if (o->projects == PW_PROJECTS_FIRST) {
		chosen[(*n)++] = 0;
	} else if (o->projects == PW_PROJECTS_ALL) {
		for (size_t i = 0; i < count; i++)
			chosen[(*n)++] = i;
	} else {
		for (size_t k = 0; k < o->n_names; k++) {
			size_t i;
			for (i = 0; i < count; i++)
				if (!strcmp(str(json_array_get(projects, i), "name"), o->names[k]))
					break;
			if (i == count) {
				htp_buf known = {0};
				for (size_t m = 0; m < count; m++) {
					htp_buf_str(&known, m ? ", '" : "'");
					htp_buf_str(&known, str(json_array_get(projects, m), "name"));
					htp_buf_str(&known, "'");
				}
				char *names = htp_buf_take(&known);
				int rc = htp_errorf(error, HYPERTEST_ERR_CONFIG,
				                    PREFIX "option 'projects': the Playwright config has no project "
				                    "'%s' (it has %s)",
				                    o->names[k], names ? names : "?");
				free(names);
				return rc;
			}
			chosen[(*n)++] = i;
		}
	}
	return 0;
}

static int listing_from(json_t *root, const pw_options *o, pw_listing *out, char **error)
{
	json_t *config = json_object_get(root, "config");
	json_t *projects = json_object_get(config, "projects");
	if (!json_is_object(config) || !json_is_array(projects) || !json_is_array(json_object_get(root, "suites")))
		return htp_errorf(error, HYPERTEST_ERR_RUNNER,
		                  PREFIX "the listing is not a Playwright JSON report (no config.projects or "
		                  "suites)");
	const char *err = report_error(root);
	if (err) {
		char *msg = strdup(err);
		if (msg)
			pw_strip_ansi(msg);
		int rc = htp_errorf(error, HYPERTEST_ERR_RUNNER,
		                    PREFIX "Playwright cannot list the tests: %s", msg ? msg : err);
		free(msg);
		return rc;
	}
	size_t count = json_array_size(projects), n_chosen;
	size_t *chosen = calloc(count + (o->n_names ? o->n_names : 1), sizeof *chosen);
	if (!chosen)
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	int rc = choose_projects(projects, o, chosen, &n_chosen, error);
	walk w = {0};
	if (!rc) {
		walk_report(&w, root);
		if (w.nomem)
			rc = htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		else if (w.too_deep)
			rc = htp_errorf(error, HYPERTEST_ERR_RUNNER,
			                PREFIX "describe blocks nested deeper than %d", MAX_DEPTH);
	}
	for (size_t k = 0; !rc && k < n_chosen; k++) {
		json_t *project = json_array_get(projects, chosen[k]);
		const char *name = str(project, "name"), *dir = str(project, "testDir");
		if (!out->test_dir && !(out->test_dir = strdup(dir)))
			rc = htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		else if (out->test_dir)
			common_ancestor(out->test_dir, dir);
		for (size_t i = 0; !rc && i < w.n; i++) {
			const char *pn = str(w.items[i].test, "projectName");
			if (!pn || strcmp(pn, name))
				continue;
			char *pattern = pw_grep_pattern(name, w.items[i].file, w.items[i].titles,
			                                w.items[i].n_titles);
			if (!pattern || add_context(out, pattern))
				rc = htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
			free(pattern);
		}
	}
	if (!rc && out->n == 0)
		rc = htp_errorf(error, HYPERTEST_ERR_EMPTY, PREFIX "Playwright listed no test%s",
		                o->projects == PW_PROJECTS_ALL ? "" : " of the chosen projects");
	free(w.items);
	free(chosen);
	return rc;
}

int pw_listing_parse(const char *json, size_t len, const pw_options *o, pw_listing *out,
                     char **error)
{
	memset(out, 0, sizeof *out);
	*error = NULL;
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr);
	int rc = root ? listing_from(root, o, out, error)
	              : htp_errorf(error, HYPERTEST_ERR_RUNNER,
	                           PREFIX "the listing is not JSON (line %d, column %d): %s",
	                           jerr.line, jerr.column, jerr.text);
	json_decref(root);
	if (rc)
		pw_listing_free(out);
	return rc;
}

void pw_listing_free(pw_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->contexts[i]);
	free(l->contexts);
	free(l->test_dir);
	memset(l, 0, sizeof *l);
}

/* ---- the outcome of one run ------------------------------------------------------------ */

/* "[project] file > describe > title" */
static char *display_name(const found *f)
{
	htp_buf b = {0};
	const char *project = str(f->test, "projectName");
	if (project && *project) {
		htp_buf_str(&b, "[");
		htp_buf_str(&b, project);
		htp_buf_str(&b, "] ");
	}
	htp_buf_str(&b, f->file);
	for (size_t i = 0; i < f->n_titles; i++) {
		htp_buf_str(&b, " > ");
		htp_buf_str(&b, f->titles[i]);
	}
	return htp_buf_take(&b);
}

/* rootDir/file, relative to the config file's directory (the project
 * directory, the task root) when it is below it, else to cwd.  Node gives
 * the config's real path: a task root of symbolic links still works. */
static char *spec_path(json_t *root, const char *file, const char *cwd)
{
	json_t *config = json_object_get(root, "config");
	const char *rootdir = str(config, "rootDir"), *config_file = str(config, "configFile");
	char *path = NULL, *base = NULL;
	if (!rootdir || file[0] == '/')
		return strdup(file);
	if (asprintf(&path, "%s/%s", rootdir, file) < 0)
		return NULL;
	if (config_file && strrchr(config_file, '/'))
		base = strndup(config_file, (size_t)(strrchr(config_file, '/') - config_file));
	const char *bases[2] = {base, cwd};
	for (int i = 0; i < 2; i++) {
		size_t n = bases[i] ? strlen(bases[i]) : 0;
		if (n && !strncmp(path, bases[i], n) && path[n] == '/') {
			memmove(path, path + n + 1, strlen(path + n + 1) + 1);
			break;
		}
	}
	free(base);
	return path;
}

static char *clean_copy(const char *s)
{
	char *c = s ? strdup(s) : NULL;
	if (c)
		pw_strip_ansi(c);
	return c;
}

static int fill_outcome(json_t *root, const found *f, const char *cwd, pw_outcome *out)
{
	json_t *results = json_object_get(f->test, "results");
	json_t *last = json_array_get(results, json_array_size(results) - 1);
	const char *rstatus = last ? str(last, "status") : NULL;
	const char *tstatus = str(f->test, "status"); /* expected, unexpected, flaky, skipped */
	out->name = display_name(f);
	out->file_path = spec_path(root, f->file, cwd);
	out->duration = -1;
	if (last && json_is_number(json_object_get(last, "duration")))
		out->duration = (int64_t)json_number_value(json_object_get(last, "duration"));
	if (!out->name || !out->file_path)
		return HYPERTEST_ERR_NOMEM;

	if ((rstatus && !strcmp(rstatus, "skipped")) || (!last && tstatus && !strcmp(tstatus, "skipped"))) {
		out->status = HYPERTEST_STATUS_SKIPPED;
		return 0;
	}
	/* test.status says whether the outcome was the expected one (test.fail()) */
	int passed = tstatus ? (!strcmp(tstatus, "expected") || !strcmp(tstatus, "flaky"))
	                     : (rstatus && !strcmp(rstatus, "passed"));
	if (passed && last) {
		out->status = HYPERTEST_STATUS_SUCCESS;
		return 0;
	}
	out->status = HYPERTEST_STATUS_FAILED;
	json_t *error = json_object_get(last, "error");
	if (!json_is_object(error))
		error = json_array_get(json_object_get(last, "errors"), 0);
	if (json_is_object(error)) {
		out->message = clean_copy(str(error, "message"));
		out->stack = clean_copy(str(error, "stack"));
		if (!out->message && out->stack)
			out->message = strdup(out->stack);
	}
	if (!out->message) {
		int n;
		if (!last)
			n = asprintf(&out->message, "the test did not run");
		else if (rstatus && !strcmp(rstatus, "passed"))
			n = asprintf(&out->message, "the test passed but was expected to fail");
		else
			n = asprintf(&out->message, "the test ended with status '%s'",
			             rstatus ? rstatus : "unknown");
		if (n < 0)
			out->message = NULL;
	}
	return out->message ? 0 : HYPERTEST_ERR_NOMEM;
}

/* "no test matched" or "N tests ran: ..." */
static int count_failure(json_t *root, const walk *w, const char *grep, pw_outcome *out)
{
	out->status = HYPERTEST_STATUS_FAILED;
	out->duration = -1;
	htp_buf b = {0};
	if (w->n == 0) {
		htp_buf_str(&b, "no test matched --grep ");
		htp_buf_str(&b, grep);
		const char *err = report_error(root);
		if (err) {
			htp_buf_str(&b, ": ");
			htp_buf_str(&b, err);
		}
	} else {
		char head[64];
		snprintf(head, sizeof head, "%zu tests matched --grep ", w->n);
		htp_buf_str(&b, head);
		htp_buf_str(&b, grep);
		htp_buf_str(&b, " (exactly one expected):");
		for (size_t i = 0; i < w->n && i < MAX_LISTED; i++) {
			char *name = display_name(&w->items[i]);
			htp_buf_str(&b, "\n  ");
			htp_buf_str(&b, name ? name : "?");
			free(name);
		}
		if (w->n > MAX_LISTED) {
			snprintf(head, sizeof head, "\n  ... and %zu more", w->n - MAX_LISTED);
			htp_buf_str(&b, head);
		}
	}
	out->message = htp_buf_take(&b);
	if (out->message)
		pw_strip_ansi(out->message);
	return out->message ? 0 : HYPERTEST_ERR_NOMEM;
}

int pw_outcome_parse(const char *json, size_t len, const char *grep, const char *cwd,
                     pw_outcome *out, char **error)
{
	memset(out, 0, sizeof *out);
	*error = NULL;
	json_error_t jerr;
	json_t *root = json_loadb(json, len, 0, &jerr);
	if (!root)
		return htp_errorf(error, HYPERTEST_ERR_RUNNER,
		                  PREFIX "the report is not JSON (line %d, column %d): %s",
		                  jerr.line, jerr.column, jerr.text);
	int rc = 0;
	walk w = {0};
	if (!json_is_array(json_object_get(root, "suites")))
		rc = htp_errorf(error, HYPERTEST_ERR_RUNNER,
		                PREFIX "the report is not a Playwright JSON report (no suites)");
	if (!rc)
		walk_report(&w, root);
	if (!rc && (w.nomem || w.too_deep))
		rc = w.nomem ? htp_errorf(error, HYPERTEST_ERR_NOMEM, PREFIX "out of memory")
		             : htp_errorf(error, HYPERTEST_ERR_RUNNER,
		                          PREFIX "describe blocks nested deeper than %d",
		                          MAX_DEPTH);
	if (!rc)
		rc = w.n == 1 ? fill_outcome(root, &w.items[0], cwd, out)
		              : count_failure(root, &w, grep, out);
	if (rc == HYPERTEST_ERR_NOMEM && !*error)
		*error = strdup(PREFIX "out of memory");
	if (rc)
		pw_outcome_free(out);
	free(w.items);
	json_decref(root);
	return rc;
}

void pw_outcome_free(pw_outcome *o)
{
	free(o->name);
	free(o->file_path);
	free(o->message);
	free(o->stack);
	memset(o, 0, sizeof *o);
}
