/*
 * command.h - what the two files of the "command" runner share: output
 * sinks (capped files or memory, with a tail of the last bytes), running one
 * program without a shell (spawn.c), and the program lookup in PATH.
 */
#ifndef HT_RUNNER_COMMAND_H
#define HT_RUNNER_COMMAND_H

#include <stddef.h>
#include <stdint.h>

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
