/*
 * local-lambda-serve.c - the local provider inside a sandbox of isolation
 * "lambda": the Runtime API loop, as a function on Lambda runs it.  GET
 * .../invocation/next (blocking), the payload through up.function_handle,
 * POST .../{id}/response (or .../{id}/error when there is no response);
 * POST .../init/error when the function cannot run tests.  A plain
 * HTTP/1.1 client over TCP: AWS_LAMBDA_RUNTIME_API is "HOST:PORT" with an
 * IPv4 address (the provider serves it on 127.0.0.1); one connection per
 * request, closed by the server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "local.h"

#define RT "/2018-06-01/runtime"

typedef struct rt_answer {
	int status;
	char *data; /* head and body, NUL-terminated */
	size_t len;
	size_t body; /* offset of the body */
} rt_answer;

static int send_all(int fd, const char *d, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
		if (w > 0) {
			d += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* One request; 0 with *a filled, or -1 with errno. */
static int rt_request(const char *api, const char *method, const char *path,
                      const char *headers, const char *body, size_t len, rt_answer *a)
{
	memset(a, 0, sizeof *a);
	const char *colon = strrchr(api, ':');
	char host[64];
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	if (!colon || (size_t)(colon - api) >= sizeof host) {
		errno = EINVAL;
		return -1;
	}
	memcpy(host, api, (size_t)(colon - api));
	host[colon - api] = '\0';
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	char *head = htp_strdupf("%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	                            "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
	                            method, path, api, len, headers ? headers : "");
	int rc = -1;
	if (!head)
		errno = ENOMEM;
	else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	         send_all(fd, head, strlen(head)) == 0 && send_all(fd, body, len) == 0)
		rc = 0;
	free(head);
	size_t cap = 0;
	while (rc == 0) {
		if (a->len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(a->data, cap + 1);
			if (!nb) {
				errno = ENOMEM;
				rc = -1;
				break;
			}
			a->data = nb;
		}
		ssize_t r = recv(fd, a->data + a->len, cap - a->len, 0);
		if (r > 0)
			a->len += (size_t)r;
		else if (r == 0)
			break;
		else if (errno != EINTR)
			rc = -1;
	}
	close(fd);
	if (rc == 0) {
		a->data[a->len] = '\0';
		char *e = strstr(a->data, "\r\n\r\n");
		if (!e || sscanf(a->data, "HTTP/%*s %d", &a->status) != 1) {
			errno = EPROTO;
			rc = -1;
		} else {
			a->body = (size_t)(e - a->data) + 4;
		}
	}
	if (rc != 0) {
		free(a->data);
		a->data = NULL;
	}
	return rc;
}

/* A header's value in the answer's head (copied into out). */
static int answer_header(const rt_answer *a, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	for (const char *s = strchr(a->data, '\n'); s && s < a->data + a->body; s = strchr(s, '\n')) {
		s++;
		if (!strncasecmp(s, name, nl) && s[nl] == ':') {
			const char *v = s + nl + 1;
			while (*v == ' ')
				v++;
			size_t n = strcspn(v, "\r\n");
			if (n >= size)
				return -1;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
	}
	return -1;
}

static void rt_error(local_provider *p, const char *api, const char *path, const char *type,
                     const char *msg)
{
	json_t *doc = json_pack("{s:s, s:s}", "errorMessage", msg, "errorType", type);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	char *hdr = htp_strdupf("Lambda-Runtime-Function-Error-Type: %s\r\n", type);
	rt_answer a;
	json_decref(doc);
	if (text && hdr && rt_request(api, "POST", path, hdr, text, strlen(text), &a) == 0) {
		if (a.status != 202)
			local_log(p, HYPERTEST_LOG_ERROR, "Runtime API: POST %s answered %d", path,
			          a.status);
		free(a.data);
	} else {
		local_log(p, HYPERTEST_LOG_ERROR, "Runtime API: cannot POST %s: %s", path,
		          strerror(errno));
	}
	free(text);
	free(hdr);
}

int local_lambda_serve(local_provider *p, hypertest_function *fn, const char *api)
{
	const char *init = p->up.core_str ? p->up.core_str(p->core, HYPERTEST_CORE_FUNCTION_INIT_ERROR)
	                                  : NULL;
	if (init && *init) {
		rt_error(p, api, RT "/init/error", "Runtime.InitError", init);
		return local_fail(p, HYPERTEST_ERR_PLUGIN, "%s", init);
	}
	for (;;) {
		rt_answer next;
		char id[200], path[512];
		if (rt_request(api, "GET", RT "/invocation/next", NULL, "", 0, &next) != 0)
			return local_fail(p, HYPERTEST_ERR_IO, "Runtime API %s: GET next: %s", api,
			                  strerror(errno));
		if (next.status != 200 ||
		    answer_header(&next, "Lambda-Runtime-Aws-Request-Id", id, sizeof id) != 0 ||
		    !*id || strpbrk(id, "/?#% ")) {
			int st = next.status;
			free(next.data);
			return local_fail(p, HYPERTEST_ERR_PROVIDER, "Runtime API %s: GET next answered "
			                  "%d without a usable Lambda-Runtime-Aws-Request-Id", api, st);
		}
		hypertest_buffer *resp = p->up.buffer_new(p->core);
		int hrc = resp ? p->up.function_handle(fn, next.data + next.body, next.len - next.body,
		                                       resp)
		               : HYPERTEST_ERR_NOMEM;
		free(next.data);
		size_t n = 0;
		const char *data = resp ? p->up.buffer_data(resp, &n) : NULL;
		if (data && n > 0) {
			rt_answer a;
			snprintf(path, sizeof path, RT "/invocation/%s/response", id);
			if (rt_request(api, "POST", path, NULL, data, n, &a) != 0) {
				local_log(p, HYPERTEST_LOG_ERROR, "Runtime API: cannot send the response "
				          "of %s: %s", id, strerror(errno));
			} else {
				if (a.status != 202)
					local_log(p, HYPERTEST_LOG_ERROR, "Runtime API: the response of %s was "
					          "answered %d", id, a.status);
				free(a.data);
			}
		} else {
			char msg[1200];
			snprintf(msg, sizeof msg, "hypertest-function could not handle the payload: %s",
			         hrc ? "error" : "no response");
			snprintf(path, sizeof path, RT "/invocation/%s/error", id);
			rt_error(p, api, path, "Runtime.HandlerError", msg);
		}
		if (resp)
			p->up.buffer_free(resp);
	}
}
