/*
 * hypertest/common.h - definitions shared by the embedding API and the
 * plugin ABI: error codes, log levels, test statuses.
 *
 * Every number in this file is permanent: a code is never renumbered and
 * never reused for another meaning.  New codes may be added in a minor
 * release.
 */
#ifndef HYPERTEST_COMMON_H
#define HYPERTEST_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define HYPERTEST_EXPORT __attribute__((visibility("default")))
#else
#define HYPERTEST_EXPORT
#endif

/* Error codes.  Functions return 0 (HYPERTEST_OK) or one of these. */
enum hypertest_error {
	HYPERTEST_OK = 0,
	HYPERTEST_ERR_NOMEM = 1,        /* out of memory */
	HYPERTEST_ERR_INVALID = 2,      /* invalid argument or state */
	HYPERTEST_ERR_CONFIG = 3,       /* configuration missing or invalid */
	HYPERTEST_ERR_PLUGIN = 4,       /* plugin not found, failed to load or failed */
	HYPERTEST_ERR_ABI = 5,          /* plugin built for an incompatible ABI */
	HYPERTEST_ERR_IO = 6,           /* file or process error */
	HYPERTEST_ERR_NOT_FOUND = 7,    /* object, file or test not found */
	HYPERTEST_ERR_MANIFEST = 8,     /* manifest missing or malformed */
	HYPERTEST_ERR_DRIFT = 9,        /* deployed tests differ (policy "error") */
	HYPERTEST_ERR_PROVIDER = 10,    /* cloud provider operation failed */
	HYPERTEST_ERR_RUNNER = 11,      /* test runner operation failed */
	HYPERTEST_ERR_HTTP = 12,        /* HTTP transport or status error */
	HYPERTEST_ERR_AUTH = 13,        /* credentials missing or refused */
	HYPERTEST_ERR_UNSUPPORTED = 14, /* operation not offered by a plugin */
	HYPERTEST_ERR_TIMEOUT = 15,     /* an operation took too long */
	HYPERTEST_ERR_CANCELLED = 16,   /* cancelled by the caller */
	HYPERTEST_ERR_RESPONSE = 17,    /* malformed function response */
	HYPERTEST_ERR_IMAGE = 18,       /* container image error */
	HYPERTEST_ERR_CHECK = 19,       /* a doctor check failed */
	HYPERTEST_ERR_EMPTY = 20,       /* nothing to do (no tests, no files) */
	HYPERTEST_ERR_DIGEST = 21       /* content digest mismatch */
	/* next: 22 */
};

/* Log levels, most severe first. */
enum hypertest_log_level {
	HYPERTEST_LOG_ERROR = 0,
	HYPERTEST_LOG_WARNING = 1,
	HYPERTEST_LOG_INFO = 2,
	HYPERTEST_LOG_DEBUG = 3
};

/* Status of one test. */
enum hypertest_status {
	HYPERTEST_STATUS_SUCCESS = 0,
	HYPERTEST_STATUS_FAILED = 1,
	HYPERTEST_STATUS_SKIPPED = 2
};

/* Outcome of one doctor check. */
enum hypertest_check_status {
	HYPERTEST_CHECK_OK = 0,
	HYPERTEST_CHECK_WARNING = 1,
	HYPERTEST_CHECK_FAILED = 2
};

/* Flags of hypertest_destroy() and HYPERTEST_PROVIDER_RESOURCES_DESTROY. */
enum hypertest_destroy_flag {
	HYPERTEST_DESTROY_LIST = 1u << 0, /* remove nothing: list what would go */
	HYPERTEST_DESTROY_FORCE = 1u << 1 /* empty a bucket that holds objects */
};

#ifdef __cplusplus
}
#endif

#endif /* HYPERTEST_COMMON_H */
