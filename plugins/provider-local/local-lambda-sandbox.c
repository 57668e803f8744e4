/*
 * local-lambda-sandbox.c - one sandbox of isolation "lambda": the deployed
 * image's entry point in an execution environment like Lambda's,
 *
 *   bwrap --die-with-parent --unshare-pid --unshare-user --uid 993 --gid 990
 *         --disable-userns --new-session --ro-bind ROOT /
 *         --dev /dev --remount-ro /dev --proc /proc
 *         --perms 1777 --size BYTES --tmpfs /tmp
 *         --bind BUCKET /tmp/.hypertest-bucket
 *         [--ro-bind /etc/resolv.conf /etc/resolv.conf]
 *         [--ro-bind /etc/hosts /etc/hosts]
 *         --chdir WORKDIR -- ENTRYPOINT... CMD...
 *
 * (no user namespaces inside, as on Lambda, so a browser's own sandbox
 * cannot start; /dev read-only: no /dev/shm to write to) with RLIMIT_NOFILE
 * and RLIMIT_NPROC 1,024 (set before bwrap runs, inherited by everything in
 * the sandbox) and memoryMB as a cgroup v2 limit where the machine
 * delegates one (local-cgroup.c: a cgroup per sandbox, which bwrap's
 * process enters before it execs), RLIMIT_AS otherwise, stdin
 * /dev/null, stdout and stderr to the provider's log pipe, and Lambda's
 * environment: its reserved variables (the execution role's credentials
 * are the provider's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN, when set), then the image's Env, which may
 * replace the others (PATH, LD_LIBRARY_PATH, LANG, TZ), as for a container
 * image on Lambda.  The network is the host's: AWS_LAMBDA_RUNTIME_API is
 * on loopback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "local.h"

const char *local_lambda_memory_method(char *buf, size_t size)
{
	const local_cgroup *cg = local_cgroup_system();
	if (cg->dir)
		snprintf(buf, size, "cgroup v2 (%s)", cg->dir);
	else
		snprintf(buf, size, "RLIMIT_AS (%s)", cg->reason ? cg->reason : "no cgroup v2");
	return buf;
}

/* A cgroup for the sandbox where memoryMB is set and one is delegated:
 * 0 (cg->dir NULL: RLIMIT_AS), or an error code with the error set. */
static int sandbox_cgroup(local_provider *p, local_cgroup_box *cg)
{
	cg->dir = NULL;
	cg->procs_fd = -1;
	local_cgroup *sys = p->memory_mb ? local_cgroup_system() : NULL;
	if (!sys || !sys->dir)
		return 0;
	char *err = NULL;
	if (local_cgroup_box_new(sys, p->memory_mb, cg, &err) != 0) {
		int rc = local_fail(p, HYPERTEST_ERR_PROVIDER, "memoryMB: %s",
		                    err ? err : "out of memory");
		free(err);
		return rc;
	}
	return 0;
}

/* Is env entry e (NAME=VALUE) named name? */
static int named(const char *e, const char *name)
{
	size_t l = strlen(name);
	return !strncmp(e, name, l) && e[l] == '=';
}

/* Names only Lambda sets: the image's Env cannot replace them. */
static int reserved(const char *e)
{
	return !strncmp(e, "AWS_LAMBDA_", 11) || !strncmp(e, "LAMBDA_", 7) ||
	       named(e, "AWS_REGION") || named(e, "AWS_DEFAULT_REGION") ||
	       named(e, "AWS_EXECUTION_ENV") || named(e, "HYPERTEST_LOCAL_BUCKET") ||
	       named(e, "_HANDLER") || named(e, "AWS_ACCESS_KEY_ID") ||
	       named(e, "AWS_SECRET_ACCESS_KEY") || named(e, "AWS_SESSION_TOKEN");
}

/* The execution role's credentials, which Lambda puts in the environment:
 * here the provider's own, when it has them (as sam local passes the
 * caller's), so that a function built for the aws provider reaches its
 * bucket.  Names only; the values are never logged. */
static const char *const credentials[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN"};

/* The sandbox's environment (every string allocated, *n of them). */
static char **lambda_env(local_provider *p, const char *api, size_t *n)
{
	const char *region = getenv("AWS_REGION");
	if (!region || !*region)
		region = "us-east-1";
	unsigned long long mem = p->memory_mb ? (unsigned long long)p->memory_mb : 10240ULL;
	char *lambda[] = {
		htp_strdupf("AWS_LAMBDA_FUNCTION_NAME=%s", p->function_name),
		htp_strdupf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%llu", mem),
		htp_strdupf("AWS_LAMBDA_FUNCTION_VERSION=$LATEST"),
		htp_strdupf("AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/%s", p->function_name),
		htp_strdupf("AWS_LAMBDA_LOG_STREAM_NAME=local/%ld", (long)getpid()),
		htp_strdupf("AWS_LAMBDA_INITIALIZATION_TYPE=on-demand"),
		htp_strdupf("AWS_LAMBDA_RUNTIME_API=%s", api),
		htp_strdupf("AWS_REGION=%s", region),
		htp_strdupf("AWS_DEFAULT_REGION=%s", region),
		htp_strdupf("LAMBDA_TASK_ROOT=" LOCAL_IMAGE_WORKDIR),
		htp_strdupf("LAMBDA_RUNTIME_DIR=/var/runtime"),
		htp_strdupf("HYPERTEST_LOCAL_BUCKET=" LOCAL_IMAGE_BUCKET),
		NULL};
	const char *const defaults[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:"
		"/var/task:/var/task/lib:/opt/lib",
		"LANG=en_US.UTF-8", "TZ=:UTC",
		"HYPERTEST_FUNCTION_CONFIG=" LOCAL_IMAGE_WORKDIR "/hypertest.config.json"};
	size_t nl = sizeof lambda / sizeof lambda[0] - 1, nd = sizeof defaults / sizeof defaults[0];
	size_t nc = sizeof credentials / sizeof credentials[0];
	char **env = p->dep.image.env;
	size_t count = 0, k = 0;
	while (env && env[count])
		count++;
	char **v = calloc(nl + nc + nd + count + 1, sizeof *v);
	int ok = v != NULL;
	for (size_t i = 0; i < nl; i++)
		ok = ok && lambda[i];
	if (!ok) {
		for (size_t i = 0; i < nl; i++)
			free(lambda[i]);
		free(v);
		return NULL;
	}
	for (size_t i = 0; i < nl; i++)
		v[k++] = lambda[i];
	for (size_t i = 0; i < nc; i++) {
		const char *val = getenv(credentials[i]);
		if (val && *val && !(v[k++] = htp_strdupf("%s=%s", credentials[i], val)))
			goto nomem;
	}
	for (size_t i = 0; i < nd; i++) {
		size_t name = strcspn(defaults[i], "=");
		int have = 0;
		for (size_t j = 0; j < count && !have; j++)
			have = !strncmp(env[j], defaults[i], name + 1);
		if (!have && !(v[k++] = local_strdup(defaults[i])))
			goto nomem;
	}
	/* the image's, a later NAME replacing an earlier one */
	for (size_t i = 0; i < count; i++) {
		size_t name = strcspn(env[i], "=");
		int later = reserved(env[i]);
		for (size_t j = i + 1; j < count && !later; j++)
			later = !strncmp(env[j], env[i], name + 1);
		if (!later && !(v[k++] = local_strdup(env[i])))
			goto nomem;
	}
	*n = k;
	return v;
nomem:
	local_env_free(v, k);
	return NULL;
}

pid_t local_lambda_sandbox_start(local_provider *p, const char *api, int log_fd,
                                 local_cgroup_box *cg)
{
	const local_image_config *ic = &p->dep.image; /* entrypoint: checked by the caller */
	const char *workdir = ic->workdir ? ic->workdir : LOCAL_IMAGE_WORKDIR;
	size_t ne = 0, nc = 0, nenv = 0, k = 0;
	cg->dir = NULL;
	cg->procs_fd = -1;
	while (ic->entrypoint[ne])
		ne++;
	while (ic->cmd[nc])
		nc++;
	char size[32];
	snprintf(size, sizeof size, "%llu", (unsigned long long)p->ephemeral_mb * 1024ULL * 1024ULL);
	char **argv = calloc(48 + ne + nc, sizeof *argv);
	char **envp = lambda_env(p, api, &nenv);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int in = devnull >= 0 ? fcntl(devnull, F_DUPFD_CLOEXEC, 3) : -1;
	pid_t pid = -1;
	if (!argv || !envp) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (in < 0) {
		local_fail(p, HYPERTEST_ERR_IO, "cannot open /dev/null: %s", strerror(errno));
		goto out;
	}
	if (sandbox_cgroup(p, cg) != 0)
		goto out;
	const char *fixed[] = {p->bwrap, "--die-with-parent", "--unshare-pid", "--unshare-user",
	                       "--uid", LOCAL_LAMBDA_UID, "--gid", LOCAL_LAMBDA_GID,
	                       "--disable-userns", "--new-session", "--ro-bind", p->dep.root, "/",
	                       "--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc",
	                       "--perms", "1777", "--size", size, "--tmpfs",
	                       "/tmp", "--bind", p->bucket_dir, LOCAL_IMAGE_BUCKET};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		argv[k++] = (char *)fixed[i];
	const char *etc[] = {p->dep.bind_resolv ? "/etc/resolv.conf" : NULL,
	                     p->dep.bind_hosts ? "/etc/hosts" : NULL};
	for (size_t i = 0; i < 2; i++)
		if (etc[i]) {
			argv[k++] = "--ro-bind";
			argv[k++] = (char *)etc[i];
			argv[k++] = (char *)etc[i];
		}
	argv[k++] = "--chdir";
	argv[k++] = (char *)workdir;
	argv[k++] = "--";
	for (size_t i = 0; i < ne; i++)
		argv[k++] = ic->entrypoint[i];
	for (size_t i = 0; i < nc; i++)
		argv[k++] = ic->cmd[i];
	argv[k] = NULL;
	local_spawn s;
	memset(&s, 0, sizeof s);
	s.path = p->bwrap;
	s.argv = argv;
	s.envp = envp;
	s.fd_in = in;
	s.fd_out = log_fd;
	s.fd_err = log_fd;
	s.memory_mb = cg->dir ? 0 : p->memory_mb;
	s.cgroup_fd = cg->procs_fd;
	s.lambda_limits = 1;
	pid = local_spawn_process(&s);
	if (pid < 0) {
		local_fail(p, HYPERTEST_ERR_PROVIDER, "cannot start the sandbox %s: %s", p->bwrap,
		           strerror(errno));
		uint64_t kills;
		char *err = NULL;
		if (local_cgroup_box_end(cg, &kills, &err) != 0)
			local_log(p, HYPERTEST_LOG_WARNING, "%s", err ? err : "out of memory");
		free(err);
	}
	local_cgroup_box_entered(cg);
out:
	if (in >= 0)
		close(in);
	if (devnull >= 0)
		close(devnull);
	free(argv);
	local_env_free(envp, nenv);
	return pid;
}
