/*
 * local-zygote.c - the fork server ("zygote") of the local provider: its
 * start, its protocol and the orchestrator's side (local-zygote-serve.c is
 * the zygote's side; local-zygote.h the messages).
 *
 * One exec of the function runtime program costs tens of milliseconds of
 * CPU (dynamic linking of libcurl, libarchive, OpenSSL..., loading the
 * configuration and the plugins).  With isolation "none" the orchestrator
 * therefore starts the program once, as a zygote, and each invocation is
 * a fork of it: a fresh process that has loaded everything but run no
 * test.  (Isolation "bubblewrap" keeps one exec per invocation.)
 *
 * Starting.  On the first INVOKE_START of a provider instance the
 * orchestrator makes an AF_UNIX SOCK_SEQPACKET socket pair and starts the
 * function program (local_spawn_process: own process group, parent-death
 * signal SIGKILL, so the zygote dies with the orchestrator) with the other
 * end as descriptor 3, HYPERTEST_LOCAL_ZYGOTE_FD=3 and the environment of
 * the exec path except HOME, TMPDIR and PWD, which come with each request,
 * plus LD_BIND_NOW=1 (symbols resolved once, not in every child);
 * stdin and stdout /dev/null, stderr a pipe the orchestrator drains (its
 * tail explains a zygote that died).  The core's hypertest_function_serve
 * creates the provider and runner instances and calls SERVE, which sees
 * the variable and runs local_zygote_serve.  The orchestrator waits up to
 * 30 s for READY; without it, it logs a warning once and starts every
 * invocation with exec instead.
 *
 * Messages.  Each is one datagram of the socket.
 *
 *   orchestrator -> zygote: a request, one per invocation
 *     struct zyg_request (magic, type 16, token, memoryMB, string count,
 *     flags, the task root's entry count), then NUL-terminated strings:
 *     test id, scratch directory, environment changes: NAME=VALUE (HOME,
 *     TMPDIR, PWD) sets, NAME alone unsets (LD_BIND_NOW, set for the
 *     zygote only), "" nothing; then, with any flag, the task root, with
 *     TAKE_SCRATCH a pooled directory, with LINK_TMPDIR the TMPDIR link to
 *     make (to the directory's .hypertest/tmp; removed by the zygote once
 *     the child is gone).  Before the fork the zygote, with MAKE_SCRATCH
 *     (the pool had no directory), makes the scratch directory, linked to
 *     the task root's entries; with TAKE_SCRATCH it renames the pooled
 *     directory to it (or makes it, when another orchestrator took that
 *     one).  With CLEAN_SCRATCH, once the child and its group are gone, it
 *     cleans the directory for the pool (local_scratch_clean) if the path
 *     still names the directory it set up (device and inode: the
 *     orchestrator may have set it aside, and a new invocation of the same
 *     test made its own), and says so in EXITED.  The orchestrator's one
 *     thread thus only names directories and renames each back into the
 *     pool: the rest of the file system's work of a test is the zygote's,
 *     a process of its own;
 *     SCM_RIGHTS: the child's stdin, stdout and stderr, in that order.
 *   zygote -> orchestrator: struct zyg_reply (magic, type, token, pid, value)
 *     READY    once, when the zygote serves
 *     STARTED  token, pid: the child of a request was forked
 *     FAILED   token, value = errno: fork() failed; no child
 *     EXITED   token, pid, value = wait status, cleaned: the child was
 *              reaped (and its scratch directory cleaned for the pool)
 *
 * The token is the orchestrator's name for the invocation (a slot index
 * and a generation), echoed by the zygote.  Replies to requests come in
 * request order; the EXITED of a child always comes after its STARTED.
 *
 * The zygote (local-zygote-serve.c) forks a child per request, which
 * serves the one payload and exits; it reaps its children, and whatever
 * they left, and kills them all when the socket closes.
 *
 * The orchestrator.  The socket and the zygote's stderr are in the epoll
 * loop of local-invoke.c.  Requests are sent without blocking; what the
 * socket does not take waits in a queue, sent when it is writable.  An
 * invocation completes when the EXITED of its child arrived (its stdout is
 * read to the end of what is there: the child is gone, so is every byte it
 * wrote); a timeout or a cancel kills the child's process group, at once
 * when the pid is known, else when STARTED arrives.  If the zygote dies,
 * the invocations it had fail with a message that says so, a warning is
 * logged once and the next invocations start with exec.  DESTROY waits
 * briefly for the pids of the requests sent, kills their process groups,
 * closes the socket (the zygote exits) and reaps the zygote.
 *
 * HYPERTEST_LOCAL_NO_ZYGOTE=1 makes the orchestrator use exec throughout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "local-zygote.h"

enum { ZW_SOCK, ZW_ERR };

/* A request not sent yet. */
struct local_zreq {
	struct local_zreq *next;
	char *data;
	size_t len;
	int fds[3];
	uint64_t token;
};

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ==== the orchestrator's side ======================================================== */

/* ---- tokens: slot index (low 32 bits) and generation (high 32 bits) ---- */

static int slot_new(local_provider *p, local_proc *pr, uint64_t *token)
{
	size_t i;
	if (p->zyg_nfree > 0) {
		i = p->zyg_free[--p->zyg_nfree];
	} else {
		if (p->zyg_nslots == p->zyg_cap) {
			size_t ncap = p->zyg_cap ? p->zyg_cap * 2 : 64;
			local_proc **ns = realloc(p->zyg_slots, ncap * sizeof *ns);
			if (!ns)
				return -1;
			p->zyg_slots = ns;
			uint32_t *ng = realloc(p->zyg_gen, ncap * sizeof *ng);
			if (!ng)
				return -1;
			p->zyg_gen = ng;
			size_t *nf = realloc(p->zyg_free, ncap * sizeof *nf);
			if (!nf)
				return -1;
			p->zyg_free = nf;
			p->zyg_cap = ncap;
		}
		i = p->zyg_nslots++;
		p->zyg_gen[i] = 1;
	}
	p->zyg_slots[i] = pr;
	*token = ((uint64_t)p->zyg_gen[i] << 32) | (uint64_t)i;
	return 0;
}

static local_proc *slot_find(local_provider *p, uint64_t token)
{
	size_t i = (size_t)(token & 0xffffffffu);
	if (i >= p->zyg_nslots || p->zyg_gen[i] != (uint32_t)(token >> 32))
		return NULL;
	return p->zyg_slots[i];
}

void local_zygote_forget(local_provider *p, uint64_t token)
{
	size_t i = (size_t)(token & 0xffffffffu);
	if (!slot_find(p, token) || !p->zyg_slots[i])
		return;
	p->zyg_slots[i] = NULL;
	p->zyg_gen[i]++;
	p->zyg_free[p->zyg_nfree++] = i;
}

local_proc **local_zygote_procs(local_provider *p, size_t *n)
{
	local_proc **v = malloc((p->zyg_nslots + 1) * sizeof *v);
	*n = 0;
	if (!v)
		return NULL;
	for (size_t i = 0; i < p->zyg_nslots; i++)
		if (p->zyg_slots[i])
			v[(*n)++] = p->zyg_slots[i];
	return v;
}

/* ---- the zygote's stderr ---- */

static void tail_add(local_provider *p, const char *d, size_t n)
{
	size_t cap = sizeof p->zyg_tail_err - 1;
	if (n >= cap) {
		memcpy(p->zyg_tail_err, d + n - cap, cap);
		p->zyg_tail_len = cap;
	} else {
		if (p->zyg_tail_len + n > cap) {
			size_t drop = p->zyg_tail_len + n - cap;
			memmove(p->zyg_tail_err, p->zyg_tail_err + drop, p->zyg_tail_len - drop);
			p->zyg_tail_len -= drop;
		}
		memcpy(p->zyg_tail_err + p->zyg_tail_len, d, n);
		p->zyg_tail_len += n;
	}
	p->zyg_tail_err[p->zyg_tail_len] = '\0';
}

static void err_close(local_provider *p)
{
	if (p->zyg_err < 0)
		return;
	if (p->epfd >= 0)
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->zyg_err, NULL);
	close(p->zyg_err);
	p->zyg_err = -1;
}

static void drain_stderr(local_provider *p)
{
	char buf[4096];
	while (p->zyg_err >= 0) {
		ssize_t r = read(p->zyg_err, buf, sizeof buf);
		if (r > 0)
			tail_add(p, buf, (size_t)r);
		else if (r < 0 && errno == EINTR)
			continue;
		else if (r < 0 && errno == EAGAIN)
			return;
		else
			err_close(p);
	}
}

/* ---- start, end ---- */

static void queue_free(local_provider *p)
{
	while (p->zyg_head) {
		struct local_zreq *q = p->zyg_head;
		p->zyg_head = q->next;
		for (int k = 0; k < 3; k++)
			if (q->fds[k] >= 0)
				close(q->fds[k]);
		free(q->data);
		free(q);
	}
	p->zyg_tail = NULL;
}

/* Close our end, reap the zygote (killed if it does not exit within
 * grace_ms) and describe how it ended in *how (malloc'd; may be NULL). */
static void zygote_end(local_provider *p, int grace_ms, char **how)
{
	if (p->zyg_sock >= 0) {
		if (p->epfd >= 0)
			epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->zyg_sock, NULL);
		close(p->zyg_sock);
		p->zyg_sock = -1;
	}
	queue_free(p);
	int status = 0;
	pid_t w = 0;
	if (p->zyg_pid > 0) {
		int64_t end = htp_now_ms() + grace_ms;
		while ((w = waitpid(p->zyg_pid, &status, WNOHANG)) == 0 && htp_now_ms() < end)
			usleep(2000);
		if (w == 0) {
			kill(p->zyg_pid, SIGKILL);
			while ((w = waitpid(p->zyg_pid, &status, 0)) < 0 && errno == EINTR)
				;
		}
	}
	drain_stderr(p);
	err_close(p);
	if (how) {
		char st[128];
		if (w <= 0)
			snprintf(st, sizeof st, "its exit status is unknown");
		else if (WIFEXITED(status))
			snprintf(st, sizeof st, "exit status %d", WEXITSTATUS(status));
		else if (WIFSIGNALED(status))
			snprintf(st, sizeof st, "killed by signal %d (%s)", WTERMSIG(status),
			         strsignal(WTERMSIG(status)));
		else
			snprintf(st, sizeof st, "wait status %d", status);
		size_t n = p->zyg_tail_len;
		while (n > 0 && (p->zyg_tail_err[n - 1] == '\n' || p->zyg_tail_err[n - 1] == ' '))
			n--;
		*how = htp_strdupf("the function zygote (pid %ld) ended: %s%s%.*s",
		                   (long)p->zyg_pid, st, n ? "; stderr: " : "", (int)n,
		                   p->zyg_tail_err);
	}
	p->zyg_pid = 0;
	p->zyg_tail_len = 0;
	p->zyg_tail_err[0] = '\0';
	p->zyg_out_watched = 0;
}

/* Not used any more: say so once. */
static void give_up(local_provider *p, const char *why)
{
	p->zyg_state = -1;
	if (!p->zyg_warned)
		local_log(p, HYPERTEST_LOG_WARNING,
		          "%s; the local provider starts each invocation with exec from now on "
		          "(slower)", why);
	p->zyg_warned = 1;
}

/* Read one reply: 1, 0 (none now), -1 (end of file, error, garbage: *what
 * says which, malloc'd). */
static int read_reply(local_provider *p, struct zyg_reply *r, char **what)
{
	for (;;) {
		ssize_t n = recv(p->zyg_sock, r, sizeof *r, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n == (ssize_t)sizeof *r && r->magic == ZYG_MAGIC)
			return 1;
		if (n > 0)
			*what = htp_strdupf("malformed message of %zd bytes", n);
		else
			*what = strdup(n == 0 ? "end of file" : strerror(errno));
		return -1;
	}
}

/* The descriptors of a zygote being started (-1 when not open). */
struct zyg_fds {
	int sv[2], errp[2], devnull;
};

static void zyg_fds_close(struct zyg_fds *f)
{
	int *all[] = {&f->sv[0], &f->sv[1], &f->errp[0], &f->errp[1], &f->devnull};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		if (*all[i] >= 0)
			close(*all[i]);
		*all[i] = -1;
	}
}

/* The socket, the stderr pipe and /dev/null, none of them on 0..2.  0, or
 * -1 with *error. */
static int zygote_open_fds(struct zyg_fds *f, char **error)
{
	const char *step = "socketpair";
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv) != 0)
		goto fail;
	step = "pipe";
	if ((f->sv[1] = htp_fd_above_stdio(f->sv[1])) < 0 || set_nonblock(f->sv[0]) != 0 ||
	    pipe2(f->errp, O_CLOEXEC) != 0)
		goto fail;
	step = "/dev/null";
	if ((f->errp[1] = htp_fd_above_stdio(f->errp[1])) < 0 || set_nonblock(f->errp[0]) != 0 ||
	    (f->devnull = htp_fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC))) < 0)
		goto fail;
	return 0;
fail:
	htp_errorf(error, -1, "%s: %s", step, strerror(errno));
	return -1;
}

/* Start the program as a zygote on the descriptors of f (the child's ends
 * are closed here; ours move to p).  0, or -1 with *error. */
static int zygote_spawn(local_provider *p, struct zyg_fds *f, char **error)
{
	const char *plugin_path = p->up.core_str ? p->up.core_str(p->core, HYPERTEST_CORE_PLUGIN_PATH)
	                                         : NULL;
	/* LD_BIND_NOW: every symbol is resolved once, in the zygote, rather
	 * than in each child (each resolution there would copy a page). */
	const char *names[] = {"HYPERTEST_FUNCTION_CONFIG",
	                       "HYPERTEST_PLUGIN_PATH",
	                       "HYPERTEST_LOCAL_BUCKET",
	                       LOCAL_ZYGOTE_ENV,
	                       "PWD",
	                       "LD_BIND_NOW",
	                       "HYPERTEST_PLUGIN_MODULES"};
	const char *values[] = {p->dep.config,
	                        plugin_path && *plugin_path ? plugin_path : NULL,
	                        p->bucket_dir,
	                        "3",
	                        p->dep.task_root,
	                        "1",
	                        local_function_modules(p)};
	size_t owned = 0;
	char **envp = local_env_build(names, values, 7, &owned);
	if (!envp) {
		*error = strdup("out of memory");
		return -1;
	}
	char *argv[] = {p->program, NULL};
	local_spawn s;
	memset(&s, 0, sizeof s);
	s.path = p->program;
	s.argv = argv;
	s.envp = envp;
	s.cwd = p->dep.task_root;
	s.fd_in = f->devnull;
	s.fd_out = f->devnull;
	s.fd_err = f->errp[1];
	s.fd_keep = f->sv[1];
	pid_t pid = local_spawn_process(&s);
	int saved = errno;
	local_env_free(envp, owned);
	if (pid < 0) {
		htp_errorf(error, -1, "cannot start %s: %s", p->program, strerror(saved));
		return -1;
	}
	p->zyg_pid = pid;
	p->zyg_sock = f->sv[0];
	p->zyg_err = f->errp[0];
	f->sv[0] = f->errp[0] = -1;
	zyg_fds_close(f); /* the zygote's now: its end of file is ours */
	return 0;
}

/* Wait for READY, keeping the end of its stderr.  0, or -1 with *error (the
 * zygote was reaped). */
static int zygote_wait_ready(local_provider *p, char **error)
{
	int64_t end = htp_now_ms() + ZYG_READY_MS;
	for (;;) {
		struct pollfd pf[2] = {{p->zyg_sock, POLLIN, 0}, {p->zyg_err, POLLIN, 0}};
		int64_t left = end - htp_now_ms();
		char *how = NULL, *what = NULL;
		if (left <= 0) {
			zygote_end(p, 0, &how);
			htp_errorf(error, -1,
			           "the function zygote %s was not ready after %d s (%s)",
			           p->program, ZYG_READY_MS / 1000, how ? how : "out of memory");
			free(how);
			return -1;
		}
		int n = poll(pf, p->zyg_err >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno != EINTR) {
			htp_errorf(error, -1, "poll: %s", strerror(errno));
			zygote_end(p, 0, NULL);
			return -1;
		}
		if (n > 0 && p->zyg_err >= 0 && pf[1].revents)
			drain_stderr(p);
		if (n > 0 && pf[0].revents) {
			struct zyg_reply r;
			int got = read_reply(p, &r, &what);
			if (got > 0 && r.type == LOCAL_ZMSG_READY)
				return 0;
			if (got != 0) {
				zygote_end(p, 200, &how);
				htp_errorf(error, -1, "%s did not serve as a zygote (%s; %s)",
				           p->program,
				           got < 0 ? (what ? what : "out of memory") : "unexpected message",
				           how ? how : "out of memory");
				free(what);
				free(how);
				return -1;
			}
		}
	}
}

/* Watch its socket and stderr in the provider's epoll set.  0, or -1 with
 * *error (the zygote was reaped). */
static int zygote_watch(local_provider *p, char **error)
{
	p->zyg_watch[ZW_SOCK].proc = NULL;
	p->zyg_watch[ZW_SOCK].kind = ZW_SOCK;
	p->zyg_watch[ZW_ERR].proc = NULL;
	p->zyg_watch[ZW_ERR].kind = ZW_ERR;
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = &p->zyg_watch[ZW_SOCK];
	int failed = epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->zyg_sock, &ev) != 0;
	ev.data.ptr = &p->zyg_watch[ZW_ERR];
	if (!failed && p->zyg_err >= 0)
		failed = epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->zyg_err, &ev) != 0;
	if (failed) {
		htp_errorf(error, -1, "epoll_ctl: %s", strerror(errno));
		zygote_end(p, 0, NULL);
		return -1;
	}
	return 0;
}

/* Start the zygote of the deployed image and wait until it is ready.  0, or
 * -1 with *error (malloc'd, NULL when memory ran out). */
static int zygote_start(local_provider *p, char **error)
{
	struct zyg_fds f = {{-1, -1}, {-1, -1}, -1};
	int rc = -1;
	if (zygote_open_fds(&f, error) == 0 && zygote_spawn(p, &f, error) == 0 &&
	    zygote_wait_ready(p, error) == 0 && zygote_watch(p, error) == 0) {
		free(p->zyg_digest);
		p->zyg_digest = local_strdup(p->dep.digest);
		rc = 0;
	}
	zyg_fds_close(&f);
	return rc;
}

int local_zygote_usable(local_provider *p)
{
	if (p->isolation != LOCAL_ISOLATION_NONE || p->zyg_state < 0)
		return 0;
	const char *no = getenv("HYPERTEST_LOCAL_NO_ZYGOTE");
	if (no && *no && strcmp(no, "0"))
		return 0;
	if (p->zyg_state > 0 && p->zyg_digest && p->dep.digest &&
	    strcmp(p->zyg_digest, p->dep.digest) != 0) {
		/* Another image was deployed since: a new zygote once the old one
		 * has no invocation left, exec until then. */
		size_t n = 0;
		local_proc **v = local_zygote_procs(p, &n);
		free(v);
		if (n > 0 || !v)
			return 0;
		local_zygote_stop(p);
	}
	if (p->zyg_state > 0)
		return 1;
	char *why = NULL;
	if (zygote_start(p, &why) != 0) {
		give_up(p, why ? why : "out of memory");
		free(why);
		return 0;
	}
	p->zyg_state = 1;
	local_log(p, HYPERTEST_LOG_DEBUG, "function zygote %s started (pid %ld)", p->program,
	          (long)p->zyg_pid);
	return 1;
}

/* ---- requests ---- */

static void watch_out(local_provider *p, int on)
{
	if (p->zyg_out_watched == on || p->zyg_sock < 0)
		return;
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = &p->zyg_watch[ZW_SOCK];
	if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->zyg_sock, &ev) == 0)
		p->zyg_out_watched = on;
}

/* Send what the socket takes. */
static void flush(local_provider *p)
{
	while (p->zyg_head && p->zyg_sock >= 0) {
		struct local_zreq *q = p->zyg_head;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(3 * sizeof(int))];
		} c;
		memset(&c, 0, sizeof c);
		struct iovec iov = {q->data, q->len};
		struct msghdr mh;
		zyg_msghdr(&mh, &iov, c.b, sizeof c.b);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
		memcpy(CMSG_DATA(cm), q->fds, 3 * sizeof(int));
		ssize_t n = sendmsg(p->zyg_sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == ETOOMANYREFS)) {
			watch_out(p, 1);
			return;
		}
		if (n < 0)
			return; /* the zygote is gone: the end of file tells */
		p->zyg_head = q->next;
		if (!p->zyg_head)
			p->zyg_tail = NULL;
		for (int k = 0; k < 3; k++)
			close(q->fds[k]);
		free(q->data);
		free(q);
	}
	watch_out(p, 0);
}

int local_zygote_request(local_provider *p, local_proc *pr, const char *id, const char *scratch,
                         int make_scratch, const char *take, const char *tmpdir, int pipes[3][2],
                         uint64_t *token)
{
	char *priv = htp_path_join(scratch, ".hypertest");
	char *home = priv ? htp_strdupf("HOME=%s/home", priv) : NULL;
	char *tmp = htp_strdupf("TMPDIR=%s", tmpdir);
	char *pwd = htp_strdupf("PWD=%s", scratch);
	/* LD_BIND_NOW was the zygote's own: a NAME alone unsets it */
	const char *bind = getenv("LD_BIND_NOW") ? "" : "LD_BIND_NOW";
	/* the zygote cleans the directory for the pool, when there is one */
	uint32_t flags = (make_scratch ? ZYG_MAKE_SCRATCH : 0) | (take ? ZYG_TAKE_SCRATCH : 0) |
	                 (p->pool_dir && p->dep_loaded ? ZYG_CLEAN_SCRATCH : 0) | ZYG_LINK_TMPDIR;
	const char *strs[9] = {id, scratch, home, tmp, pwd, bind};
	size_t nstrs = 6;
	strs[nstrs++] = p->dep.task_root ? p->dep.task_root : "";
	if (take)
		strs[nstrs++] = take;
	strs[nstrs++] = tmpdir;
	struct local_zreq *q = calloc(1, sizeof *q);
	int rc = 0;
	size_t len = sizeof(struct zyg_request);
	for (size_t i = 0; i < nstrs; i++)
		len += strs[i] ? strlen(strs[i]) + 1 : 0;
	if (!q || !home || !tmp || !pwd || !(q->data = malloc(len)) || slot_new(p, pr, token) != 0) {
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (len > ZYG_MAX_REQUEST) {
		local_zygote_forget(p, *token);
		rc = local_fail(p, HYPERTEST_ERR_INVALID, "scratch directory %s: path too long",
		                scratch);
		goto out;
	}
	struct zyg_request h;
	memset(&h, 0, sizeof h);
	h.magic = ZYG_MAGIC;
	h.type = ZYG_REQUEST;
	h.token = *token;
	h.memory_mb = p->memory_mb;
	h.nstrings = (uint32_t)nstrs;
	h.flags = flags;
	h.nentries = (uint32_t)p->dep.nentries;
	memcpy(q->data, &h, sizeof h);
	q->len = sizeof h;
	for (size_t i = 0; i < nstrs; i++) {
		size_t l = strlen(strs[i]) + 1;
		memcpy(q->data + q->len, strs[i], l);
		q->len += l;
	}
	q->token = *token;
	int child_end[3] = {pipes[0][0], pipes[1][1], pipes[2][1]};
	memcpy(q->fds, child_end, sizeof q->fds);
	pipes[0][0] = pipes[1][1] = pipes[2][1] = -1;
	if (p->zyg_tail)
		p->zyg_tail->next = q;
	else
		p->zyg_head = q;
	p->zyg_tail = q;
	q = NULL;
	flush(p);
out:
	if (q) {
		free(q->data);
		free(q);
	}
	free(priv);
	free(home);
	free(tmp);
	free(pwd);
	/* the child's ends are the zygote's or nobody's now */
	if (pipes[0][0] >= 0)
		close(pipes[0][0]);
	if (pipes[1][1] >= 0)
		close(pipes[1][1]);
	if (pipes[2][1] >= 0)
		close(pipes[2][1]);
	pipes[0][0] = pipes[1][1] = pipes[2][1] = -1;
	return rc;
}

size_t local_zygote_drop_unsent(local_provider *p)
{
	size_t n = 0;
	for (struct local_zreq *q = p->zyg_head; q; q = q->next, n++)
		local_zygote_forget(p, q->token);
	queue_free(p);
	return n;
}

/* ---- events, messages ---- */

void local_zygote_event(local_provider *p, const local_watch *w, uint32_t events)
{
	if (w->kind == ZW_ERR)
		drain_stderr(p);
	else if (events & EPOLLOUT)
		flush(p);
}

int local_zygote_receive(local_provider *p, local_zmsg *m, int wait_ms, char **why)
{
	int64_t end = htp_now_ms() + (wait_ms > 0 ? wait_ms : 0);
	while (p->zyg_sock >= 0) {
		struct zyg_reply r;
		char *what = NULL, *how = NULL;
		int got = read_reply(p, &r, &what);
		if (got < 0) {
			zygote_end(p, 200, &how);
			htp_errorf(why, -1, "%s (%s)", how ? how : "the function zygote ended",
			           what ? what : "out of memory");
			give_up(p, why && *why ? *why : "the function zygote ended");
			free(what);
			free(how);
			return -1;
		}
		if (got == 0) {
			int64_t left = end - htp_now_ms();
			if (left <= 0)
				return 0;
			struct pollfd pf = {p->zyg_sock, POLLIN, 0};
			poll(&pf, 1, (int)left);
			continue;
		}
		if (r.type != LOCAL_ZMSG_STARTED && r.type != LOCAL_ZMSG_FAILED &&
		    r.type != LOCAL_ZMSG_EXITED)
			continue;
		local_proc *pr = slot_find(p, r.token);
		if (!pr)
			continue; /* forgotten (a start that was abandoned) */
		m->type = (int)r.type;
		m->proc = pr;
		m->pid = (pid_t)r.pid;
		m->value = r.value;
		m->cpu_ms = r.cpu_ms;
		m->maxrss_kb = r.maxrss_kb;
		m->cleaned = r.cleaned != 0;
		return 1;
	}
	return 0;
}

void local_zygote_stop(local_provider *p)
{
	if (p->zyg_state > 0) {
		zygote_end(p, 5000, NULL);
		p->zyg_state = 0;
	}
	queue_free(p);
	free(p->zyg_digest);
	p->zyg_digest = NULL;
	free(p->zyg_slots);
	free(p->zyg_gen);
	free(p->zyg_free);
	p->zyg_slots = NULL;
	p->zyg_gen = NULL;
	p->zyg_free = NULL;
	p->zyg_nslots = p->zyg_cap = p->zyg_nfree = 0;
}
