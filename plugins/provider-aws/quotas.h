/*
 * quotas.h - Service Quotas for the aws provider: the account's Lambda
 * concurrent executions (quota code L-B99A9384), for doctor.
 */
#ifndef HT_PROVIDER_AWS_QUOTAS_H
#define HT_PROVIDER_AWS_QUOTAS_H

#include "options.h"

#define AWS_QUOTA_LAMBDA_CONCURRENCY "L-B99A9384"

/* GetServiceQuota(lambda, L-B99A9384): the value into *value. */
int aws_quota_lambda_concurrency(aws_provider *p, double *value, char **err);

#endif /* HT_PROVIDER_AWS_QUOTAS_H */
