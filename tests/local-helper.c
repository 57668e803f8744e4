/*
 * local-helper.c - a stand-in for hypertest-function in the tests of the
 * local provider.  The payload's first line says what to do:
 *
 *   echo MS            sleep MS milliseconds, then write the whole payload back
 *   gate FIFO          read one byte from FIFO, then write the whole payload back
 *   big N              write N bytes of 'x'
 *   crash              die of SIGSEGV
 *   exit CODE TEXT     write TEXT to stderr, exit with CODE
 *   flood N            write N bytes to stderr ending in "<END>", exit 1
 *   silent             exit 0 without a response
 *   noread             answer "ok" without reading the rest of the payload
 *   env                report cwd, pid, process group and the environment
 *   write PATH         try to create PATH; answer "ok" or the errno text
 *   exists PATH        answer "yes" or "no"
 *   rm PATH            unlink PATH; answer "ok" or the errno text
 *   alloc MB           allocate and touch MB megabytes; exit 4 if that fails
 *   hang FILE          append a byte to FILE every 20 ms, forever
 *   hang2 FILE         the same from a child in the same process group,
 *                      while the helper itself sleeps
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *payload;
static size_t payload_len, payload_cap;

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
	                       "HYPERTEST_PLUGIN_PATH", "HYPERTEST_LOCAL_BUCKET", "LOCAL_TEST_MARK"};
	printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
	printf("pid=%ld\npgid=%ld\n", (long)getpid(), (long)getpgid(0));
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *v = getenv(names[i]);
		printf("%s=%s\n", names[i], v ? v : "(unset)");
	}
	struct sigaction sa;
	sigaction(SIGPIPE, NULL, &sa);
	printf("sigpipe=%s\n", sa.sa_handler == SIG_DFL ? "default" : "changed");
	sigset_t mask;
	sigprocmask(SIG_SETMASK, NULL, &mask);
	printf("blocked=%d\n", sigismember(&mask, SIGTERM) || sigismember(&mask, SIGINT));
	fflush(stdout);
}

int main(void)
{
	read_some(256);
	char cmd[16] = "", arg[4096] = "";
	long n = 0;
	sscanf(payload ? payload : "", "%15s", cmd);
	if (!strcmp(cmd, "noread")) {
		write_all(1, "ok", 2);
		return 0;
	}
	read_some((size_t)-1);
	const char *rest = payload + strlen(cmd);
	if (!strcmp(cmd, "echo")) {
		sscanf(rest, "%ld", &n);
		sleep_ms(n);
		write_all(1, payload, payload_len);
	} else if (!strcmp(cmd, "gate")) {
		char byte;
		sscanf(rest, " %4095[^\n]", arg);
		int fd = open(arg, O_RDONLY | O_CLOEXEC);
		while (fd >= 0 && read(fd, &byte, 1) < 0 && errno == EINTR)
			;
		write_all(1, payload, payload_len);
	} else if (!strcmp(cmd, "big")) {
		sscanf(rest, "%ld", &n);
		char *b = malloc((size_t)n);
		memset(b, 'x', (size_t)n);
		write_all(1, b, (size_t)n);
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
	} else if (!strcmp(cmd, "write")) {
		sscanf(rest, " %4095[^\n]", arg);
		int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		printf("%s", fd >= 0 ? "ok" : strerror(errno));
		fflush(stdout);
	} else if (!strcmp(cmd, "exists")) {
		struct stat st;
		sscanf(rest, " %4095[^\n]", arg);
		printf("%s", lstat(arg, &st) == 0 ? "yes" : "no");
		fflush(stdout);
	} else if (!strcmp(cmd, "rm")) {
		sscanf(rest, " %4095[^\n]", arg);
		printf("%s", unlink(arg) == 0 ? "ok" : strerror(errno));
		fflush(stdout);
	} else if (!strcmp(cmd, "alloc")) {
		sscanf(rest, "%ld", &n);
		char *b = malloc((size_t)n << 20);
		if (!b) {
			write_all(2, "alloc failed", 12);
			return 4;
		}
		memset(b, 1, (size_t)n << 20);
		write_all(1, "allocated", 9);
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
