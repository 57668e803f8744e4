/*
 * runners-core.h - a tiny core for the checks of the framework runners
 * (check_runner_pytest.c, check_runner_ctest.c): the upcalls a runner
 * uses, recording what it reports, and loading a module as the core does
 * (dlopen, descriptor, init).  Included by one test program each.
 */
#ifndef HT_TESTS_RUNNERS_CORE_H
#define HT_TESTS_RUNNERS_CORE_H

#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hypertest/plugin.h>

struct hypertest_core {
	const char *project_dir;
	int error_code;
	char error[16384];
};
struct hypertest_list {
	char *items[64];
	size_t n;
};
struct hypertest_layer {
	char *src[64], *dst[64];
	size_t n;
};
struct hypertest_result {
	int status, has_status;
	int64_t duration;
	int has_duration;
	char *name, *file_path, *message, *stack;
};
struct hypertest_checks {
	char *name[8], *message[8];
	int status[8];
	size_t n;
};

static const hypertest_dispatch *reg_ops;

static void up_log(hypertest_core *c, int level, const char *m)
{
	(void)c, (void)level, (void)m;
}
static void up_set_error(hypertest_core *c, int code, const char *m)
{
	c->error_code = code;
	snprintf(c->error, sizeof c->error, "%s", m);
}
static int up_register(hypertest_core *c, int kind, const char *name, const char *d,
                       const hypertest_dispatch *ops)
{
	(void)c, (void)name, (void)d;
	ck_assert_int_eq(kind, HYPERTEST_KIND_RUNNER);
	reg_ops = ops;
	return 0;
}
static int up_list_add(hypertest_list *l, const char *ctx)
{
	ck_assert_uint_lt(l->n, 64);
	l->items[l->n++] = strdup(ctx);
	return 0;
}
static int up_layer_add(hypertest_layer *l, const char *src, const char *dst)
{
	ck_assert_uint_lt(l->n, 64);
	l->src[l->n] = strdup(src);
	l->dst[l->n++] = strdup(dst);
	return 0;
}
static void up_status(hypertest_result *r, int s)
{
	r->status = s;
	r->has_status = 1;
}
static void up_str(hypertest_result *r, int field, const char *v)
{
	char **slot = field == HYPERTEST_RESULT_NAME        ? &r->name
	              : field == HYPERTEST_RESULT_FILE_PATH ? &r->file_path
	              : field == HYPERTEST_RESULT_MESSAGE   ? &r->message
	                                                    : &r->stack;
	ck_assert(field >= 1 && field <= 4);
	free(*slot);
	*slot = strdup(v);
}
static void up_duration(hypertest_result *r, int64_t ms)
{
	r->duration = ms;
	r->has_duration = 1;
}
static void up_check(hypertest_checks *c, const char *name, int status, const char *m)
{
	ck_assert_uint_lt(c->n, 8);
	c->name[c->n] = strdup(name);
	c->message[c->n] = strdup(m);
	c->status[c->n++] = status;
}
static const char *up_core_str(hypertest_core *c, int what)
{
	return what == HYPERTEST_CORE_PROJECT_DIR ? c->project_dir : NULL;
}

static const hypertest_dispatch test_upcalls[] = {
	{HYPERTEST_UP_LOG, (hypertest_fn)up_log},
	{HYPERTEST_UP_SET_ERROR, (hypertest_fn)up_set_error},
	{HYPERTEST_UP_REGISTER, (hypertest_fn)up_register},
	{HYPERTEST_UP_LIST_ADD, (hypertest_fn)up_list_add},
	{HYPERTEST_UP_LAYER_ADD, (hypertest_fn)up_layer_add},
	{HYPERTEST_UP_RESULT_SET_STATUS, (hypertest_fn)up_status},
	{HYPERTEST_UP_RESULT_SET_STR, (hypertest_fn)up_str},
	{HYPERTEST_UP_RESULT_SET_DURATION, (hypertest_fn)up_duration},
	{HYPERTEST_UP_DOCTOR_CHECK, (hypertest_fn)up_check},
	{HYPERTEST_UP_CORE_STR, (hypertest_fn)up_core_str},
	{0, NULL}};

static void *op(int id)
{
	for (const hypertest_dispatch *d = reg_ops; d && d->id; d++)
		if (d->id == id)
			return (void *)d->fn;
	ck_abort_msg("operation %d missing", id);
	return NULL;
}

/* Load the module path (checks the descriptor first) and register it. */
static void *load_module(const char *path, hypertest_core *core)
{
	void *m = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	ck_assert_msg(m != NULL, "dlopen %s: %s", path, dlerror());
	const hypertest_plugin_descriptor *d = dlsym(m, "hypertest_plugin_info");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->magic, HYPERTEST_PLUGIN_MAGIC);
	ck_assert_uint_eq(d->abi_major, HYPERTEST_PLUGIN_ABI_MAJOR);
	hypertest_plugin_init_fn init = (hypertest_plugin_init_fn)dlsym(m, "hypertest_plugin_init");
	ck_assert_ptr_nonnull(init);
	ck_assert_int_eq(init(core, test_upcalls), 0);
	ck_assert_ptr_nonnull(reg_ops);
	return m;
}

static void result_free(struct hypertest_result *r)
{
	free(r->name);
	free(r->file_path);
	free(r->message);
	free(r->stack);
	memset(r, 0, sizeof *r);
}

static void checks_free(struct hypertest_checks *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->name[i]), free(c->message[i]);
	c->n = 0;
}

static void layer_free(struct hypertest_layer *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->src[i]), free(l->dst[i]);
	l->n = 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}
static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Is there a program on PATH (or a path) that runs argv with exit 0? */
static int runs_ok(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#endif /* HT_TESTS_RUNNERS_CORE_H */
