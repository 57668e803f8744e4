/*
 * http-multi.c - the asynchronous mode of the aws provider's HTTP layer:
 * requests added with aws_http_multi_add run together, and their
 * completions are called from aws_http_multi_wait, all in one thread.
 *
 * Two transports carry the attempts: the builtin HTTP/1.1 client
 * (http-ev.c; the default unless a proxy variable applies) and libcurl's
 * multi interface, below.  The lifecycle (retries, delays, completions,
 * cancel, the warm-up) is the same for both; an attempt of the builtin
 * one ends in a CURLcode like libcurl's, read by the same outcome.
 *
 * libcurl: transfers are spread over shards: multi handles of at most
 * AWS_SHARD_SIZE transfers each, every one with a connection cache of its
 * own.  libcurl (7.88) walks a host's whole list of connections to add a
 * transfer and to remove one, so one cache of thousands of connections
 * costs time in the square of their number; shards bound each walk.  A
 * transfer goes to the shard with the fewest running, which is where the
 * connections a finished wave left idle are.
 *
 * The multi handles are driven with curl_multi_socket_action and one
 * epoll set: the work of a wake-up follows the sockets that are ready, not
 * all the transfers in flight.
 *
 * The warm-up (aws_http_warm) opens connections before the first request:
 * small unsigned GETs whose answers are dropped, spread over the shards
 * like requests, driven by a thread of their own while the caller does
 * other work (reads the manifest), and stopped by the next call: from then
 * on one thread again uses the client, and drives what is left of the
 * warm-up with the requests.  A request that finds every connection its
 * multi handle may open busy with a warm-up request waits in libcurl for
 * the first to be free: the warm-up never makes more connections than the
 * client's concurrency, and the requests do not open others meanwhile.
 * The first request waits for the warm-up's requests in flight to be
 * done (warm_hand_over), so that every request finds a connection idle
 * and an easy handle to reuse.  The thread calls no callback of the
 * caller (no log, no completion).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "http-int.h"

static void tl_push(tlist *l, transfer *t)
{
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
	l->n++;
}

static void tl_remove(tlist *l, transfer *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->next = t->prev = NULL;
	l->n--;
}

/* curl tells which sockets to watch for what: mirror it in the epoll set. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
	shard *sh = ud;
	aws_http *h = sh->h;
	struct epoll_event ev;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, s, NULL);
		curl_multi_assign(sh->multi, s, NULL);
		if ((size_t)s < h->nbyfd)
			h->byfd[s] = NULL;
		return 0;
	}
	if (s >= 0 && (size_t)s >= h->nbyfd) {
		size_t n = (size_t)s + 1 > 2 * h->nbyfd ? (size_t)s + 1 : 2 * h->nbyfd;
		CURL **p = realloc(h->byfd, n * sizeof *p);
		if (p) {
			memset(p + h->nbyfd, 0, (n - h->nbyfd) * sizeof *p);
			h->byfd = p;
			h->nbyfd = n;
		}
	}
	if (s >= 0 && (size_t)s < h->nbyfd)
		h->byfd[s] = easy;
	memset(&ev, 0, sizeof ev);
	/* the socket and its shard */
	ev.data.u64 = (uint64_t)sh->index << 32 | (uint32_t)s;
	ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0);
	if (!sockp) {
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev) < 0 && errno == EEXIST)
			epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev);
		curl_multi_assign(sh->multi, s, sh);
	} else if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT) {
		epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev);
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
	shard *sh = ud;
	(void)multi;
	sh->timer_due = timeout_ms < 0 ? -1 : htp_now_ms() + timeout_ms;
	return 0;
}

/* nshards multi handles that together allow cfg.concurrency connections */
int aws_http_shards_init(aws_http *h)
{
	size_t n = ((size_t)h->cfg.concurrency + AWS_SHARD_SIZE - 1) / AWS_SHARD_SIZE, i;
	long per = (long)(((size_t)h->cfg.concurrency + n - 1) / n);
	h->shards = calloc(n, sizeof *h->shards);
	if (!h->shards)
		return -1;
	h->nshards = n;
	for (i = 0; i < n; i++) {
		shard *sh = &h->shards[i];
		sh->h = h;
		sh->index = (unsigned)i;
		sh->timer_due = -1;
		if (!(sh->multi = curl_multi_init()))
			return -1;
		curl_multi_setopt(sh->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, per);
		curl_multi_setopt(sh->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per);
		curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, per);
		curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
		curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
		curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
		curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
	}
	return 0;
}

/* The shard with the fewest transfers running. */
static shard *least_loaded(aws_http *h)
{
	shard *best = &h->shards[0];
	for (size_t i = 1; i < h->nshards && best->running; i++)
		if (h->shards[i].running < best->running)
			best = &h->shards[i];
	return best;
}

static void transfer_free(aws_http *h, transfer *t)
{
	if (h->transport == AWS_TRANSPORT_BUILTIN) {
		aws_hev_drop(h, t);
	} else if (t->easy) {
		if (h->nidle == h->idle_cap) {
			size_t cap = h->idle_cap ? h->idle_cap * 2 : 64;
			CURL **p = realloc(h->idle, cap * sizeof *p);
			if (p) {
				h->idle = p;
				h->idle_cap = cap;
			}
		}
		if (h->nidle < h->idle_cap && !h->release_idle) {
			h->idle[h->nidle++] = t->easy;
		} else {
			for (size_t i = 0; i < h->nbyfd; i++)
				if (h->byfd[i] == t->easy)
					h->byfd[i] = NULL;
			curl_easy_cleanup(t->easy);
			h->handles--;
		}
	}
	curl_slist_free_all(t->slist);
	htp_buf_free(&t->reqbuf);
	aws_http_response_clear(&t->resp);
	aws_http_request_free(t->req);
	free(t->done_msg);
	free(t);
}

/* The warm-up's request, once none is left to make. */
static void warm_free(aws_http *h)
{
	curl_slist_free_all(h->warm_headers);
	h->warm_headers = NULL;
	free(h->warm_url);
	h->warm_url = NULL;
}

/* A warm-up transfer is done (out of every list and multi handle). */
static void warm_gone(aws_http *h, transfer *t)
{
	transfer_free(h, t);
	if (--h->warm_left == 0 && h->warm_more == 0)
		warm_free(h);
}

/* End the warm-up's thread: at once with stop (what is left of the
 * warm-up is driven by the caller's waits), else once its requests are
 * done. */
static void warm_join(aws_http *h, int stop)
{
	if (!h->warm_thread_on)
		return;
	if (stop)
		atomic_store(&h->warm_stop, 1);
	pthread_join(h->warm_thread, NULL);
	h->warm_thread_on = 0;
	h->warm_more = 0; /* not started: the requests open what they need */
	if (h->warm_left == 0)
		warm_free(h);
}

void aws_http_multi_release(aws_http *h)
{
	transfer *t;
	size_t i;
	warm_join(h, 1);
	aws_hev_hold(h, 1);
	while ((t = h->running.head)) {
		tl_remove(&h->running, t);
		if (t->easy)
			curl_multi_remove_handle(t->sh->multi, t->easy);
		transfer_free(h, t);
	}
	while ((t = h->delayed.head)) {
		tl_remove(&h->delayed, t);
		transfer_free(h, t);
	}
	while ((t = h->ready.head)) {
		tl_remove(&h->ready, t);
		transfer_free(h, t);
	}
	aws_hev_release(h);
	h->warm_left = 0;
	h->warm_more = 0;
	warm_free(h);
	for (i = 0; i < h->nidle; i++)
		curl_easy_cleanup(h->idle[i]);
	free(h->idle);
	h->idle = NULL;
	h->nidle = h->idle_cap = 0;
	for (i = 0; i < h->nshards; i++)
		if (h->shards[i].multi)
			curl_multi_cleanup(h->shards[i].multi);
	free(h->shards);
	free(h->byfd);
	h->byfd = NULL;
	h->nbyfd = 0;
	h->shards = NULL;
	h->nshards = 0;
}

/* Call the completion and free t (t is in no list). */
static void complete(aws_http *h, transfer *t, int code, const char *msg)
{
	if (t->done)
		t->done(t->ud, t->req, &t->resp, code, code ? msg : NULL);
	transfer_free(h, t);
}

/* Queue t as ready with this outcome. */
static void make_ready(aws_http *h, transfer *t, int code, const char *msg)
{
	t->done_code = code;
	free(t->done_msg);
	t->done_msg = msg ? strdup(msg) : NULL;
	tl_push(&h->ready, t);
}

/* Start an attempt of t in the multi handle, or queue it as failed. */
static void start(aws_http *h, transfer *t)
{
	char *err = NULL;
	CURLMcode mc;
	int rc;
	if ((rc = aws_http_setup_attempt(h, t, &err)) != 0) {
		make_ready(h, t, rc, aws_msg(err));
		free(err);
		return;
	}
	if (!t->easy) { /* the builtin transport */
		tl_push(&h->running, t);
		aws_hev_start(h, t);
		return;
	}
	t->sh = least_loaded(h);
	mc = curl_multi_add_handle(t->sh->multi, t->easy);
	if (mc != CURLM_OK) {
		rc = aws_fail(&err, HYPERTEST_ERR_HTTP, "%s: %s", t->req->what,
		              curl_multi_strerror(mc));
		make_ready(h, t, rc, aws_msg(err));
		free(err);
		return;
	}
	t->sh->running++;
	tl_push(&h->running, t);
}

static int multi_wait(aws_http *h, int timeout_ms);

/* The transport of the asynchronous mode, decided by its first request's
 * URL when the configuration left it open. */
static int decide(aws_http *h, const char *url)
{
	if (h->transport == AWS_TRANSPORT_UNDECIDED)
		h->transport = aws_http_proxy_applies(url) ? AWS_TRANSPORT_CURL : AWS_TRANSPORT_BUILTIN;
	if (!h->logged_transport) {
		h->logged_transport = 1;
		if (h->transport == AWS_TRANSPORT_CURL)
			aws_http_logf(h, HYPERTEST_LOG_DEBUG,
			              "http: at most %ld transfers at once, over %zu libcurl multi handles",
			              h->cfg.concurrency, h->nshards);
		else
			aws_http_logf(h, HYPERTEST_LOG_DEBUG,
			              "http: at most %ld transfers at once, over the builtin HTTP/1.1 client",
			              h->cfg.concurrency);
		/* asked for by name, the builtin client goes straight to the host */
		const char *var = h->transport == AWS_TRANSPORT_BUILTIN ? aws_http_proxy_variable(url)
		                                                         : NULL;
		if (var)
			aws_http_logf(h, HYPERTEST_LOG_WARNING,
			              "http: httpClient \"builtin\" does not use proxies: the invocations "
			              "go straight to their host, not through the proxy %s names "
			              "(httpClient \"auto\" or \"curl\" would use it)", var);
	}
	return h->transport;
}

const char *aws_http_transport(const aws_http *h)
{
	return h->transport == AWS_TRANSPORT_CURL      ? "curl"
	       : h->transport == AWS_TRANSPORT_BUILTIN ? "builtin"
	                                               : "undecided";
}

/* The first request takes over from the warm-up: its requests still in
 * flight are driven to their end first (each has a timeout of twice the
 * connect timeout), so that the requests find their connections idle and
 * their easy handles free, and neither open connections beside them nor
 * make handles of their own.  Only before the first request: later ones
 * never find a warm-up request running. */
static void warm_hand_over(aws_http *h)
{
	warm_join(h, 1);
	if (h->transport == AWS_TRANSPORT_BUILTIN)
		return; /* its requests wait in the transport for the connections */
	while (h->warm_left && h->running.n == h->warm_left && !h->delayed.n && !h->ready.n)
		if (multi_wait(h, 1000) < 0)
			break;
}

int aws_http_multi_add(aws_http *h, aws_http_request *req, aws_http_done_fn done, void *ud,
                       char **err)
{
	transfer *t;
	warm_hand_over(h);
	t = calloc(1, sizeof *t);
	if (!t) {
		aws_http_request_free(req);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	t->h = h;
	t->req = req;
	t->done = done;
	t->ud = ud;
	if (decide(h, req->url) == AWS_TRANSPORT_BUILTIN) {
		start(h, t);
		aws_hev_poll(h);
		return 0;
	}
	if (h->nidle) {
		t->easy = h->idle[--h->nidle];
	} else if ((t->easy = curl_easy_init())) {
		h->handles++;
	}
	if (!t->easy) {
		t->req = NULL;
		free(t);
		aws_http_request_free(req);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "libcurl: cannot create a handle");
	}
	start(h, t);
	return 0;
}

size_t aws_http_multi_pending(aws_http *h)
{
	warm_join(h, 1);
	return h->running.n - h->warm_left + h->delayed.n + h->ready.n;
}

void aws_http_multi_cancel(aws_http *h)
{
	transfer *t;
	warm_join(h, 1);
	aws_hev_hold(h, 1);
	while ((t = h->running.head)) {
		tl_remove(&h->running, t);
		if (t->easy) {
			curl_multi_remove_handle(t->sh->multi, t->easy);
			t->sh->running--;
		} else {
			aws_hev_drop(h, t);
		}
		if (t->warm) {
			warm_gone(h, t);
			continue;
		}
		make_ready(h, t, HYPERTEST_ERR_CANCELLED, "cancelled");
	}
	while ((t = h->delayed.head)) {
		tl_remove(&h->delayed, t);
		make_ready(h, t, HYPERTEST_ERR_CANCELLED, "cancelled");
	}
	aws_hev_hold(h, 0);
}

/* Deliver the ready list; returns how many. */
static int deliver_ready(aws_http *h)
{
	int n = 0;
	transfer *t;
	while ((t = h->ready.head)) {
		char *msg;
		char full[1100];
		tl_remove(&h->ready, t);
		msg = t->done_msg;
		if (t->done_code == HYPERTEST_ERR_CANCELLED) {
			snprintf(full, sizeof full, "%s: cancelled", t->req->what);
			complete(h, t, t->done_code, full);
		} else {
			snprintf(full, sizeof full, "%s", msg ? msg : "failed");
			complete(h, t, t->done_code, full);
		}
		n++;
	}
	return n;
}

/* Start delayed retries that are due; returns ms until the next one (-1: none). */
static long start_due(aws_http *h)
{
	long long now = htp_now_ms(), next = -1;
	transfer *t = h->delayed.head, *nx;
	for (; t; t = nx) {
		nx = t->next;
		if (t->due <= now) {
			tl_remove(&h->delayed, t);
			start(h, t);
		} else if (next < 0 || t->due < next) {
			next = t->due;
		}
	}
	return next < 0 ? -1 : (long)(next - now);
}

/* t's attempt ended with cc (t is out of its multi handle or off the
 * builtin transport): a completion, a delayed retry, or a warm-up done.
 * Returns 1 when a completion was called. */
static int attempt_end(aws_http *h, transfer *t, CURLcode cc)
{
	char *err = NULL;
	long delay = 0;
	int code = 0;
	tl_remove(&h->running, t);
	if (t->warm) { /* its connection stays in the pool */
		warm_gone(h, t);
		return 0;
	}
	if (aws_http_outcome(h, t, cc, &code, &err, &delay) == OUTCOME_RETRY) {
		t->due = htp_now_ms() + delay;
		tl_push(&h->delayed, t);
		free(err);
		return 0;
	}
	complete(h, t, code, code ? aws_msg(err) : "");
	free(err);
	return 1;
}

/* Collect the attempts the builtin transport finished. */
static int collect_builtin(aws_http *h)
{
	transfer *t;
	int n = 0;
	while ((t = aws_hev_finished(h)))
		n += attempt_end(h, t, (CURLcode)t->cc);
	return n;
}

/* Collect the finished transfers of a shard; returns how many completed. */
static int collect(aws_http *h, shard *sh)
{
	CURLMsg *m;
	int left, n = 0;
	while ((m = curl_multi_info_read(sh->multi, &left))) {
		transfer *t = NULL;
		CURLcode cc;
		if (m->msg != CURLMSG_DONE)
			continue;
		cc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		curl_multi_remove_handle(sh->multi, m->easy_handle);
		if (!t)
			continue;
		sh->running--;
		n += attempt_end(h, t, cc);
	}
	return n;
}

/* Run the timeouts of the shards that are due; collect what finished.
 * Returns how many completed, or -1 (libcurl failed). */
static int run_timers(aws_http *h)
{
	int n = 0, running;
	if (h->transport == AWS_TRANSPORT_BUILTIN) {
		aws_hev_timers(h);
		return collect_builtin(h);
	}
	for (size_t i = 0; i < h->nshards; i++) {
		shard *sh = &h->shards[i];
		if (sh->timer_due >= 0 && sh->timer_due <= htp_now_ms()) {
			sh->timer_due = -1;
			if (curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running) !=
			    CURLM_OK)
				return -1;
		}
		n += collect(h, sh);
	}
	return n;
}

/* ms until the first shard's timeout (-1: none). */
static long long next_timer(aws_http *h)
{
	long long next = -1;
	if (h->transport == AWS_TRANSPORT_BUILTIN)
		return aws_hev_timers(h);
	for (size_t i = 0; i < h->nshards; i++)
		if (h->shards[i].timer_due >= 0 && (next < 0 || h->shards[i].timer_due < next))
			next = h->shards[i].timer_due;
	return next < 0 ? -1 : next - htp_now_ms() < 0 ? 0 : next - htp_now_ms();
}

int aws_http_multi_wait(aws_http *h, int timeout_ms)
{
	warm_join(h, 1);
	return multi_wait(h, timeout_ms);
}

/* Warm-up requests are driven like the others but not counted. */
static int multi_wait(aws_http *h, int timeout_ms)
{
	long long deadline = timeout_ms < 0 ? -1 : htp_now_ms() + timeout_ms;
	int total = 0, polled = 0;
	for (;;) {
		struct epoll_event ev[256];
		int running = 0, n, i, done;
		long next_retry, wait;
		long long timer;
		total += deliver_ready(h);
		start_due(h);
		total += deliver_ready(h);
		if ((done = run_timers(h)) < 0)
			return -HYPERTEST_ERR_HTTP;
		total += done;
		if (total > 0)
			return total;
		if (h->running.n == 0 && h->delayed.n == 0 && h->ready.n == 0)
			return 0;
		next_retry = start_due(h);
		if (h->ready.n)
			continue;
		/* at the deadline (at once for a wait of 0 ms), the sockets are
		 * still looked at once: connections progress, requests go out */
		int expired = deadline >= 0 && htp_now_ms() >= deadline;
		if (expired && polled)
			return 0;
		wait = deadline < 0 ? 1000 : expired ? 0 : (long)(deadline - htp_now_ms());
		if (next_retry >= 0 && next_retry < wait)
			wait = next_retry;
		if ((timer = next_timer(h)) >= 0 && timer < wait)
			wait = (long)timer;
		if (wait < 0)
			wait = 0;
		if (h->transport == AWS_TRANSPORT_BUILTIN)
			aws_hev_flush(h); /* the requests added since the last wait */
		n = epoll_wait(h->epfd, ev, (int)(sizeof ev / sizeof *ev), (int)wait);
		if (n < 0 && errno != EINTR)
			return -HYPERTEST_ERR_HTTP;
		polled = 1;
		if (h->transport == AWS_TRANSPORT_BUILTIN) {
			for (i = 0; i < n; i++)
				aws_hev_event(h, &ev[i]);
			aws_hev_reap(h);
			continue; /* collected at the top */
		}
		for (i = 0; i < n; i++) {
			int flags = ((ev[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
			            ((ev[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
			            ((ev[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
			size_t si = (size_t)(ev[i].data.u64 >> 32);
			curl_socket_t s = (curl_socket_t)(uint32_t)ev[i].data.u64;
			if (si < h->nshards &&
			    curl_multi_socket_action(h->shards[si].multi, s, flags, &running) != CURLM_OK)
				return -HYPERTEST_ERR_HTTP;
			/* what was read may have left an empty TLS buffer held */
			if ((flags & CURL_CSELECT_IN) && s >= 0 && (size_t)s < h->nbyfd && h->byfd[s])
				aws_tls_trim(h->tls, h->byfd[s]);
		}
	}
}

/* ---- the warm-up ------------------------------------------------------------------------- */

static size_t drop_cb(char *data, size_t size, size_t n, void *ud)
{
	(void)data;
	(void)ud;
	return size * n;
}

/* Add n warm-up requests (h->warm_url, h->warm_headers); how many were.
 * base: how many were added before them (after the first).  Each but the
 * first is made on a new connection: a warm-up request
 * answered before another has started must not lend it its connection
 * (which happens on a loaded machine), or the warm-up leaves fewer
 * connections than asked and the first wave opens the rest.  The first
 * may take an idle one (the warm-up's first request's). */
static size_t warm_add(aws_http *h, size_t n, size_t base)
{
	size_t i;
	for (i = 0; i < n && h->transport == AWS_TRANSPORT_BUILTIN; i++) {
		transfer *t = calloc(1, sizeof *t);
		char *err = NULL;
		if (!t || aws_hev_build(h, t, h->warm_headers, "GET", h->warm_url, NULL, 0, &err) != 0) {
			free(err);
			free(t);
			break;
		}
		t->h = h;
		t->warm = 1;
		t->fresh = base + i > 0;
		tl_push(&h->running, t);
		h->warm_left++;
		aws_hev_start(h, t);
	}
	for (; i < n; i++) {
		transfer *t = calloc(1, sizeof *t);
		CURL *e = t ? curl_easy_init() : NULL;
		if (!e) {
			free(t);
			break;
		}
		h->handles++;
		t->h = h;
		t->warm = 1;
		t->easy = e;
		curl_easy_setopt(e, CURLOPT_URL, h->warm_url);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->warm_headers);
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, base + i > 0 ? 1L : 0L);
		curl_easy_setopt(e, CURLOPT_PRIVATE, t);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop_cb);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->cfg.connect_timeout_ms);
		/* requests wait for a warm-up's connection: never for long */
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2 * h->cfg.connect_timeout_ms);
		curl_easy_setopt(e, CURLOPT_USERAGENT, "hypertest-aws");
#if LIBCURL_VERSION_NUM >= 0x075500
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
		curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
		aws_tls_setup(h->tls, e);
		aws_http_small_buffers(e);
		aws_http_version(h, e, h->warm_url);
		t->sh = least_loaded(h);
		if (curl_multi_add_handle(t->sh->multi, e) != CURLM_OK) {
			curl_easy_cleanup(e);
			free(t);
			break;
		}
		t->sh->running++;
		tl_push(&h->running, t);
		h->warm_left++;
	}
	return i;
}

/* The warm-up's thread: the first request alone, so that its TLS session
 * is in the cache; then n at once, resuming it (one on the first's
 * connection): n connections, added AWS_WARM_CHUNK at a time with a look
 * at the stop flag and the events between chunks, so that the first
 * invocation (which stops the thread) never waits for all n to be added. */
static void *warm_main(void *ud)
{
	aws_http *h = ud;
	size_t added = 0; /* of the n */
	while (!atomic_load(&h->warm_stop)) {
		if (h->warm_more && (added || h->warm_left == 0)) {
			/* over HTTP/2 (the first told), connections for as many streams */
			if (!added && h->transport == AWS_TRANSPORT_BUILTIN)
				h->warm_more = aws_hev_warm_need(h, h->warm_url, h->warm_more);
			size_t k = h->warm_more < AWS_WARM_CHUNK ? h->warm_more : AWS_WARM_CHUNK;
			size_t got = warm_add(h, k, added);
			h->warm_more = got < k ? 0 : h->warm_more - k;
			added += got;
		}
		if (h->warm_left == 0 && h->warm_more == 0)
			break;
		if (multi_wait(h, h->warm_more ? 0 : 20) < 0)
			break;
	}
	return NULL;
}

size_t aws_http_handles(const aws_http *h)
{
	return h->transport == AWS_TRANSPORT_BUILTIN ? aws_hev_conns(h) : h->handles;
}

/* libcurl: the idle easy handles freed (each as a transfer ending would
 * be), and the transfers that end from now on free theirs; each multi
 * handle may keep one connection, so that libcurl closes an idle one (the
 * oldest) as every transfer gives its connection back.  The builtin
 * transport closes its idle connections, then each as its answer ends. */
void aws_http_release_idle(aws_http *h)
{
	warm_join(h, 1);
	h->release_idle = 1;
	aws_hev_release_idle(h);
	while (h->nidle) {
		CURL *e = h->idle[--h->nidle];
		for (size_t i = 0; i < h->nbyfd; i++)
			if (h->byfd[i] == e)
				h->byfd[i] = NULL;
		curl_easy_cleanup(e);
		h->handles--;
	}
	free(h->idle);
	h->idle = NULL;
	h->idle_cap = 0;
	for (size_t i = 0; i < h->nshards; i++)
		curl_multi_setopt(h->shards[i].multi, CURLMOPT_MAXCONNECTS, 1L);
}

size_t aws_http_warm_left(aws_http *h)
{
	warm_join(h, 0);
	return h->warm_left;
}

int aws_http_warm(aws_http *h, const aws_http_request *req, size_t n, size_t *opening,
                  char **err)
{
	int rc;
	if (opening)
		*opening = 0;
	warm_join(h, 1);
	/* once per client, before its first request: never more connections
	 * than the client may open */
	if (h->warmed || h->running.n || h->delayed.n || h->ready.n)
		return 0;
	h->warmed = 1;
	if (n > (size_t)h->cfg.concurrency)
		n = (size_t)h->cfg.concurrency;
	if (n == 0)
		return 0;
	decide(h, req->url);
	if ((rc = aws_http_header_list(h, req, &h->warm_headers, err)))
		return rc;
	if (!(h->warm_url = strdup(req->url)) || warm_add(h, 1, 0) == 0) {
		warm_free(h);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "%s: cannot start the warm-up",
		                h->transport == AWS_TRANSPORT_CURL ? "libcurl" : "http");
	}
	h->warm_more = n; /* one of them finds the first's connection idle */
	if (opening)
		*opening = n;
	atomic_store(&h->warm_stop, 0);
	if (pthread_create(&h->warm_thread, NULL, warm_main, h) == 0) {
		h->warm_thread_on = 1;
	} else { /* the caller's waits drive them */
		warm_add(h, h->warm_more, 0);
		h->warm_more = 0;
	}
	return 0;
}
