/*
 * local-image.c - what the local provider reads of the deployed image: the
 * image config (Entrypoint, Cmd, Env, WorkingDir) from the OCI layout the
 * deploy wrote (index.json -> manifest -> config blob, each blob's size and
 * SHA-256 checked against its descriptor), for isolation "image", which
 * runs the image's own entry point; and the parsed copy kept in
 * functionDir/current.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "local.h"

/* SHA-256 of a buffer as 64 lowercase hex digits ("" if OpenSSL failed). */
static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	out[0] = '\0';
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return;
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The hex part of "algo:hex", or NULL when digest is not of that form. */
const char *local_digest_hex(const char *digest)
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	if (!colon || colon == digest || !colon[1])
		return NULL;
	for (const char *s = digest; s < colon; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return NULL;
	for (const char *s = colon + 1; *s; s++)
		if (!((*s >= 'a' && *s <= 'f') || (*s >= '0' && *s <= '9')))
			return NULL;
	return colon + 1;
}

/* The limits of the core's OCI reader: an image index or manifest, an
 * image configuration. */
#define INDEX_MAX ((size_t)4 << 20)
#define CONFIG_MAX ((size_t)64 << 20)

/* The blob of desc (what: "manifest", "image config") in the layout, its
 * size and SHA-256 checked, parsed: a JSON object, or NULL with the error
 * set. */
static json_t *read_blob(local_provider *p, json_t *desc, const char *what, size_t max)
{
	const char *digest = json_string_value(json_object_get(desc, "digest"));
	json_t *size = json_object_get(desc, "size");
	const char *hex = local_digest_hex(digest);
	if (!hex || strncmp(digest, "sha256:", 7) != 0 || strlen(hex) != 64 ||
	    !json_is_integer(size)) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "%s: the %s descriptor has no sha256 digest and "
		           "size (digest %s)", p->image_dir, what, digest ? digest : "missing");
		return NULL;
	}
	char *path = htp_strdupf("%s/blobs/sha256/%s", p->image_dir, hex);
	char *data = NULL, sum[65];
	size_t len = 0;
	json_t *j = NULL;
	json_error_t jerr;
	if (!path) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	} else if (local_read_file(path, max, &data, &len) != 0) {
		if (errno == EFBIG)
			local_fail(p, HYPERTEST_ERR_IMAGE, "cannot read the %s %s: larger than %zu MiB, "
			           "the limit for an image %s", what, path, max >> 20,
			           max == CONFIG_MAX ? "configuration" : "manifest");
		else
			local_fail(p, HYPERTEST_ERR_IMAGE, "cannot read the %s %s: %s", what, path,
			           errno == EINVAL ? "not a regular file" : strerror(errno));
	} else if (json_integer_value(size) != (json_int_t)len) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "the %s %s has %zu bytes, its descriptor says "
		           "%" JSON_INTEGER_FORMAT, what, path, len, json_integer_value(size));
	} else if (sha256_hex(data, len, sum), strcmp(sum, hex) != 0) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "the %s %s does not match its digest (its "
		           "SHA-256 is %s)", what, path, sum);
	} else if (!(j = json_loadb(data, len, 0, &jerr))) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "the %s %s: line %d, column %d: %s", what, path,
		           jerr.line, jerr.column, jerr.text);
	} else if (!json_is_object(j)) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "the %s %s is not a JSON object", what, path);
		json_decref(j);
		j = NULL;
	}
	free(data);
	free(path);
	return j;
}

/* Copy config.<key> of the image config (at where) into out when it is an
 * array of strings (Env: of NAME=VALUE); null or absent: left out. */
static int copy_strings(local_provider *p, json_t *cc, const char *key, const char *where,
                        json_t *out)
{
	json_t *v = json_object_get(cc, key), *s;
	size_t i;
	if (!v || json_is_null(v))
		return 0;
	int ok = json_is_array(v);
	json_array_foreach(v, i, s) {
		const char *t = json_string_value(s);
		if (!t || (!strcmp(key, "Env") && (!strchr(t, '=') || t[0] == '=')))
			ok = 0;
	}
	if (!ok)
		return local_fail(p, HYPERTEST_ERR_IMAGE,
		                  "the image config %s: \"config.%s\" must be an array of strings%s",
		                  where, key,
		                  strcmp(key, "Env") ? "" : " NAME=VALUE");
	return json_object_set(out, key, v) ? local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory")
	                                    : 0;
}

/* Entrypoint, Cmd, Env and WorkingDir of the image image_digest in the
 * layout at imageDir, as {"Entrypoint": [...], ...} (each only when set). */
int local_image_config_read(local_provider *p, const char *image_digest, json_t **out)
{
	*out = NULL;
	char *ipath = htp_path_join(p->image_dir, "index.json");
	if (!ipath)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	json_error_t jerr;
	json_t *index = NULL, *desc = NULL, *d, *man = NULL, *cfg = NULL;
	char *itext = NULL;
	size_t i, ilen = 0;
	int rc = 0;
	if (local_read_file(ipath, INDEX_MAX, &itext, &ilen) != 0) {
		if (errno == EFBIG)
			rc = local_fail(p, HYPERTEST_ERR_IMAGE, "%s: larger than %zu MiB, the limit for "
			                "an OCI image index", ipath, INDEX_MAX >> 20);
		else
			rc = local_fail(p, HYPERTEST_ERR_IMAGE, "cannot read %s: %s", ipath,
			                errno == EINVAL ? "not a regular file" : strerror(errno));
		goto out;
	}
	index = json_loadb(itext, ilen, 0, &jerr);
	free(itext);
	if (!index) {
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "%s: line %d, column %d: %s", ipath,
		                jerr.line, jerr.column, jerr.text);
		goto out;
	}
	json_array_foreach(json_object_get(index, "manifests"), i, d) {
		const char *dd = json_string_value(json_object_get(d, "digest"));
		if (!desc && dd && !strcmp(dd, image_digest))
			desc = d;
	}
	if (!desc) {
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "%s lists no manifest %s", ipath,
		                image_digest);
		goto out;
	}
	if (!(man = read_blob(p, desc, "manifest", INDEX_MAX))) {
		rc = HYPERTEST_ERR_IMAGE;
		goto out;
	}
	json_t *cdesc = json_object_get(man, "config");
	if (!json_is_object(cdesc)) {
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "the manifest %s of %s has no \"config\" "
		                "(an index, not an image manifest?)", image_digest, p->image_dir);
		goto out;
	}
	if (!(cfg = read_blob(p, cdesc, "image config", CONFIG_MAX))) {
		rc = HYPERTEST_ERR_IMAGE;
		goto out;
	}
	char where[128];
	snprintf(where, sizeof where, "%.80s",
	         json_string_value(json_object_get(cdesc, "digest")));
	json_t *cc = json_object_get(cfg, "config"), *wd = json_object_get(cc, "WorkingDir");
	json_t *o = json_object();
	if (!o) {
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (cc && !json_is_null(cc) && !json_is_object(cc))
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "the image config %s: \"config\" is not "
		                "an object", where);
	if (rc == 0)
		rc = copy_strings(p, cc, "Entrypoint", where, o);
	if (rc == 0)
		rc = copy_strings(p, cc, "Cmd", where, o);
	if (rc == 0)
		rc = copy_strings(p, cc, "Env", where, o);
	if (rc == 0 && wd && !json_is_null(wd) && !json_is_string(wd))
		rc = local_fail(p, HYPERTEST_ERR_IMAGE,
		                "the image config %s: \"config.WorkingDir\" is not a string", where);
	else if (rc == 0 && json_string_length(wd) > 0 && json_object_set(o, "WorkingDir", wd))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0)
		*out = o;
	else
		json_decref(o);
out:
	json_decref(cfg);
	json_decref(man);
	json_decref(index);
	free(ipath);
	return rc;
}

/* A NULL-terminated copy of a JSON array of strings (checked by the
 * caller's parse); absent: an empty vector. */
static char **strv_from_json(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	char **v = calloc(n + 1, sizeof *v);
	json_t *s;
	json_array_foreach(arr, i, s) {
		if (!v || !(v[i] = local_strdup(json_string_value(s)))) {
			for (size_t k = 0; v && k < i; k++)
				free(v[k]);
			free(v);
			return NULL;
		}
	}
	return v;
}

/* Is v absent or an array of strings? */
static int strings_or_absent(json_t *v)
{
	size_t i;
	json_t *s;
	if (!v)
		return 1;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, s)
		if (!json_is_string(s))
			return 0;
	return 1;
}

/* imageConfig of current into ic; 0, or -1 when it is malformed (or out of
 * memory: then errno is ENOMEM). */
int local_image_config_parse(json_t *j, local_image_config *ic)
{
	json_t *e = json_object_get(j, "Entrypoint"), *c = json_object_get(j, "Cmd");
	json_t *env = json_object_get(j, "Env"), *wd = json_object_get(j, "WorkingDir");
	errno = EINVAL;
	if (!json_is_object(j) || !strings_or_absent(e) || !strings_or_absent(c) ||
	    !strings_or_absent(env) || (wd && !json_is_string(wd)))
		return -1;
	errno = ENOMEM;
	if (json_array_size(e) > 0 && !(ic->entrypoint = strv_from_json(e)))
		return -1;
	if (!(ic->cmd = strv_from_json(c)) || !(ic->env = strv_from_json(env)) ||
	    (wd && !(ic->workdir = local_strdup(json_string_value(wd)))))
		return -1;
	ic->recorded = 1;
	return 0;
}

void local_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

