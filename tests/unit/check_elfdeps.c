/*
 * check_elfdeps.c - tests of elfdeps.c, the shared-library resolver: system
 * programs and libcurl against ldd (the reference, run here only), shared
 * libraries built here with gcc ($ORIGIN, DT_RPATH and its chain,
 * DT_RUNPATH, LD_LIBRARY_PATH, -z nodefaultlib, an ld.so.cache written by
 * ldconfig), synthetic ELF files of both classes and byte orders, static
 * programs, and truncated, corrupt or foreign files.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "scratch-dir.h"

#include "elfdeps.h"

/* ---- scratch directory and processes --------------------------------------- */

static void copy_file(const char *from, const char *to, size_t max)
{
	char *data;
	size_t len;
	ht_err err;

	ck_assert_msg(ht_read_file(from, &data, &len, &err) == 0, "%s", err.msg);
	write_bytes(to, data, len < max ? len : max, 0755);
	free(data);
}

static void make_dir(const char *path)
{
	ht_err err;
	ck_assert_msg(ht_mkdir_p(path, &err) == 0, "%s", err.msg);
}

/* Run argv (no shell); its stdout into *out when out is set.  The exit
 * status, or -1 when the program could not be started. */
static int run(char *const argv[], char **out)
{
	int pfd[2], status;
	ht_buf b = HT_BUF_INIT;
	pid_t pid;

	ck_assert(pipe(pfd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(pfd[1], 1);
		if (!out)
			dup2(null, 1);
		dup2(null, 2);
		close(pfd[0]);
		close(pfd[1]);
		execvp(argv[0], argv);
		_exit(126);
	}
	close(pfd[1]);
	for (;;) {
		char chunk[4096];
		ssize_t n = read(pfd[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		ck_assert(ht_buf_append(&b, chunk, (size_t)n) == 0);
	}
	close(pfd[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	if (out)
		*out = ht_buf_steal(&b);
	else
		ht_buf_free(&b);
	if (!WIFEXITED(status) || WEXITSTATUS(status) == 126)
		return -1;
	return WEXITSTATUS(status);
}

static int have_program(const char *name)
{
	char *argv[] = {(char *)name, (char *)"--version", NULL};
	return run(argv, NULL) == 0;
}

static void gcc(const char *out, const char *src, const char *a1, const char *a2,
                const char *a3, const char *a4)
{
	char *argv[] = {(char *)"gcc", (char *)"-o", (char *)out, (char *)src, (char *)a1,
	                (char *)a2, (char *)a3, (char *)a4, NULL};
	ck_assert_msg(run(argv, NULL) == 0, "gcc -o %s %s %s %s %s %s failed", out, src,
	              a1 ? a1 : "", a2 ? a2 : "", a3 ? a3 : "", a4 ? a4 : "");
}

static void write_text(const char *path, const char *text)
{
	write_bytes(path, text, strlen(text), 0755);
}

/* ---- sets of real paths --------------------------------------------------- */

struct set {
	char *items[256];
	size_t n;
	int not_found; /* ldd printed "not found" */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_add(struct set *s, const char *path)
{
	char *real = realpath(path, NULL);
	size_t i;

	ck_assert_msg(real != NULL, "realpath %s: %s", path, strerror(errno));
	for (i = 0; i < s->n; i++) {
		if (strcmp(s->items[i], real) == 0) {
			free(real);
			return;
		}
	}
	ck_assert(s->n < 256);
	s->items[s->n++] = real;
	qsort(s->items, s->n, sizeof s->items[0], cmp_str);
}

static void set_free(struct set *s)
{
	while (s->n)
		free(s->items[--s->n]);
}

static char *set_str(const struct set *s)
{
	ht_buf b = HT_BUF_INIT;
	size_t i;
	for (i = 0; i < s->n; i++)
		ht_buf_printf(&b, "%s%s", i ? " " : "", s->items[i]);
	if (s->not_found)
		ht_buf_puts(&b, " (not found)");
	return ht_buf_steal(&b);
}

/* ldd's set of files for path; 0 when ldd is missing. */
static int ldd_set(const char *path, struct set *s)
{
	char *argv[] = {(char *)"ldd", (char *)path, NULL};
	char *out = NULL, *line, *save = NULL;
	int rc;

	memset(s, 0, sizeof *s);
	rc = run(argv, &out);
	if (rc < 0) {
		free(out);
		return 0;
	}
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *arrow = strstr(line, "=> "), *p, *end;
		while (*line == ' ' || *line == '\t')
			line++;
		if (strstr(line, "linux-vdso") || strstr(line, "linux-gate"))
			continue;
		if (arrow)
			p = arrow + 3;
		else if (line[0] == '/')
			p = line;
		else
			continue;
		if (strncmp(p, "not found", 9) == 0) {
			s->not_found = 1;
			continue;
		}
		end = strstr(p, " (");
		if (end)
			*end = '\0';
		set_add(s, p);
	}
	free(out);
	return 1;
}

static void deps_set(const ht_elfdeps *d, struct set *s)
{
	size_t i;
	memset(s, 0, sizeof *s);
	for (i = 0; i < ht_elfdeps_count(d); i++)
		set_add(s, ht_elfdeps_path(d, i));
	if (ht_elfdeps_interp_path(d))
		set_add(s, ht_elfdeps_interp_path(d));
}

static ht_elfdeps *resolve1(const char *path)
{
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[] = {path};
	int rc = ht_elfdeps_resolve(roots, 1, &d, &err);
	ck_assert_msg(rc == 0, "resolve %s: %d %s", path, rc, err.msg);
	return d;
}

/* The path of name in d, or NULL. */
static const char *dep_path(const ht_elfdeps *d, const char *name)
{
	size_t i;
	for (i = 0; i < ht_elfdeps_count(d); i++)
		if (strcmp(ht_elfdeps_soname(d, i), name) == 0)
			return ht_elfdeps_path(d, i);
	return NULL;
}

/* Resolve path and compare the whole set with ldd's (when ldd exists). */
static void check_against_ldd(const char *path)
{
	ht_elfdeps *d = resolve1(path);
	struct set mine, ref;
	size_t i;

	for (i = 1; i < ht_elfdeps_count(d); i++)
		ck_assert_msg(strcmp(ht_elfdeps_soname(d, i - 1), ht_elfdeps_soname(d, i)) < 0,
		              "not sorted: %s, %s", ht_elfdeps_soname(d, i - 1),
		              ht_elfdeps_soname(d, i));
	deps_set(d, &mine);
	if (ldd_set(path, &ref)) {
		char *a = set_str(&mine), *b = set_str(&ref);
		ck_assert_msg(ref.n > 0 && !ref.not_found, "ldd %s: %s", path, b);
		ck_assert_msg(strcmp(a, b) == 0, "%s:\n mine %s\n ldd  %s", path, a, b);
		free(a);
		free(b);
		set_free(&ref);
	}
	set_free(&mine);
	ht_elfdeps_free(d);
}

/* ---- system programs against ldd ------------------------------------------- */

START_TEST(test_program_libc)
{
	char *self = realpath("/proc/self/exe", NULL);
	const char *progs[] = {"/bin/ls", self};
	size_t i;

	for (i = 0; i < 2; i++) {
		ht_elfdeps *d = resolve1(progs[i]);
		const char *libc = dep_path(d, "libc.so.6");
		char *real_ls = NULL;
		struct set ref;
		ck_assert_msg(libc != NULL, "%s: no libc.so.6", progs[i]);
		ck_assert_msg(libc[0] == '/' && (real_ls = realpath(libc, NULL)) &&
		              strcmp(real_ls, libc) == 0, "%s is not a real path", libc);
		free(real_ls);
		ck_assert_ptr_nonnull(ht_elfdeps_interp(d));
		ck_assert_ptr_nonnull(ht_elfdeps_interp_path(d));
		ck_assert_str_eq(ht_elf_machine_arch(ht_elfdeps_machine(d)) ? "known" : "unknown",
		                 "known");
		if (ldd_set(progs[i], &ref)) {
			size_t k;
			char *libc_real = realpath(libc, NULL);
			int seen = 0;
			for (k = 0; k < ref.n; k++)
				seen |= strcmp(ref.items[k], libc_real) == 0;
			ck_assert_msg(seen, "ldd %s has no %s", progs[i], libc_real);
			free(libc_real);
			set_free(&ref);
		}
		ht_elfdeps_free(d);
		check_against_ldd(progs[i]);
	}
	free(self);
}
END_TEST

START_TEST(test_interp_as_written)
{
	ht_elfdeps *d = resolve1("/bin/ls");
	struct set ref;
	char *argv[] = {(char *)"ldd", (char *)"/bin/ls", NULL}, *out = NULL;

	/* ldd prints the interpreter under the name the program gives it */
	if (run(argv, &out) >= 0) {
		char *want = ht_asprintf("\t%s (", ht_elfdeps_interp(d));
		ck_assert_msg(strstr(out, want) != NULL, "%s not in ldd output:\n%s", want, out);
		free(want);
	}
	free(out);
	ck_assert(ldd_set("/bin/ls", &ref) == 0 || ref.n > 0);
	set_free(&ref);
	ht_elfdeps_free(d);
}
END_TEST

START_TEST(test_libcurl)
{
	glob_t g;
	ck_assert(glob("/usr/lib/*/libcurl.so.4", 0, NULL, &g) == 0 ||
	          glob("/usr/lib64/libcurl.so.4", 0, NULL, &g) == 0);
	check_against_ldd(g.gl_pathv[0]);
	{
		ht_elfdeps *d = resolve1(g.gl_pathv[0]);
		ck_assert_ptr_null(ht_elfdeps_interp(d)); /* a library has no PT_INTERP */
		ck_assert_ptr_nonnull(dep_path(d, "libssl.so.3") ? dep_path(d, "libssl.so.3")
		                                                  : dep_path(d, "libc.so.6"));
		ht_elfdeps_free(d);
	}
	globfree(&g);
}
END_TEST

/* ---- libraries built here ----------------------------------------------------- */

static int have_gcc;

/* dir/liba.so (-rpath '$ORIGIN/sub', new or old dtags) needing
 * dir/sub/libb.so, which needs dir/sub/libd.so without any path of its own;
 * other/libb.so needs nothing. */
static void build_chain(const char *dir, const char *dtags)
{
	char *sub = ht_asprintf("%s/sub", dir), *lsub = ht_asprintf("-L%s", sub);
	char *libd = ht_asprintf("%s/libd.so", sub), *libb = ht_asprintf("%s/libb.so", sub);
	char *liba = ht_asprintf("%s/liba.so", dir);

	make_dir(sub);
	write_text(tpath("d.c"), "#include <stdio.h>\nint d(void) { return puts(\"d\"); }\n");
	write_text(tpath("b.c"), "int d(void);\nint b(void) { return d() + 1; }\n");
	write_text(tpath("a.c"), "int b(void);\nint a(void) { return b() + 1; }\n");
	gcc(libd, tpath("d.c"), "-shared", "-fPIC", "-Wl,-soname,libd.so", NULL);
	gcc(libb, tpath("b.c"), "-shared", "-fPIC", lsub, "-ld");
	{
		char *argv[] = {(char *)"gcc", (char *)"-o", liba, tpath("a.c"), (char *)"-shared",
		                (char *)"-fPIC", lsub, (char *)"-lb", (char *)dtags,
		                (char *)"-Wl,-rpath,$ORIGIN/sub", (char *)"-Wl,-soname,liba.so", NULL};
		ck_assert_msg(run(argv, NULL) == 0, "gcc liba %s", dtags);
	}
	free(sub);
	free(lsub);
	free(libd);
	free(libb);
	free(liba);
}

static void build_other(void)
{
	make_dir(tpath("other"));
	write_text(tpath("b2.c"), "int b(void) { return 2; }\n");
	gcc(tpath("other/libb.so"), tpath("b2.c"), "-shared", "-fPIC", "-Wl,-soname,libb.so", NULL);
}

static void gcc_setup(void)
{
	tmp_setup();
	have_gcc = have_program("gcc");
}

START_TEST(test_rpath_origin_chain)
{
	ht_elfdeps *d;
	char *want_b, *want_d;

	if (!have_gcc)
		return;
	unsetenv("LD_LIBRARY_PATH");
	build_chain(tpath("r"), "-Wl,--disable-new-dtags");
	d = resolve1(tpath("r/liba.so"));
	want_b = realpath(tpath("r/sub/libb.so"), NULL);
	want_d = realpath(tpath("r/sub/libd.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libb.so"), want_b);
	/* libb.so has no path: liba.so's DT_RPATH serves its needs too */
	ck_assert_str_eq(dep_path(d, "libd.so"), want_d);
	ck_assert_ptr_nonnull(dep_path(d, "libc.so.6"));
	free(want_b);
	free(want_d);
	ht_elfdeps_free(d);
	check_against_ldd(tpath("r/liba.so"));
}
END_TEST

START_TEST(test_runpath_own_only)
{
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[1];
	char *want_b;
	struct set ref;

	if (!have_gcc)
		return;
	unsetenv("LD_LIBRARY_PATH");
	build_chain(tpath("n"), "-Wl,--enable-new-dtags");
	roots[0] = tpath("n/liba.so");
	/* DT_RUNPATH serves liba.so's own needs only: libd.so is not found */
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_null(d);
	want_b = realpath(tpath("n/sub/libb.so"), NULL);
	ck_assert_msg(strstr(err.msg, "libd.so needed by ") && strstr(err.msg, want_b) &&
	              strstr(err.msg, "/etc/ld.so.cache") && strstr(err.msg, "/usr/lib"),
	              "%s", err.msg);
	free(want_b);
	if (ldd_set(roots[0], &ref)) {
		ck_assert(ref.not_found);
		set_free(&ref);
	}
	/* its own need, libb.so, was found through $ORIGIN/sub */
	setenv("LD_LIBRARY_PATH", tpath("n/sub"), 1);
	d = resolve1(roots[0]);
	want_b = realpath(tpath("n/sub/libb.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libb.so"), want_b);
	free(want_b);
	ht_elfdeps_free(d);
}
END_TEST

START_TEST(test_ld_library_path_precedence)
{
	ht_elfdeps *d;
	char *sub_b, *other_b;

	if (!have_gcc)
		return;
	build_chain(tpath("r"), "-Wl,--disable-new-dtags");
	build_chain(tpath("n"), "-Wl,--enable-new-dtags");
	build_other();
	setenv("LD_LIBRARY_PATH", tpath("nowhere:%s", tpath("other")), 1);
	/* DT_RPATH comes before LD_LIBRARY_PATH */
	d = resolve1(tpath("r/liba.so"));
	sub_b = realpath(tpath("r/sub/libb.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libb.so"), sub_b);
	ht_elfdeps_free(d);
	check_against_ldd(tpath("r/liba.so"));
	/* LD_LIBRARY_PATH comes before DT_RUNPATH */
	d = resolve1(tpath("n/liba.so"));
	other_b = realpath(tpath("other/libb.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libb.so"), other_b);
	ck_assert_ptr_null(dep_path(d, "libd.so"));
	ht_elfdeps_free(d);
	check_against_ldd(tpath("n/liba.so"));
	free(sub_b);
	free(other_b);
}
END_TEST

START_TEST(test_nodefaultlib)
{
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[1];

	if (!have_gcc)
		return;
	unsetenv("LD_LIBRARY_PATH");
	write_text(tpath("n.c"), "#include <stdio.h>\nvoid n(void) { puts(\"n\"); }\n");
	gcc(tpath("libn.so"), tpath("n.c"), "-shared", "-fPIC", "-Wl,-z,nodefaultlib", NULL);
	roots[0] = tpath("libn.so");
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, "libc.so.6 needed by ") && strstr(err.msg, "libn.so"), "%s",
	              err.msg);
	{
		struct set ref;
		if (ldd_set(roots[0], &ref)) {
			ck_assert(ref.not_found);
			set_free(&ref);
		}
	}
	d = resolve1("/bin/ls");
	{
		char *dir = ht_strdup(dep_path(d, "libc.so.6"));
		*strrchr(dir, '/') = '\0';
		setenv("LD_LIBRARY_PATH", dir, 1);
		free(dir);
	}
	ht_elfdeps_free(d);
	check_against_ldd(roots[0]);
}
END_TEST

START_TEST(test_needed_path_and_missing)
{
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[1];

	if (!have_gcc)
		return;
	unsetenv("LD_LIBRARY_PATH");
	make_dir(tpath("p"));
	write_text(tpath("d.c"), "int d(void) { return 4; }\n");
	write_text(tpath("m.c"), "int d(void);\nint m(void) { return d(); }\n");
	gcc(tpath("p/libd.so"), tpath("d.c"), "-shared", "-fPIC", NULL, NULL);
	/* no soname: DT_NEEDED is the path given to the linker */
	gcc(tpath("libm1.so"), tpath("m.c"), "-shared", "-fPIC", tpath("p/libd.so"), NULL);
	d = resolve1(tpath("libm1.so"));
	{
		char *want = realpath(tpath("p/libd.so"), NULL);
		ck_assert_str_eq(dep_path(d, tpath("p/libd.so")), want);
		free(want);
	}
	ht_elfdeps_free(d);
	check_against_ldd(tpath("libm1.so"));
	/* a library that is nowhere */
	gcc(tpath("libd.so"), tpath("d.c"), "-shared", "-fPIC", "-Wl,-soname,libzzmissing.so.7",
	    NULL);
	gcc(tpath("libm2.so"), tpath("m.c"), "-shared", "-fPIC", tpath("libd.so"), NULL);
	roots[0] = tpath("libm2.so");
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, "libzzmissing.so.7 needed by ") &&
	              strstr(err.msg, "libm2.so not found"), "%s", err.msg);
}
END_TEST

/* ---- an ld.so.cache written by ldconfig ---------------------------------------- */

static const char *ldconfig_path(void)
{
	static const char *const c[] = {"/sbin/ldconfig", "/usr/sbin/ldconfig"};
	size_t i;
	for (i = 0; i < 2; i++)
		if (access(c[i], X_OK) == 0)
			return c[i];
	return NULL;
}

static const char *resolve_with_cache(const char *root, const char *cache, int *rc)
{
	static char found[4096];
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[] = {root};

	found[0] = '\0';
	*rc = ht_elfdeps_resolve_cache(roots, 1, cache, &d, &err);
	if (*rc == 0) {
		const char *p = dep_path(d, "libconly.so.1");
		snprintf(found, sizeof found, "%s", p ? p : "");
		ht_elfdeps_free(d);
	} else {
		snprintf(found, sizeof found, "%s", err.msg);
	}
	return found;
}

START_TEST(test_ld_so_cache)
{
	const char *ldc = ldconfig_path();
	const char *formats[] = {"new", "compat"};
	char *c1, *c2;
	size_t i;
	int rc;

	if (!have_gcc || !ldc)
		return;
	unsetenv("LD_LIBRARY_PATH");
	make_dir(tpath("c1"));
	make_dir(tpath("c2"));
	write_text(tpath("c.c"), "int c(void) { return 3; }\n");
	write_text(tpath("u.c"), "int c(void);\nint u(void) { return c(); }\n");
	gcc(tpath("c1/libconly.so.1"), tpath("c.c"), "-shared", "-fPIC",
	    "-Wl,-soname,libconly.so.1", NULL);
	gcc(tpath("c2/libconly.so.1"), tpath("c.c"), "-shared", "-fPIC",
	    "-Wl,-soname,libconly.so.1", "-DOTHER");
	gcc(tpath("libu.so"), tpath("u.c"), "-shared", "-fPIC", tpath("c1/libconly.so.1"), NULL);
	c1 = realpath(tpath("c1/libconly.so.1"), NULL);
	c2 = realpath(tpath("c2/libconly.so.1"), NULL);

	/* only the cache knows these directories */
	resolve_with_cache(tpath("libu.so"), tpath("no-cache"), &rc);
	ck_assert_int_eq(rc, HYPERTEST_ERR_NOT_FOUND);
	for (i = 0; i < 2; i++) {
		char *fmt = ht_asprintf("--format=%s", formats[i]);
		char *argv[] = {(char *)ldc, (char *)"-X", fmt, (char *)"-C", tpath("cache12"),
		                (char *)"-f", tpath("conf12"), NULL};
		char *argv2[] = {(char *)ldc, (char *)"-X", fmt, (char *)"-C", tpath("cache21"),
		                 (char *)"-f", tpath("conf21"), NULL};
		const char *got;
		write_text(tpath("conf12"), tpath("c1\n%s\n", tpath("c2")));
		write_text(tpath("conf21"), tpath("c2\n%s\n", tpath("c1")));
		ck_assert_int_eq(run(argv, NULL), 0);
		ck_assert_int_eq(run(argv2, NULL), 0);
		/* the first directory of the configuration wins */
		got = resolve_with_cache(tpath("libu.so"), tpath("cache12"), &rc);
		ck_assert_msg(rc == 0 && strcmp(got, c1) == 0, "%s: %d %s", formats[i], rc, got);
		got = resolve_with_cache(tpath("libu.so"), tpath("cache21"), &rc);
		ck_assert_msg(rc == 0 && strcmp(got, c2) == 0, "%s: %d %s", formats[i], rc, got);
		free(fmt);
	}
	/* a cache that is not one is ignored, as the loader does */
	copy_file(tpath("cache12"), tpath("cache-bad"), 40);
	resolve_with_cache(tpath("libu.so"), tpath("cache-bad"), &rc);
	ck_assert_int_eq(rc, HYPERTEST_ERR_NOT_FOUND);
	free(c1);
	free(c2);
}
END_TEST

/* ---- static programs ------------------------------------------------------------- */

START_TEST(test_static)
{
	const char *prog = NULL;
	glob_t g;
	ht_elfdeps *d;

	if (have_gcc && glob("/usr/lib/*/libc.a", 0, NULL, &g) == 0) {
		globfree(&g);
		write_text(tpath("s.c"), "#include <stdio.h>\nint main(void) { puts(\"s\"); return 0; }\n");
		gcc(tpath("static"), tpath("s.c"), "-static", NULL, NULL, NULL);
		prog = tpath("static");
	} else if (access("/bin/busybox", X_OK) == 0) {
		struct set ref;
		if (ldd_set("/bin/busybox", &ref) && ref.n == 0)
			prog = "/bin/busybox";
		set_free(&ref);
	}
	if (!prog)
		return;
	d = resolve1(prog);
	ck_assert_uint_eq(ht_elfdeps_count(d), 0);
	ck_assert_ptr_null(ht_elfdeps_interp(d));
	ck_assert_ptr_null(ht_elfdeps_interp_path(d));
	ht_elfdeps_free(d);
	/* with a dynamic module: only the module's libraries */
	{
		const char *roots[] = {prog, "/bin/ls"};
		ht_err err;
		ck_assert_int_eq(ht_elfdeps_resolve(roots, 2, &d, &err), 0);
		ck_assert_ptr_nonnull(dep_path(d, "libc.so.6"));
		ck_assert_ptr_nonnull(ht_elfdeps_interp(d));
		ht_elfdeps_free(d);
	}
}
END_TEST

/* ---- synthetic ELF files ----------------------------------------------------- */

struct synth {
	int cls, big, machine, type;
	const char *interp;
	const char *needed[3];
	const char *runpath, *rpath, *soname;
};

static void put(unsigned char *b, size_t off, size_t size, uint64_t v, int big)
{
	size_t i;
	for (i = 0; i < size; i++)
		b[off + (big ? size - 1 - i : i)] = (unsigned char)(v >> (8 * i));
}

#define FIELD(T, f) offsetof(T, f), sizeof(((T *)0)->f)

/* Write an ELF file: header, PT_LOAD (at virtual address 0x10000 + file
 * offset), PT_DYNAMIC, PT_INTERP, interpreter, string table, dynamic. */
static size_t synth_write(const char *path, const struct synth *s)
{
	unsigned char b[4096];
	int is64 = s->cls == ELFCLASS64, big = s->big;
	size_t eh = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t ph = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	size_t dsz = is64 ? sizeof(Elf64_Dyn) : sizeof(Elf32_Dyn);
	size_t nph = s->interp ? 3 : 2, interp_off = eh + nph * ph, str_off, dyn_off, len, i;
	size_t n_dyn = 0, pos;
	uint64_t base = 0x10000;
	uint64_t dyn[16][2];
	char strtab[512] = "";
	size_t strlen_ = 1;

#define ADDSTR(str) (memcpy(strtab + strlen_, (str), strlen(str) + 1), strlen_ += strlen(str) + 1, \
	strlen_ - strlen(str) - 1)
	memset(b, 0, sizeof b);
	for (i = 0; i < 3 && s->needed[i]; i++) {
		dyn[n_dyn][0] = DT_NEEDED;
		dyn[n_dyn++][1] = ADDSTR(s->needed[i]);
	}
	if (s->runpath) {
		dyn[n_dyn][0] = DT_RUNPATH;
		dyn[n_dyn++][1] = ADDSTR(s->runpath);
	}
	if (s->rpath) {
		dyn[n_dyn][0] = DT_RPATH;
		dyn[n_dyn++][1] = ADDSTR(s->rpath);
	}
	if (s->soname) {
		dyn[n_dyn][0] = DT_SONAME;
		dyn[n_dyn++][1] = ADDSTR(s->soname);
	}
	str_off = interp_off + (s->interp ? strlen(s->interp) + 1 : 0);
	dyn_off = (str_off + strlen_ + 7) & ~(size_t)7;
	dyn[n_dyn][0] = DT_STRTAB;
	dyn[n_dyn++][1] = base + str_off;
	dyn[n_dyn][0] = DT_STRSZ;
	dyn[n_dyn++][1] = strlen_;
	dyn[n_dyn][0] = DT_NULL;
	dyn[n_dyn++][1] = 0;
	len = dyn_off + n_dyn * dsz;
	ck_assert(len <= sizeof b);

	memcpy(b, ELFMAG, SELFMAG);
	b[EI_CLASS] = (unsigned char)s->cls;
	b[EI_DATA] = big ? ELFDATA2MSB : ELFDATA2LSB;
	b[EI_VERSION] = EV_CURRENT;
	if (is64) {
		put(b, FIELD(Elf64_Ehdr, e_type), (uint64_t)s->type, big);
		put(b, FIELD(Elf64_Ehdr, e_machine), (uint64_t)s->machine, big);
		put(b, FIELD(Elf64_Ehdr, e_version), EV_CURRENT, big);
		put(b, FIELD(Elf64_Ehdr, e_phoff), eh, big);
		put(b, FIELD(Elf64_Ehdr, e_ehsize), eh, big);
		put(b, FIELD(Elf64_Ehdr, e_phentsize), ph, big);
		put(b, FIELD(Elf64_Ehdr, e_phnum), nph, big);
	} else {
		put(b, FIELD(Elf32_Ehdr, e_type), (uint64_t)s->type, big);
		put(b, FIELD(Elf32_Ehdr, e_machine), (uint64_t)s->machine, big);
		put(b, FIELD(Elf32_Ehdr, e_version), EV_CURRENT, big);
		put(b, FIELD(Elf32_Ehdr, e_phoff), eh, big);
		put(b, FIELD(Elf32_Ehdr, e_ehsize), eh, big);
		put(b, FIELD(Elf32_Ehdr, e_phentsize), ph, big);
		put(b, FIELD(Elf32_Ehdr, e_phnum), nph, big);
	}
	for (i = 0; i < nph; i++) {
		unsigned char *p = b + eh + i * ph;
		uint64_t type = i == 0 ? PT_LOAD : i == 1 ? PT_DYNAMIC : PT_INTERP;
		uint64_t off = i == 0 ? 0 : i == 1 ? dyn_off : interp_off;
		uint64_t sz = i == 0 ? len : i == 1 ? n_dyn * dsz : strlen(s->interp) + 1;
		if (is64) {
			put(p, FIELD(Elf64_Phdr, p_type), type, big);
			put(p, FIELD(Elf64_Phdr, p_offset), off, big);
			put(p, FIELD(Elf64_Phdr, p_vaddr), base + off, big);
			put(p, FIELD(Elf64_Phdr, p_filesz), sz, big);
			put(p, FIELD(Elf64_Phdr, p_memsz), sz, big);
		} else {
			put(p, FIELD(Elf32_Phdr, p_type), type, big);
			put(p, FIELD(Elf32_Phdr, p_offset), off, big);
			put(p, FIELD(Elf32_Phdr, p_vaddr), base + off, big);
			put(p, FIELD(Elf32_Phdr, p_filesz), sz, big);
			put(p, FIELD(Elf32_Phdr, p_memsz), sz, big);
		}
	}
	if (s->interp)
		memcpy(b + interp_off, s->interp, strlen(s->interp) + 1);
	memcpy(b + str_off, strtab, strlen_);
	for (i = 0, pos = dyn_off; i < n_dyn; i++, pos += dsz) {
		if (is64) {
			put(b + pos, FIELD(Elf64_Dyn, d_tag), dyn[i][0], big);
			put(b + pos, FIELD(Elf64_Dyn, d_un), dyn[i][1], big);
		} else {
			put(b + pos, FIELD(Elf32_Dyn, d_tag), dyn[i][0], big);
			put(b + pos, FIELD(Elf32_Dyn, d_un), dyn[i][1], big);
		}
	}
	write_bytes(path, b, len, 0755);
	return len;
#undef ADDSTR
}

START_TEST(test_synthetic_classes)
{
	static const struct { int cls, big, machine, other; } kinds[] = {
		{ELFCLASS32, 0, EM_386, EM_ARM},
		{ELFCLASS64, 0, EM_AARCH64, EM_X86_64},
		{ELFCLASS32, 1, EM_PPC, EM_MIPS},
		{ELFCLASS64, 1, EM_S390, EM_PPC64},
	};
	size_t k;

	unsetenv("LD_LIBRARY_PATH");
	for (k = 0; k < 4; k++) {
		struct synth prog = {kinds[k].cls, kinds[k].big, kinds[k].machine, ET_EXEC,
		                     "/nonexistent-ld.so", {"libx.so.1", "liby.so", NULL},
		                     "$ORIGIN/lib:${ORIGIN}/lib2", NULL, NULL};
		struct synth x = {kinds[k].cls, kinds[k].big, kinds[k].machine, ET_DYN, NULL,
		                  {"liby.so", NULL, NULL}, NULL, NULL, "libx.so.1"};
		struct synth decoy = x, y = x, root2 = x;
		char *dir = ht_asprintf("%s/k%zu", tmp_root, k), *want_x, *want_y;
		char *pdir = ht_asprintf("%s/lib", dir), *pdir2 = ht_asprintf("%s/lib2", dir);
		char *pprog = ht_asprintf("%s/prog", dir), *px = ht_asprintf("%s/libx.so.1", pdir);
		char *pdecoy = ht_asprintf("%s/libx.so.1", pdir2), *want_i;
		char *pinterp = ht_asprintf("%s/ld-synth.so", dir);
		char *py = ht_asprintf("%s/liby.so", pdir2), *pother = ht_asprintf("%s/other", dir);
		ht_elfdeps *d = NULL;
		ht_err err;
		const char *roots[2];

		make_dir(pdir);
		make_dir(pdir2);
		y.needed[0] = NULL;
		y.soname = NULL;
		decoy.machine = kinds[k].other;  /* another machine, first in the path */
		decoy.needed[0] = NULL;
		synth_write(pprog, &prog);
		synth_write(px, &x);
		synth_write(pdecoy, &decoy);
		synth_write(py, &y);
		/* the interpreter does not exist */
		roots[0] = pprog;
		ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
		ck_assert_msg(strstr(err.msg, "/nonexistent-ld.so"), "%s", err.msg);
		/* without one it resolves: libx.so.1 from lib (the decoy in lib2 is
		 * skipped), liby.so from lib2 through the program's DT_RUNPATH */
		prog.interp = NULL;
		prog.runpath = "$ORIGIN/lib2:${ORIGIN}/lib";
		synth_write(pprog, &prog);
		ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%zu: %s", k, err.msg);
		want_x = realpath(px, NULL);
		want_y = realpath(py, NULL);
		ck_assert_uint_eq(ht_elfdeps_count(d), 2);
		ck_assert_str_eq(ht_elfdeps_soname(d, 0), "libx.so.1");
		ck_assert_str_eq(ht_elfdeps_path(d, 0), want_x);
		ck_assert_str_eq(ht_elfdeps_soname(d, 1), "liby.so");
		ck_assert_str_eq(ht_elfdeps_path(d, 1), want_y);
		ck_assert_int_eq(ht_elfdeps_machine(d), kinds[k].machine);
		ck_assert_ptr_null(ht_elfdeps_interp(d));
		ht_elfdeps_free(d);
		/* an interpreter that exists, outside the search path, whose soname
		 * is libx.so.1: the loader has it already, so libx.so.1 is that file */
		copy_file(px, pinterp, SIZE_MAX);
		prog.interp = pinterp;
		synth_write(pprog, &prog);
		ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%zu: %s", k, err.msg);
		ck_assert_str_eq(ht_elfdeps_interp(d), pinterp);
		want_i = realpath(pinterp, NULL);
		ck_assert_str_eq(ht_elfdeps_interp_path(d), want_i);
		ck_assert_str_eq(dep_path(d, "libx.so.1"), want_i);
		ck_assert_str_eq(dep_path(d, "liby.so"), want_y);
		free(want_i);
		ht_elfdeps_free(d);
		/* roots of two machines */
		root2.machine = kinds[k].other;
		synth_write(pother, &root2);
		roots[1] = pother;
		ck_assert_int_eq(ht_elfdeps_resolve(roots, 2, &d, &err), HYPERTEST_ERR_INVALID);
		ck_assert_msg(strstr(err.msg, pother) && strstr(err.msg, "machine"), "%s", err.msg);
		free(want_x);
		free(want_y);
		free(dir);
		free(pdir);
		free(pdir2);
		free(pprog);
		free(px);
		free(pdecoy);
		free(py);
		free(pother);
		free(pinterp);
	}
}
END_TEST

START_TEST(test_dst_tokens)
{
	struct synth prog = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {"libq.so", NULL, NULL},
	                     NULL, "/nonexistent/$PLATFORM/$LIB:$ORIGINX:${LIB}/q", NULL};
	struct synth q = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {NULL, NULL, NULL}, NULL, NULL,
	                  NULL};
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[] = {tpath("prog")};
	char *want;

	unsetenv("LD_LIBRARY_PATH");
	make_dir(tpath("lib/x86_64-linux-gnu/q"));
	synth_write(tpath("prog"), &prog);
	synth_write(tpath("lib/x86_64-linux-gnu/q/libq.so"), &q);
	/* ${LIB} is relative to the cwd here: run from tmp_root */
	ck_assert(chdir(tmp_root) == 0);
	ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%s", err.msg);
	want = realpath(tpath("lib/x86_64-linux-gnu/q/libq.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libq.so"), want);
	free(want);
	ht_elfdeps_free(d);
	/* $ORIGINX is no token: a directory literally named so */
	make_dir(tpath("$ORIGINX"));
	synth_write(tpath("$ORIGINX/libq.so"), &q);
	ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%s", err.msg);
	want = realpath(tpath("$ORIGINX/libq.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libq.so"), want);
	free(want);
	ht_elfdeps_free(d);
	/* $PLATFORM: x86_64 */
	prog.rpath = "$ORIGIN/$PLATFORM";
	synth_write(tpath("prog"), &prog);
	make_dir(tpath("x86_64"));
	synth_write(tpath("x86_64/libq.so"), &q);
	ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%s", err.msg);
	want = realpath(tpath("x86_64/libq.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libq.so"), want);
	free(want);
	ht_elfdeps_free(d);
}
END_TEST

START_TEST(test_main_program_rpath)
{
	struct synth lib = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {NULL, NULL, NULL}, NULL, NULL,
	                    NULL};
	struct synth prog = {ELFCLASS64, 0, EM_X86_64, ET_EXEC, NULL, {NULL, NULL, NULL}, NULL,
	                     "$ORIGIN/x", NULL};
	struct synth mod = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {"libq.so", NULL, NULL}, NULL,
	                    NULL, NULL};
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[] = {tpath("prog"), tpath("mod.so")};
	char *want;

	unsetenv("LD_LIBRARY_PATH");
	make_dir(tpath("x"));
	synth_write(tpath("x/libq.so"), &lib);
	synth_write(tpath("ld.so"), &lib);
	prog.interp = tpath("ld.so");
	synth_write(tpath("prog"), &prog);
	synth_write(tpath("mod.so"), &mod);
	/* a module loaded by the program: the program's DT_RPATH serves it */
	ck_assert_msg(ht_elfdeps_resolve(roots, 2, &d, &err) == 0, "%s", err.msg);
	want = realpath(tpath("x/libq.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libq.so"), want);
	free(want);
	ht_elfdeps_free(d);
	ck_assert_int_eq(ht_elfdeps_resolve(roots + 1, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	/* its DT_RUNPATH does not */
	prog.runpath = prog.rpath;
	prog.rpath = NULL;
	synth_write(tpath("prog"), &prog);
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 2, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, "libq.so needed by ") && strstr(err.msg, "mod.so"), "%s",
	              err.msg);
}
END_TEST

/* An ancestor's DT_RPATH serves objects without DT_RUNPATH even when that
 * ancestor has a DT_RUNPATH too, unless it is the program; an object with a
 * DT_RUNPATH gets no DT_RPATH at all. */
START_TEST(test_rpath_chain_rules)
{
	struct synth lib = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {NULL, NULL, NULL}, NULL, NULL,
	                    NULL};
	struct synth m = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {"libq.so", NULL, NULL}, NULL,
	                  NULL, NULL};
	struct synth top = {ELFCLASS64, 0, EM_X86_64, ET_DYN, NULL, {"libm.so", NULL, NULL},
	                    "$ORIGIN/y", "$ORIGIN/x", NULL};
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[] = {tpath("top.so")};
	char *want;

	unsetenv("LD_LIBRARY_PATH");
	make_dir(tpath("x"));
	make_dir(tpath("y"));
	synth_write(tpath("x/libq.so"), &lib);
	synth_write(tpath("y/libm.so"), &m);
	synth_write(tpath("ld.so"), &lib);
	synth_write(tpath("top.so"), &top);
	ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%s", err.msg);
	want = realpath(tpath("x/libq.so"), NULL);
	ck_assert_str_eq(dep_path(d, "libq.so"), want);
	free(want);
	ht_elfdeps_free(d);
	/* the same as a program */
	top.interp = tpath("ld.so");
	synth_write(tpath("top.so"), &top);
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, "libq.so needed by "), "%s", err.msg);
	/* libm.so with a DT_RUNPATH of its own (elsewhere) and a plain DT_RPATH above */
	top.interp = NULL;
	top.runpath = NULL;
	top.rpath = "$ORIGIN/y:$ORIGIN/x";
	m.runpath = "/nonexistent";
	synth_write(tpath("top.so"), &top);
	synth_write(tpath("y/libm.so"), &m);
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	m.runpath = NULL;
	synth_write(tpath("y/libm.so"), &m);
	ck_assert_msg(ht_elfdeps_resolve(roots, 1, &d, &err) == 0, "%s", err.msg);
	ht_elfdeps_free(d);
}
END_TEST

/* ---- broken files ----------------------------------------------------------------- */

START_TEST(test_not_elf)
{
	ht_elfdeps *d = NULL;
	ht_err err;
	const char *roots[] = {tpath("text")};

	write_text(roots[0], "#!/bin/sh\necho not an ELF file at all\n");
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_INVALID);
	ck_assert_ptr_null(d);
	ck_assert_msg(strstr(err.msg, roots[0]) && strstr(err.msg, "not an ELF file"), "%s",
	              err.msg);
	write_bytes(roots[0], "\177EL", 3, 0755);
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_INVALID);
	roots[0] = tpath("missing");
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, roots[0]) != NULL, "%s", err.msg);
	roots[0] = tmp_root;
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_INVALID);
}
END_TEST

START_TEST(test_truncated)
{
	ht_elfdeps *full, *d;
	char *data;
	size_t len, cut, n_err = 0;
	ht_err err;
	const char *roots[] = {tpath("ls")};

	full = resolve1("/bin/ls");
	ck_assert(ht_read_file("/bin/ls", &data, &len, &err) == 0);
	/* 100 bytes: the ELF header and part of the program headers */
	write_bytes(roots[0], data, 100, 0755);
	d = NULL;
	ck_assert_int_eq(ht_elfdeps_resolve(roots, 1, &d, &err), HYPERTEST_ERR_INVALID);
	ck_assert_ptr_null(d);
	ck_assert_msg(strstr(err.msg, "truncated") && strstr(err.msg, "/ls"), "%s", err.msg);
	/* every cut either fails clearly or reads everything it needs */
	for (cut = 0; cut < len; cut += cut < 4096 ? 61 : 4093) {
		int rc;
		write_bytes(roots[0], data, cut, 0755);
		d = NULL;
		rc = ht_elfdeps_resolve(roots, 1, &d, &err);
		if (rc != 0) {
			ck_assert_msg(rc == HYPERTEST_ERR_INVALID, "cut %zu: %d %s", cut, rc, err.msg);
			ck_assert_msg(strstr(err.msg, "/ls: ") != NULL, "cut %zu: %s", cut, err.msg);
			n_err++;
		} else {
			ck_assert_uint_eq(ht_elfdeps_count(d), ht_elfdeps_count(full));
			ht_elfdeps_free(d);
		}
	}
	ck_assert_uint_gt(n_err, 10);
	free(data);
	ht_elfdeps_free(full);
}
END_TEST

START_TEST(test_corrupt_headers)
{
	char *data;
	size_t len, i, hdr;
	ht_err err;
	const char *roots[] = {tpath("bad")};
	unsigned seed = 12345;

	ck_assert(ht_read_file("/bin/ls", &data, &len, &err) == 0);
	hdr = 64 + 13 * 56 < len ? 64 + 13 * 56 : len;
	for (i = 0; i < 400; i++) {
		ht_elfdeps *d = NULL;
		unsigned char *c = malloc(len);
		int rc, k;
		memcpy(c, data, len);
		for (k = 0; k < 4; k++) {
			seed = seed * 1103515245u + 12345u;
			c[16 + (seed >> 8) % (hdr - 16)] = (unsigned char)(seed >> 20);
		}
		write_bytes(roots[0], c, len, 0755);
		free(c);
		rc = ht_elfdeps_resolve(roots, 1, &d, &err);
		ck_assert_msg(rc == 0 || rc == HYPERTEST_ERR_INVALID || rc == HYPERTEST_ERR_NOT_FOUND,
		              "%zu: %d %s", i, rc, err.msg);
		if (rc == HYPERTEST_ERR_INVALID)
			ck_assert_msg(strstr(err.msg, "/bad") != NULL, "%s", err.msg);
		ht_elfdeps_free(d);
	}
	free(data);
}
END_TEST

/* ---- machines ------------------------------------------------------------------- */

START_TEST(test_machine_arch)
{
	ck_assert_str_eq(ht_elf_machine_arch(EM_X86_64), "amd64");
	ck_assert_str_eq(ht_elf_machine_arch(EM_AARCH64), "arm64");
	ck_assert_str_eq(ht_elf_machine_arch(EM_386), "386");
	ck_assert_str_eq(ht_elf_machine_arch(EM_ARM), "arm");
	ck_assert_str_eq(ht_elf_machine_arch(EM_PPC64), "ppc64le");
	ck_assert_str_eq(ht_elf_machine_arch(EM_S390), "s390x");
	ck_assert_str_eq(ht_elf_machine_arch(EM_RISCV), "riscv64");
	ck_assert_ptr_null(ht_elf_machine_arch(EM_NONE));
	ck_assert_ptr_null(ht_elf_machine_arch(EM_SPARC));
	ck_assert_ptr_null(ht_elf_machine_arch(-1));
}
END_TEST

static Suite *elfdeps_suite(void)
{
	Suite *s = suite_create("elfdeps");
	TCase *t = tcase_create("system");
	tcase_add_checked_fixture(t, tmp_setup, tmp_teardown);
	tcase_add_test(t, test_program_libc);
	tcase_add_test(t, test_interp_as_written);
	tcase_add_test(t, test_libcurl);
	tcase_add_test(t, test_machine_arch);
	suite_add_tcase(s, t);

	t = tcase_create("built");
	tcase_set_timeout(t, 120);
	tcase_add_checked_fixture(t, gcc_setup, tmp_teardown);
	tcase_add_test(t, test_rpath_origin_chain);
	tcase_add_test(t, test_runpath_own_only);
	tcase_add_test(t, test_ld_library_path_precedence);
	tcase_add_test(t, test_nodefaultlib);
	tcase_add_test(t, test_needed_path_and_missing);
	tcase_add_test(t, test_ld_so_cache);
	tcase_add_test(t, test_static);
	suite_add_tcase(s, t);

	t = tcase_create("files");
	tcase_set_timeout(t, 120);
	tcase_add_checked_fixture(t, tmp_setup, tmp_teardown);
	tcase_add_test(t, test_synthetic_classes);
	tcase_add_test(t, test_dst_tokens);
	tcase_add_test(t, test_main_program_rpath);
	tcase_add_test(t, test_rpath_chain_rules);
	tcase_add_test(t, test_not_elf);
	tcase_add_test(t, test_truncated);
	tcase_add_test(t, test_corrupt_headers);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(elfdeps_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
