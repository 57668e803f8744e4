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
};

struct zyg_request {
	uint32_t magic;
	uint32_t type;
	uint64_t token;
	uint64_t memory_mb;
	uint32_t nstrings;
	uint32_t flags; /* ZYG_MAKE_SCRATCH */
};

/* The child makes its scratch directory first, linked to the entries of
 * the task root, the request's last string. */
#define ZYG_MAKE_SCRATCH 1u

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
