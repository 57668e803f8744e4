/*
 * http-ev-host.c - the builtin transport's hosts and request text: the
 * host entry of a URL (scheme, name, port; its addresses resolved once)
 * and an attempt's HTTP/1.1 request, which HTTP/2 reads back as header
 * fields (http-h2.c).  Part of http-ev.c's transport (see there).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "http-ev.h"
#include "http-int.h"
/* ---- hosts and URLs ----------------------------------------------------------------------- */

/* scheme://host[:port]/path?query: the host entry and the request target */
int aws_hev_host_of(aws_http *h, const char *url, aws_hhost **hostp, const char **target)
{
	aws_hev *ev = h->ev;
	const char *p, *hs, *he, *ps = NULL;
	int https, port;
	char name[256];
	aws_hhost *host;
	if (strncasecmp(url, "https://", 8) == 0)
		https = 1, p = url + 8;
	else if (strncasecmp(url, "http://", 7) == 0)
		https = 0, p = url + 7;
	else
		return -1;
	hs = p;
	if (*p == '[') {
		he = strchr(p, ']');
		if (!he)
			return -1;
		hs = p + 1;
		p = he + 1;
	} else {
		p += strcspn(p, ":/?#");
		he = p;
	}
	if (*p == ':')
		ps = ++p, p += strspn(p, "0123456789");
	if (*p && *p != '/' && *p != '?')
		return -1;
	port = ps && p > ps ? atoi(ps) : https ? 443 : 80;
	if (he == hs || (size_t)(he - hs) >= sizeof name || port <= 0 || port > 65535)
		return -1;
	for (size_t i = 0; i < (size_t)(he - hs); i++)
		name[i] = (char)tolower((unsigned char)hs[i]);
	name[he - hs] = '\0';
	*target = p;
	for (host = ev->hosts; host; host = host->next)
		if (host->port == port && host->https == https && strcmp(host->name, name) == 0) {
			*hostp = host;
			return 0;
		}
	if (!(host = calloc(1, sizeof *host)))
		return -2;
	host->name = strdup(name);
	host->port = port;
	host->https = https;
	if (!host->name || asprintf(&host->key, "%s:%d", name, port) < 0) {
		host->key = NULL;
		free(host->name);
		free(host);
		return -2;
	}
	{
		unsigned char buf[sizeof(struct in6_addr)];
		host->is_ip = inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
	}
	/* HTTP/2 asked for: over https the first connection's ALPN tells,
	 * over http it is spoken from the first byte (prior knowledge) but
	 * when only ALPN may choose it */
	host->h2 = h->cfg.http2 == AWS_HTTP2_OFF  ? H2_NO
	           : https                        ? H2_UNKNOWN
	           : h->cfg.http2 == AWS_HTTP2_ON ? H2_YES
	                                          : H2_NO;
	host->h2_hint = AWS_H2_FIRST_STREAMS;
	host->next = ev->hosts;
	ev->hosts = host;
	*hostp = host;
	return 0;
}

int aws_hev_resolve(aws_hhost *host)
{
	struct addrinfo hints;
	char port[16];
	if (host->ai)
		return 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM; /* every family: the ones that fail are passed over */
	snprintf(port, sizeof port, "%d", host->port);
	return getaddrinfo(host->name, port, &hints, &host->ai);
}

int aws_hev_build(aws_http *h, transfer *t, const struct curl_slist *headers, const char *method,
                  const char *url, const void *body, size_t body_len, char **err)
{
	const char *target;
	const struct curl_slist *l;
	int rc, has_ua = 0, has_accept = 0;
	htp_buf *b = &t->reqbuf;
	if (!h->ev && aws_hev_init(h) < 0)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	if ((rc = aws_hev_host_of(h, url, &t->hhost, &target)) != 0)
		return rc == -2 ? aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory")
		                : aws_fail(err, HYPERTEST_ERR_INVALID, "\"%s\" is not an http(s) URL", url);
	b->len = 0;
	t->sent = 0;
	rc = htp_buf_addf(b, "%s %s%.*s HTTP/1.1\r\n", method, *target == '/' ? "" : "/",
	                  (int)strcspn(target, "#"), target);
	for (l = headers; rc == 0 && l; l = l->next) {
		const char *colon = strchr(l->data, ':');
		/* "Name:" with nothing after: a header libcurl would not send */
		if (colon && colon[1] == '\0')
			continue;
		has_ua |= strncasecmp(l->data, "user-agent:", 11) == 0;
		has_accept |= strncasecmp(l->data, "accept:", 7) == 0;
		rc = htp_buf_addf(b, "%s\r\n", l->data);
	}
	if (rc == 0 && !has_ua)
		rc = htp_buf_str(b, "User-Agent: hypertest-aws\r\n");
	if (rc == 0 && !has_accept)
		rc = htp_buf_str(b, "Accept: */*\r\n");
	if (rc == 0 && (body_len || (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
	                             strcmp(method, "DELETE") != 0)))
		rc = htp_buf_addf(b, "Content-Length: %zu\r\n", body_len);
	if (rc == 0)
		rc = htp_buf_str(b, "\r\n");
	if (rc == 0 && body_len)
		rc = htp_buf_add(b, body, body_len);
	if (rc != 0) {
		htp_buf_free(b);
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	return 0;
}
