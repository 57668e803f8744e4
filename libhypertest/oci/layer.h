/*
 * layer.h - the content of one new image layer, collected before it is
 * written as a reproducible gzip-compressed tar (entries sorted, fixed
 * times, owner 0:0, normalised modes).
 */
#ifndef HT_LAYER_H
#define HT_LAYER_H

#include <stddef.h>

#include "util.h"

typedef struct ht_layer ht_layer;

ht_layer *ht_layer_new(void);
void ht_layer_free(ht_layer *lb);

/* Add a file or a directory (recursively; symbolic links inside it are
 * followed) found at source_path, at image_path in the layer (absolute, or
 * relative to the image's working directory). */
int ht_layer_add_path(ht_layer *lb, const char *source_path, const char *image_path,
                      ht_err *err);
/* Leave the file or directory at source_path (absolute, normalised) out of
 * every later ht_layer_add_path, wherever it is met in a walk. */
int ht_layer_skip_source(ht_layer *lb, const char *source_path, ht_err *err);
/* Add a file with the given content and mode. */
int ht_layer_add_data(ht_layer *lb, const char *image_path, const void *data, size_t len,
                      unsigned mode, ht_err *err);
/* Image settings carried with the layer: "env" (NAME=VALUE, may repeat, a
 * later NAME replaces an earlier one), "workdir", "entrypoint" and "cmd"
 * (JSON array text), "label" (KEY=VALUE), "comment" (the history entry's
 * comment).  As in docker build, a new entrypoint without a new cmd drops
 * the base's Cmd.  Relative image paths of the layer's files are taken
 * from the working directory this layer leaves (its own "workdir" if set,
 * else the base's, else "/"). */
int ht_layer_set(ht_layer *lb, const char *key, const char *value, ht_err *err);

/* Write the layer as tar+gzip to out_path (GNU tar format, see layer.c),
 * streaming.  Relative image paths are resolved against workdir (NULL:
 * "/"); a file where another entry needs a directory, or a path above the
 * root, is HYPERTEST_ERR_INVALID.  diff_id and digest receive
 * "sha256:<hex>" of the uncompressed and the compressed stream, *size the
 * compressed size. */
int ht_layer_write(ht_layer *lb, const char *workdir, const char *out_path, char diff_id[80],
                   char digest[80], size_t *size, ht_err *err);

/* The layer writer's version: this file's format revision, libarchive's
 * and zlib's versions, and HYPERTEST_LAYER_WRITER_SALT from the
 * environment when set (for tests).  A cache key never matches across a
 * change of it. */
const char *ht_layer_writer_version(void);

/* The cache key of the layer ht_layer_write(lb, workdir, ...) would write
 * now, "sha256:<hex>" of: the writer's version, the compression settings,
 * workdir, and for each item in order its image path and kind, its data
 * (items from memory), or (files) its source path, the source's mode,
 * size, mtime and ctime (with nanoseconds), inode and device, and the
 * target of a symbolic link.  A change of content, mode or name changes
 * the key as long as it changes size, mtime or ctime.  *recent is set
 * when an input was modified less than a second before the key was
 * taken: such a key must not be recorded, since a rewrite of the same
 * size within the file system's timestamp granularity would not change
 * it.  An input that cannot be examined is an error (the caller then
 * writes the layer, which reports it). */
int ht_layer_cache_key(const ht_layer *lb, const char *workdir, char key[80], int *recent,
                       ht_err *err);

/* Read access for ht_image_append_layer. */
size_t ht_layer_setting_count(const ht_layer *lb);
const char *ht_layer_setting_key(const ht_layer *lb, size_t i);
const char *ht_layer_setting_value(const ht_layer *lb, size_t i);

#endif /* HT_LAYER_H */
