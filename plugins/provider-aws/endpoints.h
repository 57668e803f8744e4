/*
 * endpoints.h - where the aws provider sends each service's requests: the
 * standard regional endpoints, overridden by the plugin option "endpoints",
 * AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL (in that order), S3
 * path-style or virtual-hosted addressing, and the names to sign with.
 */
#ifndef HT_PROVIDER_AWS_ENDPOINTS_H
#define HT_PROVIDER_AWS_ENDPOINTS_H

#include <jansson.h>

#include "sigv4.h"

enum aws_service {
	AWS_SVC_S3 = 0,
	AWS_SVC_LAMBDA = 1,
	AWS_SVC_ECR = 2,
	AWS_SVC_SERVICE_QUOTAS = 3,
	AWS_SVC_IAM = 4, /* global: https://iam.amazonaws.com, signed for us-east-1 */
	AWS_SVC_COUNT = 5
};

typedef struct aws_endpoint {
	int service;              /* enum aws_service */
	char *url;                /* "https://lambda.eu-west-1.amazonaws.com", no trailing '/' */
	char *source;             /* "default", "option endpoints.s3", "environment (...)" */
	const char *signing_name; /* "s3", "lambda", "ecr", "servicequotas", "iam" */
	char *signing_region;
	int path_style;           /* S3: bucket in the path, not in the host name */
} aws_endpoint;

typedef struct aws_endpoints_options {
	const char *region;                   /* required */
	const char *overrides[AWS_SVC_COUNT]; /* from the option "endpoints", or NULL */
	int s3_force_path_style;              /* the option "s3ForcePathStyle" */
} aws_endpoints_options;

/* The option key of a service in "endpoints" ("s3", "lambda", "ecr",
 * "servicequotas", "iam") and the suffix of its AWS_ENDPOINT_URL_ variable. */
const char *aws_service_key(int service);
const char *aws_service_env(int service);

/* Read "endpoints" ({"s3": "http://127.0.0.1:4568", ...}) and
 * "s3ForcePathStyle" of the plugin options (strings stay owned by
 * options).  HYPERTEST_ERR_CONFIG naming the key on a wrong type, an
 * unknown service or a URL that is not http(s)://host[:port][/path]. */
int aws_endpoints_options_from_json(aws_endpoints_options *o, json_t *options, char **err);

/* Resolve one service.  Errors: HYPERTEST_ERR_CONFIG (bad URL, no region). */
int aws_endpoint_resolve(aws_endpoint *e, int service, const aws_endpoints_options *o,
                         char **err);
void aws_endpoint_free(aws_endpoint *e);

/* Check an endpoint URL: http or https, a host, an optional port and path. */
int aws_endpoint_url_valid(const char *url);

/* The URL of an S3 object (key may be NULL or "" for the bucket itself),
 * the key URI-encoded with '/' kept; query (encoded, may be NULL) is
 * appended after '?'.  NULL without memory. */
char *aws_s3_url(const aws_endpoint *e, const char *bucket, const char *key, const char *query);

#endif /* HT_PROVIDER_AWS_ENDPOINTS_H */
