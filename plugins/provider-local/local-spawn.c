/*
 * local-spawn.c - start one function process, fast.
 *
 * The function runtime program gets the orchestrator's environment plus
 * HYPERTEST_FUNCTION_CONFIG (the deployed configuration in the task root),
 * HYPERTEST_PLUGIN_PATH, HYPERTEST_LOCAL_BUCKET, HOME (in its scratch
 * directory), TMPDIR (a short link to one there, local-scratch.c) and PWD; its working directory is the scratch
 * directory.  With isolation "bubblewrap" it runs as
 *
 *   bwrap --die-with-parent --unshare-pid --new-session
 *         --ro-bind / / --dev /dev --proc /proc
 *         --bind BUCKET BUCKET --bind SCRATCH SCRATCH --chdir SCRATCH
 *         -- PROGRAM
 *
 * (the system, the image and the project read-only; the bucket and its
 * scratch directory writable; its own pid namespace, so that everything
 * it started dies with it).
 *
 * With isolation "image" the image runs on its own, as in Lambda: its
 * entry point (Entrypoint + Cmd of its config, recorded at deploy) with
 * the unpacked image as the root,
 *
 *   bwrap --die-with-parent --unshare-pid --new-session
 *         --ro-bind ROOT / --dev /dev --proc /proc --tmpfs /tmp
 *         --bind BUCKET /tmp/.hypertest-bucket
 *         --bind SCRATCH /tmp/.hypertest-scratch
 *         [--ro-bind /etc/resolv.conf /etc/resolv.conf]
 *         [--ro-bind /etc/hosts /etc/hosts]
 *         --chdir WORKDIR -- ENTRYPOINT... CMD...
 *
 * and the image's environment (its config's Env; PATH and
 * HYPERTEST_FUNCTION_CONFIG by default when it sets none), with HOME and
 * TMPDIR in the scratch directory, HYPERTEST_LOCAL_BUCKET and PWD set,
 * given to bwrap, which passes it on: nothing of the orchestrator's.
 *
 * Thousands of invocations mean thousands of spawns, so the child is made
 * with vfork(): no page tables are copied, which on a large orchestrator
 * is most of a fork's cost (measured on a 2-vCPU VM: fork+exit 1.6 ms,
 * vfork+exit 0.04 ms).  posix_spawn() cannot set the parent-death signal,
 * so this does by hand what it does: every signal is blocked around
 * vfork(), and the child resets all dispositions to their defaults before
 * it unblocks them, so that no handler of the parent can run in the child
 * while it shares the parent's memory.
 *
 * In the child, in this order: a process group of its own (setpgid), the
 * parent-death signal SIGKILL (then getppid() is compared with the parent
 * to close the race with a parent that died before prctl), its cgroup
 * when it has one (its pid written to that cgroup.procs), stdin, stdout
 * and stderr from the pipes, the working directory, RLIMIT_AS when
 * memoryMB is set, descriptor 3 when one is kept (the zygote's socket),
 * every other descriptor closed, an empty signal mask, exec.  A failure is handed to the parent in the memory vfork shares and
 * the child exits with 127.
 *
 * The parent-death signal fires when the thread that spawned the child
 * ends: the core calls INVOKE_START and INVOKE_WAIT from one thread that
 * lives as long as the invocations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "local.h"

extern char **environ;

/* What the child reports; lives in the parent's frame, which a vfork child
 * shares. */
struct spawn_report {
	volatile int err;
};

static void child_close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0u) == 0)
		return;
#endif
	/* Without close_range every descriptor is O_CLOEXEC anyway (ours are,
	 * and the core's should be): nothing more to do cheaply. */
	(void)lowfd;
}

static void __attribute__((noreturn))
child(const local_spawn *s, pid_t parent, struct spawn_report *rep)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL); /* fails harmlessly for libc's own */
	if (setpgid(0, 0) != 0)
		goto fail;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		goto fail;
	if (getppid() != parent) {
		rep->err = ESRCH;
		_exit(127);
	}
	if (s->cgroup_fd > 2 && local_cgroup_enter(s->cgroup_fd) != 0)
		goto fail;
	if (dup2(s->fd_in, 0) < 0 || dup2(s->fd_out, 1) < 0 || dup2(s->fd_err, 2) < 0)
		goto fail;
	if (s->cwd && chdir(s->cwd) != 0)
		goto fail;
	if (s->memory_mb) {
		struct rlimit rl;
		rl.rlim_cur = rl.rlim_max = (rlim_t)(s->memory_mb * 1024u * 1024u);
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			goto fail;
	}
	if (s->lambda_limits) {
		struct rlimit rl;
		rl.rlim_cur = rl.rlim_max = 1024;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || setrlimit(RLIMIT_NPROC, &rl) != 0)
			goto fail;
	}
	if (s->fd_keep > 2) {
		/* dup2 clears close-on-exec, except onto the same number */
		if (s->fd_keep == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(s->fd_keep, 3) < 0)
			goto fail;
		child_close_from(4);
	} else {
		child_close_from(3);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(s->path, s->argv, s->envp);
fail:
	rep->err = errno ? errno : EINVAL;
	_exit(127);
}

pid_t local_spawn_process(const local_spawn *s)
{
	struct spawn_report rep;
	rep.err = 0;
	pid_t parent = getpid();
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int saved_errno = errno;
	/* The compiler does not know that the child writes rep in our frame:
	 * let rep escape before vfork and reload it after. */
	__asm__ __volatile__("" : : "r"(&rep) : "memory");
	pid_t pid = vfork();
	if (pid == 0)
		child(s, parent, &rep);
	__asm__ __volatile__("" : : : "memory");
	int vfork_errno = errno;
	errno = saved_errno; /* the child may have written it */
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		errno = vfork_errno;
		return -1;
	}
	if (rep.err) {
		int e = rep.err;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = e;
		return -1;
	}
	return pid;
}

/* A pipe: both ends O_CLOEXEC, the child's end above 2, ours non-blocking. */
static int make_pipe(int fds[2], int parent_end)
{
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	int child_end = 1 - parent_end;
	if (fds[child_end] <= 2) {
		int moved = fcntl(fds[child_end], F_DUPFD_CLOEXEC, 3);
		if (moved < 0) {
			close(fds[0]);
			close(fds[1]);
			return -1;
		}
		close(fds[child_end]);
		fds[child_end] = moved;
	}
	int fl = fcntl(fds[parent_end], F_GETFL);
	if (fl < 0 || fcntl(fds[parent_end], F_SETFL, fl | O_NONBLOCK) != 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	return 0;
}

void local_pipes_close(int pipes[3][2])
{
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 2; i++)
			if (pipes[k][i] >= 0) {
				close(pipes[k][i]);
				pipes[k][i] = -1;
			}
}

int local_pipes_open(int pipes[3][2])
{
	/* stdin: the parent writes; stdout, stderr: the parent reads */
	if (make_pipe(pipes[0], 1) == 0 && make_pipe(pipes[1], 0) == 0 &&
	    make_pipe(pipes[2], 0) == 0)
		return 0;
	int e = errno;
	local_pipes_close(pipes);
	errno = e;
	return -1;
}

/* Is v (NAME=VALUE) a value of name? */
static int env_is(const char *v, const char *name)
{
	size_t l = strlen(name);
	return !strncmp(v, name, l) && v[l] == '=';
}

/* The environment of the image's entry point (every string allocated,
 * *n of them); NULL when out of memory. */
static char **image_env(local_provider *p, const char *workdir, size_t *n)
{
	static const char *const defaults[][2] = {
		{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		{"HYPERTEST_FUNCTION_CONFIG", LOCAL_IMAGE_WORKDIR "/hypertest.config.json"}};
	const char *const set[][2] = {
		{"HOME", LOCAL_IMAGE_SCRATCH "/.hypertest/home"},
		{"TMPDIR", LOCAL_IMAGE_SCRATCH "/.hypertest/tmp"},
		{"HYPERTEST_LOCAL_BUCKET", LOCAL_IMAGE_BUCKET},
		{"PWD", workdir}};
	size_t nd = sizeof defaults / sizeof defaults[0], ns = sizeof set / sizeof set[0], k = 0;
	size_t count = 0;
	char **env = p->dep.image.env;
	while (env[count])
		count++;
	char **v = calloc(count + nd + ns + 1, sizeof *v);
	if (!v)
		return NULL;
	/* the image's, a later NAME replacing an earlier one, ours replacing
	 * both */
	for (size_t i = 0; i < count; i++) {
		size_t name = strcspn(env[i], "="), j;
		int later = 0;
		for (j = i + 1; j < count && !later; j++)
			later = !strncmp(env[j], env[i], name + 1);
		for (j = 0; j < ns && !later; j++)
			later = env_is(env[i], set[j][0]);
		if (!later && !(v[k++] = local_strdup(env[i])))
			goto nomem;
	}
	for (size_t i = 0; i < nd; i++) {
		int have = 0;
		for (size_t j = 0; j < count && !have; j++)
			have = env_is(env[j], defaults[i][0]);
		if (!have && !(v[k++] = htp_strdupf("%s=%s", defaults[i][0], defaults[i][1])))
			goto nomem;
	}
	for (size_t i = 0; i < ns; i++)
		if (!(v[k++] = htp_strdupf("%s=%s", set[i][0], set[i][1])))
			goto nomem;
	*n = k;
	return v;
nomem:
	local_env_free(v, k);
	return NULL;
}

/* Start path with argv and envp in cwd, the child's ends of pipes as its
 * stdin, stdout and stderr (closed here and set to -1 once it runs), the
 * memory limit of p.  The pid, or -1 with the error set. */
static pid_t spawn_piped(local_provider *p, const char *path, char **argv, char **envp,
                         const char *cwd, int pipes[3][2])
{
	local_spawn s;
	memset(&s, 0, sizeof s);
	s.path = path;
	s.argv = argv;
	s.envp = envp;
	s.cwd = cwd;
	s.fd_in = pipes[0][0];
	s.fd_out = pipes[1][1];
	s.fd_err = pipes[2][1];
	s.memory_mb = p->memory_mb;
	pid_t pid = local_spawn_process(&s);
	if (pid < 0) {
		local_fail(p, HYPERTEST_ERR_PROVIDER, "cannot start %s: %s", path, strerror(errno));
		return -1;
	}
	for (int k = 0; k < 3; k++) { /* the child's ends are the child's now */
		int child_end = k == 0 ? 0 : 1;
		close(pipes[k][child_end]);
		pipes[k][child_end] = -1;
	}
	return pid;
}

/* Start the image's entry point in its own root (isolation "image"; the
 * image has one). */
static pid_t start_image(local_provider *p, const char *scratch, int pipes[3][2])
{
	const local_image_config *ic = &p->dep.image; /* entrypoint: checked by the caller */
	const char *workdir = ic->workdir ? ic->workdir : LOCAL_IMAGE_WORKDIR;
	size_t ne = 0, nc = 0, nenv = 0, k = 0;
	while (ic->entrypoint[ne])
		ne++;
	while (ic->cmd[nc])
		nc++;
	char **argv = calloc(40 + ne + nc, sizeof *argv);
	char **envp = image_env(p, workdir, &nenv);
	pid_t pid = -1;
	if (!argv || !envp) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	const char *fixed[] = {p->bwrap, "--die-with-parent", "--unshare-pid", "--new-session",
	                       "--ro-bind", p->dep.root, "/", "--dev", "/dev", "--proc", "/proc",
	                       "--tmpfs", "/tmp", "--bind", p->bucket_dir, LOCAL_IMAGE_BUCKET,
	                       "--bind", scratch, LOCAL_IMAGE_SCRATCH};
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
	pid = spawn_piped(p, p->bwrap, argv, envp, scratch, pipes);
out:
	free(argv);
	local_env_free(envp, nenv);
	return pid;
}

pid_t local_start_function(local_provider *p, const char *program, const char *scratch,
                           const char *tmpdir, int pipes[3][2])
{
	if (p->isolation == LOCAL_ISOLATION_IMAGE)
		return start_image(p, scratch, pipes);

	char *priv = htp_path_join(scratch, ".hypertest");
	char *home = priv ? htp_path_join(priv, "home") : NULL;
	const char *plugin_path = p->up.core_str ? p->up.core_str(p->core, HYPERTEST_CORE_PLUGIN_PATH)
	                                         : NULL;
	const char *modules = local_function_modules(p);
	const char *names[] = {"HYPERTEST_FUNCTION_CONFIG",
	                       "HYPERTEST_PLUGIN_PATH",
	                       "HYPERTEST_LOCAL_BUCKET",
	                       "HOME",
	                       "TMPDIR",
	                       "PWD",
	                       "HYPERTEST_PLUGIN_MODULES"};
	const char *values[] = {p->dep.config, plugin_path && *plugin_path ? plugin_path : NULL,
	                        p->bucket_dir, home,
	                        tmpdir,        scratch,
	                        modules};
	size_t owned = 0;
	char **envp = home ? local_env_build(names, values, 7, &owned) : NULL;
	pid_t pid = -1;
	if (!envp) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	char *direct[] = {(char *)program, NULL};
	/* bwrap: the system read-only, a fresh /dev and /proc, the scratch
	 * directory and the bucket writable; pid namespace and session of its
	 * own; it dies with us. */
	char *sandboxed[] = {p->bwrap,         "--die-with-parent", "--unshare-pid",
	                     "--new-session",  "--ro-bind",         "/",
	                     "/",              "--dev",             "/dev",
	                     "--proc",         "/proc",             "--bind",
	                     p->bucket_dir,    p->bucket_dir,       "--bind",
	                     (char *)scratch,  (char *)scratch,     "--chdir",
	                     (char *)scratch,  "--",                (char *)program,
	                     NULL};
	int bw = p->isolation == LOCAL_ISOLATION_BWRAP;
	pid = spawn_piped(p, bw ? p->bwrap : program, bw ? sandboxed : direct, envp, scratch, pipes);
out:
	local_env_free(envp, owned);
	free(priv);
	free(home);
	return pid;
}

/* The files of the modules of our plugin and the runner (the core's
 * HYPERTEST_CORE_FUNCTION_MODULES), for the function program's
 * HYPERTEST_PLUGIN_MODULES: it loads those alone.  NULL when the core does
 * not say (an older core, or a plugin not loaded): the function then
 * searches the plugin path. */
const char *local_function_modules(local_provider *p)
{
	const char *m =
	    p->up.core_str ? p->up.core_str(p->core, HYPERTEST_CORE_FUNCTION_MODULES) : NULL;
	return m && *m ? m : NULL;
}

/* Is env entry e (NAME=VALUE) one of the names given a value? */
static int env_overridden(const char *e, const char *const *names, const char *const *values,
                          size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!values[i])
			continue;
		size_t l = strlen(names[i]);
		if (!strncmp(e, names[i], l) && e[l] == '=')
			return 1;
	}
	return 0;
}

char **local_env_build(const char *const *names, const char *const *values, size_t n,
                       size_t *owned)
{
	size_t count = 0;
	for (char **e = environ; e && *e; e++)
		count++;
	char **v = calloc(count + n + 1, sizeof *v);
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!values[i])
			continue;
		if (!(v[k] = htp_strdupf("%s=%s", names[i], values[i]))) {
			local_env_free(v, k);
			return NULL;
		}
		k++;
	}
	*owned = k;
	/* The rest borrows environ's strings: used at once, on this thread. */
	for (char **e = environ; e && *e; e++)
		if (!env_overridden(*e, names, values, n))
			v[k++] = *e;
	return v;
}

void local_env_free(char **v, size_t owned)
{
	if (!v)
		return;
	for (size_t i = 0; i < owned; i++)
		free(v[i]);
	free(v);
}
