/*
 * local.c - the "local" cloud provider, hypertest's embedded default: with
 * no cloud account, deploy and invoke run every test in a process of its
 * own on this machine, all in parallel, with the bucket layout, manifest
 * and results file of the cloud (a directory stands for the bucket, an OCI
 * image layout for the registry).
 *
 * This file: registration, options, create/destroy, doctor, the image
 * target and serving payloads on the function side.  See local.h for the
 * other modules and README.md for the options.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "local.h"

/* Bound once by hypertest_plugin_init, before any instance exists; only
 * read afterwards (each instance keeps a copy). */
static hypertest_upcalls bound_up;

int local_fail(local_provider *p, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = htp_vstrdupf(fmt, ap);
	va_end(ap);
	if (p->fail_into) {
		free(*p->fail_into);
		*p->fail_into = msg;
		return code;
	}
	if (p->up.set_error)
		p->up.set_error(p->core, code, msg ? msg : "out of memory");
	free(msg);
	return code;
}

char **local_fail_into(local_provider *p, char **error)
{
	char **was = p->fail_into;
	p->fail_into = error;
	return was;
}

void local_log(local_provider *p, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	if (!p->up.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->up.log(p->core, level, msg);
}

static const char *core_str(local_provider *p, int what)
{
	const char *s = p->up.core_str ? p->up.core_str(p->core, what) : NULL;
	return s ? s : "";
}

int local_program_err(local_provider *p, const char **program, char **error)
{
	*program = p->program;
	if (p->program)
		return 0;
	const char *name = core_str(p, HYPERTEST_CORE_FUNCTION_PROGRAM);
	struct stat st;
	if (!*name)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG, "the core names no function program");
	char *path = local_which(name);
	if (!path)
		return htp_errorf(error, HYPERTEST_ERR_NOT_FOUND,
		                  "function program '%s' not found on PATH", name);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0) {
		int rc = htp_errorf(error, HYPERTEST_ERR_NOT_FOUND,
		                    "function program %s is not an executable file%s%s",
		                    path, errno ? ": " : "", errno ? strerror(errno) : "");
		free(path);
		return rc;
	}
	*program = p->program = path;
	return 0;
}

const char *local_program(local_provider *p)
{
	const char *prog;
	char *error = NULL;
	int rc = local_program_err(p, &prog, &error);
	if (rc != 0)
		local_fail(p, rc, "%s", error ? error : "out of memory");
	free(error);
	return prog;
}

/* ---- options -------------------------------------------------------------------- */

static const char *const option_names[] = {"imageDir",   "baseImage",        "bucketDir",
                                           "functionDir", "timeout",          "memoryMB",
                                           "maxResponseBytes", "isolation",
                                           "ephemeralStorageMB", "idleTimeout",
                                           "functionName", "lambdaApi", "functionImage"};

/* A path option: absolute, relative ones taken from the project directory. */
static int opt_path(local_provider *p, json_t *o, const char *key, const char *def, char **out)
{
	json_t *v = json_object_get(o, key);
	const char *s = def;
	if (v && !json_is_string(v))
		return local_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option '%s' must be a string (a directory)", key);
	if (v)
		s = json_string_value(v);
	if (!*s)
		return local_fail(p, HYPERTEST_ERR_CONFIG, "option '%s' is empty", key);
	if (!(*out = local_abspath(core_str(p, HYPERTEST_CORE_PROJECT_DIR), s)))
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}

/* The default functionDir: a directory of the user's cache, one per
 * project, $XDG_CACHE_HOME/hypertest/local/<name>-<key>/function (or
 * ~/.cache/...), where <name> is the project directory's last component
 * (other characters than [A-Za-z0-9._-] as '_', at most 32) and <key> the
 * first 16 hex digits of the SHA-256 of its absolute path.  Outside the
 * project, so that a runner listing the project ("testDir": ".", `find .`)
 * never finds the unpacked image or an invocation's scratch directory.
 * Without an absolute XDG_CACHE_HOME or HOME: .hypertest/function in the
 * project, as before. */
static char *default_function_dir(const char *project)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *cache;
	if (xdg && xdg[0] == '/')
		cache = local_strdup(xdg);
	else if (home && home[0] == '/')
		cache = htp_path_join(home, ".cache");
	else
		return local_abspath(project, ".hypertest/function");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char name[33], key[17];
	const char *base = strrchr(project, '/');
	base = base && base[1] ? base + 1 : "root";
	size_t i;
	for (i = 0; i < 32 && base[i]; i++)
		name[i] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
		                 base[i]) ? base[i] : '_';
	name[i] = '\0';
	if (name[0] == '.')
		name[0] = '_';
	if (!cache || EVP_Digest(project, strlen(project), md, &n, EVP_sha256(), NULL) != 1 ||
	    n < 8) {
		free(cache);
		return NULL;
	}
	for (i = 0; i < 8; i++)
		snprintf(key + 2 * i, 3, "%02x", md[i]);
	char *dir = htp_strdupf("%s/hypertest/local/%s-%s/function", cache, name, key);
	free(cache);
	return dir;
}

/* A number option in [min, max]; integral when asked. */
static int opt_number(local_provider *p, json_t *o, const char *key, double def, double min,
                      double max, int integral, double *out)
{
	json_t *v = json_object_get(o, key);
	*out = def;
	if (!v)
		return 0;
	double d = json_number_value(v);
	if (!json_is_number(v) || (integral && !json_is_integer(v)) || !isfinite(d) || d < min ||
	    d > max)
		return local_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option '%s' must be %s between %.15g and %.15g",
		                  key, integral ? "an integer" : "a number", min, max);
	*out = d;
	return 0;
}

/* "oci:DIR" or "oci:DIR:REF" (DIR without ':'): option key (baseImage or
 * functionImage) into *layout and *ref. */
static int opt_oci(local_provider *p, json_t *o, const char *key, char **layout, char **ref)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	if (!s || strncmp(s, "oci:", 4) != 0 || !s[4] || s[4] == ':')
		return local_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option '%s' must be \"oci:DIR\" or "
		                  "\"oci:DIR:REF\" (an OCI image layout directory)", key);
	const char *dir = s + 4, *colon = strchr(dir, ':');
	char *d = colon ? strndup(dir, (size_t)(colon - dir)) : local_strdup(dir);
	if (colon && !colon[1]) {
		free(d);
		return local_fail(p, HYPERTEST_ERR_CONFIG,
		                  "option '%s' has an empty reference after ':'", key);
	}
	*layout = d ? local_abspath(core_str(p, HYPERTEST_CORE_PROJECT_DIR), d) : NULL;
	free(d);
	if (colon)
		*ref = local_strdup(colon + 1);
	if (!*layout || (colon && !*ref))
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}

static int parse_options(local_provider *p, const char *options_json)
{
	json_error_t jerr;
	json_t *o = options_json && *options_json ? json_loads(options_json, JSON_DECODE_ANY, &jerr)
	                                          : json_object();
	if (o && json_is_null(o)) {
		json_decref(o);
		o = json_object();
	}
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return local_fail(p, HYPERTEST_ERR_CONFIG,
		                  "the options must be a JSON object");
	}
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach(o, key, v) {
		size_t i, n = sizeof option_names / sizeof option_names[0];
		for (i = 0; i < n && strcmp(key, option_names[i]); i++)
			;
		if (i == n) {
			rc = local_fail(p, HYPERTEST_ERR_CONFIG,
			                "unknown option '%s' (known: imageDir, baseImage, "
			                "bucketDir, functionDir, timeout, memoryMB, maxResponseBytes, "
			                "isolation, ephemeralStorageMB, idleTimeout, functionName, lambdaApi, "
			                "functionImage)", key);
			break;
		}
	}
	double timeout, mem, maxresp, eph = 512, idle = 60;
	if (rc == 0)
		rc = opt_path(p, o, "imageDir", ".hypertest/image", &p->image_dir);
	if (rc == 0)
		rc = opt_path(p, o, "bucketDir", ".hypertest/bucket", &p->bucket_dir);
	if (rc == 0 && json_object_get(o, "functionDir"))
		rc = opt_path(p, o, "functionDir", NULL, &p->function_dir);
	else if (rc == 0 &&
	         !(p->function_dir = default_function_dir(core_str(p, HYPERTEST_CORE_PROJECT_DIR))))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0)
		rc = opt_oci(p, o, "baseImage", &p->base_layout, &p->base_ref);
	if (rc == 0)
		rc = opt_oci(p, o, "functionImage", &p->fn_layout, &p->fn_ref);
	if (rc == 0)
		rc = opt_number(p, o, "timeout", 900, 0.001, 31536000, 0, &timeout);
	if (rc == 0)
		rc = opt_number(p, o, "memoryMB", 0, 0, 1 << 30, 1, &mem);
	if (rc == 0)
		rc = opt_number(p, o, "maxResponseBytes", 6291456, 1, 1 << 30, 1, &maxresp);
	if (rc == 0)
		rc = opt_number(p, o, "ephemeralStorageMB", 512, 1, 10240, 1, &eph);
	if (rc == 0)
		rc = opt_number(p, o, "idleTimeout", 60, 0, 86400, 0, &idle);
	if (rc == 0) {
		json_t *fnm = json_object_get(o, "functionName");
		const char *s = fnm ? json_string_value(fnm) : "hypertest";
		if (!s || !*s || strlen(s) > 64 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
		                                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
		                                         strlen(s))
			rc = local_fail(p, HYPERTEST_ERR_CONFIG, "option 'functionName' must be 1 to 64 "
			                "letters, digits, '-' or '_' (a Lambda function name)");
		else if (!(p->function_name = local_strdup(s)))
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		json_t *api = json_object_get(o, "lambdaApi");
		const char *a = api ? json_string_value(api) : NULL;
		const char *colon = a ? strrchr(a, ':') : NULL;
		struct in_addr ia;
		char host[64];
		int port = colon ? atoi(colon + 1) : 0;
		if (api && (!colon || (size_t)(colon - a) >= sizeof host || port <= 0 || port > 65535 ||
		            strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
		            (memcpy(host, a, (size_t)(colon - a)), host[colon - a] = '\0',
		             inet_pton(AF_INET, host, &ia) != 1) ||
		            (ntohl(ia.s_addr) >> 24) != 127))
			rc = local_fail(p, HYPERTEST_ERR_CONFIG, "option 'lambdaApi' must be "
			                "\"127.0.0.1:PORT\" (a loopback address and a port)");
		else if (a && !(p->lambda_api = local_strdup(a)))
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		p->ephemeral_mb = (uint64_t)eph;
		p->idle_timeout_s = idle;
	}
	if (rc == 0) {
		p->timeout_s = timeout;
		p->memory_mb = (uint64_t)mem;
		p->max_response = (size_t)maxresp;
		json_t *iso = json_object_get(o, "isolation");
		const char *s = iso ? json_string_value(iso) : "none";
		if (s && !strcmp(s, "none"))
			p->isolation = LOCAL_ISOLATION_NONE;
		else if (s && !strcmp(s, "bubblewrap"))
			p->isolation = LOCAL_ISOLATION_BWRAP;
		else if (s && !strcmp(s, "image"))
			p->isolation = LOCAL_ISOLATION_IMAGE;
		else if (s && !strcmp(s, "lambda"))
			p->isolation = LOCAL_ISOLATION_LAMBDA;
		else
			rc = local_fail(p, HYPERTEST_ERR_CONFIG,
			                "option 'isolation' must be \"none\", "
			                "\"bubblewrap\", \"image\" or \"lambda\"");
		if (rc == 0 && p->fn_layout && !LOCAL_RUNS_IMAGE(p))
			rc = local_fail(p, HYPERTEST_ERR_CONFIG, "option 'functionImage' needs "
			                "isolation \"image\" or \"lambda\" (it runs the image's own "
			                "entry point)");
	}
	json_decref(o);
	return rc;
}

/* ---- create / destroy -------------------------------------------------------------- */

static void local_destroy(void *self)
{
	local_provider *p = self;
	if (!p)
		return;
	local_invoke_shutdown(p);
	local_scratch_shutdown(p);
	local_deployed_clear(&p->dep);
	free(p->image_dir);
	free(p->base_layout);
	free(p->base_ref);
	free(p->fn_layout);
	free(p->fn_ref);
	free(p->bucket_dir);
	free(p->function_dir);
	free(p->bwrap);
	free(p->function_name);
	free(p->lambda_api);
	free(p->program);
	free(p);
}

const char local_bwrap_missing[] =
	"needs the program bwrap on PATH (Debian package: bubblewrap)";

const char *local_isolation_name(const local_provider *p)
{
	return p->isolation == LOCAL_ISOLATION_LAMBDA  ? "lambda"
	       : p->isolation == LOCAL_ISOLATION_IMAGE ? "image"
	       : p->isolation == LOCAL_ISOLATION_BWRAP ? "bubblewrap" : "none";
}

static int local_create(hypertest_core *core, const char *options_json, void **self)
{
	local_provider *p = calloc(1, sizeof *p);
	if (!p)
		return HYPERTEST_ERR_NOMEM;
	p->core = core;
	p->up = bound_up;
	p->epfd = -1;
	p->zyg_sock = p->zyg_err = -1;
	int rc = parse_options(p, options_json);
	/* With "image" the function side (SERVE) runs in the image, which has
	 * no bwrap: a process this provider started (HYPERTEST_LOCAL_BUCKET
	 * set) creates it without, and never starts invocations. */
	if (rc == 0 && p->isolation != LOCAL_ISOLATION_NONE && !(p->bwrap = local_which("bwrap")) &&
	    !(LOCAL_RUNS_IMAGE(p) && getenv("HYPERTEST_LOCAL_BUCKET")))
		rc = local_fail(p, HYPERTEST_ERR_CONFIG, "isolation \"%s\" %s",
		                local_isolation_name(p), local_bwrap_missing);
	if (rc == 0)
		rc = local_invoke_init(p);
	if (rc != 0) {
		local_destroy(p);
		return rc;
	}
	/* Thousands of invocations hold four descriptors each. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			local_log(p, HYPERTEST_LOG_DEBUG, "cannot raise RLIMIT_NOFILE: %s",
			          strerror(errno));
	}
	*self = p;
	return 0;
}

/* ---- doctor ------------------------------------------------------------------------ */

static void check_bucket(local_provider *p, hypertest_checks *checks)
{
	char *probe = htp_strdupf("%s/.hypertest-doctor-%ld", p->bucket_dir, (long)getpid());
	int fd = -1;
	const char *step = "create";
	if (probe && local_mkdir_p(p->bucket_dir) == 0) {
		step = "write in";
		fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	char msg[1200];
	int status = HYPERTEST_CHECK_OK;
	if (fd < 0) {
		snprintf(msg, sizeof msg, "cannot %s the bucket directory %s: %s", step, p->bucket_dir,
		         strerror(errno));
		status = HYPERTEST_CHECK_FAILED;
	} else {
		close(fd);
		if (unlink(probe) != 0) {
			snprintf(msg, sizeof msg, "cannot remove %s: %s", probe, strerror(errno));
			status = HYPERTEST_CHECK_FAILED;
		} else {
			snprintf(msg, sizeof msg, "bucket directory %s is writable", p->bucket_dir);
		}
	}
	free(probe);
	p->up.doctor_check(checks, "provider.local.bucket", status, msg);
}

static void check_function(local_provider *p, hypertest_checks *checks)
{
	const char *prog;
	char *error = NULL;
	local_program_err(p, &prog, &error);
	char msg[1200];
	if (prog)
		snprintf(msg, sizeof msg, "function runtime program %s", prog);
	p->up.doctor_check(checks, "provider.local.function",
	                   prog ? HYPERTEST_CHECK_OK : HYPERTEST_CHECK_FAILED,
	                   prog ? msg : error ? error : "out of memory");
	free(error);
}

/* Run "bwrap <sandbox> -- bwrap --version": user namespaces may be off
 * (isolation "bubblewrap" and "image"). */
static void check_bubblewrap(local_provider *p, hypertest_checks *checks)
{
	char *bwrap = local_which("bwrap");
	char msg[1400], err[512] = "";
	int status = HYPERTEST_CHECK_FAILED;
	int pipefd[2] = {-1, -1};
	if (!bwrap) {
		snprintf(msg, sizeof msg, "isolation \"%s\" %s", local_isolation_name(p),
		         local_bwrap_missing);
	} else if (pipe2(pipefd, O_CLOEXEC) != 0) {
		snprintf(msg, sizeof msg, "cannot create a pipe: %s", strerror(errno));
	} else {
		char *argv[] = {bwrap, "--die-with-parent", "--unshare-pid", "--new-session",
		                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--",
		                bwrap, "--version", NULL};
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		int in = devnull >= 0 ? fcntl(devnull, F_DUPFD_CLOEXEC, 3) : -1;
		int wr = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 3);
		extern char **environ;
		local_spawn s = {bwrap, argv, environ, NULL, in, in, wr, 0, 0, 0, 0};
		pid_t pid = in >= 0 && wr >= 0 ? local_spawn_process(&s) : -1;
		int e = errno;
		close(pipefd[1]);
		if (wr >= 0)
			close(wr);
		if (in >= 0)
			close(in);
		if (devnull >= 0)
			close(devnull);
		size_t n = 0;
		ssize_t r;
		while (n + 1 < sizeof err &&
		       ((r = read(pipefd[0], err + n, sizeof err - 1 - n)) > 0 || (r < 0 && errno == EINTR)))
			n += r > 0 ? (size_t)r : 0;
		err[n] = '\0';
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		int ws = 0;
		if (pid > 0)
			while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
				;
		if (pid < 0)
			snprintf(msg, sizeof msg, "cannot run %s: %s", bwrap, strerror(e));
		else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
			snprintf(msg, sizeof msg, "%s can create a sandbox", bwrap), status = HYPERTEST_CHECK_OK;
		else
			snprintf(msg, sizeof msg, "%s cannot create a sandbox (%s %d)%s%s", bwrap,
			         WIFEXITED(ws) ? "exit status" : "signal",
			         WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), *err ? ": " : "", err);
		close(pipefd[0]);
	}
	free(bwrap);
	p->up.doctor_check(checks, "provider.local.bubblewrap", status, msg);
}

static void check_deployed(local_provider *p, hypertest_checks *checks)
{
	p->dep_loaded = 0; /* look again */
	char *error = NULL;
	int busy = 0;
	int rc = local_deployed_load_try_err(p, &busy, &error); /* never waits for a deploy */
	char msg[1400];
	int status = HYPERTEST_CHECK_OK;
	struct stat st;
	if (busy) {
		snprintf(msg, sizeof msg, "the deployed image in %s/images is being unpacked or "
		         "repaired (another process holds its lock): run doctor again once the "
		         "deploy ends", p->function_dir);
		status = HYPERTEST_CHECK_WARNING;
	} else if (rc == HYPERTEST_ERR_NOT_FOUND) {
		snprintf(msg, sizeof msg, "nothing deployed in %s yet (run hypertest deploy)",
		         p->function_dir);
		status = HYPERTEST_CHECK_WARNING;
	} else if (rc != 0) {
		snprintf(msg, sizeof msg, "%s", error ? error : "out of memory");
		status = HYPERTEST_CHECK_FAILED;
	} else if (LOCAL_RUNS_IMAGE(p) && !p->dep.image.entrypoint) {
		snprintf(msg, sizeof msg,
		         "deployed image %s has no entry point%s (deploy again with this provider)",
		         p->dep.digest,
		         p->dep.image.recorded ? "" : " recorded in current");
		status = HYPERTEST_CHECK_FAILED;
	} else if (!LOCAL_RUNS_IMAGE(p) && stat(p->dep.config, &st) != 0) {
		snprintf(msg, sizeof msg, "deployed image %s has no configuration (%s: %s)",
		         p->dep.digest, p->dep.config, strerror(errno));
		status = HYPERTEST_CHECK_FAILED;
	} else {
		snprintf(msg, sizeof msg, "deployed image %s in %s", p->dep.digest, p->dep.root);
	}
	free(error);
	p->up.doctor_check(checks, "provider.local.deployed", status, msg);
}

static int local_doctor(void *self, hypertest_checks *checks)
{
	local_provider *p = self;
	if (!p->up.doctor_check)
		return local_fail(p, HYPERTEST_ERR_UNSUPPORTED, "no doctor upcall");
	check_bucket(p, checks);
	check_function(p, checks);
	if (p->isolation != LOCAL_ISOLATION_NONE)
		check_bubblewrap(p, checks);
	if (p->isolation == LOCAL_ISOLATION_LAMBDA) {
		char msg[1400], method[1200];
		snprintf(msg, sizeof msg, "isolation \"lambda\", memoryMB %llu%s; memory: %s",
		         (unsigned long long)p->memory_mb, p->memory_mb ? "" : " (no limit)",
		         local_lambda_memory_method(method, sizeof method));
		p->up.doctor_check(checks, "provider.local.memory", HYPERTEST_CHECK_OK, msg);
	}
	check_deployed(p, checks);
	return 0;
}

/* ---- image target ------------------------------------------------------------------ */

static int local_image_target(void *self, hypertest_params *target)
{
	local_provider *p = self;
	int rc = p->up.param_set(target, "layout", p->image_dir);
	if (rc == 0 && p->base_layout)
		rc = p->up.param_set(target, "baseLayout", p->base_layout);
	if (rc == 0 && p->base_ref)
		rc = p->up.param_set(target, "baseRef", p->base_ref);
	/* The image runs on its own: deploy adds the function runtime, its
	 * libraries and loader, and the entry point. */
	if (rc == 0 && LOCAL_RUNS_IMAGE(p))
		rc = p->up.param_set(target, "runtimeLayer", "1");
	return rc ? local_fail(p, rc, "cannot set the image target") : 0;
}

/* ---- serve (function side) ----------------------------------------------------------- */

static int read_all(int fd, char **data, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r > 0) {
			n += (size_t)r;
		} else if (r == 0) {
			buf[n] = '\0';
			*data = buf;
			*len = n;
			return 0;
		} else if (errno == EAGAIN) {
			struct pollfd pfd = {fd, POLLIN, 0};
			poll(&pfd, 1, -1);
		} else if (errno != EINTR) {
			int e = errno;
			free(buf);
			errno = e;
			return -1;
		}
	}
	free(buf);
	errno = ENOMEM;
	return -1;
}

int local_serve_one(local_provider *p, hypertest_function *fn, char **error)
{
	char *payload;
	size_t len;
	if (read_all(0, &payload, &len) != 0)
		return htp_errorf(error, HYPERTEST_ERR_IO, "cannot read the payload: %s",
		                  strerror(errno));
	hypertest_buffer *resp = p->up.buffer_new(p->core);
	if (!resp) {
		free(payload);
		return htp_errorf(error, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	int rc = p->up.function_handle(fn, payload, len, resp);
	free(payload);
	size_t n = 0;
	const char *data = p->up.buffer_data(resp, &n);
	if (data && n > 0) {
		rc = 0; /* a response is always a valid one, even for a runner that failed */
		if (htp_write_all(1, data, n) != 0)
			rc = htp_errorf(error, HYPERTEST_ERR_IO, "cannot write the response: %s",
			                strerror(errno));
	} else if (rc == 0) {
		rc = htp_errorf(error, HYPERTEST_ERR_PROVIDER, "the function gave no response");
	}
	p->up.buffer_free(resp);
	return rc;
}

/* One payload on stdin, its response on stdout: the orchestrator's side of
 * this provider starts one process per invocation, by exec or, with
 * HYPERTEST_LOCAL_ZYGOTE_FD, by asking this process, a zygote, to fork it
 * (local-zygote.c). */
static int local_serve(void *self, hypertest_function *fn)
{
	local_provider *p = self;
	if (!p->up.function_handle || !p->up.buffer_new || !p->up.buffer_data || !p->up.buffer_free)
		return local_fail(p, HYPERTEST_ERR_UNSUPPORTED,
		                  "this core lacks the upcalls to serve (%d, %d-%d)",
		                  HYPERTEST_UP_FUNCTION_HANDLE, HYPERTEST_UP_BUFFER_NEW,
		                  HYPERTEST_UP_BUFFER_FREE);
	const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
	if (p->isolation == LOCAL_ISOLATION_LAMBDA && api && *api)
		return local_lambda_serve(p, fn, api);
	if (p->isolation == LOCAL_ISOLATION_LAMBDA && p->lambda_api && !getenv("HYPERTEST_LOCAL_BUCKET"))
		return local_lambda_api_serve(p);
	const char *z = getenv(LOCAL_ZYGOTE_ENV);
	if (z && *z) {
		char *end;
		errno = 0;
		long fd = strtol(z, &end, 10);
		if (errno || *end || fd < 3 || fd > 1 << 20)
			return local_fail(p, HYPERTEST_ERR_CONFIG, "%s=%s is not a descriptor number",
			                  LOCAL_ZYGOTE_ENV, z);
		return local_zygote_serve(p, fn, (int)fd);
	}
	char *error = NULL;
	int rc = local_serve_one(p, fn, &error);
	if (rc != 0 && (error || rc == HYPERTEST_ERR_NOMEM))
		local_fail(p, rc, "%s", error ? error : "out of memory");
	free(error);
	return rc;
}

/* ---- registration ---------------------------------------------------------------------- */

static const hypertest_dispatch local_ops[] = {
	HYPERTEST_OP(HYPERTEST_OP_CREATE, local_create),
	HYPERTEST_OP(HYPERTEST_OP_DESTROY, local_destroy),
	HYPERTEST_OP(HYPERTEST_OP_DOCTOR, local_doctor),
	HYPERTEST_OP(HYPERTEST_PROVIDER_IMAGE_TARGET, local_image_target),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_PUT, local_object_put),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_GET, local_object_get),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_URL, local_object_url),
	HYPERTEST_OP(HYPERTEST_PROVIDER_OBJECT_LIST, local_object_list),
	HYPERTEST_OP(HYPERTEST_PROVIDER_FUNCTION_UPDATE, local_function_update),
	HYPERTEST_OP(HYPERTEST_PROVIDER_FUNCTION_DIGEST, local_function_digest),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_START, local_invoke_start),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_WAIT, local_invoke_wait),
	HYPERTEST_OP(HYPERTEST_PROVIDER_INVOKE_CANCEL, local_invoke_cancel),
	HYPERTEST_OP(HYPERTEST_PROVIDER_SERVE, local_serve),
	HYPERTEST_OP(HYPERTEST_PROVIDER_ARTIFACTS_STORE, local_artifacts_store),
	HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_PLAN, local_provision_plan),
	HYPERTEST_OP(HYPERTEST_PROVIDER_PROVISION_APPLY, local_provision_apply),
	HYPERTEST_OP(HYPERTEST_PROVIDER_RESOURCES_DESTROY, local_resources_destroy),
	HYPERTEST_OP_END};

HYPERTEST_PLUGIN_DEFINE("provider-local", "0.1.0",
                        "runs every test in its own process on this machine", "MIT")
{
	return htp_register(&bound_up, core, upcalls, HYPERTEST_KIND_PROVIDER, "local",
	                    "runs each test in its own process on this machine", local_ops);
}
