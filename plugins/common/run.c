/*
 * run.c - runs one program of a framework runner without a shell (the
 * spawn engine of spawn.c: own process group, killed
 * with its parent, stdin from /dev/null), its stdout and stderr into capped
 * log files or memory, and says how it ended.
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int open_log(const char *path, int *fd, char **error)
{
	*fd = -1;
	if (!path)
		return 0;
	*fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd >= 0)
		return 0;
	if (asprintf(error, "cannot create '%s': %s", path, strerror(errno)) < 0)
		*error = NULL;
	return HYPERTEST_ERR_IO;
}

int htp_run_program(htp_run *r, char **error)
{
	int out_fd = -1, err_fd = -1, rc;
	char *path = NULL;
	*error = NULL;
	memset(&r->out, 0, sizeof r->out);
	memset(&r->err, 0, sizeof r->err);
	memset(&r->sp, 0, sizeof r->sp);
	r->out.fd = r->err.fd = -1;
	if ((rc = open_log(r->out_path, &out_fd, error)) ||
	    (rc = open_log(r->err_path, &err_fd, error)))
		goto done;
	if (htp_sink_init(&r->out, out_fd, r->limit, r->tail_cap) ||
	    htp_sink_init(&r->err, err_fd, r->limit, r->tail_cap)) {
		rc = HYPERTEST_ERR_NOMEM;
		goto done;
	}
	r->sp.argv = r->argv;
	r->sp.envp = r->envp ? r->envp : environ;
	r->sp.cwd = r->cwd;
	r->sp.out = &r->out;
	r->sp.err = &r->err;
	const char *path_env = NULL;
	for (char *const *e = r->sp.envp; *e && !path_env; e++)
		if (!strncmp(*e, "PATH=", 5))
			path_env = *e + 5;
	int64_t start = htp_now_ms();
	int e = htp_find_program(r->argv[0], path_env, r->cwd, 0, &path);
	if (e == ENOMEM) {
		rc = HYPERTEST_ERR_NOMEM;
		goto done;
	}
	if (e)
		r->sp.start_errno = e;
	else if ((e = htp_spawn_run((r->sp.path = path, &r->sp)))) {
		if (asprintf(error, "cannot start '%s': %s", r->argv[0], strerror(e)) < 0)
			*error = NULL;
		rc = HYPERTEST_ERR_IO;
		goto done;
	}
	r->duration_ms = htp_now_ms() - start;
	htp_sink_finish(&r->out);
	htp_sink_finish(&r->err);
done:
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);
	r->out.fd = r->err.fd = -1;
	free(path);
	r->sp.path = NULL;
	return rc;
}

void htp_run_free(htp_run *r)
{
	htp_sink_free(&r->out);
	htp_sink_free(&r->err);
}

int htp_run_exit_code(const htp_run *r)
{
	const htp_spawn *sp = &r->sp;
	if (sp->start_errno || sp->status_lost || !WIFEXITED(sp->status))
		return -1;
	return WEXITSTATUS(sp->status);
}

char *htp_run_outcome(const htp_run *r)
{
	const htp_spawn *sp = &r->sp;
	char *s = NULL, sig[32];
	int n = 0;
	if (sp->start_errno)
		n = asprintf(&s, "cannot run '%s': %s%s", r->argv[0],
		             sp->start_chdir ? "cannot enter its directory: " : "",
		             strerror(sp->start_errno));
	else if (sp->status_lost)
		n = asprintf(&s, "the exit status of '%s' was lost", r->argv[0]);
	else if (WIFSIGNALED(sp->status))
		n = asprintf(&s, "'%s' was killed by signal %s", r->argv[0],
		             htp_signal_name(WTERMSIG(sp->status), sig, sizeof sig));
	else if (WEXITSTATUS(sp->status) != 0)
		n = asprintf(&s, "'%s' exited with status %d", r->argv[0], WEXITSTATUS(sp->status));
	return n < 0 ? NULL : s;
}

char *htp_run_tail(const htp_run *r, int err, size_t max)
{
	const htp_sink *s = err ? &r->err : &r->out;
	size_t n;
	const char *t = htp_sink_tail(s, &n);
	return htp_text_clean(t, n, s->total > n, max);
}

char *htp_run_output_tail(const htp_run *r, size_t max)
{
	char *out = htp_run_tail(r, 0, max), *err = htp_run_tail(r, 1, max), *s = NULL;
	if (out && err) {
		if (!*err)
			s = out, out = NULL;
		else if (!*out)
			s = err, err = NULL;
		else if (asprintf(&s, "%s\n%s", out, err) < 0)
			s = NULL;
	}
	free(out);
	free(err);
	if (s && strlen(s) > max) { /* keep the end */
		char *t = htp_text_clean(s, strlen(s), 0, max);
		free(s);
		s = t;
	}
	return s;
}
