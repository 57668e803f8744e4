/*
 * jsconfig.c - the configuration modules of the TypeScript hypertest
 * (hypertest.config.js, .mjs, .cjs, .ts), read with the node program on
 * PATH.  node runs config-loader.mjs (compiled in as text) with the module's
 * path in its argv, never through a shell, in the project directory, in a
 * process group of its own, and is killed when it takes longer than
 * HYPERTEST_NODE_TIMEOUT seconds (default 30).  The loader answers on file
 * descriptor 3: "J" JSON NUL note NUL note ..., or "E" message.  Whatever
 * the module prints on standard output is an error (it would be taken for
 * a configuration by tools that read one there); what it prints on standard
 * error is passed on.
 *
 * This is the program's and not the library's: it starts a process, waits
 * for it with a deadline and kills it, which a library embedded in another
 * program must not do behind its back; an embedder converts once
 * (hypertest init --from) or hands hypertest_config_load_string() JSON of
 * its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

static const char loader_text[] =
#include "config-loader.h"
    ;

#define ANSWER_MAX ((size_t)4 << 20) /* the answer on fd 3 */
#define STDOUT_KEEP 4096
#define STDERR_KEEP ((size_t)64 << 10)
#define TIMEOUT_DEFAULT 30

static const char *const module_names[] = {"hypertest.config.js", "hypertest.config.mjs",
                                           "hypertest.config.cjs", "hypertest.config.ts", NULL};

int cli_jsconfig_is_module(const char *path)
{
	static const char *const ext[] = {".js", ".mjs", ".cjs", ".ts", NULL};
	size_t n = strlen(path);

	for (const char *const *e = ext; *e; e++) {
		size_t k = strlen(*e);
		if (n > k && strcmp(path + n - k, *e) == 0)
			return 1;
	}
	return 0;
}

char *cli_jsconfig_find(const char *dir)
{
	for (const char *const *n = module_names; *n; n++) {
		struct cli_buf b = {0};
		char *s = NULL;
		cli_buf_printf(&b, "%s/%s", dir, *n);
		if (!b.oom && access(cli_buf_str(&b), F_OK) == 0)
			s = strdup(cli_buf_str(&b));
		cli_buf_free(&b);
		if (s)
			return s;
	}
	return NULL;
}

static long timeout_seconds(void)
{
	const char *s = getenv("HYPERTEST_NODE_TIMEOUT");
	char *end;
	long v;

	if (!s || !*s)
		return TIMEOUT_DEFAULT;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 86400)
		return -1;
	return v;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Append what fd has (up to keep bytes in all; the rest is read and
 * dropped, *over set); 0 at the end of the data, 1 when more may come. */
static int drain(int fd, struct cli_buf *b, size_t keep, int *over)
{
	char chunk[16384];
	ssize_t n = read(fd, chunk, sizeof chunk);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	if (b->len + (size_t)n > keep) {
		*over = 1;
		if (b->len < keep)
			cli_buf_add(b, chunk, keep - b->len);
	} else {
		cli_buf_add(b, chunk, (size_t)n);
	}
	return 1;
}

/* node's report on standard error without its own frames and trailer,
 * indented. */
static void add_node_report(struct cli_buf *out, const struct cli_buf *err)
{
	const char *p = cli_buf_str(err);
	int any = 0;

	while (*p) {
		size_t n = strcspn(p, "\n");
		int skip = (n == 0 && !any) || memmem(p, n, "node:internal", 13) ||
		           memmem(p, n, "[eval", 5) || memmem(p, n, "data:text/javascript", 20) ||
		           (n > 9 && strncmp(p, "Node.js v", 9) == 0);
		if (!skip) {
			cli_buf_puts(out, "\n  ");
			cli_buf_add(out, p, n);
			any = 1;
		}
		p += n + (p[n] == '\n');
	}
	/* no blank lines at the end, no ':' before nothing */
	while (out->len > 0 && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '\n'))
		out->data[--out->len] = '\0';
	if (!any && out->len > 0 && out->data[out->len - 1] == ':')
		out->data[--out->len] = '\0';
}

/* node evaluating a module: its pipes (standard output, standard error, and
 * fd 3 for the answer), what came through them, and the process. */
struct node_run {
	int pout[2], perr[2], pans[2];
	struct cli_buf out, errtext, ans;
	int over_out, over_err, over_ans, status;
	pid_t pid;
};

/* node in its own process group, in the project directory, never through a
 * shell: the loader on --eval, the module's path and the project after it. */
static int spawn_node(struct node_run *r, const char *path, const char *project_dir,
                      struct cli_buf *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *argv[] = {"node", "--no-warnings", "--input-type=module", "--eval",
	                (char *)loader_text, (char *)path, (char *)project_dir, NULL};
	int rc;

	if (pipe2(r->pout, O_CLOEXEC) < 0 || pipe2(r->perr, O_CLOEXEC) < 0 ||
	    pipe2(r->pans, O_CLOEXEC) < 0) {
		cli_buf_printf(err, "%s: cannot make a pipe for node: %s", path, strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, r->pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, r->perr[1], 2);
	posix_spawn_file_actions_adddup2(&fa, r->pans[1], 3);
	posix_spawn_file_actions_addchdir_np(&fa, project_dir);
	rc = posix_spawnp(&r->pid, "node", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(r->pout[1]);
	close(r->perr[1]);
	close(r->pans[1]);
	r->pout[1] = r->perr[1] = r->pans[1] = -1;
	if (rc == 0)
		return 0;
	r->pid = -1;
	if (rc == ENOENT)
		cli_buf_printf(err, "%s: reading it needs Node.js (node 18.19 or newer on PATH), and "
		                    "there is no node on PATH: install Node.js, or write "
		                    "hypertest.config.json instead (see hypertest.config(5))",
		               path);
	else
		cli_buf_printf(err, "%s: cannot start node: %s", path, strerror(rc));
	return -1;
}

/* Read the three pipes until node closes them all (1) or the deadline
 * passes (0). */
static int collect(struct node_run *r, long timeout)
{
	long long deadline = now_ms() + timeout * 1000;
	int open_fds = 3;

	while (open_fds > 0) {
		struct pollfd pf[3] = {{r->pout[0], POLLIN, 0}, {r->perr[0], POLLIN, 0},
		                       {r->pans[0], POLLIN, 0}};
		long long left = deadline - now_ms();
		int n;
		if (left <= 0)
			break;
		n = poll(pf, 3, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pf[0].revents && !drain(r->pout[0], &r->out, STDOUT_KEEP, &r->over_out))
			close(r->pout[0]), r->pout[0] = -1, open_fds--;
		if (pf[1].revents && !drain(r->perr[0], &r->errtext, STDERR_KEEP, &r->over_err))
			close(r->perr[0]), r->perr[0] = -1, open_fds--;
		if (pf[2].revents && !drain(r->pans[0], &r->ans, ANSWER_MAX, &r->over_ans))
			close(r->pans[0]), r->pans[0] = -1, open_fds--;
	}
	return open_fds == 0;
}

/* node gone (killed first when kill is set: the whole group, whatever it
 * started). */
static void reap(struct node_run *r, int kill_group)
{
	if (r->pid <= 0)
		return;
	if (kill_group)
		kill(-r->pid, SIGKILL);
	while (waitpid(r->pid, &r->status, 0) < 0 && errno == EINTR)
		;
	r->pid = -1;
}

/* What node said: the JSON and the notes, or an error naming the file. */
static int judge(struct node_run *r, const char *path, char **json, struct cli_buf *notes,
                 struct cli_buf *err)
{
	int status = r->status;

	if (r->out.len > 0) {
		size_t n = strcspn(cli_buf_str(&r->out), "\n");
		cli_buf_printf(err, "%s: the module printed to standard output while node evaluated it "
		                    "(a configuration module must print nothing there): \"%.*s\"%s",
		               path, (int)(n > 200 ? 200 : n), r->out.data,
		               n > 200 || r->out.data[n] ? " ..." : "");
		return -1;
	}
	if (r->over_ans) {
		cli_buf_printf(err, "%s: the configuration node made of it is larger than 4 MiB", path);
		return -1;
	}
	if (r->ans.len > 1 && r->ans.data[0] == 'E') {
		cli_buf_printf(err, "%s: %s", path, r->ans.data + 1);
		return -1;
	}
	if (r->ans.len == 0 || r->ans.data[0] != 'J' || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			cli_buf_printf(err, "%s: node could not evaluate it (exit status %d%s):", path,
			               WEXITSTATUS(status),
			               WEXITSTATUS(status) == 13 ? ": an await that never settles, so "
			                                           "nothing was exported"
			                                         : "");
		else
			cli_buf_printf(err, "%s: node could not evaluate it (killed by signal %d):", path,
			               WTERMSIG(status));
		add_node_report(err, &r->errtext);
		return -1;
	}
	/* "J" JSON NUL note NUL note ... */
	const char *p = r->ans.data + 1, *end = r->ans.data + r->ans.len;
	size_t n = strnlen(p, (size_t)(end - p));
	if (!(*json = strndup(p, n))) {
		cli_buf_puts(err, "out of memory");
		return -1;
	}
	for (p += n + 1; p < end; p += strnlen(p, (size_t)(end - p)) + 1) {
		cli_buf_add(notes, p, strnlen(p, (size_t)(end - p)));
		cli_buf_puts(notes, "\n");
	}
	if (r->errtext.len) /* what the module wrote on standard error */
		fputs(cli_buf_str(&r->errtext), stderr);
	if (r->out.oom || r->errtext.oom || r->ans.oom || notes->oom) {
		free(*json);
		*json = NULL;
		cli_buf_puts(err, "out of memory");
		return -1;
	}
	return 0;
}

int cli_jsconfig_eval(const char *path, const char *project_dir, char **json,
                      struct cli_buf *notes, struct cli_buf *err)
{
	struct node_run r = {.pout = {-1, -1}, .perr = {-1, -1}, .pans = {-1, -1}, .pid = -1};
	long timeout = timeout_seconds();
	int rc = -1;

	*json = NULL;
	if (timeout < 0) {
		cli_buf_printf(err, "HYPERTEST_NODE_TIMEOUT '%s': expected a whole number of seconds "
		                    "from 1 to 86400", getenv("HYPERTEST_NODE_TIMEOUT"));
		return -1;
	}
	if (spawn_node(&r, path, project_dir, err) == 0) {
		if (!collect(&r, timeout)) {
			reap(&r, 1);
			cli_buf_printf(err, "%s: node did not finish evaluating it within %ld s "
			                    "(HYPERTEST_NODE_TIMEOUT): does it loop, or wait for something "
			                    "that never comes?",
			               path, timeout);
			add_node_report(err, &r.errtext);
		} else {
			reap(&r, 0);
			rc = judge(&r, path, json, notes, err);
		}
	}
	reap(&r, 1);
	for (int i = 0; i < 2; i++) {
		if (r.pout[i] >= 0)
			close(r.pout[i]);
		if (r.perr[i] >= 0)
			close(r.perr[i]);
		if (r.pans[i] >= 0)
			close(r.pans[i]);
	}
	cli_buf_free(&r.out);
	cli_buf_free(&r.errtext);
	cli_buf_free(&r.ans);
	return rc;
}

int cli_jsconfig_load(hypertest *h, const char *path, int quiet)
{
	struct cli_buf notes = {0}, err = {0}, origin = {0};
	char *json = NULL;
	int rc = -1;

	if (cli_jsconfig_eval(path, hypertest_project_dir(h), &json, &notes, &err) < 0) {
		fprintf(stderr, "hypertest: %s\n", cli_buf_str(&err));
		goto out;
	}
	if (!quiet) {
		const char *p = cli_buf_str(&notes);
		while (*p) {
			size_t n = strcspn(p, "\n");
			fprintf(stderr, "hypertest: note: %s: %.*s\n", path, (int)n, p);
			p += n + (p[n] == '\n');
		}
	}
	cli_buf_printf(&origin, "%s (converted to JSON)", path);
	if (origin.oom) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (hypertest_config_load_string(h, json, cli_buf_str(&origin)) != HYPERTEST_OK) {
		cli_error(h);
		goto out;
	}
	rc = 0;
out:
	free(json);
	cli_buf_free(&notes);
	cli_buf_free(&err);
	cli_buf_free(&origin);
	return rc;
}
