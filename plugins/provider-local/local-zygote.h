/*
 * local-zygote.h - the messages between the orchestrator and the zygote
 * (local-zygote.c describes them), for both sides.
 */
#ifndef HT_PROVIDER_LOCAL_ZYGOTE_H
#define HT_PROVIDER_LOCAL_ZYGOTE_H

#include <stdint.h>

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
};

struct zyg_request {
	uint32_t magic;
	uint32_t type;
	uint64_t token;
	uint64_t memory_mb;
	uint32_t nstrings;
	uint32_t reserved;
};

#endif
