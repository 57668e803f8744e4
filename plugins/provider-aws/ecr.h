/*
 * ecr.h - the ECR calls of the aws provider: GetAuthorizationToken (the
 * registry's basic-auth user and password) and BatchGetImage (the digest of
 * a tag), plus recognising an ECR registry host.
 */
#ifndef HT_PROVIDER_AWS_ECR_H
#define HT_PROVIDER_AWS_ECR_H

#include "options.h"

typedef struct aws_ecr_login {
	char *username;       /* "AWS" */
	char *password;       /* the token: a secret */
	char *proxy_endpoint; /* "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com" */
} aws_ecr_login;

/* GetAuthorizationToken, decoded. */
int aws_ecr_get_login(aws_provider *p, aws_ecr_login *out, char **err);
void aws_ecr_login_free(aws_ecr_login *l);

/* BatchGetImage: the digest ("sha256:...", caller frees) of repository:tag.
 * HYPERTEST_ERR_NOT_FOUND when there is no such image (or repository). */
int aws_ecr_tag_digest(aws_provider *p, const char *repository, const char *tag, char **digest,
                       char **err);

/* Is host "<12 digits>.dkr.ecr.<region>.amazonaws.com[.cn]"?  Fills
 * account[13] and region[64] (either may be NULL) when it is. */
int aws_ecr_host_parse(const char *host, char *account, char *region);

/* Decode standard base64 into a NUL-terminated string (caller frees). */
char *aws_base64_decode(const char *in, size_t *len);

#endif /* HT_PROVIDER_AWS_ECR_H */
