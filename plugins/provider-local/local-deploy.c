/*
 * local-deploy.c - "updating the function" of the local provider.
 *
 * functionDir/
 *   images/<hex>            the deployed image, unpacked (root filesystem)
 *   images/<hex>.complete   marker written once the unpack finished
 *   current                 {"digest": "sha256:<hex>", "root": ".../images/<hex>",
 *                            "imageConfig": {"Entrypoint": [...], "Cmd": [...],
 *                                            "Env": [...], "WorkingDir": "..."}}
 *   scratch/<testId>/       one per invocation in flight (local-invoke.c)
 *
 * An update unpacks the image once (skipped when the marker is there),
 * reads the image config from the OCI layout (index.json -> manifest ->
 * config blob, each blob's SHA-256 and size checked against its
 * descriptor), replaces current atomically, then removes every other
 * unpacked image.  isolation "image" runs the recorded entry point; the
 * other isolations do not need the config, so there a layout without it is
 * no error (imageConfig is left out).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "local.h"

#define MARKER_SUFFIX ".complete"

/* The hex part of "algo:hex", or NULL when digest is not of that form. */
static const char *digest_hex(const char *digest)
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

/* ---- the image config, from the OCI layout ------------------------------------ */

/* SHA-256 (FIPS 180-4) of a buffer: the blobs read from the layout are
 * small (manifest, config) and checked against their digests. */
static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *b)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
		       (uint32_t)b[4 * i + 2] << 8 | (uint32_t)b[4 * i + 3];
	for (int i = 16; i < 64; i++)
		w[i] = w[i - 16] + (ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
		       w[i - 7] + (ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10));
	memcpy(v, h, sizeof v);
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = v[7] + (ROTR(v[4], 6) ^ ROTR(v[4], 11) ^ ROTR(v[4], 25)) +
		              ((v[4] & v[5]) ^ (~v[4] & v[6])) + sha256_k[i] + w[i];
		uint32_t t2 = (ROTR(v[0], 2) ^ ROTR(v[0], 13) ^ ROTR(v[0], 22)) +
		              ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof v[0]);
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		h[i] += v[i];
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	const unsigned char *d = data;
	size_t n = len;
	for (; n >= 64; d += 64, n -= 64)
		sha256_block(h, d);
	unsigned char last[128];
	memset(last, 0, sizeof last);
	memcpy(last, d, n);
	last[n] = 0x80;
	size_t total = n + 9 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		last[total - 1 - i] = (unsigned char)(bits >> (8 * i));
	sha256_block(h, last);
	if (total == 128)
		sha256_block(h, last + 64);
	for (int i = 0; i < 8; i++)
		snprintf(out + 8 * i, 9, "%08x", (unsigned)h[i]);
}

#define BLOB_MAX (16 << 20) /* a manifest or a config larger than that is damaged */

/* The blob of desc (what: "manifest", "image config") in the layout, its
 * size and SHA-256 checked, parsed: a JSON object, or NULL with the error
 * set. */
static json_t *read_blob(local_provider *p, json_t *desc, const char *what)
{
	const char *digest = json_string_value(json_object_get(desc, "digest"));
	json_t *size = json_object_get(desc, "size");
	const char *hex = digest_hex(digest);
	if (!hex || strncmp(digest, "sha256:", 7) != 0 || strlen(hex) != 64 ||
	    !json_is_integer(size)) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "%s: the %s descriptor has no sha256 digest and "
		           "size (digest %s)", p->image_dir, what, digest ? digest : "missing");
		return NULL;
	}
	char *path = local_asprintf("%s/blobs/sha256/%s", p->image_dir, hex);
	char *data = NULL, sum[65];
	size_t len = 0;
	json_t *j = NULL;
	json_error_t jerr;
	if (!path) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	} else if (local_read_file(path, &data, &len) != 0) {
		local_fail(p, HYPERTEST_ERR_IMAGE, "cannot read the %s %s: %s", what, path,
		           strerror(errno));
	} else if (len > BLOB_MAX || json_integer_value(size) != (json_int_t)len) {
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
static int read_image_config(local_provider *p, const char *image_digest, json_t **out)
{
	*out = NULL;
	char *ipath = local_path_join(p->image_dir, "index.json");
	if (!ipath)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	json_error_t jerr;
	json_t *index = json_load_file(ipath, 0, &jerr), *desc = NULL, *d, *man = NULL, *cfg = NULL;
	size_t i;
	int rc = 0;
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
	if (!(man = read_blob(p, desc, "manifest"))) {
		rc = HYPERTEST_ERR_IMAGE;
		goto out;
	}
	json_t *cdesc = json_object_get(man, "config");
	if (!json_is_object(cdesc)) {
		rc = local_fail(p, HYPERTEST_ERR_IMAGE, "the manifest %s of %s has no \"config\" "
		                "(an index, not an image manifest?)", image_digest, p->image_dir);
		goto out;
	}
	if (!(cfg = read_blob(p, cdesc, "image config"))) {
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
static int parse_image_config(json_t *j, local_image_config *ic)
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

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void local_deployed_clear(local_deployed *d)
{
	strv_free(d->image.entrypoint);
	strv_free(d->image.cmd);
	strv_free(d->image.env);
	free(d->image.workdir);
	free(d->digest);
	free(d->root);
	free(d->task_root);
	free(d->config);
	for (size_t i = 0; i < d->nentries; i++)
		free(d->entries[i]);
	free(d->entries);
	memset(d, 0, sizeof *d);
}

/* Read functionDir/current: digest and root (malloc'd), and the image
 * config into ic unless NULL. */
static int read_current(local_provider *p, char **digest, char **root, local_image_config *ic)
{
	char *path = local_path_join(p->function_dir, "current");
	char *text;
	size_t len;
	if (!path)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (local_read_file(path, &text, &len) != 0) {
		int e = errno;
		int rc = e == ENOENT
		             ? local_fail(p, HYPERTEST_ERR_NOT_FOUND,
		                          "nothing deployed in %s (run hypertest deploy)",
		                          p->function_dir)
		             : local_fail(p, HYPERTEST_ERR_IO, "cannot read %s: %s",
		                          path, strerror(e));
		free(path);
		return rc;
	}
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	free(text);
	const char *d = json_string_value(json_object_get(j, "digest"));
	const char *r = json_string_value(json_object_get(j, "root"));
	json_t *icj = json_object_get(j, "imageConfig");
	int rc = 0;
	if (!d || !r || !digest_hex(d) || r[0] != '/')
		rc = local_fail(p, HYPERTEST_ERR_IO,
		                "%s is damaged (expected {\"digest\", \"root\"}); "
		                "run hypertest deploy again", path);
	else if (!(*digest = local_strdup(d)) || !(*root = local_strdup(r)))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	else if (ic && icj && parse_image_config(icj, ic) != 0)
		rc = errno == ENOMEM
		         ? local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory")
		         : local_fail(p, HYPERTEST_ERR_IO, "%s is damaged (\"imageConfig\" is not an "
		                      "image config); run hypertest deploy again", path);
	json_decref(j);
	free(path);
	return rc;
}

/* The top-level names of the task root, which each invocation's scratch
 * directory links to.  ".hypertest" is left out: the scratch directory
 * keeps HOME and TMPDIR there. */
static int list_entries(local_provider *p, local_deployed *d)
{
	DIR *dir = opendir(d->task_root);
	if (!dir)
		return local_fail(p, HYPERTEST_ERR_IMAGE,
		                  "the deployed image %s has no /var/task (%s: %s)",
		                  d->digest, d->task_root, strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(dir)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, ".hypertest"))
			continue;
		if (d->nentries == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **ne = realloc(d->entries, ncap * sizeof *ne);
			if (!ne) {
				rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
				break;
			}
			d->entries = ne;
			cap = ncap;
		}
		if (!(d->entries[d->nentries] = local_strdup(e->d_name)))
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		else
			d->nentries++;
	}
	closedir(dir);
	return rc;
}

/* Make the directory rel (absolute in the image) in root where it is
 * missing, never following a link of the image: at a symbolic link or a
 * file on the way it stops (the sandbox resolves that path in the image
 * itself).  1 when root + rel is a directory of the image now, 0 when it
 * stopped, -1 with errno. */
static int dir_in_root(const char *root, const char *rel)
{
	size_t cap = strlen(root) + strlen(rel) + 2, n = strlen(root);
	char *path = malloc(cap);
	if (!path)
		return -1;
	memcpy(path, root, n + 1);
	int rc = 1;
	for (const char *s = rel; rc == 1 && *s;) {
		size_t len = strcspn(s, "/");
		if (len == 0 || (len == 1 && s[0] == '.')) {
			s += len + (s[len] == '/');
			continue;
		}
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			rc = 0;
			break;
		}
		path[n++] = '/';
		memcpy(path + n, s, len);
		n += len;
		path[n] = '\0';
		s += len + (s[len] == '/');
		struct stat st;
		if (lstat(path, &st) != 0 && errno == ENOENT && mkdir(path, 0755) != 0 &&
		    errno != EEXIST)
			rc = -1;
		else if (lstat(path, &st) != 0)
			rc = -1;
		else if (!S_ISDIR(st.st_mode))
			rc = 0;
	}
	int e = errno;
	free(path);
	errno = e;
	return rc;
}

/* An empty file at root + etc/name to bind the host's /etc/name on (as
 * container runtimes do with resolv.conf and hosts); 1 when it is there,
 * a regular file of the image, and the host has /etc/name. */
static int file_mount_point(const char *root, const char *name)
{
	char host[64];
	struct stat st;
	snprintf(host, sizeof host, "/etc/%s", name);
	if (stat(host, &st) != 0 || !S_ISREG(st.st_mode) || dir_in_root(root, "etc") != 1)
		return 0;
	char *path = local_asprintf("%s/etc/%s", root, name);
	int ok = 0;
	if (path && lstat(path, &st) != 0 && errno == ENOENT) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	if (path && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
		ok = 1;
	free(path);
	return ok;
}

/* isolation "image": the mount points of the sandbox in the unpacked root
 * (read-only in the sandbox, so they must be there before).  Only empty
 * directories and files are added. */
static int prepare_root(local_provider *p, local_deployed *d)
{
	const char *dirs[] = {"dev", "proc", "tmp",
	                      d->image.workdir ? d->image.workdir : LOCAL_IMAGE_WORKDIR};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (dir_in_root(d->root, dirs[i]) < 0)
			return local_fail(p, HYPERTEST_ERR_IO, "cannot create /%s in the deployed "
			                  "image %s: %s", dirs[i][0] == '/' ? dirs[i] + 1 : dirs[i],
			                  d->root, strerror(errno));
	d->bind_resolv = file_mount_point(d->root, "resolv.conf");
	d->bind_hosts = file_mount_point(d->root, "hosts");
	return 0;
}

int local_deployed_load(local_provider *p)
{
	if (p->dep_loaded)
		return 0;
	local_deployed d;
	memset(&d, 0, sizeof d);
	int rc = read_current(p, &d.digest, &d.root, &d.image);
	int image = p->isolation == LOCAL_ISOLATION_IMAGE;
	if (rc == 0) {
		d.task_root = local_path_join(d.root, "var/task");
		d.config = d.task_root ? local_path_join(d.task_root, "hypertest.config.json") : NULL;
		/* in the image's own root the scratch directory links to nothing */
		rc = !d.config ? local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory")
		     : image   ? prepare_root(p, &d)
		               : list_entries(p, &d);
	}
	if (rc != 0) {
		local_deployed_clear(&d);
		return rc;
	}
	local_deployed_clear(&p->dep);
	p->dep = d;
	p->dep_loaded = 1;
	return 0;
}

int local_function_digest(void *self, hypertest_buffer *digest)
{
	local_provider *p = self;
	char *d = NULL, *root = NULL;
	int rc = read_current(p, &d, &root, NULL);
	if (rc == 0 && p->up.buffer_append(digest, d, strlen(d)) != 0)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	free(d);
	free(root);
	return rc;
}

static int is_marker_of(const char *name, const char *hex)
{
	size_t n = strlen(hex);
	return !strncmp(name, hex, n) && !strcmp(name + n, MARKER_SUFFIX);
}

/* Remove every unpacked image but hex: markers first, so that a half
 * removed image is never taken for a complete one. */
static void remove_other_images(local_provider *p, const char *images, const char *hex)
{
	for (int pass = 0; pass < 2; pass++) {
		DIR *dir = opendir(images);
		if (!dir)
			return;
		struct dirent *e;
		while ((e = readdir(dir)) != NULL) {
			const char *n = e->d_name;
			size_t len = strlen(n), sl = strlen(MARKER_SUFFIX);
			int marker = len > sl && !strcmp(n + len - sl, MARKER_SUFFIX);
			if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, hex) ||
			    is_marker_of(n, hex) || marker != (pass == 0))
				continue;
			char *path = local_path_join(images, n);
			if (path && local_rm_rf(path) != 0)
				local_log(p, HYPERTEST_LOG_WARNING,
				          "cannot remove the old image %s: %s", path,
				          strerror(errno));
			free(path);
		}
		closedir(dir);
	}
}

static int unpack(local_provider *p, const char *image_ref, const char *dest,
                  const char *marker, const char *digest)
{
	struct stat st;
	if (stat(marker, &st) == 0 && stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
		local_log(p, HYPERTEST_LOG_DEBUG, "%s is already unpacked in %s",
		          digest, dest);
		return 0;
	}
	if (!p->up.image_unpack)
		return local_fail(p, HYPERTEST_ERR_UNSUPPORTED,
		                  "this core cannot unpack images (upcall %d missing)",
		                  HYPERTEST_UP_IMAGE_UNPACK);
	if ((unlink(marker) != 0 && errno != ENOENT) || local_rm_rf(dest) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot clear %s: %s", dest,
		                  strerror(errno));
	local_log(p, HYPERTEST_LOG_INFO, "unpacking %s into %s", digest, dest);
	int rc = p->up.image_unpack(p->core, p->image_dir, image_ref, dest);
	if (rc != 0)
		return rc;
	if (local_write_atomic(marker, digest, strlen(digest)) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot write %s: %s", marker,
		                  strerror(errno));
	return 0;
}

int local_function_update(void *self, const char *image_ref, const char *image_digest)
{
	local_provider *p = self;
	const char *hex = digest_hex(image_digest);
	if (!hex)
		return local_fail(p, HYPERTEST_ERR_INVALID,
		                  "'%s' is not an image digest (algorithm:hex)",
		                  image_digest ? image_digest : "");
	char *images = local_path_join(p->function_dir, "images");
	char *dest = images ? local_path_join(images, hex) : NULL;
	char *marker = dest ? local_asprintf("%s%s", dest, MARKER_SUFFIX) : NULL;
	char *current = local_path_join(p->function_dir, "current");
	json_t *j = json_pack("{s:s, s:s}", "digest", image_digest, "root", dest ? dest : "");
	char *text = NULL;
	int rc = 0;
	if (!marker || !current || !j)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	else if (local_mkdir_p(images) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s", images,
		                strerror(errno));
	if (rc == 0)
		rc = unpack(p, image_ref, dest, marker, image_digest);
	if (rc == 0) {
		/* Only isolation "image" needs the entry point. */
		json_t *ic = NULL;
		int icrc = read_image_config(p, image_digest, &ic);
		if (icrc != 0 && p->isolation == LOCAL_ISOLATION_IMAGE)
			rc = icrc;
		else if (icrc != 0)
			local_log(p, HYPERTEST_LOG_DEBUG, "no image config recorded: %s",
			          p->last_error);
		else if (json_object_set_new(j, "imageConfig", ic) != 0)
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (rc == 0 && !(text = json_dumps(j, JSON_SORT_KEYS)))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0 && local_write_atomic(current, text, strlen(text)) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot write %s: %s", current,
		                strerror(errno));
	if (rc == 0) {
		remove_other_images(p, images, hex);
		local_deployed_clear(&p->dep);
		p->dep_loaded = 0;
	}
	json_decref(j);
	free(text);
	free(images);
	free(dest);
	free(marker);
	free(current);
	return rc;
}
