/*
 * http-connector.c - the builtin transport's second thread: it opens the
 * sockets of a burst of new connections (socket(), options, the
 * non-blocking connect()) while the transport's own thread builds, signs
 * and sends the requests.  A connect() costs tens of microseconds of
 * system time, the whole TCP handshake on loopback; 2,000 of them on the
 * one thread were half of the time before the last request of a wave went
 * out.
 *
 * The transport's thread hands over a job (the connection's address,
 * copied) and goes on; the connector works through the jobs in order and
 * gives each back, with its socket or errno, on a list that an eventfd in
 * the transport's epoll set announces.  The socket joins the epoll set
 * only then, on the transport's thread, which alone touches connections:
 * the connector sees addresses and descriptors, never a connection.  A
 * connection closed while its job is out (a deadline, a cancel) drops its
 * claim; the socket that comes back for nobody is closed.
 *
 * Once it runs, it also closes the sockets of the connections the
 * transport ends (out of the epoll set first), when no job waits: on
 * loopback a close() is the TCP teardown too, and at the end of a run
 * (INVOKE_END: each connection closed as its last answer comes) thousands
 * of them held up the answers still coming.
 *
 * When: once 16 connections are being set up at the same time (a wave,
 * not the odd request), for the transport's life.
 * HYPERTEST_AWS_CONNECT_THREAD=0 never, =1 from the first connection.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http-ev.h"
#include "http-int.h"

#define CONNECT_BURST 16

typedef struct hcon_job {
	aws_hconn *c; /* NULL once the connection gave up waiting */
	int family, socktype, protocol;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int fd, rc, err; /* the outcome: fd (or -1), connect()'s 0 or -1, errno */
	struct hcon_job *next;
} hcon_job;

struct aws_hcon {
	pthread_t thread;
	int started, stop;
	pthread_mutex_t lock;
	pthread_cond_t more;
	hcon_job *todo, *todo_tail; /* for the connector, in order */
	int *closing;               /* sockets to close, after the jobs */
	size_t nclosing, capclosing;
	hcon_job *done;             /* for the transport */
	aws_hconn wake;             /* the eventfd's entry in the epoll set */
	int mode;                   /* -1 never, 0 at a burst, 1 always */
	unsigned long opened;       /* sockets handed back */
	unsigned long closed;       /* sockets closed for the transport */
};

static void job_free(hcon_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

static void open_socket(hcon_job *j)
{
	int one = 1;

	j->rc = -1;
	j->fd = socket(j->family, j->socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, j->protocol);
	if (j->fd < 0) {
		j->err = errno;
		return;
	}
	setsockopt(j->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(j->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	j->rc = connect(j->fd, (const struct sockaddr *)&j->addr, j->addrlen);
	j->err = j->rc == 0 ? 0 : errno;
}

static void *connector_main(void *arg)
{
	aws_hcon *k = arg;
	const uint64_t one = 1;
	int wanted;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		hcon_job *j;
		while (!k->stop && !k->todo && !k->nclosing)
			pthread_cond_wait(&k->more, &k->lock);
		if (k->stop)
			break;
		if (!k->todo) { /* the sockets to close, once no job waits */
			int fds[64];
			size_t n = k->nclosing < 64 ? k->nclosing : 64;
			k->nclosing -= n;
			memcpy(fds, k->closing + k->nclosing, n * sizeof *fds);
			pthread_mutex_unlock(&k->lock);
			for (size_t i = 0; i < n; i++)
				close(fds[i]);
			pthread_mutex_lock(&k->lock);
			continue;
		}
		j = k->todo;
		k->todo = j->next;
		if (!k->todo)
			k->todo_tail = NULL;
		wanted = j->c != NULL;
		pthread_mutex_unlock(&k->lock);
		if (wanted)
			open_socket(j);
		pthread_mutex_lock(&k->lock);
		j->next = k->done;
		k->done = j;
		pthread_mutex_unlock(&k->lock);
		/* the eventfd's counter only grows: a failed write leaves it
		 * readable all the same */
		if (write(k->wake.fd, &one, sizeof one) < 0) {
		}
		pthread_mutex_lock(&k->lock);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

void aws_hcon_init(aws_http *h)
{
	const char *env = getenv("HYPERTEST_AWS_CONNECT_THREAD");
	aws_hcon *k = calloc(1, sizeof *k);

	if (!k)
		return; /* connections open on the transport's thread */
	k->mode = env && !strcmp(env, "0") ? -1 : env && !strcmp(env, "1") ? 1 : 0;
	k->wake.fd = -1;
	h->ev->hcon = k;
}

/* Start the thread, its signals blocked (they are the process's other
 * threads' to take).  0, or -1: connections open on the transport's
 * thread from now on. */
static int start(aws_http *h, aws_hcon *k)
{
	struct epoll_event ev;
	sigset_t all, old;
	int rc;

	k->mode = -1; /* once: whatever happens below */
	if ((k->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = &k->wake;
	k->wake.state = HC_CONNECTOR;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, k->wake.fd, &ev) < 0 ||
	    pthread_mutex_init(&k->lock, NULL) != 0) {
		close(k->wake.fd);
		k->wake.fd = -1;
		return -1;
	}
	pthread_cond_init(&k->more, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&k->thread, NULL, connector_main, k);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, k->wake.fd, NULL);
		close(k->wake.fd);
		k->wake.fd = -1;
		pthread_cond_destroy(&k->more);
		pthread_mutex_destroy(&k->lock);
		return -1;
	}
	k->started = 1;
	aws_hev_vlog(h, NULL, "new connections are opened by a second thread");
	return 0;
}

int aws_hcon_submit(aws_http *h, aws_hconn *c)
{
	aws_hcon *k = h->ev->hcon;
	const struct addrinfo *a = c->ai;
	hcon_job *j;

	if (!k ||
	    (!k->started && (k->mode < 0 || (k->mode == 0 && h->ev->nconnecting < CONNECT_BURST))))
		return -1;
	if (!k->started && start(h, k) != 0)
		return -1;
	if (a->ai_addrlen > sizeof j->addr || !(j = calloc(1, sizeof *j)))
		return -1;
	j->c = c;
	j->family = a->ai_family;
	j->socktype = a->ai_socktype;
	j->protocol = a->ai_protocol;
	memcpy(&j->addr, a->ai_addr, a->ai_addrlen);
	j->addrlen = a->ai_addrlen;
	j->fd = -1;
	c->job = j;
	pthread_mutex_lock(&k->lock);
	if (k->todo_tail)
		k->todo_tail->next = j;
	else
		k->todo = j;
	k->todo_tail = j;
	pthread_cond_signal(&k->more);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

int aws_hcon_close(aws_http *h, int fd)
{
	aws_hcon *k = h->ev ? h->ev->hcon : NULL;
	int rc = -1;

	if (!k || !k->started)
		return -1;
	pthread_mutex_lock(&k->lock);
	if (k->nclosing == k->capclosing) {
		size_t cap = k->capclosing ? 2 * k->capclosing : 256;
		int *grown = realloc(k->closing, cap * sizeof *grown);
		if (grown) {
			k->closing = grown;
			k->capclosing = cap;
		}
	}
	if (k->nclosing < k->capclosing) {
		k->closing[k->nclosing++] = fd;
		k->closed++;
		pthread_cond_signal(&k->more);
		rc = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

void aws_hcon_cancel(aws_http *h, aws_hconn *c)
{
	aws_hcon *k = h->ev ? h->ev->hcon : NULL;

	if (!c->job || !k)
		return;
	pthread_mutex_lock(&k->lock);
	c->job->c = NULL;
	pthread_mutex_unlock(&k->lock);
	c->job = NULL;
}

void aws_hcon_drain(aws_http *h)
{
	aws_hcon *k = h->ev->hcon;
	hcon_job *list, *rev = NULL;
	uint64_t n;

	if (read(k->wake.fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&k->lock);
	list = k->done;
	k->done = NULL;
	pthread_mutex_unlock(&k->lock);
	while (list) { /* oldest first */
		hcon_job *j = list;
		list = j->next;
		j->next = rev;
		rev = j;
	}
	while (rev) {
		hcon_job *j = rev;
		aws_hconn *c = j->c;
		rev = j->next;
		if (c) {
			c->job = NULL;
			if (j->fd >= 0)
				k->opened++;
			aws_hev_connect_done(h, c, j->fd, j->rc, j->err);
			j->fd = -1; /* the connection's now */
		}
		job_free(j);
	}
}

void aws_hcon_free(aws_http *h)
{
	aws_hcon *k = h->ev ? h->ev->hcon : NULL;
	hcon_job *lists[2], *j;
	int i;

	if (!k)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->lock);
		k->stop = 1;
		pthread_cond_signal(&k->more);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->thread, NULL);
		aws_hev_vlog(h, NULL, "the second thread opened %lu connections and closed %lu", k->opened,
		             k->closed);
		lists[0] = k->todo;
		lists[1] = k->done;
		for (i = 0; i < 2; i++)
			while ((j = lists[i])) {
				lists[i] = j->next;
				if (j->c)
					j->c->job = NULL;
				job_free(j);
			}
		while (k->nclosing)
			close(k->closing[--k->nclosing]);
		free(k->closing);
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, k->wake.fd, NULL);
		close(k->wake.fd);
		pthread_cond_destroy(&k->more);
		pthread_mutex_destroy(&k->lock);
	}
	free(k);
	h->ev->hcon = NULL;
}
