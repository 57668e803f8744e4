/*
 * command.h - what the files of the "command" runner share: its options and
 * argv templates (options.c), output sinks (capped files or memory, with a
 * tail of the last bytes), running one program without a shell and the
 * program lookup in PATH (spawn.c).  command.c holds the operations.
 */
#ifndef HT_RUNNER_COMMAND_H
#define HT_RUNNER_COMMAND_H

#include <stddef.h>
#include <stdint.h>

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

struct rn_buf; /* runner-common/runner-common.h (text.c is compiled in) */

/* Expand one template into out (only check it when out is NULL); values are
 * those of {id}, {testDir}, {artifactsDir}.  A placeholder not in `allowed`
 * is TPL_NOT_HERE; on an error *where points at the offending brace. */
int cmd_template_expand(const char *s, unsigned allowed, const char *const values[3],
                        struct rn_buf *out, const char **where);
/* Expand a checked argv template; NULL when out of memory. */
char **cmd_argv_expand(char **tpl, const char *const values[3]);

/* ---- spawn.c --------------------------------------------------------------------- */

/* Where one output stream of a program goes.  Bytes past `limit` are read
 * and discarded; the last `tail_cap` bytes are kept apart in any case. */
typedef struct cmd_sink {
	int fd;           /* file receiving the bytes, or -1: keep them in mem */
	uint64_t limit;   /* bytes stored at most */
	size_t tail_cap;  /* bytes of tail kept (0: none) */
	uint64_t total;   /* bytes read */
	uint64_t kept;    /* bytes stored */
	int last_byte;    /* last byte stored, -1 before the first */
	int write_errno;  /* first error writing fd (writing then stops) */
	int nomem;        /* memory ran out: mem or tail is incomplete */
	char *mem;        /* fd == -1: the stored bytes (NUL-terminated) */
	size_t mem_len, mem_cap;
	char *tail;       /* room for 2 * tail_cap bytes */
	size_t tail_len;
} cmd_sink;

/* 0, or ENOMEM (the tail buffer could not be allocated). */
int cmd_sink_init(cmd_sink *s, int fd, uint64_t limit, size_t tail_cap);
/* Append "[output truncated after N bytes]" to a file sink that overflowed.
 * Returns 0 or the errno of the first failed write. */
int cmd_sink_finish(cmd_sink *s);
/* The last min(total, tail_cap) bytes. */
const char *cmd_sink_tail(const cmd_sink *s, size_t *len);
void cmd_sink_free(cmd_sink *s);

/* One run of a program. */
typedef struct cmd_spawn {
	const char *path;   /* what to execve (see cmd_find_program) */
	char *const *argv;
	char *const *envp;
	const char *cwd;    /* directory to run in; NULL: the current one */
	cmd_sink *out, *err;
	/* outcome */
	int start_errno;    /* the program did not start: why */
	int start_chdir;    /* ... because cwd could not be entered */
	int status;         /* wait status when it ran */
	int status_lost;    /* someone else reaped it: status unknown */
} cmd_spawn;

/* Run sp->path with stdin from /dev/null and stdout/stderr read into the
 * sinks, in its own process group, killed if this process dies.  When the
 * program exits its whole group is killed and the pipes are drained until
 * they stay quiet for a moment.  Returns 0 (outcome in sp) or an errno for
 * a failure of our own (pipe, fork). */
int cmd_spawn_run(cmd_spawn *sp);

/* Find a program as execvp does: a name with a slash is a path (relative to
 * cwd, or the current directory when cwd is NULL) and is only checked when
 * check_path is set; other names are searched in path_env (NULL: the
 * default "/bin:/usr/bin"; empty and relative entries are taken from cwd).
 * Returns 0 with *found (malloc'd), ENOENT, EACCES or ENOMEM. */
int cmd_find_program(const char *name, const char *path_env, const char *cwd, int check_path,
                     char **found);

/* "SIGSEGV" for SIGSEGV; "signal 99" for a number without a name. */
const char *cmd_signal_name(int sig, char *buf, size_t size);

#endif /* HT_RUNNER_COMMAND_H */
