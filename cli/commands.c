/*
 * commands.c - the commands of the hypertest program that call the library
 * and report: version, plugins, deploy, invoke and doctor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void cli_error(hypertest *h)
{
	const char *msg = hypertest_errmsg(h);

	if (!msg || !*msg)
		msg = hypertest_strerror(hypertest_errcode(h));
	fprintf(stderr, "hypertest: %s\n", msg);
	fflush(stderr);
}

/* ---- version -------------------------------------------------------------- */

int cli_cmd_version(const struct cli_opts *o)
{
	if (o->json) {
		struct cli_buf b = {0};
		cli_buf_puts(&b, "{\"version\": ");
		cli_buf_json_str(&b, hypertest_version());
		cli_buf_puts(&b, ", \"pluginAbi\": ");
		cli_buf_json_str(&b, hypertest_plugin_abi_version());
		cli_buf_puts(&b, "}\n");
		fputs(cli_buf_str(&b), stdout);
		cli_buf_free(&b);
	} else {
		printf("hypertest %s (plugin ABI %s)\n", hypertest_version(),
		       hypertest_plugin_abi_version());
	}
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---- plugins ---------------------------------------------------------------- */

static const char *plugin_str(hypertest *h, size_t i, int field)
{
	const char *s = hypertest_plugin_str(h, i, field);
	return s ? s : "";
}

static void plugins_json(hypertest *h)
{
	static const struct {
		const char *key;
		int field;
	} keys[] = {
	    {"name", HYPERTEST_PLUGIN_NAME},       {"kind", HYPERTEST_PLUGIN_KIND},
	    {"abi", HYPERTEST_PLUGIN_ABI},         {"state", HYPERTEST_PLUGIN_STATE},
	    {"path", HYPERTEST_PLUGIN_PATH},       {"version", HYPERTEST_PLUGIN_VERSION},
	    {"description", HYPERTEST_PLUGIN_DESCRIPTION}, {"error", HYPERTEST_PLUGIN_ERROR},
	};
	struct cli_buf b = {0};
	size_t i, k, n = hypertest_plugin_count(h);

	cli_buf_puts(&b, "[");
	for (i = 0; i < n; i++) {
		cli_buf_puts(&b, i ? ",\n  {" : "\n  {");
		for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			cli_buf_printf(&b, "%s\"%s\": ", k ? ", " : "", keys[k].key);
			cli_buf_json_str(&b, plugin_str(h, i, keys[k].field));
		}
		cli_buf_puts(&b, "}");
	}
	cli_buf_puts(&b, n ? "\n]\n" : "]\n");
	fputs(cli_buf_str(&b), stdout);
	cli_buf_free(&b);
}

/* A table cell: "-" for an empty field. */
static const char *cell(hypertest *h, size_t i, int field)
{
	const char *s = plugin_str(h, i, field);
	return *s ? s : "-";
}

static void plugins_table(hypertest *h, int color)
{
	static const char *const heads[] = {"NAME", "KIND", "ABI", "STATE"};
	static const int fields[] = {HYPERTEST_PLUGIN_NAME, HYPERTEST_PLUGIN_KIND,
	                             HYPERTEST_PLUGIN_ABI, HYPERTEST_PLUGIN_STATE};
	size_t i, c, n = hypertest_plugin_count(h);
	int w[4];

	if (n == 0) {
		puts("No plugins found.");
		return;
	}
	for (c = 0; c < 4; c++) {
		w[c] = (int)strlen(heads[c]);
		for (i = 0; i < n; i++) {
			int len = (int)strlen(cell(h, i, fields[c]));
			if (len > w[c])
				w[c] = len;
		}
	}
	printf("%-*s  %-*s  %-*s  %-*s  PATH\n", w[0], heads[0], w[1], heads[1], w[2], heads[2],
	       w[3], heads[3]);
	for (i = 0; i < n; i++) {
		const char *state = plugin_str(h, i, HYPERTEST_PLUGIN_STATE);
		const char *err = plugin_str(h, i, HYPERTEST_PLUGIN_ERROR);
		const char *code = strcmp(state, "loaded") == 0     ? "\033[32m"
		                   : strcmp(state, "shadowed") == 0 ? "\033[33m"
		                                                    : "\033[31m";

		printf("%-*s  %-*s  %-*s  %s%-*s%s  %s\n", w[0], cell(h, i, HYPERTEST_PLUGIN_NAME), w[1],
		       cell(h, i, HYPERTEST_PLUGIN_KIND), w[2], cell(h, i, HYPERTEST_PLUGIN_ABI),
		       color ? code : "", w[3], cell(h, i, HYPERTEST_PLUGIN_STATE),
		       color ? "\033[0m" : "", cell(h, i, HYPERTEST_PLUGIN_PATH));
		if (*err)
			printf("    error: %s\n", err);
	}
}

int cli_cmd_plugins(hypertest *h, const struct cli_opts *o, struct render *r)
{
	int rc = hypertest_plugins_scan(h);

	if (o->json) {
		plugins_json(h);
	} else {
		const char *path = hypertest_plugin_search_path(h);
		plugins_table(h, render_color_out(r));
		printf("Searched: %s\n", path && *path ? path : "(nothing)");
	}
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---- deploy, invoke, doctor ---------------------------------------------------- */

int cli_cmd_deploy(hypertest *h, const struct cli_opts *o, struct render *r)
{
	int rc = hypertest_deploy(h);

	(void)o;
	render_finish(r);
	render_deploy_end(r, rc == HYPERTEST_OK);
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

static void print_results_json(const hypertest_run *run)
{
	const char *json = hypertest_run_results_json(run);
	size_t n;

	if (!json)
		json = "";
	n = strlen(json);
	fputs(json, stdout);
	if (n == 0 || json[n - 1] != '\n')
		fputc('\n', stdout);
	fflush(stdout);
}

/* Flaky tests and retries, after the summary (its own function: the
 * summary's renderer is shared). */
static void invoke_loop_summary(struct render *r, const hypertest_run *run,
                                const struct cli_opts *o)
{
	size_t i, n = hypertest_run_total(run), retried = 0, flaky = hypertest_run_flaky(run);
	char line[160];

	if (o->json)
		return;
	for (i = 0; i < n; i++)
		retried += hypertest_run_test_attempts(run, i) > 1;
	if (!retried)
		return;
	snprintf(line, sizeof line, "Retried %zu test%s; %zu flaky (failed, then passed)%s.", retried,
	         retried == 1 ? "" : "s", flaky,
	         flaky && o->fail_on_flaky ? ": failing the run (--fail-on-flaky)" : "");
	render_note(r, "%s", line);
}

int cli_cmd_invoke(hypertest *h, const struct cli_opts *o, struct render *r)
{
	hypertest_run *run = NULL;
	int rc = hypertest_invoke(h, &run);
	int status = CLI_EXIT_OK;

	render_finish(r);
	if (run && hypertest_run_total(run) == 0) {
		if (!o->json)
			render_note(r, "Nothing to rerun: every selected test passed in that run.");
		else
			print_results_json(run);
		hypertest_run_free(run);
		return rc == HYPERTEST_OK ? CLI_EXIT_OK : (cli_error(h), CLI_EXIT_FAIL);
	}
	if (run) {
		render_run_summary(r, run);
		invoke_loop_summary(r, run, o);
		if (o->json) {
			print_results_json(run);
		} else if (o->dry_run) {
			render_note(r, "Dry run: nothing was invoked and no results file was written.");
		} else if (!hypertest_run_results_path(run)) {
			render_note(r, "The results could not be written to a file;"
			               " they follow on stdout as JSON.");
			print_results_json(run);
		}
		if (hypertest_run_count(run, HYPERTEST_STATUS_FAILED) > 0 ||
		    (o->fail_on_flaky && hypertest_run_flaky(run) > 0))
			status = CLI_EXIT_FAIL;
		hypertest_run_free(run);
	}
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		status = CLI_EXIT_FAIL;
	} else if (!run) {
		status = CLI_EXIT_FAIL; /* no run and no error: should not happen */
	}
	return status;
}

int cli_cmd_report(hypertest *h, const struct cli_opts *o, struct render *r)
{
	int rc = hypertest_report(h, o->run_id);

	render_finish(r);
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

int cli_cmd_doctor(hypertest *h, const struct cli_opts *o, struct render *r)
{
	int rc = hypertest_doctor(h);
	int ok, warnings, failed;

	render_finish(r);
	render_doctor_counts(r, &ok, &warnings, &failed);
	if (!o->json) {
		printf("%d checks: %d ok, %d warning%s, %d failed\n", ok + warnings + failed, ok,
		       warnings, warnings == 1 ? "" : "s", failed);
		fflush(stdout);
	}
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- provision, destroy ------------------------------------------------------ */

/* How many items of a result (compact JSON written by the library) have
 * this action. */
static int count_action(const char *json, const char *action)
{
	char needle[64];
	const char *p = json;
	int n = 0;

	snprintf(needle, sizeof needle, "\"action\":\"%s\"", action);
	while (p && (p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static void print_result_json(const char *json)
{
	fputs(json ? json : "[]", stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

/* provision --emit FORMAT FILE: the template, written whole or not at all
 * (a temporary file renamed over FILE). */
static int emit_template(hypertest *h, const struct cli_opts *o, struct render *r)
{
	char *text = NULL, *tmp = NULL;
	int rc = hypertest_provision_emit(h, o->emit, &text), ok;
	FILE *f;

	render_finish(r);
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	if (strcmp(o->emit_file, "-") == 0) {
		ok = fputs(text, stdout) >= 0 && fflush(stdout) == 0;
		hypertest_string_free(text);
		return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	}
	tmp = malloc(strlen(o->emit_file) + 8);
	if (!tmp) {
		hypertest_string_free(text);
		fputs("hypertest: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	sprintf(tmp, "%s.tmp~", o->emit_file);
	f = fopen(tmp, "w");
	ok = f && fputs(text, f) >= 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (ok && rename(tmp, o->emit_file) != 0)
		ok = 0;
	if (!ok) {
		fprintf(stderr, "hypertest: cannot write %s: %s\n", o->emit_file, strerror(errno));
		remove(tmp);
	} else if (!o->quiet) {
		fprintf(stderr, "hypertest: %s template written to %s\n", o->emit, o->emit_file);
	}
	free(tmp);
	hypertest_string_free(text);
	return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_cmd_provision(hypertest *h, const struct cli_opts *o, struct render *r)
{
	char *res = NULL;
	int rc, create, update, exists;

	if (o->emit)
		return emit_template(h, o, r);
	rc = hypertest_provision(h, &res);

	render_finish(r);
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	create = count_action(res, "create");
	update = count_action(res, "update");
	exists = count_action(res, "exists");
	if (o->json)
		print_result_json(res);
	else if (create + update == 0)
		printf("Nothing to change: %d resource%s as configured.\n", exists,
		       exists == 1 ? "" : "s");
	else if (o->dry_run)
		printf("Plan: %d to create, %d to update, %d unchanged (dry run: nothing was "
		       "changed).\n", create, update, exists);
	else
		printf("%d created, %d updated, %d unchanged.\n", create, update, exists);
	hypertest_string_free(res);
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_cmd_destroy(hypertest *h, const struct cli_opts *o, struct render *r)
{
	unsigned force = o->force ? HYPERTEST_DESTROY_FORCE : 0;
	char *list = NULL, *res = NULL;
	int rc, n, kept;

	/* first the list, always */
	rc = hypertest_destroy(h, HYPERTEST_DESTROY_LIST | force, &list);
	if (rc != HYPERTEST_OK) {
		render_finish(r);
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	n = count_action(list, "delete");
	if (n == 0 || o->dry_run) {
		render_finish(r);
		if (o->json)
			print_result_json(list);
		else if (n == 0)
			printf("Nothing to destroy: no resource carries this project's tag.\n");
		else
			printf("Dry run: %d resource%s would be removed.\n", n, n == 1 ? "" : "s");
		kept = count_action(list, "keep");
		hypertest_string_free(list);
		if (kept && !o->dry_run)
			fprintf(stderr, "hypertest: %d resource%s kept: it holds objects (--force empties "
			        "it)\n", kept, kept == 1 ? "" : "s");
		return kept && !o->dry_run ? CLI_EXIT_FAIL : CLI_EXIT_OK;
	}
	hypertest_string_free(list);
	if (!o->yes) {
		char answer[16];
		int got;
		if (!isatty(STDIN_FILENO)) {
			render_finish(r);
			fprintf(stderr, "hypertest: destroy removes %d resource%s (listed above): "
			        "confirm with --yes\n", n, n == 1 ? "" : "s");
			return CLI_EXIT_FAIL;
		}
		/* prompting before the question shows: an interrupt as soon
		 * as it is seen stops the program at once */
		cli_prompting = 1;
		if (cli_cancel_requested) {
			cli_prompting = 0;
			render_finish(r);
			fprintf(stderr, "hypertest: destroy cancelled: nothing removed\n");
			return CLI_EXIT_FAIL;
		}
		fprintf(stderr, "Remove these %d resource%s? [y/N] ", n, n == 1 ? "" : "s");
		fflush(stderr);
		got = fgets(answer, sizeof answer, stdin) != NULL;
		cli_prompting = 0;
		if (!got || (answer[0] != 'y' && answer[0] != 'Y')) {
			render_finish(r);
			fprintf(stderr, "hypertest: nothing removed\n");
			return CLI_EXIT_FAIL;
		}
	}
	if (cli_cancel_requested) { /* the removal forgets a cancel from before it */
		render_finish(r);
		fprintf(stderr, "hypertest: destroy cancelled: nothing removed\n");
		return CLI_EXIT_FAIL;
	}
	rc = hypertest_destroy(h, force, &res);
	render_finish(r);
	if (rc != HYPERTEST_OK) {
		cli_error(h);
		return CLI_EXIT_FAIL;
	}
	n = count_action(res, "delete");
	kept = count_action(res, "keep");
	if (o->json)
		print_result_json(res);
	else
		printf("%d removed, %d kept.\n", n, kept);
	hypertest_string_free(res);
	if (kept)
		fprintf(stderr, "hypertest: %d resource%s kept: it holds objects (--force empties it)\n",
		        kept, kept == 1 ? "" : "s");
	return fflush(stdout) == 0 && !kept ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
