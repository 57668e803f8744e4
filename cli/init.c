/*
 * init.c - 'hypertest init': writes hypertest.config.json in the project
 * directory.  It asks for the runner, the provider and what each of them
 * needs (the questions below, by plugin), on a terminal; --runner,
 * --provider and --set KEY=VALUE answer without asking, and the defaults
 * answer the rest when nobody is asked (--yes, no terminal).  The JSON is
 * written by hand (2-space indentation, keys in a fixed order), checked
 * with hypertest_config_load_string() and then written whole or not at all;
 * the next steps follow.  'init --from FILE' converts a configuration
 * module of the TypeScript hypertest instead (jsconfig.c).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define CONFIG_NAME "hypertest.config.json"

struct argv_list {
	char **v;
	size_t n;
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


/* ---- questions ------------------------------------------------------------------- */

enum qkind {
	Q_WORD,     /* one word, required */
	Q_TEXT,     /* a non-empty string */
	Q_OPTIONAL, /* a string; empty leaves the option out */
	Q_ARGV,     /* words separated by blanks: an array */
	Q_COUNT,    /* a whole number from 1 to 100000 */
	Q_ACCOUNT   /* 12 digits, or empty */
};

enum qplace { P_CORE, P_RUNNER, P_PROVIDER, P_NONE };

struct question {
	const char *key;   /* --set KEY, and the option's name */
	const char *text;
	enum qkind kind;
	enum qplace place; /* P_NONE: only shapes another default */
	char *value;       /* the answer (the default until answered) */
	int given;         /* from --set */
};

struct init {
	hypertest *h;
	const struct cli_opts *o;
	int interactive;
	char *runner, *provider;
	struct question q[16];
	size_t nq;
	struct argv_list list, run; /* command runner */
};

static struct question *find_q(struct init *in, const char *key)
{
	for (size_t i = 0; i < in->nq; i++)
		if (strcmp(in->q[i].key, key) == 0)
			return &in->q[i];
	return NULL;
}

static const char *value_of(struct init *in, const char *key)
{
	struct question *q = find_q(in, key);
	return q && q->value ? q->value : "";
}

static int add_q(struct init *in, const char *key, const char *text, enum qkind kind,
                 enum qplace place)
{
	struct question *q = &in->q[in->nq++];

	q->key = key;
	q->text = text;
	q->kind = kind;
	q->place = place;
	q->value = strdup("");
	return q->value ? 0 : -1;
}

static int set_value(struct question *q, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -1;
	free(q->value);
	q->value = s;
	return 0;
}

/* Which problem an answer has, or NULL. */
static const char *invalid(const struct question *q, const char *v)
{
	char *end;
	long n;

	switch (q->kind) {
	case Q_WORD:
		return !*v || strpbrk(v, " \t") ? "one word, please" : NULL;
	case Q_TEXT:
		return !*v ? "an answer, please" : NULL;
	case Q_ARGV:
		return !v[strspn(v, " \t")] ? "a program and its arguments, please" : NULL;
	case Q_COUNT:
		errno = 0;
		n = strtol(v, &end, 10);
		return errno || *end || n < 1 || n > 100000 || !isdigit((unsigned char)*v)
		           ? "a whole number from 1 to 100000, please"
		           : NULL;
	case Q_ACCOUNT:
		return *v && (strlen(v) != 12 || strspn(v, "0123456789") != 12)
		           ? "the 12 digits of the AWS account, or nothing, please"
		           : NULL;
	case Q_OPTIONAL:
		return NULL;
	}
	return NULL;
}

/* Ask on stdout, read a line from stdin; the answer without surrounding
 * blanks, "" for the default; NULL at the end of the input. */
static char *ask(const char *question, const char *def)
{
	char *line = NULL;
	size_t cap = 0, start, end;
	ssize_t n;

	if (*def)
		printf("%s [%s]: ", question, def);
	else
		printf("%s: ", question);
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

/* Ask until the answer is acceptable: -1 at the end of the input. */
static int ask_q(struct question *q)
{
	for (;;) {
		char *s = ask(q->text, q->value);
		const char *why;
		if (!s)
			return -1;
		if (!*s && q->kind != Q_OPTIONAL && q->kind != Q_ACCOUNT) {
			free(s);
			if (!(why = invalid(q, q->value)))
				return 0;
			printf("  %s\n", why);
			continue;
		}
		if (!*s && (q->kind == Q_OPTIONAL || q->kind == Q_ACCOUNT)) {
			free(s);
			return 0; /* the default, which may be empty */
		}
		if ((why = invalid(q, s))) {
			printf("  %s\n", why);
			free(s);
			continue;
		}
		free(q->value);
		q->value = s;
		return 0;
	}
}

/* The answer to q: given, asked, or the default (then checked). */
static int answer(struct init *in, struct question *q)
{
	const char *why;

	if (!q->given && in->interactive)
		return ask_q(q) < 0 ? -2 : 0;
	if ((why = invalid(q, q->value))) {
		fprintf(stderr, "hypertest: init: %s '%s': %s\n", q->given ? "--set" : "the default of",
		        q->key, why);
		return -1;
	}
	return 0;
}

/* ---- the defaults, by plugin --------------------------------------------------------- */

/* The version of @playwright/test in the project's node_modules, or NULL. */
static char *playwright_version(const char *dir)
{
	struct cli_buf path = {0};
	char text[4096], *v = NULL, *p, *q;
	FILE *f;
	size_t n;

	cli_buf_printf(&path, "%s/node_modules/@playwright/test/package.json", dir);
	f = path.oom ? NULL : fopen(cli_buf_str(&path), "r");
	cli_buf_free(&path);
	if (!f)
		return NULL;
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	if ((p = strstr(text, "\"version\"")) && (p = strchr(p + 9, '"')) && (q = strchr(p + 1, '"')) &&
	    q - p - 1 > 0 && q - p - 1 < 32 && strspn(p + 1, "0123456789.") == (size_t)(q - p - 1))
		v = strndup(p + 1, (size_t)(q - p - 1));
	return v;
}

static const char *first_existing(const char *dir, const char *const *names)
{
	for (; *names; names++) {
		struct cli_buf b = {0};
		int ok;
		cli_buf_printf(&b, "%s/%s", dir, *names);
		ok = !b.oom && access(cli_buf_str(&b), F_OK) == 0;
		cli_buf_free(&b);
		if (ok)
			return *names;
	}
	return NULL;
}

static int setup_questions(struct init *in)
{
	const char *dir = hypertest_project_dir(in->h);
	const char *r = in->runner, *p = in->provider;
	struct cli_buf b = {0};
	int rc = 0;

	in->nq = 0;
	rc |= add_q(in, "imageName", "Image name", Q_TEXT, P_CORE);
	rc |= add_q(in, "concurrency", "Concurrency (invocations in flight at most)", Q_COUNT, P_CORE);
	if (strcmp(r, "command") == 0) {
		rc |= add_q(in, "testDir", "Test directory", Q_TEXT, P_RUNNER);
		rc |= add_q(in, "list", "Command that lists the tests, one per line (no shell)", Q_ARGV,
		            P_RUNNER);
		rc |= add_q(in, "run", "Command that runs one test, {id} being the test (no shell)", Q_ARGV,
		            P_RUNNER);
	} else if (strcmp(r, "pytest") == 0) {
		rc |= add_q(in, "rootDir", "Directory pytest runs in (node ids start there)", Q_TEXT,
		            P_RUNNER);
		rc |= add_q(in, "testDir", "Test directory, inside it", Q_TEXT, P_RUNNER);
		rc |= add_q(in, "python", "Python interpreter", Q_TEXT, P_RUNNER);
	} else if (strcmp(r, "ctest") == 0) {
		rc |= add_q(in, "buildDir", "CMake build directory (configured with enable_testing())",
		            Q_TEXT, P_RUNNER);
		rc |= add_q(in, "sourceDir", "CMake source directory", Q_TEXT, P_RUNNER);
		rc |= add_q(in, "testDir", "Directory hashed for drift detection (empty: the plugin's "
		                           "default)", Q_OPTIONAL, P_RUNNER);
	} else if (strcmp(r, "playwright") == 0) {
		rc |= add_q(in, "config", "Playwright config file (empty: Playwright's own lookup)",
		            Q_OPTIONAL, P_RUNNER);
	}
	if (strcmp(p, "aws") == 0) {
		rc |= add_q(in, "region", "AWS region", Q_TEXT, P_PROVIDER);
		rc |= add_q(in, "account", "AWS account ID (empty: the registry ECR names at deploy)",
		            Q_ACCOUNT, P_NONE);
		rc |= add_q(in, "ecrRegistry", "ECR registry", Q_OPTIONAL, P_PROVIDER);
		rc |= add_q(in, "baseImage", "Base image, with your test tool in it (empty: none)",
		            Q_OPTIONAL, P_PROVIDER);
		rc |= add_q(in, "functionName", "Lambda function name", Q_TEXT, P_PROVIDER);
		rc |= add_q(in, "bucketName", "S3 bucket name", Q_TEXT, P_PROVIDER);
	}
	if (rc)
		return -1;

	/* defaults that do not depend on another answer */
	add_image_name(&b, dir);
	rc |= set_value(find_q(in, "imageName"), cli_buf_str(&b));
	rc |= set_value(find_q(in, "concurrency"), "30");
	cli_buf_free(&b);
	if (find_q(in, "list")) {
		rc |= set_value(find_q(in, "testDir"), "tests");
		rc |= set_value(find_q(in, "run"), "sh {id}");
	} else if (find_q(in, "python")) {
		rc |= set_value(find_q(in, "rootDir"), ".");
		rc |= set_value(find_q(in, "testDir"), "tests");
		rc |= set_value(find_q(in, "python"), "python3");
	} else if (find_q(in, "buildDir")) {
		rc |= set_value(find_q(in, "buildDir"), "build");
		rc |= set_value(find_q(in, "sourceDir"), ".");
	} else if (find_q(in, "config")) {
		static const char *const names[] = {"playwright.config.ts",  "playwright.config.js",
		                                    "playwright.config.mjs", "playwright.config.cjs",
		                                    "playwright.config.mts", "playwright.config.cts", NULL};
		const char *found = first_existing(dir, names);
		rc |= set_value(find_q(in, "config"), found ? found : "");
	}
	if (find_q(in, "region")) {
		char fn[64];
		snprintf(fn, sizeof fn, "hypertest-%s", r);
		rc |= set_value(find_q(in, "region"), "eu-central-1");
		rc |= set_value(find_q(in, "functionName"), fn);
		rc |= set_value(find_q(in, "bucketName"), "hypertest-artifacts");
		rc |= set_value(find_q(in, "account"), getenv("AWS_ACCOUNT_ID") ? getenv("AWS_ACCOUNT_ID") : "");
	}
	return rc ? -1 : 0;
}

/* Defaults that follow an earlier answer, set just before the question. */
static int late_default(struct init *in, struct question *q)
{
	const char *dir = hypertest_project_dir(in->h);
	struct cli_buf b = {0};
	int rc = 0;

	if (q->given)
		return 0;
	if (strcmp(q->key, "list") == 0) {
		/* find in the test directory */
		char *s;
		if (default_list(&in->list, value_of(in, "testDir")) < 0 || !(s = argv_join(&in->list)))
			return -1;
		free(q->value);
		q->value = s;
		return 0;
	}
	if (strcmp(q->key, "testDir") == 0 && strcmp(in->runner, "ctest") == 0) {
		/* the plugin's default is sourceDir, or tests when that is "." */
		const char *const tests[] = {"tests", NULL};
		if (strcmp(value_of(in, "sourceDir"), ".") == 0 && !first_existing(dir, tests))
			cli_buf_puts(&b, ".");
		else
			return set_value(q, "");
	} else if (strcmp(q->key, "ecrRegistry") == 0) {
		if (*value_of(in, "account"))
			cli_buf_printf(&b, "%s.dkr.ecr.%s.amazonaws.com", value_of(in, "account"),
			               value_of(in, "region"));
	} else if (strcmp(q->key, "baseImage") == 0) {
		if (strcmp(in->runner, "playwright") == 0) {
			char *v = playwright_version(dir);
			cli_buf_printf(&b, "mcr.microsoft.com/playwright:v%s-noble", v ? v : "1.49.0");
			free(v);
		} else if (strcmp(in->runner, "pytest") == 0) {
			cli_buf_puts(&b, "python:3.12-slim");
		} else {
			cli_buf_puts(&b, "debian:bookworm-slim");
		}
	} else {
		return 0;
	}
	rc = b.oom ? -1 : set_value(q, cli_buf_str(&b));
	cli_buf_free(&b);
	return rc;
}

/* --set answers: each names a question of this runner and provider. */
static int take_sets(struct init *in)
{
	for (size_t i = 0; i < in->o->nsets; i++) {
		const struct cli_set *s = &in->o->sets[i];
		struct question *q = find_q(in, s->key);
		if (!q) {
			struct cli_buf keys = {0};
			for (size_t k = 0; k < in->nq; k++)
				cli_buf_printf(&keys, "%s%s", k ? ", " : "", in->q[k].key);
			fprintf(stderr, "hypertest: init: --set '%s': no such question for runner '%s' "
			                "and provider '%s' (the questions: %s)\n",
			        s->key, in->runner, in->provider, cli_buf_str(&keys));
			cli_buf_free(&keys);
			return -1;
		}
		if (set_value(q, s->value) < 0)
			return -1;
		q->given = 1;
	}
	return 0;
}

/* ---- the file ------------------------------------------------------------------------------ */

static void add_option(struct cli_buf *b, int *first, const struct question *q)
{
	struct argv_list a = {0};

	if ((q->kind == Q_OPTIONAL || q->kind == Q_ACCOUNT) && !*q->value)
		return;
	cli_buf_puts(b, *first ? "\n" : ",\n");
	*first = 0;
	cli_buf_puts(b, "      ");
	cli_buf_json_str(b, q->key);
	cli_buf_puts(b, ": ");
	if (q->kind == Q_ARGV) {
		if (argv_split(&a, q->value) < 0)
			b->oom = 1;
		add_argv_json(b, &a);
		argv_free(&a);
	} else {
		cli_buf_json_str(b, q->value);
	}
}

static void add_section(struct cli_buf *b, struct init *in, const char *name, const char *plugin,
                        enum qplace place)
{
	int first = 1;

	cli_buf_printf(b, "  \"%s\": {\n    \"plugin\": ", name);
	cli_buf_json_str(b, plugin);
	cli_buf_puts(b, ",\n    \"options\": {");
	for (size_t i = 0; i < in->nq; i++)
		if (in->q[i].place == place)
			add_option(b, &first, &in->q[i]);
	cli_buf_puts(b, first ? "}\n  }" : "\n    }\n  }");
}

static void config_json(struct cli_buf *b, struct init *in)
{
	cli_buf_printf(b, "{\n  \"concurrency\": %s,\n  \"imageName\": ", value_of(in, "concurrency"));
	cli_buf_json_str(b, value_of(in, "imageName"));
	cli_buf_puts(b, ",\n  \"driftDetectionPolicy\": \"warning\",\n");
	add_section(b, in, "testRunner", in->runner, P_RUNNER);
	cli_buf_puts(b, ",\n");
	add_section(b, in, "cloudProvider", in->provider, P_PROVIDER);
	cli_buf_puts(b, "\n}\n");
}

/* The text written whole at path, or nothing: a temporary file beside it,
 * then linked (no overwrite) or renamed (--force) into place. */
static int write_file(const char *path, const char *text, int force)
{
	struct cli_buf tmp = {0};
	size_t len = strlen(text), off = 0;
	int fd, saved, rc = -1;

	cli_buf_printf(&tmp, "%s.XXXXXX", path);
	if (tmp.oom) {
		errno = ENOMEM;
		return -1;
	}
	fd = mkstemp(tmp.data);
	if (fd < 0)
		goto out;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	{
		mode_t mask = umask(0);
		umask(mask);
		if (fchmod(fd, 0666 & ~mask) < 0)
			goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (force ? rename(tmp.data, path) : link(tmp.data, path))
		goto fail;
	if (!force)
		unlink(tmp.data);
	rc = 0;
	goto out;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp.data);
	errno = saved;
out:
	cli_buf_free(&tmp);
	return rc;
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

/* Check with the library, then write; 0 or -1 (said). */
static int check_and_write(hypertest *h, const char *path, const char *json, const char *origin,
                           int force)
{
	if (hypertest_config_load_string(h, json, origin) != HYPERTEST_OK) {
		fprintf(stderr, "hypertest: the configuration would be invalid: %s\n", hypertest_errmsg(h));
		return -1;
	}
	if (write_file(path, json, force) < 0) {
		if (errno == EEXIST)
			fprintf(stderr, "hypertest: %s already exists; use --force to overwrite it\n", path);
		else
			fprintf(stderr, "hypertest: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void next_steps(const struct init *in)
{
	printf("\nNext steps:\n");
	if (strcmp(in->provider, "aws") == 0) {
		printf("  1. hypertest provision  creates what the function needs, in %s:\n"
		       "                          the S3 bucket '%s',\n"
		       "                          the ECR repository '%s',\n"
		       "                          an execution role and the Lambda function '%s'\n"
		       "                          (with --dry-run first: the plan alone)\n",
		       find_q((struct init *)in, "region")->value,
		       find_q((struct init *)in, "bucketName")->value,
		       find_q((struct init *)in, "imageName")->value,
		       find_q((struct init *)in, "functionName")->value);
		printf("  2. hypertest doctor     checks credentials, region, function, bucket and quota\n"
		       "  3. hypertest deploy     pulls the base image, adds hypertest and your tests,\n"
		       "                          pushes the image and points the function at it\n"
		       "  4. hypertest invoke     runs every test in its own invocation\n");
	} else {
		printf("  1. hypertest doctor     checks the configuration, the plugins and the tests\n"
		       "  2. hypertest deploy     builds the image with your tests\n"
		       "  3. hypertest invoke     runs every test in its own invocation\n");
	}
	printf("The configuration is described in hypertest.config(5).\n");
}

/* ---- init --from ------------------------------------------------------------------------ */

static int init_from(hypertest *h, const struct cli_opts *o, const char *path)
{
	struct cli_buf notes = {0}, err = {0}, module = {0}, origin = {0};
	char *json = NULL;
	int status = CLI_EXIT_FAIL;

	if (o->from[0] != '/')
		cli_buf_printf(&module, "%s/", hypertest_project_dir(h));
	cli_buf_puts(&module, o->from);
	cli_buf_printf(&origin, "%s (converted to JSON)", cli_buf_str(&module));
	if (module.oom || origin.oom) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (!cli_jsconfig_is_module(o->from)) {
		fprintf(stderr, "hypertest: init --from '%s': expected a configuration module "
		                "(.js, .mjs, .cjs or .ts)\n", o->from);
		goto out;
	}
	/* as for every command: the module may read what .env sets */
	{
		char derr[1024];
		if (cli_dotenv_load(hypertest_project_dir(h), derr, sizeof derr) != 0) {
			fprintf(stderr, "hypertest: %s\n", derr);
			goto out;
		}
	}
	if (access(cli_buf_str(&module), R_OK) != 0) {
		fprintf(stderr, "hypertest: %s: %s\n", cli_buf_str(&module), strerror(errno));
		goto out;
	}
	if (cli_jsconfig_eval(cli_buf_str(&module), hypertest_project_dir(h), &json, &notes, &err) < 0) {
		fprintf(stderr, "hypertest: %s\nhypertest: nothing written\n", cli_buf_str(&err));
		goto out;
	}
	if (check_and_write(h, path, json, cli_buf_str(&origin), o->force) < 0)
		goto out;
	printf("Wrote %s from %s:\n%s", path, cli_buf_str(&module), json);
	if (notes.len) {
		const char *p = cli_buf_str(&notes);
		printf("\nNotes:\n");
		while (*p) {
			size_t n = strcspn(p, "\n");
			printf("  - %.*s\n", (int)n, p);
			p += n + (p[n] == '\n');
		}
	}
	printf("\nhypertest reads %s before %s from now on: remove the module\n"
	       "when you no longer need it for the TypeScript hypertest.\n",
	       o->config ? o->config : CONFIG_NAME, o->from);
	status = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
	free(json);
	cli_buf_free(&notes);
	cli_buf_free(&err);
	cli_buf_free(&module);
	cli_buf_free(&origin);
	return status;
}

/* ---- init ------------------------------------------------------------------------------------ */

static int choose_plugin(struct init *in, const char *given, const char *def, const char *text,
                         char **out)
{
	struct question q = {"", text, Q_WORD, P_NONE, NULL, 0};
	int rc;

	if (!(q.value = strdup(given ? given : def)))
		return -1;
	q.given = given != NULL;
	rc = answer(in, &q);
	if (rc < 0) {
		free(q.value);
		return rc;
	}
	*out = q.value;
	return 0;
}

int cli_cmd_init(hypertest *h, const struct cli_opts *o)
{
	struct init in;
	struct cli_buf json = {0};
	char *path = config_path(h, o), *module = NULL;
	int status = CLI_EXIT_FAIL, rc;

	memset(&in, 0, sizeof in);
	in.h = h;
	in.o = o;
	if (!path) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (o->config && cli_jsconfig_is_module(o->config)) {
		fprintf(stderr, "hypertest: init writes JSON: --config '%s' names a configuration "
		                "module (convert one with --from)\n", o->config);
		goto out;
	}
	if (!o->force && access(path, F_OK) == 0) {
		fprintf(stderr, "hypertest: %s already exists; use --force to overwrite it\n", path);
		goto out;
	}
	if (o->from) {
		status = init_from(h, o, path);
		goto out;
	}
	if ((module = cli_jsconfig_find(hypertest_project_dir(h))))
		fprintf(stderr, "hypertest: note: %s exists: 'hypertest init --from %s' converts it\n",
		        module, strrchr(module, '/') + 1);
	in.interactive = !o->yes && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	if (in.interactive)
		printf("Writing %s. Press Enter to take the default in brackets.\n", path);
	if ((rc = choose_plugin(&in, o->runner, "command",
	                        "Test runner plugin (command, pytest, ctest, playwright)", &in.runner)) < 0 ||
	    (rc = choose_plugin(&in, o->provider, "local", "Cloud provider plugin (local, aws)",
	                        &in.provider)) < 0)
		goto no_answer;
	if (setup_questions(&in) < 0) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (take_sets(&in) < 0)
		goto out;
	for (size_t i = 0; i < in.nq; i++) {
		if (late_default(&in, &in.q[i]) < 0) {
			fputs("hypertest: out of memory\n", stderr);
			goto out;
		}
		if ((rc = answer(&in, &in.q[i])) < 0)
			goto no_answer;
	}
	config_json(&json, &in);
	if (json.oom) {
		fputs("hypertest: out of memory\n", stderr);
		goto out;
	}
	if (check_and_write(h, path, cli_buf_str(&json), path, o->force) < 0)
		goto out;
	printf("Wrote %s:\n%s", path, cli_buf_str(&json));
	next_steps(&in);
	status = fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
	goto out;
no_answer:
	if (rc == -2)
		fputs("hypertest: init: no answer; nothing written\n", stderr);
out:
	cli_buf_free(&json);
	for (size_t i = 0; i < in.nq; i++)
		free(in.q[i].value);
	argv_free(&in.list);
	argv_free(&in.run);
	free(in.runner);
	free(in.provider);
	free(module);
	free(path);
	return status;
}
