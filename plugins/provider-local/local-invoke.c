/*
 * local-invoke.c - invocations of the local provider: one process of the
 * function runtime program per invocation, all driven by one epoll loop on
 * the core's thread.
 *
 * Per invocation the loop watches four descriptors: a pidfd (the process
 * ended), stdin (the payload is written as the pipe takes it), stdout (the
 * response, at most maxResponseBytes) and stderr (its last 4 KiB are kept
 * for the error message).  Without pidfd_open (Linux < 5.3) exits are
 * found by polling waitid() on each pid every 10 ms instead.  Children are
 * reaped by pid, never with waitpid(-1), so other children of the
 * orchestrator are left alone.
 *
 * When the process ends: its group is killed (while the leader is a zombie
 * its id cannot be reused), the pipes are drained, the leader is reaped and
 * the invocation completes.  A timeout, an oversized response or a cancel
 * kills the group and completes the invocation at once; the process is
 * reaped later, when its pidfd says so.
 *
 * With isolation "bubblewrap" and "image" each is a bwrap started with exec
 * (local-spawn.c).  With isolation "none" the processes are children of the zygote
 * (local-zygote.c) instead: started by a request on its socket, their end
 * reported by its EXITED message (so no pidfd), the rest as above.
 *
 * Each invocation runs in functionDir/scratch/<testId> (local-scratch.c),
 * given back once the process is reaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "local.h"

enum { W_PID, W_IN, W_OUT, W_ERR, W_COUNT };

#define ERR_TAIL 4096
#define FALLBACK_POLL_MS 10
/* how often an invoke waiting for the image's lock tries again */
#define LOCK_RETRY_MS 100

struct local_proc {
	local_provider *p;
	hypertest_invocation *inv; /* NULL once completed */
	pid_t pid;
	int fd[W_COUNT]; /* -1 when closed */
	struct local_watch w[W_COUNT];
	int in_watched;  /* stdin registered for EPOLLOUT */
	char *payload;   /* what is left to write */
	size_t payload_len, payload_off;
	char *out;
	size_t out_len, out_cap;
	char err[ERR_TAIL];
	size_t err_len;
	int err_cut;
	int64_t deadline; /* monotonic ms */
	int cancelled;
	int zyg;          /* a child of the zygote (pid 0 until it says which) */
	uint64_t ztoken;  /* its name there */
	int have_usage;   /* the function's rusage is known (reaped) */
	int64_t cpu_ms, maxrss_kb;
	char *scratch;
	int scratch_clean; /* the zygote cleaned it for the pool */
	int tmpdir_gone;   /* the zygote removed the TMPDIR link */
	char *tmpdir;     /* its TMPDIR: a short link (local-scratch.c) */
	local_proc *prev, *next; /* the running or the detached list */
	/* the lists of one batch of events: exited, and gone (to free) */
	int in_finish, in_gone;
	local_proc *finish_next, *gone_next;
};

static int sys_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

int local_invoke_init(local_provider *p)
{
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return local_fail(p, HYPERTEST_ERR_IO, "epoll_create1: %s",
		                  strerror(errno));
	/* HYPERTEST_LOCAL_NO_PIDFD=1 forces the polling fallback (for tests). */
	const char *no = getenv("HYPERTEST_LOCAL_NO_PIDFD");
	int fd = (no && *no && strcmp(no, "0")) ? -1 : sys_pidfd_open(getpid());
	p->use_pidfd = fd >= 0;
	if (fd >= 0)
		close(fd);
	return 0;
}

/* ---- lists ------------------------------------------------------------------- */

static void run_append(local_provider *p, local_proc *pr)
{
	pr->prev = p->run_tail;
	pr->next = NULL;
	if (p->run_tail)
		p->run_tail->next = pr;
	else
		p->run_head = pr;
	p->run_tail = pr;
	p->nrunning++;
}

static void list_remove(local_provider *p, local_proc *pr)
{
	if (pr->inv) {
		if (pr->prev)
			pr->prev->next = pr->next;
		else
			p->run_head = pr->next;
		if (pr->next)
			pr->next->prev = pr->prev;
		else
			p->run_tail = pr->prev;
		p->nrunning--;
	} else {
		if (pr->prev)
			pr->prev->next = pr->next;
		else
			p->detached = pr->next;
		if (pr->next)
			pr->next->prev = pr->prev;
	}
	pr->prev = pr->next = NULL;
}

static void detached_push(local_provider *p, local_proc *pr)
{
	pr->prev = NULL;
	pr->next = p->detached;
	if (p->detached)
		p->detached->prev = pr;
	p->detached = pr;
}

/* ---- descriptors --------------------------------------------------------------- */

static int watch(local_proc *pr, int kind, uint32_t events)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = &pr->w[kind];
	return epoll_ctl(pr->p->epfd, EPOLL_CTL_ADD, pr->fd[kind], &ev);
}

static void fd_close(local_proc *pr, int kind)
{
	if (pr->fd[kind] < 0)
		return;
	epoll_ctl(pr->p->epfd, EPOLL_CTL_DEL, pr->fd[kind], NULL);
	close(pr->fd[kind]);
	pr->fd[kind] = -1;
}

/* write() that neither raises SIGPIPE nor leaves it pending when the
 * reader is gone (EPIPE is returned instead). */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t set, old, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	int was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	ssize_t w = write(fd, buf, len);
	int e = errno;
	if (w < 0 && e == EPIPE && !was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return w;
}

/* Write what the pipe takes; close stdin when all is written or the
 * function stopped reading (its exit status tells the rest). */
static void feed_stdin(local_proc *pr)
{
	while (pr->fd[W_IN] >= 0 && pr->payload_off < pr->payload_len) {
		ssize_t w = write_nosigpipe(pr->fd[W_IN], pr->payload + pr->payload_off,
		                            pr->payload_len - pr->payload_off);
		if (w > 0) {
			pr->payload_off += (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			if (!pr->in_watched && watch(pr, W_IN, EPOLLOUT) == 0) {
				pr->in_watched = 1;
				return;
			}
			if (pr->in_watched)
				return;
			break; /* cannot watch: give up on the rest */
		} else {
			break;
		}
	}
	fd_close(pr, W_IN);
	free(pr->payload);
	pr->payload = NULL;
}

/* Read stdout until it would block; 1 when the response grew past the
 * limit. */
static int read_stdout(local_proc *pr)
{
	size_t limit = pr->p->max_response + 1; /* one byte past the limit tells */
	while (pr->fd[W_OUT] >= 0) {
		if (pr->out_len == pr->out_cap) {
			size_t ncap = pr->out_cap ? pr->out_cap * 2 : 4096;
			if (ncap > limit)
				ncap = limit;
			char *nb = realloc(pr->out, ncap + 1);
			if (!nb)
				return -1;
			pr->out = nb;
			pr->out_cap = ncap;
		}
		ssize_t r = read(pr->fd[W_OUT], pr->out + pr->out_len, pr->out_cap - pr->out_len);
		if (r > 0) {
			pr->out_len += (size_t)r;
			if (pr->out_len > pr->p->max_response)
				return 1;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && errno == EAGAIN) {
			return 0;
		} else {
			fd_close(pr, W_OUT); /* end of file (or an error: same outcome) */
		}
	}
	return 0;
}

static void tail_append(local_proc *pr, const char *d, size_t n)
{
	if (n >= ERR_TAIL) {
		memcpy(pr->err, d + n - ERR_TAIL, ERR_TAIL);
		pr->err_cut = pr->err_cut || pr->err_len > 0 || n > ERR_TAIL;
		pr->err_len = ERR_TAIL;
		return;
	}
	if (pr->err_len + n > ERR_TAIL) {
		size_t drop = pr->err_len + n - ERR_TAIL;
		memmove(pr->err, pr->err + drop, pr->err_len - drop);
		pr->err_len -= drop;
		pr->err_cut = 1;
	}
	memcpy(pr->err + pr->err_len, d, n);
	pr->err_len += n;
}

static void read_stderr(local_proc *pr)
{
	char buf[ERR_TAIL];
	while (pr->fd[W_ERR] >= 0) {
		ssize_t r = read(pr->fd[W_ERR], buf, sizeof buf);
		if (r > 0)
			tail_append(pr, buf, (size_t)r);
		else if (r < 0 && errno == EINTR)
			continue;
		else if (r < 0 && errno == EAGAIN)
			return;
		else
			fd_close(pr, W_ERR);
	}
}

/* ---- completion ------------------------------------------------------------------- */

static void proc_free(local_proc *pr)
{
	for (int k = 0; k < W_COUNT; k++)
		fd_close(pr, k);
	if (pr->zyg)
		local_zygote_forget(pr->p, pr->ztoken);
	if (pr->tmpdir_gone)
		free(pr->tmpdir);
	else
		local_scratch_tmpdir_drop(pr->p, pr->tmpdir);
	local_scratch_release(pr->p, pr->scratch, pr->scratch_clean);
	free(pr->payload);
	free(pr->out);
	free(pr);
}

static void kill_group(local_proc *pr)
{
	if (pr->pid <= 0)
		return; /* never started, or reaped */
	kill(-pr->pid, SIGKILL);
	kill(pr->pid, SIGKILL); /* in case it left its group */
}

/* The stderr tail as "; stderr: ..." (empty when there was none). */
static void stderr_note(local_proc *pr, char *out, size_t size)
{
	size_t n = pr->err_len;
	while (n > 0 && (pr->err[n - 1] == '\n' || pr->err[n - 1] == '\r' ||
	                 pr->err[n - 1] == ' ' || pr->err[n - 1] == '\t'))
		n--;
	if (n == 0) {
		out[0] = '\0';
		return;
	}
	snprintf(out, size, "; stderr: %s%.*s", pr->err_cut ? "..." : "", (int)n, pr->err);
}

/* Complete a running invocation and move it to the detached list. */
static void complete(local_proc *pr, const char *response, size_t len, int code,
                     const char *message)
{
	local_provider *p = pr->p;
	hypertest_invocation *inv = pr->inv;
	list_remove(p, pr);
	pr->inv = NULL;
	detached_push(p, pr);
	for (int k = W_IN; k < W_COUNT; k++)
		fd_close(pr, k);
	if (pr->have_usage && p->up.invocation_usage) {
		p->up.invocation_usage(inv, "cpuMs", (double)pr->cpu_ms);
		p->up.invocation_usage(inv, "maxRssKB", (double)pr->maxrss_kb);
	}
	if (pr->pid >= 0) /* not reaped yet: its test id may come again at once */
		pr->scratch = local_scratch_set_aside(p, pr->scratch);
	p->up.invoke_done(inv, response, len, code, message);
}

/* Kill the process and complete the invocation with an error now. */
static void fail_now(local_proc *pr, int code, const char *fmt, ...) LOCAL_PRINTF(3, 4);
static void fail_now(local_proc *pr, int code, const char *fmt, ...)
{
	char msg[2048], note[ERR_TAIL + 64], full[sizeof msg + sizeof note];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	kill_group(pr);
	read_stderr(pr);
	stderr_note(pr, note, sizeof note);
	snprintf(full, sizeof full, "%s%s", msg, note);
	complete(pr, NULL, 0, code, full);
}

static void conclude(local_proc *pr, int lost, int status);

/* The process ended (pidfd readable or found by polling): returns 1 when
 * its invocation completed, 0 when it has not really exited yet. */
static int finish_exited(local_proc *pr)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int lost = 0; /* reaped by someone else (waitpid(-1), SIGCHLD ignored) */
	if (waitid(P_PID, (id_t)pr->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
		if (errno != ECHILD)
			return 0;
		lost = 1;
	} else if (si.si_pid == 0) {
		return 0;
	}
	if (!lost)
		kill(-pr->pid, SIGKILL); /* what it left behind in its group */
	int status = 0;
	pid_t w = -1;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	while (!lost && (w = wait4(pr->pid, &status, 0, &ru)) < 0 && errno == EINTR)
		;
	if (w > 0) {
		pr->have_usage = 1;
		pr->cpu_ms = (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
		             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
		pr->maxrss_kb = ru.ru_maxrss;
	}
	pr->pid = -pr->pid; /* negative: reaped (by us or not) */
	fd_close(pr, W_PID);
	conclude(pr, lost || w < 0, status);
	return 1;
}

/* Complete the invocation of a process that ended with wait status
 * status (lost: unknown): whatever it wrote is in the pipes already. */
static void conclude(local_proc *pr, int lost, int status)
{
	int big = read_stdout(pr);
	read_stderr(pr);
	char note[ERR_TAIL + 64], msg[ERR_TAIL + 256];
	stderr_note(pr, note, sizeof note);
	if (lost) {
		snprintf(msg, sizeof msg, "the function's exit status was lost: another part of this "
		         "process reaped it (waitpid(-1) or SIGCHLD ignored)%s", note);
	} else if (big < 0) {
		snprintf(msg, sizeof msg, "out of memory reading the response");
	} else if (big > 0) {
		snprintf(msg, sizeof msg, "response larger than %zu bytes%s", pr->p->max_response,
		         note);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && pr->out_len > 0) {
		pr->out[pr->out_len] = '\0';
		complete(pr, pr->out, pr->out_len, 0, NULL);
		return;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(msg, sizeof msg, "function exited without a response%s", note);
	} else if (WIFEXITED(status) && pr->p->isolation != LOCAL_ISOLATION_NONE &&
	           WEXITSTATUS(status) > 128 && WEXITSTATUS(status) < 128 + NSIG) {
		/* bwrap reports a program killed by signal N as status 128 + N */
		int sig = WEXITSTATUS(status) - 128;
		snprintf(msg, sizeof msg, "function exited with status %d (killed by signal %d (%s) "
		         "in the sandbox)%s", WEXITSTATUS(status), sig, strsignal(sig), note);
	} else if (WIFEXITED(status)) {
		snprintf(msg, sizeof msg, "function exited with status %d%s", WEXITSTATUS(status),
		         note);
	} else if (WIFSIGNALED(status)) {
		snprintf(msg, sizeof msg, "function killed by signal %d (%s)%s", WTERMSIG(status),
		         strsignal(WTERMSIG(status)), note);
	} else {
		snprintf(msg, sizeof msg, "function ended with wait status %d%s", status, note);
	}
	complete(pr, NULL, 0, HYPERTEST_ERR_PROVIDER, msg);
}

/* Reap a detached process if it is gone; 1 when it was. */
static int reap_detached(local_proc *pr)
{
	if (pr->pid < 0)
		return 1;
	pid_t w;
	while ((w = waitpid(pr->pid, NULL, WNOHANG)) < 0 && errno == EINTR)
		;
	if (w == 0)
		return 0;
	pr->pid = -pr->pid;
	return 1;
}

/* ---- start ------------------------------------------------------------------------ */

static int safe_name(const char *s)
{
	if (!s || !*s || s[0] == '.' || strlen(s) > 200)
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* Undo a start that failed after the process was started (or asked for:
 * a child of the zygote is killed when its pid arrives, and forgotten
 * when it was reaped). */
static void abort_started(local_proc *pr)
{
	kill_group(pr);
	list_remove(pr->p, pr);
	if (pr->zyg) {
		pr->inv = NULL;
		pr->cancelled = 1;
		pr->scratch = local_scratch_set_aside(pr->p, pr->scratch);
		detached_push(pr->p, pr);
		return;
	}
	while (waitpid(pr->pid, NULL, 0) < 0 && errno == EINTR)
		;
	proc_free(pr);
}

/* ---- waiting for the image ---------------------------------------------------------
 *
 * A deploy unpacking or repairing the image holds its lock exclusively; an
 * invoke must not run tests in it meanwhile.  Rather than block in flock()
 * (which a signal handler installed with SA_RESTART does not end, so the
 * first SIGINT/SIGTERM would not), invocations started meanwhile are kept
 * here, and INVOKE_WAIT tries the lock again every LOCK_RETRY_MS, in a
 * poll() that any signal ends: the core then sees its cancel flag and calls
 * INVOKE_CANCEL, and the next wait completes them cancelled. */

typedef struct local_waiting {
	struct local_waiting *next;
	hypertest_invocation *inv;
	char *payload;
	size_t len;
} local_waiting;

static int start_now(local_provider *p, hypertest_invocation *inv, const char *payload,
                     size_t len);

/* Keep inv for later; 0, or an error code with the error set. */
static int wait_push(local_provider *p, hypertest_invocation *inv, const char *payload,
                     size_t len)
{
	local_waiting *w = calloc(1, sizeof *w);
	if (!w || !(w->payload = malloc(len ? len : 1))) {
		free(w);
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (len)
		memcpy(w->payload, payload, len);
	w->len = len;
	w->inv = inv;
	if (!p->wait_head)
		local_log(p, HYPERTEST_LOG_INFO, "waiting for the deployed image in %s/images: "
		          "another process holds its lock (a deploy unpacking or repairing it)",
		          p->function_dir);
	if (p->wait_tail)
		p->wait_tail->next = w;
	else
		p->wait_head = w;
	p->wait_tail = w;
	return 0;
}

/* Complete every waiting invocation with code and message (NULL: start
 * each one now, completing those that cannot start with their error);
 * how many were completed. */
static int wait_flush(local_provider *p, int code, const char *message)
{
	int done = 0;
	local_waiting *w = p->wait_head;
	p->wait_head = p->wait_tail = NULL;
	p->wait_cancelled = 0;
	while (w) {
		local_waiting *next = w->next;
		int rc = code;
		char *error = NULL;
		if (!message) {
			char **was = local_fail_into(p, &error);
			rc = start_now(p, w->inv, w->payload, w->len);
			local_fail_into(p, was);
		}
		if (rc != 0) {
			p->up.invoke_done(w->inv, NULL, 0, rc,
			                  message ? message : error ? error : "cannot start the function");
			done++;
		}
		free(error);
		free(w->payload);
		free(w);
		w = next;
	}
	return done;
}

/* INVOKE_WAIT while invocations wait for the image: cancelled ones
 * completed; the lock tried again; slept up to LOCK_RETRY_MS (less when
 * timeout_ms is, ended by any signal).  How many completed; *still set
 * while they keep waiting. */
static int wait_image(local_provider *p, int timeout_ms, int *still)
{
	*still = 0;
	if (p->wait_cancelled)
		return wait_flush(p, HYPERTEST_ERR_CANCELLED,
		                  "cancelled while waiting for the deployed image (another process "
		                  "held its lock)");
	int busy = 0;
	char *error = NULL;
	int rc = local_deployed_load_try_err(p, &busy, &error);
	if (rc != 0) {
		int n = wait_flush(p, rc, error ? error : "cannot load the image");
		free(error);
		return n;
	}
	if (!busy)
		return wait_flush(p, 0, NULL);
	*still = 1;
	int ms = timeout_ms < 0 || timeout_ms > LOCK_RETRY_MS ? LOCK_RETRY_MS : timeout_ms;
	if (ms > 0)
		poll(NULL, 0, ms); /* EINTR: a signal, the core looks at its cancel flag */
	return 0;
}

int local_invoke_start(void *self, hypertest_invocation *inv, const char *payload, size_t len)
{
	local_provider *p = self;
	if (p->wait_head)
		return wait_push(p, inv, payload, len);
	if (!p->dep_loaded) {
		int busy = 0, rc = local_deployed_load_try(p, &busy);
		if (rc != 0)
			return rc;
		if (busy)
			return wait_push(p, inv, payload, len);
	}
	return start_now(p, inv, payload, len);
}

static int start_now(local_provider *p, hypertest_invocation *inv, const char *payload,
                     size_t len)
{
	if (p->isolation == LOCAL_ISOLATION_LAMBDA)
		return local_lambda_invoke_start(p, inv, payload, len);
	int rc = local_deployed_load(p);
	if (rc != 0)
		return rc;
	if (p->isolation != LOCAL_ISOLATION_NONE && !p->bwrap)
		return local_fail(p, HYPERTEST_ERR_CONFIG, "isolation \"%s\" %s",
		                  local_isolation_name(p), local_bwrap_missing);
	if (p->isolation == LOCAL_ISOLATION_IMAGE && !p->dep.image.entrypoint)
		return local_fail(p, HYPERTEST_ERR_IMAGE, "the deployed image %s has no entry "
		                  "point%s: isolation \"image\" runs the image's own Entrypoint "
		                  "(deploy again with this provider, which adds the function "
		                  "runtime and its entry point)", p->dep.digest,
		                  p->dep.image.recorded ? "" : " recorded in functionDir/current");
	/* isolation "image" runs the image's entry point, not this program */
	const char *program = p->isolation == LOCAL_ISOLATION_IMAGE ? NULL : local_program(p);
	if (!program && p->isolation != LOCAL_ISOLATION_IMAGE)
		return HYPERTEST_ERR_PROVIDER;
	if (p->isolation != LOCAL_ISOLATION_NONE && local_mkdir_p(p->bucket_dir) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s",
		                  p->bucket_dir, strerror(errno));

	const char *id = p->up.invocation_test_id ? p->up.invocation_test_id(inv) : NULL;
	char fallback[32];
	p->seq++;
	if (!safe_name(id)) {
		snprintf(fallback, sizeof fallback, "inv-%lu", p->seq);
		id = fallback;
	}
	local_proc *pr = calloc(1, sizeof *pr);
	if (!pr)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	pr->p = p;
	for (int k = 0; k < W_COUNT; k++) {
		pr->fd[k] = -1;
		pr->w[k].proc = pr;
		pr->w[k].kind = k;
	}
	int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	/* through the zygote, the directory is the zygote's to take from the
	 * pool, or to make (local-scratch.c) */
	int zygote = local_zygote_usable(p), make_scratch = 0;
	char *take = NULL;
	pr->scratch =
	    local_scratch_acquire(p, id, zygote ? &make_scratch : NULL, zygote ? &take : NULL);
	if (!pr->scratch || (p->isolation != LOCAL_ISOLATION_IMAGE &&
	                     !(pr->tmpdir = local_scratch_tmpdir(p, pr->scratch, !zygote)))) {
		rc = HYPERTEST_ERR_IO;
		goto fail;
	}
	if (local_pipes_open(pipes) != 0) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create pipes: %s%s", strerror(errno),
		                errno == EMFILE ? " (too many open files: lower concurrency)" : "");
		goto fail;
	}
	if (zygote) {
		rc = local_zygote_request(p, pr, id, pr->scratch, make_scratch, take, pr->tmpdir, pipes,
		                          &pr->ztoken);
		free(take);
		take = NULL;
		if (rc != 0)
			goto fail;
		pr->zyg = 1;
	} else {
		pr->pid = local_start_function(p, program, pr->scratch, pr->tmpdir, pipes);
		if (pr->pid < 0) {
			pr->pid = 0;
			rc = HYPERTEST_ERR_PROVIDER;
			goto fail;
		}
	}
	pr->fd[W_IN] = pipes[0][1];
	pr->fd[W_OUT] = pipes[1][0];
	pr->fd[W_ERR] = pipes[2][0];
	pr->inv = inv;
	pr->deadline = htp_now_ms() + (int64_t)(p->timeout_s * 1000.0 + 0.5);
	run_append(p, pr);
	int pidfd = p->use_pidfd && !pr->zyg;
	if (pidfd)
		pr->fd[W_PID] = sys_pidfd_open(pr->pid);
	if ((pidfd && (pr->fd[W_PID] < 0 || watch(pr, W_PID, EPOLLIN) != 0)) ||
	    watch(pr, W_OUT, EPOLLIN) != 0 || watch(pr, W_ERR, EPOLLIN) != 0) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot watch the function process of %s: %s",
		                id, strerror(errno));
		abort_started(pr);
		return rc;
	}
	/* Write what fits now; keep a copy of the rest. */
	ssize_t w = len ? write_nosigpipe(pr->fd[W_IN], payload, len) : 0;
	size_t written = w > 0 ? (size_t)w : 0;
	if (written < len && (w >= 0 || errno == EAGAIN || errno == EINTR)) {
		pr->payload = malloc(len - written);
		if (!pr->payload) {
			abort_started(pr);
			return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		}
		memcpy(pr->payload, payload + written, len - written);
		pr->payload_len = len - written;
	}
	feed_stdin(pr);
	return 0;

fail:
	free(take); /* still in the pool, for a later run */
	local_pipes_close(pipes);
	proc_free(pr);
	return rc;
}

/* ---- wait ------------------------------------------------------------------------- */

static void push_finish(local_proc **list, local_proc *pr)
{
	if (pr->in_finish)
		return;
	pr->in_finish = 1;
	pr->finish_next = *list;
	*list = pr;
}

static void push_gone(local_proc **list, local_proc *pr)
{
	if (pr->in_gone)
		return;
	pr->in_gone = 1;
	pr->gone_next = *list;
	*list = pr;
}

/* Complete every invocation whose deadline passed. */
static int expire(local_provider *p, int64_t now)
{
	int n = 0;
	while (p->run_head && p->run_head->deadline <= now) {
		fail_now(p->run_head, HYPERTEST_ERR_TIMEOUT, "timed out after %g s", p->timeout_s);
		n++;
	}
	return n;
}

/* Without pidfds: look for exits by polling. */
static void poll_exits(local_provider *p, local_proc **finish, local_proc **gone)
{
	for (local_proc *pr = p->run_head; pr; pr = pr->next) {
		if (pr->zyg)
			continue; /* the zygote tells */
		siginfo_t si;
		memset(&si, 0, sizeof si);
		int r = waitid(P_PID, (id_t)pr->pid, &si, WEXITED | WNOHANG | WNOWAIT);
		if ((r == 0 && si.si_pid != 0) || (r != 0 && errno == ECHILD))
			push_finish(finish, pr);
	}
	for (local_proc *pr = p->detached; pr; pr = pr->next)
		if (!pr->zyg && reap_detached(pr))
			push_gone(gone, pr);
}

/* The zygote is gone: its invocations fail, its children's groups are
 * killed (the children die by their parent-death signal anyway). */
static int zygote_lost(local_provider *p, const char *why, local_proc **gone)
{
	size_t n = 0;
	local_proc **v = local_zygote_procs(p, &n);
	int done = 0;
	for (size_t i = 0; v && i < n; i++) {
		local_proc *pr = v[i];
		if (pr->inv) {
			fail_now(pr, HYPERTEST_ERR_PROVIDER, "%s: this invocation failed (the next ones "
			         "start with exec)", why);
			done++;
		} else {
			kill_group(pr);
		}
		local_zygote_forget(p, pr->ztoken);
		pr->zyg = 0;
		pr->pid = 0;
		push_gone(gone, pr);
	}
	free(v);
	return done;
}

/* Messages of the zygote: pids, ends of children, its own end. */
static int zygote_messages(local_provider *p, local_proc **gone)
{
	int done = 0, r;
	local_zmsg m;
	char *why = NULL;
	while ((r = local_zygote_receive(p, &m, 0, &why)) > 0) {
		local_proc *pr = m.proc;
		switch (m.type) {
		case LOCAL_ZMSG_STARTED:
			pr->pid = m.pid;
			if (!pr->inv || pr->cancelled)
				kill_group(pr); /* timed out or cancelled before */
			break;
		case LOCAL_ZMSG_FAILED:
			pr->pid = 0;
			if (pr->inv) {
				fail_now(pr, HYPERTEST_ERR_PROVIDER, "cannot start the function: the "
				         "zygote's fork failed: %s", strerror(m.value));
				done++;
			}
			push_gone(gone, pr);
			break;
		case LOCAL_ZMSG_EXITED:
			pr->pid = -m.pid; /* reaped by the zygote */
			pr->scratch_clean = m.cleaned;
			pr->tmpdir_gone = 1; /* the zygote made it and removed it */
			pr->have_usage = 1;
			pr->cpu_ms = m.cpu_ms;
			pr->maxrss_kb = m.maxrss_kb;
			if (pr->inv) {
				conclude(pr, 0, m.value);
				done++;
			}
			push_gone(gone, pr);
			break;
		default:
			break;
		}
	}
	if (r < 0)
		done += zygote_lost(p, why ? why : "the function zygote ended", gone);
	free(why);
	return done;
}

static int handle_events(local_provider *p, struct epoll_event *evs, int n)
{
	local_proc *finish = NULL, *gone = NULL;
	int done = 0, zygote = 0;
	for (int i = 0; i < n; i++) {
		struct local_watch *w = evs[i].data.ptr;
		local_proc *pr = w->proc;
		if (!pr) {
			local_zygote_event(p, w, evs[i].events);
			zygote |= w->kind == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR));
			continue;
		}
		if (pr->fd[w->kind] < 0)
			continue; /* closed earlier in this batch */
		switch (w->kind) {
		case W_PID:
			if (pr->inv)
				push_finish(&finish, pr);
			else if (reap_detached(pr))
				push_gone(&gone, pr);
			break;
		case W_IN:
			if (pr->inv)
				feed_stdin(pr);
			break;
		case W_OUT: {
			int big = read_stdout(pr);
			if (big > 0) {
				fail_now(pr, HYPERTEST_ERR_PROVIDER, "response larger than %zu bytes",
				         p->max_response);
				done++;
			} else if (big < 0) {
				fail_now(pr, HYPERTEST_ERR_NOMEM, "out of memory reading the response");
				done++;
			}
			break;
		}
		case W_ERR:
			read_stderr(pr);
			break;
		}
	}
	if (zygote)
		done += zygote_messages(p, &gone);
	if (!p->use_pidfd)
		poll_exits(p, &finish, &gone);
	for (local_proc *pr = finish; pr; pr = pr->finish_next) {
		pr->in_finish = 0;
		if (pr->inv && finish_exited(pr)) {
			done++;
			if (reap_detached(pr)) /* it was reaped in finish_exited */
				push_gone(&gone, pr);
		}
	}
	while (gone) {
		local_proc *pr = gone;
		gone = pr->gone_next;
		list_remove(p, pr);
		proc_free(pr);
	}
	return done;
}

int local_invoke_wait(void *self, int timeout_ms)
{
	local_provider *p = self;
	int done = 0;
	if (p->wait_head) {
		int still;
		done = wait_image(p, timeout_ms, &still);
		if (still || done > 0)
			return done;
	}
	if (p->isolation == LOCAL_ISOLATION_LAMBDA)
		return local_lambda_invoke_wait(p, timeout_ms);
	struct epoll_event evs[256];
	int64_t until = timeout_ms < 0 ? INT64_MAX : htp_now_ms() + timeout_ms;

	if (p->cancel_pending) {
		p->cancel_pending = 0;
		local_proc *pr = p->run_head;
		while (pr) {
			local_proc *next = pr->next;
			if (pr->cancelled) {
				complete(pr, NULL, 0, HYPERTEST_ERR_CANCELLED, "cancelled");
				done++;
			}
			pr = next;
		}
	}
	for (;;) {
		int64_t now = htp_now_ms();
		done += expire(p, now);
		int64_t wait = 0;
		if (done == 0 && p->run_head) {
			wait = until - now;
			if (p->run_head->deadline - now < wait)
				wait = p->run_head->deadline - now;
			if (!p->use_pidfd && wait > FALLBACK_POLL_MS)
				wait = FALLBACK_POLL_MS;
			if (wait < 0)
				wait = 0;
			if (wait > INT_MAX)
				wait = INT_MAX;
		}
		int n = epoll_wait(p->epfd, evs, (int)(sizeof evs / sizeof evs[0]), (int)wait);
		if (n < 0 && errno != EINTR)
			return -local_fail(p, HYPERTEST_ERR_IO, "epoll_wait: %s",
			                   strerror(errno));
		int interrupted = n < 0;
		done += handle_events(p, evs, n > 0 ? n : 0);
		if (done > 0 || !p->run_head || interrupted || htp_now_ms() >= until)
			return done;
	}
}

void local_invoke_cancel(void *self)
{
	local_provider *p = self;
	if (p->wait_head)
		p->wait_cancelled = 1;
	if (p->isolation == LOCAL_ISOLATION_LAMBDA)
		local_lambda_invoke_cancel(p);
	for (local_proc *pr = p->run_head; pr; pr = pr->next) {
		kill_group(pr);
		pr->cancelled = 1;
		p->cancel_pending = 1;
	}
}

/* Destroy: the pids of the zygote's children that started (it answers
 * quickly; at most 2 s), so that their groups can be killed. */
static void zygote_learn_pids(local_provider *p)
{
	local_zygote_drop_unsent(p);
	int64_t end = htp_now_ms() + 2000;
	while (p->zyg_sock >= 0) {
		size_t n = 0;
		local_proc **v = local_zygote_procs(p, &n);
		int unknown = 0;
		for (size_t i = 0; v && i < n; i++)
			unknown |= v[i]->pid == 0;
		free(v);
		int64_t left = end - htp_now_ms();
		if (!v || !unknown || left <= 0)
			return;
		local_zmsg m;
		char *why = NULL;
		int r = local_zygote_receive(p, &m, (int)left, &why);
		free(why);
		if (r < 0)
			return;
		if (r > 0 && m.type == LOCAL_ZMSG_STARTED) {
			m.proc->pid = m.pid;
		} else if (r > 0) {
			m.proc->pid = m.type == LOCAL_ZMSG_EXITED ? -m.pid : 0;
			local_zygote_forget(p, m.proc->ztoken);
		}
	}
}

void local_invoke_shutdown(local_provider *p)
{
	while (p->wait_head) { /* never started nor completed: the core is going away */
		local_waiting *w = p->wait_head;
		p->wait_head = w->next;
		free(w->payload);
		free(w);
	}
	p->wait_tail = NULL;
	local_lambda_shutdown(p);
	if (p->zyg_state > 0)
		zygote_learn_pids(p);
	while (p->run_head) {
		local_proc *pr = p->run_head;
		kill_group(pr);
		list_remove(p, pr); /* never completed: the core is going away */
		pr->inv = NULL;
		detached_push(p, pr);
	}
	while (p->detached) {
		local_proc *pr = p->detached;
		if (pr->pid > 0) {
			kill_group(pr);
			while (!pr->zyg && waitpid(pr->pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		list_remove(p, pr);
		proc_free(pr);
	}
	local_zygote_stop(p); /* it exits, its children died above */
	if (p->epfd >= 0)
		close(p->epfd);
	p->epfd = -1;
}
