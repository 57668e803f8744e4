/*
 * local-lambda.c - isolation "lambda": the local provider as a Lambda
 * emulator.  Each sandbox (local-lambda-sandbox.c) runs the deployed
 * image's entry point, which takes its invocations from the Runtime API
 * served here on a loopback port of its own (AWS_LAMBDA_RUNTIME_API):
 *
 *   GET  /2018-06-01/runtime/invocation/next          200, the payload, with
 *        Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn,
 *        -Trace-Id; held until there is an invocation for this sandbox
 *   POST /2018-06-01/runtime/invocation/{id}/response 202; 413 over
 *        maxResponseBytes (the invocation then fails); 400 unknown id
 *   POST /2018-06-01/runtime/invocation/{id}/error    202; 400 unknown id
 *   POST /2018-06-01/runtime/init/error               202; 403 once the
 *        sandbox has asked for an invocation
 *   anything else                                     404
 *
 * An answer to an invocation that is no longer in flight (answered, timed
 * out) is 403 with errorType "InvalidStateTransition".  Every answer closes
 * its connection.  Bodies need a Content-Length (no chunked encoding).
 *
 * Sandboxes are reused as Lambda reuses them: an invocation goes to an idle
 * sandbox when there is one (a warm start), and a new sandbox is started
 * otherwise (a cold start; the core bounds how many run at once by its
 * concurrency).  An idle sandbox ends after idleTimeout seconds.  An
 * invocation past its deadline (timeout seconds after its start, a cold
 * start included) fails "timed out" and its sandbox is ended: the next
 * one starts cold.  A sandbox that ends fails the invocation it had, with
 * its init error when it posted one, else its exit status and the tail of
 * its output.  Starts are logged (info), and counted at the end.
 *
 * One epoll loop of its own, driven from INVOKE_WAIT on the core's thread.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "local.h"

#define RT "/2018-06-01/runtime"
#define HEAD_MAX 16384
#define TAIL_MAX 4096

enum { K_LISTEN, K_CONN, K_PID, K_LOG, K_API_LISTEN };

typedef struct lam_watch {
	int kind;
	void *ptr;
} lam_watch;

typedef struct lam_box lam_box;
struct lam_conn;

typedef struct lam_inv {
	hypertest_invocation *inv;
	char id[40];
	char *payload;
	size_t len;
	int64_t deadline;      /* monotonic ms */
	int64_t deadline_wall; /* epoch ms, for Lambda-Runtime-Deadline-Ms */
	lam_box *box;
	struct lam_inv *next; /* all in flight */
	int delivered;
	int cancelled; /* completed by the next wait */
	struct lam_conn *api; /* the Invoke API request waiting for it, if any */
} lam_inv;

typedef struct lam_conn {
	struct local_lambda *L;
	lam_box *box; /* NULL: a connection of the Invoke API */
	lam_inv *api_inv; /* the invocation an Invoke API request waits for */
	int fd;
	lam_watch w;
	char *buf; /* the request head, then its body */
	size_t len, cap;
	size_t head_len;       /* 0 until the head is complete */
	size_t content_length; /* of the body */
	size_t discarded;      /* body bytes past the limit, not kept */
	int too_large;
	char *out; /* the answer */
	size_t out_len, out_off;
	int held; /* a GET .../next waiting for an invocation */
	struct lam_conn *next;
} lam_conn;

struct lam_box {
	struct local_lambda *L;
	unsigned long num;
	pid_t pid; /* > 0 running, 0 reaped */
	int pidfd, lfd, logfd;
	lam_watch wl, wp, wlog;
	char api[64];
	lam_inv *cur;
	lam_conn *conns;
	int asked; /* has asked for an invocation */
	int ending; /* killed: replaced by a new one */
	char *init_error;
	char last_id[40]; /* the last invocation it had */
	int64_t idle_since;
	local_cgroup_box cg; /* its cgroup (cg.dir NULL: RLIMIT_AS) */
	char tail[TAIL_MAX];
	size_t tail_len;
	char line[1024]; /* the output line being read, logged at debug level */
	size_t line_len;
	struct lam_box *next;
};

struct local_lambda {
	local_provider *p;
	int epfd;
	lam_box *boxes;
	lam_inv *invs;
	int api_fd; /* the Invoke API's listening socket, or -1 */
	lam_watch api_w;
	struct lam_conn *api_conns;
	unsigned long seq, box_seq, cold, warm;
	int done; /* completed in this wait */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct local_lambda *lam_get(local_provider *p)
{
	if (p->lambda)
		return p->lambda;
	struct local_lambda *L = calloc(1, sizeof *L);
	if (!L)
		return NULL;
	L->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (L->epfd < 0) {
		free(L);
		return NULL;
	}
	L->p = p;
	L->api_fd = -1;
	p->lambda = L;
	return L;
}

static int lam_watch_fd(struct local_lambda *L, int fd, lam_watch *w, uint32_t events)
{
	struct epoll_event ev;
	memset(&ev, 0, sizeof ev);
	ev.events = events;
	ev.data.ptr = w;
	return epoll_ctl(L->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void lam_close(struct local_lambda *L, int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(L->epfd, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* ---- invocations --------------------------------------------------------------------------- */

static void inv_unlink(struct local_lambda *L, lam_inv *iv)
{
	for (lam_inv **pp = &L->invs; *pp; pp = &(*pp)->next)
		if (*pp == iv) {
			*pp = iv->next;
			return;
		}
}

/* How a failed invocation of the Invoke API is answered, beside the code
 * and message the core gets: Lambda's errorType, or the error document the
 * function posted, passed on as it is. */
typedef struct api_fail {
	const char *type;
	const char *body;
	size_t len;
	const char *msg; /* the errorMessage, when not the core's */
} api_fail;

static void api_answer(struct lam_conn *c, const char *resp, size_t len, int code,
                       const char *msg, const api_fail *af);

static void inv_complete_as(local_provider *p, lam_inv *iv, const char *resp, size_t len,
                            int code, const char *msg, const api_fail *af);

/* Complete iv (response, or code and message) and free it. */
static void inv_complete(local_provider *p, lam_inv *iv, const char *resp, size_t len, int code,
                         const char *msg)
{
	inv_complete_as(p, iv, resp, len, code, msg, NULL);
}

static void inv_complete_as(local_provider *p, lam_inv *iv, const char *resp, size_t len,
                            int code, const char *msg, const api_fail *af)
{
	struct local_lambda *L = p->lambda;
	if (iv->box && iv->box->cur == iv) {
		iv->box->cur = NULL;
		iv->box->idle_since = mono_ms();
	}
	inv_unlink(L, iv);
	hypertest_invocation *inv = iv->inv;
	lam_conn *api = iv->api;
	free(iv->payload);
	free(iv);
	if (api) {
		api->api_inv = NULL;
		api_answer(api, resp, len, code, msg, af);
	}
	if (!inv)
		return; /* an invocation of the Invoke API */
	L->done++;
	p->up.invoke_done(inv, resp, len, code, msg);
}

/* The output tail of a box as "; output: ..." (empty when none). */
static void tail_note(lam_box *b, char *out, size_t size)
{
	size_t n = b->tail_len;
	while (n > 0 && (b->tail[n - 1] == '\n' || b->tail[n - 1] == ' '))
		n--;
	if (n == 0)
		out[0] = '\0';
	else
		snprintf(out, size, "; output: %.*s", (int)n, b->tail);
}

/* ---- answers ------------------------------------------------------------------------------- */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 413: return "Request Entity Too Large";
	default: return "Internal Server Error";
	}
}

static void conn_free(lam_box *b, lam_conn *c);

/* Write what the socket takes; the connection ends once all is written. */
static void conn_flush(lam_box *b, lam_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (w > 0) {
			c->out_off += (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			struct epoll_event ev;
			memset(&ev, 0, sizeof ev);
			ev.events = EPOLLOUT;
			ev.data.ptr = &c->w;
			epoll_ctl(c->L->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			return;
		} else {
			break;
		}
	}
	conn_free(b, c);
}

/* Answer status with body (a JSON text), extra headers (each ending in
 * CRLF) before it. */
static void conn_answer(lam_box *b, lam_conn *c, int status, const char *headers,
                        const char *body, size_t len)
{
	char *out = htp_strdupf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                           "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
	                           status, reason(status), len, headers ? headers : "");
	char *full = out ? malloc(strlen(out) + len + 1) : NULL;
	if (!full) {
		free(out);
		conn_free(b, c);
		return;
	}
	size_t hl = strlen(out);
	memcpy(full, out, hl);
	if (len)
		memcpy(full + hl, body, len);
	free(out);
	c->held = 0;
	c->out = full;
	c->out_len = hl + len;
	c->out_off = 0;
	conn_flush(b, c);
}

static void conn_error(lam_box *b, lam_conn *c, int status, const char *type, const char *msg)
{
	json_t *doc = json_pack("{s:s, s:s}", "errorMessage", msg, "errorType", type);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	conn_answer(b, c, status, NULL, text ? text : "{}", text ? strlen(text) : 2);
	free(text);
}

/* Give the box's invocation to its waiting GET .../next, if both are there. */
static void deliver(local_provider *p, lam_box *b)
{
	lam_conn *c = b->conns;
	while (c && !c->held)
		c = c->next;
	lam_inv *iv = b->cur;
	if (!c || !iv || iv->delivered)
		return;
	iv->delivered = 1;
	snprintf(b->last_id, sizeof b->last_id, "%s", iv->id);
	const char *region = getenv("AWS_REGION");
	char headers[1024];
	snprintf(headers, sizeof headers,
	         "Lambda-Runtime-Aws-Request-Id: %s\r\n"
	         "Lambda-Runtime-Deadline-Ms: %lld\r\n"
	         "Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:%s:000000000000:function:%s\r\n"
	         "Lambda-Runtime-Trace-Id: Root=1-%08llx-%.24s;Parent=%.16s;Sampled=0\r\n",
	         iv->id, (long long)iv->deadline_wall, region && *region ? region : "us-east-1",
	         p->function_name, (unsigned long long)(iv->deadline_wall / 1000), iv->id + 12,
	         iv->id);
	conn_answer(b, c, 200, headers, iv->payload, iv->len);
	free(iv->payload);
	iv->payload = NULL;
}

/* ---- boxes --------------------------------------------------------------------------------- */

static void box_kill(lam_box *b)
{
	if (b->pid > 0) {
		kill(-b->pid, SIGKILL);
		kill(b->pid, SIGKILL);
	}
	b->ending = 1;
}

static void conn_free(lam_box *b, lam_conn *c)
{
	for (lam_conn **pp = b ? &b->conns : &c->L->api_conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (c->api_inv)
		c->api_inv->api = NULL; /* the client left: the invocation runs on */
	lam_close(c->L, &c->fd);
	free(c->buf);
	free(c->out);
	free(c);
}

static void box_unlink_free(struct local_lambda *L, lam_box *b)
{
	for (lam_box **pp = &L->boxes; *pp; pp = &(*pp)->next)
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	while (b->conns)
		conn_free(b, b->conns);
	lam_close(L, &b->lfd);
	lam_close(L, &b->pidfd);
	lam_close(L, &b->logfd);
	free(b->init_error);
	free(b);
}

/* The sandbox's output, line by line, as debug log lines (as Lambda sends
 * it to CloudWatch Logs); a line longer than the buffer is cut. */
static void log_lines(lam_box *b, const char *d, size_t n, int flush)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] != '\n' && b->line_len < sizeof b->line)
			b->line[b->line_len++] = d[i];
		if (d[i] == '\n') {
			local_log(b->L->p, HYPERTEST_LOG_DEBUG, "sandbox %lu: %.*s", b->num,
			          (int)b->line_len, b->line);
			b->line_len = 0;
		}
	}
	if (flush && b->line_len) {
		local_log(b->L->p, HYPERTEST_LOG_DEBUG, "sandbox %lu: %.*s", b->num, (int)b->line_len,
		          b->line);
		b->line_len = 0;
	}
}

static void read_log(lam_box *b)
{
	char buf[4096];
	while (b->logfd >= 0) {
		ssize_t r = read(b->logfd, buf, sizeof buf);
		if (r > 0) {
			size_t n = (size_t)r;
			log_lines(b, buf, n, 0);
			if (n >= TAIL_MAX) {
				memcpy(b->tail, buf + n - TAIL_MAX, TAIL_MAX);
				b->tail_len = TAIL_MAX;
			} else {
				if (b->tail_len + n > TAIL_MAX) {
					size_t drop = b->tail_len + n - TAIL_MAX;
					memmove(b->tail, b->tail + drop, b->tail_len - drop);
					b->tail_len -= drop;
				}
				memcpy(b->tail + b->tail_len, buf, n);
				b->tail_len += n;
			}
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else if (r < 0 && errno == EAGAIN) {
			return;
		} else {
			log_lines(b, "", 0, 1);
			lam_close(b->L, &b->logfd);
		}
	}
}

/* The end of b's cgroup, if it has one: how many processes the OOM killer
 * killed in it. */
static uint64_t box_cgroup_end(local_provider *p, lam_box *b)
{
	uint64_t kills = 0;
	char *err = NULL;
	if (local_cgroup_box_end(&b->cg, &kills, &err) != 0)
		local_log(p, HYPERTEST_LOG_WARNING, "sandbox %lu: %s", b->num,
		          err ? err : "out of memory");
	free(err);
	return kills;
}

/* Lambda's words for a runtime that ended during invocation id: "RequestId:
 * ID Error: Runtime exited with error: exit status N" or "signal: killed"
 * (the OOM killer's, a signal's, or bwrap's status 128 + N for one), then
 * note. */
static void exit_words(const char *id, uint64_t oom, int known, int status, const char *note,
                       char *out, size_t size)
{
	char how[64];
	int sig = oom                                  ? SIGKILL
	          : !known                             ? 0
	          : WIFSIGNALED(status)                ? WTERMSIG(status)
	          : WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
	                  WEXITSTATUS(status) < 128 + NSIG
	              ? WEXITSTATUS(status) - 128
	              : 0;
	if (sig) {
		snprintf(how, sizeof how, "signal: %s", strsignal(sig));
		for (char *q = how; *q; q++)
			*q = (char)tolower((unsigned char)*q);
	} else if (known && WIFEXITED(status)) {
		snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(status));
	} else {
		snprintf(how, sizeof how, "exited");
	}
	snprintf(out, size, "RequestId: %s Error: Runtime exited with error: %s%s", id, how, note);
}

/* The box's process ended (or must): reap it, fail its invocation, free it.
 * One the cgroup's OOM killer ended fails as Lambda's do ("Runtime exited
 * with error: signal: killed"). */
static void box_reap(local_provider *p, lam_box *b)
{
	int status = 0, known = 0;
	if (b->pid > 0) {
		kill(-b->pid, SIGKILL);
		while (waitpid(b->pid, &status, 0) < 0 && errno == EINTR)
			;
		known = 1;
		b->pid = 0;
	}
	read_log(b);
	uint64_t oom = box_cgroup_end(p, b);
	if (b->cur) {
		char note[TAIL_MAX + 32], msg[TAIL_MAX + 2400];
		tail_note(b, note, sizeof note);
		if (oom && !b->init_error)
			snprintf(msg, sizeof msg, "out of memory (memoryMB %llu): the function's sandbox "
			         "was killed (Runtime exited with error: signal: killed)%s",
			         (unsigned long long)p->memory_mb, note);
		else if (b->init_error)
			snprintf(msg, sizeof msg, "the function's init failed: %s%s", b->init_error, note);
		else if (known && WIFEXITED(status))
			snprintf(msg, sizeof msg, "the function's sandbox exited with status %d%s",
			         WEXITSTATUS(status), note);
		else if (known && WIFSIGNALED(status))
			snprintf(msg, sizeof msg, "the function's sandbox was killed by signal %d (%s)%s",
			         WTERMSIG(status), strsignal(WTERMSIG(status)), note);
		else
			snprintf(msg, sizeof msg, "the function's sandbox ended%s", note);
		/* the Invoke API's answer, when one waits: Lambda's own words */
		char api_msg[TAIL_MAX + 2600];
		api_fail af = {"Runtime.ExitError", NULL, 0, api_msg};
		if (b->cur->api && !b->init_error)
			exit_words(b->cur->id, oom, known, status, note, api_msg, sizeof api_msg);
		inv_complete_as(p, b->cur, NULL, 0, b->init_error ? HYPERTEST_ERR_PLUGIN
		                                                  : HYPERTEST_ERR_PROVIDER, msg,
		                b->cur->api && !b->init_error ? &af : NULL);
	}
	box_unlink_free(b->L, b);
}

/* A new sandbox for iv: a cold start. */
static int box_start(local_provider *p, lam_inv *iv)
{
	struct local_lambda *L = p->lambda;
	lam_box *b = calloc(1, sizeof *b);
	if (!b)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	b->L = L;
	b->pidfd = b->lfd = b->logfd = b->cg.procs_fd = -1;
	b->wl.kind = K_LISTEN;
	b->wp.kind = K_PID;
	b->wlog.kind = K_LOG;
	b->wl.ptr = b->wp.ptr = b->wlog.ptr = b;
	b->num = ++L->box_seq;
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int logp[2] = {-1, -1}, rc = 0;
	b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (b->lfd < 0 || bind(b->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    listen(b->lfd, 16) != 0 || getsockname(b->lfd, (struct sockaddr *)&sa, &sl) != 0) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot listen on 127.0.0.1 for the Runtime "
		                "API: %s", strerror(errno));
		goto fail;
	}
	snprintf(b->api, sizeof b->api, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
	if (pipe2(logp, O_CLOEXEC) != 0) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	int child_end = fcntl(logp[1], F_DUPFD_CLOEXEC, 3);
	close(logp[1]);
	logp[1] = child_end;
	b->logfd = logp[0];
	logp[0] = -1;
	if (child_end < 0 || fcntl(b->logfd, F_SETFL, O_NONBLOCK) != 0) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot set up a pipe: %s", strerror(errno));
		goto fail;
	}
	b->pid = local_lambda_sandbox_start(p, b->api, child_end, &b->cg);
	close(child_end);
	logp[1] = -1;
	if (b->pid < 0) {
		b->pid = 0;
		rc = HYPERTEST_ERR_PROVIDER;
		goto fail;
	}
	b->pidfd = (int)syscall(SYS_pidfd_open, b->pid, 0);
	if (lam_watch_fd(L, b->lfd, &b->wl, EPOLLIN) != 0 ||
	    lam_watch_fd(L, b->logfd, &b->wlog, EPOLLIN) != 0 ||
	    (b->pidfd >= 0 && lam_watch_fd(L, b->pidfd, &b->wp, EPOLLIN) != 0)) {
		rc = local_fail(p, HYPERTEST_ERR_IO, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	b->next = L->boxes;
	L->boxes = b;
	b->cur = iv;
	iv->box = b;
	L->cold++;
	local_log(p, HYPERTEST_LOG_INFO, "cold start: sandbox %lu (Runtime API %s) for "
	          "invocation %s", b->num, b->api, iv->id);
	return 0;
fail:
	if (logp[1] >= 0)
		close(logp[1]);
	if (b->pid > 0) {
		kill(-b->pid, SIGKILL);
		while (waitpid(b->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	box_cgroup_end(p, b);
	if (b->lfd >= 0)
		close(b->lfd);
	if (b->logfd >= 0)
		close(b->logfd);
	if (b->pidfd >= 0)
		close(b->pidfd);
	free(b);
	return rc;
}

/* ---- requests ------------------------------------------------------------------------------ */

/* The invocation of box b named id, if in flight. */
static lam_inv *find_inv(lam_box *b, const char *id, size_t n)
{
	lam_inv *iv = b->cur;
	return iv && iv->delivered && strlen(iv->id) == n && !memcmp(iv->id, id, n) ? iv : NULL;
}

/* "errorType: errorMessage" of an error body (or the body itself). */
static char *error_text(const char *body, size_t len, const char *type_header)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	const char *msg = json_string_value(json_object_get(doc, "errorMessage"));
	const char *type = json_string_value(json_object_get(doc, "errorType"));
	if (!type)
		type = type_header;
	char *s = msg ? htp_strdupf("%s%s%s", type ? type : "", type ? ": " : "", msg)
	              : htp_strdupf("%s%s%.*s", type ? type : "", type ? ": " : "",
	                               (int)(len > 2000 ? 2000 : len), body);
	json_decref(doc);
	return s;
}

static const char *header_value(const char *head, size_t hl, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *s = memchr(head, '\n', hl), *end = head + hl;
	while (s && s + 1 < end) {
		s++;
		if ((size_t)(end - s) > nl + 1 && !strncasecmp(s, name, nl) && s[nl] == ':') {
			const char *v = s + nl + 1;
			while (v < end && (*v == ' ' || *v == '\t'))
				v++;
			const char *e = v;
			while (e < end && *e != '\r' && *e != '\n')
				e++;
			*vlen = (size_t)(e - v);
			return v;
		}
		s = memchr(s, '\n', (size_t)(end - s));
	}
	return NULL;
}

static void handle_request(local_provider *p, lam_box *b, lam_conn *c)
{
	const char *head = c->buf, *body = c->buf + c->head_len;
	char method[8] = "", path[512] = "";
	if (sscanf(head, "%7s %511s", method, path) != 2)
		return conn_error(b, c, 400, "InvalidRequest", "malformed request line");
	size_t vl;
	const char *type_h = header_value(head, c->head_len, "Lambda-Runtime-Function-Error-Type", &vl);
	char type_buf[128] = "";
	if (type_h)
		snprintf(type_buf, sizeof type_buf, "%.*s", (int)(vl < 127 ? vl : 127), type_h);
	if (!strcmp(method, "GET") && !strcmp(path, RT "/invocation/next")) {
		b->asked = 1;
		c->held = 1;
		deliver(p, b);
		return;
	}
	if (!strcmp(method, "POST") && !strcmp(path, RT "/init/error")) {
		if (b->asked)
			return conn_error(b, c, 403, "InvalidStateTransition",
			                  "init/error after the runtime asked for an invocation");
		free(b->init_error);
		b->init_error = error_text(body, c->content_length, type_h ? type_buf : NULL);
		conn_answer(b, c, 202, NULL, "{\"status\":\"OK\"}", 15);
		local_log(p, HYPERTEST_LOG_INFO, "sandbox %lu: init error: %s", b->num,
		          b->init_error ? b->init_error : "?");
		box_kill(b); /* Lambda ends an environment whose init failed */
		return;
	}
	const char *pre = RT "/invocation/";
	size_t pl = strlen(pre);
	if (!strcmp(method, "POST") && !strncmp(path, pre, pl)) {
		const char *id = path + pl, *slash = strchr(id, '/');
		if (slash && (!strcmp(slash, "/response") || !strcmp(slash, "/error"))) {
			size_t n = (size_t)(slash - id);
			lam_inv *iv = find_inv(b, id, n);
			if (!iv) {
				if (strlen(b->last_id) == n && !memcmp(b->last_id, id, n))
					return conn_error(b, c, 403, "InvalidStateTransition",
					                  "this invocation is no longer in flight");
				return conn_error(b, c, 400, "InvalidRequestID", "unknown request id");
			}
			if (!strcmp(slash, "/response") && c->too_large) {
				char msg[160];
				snprintf(msg, sizeof msg, "response larger than %zu bytes", p->max_response);
				conn_error(b, c, 413, "RequestEntityTooLarge", msg);
				api_fail af = {"Function.ResponseSizeTooLarge", NULL, 0, NULL};
				inv_complete_as(p, iv, NULL, 0, HYPERTEST_ERR_PROVIDER, msg, &af);
				return;
			}
			if (!strcmp(slash, "/response")) /* response_request could not take it */
				return conn_error(b, c, 500, "ServiceException", "out of memory");
			char *t = error_text(body, c->content_length, type_h ? type_buf : NULL);
			char *msg = htp_strdupf("the function reported an error: %s", t ? t : "?");
			free(t);
			/* the Invoke API answers with the document the function posted
			 * (copied: the answer below frees the request), else with the
			 * type its header gave */
			json_t *posted = json_loadb(body, c->content_length, 0, NULL);
			char *copy = json_is_object(posted) ? malloc(c->content_length + 1) : NULL;
			json_decref(posted);
			if (copy) {
				memcpy(copy, body, c->content_length);
				copy[c->content_length] = '\0';
			}
			api_fail af = {type_h ? type_buf : NULL, copy, copy ? c->content_length : 0, NULL};
			conn_answer(b, c, 202, NULL, "{\"status\":\"OK\"}", 15);
			inv_complete_as(p, iv, NULL, 0, HYPERTEST_ERR_PROVIDER, msg ? msg : "error", &af);
			free(copy);
			free(msg);
			return;
		}
	}
	conn_error(b, c, 404, "NotFound", "no such Runtime API resource");
}

/* A /response: complete the invocation with the body (taken before the
 * answer frees the connection). */
static int response_request(local_provider *p, lam_box *b, lam_conn *c)
{
	const char *pre = "POST " RT "/invocation/";
	size_t pl = strlen(pre);
	if (c->too_large || strncmp(c->buf, pre, pl) != 0)
		return 0;
	const char *id = c->buf + pl, *sp = strchr(id, ' ');
	const char *slash = memchr(id, '/', sp ? (size_t)(sp - id) : 0);
	if (!sp || !slash || (size_t)(sp - slash) != 9 || strncmp(slash, "/response", 9))
		return 0;
	lam_inv *iv = find_inv(b, id, (size_t)(slash - id));
	if (!iv)
		return 0;
	char *resp = malloc(c->content_length + 1);
	if (!resp)
		return 0;
	memcpy(resp, c->buf + c->head_len, c->content_length);
	resp[c->content_length] = '\0';
	size_t len = c->content_length;
	conn_answer(b, c, 202, NULL, "{\"status\":\"OK\"}", 15);
	if (len == 0)
		inv_complete(p, iv, NULL, 0, HYPERTEST_ERR_PROVIDER, "the function gave an empty "
		             "response");
	else
		inv_complete(p, iv, resp, len, 0, NULL);
	free(resp);
	return 1;
}

static void api_request(local_provider *p, lam_conn *c);

/* Read what the connection has; handle the request once complete. */
static void conn_read(local_provider *p, lam_box *b, lam_conn *c)
{
	for (;;) {
		if (c->out || c->held) {
			/* answered or waiting: a read of 0 means the client left */
			char x;
			ssize_t r = recv(c->fd, &x, 1, MSG_PEEK);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				conn_free(b, c);
			return;
		}
		if (c->len == c->cap) {
			size_t ncap = c->cap ? c->cap * 2 : 4096;
			char *nb = realloc(c->buf, ncap + 1);
			if (!nb)
				return conn_free(b, c);
			c->buf = nb;
			c->cap = ncap;
		}
		ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0)
			return conn_free(b, c);
		c->len += (size_t)r;
		c->buf[c->len] = '\0';
		if (!c->head_len) {
			char *e = strstr(c->buf, "\r\n\r\n");
			if (!e) {
				if (c->len > HEAD_MAX)
					return conn_error(b, c, 400, "InvalidRequest", "request head too large");
				continue;
			}
			c->head_len = (size_t)(e - c->buf) + 4;
			size_t vl;
			const char *te = header_value(c->buf, c->head_len, "Transfer-Encoding", &vl);
			if (te)
				return conn_error(b, c, 400, "InvalidRequest",
				                  "Transfer-Encoding is not supported: send Content-Length");
			const char *cl = header_value(c->buf, c->head_len, "Content-Length", &vl);
			c->content_length = cl ? strtoull(cl, NULL, 10) : 0;
			if (c->content_length > p->max_response) {
				c->too_large = 1;
				c->discarded = c->len - c->head_len;
				c->len = c->head_len;
			}
		} else if (c->too_large) {
			c->discarded += c->len - c->head_len;
			c->len = c->head_len;
		}
		size_t have = c->too_large ? c->discarded : c->len - c->head_len;
		if (have >= c->content_length) {
			if (!b)
				api_request(p, c);
			else if (!response_request(p, b, c))
				handle_request(p, b, c);
			return;
		}
	}
}

static void accept_conns(lam_box *b)
{
	for (;;) {
		int fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		lam_conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->L = b->L;
		c->box = b;
		c->fd = fd;
		c->w.kind = K_CONN;
		c->w.ptr = c;
		if (lam_watch_fd(b->L, fd, &c->w, EPOLLIN | EPOLLRDHUP) != 0) {
			close(fd);
			free(c);
			return;
		}
		c->next = b->conns;
		b->conns = c;
	}
}

static void api_accept(struct local_lambda *L);

/* ---- the provider's operations -------------------------------------------------------------- */

/* Give the invocations without a sandbox one: an idle one, else a new one. */
static int dispatch(local_provider *p, lam_inv *iv)
{
	struct local_lambda *L = p->lambda;
	for (lam_box *b = L->boxes; b; b = b->next)
		if (!b->cur && !b->ending && b->pid > 0 && b->asked) {
			b->cur = iv;
			iv->box = b;
			L->warm++;
			local_log(p, HYPERTEST_LOG_DEBUG, "warm start: sandbox %lu for invocation %s",
			          b->num, iv->id);
			deliver(p, b);
			return 0;
		}
	return box_start(p, iv);
}

/* Name iv, set its deadline, put it in flight and give it a sandbox; 0,
 * or an error code (iv then is not in flight, nor freed). */
static int lam_inv_begin(local_provider *p, lam_inv *iv)
{
	struct local_lambda *L = p->lambda;
	unsigned char r[16];
	FILE *f = fopen("/dev/urandom", "rbe");
	if (!f || fread(r, 1, sizeof r, f) != sizeof r) {
		unsigned long s = ++L->seq ^ (unsigned long)mono_ms() ^ (unsigned long)getpid();
		for (size_t i = 0; i < sizeof r; i++)
			r[i] = (unsigned char)(s >> (8 * (i % sizeof s))) ^ (unsigned char)(i * 37);
	}
	if (f)
		fclose(f);
	snprintf(iv->id, sizeof iv->id,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
	         r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
	         r[15]);
	int64_t ms = (int64_t)(p->timeout_s * 1000.0 + 0.5);
	iv->deadline = mono_ms() + ms;
	iv->deadline_wall = wall_ms() + ms;
	iv->next = L->invs;
	L->invs = iv;
	int rc = dispatch(p, iv);
	if (rc != 0)
		inv_unlink(L, iv);
	return rc;
}

int local_lambda_invoke_start(local_provider *p, hypertest_invocation *inv, const char *payload,
                              size_t len)
{
	int rc = local_deployed_load(p);
	if (rc != 0)
		return rc;
	if (!p->bwrap)
		return local_fail(p, HYPERTEST_ERR_CONFIG, "isolation \"lambda\" %s",
		                  local_bwrap_missing);
	if (!p->dep.image.entrypoint)
		return local_fail(p, HYPERTEST_ERR_IMAGE, "the deployed image %s has no entry "
		                  "point%s: isolation \"lambda\" runs the image's own Entrypoint "
		                  "(deploy again with this provider)", p->dep.digest,
		                  p->dep.image.recorded ? "" : " recorded in functionDir/current");
	if (local_mkdir_p(p->bucket_dir) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s", p->bucket_dir,
		                  strerror(errno));
	struct local_lambda *L = lam_get(p);
	lam_inv *iv = L ? calloc(1, sizeof *iv) : NULL;
	if (!iv || !(iv->payload = malloc(len ? len : 1)))
		goto nomem;
	memcpy(iv->payload, payload, len);
	iv->len = len;
	iv->inv = inv;
	rc = lam_inv_begin(p, iv);
	if (rc != 0) {
		free(iv->payload);
		free(iv);
	}
	return rc;
nomem:
	if (iv)
		free(iv->payload);
	free(iv);
	return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* Deadlines: the invocation fails, its sandbox is ended (replaced by the
 * next cold start).  Idle sandboxes past idleTimeout end. */
static void expire(local_provider *p, int64_t now)
{
	struct local_lambda *L = p->lambda;
	for (lam_inv *iv = L->invs, *next; iv; iv = next) {
		next = iv->next;
		if (iv->deadline > now)
			continue;
		lam_box *b = iv->box;
		char msg[128];
		snprintf(msg, sizeof msg, "timed out after %g s (its sandbox was ended)", p->timeout_s);
		if (b) {
			box_kill(b);
			local_log(p, HYPERTEST_LOG_INFO, "sandbox %lu ended: invocation %s timed out",
			          b->num, iv->id);
		}
		inv_complete(p, iv, NULL, 0, HYPERTEST_ERR_TIMEOUT, msg);
	}
	int64_t idle = (int64_t)(p->idle_timeout_s * 1000.0);
	for (lam_box *b = L->boxes; b; b = b->next)
		if (!b->cur && !b->ending && b->pid > 0 && b->asked && now - b->idle_since >= idle) {
			local_log(p, HYPERTEST_LOG_DEBUG, "sandbox %lu ended: idle for %g s", b->num,
			          p->idle_timeout_s);
			box_kill(b);
		}
}

/* The next time something expires, in ms from now (INT_MAX: nothing). */
static int64_t next_expiry(local_provider *p, int64_t now)
{
	struct local_lambda *L = p->lambda;
	int64_t t = INT64_MAX;
	for (lam_inv *iv = L->invs; iv; iv = iv->next)
		if (iv->deadline < t)
			t = iv->deadline;
	int64_t idle = (int64_t)(p->idle_timeout_s * 1000.0);
	for (lam_box *b = L->boxes; b; b = b->next) {
		if (!b->cur && !b->ending && b->pid > 0 && b->asked && b->idle_since + idle < t)
			t = b->idle_since + idle;
		if (b->pidfd < 0 && b->pid > 0 && now + 20 < t)
			t = now + 20; /* no pidfd: poll */
	}
	return t == INT64_MAX ? INT_MAX : t - now;
}

static void reap_ended(local_provider *p)
{
	struct local_lambda *L = p->lambda;
	for (lam_box *b = L->boxes, *next; b; b = next) {
		next = b->next;
		if (b->pid <= 0)
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)b->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid != 0)
			box_reap(p, b);
	}
}

/* One batch of events, waiting up to wait ms (-1: no limit): 0, 1 when
 * epoll_wait was interrupted, or minus an error code. */
static int lam_step(local_provider *p, int wait)
{
	struct local_lambda *L = p->lambda;
	struct epoll_event evs[64];
	int n = epoll_wait(L->epfd, evs, 64, (int)wait);
	if (n < 0 && errno != EINTR)
		return -local_fail(p, HYPERTEST_ERR_IO, "epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		lam_watch *w = evs[i].data.ptr;
		if (w->kind == K_LISTEN) {
			accept_conns(w->ptr);
		} else if (w->kind == K_API_LISTEN) {
			api_accept(w->ptr);
		} else if (w->kind == K_LOG) {
			read_log(w->ptr);
		} else if (w->kind == K_CONN) {
			lam_conn *c = w->ptr;
			if (c->fd < 0)
				continue;
			if (c->out)
				conn_flush(c->box, c);
			else
				conn_read(p, c->box, c);
			/* a connection freed here may be named by a later event of the
			 * batch: the rest of the batch comes again (level-triggered) */
			break;
		}
	}
	reap_ended(p);
	return n < 0 ? 1 : 0;
}

int local_lambda_invoke_wait(local_provider *p, int timeout_ms)
{
	struct local_lambda *L = p->lambda;
	if (!L)
		return 0;
	L->done = 0;
	for (lam_inv *iv = L->invs, *next; iv; iv = next) {
		next = iv->next;
		if (iv->cancelled)
			inv_complete(p, iv, NULL, 0, HYPERTEST_ERR_CANCELLED, "cancelled");
	}
	int64_t until = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;
	for (;;) {
		int64_t now = mono_ms();
		expire(p, now);
		int64_t wait = 0;
		if (L->done == 0 && L->invs) {
			wait = until - now;
			int64_t e = next_expiry(p, now);
			if (e < wait)
				wait = e;
			if (wait < 0)
				wait = 0;
			if (wait > INT_MAX)
				wait = INT_MAX;
		}
		int n = lam_step(p, (int)wait);
		if (n < 0)
			return n;
		if (L->done > 0 || !L->invs || n == 1 || mono_ms() >= until)
			return L->done;
	}
}

void local_lambda_invoke_cancel(local_provider *p)
{
	struct local_lambda *L = p->lambda;
	if (!L)
		return;
	/* the sandboxes die; the invocations complete in the next wait */
	for (lam_inv *iv = L->invs; iv; iv = iv->next) {
		if (iv->box)
			box_kill(iv->box);
		iv->cancelled = 1;
	}
}

void local_lambda_shutdown(local_provider *p)
{
	struct local_lambda *L = p->lambda;
	if (!L)
		return;
	if (L->cold + L->warm > 0)
		local_log(p, HYPERTEST_LOG_INFO, "isolation \"lambda\": %lu invocations, %lu cold "
		          "starts, %lu warm", L->cold + L->warm, L->cold, L->warm);
	while (L->invs) { /* never completed: the core is going away */
		lam_inv *iv = L->invs;
		L->invs = iv->next;
		if (iv->api)
			iv->api->api_inv = NULL;
		free(iv->payload);
		free(iv);
	}
	while (L->boxes) {
		lam_box *b = L->boxes;
		b->cur = NULL;
		box_kill(b);
		box_reap(p, b);
	}
	while (L->api_conns) {
		L->api_conns->api_inv = NULL;
		conn_free(NULL, L->api_conns);
	}
	lam_close(L, &L->api_fd);
	close(L->epfd);
	free(L);
	p->lambda = NULL;
}

/* ---- functionImage ----------------------------------------------------------------------------- */

/* The image of the layout's index.json that the core's unpacking takes
 * for the same reference: the only one when no reference is named, else
 * the one tagged REF (default "latest"). */
int local_lambda_function_image(local_provider *p, char digest[72])
{
	char *ipath = htp_path_join(p->fn_layout, "index.json");
	if (!ipath)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	json_error_t jerr;
	json_t *index = json_load_file(ipath, 0, &jerr), *list, *d, *found = NULL;
	int rc = 0, matches = 0;
	size_t i;
	const char *tag = p->fn_ref ? p->fn_ref : "latest";
	if (!index) {
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "option 'functionImage': %s: line %d, column "
		                "%d: %s", ipath, jerr.line, jerr.column, jerr.text);
		goto out;
	}
	list = json_object_get(index, "manifests");
	if (!p->fn_ref && json_array_size(list) == 1) {
		found = json_array_get(list, 0);
		matches = 1;
	} else {
		json_array_foreach(list, i, d) {
			const char *r = json_string_value(json_object_get(
			    json_object_get(d, "annotations"), "org.opencontainers.image.ref.name"));
			if (r && !strcmp(r, tag)) {
				found = d;
				matches++;
			}
		}
	}
	const char *dg = json_string_value(json_object_get(found, "digest"));
	if (matches != 1)
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "option 'functionImage': %s %s '%s'", ipath,
		                matches ? "has several images tagged" : "has no image tagged", tag);
	else if (!dg || strncmp(dg, "sha256:", 7) != 0 || strlen(dg) != 71)
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "option 'functionImage': %s: the image tagged "
		                "'%s' has no sha256 digest", ipath, tag);
	else
		memcpy(digest, dg, 72);
out:
	json_decref(index);
	free(ipath);
	return rc;
}

/* ---- the Invoke API -------------------------------------------------------------------------- */

/* hypertest-function with option lambdaApi, outside a sandbox, serves
 * Lambda's Invoke API for the deployed image:
 *
 *   POST /2015-03-31/functions/{functionName}/invocations   200 with the
 *        function's response; 200 with X-Amz-Function-Error: Unhandled and
 *        {"errorMessage", "errorType"} when it failed (timed out, its
 *        sandbox ended, init error, error posted); only RequestResponse
 *   GET  /2015-03-31/functions/{functionName}                the function:
 *        Configuration, Code.ImageUri and ResolvedImageUri with the digest
 *   GET  /2015-03-31/functions/{functionName}/configuration
 *   another function name: 404 ResourceNotFoundException; another path: 404
 *
 * Requests are not authenticated (loopback only).  Invocations share the
 * sandboxes as those of a run do. */

static void api_accept(struct local_lambda *L)
{
	for (;;) {
		int fd = accept4(L->api_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		lam_conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->L = L;
		c->fd = fd;
		c->w.kind = K_CONN;
		c->w.ptr = c;
		if (lam_watch_fd(L, fd, &c->w, EPOLLIN | EPOLLRDHUP) != 0) {
			close(fd);
			free(c);
			return;
		}
		c->next = L->api_conns;
		L->api_conns = c;
	}
}

/* Lambda's error document for the Invoke API. */
static void api_error(lam_conn *c, int status, const char *type, const char *msg)
{
	json_t *doc = json_pack("{s:s, s:s, s:s}", "Type", "User", "message", msg, "__type", type);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	char hdr[160];
	json_decref(doc);
	snprintf(hdr, sizeof hdr, "X-Amzn-ErrorType: %s\r\n", type);
	conn_answer(NULL, c, status, hdr, text ? text : "{}", text ? strlen(text) : 2);
	free(text);
}

/* An invocation's answer: 200 with the response, or 200 with
 * X-Amz-Function-Error and an error document: the function's own (what it
 * posted to .../error), else {errorMessage, errorType} with Lambda's
 * errorType for what happened. */
static void api_answer(lam_conn *c, const char *resp, size_t len, int code, const char *msg,
                       const api_fail *af)
{
	if (code == 0) {
		conn_answer(NULL, c, 200, "X-Amz-Executed-Version: $LATEST\r\n", resp, len);
		return;
	}
	if (af && af->body) {
		conn_answer(NULL, c, 200,
		            "X-Amz-Executed-Version: $LATEST\r\nX-Amz-Function-Error: Unhandled\r\n",
		            af->body, af->len);
		return;
	}
	const char *type = af && af->type                ? af->type
	                   : code == HYPERTEST_ERR_TIMEOUT  ? "Sandbox.Timedout"
	                   : code == HYPERTEST_ERR_PLUGIN   ? "Runtime.InitError"
	                                                    : "Runtime.Unknown";
	if (af && af->msg)
		msg = af->msg;
	json_t *doc = json_pack("{s:s, s:s}", "errorMessage", msg ? msg : "error", "errorType", type);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	conn_answer(NULL, c, 200,
	            "X-Amz-Executed-Version: $LATEST\r\nX-Amz-Function-Error: Unhandled\r\n",
	            text ? text : "{}", text ? strlen(text) : 2);
	free(text);
}

static json_t *api_configuration(local_provider *p)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:{s:I}}", "FunctionName",
	                 p->function_name, "PackageType", "Image", "State", "Active",
	                 "LastUpdateStatus", "Successful", "Version", "$LATEST", "Timeout",
	                 (json_int_t)(p->timeout_s + 0.999), "MemorySize",
	                 (json_int_t)(p->memory_mb ? p->memory_mb : 10240), "EphemeralStorage",
	                 "Size", (json_int_t)p->ephemeral_mb);
}

static void api_json(lam_conn *c, json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text)
		return api_error(c, 500, "ServiceException", "out of memory");
	conn_answer(NULL, c, 200, NULL, text, strlen(text));
	free(text);
}

static void api_request(local_provider *p, lam_conn *c)
{
	char method[8] = "", path[512] = "";
	if (sscanf(c->buf, "%7s %511s", method, path) != 2)
		return api_error(c, 400, "InvalidRequestContentException", "malformed request line");
	const char *pre = "/2015-03-31/functions/";
	size_t pl = strlen(pre);
	if (strncmp(path, pre, pl) != 0)
		return api_error(c, 404, "UnknownOperationException", "no such Lambda operation");
	const char *name = path + pl, *slash = strchr(name, '/');
	size_t nl = slash ? (size_t)(slash - name) : strlen(name);
	const char *rest = slash ? slash : "";
	/* a name, a partial ARN or an ARN: its last ':'-separated part names it */
	const char *short_name = name;
	for (const char *s = name; s < name + nl; s++)
		if (*s == ':' || *s == '%')
			short_name = s + (*s == ':' ? 1 : 3);
	size_t sl = nl - (size_t)(short_name - name);
	if (sl != strlen(p->function_name) || strncmp(short_name, p->function_name, sl) != 0) {
		char msg[700];
		snprintf(msg, sizeof msg, "Function not found: %.*s", (int)nl, name);
		return api_error(c, 404, "ResourceNotFoundException", msg);
	}
	if (!strcmp(method, "GET") && (!*rest || !strcmp(rest, "/configuration"))) {
		json_t *cfg = api_configuration(p);
		if (!strcmp(rest, "/configuration"))
			return api_json(c, cfg);
		char *uri = htp_strdupf("hypertest-local/%s@%s", p->function_name,
		                           p->dep.digest ? p->dep.digest : "");
		json_t *doc = cfg && uri ? json_pack("{s:o, s:{s:s, s:s, s:s}}", "Configuration", cfg,
		                                     "Code", "RepositoryType", "ECR", "ImageUri", uri,
		                                     "ResolvedImageUri", uri)
		                         : NULL;
		if (!doc)
			json_decref(cfg);
		free(uri);
		return api_json(c, doc);
	}
	if (strcmp(method, "POST") != 0 || strcmp(rest, "/invocations") != 0)
		return api_error(c, 404, "UnknownOperationException", "no such Lambda operation");
	size_t vl;
	const char *type = header_value(c->buf, c->head_len, "X-Amz-Invocation-Type", &vl);
	if (type && !(vl == 15 && !strncmp(type, "RequestResponse", 15)))
		return api_error(c, 400, "InvalidParameterValueException",
		                 "only X-Amz-Invocation-Type RequestResponse is served here");
	if (c->too_large)
		return api_error(c, 413, "RequestTooLargeException",
		                 "the request payload is larger than maxResponseBytes");
	hypertest_invocation *none = NULL;
	lam_inv *iv = calloc(1, sizeof *iv);
	if (!iv || !(iv->payload = malloc(c->content_length ? c->content_length : 1))) {
		free(iv);
		return api_error(c, 500, "ServiceException", "out of memory");
	}
	memcpy(iv->payload, c->buf + c->head_len, c->content_length);
	iv->len = c->content_length;
	iv->inv = none;
	iv->api = c;
	c->api_inv = iv;
	c->held = 1;
	char *error = NULL;
	char **was = local_fail_into(p, &error);
	int rc = lam_inv_begin(p, iv);
	local_fail_into(p, was);
	if (rc != 0) {
		c->api_inv = NULL;
		c->held = 0;
		free(iv->payload);
		free(iv);
		api_error(c, 500, "ServiceException", error ? error : "out of memory");
	}
	free(error);
}

int local_lambda_api_serve(local_provider *p)
{
	int rc = local_deployed_load(p);
	if (rc != 0)
		return rc;
	if (!p->dep.image.entrypoint)
		return local_fail(p, HYPERTEST_ERR_IMAGE, "the deployed image %s has no entry point "
		                  "(deploy again with this provider)", p->dep.digest);
	struct local_lambda *L = lam_get(p);
	if (!L)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	const char *colon = strrchr(p->lambda_api, ':');
	char host[64];
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	if (!colon || (size_t)(colon - p->lambda_api) >= sizeof host)
		return local_fail(p, HYPERTEST_ERR_CONFIG, "option 'lambdaApi': '%s' is not "
		                  "ADDRESS:PORT", p->lambda_api);
	memcpy(host, p->lambda_api, (size_t)(colon - p->lambda_api));
	host[colon - p->lambda_api] = '\0';
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	L->api_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (L->api_fd < 0 || setsockopt(L->api_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(L->api_fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(L->api_fd, 64) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot serve the Invoke API on %s: %s",
		                  p->lambda_api, strerror(errno));
	L->api_w.kind = K_API_LISTEN;
	L->api_w.ptr = L;
	if (lam_watch_fd(L, L->api_fd, &L->api_w, EPOLLIN) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "epoll_ctl: %s", strerror(errno));
	local_log(p, HYPERTEST_LOG_INFO, "serving Lambda's Invoke API for function %s (image %s) "
	          "on http://%s", p->function_name, p->dep.digest, p->lambda_api);
	for (;;) {
		int64_t now = mono_ms();
		expire(p, now);
		int64_t e = next_expiry(p, now);
		int n = lam_step(p, e >= INT_MAX ? -1 : (int)(e < 0 ? 0 : e));
		if (n < 0)
			return -n;
	}
}
