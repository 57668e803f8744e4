/*
 * fuzz-oci.c - the OCI image index, manifest and config parsers, reached
 * the way deploy reads a base image from a layout.  An input is three
 * pieces separated by "\n----\n": index.json, a manifest and a config.
 * The config is stored as a blob first; "@CONFIG@" and "@CONFIG_SIZE@" in
 * the manifest become its digest and size; then the manifest likewise for
 * "@MANIFEST@" and "@MANIFEST_SIZE@" in the index.  The image read is then
 * asked what deploy asks of it and written out as a layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "image.h"
#include "oci_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* text with each of name replaced by value (malloc'd). */
static char *replace(const uint8_t *text, size_t len, const char *name, const char *value,
                     size_t *out_len)
{
	size_t nl = strlen(name), vl = strlen(value), i, o = 0, count = 0;
	char *out;
	for (i = 0; i + nl <= len; i++)
		if (!memcmp(text + i, name, nl))
			count++, i += nl - 1;
	out = malloc(len + count * vl + 1);
	if (!out)
		abort();
	for (i = 0; i < len;) {
		if (i + nl <= len && !memcmp(text + i, name, nl)) {
			memcpy(out + o, value, vl);
			o += vl;
			i += nl;
		} else {
			out[o++] = (char)text[i++];
		}
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* Store blob and substitute its digest and size into text. */
static char *store_and_link(const char *layout, const uint8_t *blob, size_t blob_len,
                            const uint8_t *text, size_t text_len, const char *name,
                            size_t *out_len)
{
	char digest[80], size[32], sized_name[64];
	char *a, *b;
	size_t alen;
	ht_err err = {0};

	if (ht_oci_blob_put(layout, blob, blob_len, digest, &err))
		abort();
	snprintf(size, sizeof size, "%zu", blob_len);
	/* "@CONFIG@" -> "@CONFIG_SIZE@" */
	snprintf(sized_name, sizeof sized_name, "%.*s_SIZE@", (int)strlen(name) - 1, name);
	a = replace(text, text_len, sized_name, size, &alen);
	b = replace((const uint8_t *)a, alen, name, digest, out_len);
	free(a);
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *index, *manifest, *config;
	size_t index_len, manifest_len, config_len, pos = 0, m_len, i_len;
	char *m, *idx, *out_dir, digest[80];
	char *layout;
	ht_image *img = NULL;
	ht_err err = {0};

	fz_piece(data, len, &pos, &index, &index_len);
	fz_piece(data, len, &pos, &manifest, &manifest_len);
	fz_piece(data, len, &pos, &config, &config_len);

	layout = strdup(fz_path("layout"));
	out_dir = strdup(fz_path("out"));
	if (!layout || !out_dir)
		abort();
	fz_rm_rf(layout);
	fz_rm_rf(out_dir);
	if (ht_oci_layout_init(layout, &err))
		abort();
	m = store_and_link(layout, config, config_len, manifest, manifest_len, "@CONFIG@", &m_len);
	idx = store_and_link(layout, (const uint8_t *)m, m_len, index, index_len, "@MANIFEST@",
	                     &i_len);
	{
		char *p = malloc(strlen(layout) + sizeof "/index.json");
		if (!p)
			abort();
		sprintf(p, "%s/index.json", layout);
		fz_write(p, (const uint8_t *)idx, i_len);
		free(p);
	}
	if (ht_image_from_layout(layout, NULL, NULL, &img, &err) == 0) {
		(void)ht_image_architecture(img);
		(void)ht_image_layer_count(img);
		(void)ht_image_last_layer_digest(img);
		(void)ht_image_digest(img, digest, &err);
		(void)ht_image_write_layout(img, out_dir, "latest", digest, &err);
		ht_image_free(img);
	}
	free(m);
	free(idx);
	free(layout);
	free(out_dir);
	return 0;
}
