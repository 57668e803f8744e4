/*
 * runner-common.h - what the framework runners (playwright, pytest, ctest)
 * share: option checking with keys in every message (options.c), text and
 * file helpers (text.c, compiled into the command runner too), running one
 * program with its output in capped log files (run.c, on top of the spawn
 * engine of the "command" runner, plugins/runner-command/spawn.c, compiled
 * into each module) and a small XML reader for JUnit reports (xml.c).
 *
 * Every function returns malloc'd strings the caller frees; errors come
 * back as a malloc'd message (NULL when memory ran out).
 */
#ifndef HT_RUNNER_COMMON_H
#define HT_RUNNER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <hypertest/plugin.h>
#include <jansson.h>

#include "../runner-command/command.h" /* cmd_spawn, cmd_sink, cmd_find_program */

/* ---- options.c ------------------------------------------------------------------ */

/* Parse the options text (NULL or "" is {}) into an object.  0 or an error code. */
int rn_options_load(const char *prefix, const char *json, json_t **obj, char **error);
/* Every key of obj must be in known (NULL-terminated); else an error naming
 * it, with the nearest known name as a suggestion. */
int rn_options_known(const char *prefix, json_t *obj, const char *const known[], char **error);
/* A string option (def when absent; must not be empty). */
int rn_opt_string(const char *prefix, json_t *obj, const char *key, const char *def,
                  char **out, char **error);
/* A relative path option without "..": trailing slashes removed. */
int rn_opt_relpath(const char *prefix, json_t *obj, const char *key, const char *def,
                   char **out, char **error);
/* An array of strings (absent: an empty array); NULL-terminated copy. */
int rn_opt_strings(const char *prefix, json_t *obj, const char *key, int relpaths,
                   char ***out, char **error);

/* ---- text.c ------------------------------------------------------------------------ */

/* NULL-terminated string vectors. */
void rn_strv_free(char **v);
size_t rn_strv_len(char *const *v);

/* A growable NUL-terminated string; nomem is set when memory ran out. */
typedef struct rn_buf {
	char *p;
	size_t len, cap;
	int nomem;
} rn_buf;
void rn_buf_add(rn_buf *b, const char *s, size_t n);
void rn_buf_str(rn_buf *b, const char *s);
/* Take the string (never NULL unless out of memory); the buffer is emptied. */
char *rn_buf_take(rn_buf *b);

char *rn_path_join(const char *dir, const char *rel);
/* Length of the valid UTF-8 character at p (n bytes left), 0 if invalid or NUL. */
size_t rn_utf8_char(const unsigned char *p, size_t n);
/* Text for a message: invalid bytes as U+FFFD, trailing newlines removed,
 * the last `max` bytes at most (cut at a character boundary; 0: no limit);
 * was_cut: p starts inside the original text (skip a partial character). */
char *rn_text_clean(const char *p, size_t n, int was_cut, size_t max);
/* The whole file (NUL-terminated) if at most max bytes; errno otherwise
 * (EFBIG when larger). */
int rn_read_file(const char *path, size_t max, char **data, size_t *len);
/* environ with the "NAME=VALUE" entries of extra on top (array only; the
 * strings are borrowed). */
char **rn_env_with(char *const *extra);
int64_t rn_now_ms(void);

/* ---- run.c -------------------------------------------------------------------------- */

/* One run of a program: stdout and stderr to files (a path) or memory
 * (NULL), each capped at limit bytes, with the last tail_cap bytes of each
 * kept for messages. */
typedef struct rn_run {
	char **argv;          /* argv[0] is looked up in PATH unless it has a slash */
	char **envp;          /* NULL: environ */
	const char *cwd;      /* NULL: the current directory */
	const char *out_path, *err_path;
	uint64_t limit;
	size_t tail_cap;
	/* outcome */
	cmd_sink out, err;
	cmd_spawn sp;
	int64_t duration_ms;
} rn_run;

/* Run it: 0 (outcome in r->sp: start_errno, status...) or an error message
 * for a failure of our own (files, pipes, memory) in *error. */
int rn_run_program(rn_run *r, char **error);
void rn_run_free(rn_run *r);
/* The exit status, or -1 when it did not start, was killed or was lost. */
int rn_run_exit_code(const rn_run *r);
/* Why it did not exit 0 ("exited with status 2", "killed by signal
 * SIGSEGV", "cannot run 'x': No such file..."); NULL when it did. */
char *rn_run_outcome(const rn_run *r);
/* The tail of stdout or stderr, cleaned for a message. */
char *rn_run_tail(const rn_run *r, int err, size_t max);
/* stdout and stderr tails together, stderr last (for error messages). */
char *rn_run_output_tail(const rn_run *r, size_t max);

/* ---- xml.c --------------------------------------------------------------------------- */

/* An element: its attributes (decoded), its text (character data and
 * CDATA of the element itself, decoded, concatenated) and its children. */
typedef struct rn_xml {
	char *name;
	char **attrs; /* name, value, name, value, ..., NULL */
	char *text;
	size_t text_len;
	struct rn_xml **kids;
	size_t n_kids, cap_kids;
} rn_xml;

/* Parse a document; NULL with *error ("line L, column C: what") on a
 * syntax error or when memory ran out (*error NULL). */
rn_xml *rn_xml_parse(const char *s, size_t len, char **error);
void rn_xml_free(rn_xml *e);
const char *rn_xml_attr(const rn_xml *e, const char *name);
/* The first child named name, or NULL. */
rn_xml *rn_xml_child(const rn_xml *e, const char *name);
/* Every element named name below e (e included), in document order, into a
 * NULL-terminated malloc'd array (the elements are borrowed); count in *n. */
rn_xml **rn_xml_find_all(rn_xml *e, const char *name, size_t *n);

/* ---- errors ------------------------------------------------------------------------ */

/* Report code with a printf message through up->set_error; returns code. */
__attribute__((format(printf, 4, 5)))
int rn_fail(const hypertest_upcalls *up, hypertest_core *core, int code, const char *fmt, ...);

#endif /* HT_RUNNER_COMMON_H */
