/*
 * fuzz-response.c - the function response parser: an input is the body a
 * function answered for one test, turned into a result and then into a
 * results file.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	ht_test_result r;

	memset(&r, 0, sizeof r);
	strcpy(r.test_id, "00000000-0000-4000-8000-000000000000");
	ht_result_from_response(&r, (const char *)data, len, 64 * 1024);
	ht_test_result_clear(&r);
	return 0;
}
