/*
 * local-zygote.h - the messages between the orchestrator and the zygote
 * (local-zygote.c describes them), for both sides.
 */
#ifndef HT_PROVIDER_LOCAL_ZYGOTE_H
#define HT_PROVIDER_LOCAL_ZYGOTE_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define ZYG_MAGIC 0x48545a31u /* "HTZ1" */
#define ZYG_REQUEST 16
#define ZYG_MAX_REQUEST 65536 /* bytes of one request */
#define ZYG_READY_MS 30000    /* how long the zygote may take to load */

struct zyg_reply {
	uint32_t magic;
	uint32_t type;
	uint64_t token;
	int32_t pid;
	int32_t value;
	int64_t cpu_ms;    /* EXITED: user + system CPU of the child */
	int64_t maxrss_kb; /* EXITED: its peak resident memory */
	uint32_t cleaned;  /* EXITED: its scratch directory is ready for the pool */
	uint32_t unused;
};

struct zyg_request {
	uint32_t magic;
	uint32_t type;
	uint64_t token;
	uint64_t memory_mb;
	uint32_t nstrings;
	uint32_t flags;    /* ZYG_*_SCRATCH */
	uint32_t nentries; /* ZYG_CLEAN_SCRATCH: the task root's entries */
	uint32_t unused;
};

/* What the zygote does with a child's scratch directory.  The strings
 * after the environment, in this order: the task root (with any of these
 * flags), the pooled directory to take (ZYG_TAKE_SCRATCH), the TMPDIR link
 * (ZYG_LINK_TMPDIR).
 *   MAKE   make it before the fork, linked to the entries of the task root;
 *   TAKE   rename the pooled directory to it before the fork (make it as
 *          with MAKE when that fails: another orchestrator took it);
 *   CLEAN  once the child and what it left in its group are gone, bring
 *          the directory (open since the fork, wherever it was renamed
 *          since) back to its fresh state (local_scratch_clean); EXITED
 *          then says whether that worked (cleaned);
 *   LINK   link the TMPDIR name to its .hypertest/tmp before the fork, and
 *          remove the link once the child is gone (before EXITED). */
#define ZYG_MAKE_SCRATCH 1u
#define ZYG_TAKE_SCRATCH 2u
#define ZYG_CLEAN_SCRATCH 4u
#define ZYG_LINK_TMPDIR 8u

/* mh for one datagram in iov with room for descriptors in ctl */
static inline void zyg_msghdr(struct msghdr *mh, struct iovec *iov, void *ctl, size_t ctl_len)
{
	memset(mh, 0, sizeof *mh);
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	mh->msg_control = ctl;
	mh->msg_controllen = ctl_len;
}

#endif
