/*
 * oci_layout.h - the on-disk OCI image layout: the content-addressed blob
 * store (blobs/sha256/<hex>), the "oci-layout" marker file and index.json
 * with its "org.opencontainers.image.ref.name" tags.  Every blob read is
 * checked against its sha256 digest.
 */
#ifndef HT_OCI_LAYOUT_H
#define HT_OCI_LAYOUT_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "util.h"

#define HT_OCI_REF_ANNOTATION "org.opencontainers.image.ref.name"

/* Media types. */
#define HT_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define HT_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define HT_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define HT_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define HT_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define HT_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define HT_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define HT_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* Whether digest is "sha256:" followed by 64 lowercase hex digits (the only
 * algorithm supported; anything else could also escape the blob store). */
int ht_oci_digest_valid(const char *digest);

/* "dir/blobs/sha256/<hex>" (malloc'd), or NULL for an invalid digest. */
char *ht_oci_blob_path(const char *dir, const char *digest);

/* Create dir, blobs/sha256/, the oci-layout file ({"imageLayoutVersion":
 * "1.0.0"}) and an empty index.json when they are missing.  An existing
 * oci-layout file with another version is HYPERTEST_ERR_IMAGE. */
int ht_oci_layout_init(const char *dir, ht_err *err);

/* 1 when the blob is present in the layout at dir, 0 otherwise (its content
 * is not verified here). */
int ht_oci_blob_exists(const char *dir, const char *digest);

/* Store data; digest receives its "sha256:<hex>".  An existing blob is
 * kept (same digest, same content). */
int ht_oci_blob_put(const char *dir, const void *data, size_t len, char digest[80], ht_err *err);

/* Store a copy of the file at src.  When expected is not NULL the copy must
 * hash to it (HYPERTEST_ERR_DIGEST otherwise, nothing stored).  digest (may
 * be NULL) receives the content's digest, *size (may be NULL) its size. */
int ht_oci_blob_put_file(const char *dir, const char *src, const char *expected,
                         char digest[80], size_t *size, ht_err *err);

/* Move a file that already lives on dir's file system (a temporary file
 * beside the blob store) into the store under digest, which the caller
 * computed while writing it. */
int ht_oci_blob_put_rename(const char *dir, const char *tmp_path, const char *digest,
                           ht_err *err);

/* Copy a blob from the layout src_dir into dst_dir, verifying its digest
 * (and its size when size >= 0).  Nothing is copied when dst_dir has it. */
int ht_oci_blob_copy(const char *src_dir, const char *dst_dir, const char *digest,
                     long long size, ht_err *err);

/* The limits on documents read whole, from a layout or a registry: an
 * image manifest or index, and an image configuration. */
#define HT_OCI_MANIFEST_MAX ((size_t)4 << 20)
#define HT_OCI_CONFIG_MAX ((size_t)64 << 20)
/* The same as ht_oci_blob_read with a cap of max bytes ("PATH: blob D is
 * larger than CAP, the limit for WHAT"). */
int ht_oci_blob_read_max(const char *dir, const char *digest, long long size, size_t max,
                         const char *what, char **data, size_t *len, ht_err *err);

/* Read a whole blob (NUL-terminated) and verify its digest, and its size
 * when size >= 0.  Errors: HYPERTEST_ERR_NOT_FOUND (missing),
 * HYPERTEST_ERR_DIGEST (expected and actual digest), HYPERTEST_ERR_IMAGE
 * (bad digest or size), HYPERTEST_ERR_IO. */
int ht_oci_blob_read(const char *dir, const char *digest, long long size, char **data,
                     size_t *len, ht_err *err);

/* Streaming read of a blob: the digest is checked when the end is reached
 * (ht_oci_blob_reader_finish reads what is left and checks). */
typedef struct ht_oci_blob_reader ht_oci_blob_reader;
int ht_oci_blob_open(const char *dir, const char *digest, long long size,
                     ht_oci_blob_reader **out, ht_err *err);
/* Bytes read (0 at the end, after the digest was found right), or -1 with
 * err set (I/O error, or HYPERTEST_ERR_DIGEST at the end). */
ssize_t ht_oci_blob_reader_read(ht_oci_blob_reader *r, void *buf, size_t n, ht_err *err);
int ht_oci_blob_reader_finish(ht_oci_blob_reader *r, ht_err *err);
void ht_oci_blob_reader_close(ht_oci_blob_reader *r);

/* index.json: read (HYPERTEST_ERR_IMAGE when malformed; a missing file is
 * HYPERTEST_ERR_NOT_FOUND), write atomically with sorted keys. */
int ht_oci_index_read(const char *dir, json_t **index, ht_err *err);
int ht_oci_index_write(const char *dir, json_t *index, ht_err *err);
/* Replace every descriptor tagged ref in index->manifests by desc (a new
 * reference is taken; desc gets the ref annotation), keeping the others. */
int ht_oci_index_set_ref(json_t *index, const char *ref, json_t *desc, ht_err *err);
/* The ref annotation of a descriptor, or NULL. */
const char *ht_oci_desc_ref(json_t *desc);

/* Compact JSON with sorted keys (the form digests are taken of). */
char *ht_oci_json_dump(json_t *j);

#endif /* HT_OCI_LAYOUT_H */
