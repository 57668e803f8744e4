/*
 * s3.h - the S3 operations of the aws provider: PutObject, GetObject,
 * multipart upload of large files (streamed from disk part by part), and
 * uploading a directory's files below a prefix (artifacts).
 */
#ifndef HT_PROVIDER_AWS_S3_H
#define HT_PROVIDER_AWS_S3_H

#include <stddef.h>

#include "endpoints.h"
#include "http.h"

#define AWS_S3_MIN_PART_SIZE ((size_t)8 << 20)
/* The largest object GetObject reads whole (the manifest, a run's results
 * file): the limit of the core's manifest. */
#define AWS_S3_GET_MAX ((size_t)64 << 20)

typedef struct aws_s3 {
	aws_http *http;               /* borrowed */
	const aws_credentials *creds; /* borrowed */
	const aws_endpoint *endpoint; /* borrowed; the S3 endpoint */
	const char *bucket;           /* borrowed */
	size_t multipart_threshold;   /* files of at least this size go in parts; default 64 MiB */
	size_t part_size;             /* default and minimum 8 MiB */
	size_t list_page;             /* max-keys of a ListObjectsV2 page; 0: the server's (1000) */
	aws_http_sigv4 sig;           /* filled by aws_s3_init */
} aws_s3;

void aws_s3_init(aws_s3 *s, aws_http *http, const aws_credentials *creds,
                 const aws_endpoint *endpoint, const char *bucket);

/* "s3://bucket/key", for people (caller frees). */
char *aws_s3_object_url(const aws_s3 *s, const char *key);

/* PutObject; content_type may be NULL (application/octet-stream). */
int aws_s3_put(aws_s3 *s, const char *key, const void *data, size_t len,
               const char *content_type, char **err);
/* GetObject into out (appended).  HYPERTEST_ERR_NOT_FOUND for a missing
 * key; a missing bucket is HYPERTEST_ERR_PROVIDER. */
int aws_s3_get(aws_s3 *s, const char *key, htp_buf *out, char **err);
/* A file: PutObject below the threshold, else a multipart upload. */
int aws_s3_put_file(aws_s3 *s, const char *key, const char *path, const char *content_type,
                    char **err);
/* Multipart upload of a file, read part by part; aborted on failure. */
int aws_s3_put_file_multipart(aws_s3 *s, const char *key, const char *path,
                              const char *content_type, char **err);
/* Every regular file below dir (recursively; symbolic links are never
 * followed) to prefix/relative/path, content types from the extensions.
 * What cannot be stored (a link, a loop, a FIFO, a socket, a device, an
 * unreadable file, a failed upload) is passed to warn as "artifact REL: not
 * stored: why" and the upload goes on.  *count and *lost (may be NULL)
 * receive how many were stored and not stored.  HYPERTEST_ERR_IO only
 * when dir itself cannot be read. */
typedef void (*aws_s3_warn_fn)(void *ud, const char *msg);
int aws_s3_upload_dir(aws_s3 *s, const char *prefix, const char *dir, size_t *count,
                      size_t *lost, aws_s3_warn_fn warn, void *ud, char **err);

/* ListObjectsV2 below prefix, page after page: each object's key and
 * size to fn (a non-zero return stops with that code). */
typedef int (*aws_s3_list_fn)(void *ud, const char *key, long long size);
int aws_s3_list(aws_s3 *s, const char *prefix, aws_s3_list_fn fn, void *ud, char **err);

/* The content type for a file name ("application/octet-stream" if unknown). */
const char *aws_content_type(const char *name);

#endif /* HT_PROVIDER_AWS_S3_H */
