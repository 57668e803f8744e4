/*
 * main.c - the hypertest program: parses the command line (global options,
 * the command word, then the command's options, each pass with getopt_long
 * stopping at the first operand), prepares the handle (project directory,
 * callbacks, configuration, overrides, flags), handles SIGINT/SIGTERM and
 * runs the command.
 */
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

enum {
	OPT_CONFIG = 256,
	OPT_DRY_RUN,
	OPT_SET,
	OPT_CONCURRENCY,
	OPT_NO_COLOR,
	OPT_JSON,
	OPT_VERSION,
	OPT_OUTPUT,
	OPT_EMIT,
	OPT_JUNIT,
	OPT_NO_REPORT,
	OPT_RETRIES,
	OPT_FAIL_ON_FLAKY,
	OPT_LAST_FAILED,
	OPT_RERUN,
	OPT_GREP,
	OPT_GREP_INVERT,
	OPT_ONLY,
	OPT_MAX_FAILURES,
	OPT_FAIL_FAST,
	OPT_RUNNER,
	OPT_PROVIDER,
	OPT_FROM
};

#define GLOBAL_LONG_OPTIONS                                        \
	{"config", required_argument, NULL, OPT_CONFIG},               \
	{"directory", required_argument, NULL, 'C'},                   \
	{"dry-run", no_argument, NULL, OPT_DRY_RUN},                   \
	{"quiet", no_argument, NULL, 'q'},                             \
	{"verbose", no_argument, NULL, 'v'},                           \
	{"help", no_argument, NULL, 'h'},                              \
	{"set", required_argument, NULL, OPT_SET},                     \
	{"concurrency", required_argument, NULL, OPT_CONCURRENCY},     \
	{"no-color", no_argument, NULL, OPT_NO_COLOR},                 \
	{"json", no_argument, NULL, OPT_JSON},                         \
	{"version", no_argument, NULL, OPT_VERSION},                   \
	{"output", required_argument, NULL, OPT_OUTPUT},               \
	{"emit", required_argument, NULL, OPT_EMIT},                   \
	{"junit", required_argument, NULL, OPT_JUNIT},                 \
	{"no-report", no_argument, NULL, OPT_NO_REPORT},           \
	{"retries", required_argument, NULL, OPT_RETRIES},             \
	{"fail-on-flaky", no_argument, NULL, OPT_FAIL_ON_FLAKY},       \
	{"last-failed", no_argument, NULL, OPT_LAST_FAILED},           \
	{"rerun", required_argument, NULL, OPT_RERUN},                 \
	{"grep", required_argument, NULL, OPT_GREP},                   \
	{"grep-invert", required_argument, NULL, OPT_GREP_INVERT},     \
	{"only", required_argument, NULL, OPT_ONLY},                   \
	{"max-failures", required_argument, NULL, OPT_MAX_FAILURES},   \
	{"fail-fast", no_argument, NULL, OPT_FAIL_FAST}

static const struct option global_long[] = {GLOBAL_LONG_OPTIONS, {NULL, 0, NULL, 0}};
static const struct option init_long[] = {GLOBAL_LONG_OPTIONS,
                                          {"force", no_argument, NULL, 'f'},
                                          {"yes", no_argument, NULL, 'y'},
                                          {"runner", required_argument, NULL, OPT_RUNNER},
                                          {"provider", required_argument, NULL, OPT_PROVIDER},
                                          {"from", required_argument, NULL, OPT_FROM},
                                          {NULL, 0, NULL, 0}};
/* '+': stop at the first operand; ':': report a missing argument as ':'. */
#define GLOBAL_SHORT "+:C:qvh"
#define INIT_SHORT GLOBAL_SHORT "fy"

volatile sig_atomic_t cli_cancel_requested;
volatile sig_atomic_t cli_prompting;

/* ---- options --------------------------------------------------------------- */

static int add_set(struct cli_opts *o, const char *key, size_t keylen, const char *value)
{
	struct cli_set *s = realloc(o->sets, (o->nsets + 1) * sizeof *s);

	if (!s)
		return -1;
	o->sets = s;
	s = &o->sets[o->nsets];
	s->key = strndup(key, keylen);
	s->value = strdup(value);
	if (!s->key || !s->value) {
		free(s->key);
		free(s->value);
		return -1;
	}
	o->nsets++;
	return 0;
}

static void free_opts(struct cli_opts *o)
{
	size_t i;

	for (i = 0; i < o->nsets; i++) {
		free(o->sets[i].key);
		free(o->sets[i].value);
	}
	free(o->sets);
	free(o->only);
}

/* The name of the option that getopt_long just complained about. */
static void bad_option_name(char **argv, char *out, size_t outsz)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;

	if (arg && strncmp(arg, "--", 2) == 0 && arg[2])
		snprintf(out, outsz, "%.*s", (int)strcspn(arg, "="), arg);
	else if (optopt > 0 && optopt < 256)
		snprintf(out, outsz, "-%c", optopt);
	else
		snprintf(out, outsz, "%s", arg ? arg : "?");
}

static int takes_argument(const struct option *lo, const char *name)
{
	for (; lo->name; lo++)
		if (strcmp(lo->name, name) == 0)
			return lo->has_arg;
	return -1;
}

/* How many long options start with prefix. */
static int prefix_matches(const struct option *lo, const char *prefix)
{
	int n = 0;

	for (; lo->name; lo++)
		n += strncmp(lo->name, prefix, strlen(prefix)) == 0;
	return n;
}

/* One getopt_long pass over argv[0..argc) (argv[0] is not an option).
 * Returns the index of the first operand, or -1 after a usage error. */
static int parse_pass(int argc, char **argv, int init, struct cli_opts *o)
{
	const struct option *lo = init ? init_long : global_long;
	char name[128];
	int c;

	opterr = 0;
	optind = 0; /* glibc: start afresh, argv[0] skipped */
	while ((c = getopt_long(argc, argv, init ? INIT_SHORT : GLOBAL_SHORT, lo, NULL)) != -1) {
		const char *eq;
		switch (c) {
		case OPT_CONFIG: o->config = optarg; break;
		case 'C': o->directory = optarg; break;
		case OPT_DRY_RUN: o->dry_run = 1; break;
		case 'q': o->quiet = 1; break;
		case 'v': o->verbose = 1; break;
		case 'h': o->help = 1; break;
		case OPT_NO_COLOR: o->no_color = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_VERSION: o->version = 1; break;
		case OPT_OUTPUT: o->output = optarg; break;
		case OPT_EMIT: o->emit = optarg; break;
		case OPT_JUNIT: o->junit = optarg; break;
		case OPT_NO_REPORT: o->no_report = 1; break;
		case OPT_FAIL_ON_FLAKY: o->fail_on_flaky = 1; o->loop_opt = 1; break;
		case OPT_LAST_FAILED: o->last_failed = 1; o->loop_opt = 1; break;
		case OPT_RERUN: o->rerun = optarg; o->loop_opt = 1; break;
		case OPT_GREP: o->grep = optarg; o->loop_opt = 1; break;
		case OPT_GREP_INVERT: o->grep_invert = optarg; o->loop_opt = 1; break;
		case OPT_FAIL_FAST: o->max_failures = "1"; o->loop_opt = 1; break;
		case OPT_MAX_FAILURES:
			if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) ||
			    strspn(optarg, "0") == strlen(optarg) || strlen(optarg) > 9) {
				cli_usage_error("--max-failures '%s': expected a positive whole number",
				                optarg);
				return -1;
			}
			o->max_failures = optarg;
			o->loop_opt = 1;
			break;
		case OPT_ONLY: {
			const char **only = realloc(o->only, (o->nonly + 1) * sizeof *only);
			if (!only) {
				fputs("hypertest: out of memory\n", stderr);
				exit(CLI_EXIT_FAIL);
			}
			o->only = only;
			o->only[o->nonly++] = optarg;
			o->loop_opt = 1;
			break;
		}
		case OPT_RETRIES:
			if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) ||
			    strlen(optarg) > 3) {
				cli_usage_error("--retries '%s': expected a whole number from 0 to 100",
				                optarg);
				return -1;
			}
			o->loop_opt = 1;
			if (add_set(o, "retries", 7, optarg) < 0) {
				fputs("hypertest: out of memory\n", stderr);
				exit(CLI_EXIT_FAIL);
			}
			break;
		case 'f': o->force = 1; break;
		case 'y': o->yes = 1; break;
		case OPT_RUNNER: o->runner = optarg; break;
		case OPT_PROVIDER: o->provider = optarg; break;
		case OPT_FROM: o->from = optarg; break;
		case OPT_SET:
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				cli_usage_error("--set '%s': expected KEY=VALUE", optarg);
				return -1;
			}
			if (add_set(o, optarg, (size_t)(eq - optarg), eq + 1) < 0) {
				fputs("hypertest: out of memory\n", stderr);
				exit(CLI_EXIT_FAIL);
			}
			break;
		case OPT_CONCURRENCY:
			if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) ||
			    strspn(optarg, "0") == strlen(optarg) || strlen(optarg) > 9) {
				cli_usage_error("--concurrency '%s': expected a positive whole number",
				                optarg);
				return -1;
			}
			if (add_set(o, "concurrency", 11, optarg) < 0) {
				fputs("hypertest: out of memory\n", stderr);
				exit(CLI_EXIT_FAIL);
			}
			break;
		case ':':
			bad_option_name(argv, name, sizeof name);
			cli_usage_error("option '%s' requires an argument", name);
			return -1;
		default:
			bad_option_name(argv, name, sizeof name);
			if (strncmp(name, "--", 2) == 0 && takes_argument(lo, name + 2) == no_argument)
				cli_usage_error("option '%s' takes no argument", name);
			else if (!init && (strcmp(name, "--force") == 0 || strcmp(name, "-f") == 0 ||
			                   strcmp(name, "--yes") == 0 || strcmp(name, "-y") == 0))
				cli_usage_error("option '%s' applies only to 'init' and 'destroy'", name);
			else if (strncmp(name, "--", 2) == 0 && prefix_matches(lo, name + 2) > 1)
				cli_usage_error("ambiguous option '%s'", name);
			else
				cli_usage_error("unknown option '%s'", name);
			return -1;
		}
	}
	return optind;
}

/* Fills o; returns -1 to go on, or the exit status. */
static int parse_command_line(int argc, char **argv, struct cli_opts *o)
{
	int first, rest;
	char **cargv;
	int cargc;

	o->cmd = CLI_CMD_NONE;
	first = parse_pass(argc, argv, 0, o);
	if (first < 0)
		return CLI_EXIT_USAGE;
	if (first >= argc) {
		if (o->version) {
			o->cmd = CLI_CMD_VERSION;
			return -1;
		}
		if (o->help) {
			cli_usage(stdout, CLI_CMD_NONE);
			return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
		}
		return cli_usage_error("missing command");
	}
	o->cmd = cli_command_lookup(argv[first]);
	if (o->cmd == CLI_CMD_NONE)
		return cli_usage_error("unknown command '%s'", argv[first]);

	cargc = argc - first;
	cargv = argv + first;
	rest = parse_pass(cargc, cargv, o->cmd == CLI_CMD_INIT || o->cmd == CLI_CMD_DESTROY, o);
	if (rest < 0)
		return CLI_EXIT_USAGE;
	if (o->cmd == CLI_CMD_HELP && rest < cargc) {
		o->help_topic = cargv[rest++];
		if (cli_command_lookup(o->help_topic) == CLI_CMD_NONE)
			return cli_usage_error("unknown command '%s'", o->help_topic);
	}
	if (o->cmd == CLI_CMD_PROVISION && o->emit && rest < cargc) {
		/* provision --emit FORMAT FILE: options may follow FILE too */
		int more;
		o->emit_file = cargv[rest];
		more = parse_pass(cargc - rest, cargv + rest, 0, o);
		if (more < 0)
			return CLI_EXIT_USAGE;
		rest += more;
	}
	if (o->cmd == CLI_CMD_REPORT && rest < cargc) {
		/* options may follow the operand too */
		int more;
		o->run_id = cargv[rest];
		more = parse_pass(cargc - rest, cargv + rest, 0, o);
		if (more < 0)
			return CLI_EXIT_USAGE;
		rest += more;
	}
	if (rest < cargc)
		return cli_usage_error("unexpected argument '%s' after '%s'", cargv[rest], argv[first]);

	if (o->help || o->cmd == CLI_CMD_HELP) {
		int topic = o->cmd;
		if (o->cmd == CLI_CMD_HELP && o->help_topic)
			topic = cli_command_lookup(o->help_topic);
		else if (o->cmd == CLI_CMD_HELP && !o->help)
			topic = CLI_CMD_NONE; /* "help" alone */
		cli_usage(stdout, topic);
		return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	}
	if (o->version)
		o->cmd = CLI_CMD_VERSION;
	if (o->json && !cli_command_takes_json(o->cmd))
		return cli_usage_error("option '--json' does not apply to '%s'",
		                       cli_command_name(o->cmd));
	if (o->output && o->cmd != CLI_CMD_DEPLOY)
		return cli_usage_error("option '--output' applies only to 'deploy'");
	if (o->emit && o->cmd != CLI_CMD_PROVISION)
		return cli_usage_error("option '--emit' applies only to 'provision'");
	if (o->emit && !o->emit_file)
		return cli_usage_error("--emit %s: expected a file after the format (- for stdout)",
		                       o->emit);
	if (o->emit && o->json)
		return cli_usage_error("options '--emit' and '--json' exclude each other");
	if (o->output && strncmp(o->output, "oci:", 4) != 0)
		return cli_usage_error("--output '%s': expected oci:DIRECTORY", o->output);
	if (o->junit && o->cmd != CLI_CMD_INVOKE && o->cmd != CLI_CMD_REPORT)
		return cli_usage_error("option '--junit' applies only to 'invoke' and 'report'");
	if (o->no_report && o->cmd != CLI_CMD_INVOKE)
		return cli_usage_error("option '--no-report' applies only to 'invoke'");
	if (o->loop_opt && o->cmd != CLI_CMD_INVOKE)
		return cli_usage_error("options '--retries', '--fail-on-flaky', '--last-failed', "
		                       "'--rerun', '--grep', '--grep-invert', '--only', "
		                       "'--max-failures' and '--fail-fast' apply only to 'invoke'");
	if (o->quiet && o->verbose)
		return cli_usage_error("options '--quiet' and '--verbose' exclude each other");
	if ((o->runner || o->provider || o->from) && o->cmd != CLI_CMD_INIT)
		return cli_usage_error("options '--runner', '--provider' and '--from' apply only to 'init'");
	if (o->from && (o->runner || o->provider))
		return cli_usage_error("option '--from' converts a file: '--runner' and '--provider' do "
		                       "not apply");
	return -1;
}

/* ---- signals ---------------------------------------------------------------- */

static hypertest *signal_handle;
static volatile sig_atomic_t signal_notice; /* write the notice ourselves */

static void on_signal(int sig)
{
	static const char notice[] =
	    "hypertest: cancelling (press Ctrl-C again to stop at once)\n";

	if (!cli_cancel_requested && !cli_prompting) {
		cli_cancel_requested = 1;
		hypertest_cancel(signal_handle);
		if (signal_notice) {
			ssize_t n = write(STDERR_FILENO, notice, sizeof notice - 1);
			(void)n;
		}
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_signals(hypertest *h, int write_notice)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	struct sigaction sa, old;
	size_t i;

	signal_handle = h;
	signal_notice = write_notice;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		/* a signal ignored by whoever started us stays ignored */
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

/* ---- preparing the handle ------------------------------------------------------- */

/* DIR/hypertest.config.json, malloc'd. */
static char *default_config_path(hypertest *h)
{
	const char *dir = hypertest_project_dir(h);
	size_t n = strlen(dir) + sizeof "/hypertest.config.json";
	char *path = malloc(n);

	if (path)
		snprintf(path, n, "%s/hypertest.config.json", dir);
	return path;
}

/* Loads the configuration: required for deploy, invoke and doctor; for
 * plugins only when --config names one or a configuration file exists.
 * Without --config: hypertest.config.json, else the TypeScript hypertest's
 * hypertest.config.{js,mjs,cjs,ts} (read with node); --config naming such a
 * module reads it with node too. */
static int load_config(hypertest *h, const struct cli_opts *o, int required)
{
	char *module = NULL;
	int rc;

	if (o->config && cli_jsconfig_is_module(o->config)) {
		if (o->config[0] == '/')
			module = strdup(o->config);
		else if ((module = malloc(strlen(hypertest_project_dir(h)) + strlen(o->config) + 2)))
			sprintf(module, "%s/%s", hypertest_project_dir(h), o->config);
		if (!module)
			return -1;
	} else if (!o->config) {
		char *path = default_config_path(h);
		int exists;

		if (!path)
			return -1;
		exists = access(path, F_OK) == 0;
		free(path);
		if (!exists)
			module = cli_jsconfig_find(hypertest_project_dir(h));
		if (!exists && !module && !required)
			return 0;
	}
	if (module) {
		rc = cli_jsconfig_load(h, module, o->quiet);
		free(module);
		if (rc < 0 && !required && !o->config) {
			fputs("hypertest: warning: searching without the configuration's pluginPath\n",
			      stderr);
			rc = 0;
		}
		return rc;
	}
	if (hypertest_config_load_file(h, o->config) != HYPERTEST_OK) {
		if (required || o->config) {
			cli_error(h);
			return -1;
		}
		fprintf(stderr, "hypertest: warning: %s (searching without its pluginPath)\n",
		        hypertest_errmsg(h));
	}
	return 0;
}

/* The configuration's logLevel, unless --quiet or --verbose decided. */
static void apply_log_level(hypertest *h, const struct cli_opts *o, struct render *r)
{
	static const char *const names[] = {"\"error\"", "\"warning\"", "\"info\"", "\"debug\""};
	char *v;

	if (o->quiet || o->verbose || !(v = hypertest_config_get(h, "logLevel")))
		return;
	for (int i = 0; i < 4; i++)
		if (strcmp(v, names[i]) == 0) {
			hypertest_set_log_level(h, i);
			render_set_log_level(r, i);
		}
	hypertest_string_free(v);
}

static int prepare(hypertest *h, const struct cli_opts *o, int config_required)
{
	char err[1024];
	size_t i;

	/* the project's .env first: the configuration may refer to it */
	if (cli_dotenv_load(hypertest_project_dir(h), err, sizeof err) != 0) {
		fprintf(stderr, "hypertest: %s\n", err);
		return -1;
	}
	if (load_config(h, o, config_required) < 0)
		return -1;
	for (i = 0; i < o->nsets; i++) {
		if (hypertest_config_set(h, o->sets[i].key, o->sets[i].value) != HYPERTEST_OK) {
			cli_error(h);
			return -1;
		}
	}
	for (i = 0; i < o->nonly; i++)
		if (hypertest_set_invoke_option(h, HYPERTEST_INVOKE_ONLY, o->only[i]) != HYPERTEST_OK) {
			cli_error(h);
			return -1;
		}
	if ((o->grep && hypertest_set_invoke_option(h, HYPERTEST_INVOKE_GREP, o->grep)) ||
	    (o->grep_invert &&
	     hypertest_set_invoke_option(h, HYPERTEST_INVOKE_GREP_INVERT, o->grep_invert)) ||
	    (o->rerun && hypertest_set_invoke_option(h, HYPERTEST_INVOKE_RERUN, o->rerun)) ||
	    (o->last_failed && hypertest_set_invoke_option(h, HYPERTEST_INVOKE_LAST_FAILED, "1")) ||
	    (o->max_failures &&
	     hypertest_set_invoke_option(h, HYPERTEST_INVOKE_MAX_FAILURES, o->max_failures))) {
		cli_error(h);
		return -1;
	}
	if (hypertest_set_flags(h, (o->dry_run ? HYPERTEST_FLAG_DRY_RUN : 0) |
	                               (o->no_report ? HYPERTEST_FLAG_NO_REPORT : 0)) != HYPERTEST_OK ||
	    (o->junit && hypertest_set_junit_output(h, o->junit) != HYPERTEST_OK) ||
	    (o->output && hypertest_set_deploy_output(h, o->output) != HYPERTEST_OK)) {
		cli_error(h);
		return -1;
	}
	return 0;
}

static int run_command(hypertest *h, const struct cli_opts *o)
{
	struct render_opts ro;
	struct render *r;
	int status = CLI_EXIT_FAIL;
	int level = o->quiet ? HYPERTEST_LOG_WARNING
	            : o->verbose ? HYPERTEST_LOG_DEBUG
	                         : HYPERTEST_LOG_INFO;

	memset(&ro, 0, sizeof ro);
	ro.cmd = o->cmd;
	ro.quiet = o->quiet;
	ro.verbose = o->verbose;
	ro.json = o->json;
	ro.no_color = o->no_color;
	r = render_new(&ro);
	if (!r) {
		fputs("hypertest: out of memory\n", stderr);
		return CLI_EXIT_FAIL;
	}
	render_attach(r, h);
	hypertest_set_log_level(h, level);
	if (prepare(h, o, o->cmd != CLI_CMD_PLUGINS) == 0) {
		apply_log_level(h, o, r);
		switch (o->cmd) {
		case CLI_CMD_PLUGINS:
			status = cli_cmd_plugins(h, o, r);
			break;
		case CLI_CMD_DEPLOY:
			catch_signals(h, !render_is_live(r));
			status = cli_cmd_deploy(h, o, r);
			break;
		case CLI_CMD_INVOKE:
			catch_signals(h, !render_is_live(r));
			status = cli_cmd_invoke(h, o, r);
			break;
		case CLI_CMD_DOCTOR:
			status = cli_cmd_doctor(h, o, r);
			break;
		case CLI_CMD_REPORT:
			status = cli_cmd_report(h, o, r);
			break;
		case CLI_CMD_PROVISION:
			if (!o->emit) /* --emit asks the cloud nothing */
				catch_signals(h, !render_is_live(r));
			status = cli_cmd_provision(h, o, r);
			break;
		case CLI_CMD_DESTROY:
			catch_signals(h, !render_is_live(r));
			status = cli_cmd_destroy(h, o, r);
			break;
		default:
			break;
		}
	}
	hypertest_set_event_callback(h, NULL, NULL);
	hypertest_set_log_callback(h, NULL, NULL);
	render_free(r);
	return status;
}

/* One malloc arena for the process.  A plugin's helper thread (the aws
 * provider's warm-up, which opens the invocations' connections) would
 * otherwise get an arena of its own: the memory it frees there (TLS
 * handshakes' buffers) is not reused by the main thread's allocations,
 * about 15 MB more at the peak of 10,000 TLS connections.  The threads
 * allocate little at the same time, so sharing costs no wall time. */
static void one_arena(void)
{
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	(void)mallopt(M_ARENA_MAX, 1);
#endif
}

/* Each invocation in flight holds a descriptor or more: the soft limit
 * on open files goes up to the hard one (the library checks, and says so,
 * when a run's concurrency does not fit). */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	struct cli_opts o;
	hypertest *h;
	int status;

	one_arena();
	raise_fd_limit();
	memset(&o, 0, sizeof o);
	status = parse_command_line(argc, argv, &o);
	if (status >= 0) {
		free_opts(&o);
		return status;
	}
	if (o.cmd == CLI_CMD_VERSION) {
		status = cli_cmd_version(&o);
		free_opts(&o);
		return status;
	}

	h = hypertest_new();
	if (!h) {
		fputs("hypertest: out of memory\n", stderr);
		free_opts(&o);
		return CLI_EXIT_FAIL;
	}
	if (o.directory && hypertest_set_project_dir(h, o.directory) != HYPERTEST_OK) {
		cli_error(h);
		status = CLI_EXIT_FAIL;
	} else if (o.cmd == CLI_CMD_INIT) {
		status = cli_cmd_init(h, &o);
	} else {
		status = run_command(h, &o);
	}
	/* the handler may still fire: it must not see a freed handle */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	hypertest_free(h);
	free_opts(&o);
	return status;
}
