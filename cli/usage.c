/*
 * usage.c - the command table and every help text of the hypertest
 * program, kept in one place.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct command_help {
	const char *name;
	const char *synopsis; /* after "hypertest " */
	const char *summary;  /* one line, for the command list */
	const char *text;     /* what it does, then its own options */
	int json;             /* accepts --json */
};

static const struct command_help commands[CLI_CMD_COUNT] = {
	[CLI_CMD_INIT] = {
	    "init", "init [--force] [--yes] [--runner NAME] [--provider NAME] [--set KEY=VALUE]... | init --from FILE",
	    "write hypertest.config.json in the project directory",
	    "Writes a configuration file. On a terminal it asks for the test runner,\n"
	    "the cloud provider and what each needs (an empty answer takes the\n"
	    "default in brackets); otherwise, or with --yes, it takes the defaults.\n"
	    "--runner, --provider and --set answer a question without asking it.\n"
	    "It ends with the next steps.\n"
	    "Questions (--set KEY=VALUE):\n"
	    "  every setup   imageName, concurrency\n"
	    "  command       testDir, list, run (words separated by blanks, no shell)\n"
	    "  pytest        rootDir, testDir, python\n"
	    "  ctest         buildDir, sourceDir\n"
	    "  playwright    config (empty: Playwright's own lookup)\n"
	    "  aws           region, account, ecrRegistry, baseImage, functionName,\n"
	    "                bucketName (account and ecrRegistry may be empty: the\n"
	    "                registry that ECR names at deploy)\n"
	    "  local         nothing\n"
	    "With --from FILE, converts a configuration module of the TypeScript\n"
	    "hypertest (hypertest.config.js, .mjs, .cjs or .ts) into JSON once,\n"
	    "evaluating it with node.\n"
	    "\n"
	    "Options:\n"
	    "  -f, --force          overwrite an existing configuration file\n"
	    "  -y, --yes            do not ask: take the defaults\n"
	    "  --runner NAME        the test runner: command, pytest, ctest, playwright\n"
	    "  --provider NAME      the cloud provider: local, aws\n"
	    "  --set KEY=VALUE      the answer to the question KEY\n"
	    "  --from FILE          convert FILE instead of asking\n",
	    0},
	[CLI_CMD_DEPLOY] = {
	    "deploy", "deploy",
	    "build and push the test image, store the manifest, update the function",
	    "Builds the container image (the base image + a layer of the tests),\n"
	    "pushes it, lists the tests into the manifest and points the cloud\n"
	    "function at the new image.\n"
	    "With --output oci:DIR, the image is also written to the OCI image layout\n"
	    "DIR, to inspect it or load it elsewhere (with --dry-run too).\n"
	    "With --json, every event is printed on stdout as one line of JSON.\n",
	    1},
	[CLI_CMD_INVOKE] = {
	    "invoke", "invoke",
	    "run every test in its own function invocation",
	    "Runs every test of the deployed manifest in its own invocation of the\n"
	    "cloud function, at most 'concurrency' at a time, and writes the results\n"
	    "file. Exits with 0 only if no test failed. Ctrl-C cancels the\n"
	    "invocations in flight and still writes the results gathered so far;\n"
	    "a second Ctrl-C stops at once.\n"
	    "With --json, the results file is printed on stdout and every event on\n"
	    "stderr as one line of JSON.\n"
	    "At the end it builds the summary report (see 'report') unless\n"
	    "--no-report or the configuration's \"report\": false; --junit FILE also\n"
	    "writes JUnit XML.\n"
	    "\n"
	    "Invoke options:\n"
	    "  --retries N         invoke a failed test again, up to N times (the\n"
	    "                      'retries' key); failed-then-passed is flaky\n"
	    "  --fail-on-flaky     exit 1 when a test was flaky\n"
	    "  --last-failed       run only the tests that failed or did not run in\n"
	    "                      the project's results file\n"
	    "  --rerun FILE        the same with another results file (from CI)\n"
	    "  --grep RE           only tests whose name matches the POSIX extended\n"
	    "                      regular expression RE\n"
	    "  --grep-invert RE    only tests whose name does not match RE\n"
	    "  --only ID           only this test id or name (repeatable)\n"
	    "  --max-failures N    start no more tests once N failed; the others\n"
	    "                      are skipped\n"
	    "  --fail-fast         same as --max-failures 1\n",
	    1},
	[CLI_CMD_REPORT] = {
	    "report", "report [RUN_ID]",
	    "build the summary report of a run from the bucket",
	    "Builds the summary report of RUN_ID (default: the run of the local\n"
	    "results file) from the bucket alone, through the cloud provider: the\n"
	    "results file and each test's artifacts. Writes one self-contained HTML\n"
	    "page to {runId}/report/index.html in the bucket and to\n"
	    ".hypertest/reports/{runId}/index.html, and with --junit FILE (or the\n"
	    "configuration's \"junit\") JUnit XML.\n"
	    "With --json, every event is printed on stdout as one line of JSON.\n",
	    1},
	[CLI_CMD_DOCTOR] = {
	    "doctor", "doctor",
	    "check the configuration, the plugins, credentials and quotas",
	    "Runs the checks of the core, of the test runner and of the cloud\n"
	    "provider, one line each. Exits with 1 if a check failed.\n"
	    "With --json, every check is printed on stdout as one line of JSON.\n",
	    1},
	[CLI_CMD_PROVISION] = {
	    "provision", "provision [--emit FORMAT FILE]",
	    "create the cloud resources the provider needs, or correct them",
	    "Creates what the cloud provider needs and is missing (for aws: the\n"
	    "repository, the bucket, the execution role and the function) and\n"
	    "corrects what exists in the wrong shape; a second run changes nothing.\n"
	    "Each resource is logged: exists, create or update, and why.\n"
	    "With --dry-run, only the plan: nothing is changed.\n"
	    "With --json, the resources are printed on stdout as a JSON array.\n"
	    "\n"
	    "Options:\n"
	    "  --emit FORMAT FILE   write the same resources as a template to FILE\n"
	    "                       (- for stdout) instead: cloudformation for aws;\n"
	    "                       nothing is created and no cloud API is called\n",
	    1},
	[CLI_CMD_DESTROY] = {
	    "destroy", "destroy [--yes] [--force]",
	    "remove the cloud resources provision created",
	    "Lists the resources that carry this project's tag, asks on a terminal,\n"
	    "then removes them. A bucket that holds objects is kept unless --force\n"
	    "is given. With --dry-run, only the list. Exits with 1 if a resource\n"
	    "was kept.\n"
	    "With --json, the resources are printed on stdout as a JSON array.\n"
	    "\n"
	    "Options:\n"
	    "  -y, --yes            do not ask (required when stdin is not a terminal)\n"
	    "  -f, --force          empty a bucket that holds objects, then remove it\n",
	    1},
	[CLI_CMD_PLUGINS] = {
	    "plugins", "plugins",
	    "list the plugins found on the plugin path",
	    "Searches HYPERTEST_PLUGIN_PATH, the configuration's pluginPath (when a\n"
	    "configuration exists) and the installed plugin directory (or loads\n"
	    "just the files HYPERTEST_PLUGIN_MODULES names), and lists\n"
	    "every plugin: name, kind, ABI version, state and file.\n"
	    "With --json, prints a JSON array.\n",
	    1},
	[CLI_CMD_VERSION] = {
	    "version", "version",
	    "print the version of hypertest and of its plugin ABI",
	    "Prints the library version and the plugin ABI version.\n"
	    "With --json, prints a JSON object.\n",
	    1},
	[CLI_CMD_HELP] = {
	    "help", "help [COMMAND]",
	    "show the help of hypertest or of a command",
	    "Shows the help of hypertest, or of COMMAND.\n",
	    0},
};

static const char global_options[] =
    "Options (before or after the command):\n"
    "  -C, --directory DIR  project directory (default: the current directory)\n"
    "      --config FILE    configuration file, relative to the project directory\n"
    "                       (default: hypertest.config.json)\n"
    "      --set KEY=VALUE  override a configuration key (repeatable); VALUE is\n"
    "                       JSON, or a bare word taken as a string\n"
    "                       (--set cloudProvider.options.region=eu-west-1)\n"
    "      --concurrency N  same as --set concurrency=N\n"
    "      --dry-run        call no provider operation that changes anything\n"
    "  -q, --quiet          only warnings, errors, test results and the summary\n"
    "  -v, --verbose        debug messages too\n"
    "      --no-color       no colors (also when NO_COLOR is set)\n"
    "      --json           machine-readable output (invoke, deploy, doctor,\n"
    "                       provision, destroy, plugins, version)\n"
    "  -h, --help           show the help of the command\n"
    "      --version        same as the version command\n"
    "      --output oci:DIR deploy: also write the image to an OCI layout\n";

static const char exit_statuses[] =
    "Exit status: 0 done and every test passed, 1 a test or the command\n"
    "failed, 2 usage error.\n";

int cli_command_lookup(const char *word)
{
	int i;

	for (i = 0; i < CLI_CMD_COUNT; i++)
		if (strcmp(word, commands[i].name) == 0)
			return i;
	return CLI_CMD_NONE;
}

const char *cli_command_name(int cmd)
{
	return cmd >= 0 && cmd < CLI_CMD_COUNT ? commands[cmd].name : "";
}

int cli_command_takes_json(int cmd)
{
	return cmd >= 0 && cmd < CLI_CMD_COUNT && commands[cmd].json;
}

void cli_usage(FILE *f, int cmd)
{
	int i;

	if (cmd >= 0 && cmd < CLI_CMD_COUNT) {
		const struct command_help *c = &commands[cmd];
		fprintf(f, "Usage: hypertest [OPTIONS] %s\n\n%s - %s.\n\n%s\n%s\n%s", c->synopsis,
		        c->name, c->summary, c->text, global_options, exit_statuses);
		return;
	}
	fputs("Usage: hypertest [OPTIONS] COMMAND [OPTIONS]\n"
	      "\n"
	      "Runs every test of a suite in its own cloud-function invocation.\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < CLI_CMD_COUNT; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n%s\n%s\n"
	           "Run 'hypertest COMMAND --help' for the help of a command.\n",
	        global_options, exit_statuses);
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hypertest: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'hypertest --help'.\n", stderr);
	return CLI_EXIT_USAGE;
}
