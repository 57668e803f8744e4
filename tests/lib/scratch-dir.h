/*
 * scratch-dir.h - a scratch directory for the test programs that work on
 * files (check_dirhash, check_elfdeps): made by a fixture, removed by its
 * teardown, with paths below it and files written there.
 */
#ifndef HT_TESTS_SCRATCH_DIR_H
#define HT_TESTS_SCRATCH_DIR_H

#include <stddef.h>
#include <sys/types.h>

/* $TMPDIR/<program>.XXXXXX, while a test runs */
extern char tmp_root[4096];

/* Fixtures: make tmp_root (aborts when it cannot), remove it. */
void tmp_setup(void);
void tmp_teardown(void);
/* tmp_root/<printf>, in one of 32 rotating buffers: a result stays valid
 * for the next 31 calls. */
char *tpath(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Write len bytes to path with mode (a Check assertion when it fails). */
void write_bytes(const char *path, const void *data, size_t len, mode_t mode);

#endif
