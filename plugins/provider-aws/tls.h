/*
 * tls.h - the aws provider's TLS settings, shared by every HTTP client of
 * one provider instance: the CA bundle (chosen once, with where it came
 * from), one certificate store parsed from it once and installed in every
 * connection's SSL_CTX, one libcurl share (TLS sessions, DNS) for the
 * libcurl handles, and the sessions kept for the builtin transport, which
 * also keeps those of libcurl's connections: the invoke, S3 and ECR paths
 * resume the sessions libcurl negotiated.
 * Certificate verification is never turned off.
 */
#ifndef HT_PROVIDER_AWS_TLS_H
#define HT_PROVIDER_AWS_TLS_H

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "sigv4.h"

typedef struct aws_tls aws_tls;

/* Where the CA bundle comes from, in this order: the option caBundle
 * (option, may be NULL), AWS_CA_BUNDLE, the profile's ca_bundle
 * (profile_value from profile_source, may be NULL), HYPERTEST_CA_BUNDLE,
 * then libcurl's default (its CA file, else its CA directory, else
 * OpenSSL's default paths).  A file named by the first four must be
 * readable: else NULL, and *err names the file and its source
 * (HYPERTEST_ERR_CONFIG); NULL with *err NULL: out of memory. */
aws_tls *aws_tls_new(const char *option, const char *profile_value, const char *profile_source,
                     char **err);
/* The same without option and profile, for clients that may never speak
 * HTTPS (the function side's Runtime API): an unreadable bundle fails the
 * first HTTPS connection instead, naming it. */
aws_tls *aws_tls_new_default(char **err);
/* Another reference (each aws_http holds one). */
aws_tls *aws_tls_ref(aws_tls *t);
void aws_tls_unref(aws_tls *t);

/* Set the CA options, the certificate store and the share on an easy
 * handle (after curl_easy_reset). */
void aws_tls_setup(aws_tls *t, CURL *easy);

/* Free the TLS buffers of the easy handle's connection if they hold
 * nothing (SSL_free_buffers; the next read allocates them again).  After
 * the server's TLS 1.3 session tickets, which arrive once the request is
 * out, OpenSSL keeps a 17 KB read buffer that SSL_MODE_RELEASE_BUFFERS
 * does not release: with thousands of connections waiting for their
 * answers, the largest share of the memory.  Nothing with a libcurl on
 * another TLS library or OpenSSL, nor with an OpenSSL whose
 * SSL_free_buffers may touch freed memory (CVE-2024-4741: before 3.0.14,
 * 3.1.6, 3.2.2, 3.3.1). */
void aws_tls_trim(aws_tls *t, CURL *easy);

/* The CA bundle (a file, or a directory when ca_is_dir; NULL: OpenSSL's
 * default paths) and where it came from: "option caBundle",
 * "AWS_CA_BUNDLE", "/root/.aws/config [profile dev]", "HYPERTEST_CA_BUNDLE",
 * "libcurl's default". */
const char *aws_tls_ca(const aws_tls *t, int *ca_is_dir);
const char *aws_tls_ca_source(const aws_tls *t);
/* How many times the certificate store was built (1 after the first
 * HTTPS connection, and it stays 1). */
unsigned aws_tls_store_loads(aws_tls *t);
/* Is libcurl built on the OpenSSL this code uses (same major version)?
 * Only then may its SSL_CTX be handed our certificate store. */
int aws_tls_curl_has_our_openssl(void);
/* Why the store could not be built (after CURLE_SSL_CACERT_BADFILE). */
void aws_tls_load_error(aws_tls *t, char *buf, size_t size);

/* The builtin transport (http-conn.c): one SSL_CTX for all its
 * connections, made on the first call: the shared store, peer
 * verification, released buffers, ALPN http/1.1, and the sessions of new
 * connections kept (one per "host:port", the SSL's app data, which must
 * outlive the SSL).  Borrowed (lives as long as t).  NULL with why set
 * when the store cannot be built. */
SSL_CTX *aws_tls_ctx(aws_tls *t, char *why, size_t size);
/* A copy of the kept session for key ("host:port"), or NULL. */
SSL_SESSION *aws_tls_session(aws_tls *t, const char *key);
/* May SSL_free_buffers be called (see aws_tls_trim)? */
int aws_tls_can_free_buffers(const aws_tls *t);

#endif /* HT_PROVIDER_AWS_TLS_H */
