/*
 * local-cgroup.h - memoryMB as a cgroup v2 limit for the sandboxes of
 * isolation "lambda", where the machine delegates one (local-cgroup.c).
 *
 * Self-contained (libc and plugins/common only): the module is also the
 * convenience library provider-local/libhtlocal.la, which the tests of its
 * protocol link.
 */
#ifndef HT_PROVIDER_LOCAL_CGROUP_H
#define HT_PROVIDER_LOCAL_CGROUP_H

#include <stdatomic.h>
#include <stdint.h>

/* The environment variable naming a directory taken as this process's own
 * cgroup v2 instead of the one /proc/self/cgroup names (for tests). */
#define LOCAL_CGROUP_ENV "HYPERTEST_LOCAL_CGROUP"
/* pids.max of a sandbox, as Lambda's RLIMIT_NPROC. */
#define LOCAL_CGROUP_PIDS_MAX 1024

typedef struct local_cgroup {
	/* where the sandboxes' cgroups are made (memory, and pids when
	 * pids is set, enabled for its children); NULL when not usable */
	char *dir;
	char *reason; /* why not, when dir is NULL */
	int pids;     /* the pids controller too */
	atomic_ulong seq;
} local_cgroup;

/* The cgroup of one sandbox. */
typedef struct local_cgroup_box {
	char *dir;    /* NULL: none */
	int procs_fd; /* its cgroup.procs open for writing, or -1 */
} local_cgroup_box;

/* Find a delegated subtree from mountinfo (the path of a file in the form
 * of /proc/self/mountinfo: where cgroup2 is mounted) and proc_cgroup (of
 * /proc/self/cgroup: "0::/path", this process's cgroup), and prepare it
 * (local_cgroup_detect_in).  Sets cg->dir or cg->reason. */
void local_cgroup_detect(local_cgroup *cg, const char *mountinfo, const char *proc_cgroup);
/* The same with own, the directory of this process's cgroup, given. */
void local_cgroup_detect_in(local_cgroup *cg, const char *own);
void local_cgroup_clear(local_cgroup *cg);
/* This process's, detected once (LOCAL_CGROUP_ENV, else /proc/self): the
 * first call may move the process into a leaf cgroup (local-cgroup.c). */
local_cgroup *local_cgroup_system(void);

/* A new cgroup for a sandbox under cg->dir with memory.max memory_mb MiB
 * (memory.swap.max 0 and memory.oom.group 1 where the kernel has them),
 * pids.max LOCAL_CGROUP_PIDS_MAX when cg->pids, its cgroup.procs open.
 * 0, or -1 with the message in *err (nothing left behind). */
int local_cgroup_box_new(local_cgroup *cg, uint64_t memory_mb, local_cgroup_box *box,
                         char **err);
/* In the sandbox's first process, before it execs (async-signal-safe): put
 * the calling process into the cgroup whose cgroup.procs is open as fd.
 * 0, or -1 with errno. */
int local_cgroup_enter(int fd);
/* Close the descriptor of box's cgroup.procs (once its process is in). */
void local_cgroup_box_entered(local_cgroup_box *box);
/* The sandbox ended: *oom_kills from its memory.events, what is left in
 * it killed (cgroup.kill), the cgroup removed (retried briefly while
 * processes remain).  0, or -1 with the message in *err; box is cleared
 * in both cases. */
int local_cgroup_box_end(local_cgroup_box *box, uint64_t *oom_kills, char **err);

#endif /* HT_PROVIDER_LOCAL_CGROUP_H */
