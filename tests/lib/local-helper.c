/*
 * local-helper.c - a stand-in for hypertest-function in the tests of the
 * local provider.
 *
 * Started with HYPERTEST_LOCAL_ZYGOTE_FD, it does what hypertest-function
 * does: it loads the provider module ($HT_PROVIDER_LOCAL_SO, else the one
 * of the build tree), creates an instance and calls its SERVE operation,
 * which then serves as the zygote; each forked child runs the payload
 * below through the FUNCTION_HANDLE upcall, its output collected as the
 * response.  Otherwise it reads the payload on stdin itself.
 *
 * The payload's first line says what to do:
 *
 *   echo MS            sleep MS milliseconds, then write the whole payload back
 *   gate FIFO          read one byte from FIFO, then write the whole payload back
 *   big N              write N bytes of 'x'
 *   crash              die of SIGSEGV
 *   exit CODE TEXT     write TEXT to stderr, exit with CODE
 *   flood N            write N bytes to stderr ending in "<END>", exit 1
 *   silent             exit 0 without a response
 *   noread             answer "ok" without reading the rest of the payload
 *   env [MS]           report cwd, pid, parent, process group, the environment,
 *                      SIGPIPE's disposition and the signal mask (after MS
 *                      milliseconds)
 *   write PATH         try to create PATH; answer "ok" or the errno text
 *   exists PATH        answer "yes" or "no"
 *   rm PATH            unlink PATH; answer "ok" or the errno text
 *   alloc MB           allocate and touch MB megabytes; exit 4 if that fails
 *   hang FILE          append a byte to FILE every 20 ms, forever
 *   hang2 FILE         the same from a child in the same process group,
 *                      while the helper itself sleeps
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

static char *payload;
static size_t payload_len, payload_cap;
/* In the zygote's children: where the output goes (the response). */
static hypertest_buffer *response;
static int emitted;

static void read_some(size_t want)
{
	while (payload_len < want) {
		if (payload_len + 1 >= payload_cap) {
			payload_cap = payload_cap ? payload_cap * 2 : 65536;
			payload = realloc(payload, payload_cap);
			if (!payload)
				exit(5);
		}
		ssize_t r = read(0, payload + payload_len, payload_cap - payload_len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		payload_len += (size_t)r;
	}
	if (payload)
		payload[payload_len] = '\0';
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			exit(6);
		s += w;
		n -= (size_t)w;
	}
}

/* Output: stdout, or the response in a child of the zygote. */
static void emit(const char *s, size_t n)
{
	emitted = 1;
	if (response)
		fake_up_buffer_append(response, s, n);
	else
		write_all(1, s, n);
}

static void emitf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emitf(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0)
		emit(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void heartbeat(const char *file)
{
	for (;;) {
		int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			write_all(fd, "x", 1);
			close(fd);
		}
		sleep_ms(20);
	}
}

static void report_env(void)
{
	char cwd[4096];
	const char *names[] = {"HOME", "TMPDIR", "PWD", "HYPERTEST_FUNCTION_CONFIG",
	                       "HYPERTEST_PLUGIN_PATH", "HYPERTEST_LOCAL_BUCKET", "LOCAL_TEST_MARK",
	                       "HYPERTEST_LOCAL_ZYGOTE_FD", "LD_BIND_NOW"};
	emitf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
	emitf("pid=%ld\nppid=%ld\npgid=%ld\n", (long)getpid(), (long)getppid(), (long)getpgid(0));
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *v = getenv(names[i]);
		emitf("%s=%s\n", names[i], v ? v : "(unset)");
	}
	struct sigaction sa;
	sigaction(SIGPIPE, NULL, &sa);
	emitf("sigpipe=%s\n", sa.sa_handler == SIG_DFL ? "default" : "changed");
	sigset_t mask;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	emitf("blocked=%d\n", sigismember(&mask, SIGTERM) || sigismember(&mask, SIGINT) ||
	                          sigismember(&mask, SIGCHLD));
}

/* Run the payload's command: the exit status. */
static int run(void)
{
	char cmd[16] = "", arg[4096] = "";
	long n = 0;
	sscanf(payload ? payload : "", "%15s", cmd);
	if (!strcmp(cmd, "noread")) {
		emit("ok", 2);
		return 0;
	}
	read_some((size_t)-1);
	const char *rest = payload + strlen(cmd);
	if (!strcmp(cmd, "echo")) {
		sscanf(rest, "%ld", &n);
		sleep_ms(n);
		emit(payload, payload_len);
	} else if (!strcmp(cmd, "gate") || !strcmp(cmd, "genv")) {
		/* wait for one byte from the FIFO, then echo (gate) or report_env */
		char byte;
		sscanf(rest, " %4095[^\n]", arg);
		int fd = open(arg, O_RDONLY | O_CLOEXEC);
		while (fd >= 0 && read(fd, &byte, 1) < 0 && errno == EINTR)
			;
		if (!strcmp(cmd, "genv"))
			report_env();
		else
			emit(payload, payload_len);
	} else if (!strcmp(cmd, "big")) {
		sscanf(rest, "%ld", &n);
		char *b = malloc((size_t)n);
		memset(b, 'x', (size_t)n);
		emit(b, (size_t)n);
		free(b);
	} else if (!strcmp(cmd, "crash")) {
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	} else if (!strcmp(cmd, "exit")) {
		sscanf(rest, "%ld %4095[^\n]", &n, arg);
		write_all(2, arg, strlen(arg));
		return (int)n;
	} else if (!strcmp(cmd, "flood")) {
		sscanf(rest, "%ld", &n);
		for (long i = 0; i < n - 5; i++)
			write_all(2, i % 100 == 99 ? "\n" : "e", 1);
		write_all(2, "<END>", 5);
		return 1;
	} else if (!strcmp(cmd, "silent")) {
		return 0;
	} else if (!strcmp(cmd, "env")) {
		report_env();
		if (sscanf(rest, "%ld", &n) == 1)
			sleep_ms(n);
	} else if (!strcmp(cmd, "write")) {
		sscanf(rest, " %4095[^\n]", arg);
		int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		emitf("%s", fd >= 0 ? "ok" : strerror(errno));
	} else if (!strcmp(cmd, "tree")) {
		/* PATH/d/f */
		char sub[4200];
		int fd = -1;
		sscanf(rest, " %4095[^\n]", arg);
		snprintf(sub, sizeof sub, "%s/d", arg);
		if (mkdir(arg, 0755) == 0 && mkdir(sub, 0755) == 0) {
			snprintf(sub, sizeof sub, "%s/d/f", arg);
			fd = open(sub, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		}
		emitf("%s", fd >= 0 ? "ok" : strerror(errno));
		if (fd >= 0)
			close(fd);
	} else if (!strcmp(cmd, "exists")) {
		struct stat st;
		sscanf(rest, " %4095[^\n]", arg);
		emitf("%s", lstat(arg, &st) == 0 ? "yes" : "no");
	} else if (!strcmp(cmd, "rm")) {
		sscanf(rest, " %4095[^\n]", arg);
		emitf("%s", unlink(arg) == 0 ? "ok" : strerror(errno));
	} else if (!strcmp(cmd, "alloc")) {
		sscanf(rest, "%ld", &n);
		char *b = malloc((size_t)n << 20);
		if (!b) {
			write_all(2, "alloc failed", 12);
			return 4;
		}
		memset(b, 1, (size_t)n << 20);
		emit("allocated", 9);
	} else if (!strcmp(cmd, "hang") || !strcmp(cmd, "hang2")) {
		sscanf(rest, " %4095[^\n]", arg);
		if (!strcmp(cmd, "hang2") && fork() != 0)
			for (;;)
				pause();
		heartbeat(arg);
	} else {
		write_all(2, "unknown command", 15);
		return 2;
	}
	return 0;
}

/* ---- zygote mode: the provider module's SERVE, with fake-core.c's upcalls ---- */

/* Its log goes to stderr, as hypertest-function's does. */
static void up_log(hypertest_core *core, int level, const char *message)
{
	(void)core;
	dprintf(2, "%s%s\n", level == HYPERTEST_LOG_ERROR ? "error: " : "", message);
}

/* In a child of the zygote: the payload SERVE read; what the command
 * outputs is the response.  Exit statuses other than 0, and no output at
 * all, end the process here as they would without the zygote. */
static int up_function_handle(hypertest_function *fn, const char *data, size_t len,
                              hypertest_buffer *resp)
{
	(void)fn;
	payload = malloc(len + 1);
	if (!payload)
		_exit(5);
	memcpy(payload, data, len);
	payload[len] = '\0';
	payload_len = payload_cap = len;
	response = resp;
	int code = run();
	if (code != 0 || !emitted)
		_exit(code);
	return 0;
}

static const hypertest_dispatch upcalls[] = {
	{HYPERTEST_UP_LOG, (hypertest_fn)up_log},
	{HYPERTEST_UP_FUNCTION_HANDLE, (hypertest_fn)up_function_handle},
	{0, NULL}};

static int zygote(void)
{
	const char *so = getenv("HT_PROVIDER_LOCAL_SO");
	if (!so || !*so)
		so = HT_TOP_BUILDDIR "/plugins/.libs/provider-local.so";
	void *module = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!module) {
		dprintf(2, "local-helper: %s\n", dlerror());
		return 3;
	}
	hypertest_plugin_init_fn init;
	*(void **)&init = dlsym(module, "hypertest_plugin_init");
	static hypertest_core core;
	core.project_dir = "/";
	if (!init || init(&core, fake_upcalls(upcalls)) != 0) {
		dprintf(2, "local-helper: cannot initialize %s\n", so);
		return 3;
	}
	hypertest_OP_CREATE_fn create = (hypertest_OP_CREATE_fn)fake_find_op(HYPERTEST_OP_CREATE);
	hypertest_OP_DESTROY_fn destroy = (hypertest_OP_DESTROY_fn)fake_find_op(HYPERTEST_OP_DESTROY);
	hypertest_PROVIDER_SERVE_fn serve =
	    (hypertest_PROVIDER_SERVE_fn)fake_find_op(HYPERTEST_PROVIDER_SERVE);
	void *self = NULL;
	if (!create || !destroy || !serve || create(&core, "{}", &self) != 0)
		return 3;
	hypertest_function fn;
	int rc = serve(self, &fn);
	destroy(self);
	return rc ? 1 : 0;
}

int main(void)
{
	const char *z = getenv("HYPERTEST_LOCAL_ZYGOTE_FD");
	if (z && *z)
		return zygote();
	read_some(256);
	return run();
}
