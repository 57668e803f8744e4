/*
 * image_read.c - a base image from an OCI image layout or from a registry
 * (registry.c): the reference found, an index resolved to the platform
 * asked for (indexes within indexes to a depth of MAX_INDEX_DEPTH), the
 * manifest and config read by their descriptors and kept byte for byte.
 * The layers' blobs are not read here: each layer records where its blob
 * is, and image.c reads, copies or mounts it when the image is written or
 * pushed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "image.h"
#include "image_int.h"
#include "oci_layout.h"
#include "registry.h"

#define MAX_INDEX_DEPTH 4

/* ---- reading a layout ----------------------------------------------------------- */

static int is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, HT_MT_OCI_INDEX) || !strcmp(mt, HT_MT_DOCKER_LIST));
}

static int is_manifest_type(const char *mt)
{
	return mt && (!strcmp(mt, HT_MT_OCI_MANIFEST) || !strcmp(mt, HT_MT_DOCKER_MANIFEST));
}

/* How well a descriptor's platform fits: 0 no, 1 variant unknown, 2 exact. */
static int platform_score(json_t *desc, const char *os, const char *arch, const char *variant)
{
	json_t *p = json_object_get(desc, "platform");
	const char *dos = json_string_value(json_object_get(p, "os"));
	const char *darch = json_string_value(json_object_get(p, "architecture"));
	const char *dvar = json_string_value(json_object_get(p, "variant"));
	if (!dos || !darch || strcmp(dos, os) != 0 || strcmp(darch, arch) != 0)
		return 0;
	if (!variant)
		return dvar ? 1 : 2;
	if (!dvar)
		return 1;
	return strcmp(dvar, variant) == 0 ? 2 : 0;
}

/* The best descriptor of list for the platform, or NULL. */
static json_t *pick_platform(json_t *list, const char *os, const char *arch, const char *variant)
{
	json_t *best = NULL;
	int best_score = 0;
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *d = json_array_get(list, i);
		int s = platform_score(d, os, arch, variant);
		if (s > best_score) {
			best = d;
			best_score = s;
		}
	}
	return best;
}

/* Where an image is read from, and which one is wanted. */
struct want {
	const char *where; /* for messages: the layout, or "registry/repository" */
	const char *dir;   /* an OCI layout, or */
	ht_registry *reg;  /* a registry's repository */
	const char *registry, *repository;
	const char *ref;
	char *os, *arch, *variant;
	int explicit_platform;
};

/* A manifest or index named by desc, its digest (and size) verified. */
static int fetch_manifest(const struct want *w, json_t *desc, char **raw, size_t *len,
                          ht_err *err)
{
	const char *digest = json_string_value(json_object_get(desc, "digest"));
	long long size = ht_image_desc_size(desc);
	if (w->dir)
		return ht_oci_blob_read_max(w->dir, digest, size, HT_OCI_MANIFEST_MAX,
		                            "an image manifest or index", raw, len, err);
	char *mt = NULL;
	char got[80];
	int rc = ht_registry_get_manifest(w->reg, w->registry, w->repository, digest, raw, len, &mt,
	                                  got, err);
	free(mt);
	if (!rc && size >= 0 && (long long)*len != size) {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: manifest %s has %zu bytes, descriptor says %lld",
		                w->where, digest, *len, size);
		free(*raw);
		*raw = NULL;
	}
	return rc;
}

static int fetch_blob(const struct want *w, const char *digest, long long size, char **raw,
                      size_t *len, ht_err *err)
{
	if (w->dir)
		return ht_oci_blob_read(w->dir, digest, size, raw, len, err);
	return ht_registry_get_blob_data(w->reg, w->registry, w->repository, digest, size, raw, len,
	                                 err);
}

static int load_manifest(const struct want *w, json_t *desc, int depth, ht_image **out,
                         ht_err *err);

static int check_desc(const struct want *w, json_t *desc, const char *what, ht_err *err)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	if (!ht_oci_digest_valid(d))
		return ht_err_set(err, HYPERTEST_ERR_IMAGE,
		                  "%s: %s descriptor has an invalid or unsupported digest '%s'", w->dir,
		                  what, d ? d : "(none)");
	json_t *s = json_object_get(desc, "size");
	if (s && (!json_is_integer(s) || json_integer_value(s) < 0))
		return ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: %s %s: invalid size", w->where, what, d);
	return 0;
}

static int build_from_manifest(const struct want *w, const char *mdigest, const char *mt,
                               json_t *m, char *raw, size_t raw_len, ht_image **out,
                               ht_err *err)
{
	const char *dir = w->where;
	if (json_integer_value(json_object_get(m, "schemaVersion")) != 2) {
		free(raw);
		return ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: manifest %s: schemaVersion must be 2", dir,
		                  mdigest);
	}
	json_t *cdesc = json_object_get(m, "config");
	json_t *layers = json_object_get(m, "layers");
	int rc = 0;
	if (!json_is_object(cdesc) || !json_is_array(layers))
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: manifest %s: no config or layers", dir,
		                mdigest);
	if (!rc)
		rc = check_desc(w, cdesc, "config", err);
	for (size_t i = 0; !rc && i < json_array_size(layers); i++) {
		json_t *l = json_array_get(layers, i);
		if (!json_is_string(json_object_get(l, "mediaType")) || ht_image_desc_size(l) < 0)
			rc = ht_err_set(err, HYPERTEST_ERR_IMAGE,
			                "%s: manifest %s: layer %zu lacks mediaType or size", dir, mdigest, i);
		else
			rc = check_desc(w, l, "layer", err);
	}
	if (rc) {
		free(raw);
		return rc;
	}
	ht_image *img = ht_image_alloc();
	if (!img) {
		free(raw);
		return ht_image_nomem(err);
	}
	img->manifest_raw = raw;
	img->manifest_len = raw_len;
	img->manifest_mt = ht_strdup(mt);
	img->docker = strcmp(mt, HT_MT_DOCKER_MANIFEST) == 0;
	const char *cmt = json_string_value(json_object_get(cdesc, "mediaType"));
	img->config_mt = ht_strdup(cmt ? cmt : img->docker ? HT_MT_DOCKER_CONFIG : HT_MT_OCI_CONFIG);
	if (!img->manifest_mt || !img->config_mt) {
		rc = ht_image_nomem(err);
		goto fail;
	}
	const char *cdigest = json_string_value(json_object_get(cdesc, "digest"));
	rc = fetch_blob(w, cdigest, ht_image_desc_size(cdesc), &img->config_raw, &img->config_len, err);
	if (rc) {
		ht_err_prefix(err, "config of manifest %s", mdigest);
		goto fail;
	}
	json_error_t je;
	img->config = json_loadb(img->config_raw, img->config_len, 0, &je);
	json_t *diff_ids = json_object_get(json_object_get(img->config, "rootfs"), "diff_ids");
	if (!json_is_object(img->config)) {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: config %s: %s", dir, cdigest,
		                img->config ? "not an object" : je.text);
		goto fail;
	}
	if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers)) {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE,
		                "%s: config %s: rootfs.diff_ids does not match the %zu layers of manifest "
		                "%s",
		                dir, cdigest, json_array_size(layers), mdigest);
		goto fail;
	}
	const char *cos = json_string_value(json_object_get(img->config, "os"));
	const char *carch = json_string_value(json_object_get(img->config, "architecture"));
	const char *cvar = json_string_value(json_object_get(img->config, "variant"));
	if (w->explicit_platform && cos && carch &&
	    (strcmp(cos, w->os) != 0 || strcmp(carch, w->arch) != 0)) {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: image %s is %s/%s, not the %s/%s asked for",
		                dir, mdigest, cos, carch, w->os, w->arch);
		goto fail;
	}
	img->os = ht_strdup(cos ? cos : w->os);
	img->arch = ht_strdup(carch ? carch : w->arch);
	img->variant = ht_strdup(cvar ? cvar : w->variant);
	json_decref(img->layers);
	img->layers = json_deep_copy(layers);
	if (!img->os || !img->arch || !img->layers) {
		rc = ht_image_nomem(err);
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(layers) && !rc; i++)
		rc = ht_image_push_src(img, w->dir, w->reg, w->registry, w->repository, err);
	if (rc)
		goto fail;
	*out = img;
	return 0;
fail:
	ht_image_free(img);
	return rc;
}

static int handle_document(const struct want *w, const char *digest, const char *mt_hint,
                           char *raw, size_t len, int depth, ht_image **out, ht_err *err);

static int load_manifest(const struct want *w, json_t *desc, int depth, ht_image **out,
                         ht_err *err)
{
	int rc = check_desc(w, desc, "manifest", err);
	if (rc)
		return rc;
	char *raw = NULL;
	size_t len = 0;
	if ((rc = fetch_manifest(w, desc, &raw, &len, err)) != 0)
		return rc;
	return handle_document(w, json_string_value(json_object_get(desc, "digest")),
	                       json_string_value(json_object_get(desc, "mediaType")), raw, len, depth,
	                       out, err);
}

/* A manifest or an index (resolved to the platform's manifest); takes raw. */
static int handle_document(const struct want *w, const char *digest, const char *mt_hint,
                           char *raw, size_t len, int depth, ht_image **out, ht_err *err)
{
	int rc = 0;
	json_error_t je;
	json_t *m = json_loadb(raw, len, 0, &je);
	if (!json_is_object(m)) {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: manifest %s: %s", w->where, digest,
		                m ? "not an object" : je.text);
		json_decref(m);
		free(raw);
		return rc;
	}
	const char *mt = is_index_type(mt_hint) || is_manifest_type(mt_hint) ? mt_hint : NULL;
	if (!mt)
		mt = json_string_value(json_object_get(m, "mediaType"));
	if (!mt) /* both are optional in OCI: go by the shape */
		mt = json_is_array(json_object_get(m, "manifests")) ? HT_MT_OCI_INDEX
		     : json_is_array(json_object_get(m, "layers"))  ? HT_MT_OCI_MANIFEST
		                                                    : "(none)";
	if (is_index_type(mt)) {
		json_t *pick = pick_platform(json_object_get(m, "manifests"), w->os, w->arch, w->variant);
		if (depth >= MAX_INDEX_DEPTH)
			rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: index %s: indexes nested too deep",
			                w->where, digest);
		else if (!pick)
			rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND, "%s: index %s has no image for %s/%s%s%s",
			                w->where, digest, w->os, w->arch, w->variant ? "/" : "",
			                w->variant ? w->variant : "");
		else
			rc = load_manifest(w, pick, depth + 1, out, err);
		free(raw);
	} else if (is_manifest_type(mt)) {
		rc = build_from_manifest(w, digest, mt, m, raw, len, out, err);
	} else {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: manifest %s: unsupported media type %s",
		                w->where, digest, mt);
		free(raw);
	}
	json_decref(m);
	return rc;
}

/* The descriptor of index.json tagged ref (see image.h). */
static int find_ref(const struct want *w, json_t *index, json_t **desc, ht_err *err)
{
	json_t *list = json_object_get(index, "manifests");
	size_t n = json_array_size(list);
	const char *ref = w->ref;
	if (!ref && n == 1) {
		*desc = json_array_get(list, 0);
		return 0;
	}
	const char *tag = ref ? ref : "latest";
	json_t *matches = json_array();
	if (!matches)
		return ht_image_nomem(err);
	for (size_t i = 0; i < n; i++) {
		json_t *d = json_array_get(list, i);
		const char *r = ht_oci_desc_ref(d);
		if (r && strcmp(r, tag) == 0)
			json_array_append(matches, d);
	}
	int rc = 0;
	size_t nm = json_array_size(matches);
	if (nm == 1) {
		*desc = json_array_get(matches, 0);
	} else if (nm > 1) {
		/* several platforms under one tag */
		*desc = pick_platform(matches, w->os, w->arch, w->variant);
		if (!*desc)
			rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND, "%s: no image tagged '%s' is for %s/%s",
			                w->where, tag, w->os, w->arch);
	} else if (ref) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND, "%s: no image tagged '%s' in index.json",
		                w->where, ref);
	} else {
		rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND,
		                "%s: %zu images in index.json and none tagged 'latest': name one", w->where,
		                n);
	}
	json_decref(matches); /* *desc stays alive in index */
	return rc;
}

int ht_image_from_layout(const char *dir, const char *ref, const char *platform,
                         ht_image **out, ht_err *err)
{
	*out = NULL;
	struct want w = {.where = dir, .dir = dir, .ref = ref, .explicit_platform = platform != NULL};
	int rc = ht_image_parse_platform(platform, &w.os, &w.arch, &w.variant, err);
	if (rc)
		return rc;
	json_t *index = NULL;
	if ((rc = ht_oci_index_read(dir, &index, err)) == 0) {
		json_t *desc = NULL;
		if ((rc = find_ref(&w, index, &desc, err)) == 0) {
			rc = load_manifest(&w, desc, 0, out, err);
			if (rc && ref)
				ht_err_prefix(err, "image '%s'", ref);
		}
	}
	json_decref(index);
	free(w.os);
	free(w.arch);
	free(w.variant);
	return rc;
}

int ht_image_from_registry(ht_registry *reg, const char *ref, const char *platform,
                           ht_image **out, ht_err *err)
{
	*out = NULL;
	ht_image_ref r;
	int rc = ht_image_ref_parse(ref, &r, err);
	if (rc)
		return rc;
	char *where = ht_asprintf("%s/%s", r.registry, r.repository);
	struct want w = {.where = where, .reg = reg, .registry = r.registry,
	                 .repository = r.repository, .ref = ref, .explicit_platform = platform != NULL};
	rc = where ? ht_image_parse_platform(platform, &w.os, &w.arch, &w.variant, err) : ht_image_nomem(err);
	char *raw = NULL, *mt = NULL;
	size_t len = 0;
	char digest[80];
	if (!rc)
		rc = ht_registry_get_manifest(reg, r.registry, r.repository, r.digest ? r.digest : r.tag,
		                              &raw, &len, &mt, digest, err);
	if (!rc) {
		rc = handle_document(&w, digest, mt, raw, len, 0, out, err);
		if (rc)
			ht_err_prefix(err, "image '%s'", ref);
	}
	free(mt);
	free(where);
	free(w.os);
	free(w.arch);
	free(w.variant);
	ht_image_ref_free(&r);
	return rc;
}
