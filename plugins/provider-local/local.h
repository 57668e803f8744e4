/*
 * local.h - the "local" cloud provider: what its modules share.
 *
 *   local.c         registration, options, create/destroy, doctor, image
 *                   target, serve (the function side)
 *   local-fs.c      file helpers: paths, mkdir -p, rm -rf, atomic writes
 *   local-bucket.c  the bucket: objects and artifacts below bucketDir
 *   local-deploy.c  function update: unpacking the image, functionDir/current
 *   local-scratch.c the working directories of invocations, recycled
 *   local-spawn.c   starting one function process (vfork + exec)
 *   local-invoke.c  invocations in flight: one epoll loop, timeouts, cancel
 *
 * Everything here is internal to the module (built with hidden visibility).
 */
#ifndef HT_PROVIDER_LOCAL_H
#define HT_PROVIDER_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <hypertest/plugin.h>

#if defined(__GNUC__)
#define LOCAL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LOCAL_PRINTF(f, a)
#endif

enum local_isolation { LOCAL_ISOLATION_NONE = 0, LOCAL_ISOLATION_BWRAP = 1 };

/* The deployed function, read from functionDir/current. */
typedef struct local_deployed {
	char *digest;    /* "sha256:..." */
	char *root;      /* the unpacked image */
	char *task_root; /* root + /var/task */
	char *config;    /* task_root + /hypertest.config.json */
	char **entries;  /* top-level names of task_root */
	size_t nentries;
} local_deployed;

typedef struct local_proc local_proc;

typedef struct local_provider {
	hypertest_core *core;
	hypertest_upcalls up;
	char last_error[1024]; /* the detail of the last local_fail() */

	/* options, paths absolute */
	char *image_dir;
	char *base_layout, *base_ref; /* NULL without baseImage */
	char *bucket_dir;
	char *function_dir;
	double timeout_s;
	uint64_t memory_mb; /* 0: no limit */
	size_t max_response;
	int isolation;
	char *bwrap; /* bwrap's path (isolation "bubblewrap") */

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

	/* invocations (local-invoke.c) */
	int epfd;
	int use_pidfd;
	local_proc *run_head, *run_tail; /* running, in start (= deadline) order */
	local_proc *detached;            /* completed, waiting to be reaped */
	size_t nrunning;
	unsigned long seq;
	int cancel_pending;
} local_provider;

/* ---- local.c ------------------------------------------------------------------ */

/* Report an error through the core (and keep it in last_error); returns
 * code. */
int local_fail(local_provider *p, int code, const char *fmt, ...) LOCAL_PRINTF(3, 4);
void local_log(local_provider *p, int level, const char *fmt, ...) LOCAL_PRINTF(3, 4);
/* The function runtime program, resolved on PATH when it has no '/';
 * NULL with the error set when there is none. */
const char *local_program(local_provider *p);

/* ---- local-fs.c ----------------------------------------------------------------- */

char *local_strdup(const char *s);
char *local_asprintf(const char *fmt, ...) LOCAL_PRINTF(1, 2);
char *local_path_join(const char *dir, const char *name);
/* path if absolute, else base/path. */
char *local_abspath(const char *base, const char *path);
/* 0 or -1 with errno. */
int local_mkdir_p(const char *path);
int local_rm_rf(const char *path);
int local_rm_contents(const char *path); /* empty a directory, keep it */
int local_write_atomic(const char *path, const void *data, size_t len);
int local_read_file(const char *path, char **data, size_t *len);
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
int local_artifacts_store(void *self, const char *prefix, const char *dir);

/* ---- local-deploy.c ------------------------------------------------------------- */

int local_function_update(void *self, const char *image_ref, const char *image_digest);
int local_function_digest(void *self, hypertest_buffer *digest);
/* Load functionDir/current into p->dep (once); HYPERTEST_ERR_NOT_FOUND when
 * nothing was deployed. */
int local_deployed_load(local_provider *p);
void local_deployed_clear(local_deployed *d);

/* ---- local-scratch.c ------------------------------------------------------------ */

/* functionDir/scratch/<name>, ready (malloc'd); NULL with the error set. */
char *local_scratch_acquire(local_provider *p, const char *name);
/* Give a directory back once its process is gone (takes dir). */
void local_scratch_release(local_provider *p, char *dir);
void local_scratch_shutdown(local_provider *p);

/* ---- local-spawn.c --------------------------------------------------------------- */

typedef struct local_spawn {
	const char *path;   /* program to execute */
	char *const *argv;
	char *const *envp;
	const char *cwd;    /* NULL: stay */
	int fd_in, fd_out, fd_err; /* the child's ends; each > 2 */
	uint64_t memory_mb;        /* RLIMIT_AS in the child; 0: none */
} local_spawn;

/* Start a process in a process group of its own that dies with the calling
 * thread.  Returns the pid, or -1 with errno (also when exec failed). */
pid_t local_spawn_process(const local_spawn *s);
/* The pipes of a function process, [0] stdin, [1] stdout, [2] stderr:
 * O_CLOEXEC, the child's ends above 2, the parent's ends non-blocking.
 * 0, or -1 with errno (nothing left open). */
int local_pipes_open(int pipes[3][2]);
void local_pipes_close(int pipes[3][2]); /* what is still open; sets -1 */
/* Start the function program for one invocation in scratch (under bwrap
 * with isolation "bubblewrap"); closes the child's ends of pipes on
 * success.  Returns the pid, or -1 with the error set. */
pid_t local_start_function(local_provider *p, const char *program, const char *scratch,
                           int pipes[3][2]);
/* environ with NAME=VALUE pairs set (names, values: n each; a NULL value
 * leaves the variable as it is).  The first *owned strings are allocated,
 * the others are environ's own. */
char **local_env_build(const char *const *names, const char *const *values, size_t n,
                       size_t *owned);
void local_env_free(char **v, size_t owned);

/* ---- local-invoke.c --------------------------------------------------------------- */

int local_invoke_init(local_provider *p);
/* Kill and reap everything still running (destroy). */
void local_invoke_shutdown(local_provider *p);
int local_invoke_start(void *self, hypertest_invocation *inv, const char *payload, size_t len);
int local_invoke_wait(void *self, int timeout_ms);
void local_invoke_cancel(void *self);

#endif /* HT_PROVIDER_LOCAL_H */
