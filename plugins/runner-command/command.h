/*
 * command.h - what the files of the "command" runner share: its options and
 * argv templates (options.c), output sinks (capped files or memory, with a
 * tail of the last bytes) and running one program come from plugins/common.
 * command.c holds the operations.
 */
#ifndef HT_RUNNER_COMMAND_H
#define HT_RUNNER_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "../common/htplugin.h"

/* ---- options.c ------------------------------------------------------------------ */

typedef struct cmd_options {
	char *test_dir;       /* relative, without trailing slashes */
	char **list;          /* argv template of the list command, or NULL */
	char **tests;         /* fixed test ids, or NULL */
	size_t n_tests;
	char **run;           /* argv template of the run command */
	int skip_code;
	char **env;           /* "NAME=VALUE" added to the environment, or NULL */
	const char *path_env; /* the PATH of env, or NULL */
	size_t message_bytes;
	uint64_t output_limit;
	char **include;       /* more relative paths for the image, or NULL */
} cmd_options;

/* Parse and check the options object (NULL or "" is {}).  Returns 0, or a
 * hypertest error code with *error (malloc'd, may be NULL when out of
 * memory) naming the option. */
int cmd_options_parse(cmd_options *o, const char *json, char **error);
void cmd_options_free(cmd_options *o);

/* Placeholders, as bits of `allowed`; results of cmd_template_expand. */
enum { PH_ID = 1, PH_TEST_DIR = 2, PH_ARTIFACTS = 4, PH_ALL = 7 };
enum { TPL_OK = 0, TPL_UNKNOWN, TPL_NOT_HERE, TPL_LONE_CLOSE };


/* Expand one template into out (only check it when out is NULL); values are
 * those of {id}, {testDir}, {artifactsDir}.  A placeholder not in `allowed`
 * is TPL_NOT_HERE; on an error *where points at the offending brace. */
int cmd_template_expand(const char *s, unsigned allowed, const char *const values[3],
                        htp_buf *out, const char **where);
/* Expand a checked argv template; NULL when out of memory. */
char **cmd_argv_expand(char **tpl, const char *const values[3]);

#endif /* HT_RUNNER_COMMAND_H */
