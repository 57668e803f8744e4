/*
 * image.h - container images without a daemon: a base image pulled from an
 * OCI image layout or a registry (registry.h), new layers appended, the result
 * written to an OCI image layout (or pushed to a registry), and an image
 * unpacked into a directory.
 *
 * Formats: OCI image spec v1 (application/vnd.oci.image.manifest.v1+json,
 * index, config) and Docker schema 2 media types for manifests taken from a
 * base; the new manifest keeps the base's media type.
 */
#ifndef HT_IMAGE_H
#define HT_IMAGE_H

#include <stddef.h>

#include "layer.h"
#include "registry.h"
#include "util.h"

typedef struct ht_image ht_image;

/* An empty image (no base) for platform "os/arch[/variant]" (NULL:
 * linux/amd64). */
ht_image *ht_image_new(const char *platform, ht_err *err);
/* The image tagged ref (NULL: the only one, or "latest") in the OCI layout
 * at dir; an index is resolved to the manifest of platform.  Blobs are read
 * from dir when needed and their digests verified. */
int ht_image_from_layout(const char *dir, const char *ref, const char *platform,
                         ht_image **out, ht_err *err);
void ht_image_free(ht_image *img);

/* Append a layer built from lb: the gzip-compressed tar is written into the
 * blob store of the OCI layout at work_dir (created if missing); the config
 * gets its diff_id, a history entry, and lb's env, workdir, entrypoint, cmd
 * and labels.  Reproducible: the same content gives the same digests.
 *
 * work_dir/layer-cache.json maps the cache key of a layer's inputs
 * (ht_layer_cache_key) to the digests and size of the blob written for
 * them: when the key is there and the blob still is in work_dir, the layer
 * is not written again.  The file is replaced atomically and keeps the
 * last HT_LAYER_CACHE_MAX keys; an unreadable one is ignored. */
#define HT_LAYER_CACHE_MAX 32
int ht_image_append_layer(ht_image *img, ht_layer *lb, const char *work_dir, ht_err *err);
/* How many ht_image_append_layer calls wrote their layer, and how many
 * found it in the cache. */
size_t ht_image_layers_built(const ht_image *img);
size_t ht_image_layers_reused(const ht_image *img);

/* The image's architecture ("amd64", "arm64", ...): its config's, else the
 * platform it was made for. */
const char *ht_image_architecture(const ht_image *img);
/* How many layers the image has; how many of them the last
 * ht_image_push_registry sent (the others were there, or mounted). */
size_t ht_image_layer_count(const ht_image *img);
size_t ht_image_layers_uploaded(const ht_image *img);
/* The digest of the last layer ("sha256:<hex>"), or NULL without layers. */
const char *ht_image_last_layer_digest(const ht_image *img);

/* Write config and manifest, and copy every blob the layout at dir lacks
 * into it; tag the manifest as ref in index.json (replacing a previous
 * manifest of that tag).  *digest receives the manifest digest
 * ("sha256:<64 hex>"). */
int ht_image_write_layout(ht_image *img, const char *dir, const char *ref, char digest[80],
                          ht_err *err);
/* The manifest digest the image would have now (after the last append). */
int ht_image_digest(ht_image *img, char digest[80], ht_err *err);

/* Unpack the image tagged ref of the layout at dir into dest (created;
 * must be empty or missing), layer by layer, applying whiteouts. */
int ht_image_unpack_layout(const char *dir, const char *ref, const char *dest, ht_err *err);
/* Unpack img (a base and the layers appended to it) into dest the same
 * way.  An index is resolved to linux/amd64 by ht_image_unpack_layout; use
 * ht_image_from_layout and this for another platform. */
int ht_image_unpack(const ht_image *img, const char *dest, ht_err *err);

/* The image ref ("[registry/]name[:tag][@digest]", Docker Hub defaults)
 * from a registry; an index is resolved to platform (NULL: linux/amd64).
 * Manifest and config are fetched and verified now; layers stay in the
 * registry until something needs them (ht_image_write_layout fetches them,
 * ht_image_unpack wants a layout).  The image keeps a reference to reg. */
int ht_image_from_registry(ht_registry *reg, const char *ref, const char *platform,
                           ht_image **out, ht_err *err);

/* How many layers ht_image_push_registry sends at once. */
#define HT_IMAGE_PUSH_THREADS 4
/* Push img as ref: every blob the repository lacks (a layer of a base from
 * another repository of the same registry is mounted, one from another
 * registry copied through a temporary directory), the config, and the
 * manifest under ref's tag (or its digest).  *digest receives the
 * manifest digest.  Layers go up HT_IMAGE_PUSH_THREADS at a time. */
int ht_image_push_registry(ht_image *img, ht_registry *reg, const char *ref, char digest[80],
                           ht_err *err);

#endif /* HT_IMAGE_H */
