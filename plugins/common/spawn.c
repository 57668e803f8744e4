/*
 * spawn.c - runs one program for a plugin (the runners), never through a
 * shell: vfork + execve of a path found beforehand, stdin from /dev/null,
 * stdout and stderr read through pipes with poll (a flood on either never
 * blocks the program) into capped sinks.  The child leads its own process
 * group and dies with this process (PR_SET_PDEATHSIG, then a getppid()
 * check for the race).  When the main process exits, the whole group is
 * killed, and the pipes are drained until they stay quiet for GRACE_MS, so
 * that a descendant that escaped the group and keeps a pipe open cannot
 * hang the caller.
 *
 * Linux sends PR_SET_PDEATHSIG when the *thread* that forked exits, so the
 * caller must run a program from a thread that outlives it.  A descendant
 * that leaves the process group (setsid) is not killed.
 *
 * vfork rather than fork: a fork copies the page tables of this process
 * (the function runtime with every library it loaded) and turns its next
 * writes into copy-on-write faults, once per test.  posix_spawn() cannot
 * set the parent-death signal, so this does by hand what it does: every
 * signal is blocked around vfork(), the child resets all dispositions to
 * their defaults before it unblocks them (no handler of ours runs in the
 * child while it shares our memory), makes only system calls, and reports
 * a failure in the frame it shares with us.
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

enum {
	GRACE_MS = 200,     /* quiet pipes after the group was killed: done */
	DRAIN_MAX_MS = 5000, /* stop draining after this much in any case */
	POLL_MS = 50,       /* how often to look for the exit without a pidfd */
	CHUNK = 65536
};

/* ---- sinks ------------------------------------------------------------------ */

int htp_sink_init(htp_sink *s, int fd, uint64_t limit, size_t tail_cap)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->limit = limit;
	s->last_byte = -1;
	s->tail_cap = tail_cap;
	if (tail_cap > 0) {
		s->tail = malloc(2 * tail_cap);
		if (!s->tail)
			return ENOMEM;
	}
	return 0;
}

void htp_sink_free(htp_sink *s)
{
	htp_buf_free(&s->mem);
	free(s->tail);
	s->tail = NULL;
}

static void sink_store(htp_sink *s, const char *p, size_t n)
{
	if (s->fd >= 0) {
		if (s->write_errno == 0)
			s->write_errno = htp_write_all(s->fd, p, n);
	} else if (htp_buf_add(&s->mem, p, n) < 0) {
		s->nomem = 1;
		return;
	}
	s->kept += n;
	s->last_byte = (unsigned char)p[n - 1];
}

static void sink_tail(htp_sink *s, const char *p, size_t n)
{
	size_t cap = s->tail_cap;
	if (!s->tail)
		return;
	if (n >= cap) {
		memcpy(s->tail, p + n - cap, cap);
		s->tail_len = cap;
		return;
	}
	if (s->tail_len + n > 2 * cap) {
		/* keep what can still be part of the last cap bytes */
		size_t keep = s->tail_len < cap ? s->tail_len : cap;
		memmove(s->tail, s->tail + s->tail_len - keep, keep);
		s->tail_len = keep;
	}
	memcpy(s->tail + s->tail_len, p, n);
	s->tail_len += n;
}

static void sink_feed(htp_sink *s, const char *p, size_t n)
{
	if (s->kept < s->limit && !s->nomem) {
		uint64_t room = s->limit - s->kept;
		sink_store(s, p, n < room ? n : (size_t)room);
	}
	s->total += n;
	sink_tail(s, p, n);
}

int htp_sink_finish(htp_sink *s)
{
	if (s->fd >= 0 && s->total > s->kept && s->write_errno == 0) {
		char note[96];
		int len = snprintf(note, sizeof note, "%s[output truncated after %llu bytes]\n",
		                   (s->last_byte >= 0 && s->last_byte != '\n') ? "\n" : "",
		                   (unsigned long long)s->kept);
		s->write_errno = htp_write_all(s->fd, note, (size_t)len);
	}
	return s->write_errno;
}

const char *htp_sink_tail(const htp_sink *s, size_t *len)
{
	size_t n = s->tail_len < s->tail_cap ? s->tail_len : s->tail_cap;
	*len = n;
	return s->tail ? s->tail + s->tail_len - n : "";
}

/* ---- finding the program ------------------------------------------------------- */

static int is_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || S_ISDIR(st.st_mode))
		return ENOENT;
	return access(path, X_OK) == 0 ? 0 : EACCES;
}

static char *join3(const char *a, size_t alen, const char *b, size_t blen, const char *c)
{
	size_t clen = strlen(c);
	char *s = malloc(alen + blen + clen + 3);
	if (!s)
		return NULL;
	size_t n = 0;
	if (alen) {
		memcpy(s, a, alen);
		n = alen;
		s[n++] = '/';
	}
	memcpy(s + n, b, blen);
	n += blen;
	s[n++] = '/';
	memcpy(s + n, c, clen + 1);
	return s;
}

int htp_find_program(const char *name, const char *path_env, const char *cwd, int check_path,
                     char **found)
{
	*found = NULL;
	if (!*name)
		return ENOENT;
	if (strchr(name, '/')) {
		if (check_path) {
			char *full = (name[0] == '/' || !cwd) ? strdup(name)
			                                      : join3(cwd, strlen(cwd), ".", 1, name);
			if (!full)
				return ENOMEM;
			int err = is_executable(full);
			free(full);
			if (err)
				return err;
		}
		*found = strdup(name);
		return *found ? 0 : ENOMEM;
	}
	if (!path_env)
		path_env = "/bin:/usr/bin";
	int err = ENOENT;
	for (const char *p = path_env;;) {
		const char *colon = strchr(p, ':');
		size_t dlen = colon ? (size_t)(colon - p) : strlen(p);
		const char *dir = dlen ? p : ".";
		if (!dlen)
			dlen = 1;
		int relative = dir[0] != '/' && cwd;
		char *cand = join3(relative ? cwd : "", relative ? strlen(cwd) : 0, dir, dlen, name);
		if (!cand)
			return ENOMEM;
		int e = is_executable(cand);
		if (e == 0) {
			*found = cand;
			return 0;
		}
		free(cand);
		if (e == EACCES)
			err = EACCES;
		if (!colon)
			break;
		p = colon + 1;
	}
	return err;
}

/* ---- signal names -------------------------------------------------------------- */

static const struct {
	int sig;
	const char *name;
} signal_names[] = {
	{SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},       {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
	{SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},     {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
	{SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
	{SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"},     {SIGTERM, "SIGTERM"}, {SIGCHLD, "SIGCHLD"},
	{SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},     {SIGTSTP, "SIGTSTP"}, {SIGTTIN, "SIGTTIN"},
	{SIGTTOU, "SIGTTOU"}, {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
	{SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"}, {SIGSYS, "SIGSYS"},
#ifdef SIGIO
	{SIGIO, "SIGIO"},
#endif
#ifdef SIGPWR
	{SIGPWR, "SIGPWR"},
#endif
#ifdef SIGSTKFLT
	{SIGSTKFLT, "SIGSTKFLT"},
#endif
};

const char *htp_signal_name(int sig, char *buf, size_t size)
{
	for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	snprintf(buf, size, "signal %d", sig);
	return buf;
}

/* ---- running ------------------------------------------------------------------- */

enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3 };
struct child_failure {
	volatile int stage, err;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	p[0] = htp_fd_above_stdio(p[0]);
	p[1] = htp_fd_above_stdio(p[1]);
	if (p[0] < 0 || p[1] < 0)
		return errno ? errno : EMFILE;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the vfork child: system calls only, results in *f, then exec or _exit. */
static void __attribute__((noreturn))
child_run(const htp_spawn *sp, pid_t parent, int in, int out, int err, struct child_failure *f)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL); /* fails harmlessly for reserved ones */
	int stage = STAGE_SETUP;
	if (setpgid(0, 0) != 0)
		goto fail;
#ifdef __linux__
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		goto fail;
	if (getppid() != parent)
		_exit(127); /* the parent died before prctl: nobody waits for us */
#else
	(void)parent;
#endif
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	stage = STAGE_CHDIR;
	if (sp->cwd && chdir(sp->cwd) != 0)
		goto fail;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	stage = STAGE_EXEC;
	execve(sp->path, sp->argv, sp->envp);
fail:
	f->err = errno ? errno : EINVAL;
	f->stage = stage;
	_exit(127);
}

static int pidfd_for(pid_t pid)
{
#if defined(__linux__) && defined(SYS_pidfd_open)
	return (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec; -1 on old kernels */
#else
	(void)pid;
	return -1;
#endif
}

/* 1 when the main process has exited (left unreaped, so that its pid keeps
 * naming the group), 0 while it runs, -1 when it is no longer our child. */
static int main_exited(pid_t pid, int block)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) != 0)
		if (errno != EINTR)
			return -1;
	return si.si_pid == pid ? 1 : 0;
}

static void capture(htp_spawn *sp, pid_t pid, int outfd, int errfd)
{
	int fds[2] = {outfd, errfd};
	htp_sink *sinks[2] = {sp->out, sp->err};
	int pidfd = pidfd_for(pid);
	int exited = 0;
	int64_t exited_at = 0;
	char buf[CHUNK];

	for (;;) {
		int open_pipes = (fds[0] >= 0) + (fds[1] >= 0);
		if (!exited) {
			int r = main_exited(pid, open_pipes == 0);
			if (r != 0) {
				exited = 1;
				exited_at = now_ms();
				if (r > 0)
					kill(-pid, SIGKILL); /* no stray descendant survives */
				else
					sp->status_lost = 1;
			}
		}
		if (open_pipes == 0)
			break;

		struct pollfd p[3];
		int which[3];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0) {
				p[n] = (struct pollfd){.fd = fds[i], .events = POLLIN};
				which[n++] = i;
			}
		int timeout = exited ? GRACE_MS : POLL_MS;
		if (!exited && pidfd >= 0) {
			p[n] = (struct pollfd){.fd = pidfd, .events = POLLIN};
			which[n++] = -1;
			timeout = -1;
		}
		int r = poll(p, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (exited && (r == 0 || now_ms() - exited_at > DRAIN_MAX_MS))
			break; /* the group is dead and the pipes are quiet (or endless) */
		for (nfds_t k = 0; k < n; k++) {
			int i = which[k];
			if (i < 0 || !p[k].revents)
				continue;
			ssize_t got = read(fds[i], buf, sizeof buf);
			if (got > 0)
				sink_feed(sinks[i], buf, (size_t)got);
			else if (got == 0 || (errno != EAGAIN && errno != EINTR))
				close_fd(&fds[i]);
		}
	}
	close_fd(&fds[0]);
	close_fd(&fds[1]);
	close_fd(&pidfd);
	if (!sp->status_lost) {
		while (waitpid(pid, &sp->status, 0) < 0)
			if (errno != EINTR) {
				sp->status_lost = 1;
				break;
			}
	}
}

/* vfork in a frame of its own, so that no caller's variable lives across it;
 * -1 with errno when vfork failed. */
static pid_t start_child(const htp_spawn *sp, int in, int out, int err, struct child_failure *f)
{
	f->stage = f->err = 0;
	pid_t parent = getpid();
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int saved_errno = errno;
	/* the compiler must not keep *f in registers across the child's writes */
	__asm__ __volatile__("" : : "r"(f) : "memory");
	pid_t pid = vfork();
	if (pid == 0)
		child_run(sp, parent, in, out, err, f);
	__asm__ __volatile__("" : : : "memory");
	int vfork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = pid < 0 ? vfork_errno : saved_errno; /* the child may have written it */
	return pid;
}

int htp_spawn_run(htp_spawn *sp)
{
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, devnull = -1;
	int rc = 0;
	sp->start_errno = sp->start_chdir = sp->status = sp->status_lost = 0;

	if ((rc = make_pipe(outp)) || (rc = make_pipe(errp)))
		goto out;
	devnull = htp_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (devnull < 0) {
		rc = errno;
		goto out;
	}
	struct child_failure f;
	pid_t pid = start_child(sp, devnull, outp[1], errp[1], &f);
	if (pid < 0) {
		rc = errno;
		goto out;
	}
	if (f.err) {
		/* it did not get to run the program: nothing else has the pipes */
		sp->start_errno = f.err;
		sp->start_chdir = f.stage == STAGE_CHDIR;
		while (waitpid(pid, &sp->status, 0) < 0 && errno == EINTR)
			;
		goto out;
	}
	setpgid(pid, pid); /* as the child did: the group exists from here on */
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	close_fd(&devnull);
	fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
	fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);
	capture(sp, pid, outp[0], errp[0]);
	outp[0] = errp[0] = -1; /* closed by capture */
out:
	close_fd(&outp[0]);
	close_fd(&outp[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&devnull);
	return rc;
}
