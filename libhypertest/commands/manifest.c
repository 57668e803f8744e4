/*
 * manifest.c - the build manifest stored in the bucket:
 * {"imageDigest": "sha256:<hex>", "testDirHash": "<hex>",
 *  "invokePayloadContexts": [ {...}, ... ]}
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

char *ht_manifest_dump(const char *image_digest, const char *test_dir_hash, json_t *contexts)
{
	json_t *m = json_object();
	char *text;

	if (!m)
		return NULL;
	json_object_set_new(m, "imageDigest", json_string(image_digest));
	json_object_set_new(m, "testDirHash", json_string(test_dir_hash));
	json_object_set(m, "invokePayloadContexts", contexts);
	text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(m);
	return text;
}

static int is_hex(const char *s, size_t n)
{
	size_t i;
	if (strlen(s) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int ht_manifest_parse(const char *text, size_t len, const char *origin, ht_manifest *m,
                      ht_err *err)
{
	json_error_t jerr;
	json_t *doc, *digest, *hash, *contexts;
	size_t i;

	memset(m, 0, sizeof *m);
	if (len > HT_MANIFEST_MAX) {
		char cap[32];
		ht_size_text(HT_MANIFEST_MAX, cap);
		return ht_err_set(err, HYPERTEST_ERR_MANIFEST,
		                  "%s: the manifest has %zu bytes, more than %s, the limit for a "
		                  "manifest",
		                  origin, len, cap);
	}
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return ht_err_set(err, HYPERTEST_ERR_MANIFEST,
		                  "%s:%d:%d: the manifest is not valid JSON: %s", origin, jerr.line,
		                  jerr.column, jerr.text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return ht_err_set(err, HYPERTEST_ERR_MANIFEST, "%s: the manifest is not a JSON object",
		                  origin);
	}
	digest = json_object_get(doc, "imageDigest");
	hash = json_object_get(doc, "testDirHash");
	contexts = json_object_get(doc, "invokePayloadContexts");
	if (!json_is_string(digest) || strncmp(json_string_value(digest), "sha256:", 7) != 0 ||
	    !is_hex(json_string_value(digest) + 7, 64)) {
		json_decref(doc);
		return ht_err_set(err, HYPERTEST_ERR_MANIFEST,
		                  "%s: key 'imageDigest': expected \"sha256:\" and 64 hex digits", origin);
	}
	if (!json_is_string(hash) || !is_hex(json_string_value(hash), 64)) {
		json_decref(doc);
		return ht_err_set(err, HYPERTEST_ERR_MANIFEST,
		                  "%s: key 'testDirHash': expected 64 lowercase hex digits", origin);
	}
	if (!json_is_array(contexts)) {
		json_decref(doc);
		return ht_err_set(err, HYPERTEST_ERR_MANIFEST,
		                  "%s: key 'invokePayloadContexts': expected an array", origin);
	}
	for (i = 0; i < json_array_size(contexts); i++) {
		if (!json_is_object(json_array_get(contexts, i))) {
			json_decref(doc);
			return ht_err_set(err, HYPERTEST_ERR_MANIFEST,
			                  "%s: key 'invokePayloadContexts[%zu]': expected an object", origin,
			                  i);
		}
	}
	m->image_digest = ht_strdup(json_string_value(digest));
	m->test_dir_hash = ht_strdup(json_string_value(hash));
	m->contexts = json_incref(contexts);
	json_decref(doc);
	if (!m->image_digest || !m->test_dir_hash) {
		ht_manifest_clear(m);
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	return HYPERTEST_OK;
}

void ht_manifest_clear(ht_manifest *m)
{
	free(m->image_digest);
	free(m->test_dir_hash);
	json_decref(m->contexts);
	memset(m, 0, sizeof *m);
}
