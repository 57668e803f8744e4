/*
 * history.c - how long each test took in earlier runs, kept in the
 * project's .hypertest/history.json, keyed by the SHA-256 of the test's
 * context (compact JSON, sorted keys); and the start order it gives.
 */
#define _GNU_SOURCE 1 /* qsort_r */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define HT_HISTORY_MAX 200000 /* entries kept; the oldest runs' go first */
/* The largest history.json read: 200,000 entries take about 17 MB. */
#define HT_HISTORY_MAX_BYTES ((size_t)64 << 20)

struct ht_history {
	char *path;
	json_t *durations; /* object: key -> ms */
};

int ht_history_key(json_t *context, char hex[65])
{
	char *text = json_dumps(context, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;
	if (!text)
		return HYPERTEST_ERR_NOMEM;
	rc = ht_sha256_hex(text, strlen(text), hex);
	free(text);
	return rc;
}

ht_history *ht_history_load(const char *path, ht_err *err)
{
	ht_history *hist = calloc(1, sizeof *hist);
	json_t *doc = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!hist)
		return NULL;
	hist->path = ht_strdup(path);
	/* a cache: unreadable or too large, it is started afresh (said in err) */
	rc = ht_read_file_max(path, HT_HISTORY_MAX_BYTES, "the run history", &text, &len, err);
	if (rc == HYPERTEST_OK)
		doc = json_loadb(text, len, 0, NULL);
	else if (rc == HYPERTEST_ERR_NOT_FOUND && err)
		ht_err_clear(err);
	free(text);
	if (json_is_object(doc) && json_is_object(json_object_get(doc, "durations")))
		hist->durations = json_incref(json_object_get(doc, "durations"));
	else
		hist->durations = json_object();
	json_decref(doc);
	return hist;
}

int64_t ht_history_get_key(const ht_history *hist, const char *key)
{
	json_t *v = hist && key[0] ? json_object_get(hist->durations, key) : NULL;
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

void ht_history_set_key(ht_history *hist, const char *key, int64_t ms)
{
	if (!hist || ms < 0 || !key[0])
		return;
	/* delete first so that the entry moves to the end: newest last */
	json_object_del(hist->durations, key);
	json_object_set_new(hist->durations, key, json_integer((json_int_t)ms));
}

int64_t ht_history_get(const ht_history *hist, json_t *context)
{
	char key[65];
	return ht_history_key(context, key) == HYPERTEST_OK ? ht_history_get_key(hist, key) : -1;
}

void ht_history_set(ht_history *hist, json_t *context, int64_t ms)
{
	char key[65];
	if (ht_history_key(context, key) == HYPERTEST_OK)
		ht_history_set_key(hist, key, ms);
}

int ht_history_save(ht_history *hist, ht_err *err)
{
	json_t *doc;
	char *text;
	int rc;

	while (json_object_size(hist->durations) > HT_HISTORY_MAX) {
		void *it = json_object_iter(hist->durations);
		json_object_del(hist->durations, json_object_iter_key(it));
	}
	doc = json_pack("{s:i, s:O}", "version", 1, "durations", hist->durations);
	text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(doc);
	if (!text)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = ht_write_file_atomic(hist->path, text, strlen(text), err);
	free(text);
	return rc;
}

void ht_history_free(ht_history *hist)
{
	if (!hist)
		return;
	free(hist->path);
	json_decref(hist->durations);
	free(hist);
}

static int by_duration_desc(const void *a, const void *b, void *arg)
{
	const int64_t *known = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	if (known[i] != known[j])
		return known[i] < known[j] ? 1 : -1;
	return i < j ? -1 : i > j; /* stable: manifest order */
}

void ht_schedule_order(const int64_t *known, size_t n, size_t *order)
{
	size_t i, k = 0, first_known;

	for (i = 0; i < n; i++)
		if (known[i] < 0)
			order[k++] = i;
	first_known = k;
	for (i = 0; i < n; i++)
		if (known[i] >= 0)
			order[k++] = i;
	qsort_r(order + first_known, n - first_known, sizeof *order, by_duration_desc,
	        (void *)known);
}
