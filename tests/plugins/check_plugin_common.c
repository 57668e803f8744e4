/*
 * check_plugin_common.c - unit tests of plugins/common (libhtplugin.la,
 * linked in): the growable string, path_join, write_all, the monotonic
 * clock, descriptors above stdio, the error convention (htp_errorf), errors
 * through the core's upcall (htp_fail) and registration (htp_register).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../plugins/common/htplugin.h"

/* ---- growable string ------------------------------------------------------------ */

START_TEST(buf_grows_and_hands_over)
{
	htp_buf b = {0};
	for (int i = 0; i < 1000; i++)
		htp_buf_add(&b, "0123456789", 10);
	ck_assert_uint_eq(b.len, 10000);
	ck_assert_uint_ge(b.cap, 10001);
	ck_assert_int_eq(b.data[b.len], '\0');
	htp_buf_str(&b, "|");
	htp_buf_addf(&b, "%d-%s", 42, "x");
	ck_assert_str_eq(b.data + 10000, "|42-x");
	htp_buf_add(&b, "a\0b", 3); /* bytes, NULs included */
	ck_assert_uint_eq(b.len, 10008);
	char *s = htp_buf_take(&b);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(memcmp(s + 9990, "0123456789|42-xa\0b", 19), 0);
	/* the buffer was emptied: nothing of the old string is left in it */
	ck_assert_ptr_null(b.data);
	ck_assert_uint_eq(b.len, 0);
	free(s);
}
END_TEST

/* htp_buf_addf formats into the buffer's room: text longer than the room
 * (at the start, and after what is there) comes out whole, as snprintf
 * writes it. */
START_TEST(buf_addf_longer_than_room)
{
	char big[3000], want[10000];
	htp_buf b = {0};
	for (size_t i = 0; i < sizeof big - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof big - 1] = '\0';
	ck_assert_int_eq(htp_buf_addf(&b, "<%s>", big), 0);
	ck_assert_int_eq(htp_buf_addf(&b, "%d", 7), 0);
	ck_assert_int_eq(htp_buf_addf(&b, "[%.*s]", 200, big), 0);
	ck_assert_int_eq(htp_buf_addf(&b, "%s|%s", big, big), 0);
	snprintf(want, sizeof want, "<%s>7[%.*s]%s|%s", big, 200, big, big, big);
	ck_assert_uint_eq(b.len, strlen(want));
	ck_assert_str_eq(b.data, want);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(htp_buf_addf(&b, "%03d", i), 0);
	ck_assert_uint_eq(b.len, strlen(want) + 600);
	ck_assert_int_eq(memcmp(b.data + strlen(want), "000001002", 9), 0);
	ck_assert_int_eq(b.data[b.len], '\0');
	htp_buf_free(&b);
}
END_TEST

START_TEST(buf_take_empty_and_nomem)
{
	htp_buf b = {0};
	char *s = htp_buf_take(&b);
	ck_assert_str_eq(s, "");
	free(s);
	/* once memory ran out, adds are ignored and take says so with NULL */
	htp_buf_str(&b, "kept");
	b.nomem = 1;
	htp_buf_str(&b, "dropped");
	ck_assert_str_eq(b.data, "kept");
	ck_assert_ptr_null(htp_buf_take(&b));
	ck_assert_ptr_null(b.data);
	htp_buf_str(&b, "again");
	htp_buf_free(&b);
	ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(strv_len_and_free)
{
	char **v = calloc(3, sizeof *v);
	v[0] = strdup("a");
	v[1] = strdup("b");
	ck_assert_uint_eq(htp_strv_len(v), 2);
	ck_assert_uint_eq(htp_strv_len(NULL), 0);
	htp_strv_free(v);
	htp_strv_free(NULL);
}
END_TEST

/* ---- paths ------------------------------------------------------------------------ */

START_TEST(path_join_cases)
{
	static const struct {
		const char *dir, *rel, *want;
	} cases[] = {
		{"a", "b", "a/b"},          {"a/", "b", "a/b"},   {"a///", "b/c", "a/b/c"},
		{"/", "etc", "/etc"},       {"//", "etc", "/etc"}, {".", "b", "b"},
		{"a/b", ".", "a/b"},        {"/x", "..", "/x/.."}, {"a", "", "a/"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = htp_path_join(cases[i].dir, cases[i].rel);
		ck_assert_msg(s && !strcmp(s, cases[i].want), "join('%s', '%s') = '%s', want '%s'",
		              cases[i].dir, cases[i].rel, s ? s : "(null)", cases[i].want);
		free(s);
	}
}
END_TEST

/* ---- write_all ------------------------------------------------------------------------ */

enum { BIG = 1 << 20 };

struct reader {
	int fd;
	size_t got;
	int ok;
};

static void *read_slowly(void *arg)
{
	struct reader *r = arg;
	char buf[4096];
	ssize_t n;
	r->ok = 1;
	while ((n = read(r->fd, buf, sizeof buf)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			r->ok &= buf[i] == (char)((r->got + (size_t)i) % 251);
		r->got += (size_t)n;
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* A non-blocking pipe much smaller than the data: every EAGAIN is waited
 * out, and the reader gets every byte in order. */
START_TEST(write_all_nonblocking_pipe)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK), 0);
	char *data = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		data[i] = (char)(i % 251);
	struct reader r = {p[0], 0, 0};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, read_slowly, &r), 0);
	ck_assert_int_eq(htp_write_all(p[1], data, BIG), 0);
	close(p[1]);
	pthread_join(t, NULL);
	close(p[0]);
	ck_assert_uint_eq(r.got, BIG);
	ck_assert(r.ok);
	free(data);
}
END_TEST

START_TEST(write_all_reports_errno)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(htp_write_all(p[1], "x", 1), EPIPE);
	close(p[1]);
	ck_assert_int_eq(htp_write_all(p[1], "x", 1), EBADF);
	ck_assert_int_eq(htp_write_all(p[1], "", 0), 0); /* nothing to write: no call */
}
END_TEST

START_TEST(fd_above_stdio)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_gt(fd, 2);
	ck_assert_int_eq(htp_fd_above_stdio(fd), fd); /* already above: itself */
	int saved = dup(0);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(fd, 0), 0);
	int moved = htp_fd_above_stdio(0);
	ck_assert_int_gt(moved, 2);
	ck_assert_int_eq(fcntl(0, F_GETFD), -1); /* 0 was closed */
	ck_assert_int_ne(fcntl(moved, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(dup2(saved, 0), 0);
	close(saved);
	close(moved);
	close(fd);
	ck_assert_int_eq(htp_fd_above_stdio(-1), -1);
}
END_TEST

/* ---- clock ------------------------------------------------------------------------------ */

START_TEST(clock_is_monotonic_milliseconds)
{
	struct timespec ts;
	ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	int64_t a = htp_now_ms();
	ck_assert_int_ge(a, before); /* the same clock, in milliseconds */
	struct timespec nap = {0, 20 * 1000000};
	ck_assert_int_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, NULL), 0);
	int64_t b = htp_now_ms();
	ck_assert_int_ge(b - a, 20); /* at least the time slept, never less */
	ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	ck_assert_int_le(b, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

START_TEST(errorf_convention)
{
	char *error = NULL;
	ck_assert_int_eq(htp_errorf(&error, HYPERTEST_ERR_CONFIG, "option '%s': %d", "k", 7),
	                 HYPERTEST_ERR_CONFIG);
	ck_assert_str_eq(error, "option 'k': 7");
	free(error);
	/* no place for the message: the code alone */
	ck_assert_int_eq(htp_errorf(NULL, HYPERTEST_ERR_NOMEM, "x"), HYPERTEST_ERR_NOMEM);
	char *s = htp_strdupf("%s=%zu", "n", (size_t)3);
	ck_assert_str_eq(s, "n=3");
	free(s);
}
END_TEST

static int seen_code, seen_calls;
static char seen_msg[256];
static hypertest_core *seen_core;

static void fake_set_error(hypertest_core *core, int code, const char *message)
{
	seen_core = core;
	seen_code = code;
	seen_calls++;
	snprintf(seen_msg, sizeof seen_msg, "%s", message);
}

static void fake_log(hypertest_core *core, int level, const char *message)
{
	(void)core, (void)level, (void)message;
}

static int seen_kind;
static const char *seen_name;
static const hypertest_dispatch *seen_ops;

static int fake_register(hypertest_core *core, int kind, const char *name,
                         const char *description, const hypertest_dispatch *ops)
{
	(void)description;
	seen_core = core;
	seen_kind = kind;
	seen_name = name;
	seen_ops = ops;
	return 5;
}

START_TEST(fail_reports_through_the_core)
{
	hypertest_core *core = (hypertest_core *)&seen_calls; /* any address */
	hypertest_upcalls up;
	memset(&up, 0, sizeof up);
	up.set_error = fake_set_error;
	seen_calls = 0;
	ck_assert_int_eq(htp_fail(&up, core, HYPERTEST_ERR_NOT_FOUND, "'%s': %s", "f", "gone"),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_int_eq(seen_calls, 1);
	ck_assert_ptr_eq(seen_core, core);
	ck_assert_int_eq(seen_code, HYPERTEST_ERR_NOT_FOUND);
	ck_assert_str_eq(seen_msg, "'f': gone");
	/* an older core without set_error: the code still comes back */
	up.set_error = NULL;
	ck_assert_int_eq(htp_fail(&up, core, HYPERTEST_ERR_CONFIG, "x"), HYPERTEST_ERR_CONFIG);
	ck_assert_int_eq(seen_calls, 1);
}
END_TEST

static int op_create(hypertest_core *core, const char *options_json, void **self)
{
	(void)core, (void)options_json;
	*self = NULL;
	return 0;
}

START_TEST(register_binds_and_registers)
{
	static const hypertest_dispatch ops[] = {HYPERTEST_OP(HYPERTEST_OP_CREATE, op_create),
	                                         HYPERTEST_OP_END};
	const hypertest_dispatch table[] = {
		{HYPERTEST_UP_LOG, (hypertest_fn)fake_log},
		{HYPERTEST_UP_SET_ERROR, (hypertest_fn)fake_set_error},
		{HYPERTEST_UP_REGISTER, (hypertest_fn)fake_register},
		{9999, (hypertest_fn)fake_log}, /* an upcall of a newer core: ignored */
		{0, NULL}};
	hypertest_core *core = (hypertest_core *)&seen_kind;
	hypertest_upcalls up;
	memset(&up, 0, sizeof up);
	ck_assert_int_eq(htp_register(&up, core, table, HYPERTEST_KIND_RUNNER, "r", "d", ops), 5);
	ck_assert_ptr_eq(up.set_error, fake_set_error);
	ck_assert_ptr_eq(seen_core, core);
	ck_assert_int_eq(seen_kind, HYPERTEST_KIND_RUNNER);
	ck_assert_str_eq(seen_name, "r");
	ck_assert_ptr_eq(seen_ops, ops);
	/* a core without the register upcall: ABI error, nothing registered */
	const hypertest_dispatch old[] = {{HYPERTEST_UP_LOG, (hypertest_fn)fake_log},
	                                  {HYPERTEST_UP_SET_ERROR, (hypertest_fn)fake_set_error},
	                                  {0, NULL}};
	seen_name = NULL;
	ck_assert_int_eq(htp_register(&up, core, old, HYPERTEST_KIND_RUNNER, "r", "d", ops),
	                 HYPERTEST_ERR_ABI);
	ck_assert_ptr_null(seen_name);
}
END_TEST

/* htp_read_file: the whole file within max; one byte more is EFBIG; a
 * FIFO without a writer is refused (EINVAL) instead of blocking the open. */
START_TEST(read_file_cap_and_fifo)
{
	char dir[] = "/tmp/ck-htp-XXXXXX", path[64], fifo[64];
	char *data = NULL;
	size_t len = 0;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(fifo, sizeof fifo, "%s/fifo", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(htp_write_all(fd, "0123456789", 10), 0);
	close(fd);
	ck_assert_int_eq(htp_read_file(path, 10, &data, &len), 0);
	ck_assert_uint_eq(len, 10);
	ck_assert_str_eq(data, "0123456789");
	free(data);
	ck_assert_int_eq(htp_read_file(path, 9, &data, &len), EFBIG);
	ck_assert_ptr_null(data);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(htp_read_file(fifo, 10, &data, &len), EINVAL);
	ck_assert_ptr_null(data);
	unlink(fifo);
	unlink(path);
	rmdir(dir);
}
END_TEST

static Suite *plugin_common_suite(void)
{
	Suite *s = suite_create("plugin-common");
	TCase *tc = tcase_create("buffer");
	tcase_add_test(tc, buf_grows_and_hands_over);
	tcase_add_test(tc, buf_addf_longer_than_room);
	tcase_add_test(tc, buf_take_empty_and_nomem);
	tcase_add_test(tc, strv_len_and_free);
	suite_add_tcase(s, tc);
	tc = tcase_create("paths");
	tcase_add_test(tc, path_join_cases);
	suite_add_tcase(s, tc);
	tc = tcase_create("write_all");
	tcase_add_test(tc, write_all_nonblocking_pipe);
	tcase_add_test(tc, write_all_reports_errno);
	tcase_add_test(tc, fd_above_stdio);
	tcase_add_test(tc, read_file_cap_and_fifo);
	suite_add_tcase(s, tc);
	tc = tcase_create("clock");
	tcase_add_test(tc, clock_is_monotonic_milliseconds);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_test(tc, errorf_convention);
	tcase_add_test(tc, fail_reports_through_the_core);
	tcase_add_test(tc, register_binds_and_registers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(plugin_common_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
