/*
 * image.c - container images without a daemon: read a base image from an
 * OCI image layout (resolving an index to one platform), append layers,
 * write config, manifest and blobs to a layout, and unpack an image into a
 * directory with OCI whiteouts.  JSON documents we create are serialised
 * compact with sorted keys so that their digests are stable; a base's
 * documents are kept byte for byte until something changes.  A base may
 * also come from a registry (registry.c): its layers are then fetched only
 * when they are needed, and mounted rather than copied when the image is
 * pushed to another repository of the same registry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "image.h"
#include "image_unpack.h"
#include "oci_layout.h"
#include "registry.h"

#define FIXED_TIME "1970-01-01T00:00:00Z"
#define MAX_INDEX_DEPTH 4

/* Where a blob can be read: an OCI layout, or a registry repository. */
struct source {
	char *dir;
	ht_registry *reg;
	char *registry, *repository;
};

struct ht_image {
	char *os, *arch, *variant;
	char *manifest_mt;  /* media type of the manifest */
	int docker;         /* Docker schema 2: new parts get Docker media types */
	json_t *config;     /* the config document */
	char *config_mt;    /* media type of the config blob */
	char *config_raw;   /* serialised config (the base's bytes while unchanged) */
	size_t config_len;
	int config_dirty;   /* config changed since config_raw */
	char *manifest_raw; /* the base's manifest bytes while nothing changed */
	size_t manifest_len;
	json_t *layers;     /* layer descriptors */
	size_t layers_uploaded; /* by the last ht_image_push_registry */
	struct source *src; /* per layer: where its blob is */
	size_t n_src, cap_src;
};

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* ---- platform ------------------------------------------------------------------ */

static int parse_platform(const char *platform, char **os, char **arch, char **variant,
                          ht_err *err)
{
	*os = *arch = *variant = NULL;
	const char *p = platform ? platform : "linux/amd64";
	const char *s1 = strchr(p, '/');
	const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
	if (!s1 || s1 == p || s1[1] == '/' || !s1[1] || (s2 && (!s2[1] || strchr(s2 + 1, '/'))))
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "platform '%s' is not os/architecture[/variant]", p);
	*os = strndup(p, (size_t)(s1 - p));
	*arch = s2 ? strndup(s1 + 1, (size_t)(s2 - s1 - 1)) : strdup(s1 + 1);
	*variant = s2 ? strdup(s2 + 1) : NULL;
	if (!*os || !*arch || (s2 && !*variant)) {
		free(*os);
		free(*arch);
		free(*variant);
		*os = *arch = *variant = NULL;
		return nomem(err);
	}
	return 0;
}

static ht_image *image_alloc(void)
{
	ht_image *img = calloc(1, sizeof *img);
	if (!img)
		return NULL;
	img->layers = json_array();
	if (!img->layers) {
		free(img);
		return NULL;
	}
	return img;
}

void ht_image_free(ht_image *img)
{
	if (!img)
		return;
	free(img->os);
	free(img->arch);
	free(img->variant);
	free(img->manifest_mt);
	json_decref(img->config);
	free(img->config_mt);
	free(img->config_raw);
	free(img->manifest_raw);
	json_decref(img->layers);
	for (size_t i = 0; i < img->n_src; i++) {
		free(img->src[i].dir);
		ht_registry_unref(img->src[i].reg);
		free(img->src[i].registry);
		free(img->src[i].repository);
	}
	free(img->src);
	free(img);
}

/* Record where the next layer's blob is: the layout dir, or reg's
 * repository. */
static int push_src(ht_image *img, const char *dir, ht_registry *reg, const char *registry,
                    const char *repository, ht_err *err)
{
	if (img->n_src == img->cap_src) {
		size_t cap = img->cap_src ? img->cap_src * 2 : 8;
		struct source *n = realloc(img->src, cap * sizeof *n);
		if (!n)
			return nomem(err);
		img->src = n;
		img->cap_src = cap;
	}
	struct source *s = &img->src[img->n_src];
	memset(s, 0, sizeof *s);
	s->dir = ht_strdup(dir);
	s->registry = ht_strdup(registry);
	s->repository = ht_strdup(repository);
	if ((dir && !s->dir) || (registry && !s->registry) || (repository && !s->repository)) {
		free(s->dir);
		free(s->registry);
		free(s->repository);
		return nomem(err);
	}
	s->reg = reg ? ht_registry_ref(reg) : NULL;
	img->n_src++;
	return 0;
}

static void pop_src(ht_image *img)
{
	struct source *s = &img->src[--img->n_src];
	free(s->dir);
	ht_registry_unref(s->reg);
	free(s->registry);
	free(s->repository);
}

ht_image *ht_image_new(const char *platform, ht_err *err)
{
	ht_image *img = image_alloc();
	if (!img) {
		nomem(err);
		return NULL;
	}
	if (parse_platform(platform, &img->os, &img->arch, &img->variant, err) != 0) {
		ht_image_free(img);
		return NULL;
	}
	img->config = json_pack("{s:s, s:s, s:{s:s, s:[]}}", "architecture", img->arch, "os", img->os,
	                        "rootfs", "type", "layers", "diff_ids");
	img->manifest_mt = ht_strdup(HT_MT_OCI_MANIFEST);
	img->config_mt = ht_strdup(HT_MT_OCI_CONFIG);
	if (!img->config || !img->manifest_mt || !img->config_mt ||
	    (img->variant && json_object_set_new(img->config, "variant", json_string(img->variant))))
	{
		nomem(err);
		ht_image_free(img);
		return NULL;
	}
	img->config_dirty = 1;
	return img;
}

/* ---- reading a layout ----------------------------------------------------------- */

static int is_index_type(const char *mt)
{
	return mt && (!strcmp(mt, HT_MT_OCI_INDEX) || !strcmp(mt, HT_MT_DOCKER_LIST));
}

static int is_manifest_type(const char *mt)
{
	return mt && (!strcmp(mt, HT_MT_OCI_MANIFEST) || !strcmp(mt, HT_MT_DOCKER_MANIFEST));
}

static long long desc_size(json_t *desc)
{
	json_t *s = json_object_get(desc, "size");
	return json_is_integer(s) ? (long long)json_integer_value(s) : -1;
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
	long long size = desc_size(desc);
	if (w->dir)
		return ht_oci_blob_read(w->dir, digest, size, raw, len, err);
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
		if (!json_is_string(json_object_get(l, "mediaType")) || desc_size(l) < 0)
			rc = ht_err_set(err, HYPERTEST_ERR_IMAGE,
			                "%s: manifest %s: layer %zu lacks mediaType or size", dir, mdigest, i);
		else
			rc = check_desc(w, l, "layer", err);
	}
	if (rc) {
		free(raw);
		return rc;
	}
	ht_image *img = image_alloc();
	if (!img) {
		free(raw);
		return nomem(err);
	}
	img->manifest_raw = raw;
	img->manifest_len = raw_len;
	img->manifest_mt = ht_strdup(mt);
	img->docker = strcmp(mt, HT_MT_DOCKER_MANIFEST) == 0;
	const char *cmt = json_string_value(json_object_get(cdesc, "mediaType"));
	img->config_mt = ht_strdup(cmt ? cmt : img->docker ? HT_MT_DOCKER_CONFIG : HT_MT_OCI_CONFIG);
	if (!img->manifest_mt || !img->config_mt) {
		rc = nomem(err);
		goto fail;
	}
	const char *cdigest = json_string_value(json_object_get(cdesc, "digest"));
	rc = fetch_blob(w, cdigest, desc_size(cdesc), &img->config_raw, &img->config_len, err);
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
		rc = nomem(err);
		goto fail;
	}
	for (size_t i = 0; i < json_array_size(layers) && !rc; i++)
		rc = push_src(img, w->dir, w->reg, w->registry, w->repository, err);
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
		return nomem(err);
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
	int rc = parse_platform(platform, &w.os, &w.arch, &w.variant, err);
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

/* ---- appending a layer ------------------------------------------------------------ */

/* Normalised absolute directory: dir resolved against base. */
static char *join_dir(const char *base, const char *dir)
{
	char *abs = ht_abspath(base && *base == '/' ? base : "/", dir);
	return abs;
}

static json_t *obj_child(json_t *parent, const char *key)
{
	json_t *o = json_object_get(parent, key);
	if (json_is_object(o))
		return o;
	o = json_object();
	if (!o || json_object_set_new(parent, key, o) != 0)
		return NULL;
	return o;
}

static int set_env(json_t *cc, const char *assign)
{
	json_t *env = json_object_get(cc, "Env");
	if (!json_is_array(env)) {
		env = json_array();
		if (!env || json_object_set_new(cc, "Env", env) != 0)
			return -1;
	}
	size_t nl = (size_t)(strchr(assign, '=') - assign);
	for (size_t i = 0; i < json_array_size(env); i++) {
		const char *e = json_string_value(json_array_get(env, i));
		if (e && strncmp(e, assign, nl) == 0 && (e[nl] == '=' || e[nl] == '\0'))
			return json_array_set_new(env, i, json_string(assign));
	}
	return json_array_append_new(env, json_string(assign));
}

/* Apply the layer's settings to config->config; *comment receives the
 * history comment. */
static int apply_settings(json_t *config, const ht_layer *lb, const char **comment, ht_err *err)
{
	json_t *cc = obj_child(config, "config");
	if (!cc)
		return nomem(err);
	int has_cmd = 0, has_entrypoint = 0;
	for (size_t i = 0; i < ht_layer_setting_count(lb); i++)
		if (!strcmp(ht_layer_setting_key(lb, i), "cmd"))
			has_cmd = 1;
	for (size_t i = 0; i < ht_layer_setting_count(lb); i++) {
		const char *k = ht_layer_setting_key(lb, i), *v = ht_layer_setting_value(lb, i);
		int r = 0;
		if (!strcmp(k, "env")) {
			r = set_env(cc, v);
		} else if (!strcmp(k, "workdir")) {
			char *wd = join_dir(json_string_value(json_object_get(cc, "WorkingDir")), v);
			r = wd ? json_object_set_new(cc, "WorkingDir", json_string(wd)) : -1;
			free(wd);
		} else if (!strcmp(k, "entrypoint") || !strcmp(k, "cmd")) {
			json_t *arr = json_loads(v, 0, NULL);
			r = arr ? json_object_set_new(cc, !strcmp(k, "cmd") ? "Cmd" : "Entrypoint", arr) : -1;
			has_entrypoint |= !strcmp(k, "entrypoint");
		} else if (!strcmp(k, "label")) {
			json_t *labels = obj_child(cc, "Labels");
			char *key = strndup(v, (size_t)(strchr(v, '=') - v));
			r = labels && key ? json_object_set_new(labels, key, json_string(strchr(v, '=') + 1))
			                  : -1;
			free(key);
		} else if (!strcmp(k, "comment")) {
			*comment = v;
		}
		if (r != 0)
			return ht_err_set(err, HYPERTEST_ERR_INVALID,
			                  "layer setting %s '%s' cannot go into the config (not UTF-8?)", k, v);
	}
	/* As docker build does: a new entrypoint drops a command that was set
	 * before it (by the base), unless the layer sets one too. */
	if (has_entrypoint && !has_cmd)
		json_object_del(cc, "Cmd");
	return 0;
}

static const char *current_workdir(const json_t *config)
{
	const char *wd =
	        json_string_value(json_object_get(json_object_get(config, "config"), "WorkingDir"));
	return wd && *wd ? wd : "/";
}

int ht_image_append_layer(ht_image *img, ht_layer *lb, const char *work_dir, ht_err *err)
{
	int rc = ht_oci_layout_init(work_dir, err);
	if (rc)
		return rc;
	json_t *config = json_deep_copy(img->config);
	if (!config)
		return nomem(err);
	const char *comment = "hypertest layer";
	if ((rc = apply_settings(config, lb, &comment, err)) != 0) {
		json_decref(config);
		return rc;
	}
	char uuid[37];
	char *tmp = NULL;
	if (ht_uuid_v4(uuid) != 0 || !(tmp = ht_asprintf("%s/blobs/sha256/.layer-%s", work_dir, uuid))) {
		json_decref(config);
		return nomem(err);
	}
	char diff_id[80], digest[80];
	size_t size = 0;
	/* relative paths of the layer land in the working directory it sets */
	rc = ht_layer_write(lb, current_workdir(config), tmp, diff_id, digest, &size, err);
	if (!rc && (rc = ht_oci_blob_put_rename(work_dir, tmp, digest, err)) != 0)
		unlink(tmp);
	free(tmp);
	json_t *desc = NULL;
	if (!rc) {
		json_t *rootfs = obj_child(config, "rootfs");
		json_t *diff_ids = rootfs ? json_object_get(rootfs, "diff_ids") : NULL;
		json_t *history = json_object_get(config, "history");
		if (rootfs && !json_is_array(diff_ids)) {
			diff_ids = json_array();
			json_object_set_new(rootfs, "diff_ids", diff_ids);
		}
		if (!json_is_array(history)) {
			history = json_array();
			json_object_set_new(config, "history", history);
		}
		desc = json_pack("{s:s, s:s, s:I}", "mediaType",
		                 img->docker ? HT_MT_DOCKER_LAYER_GZIP : HT_MT_OCI_LAYER_GZIP, "digest",
		                 digest, "size", (json_int_t)size);
		if (!rootfs || !json_is_array(diff_ids) || !json_is_array(history) || !desc ||
		    json_object_set_new(rootfs, "type", json_string("layers")) ||
		    json_array_append_new(diff_ids, json_string(diff_id)) ||
		    json_array_append_new(history,
		                          json_pack("{s:s, s:s, s:s}", "created", FIXED_TIME,
		                                    "created_by", "hypertest", "comment", comment)) ||
		    json_object_set_new(config, "created", json_string(FIXED_TIME)))
			rc = nomem(err);
	}
	if (!rc)
		rc = push_src(img, work_dir, NULL, NULL, NULL, err);
	if (!rc && json_array_append(img->layers, desc) != 0) {
		pop_src(img);
		rc = nomem(err);
	}
	json_decref(desc);
	if (rc) {
		json_decref(config);
		return rc;
	}
	json_decref(img->config);
	img->config = config;
	img->config_dirty = 1;
	if (img->docker && strcmp(img->config_mt, HT_MT_DOCKER_CONFIG) != 0) {
		free(img->config_mt);
		img->config_mt = ht_strdup(HT_MT_DOCKER_CONFIG);
	} else if (!img->docker && strcmp(img->config_mt, HT_MT_OCI_CONFIG) != 0) {
		free(img->config_mt);
		img->config_mt = ht_strdup(HT_MT_OCI_CONFIG);
	}
	free(img->manifest_raw);
	img->manifest_raw = NULL;
	return img->config_mt ? 0 : nomem(err);
}

/* ---- serialising ----------------------------------------------------------------- */

static int serialise_config(ht_image *img, ht_err *err)
{
	if (!img->config_dirty)
		return 0;
	char *raw = ht_oci_json_dump(img->config);
	if (!raw)
		return nomem(err);
	free(img->config_raw);
	img->config_raw = raw;
	img->config_len = strlen(raw);
	img->config_dirty = 0;
	return 0;
}

/* The manifest bytes (malloc'd) and its config digest. */
static int serialise_manifest(ht_image *img, char **out, size_t *out_len, ht_err *err)
{
	int rc = serialise_config(img, err);
	if (rc)
		return rc;
	if (img->manifest_raw) {
		*out = malloc(img->manifest_len + 1);
		if (!*out)
			return nomem(err);
		memcpy(*out, img->manifest_raw, img->manifest_len + 1);
		*out_len = img->manifest_len;
		return 0;
	}
	char hex[65], cdigest[80];
	if (ht_sha256_hex(img->config_raw, img->config_len, hex) != 0)
		return nomem(err);
	snprintf(cdigest, sizeof cdigest, "sha256:%s", hex);
	json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
	                      img->manifest_mt, "config", "mediaType", img->config_mt, "digest",
	                      cdigest, "size", (json_int_t)img->config_len, "layers", img->layers);
	char *raw = m ? ht_oci_json_dump(m) : NULL;
	json_decref(m);
	if (!raw)
		return nomem(err);
	*out = raw;
	*out_len = strlen(raw);
	return 0;
}

int ht_image_digest(ht_image *img, char digest[80], ht_err *err)
{
	char *raw = NULL;
	size_t len = 0;
	char hex[65];
	int rc = serialise_manifest(img, &raw, &len, err);
	if (rc)
		return rc;
	rc = ht_sha256_hex(raw, len, hex) != 0 ? nomem(err) : 0;
	if (!rc)
		snprintf(digest, 80, "sha256:%s", hex);
	free(raw);
	return rc;
}

const char *ht_image_architecture(const ht_image *img)
{
	const char *a = json_string_value(json_object_get(img->config, "architecture"));
	return a ? a : img->arch;
}

size_t ht_image_layer_count(const ht_image *img)
{
	return json_array_size(img->layers);
}

size_t ht_image_layers_uploaded(const ht_image *img)
{
	return img->layers_uploaded;
}

const char *ht_image_last_layer_digest(const ht_image *img)
{
	size_t n = json_array_size(img->layers);
	return n ? json_string_value(json_object_get(json_array_get(img->layers, n - 1), "digest"))
	         : NULL;
}

static int foreign_layer(json_t *desc)
{
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	return mt && (strstr(mt, "nondistributable") || strstr(mt, "foreign"));
}

int ht_image_write_layout(ht_image *img, const char *dir, const char *ref, char digest[80],
                          ht_err *err)
{
	if (!ref)
		ref = "latest";
	if (!*ref)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "%s: empty ref", dir);
	int rc = ht_oci_layout_init(dir, err);
	for (size_t i = 0; !rc && i < json_array_size(img->layers); i++) {
		json_t *l = json_array_get(img->layers, i);
		const char *d = json_string_value(json_object_get(l, "digest"));
		if (ht_oci_blob_exists(dir, d))
			continue;
		const struct source *src = &img->src[i];
		if (foreign_layer(l) && (!src->dir || !ht_oci_blob_exists(src->dir, d)))
			continue; /* fetched from its URLs by whoever runs the image */
		if (src->dir)
			rc = ht_oci_blob_copy(src->dir, dir, d, desc_size(l), err);
		else
			rc = ht_registry_get_blob(src->reg, src->registry, src->repository, d, desc_size(l),
			                          dir, err);
	}
	char cdigest[80], mdigest[80];
	char *mraw = NULL;
	size_t mlen = 0;
	if (!rc)
		rc = serialise_manifest(img, &mraw, &mlen, err);
	if (!rc)
		rc = ht_oci_blob_put(dir, img->config_raw, img->config_len, cdigest, err);
	if (!rc)
		rc = ht_oci_blob_put(dir, mraw, mlen, mdigest, err);
	free(mraw);
	json_t *index = NULL, *desc = NULL;
	if (!rc)
		rc = ht_oci_index_read(dir, &index, err);
	if (!rc) {
		desc = json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", img->manifest_mt, "digest",
		                 mdigest, "size", (json_int_t)mlen, "platform", "architecture", img->arch,
		                 "os", img->os);
		if (!desc || (img->variant && json_object_set_new(json_object_get(desc, "platform"),
		                                                  "variant", json_string(img->variant))))
			rc = nomem(err);
	}
	if (!rc)
		rc = ht_oci_index_set_ref(index, ref, desc, err);
	if (!rc)
		rc = ht_oci_index_write(dir, index, err);
	json_decref(desc);
	json_decref(index);
	if (!rc && digest)
		memcpy(digest, mdigest, strlen(mdigest) + 1);
	return rc;
}


/* ---- unpacking ---------------------------------------------------------------- */

int ht_image_unpack(const ht_image *img, const char *dest, ht_err *err)
{
	ht_unpack *u = NULL;
	int rc = ht_unpack_new(dest, &u, err);
	for (size_t i = 0; !rc && i < json_array_size(img->layers); i++) {
		json_t *l = json_array_get(img->layers, i);
		if (!img->src[i].dir)
			rc = ht_err_set(err, HYPERTEST_ERR_UNSUPPORTED,
			                "layer %s is in %s/%s: write the image to a layout before unpacking it",
			                json_string_value(json_object_get(l, "digest")), img->src[i].registry,
			                img->src[i].repository);
		else
			rc = ht_unpack_layer(u, img->src[i].dir,
			                     json_string_value(json_object_get(l, "digest")), desc_size(l),
			                     err);
	}
	if (!rc)
		rc = ht_unpack_finish(u, err);
	ht_unpack_free(u);
	return rc;
}

int ht_image_unpack_layout(const char *dir, const char *ref, const char *dest, ht_err *err)
{
	ht_image *img = NULL;
	int rc = ht_image_from_layout(dir, ref, NULL, &img, err);
	if (!rc)
		rc = ht_image_unpack(img, dest, err);
	ht_image_free(img);
	return rc;
}

/* ---- registries ------------------------------------------------------------------ */

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
	rc = where ? parse_platform(platform, &w.os, &w.arch, &w.variant, err) : nomem(err);
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

/* Copy a layer held by another registry (or not mountable) through a
 * temporary layout. */
static int transfer_layer(const struct source *src, json_t *l, ht_registry *reg,
                          const ht_image_ref *to, ht_err *err)
{
	const char *d = json_string_value(json_object_get(l, "digest"));
	const char *t = getenv("TMPDIR");
	char *tmp = ht_asprintf("%s/hypertest-push-XXXXXX", t && *t ? t : "/tmp");
	if (!tmp)
		return nomem(err);
	if (!mkdtemp(tmp)) {
		int rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	int rc = ht_oci_layout_init(tmp, err);
	if (!rc)
		rc = ht_registry_get_blob(src->reg, src->registry, src->repository, d, desc_size(l), tmp,
		                          err);
	char *path = rc ? NULL : ht_oci_blob_path(tmp, d);
	if (!rc) {
		ht_blob_source bs = {.path = path};
		rc = path ? ht_registry_push_blob(reg, to->registry, to->repository, d, &bs, NULL, NULL,
		                                  err)
		          : nomem(err);
	}
	free(path);
	ht_rm_rf(tmp, NULL);
	free(tmp);
	return rc;
}

/* *uploaded: 1 when the layer's bytes were sent (not already there, nor
 * mounted). */
static int push_layer(const ht_image *img, size_t i, ht_registry *reg, const ht_image_ref *to,
                      int *uploaded, ht_err *err)
{
	*uploaded = 0;
	json_t *l = json_array_get(img->layers, i);
	const char *d = json_string_value(json_object_get(l, "digest"));
	const struct source *src = &img->src[i];
	if (src->dir) {
		if (foreign_layer(l) && !ht_oci_blob_exists(src->dir, d))
			return 0;
		char *path = ht_oci_blob_path(src->dir, d);
		if (!path)
			return nomem(err);
		ht_blob_source bs = {.path = path};
		int up = 0;
		int rc = ht_registry_push_blob(reg, to->registry, to->repository, d, &bs, NULL, &up, err);
		free(path);
		*uploaded = up;
		return rc;
	}
	if (foreign_layer(l))
		return 0;
	/* in the same registry: the target may have it, or mount it */
	const char *mount = NULL;
	if (!strcmp(src->registry, to->registry) && strcmp(src->repository, to->repository) != 0)
		mount = src->repository;
	int rc = ht_registry_push_blob(reg, to->registry, to->repository, d, NULL, mount, NULL, err);
	if (rc == HYPERTEST_ERR_NOT_FOUND) {
		rc = transfer_layer(src, l, reg, to, err);
		*uploaded = rc == 0;
	}
	return rc;
}

int ht_image_push_registry(ht_image *img, ht_registry *reg, const char *ref, char digest[80],
                           ht_err *err)
{
	ht_image_ref to;
	int rc = ht_image_ref_parse(ref, &to, err);
	if (rc)
		return rc;
	img->layers_uploaded = 0;
	for (size_t i = 0; !rc && i < json_array_size(img->layers); i++) {
		int up = 0;
		rc = push_layer(img, i, reg, &to, &up, err);
		img->layers_uploaded += (size_t)up;
	}
	char *mraw = NULL;
	size_t mlen = 0;
	char mdigest[80];
	if (!rc)
		rc = serialise_manifest(img, &mraw, &mlen, err);
	if (!rc) {
		char cdigest[80];
		ht_blob_source bs = {.data = img->config_raw, .len = img->config_len};
		rc = ht_sha256_hex(img->config_raw, img->config_len, cdigest + 7) ? nomem(err) : 0;
		memcpy(cdigest, "sha256:", 7);
		if (!rc)
			rc = ht_registry_push_blob(reg, to.registry, to.repository, cdigest, &bs, NULL, NULL,
			                           err);
	}
	if (!rc && to.digest) {
		char hex[65];
		ht_sha256_hex(mraw, mlen, hex);
		if (strcmp(to.digest + 7, hex) != 0)
			rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
			                "push to '%s': the image's digest is sha256:%s, not the one named", ref,
			                hex);
	}
	if (!rc)
		rc = ht_registry_put_manifest(reg, to.registry, to.repository,
		                              to.tag ? to.tag : to.digest, img->manifest_mt, mraw, mlen,
		                              mdigest, err);
	if (rc)
		ht_err_prefix(err, "push to '%s'", ref);
	else if (digest)
		memcpy(digest, mdigest, strlen(mdigest) + 1);
	free(mraw);
	ht_image_ref_free(&to);
	return rc;
}
