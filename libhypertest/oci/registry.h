/*
 * registry.h - a client of the OCI distribution API (registry HTTP API v2)
 * over libcurl: image references with Docker Hub defaults, manifests and
 * blobs fetched with their digests verified, blob uploads (POST, PATCH,
 * PUT) with cross-repository mounts, manifest pushes, and authentication
 * (none, Basic, and Bearer tokens from the registry's challenge, cached per
 * scope until they expire).
 *
 * A client may be used from several threads at once; connections, DNS and
 * TLS sessions are shared between its requests.
 */
#ifndef HT_REGISTRY_H
#define HT_REGISTRY_H

#include <stdatomic.h>
#include <stddef.h>

#include "util.h"

/* ---- references ------------------------------------------------------------- */

typedef struct ht_image_ref {
	char *registry;   /* "host[:port]"; Docker Hub is "registry-1.docker.io" */
	char *repository; /* "library/alpine" */
	char *tag;        /* "latest" when neither tag nor digest was given */
	char *digest;     /* "sha256:<hex>" or NULL */
} ht_image_ref;

/* Parse "[registry/]name[:tag][@sha256:hex]".  The first component is a
 * registry when it has a '.' or a ':' or is "localhost"; otherwise the
 * registry is Docker Hub (docker.io and index.docker.io mean it too), where
 * a one-component name is under "library/".  HYPERTEST_ERR_INVALID with
 * what is wrong. */
int ht_image_ref_parse(const char *text, ht_image_ref *out, ht_err *err);
void ht_image_ref_free(ht_image_ref *ref);

/* ---- client ------------------------------------------------------------------ */

typedef struct ht_registry ht_registry;

ht_registry *ht_registry_new(ht_err *err);
/* Reference counting: images read from a registry keep their client. */
ht_registry *ht_registry_ref(ht_registry *reg);
void ht_registry_unref(ht_registry *reg);
/* A flag that, once non-zero (set by a signal handler or another thread
 * through hypertest_cancel), ends every request of the client within about a
 * second, the one under way included: HYPERTEST_ERR_CANCELLED naming the
 * registry, method and path.  NULL: never cancelled.  The flag must
 * outlive the client's requests. */
void ht_registry_set_cancel(ht_registry *reg, const atomic_int *flag);

/* Credentials for a registry host: sent as Basic when it asks for Basic,
 * and to its token service when it asks for a Bearer token. */
int ht_registry_set_credentials(ht_registry *reg, const char *registry, const char *user,
                                const char *password, ht_err *err);
/* Talk plain HTTP to registry (default: only for localhost, 127.0.0.0/8
 * and [::1]). */
int ht_registry_set_plain_http(ht_registry *reg, const char *registry, int plain, ht_err *err);

/* GET a manifest by tag or digest, asking for OCI and Docker schema 2
 * manifests and indexes.  *body is NUL-terminated; *media_type (malloc'd)
 * comes from Content-Type; digest receives the body's digest, which must
 * equal reference when that is a digest and the Docker-Content-Digest
 * header when there is one (HYPERTEST_ERR_DIGEST otherwise). */
int ht_registry_get_manifest(ht_registry *reg, const char *registry, const char *repository,
                             const char *reference, char **body, size_t *len, char **media_type,
                             char digest[80], ht_err *err);

/* A small blob (a config) into memory, verified (size too when >= 0). */
int ht_registry_get_blob_data(ht_registry *reg, const char *registry, const char *repository,
                              const char *digest, long long size, char **data, size_t *len,
                              ht_err *err);
/* A blob into the blob store of the OCI layout at layout_dir (which must
 * exist), streamed to disk and verified before it is put in place. */
int ht_registry_get_blob(ht_registry *reg, const char *registry, const char *repository,
                         const char *digest, long long size, const char *layout_dir,
                         ht_err *err);

/* HEAD a blob: *exists 1 or 0. */
int ht_registry_blob_exists(ht_registry *reg, const char *registry, const char *repository,
                            const char *digest, int *exists, ht_err *err);

/* Where an upload's bytes come from: memory, or a file. */
typedef struct ht_blob_source {
	const void *data; /* or NULL */
	size_t len;
	const char *path; /* when data is NULL */
} ht_blob_source;

/* Push a blob unless the repository has it (*uploaded, may be NULL: 1 when
 * bytes were sent).  When mount_from names another repository of the same
 * registry, a cross-repository mount is tried first; src may then be NULL,
 * and when the registry answers with an upload session instead,
 * HYPERTEST_ERR_NOT_FOUND tells the caller to call again with a source. */
int ht_registry_push_blob(ht_registry *reg, const char *registry, const char *repository,
                          const char *digest, const ht_blob_source *src, const char *mount_from,
                          int *uploaded, ht_err *err);

/* PUT a manifest under reference (a tag or its digest); digest receives
 * the Docker-Content-Digest the registry answered (checked against the
 * body's own digest). */
int ht_registry_put_manifest(ht_registry *reg, const char *registry, const char *repository,
                             const char *reference, const char *media_type, const char *body,
                             size_t len, char digest[80], ht_err *err);

#endif /* HT_REGISTRY_H */
