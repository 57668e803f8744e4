/*
 * lambda-endpoint.c - a small, fast Lambda Invoke endpoint for the
 * benchmark bench/aws-invoke.sh only (not a test double, not part of
 * `make check`).  One thread, epoll, non-blocking sockets, HTTP/1.1
 * keep-alive, one timer heap for the per-invocation delay, 127.0.0.1 only.
 *
 *   lambda-endpoint [--port N] [--delay-ms MS] [--watch-pid PID]
 *                   [--tls-cert PEM --tls-key PEM]
 *
 * With --tls-cert and --tls-key it speaks HTTPS only (OpenSSL, one SSL_CTX,
 * non-blocking handshakes on the same epoll loop; TLS 1.2 and 1.3, session
 * tickets and a session cache, so clients may resume), and counts
 * connections, full handshakes and resumed ones.
 *
 * Prints "PORT <n>" on stdout once it listens (--port 0, the default, picks
 * a free port).  Ends on SIGTERM/SIGINT, or when --watch-pid is gone.
 *
 *   POST /2015-03-31/functions/{name}/invocations[?Qualifier=...]
 *       answers, delayMs later, 200 with a function response
 *       {"success": true, "name": ..., "filePath": "unknown", "duration": delayMs}
 *       (name: the payload's context.name/id/grep as endpoint.py does, else
 *       its testId); a payload that is not a JSON object is refused with 400
 *       InvalidRequestContentException, one without a testId answers a
 *       function error (X-Amz-Function-Error: Unhandled).
 *   GET  /_stats   {"invocations": N, "maxInFlight": M, "inFlight": K, "rejected": R,
 *                   "firstArrival": T, "arrivalSpanMs": S, "connections": C,
 *                   "fullHandshakes": F, "resumedHandshakes": H, "afterWave": {...}}
 *                  (T: Unix time in ms of the first invocation since the reset, S: from
 *                   its arrival to the last's; C, F, H since the reset; afterWave: the
 *                   same three counted once `wave` invocations had arrived, and
 *                   "newConnections": invocations after those that were the first
 *                   invocation on their connection)
 *   POST /_reset   zeroes the counters; an optional body {"delayMs": MS, "wave": W} sets
 *                  the delay and the size of the first wave (0: none)
 *   POST /_faults  {"rate": R, "seed": S, "slowMs": MS}: injected faults from now on (rate 0:
 *                  none), their counts and outcomes cleared; see "Faults" below
 *   GET  /_faults  {"rate", "seed", "invocations": N, "faults": {kind: count},
 *                   "outcomes": {testId: [kind or "ok", ...]}} since the last POST /_faults
 *   anything else  404 UnknownOperationException (Lambda's error format)
 *
 * Authentication: every request but /_stats and /_reset must carry
 * "Authorization: AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/lambda/aws4_request,
 * SignedHeaders=..., Signature=<64 hex>" and an X-Amz-Date; others get 403
 * in Lambda's error format.  The signature is NOT recomputed: this endpoint
 * checks only the shape of the header.  Whether hypertest's signatures are
 * right is tested against tests/services/aws/endpoint.py, which verifies each one
 * with botocore (bench/aws-invoke.sh with BENCH_ENDPOINT=python, and the
 * tests under tests/services/aws).
 *
 * Faults (bench/reliability.sh): Invoke number s since POST /_faults is
 * faulty when a generator seeded with (seed, s) draws under rate; its kind,
 * all alike: throttle (429 TooManyRequestsException), server500 and
 * server503 (ServiceException) before the function "runs"; after it,
 * reset (the connection reset with an RST, no answer), truncated (half the
 * body, then close), garbage (200 with a body that is not JSON), slow (the
 * body in 8 pieces over slowMs) and functionError (200, Unhandled, an
 * InjectedFault payload).  Each kind is counted, and each Invoke's outcome
 * is listed under its payload's testId, as tests/services/aws/endpoint.py does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (6 * 1024 * 1024 + 1024)
#define LISTEN_BACKLOG 4096

enum cstate { C_READ, C_PENDING, C_WRITE };

typedef struct conn {
	int fd;
	unsigned gen;        /* bumped on close: stale timers are ignored */
	enum cstate state;
	int keep_alive;
	int close_after;     /* close once the answer is written */
	int out_watch;       /* EPOLLOUT is registered */
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	size_t consumed;     /* bytes of in that the pending request used */
	char *answer;        /* the pending Invoke's answer body */
	int answer_ferror;
	SSL *ssl;            /* TLS mode */
	int handshaking;
	long long served;    /* invocations answered on this connection */
	int fault;           /* the pending Invoke's injected fault (F_NONE: none) */
	char *slow;          /* a slow body: what is still to be sent, */
	size_t slow_len, slow_off, slow_step;
	int slow_close;      /* and close_after once it is */
} conn;

typedef struct timer {
	long long due_us;
	int fd;
	unsigned gen;
	int slow;            /* the next piece of a slow body, not an Invoke's end */
} timer;

static conn **conns;
static size_t nconns;
static timer *heap;
static size_t heap_len, heap_cap;
static int ep;
static long delay_ms;
static long long invocations, rejected;
static long long first_arrival_us, last_arrival_us; /* of the invocations since the reset */
static double first_arrival_epoch_ms;                /* the same, as Unix time in ms */
static long in_flight, max_in_flight;
static unsigned long long request_seq;
static volatile sig_atomic_t stopping;
static SSL_CTX *tls_ctx; /* NULL: plain HTTP */
typedef struct tally {
	long long connections, full, resumed, new_conn_invocations;
} tally;
static tally since_reset, after_wave;
static long long wave; /* first-wave size, 0: none */

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("lambda-endpoint: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		die("out of memory");
	return p;
}

static long long now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- timer heap ------------------------------------------------------------------------------ */

static void heap_push(timer t)
{
	size_t i;
	if (heap_len == heap_cap) {
		heap_cap = heap_cap ? heap_cap * 2 : 1024;
		heap = xrealloc(heap, heap_cap * sizeof *heap);
	}
	i = heap_len++;
	while (i > 0 && heap[(i - 1) / 2].due_us > t.due_us) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = t;
}

static timer heap_pop(void)
{
	timer top = heap[0], last = heap[--heap_len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= heap_len)
			break;
		if (c + 1 < heap_len && heap[c + 1].due_us < heap[c].due_us)
			c++;
		if (heap[c].due_us >= last.due_us)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (heap_len)
		heap[i] = last;
	return top;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void out_add(conn *c, const char *s, size_t n)
{
	if (c->out_len + n > c->out_cap) {
		c->out_cap = (c->out_len + n) * 2;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 413: return "Request Entity Too Large";
	default: return "Error";
	}
}

static void respond(conn *c, int status, const char *extra_headers, const char *body)
{
	char head[1024];
	size_t blen = strlen(body);
	int n = snprintf(head, sizeof head,
	                 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	                 "x-amzn-RequestId: 00000000-0000-4000-8000-%012llx\r\n%s"
	                 "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
	                 status, reason(status), ++request_seq, extra_headers ? extra_headers : "",
	                 blen, c->keep_alive && !c->close_after ? "keep-alive" : "close");
	if (!c->keep_alive)
		c->close_after = 1;
	out_add(c, head, (size_t)n);
	out_add(c, body, blen);
	c->state = C_WRITE;
}

/* Lambda's REST-JSON error: code in x-amzn-ErrorType, body {"Type", "message"}. */
static void respond_error(conn *c, int status, const char *code, const char *message)
{
	char hdr[256];
	json_t *doc = json_pack("{s:s,s:s}", "Type", status >= 500 ? "Service" : "User", "message",
	                        message);
	char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	if (!body)
		die("out of memory");
	snprintf(hdr, sizeof hdr, "x-amzn-ErrorType: %s\r\n", code);
	respond(c, status, hdr, body);
	free(body);
	json_decref(doc);
}

/* ---- requests -------------------------------------------------------------------------------- */

typedef struct request {
	const char *method, *target;
	size_t method_len, target_len;
	const char *auth, *date, *itype;
	size_t auth_len, date_len, itype_len;
	const char *body;
	size_t body_len;
} request;

static int is_hex64(const char *s, size_t n)
{
	size_t i;
	if (n != 64)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* NULL when the Authorization header has the shape of a Lambda SigV4 one, else why not. */
static const char *auth_problem(const request *r)
{
	static const char prefix[] = "AWS4-HMAC-SHA256 Credential=";
	static const char scope[] = "/lambda/aws4_request";
	const char *a = r->auth, *end = r->auth + r->auth_len, *p, *cred_end;
	int slashes = 0;
	if (!r->date || r->date_len != 16 || r->date[8] != 'T' || r->date[15] != 'Z')
		return "X-Amz-Date is missing or not YYYYMMDDTHHMMSSZ";
	if (r->auth_len < sizeof prefix - 1 || memcmp(a, prefix, sizeof prefix - 1) != 0)
		return "Authorization header requires 'AWS4-HMAC-SHA256 Credential='";
	p = a + sizeof prefix - 1;
	cred_end = memchr(p, ',', (size_t)(end - p));
	if (!cred_end)
		return "Authorization header requires 'SignedHeaders' and 'Signature'";
	for (const char *q = p; q < cred_end; q++)
		slashes += *q == '/';
	if (slashes != 4 || (size_t)(cred_end - p) < sizeof scope ||
	    memcmp(cred_end - (sizeof scope - 1), scope, sizeof scope - 1) != 0)
		return "Credential must be <key>/<date>/<region>/lambda/aws4_request";
	p = cred_end + 1;
	while (p < end && *p == ' ')
		p++;
	if ((size_t)(end - p) < 15 || memcmp(p, "SignedHeaders=", 14) != 0 || p[14] == ',')
		return "Authorization header requires a non-empty 'SignedHeaders'";
	p = memchr(p, ',', (size_t)(end - p));
	if (!p)
		return "Authorization header requires 'Signature'";
	p++;
	while (p < end && *p == ' ')
		p++;
	if ((size_t)(end - p) < 10 || memcmp(p, "Signature=", 10) != 0 || !is_hex64(p + 10, (size_t)(end - p - 10)))
		return "Signature must be 64 lowercase hex digits";
	return NULL;
}

/* The function response for one payload: 0 and *body, or -1 (not a JSON object). */
static int function_response(const request *r, char **body, int *ferror)
{
	json_t *doc = json_loadb(r->body, r->body_len, 0, NULL), *ctx, *out;
	const char *name = NULL, *tid;
	static const char *keys[] = {"name", "id", "grep"};
	if (!json_is_object(doc)) {
		json_decref(doc);
		return -1;
	}
	tid = json_string_value(json_object_get(doc, "testId"));
	ctx = json_object_get(doc, "context");
	for (size_t i = 0; i < 3 && !name; i++)
		name = json_string_value(json_object_get(ctx, keys[i]));
	if (!tid) {
		out = json_pack("{s:s,s:s}", "errorMessage", "the payload has no testId", "errorType",
		                "Error");
		*ferror = 1;
	} else {
		out = json_pack("{s:b,s:s,s:s,s:I}", "success", 1, "name", name ? name : tid,
		                "filePath", "unknown", "duration", (json_int_t)delay_ms);
		*ferror = 0;
	}
	*body = out ? json_dumps(out, JSON_COMPACT) : NULL;
	json_decref(out);
	json_decref(doc);
	if (!*body)
		die("out of memory");
	return 0;
}

static int path_is_invoke(const char *t, size_t n)
{
	static const char pre[] = "/2015-03-31/functions/", suf[] = "/invocations";
	const char *q = memchr(t, '?', n), *name;
	size_t plen = q ? (size_t)(q - t) : n;
	if (plen <= sizeof pre - 1 + sizeof suf - 1 || memcmp(t, pre, sizeof pre - 1) != 0 ||
	    memcmp(t + plen - (sizeof suf - 1), suf, sizeof suf - 1) != 0)
		return 0;
	name = t + sizeof pre - 1;
	return memchr(name, '/', plen - (sizeof pre - 1) - (sizeof suf - 1)) == NULL;
}

static int is(const request *r, const char *method, const char *target)
{
	return r->method_len == strlen(method) && memcmp(r->method, method, r->method_len) == 0 &&
	       r->target_len == strlen(target) && memcmp(r->target, target, r->target_len) == 0;
}

static void finish_invoke(conn *c);
static ssize_t conn_write(conn *c, const void *buf, size_t n);
static void conn_close(conn *c);

/* ---- injected faults --------------------------------------------------------------------------- */

enum { F_NONE, F_THROTTLE, F_500, F_503, F_RESET, F_TRUNCATED, F_GARBAGE, F_SLOW, F_FERROR,
       F_KINDS };
static const char *const fault_names[F_KINDS] = {"ok", "throttle", "server500", "server503",
                                                 "reset", "truncated", "garbage", "slow",
                                                 "functionError"};
static double fault_rate;
static long long fault_seed, fault_slow_ms = 200;
static unsigned long long fault_seq;
static long long fault_count[F_KINDS];
static json_t *fault_outcomes; /* testId -> [kind or "ok", ...] */

static unsigned long long splitmix64(unsigned long long *x)
{
	unsigned long long z = (*x += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* The fault of the next Invoke (F_NONE when faults are off), counted and
 * listed under the payload's testId. */
static int pick_fault(const request *r)
{
	unsigned long long x;
	int kind = F_NONE;
	json_t *doc, *list;
	const char *tid;
	if (fault_rate <= 0)
		return F_NONE;
	x = (unsigned long long)fault_seed * 1000003ULL + fault_seq++;
	if ((double)(splitmix64(&x) >> 11) / 9007199254740992.0 < fault_rate) {
		kind = 1 + (int)(splitmix64(&x) % (F_KINDS - 1));
		fault_count[kind]++;
	}
	doc = json_loadb(r->body, r->body_len, 0, NULL);
	tid = json_string_value(json_object_get(doc, "testId"));
	if (tid) {
		if (!fault_outcomes)
			fault_outcomes = json_object();
		if (!(list = json_object_get(fault_outcomes, tid)))
			json_object_set_new(fault_outcomes, tid, list = json_array());
		json_array_append_new(list, json_string(fault_names[kind]));
	}
	json_decref(doc);
	return kind;
}

/* GET and POST /_faults; 1 when r was one of them. */
static int faults_control(conn *c, const request *r)
{
	json_t *doc;
	char *text;
	if (is(r, "POST", "/_faults")) {
		json_t *rate, *seed, *slow;
		doc = json_loadb(r->body, r->body_len, 0, NULL);
		rate = json_object_get(doc, "rate");
		seed = json_object_get(doc, "seed");
		slow = json_object_get(doc, "slowMs");
		if (!json_is_number(rate) || json_number_value(rate) < 0 || json_number_value(rate) > 1 ||
		    (seed && !json_is_integer(seed)) ||
		    (slow && (!json_is_integer(slow) || json_integer_value(slow) < 0))) {
			json_decref(doc);
			respond(c, 400, NULL, "{\"error\": \"body must be {\\\"rate\\\": 0..1, "
			                      "\\\"seed\\\": N, \\\"slowMs\\\": MS}\"}\n");
			return 1;
		}
		fault_rate = json_number_value(rate);
		fault_seed = seed ? (long long)json_integer_value(seed) : 0;
		fault_slow_ms = slow ? (long long)json_integer_value(slow) : 200;
		fault_seq = 0;
		memset(fault_count, 0, sizeof fault_count);
		json_decref(fault_outcomes);
		fault_outcomes = NULL;
		json_decref(doc);
		respond(c, 200, NULL, "{\"ok\": true}\n");
		return 1;
	}
	if (!is(r, "GET", "/_faults"))
		return 0;
	doc = json_pack("{s:f,s:I,s:I,s:{},s:o}", "rate", fault_rate, "seed", (json_int_t)fault_seed,
	                "invocations", (json_int_t)fault_seq, "faults", "outcomes",
	                fault_outcomes ? json_incref(fault_outcomes) : json_object());
	for (int k = 1; doc && k < F_KINDS; k++)
		json_object_set_new(json_object_get(doc, "faults"), fault_names[k],
		                    json_integer(fault_count[k]));
	if (!doc || !(text = json_dumps(doc, JSON_COMPACT)))
		die("out of memory");
	respond(c, 200, NULL, text);
	free(text);
	json_decref(doc);
	return 1;
}

/* An injected fault that ends the Invoke before the function runs: answered,
 * 1; else 0, the fault kept for finish_invoke (c->fault). */
static int fault_before(conn *c, int kind)
{
	char msg[128];
	c->fault = F_NONE;
	if (kind == F_THROTTLE) {
		respond_error(c, 429, "TooManyRequestsException", "Rate Exceeded.");
		return 1;
	}
	if (kind == F_500 || kind == F_503) {
		snprintf(msg, sizeof msg, "Service error (injected fault, invocation %llu).", fault_seq - 1);
		respond_error(c, kind == F_500 ? 500 : 503, "ServiceException", msg);
		return 1;
	}
	c->fault = kind;
	return 0;
}

/* finish_invoke's part for a fault after the function ran: 1 when it
 * answered (or reset) itself. */
static int fault_after(conn *c)
{
	int kind = c->fault;
	c->fault = F_NONE;
	if (kind == F_GARBAGE) {
		free(c->answer);
		c->answer = strdup("<html>\x01 garbage, not JSON \x7f</html>");
		c->answer_ferror = 0;
	} else if (kind == F_FERROR) {
		free(c->answer);
		c->answer = strdup("{\"errorMessage\":\"injected function error\","
		                   "\"errorType\":\"InjectedFault\"}");
		c->answer_ferror = 1;
	} else if (kind == F_RESET) {
		struct linger lg = {1, 0};
		free(c->answer);
		c->answer = NULL;
		c->state = C_READ; /* in_flight was counted down by the caller */
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		conn_close(c);
		return 1;
	}
	if (!c->answer)
		die("out of memory");
	if (kind == F_TRUNCATED || kind == F_SLOW) {
		size_t body = strlen(c->answer), head;
		respond(c, 200, "X-Amz-Executed-Version: $LATEST\r\n", c->answer);
		free(c->answer);
		c->answer = NULL;
		head = c->out_len - body;
		if (kind == F_TRUNCATED) {
			c->out_len = head + body / 2;
			c->close_after = 1;
			return 1;
		}
		/* slow: the head now, the body in 8 pieces, one every slowMs / 8 */
		c->slow_step = (body + 7) / 8;
		c->slow_len = c->out_len - head;
		c->slow = xrealloc(NULL, c->slow_len);
		memcpy(c->slow, c->out + head, c->slow_len);
		c->slow_off = 0;
		c->out_len = head;
		c->slow_close = c->close_after;
		c->close_after = 0;
		heap_push((timer){now_us() + fault_slow_ms * 1000 / 8, c->fd, c->gen, 1});
		return 1;
	}
	return 0;
}

/* The next piece of a slow body (a timer of fault_after's). */
static void slow_piece(conn *c)
{
	size_t n = c->slow_len - c->slow_off < c->slow_step ? c->slow_len - c->slow_off : c->slow_step;
	out_add(c, c->slow + c->slow_off, n);
	c->slow_off += n;
	if (c->slow_off < c->slow_len) {
		heap_push((timer){now_us() + fault_slow_ms * 1000 / 8, c->fd, c->gen, 1});
	} else {
		free(c->slow);
		c->slow = NULL;
		c->close_after = c->slow_close;
	}
	c->state = C_WRITE;
}

static void handle(conn *c, const request *r)
{
	const char *why;
	int fault;
	if (faults_control(c, r))
		return;
	if (is(r, "GET", "/_stats")) {
		char body[768];
		snprintf(body, sizeof body,
		         "{\"invocations\": %lld, \"maxInFlight\": %ld, \"inFlight\": %ld, "
		         "\"rejected\": %lld, \"firstArrival\": %.1f, \"arrivalSpanMs\": %.1f, "
		         "\"tls\": %s, \"connections\": %lld, \"fullHandshakes\": %lld, "
		         "\"resumedHandshakes\": %lld, \"wave\": %lld, \"afterWave\": {\"connections\": "
		         "%lld, \"fullHandshakes\": %lld, \"resumedHandshakes\": %lld, "
		         "\"newConnections\": %lld}}\n",
		         invocations, max_in_flight, in_flight, rejected, first_arrival_epoch_ms,
		         (double)(last_arrival_us - first_arrival_us) / 1000, tls_ctx ? "true" : "false",
		         since_reset.connections, since_reset.full, since_reset.resumed, wave,
		         after_wave.connections, after_wave.full, after_wave.resumed,
		         after_wave.new_conn_invocations);
		respond(c, 200, NULL, body);
		return;
	}
	if (is(r, "POST", "/_reset")) {
		if (r->body_len) {
			json_t *doc = json_loadb(r->body, r->body_len, 0, NULL);
			json_t *d = json_object_get(doc, "delayMs"), *w = json_object_get(doc, "wave");
			if (!json_is_object(doc) || (d && (!json_is_integer(d) || json_integer_value(d) < 0)) ||
			    (w && (!json_is_integer(w) || json_integer_value(w) < 0))) {
				json_decref(doc);
				respond(c, 400, NULL,
				        "{\"error\": \"body must be {\\\"delayMs\\\": N >= 0, \\\"wave\\\": W >= 0}\"}\n");
				return;
			}
			if (d)
				delay_ms = (long)json_integer_value(d);
			wave = w ? (long long)json_integer_value(w) : 0;
			json_decref(doc);
		}
		invocations = rejected = 0;
		memset(&since_reset, 0, sizeof since_reset);
		memset(&after_wave, 0, sizeof after_wave);
		first_arrival_us = last_arrival_us = 0;
		first_arrival_epoch_ms = 0;
		max_in_flight = in_flight;
		respond(c, 200, NULL, "{\"ok\": true}\n");
		return;
	}
	if (!r->auth) {
		rejected++;
		respond_error(c, 403, "MissingAuthenticationTokenException", "Missing Authentication Token");
		return;
	}
	if ((why = auth_problem(r))) {
		rejected++;
		respond_error(c, 403, "IncompleteSignatureException", why);
		return;
	}
	if (!(r->method_len == 4 && memcmp(r->method, "POST", 4) == 0) ||
	    !path_is_invoke(r->target, r->target_len)) {
		char msg[600];
		snprintf(msg, sizeof msg, "Unknown operation %.*s %.*s", (int)r->method_len, r->method,
		         (int)(r->target_len > 500 ? 500 : r->target_len), r->target);
		respond_error(c, 404, "UnknownOperationException", msg);
		return;
	}
	if (r->itype && !(r->itype_len == 15 && memcmp(r->itype, "RequestResponse", 15) == 0)) {
		respond_error(c, 400, "InvalidParameterValueException",
		              "only RequestResponse invocations are supported");
		return;
	}
	fault = pick_fault(r);
	if (fault_before(c, fault))
		return;
	if (function_response(r, &c->answer, &c->answer_ferror) < 0) {
		respond_error(c, 400, "InvalidRequestContentException",
		              "Could not parse request body into json: not a JSON object");
		return;
	}
	last_arrival_us = now_us();
	if (invocations++ == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		first_arrival_us = last_arrival_us;
		first_arrival_epoch_ms = (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
	}
	if (++in_flight > max_in_flight)
		max_in_flight = in_flight;
	if (wave && invocations > wave && c->served == 0)
		after_wave.new_conn_invocations++;
	c->served++;
	c->state = C_PENDING;
	if (delay_ms <= 0 && c->fault == F_NONE) {
		finish_invoke(c);
		return;
	}
	/* a fault is applied from the timer, where the connection may be closed */
	heap_push((timer){now_us() + (delay_ms > 0 ? delay_ms : 0) * 1000LL, c->fd, c->gen, 0});
}

static void finish_invoke(conn *c)
{
	in_flight--;
	if (c->fault != F_NONE && fault_after(c))
		return;
	respond(c, 200,
	        c->answer_ferror ? "X-Amz-Executed-Version: $LATEST\r\nX-Amz-Function-Error: Unhandled\r\n"
	                         : "X-Amz-Executed-Version: $LATEST\r\n",
	        c->answer);
	free(c->answer);
	c->answer = NULL;
}

static const char *find_header(const char *h, const char *end, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	while (h < end) {
		const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
		if (!eol)
			eol = end;
		if ((size_t)(eol - h) > nl && h[nl] == ':' && strncasecmp(h, name, nl) == 0) {
			const char *v = h + nl + 1, *ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*len = (size_t)(ve - v);
			return v;
		}
		h = eol + 2;
	}
	return NULL;
}

/* Parse one request from c->in: 1 handled, 0 incomplete, -1 close the connection. */
static int parse_one(conn *c)
{
	request r;
	const char *hend, *sp1, *sp2, *eol, *v;
	size_t vl, head_len, clen = 0;
	memset(&r, 0, sizeof r);
	hend = c->in_len ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
	if (!hend)
		return c->in_len > MAX_HEAD ? -1 : 0;
	head_len = (size_t)(hend - c->in) + 4;
	eol = memmem(c->in, head_len, "\r\n", 2);
	sp1 = memchr(c->in, ' ', (size_t)(eol - c->in));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp2)
		return -1;
	r.method = c->in;
	r.method_len = (size_t)(sp1 - c->in);
	r.target = sp1 + 1;
	r.target_len = (size_t)(sp2 - sp1 - 1);
	c->keep_alive = (size_t)(eol - sp2 - 1) == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0;
	if ((v = find_header(eol + 2, hend + 2, "Connection", &vl))) {
		if (vl == 5 && strncasecmp(v, "close", 5) == 0)
			c->keep_alive = 0;
		else if (vl == 10 && strncasecmp(v, "keep-alive", 10) == 0)
			c->keep_alive = 1;
	}
	if (find_header(eol + 2, hend + 2, "Transfer-Encoding", &vl)) {
		c->keep_alive = 0;
		respond_error(c, 400, "InvalidRequestContentException", "chunked bodies are not supported");
		c->consumed = c->in_len;
		return 1;
	}
	if ((v = find_header(eol + 2, hend + 2, "Content-Length", &vl))) {
		char *e;
		char num[32];
		if (vl == 0 || vl >= sizeof num)
			return -1;
		memcpy(num, v, vl);
		num[vl] = 0;
		clen = strtoul(num, &e, 10);
		if (*e)
			return -1;
		if (clen > MAX_BODY) {
			c->keep_alive = 0;
			respond_error(c, 413, "RequestTooLargeException", "Request must be smaller than 6291456 bytes");
			c->consumed = c->in_len;
			return 1;
		}
	}
	if (c->in_len < head_len + clen) {
		if ((v = find_header(eol + 2, hend + 2, "Expect", &vl)) && vl == 12 &&
		    strncasecmp(v, "100-continue", 12) == 0 && c->in_len == head_len && !c->out_len) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (conn_write(c, cont, sizeof cont - 1) < 0) { /* tiny: the socket buffer takes it */
			}
		}
		return 0;
	}
	r.auth = find_header(eol + 2, hend + 2, "Authorization", &r.auth_len);
	r.date = find_header(eol + 2, hend + 2, "X-Amz-Date", &r.date_len);
	r.itype = find_header(eol + 2, hend + 2, "X-Amz-Invocation-Type", &r.itype_len);
	r.body = c->in + head_len;
	r.body_len = clen;
	c->consumed = head_len + clen;
	handle(c, &r);
	return 1;
}

/* ---- connections ----------------------------------------------------------------------------- */

/* read(2) and write(2), through TLS in TLS mode: -1 with errno EAGAIN when
 * it would block (TLS asking to write: EPOLLOUT watched). */
static void set_out_watch(conn *c, int on);

static ssize_t tls_result(conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		set_out_watch(c, 1);
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		errno = EPIPE;
		return -1;
	}
}

static ssize_t conn_read(conn *c, void *buf, size_t n)
{
	int r;
	if (!c->ssl)
		return read(c->fd, buf, n);
	r = SSL_read(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
	return r > 0 ? r : tls_result(c, r);
}

static ssize_t conn_write(conn *c, const void *buf, size_t n)
{
	int r;
	if (!c->ssl)
		return write(c->fd, buf, n);
	r = SSL_write(c->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
	return r > 0 ? r : tls_result(c, r);
}

static void conn_close(conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	c->handshaking = 0;
	c->served = 0;
	if (c->state == C_PENDING) {
		in_flight--;
		free(c->answer);
		c->answer = NULL;
	}
	free(c->slow);
	c->slow = NULL;
	c->fault = F_NONE;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->gen++;
	c->fd = -1;
	c->in_len = c->out_len = c->out_off = c->consumed = 0;
	c->state = C_READ;
	c->out_watch = 0;
	c->close_after = 0;
}

static void set_out_watch(conn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.fd = c->fd};
	if (c->out_watch != on) {
		epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->out_watch = on;
	}
}

static void drop_consumed(conn *c)
{
	memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
	c->in_len -= c->consumed;
	c->consumed = 0;
}

static void progress(conn *c);

/* Write what is queued; then go on with the next request. */
static void flush_out(conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_out_watch(c, 1);
				return;
			}
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	set_out_watch(c, 0);
	if (c->close_after) {
		conn_close(c);
		return;
	}
	c->state = C_READ;
	drop_consumed(c);
	progress(c);
}

static void progress(conn *c)
{
	int rc;
	if (c->state != C_READ)
		return;
	rc = parse_one(c);
	if (rc < 0)
		conn_close(c);
	else if (rc > 0 && c->state == C_WRITE)
		flush_out(c);
}

static void on_readable(conn *c)
{
	for (;;) {
		ssize_t n;
		if (c->in_cap - c->in_len < 4096) {
			c->in_cap = c->in_cap ? c->in_cap * 2 : 8192;
			c->in = xrealloc(c->in, c->in_cap);
		}
		n = conn_read(c, c->in + c->in_len, c->in_cap - c->in_len);
		if (n > 0) {
			c->in_len += (size_t)n;
			if (c->in_len > MAX_HEAD + MAX_BODY) {
				conn_close(c);
				return;
			}
			continue;
		}
		if (n == 0) {
			conn_close(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_close(c);
		return;
	}
	progress(c);
}

/* Go on with the TLS handshake; then read what came with it. */
static void handshake(conn *c)
{
	int r = SSL_do_handshake(c->ssl);
	tally *t = wave && invocations >= wave ? &after_wave : NULL;
	if (r == 1) {
		int reused = SSL_session_reused(c->ssl);
		c->handshaking = 0;
		set_out_watch(c, 0);
		if (reused) {
			since_reset.resumed++;
			if (t)
				t->resumed++;
		} else {
			since_reset.full++;
			if (t)
				t->full++;
		}
		on_readable(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		set_out_watch(c, 0);
		return;
	case SSL_ERROR_WANT_WRITE:
		set_out_watch(c, 1);
		return;
	default:
		ERR_clear_error();
		conn_close(c);
	}
}

static conn *conn_for(int fd)
{
	if ((size_t)fd >= nconns) {
		size_t n = nconns ? nconns : 1024;
		while (n <= (size_t)fd)
			n *= 2;
		conns = xrealloc(conns, n * sizeof *conns);
		memset(conns + nconns, 0, (n - nconns) * sizeof *conns);
		nconns = n;
	}
	if (!conns[fd])
		conns[fd] = xrealloc(NULL, sizeof(conn)), memset(conns[fd], 0, sizeof(conn));
	return conns[fd];
}

static void on_accept(int lfd)
{
	for (;;) {
		int one = 1, fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};
		conn *c;
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, "lambda-endpoint: accept: %s\n", strerror(errno));
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = conn_for(fd);
		c->fd = fd;
		c->state = C_READ;
		c->served = 0;
		ev.data.fd = fd;
		since_reset.connections++;
		if (wave && invocations >= wave)
			after_wave.connections++;
		if (tls_ctx) {
			if (!(c->ssl = SSL_new(tls_ctx)) || SSL_set_fd(c->ssl, fd) != 1) {
				SSL_free(c->ssl);
				c->ssl = NULL;
				close(fd);
				c->fd = -1;
				continue;
			}
			SSL_set_accept_state(c->ssl);
			c->handshaking = 1;
		}
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			SSL_free(c->ssl);
			c->ssl = NULL;
			c->handshaking = 0;
			close(fd);
			c->fd = -1;
		}
	}
}

static void run_timers(void)
{
	long long now = now_us();
	while (heap_len && heap[0].due_us <= now) {
		timer t = heap_pop();
		conn *c = (size_t)t.fd < nconns ? conns[t.fd] : NULL;
		if (!c || c->gen != t.gen || c->fd != t.fd || (t.slow ? !c->slow : c->state != C_PENDING))
			continue; /* the connection went away meanwhile */
		if (t.slow)
			slow_piece(c);
		else
			finish_invoke(c);
		if (c->fd == t.fd) /* not reset by a fault */
			flush_out(c);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	int port = 0, lfd, one = 1;
	long watch_pid = 0;
	struct sockaddr_in sa;
	socklen_t slen = sizeof sa;
	struct epoll_event evs[512], ev = {.events = EPOLLIN};
	struct rlimit rl;
	long long next_watch = 0;
	const char *cert = NULL, *key = NULL;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--port") == 0)
			port = atoi(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--delay-ms") == 0)
			delay_ms = atol(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--watch-pid") == 0)
			watch_pid = atol(argv[++i]);
		else if (i + 1 < argc && strcmp(argv[i], "--tls-cert") == 0)
			cert = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--tls-key") == 0)
			key = argv[++i];
		else
			die("usage: lambda-endpoint [--port N] [--delay-ms MS] [--watch-pid PID] "
			    "[--tls-cert PEM --tls-key PEM]");
	}
	if (!cert != !key)
		die("--tls-cert and --tls-key go together");
	if (cert) {
		tls_ctx = SSL_CTX_new(TLS_server_method());
		if (!tls_ctx || SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(tls_ctx) != 1) {
			char e[256];
			ERR_error_string_n(ERR_get_error(), e, sizeof e);
			die("TLS certificate %s, key %s: %s", cert, key, e);
		}
		SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
		SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
		                              SSL_MODE_RELEASE_BUFFERS);
		SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(tls_ctx, 100000);
		SSL_CTX_set_session_id_context(tls_ctx, (const unsigned char *)"lambda-endpoint", 15);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short)port);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, LISTEN_BACKLOG) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0)
		die("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll: %s", strerror(errno));
	printf("PORT %d\n", ntohs(sa.sin_port));
	fflush(stdout);

	while (!stopping) {
		int timeout = 500, n;
		if (heap_len) {
			long long wait = heap[0].due_us - now_us();
			wait = wait <= 0 ? 0 : (wait + 999) / 1000;
			if (wait < timeout)
				timeout = (int)wait;
		}
		n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			conn *c;
			if (fd == lfd) {
				on_accept(lfd);
				continue;
			}
			c = (size_t)fd < nconns ? conns[fd] : NULL;
			if (!c || c->fd != fd)
				continue;
			if (c->handshaking) {
				handshake(c);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				flush_out(c);
			if (c->fd == fd && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				on_readable(c);
		}
		run_timers();
		if (watch_pid && now_us() >= next_watch) {
			next_watch = now_us() + 500000;
			if (kill((pid_t)watch_pid, 0) < 0 && errno == ESRCH)
				break;
		}
	}
	return 0;
}
