/*
 * oci_layout.c - the OCI image layout on disk: blob store with sha256
 * verification on every read, the oci-layout marker and index.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "oci_layout.h"

#define LAYOUT_VERSION "1.0.0"
#define COPY_CHUNK 65536

int ht_oci_digest_valid(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0)
		return 0;
	const char *h = digest + 7;
	size_t n = 0;
	for (; h[n]; n++)
		if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f')))
			return 0;
	return n == 64;
}

char *ht_oci_blob_path(const char *dir, const char *digest)
{
	if (!ht_oci_digest_valid(digest))
		return NULL;
	return ht_asprintf("%s/blobs/sha256/%s", dir, digest + 7);
}

static int bad_digest(ht_err *err, const char *dir, const char *digest)
{
	return ht_err_set(err, HYPERTEST_ERR_IMAGE,
	                  "%s: invalid or unsupported digest '%s' (want sha256:<64 hex>)", dir,
	                  digest ? digest : "(null)");
}

/* ---- hashing ----------------------------------------------------------------- */

static EVP_MD_CTX *sha_new(void)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	return c;
}

static void sha_final(EVP_MD_CTX *c, char digest[80])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	static const char hx[] = "0123456789abcdef";
	EVP_DigestFinal_ex(c, md, &n);
	memcpy(digest, "sha256:", 7);
	for (unsigned i = 0; i < n; i++) {
		digest[7 + 2 * i] = hx[md[i] >> 4];
		digest[8 + 2 * i] = hx[md[i] & 15];
	}
	digest[7 + 2 * n] = '\0';
}

/* ---- layout ------------------------------------------------------------------ */

int ht_oci_layout_init(const char *dir, ht_err *err)
{
	char *blobs = ht_asprintf("%s/blobs/sha256", dir);
	char *marker = ht_path_join(dir, "oci-layout");
	char *index = ht_path_join(dir, "index.json");
	int rc = 0;
	if (!blobs || !marker || !index) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = ht_mkdir_p(blobs, err)) != 0)
		goto out;
	struct stat st;
	if (stat(marker, &st) == 0) {
		char *text = NULL;
		size_t len = 0;
		if ((rc = ht_read_file(marker, &text, &len, err)) != 0)
			goto out;
		json_error_t je;
		json_t *j = json_loadb(text, len, 0, &je);
		free(text);
		const char *v = json_string_value(json_object_get(j, "imageLayoutVersion"));
		if (!v || strcmp(v, LAYOUT_VERSION) != 0)
			rc = ht_err_set(err, HYPERTEST_ERR_IMAGE,
			                "%s: imageLayoutVersion %s%s%s is not supported (want %s)", marker,
			                v ? "'" : "", v ? v : "missing", v ? "'" : "", LAYOUT_VERSION);
		json_decref(j);
		if (rc)
			goto out;
	} else {
		static const char text[] = "{\"imageLayoutVersion\":\"" LAYOUT_VERSION "\"}";
		if ((rc = ht_write_file_atomic(marker, text, sizeof text - 1, err)) != 0)
			goto out;
	}
	if (stat(index, &st) != 0) {
		static const char text[] = "{\"manifests\":[],\"schemaVersion\":2}";
		rc = ht_write_file_atomic(index, text, sizeof text - 1, err);
	}
out:
	free(blobs);
	free(marker);
	free(index);
	return rc;
}

int ht_oci_blob_exists(const char *dir, const char *digest)
{
	char *p = ht_oci_blob_path(dir, digest);
	struct stat st;
	int ok = p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
	free(p);
	return ok;
}

/* A temporary file in the blob store directory. */
static int tmp_open(const char *dir, char **tmp_path, ht_err *err)
{
	char *p = ht_asprintf("%s/blobs/sha256/.tmp-XXXXXX", dir);
	if (!p)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	int fd = mkstemp(p);
	if (fd < 0) {
		int e = errno;
		ht_err_set(err, HYPERTEST_ERR_IO, "%s: cannot create a temporary file: %s", p,
		           strerror(e));
		free(p);
		return -1;
	}
	*tmp_path = p;
	return fd;
}

static int write_all(int fd, const void *data, size_t len, const char *path, ht_err *err)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return ht_err_set(err, HYPERTEST_ERR_IO, "%s: write: %s", path, strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ht_oci_blob_put_rename(const char *dir, const char *tmp_path, const char *digest,
                           ht_err *err)
{
	char *dst = ht_oci_blob_path(dir, digest);
	if (!dst)
		return bad_digest(err, dir, digest);
	int rc = 0;
	if (chmod(tmp_path, 0644) != 0 || rename(tmp_path, dst) != 0)
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: cannot store blob %s: %s", dst, digest,
		                strerror(errno));
	free(dst);
	return rc;
}

int ht_oci_blob_put(const char *dir, const void *data, size_t len, char digest[80], ht_err *err)
{
	char hex[65];
	if (ht_sha256_hex(data, len, hex) != 0)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "sha256 failed");
	snprintf(digest, 80, "sha256:%s", hex);
	char *dst = ht_oci_blob_path(dir, digest);
	if (!dst)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	struct stat st;
	int have = stat(dst, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len;
	free(dst);
	if (have)
		return 0;
	char *tmp = NULL;
	int fd = tmp_open(dir, &tmp, err);
	if (fd < 0)
		return err ? err->code : HYPERTEST_ERR_IO;
	int rc = write_all(fd, data, len, tmp, err);
	if (close(fd) != 0 && rc == 0)
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: close: %s", tmp, strerror(errno));
	if (rc == 0)
		rc = ht_oci_blob_put_rename(dir, tmp, digest, err);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* Copy src into a temporary file of dir's store while hashing; on success
 * the temporary file is renamed into place. */
static int copy_into_store(const char *dir, const char *src, const char *expected,
                           long long want_size, char digest[80], size_t *size, ht_err *err)
{
	int in = ht_open_regular(src, err);
	if (in < 0)
		return err && err->code ? err->code : HYPERTEST_ERR_IO;
	char *tmp = NULL;
	int out = tmp_open(dir, &tmp, err);
	if (out < 0) {
		close(in);
		return err ? err->code : HYPERTEST_ERR_IO;
	}
	EVP_MD_CTX *c = sha_new();
	char *buf = malloc(COPY_CHUNK);
	int rc = 0;
	unsigned long long total = 0;
	if (!c || !buf) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(in, buf, COPY_CHUNK);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: read: %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(c, buf, (size_t)n);
		total += (unsigned long long)n;
		if ((rc = write_all(out, buf, (size_t)n, tmp, err)) != 0)
			goto out;
	}
	char actual[80];
	sha_final(c, actual);
	if (expected && strcmp(expected, actual) != 0) {
		rc = ht_err_set(err, HYPERTEST_ERR_DIGEST, "%s: digest mismatch: expected %s, actual %s",
		                src, expected, actual);
		goto out;
	}
	if (want_size >= 0 && total != (unsigned long long)want_size) {
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: blob %s has %llu bytes, descriptor says %lld",
		                src, actual, total, want_size);
		goto out;
	}
	if (close(out) != 0) {
		out = -1;
		rc = ht_err_set(err, HYPERTEST_ERR_IO, "%s: close: %s", tmp, strerror(errno));
		goto out;
	}
	out = -1;
	if ((rc = ht_oci_blob_put_rename(dir, tmp, actual, err)) != 0)
		goto out;
	if (digest)
		memcpy(digest, actual, strlen(actual) + 1);
	if (size)
		*size = (size_t)total;
out:
	if (out >= 0)
		close(out);
	if (rc)
		unlink(tmp);
	close(in);
	free(tmp);
	free(buf);
	EVP_MD_CTX_free(c);
	return rc;
}

int ht_oci_blob_put_file(const char *dir, const char *src, const char *expected,
                         char digest[80], size_t *size, ht_err *err)
{
	if (expected && !ht_oci_digest_valid(expected))
		return bad_digest(err, src, expected);
	return copy_into_store(dir, src, expected, -1, digest, size, err);
}

int ht_oci_blob_copy(const char *src_dir, const char *dst_dir, const char *digest,
                     long long size, ht_err *err)
{
	if (!ht_oci_digest_valid(digest))
		return bad_digest(err, src_dir, digest);
	if (ht_oci_blob_exists(dst_dir, digest))
		return 0;
	char *src = ht_oci_blob_path(src_dir, digest);
	if (!src)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	int rc = copy_into_store(dst_dir, src, digest, size, NULL, NULL, err);
	if (rc == HYPERTEST_ERR_NOT_FOUND)
		ht_err_set(err, rc, "%s: blob %s is missing", src_dir, digest);
	free(src);
	return rc;
}

/* ---- reading ----------------------------------------------------------------- */

struct ht_oci_blob_reader {
	int fd;
	char *path;
	char *digest;
	long long size;
	unsigned long long seen;
	EVP_MD_CTX *sha;
	int done;
};

int ht_oci_blob_open(const char *dir, const char *digest, long long size,
                     ht_oci_blob_reader **out, ht_err *err)
{
	*out = NULL;
	if (!ht_oci_digest_valid(digest))
		return bad_digest(err, dir, digest);
	ht_oci_blob_reader *r = calloc(1, sizeof *r);
	if (!r)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	r->fd = -1;
	r->path = ht_oci_blob_path(dir, digest);
	r->digest = ht_strdup(digest);
	r->sha = sha_new();
	r->size = size;
	if (!r->path || !r->digest || !r->sha) {
		ht_oci_blob_reader_close(r);
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	/* a FIFO or a device among the blobs is refused, never waited on */
	r->fd = ht_open_regular(r->path, err);
	if (r->fd < 0) {
		int rc = err ? err->code : HYPERTEST_ERR_IO;
		if (rc == HYPERTEST_ERR_NOT_FOUND)
			ht_err_set(err, rc, "%s: blob %s: missing", dir, digest);
		else
			ht_err_prefix(err, "%s: blob %s", dir, digest);
		ht_oci_blob_reader_close(r);
		return rc ? rc : HYPERTEST_ERR_IO;
	}
	*out = r;
	return 0;
}

ssize_t ht_oci_blob_reader_read(ht_oci_blob_reader *r, void *buf, size_t n, ht_err *err)
{
	if (r->done)
		return 0;
	ssize_t got;
	do
		got = read(r->fd, buf, n);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		ht_err_set(err, HYPERTEST_ERR_IO, "%s: read: %s", r->path, strerror(errno));
		return -1;
	}
	if (got > 0) {
		EVP_DigestUpdate(r->sha, buf, (size_t)got);
		r->seen += (unsigned long long)got;
		return got;
	}
	char actual[80];
	sha_final(r->sha, actual);
	r->done = 1;
	if (strcmp(actual, r->digest) != 0) {
		ht_err_set(err, HYPERTEST_ERR_DIGEST, "%s: digest mismatch: expected %s, actual %s",
		           r->path, r->digest, actual);
		return -1;
	}
	if (r->size >= 0 && r->seen != (unsigned long long)r->size) {
		ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: blob %s has %llu bytes, descriptor says %lld",
		           r->path, r->digest, r->seen, r->size);
		return -1;
	}
	return 0;
}

int ht_oci_blob_reader_finish(ht_oci_blob_reader *r, ht_err *err)
{
	char buf[8192];
	for (;;) {
		ssize_t n = ht_oci_blob_reader_read(r, buf, sizeof buf, err);
		if (n < 0)
			return err ? err->code : HYPERTEST_ERR_IO;
		if (n == 0)
			return 0;
	}
}

void ht_oci_blob_reader_close(ht_oci_blob_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r->path);
	free(r->digest);
	EVP_MD_CTX_free(r->sha);
	free(r);
}

int ht_oci_blob_read(const char *dir, const char *digest, long long size, char **data,
                     size_t *len, ht_err *err)
{
	return ht_oci_blob_read_max(dir, digest, size, HT_OCI_CONFIG_MAX, "an image configuration",
	                            data, len, err);
}

static int too_large(ht_err *err, const char *dir, const char *digest, size_t max,
                     const char *what)
{
	char cap[32];
	ht_size_text(max, cap);
	return ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: blob %s is larger than %s, the limit for %s",
	                  dir, digest, cap, what);
}

int ht_oci_blob_read_max(const char *dir, const char *digest, long long size, size_t max,
                         const char *what, char **data, size_t *len, ht_err *err)
{
	*data = NULL;
	*len = 0;
	if (size >= 0 && (unsigned long long)size > max)
		return too_large(err, dir, digest, max, what);
	ht_oci_blob_reader *r = NULL;
	int rc = ht_oci_blob_open(dir, digest, size, &r, err);
	if (rc)
		return rc;
	ht_buf b = HT_BUF_INIT;
	char chunk[16384];
	for (;;) {
		ssize_t n = ht_oci_blob_reader_read(r, chunk, sizeof chunk, err);
		if (n < 0) {
			rc = err ? err->code : HYPERTEST_ERR_IO;
			break;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			rc = too_large(err, dir, digest, max, what);
			break;
		}
		if (ht_buf_append(&b, chunk, (size_t)n) != 0) {
			rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
			break;
		}
	}
	ht_oci_blob_reader_close(r);
	if (rc) {
		ht_buf_free(&b);
		return rc;
	}
	*len = b.len;
	*data = ht_buf_steal(&b);
	if (!*data)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}

/* ---- index.json -------------------------------------------------------------- */

char *ht_oci_json_dump(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

int ht_oci_index_read(const char *dir, json_t **index, ht_err *err)
{
	*index = NULL;
	char *path = ht_path_join(dir, "index.json");
	if (!path)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	struct stat st;
	if (stat(path, &st) != 0 && errno == ENOENT) {
		int rc = ht_err_set(err, HYPERTEST_ERR_NOT_FOUND, "%s: not an OCI image layout (%s missing)",
		                    dir, path);
		free(path);
		return rc;
	}
	char *text = NULL;
	size_t len = 0;
	int rc = ht_read_file_max(path, HT_OCI_MANIFEST_MAX, "an OCI image index", &text, &len, err);
	if (rc) {
		free(path);
		return rc;
	}
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	free(text);
	if (!j)
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s:%d:%d: %s", path, je.line, je.column,
		                je.text);
	else if (!json_is_object(j) || !json_is_array(json_object_get(j, "manifests")))
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: not an image index (no \"manifests\" array)",
		                path);
	else if (json_integer_value(json_object_get(j, "schemaVersion")) != 2)
		rc = ht_err_set(err, HYPERTEST_ERR_IMAGE, "%s: schemaVersion must be 2", path);
	free(path);
	if (rc) {
		json_decref(j);
		return rc;
	}
	*index = j;
	return 0;
}

int ht_oci_index_write(const char *dir, json_t *index, ht_err *err)
{
	char *text = ht_oci_json_dump(index);
	char *path = ht_path_join(dir, "index.json");
	int rc;
	if (!text || !path)
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	else
		rc = ht_write_file_atomic(path, text, strlen(text), err);
	free(text);
	free(path);
	return rc;
}

const char *ht_oci_desc_ref(json_t *desc)
{
	return json_string_value(
	        json_object_get(json_object_get(desc, "annotations"), HT_OCI_REF_ANNOTATION));
}

int ht_oci_index_set_ref(json_t *index, const char *ref, json_t *desc, ht_err *err)
{
	json_t *list = json_object_get(index, "manifests");
	if (!json_is_array(list))
		return ht_err_set(err, HYPERTEST_ERR_IMAGE, "index has no \"manifests\" array");
	json_t *ann = json_object_get(desc, "annotations");
	if (!json_is_object(ann)) {
		ann = json_object();
		if (!ann || json_object_set_new(desc, "annotations", ann) != 0)
			return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (json_object_set_new(ann, HT_OCI_REF_ANNOTATION, json_string(ref)) != 0)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "ref '%s' is not valid UTF-8", ref);
	size_t i = 0;
	while (i < json_array_size(list)) {
		const char *r = ht_oci_desc_ref(json_array_get(list, i));
		if (r && strcmp(r, ref) == 0)
			json_array_remove(list, i);
		else
			i++;
	}
	if (json_array_append(list, desc) != 0)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}
