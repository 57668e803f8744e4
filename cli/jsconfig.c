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

int cli_jsconfig_eval(const char *path, const char *project_dir, char **json,
                      struct cli_buf *notes, struct cli_buf *err)
{
	int pout[2] = {-1, -1}, perr[2] = {-1, -1}, pans[2] = {-1, -1};
	struct cli_buf out = {0}, errtext = {0}, ans = {0};
	int over_out = 0, over_err = 0, over_ans = 0, status = 0, rc = -1, open_fds;
	long timeout = timeout_seconds();
	long long deadline;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid = -1;
	char *argv[8];

	*json = NULL;
	if (timeout < 0) {
		cli_buf_printf(err, "HYPERTEST_NODE_TIMEOUT '%s': expected a whole number of seconds "
		                    "from 1 to 86400", getenv("HYPERTEST_NODE_TIMEOUT"));
		return -1;
	}
	if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 || pipe2(pans, O_CLOEXEC) < 0) {
		cli_buf_printf(err, "%s: cannot make a pipe for node: %s", path, strerror(errno));
		goto out;
	}
	argv[0] = "node";
	argv[1] = "--no-warnings";
	argv[2] = "--input-type=module";
	argv[3] = "--eval";
	argv[4] = (char *)loader_text;
	argv[5] = (char *)path;
	argv[6] = (char *)project_dir;
	argv[7] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	posix_spawn_file_actions_adddup2(&fa, pans[1], 3);
	posix_spawn_file_actions_addchdir_np(&fa, project_dir);
	rc = posix_spawnp(&pid, "node", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pout[1]);
	close(perr[1]);
	close(pans[1]);
	pout[1] = perr[1] = pans[1] = -1;
	if (rc != 0) {
		if (rc == ENOENT)
			cli_buf_printf(err, "%s: reading it needs Node.js (node 18.19 or newer on PATH), and "
			                    "there is no node on PATH: install Node.js, or write "
			                    "hypertest.config.json instead (see hypertest.config(5))",
			               path);
		else
			cli_buf_printf(err, "%s: cannot start node: %s", path, strerror(rc));
		rc = -1;
		pid = -1;
		goto out;
	}
	rc = -1;

	deadline = now_ms() + timeout * 1000;
	open_fds = 3;
	while (open_fds > 0) {
		struct pollfd pf[3] = {{pout[0], POLLIN, 0}, {perr[0], POLLIN, 0}, {pans[0], POLLIN, 0}};
		long long left = deadline - now_ms();
		int n;
		if (left <= 0)
			break;
		n = poll(pf, 3, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (pf[0].revents && !drain(pout[0], &out, STDOUT_KEEP, &over_out))
			close(pout[0]), pout[0] = -1, open_fds--;
		if (pf[1].revents && !drain(perr[0], &errtext, STDERR_KEEP, &over_err))
			close(perr[0]), perr[0] = -1, open_fds--;
		if (pf[2].revents && !drain(pans[0], &ans, ANSWER_MAX, &over_ans))
			close(pans[0]), pans[0] = -1, open_fds--;
	}
	if (open_fds > 0) {
		/* the deadline: the whole group, whatever it started */
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		pid = -1;
		cli_buf_printf(err, "%s: node did not finish evaluating it within %ld s "
		                    "(HYPERTEST_NODE_TIMEOUT): does it loop, or wait for something "
		                    "that never comes?",
		               path, timeout);
		add_node_report(err, &errtext);
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	if (out.len > 0) {
		size_t n = strcspn(cli_buf_str(&out), "\n");
		cli_buf_printf(err, "%s: the module printed to standard output while node evaluated it "
		                    "(a configuration module must print nothing there): \"%.*s\"%s",
		               path, (int)(n > 200 ? 200 : n), out.data,
		               n > 200 || out.data[n] ? " ..." : "");
		goto out;
	}
	if (over_ans) {
		cli_buf_printf(err, "%s: the configuration node made of it is larger than 4 MiB", path);
		goto out;
	}
	if (ans.len > 1 && ans.data[0] == 'E') {
		cli_buf_printf(err, "%s: %s", path, ans.data + 1);
		goto out;
	}
	if (ans.len == 0 || ans.data[0] != 'J' || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status))
			cli_buf_printf(err, "%s: node could not evaluate it (exit status %d%s):", path,
			               WEXITSTATUS(status),
			               WEXITSTATUS(status) == 13 ? ": an await that never settles, so "
			                                           "nothing was exported"
			                                         : "");
		else
			cli_buf_printf(err, "%s: node could not evaluate it (killed by signal %d):", path,
			               WTERMSIG(status));
		add_node_report(err, &errtext);
		goto out;
	}
	/* "J" JSON NUL note NUL note ... */
	{
		const char *p = ans.data + 1, *end = ans.data + ans.len;
		size_t n = strnlen(p, (size_t)(end - p));
		if (!(*json = strndup(p, n))) {
			cli_buf_puts(err, "out of memory");
			goto out;
		}
		for (p += n + 1; p < end; p += strnlen(p, (size_t)(end - p)) + 1) {
			cli_buf_add(notes, p, strnlen(p, (size_t)(end - p)));
			cli_buf_puts(notes, "\n");
		}
	}
	if (errtext.len) /* what the module wrote on standard error */
		fputs(cli_buf_str(&errtext), stderr);
	rc = (out.oom || errtext.oom || ans.oom || notes->oom) ? -1 : 0;
	if (rc < 0) {
		free(*json);
		*json = NULL;
		cli_buf_puts(err, "out of memory");
	}
out:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	for (int i = 0; i < 2; i++) {
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
		if (pans[i] >= 0)
			close(pans[i]);
	}
	cli_buf_free(&out);
	cli_buf_free(&errtext);
	cli_buf_free(&ans);
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
