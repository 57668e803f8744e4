/*
 * check_registry.c - tests of the registry client (registry.c) and of
 * images pulled from and pushed to registries (image.c), against Debian's
 * docker-registry started here on 127.0.0.1: one without authentication,
 * one with htpasswd (Basic) and relative Location headers.  Requests go
 * through tests/services/registry/proxy.py, which logs each one before answering (so
 * that they can be counted) and, in front of a third address, plays a
 * Bearer token service.
 *
 * Without /usr/bin/docker-registry or python3 the program exits 77 (skip).
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <check.h>
#include <jansson.h>

#include <hypertest/hypertest.h>

#include "image.h"
#include "layer.h"
#include "oci_layout.h"
#include "open-count.h"
#include "registry.h"
#include "test-pki.h"

#ifndef HT_TESTS_SRCDIR
#define HT_TESTS_SRCDIR "tests"
#endif

#define REGISTRY_BIN "/usr/bin/docker-registry"
/* the system's python3 first: a version manager's shim may cost seconds */
static const char *python = "/usr/bin/python3";
#define USER "tester"
#define PASSWORD "s3cret-pw"

/* ---- processes ---------------------------------------------------------------------- */

static char suite_dir[2048]; /* registries' storage, configs, logs */

/* Start argv with stdout and stderr into log; killed with us (Linux). */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	execvp(argv[0], argv);
	_exit(127);
}

static void stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &len) != 0) {
		perror("free port");
		abort();
	}
	close(s);
	return ntohs(a.sin_port);
}

static int port_open(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)port);
	int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
	close(s);
	return ok;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

struct registry {
	pid_t pid;
	int port;
};

static void write_text(const char *path, const char *text)
{
	ht_err err = {0};
	if (ht_write_file_atomic(path, text, strlen(text), &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		abort();
	}
}

static void start_registry(struct registry *r, const char *name, int basic_auth)
{
	char cfg[16384], path[4200], log[4200], auth[8192] = "";
	r->port = free_port();
	if (basic_auth) {
		/* bcrypt ("$2b$") from libcrypt, as docker-registry's htpasswd wants */
		char salt[64], out[CRYPT_OUTPUT_SIZE + 64];
		struct crypt_data cd;
		memset(&cd, 0, sizeof cd);
		if (!crypt_gensalt_rn("$2b$", 5, NULL, 0, salt, sizeof salt) ||
		    !crypt_r(PASSWORD, salt, &cd)) {
			perror("bcrypt");
			abort();
		}
		snprintf(out, sizeof out, "%s:%s\n", USER, cd.output);
		snprintf(path, sizeof path, "%s/%s.htpasswd", suite_dir, name);
		write_text(path, out);
		snprintf(auth, sizeof auth,
		         "auth:\n  htpasswd:\n    realm: test\n    path: %s\n", path);
	}
	snprintf(cfg, sizeof cfg,
	         "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
	         "    rootdirectory: %s/%s-data\n  delete:\n    enabled: true\n"
	         "http:\n  addr: 127.0.0.1:%d\n  relativeurls: %s\n%s",
	         suite_dir, name, r->port, basic_auth ? "true" : "false", auth);
	snprintf(path, sizeof path, "%s/%s.yml", suite_dir, name);
	write_text(path, cfg);
	snprintf(log, sizeof log, "%s/%s.log", suite_dir, name);
	char *argv[] = {REGISTRY_BIN, "serve", path, NULL};
	r->pid = spawn(argv, log);
	for (int i = 0; i < 200 && !port_open(r->port); i++)
		sleep_ms(50);
	if (!port_open(r->port)) {
		fprintf(stderr, "docker-registry did not start; see %s\n", log);
		abort();
	}
}

struct proxy {
	pid_t pid;
	int port;
	char log[4200];
	char addr[64]; /* "127.0.0.1:port" */
};

/* --patch-gate for the next proxy started (NULL: none) */
static const char *proxy_gate;

/* tls: NULL, or {certificate, key}: HTTPS, a connection closed after a GET
 * or HEAD */
static void start_proxy_tls(struct proxy *p, const char *name, int upstream, const char *auth,
                            const char *expires, int corrupt, const char *const *tls)
{
	const char *src = getenv("HT_TESTS_SRCDIR");
	char script[4200], port_file[4200], up[64];
	snprintf(script, sizeof script, "%s/services/registry/proxy.py", src && *src ? src : HT_TESTS_SRCDIR);
	snprintf(port_file, sizeof port_file, "%s/%s.port", suite_dir, name);
	snprintf(p->log, sizeof p->log, "%s/%s.requests", suite_dir, name);
	snprintf(up, sizeof up, "127.0.0.1:%d", upstream);
	char *argv[20] = {(char *)python, script, "--upstream", up, "--port-file", port_file, "--log",
	                  p->log, "--auth", (char *)auth, "--expires-in", (char *)expires};
	int n = 12;
	if (corrupt)
		argv[n++] = "--corrupt-blobs";
	if (tls) {
		argv[n++] = "--tls-cert";
		argv[n++] = (char *)tls[0];
		argv[n++] = "--tls-key";
		argv[n++] = (char *)tls[1];
		argv[n++] = "--close";
	}
	if (proxy_gate) {
		argv[n++] = "--patch-gate";
		argv[n++] = (char *)proxy_gate;
	}
	argv[n] = NULL;
	char out[4200];
	snprintf(out, sizeof out, "%s/%s.out", suite_dir, name);
	p->pid = spawn(argv, out);
	char *text = NULL;
	size_t len;
	for (int i = 0; i < 200; i++) {
		if (ht_read_file(port_file, &text, &len, NULL) == 0)
			break;
		sleep_ms(50);
	}
	if (!text) {
		fprintf(stderr, "proxy did not start; see %s\n", out);
		abort();
	}
	p->port = atoi(text);
	free(text);
	snprintf(p->addr, sizeof p->addr, "127.0.0.1:%d", p->port);
}

static void start_proxy(struct proxy *p, const char *name, int upstream, const char *auth,
                        const char *expires, int corrupt)
{
	start_proxy_tls(p, name, upstream, auth, expires, corrupt, NULL);
}

static struct registry plain_reg, basic_reg;
static struct proxy plain_px, bearer_px, short_px, corrupt_px, basic_px, gate_px;

static void suite_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(suite_dir, sizeof suite_dir, "%s/check_registry.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(suite_dir)) {
		perror("mkdtemp");
		abort();
	}
	start_registry(&plain_reg, "plain", 0);
	start_registry(&basic_reg, "basic", 1);
	start_proxy(&plain_px, "plain-proxy", plain_reg.port, "none", "300", 0);
	start_proxy(&bearer_px, "bearer-proxy", plain_reg.port, "bearer", "300", 0);
	start_proxy(&short_px, "short-proxy", plain_reg.port, "bearer", "11", 0);
	start_proxy(&corrupt_px, "corrupt-proxy", plain_reg.port, "none", "300", 1);
	start_proxy(&basic_px, "basic-proxy", basic_reg.port, "none", "300", 0);
	proxy_gate = "4"; /* HT_IMAGE_PUSH_THREADS */
	start_proxy(&gate_px, "gate-proxy", plain_reg.port, "none", "300", 0);
	proxy_gate = NULL;
}

static void suite_teardown(void)
{
	stop(plain_px.pid);
	stop(bearer_px.pid);
	stop(short_px.pid);
	stop(corrupt_px.pid);
	stop(basic_px.pid);
	stop(gate_px.pid);
	stop(plain_reg.pid);
	stop(basic_reg.pid);
	if (getenv("CHECK_REGISTRY_KEEP"))
		fprintf(stderr, "kept %s\n", suite_dir);
	else
		ht_rm_rf(suite_dir, NULL);
}

/* ---- the request log ------------------------------------------------------------------- */

static long log_size(const struct proxy *p)
{
	struct stat st;
	return stat(p->log, &st) == 0 ? (long)st.st_size : 0;
}

/* Lines logged since offset that start with prefix and contain needle. */
static int count_since(const struct proxy *p, long since, const char *prefix, const char *needle)
{
	char *text = NULL;
	size_t len = 0;
	if (ht_read_file(p->log, &text, &len, NULL) != 0)
		return -1;
	int n = 0;
	for (char *save = NULL, *l = strtok_r(text + since, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save))
		if (!strncmp(l, prefix, strlen(prefix)) && (!needle || strstr(l, needle)))
			n++;
	free(text);
	return n;
}

/* ---- scratch and images ------------------------------------------------------------------ */

static char tmp_root[4096];
static char **tp_list;
static size_t tp_n;

static void tmp_setup(void)
{
	snprintf(tmp_root, sizeof tmp_root, "%s/t.XXXXXX", suite_dir);
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		abort();
	}
}

static void tmp_teardown(void)
{
	ht_rm_rf(tmp_root, NULL);
	for (size_t i = 0; i < tp_n; i++)
		free(tp_list[i]);
	free(tp_list);
	tp_list = NULL;
	tp_n = 0;
}

static char *tp(const char *fmt, ...) HT_PRINTF(1, 2);
static char *tp(const char *fmt, ...)
{
	char rel[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof rel, fmt, ap);
	va_end(ap);
	char *b = ht_asprintf("%s/%s", tmp_root, rel);
	char **n = realloc(tp_list, (tp_n + 1) * sizeof *n);
	ck_assert(b && n);
	tp_list = n;
	tp_list[tp_n++] = b;
	return b;
}

/* An image of one or two layers with the given file content. */
static ht_image *make_image(const char *platform, const char *content, int two_layers)
{
	ht_err err = {0};
	ht_image *img = ht_image_new(platform, &err);
	ck_assert_msg(img != NULL, "%s", err.msg);
	ht_layer *lb = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(lb, "/data/file.txt", content, strlen(content), 0644, &err),
	                 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "STAGE=one", &err), 0);
	ck_assert_msg(ht_image_append_layer(img, lb, tp("work"), &err) == 0, "%s", err.msg);
	ht_layer_free(lb);
	if (two_layers) {
		lb = ht_layer_new();
		ck_assert_int_eq(ht_layer_add_data(lb, "/bin/tool", "#!/bin/sh\n", 10, 0755, &err), 0);
		ck_assert_msg(ht_image_append_layer(img, lb, tp("work"), &err) == 0, "%s", err.msg);
		ht_layer_free(lb);
	}
	return img;
}

static ht_registry *client(void)
{
	ht_err err = {0};
	ht_registry *reg = ht_registry_new(&err);
	ck_assert_msg(reg != NULL, "%s", err.msg);
	return reg;
}

static char *ref_at(const struct proxy *p, const char *name)
{
	return ht_asprintf("%s/%s", p->addr, name);
}

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;
	return ht_read_file(path, &data, &len, NULL) == 0 ? data : NULL;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void assert_ref(const char *text, const char *registry, const char *repo, const char *tag,
                       const char *digest)
{
	ht_image_ref r;
	ht_err err = {0};
	ck_assert_msg(ht_image_ref_parse(text, &r, &err) == 0, "%s: %s", text, err.msg);
	ck_assert_str_eq(r.registry, registry);
	ck_assert_str_eq(r.repository, repo);
	if (tag)
		ck_assert_str_eq(r.tag, tag);
	else
		ck_assert_ptr_null(r.tag);
	if (digest)
		ck_assert_str_eq(r.digest, digest);
	else
		ck_assert_ptr_null(r.digest);
	ht_image_ref_free(&r);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

START_TEST(test_references)
{
	assert_ref("alpine", "registry-1.docker.io", "library/alpine", "latest", NULL);
	assert_ref("alpine:3.19", "registry-1.docker.io", "library/alpine", "3.19", NULL);
	assert_ref("docker.io/user/app", "registry-1.docker.io", "user/app", "latest", NULL);
	assert_ref("index.docker.io/library/x:1", "registry-1.docker.io", "library/x", "1", NULL);
	assert_ref("user/app@sha256:" D64, "registry-1.docker.io", "user/app", NULL, "sha256:" D64);
	assert_ref("localhost:5000/a/b/c:t-1", "localhost:5000", "a/b/c", "t-1", NULL);
	assert_ref("localhost/a", "localhost", "a", "latest", NULL);
	assert_ref("127.0.0.1:5000/x:y@sha256:" D64, "127.0.0.1:5000", "x", "y", "sha256:" D64);
	assert_ref("123456789012.dkr.ecr.eu-central-1.amazonaws.com/hypertest/base-playwright:latest",
	           "123456789012.dkr.ecr.eu-central-1.amazonaws.com", "hypertest/base-playwright",
	           "latest", NULL);
	const char *bad[] = {"", "Upper/x", "x:bad tag", "x@sha256:abc", "a//b", "x:", "x/", "-x",
	                     "reg.io/a/b:t:u", NULL};
	for (int i = 0; bad[i]; i++) {
		ht_image_ref r;
		ht_err err = {0};
		ck_assert_msg(ht_image_ref_parse(bad[i], &r, &err) == HYPERTEST_ERR_INVALID,
		              "'%s' accepted", bad[i]);
	}
}
END_TEST

START_TEST(test_push_pull)
{
	ht_registry *reg = client();
	ht_image *img = make_image(NULL, "hello registry\n", 1);
	char *ref = ref_at(&plain_px, "test/app:v1");
	char pushed[80], local[80];
	ht_err err = {0};
	ck_assert_int_eq(ht_image_digest(img, local, &err), 0);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, pushed, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(pushed, local);
	ht_image_free(img);

	ht_image *back = NULL;
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &back, &err) == 0, "%s", err.msg);
	char got[80];
	ck_assert_int_eq(ht_image_digest(back, got, &err), 0);
	ck_assert_str_eq(got, pushed);
	/* layers stay in the registry until a layout wants them */
	ck_assert_int_eq(ht_image_unpack(back, tp("early"), &err), HYPERTEST_ERR_UNSUPPORTED);
	char wdigest[80];
	ck_assert_msg(ht_image_write_layout(back, tp("layout"), "pulled", wdigest, &err) == 0, "%s",
	              err.msg);
	ck_assert_str_eq(wdigest, pushed);
	ck_assert_msg(ht_image_unpack_layout(tp("layout"), "pulled", tp("dest"), &err) == 0, "%s",
	              err.msg);
	char *content = slurp(tp("dest/data/file.txt"));
	ck_assert_str_eq(content, "hello registry\n");
	free(content);
	ht_image_free(back);
	/* by digest as well */
	char *by_digest = ht_asprintf("%s/test/app@%s", plain_px.addr, pushed);
	ck_assert_msg(ht_image_from_registry(reg, by_digest, NULL, &back, &err) == 0, "%s", err.msg);
	ht_image_free(back);
	free(by_digest);
	/* what is not there */
	char *missing = ht_asprintf("%s/test/app:nope", plain_px.addr);
	ck_assert_int_eq(ht_image_from_registry(reg, missing, NULL, &back, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_msg(strstr(err.msg, "404") && strstr(err.msg, "MANIFEST_UNKNOWN"), "%s", err.msg);
	free(missing);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_second_push_uploads_nothing)
{
	ht_registry *reg = client();
	ht_image *img = make_image(NULL, "twice\n", 1);
	char *ref = ref_at(&plain_px, "test/twice:1");
	char d1[80], d2[80];
	ht_err err = {0};
	long mark = log_size(&plain_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d1, &err) == 0, "%s", err.msg);
	/* two layers and a config: upload sessions, bytes and ends */
	ck_assert_int_eq(count_since(&plain_px, mark, "POST ", "/v2/test/twice/blobs/uploads/"), 3);
	ck_assert_int_eq(count_since(&plain_px, mark, "PATCH ", NULL), 3);
	ck_assert_int_eq(count_since(&plain_px, mark, "PUT ", "digest=sha256"), 3);
	ck_assert_int_eq(count_since(&plain_px, mark, "PUT ", "/manifests/1 201"), 1);
	mark = log_size(&plain_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d2, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(d1, d2);
	ck_assert_int_eq(count_since(&plain_px, mark, "POST ", NULL), 0);
	ck_assert_int_eq(count_since(&plain_px, mark, "PATCH ", NULL), 0);
	ck_assert_int_eq(count_since(&plain_px, mark, "HEAD ", " 200"), 3);
	ck_assert_int_eq(count_since(&plain_px, mark, "PUT ", NULL), 1); /* the manifest */
	ck_assert_int_eq(count_since(&plain_px, mark, "", NULL), 4);
	ht_image_free(img);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

/* Six new layers: the smallest first, alone, then the others
 * HT_IMAGE_PUSH_THREADS at a time: the proxy lets no PATCH but the first
 * through before four more have arrived, which a push of one layer after
 * the other never reaches (each would wait out the gate's 10 s). */
START_TEST(test_parallel_uploads)
{
	ck_assert_int_eq(HT_IMAGE_PUSH_THREADS, 4);
	ht_registry *reg = client();
	ht_err err = {0};
	ht_image *img = ht_image_new(NULL, &err);
	ck_assert_msg(img != NULL, "%s", err.msg);
	for (int i = 0; i < 6; i++) {
		char path[32], content[32];
		snprintf(path, sizeof path, "/data/%d", i);
		snprintf(content, sizeof content, "layer %d\n", i);
		ht_layer *lb = ht_layer_new();
		ck_assert_int_eq(ht_layer_add_data(lb, path, content, strlen(content), 0644, &err), 0);
		ck_assert_msg(ht_image_append_layer(img, lb, tp("work"), &err) == 0, "%s", err.msg);
		ht_layer_free(lb);
	}
	char *ref = ref_at(&gate_px, "parallel/app:1");
	char d[80];
	long mark = log_size(&gate_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_image_layers_uploaded(img), 6);
	ck_assert_int_eq(count_since(&gate_px, mark, "PATCH ", NULL), 7); /* and the config */
	ck_assert_int_eq(count_since(&gate_px, mark, "GATE timeout", NULL), 0);
	ck_assert_int_eq(count_since(&gate_px, mark, "GATE open", NULL), 6);
	/* all there: the image reads back whole */
	ht_image *back = NULL;
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &back, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_image_layer_count(back), 6);
	ck_assert_int_eq(ht_image_write_layout(back, tp("layout"), "p", d, &err), 0);
	ht_image_free(back);
	/* again: nothing sent */
	mark = log_size(&gate_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_image_layers_uploaded(img), 0);
	ck_assert_int_eq(count_since(&gate_px, mark, "PATCH ", NULL), 0);
	ht_image_free(img);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_mount_from_base)
{
	ht_registry *reg = client();
	ht_err err = {0};
	ht_image *base = make_image(NULL, "base content\n", 0);
	char *base_ref = ref_at(&plain_px, "mount/base:1");
	char d[80];
	ck_assert_msg(ht_image_push_registry(base, reg, base_ref, d, &err) == 0, "%s", err.msg);
	ht_image_free(base);

	ht_image *img = NULL;
	ck_assert_msg(ht_image_from_registry(reg, base_ref, "linux/amd64", &img, &err) == 0, "%s",
	              err.msg);
	ht_layer *lb = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(lb, "/app/x", "x", 1, 0644, &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "STAGE=two", &err), 0);
	ck_assert_int_eq(ht_image_append_layer(img, lb, tp("work"), &err), 0);
	ht_layer_free(lb);
	char *app_ref = ref_at(&plain_px, "mount/app:1");
	long mark = log_size(&plain_px);
	ck_assert_msg(ht_image_push_registry(img, reg, app_ref, d, &err) == 0, "%s", err.msg);
	/* the base layer was mounted, not sent; the new layer and config were */
	ck_assert_int_eq(count_since(&plain_px, mark, "POST ", "mount=sha256%3A"), 1);
	ck_assert_int_eq(count_since(&plain_px, mark, "POST ", "from=mount/base 201"), 1);
	ck_assert_int_eq(count_since(&plain_px, mark, "PATCH ", NULL), 2);
	ht_image_free(img);

	/* the pushed image has the base's env and the new one, both layers */
	ht_image *back = NULL;
	ck_assert_msg(ht_image_from_registry(reg, app_ref, NULL, &back, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_image_write_layout(back, tp("layout"), "app", d, &err), 0);
	ck_assert_msg(ht_image_unpack_layout(tp("layout"), "app", tp("dest"), &err) == 0, "%s",
	              err.msg);
	char *base_file = slurp(tp("dest/data/file.txt")), *x = slurp(tp("dest/app/x"));
	ck_assert_str_eq(base_file, "base content\n");
	ck_assert_str_eq(x, "x");
	free(base_file);
	free(x);
	ht_image_free(back);
	free(base_ref);
	free(app_ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_bearer_tokens)
{
	ht_registry *reg = client();
	ht_err err = {0};
	ht_image *img = make_image(NULL, "bearer\n", 1);
	char *ref = ref_at(&bearer_px, "bearer/app:1");
	char d[80];
	long mark = log_size(&bearer_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	/* one challenge, one token for the push scope, used by every request */
	ck_assert_int_eq(count_since(&bearer_px, mark, "TOKEN", NULL), 1);
	ck_assert_int_eq(count_since(&bearer_px, mark, "TOKEN repository:bearer/app:pull,push", NULL),
	                 1);
	ck_assert_int_eq(count_since(&bearer_px, mark, "", " 401"), 1);
	mark = log_size(&bearer_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(count_since(&bearer_px, mark, "TOKEN", NULL), 0);
	ck_assert_int_eq(count_since(&bearer_px, mark, "", " 401"), 0);
	/* pulling needs another scope: one more token, then none */
	mark = log_size(&bearer_px);
	ht_image *back = NULL;
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &back, &err) == 0, "%s", err.msg);
	ht_image_free(back);
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &back, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_image_write_layout(back, tp("layout"), "b", d, &err), 0);
	ht_image_free(back);
	ck_assert_int_eq(count_since(&bearer_px, mark, "TOKEN", NULL), 1);
	ck_assert_int_eq(count_since(&bearer_px, mark, "TOKEN repository:bearer/app:pull", NULL), 1);
	ck_assert_int_eq(count_since(&bearer_px, mark, "", " 401"), 0);
	/* another client starts over */
	ht_registry *other = client();
	mark = log_size(&bearer_px);
	ck_assert_msg(ht_image_from_registry(other, ref, NULL, &back, &err) == 0, "%s", err.msg);
	ht_image_free(back);
	ck_assert_int_eq(count_since(&bearer_px, mark, "TOKEN", NULL), 1);
	ht_registry_unref(other);
	ht_image_free(img);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_bearer_expiry)
{
	/* tokens of 11 s are kept 1 s (10 s margin) */
	ht_registry *reg = client();
	ht_err err = {0};
	ht_image *img = make_image(NULL, "short\n", 0);
	char *ref = ref_at(&short_px, "short/app:1");
	char d[80];
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	sleep_ms(1500);
	long mark = log_size(&short_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(count_since(&short_px, mark, "TOKEN", NULL), 1);
	ck_assert_int_eq(count_since(&short_px, mark, "", " 401"), 0); /* fetched up front */
	ht_image_free(img);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_basic_auth)
{
	ht_err err = {0};
	ht_image *img = make_image(NULL, "basic\n", 1);
	char *ref = ref_at(&basic_px, "basic/app:1");
	char d[80];
	ht_registry *anon = client();
	ck_assert_int_eq(ht_image_push_registry(img, anon, ref, d, &err), HYPERTEST_ERR_AUTH);
	ck_assert_msg(strstr(err.msg, "user name and password"), "%s", err.msg);
	ht_registry_unref(anon);

	ht_registry *wrong = client();
	ck_assert_int_eq(ht_registry_set_credentials(wrong, basic_px.addr, USER, "nope", &err), 0);
	ck_assert_int_eq(ht_image_push_registry(img, wrong, ref, d, &err), HYPERTEST_ERR_AUTH);
	ck_assert_msg(strstr(err.msg, "HTTP 401"), "%s", err.msg); /* a HEAD: no error body */
	ht_registry_unref(wrong);

	ht_registry *reg = client();
	ck_assert_int_eq(ht_registry_set_credentials(reg, basic_px.addr, USER, PASSWORD, &err), 0);
	long mark = log_size(&basic_px);
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	/* relative Location headers (relativeurls: true) were followed */
	ck_assert_int_eq(count_since(&basic_px, mark, "PATCH ", "?_state="), 3);
	ck_assert_int_eq(count_since(&basic_px, mark, "PUT ", "&digest=sha256%3A"), 3);
	ck_assert_int_eq(count_since(&basic_px, mark, "", " 401"), 1); /* then Basic up front */
	ht_image *back = NULL;
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &back, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(ht_image_write_layout(back, tp("layout"), "b", d, &err), 0);
	ht_image_free(back);
	ht_image_free(img);

	/* a base in another registry is copied over, not mounted */
	ht_image *base = make_image(NULL, "from elsewhere\n", 0);
	char *base_ref = ref_at(&plain_px, "elsewhere/base:1");
	ck_assert_msg(ht_image_push_registry(base, reg, base_ref, d, &err) == 0, "%s", err.msg);
	ht_image_free(base);
	ck_assert_msg(ht_image_from_registry(reg, base_ref, NULL, &base, &err) == 0, "%s", err.msg);
	char *copy_ref = ref_at(&basic_px, "copied/app:1");
	mark = log_size(&basic_px);
	ck_assert_msg(ht_image_push_registry(base, reg, copy_ref, d, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(count_since(&basic_px, mark, "POST ", "mount="), 0);
	ck_assert_int_eq(count_since(&basic_px, mark, "PATCH ", NULL), 2);
	ht_image_free(base);
	free(base_ref);
	free(copy_ref);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_corrupt_blob)
{
	ht_registry *reg = client();
	ht_err err = {0};
	ht_image *img = make_image(NULL, "corrupt\n", 0);
	char *ref = ref_at(&plain_px, "corrupt/app:1");
	char d[80];
	ck_assert_msg(ht_image_push_registry(img, reg, ref, d, &err) == 0, "%s", err.msg);
	ht_image_free(img);
	/* the same repository through a proxy that alters blobs */
	char *bad = ref_at(&corrupt_px, "corrupt/app:1");
	ck_assert_int_eq(ht_image_from_registry(reg, bad, NULL, &img, &err), HYPERTEST_ERR_DIGEST);
	ck_assert_msg(strstr(err.msg, "expected sha256:") && strstr(err.msg, "actual sha256:"), "%s",
	              err.msg);
	/* layers too, and nothing is left in the layout */
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &img, &err) == 0, "%s", err.msg);
	ht_image_ref r;
	ck_assert_int_eq(ht_image_ref_parse(bad, &r, &err), 0);
	ck_assert_int_eq(ht_oci_layout_init(tp("layout"), &err), 0);
	char *layout = tp("layout");
	char *m = NULL, *mt = NULL;
	size_t len;
	char md[80];
	ck_assert_int_eq(ht_registry_get_manifest(reg, r.registry, r.repository, "1", &m, &len, &mt,
	                                          md, &err),
	                 0);
	ck_assert_str_eq(mt, HT_MT_OCI_MANIFEST);
	json_t *j = json_loads(m, 0, NULL);
	const char *ld = json_string_value(
	        json_object_get(json_array_get(json_object_get(j, "layers"), 0), "digest"));
	ck_assert_int_eq(ht_registry_get_blob(reg, r.registry, r.repository, ld, -1, layout, &err),
	                 HYPERTEST_ERR_DIGEST);
	ck_assert(!ht_oci_blob_exists(layout, ld));
	json_decref(j);
	free(m);
	free(mt);
	ht_image_ref_free(&r);
	ht_image_free(img);
	free(bad);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_platform_index)
{
	ht_registry *reg = client();
	ht_err err = {0};
	const char *plats[] = {"linux/amd64", "linux/arm64"};
	char digests[2][80];
	json_t *list = json_array();
	char *repo_ref = ref_at(&plain_px, "multi/app");
	for (int i = 0; i < 2; i++) {
		ht_image *img = make_image(plats[i], plats[i], 0);
		char *ref = ht_asprintf("%s:%d", repo_ref, i);
		ck_assert_msg(ht_image_push_registry(img, reg, ref, digests[i], &err) == 0, "%s",
		              err.msg);
		free(ref);
		ht_image_free(img);
		char *m = NULL, *mt = NULL;
		size_t len;
		char md[80];
		ck_assert_int_eq(ht_registry_get_manifest(reg, plain_px.addr, "multi/app", digests[i], &m,
		                                          &len, &mt, md, &err),
		                 0);
		json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", mt,
		                                      "digest", md, "size", (json_int_t)len, "platform",
		                                      "os", "linux", "architecture",
		                                      strchr(plats[i], '/') + 1));
		free(m);
		free(mt);
	}
	json_t *idx = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", HT_MT_OCI_INDEX,
	                        "manifests", list);
	char *text = ht_oci_json_dump(idx);
	char d[80];
	ck_assert_msg(ht_registry_put_manifest(reg, plain_px.addr, "multi/app", "multi",
	                                       HT_MT_OCI_INDEX, text, strlen(text), d, &err) == 0,
	              "%s", err.msg);
	free(text);
	json_decref(idx);
	char *multi = ht_asprintf("%s:multi", repo_ref);
	for (int i = 0; i < 2; i++) {
		ht_image *img = NULL;
		ck_assert_msg(ht_image_from_registry(reg, multi, plats[i], &img, &err) == 0, "%s",
		              err.msg);
		char got[80];
		ht_image_digest(img, got, &err);
		ck_assert_str_eq(got, digests[i]);
		ht_image_free(img);
	}
	ht_image *img = NULL;
	ck_assert_int_eq(ht_image_from_registry(reg, multi, "linux/ppc64le", &img, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "linux/ppc64le"));
	free(multi);
	free(repo_ref);
	ht_registry_unref(reg);
}
END_TEST

START_TEST(test_unreachable)
{
	ht_registry *reg = client();
	ht_err err = {0};
	char *ref = ht_asprintf("127.0.0.1:%d/x/y:1", free_port());
	ht_image *img = NULL;
	ck_assert_int_eq(ht_image_from_registry(reg, ref, NULL, &img, &err), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(err.msg, "127.0.0.1") && strstr(err.msg, "/v2/x/y/manifests/1"), "%s",
	              err.msg);
	free(ref);
	ht_registry_unref(reg);
}
END_TEST

/* HTTPS: a proxy with a certificate of a test CA made here, closing each
 * connection after a GET or HEAD; the client trusts SSL_CERT_FILE, a bundle
 * of 150 certificates with the test CA last: it reads the bundle once for
 * all its connections, resumes TLS sessions across its requests, and with
 * a bundle without the test CA fails saying why. */
START_TEST(test_tls)
{
	test_pki pki;
	struct proxy px;
	ht_err err = {0};
	char dir[4200], pushed[80];
	snprintf(dir, sizeof dir, "%s/tls", suite_dir);
	ck_assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
	ck_assert_int_eq(test_pki_make(&pki, dir), 0);
	const char *tls[] = {pki.cert, pki.key};
	start_proxy_tls(&px, "tls-proxy", plain_reg.port, "none", "300", 0, tls);

	setenv("SSL_CERT_FILE", pki.bundle, 1);
	open_count_watch(pki.bundle);
	ht_registry *reg = client();
	ck_assert_int_eq(ht_registry_set_plain_http(reg, px.addr, 0, &err), 0);
	ht_image *img = make_image(NULL, "over TLS\n", 1), *back = NULL;
	char *ref = ref_at(&px, "tls/app:v1");
	ck_assert_msg(ht_image_push_registry(img, reg, ref, pushed, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_from_registry(reg, ref, NULL, &back, &err) == 0, "%s", err.msg);
	ht_image_free(back);
	ht_image_free(img);
	int full = count_since(&px, 0, "TLS full", NULL);
	int resumed = count_since(&px, 0, "TLS resumed", NULL);
	int closing = count_since(&px, 0, "GET", NULL) + count_since(&px, 0, "HEAD", NULL);
	/* a connection after each GET and HEAD, the bundle read once for them all */
	ck_assert_int_ge(closing, 3);
	ck_assert_int_ge(full + resumed, closing);
	ck_assert_int_eq(open_count(), 1);
	/* the first handshake's session is resumed by the others */
	ck_assert_int_ge(resumed, 1);
	ht_registry_unref(reg);

	/* a bundle without the test CA */
	setenv("SSL_CERT_FILE", pki.wrong_ca, 1);
	reg = client();
	ck_assert_int_eq(ht_registry_set_plain_http(reg, px.addr, 0, &err), 0);
	ck_assert_int_eq(ht_image_from_registry(reg, ref, NULL, &back, &err), HYPERTEST_ERR_HTTP);
	ck_assert_msg(strstr(err.msg, "unable to get local issuer certificate"), "%s", err.msg);
	ht_registry_unref(reg);
	unsetenv("SSL_CERT_FILE");
	free(ref);
	stop(px.pid);
	test_pki_free(&pki);
}
END_TEST

/* hypertest deploy through the fixture provider naming a registry target:
 * the base pulled from the registry, the test layer on top, the result
 * pushed; a second deploy uploads no blob; a third after one changed file
 * uploads exactly the new layer and config, and the manifest. */
START_TEST(test_deploy_to_registry)
{
	const char *tests_build = getenv("HT_TESTS_BUILDDIR");
	ht_registry *reg = client();
	ht_image *base = make_image(NULL, "base os file\n", 0), *back = NULL;
	char *base_ref = ref_at(&plain_px, "base/os:1");
	char *app_ref = ref_at(&plain_px, "app/tests:v1");
	char digest[80], cfg[8192], plugins[4200], link_from[4200], link_to[4300];
	char *project = tp("project"), *content;
	hypertest *h;
	long mark;
	ht_err err = {0};

	ck_assert_msg(ht_image_push_registry(base, reg, base_ref, digest, &err) == 0, "%s", err.msg);
	ht_image_free(base);
	ck_assert_int_eq(ht_mkdir_p(tp("project/tests/sub"), &err), 0);
	write_text(tp("project/tests/a.txt"), "first test\n");
	write_text(tp("project/tests/sub/b.txt"), "second test\n");
	snprintf(cfg, sizeof cfg,
	         "{\"testRunner\": {\"plugin\": \"fixture\", \"options\": {\"count\": 2}},\n"
	         " \"cloudProvider\": {\"plugin\": \"fixture\", \"options\": {\"target\": {"
	         "\"registry\": \"%s\", \"repository\": \"app/tests\", \"tag\": \"v1\","
	         " \"baseImage\": \"%s\"}}}}\n",
	         plain_px.addr, base_ref);
	write_text(tp("project/hypertest.config.json"), cfg);
	snprintf(plugins, sizeof plugins, "%s", tp("plugins"));
	ck_assert_int_eq(ht_mkdir_p(plugins, &err), 0);
	snprintf(link_from, sizeof link_from, "%s/abi/.libs/fixture-good.so",
	         tests_build && *tests_build ? tests_build : HT_TESTS_BUILDDIR);
	snprintf(link_to, sizeof link_to, "%s/fixture-good.so", plugins);
	ck_assert_int_eq(symlink(link_from, link_to), 0);
	setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);

	h = hypertest_new();
	ck_assert_int_eq(hypertest_set_project_dir(h, project), 0);
	ck_assert_int_eq(hypertest_config_load_file(h, NULL), 0);
	ck_assert_msg(hypertest_deploy(h) == 0, "%s", hypertest_errmsg(h));

	/* pulled back: the base's file and the tests under /var/task */
	ck_assert_msg(ht_image_from_registry(reg, app_ref, NULL, &back, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_write_layout(back, tp("pulled"), "v1", digest, &err) == 0, "%s", err.msg);
	ht_image_free(back);
	ck_assert_msg(ht_image_unpack_layout(tp("pulled"), "v1", tp("rootfs"), &err) == 0, "%s", err.msg);
	content = slurp(tp("rootfs/data/file.txt"));
	ck_assert_str_eq(content, "base os file\n");
	free(content);
	content = slurp(tp("rootfs/var/task/tests/a.txt"));
	ck_assert_str_eq(content, "first test\n");
	free(content);
	content = slurp(tp("rootfs/var/task/tests/sub/b.txt"));
	ck_assert_str_eq(content, "second test\n");
	free(content);

	/* no change: no blob uploaded */
	mark = log_size(&plain_px);
	ck_assert_msg(hypertest_deploy(h) == 0, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(count_since(&plain_px, mark, "POST ", NULL), 0);
	ck_assert_int_eq(count_since(&plain_px, mark, "PATCH ", NULL), 0);
	ck_assert_int_eq(count_since(&plain_px, mark, "PUT ", "/manifests/"), 1);

	/* one file changed: one new layer and the config, then the manifest */
	write_text(tp("project/tests/sub/b.txt"), "second test, changed\n");
	mark = log_size(&plain_px);
	ck_assert_msg(hypertest_deploy(h) == 0, "%s", hypertest_errmsg(h));
	ck_assert_int_eq(count_since(&plain_px, mark, "POST ", "/v2/app/tests/blobs/uploads/"), 2);
	ck_assert_int_eq(count_since(&plain_px, mark, "PATCH ", NULL), 2);
	ck_assert_int_eq(count_since(&plain_px, mark, "PUT ", "/manifests/"), 1);

	hypertest_free(h);
	free(base_ref);
	free(app_ref);
	ht_registry_unref(reg);
}
END_TEST

/* Refusals carry the registry's own error code and message: a GET with the
 * wrong password (UNAUTHORIZED), a manifest naming a blob the repository
 * lacks (MANIFEST_BLOB_UNKNOWN). */
START_TEST(test_registry_error_codes)
{
	static const char manifest[] =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
	    "\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\"},"
	    "\"layers\":[]}";
	ht_err err = {0};
	ht_registry *wrong = client(), *reg = client();
	ht_image *img = NULL;
	char *ref = ref_at(&basic_px, "basic/app:1");
	char d[80];

	ck_assert_int_eq(ht_registry_set_credentials(wrong, basic_px.addr, USER, "nope", &err), 0);
	ck_assert_int_ne(ht_image_from_registry(wrong, ref, NULL, &img, &err), 0);
	ck_assert_msg(strstr(err.msg, "401") && strstr(err.msg, "UNAUTHORIZED"), "%s", err.msg);
	ck_assert_int_ne(ht_registry_put_manifest(reg, plain_px.addr, "rejected/app", "1",
	                                          "application/vnd.oci.image.manifest.v1+json",
	                                          manifest, sizeof manifest - 1, d, &err),
	                 0);
	ck_assert_msg(strstr(err.msg, "MANIFEST_BLOB_UNKNOWN") || strstr(err.msg, "BLOB_UNKNOWN"),
	              "%s", err.msg);
	ck_assert_msg(strstr(err.msg, "HTTP 400"), "%s", err.msg);
	free(ref);
	ht_registry_unref(wrong);
	ht_registry_unref(reg);
}
END_TEST

static Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");
	tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_references);
	tcase_add_test(tc, test_push_pull);
	tcase_add_test(tc, test_second_push_uploads_nothing);
	tcase_add_test(tc, test_parallel_uploads);
	tcase_add_test(tc, test_mount_from_base);
	tcase_add_test(tc, test_bearer_tokens);
	tcase_add_test(tc, test_bearer_expiry);
	tcase_add_test(tc, test_basic_auth);
	tcase_add_test(tc, test_corrupt_blob);
	tcase_add_test(tc, test_platform_index);
	tcase_add_test(tc, test_unreachable);
	tcase_add_test(tc, test_tls);
	tcase_add_test(tc, test_deploy_to_registry);
	tcase_add_test(tc, test_registry_error_codes);
	suite_add_tcase(s, tc);
	return s;
}

static int have_python(void)
{
	if (access(python, X_OK) != 0)
		python = "python3";
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execlp(python, python, "-c", "import http.server", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
	if (access(REGISTRY_BIN, X_OK) != 0 || !have_python()) {
		fprintf(stderr, "check_registry: skipped (needs %s and python3)\n", REGISTRY_BIN);
		return 77;
	}
	SRunner *sr = srunner_create(registry_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
