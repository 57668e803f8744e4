/*
 * quotas.c - Service Quotas (JSON 1.1, ServiceQuotasV20190624.*) for the
 * aws provider: GetServiceQuota of Lambda's concurrent executions.
 */
#include <stdlib.h>

#include "quotas.h"

int aws_quota_lambda_concurrency(aws_provider *p, double *value, char **err)
{
	json_t *doc = NULL, *v;
	int rc = aws_json_call(p, AWS_SVC_SERVICE_QUOTAS, "POST", "/",
	                       "ServiceQuotasV20190624.GetServiceQuota",
	                       "{\"ServiceCode\":\"lambda\",\"QuotaCode\":\"" AWS_QUOTA_LAMBDA_CONCURRENCY
	                       "\"}",
	                       "Service Quotas GetServiceQuota lambda/" AWS_QUOTA_LAMBDA_CONCURRENCY,
	                       &doc, NULL, err);
	if (rc)
		return rc;
	v = json_object_get(json_object_get(doc, "Quota"), "Value");
	if (!json_is_number(v))
		rc = aws_fail(err, HYPERTEST_ERR_PROVIDER,
		              "Service Quotas GetServiceQuota lambda/" AWS_QUOTA_LAMBDA_CONCURRENCY
		              ": no Quota.Value in the answer");
	else
		*value = json_number_value(v);
	json_decref(doc);
	return rc;
}
