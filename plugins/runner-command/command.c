/*
 * command.c - the "command" test runner: runs any test tool, one process per
 * test, never through a shell.  Its options and argv templates are in
 * options.c (documented there), the process handling in spawn.c.
 *
 * LIST_TESTS gives {"id": "<id>"} per test, from the "tests" option or from
 * the lines the "list" command prints.  RUN_TEST runs the "run" argv for the
 * context's id in the current directory: exit status 0 passes, skipExitCode
 * skips, anything else fails with the tail of stderr as the message; stdout
 * and stderr go to stdout.log and stderr.log in the artifacts directory.
 * argv[0] is a path when it contains a slash, else it is looked up in PATH
 * (the PATH of "env" if it sets one); it is started with execve, so a
 * script needs a "#!" line.
 */
#define _GNU_SOURCE
#include "command.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hypertest/plugin.h>
#include <jansson.h>

extern char **environ;

/* enum hypertest_check_status of hypertest.h, which a plugin does not include */

#define PREFIX "runner 'command': "
#define LIST_OUTPUT_MAX (64ull << 20)

static hypertest_upcalls up; /* bound once by hypertest_plugin_init */

typedef struct runner {
	hypertest_core *core;
	cmd_options o;
} runner;

/* ---- small helpers -------------------------------------------------------------- */

static const char *project_dir(const runner *r)
{
	const char *p = up.core_str ? up.core_str(r->core, HYPERTEST_CORE_PROJECT_DIR) : NULL;
	return (p && *p) ? p : ".";
}

/* ---- UTF-8 ---------------------------------------------------------------------- */

/* The environment of the commands: ours with the "env" option on top, and
 * art_var ("HT_TEST_ARTIFACTS_OUTPUT_PATH=DIR", or NULL) on top of both. */
static char **env_build(const runner *r, char *art_var)
{
	size_t n = 0, m = 0, alen = art_var ? strcspn(art_var, "=") + 1 : 0;
	for (char **e = environ; e && *e; e++)
		n++;
	for (char **e = r->o.env; e && *e; e++)
		m++;
	char **envp = calloc(n + m + 2, sizeof *envp);
	if (!envp)
		return NULL;
	size_t k = 0;
	for (char **e = environ; e && *e; e++) {
		int overridden = art_var && !strncmp(*e, art_var, alen);
		for (char **o = r->o.env; o && *o && !overridden; o++) {
			size_t len = strcspn(*o, "=") + 1; /* "NAME=" */
			overridden = !strncmp(*e, *o, len);
		}
		if (!overridden)
			envp[k++] = *e;
	}
	for (char **o = r->o.env; o && *o; o++)
		if (!art_var || strncmp(*o, art_var, alen))
			envp[k++] = *o;
	if (art_var)
		envp[k++] = art_var;
	return envp; /* borrowed strings: free the array only */
}

/* ---- operations ------------------------------------------------------------------- */

static void op_destroy(void *self)
{
	runner *r = self;
	if (r) {
		cmd_options_free(&r->o);
		free(r);
	}
}

static int op_create(hypertest_core *core, const char *options_json, void **self)
{
	*self = NULL;
	runner *r = calloc(1, sizeof *r);
	if (!r)
		return htp_fail(&up, core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	r->core = core;
	char *error = NULL;
	int rc = cmd_options_parse(&r->o, options_json, &error);
	if (rc) {
		htp_fail(&up, core, rc, "%s", error ? error : PREFIX "out of memory");
		free(error);
		free(r);
		return rc;
	}
	*self = r;
	return 0;
}

static const char *op_test_dir(void *self)
{
	return ((runner *)self)->o.test_dir;
}

/* ---- listing ----------------------------------------------------------------------- */

static int check_line(runner *r, const char *p, size_t len, size_t line)
{
	if (memchr(p, '\0', len))
		return htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER,
		                PREFIX "list command '%s': line %zu contains a NUL byte",
		                r->o.list[0], line);
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = htp_utf8_char((const unsigned char *)p + i, len - i)))
			return htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER,
			                PREFIX "list command '%s': line %zu is not valid UTF-8 text",
			                r->o.list[0], line);
	return 0;
}

/* The id on this line was not printed on an earlier one. */
static int check_repeat(runner *r, json_t *seen, const char *p, size_t len, size_t line)
{
	char *id = strndup(p, len);
	json_t *first = id ? json_object_get(seen, id) : NULL;
	int rc = 0;
	if (!id)
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	else if (first)
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER,
		          PREFIX "list command '%s': line %zu repeats the test id '%s' of line %lld",
		          r->o.list[0], line, id, (long long)json_integer_value(first));
	else if (json_object_set_new(seen, id, json_integer((json_int_t)line)) != 0)
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	free(id);
	return rc;
}

/* Hand {"id": id} to the core. */
static int add_context(runner *r, hypertest_list *list, const char *id, size_t len)
{
	json_t *o = json_pack("{s:s%}", "id", id, len);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	int rc = up.list_add(list, text);
	free(text);
	return rc;
}

/* Say why a command did not end well (NULL when it exited 0). */
static char *outcome_text(const htp_spawn *sp, const char *program)
{
	char *s = NULL, sigbuf[32];
	int n = 0;
	if (sp->start_errno)
		n = asprintf(&s, "cannot run '%s': %s%s", program,
		             sp->start_chdir ? "cannot enter its directory: " : "",
		             strerror(sp->start_errno));
	else if (sp->status_lost)
		n = asprintf(&s, "the exit status of '%s' was lost (is SIGCHLD ignored?)", program);
	else if (WIFSIGNALED(sp->status))
		n = asprintf(&s, "killed by signal %s",
		             htp_signal_name(WTERMSIG(sp->status), sigbuf, sizeof sigbuf));
	else if (WIFEXITED(sp->status) && WEXITSTATUS(sp->status) != 0)
		n = asprintf(&s, "exited with status %d", WEXITSTATUS(sp->status));
	return n < 0 ? NULL : s;
}

static char *err_tail(const runner *r, const htp_sink *err)
{
	size_t n;
	const char *t = htp_sink_tail(err, &n);
	return htp_text_clean(t, n, err->total > n, r->o.message_bytes);
}

static int run_list(runner *r, hypertest_list *list)
{
	const char *pdir = project_dir(r);
	const char *const values[3] = {"", r->o.test_dir, ""};
	char **argv = cmd_argv_expand(r->o.list, values);
	char **envp = env_build(r, NULL);
	char *path = NULL;
	htp_sink out, err;
	int rc = htp_sink_init(&out, -1, LIST_OUTPUT_MAX, 0) |
	         htp_sink_init(&err, -1, 0, r->o.message_bytes);
	if (!argv || !envp || rc) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}
	htp_spawn sp = {.argv = argv, .envp = envp, .cwd = pdir, .out = &out, .err = &err};
	int e = htp_find_program(argv[0], r->o.path_env ? r->o.path_env : getenv("PATH"), pdir, 0,
	                         &path);
	if (e)
		sp.start_errno = e;
	else if ((e = htp_spawn_run((sp.path = path, &sp))))
		sp.start_errno = e;
	char *why = outcome_text(&sp, argv[0]);
	if (why) {
		char *tail = err_tail(r, &err);
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER,
		              PREFIX "list command '%s' failed: %s%s%s", argv[0], why,
		              tail && *tail ? ": " : "", tail ? tail : "");
		free(tail);
		free(why);
		goto done;
	}
	if (out.total > out.kept || out.nomem) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_RUNNER,
		              PREFIX "list command '%s' printed more than %llu bytes", argv[0],
		              (unsigned long long)LIST_OUTPUT_MAX);
		goto done;
	}
	/* check every line before the first is added: all or nothing; an id
	 * printed twice is refused, as the same id twice in 'tests' is */
	size_t count = 0;
	json_t *seen = json_object(); /* id -> the line it was first on */
	if (!seen) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}
	for (int adding = 0; adding < 2 && !rc; adding++) {
		size_t line = 0;
		for (const char *p = out.mem.data ? out.mem.data : "", *end = p + out.mem.len; p < end && !rc;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
			line++;
			if (len > 0 && p[len - 1] == '\r')
				len--;
			if (len > 0 && adding) {
				rc = add_context(r, list, p, len);
				count++;
			} else if (len > 0) {
				rc = check_line(r, p, len, line);
				if (!rc)
					rc = check_repeat(r, seen, p, len, line);
			}
			if (!nl)
				break;
			p = nl + 1;
		}
	}
	json_decref(seen);
	if (!rc && count == 0)
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_EMPTY,
		              PREFIX "list command '%s' printed no test ids (one per line expected)",
		              argv[0]);
done:
	free(path);
	htp_strv_free(argv);
	free(envp);
	htp_sink_free(&out);
	htp_sink_free(&err);
	return rc;
}

static int op_list_tests(void *self, hypertest_list *list)
{
	runner *r = self;
	if (!up.list_add)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core cannot receive tests");
	if (r->o.list)
		return run_list(r, list);
	if (r->o.n_tests == 0)
		return htp_fail(&up, r->core, HYPERTEST_ERR_EMPTY,
		                PREFIX "option 'tests' lists no test");
	for (size_t i = 0; i < r->o.n_tests; i++) {
		int rc = add_context(r, list, r->o.tests[i], strlen(r->o.tests[i]));
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- image, running, doctor -------------------------------------------------------- */

static int add_to_layer(runner *r, hypertest_layer *layer, const char *key, const char *rel)
{
	char *src = htp_path_join(project_dir(r), rel);
	if (!src)
		return htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	struct stat st;
	int rc = stat(src, &st) != 0 ? htp_fail(&up, r->core, HYPERTEST_ERR_NOT_FOUND,
	                                        PREFIX "option '%s': '%s': %s", key, src,
	                                        strerror(errno))
	                             : up.layer_add(layer, src, rel);
	free(src);
	return rc;
}

static int op_image_content(void *self, hypertest_layer *layer)
{
	runner *r = self;
	if (!up.layer_add)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core cannot build layers");
	int rc = add_to_layer(r, layer, "testDir", r->o.test_dir);
	for (char **p = r->o.include; !rc && p && *p; p++)
		rc = add_to_layer(r, layer, "include", *p);
	return rc;
}

/* The canonical absolute path of the directory dir in buf (PATH_MAX
 * bytes), as realpath(3) gives it, but read in one step from
 * /proc/self/fd when it can be: realpath reads the link of every
 * component, each a walk of the path from its start, and the artifacts
 * directory of the local provider is a dozen components deep, below a
 * link.  NULL when neither can say. */
static const char *canonical_dir(const char *dir, char *buf)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(proc, buf, PATH_MAX - 1);
		close(fd);
		/* " (deleted)": a name of that ending is left to realpath */
		if (n > 0 && n < PATH_MAX - 1 && buf[0] == '/' &&
		    !(n >= 10 && !memcmp(buf + n - 10, " (deleted)", 10))) {
			buf[n] = '\0';
			return buf;
		}
	}
	return realpath(dir, buf);
}

static int open_log(runner *r, const char *dir, const char *name, int *fd)
{
	char *path = htp_path_join(dir, name);
	if (!path)
		return htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;
	if (*fd < 0)
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_IO, PREFIX "cannot create '%s': %s", path,
		              strerror(errno));
	free(path);
	return rc;
}

static void set_result(runner *r, hypertest_result *result, const char *id,
                       const htp_spawn *sp, const htp_sink *err, const char *program,
                       int64_t duration)
{
	struct stat st;
	up.result_set_str(result, HYPERTEST_RESULT_NAME, id);
	up.result_set_str(result, HYPERTEST_RESULT_FILE_PATH,
	                  stat(id, &st) == 0 && S_ISREG(st.st_mode) ? id : r->o.test_dir);
	up.result_set_duration(result, duration);
	int code = (!sp->start_errno && !sp->status_lost && WIFEXITED(sp->status))
	               ? WEXITSTATUS(sp->status) : -1;
	if (code == 0 || code == r->o.skip_code) {
		up.result_set_status(result, code == 0 ? HYPERTEST_STATUS_SUCCESS
		                                       : HYPERTEST_STATUS_SKIPPED);
		return;
	}
	up.result_set_status(result, HYPERTEST_STATUS_FAILED);
	char *why = outcome_text(sp, program);
	char *tail = err_tail(r, err);
	char *msg = NULL;
	if (!tail || !*tail || sp->start_errno)
		msg = NULL;
	else if (code > 0)
		msg = strdup(tail);
	else if (asprintf(&msg, "%s\n%s", why ? why : "failed", tail) < 0)
		msg = NULL;
	up.result_set_str(result, HYPERTEST_RESULT_MESSAGE, msg ? msg : why ? why : "failed");
	free(msg);
	free(tail);
	free(why);
}

static int op_run_test(void *self, const char *context_json, const char *artifacts_dir,
                       hypertest_result *result)
{
	runner *r = self;
	if (!up.result_set_status || !up.result_set_str || !up.result_set_duration)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core cannot take results");
	json_error_t jerr;
	json_t *ctx = json_loads(context_json ? context_json : "", 0, &jerr);
	json_t *jid = json_object_get(ctx, "id");
	if (!json_is_string(jid) || !json_string_length(jid)) {
		int rc = ctx ? htp_fail(&up, r->core, HYPERTEST_ERR_INVALID,
		                        PREFIX "test context: expected an object with a string \"id\"")
		             : htp_fail(&up, r->core, HYPERTEST_ERR_INVALID,
		                        PREFIX "test context is not JSON (column %d): %s",
		                        jerr.column, jerr.text);
		json_decref(ctx);
		return rc;
	}
	int out_fd = -1, err_fd = -1, rc;
	char *id = strdup(json_string_value(jid));
	json_decref(ctx);
	const char *const values[3] = {id ? id : "", r->o.test_dir, artifacts_dir};
	char **argv = id ? cmd_argv_expand(r->o.run, values) : NULL;
	char art[PATH_MAX], *art_var = NULL;
	if (asprintf(&art_var, "HT_TEST_ARTIFACTS_OUTPUT_PATH=%s",
	             canonical_dir(artifacts_dir, art) ? art : artifacts_dir) < 0)
		art_var = NULL;
	char **envp = art_var ? env_build(r, art_var) : NULL;
	char *path = NULL;
	htp_sink out, err;
	memset(&out, 0, sizeof out);
	memset(&err, 0, sizeof err);
	if (!argv || !envp) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}
	if ((rc = open_log(r, artifacts_dir, "stdout.log", &out_fd)) ||
	    (rc = open_log(r, artifacts_dir, "stderr.log", &err_fd)))
		goto done;
	if (htp_sink_init(&out, out_fd, r->o.output_limit, 0) ||
	    htp_sink_init(&err, err_fd, r->o.output_limit, r->o.message_bytes)) {
		rc = htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
		goto done;
	}

	int64_t start = htp_now_ms();
	htp_spawn sp = {.argv = argv, .envp = envp, .out = &out, .err = &err};
	int e = htp_find_program(argv[0], r->o.path_env ? r->o.path_env : getenv("PATH"), NULL, 0,
	                         &path);
	if (e)
		sp.start_errno = e;
	else if ((e = htp_spawn_run((sp.path = path, &sp))))
		sp.start_errno = e;
	int64_t duration = htp_now_ms() - start;

	if (sp.start_errno) { /* leave the reason in the artifacts too */
		char *why = outcome_text(&sp, argv[0]);
		if (why) {
			dprintf(err_fd, "%s\n", why);
			free(why);
		}
	}
	const char *logs[2] = {"stdout.log", "stderr.log"};
	htp_sink *sinks[2] = {&out, &err};
	for (int i = 0; i < 2; i++) {
		int werr = htp_sink_finish(sinks[i]);
		if (werr && up.log) {
			char *m = NULL;
			if (asprintf(&m, PREFIX "test '%s': writing %s: %s", id, logs[i],
			             strerror(werr)) >= 0)
				up.log(r->core, HYPERTEST_LOG_WARNING, m);
			free(m);
		}
	}
	set_result(r, result, id, &sp, &err, argv[0], duration);
	rc = 0;
done:
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	htp_sink_free(&out);
	htp_sink_free(&err);
	free(path);
	htp_strv_free(argv);
	free(art_var);
	free(envp);
	free(id);
	return rc;
}

/* One doctor check of a command's program. */
static void check_program(runner *r, hypertest_checks *checks, const char *name, char **tpl,
                          int missing_status)
{
	char *msg = NULL, *found = NULL;
	const char *const values[3] = {"", r->o.test_dir, ""};
	const char *where;
	int status;
	if (cmd_template_expand(tpl[0], PH_TEST_DIR, values, NULL, &where) != TPL_OK) {
		status = HYPERTEST_CHECK_WARNING;
		if (asprintf(&msg, "program '%s' depends on the test and is not checked", tpl[0]) < 0)
			msg = NULL;
	} else {
		char **argv = cmd_argv_expand(tpl, values);
		int e = argv ? htp_find_program(argv[0], r->o.path_env ? r->o.path_env : getenv("PATH"),
		                                project_dir(r), 1, &found)
		             : ENOMEM;
		status = e ? missing_status : HYPERTEST_CHECK_OK;
		int n;
		if (!e)
			n = asprintf(&msg, "'%s' is %s", argv[0], found);
		else if (missing_status == HYPERTEST_CHECK_WARNING)
			n = asprintf(&msg, "'%s': %s on this machine (it may exist in the image)",
			             argv ? argv[0] : tpl[0], strerror(e));
		else
			n = asprintf(&msg, "'%s': %s", argv ? argv[0] : tpl[0], strerror(e));
		if (n < 0)
			msg = NULL;
		htp_strv_free(argv);
	}
	up.doctor_check(checks, name, status, msg ? msg : "out of memory");
	free(msg);
	free(found);
}

static int op_doctor(void *self, hypertest_checks *checks)
{
	runner *r = self;
	if (!up.doctor_check)
		return htp_fail(&up, r->core, HYPERTEST_ERR_UNSUPPORTED,
		                PREFIX "the core takes no checks");
	char *dir = htp_path_join(project_dir(r), r->o.test_dir), *msg = NULL;
	struct stat st;
	int status = HYPERTEST_CHECK_OK, n;
	if (!dir)
		return htp_fail(&up, r->core, HYPERTEST_ERR_NOMEM, PREFIX "out of memory");
	if (stat(dir, &st) != 0)
		status = HYPERTEST_CHECK_FAILED, n = asprintf(&msg, "'%s': %s", dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		status = HYPERTEST_CHECK_FAILED, n = asprintf(&msg, "'%s' is not a directory", dir);
	else
		n = asprintf(&msg, "'%s' exists", dir);
	up.doctor_check(checks, "runner.command.testDir", status, n < 0 ? "out of memory" : msg);
	free(dir);
	free(msg);
	/* the list command runs here, the run command in the image */
	if (r->o.list)
		check_program(r, checks, "runner.command.list", r->o.list, HYPERTEST_CHECK_FAILED);
	check_program(r, checks, "runner.command.run", r->o.run, HYPERTEST_CHECK_WARNING);
	return 0;
}

/* ---- the module ------------------------------------------------------------------- */

int hypertest_plugin_init(hypertest_core *core, const hypertest_dispatch *upcalls);

HYPERTEST_PLUGIN_DEFINE("runner-command", "1.0", "runs any test tool, one process per test",
                        "MIT")
{
	static const hypertest_dispatch ops[] = {
		HYPERTEST_OP(HYPERTEST_OP_CREATE, op_create),
		HYPERTEST_OP(HYPERTEST_OP_DESTROY, op_destroy),
		HYPERTEST_OP(HYPERTEST_OP_DOCTOR, op_doctor),
		HYPERTEST_OP(HYPERTEST_RUNNER_LIST_TESTS, op_list_tests),
		HYPERTEST_OP(HYPERTEST_RUNNER_TEST_DIR, op_test_dir),
		HYPERTEST_OP(HYPERTEST_RUNNER_IMAGE_CONTENT, op_image_content),
		HYPERTEST_OP(HYPERTEST_RUNNER_RUN_TEST, op_run_test),
		HYPERTEST_OP_END};
	return htp_register(&up, core, upcalls, HYPERTEST_KIND_RUNNER, "command",
	                    "runs any test tool, one process per test", ops);
}
