/*
 * aws-sigv4-httpd.c - the test HTTP server of aws-sigv4-httpd.h: a thread
 * polling a listening socket and its connections, reading requests
 * (Content-Length bodies), answering through the handler, keeping
 * connections open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aws-sigv4-httpd.h"
#include "loopback.h"

typedef struct conn {
	int fd;
	htp_buf in;
	htp_buf out;
	size_t out_off;
	int held; /* a complete request waits for its answer */
	int seq;  /* its number */
} conn;

struct httpd {
	int lfd, port, wake[2];
	pthread_t thread;
	pthread_mutex_t lock;
	httpd_handler fn;
	void *ud;
	int hold_until;
	int requests, max_conns, nopen, accepted;
	conn *conns;
	size_t nconns, cap;
};

void httpd_reply(htp_buf *out, int status, const char *headers, const char *body)
{
	size_t n = body ? strlen(body) : 0;
	htp_buf_addf(out, "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n", status,
	             headers ? headers : "", n);
	if (n)
		htp_buf_add(out, body, n);
}

/* Length of a complete request at the start of b, or 0. */
static size_t request_len(const htp_buf *b)
{
	const char *end, *cl;
	size_t head, body = 0;
	if (!b->data)
		return 0;
	end = strstr(b->data, "\r\n\r\n");
	if (!end)
		return 0;
	head = (size_t)(end - b->data) + 4;
	for (cl = b->data; (cl = strcasestr(cl, "\r\ncontent-length:")) && cl < end; cl++) {
		body = strtoul(cl + 17, NULL, 10);
		break;
	}
	return b->len >= head + body ? head + body : 0;
}

static void answer(httpd *d, conn *c)
{
	size_t len = request_len(&c->in);
	d->fn(d->ud, c->in.data, len, c->seq, &c->out);
	memmove(c->in.data, c->in.data + len, c->in.len - len);
	c->in.len -= len;
	c->in.data[c->in.len] = '\0';
	c->held = 0;
}

static void close_conn(httpd *d, size_t i)
{
	close(d->conns[i].fd);
	htp_buf_free(&d->conns[i].in);
	htp_buf_free(&d->conns[i].out);
	d->conns[i] = d->conns[--d->nconns];
	pthread_mutex_lock(&d->lock);
	d->nopen--;
	pthread_mutex_unlock(&d->lock);
}

static void *loop(void *arg)
{
	httpd *d = arg;
	struct pollfd *pf = NULL;
	size_t pcap = 0;
	for (;;) {
		size_t i, n = d->nconns + 2;
		int held = 0;
		if (n > pcap) {
			pcap = n * 2;
			pf = realloc(pf, pcap * sizeof *pf);
		}
		pf[0].fd = d->wake[0];
		pf[0].events = POLLIN;
		pf[1].fd = d->lfd;
		pf[1].events = POLLIN;
		for (i = 0; i < d->nconns; i++) {
			pf[i + 2].fd = d->conns[i].fd;
			pf[i + 2].events = (short)(POLLIN | (d->conns[i].out.len > d->conns[i].out_off ? POLLOUT : 0));
		}
		if (poll(pf, n, -1) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		if (pf[1].revents & POLLIN) {
			int fd;
			while ((fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				if (d->nconns == d->cap) {
					d->cap = d->cap ? d->cap * 2 : 64;
					d->conns = realloc(d->conns, d->cap * sizeof *d->conns);
				}
				memset(&d->conns[d->nconns], 0, sizeof *d->conns);
				d->conns[d->nconns++].fd = fd;
				pthread_mutex_lock(&d->lock);
				d->accepted++;
				if (++d->nopen > d->max_conns)
					d->max_conns = d->nopen;
				pthread_mutex_unlock(&d->lock);
			}
		}
		/* pf[i + 2] matches conns[i] only until a connection closes: walk
		 * backwards so that closing (which moves the last one) is safe */
		for (i = n - 2; i-- > 0;) {
			conn *c = &d->conns[i];
			short re = pf[i + 2].revents;
			if (i >= d->nconns || pf[i + 2].fd != c->fd)
				continue;
			if (re & POLLIN) {
				char buf[65536];
				ssize_t r = read(c->fd, buf, sizeof buf);
				if (r <= 0) {
					if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
						close_conn(d, i);
						continue;
					}
				} else {
					htp_buf_add(&c->in, buf, (size_t)r);
				}
				if (!c->held && request_len(&c->in)) {
					c->held = 1;
					pthread_mutex_lock(&d->lock);
					c->seq = d->requests++;
					pthread_mutex_unlock(&d->lock);
				}
			} else if (re & (POLLHUP | POLLERR)) {
				close_conn(d, i);
				continue;
			}
			if (re & POLLOUT && c->out.len > c->out_off) {
				ssize_t w = write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
				if (w > 0)
					c->out_off += (size_t)w;
				if (c->out_off == c->out.len) {
					c->out.len = c->out_off = 0;
				}
			}
		}
		for (i = 0; i < d->nconns; i++)
			held += d->conns[i].held;
		if (held && (d->hold_until <= 0 || held >= d->hold_until)) {
			for (i = 0; i < d->nconns; i++)
				if (d->conns[i].held) {
					conn *c = &d->conns[i];
					answer(d, c);
					ssize_t w = write(c->fd, c->out.data, c->out.len);
					if (w > 0)
						c->out_off = (size_t)w;
					if (c->out_off == c->out.len)
						c->out.len = c->out_off = 0;
				}
			if (d->hold_until > 0)
				d->hold_until = 0; /* once released, answer at once */
		}
	}
	free(pf);
	return NULL;
}

httpd *httpd_start(httpd_handler fn, void *ud, int hold_until)
{
	httpd *d = calloc(1, sizeof *d);
	d->fn = fn;
	d->ud = ud;
	d->hold_until = hold_until;
	pthread_mutex_init(&d->lock, NULL);
	d->lfd = test_listen("127.0.0.1", SOCK_NONBLOCK, 4096, &d->port);
	if (d->lfd < 0 || pipe2(d->wake, O_CLOEXEC) < 0) {
		if (d->lfd >= 0)
			close(d->lfd);
		free(d);
		return NULL;
	}
	if (pthread_create(&d->thread, NULL, loop, d) != 0) {
		close(d->lfd);
		free(d);
		return NULL;
	}
	return d;
}

int httpd_port(const httpd *d)
{
	return d->port;
}

int httpd_requests(httpd *d)
{
	int n;
	pthread_mutex_lock(&d->lock);
	n = d->requests;
	pthread_mutex_unlock(&d->lock);
	return n;
}

int httpd_max_connections(httpd *d)
{
	int n;
	pthread_mutex_lock(&d->lock);
	n = d->max_conns;
	pthread_mutex_unlock(&d->lock);
	return n;
}

int httpd_connections(httpd *d)
{
	int n;
	pthread_mutex_lock(&d->lock);
	n = d->accepted;
	pthread_mutex_unlock(&d->lock);
	return n;
}

int httpd_open(httpd *d)
{
	int n;
	pthread_mutex_lock(&d->lock);
	n = d->nopen;
	pthread_mutex_unlock(&d->lock);
	return n;
}

void httpd_stop(httpd *d)
{
	size_t i;
	if (!d)
		return;
	if (write(d->wake[1], "x", 1) < 0) {
		/* the thread is stuck in poll without the pipe: nothing else to do */
	}
	pthread_join(d->thread, NULL);
	for (i = 0; i < d->nconns; i++) {
		close(d->conns[i].fd);
		htp_buf_free(&d->conns[i].in);
		htp_buf_free(&d->conns[i].out);
	}
	free(d->conns);
	close(d->lfd);
	close(d->wake[0]);
	close(d->wake[1]);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
