/*
 * fuzz-manifest.c - the deployment manifest's parser: an input is the text
 * of a manifest as `invoke` reads it back.
 */
#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	ht_manifest m;
	ht_err err = {0};

	if (ht_manifest_parse((const char *)data, len, "manifest.json", &m, &err) == 0)
		ht_manifest_clear(&m);
	return 0;
}
