/*
 * htplugin.h - plugins/common, the support library every plugin links
 * (libhtplugin.la, a convenience library of PIC objects compiled with
 * hidden visibility: nothing of it is exported from a module).
 *
 *   basics.c   growable string, string vectors, the monotonic clock,
 *              write_all, path_join, formatted strings and errors
 *   plugin.c   errors through the core's upcall, registration
 *   spawn.c    running one program without a shell into capped sinks
 *   run.c      one program with its output in capped log files
 *   options.c  checking JSON options with the key in every message
 *   text.c     UTF-8 cleaning, reading a file whole, child environments
 *   xml.c      a small XML reader (JUnit reports)
 *
 * Conventions (plugins/README.md): a function that can fail returns 0 or a
 * hypertest error code (enum hypertest_error) and puts the detail in a
 * malloc'd message through `char **error` (NULL when memory ran out; the
 * caller frees it).  Small helpers whose only failure is a system call
 * return -1 or an errno and say so.  A function named *_take takes
 * ownership of what it is given, or hands over what it holds; anything
 * else borrows.  Names are htp_*.
 */
#ifndef HTP_HTPLUGIN_H
#define HTP_HTPLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <hypertest/plugin.h>
#include <jansson.h>

#if defined(__GNUC__)
#define HTP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HTP_PRINTF(f, a)
#endif

/* ---- basics.c ------------------------------------------------------------------- */

/* A growable string, NUL-terminated once something was added (data is NULL
 * before).  nomem is set when memory ran out: every later add is then
 * ignored and fails, and htp_buf_take returns NULL.  The adds return 0, or
 * -1 when memory ran out (now or before). */
typedef struct htp_buf {
	char *data;
	size_t len, cap;
	int nomem;
} htp_buf;
int htp_buf_add(htp_buf *b, const void *data, size_t n);
int htp_buf_str(htp_buf *b, const char *s);
int htp_buf_addf(htp_buf *b, const char *fmt, ...) HTP_PRINTF(2, 3);
/* Hand the string over to the caller ("" when nothing was added; NULL only
 * when memory ran out); the buffer is emptied. */
char *htp_buf_take(htp_buf *b);
void htp_buf_free(htp_buf *b);

/* NULL-terminated string vectors. */
void htp_strv_free(char **v);
size_t htp_strv_len(char *const *v);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t htp_now_ms(void);

/* Write all of data, retrying on EINTR and waiting on EAGAIN.  0, or the
 * errno of the failed write. */
int htp_write_all(int fd, const void *data, size_t len);

/* fd itself when it is not 0, 1 or 2 (or negative); else a close-on-exec
 * copy above 2, and fd is closed (so that dup2 onto 0..2 in a child always
 * makes a new inheritable copy even if stdio was closed here).  -1 with
 * errno when it cannot be copied. */
int htp_fd_above_stdio(int fd);

/* dir + "/" + rel, without doubling a slash; "." on either side yields the
 * other.  NULL when memory ran out. */
char *htp_path_join(const char *dir, const char *rel);

/* A malloc'd formatted string, NULL when memory ran out. */
char *htp_strdupf(const char *fmt, ...) HTP_PRINTF(1, 2);
char *htp_vstrdupf(const char *fmt, va_list ap) HTP_PRINTF(1, 0);

/* The error convention: *error = the formatted message (NULL when memory
 * ran out; error itself may be NULL); returns code. */
int htp_errorf(char **error, int code, const char *fmt, ...) HTP_PRINTF(3, 4);

/* ---- plugin.c ------------------------------------------------------------------- */

/* Report code with a printf message through up->set_error (a fixed "out of
 * memory" text when the message cannot be made); returns code. */
int htp_fail(const hypertest_upcalls *up, hypertest_core *core, int code, const char *fmt, ...)
	HTP_PRINTF(4, 5);

/* What every hypertest_plugin_init does: bind the core's upcall table into
 * *up (the plugin's own copy), then register one plugin of that kind with
 * its operations.  HYPERTEST_ERR_ABI when an upcall every core has is
 * missing, else what the core's register upcall returns. */
int htp_register(hypertest_upcalls *up, hypertest_core *core, const hypertest_dispatch *upcalls,
                 int kind, const char *name, const char *description,
                 const hypertest_dispatch *ops);

/* ---- options.c ------------------------------------------------------------------ */

/* Parse the options text (NULL or "" is {}) into an object.  0 or an error code. */
int htp_options_load(const char *prefix, const char *json, json_t **obj, char **error);
/* Every key of obj must be in known (NULL-terminated); else an error naming
 * it, with the nearest known name as a suggestion. */
int htp_options_known(const char *prefix, json_t *obj, const char *const known[], char **error);
/* A string option (def when absent; must not be empty). */
int htp_opt_string(const char *prefix, json_t *obj, const char *key, const char *def,
                   char **out, char **error);
/* A relative path option without "..": trailing slashes removed. */
int htp_opt_relpath(const char *prefix, json_t *obj, const char *key, const char *def,
                    char **out, char **error);
/* An array of strings (absent: an empty array); NULL-terminated copy. */
int htp_opt_strings(const char *prefix, json_t *obj, const char *key, int relpaths,
                    char ***out, char **error);

/* ---- text.c ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 character at p (n bytes left), 0 if invalid or NUL. */
size_t htp_utf8_char(const unsigned char *p, size_t n);
/* Text for a message: invalid bytes as U+FFFD, trailing newlines removed,
 * the last `max` bytes at most (cut at a character boundary; 0: no limit);
 * was_cut: p starts inside the original text (skip a partial character). */
char *htp_text_clean(const char *p, size_t n, int was_cut, size_t max);
/* The whole file (NUL-terminated) if at most max bytes; errno otherwise
 * (EFBIG when larger). */
int htp_read_file(const char *path, size_t max, char **data, size_t *len);
/* environ with the "NAME=VALUE" entries of extra on top (array only; the
 * strings are borrowed). */
char **htp_env_with(char *const *extra);

/* ---- spawn.c --------------------------------------------------------------------- */

/* Where one output stream of a program goes.  Bytes past `limit` are read
 * and discarded; the last `tail_cap` bytes are kept apart in any case. */
typedef struct htp_sink {
	int fd;           /* file receiving the bytes, or -1: keep them in mem */
	uint64_t limit;   /* bytes stored at most */
	size_t tail_cap;  /* bytes of tail kept (0: none) */
	uint64_t total;   /* bytes read */
	uint64_t kept;    /* bytes stored */
	int last_byte;    /* last byte stored, -1 before the first */
	int write_errno;  /* first error writing fd (writing then stops) */
	int nomem;        /* memory ran out: mem or tail is incomplete */
	htp_buf mem;      /* fd == -1: the stored bytes (mem.data NULL: none) */
	char *tail;       /* room for 2 * tail_cap bytes */
	size_t tail_len;
} htp_sink;

/* 0, or ENOMEM (the tail buffer could not be allocated). */
int htp_sink_init(htp_sink *s, int fd, uint64_t limit, size_t tail_cap);
/* Append "[output truncated after N bytes]" to a file sink that overflowed.
 * Returns 0 or the errno of the first failed write. */
int htp_sink_finish(htp_sink *s);
/* The last min(total, tail_cap) bytes. */
const char *htp_sink_tail(const htp_sink *s, size_t *len);
void htp_sink_free(htp_sink *s);

/* One run of a program. */
typedef struct htp_spawn {
	const char *path;   /* what to execve (see htp_find_program) */
	char *const *argv;
	char *const *envp;
	const char *cwd;    /* directory to run in; NULL: the current one */
	htp_sink *out, *err;
	/* outcome */
	int start_errno;    /* the program did not start: why */
	int start_chdir;    /* ... because cwd could not be entered */
	int status;         /* wait status when it ran */
	int status_lost;    /* someone else reaped it: status unknown */
} htp_spawn;

/* Run sp->path with stdin from /dev/null and stdout/stderr read into the
 * sinks, in its own process group, killed if this process dies.  When the
 * program exits its whole group is killed and the pipes are drained until
 * they stay quiet for a moment.  Returns 0 (outcome in sp) or an errno for
 * a failure of our own (pipe, fork). */
int htp_spawn_run(htp_spawn *sp);

/* Find a program as execvp does: a name with a slash is a path (relative to
 * cwd, or the current directory when cwd is NULL) and is only checked when
 * check_path is set; other names are searched in path_env (NULL: the
 * default "/bin:/usr/bin"; empty and relative entries are taken from cwd).
 * Returns 0 with *found (malloc'd), ENOENT, EACCES or ENOMEM. */
int htp_find_program(const char *name, const char *path_env, const char *cwd, int check_path,
                     char **found);

/* "SIGSEGV" for SIGSEGV; "signal 99" for a number without a name. */
const char *htp_signal_name(int sig, char *buf, size_t size);

/* ---- run.c -------------------------------------------------------------------------- */

/* One run of a program: stdout and stderr to files (a path) or memory
 * (NULL), each capped at limit bytes, with the last tail_cap bytes of each
 * kept for messages. */
typedef struct htp_run {
	char **argv;          /* argv[0] is looked up in PATH unless it has a slash */
	char **envp;          /* NULL: environ */
	const char *cwd;      /* NULL: the current directory */
	const char *out_path, *err_path;
	uint64_t limit;
	size_t tail_cap;
	/* outcome */
	htp_sink out, err;
	htp_spawn sp;
	int64_t duration_ms;
} htp_run;

/* Run it: 0 (outcome in r->sp: start_errno, status...) or an error message
 * for a failure of our own (files, pipes, memory) in *error. */
int htp_run_program(htp_run *r, char **error);
void htp_run_free(htp_run *r);
/* The exit status, or -1 when it did not start, was killed or was lost. */
int htp_run_exit_code(const htp_run *r);
/* Why it did not exit 0 ("exited with status 2", "killed by signal
 * SIGSEGV", "cannot run 'x': No such file..."); NULL when it did. */
char *htp_run_outcome(const htp_run *r);
/* The tail of stdout or stderr, cleaned for a message. */
char *htp_run_tail(const htp_run *r, int err, size_t max);
/* stdout and stderr tails together, stderr last (for error messages). */
char *htp_run_output_tail(const htp_run *r, size_t max);

/* ---- xml.c --------------------------------------------------------------------------- */

/* An element: its attributes (decoded), its text (character data and
 * CDATA of the element itself, decoded, concatenated) and its children. */
typedef struct htp_xml {
	char *name;
	char **attrs; /* name, value, name, value, ..., NULL */
	char *text;
	size_t text_len;
	struct htp_xml **kids;
	size_t n_kids, cap_kids;
} htp_xml;

/* Parse a document; NULL with *error ("line L, column C: what") on a
 * syntax error or when memory ran out (*error NULL). */
htp_xml *htp_xml_parse(const char *s, size_t len, char **error);
void htp_xml_free(htp_xml *e);
const char *htp_xml_attr(const htp_xml *e, const char *name);
/* The first child named name, or NULL. */
htp_xml *htp_xml_child(const htp_xml *e, const char *name);
/* Every element named name below e (e included), in document order, into a
 * NULL-terminated malloc'd array (the elements are borrowed); count in *n. */
htp_xml **htp_xml_find_all(htp_xml *e, const char *name, size_t *n);

#endif /* HTP_HTPLUGIN_H */
