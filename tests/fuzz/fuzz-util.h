/*
 * fuzz-util.h - small helpers the fuzz targets share: a scratch directory
 * per process, and writing an input to a file there.
 */
#ifndef HT_FUZZ_UTIL_H
#define HT_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>

/* A directory of this process's own, made at the first call (under TMPDIR
 * or /tmp); aborts when it cannot be made. */
const char *fz_scratch(void);
/* name inside the scratch directory (static buffer, one at a time). */
const char *fz_path(const char *name);
/* Write data to path (replaced); aborts on failure. */
void fz_write(const char *path, const uint8_t *data, size_t len);
/* Remove path and everything under it, whatever the modes; aborts on
 * failure (an input that leaves something undeletable is a finding). */
void fz_rm_rf(const char *path);
/* A NUL-terminated copy of data (malloc'd); aborts when out of memory. */
char *fz_strndup(const uint8_t *data, size_t len);
/* Split data at the first "\n----\n" after *pos: the next piece, and *pos
 * past the separator (or at len). */
void fz_piece(const uint8_t *data, size_t len, size_t *pos, const uint8_t **piece,
              size_t *piece_len);

#endif /* HT_FUZZ_UTIL_H */
