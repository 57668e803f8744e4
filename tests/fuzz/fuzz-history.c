/*
 * fuzz-history.c - the run history: an input is the history file; it is
 * loaded, asked for a few contexts, updated, saved and loaded again, and
 * the durations it gives are put in schedule order.
 */
#include <jansson.h>
#include <stdlib.h>

#include "core.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *path = fz_path("history.json");
	json_t *ctx[3];
	int64_t known[3];
	size_t order[3], i;
	ht_history *h;
	ht_err err = {0};

	fz_write(path, data, len);
	h = ht_history_load(path, &err);
	if (!h)
		return 0;
	ctx[0] = json_pack("{s:s}", "file", "a.py");
	ctx[1] = json_pack("{s:s,s:i}", "grep", "x", "n", 1);
	ctx[2] = json_object();
	for (i = 0; i < 3; i++)
		known[i] = ctx[i] ? ht_history_get(h, ctx[i]) : -1;
	ht_schedule_order(known, 3, order);
	if (ctx[0])
		ht_history_set(h, ctx[0], 1234);
	(void)ht_history_save(h, &err);
	ht_history_free(h);
	h = ht_history_load(path, &err);
	if (h)
		ht_history_free(h);
	for (i = 0; i < 3; i++)
		json_decref(ctx[i]);
	return 0;
}
