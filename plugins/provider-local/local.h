/*
 * local.h - the "local" cloud provider: what its modules share.
 *
 *   local.c         registration, options, create/destroy, doctor, image
 *                   target, serve (the function side)
 *   local-fs.c      file helpers: paths, mkdir -p, rm -rf, atomic writes
 *   local-bucket.c  the bucket: objects and artifacts below bucketDir
 *   local-deploy.c  function update: unpacking the image, functionDir/current
 *   local-image.c   the image config (entry point, environment) from the OCI layout
 *   local-scratch.c the working directories of invocations, recycled
 *   local-spawn.c   starting one function process (vfork + exec)
 *   local-zygote.c  the fork server (isolation "none"): both sides of its
 *                   protocol
 *   local-invoke.c  invocations in flight: one epoll loop, timeouts, cancel
 *   local-cgroup.c  memoryMB as a cgroup v2 limit (isolation "lambda")
 *
 * Everything here is internal to the module (built with hidden visibility).
 */
#ifndef HT_PROVIDER_LOCAL_H
#define HT_PROVIDER_LOCAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hypertest/plugin.h>

#include "../common/htplugin.h"
#include "local-cgroup.h"

#if defined(__GNUC__)
#define LOCAL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LOCAL_PRINTF(f, a)
#endif

/* "none", "bubblewrap" (the host's system, the program on it) and "image"
 * (the image's own entry point with the unpacked image as its root): both
 * sandboxes are bwrap. */
enum local_isolation {
	LOCAL_ISOLATION_NONE = 0,
	LOCAL_ISOLATION_BWRAP = 1,
	LOCAL_ISOLATION_IMAGE = 2,
	LOCAL_ISOLATION_LAMBDA = 3 /* the image in Lambda's sandbox, behind a Runtime API
	                            * (local-lambda.c) */
};

/* Isolations that run the deployed image's own entry point. */
#define LOCAL_RUNS_IMAGE(p) \
	((p)->isolation == LOCAL_ISOLATION_IMAGE || (p)->isolation == LOCAL_ISOLATION_LAMBDA)

/* The image config of the deployed image, as recorded in current.  String
 * vectors are NULL-terminated; entrypoint NULL: the image has none. */
typedef struct local_image_config {
	int recorded;      /* current had it */
	char **entrypoint; /* Entrypoint */
	char **cmd;        /* Cmd (never NULL once recorded) */
	char **env;        /* Env, NAME=VALUE (never NULL once recorded) */
	char *workdir;     /* WorkingDir, NULL when unset */
} local_image_config;

/* The deployed function, read from functionDir/current. */
typedef struct local_deployed {
	char *digest;    /* "sha256:..." */
	char *root;      /* the unpacked image */
	char *task_root; /* root + /var/task */
	char *config;    /* task_root + /hypertest.config.json */
	char **entries;  /* top-level names of task_root (none with "image") */
	size_t nentries;
	local_image_config image; /* for isolation "image" */
	/* isolation "image": the host files bound over the image's (resolv.conf,
	 * hosts), set once the root has their mount points */
	int bind_resolv, bind_hosts;
	/* images/<hex>/lock, held shared while this image may run (has_lock) */
	int lock_fd, has_lock;
} local_deployed;

typedef struct local_proc local_proc;

/* What an epoll event of the loop points to: a descriptor of an invocation
 * (proc set) or of the zygote (proc NULL). */
typedef struct local_watch {
	local_proc *proc;
	int kind;
} local_watch;

struct local_zreq;

typedef struct local_provider {
	hypertest_core *core;
	hypertest_upcalls up;
	char **fail_into; /* while set, local_fail() puts its message there (local_fail_into) */

	/* options, paths absolute */
	char *image_dir;
	char *base_layout, *base_ref; /* NULL without baseImage */
	char *bucket_dir;
	char *function_dir;
	double timeout_s;
	uint64_t memory_mb; /* 0: no limit */
	size_t max_response;
	int isolation;
	/* isolation "lambda" (local-lambda.c) */
	uint64_t ephemeral_mb;     /* ephemeralStorageMB: the size of /tmp */
	double idle_timeout_s;     /* idleTimeout: an idle sandbox ends after it */
	char *function_name;       /* functionName: AWS_LAMBDA_FUNCTION_NAME */
	char *lambda_api;          /* lambdaApi: where SERVE answers the Invoke API, or NULL */
	char *fn_layout, *fn_ref;  /* functionImage: deploy runs it, not the image it built */
	struct local_lambda *lambda;
	char *bwrap; /* bwrap's path (isolation "bubblewrap" and "image") */

	/* lazily found */
	char *program; /* the function runtime program, resolved */
	local_deployed dep;
	int dep_loaded;

	/* scratch directories (local-scratch.c) */
	char *scratch_base; /* functionDir/scratch, once created */
	char *pool_dir;     /* scratch/.pool */
	char **pool;        /* clean directories in pool_dir, ready for reuse */
	size_t npool, pool_cap;
	char *pool_digest;  /* the image they were made for */
	unsigned long pool_seq;
	char *tmp_links;    /* /tmp/hypertest-<ns>-<pid>-XXXXXX: the short TMPDIR names */
	unsigned long tmp_link_seq;

	/* invocations (local-invoke.c) */
	int epfd;
	int use_pidfd;
	local_proc *run_head, *run_tail; /* running, in start (= deadline) order */
	local_proc *detached;            /* completed, waiting to be reaped */
	size_t nrunning;
	unsigned long seq;
	int cancel_pending;
	/* started while a deploy held the image (invoke starts them once it
	 * can hold it, or completes them cancelled) */
	struct local_waiting *wait_head, *wait_tail;
	int wait_cancelled;

	/* the zygote (local-zygote.c) */
	int zyg_state;     /* 0 not started, 1 running, -1 not used any more */
	pid_t zyg_pid;
	int zyg_sock;      /* our end of its socket, -1 */
	int zyg_err;       /* its stderr, -1 */
	char *zyg_digest;  /* the image it loaded */
	local_watch zyg_watch[2];
	int zyg_out_watched;                  /* the socket registered for EPOLLOUT */
	struct local_zreq *zyg_head, *zyg_tail; /* requests not sent yet */
	local_proc **zyg_slots;               /* invocations it knows, by token */
	uint32_t *zyg_gen;
	size_t zyg_nslots, zyg_cap;
	size_t *zyg_free;
	size_t zyg_nfree;
	int zyg_warned;
	char zyg_tail_err[1024];              /* the end of its stderr */
	size_t zyg_tail_len;
	/* in a zygote and its children: the umask read once (the children
	 * never change it), when umask_known */
	int umask_known;
	mode_t umask_value;
} local_provider;

/* ---- local.c ------------------------------------------------------------------ */

/* Function side: read one payload on stdin, run it, write the response on
 * stdout (what SERVE does in a process of its own).  0, or an error code
 * with its message in *error (none when the core's function_handle failed
 * without a response: the core holds that error). */
int local_serve_one(local_provider *p, hypertest_function *fn, char **error);
/* Report an error through the core; returns code.  While a route set by
 * local_fail_into() is in place, the message goes into it instead. */
int local_fail(local_provider *p, int code, const char *fmt, ...) LOCAL_PRINTF(3, 4);
/* Route the local_fail()s that follow into *error (each frees the message
 * an earlier one left there; NULL when memory ran out) instead of the
 * core; error NULL routes them to the core again.  Returns the route in
 * place, to be put back after the call: how a caller that handles an
 * error itself (logs it, answers it) gets the message of a deep call
 * without setting the core's error. */
char **local_fail_into(local_provider *p, char **error);
void local_log(local_provider *p, int level, const char *fmt, ...) LOCAL_PRINTF(3, 4);
/* The function runtime program, resolved on PATH when it has no '/';
 * NULL with the error set when there is none. */
const char *local_program(local_provider *p);
/* The same without reporting: 0 with the program in *program (borrowed),
 * or an error code with *program NULL and the message in *error. */
int local_program_err(local_provider *p, const char **program, char **error);
/* "none", "bubblewrap" or "image". */
const char *local_isolation_name(const local_provider *p);
/* The end of the message when bwrap is missing ("needs the program ..."). */
extern const char local_bwrap_missing[];

/* ---- local-fs.c ----------------------------------------------------------------- */

char *local_strdup(const char *s);
/* path if absolute, else base/path. */
char *local_abspath(const char *base, const char *path);
/* 0 or -1 with errno. */
int local_mkdir_p(const char *path);
int local_rm_rf(const char *path);
/* The same relative to the directory open as dfd (or AT_FDCWD); and
 * emptying a directory, which stays. */
int local_rm_rf_at(int dfd, const char *name);
int local_rm_contents_at(int dfd, const char *name);
/* Each entry of the directory open as dfd but . and .., read with
 * getdents64 (no DIR stream, nothing allocated), to fn with its name and
 * d_type, until fn returns nonzero: that value; 0 at the end, -1 (errno)
 * when reading failed. */
typedef int (*local_dir_fn)(int dfd, const char *name, unsigned char type, void *ud);
int local_dir_each(int dfd, local_dir_fn fn, void *ud);
/* local-tree.c: an unpacked image made read-only, removed (made writable
 * first), and the SHA-256 of its listing (paths, modes, sizes, mtimes). */
int local_tree_seal(const char *root);
int local_tree_remove(const char *path);
int local_tree_digest(const char *root, char out[65]);
int local_write_atomic(const char *path, const void *data, size_t len);
/* The whole of a regular file (NUL-terminated) of at most max bytes; -1
 * with errno otherwise (EFBIG: larger, EINVAL: not a regular file).  The
 * open never blocks (a FIFO is refused) and no more than max + 1 bytes
 * are read. */
int local_read_file(const char *path, size_t max, char **data, size_t *len);
/* The largest bucket object read whole (OBJECT_GET: the manifest, a run's
 * results file): the limit of the core's manifest. */
#define LOCAL_OBJECT_MAX ((size_t)64 << 20)
int local_copy_file(const char *src, const char *dst);
/* An executable regular file named name found on PATH (malloc'd) or NULL. */
char *local_which(const char *name);

/* ---- local-bucket.c -------------------------------------------------------------- */

/* NULL when key is a valid object key, else why not. */
const char *local_key_problem(const char *key);
int local_object_put(void *self, const char *key, const void *data, size_t len,
                     const char *content_type);
int local_object_get(void *self, const char *key, hypertest_buffer *out);
int local_object_url(void *self, const char *key, hypertest_buffer *url);
int local_object_list(void *self, const char *prefix, hypertest_params *objects);
int local_artifacts_store(void *self, const char *prefix, const char *dir);
/* Read this process's umask once and keep it in p (a zygote does, before
 * it forks: each child would otherwise read /proc/self/status again). */
void local_umask_remember(local_provider *p);
/* local-provision.c: plugin ABI 1.3 */
int local_provision_plan(void *self, hypertest_buffer *out);
int local_provision_apply(void *self, hypertest_buffer *out);
int local_resources_destroy(void *self, unsigned flags, hypertest_buffer *out);

/* ---- local-image.c -------------------------------------------------------------- */

/* The hex part of "algo:hex", or NULL when digest is not of that form. */
const char *local_digest_hex(const char *digest);
/* Entrypoint, Cmd, Env and WorkingDir of the image image_digest in the
 * layout at imageDir, as {"Entrypoint": [...], ...} (each only when set);
 * blobs checked against their descriptors.  0, or the error set. */
int local_image_config_read(local_provider *p, const char *image_digest, json_t **out);
/* That object (as kept in functionDir/current) into ic; 0, or -1 when it
 * is malformed (errno EINVAL) or memory ran out (ENOMEM). */
int local_image_config_parse(json_t *j, local_image_config *ic);
/* Free a NULL-terminated vector of strings. */
void local_strv_free(char **v);

/* ---- local-deploy.c ------------------------------------------------------------- */

int local_function_update(void *self, const char *image_ref, const char *image_digest);
int local_function_digest(void *self, hypertest_buffer *digest);
/* Load functionDir/current into p->dep (once); HYPERTEST_ERR_NOT_FOUND when
 * nothing was deployed.  With isolation "image" the unpacked root also gets
 * the mount points its sandbox needs (/dev, /proc, /tmp, the working
 * directory, /etc/resolv.conf and /etc/hosts) where it lacks them. */
int local_deployed_load(local_provider *p);
/* The same without waiting for the image's lock: *busy set (and 0
 * returned, nothing loaded) while another process holds it exclusively (a
 * deploy unpacking or repairing that image). */
int local_deployed_load_try(local_provider *p, int *busy);
/* local_deployed_load_try with the message of an error in *error instead
 * of the core's. */
int local_deployed_load_try_err(local_provider *p, int *busy, char **error);
void local_deployed_clear(local_deployed *d);
/* Where the sandbox of isolation "image" mounts the bucket and the
 * invocation's scratch directory (on its private /tmp). */
#define LOCAL_IMAGE_BUCKET "/tmp/.hypertest-bucket"
#define LOCAL_IMAGE_SCRATCH "/tmp/.hypertest-scratch"
/* The working directory of an image without WorkingDir (Lambda's task root). */
#define LOCAL_IMAGE_WORKDIR "/var/task"

/* ---- local-scratch.c ------------------------------------------------------------ */

/* functionDir/scratch/<name>, ready (malloc'd); NULL with the error set.
 * With deferred and take (through the zygote), nothing is made or renamed
 * here: *take is the pooled directory for the zygote to rename to it
 * (malloc'd), else NULL and *deferred set: the zygote makes it
 * (local_scratch_make). */
char *local_scratch_acquire(local_provider *p, const char *name, int *deferred, char **take);
/* Make the scratch directory dir (as local_scratch_acquire would) linked
 * to the entries of task_root: 0, or -1 with errno and what failed in
 * *failed (malloc'd; NULL when memory ran out).  For the zygote: no
 * provider state. */
int local_scratch_make(const char *dir, const char *task_root, char **failed);
/* Rename dir out of the way of a new invocation of the same name while its
 * process dies (takes dir, returns its new path). */
char *local_scratch_set_aside(local_provider *p, char *dir);
/* Give a directory back once its process is gone (takes dir); cleaned:
 * the process brought it back to its fresh state (local_scratch_clean). */
void local_scratch_release(local_provider *p, char *dir, int cleaned);
/* Bring the scratch directory open as dfd back to its fresh state: our
 * links to the task root's nentries entries stay, .hypertest/home and tmp
 * are emptied, anything else goes.  0 when it can be reused (-1: a link
 * of ours changed or is gone, or something could not be removed).
 * Relative to descriptors: for the zygote too. */
int local_scratch_clean(int dfd, const char *task_root, size_t nentries);
void local_scratch_shutdown(local_provider *p);
/* A short name for the TMPDIR of scratch directory dir (a link to its
 * .hypertest/tmp, made here with make, else by the zygote), or NULL (error
 * set); local_scratch_tmpdir_drop removes it and frees it. */
char *local_scratch_tmpdir(local_provider *p, const char *dir, int make);
void local_scratch_tmpdir_drop(local_provider *p, char *link);

/* ---- local-spawn.c --------------------------------------------------------------- */

typedef struct local_spawn {
	const char *path;   /* program to execute */
	char *const *argv;
	char *const *envp;
	const char *cwd;    /* NULL: stay */
	int fd_in, fd_out, fd_err; /* the child's ends; each > 2 */
	uint64_t memory_mb;        /* RLIMIT_AS in the child; 0: none */
	int fd_keep;               /* > 2: passed on as descriptor 3; 0: none */
	int lambda_limits;         /* RLIMIT_NOFILE and RLIMIT_NPROC 1,024, as in Lambda */
	int cgroup_fd;             /* > 2: a cgroup.procs the child enters first; 0: none */
} local_spawn;

/* Start a process in a process group of its own that dies with the calling
 * thread.  Returns the pid, or -1 with errno (also when exec failed). */
pid_t local_spawn_process(const local_spawn *s);
/* The pipes of a function process, [0] stdin, [1] stdout, [2] stderr:
 * O_CLOEXEC, the child's ends above 2, the parent's ends non-blocking.
 * 0, or -1 with errno (nothing left open). */
int local_pipes_open(int pipes[3][2]);
void local_pipes_close(int pipes[3][2]); /* what is still open; sets -1 */
/* Start the function program for one invocation in scratch with TMPDIR
 * tmpdir (under bwrap with isolation "bubblewrap"; with "image" the image's
 * entry point under bwrap, program and tmpdir unused); closes the child's
 * ends of pipes on success.  Returns the pid, or -1 with the error set. */
pid_t local_start_function(local_provider *p, const char *program, const char *scratch,
                           const char *tmpdir, int pipes[3][2]);
/* The core's HYPERTEST_CORE_FUNCTION_MODULES, or NULL: the function
 * program's HYPERTEST_PLUGIN_MODULES. */
const char *local_function_modules(local_provider *p);
/* environ with NAME=VALUE pairs set (names, values: n each; a NULL value
 * leaves the variable as it is).  The first *owned strings are allocated,
 * the others are environ's own. */
char **local_env_build(const char *const *names, const char *const *values, size_t n,
                       size_t *owned);
void local_env_free(char **v, size_t owned);

/* ---- local-zygote.c ------------------------------------------------------------------ */

/* The environment variable that makes SERVE a zygote. */
#define LOCAL_ZYGOTE_ENV "HYPERTEST_LOCAL_ZYGOTE_FD"

enum local_zmsg_type {
	LOCAL_ZMSG_READY = 1,   /* the zygote is ready for requests */
	LOCAL_ZMSG_STARTED = 2, /* pid: the child of a request */
	LOCAL_ZMSG_FAILED = 3,  /* value: errno of fork() for a request */
	LOCAL_ZMSG_EXITED = 4   /* pid ended with wait status value */
};

typedef struct local_zmsg {
	int type;
	local_proc *proc; /* the invocation (NULL for READY) */
	pid_t pid;
	int value;
	int64_t cpu_ms, maxrss_kb; /* EXITED: the child's rusage */
	int cleaned;               /* EXITED: its scratch directory is ready for the pool */
} local_zmsg;

/* 1 when the invocations of p go through the zygote (started on the first
 * call), 0 when they are started with exec (bubblewrap, no zygote, or it
 * failed: then a warning was logged once). */
int local_zygote_usable(local_provider *p);
/* Ask the zygote to start pr in scratch (made by it first with
 * make_scratch: local_scratch_make; renamed from the pooled directory take
 * by it, when not NULL; cleaned by it once the child is gone when the pool
 * is in use: local_scratch_clean), TMPDIR tmpdir, with the child's ends of pipes
 * (closed here, set to -1, in every case); *token names pr in the
 * zygote's messages until local_zygote_forget.  0, or an error code with
 * the error set; the invocation then did not start. */
int local_zygote_request(local_provider *p, local_proc *pr, const char *id, const char *scratch,
                         int make_scratch, const char *take, const char *tmpdir, int pipes[3][2],
                         uint64_t *token);
/* An epoll event of one of the zygote's descriptors (w->kind). */
void local_zygote_event(local_provider *p, const local_watch *w, uint32_t events);
/* The next message of the zygote, waiting up to wait_ms for one: 1 got
 * one, 0 none, -1 the zygote is gone (*why, malloc'd, says how; it was
 * reaped, and is not used any more: a warning was logged). */
int local_zygote_receive(local_provider *p, local_zmsg *m, int wait_ms, char **why);
/* Forget an invocation (its child was reaped, or the zygote is gone). */
void local_zygote_forget(local_provider *p, uint64_t token);
/* Every invocation the zygote knows, in no order: *n of them (malloc'd). */
local_proc **local_zygote_procs(local_provider *p, size_t *n);
/* Forget the requests not sent yet (their children never start); returns
 * how many. */
size_t local_zygote_drop_unsent(local_provider *p);
/* Close the socket, so that the zygote exits, reap it and free all. */
void local_zygote_stop(local_provider *p);
/* Function side: serve as a zygote on socket sock. */
int local_zygote_serve(local_provider *p, hypertest_function *fn, int sock);

/* ---- local-invoke.c --------------------------------------------------------------- */

int local_invoke_init(local_provider *p);
/* Kill and reap everything still running (destroy). */
void local_invoke_shutdown(local_provider *p);
int local_invoke_start(void *self, hypertest_invocation *inv, const char *payload, size_t len);
int local_invoke_wait(void *self, int timeout_ms);
void local_invoke_cancel(void *self);

/* ---- local-lambda.c, local-lambda-sandbox.c, local-lambda-serve.c ------------------- */

/* Isolation "lambda": the invocations go to sandboxes that take them from
 * a Runtime API served here (the orchestrator's side). */
int local_lambda_invoke_start(local_provider *p, hypertest_invocation *inv, const char *payload,
                              size_t len);
int local_lambda_invoke_wait(local_provider *p, int timeout_ms);
void local_lambda_invoke_cancel(local_provider *p);
void local_lambda_shutdown(local_provider *p);
/* Start one sandbox whose Runtime API is api ("127.0.0.1:PORT"), its
 * stdout and stderr to log_fd (> 2), memoryMB as a cgroup v2 limit where
 * the machine delegates one (its cgroup in *cg, to be ended with
 * local_cgroup_box_end once the sandbox is reaped; cg->dir NULL: none),
 * RLIMIT_AS otherwise.  The pid, or -1 with the error set. */
pid_t local_lambda_sandbox_start(local_provider *p, const char *api, int log_fd,
                                 local_cgroup_box *cg);
/* How memoryMB is enforced: "cgroup v2 (DIR)" or "RLIMIT_AS (why)", into
 * buf. */
const char *local_lambda_memory_method(char *buf, size_t size);
/* SERVE with option lambdaApi, outside a sandbox: Lambda's Invoke API for
 * the deployed image on p->lambda_api, until killed (an error code). */
int local_lambda_api_serve(local_provider *p);
/* functionImage: the digest of p->fn_ref (default "latest") in the layout
 * p->fn_layout, into digest (72 bytes); 0 or an error code. */
int local_lambda_function_image(local_provider *p, char digest[72]);
/* Function side: serve the Runtime API at api (AWS_LAMBDA_RUNTIME_API). */
int local_lambda_serve(local_provider *p, hypertest_function *fn, const char *api);

/* Lambda's uid and gid in its sandboxes (sbx_user1051). */
#define LOCAL_LAMBDA_UID "993"
#define LOCAL_LAMBDA_GID "990"

#endif /* HT_PROVIDER_LOCAL_H */
