/*
 * local-zygote-serve.c - the zygote's side of the local provider's fork
 * server (local-zygote.c has its start, its protocol and the
 * orchestrator's side).
 *
 * The zygote loops on poll(socket, signalfd(SIGCHLD)).  For a request:
 * fork(); in the child: close the socket, set PR_SET_PDEATHSIG
 * SIGKILL (and compare getppid() with the zygote, for a zygote that died
 * before), a process group of its own, the three descriptors as 0, 1 and
 * 2, its scratch directory made when the request says so (a failure is
 * exit status 127 and a line on stderr, as any other step's), the scratch
 * directory as working directory, the environment
 * additions (HYPERTEST_LOCAL_ZYGOTE_FD removed), RLIMIT_AS from memoryMB,
 * every signal disposition reset (unless all were SIG_DFL when the zygote
 * started, which it checks once) and an empty signal mask; then it does
 * what SERVE does without a zygote (local_serve_one: payload from stdin,
 * response to stdout) and _exits with 0 or 1.  The zygote sets the child's
 * process group itself too (so that it exists before STARTED is sent) and
 * answers STARTED.  On SIGCHLD it finds its children that ended
 * (waitid(WNOWAIT), only ever for the pids it forked), kills what they
 * left in their process groups while they are zombies, reaps them and
 * sends EXITED.  At end of file on the socket (the orchestrator is done or
 * gone) it kills everything it still has and SERVE returns.  The zygote
 * has no parent-death signal (the end of file tells it) and is the
 * subreaper of all below it: what a test started and left (a shell's
 * background job, a daemon) comes to the zygote, which reaps it when it
 * ends and kills it when the run ends, so that a SIGKILLed orchestrator
 * leaves nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "local-zygote.h"

struct zchild {
	pid_t pid;
	uint64_t token;
	char *dir;  /* its scratch directory, to clean once it is gone, or NULL */
	char *link; /* its TMPDIR link, to remove then, or NULL */
	dev_t dev;  /* which that was when it started */
	ino_t ino;
	char *task_root;   /* what its links point into */
	uint32_t nentries; /* and how many there are */
};

struct zygote {
	local_provider *p;
	hypertest_function *fn;
	int sock, sfd;
	pid_t self;
	int signals_default; /* every disposition SIG_DFL: the children reset none */
	struct zchild *kids;
	size_t nkids, cap;
};

static int reply_usage(struct zygote *z, uint32_t type, uint64_t token, pid_t pid, int value,
                       const struct rusage *ru, int cleaned)
{
	struct zyg_reply r;
	memset(&r, 0, sizeof r);
	if (ru) {
		r.cpu_ms = (int64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000 +
		           (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1000;
		r.maxrss_kb = ru->ru_maxrss;
	}
	r.magic = ZYG_MAGIC;
	r.type = type;
	r.token = token;
	r.pid = (int32_t)pid;
	r.value = value;
	r.cleaned = cleaned != 0;
	for (;;) {
		ssize_t n = send(z->sock, &r, sizeof r, MSG_NOSIGNAL);
		if (n == (ssize_t)sizeof r)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return -1; /* the orchestrator is gone */
	}
}

static int reply(struct zygote *z, uint32_t type, uint64_t token, pid_t pid, int value)
{
	return reply_usage(z, type, token, pid, value, NULL, 0);
}

/* The scratch directory dir of a request: take renamed to it, or made
 * (make, or take gone: another orchestrator took it); its identity in *st.
 * 0, or -1 with *err (errno) and *failed (what, malloc'd or NULL). */
static int scratch_setup(const char *dir, const char *take, int make, const char *task_root,
                         struct stat *st, int *err, char **failed)
{
	if (take && rename(take, dir) != 0) {
		/* a stale directory of that name goes */
		make = !((errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR) &&
		         local_rm_rf(dir) == 0 && rename(take, dir) == 0);
		if (make && local_rm_rf(dir) != 0) {
			*err = errno;
			*failed = local_strdup(dir);
			return -1;
		}
	}
	if (make && local_scratch_make(dir, task_root, failed) != 0) {
		*err = errno ? errno : ENOMEM;
		return -1;
	}
	int r = lstat(dir, st);
	if (r != 0 || !S_ISDIR(st->st_mode)) {
		*err = r != 0 ? errno : ENOTDIR;
		*failed = local_strdup(dir);
		return -1;
	}
	return 0;
}

/* Clean child k's scratch directory for the pool, if it is still where it
 * was and the same directory: the orchestrator may have set it aside (and
 * then cleans it itself), and a new invocation of the same test may have
 * its own there already.  1 when it is ready for the pool. */
static int scratch_clean(const struct zchild *k)
{
	struct stat st;
	int fd = open(k->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int ok = fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == k->dev && st.st_ino == k->ino &&
	         local_scratch_clean(fd, k->task_root, k->nentries) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void __attribute__((noreturn)) child_fail(const char *what, const char *arg)
{
	dprintf(2, "function zygote child: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
	        strerror(errno));
	_exit(127);
}

/* In the child of a request: become the function process of one
 * invocation, run it, exit. */
static void __attribute__((noreturn))
child_run(struct zygote *z, const int fds[3], const struct zyg_request *h, char **strs,
          uint32_t nenv, int setup_errno, const char *setup_failed)
{
	close(z->sock);
	close(z->sfd);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != z->self)
		_exit(127); /* the zygote is gone already */
	setpgid(0, 0);
	for (int k = 0; k < 3; k++)
		if (dup2(fds[k], k) < 0)
			child_fail("dup2", NULL);
	for (int k = 0; k < 3; k++)
		if (fds[k] > 2)
			close(fds[k]);
	if (setup_errno) {
		errno = setup_errno;
		child_fail("cannot create", setup_failed);
	}
	if (chdir(strs[1]) != 0)
		child_fail("cannot enter", strs[1]);
	unsetenv(LOCAL_ZYGOTE_ENV);
	for (uint32_t i = 2; i < nenv; i++) {
		char *eq = strchr(strs[i], '=');
		if (!eq && *strs[i]) {
			unsetenv(strs[i]);
			continue;
		}
		if (!eq || eq == strs[i])
			continue;
		*eq = '\0';
		if (setenv(strs[i], eq + 1, 1) != 0)
			child_fail("setenv", strs[i]);
	}
	if (h->memory_mb) {
		struct rlimit rl;
		rl.rlim_cur = rl.rlim_max = (rlim_t)(h->memory_mb * 1024u * 1024u);
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			child_fail("setrlimit", NULL);
	}
	if (!z->signals_default) {
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				(void)sigaction(sig, &dfl, NULL);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	char *error = NULL;
	int rc = local_serve_one(z->p, z->fn, &error);
	if (rc != 0 && (error || rc == HYPERTEST_ERR_NOMEM))
		local_log(z->p, HYPERTEST_LOG_ERROR, "%s", error ? error : "out of memory");
	free(error);
	fflush(NULL);
	_exit(rc ? 1 : 0);
}

/* Is every signal's disposition SIG_DFL?  The zygote sets none (SIGCHLD
 * comes through a signalfd), so the answer at its start holds for each
 * child it forks; only an ignored signal inherited through exec makes the
 * children reset them all. */
static int signals_all_default(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction old;
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &old) != 0)
			continue; /* libc's own are refused: never touched by anyone */
		if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL)
			continue;
		return 0;
	}
	return 1;
}

/* Before the fork of request h (its strings strs): its scratch directory
 * and TMPDIR link (ZYG_*), and in *kid what the zygote must do once the
 * child is gone.  A failure: *setup_errno and *failed (what, malloc'd or
 * NULL), for the child to report.  Returns the number of strings before the
 * ones of the flags (the test id, the directory and the environment). */
static uint32_t kid_prepare(const struct zyg_request *h, char **strs, struct zchild *kid,
                            int *setup_errno, char **failed)
{
	uint32_t nenv = h->nstrings;
	const char *link = (h->flags & ZYG_LINK_TMPDIR) ? strs[--nenv] : NULL;
	const char *take = (h->flags & ZYG_TAKE_SCRATCH) ? strs[--nenv] : NULL;
	const char *task_root = h->flags ? strs[--nenv] : NULL;
	struct stat st;
	int set_up = h->flags && scratch_setup(strs[1], take, (h->flags & ZYG_MAKE_SCRATCH) != 0,
	                                       task_root, &st, setup_errno, failed) == 0;
	if (set_up && link) {
		char target[PATH_MAX];
		int tn = snprintf(target, sizeof target, "%s/.hypertest/tmp", strs[1]);
		if (tn < 0 || (size_t)tn >= sizeof target)
			errno = ENAMETOOLONG;
		else if (symlink(target, link) == 0 && !(kid->link = local_strdup(link)))
			unlink(link);
		if (!kid->link) {
			*setup_errno = errno ? errno : ENOMEM;
			*failed = local_strdup(link);
			set_up = 0;
		}
	}
	if (set_up && (h->flags & ZYG_CLEAN_SCRATCH) && (kid->dir = local_strdup(strs[1])) &&
	    (kid->task_root = local_strdup(task_root))) {
		kid->dev = st.st_dev;
		kid->ino = st.st_ino;
	} else {
		free(kid->dir);
		kid->dir = NULL; /* the orchestrator cleans it */
	}
	return nenv;
}

/* One message on the socket: 1 served, 0 end of file, -1 broken. */
static int one_request(struct zygote *z)
{
	static char buf[ZYG_MAX_REQUEST + 1];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} c;
	struct iovec iov = {buf, ZYG_MAX_REQUEST};
	struct msghdr mh;
	zyg_msghdr(&mh, &iov, c.b, sizeof c.b);
	ssize_t n = recvmsg(z->sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	if (n == 0)
		return 0;
	int fds[3] = {-1, -1, -1}, nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
			if (nfds < 3)
				fds[nfds] = fd;
			else
				close(fd);
			nfds++;
		}
	}
	struct zyg_request h;
	char *strs[16];
	memset(&h, 0, sizeof h);
	int ok = (size_t)n >= sizeof h && nfds == 3 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
	if ((size_t)n >= sizeof h)
		memcpy(&h, buf, sizeof h);
	ok = ok && h.magic == ZYG_MAGIC && h.type == ZYG_REQUEST &&
	     h.nstrings >= 2u + (h.flags ? 1u : 0u) + ((h.flags & ZYG_TAKE_SCRATCH) ? 1u : 0u) +
	                       ((h.flags & ZYG_LINK_TMPDIR) ? 1u : 0u) &&
	     h.nstrings <= 16;
	if (ok) {
		buf[n] = '\0';
		char *s = buf + sizeof h, *end = buf + n;
		for (uint32_t i = 0; ok && i < h.nstrings; i++) {
			char *nul = s < end ? memchr(s, '\0', (size_t)(end - s)) : NULL;
			if (!nul)
				ok = 0;
			else
				strs[i] = s, s = nul + 1;
		}
	}
	if (!ok) {
		local_log(z->p, HYPERTEST_LOG_ERROR, "function zygote: malformed request of %zd bytes "
		          "with %d descriptors", n, nfds);
		for (int k = 0; k < 3; k++)
			if (fds[k] >= 0)
				close(fds[k]);
		return (size_t)n >= sizeof h && h.magic == ZYG_MAGIC
		           ? (reply(z, LOCAL_ZMSG_FAILED, h.token, 0, EPROTO) == 0 ? 1 : -1)
		           : 1;
	}
	if (z->nkids == z->cap) {
		size_t ncap = z->cap ? z->cap * 2 : 64;
		struct zchild *nk = realloc(z->kids, ncap * sizeof *nk);
		if (!nk) {
			for (int k = 0; k < 3; k++)
				close(fds[k]);
			return reply(z, LOCAL_ZMSG_FAILED, h.token, 0, ENOMEM) == 0 ? 1 : -1;
		}
		z->kids = nk;
		z->cap = ncap;
	}
	/* the scratch directory, before the fork: a failure is the child's
	 * to report (exit status 127 and a line on stderr) */
	struct zchild kid = {0, h.token, NULL, NULL, 0, 0, NULL, h.nentries};
	char *failed = NULL;
	int setup_errno = 0;
	uint32_t nenv = kid_prepare(&h, strs, &kid, &setup_errno, &failed);
	fflush(NULL); /* nothing buffered is inherited */
	pid_t pid = fork();
	if (pid == 0)
		child_run(z, fds, &h, strs, nenv, setup_errno, failed ? failed : strs[1]);
	int e = errno;
	free(failed);
	for (int k = 0; k < 3; k++)
		close(fds[k]);
	if (pid < 0) {
		if (kid.link)
			unlink(kid.link);
		free(kid.link);
		free(kid.dir);
		free(kid.task_root);
		return reply(z, LOCAL_ZMSG_FAILED, h.token, 0, e) == 0 ? 1 : -1;
	}
	setpgid(pid, pid); /* the group exists before anyone hears of the pid */
	kid.pid = pid;
	z->kids[z->nkids++] = kid;
	return reply(z, LOCAL_ZMSG_STARTED, h.token, pid, 0) == 0 ? 1 : -1;
}

/* Child i ended (a zombie): kill what it left in its group, reap it, tell. */
static int finish_child(struct zygote *z, size_t i)
{
	struct zchild k = z->kids[i];
	kill(-k.pid, SIGKILL);
	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	while (wait4(k.pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	z->kids[i] = z->kids[--z->nkids];
	/* nothing of the test is left to write into its directory */
	int cleaned = k.dir && scratch_clean(&k);
	if (k.link)
		unlink(k.link);
	free(k.link);
	free(k.dir);
	free(k.task_root);
	return reply_usage(z, LOCAL_ZMSG_EXITED, k.token, k.pid, status, &ru, cleaned);
}

static int kid_index(struct zygote *z, pid_t pid)
{
	for (size_t i = 0; i < z->nkids; i++)
		if (z->kids[i].pid == pid)
			return (int)i;
	return -1;
}

/* Kill every process the zygote still has, adopted orphans included, and
 * reap them, until it has none (or 2 s passed): the orchestrator is done
 * or gone.  An invocation's function dies, so does its test (its
 * parent-death signal), and what the test started comes to the zygote
 * (the subreaper), which kills it in the next round. */
static void kill_everything(struct zygote *z)
{
	for (size_t i = 0; i < z->nkids; i++)
		kill(-z->kids[i].pid, SIGKILL);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)z->self);
	for (int round = 0; round < 200; round++) {
		FILE *f = fopen(path, "re");
		long pid;
		while (f && fscanf(f, "%ld", &pid) == 1) {
			kill(-(pid_t)pid, SIGKILL); /* its group, if it leads one */
			kill((pid_t)pid, SIGKILL);
		}
		if (f)
			fclose(f);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			return;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Reap every child of ours that ended: 0, or -1 when the orchestrator is
 * gone. */
static int reap(struct zygote *z)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
			return 0;
		int i = kid_index(z, si.si_pid);
		if (i < 0) {
			/* an orphan the zygote adopted as subreaper: nobody waits for it */
			while (waitpid(si.si_pid, NULL, 0) < 0 && errno == EINTR)
				;
			continue;
		}
		if (finish_child(z, (size_t)i) != 0)
			return -1;
	}
	for (size_t i = z->nkids; i-- > 0;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)z->kids[i].pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid != 0 && finish_child(z, i) != 0)
			return -1;
	}
	return 0;
}

int local_zygote_serve(local_provider *p, hypertest_function *fn, int sock)
{
	int type = 0;
	socklen_t tl = sizeof type;
	if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_SEQPACKET)
		return local_fail(p, HYPERTEST_ERR_CONFIG, "%s=%d is not a SOCK_SEQPACKET socket",
		                  LOCAL_ZYGOTE_ENV, sock);
	int fl = fcntl(sock, F_GETFL);
	if (fl >= 0)
		fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	fcntl(sock, F_SETFD, FD_CLOEXEC);
	unsetenv(LOCAL_ZYGOTE_ENV);
	/* Not killed with the orchestrator (it was started with that signal):
	 * the end of file on the socket tells, and then the zygote kills all
	 * it has, the orphans of the tests included, which come to it as the
	 * subreaper of everything below it. */
	prctl(PR_SET_PDEATHSIG, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	struct zygote z;
	memset(&z, 0, sizeof z);
	z.p = p;
	z.fn = fn;
	z.sock = sock;
	z.self = getpid();
	z.signals_default = signals_all_default();
	/* What each child would otherwise do for itself, once: the umask read
	 * from /proc, and no fast bins.  The heap is the zygote's: a chunk a
	 * child reuses, and a neighbour a merge writes to, is a page copied;
	 * fast bins are merged all at once on the first large request (reading
	 * the payload, opening a directory), a write to each chunk freed
	 * since.  Without them a no-op test's function copied a third fewer
	 * pages, and merging them here spares every child the walk. */
	local_umask_remember(p);
	mallopt(M_MXFAST, 0);
	z.sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	int rc = 0;
	if (z.sfd < 0) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "signalfd: %s", strerror(errno));
		goto out;
	}
	if (reply(&z, LOCAL_ZMSG_READY, 0, z.self, 0) != 0)
		goto out;
	for (;;) {
		struct pollfd pf[2] = {{z.sock, POLLIN, 0}, {z.sfd, POLLIN, 0}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = local_fail(p, HYPERTEST_ERR_IO, "poll: %s", strerror(errno));
			break;
		}
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(z.sfd, &si, sizeof si) > 0)
				;
			if (reap(&z) != 0)
				break;
		}
		if (pf[0].revents) {
			int r = one_request(&z);
			if (r <= 0)
				break; /* the orchestrator is done or gone */
		}
	}
out:
	kill_everything(&z);
	if (z.sfd >= 0)
		close(z.sfd);
	close(sock);
	for (size_t i = 0; i < z.nkids; i++) {
		free(z.kids[i].link);
		free(z.kids[i].dir);
		free(z.kids[i].task_root);
	}
	free(z.kids);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
