/*
 * playwright.h - what the files of the "playwright" runner share: the grep
 * patterns of the contexts (grep.c), the options
 * (options.c) and reading Playwright's JSON reports (report.c); buffers,
 * option checks and running programs come from ../common (htplugin.h).
 * playwright.c holds the operations.
 */
#ifndef HT_RUNNER_PLAYWRIGHT_H
#define HT_RUNNER_PLAYWRIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/htplugin.h" /* htp_buf, options, htp_run */

/* ---- grep patterns (grep.c) ---------------------------------------------------------- */

/* Append s escaped as the npm package escape-string-regexp does:
 * | \ { } ( ) [ ] ^ $ + * ? . get a backslash, and - becomes \x2d. */
void pw_regex_escape(htp_buf *out, const char *s);
/* The context pattern of one test, as the TypeScript hypertest writes it:
 * "^" + the escaped project name, spec path and titles joined by single
 * spaces + "$", then every backslash doubled.  NULL when out of memory. */
char *pw_grep_pattern(const char *project, const char *spec, const char *const *titles,
                      size_t n_titles);
/* The pattern Playwright gets: every doubled backslash turned back into one
 * (a lone backslash stays).  NULL when out of memory. */
char *pw_grep_undouble(const char *s);

/* ---- options (options.c) --------------------------------------------------------------- */

enum { PW_PROJECTS_FIRST = 0, PW_PROJECTS_ALL = 1, PW_PROJECTS_NAMED = 2 };

typedef struct pw_options {
	char **command;   /* argv prefix, default {"npx", "playwright", "test"} */
	char *config;     /* relative path of the config file, or NULL */
	int projects;     /* PW_PROJECTS_... */
	char **names;     /* PW_PROJECTS_NAMED: the names */
	size_t n_names;
	char **include;   /* more relative paths for the image, or NULL */
} pw_options;

/* Parse and check the options object (NULL or "" is {}).  Returns 0, or a
 * hypertest error code with *error (malloc'd, NULL when out of memory)
 * naming the option. */
int pw_options_parse(pw_options *o, const char *json, char **error);
void pw_options_free(pw_options *o);

/* ---- reports (report.c) ------------------------------------------------------------------ */

/* What `playwright test --list --reporter=json` tells. */
typedef struct pw_listing {
	char **contexts;  /* {"grep": "..."} JSON texts, in order */
	size_t n;
	char *test_dir;   /* absolute: common ancestor of the chosen projects' testDirs */
} pw_listing;

/* Parse a listing report, choosing projects as o says.  Returns 0, or an
 * error code with *error (malloc'd) saying what is wrong. */
int pw_listing_parse(const char *json, size_t len, const pw_options *o, pw_listing *out,
                     char **error);
void pw_listing_free(pw_listing *l);

/* The outcome of one run, from its report. */
typedef struct pw_outcome {
	int status;       /* enum hypertest_status */
	int64_t duration; /* ms; -1 when the report has none */
	char *name;       /* "[project] file > describe > title", or NULL */
	char *file_path;  /* the spec, relative to the config's directory or cwd */
	char *message;    /* failed: why */
	char *stack;      /* failed: the stack, or NULL */
} pw_outcome;

/* Read a run report: exactly one test is expected.  grep (for messages)
 * is the pattern that was given; cwd the directory Playwright ran in.
 * Returns 0 with *out set, or an error code with *error (malloc'd) when
 * the report is not Playwright's JSON. */
int pw_outcome_parse(const char *json, size_t len, const char *grep, const char *cwd,
                     pw_outcome *out, char **error);
void pw_outcome_free(pw_outcome *o);

/* Remove ANSI escape sequences (colours) in place. */
void pw_strip_ansi(char *s);

/* ---- lambda.c: inside AWS Lambda ---------------------------------------------------- */

/* Chromium's launch arguments inside Lambda (NULL-terminated). */
extern const char *const pw_lambda_chromium_args[];
/* 1 inside Lambda (AWS_LAMBDA_FUNCTION_NAME set). */
int pw_in_lambda(void);
/* The wrapper's text for the user's config (absolute path, or NULL for
 * none) whose directory is base_dir (malloc'd; NULL when out of memory). */
char *pw_lambda_wrapper_text(const char *user_config, const char *base_dir);
/* Write the wrapper into $TMPDIR/hypertest-playwright; its path (malloc'd),
 * or NULL with *error (malloc'd, NULL when out of memory). */
char *pw_lambda_wrapper(const char *user_config, const char *base_dir, char **error);
/* HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME under $TMPDIR (else /tmp), as
 * NAME=VALUE strings (htp_strv_free), or NULL when out of memory. */
char **pw_lambda_env_vars(void);

#endif /* HT_RUNNER_PLAYWRIGHT_H */
