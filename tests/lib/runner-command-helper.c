/*
 * runner-command-helper - test helper for check_runner_command: a program
 * that behaves as a test tool would (exit codes, signals, floods of output,
 * descendants that outlive it), one behaviour per first argument.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void put(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			exit(3);
		s += w;
		n -= (size_t)w;
	}
}

/* Write our pid to path atomically (write a temporary file, then rename). */
static void write_pid(const char *path)
{
	char tmp[4096], text[32];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	snprintf(text, sizeof text, "%ld\n", (long)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		exit(4);
}

/* grandchild/escape: a child that keeps stdout and stderr open for a minute
 * while its parent exits at once. */
static int leave_child(const char *pidfile, int escape)
{
	int sync[2];
	if (pipe(sync) != 0)
		return 5;
	pid_t pid = fork();
	if (pid < 0)
		return 5;
	if (pid == 0) {
		if (escape)
			setsid();
		write_pid(pidfile);
		put(sync[1], "x");
		sleep(60);
		put(1, "late\n");
		_exit(0);
	}
	char c;
	if (read(sync[0], &c, 1) != 1)
		return 5;
	put(1, "parent done\n");
	return 0;
}

static void flood(long long out, long long err)
{
	static char o[65536], e[65536];
	memset(o, 'o', sizeof o);
	memset(e, 'e', sizeof e);
	while (out > 0 || err > 0) {
		size_t n = out < (long long)sizeof o ? (size_t)out : sizeof o;
		size_t m = err < (long long)sizeof e ? (size_t)err : sizeof e;
		if (n && write(1, o, n) != (ssize_t)n)
			exit(3);
		if (m && write(2, e, m) != (ssize_t)m)
			exit(3);
		out -= (long long)n;
		err -= (long long)m;
	}
}

static void info(int argc, char **argv)
{
	char line[4096];
	struct sigaction sa;
	char buf[256];
	ssize_t got = read(0, buf, sizeof buf);
	sigaction(SIGPIPE, NULL, &sa);
	snprintf(line, sizeof line, "own_group=%d\nstdin=%zd\nsigpipe=%s\n", getpgrp() == getpid(),
	         got, sa.sa_handler == SIG_IGN ? "ignored" : "default");
	put(1, line);
	for (int i = 2; i < argc; i++) {
		size_t len = strlen(argv[i]);
		int count = 0;
		for (char **e = environ; *e; e++)
			count += !strncmp(*e, argv[i], len) && (*e)[len] == '=';
		const char *v = getenv(argv[i]);
		snprintf(line, sizeof line, "%s=%s (%d)\n", argv[i], v ? v : "<unset>", count);
		put(1, line);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "exit") && argc >= 3) { /* exit CODE [STDERR [STDOUT]] */
		if (argc > 4)
			put(1, argv[4]);
		if (argc > 3)
			put(2, argv[3]);
		return atoi(argv[2]);
	}
	if (!strcmp(mode, "cat") && argc >= 3) { /* cat FILE [FD [CODE]] */
		FILE *f = fopen(argv[2], "rb");
		if (!f) {
			perror(argv[2]);
			return 2;
		}
		int fd = argc > 3 ? atoi(argv[3]) : 1;
		char buf[4096];
		size_t n;
		while ((n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
			buf[n] = '\0';
			if (write(fd, buf, n) != (ssize_t)n)
				return 3;
		}
		return argc > 4 ? atoi(argv[4]) : 0;
	}
	if (!strcmp(mode, "segv")) { /* segv [STDERR] */
		struct rlimit no_core = {0, 0};
		setrlimit(RLIMIT_CORE, &no_core);
		if (argc > 2)
			put(2, argv[2]);
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
		return 1;
	}
	if (!strcmp(mode, "flood") && argc == 4) { /* flood STDOUT_BYTES STDERR_BYTES */
		flood(atoll(argv[2]), atoll(argv[3]));
		return 0;
	}
	if (!strcmp(mode, "grandchild") && argc == 3)
		return leave_child(argv[2], 0);
	if (!strcmp(mode, "escape") && argc == 3)
		return leave_child(argv[2], 1);
	if (!strcmp(mode, "sleep-pid") && argc == 4) { /* sleep-pid PIDFILE SECONDS */
		write_pid(argv[2]);
		sleep((unsigned)atoi(argv[3]));
		return 0;
	}
	if (!strcmp(mode, "sleep-ms") && argc == 3) {
		long ms = atol(argv[2]);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0)
			;
		return 0;
	}
	if (!strcmp(mode, "info")) { /* info [VAR...] */
		info(argc, argv);
		return 0;
	}
	fputs("runner-command-helper: unknown mode\n", stderr);
	return 2;
}
