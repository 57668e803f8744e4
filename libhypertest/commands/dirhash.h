/*
 * dirhash.h - the test-directory hash of the manifest (DESIGN.md, "Test
 * directory hash"): the
 * same hex digest the TypeScript hypertest computes, bit for bit.
 */
#ifndef HT_DIRHASH_H
#define HT_DIRHASH_H

#include <stddef.h>

#include "util.h"

/* SHA-256 over every file below dir (symbolic links followed), in the
 * order of their relative paths sorted by UTF-16 code units; per file:
 * relative path (UTF-8, '/'), NUL, content decoded as Node's
 * Buffer.toString('utf8') does with CRLF turned into LF and re-encoded,
 * NUL.  HYPERTEST_ERR_EMPTY for a directory without files. */
int ht_dirhash(const char *dir, char hex[65], ht_err *err);

/* ht_dirhash leaving out the paths of skip (relative to dir, '/'-separated,
 * NULL-terminated; a directory's whole tree is left out). */
int ht_dirhash_skip(const char *dir, const char *const *skip, char hex[65], ht_err *err);

/* ht_dirhash_skip, remembered in cache_file (a JSON file, replaced
 * atomically; NULL: no cache) under dir with a key of the files hashed:
 * every file's relative path, mode, size, mtime and ctime (with
 * nanoseconds), inode and device.  While the key is the same, the files
 * are not read again; the hash is the one ht_dirhash_skip computes.  As
 * for layers (layer.h), a key taken within a second of a change of one of
 * the files is not recorded, nor one that changed while the files were
 * read.  A cache that cannot be read or written costs a hash, never an
 * error. */
int ht_dirhash_cached(const char *dir, const char *const *skip, const char *cache_file,
                      char hex[65], ht_err *err);

/* The hash deploy, invoke and doctor compare: dir (absolute) without the
 * project's own state when it lies inside dir: PROJECT/.hypertest, the
 * results file and the manifest (names relative to project_dir, or NULL).
 * The TypeScript hypertest hashes only the files whose names end in the
 * runner's test extensions, so these never counted there either.
 * cache_file: as for ht_dirhash_cached, or NULL. */
int ht_dirhash_project(const char *dir, const char *project_dir, const char *results,
                       const char *manifest, const char *cache_file, char hex[65], ht_err *err);

/* The content transform alone: decode UTF-8 like Node (each maximal invalid
 * subsequence becomes U+FFFD), CRLF -> LF, encode.  *out is malloc'd. */
int ht_node_utf8_normalize(const char *in, size_t len, char **out, size_t *out_len);

/* Compare two UTF-8 strings by UTF-16 code units (JavaScript's sort). */
int ht_utf16_strcmp(const char *a, const char *b);

#endif /* HT_DIRHASH_H */
