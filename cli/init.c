/*
 * init.c - 'hypertest init': writes hypertest.config.json in the project
 * directory, asking on a terminal and taking the defaults otherwise.  The
 * JSON is written by hand (2-space indentation, keys in a fixed order) and
 * checked with hypertest_config_load_string() before it is written.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define CONFIG_NAME "hypertest.config.json"

struct argv_list {
	char **v;
	size_t n;
};

struct answers {
	char *runner;
	char *provider;
	long concurrency;
	char *test_dir;
	struct argv_list list; /* command runner: lists the tests */
	struct argv_list run;  /* command runner: runs one test */
};

static void argv_free(struct argv_list *a)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = 0;
}

static int argv_push(struct argv_list *a, const char *s, size_t len)
{
	char **v = realloc(a->v, (a->n + 1) * sizeof *v);

	if (!v)
		return -1;
	a->v = v;
	if (!(v[a->n] = strndup(s, len)))
		return -1;
	a->n++;
	return 0;
}

/* Words separated by blanks: no quoting, no shell. */
static int argv_split(struct argv_list *a, const char *s)
{
	argv_free(a);
	for (;;) {
		size_t n;
		s += strspn(s, " \t");
		if (!*s)
			return 0;
		n = strcspn(s, " \t");
		if (argv_push(a, s, n) < 0)
			return -1;
		s += n;
	}
}

/* The command runner replaces "{testDir}"-like words in its argv and takes
 * "{{" and "}}" for literal braces: a directory name is escaped. */
static int push_literal(struct argv_list *a, const char *s)
{
	struct cli_buf b = {0};
	int rc;

	if (*s == '-')
		cli_buf_puts(&b, "./"); /* not an option of find */
	for (; *s; s++) {
		cli_buf_add(&b, s, 1);
		if (*s == '{' || *s == '}')
			cli_buf_add(&b, s, 1);
	}
	rc = b.oom ? -1 : argv_push(a, cli_buf_str(&b), b.len);
	cli_buf_free(&b);
	return rc;
}

static int default_list(struct argv_list *a, const char *test_dir)
{
	static const char *const tail[] = {"-type", "f", "-name", "*.sh"};
	size_t i;

	argv_free(a);
	if (argv_push(a, "find", 4) < 0 || push_literal(a, test_dir) < 0)
		return -1;
	for (i = 0; i < sizeof tail / sizeof tail[0]; i++)
		if (argv_push(a, tail[i], strlen(tail[i])) < 0)
			return -1;
	return 0;
}

static int default_run(struct argv_list *a)
{
	argv_free(a);
	return argv_push(a, "sh", 2) < 0 || argv_push(a, "{id}", 4) < 0 ? -1 : 0;
}

static char *argv_join(const struct argv_list *a)
{
	struct cli_buf b = {0};
	char *s;
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (i)
			cli_buf_puts(&b, " ");
		cli_buf_puts(&b, a->v[i]);
	}
	s = strdup(cli_buf_str(&b));
	cli_buf_free(&b);
	return s;
}

/* "<project dir basename>/hypertest", the basename made a valid repository
 * path component: lowercase letters, digits and single separators. */
static void add_image_name(struct cli_buf *b, const char *project_dir)
{
	const char *base = strrchr(project_dir, '/');
	struct cli_buf name = {0};
	int sep = 1; /* no separator first */

	base = base ? base + 1 : project_dir;
	for (; *base; base++) {
		unsigned char c = (unsigned char)*base;
		if (isascii(c) && isalnum(c)) {
			char lc = (char)tolower(c);
			cli_buf_add(&name, &lc, 1);
			sep = 0;
		} else if (!sep) {
			cli_buf_add(&name, (c == '.' || c == '_') ? (const char *)base : "-", 1);
			sep = 1;
		}
	}
	while (name.len > 0 && strchr("-._", name.data[name.len - 1]))
		name.data[--name.len] = '\0';
	cli_buf_printf(b, "%s/hypertest", name.len ? name.data : "project");
	cli_buf_free(&name);
}

static void add_argv_json(struct cli_buf *b, const struct argv_list *a)
{
	size_t i;

	cli_buf_puts(b, "[");
	for (i = 0; i < a->n; i++) {
		if (i)
			cli_buf_puts(b, ", ");
		cli_buf_json_str(b, a->v[i]);
	}
	cli_buf_puts(b, "]");
}

static void config_json(struct cli_buf *b, const struct answers *a, const char *project_dir)
{
	struct cli_buf image = {0};

	add_image_name(&image, project_dir);
	cli_buf_printf(b, "{\n  \"concurrency\": %ld,\n  \"imageName\": ", a->concurrency);
	cli_buf_json_str(b, cli_buf_str(&image));
	cli_buf_puts(b, ",\n  \"driftDetectionPolicy\": \"warning\",\n"
	                "  \"testRunner\": {\n    \"plugin\": ");
	cli_buf_json_str(b, a->runner);
	cli_buf_puts(b, ",\n    \"options\": {\n      \"testDir\": ");
	cli_buf_json_str(b, a->test_dir);
	if (strcmp(a->runner, "command") == 0) {
		cli_buf_puts(b, ",\n      \"list\": ");
		add_argv_json(b, &a->list);
		cli_buf_puts(b, ",\n      \"run\": ");
		add_argv_json(b, &a->run);
	}
	cli_buf_puts(b, "\n    }\n  },\n  \"cloudProvider\": {\n    \"plugin\": ");
	cli_buf_json_str(b, a->provider);
	cli_buf_puts(b, ",\n    \"options\": {}\n  }\n}\n");
	cli_buf_free(&image);
}

/* ---- questions ---------------------------------------------------------------- */

/* Ask on stdout, read a line from stdin; the answer without surrounding
 * blanks, "" for the default; NULL at the end of the input. */
static char *ask(const char *question, const char *def)
{
	char *line = NULL;
	size_t cap = 0, start, end;
	ssize_t n;

	printf("%s [%s]: ", question, def);
	fflush(stdout);
	n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		putchar('\n');
		return NULL;
	}
	end = (size_t)n;
	while (end > 0 && isspace((unsigned char)line[end - 1]))
		end--;
	line[end] = '\0';
	start = strspn(line, " \t");
	memmove(line, line + start, end - start + 1);
	return line;
}

/* Ask until the answer is acceptable; *out replaced by a non-empty answer.
 * Returns -1 at the end of the input. */
static int ask_word(const char *question, char **out, int one_word)
{
	for (;;) {
		char *s = ask(question, *out);
		if (!s)
			return -1;
		if (!*s) {
			free(s);
			return 0;
		}
		if (one_word && strpbrk(s, " \t")) {
			printf("  Please give one word (the plugin's name).\n");
			free(s);
			continue;
		}
		free(*out);
		*out = s;
		return 0;
	}
}

static int ask_concurrency(long *out)
{
	char def[32];

	snprintf(def, sizeof def, "%ld", *out);
	for (;;) {
		char *s = ask("Concurrency (invocations in flight at most)", def), *end;
		long v;
		if (!s)
			return -1;
		if (!*s) {
			free(s);
			return 0;
		}
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno == 0 && *end == '\0' && v > 0 && v <= 100000 && isdigit((unsigned char)*s)) {
			free(s);
			*out = v;
			return 0;
		}
		printf("  Please give a whole number from 1 to 100000.\n");
		free(s);
	}
}

static int ask_argv(const char *question, struct argv_list *a)
{
	char *def = argv_join(a), *s;
	int rc = 0;

	if (!def)
		return -1;
	s = ask(question, def);
	if (!s)
		rc = -1;
	else if (*s)
		rc = argv_split(a, s);
	free(s);
	free(def);
	return rc;
}

static int ask_all(struct answers *a)
{
	if (ask_word("Test runner plugin", &a->runner, 1) < 0 ||
	    ask_word("Cloud provider plugin", &a->provider, 1) < 0 || ask_concurrency(&a->concurrency) < 0 ||
	    ask_word("Test directory", &a->test_dir, 0) < 0)
		return -1;
	if (strcmp(a->runner, "command") != 0)
		return 0;
	if (default_list(&a->list, a->test_dir) < 0)
		return -1;
	if (ask_argv("Command that lists the tests, one per line (no shell)", &a->list) < 0 ||
	    ask_argv("Command that runs one test, {id} being the test (no shell)", &a->run) < 0)
		return -1;
	return 0;
}

/* ---- writing ------------------------------------------------------------------------ */

static int write_file(const char *path, const char *text, int force)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
	size_t len = strlen(text), off = 0;
	int fd = open(path, flags, 0666);

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	return close(fd);
}

static char *config_path(hypertest *h, const struct cli_opts *o)
{
	const char *dir = hypertest_project_dir(h);
	const char *name = o->config ? o->config : CONFIG_NAME;
	struct cli_buf b = {0};
	char *s;

	if (name[0] != '/')
		cli_buf_printf(&b, "%s/", dir);
	cli_buf_puts(&b, name);
	s = b.oom ? NULL : strdup(cli_buf_str(&b));
	cli_buf_free(&b);
	return s;
}

int cli_cmd_init(hypertest *h, const struct cli_opts *o)
{
	struct answers a;
	struct cli_buf json = {0};
	char *path = config_path(h, o);
	int status = CLI_EXIT_FAIL;

	memset(&a, 0, sizeof a);
	a.runner = strdup("command");
	a.provider = strdup("local");
	a.test_dir = strdup("tests");
	a.concurrency = 30;
	if (!path || !a.runner || !a.provider || !a.test_dir || default_list(&a.list, a.test_dir) < 0 ||
	    default_run(&a.run) < 0) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (!o->force && access(path, F_OK) == 0) {
		fprintf(stderr, "hypertest: %s already exists; use --force to overwrite it\n", path);
		goto out;
	}
	if (!o->yes && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
		printf("Writing %s. Press Enter to take the default in brackets.\n", path);
		if (ask_all(&a) < 0) {
			fputs("hypertest: init: no answer; nothing written\n", stderr);
			goto out;
		}
	}
	config_json(&json, &a, hypertest_project_dir(h));
	if (json.oom) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (hypertest_config_load_string(h, cli_buf_str(&json), path) != HYPERTEST_OK) {
		fprintf(stderr, "hypertest: the configuration would be invalid: %s\n",
		        hypertest_errmsg(h));
		goto out;
	}
	if (write_file(path, cli_buf_str(&json), o->force) < 0) {
		if (errno == EEXIST)
			fprintf(stderr, "hypertest: %s already exists; use --force to overwrite it\n",
			        path);
		else
			fprintf(stderr, "hypertest: cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	printf("Wrote %s:\n%s", path, cli_buf_str(&json));
	status = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
	cli_buf_free(&json);
	argv_free(&a.list);
	argv_free(&a.run);
	free(a.runner);
	free(a.provider);
	free(a.test_dir);
	free(path);
	return status;
}
