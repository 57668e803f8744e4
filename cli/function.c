/*
 * function.c - hypertest-function, the entry point that runs inside the
 * cloud function: loads the configuration and serves invocations through
 * the provider until it stops.  stdout belongs to the provider (some return
 * the function response there): this program writes nothing to it except
 * what --help and --version ask for; log lines go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hypertest/hypertest.h>

#define PROGRAM "hypertest-function"
#define DEFAULT_CONFIG "hypertest.config.json"

static const char usage_text[] =
    "Usage: " PROGRAM " [--config FILE] [--verbose]\n"
    "\n"
    "Runs inside the cloud function: serves the invocations of hypertest,\n"
    "running one test each with the configured test runner.\n"
    "\n"
    "Options:\n"
    "      --config FILE  configuration file (default: $HYPERTEST_FUNCTION_CONFIG,\n"
    "                     else ./" DEFAULT_CONFIG "); its directory is the\n"
    "                     project directory\n"
    "  -v, --verbose      debug messages too\n"
    "  -h, --help         show this help\n"
    "      --version      show the version\n"
    "\n"
    "Log lines go to stderr; stdout is left to the cloud provider.\n"
    "Exit status: 0 when serving ended normally, 1 on an error, 2 usage error.\n";

static void on_log(int level, const char *message, void *ud)
{
	const char *prefix = "";

	(void)ud;
	switch (level) {
	case HYPERTEST_LOG_ERROR: prefix = "error: "; break;
	case HYPERTEST_LOG_WARNING: prefix = "warning: "; break;
	case HYPERTEST_LOG_DEBUG: prefix = "debug: "; break;
	default: break;
	}
	fprintf(stderr, "%s%s\n", prefix, message ? message : "");
	fflush(stderr);
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, PROGRAM ": %s '%s'\nTry '" PROGRAM " --help'.\n", what, arg);
	return 2;
}

/* The option getopt_long just complained about. */
static int option_error(const char *what, char **argv)
{
	const char *arg = argv[optind - 1];
	char shortopt[3] = {'-', (char)optopt, '\0'};

	if (strncmp(arg, "--", 2) == 0)
		return usage_error(what, arg);
	return usage_error(what, optopt > 0 && optopt < 256 ? shortopt : arg);
}

static int fail(hypertest *h)
{
	const char *msg = hypertest_errmsg(h);

	fprintf(stderr, PROGRAM ": %s\n",
	        msg && *msg ? msg : hypertest_strerror(hypertest_errcode(h)));
	return 1;
}

int main(int argc, char **argv)
{
	enum { OPT_CONFIG = 256, OPT_VERSION };
	static const struct option lo[] = {{"config", required_argument, NULL, OPT_CONFIG},
	                                   {"verbose", no_argument, NULL, 'v'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {"version", no_argument, NULL, OPT_VERSION},
	                                   {NULL, 0, NULL, 0}};
	const char *config = NULL, *env;
	char abs[PATH_MAX], *slash;
	int c, verbose = 0, rc;
	hypertest *h;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vh", lo, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG: config = optarg; break;
		case 'v': verbose = 1; break;
		case 'h':
			fputs(usage_text, stdout);
			return fflush(stdout) == 0 ? 0 : 1;
		case OPT_VERSION:
			printf(PROGRAM " %s (plugin ABI %s)\n", hypertest_version(),
			       hypertest_plugin_abi_version());
			return fflush(stdout) == 0 ? 0 : 1;
		case ':':
			return option_error("missing argument of option", argv);
		default:
			return option_error("unknown option", argv);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);

	if (!config) {
		env = getenv("HYPERTEST_FUNCTION_CONFIG");
		config = env && *env ? env : DEFAULT_CONFIG;
	}
	if (!realpath(config, abs)) {
		fprintf(stderr, PROGRAM ": configuration %s: %s\n", config, strerror(errno));
		return 1;
	}

	h = hypertest_new();
	if (!h) {
		fputs(PROGRAM ": out of memory\n", stderr);
		return 1;
	}
	hypertest_set_log_callback(h, on_log, NULL);
	hypertest_set_log_level(h, verbose ? HYPERTEST_LOG_DEBUG : HYPERTEST_LOG_INFO);
	slash = strrchr(abs, '/');
	if (slash == abs)
		rc = hypertest_set_project_dir(h, "/");
	else {
		*slash = '\0';
		rc = hypertest_set_project_dir(h, abs);
		*slash = '/';
	}
	if (rc == HYPERTEST_OK)
		rc = hypertest_config_load_file(h, abs);
	/* HYPERTEST_PLUGIN_MODULES (the local provider's: the modules of
	 * this function's plugins) is for this program's scan alone: the tests
	 * it runs, a hypertest among them, see the environment without it */
	if (rc == HYPERTEST_OK && (rc = hypertest_plugins_scan(h)) == HYPERTEST_OK)
		unsetenv("HYPERTEST_PLUGIN_MODULES");
	if (rc == HYPERTEST_OK)
		rc = hypertest_function_serve(h);
	if (rc != HYPERTEST_OK)
		rc = fail(h);
	hypertest_free(h);
	return rc;
}
