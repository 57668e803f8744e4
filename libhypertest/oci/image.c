/*
 * image.c - container images without a daemon: read a base image from an
 * OCI image layout (resolving an index to one platform), append layers,
 * write config, manifest and blobs to a layout, and unpack an image into a
 * directory with OCI whiteouts.  JSON documents we create are serialised
 * compact with sorted keys so that their digests are stable; a base's
 * documents are kept byte for byte until something changes.  A base may
 * also come from a registry (registry.c): its layers are then fetched only
 * when they are needed, and mounted rather than copied when the image is
 * pushed to another repository of the same registry.  Reading a base is
 * image_read.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "image_int.h"
#include "image_unpack.h"
#include "oci_layout.h"
#include "registry.h"

#define FIXED_TIME "1970-01-01T00:00:00Z"

/* ---- platform ------------------------------------------------------------------ */

int ht_image_parse_platform(const char *platform, char **os, char **arch, char **variant,
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
		return ht_image_nomem(err);
	}
	return 0;
}

ht_image *ht_image_alloc(void)
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

int ht_image_push_src(ht_image *img, const char *dir, ht_registry *reg, const char *registry,
                      const char *repository, ht_err *err)
{
	if (img->n_src == img->cap_src) {
		size_t cap = img->cap_src ? img->cap_src * 2 : 8;
		struct source *n = realloc(img->src, cap * sizeof *n);
		if (!n)
			return ht_image_nomem(err);
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
		return ht_image_nomem(err);
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
	ht_image *img = ht_image_alloc();
	if (!img) {
		ht_image_nomem(err);
		return NULL;
	}
	if (ht_image_parse_platform(platform, &img->os, &img->arch, &img->variant, err) != 0) {
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
		ht_image_nomem(err);
		ht_image_free(img);
		return NULL;
	}
	img->config_dirty = 1;
	return img;
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
		return ht_image_nomem(err);
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

/* ---- the layer cache ------------------------------------------------------------ */

static char *cache_path(const char *work_dir)
{
	return ht_path_join(work_dir, "layer-cache.json");
}

static json_t *cache_load(const char *work_dir)
{
	char *path = cache_path(work_dir);
	json_t *doc = path ? json_load_file(path, 0, NULL) : NULL;
	free(path);
	if (doc && (!json_is_object(doc) ||
	            !json_is_object(json_object_get(doc, "layers")) ||
	            !json_is_string(json_object_get(doc, "writer")) ||
	            strcmp(json_string_value(json_object_get(doc, "writer")),
	                   ht_layer_writer_version()) != 0)) {
		json_decref(doc); /* another writer's keys never match: start again */
		doc = NULL;
	}
	return doc;
}

static int copy_digest(char out[80], json_t *v)
{
	const char *s = json_string_value(v);
	if (!s || strlen(s) != 71 || strncmp(s, "sha256:", 7) != 0)
		return 0;
	memcpy(out, s, 72);
	return 1;
}

/* 1 when key is in the cache and its blob is in work_dir with its size. */
static int cache_lookup(const char *work_dir, const char *key, char diff_id[80], char digest[80],
                        size_t *size)
{
	json_t *doc = cache_load(work_dir);
	json_t *e = doc ? json_object_get(json_object_get(doc, "layers"), key) : NULL;
	json_t *sz = json_object_get(e, "size");
	int ok = e && json_is_integer(sz) && json_integer_value(sz) >= 0 &&
	         copy_digest(diff_id, json_object_get(e, "diff_id")) &&
	         copy_digest(digest, json_object_get(e, "digest"));
	if (ok) {
		struct stat st;
		char *blob = ht_oci_blob_path(work_dir, digest);
		ok = blob && stat(blob, &st) == 0 && S_ISREG(st.st_mode) &&
		     st.st_size == (off_t)json_integer_value(sz);
		free(blob);
		*size = (size_t)json_integer_value(sz);
	}
	json_decref(doc);
	return ok;
}

/* Best effort: a cache that cannot be written only costs a rebuild. */
static void cache_store(const char *work_dir, const char *key, const char *diff_id,
                        const char *digest, size_t size)
{
	json_t *doc = cache_load(work_dir);
	if (!doc)
		doc = json_pack("{s:i, s:s, s:{}}", "version", 1, "writer", ht_layer_writer_version(),
		                "layers");
	json_t *layers = json_object_get(doc, "layers");
	json_t *e = json_pack("{s:s, s:s, s:I}", "digest", digest, "diff_id", diff_id, "size",
	                      (json_int_t)size);
	char uuid[37];
	char *path = cache_path(work_dir);
	char *tmp = ht_uuid_v4(uuid) == 0 ? ht_asprintf("%s/.layer-cache-%s", work_dir, uuid) : NULL;
	if (layers && e) {
		json_object_del(layers, key); /* re-added last: the newest */
		json_object_set_new(layers, key, e);
		e = NULL;
		while (json_object_size(layers) > HT_LAYER_CACHE_MAX) {
			void *it = json_object_iter(layers); /* insertion order: the oldest */
			json_object_del(layers, json_object_iter_key(it));
		}
		if (path && tmp &&
		    (json_dump_file(doc, tmp, JSON_INDENT(1)) != 0 || rename(tmp, path) != 0))
			unlink(tmp);
	}
	json_decref(e);
	json_decref(doc);
	free(path);
	free(tmp);
}

size_t ht_image_layers_built(const ht_image *img)
{
	return img->layers_built;
}

size_t ht_image_layers_reused(const ht_image *img)
{
	return img->layers_reused;
}

int ht_image_append_layer(ht_image *img, ht_layer *lb, const char *work_dir, ht_err *err)
{
	int rc = ht_oci_layout_init(work_dir, err);
	if (rc)
		return rc;
	json_t *config = json_deep_copy(img->config);
	if (!config)
		return ht_image_nomem(err);
	const char *comment = "hypertest layer";
	if ((rc = apply_settings(config, lb, &comment, err)) != 0) {
		json_decref(config);
		return rc;
	}
	char uuid[37];
	char *tmp = NULL;
	if (ht_uuid_v4(uuid) != 0 || !(tmp = ht_asprintf("%s/blobs/sha256/.layer-%s", work_dir, uuid))) {
		json_decref(config);
		return ht_image_nomem(err);
	}
	char diff_id[80], digest[80], key[80];
	size_t size = 0;
	int recent = 1, have_key = 0;
	/* relative paths of the layer land in the working directory it sets */
	const char *wd = current_workdir(config);
	ht_err kerr;
	memset(&kerr, 0, sizeof kerr);
	have_key = ht_layer_cache_key(lb, wd, key, &recent, &kerr) == 0;
	if (have_key && cache_lookup(work_dir, key, diff_id, digest, &size)) {
		img->layers_reused++;
	} else {
		rc = ht_layer_write(lb, wd, tmp, diff_id, digest, &size, err);
		if (!rc && (rc = ht_oci_blob_put_rename(work_dir, tmp, digest, err)) != 0)
			unlink(tmp);
		if (!rc) {
			img->layers_built++;
			/* recorded only when the inputs did not change while being read */
			char again[80];
			int recent2 = 1;
			if (have_key && !recent &&
			    ht_layer_cache_key(lb, wd, again, &recent2, &kerr) == 0 && !recent2 &&
			    strcmp(again, key) == 0)
				cache_store(work_dir, key, diff_id, digest, size);
		}
	}
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
			rc = ht_image_nomem(err);
	}
	if (!rc)
		rc = ht_image_push_src(img, work_dir, NULL, NULL, NULL, err);
	if (!rc && json_array_append(img->layers, desc) != 0) {
		pop_src(img);
		rc = ht_image_nomem(err);
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
	return img->config_mt ? 0 : ht_image_nomem(err);
}

/* ---- serialising ----------------------------------------------------------------- */

static int serialise_config(ht_image *img, ht_err *err)
{
	if (!img->config_dirty)
		return 0;
	char *raw = ht_oci_json_dump(img->config);
	if (!raw)
		return ht_image_nomem(err);
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
			return ht_image_nomem(err);
		memcpy(*out, img->manifest_raw, img->manifest_len + 1);
		*out_len = img->manifest_len;
		return 0;
	}
	char hex[65], cdigest[80];
	if (ht_sha256_hex(img->config_raw, img->config_len, hex) != 0)
		return ht_image_nomem(err);
	snprintf(cdigest, sizeof cdigest, "sha256:%s", hex);
	json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
	                      img->manifest_mt, "config", "mediaType", img->config_mt, "digest",
	                      cdigest, "size", (json_int_t)img->config_len, "layers", img->layers);
	char *raw = m ? ht_oci_json_dump(m) : NULL;
	json_decref(m);
	if (!raw)
		return ht_image_nomem(err);
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
	rc = ht_sha256_hex(raw, len, hex) != 0 ? ht_image_nomem(err) : 0;
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
			rc = ht_oci_blob_copy(src->dir, dir, d, ht_image_desc_size(l), err);
		else
			rc = ht_registry_get_blob(src->reg, src->registry, src->repository, d, ht_image_desc_size(l),
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
			rc = ht_image_nomem(err);
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
			                     json_string_value(json_object_get(l, "digest")), ht_image_desc_size(l),
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

/* Copy a layer held by another registry (or not mountable) through a
 * temporary layout. */
static int transfer_layer(const struct source *src, json_t *l, ht_registry *reg,
                          const ht_image_ref *to, ht_err *err)
{
	const char *d = json_string_value(json_object_get(l, "digest"));
	const char *t = getenv("TMPDIR");
	char *tmp = ht_asprintf("%s/hypertest-push-XXXXXX", t && *t ? t : "/tmp");
	if (!tmp)
		return ht_image_nomem(err);
	if (!mkdtemp(tmp)) {
		int rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return rc;
	}
	int rc = ht_oci_layout_init(tmp, err);
	if (!rc)
		rc = ht_registry_get_blob(src->reg, src->registry, src->repository, d, ht_image_desc_size(l), tmp,
		                          err);
	char *path = rc ? NULL : ht_oci_blob_path(tmp, d);
	if (!rc) {
		ht_blob_source bs = {.path = path};
		rc = path ? ht_registry_push_blob(reg, to->registry, to->repository, d, &bs, NULL, NULL,
		                                  err)
		          : ht_image_nomem(err);
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
			return ht_image_nomem(err);
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

/* The smallest layer is pushed first, alone, so that the requests that
 * authenticate (a challenge, a token) are made once; then the others by up
 * to HT_IMAGE_PUSH_THREADS threads (the registry client may be used from
 * several at once), each taking the next layer not yet taken.  After the
 * first failure no new layer is started, and the error reported is that
 * of the first layer (in push order) that failed. */
struct push_job {
	const ht_image *img;
	ht_registry *reg;
	const ht_image_ref *to;
	size_t *order; /* layer indexes in push order */
	pthread_mutex_t lock;
	size_t next, n, uploaded;
	size_t failed_at; /* n: none */
	int rc;
	ht_err err;
};

static void *push_worker(void *arg)
{
	struct push_job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		size_t k = j->failed_at == j->n && j->next < j->n ? j->next++ : j->n;
		pthread_mutex_unlock(&j->lock);
		if (k >= j->n)
			return NULL;
		size_t i = j->order[k];
		ht_err e;
		memset(&e, 0, sizeof e);
		int up = 0;
		int rc = push_layer(j->img, i, j->reg, j->to, &up, &e);
		pthread_mutex_lock(&j->lock);
		j->uploaded += (size_t)up;
		if (rc && k < j->failed_at) {
			j->failed_at = k;
			j->rc = rc;
			j->err = e;
		}
		pthread_mutex_unlock(&j->lock);
	}
}

static int push_layers(ht_image *img, ht_registry *reg, const ht_image_ref *to, ht_err *err)
{
	struct push_job j;
	memset(&j, 0, sizeof j);
	j.img = img;
	j.reg = reg;
	j.to = to;
	j.n = json_array_size(img->layers);
	j.failed_at = j.n;
	if (j.n == 0)
		return 0;
	j.order = malloc(j.n * sizeof *j.order);
	if (!j.order || pthread_mutex_init(&j.lock, NULL) != 0) {
		free(j.order);
		return ht_image_nomem(err);
	}
	size_t smallest = 0;
	json_int_t min = -1;
	for (size_t i = 0; i < j.n; i++) {
		json_int_t sz = json_integer_value(json_object_get(json_array_get(img->layers, i), "size"));
		if (min < 0 || sz < min) {
			min = sz;
			smallest = i;
		}
	}
	j.order[0] = smallest;
	for (size_t i = 0, k = 1; i < j.n; i++)
		if (i != smallest)
			j.order[k++] = i;
	/* the first layer alone: one thread, stopping after it */
	size_t all = j.n;
	j.n = j.failed_at = 1; /* failed_at == n: none failed */
	push_worker(&j);
	j.n = all;
	if (j.failed_at == 1)
		j.failed_at = all;
	pthread_t t[HT_IMAGE_PUSH_THREADS];
	size_t started = 0;
	size_t want = j.n - 1 < HT_IMAGE_PUSH_THREADS ? j.n - 1 : HT_IMAGE_PUSH_THREADS;
	/* this thread is one of them */
	while (j.failed_at == all && started + 1 < want &&
	       pthread_create(&t[started], NULL, push_worker, &j) == 0)
		started++;
	push_worker(&j);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&j.lock);
	free(j.order);
	img->layers_uploaded = j.uploaded;
	if (j.rc)
		*err = j.err;
	return j.rc;
}

int ht_image_push_registry(ht_image *img, ht_registry *reg, const char *ref, char digest[80],
                           ht_err *err)
{
	ht_image_ref to;
	int rc = ht_image_ref_parse(ref, &to, err);
	if (rc)
		return rc;
	img->layers_uploaded = 0;
	rc = push_layers(img, reg, &to, err);
	char *mraw = NULL;
	size_t mlen = 0;
	char mdigest[80];
	if (!rc)
		rc = serialise_manifest(img, &mraw, &mlen, err);
	if (!rc) {
		char cdigest[80];
		ht_blob_source bs = {.data = img->config_raw, .len = img->config_len};
		rc = ht_sha256_hex(img->config_raw, img->config_len, cdigest + 7) ? ht_image_nomem(err) : 0;
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
