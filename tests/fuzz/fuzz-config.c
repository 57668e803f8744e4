/*
 * fuzz-config.c - the configuration loader: an input is a
 * hypertest.config.json, loaded from a file as `hypertest --config` does,
 * then dumped and asked for each of its values.
 */
#include <stdlib.h>

#include "config.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	ht_config *cfg = ht_config_new();
	ht_err err = {0};
	const char *path = fz_path("hypertest.config.json");

	if (!cfg)
		return 0;
	fz_write(path, data, len);
	if (ht_config_load_file(cfg, path, &err) == 0) {
		free(ht_config_dump(cfg));
		free(ht_config_plugin_path(cfg, "/"));
		free(ht_config_plugin_options(cfg, "runner"));
		free(ht_config_plugin_options(cfg, "provider"));
		free(ht_config_get_json(cfg, "tests"));
		(void)ht_config_concurrency(cfg);
		(void)ht_config_drift_policy(cfg);
		(void)ht_config_str(cfg, "resultsFileName");
		(void)ht_config_plugin_name(cfg, "runner");
	}
	ht_config_free(cfg);
	return 0;
}
