/*
 * cli.h - what the modules of the hypertest program share: the parsed
 * command line, the help texts, a text buffer with JSON string escaping, the
 * renderer of events and the commands.  Uses the public API only.
 */
#ifndef HT_CLI_H
#define HT_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hypertest/hypertest.h>

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* Exit statuses. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* ---- commands and their help (usage.c) ------------------------------------ */

enum cli_command {
	CLI_CMD_NONE = -1,
	CLI_CMD_INIT = 0,
	CLI_CMD_DEPLOY,
	CLI_CMD_INVOKE,
	CLI_CMD_DOCTOR,
	CLI_CMD_REPORT,
	CLI_CMD_PROVISION,
	CLI_CMD_DESTROY,
	CLI_CMD_PLUGINS,
	CLI_CMD_VERSION,
	CLI_CMD_HELP,
	CLI_CMD_COUNT
};

/* The command named word, or CLI_CMD_NONE. */
int cli_command_lookup(const char *word);

/* dotenv.c: set the variables of DIR/.env that are not set yet (a missing
 * file is no error); -1 with "FILE:LINE: what" in err, nothing set. */
int cli_dotenv_load(const char *dir, char *err, size_t errlen);
const char *cli_command_name(int cmd);
/* Whether the command accepts --json. */
int cli_command_takes_json(int cmd);
/* Full help of a command (CLI_CMD_NONE: the program's). */
void cli_usage(FILE *f, int cmd);
/* "hypertest: <what>\nTry 'hypertest --help'." on stderr; returns 2. */
int cli_usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);

/* ---- the parsed command line (main.c) ----------------------------------- */

struct cli_set {
	char *key;
	char *value;
};

struct cli_opts {
	int cmd;                 /* enum cli_command */
	const char *help_topic;  /* "help COMMAND" */
	const char *config;      /* --config, or NULL */
	const char *directory;   /* -C, or NULL */
	int dry_run, quiet, verbose, help, no_color, json, version;
	int force, yes;          /* init, destroy */
	const char *runner;      /* init --runner */
	const char *provider;    /* init --provider */
	const char *from;        /* init --from FILE */
	const char *output;      /* deploy --output oci:DIR, or NULL */
	const char *emit;        /* provision --emit FORMAT, or NULL */
	const char *emit_file;   /* its FILE ("-": stdout) */
	const char *junit;       /* --junit FILE, or NULL */
	int no_report;           /* --no-report */
	const char *run_id;      /* report RUN_ID, or NULL */
	struct cli_set *sets;    /* --set, --concurrency and --retries, in order */
	/* invoke: selection, stopping early, flaky tests */
	int loop_opt;            /* one of them was given */
	int fail_on_flaky, last_failed;
	const char *rerun, *grep, *grep_invert, *max_failures;
	const char **only;
	size_t nonly;
	size_t nsets;
};

/* Set by main's signal handler when a cancel was asked for. */
extern volatile sig_atomic_t cli_cancel_requested;
/* Set while a command waits for the user's answer (destroy's [y/N]): the
 * signal then stops the program at once, as it would without a handler. */
extern volatile sig_atomic_t cli_prompting;

/* ---- text buffer and JSON strings (buf.c) ---------------------------------- */

struct cli_buf {
	char *data; /* NUL-terminated once anything was added */
	size_t len, cap;
	int oom;    /* an allocation failed: the contents are incomplete */
};

void cli_buf_add(struct cli_buf *b, const char *s, size_t n);
void cli_buf_puts(struct cli_buf *b, const char *s);
void cli_buf_printf(struct cli_buf *b, const char *fmt, ...) CLI_PRINTF(2, 3);
/* s as a JSON string literal, quotes included. */
void cli_buf_json_str(struct cli_buf *b, const char *s);
/* The contents ("" when empty); stays owned by b. */
const char *cli_buf_str(const struct cli_buf *b);
void cli_buf_free(struct cli_buf *b);

/* ---- configuration modules of the TypeScript hypertest (jsconfig.c) ------- */

/* Whether path ends in .js, .mjs, .cjs or .ts. */
int cli_jsconfig_is_module(const char *path);
/* DIR/hypertest.config.{js,mjs,cjs,ts}, the first that exists (malloc'd),
 * or NULL. */
char *cli_jsconfig_find(const char *dir);
/* Evaluate the module at path with node, in project_dir: 0 with *json
 * hypertest's configuration (malloc'd) and a line per note added to notes;
 * -1 with the error ("PATH: what", node's report indented below) in err. */
int cli_jsconfig_eval(const char *path, const char *project_dir, char **json,
                      struct cli_buf *notes, struct cli_buf *err);
/* Load the module at path into h (notes on stderr unless quiet); -1 after
 * printing the error. */
int cli_jsconfig_load(hypertest *h, const char *path, int quiet);

/* ---- rendering of events and logs (render.c) --------------------------------- */

struct render;

struct render_opts {
	int cmd;          /* what runs: deploy, invoke, doctor, plugins */
	int quiet, verbose, json;
	int no_color;     /* --no-color */
};

/* Decide the mode from the options, the environment (NO_COLOR, TERM) and
 * whether stderr and stdout are terminals. */
struct render *render_new(const struct render_opts *o);
void render_free(struct render *r);
/* Install the event and log callbacks on h. */
void render_attach(struct render *r, hypertest *h);
/* Whether the live display is in use (the signal handler then stays quiet). */
int render_is_live(const struct render *r);
/* Whether stdout / stderr get ANSI colors. */
int render_color_out(const struct render *r);
/* Draw the final state and leave the cursor below the display. */
void render_finish(struct render *r);
/* Deploy's last line: done or failed, and the total elapsed time. */
void render_deploy_end(struct render *r, int ok);
/* A line of the program's own on stderr ("hypertest: " is not added). */
void render_note(struct render *r, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The summary of an invoke, unless the run's end event already showed it. */
void render_run_summary(struct render *r, const hypertest_run *run);
/* Log lines above level are not shown (the configuration's logLevel). */
void render_set_log_level(struct render *r, int level);
/* Doctor tallies. */
void render_doctor_counts(const struct render *r, int *ok, int *warnings, int *failed);

/* ---- commands (commands.c, init.c) ------------------------------------------------ */

int cli_cmd_version(const struct cli_opts *o);
int cli_cmd_plugins(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_deploy(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_invoke(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_doctor(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_report(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_provision(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_destroy(hypertest *h, const struct cli_opts *o, struct render *r);
int cli_cmd_init(hypertest *h, const struct cli_opts *o);

/* Print "hypertest: " + the handle's error on stderr. */
void cli_error(hypertest *h);

#endif /* HT_CLI_H */
