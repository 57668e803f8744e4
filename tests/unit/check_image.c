/*
 * check_image.c - tests of the daemonless image code: reproducible layers
 * (layer.c), the OCI layout blob store and index.json (oci_layout.c),
 * images built on a base, written, read back and unpacked (image.c,
 * image_unpack.c), with layers crafted here for whiteouts, platforms and
 * hostile paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <jansson.h>

#include <hypertest/hypertest.h>

#include "image.h"
#include "layer.h"
#include "oci_layout.h"

extern char **environ;

/* ---- scratch directory ----------------------------------------------------------- */

static char tmp_root[4096];
static char **tp_list; /* what tp() allocated */
static size_t tp_n;

static void remove_tmp_root(void);

static void tmp_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmp_root, sizeof tmp_root, "%s/check_image.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		abort();
	}
}

static void tmp_teardown(void)
{
	if (getenv("CHECK_IMAGE_KEEP")) /* to look at what a failing test left */
		fprintf(stderr, "kept %s\n", tmp_root);
	else
		remove_tmp_root();
	for (size_t i = 0; i < tp_n; i++)
		free(tp_list[i]);
	free(tp_list);
	tp_list = NULL;
	tp_n = 0;
}

static void remove_tmp_root(void)
{
	/* directories unpacked read-only must become writable to be removed */
	char *argv[] = {"chmod", "-R", "u+rwx", tmp_root, NULL};
	pid_t pid;
	if (posix_spawnp(&pid, "chmod", NULL, NULL, argv, environ) == 0)
		waitpid(pid, NULL, 0);
	ht_rm_rf(tmp_root, NULL);
}

/* A path below the scratch directory; freed by the teardown. */

static char *tp(const char *fmt, ...) HT_PRINTF(1, 2);
static char *tp(const char *fmt, ...)
{
	char rel[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rel, sizeof rel, fmt, ap);
	va_end(ap);
	char *b = ht_asprintf("%s/%s", tmp_root, rel);
	char **n = realloc(tp_list, (tp_n + 1) * sizeof *n);
	ck_assert(b && n);
	tp_list = n;
	tp_list[tp_n++] = b;
	return b;
}

static void put_file(const char *path, const char *content, size_t len, unsigned mode)
{
	char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(ht_mkdir_p(dir, NULL), 0);
	free(dir);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

#define PUT(path, lit, mode) put_file(path, lit, sizeof(lit) - 1, mode)

static char *slurp(const char *path, size_t *len)
{
	char *data = NULL;
	size_t n = 0;
	ht_err err = {0};
	if (ht_read_file(path, &data, &n, &err) != 0)
		return NULL;
	if (len)
		*len = n;
	return data;
}

static void assert_same_file(const char *a, const char *b)
{
	size_t la = 0, lb = 0;
	char *da = slurp(a, &la), *db = slurp(b, &lb);
	ck_assert_msg(da && db, "cannot read %s or %s", a, b);
	ck_assert_msg(la == lb && memcmp(da, db, la) == 0, "%s and %s differ", a, b);
	free(da);
	free(db);
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- reading what a layout holds ------------------------------------------------- */

static json_t *blob_json(const char *layout, const char *digest)
{
	char *raw = NULL;
	size_t len = 0;
	ht_err err = {0};
	ck_assert_msg(ht_oci_blob_read(layout, digest, -1, &raw, &len, &err) == 0, "%s", err.msg);
	json_t *j = json_loadb(raw, len, 0, NULL);
	ck_assert_ptr_nonnull(j);
	free(raw);
	return j;
}

static json_t *index_desc(const char *layout, const char *ref)
{
	json_t *index = NULL;
	ht_err err = {0};
	ck_assert_msg(ht_oci_index_read(layout, &index, &err) == 0, "%s", err.msg);
	json_t *found = NULL;
	json_t *list = json_object_get(index, "manifests");
	for (size_t i = 0; i < json_array_size(list); i++) {
		const char *r = ht_oci_desc_ref(json_array_get(list, i));
		if (r && !strcmp(r, ref))
			found = json_incref(json_array_get(list, i));
	}
	json_decref(index);
	ck_assert_msg(found != NULL, "%s: no ref %s", layout, ref);
	return found;
}

static json_t *manifest_of(const char *layout, const char *ref)
{
	json_t *d = index_desc(layout, ref);
	json_t *m = blob_json(layout, json_string_value(json_object_get(d, "digest")));
	json_decref(d);
	return m;
}

static json_t *config_of(const char *layout, const char *ref)
{
	json_t *m = manifest_of(layout, ref);
	json_t *c = blob_json(layout, json_string_value(
	                                      json_object_get(json_object_get(m, "config"), "digest")));
	json_decref(m);
	return c;
}

static const char *layer_digest(json_t *manifest, size_t i)
{
	return json_string_value(
	        json_object_get(json_array_get(json_object_get(manifest, "layers"), i), "digest"));
}

/* ---- building ---------------------------------------------------------------------- */

/* A source tree with odd modes, a symlink, a nested and an empty directory. */
static void make_tree(const char *root, int variant)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/a.txt", root);
	PUT(p, "alpha\n", 0600);
	snprintf(p, sizeof p, "%s/bin/run.sh", root);
	PUT(p, "#!/bin/sh\necho run\n", 0700);
	snprintf(p, sizeof p, "%s/nested/deep/data.bin", root);
	put_file(p, "\x00\x01\x02\xff binary", 11, 0444);
	snprintf(p, sizeof p, "%s/nested/deep/group-exec", root);
	PUT(p, "g", 0610);
	snprintf(p, sizeof p, "%s/empty", root);
	ck_assert_int_eq(ht_mkdir_p(p, NULL), 0);
	chmod(p, 0700);
	snprintf(p, sizeof p, "%s/link.txt", root);
	ck_assert_int_eq(symlink("a.txt", p), 0);
	snprintf(p, sizeof p, "%s/nested/linkdir", root);
	ck_assert_int_eq(symlink("../bin", p), 0);
	snprintf(p, sizeof p, "%s/variant.txt", root);
	if (variant)
		PUT(p, "changed\n", 0644);
	else
		PUT(p, "original\n", 0644);
}

/* Build an image (no base) from src at /app, write it to layout as ref. */
static void build_simple(const char *src, const char *work, const char *layout, const char *ref,
                         char digest[80])
{
	ht_err err = {0};
	ht_image *img = ht_image_new(NULL, &err);
	ck_assert_msg(img != NULL, "%s", err.msg);
	ht_layer *lb = ht_layer_new();
	ck_assert_msg(ht_layer_add_path(lb, src, "/app", &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_layer_add_data(lb, "/etc/hypertest/conf", "k=v\n", 4, 0600, &err) == 0,
	              "%s", err.msg);
	ck_assert_msg(ht_image_append_layer(img, lb, work, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_write_layout(img, layout, ref, digest, &err) == 0, "%s", err.msg);
	char again[80];
	ck_assert_int_eq(ht_image_digest(img, again, &err), 0);
	ck_assert_str_eq(again, digest);
	ht_layer_free(lb);
	ht_image_free(img);
}

/* Copy a tree the way cp -r would under the current umask, with new times. */
static void copy_tree(const char *from, const char *to, time_t mtime)
{
	char *argv[] = {"cp", "-r", (char *)from, (char *)to, NULL};
	pid_t pid;
	int st = 0;
	ck_assert_int_eq(posix_spawnp(&pid, "cp", NULL, NULL, argv, environ), 0);
	waitpid(pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char *argv2[] = {"find", (char *)to, "-exec", "touch", "-h", "-d", NULL, "{}", "+", NULL};
	char when[64];
	snprintf(when, sizeof when, "@%lld", (long long)mtime);
	argv2[6] = when;
	ck_assert_int_eq(posix_spawnp(&pid, "find", NULL, NULL, argv2, environ), 0);
	waitpid(pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Run argv; stdout into *out (may be NULL); the exit status, -1 if not run. */
static int run(char *const argv[], char **out)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	ht_buf b = HT_BUF_INIT;
	ht_buf_append(&b, "", 0);
	char chunk[4096];
	ssize_t n;
	while (rc == 0 && (n = read(fds[0], chunk, sizeof chunk)) > 0)
		ht_buf_append(&b, chunk, (size_t)n);
	close(fds[0]);
	int st = 0;
	if (rc == 0)
		waitpid(pid, &st, 0);
	if (out)
		*out = ht_buf_steal(&b);
	else
		ht_buf_free(&b);
	return rc == 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const void *find_bytes(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(hay + i, needle, n) == 0)
			return hay + i;
	return NULL;
}

static int have_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy = strdup(path ? path : "/usr/bin:/bin");
	int found = 0;
	for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", d, name);
		found = access(p, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* ---- crafted layers ---------------------------------------------------------------- */

struct tent {
	const char *path;
	char type; /* f file, d dir, l symlink, h hard link */
	const char *data; /* content or link target */
	unsigned mode;
};

/* An uncompressed tar of the entries, stored as a blob; its digest. */
static void craft_tar(const char *layout, const struct tent *ents, size_t n, char digest[80])
{
	char *path = tp("crafted.tar");
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ents[i].path);
		archive_entry_set_perm(e, ents[i].mode ? ents[i].mode : 0644);
		switch (ents[i].type) {
		case 'd':
			archive_entry_set_filetype(e, AE_IFDIR);
			break;
		case 'l':
			archive_entry_set_filetype(e, AE_IFLNK);
			archive_entry_set_symlink(e, ents[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, ents[i].data);
			break;
		default:
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_size(e, (la_int64_t)strlen(ents[i].data));
		}
		ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
		if (ents[i].type == 'f')
			archive_write_data(a, ents[i].data, strlen(ents[i].data));
		archive_entry_free(e);
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	ht_err err = {0};
	ck_assert_msg(ht_oci_layout_init(layout, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_oci_blob_put_file(layout, path, NULL, digest, NULL, &err) == 0, "%s",
	              err.msg);
	unlink(path);
}

static json_t *descriptor(const char *layout, const char *mt, const char *digest)
{
	char *p = ht_oci_blob_path(layout, digest);
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	free(p);
	return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size",
	                 (json_int_t)st.st_size);
}

/* Config and manifest for crafted uncompressed layers; tagged ref. */
static void craft_image(const char *layout, const char *ref, char layers[][80], size_t n)
{
	json_t *diff_ids = json_array(), *descs = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(diff_ids, json_string(layers[i]));
		json_array_append_new(descs, descriptor(layout, "application/vnd.oci.image.layer.v1.tar",
		                                        layers[i]));
	}
	json_t *config = json_pack("{s:s, s:s, s:{s:s, s:o}}", "architecture", "amd64", "os", "linux",
	                           "rootfs", "type", "layers", "diff_ids", diff_ids);
	char *text = ht_oci_json_dump(config);
	char cdigest[80], mdigest[80];
	ht_err err = {0};
	ck_assert_int_eq(ht_oci_blob_put(layout, text, strlen(text), cdigest, &err), 0);
	free(text);
	json_t *m = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
	                      HT_MT_OCI_MANIFEST, "config",
	                      descriptor(layout, HT_MT_OCI_CONFIG, cdigest), "layers", descs);
	text = ht_oci_json_dump(m);
	ck_assert_int_eq(ht_oci_blob_put(layout, text, strlen(text), mdigest, &err), 0);
	free(text);
	json_t *index = NULL;
	ck_assert_int_eq(ht_oci_index_read(layout, &index, &err), 0);
	json_t *d = descriptor(layout, HT_MT_OCI_MANIFEST, mdigest);
	ck_assert_int_eq(ht_oci_index_set_ref(index, ref, d, &err), 0);
	ck_assert_int_eq(ht_oci_index_write(layout, index, &err), 0);
	json_decref(d);
	json_decref(index);
	json_decref(m);
	json_decref(config);
}

/* ---- tests: layers and round trip ------------------------------------------------ */

START_TEST(test_roundtrip)
{
	char *src = tp("src"), *work = tp("work"), *layout = tp("layout"), *dest = tp("dest");
	make_tree(src, 0);
	char digest[80];
	build_simple(src, work, layout, "v1", digest);
	ck_assert(ht_oci_digest_valid(digest));

	/* the layout itself */
	char *marker = slurp(tp("layout/oci-layout"), NULL);
	ck_assert_str_eq(marker, "{\"imageLayoutVersion\":\"1.0.0\"}");
	free(marker);
	json_t *d = index_desc(layout, "v1");
	ck_assert_str_eq(json_string_value(json_object_get(d, "digest")), digest);
	ck_assert_str_eq(json_string_value(json_object_get(d, "mediaType")), HT_MT_OCI_MANIFEST);
	json_decref(d);
	json_t *m = manifest_of(layout, "v1");
	ck_assert_int_eq(json_integer_value(json_object_get(m, "schemaVersion")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "config"), "mediaType")),
	                 HT_MT_OCI_CONFIG);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(m, "layers"),
	                                                                  0),
	                                                   "mediaType")),
	                 HT_MT_OCI_LAYER_GZIP);
	json_decref(m);
	json_t *c = config_of(layout, "v1");
	ck_assert_str_eq(json_string_value(json_object_get(c, "architecture")), "amd64");
	ck_assert_str_eq(json_string_value(json_object_get(c, "os")), "linux");
	ck_assert_int_eq(json_array_size(json_object_get(json_object_get(c, "rootfs"), "diff_ids")), 1);
	json_t *h = json_array_get(json_object_get(c, "history"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(h, "created")), "1970-01-01T00:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(h, "created_by")), "hypertest");
	json_decref(c);

	ht_err err = {0};
	ck_assert_msg(ht_image_unpack_layout(layout, "v1", dest, &err) == 0, "%s", err.msg);
	assert_same_file(tp("src/a.txt"), tp("dest/app/a.txt"));
	assert_same_file(tp("src/bin/run.sh"), tp("dest/app/bin/run.sh"));
	assert_same_file(tp("src/nested/deep/data.bin"), tp("dest/app/nested/deep/data.bin"));
	assert_same_file(tp("src/a.txt"), tp("dest/app/link.txt"));
	assert_same_file(tp("src/bin/run.sh"), tp("dest/app/nested/linkdir/run.sh"));
	/* symbolic links were followed: regular files and directories */
	struct stat st;
	ck_assert_int_eq(lstat(tp("dest/app/link.txt"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(lstat(tp("dest/app/nested/linkdir"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	/* normalised modes */
	ck_assert_uint_eq(mode_of(tp("dest/app/a.txt")), 0644);
	ck_assert_uint_eq(mode_of(tp("dest/app/bin/run.sh")), 0755);
	ck_assert_uint_eq(mode_of(tp("dest/app/nested/deep/data.bin")), 0644);
	ck_assert_uint_eq(mode_of(tp("dest/app/nested/deep/group-exec")), 0755);
	ck_assert_uint_eq(mode_of(tp("dest/app/empty")), 0755);
	ck_assert_uint_eq(mode_of(tp("dest/etc/hypertest/conf")), 0644);
	ck_assert_uint_eq(mode_of(tp("dest/etc")), 0755);
	char *conf = slurp(tp("dest/etc/hypertest/conf"), NULL);
	ck_assert_str_eq(conf, "k=v\n");
	free(conf);
	/* unpacking needs an empty destination */
	ck_assert_int_eq(ht_image_unpack_layout(layout, "v1", dest, &err), HYPERTEST_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.msg, dest));
}
END_TEST

START_TEST(test_reproducible)
{
	char *src = tp("src");
	make_tree(src, 0);
	/* (a umask may take a group execute bit away: that changes the mode) */
	unlink(tp("src/nested/deep/group-exec"));
	/* long and non-ASCII names go into pax headers */
	char longname[600];
	snprintf(longname, sizeof longname,
	         "%s/n\xc3\xa4me-%0150d/%0120d/file-with-a-rather-long-name-\xe2\x82\xac.txt", src, 7,
	         9);
	PUT(longname, "long\n", 0644);

	mode_t old = umask(022);
	copy_tree(src, tp("copy1"), 1000000000);
	umask(077);
	copy_tree(src, tp("copy2"), 1700000000);
	umask(old);
	ck_assert_uint_ne(mode_of(tp("copy1/variant.txt")), mode_of(tp("copy2/variant.txt")));

	char d1[80], d2[80], d3[80];
	build_simple(tp("copy1"), tp("work1"), tp("layout1"), "latest", d1);
	build_simple(tp("copy2"), tp("work2"), tp("layout2"), "latest", d2);
	ck_assert_str_eq(d1, d2);
	/* nor does the locale matter (file names are bytes) */
	if (setlocale(LC_ALL, "C.UTF-8") || setlocale(LC_ALL, "C.utf8")) {
		build_simple(tp("copy1"), tp("work3"), tp("layout3"), "latest", d3);
		setlocale(LC_ALL, "C");
		ck_assert_str_eq(d1, d3);
	}
	/* and identical layer blobs */
	json_t *m1 = manifest_of(tp("layout1"), "latest"), *m2 = manifest_of(tp("layout2"), "latest");
	ck_assert_str_eq(layer_digest(m1, 0), layer_digest(m2, 0));
	char *p1 = ht_oci_blob_path(tp("layout1"), layer_digest(m1, 0));
	char *p2 = ht_oci_blob_path(tp("layout2"), layer_digest(m2, 0));
	assert_same_file(p1, p2);
	free(p1);
	free(p2);
	json_decref(m1);
	json_decref(m2);

	/* the long name survives the round trip */
	ht_err err = {0};
	ck_assert_msg(ht_image_unpack_layout(tp("layout1"), NULL, tp("dest"), &err) == 0, "%s",
	              err.msg);
	char unpacked[8192];
	snprintf(unpacked, sizeof unpacked, "%s/dest/app%s", tmp_root, longname + strlen(src));
	assert_same_file(longname, unpacked);
}
END_TEST

/* Two layers: /app from dir1, /tests from dir2. */
static void build_two(const char *dir1, const char *dir2, const char *work, const char *layout,
                      char digest[80])
{
	ht_err err = {0};
	ht_image *img = ht_image_new("linux/amd64", &err);
	ht_layer *l1 = ht_layer_new(), *l2 = ht_layer_new();
	ck_assert_msg(ht_layer_add_path(l1, dir1, "/app", &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_layer_add_path(l2, dir2, "/tests", &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_append_layer(img, l1, work, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_append_layer(img, l2, work, &err) == 0, "%s", err.msg);
	ck_assert_msg(ht_image_write_layout(img, layout, "x", digest, &err) == 0, "%s", err.msg);
	ht_layer_free(l1);
	ht_layer_free(l2);
	ht_image_free(img);
}

START_TEST(test_change_one_file)
{
	make_tree(tp("one"), 0);
	make_tree(tp("two"), 0);
	char a[80], b[80];
	build_two(tp("one"), tp("two"), tp("work"), tp("layout"), a);
	json_t *ma = manifest_of(tp("layout"), "x");
	PUT(tp("two/variant.txt"), "changed\n", 0644);
	build_two(tp("one"), tp("two"), tp("work"), tp("layout"), b);
	json_t *mb = manifest_of(tp("layout"), "x");
	ck_assert_str_ne(a, b);
	ck_assert_str_eq(layer_digest(ma, 0), layer_digest(mb, 0));
	ck_assert_str_ne(layer_digest(ma, 1), layer_digest(mb, 1));
	/* only the mode's execute bit counts: 0644 -> 0600 changes nothing */
	chmod(tp("two/variant.txt"), 0600);
	char c[80];
	build_two(tp("one"), tp("two"), tp("work"), tp("layout"), c);
	ck_assert_str_eq(b, c);
	chmod(tp("two/variant.txt"), 0700);
	build_two(tp("one"), tp("two"), tp("work"), tp("layout"), c);
	ck_assert_str_ne(b, c);
	/* the tag was moved, not duplicated */
	json_t *index = NULL;
	ht_err err = {0};
	ck_assert_int_eq(ht_oci_index_read(tp("layout"), &index, &err), 0);
	ck_assert_int_eq(json_array_size(json_object_get(index, "manifests")), 1);
	json_decref(index);
	json_decref(ma);
	json_decref(mb);
}
END_TEST

START_TEST(test_system_tools)
{
	if (!have_program("tar") || !have_program("gzip"))
		return;
	make_tree(tp("src"), 0);
	char digest[80];
	build_simple(tp("src"), tp("work"), tp("layout"), "t", digest);
	json_t *m = manifest_of(tp("layout"), "t");
	char *blob = ht_oci_blob_path(tp("layout"), layer_digest(m, 0));
	char *gz[] = {"gzip", "-t", blob, NULL};
	ck_assert_int_eq(run(gz, NULL), 0);
	/* no time and no name in the gzip header: MTIME (bytes 4-7) zero, FLG 0 */
	size_t len = 0;
	unsigned char *raw = (unsigned char *)slurp(blob, &len);
	ck_assert_uint_ge(len, 10);
	ck_assert_uint_eq(raw[0], 0x1f);
	ck_assert_uint_eq(raw[1], 0x8b);
	ck_assert_uint_eq(raw[3], 0);
	ck_assert(raw[4] == 0 && raw[5] == 0 && raw[6] == 0 && raw[7] == 0);
	free(raw);

	char *out = NULL;
	char *list[] = {"tar", "-tzf", blob, NULL};
	ck_assert_int_eq(run(list, &out), 0);
	const char *want = "app/\napp/a.txt\napp/bin/\napp/bin/run.sh\napp/empty/\napp/link.txt\n"
	                   "app/nested/\napp/nested/deep/\napp/nested/deep/data.bin\n"
	                   "app/nested/deep/group-exec\napp/nested/linkdir/\napp/nested/linkdir/run.sh\n"
	                   "app/variant.txt\netc/\netc/hypertest/\netc/hypertest/conf\n";
	ck_assert_str_eq(out, want);
	free(out);
	char *verbose[] = {"tar", "--numeric-owner", "--full-time", "-tvzf", blob, NULL};
	ck_assert_int_eq(run(verbose, &out), 0);
	/* every line: owner 0/0, 1970-01-01 00:00:00 */
	size_t lines = 0;
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(strstr(l, " 0/0 ") && strstr(l, "1970-01-01 00:00:00"), "%s", l);
		lines++;
	}
	ck_assert_uint_eq(lines, 16);
	free(out);
	free(blob);
	json_decref(m);
}
END_TEST

START_TEST(test_diff_id)
{
	ht_layer *lb = ht_layer_new();
	ht_err err = {0};
	ck_assert_int_eq(ht_layer_add_data(lb, "x/y", "hello", 5, 0644, &err), 0);
	char diff_id[80], digest[80];
	size_t size = 0;
	ck_assert_msg(ht_layer_write(lb, "/w", tp("l.tgz"), diff_id, digest, &size, &err) == 0, "%s",
	              err.msg);
	/* digest and size are those of the file */
	size_t len = 0;
	char *raw = slurp(tp("l.tgz"), &len);
	char hex[65], want[80];
	ck_assert_uint_eq(size, len);
	ht_sha256_hex(raw, len, hex);
	snprintf(want, sizeof want, "sha256:%s", hex);
	ck_assert_str_eq(digest, want);
	free(raw);
	/* diff_id is that of the uncompressed stream: decompress with libarchive */
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_raw(a);
	ck_assert_int_eq(archive_read_open_filename(a, tp("l.tgz"), 4096), ARCHIVE_OK);
	struct archive_entry *e;
	ck_assert_int_eq(archive_read_next_header(a, &e), ARCHIVE_OK);
	ht_buf tar = HT_BUF_INIT;
	char chunk[4096];
	la_ssize_t n;
	while ((n = archive_read_data(a, chunk, sizeof chunk)) > 0)
		ht_buf_append(&tar, chunk, (size_t)n);
	archive_read_free(a);
	ht_sha256_hex(tar.data, tar.len, hex);
	snprintf(want, sizeof want, "sha256:%s", hex);
	ck_assert_str_eq(diff_id, want);
	/* relative image paths land in the working directory */
	ck_assert_ptr_nonnull(find_bytes(tar.data, tar.len, "w/x/y"));
	ck_assert_ptr_null(find_bytes(tar.data, tar.len, "PaxHeader"));
	ht_buf_free(&tar);
	ht_layer_free(lb);
}
END_TEST

START_TEST(test_layer_errors)
{
	ht_err err = {0};
	ht_layer *lb = ht_layer_new();
	/* a symbolic link loop names the path */
	ck_assert_int_eq(ht_mkdir_p(tp("loop/sub"), NULL), 0);
	ck_assert_int_eq(symlink("..", tp("loop/sub/up")), 0);
	ck_assert_int_eq(ht_layer_add_path(lb, tp("loop"), "/l", &err), HYPERTEST_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, tp("loop/sub/up")));
	ck_assert_ptr_nonnull(strstr(err.msg, "loop"));
	ck_assert_int_eq(symlink("self", tp("self")), 0);
	ck_assert_int_eq(ht_layer_add_path(lb, tp("self"), "/s", &err), HYPERTEST_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, tp("self")));
	ck_assert_int_eq(symlink("nowhere", tp("dangling")), 0);
	ck_assert_int_eq(ht_layer_add_path(lb, tp("dangling"), "/d", &err), HYPERTEST_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err.msg, "dangling"));
	ck_assert_int_eq(ht_layer_add_path(lb, tp("missing"), "/m", &err), HYPERTEST_ERR_NOT_FOUND);
	/* settings */
	ck_assert_int_eq(ht_layer_set(lb, "env", "NOEQUALS", &err), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(ht_layer_set(lb, "cmd", "\"not an array\"", &err), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(ht_layer_set(lb, "entrypoint", "[1]", &err), HYPERTEST_ERR_INVALID);
	ck_assert_int_eq(ht_layer_set(lb, "user", "root", &err), HYPERTEST_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.msg, "user"));
	ck_assert_int_eq(ht_layer_set(lb, "env", "A=1", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "B=2", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "A=3", &err), 0);
	ck_assert_uint_eq(ht_layer_setting_count(lb), 2);
	ck_assert_str_eq(ht_layer_setting_value(lb, 0), "A=3");
	/* nothing was kept of the failed additions */
	char d[80], f[80];
	size_t sz;
	ck_assert_int_eq(ht_layer_write(lb, "/", tp("empty.tgz"), d, f, &sz, &err), 0);
	/* a file cannot be the directory of another entry */
	ck_assert_int_eq(ht_layer_add_data(lb, "/x", "1", 1, 0644, &err), 0);
	ck_assert_int_eq(ht_layer_add_data(lb, "/x/y", "2", 1, 0644, &err), 0);
	ck_assert_int_eq(ht_layer_write(lb, "/", tp("bad.tgz"), d, f, &sz, &err),
	                 HYPERTEST_ERR_INVALID);
	ck_assert_ptr_nonnull(strstr(err.msg, "/x"));
	ck_assert(!exists(tp("bad.tgz")));
	ht_layer_free(lb);
	/* a path above the root */
	lb = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(lb, "../../x", "1", 1, 0644, &err), 0);
	ck_assert_int_eq(ht_layer_write(lb, "/a", tp("bad.tgz"), d, f, &sz, &err),
	                 HYPERTEST_ERR_INVALID);
	ht_layer_free(lb);
	/* a later addition of the same path wins */
	lb = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(lb, "/x", "1", 1, 0644, &err), 0);
	ck_assert_int_eq(ht_layer_add_data(lb, "/x", "2", 1, 0644, &err), 0);
	ht_image *img = ht_image_new("linux/arm64/v8", &err);
	ck_assert_int_eq(ht_image_append_layer(img, lb, tp("work"), &err), 0);
	ck_assert_int_eq(ht_image_write_layout(img, tp("layout"), NULL, d, &err), 0);
	ht_image *back = NULL;
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), NULL, "linux/amd64", &back, &err),
	                 HYPERTEST_ERR_IMAGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "linux/arm64"));
	ck_assert_msg(ht_image_from_layout(tp("layout"), NULL, "linux/arm64/v8", &back, &err) == 0,
	              "%s", err.msg);
	ck_assert_int_eq(ht_image_unpack(back, tp("dest"), &err), 0);
	char *x = slurp(tp("dest/x"), NULL);
	ck_assert_str_eq(x, "2");
	free(x);
	ht_image_free(back);
	ht_image_free(img);
	ht_layer_free(lb);
	ck_assert_ptr_null(ht_image_new("linux", &err));
	ck_assert_int_eq(err.code, HYPERTEST_ERR_INVALID);
}
END_TEST

/* ---- tests: base images --------------------------------------------------------------- */

static json_t *env_of(json_t *config)
{
	return json_object_get(json_object_get(config, "config"), "Env");
}

START_TEST(test_base_plus_layer)
{
	ht_err err = {0};
	/* the base, made with the same API */
	ht_image *base = ht_image_new(NULL, &err);
	ht_layer *bl = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(bl, "/usr/bin/tool", "#!/bin/sh\n", 10, 0755, &err), 0);
	ck_assert_int_eq(ht_layer_set(bl, "env", "PATH=/usr/bin", &err), 0);
	ck_assert_int_eq(ht_layer_set(bl, "env", "MODE=base", &err), 0);
	ck_assert_int_eq(ht_layer_set(bl, "workdir", "/srv", &err), 0);
	ck_assert_int_eq(ht_layer_set(bl, "cmd", "[\"serve\"]", &err), 0);
	ck_assert_int_eq(ht_layer_set(bl, "label", "org.example.base=yes", &err), 0);
	ck_assert_msg(ht_image_append_layer(base, bl, tp("basework"), &err) == 0, "%s", err.msg);
	char bdigest[80];
	ck_assert_int_eq(ht_image_write_layout(base, tp("base"), "base", bdigest, &err), 0);
	ht_layer_free(bl);
	ht_image_free(base);
	json_t *bconf = config_of(tp("base"), "base");
	const char *base_diff =
	        json_string_value(json_array_get(json_object_get(json_object_get(bconf, "rootfs"),
	                                                          "diff_ids"),
	                                         0));

	/* unchanged, the base keeps its digest */
	ht_image *img = NULL;
	ck_assert_msg(ht_image_from_layout(tp("base"), "base", NULL, &img, &err) == 0, "%s", err.msg);
	char same[80];
	ck_assert_int_eq(ht_image_digest(img, same, &err), 0);
	ck_assert_str_eq(same, bdigest);

	ht_layer *lb = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(lb, "tests/a.spec", "test\n", 5, 0644, &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "MODE=app", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "env", "EXTRA=1", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "entrypoint", "[\"/usr/bin/tool\",\"-x\"]", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "label", "org.example.app=1", &err), 0);
	ck_assert_int_eq(ht_layer_set(lb, "comment", "tests", &err), 0);
	ck_assert_msg(ht_image_append_layer(img, lb, tp("work"), &err) == 0, "%s", err.msg);
	char digest[80];
	ck_assert_msg(ht_image_write_layout(img, tp("out"), "app", digest, &err) == 0, "%s", err.msg);
	ht_layer_free(lb);
	ht_image_free(img);

	json_t *c = config_of(tp("out"), "app");
	json_t *diff_ids = json_object_get(json_object_get(c, "rootfs"), "diff_ids");
	ck_assert_int_eq(json_array_size(diff_ids), 2);
	ck_assert_str_eq(json_string_value(json_array_get(diff_ids, 0)), base_diff);
	json_t *env = env_of(c);
	ck_assert_int_eq(json_array_size(env), 3);
	ck_assert_str_eq(json_string_value(json_array_get(env, 0)), "PATH=/usr/bin");
	ck_assert_str_eq(json_string_value(json_array_get(env, 1)), "MODE=app");
	ck_assert_str_eq(json_string_value(json_array_get(env, 2)), "EXTRA=1");
	json_t *cc = json_object_get(c, "config");
	ck_assert_str_eq(json_string_value(json_object_get(cc, "WorkingDir")), "/srv");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(cc, "Entrypoint"), 1)), "-x");
	ck_assert_ptr_null(json_object_get(cc, "Cmd")); /* reset by the new entrypoint */
	json_t *labels = json_object_get(cc, "Labels");
	ck_assert_str_eq(json_string_value(json_object_get(labels, "org.example.base")), "yes");
	ck_assert_str_eq(json_string_value(json_object_get(labels, "org.example.app")), "1");
	json_t *hist = json_object_get(c, "history");
	ck_assert_int_eq(json_array_size(hist), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(hist, 1), "comment")), "tests");
	json_decref(c);
	json_decref(bconf);

	/* the new layout holds every blob: unpack it alone */
	ck_assert_msg(ht_image_unpack_layout(tp("out"), "app", tp("dest"), &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(mode_of(tp("dest/usr/bin/tool")), 0755);
	char *spec = slurp(tp("dest/srv/tests/a.spec"), NULL); /* relative: in the workdir */
	ck_assert_str_eq(spec, "test\n");
	free(spec);
	/* the config is serialised compact with sorted keys */
	json_t *m = manifest_of(tp("out"), "app");
	char *raw = NULL;
	size_t len;
	ck_assert_int_eq(ht_oci_blob_read(tp("out"), json_string_value(json_object_get(
	                                                     json_object_get(m, "config"), "digest")),
	                                  -1, &raw, &len, &err),
	                 0);
	json_t *reparsed = json_loads(raw, 0, NULL);
	char *canon = json_dumps(reparsed, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_str_eq(raw, canon);
	free(canon);
	json_decref(reparsed);
	free(raw);
	json_decref(m);
}
END_TEST

/* Rewrite the image tagged ref of layout as a Docker schema 2 image. */
static void dockerise(const char *layout, const char *ref, const char *new_ref)
{
	json_t *m = manifest_of(layout, ref);
	ht_err err = {0};
	json_object_set_new(m, "mediaType", json_string(HT_MT_DOCKER_MANIFEST));
	json_object_set_new(json_object_get(m, "config"), "mediaType",
	                    json_string(HT_MT_DOCKER_CONFIG));
	json_t *layers = json_object_get(m, "layers");
	for (size_t i = 0; i < json_array_size(layers); i++)
		json_object_set_new(json_array_get(layers, i), "mediaType",
		                    json_string(HT_MT_DOCKER_LAYER_GZIP));
	char *text = json_dumps(m, JSON_INDENT(3)); /* not our canonical form */
	char digest[80];
	ck_assert_int_eq(ht_oci_blob_put(layout, text, strlen(text), digest, &err), 0);
	free(text);
	json_t *index = NULL;
	ck_assert_int_eq(ht_oci_index_read(layout, &index, &err), 0);
	json_t *d = descriptor(layout, HT_MT_DOCKER_MANIFEST, digest);
	ck_assert_int_eq(ht_oci_index_set_ref(index, new_ref, d, &err), 0);
	ck_assert_int_eq(ht_oci_index_write(layout, index, &err), 0);
	json_decref(d);
	json_decref(index);
	json_decref(m);
}

START_TEST(test_docker_base)
{
	make_tree(tp("src"), 0);
	char digest[80];
	build_simple(tp("src"), tp("work"), tp("layout"), "oci", digest);
	dockerise(tp("layout"), "oci", "docker");
	json_t *dd = index_desc(tp("layout"), "docker");
	ht_err err = {0};
	ht_image *img = NULL;
	ck_assert_msg(ht_image_from_layout(tp("layout"), "docker", NULL, &img, &err) == 0, "%s",
	              err.msg);
	char same[80];
	ck_assert_int_eq(ht_image_digest(img, same, &err), 0); /* kept byte for byte */
	ck_assert_str_eq(same, json_string_value(json_object_get(dd, "digest")));
	json_decref(dd);
	ht_layer *lb = ht_layer_new();
	ck_assert_int_eq(ht_layer_add_data(lb, "/more", "more", 4, 0644, &err), 0);
	ck_assert_int_eq(ht_image_append_layer(img, lb, tp("work2"), &err), 0);
	ck_assert_int_eq(ht_image_write_layout(img, tp("out"), "d", digest, &err), 0);
	ht_layer_free(lb);
	ht_image_free(img);

	json_t *m = manifest_of(tp("out"), "d");
	ck_assert_str_eq(json_string_value(json_object_get(m, "mediaType")), HT_MT_DOCKER_MANIFEST);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "config"), "mediaType")),
	                 HT_MT_DOCKER_CONFIG);
	json_t *layers = json_object_get(m, "layers");
	ck_assert_int_eq(json_array_size(layers), 2);
	for (size_t i = 0; i < 2; i++)
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(layers, i), "mediaType")),
		                 HT_MT_DOCKER_LAYER_GZIP);
	json_decref(m);
	json_t *d = index_desc(tp("out"), "d");
	ck_assert_str_eq(json_string_value(json_object_get(d, "mediaType")), HT_MT_DOCKER_MANIFEST);
	json_decref(d);
	ck_assert_msg(ht_image_unpack_layout(tp("out"), "d", tp("dest"), &err) == 0, "%s", err.msg);
	assert_same_file(tp("src/a.txt"), tp("dest/app/a.txt"));
	ck_assert(exists(tp("dest/more")));
}
END_TEST

static void flip_byte(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	unsigned char c;
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x20;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

START_TEST(test_corrupt_blob)
{
	make_tree(tp("src"), 0);
	char digest[80];
	build_simple(tp("src"), tp("work"), tp("layout"), "c", digest);
	json_t *m = manifest_of(tp("layout"), "c");
	char *layer = ht_oci_blob_path(tp("layout"), layer_digest(m, 0));
	/* a byte of the gzip trailer: the tar itself still reads */
	flip_byte(layer, -3);
	ht_err err = {0};
	ck_assert_int_eq(ht_image_unpack_layout(tp("layout"), "c", tp("dest"), &err),
	                 HYPERTEST_ERR_DIGEST);
	ck_assert_msg(strstr(err.msg, layer_digest(m, 0)) && strstr(err.msg, "actual"), "%s", err.msg);
	flip_byte(layer, -3);
	/* a byte in the middle of the deflate stream */
	flip_byte(layer, 40);
	ck_assert_int_eq(ht_rm_rf(tp("dest"), NULL), 0);
	ck_assert_int_eq(ht_image_unpack_layout(tp("layout"), "c", tp("dest"), &err),
	                 HYPERTEST_ERR_DIGEST);
	/* copying it into another layout is refused too */
	ht_image *img = NULL;
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), "c", NULL, &img, &err), 0);
	ck_assert_int_eq(ht_image_write_layout(img, tp("other"), "c", digest, &err),
	                 HYPERTEST_ERR_DIGEST);
	ck_assert(!ht_oci_blob_exists(tp("other"), layer_digest(m, 0)));
	ht_image_free(img);
	free(layer);
	/* a corrupted config is found when the image is opened */
	char *config = ht_oci_blob_path(
	        tp("layout"), json_string_value(json_object_get(json_object_get(m, "config"), "digest")));
	flip_byte(config, 5);
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), "c", NULL, &img, &err),
	                 HYPERTEST_ERR_DIGEST);
	ck_assert_ptr_nonnull(strstr(err.msg, tp("layout")));
	ck_assert_ptr_nonnull(strstr(err.msg, "'c'"));
	free(config);
	json_decref(m);
	/* a digest that is not sha256:<hex> never reaches the file system */
	size_t len = 0;
	ck_assert_int_eq(ht_oci_blob_read(tp("layout"), "sha256:../../etc/passwd", -1, &config, &len,
	                                  &err),
	                 HYPERTEST_ERR_IMAGE);
}
END_TEST

START_TEST(test_refs)
{
	make_tree(tp("src"), 0);
	char d1[80], d2[80];
	build_simple(tp("src"), tp("work"), tp("layout"), "one", d1);
	ht_err err = {0};
	ht_image *img = NULL;
	/* the only image */
	ck_assert_msg(ht_image_from_layout(tp("layout"), NULL, NULL, &img, &err) == 0, "%s", err.msg);
	ht_image_free(img);
	make_tree(tp("src2"), 1);
	build_simple(tp("src2"), tp("work"), tp("layout"), "two", d2);
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), NULL, NULL, &img, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "latest"));
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), "three", NULL, &img, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, "three"));
	ck_assert_ptr_nonnull(strstr(err.msg, tp("layout")));
	build_simple(tp("src2"), tp("work"), tp("layout"), "latest", d2);
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), NULL, NULL, &img, &err), 0);
	char d[80];
	ht_image_digest(img, d, &err);
	ck_assert_str_eq(d, d2);
	ht_image_free(img);
	ck_assert_int_eq(ht_image_from_layout(tp("layout"), "one", NULL, &img, &err), 0);
	ht_image_digest(img, d, &err);
	ck_assert_str_eq(d, d1);
	ht_image_free(img);
	ck_assert_int_eq(ht_image_from_layout(tp("nolayout"), "one", NULL, &img, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	ck_assert_ptr_nonnull(strstr(err.msg, tp("nolayout")));
}
END_TEST

/* ---- tests: crafted layers ------------------------------------------------------------- */

START_TEST(test_whiteouts)
{
	char *layout = tp("layout");
	char l[3][80];
	const struct tent one[] = {
	        {"d", 'd', NULL, 0755},          {"d/a", 'f', "a", 0},
	        {"d/b", 'f', "b", 0},            {"e", 'd', NULL, 0750},
	        {"e/x", 'f', "x", 0},            {"e/sub", 'd', NULL, 0755},
	        {"e/sub/old", 'f', "old", 0},    {"f", 'f', "f", 0},
	        {"g", 'd', NULL, 0755},          {"g/deep", 'd', NULL, 0755},
	        {"g/deep/file", 'f', "gd", 0},   {"keep", 'f', "keep", 0600},
	        {"ro", 'd', NULL, 0555},         {"ro/file", 'f', "r", 0444},
	        {"ln", 'l', "keep", 0777},       {"hard", 'h', "keep", 0},
	};
	craft_tar(layout, one, sizeof one / sizeof one[0], l[0]);
	/* y comes before the opaque marker: same-layer entries stay */
	const struct tent two[] = {
	        {"d/.wh.a", 'f', "", 0},        {"e/y", 'f', "y", 0},
	        {"e/sub", 'd', NULL, 0755},     {"e/sub/new", 'f', "new", 0},
	        {"e/.wh..wh..opq", 'f', "", 0}, {".wh.f", 'f', "", 0},
	        {".wh.g", 'f', "", 0},          {"d/c", 'f', "c", 0},
	        {"d/.wh.c", 'f', "", 0}, /* same layer: c stays */
	        {"ro/new", 'f', "n", 0644},
	};
	craft_tar(layout, two, sizeof two / sizeof two[0], l[1]);
	craft_image(layout, "w", l, 2);
	ht_err err = {0};
	char *dest = tp("dest");
	ck_assert_msg(ht_image_unpack_layout(layout, "w", dest, &err) == 0, "%s", err.msg);
	ck_assert(!exists(tp("dest/d/a")));
	ck_assert(!exists(tp("dest/d/.wh.a")));
	ck_assert(exists(tp("dest/d/b")));
	ck_assert(exists(tp("dest/d/c")));
	ck_assert(!exists(tp("dest/e/x")));
	ck_assert(exists(tp("dest/e/y")));
	ck_assert(exists(tp("dest/e/sub/new")));
	ck_assert(!exists(tp("dest/e/sub/old")));
	ck_assert(!exists(tp("dest/e/.wh..wh..opq")));
	ck_assert(!exists(tp("dest/f")));
	ck_assert(!exists(tp("dest/g")));
	ck_assert(exists(tp("dest/keep")));
	ck_assert_uint_eq(mode_of(tp("dest/keep")), 0600);
	ck_assert_uint_eq(mode_of(tp("dest/e")), 0750);
	/* a read-only directory got a file from a later layer, and stays read-only */
	ck_assert(exists(tp("dest/ro/new")));
	ck_assert_uint_eq(mode_of(tp("dest/ro")), 0555);
	ck_assert_uint_eq(mode_of(tp("dest/ro/file")), 0444);
	char target[64] = {0};
	ck_assert_int_eq(readlink(tp("dest/ln"), target, sizeof target - 1), 4);
	ck_assert_str_eq(target, "keep");
	struct stat a, b;
	ck_assert_int_eq(stat(tp("dest/hard"), &a), 0);
	ck_assert_int_eq(stat(tp("dest/keep"), &b), 0);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
}
END_TEST

/* Unpacking a one-layer crafted image must fail with IMAGE, naming what. */
static void assert_refused(const struct tent *ents, size_t n, const char *needle)
{
	static int round;
	char *layout = tp("evil%d", round);
	char *dest = tp("evil-dest%d", round);
	round++;
	char l[1][80];
	craft_tar(layout, ents, n, l[0]);
	craft_image(layout, "evil", l, 1);
	ht_err err = {0};
	ck_assert_int_eq(ht_image_unpack_layout(layout, "evil", dest, &err), HYPERTEST_ERR_IMAGE);
	ck_assert_msg(strstr(err.msg, needle) != NULL, "'%s' not in: %s", needle, err.msg);
	ck_assert_msg(strstr(err.msg, l[0]) != NULL, "no layer digest in: %s", err.msg);
}

START_TEST(test_path_traversal)
{
	char *outside = tp("outside");
	ck_assert_int_eq(ht_mkdir_p(outside, NULL), 0);
	const struct tent dotdot[] = {{"ok", 'f', "1", 0}, {"../outside/evil", 'f', "x", 0}};
	assert_refused(dotdot, 2, "../outside/evil");
	const struct tent deep[] = {{"a/b/../../../outside/evil2", 'f', "x", 0}};
	assert_refused(deep, 1, "evil2");
	char abs[4200];
	snprintf(abs, sizeof abs, "%s/evil3", outside);
	const struct tent absolute[] = {{abs, 'f', "x", 0}};
	assert_refused(absolute, 1, "absolute");
	const struct tent hard[] = {{"h", 'h', "../../etc/passwd", 0}};
	assert_refused(hard, 1, "hard link");
	const struct tent rel_link[] = {{"sub", 'd', NULL, 0755},
	                                {"sub/up", 'l', "../../outside", 0777}};
	assert_refused(rel_link, 2, "outside the image");
	ck_assert(!exists(tp("outside/evil")));
	ck_assert(!exists(tp("outside/evil2")));
	ck_assert(!exists(tp("outside/evil3")));

	/* an absolute symbolic link means the image's root: writing through it
	 * stays inside dest */
	const struct tent through[] = {{"esc", 'l', outside, 0777},
	                               {"esc/pwned", 'f', "x", 0},
	                               {"up", 'l', "/../../..", 0777},
	                               {"up/pwned2", 'f', "y", 0}};
	char l[1][80];
	craft_tar(tp("via"), through, 4, l[0]);
	craft_image(tp("via"), "x", l, 1);
	ht_err err = {0};
	ck_assert_msg(ht_image_unpack_layout(tp("via"), "x", tp("via-dest"), &err) == 0, "%s",
	              err.msg);
	ck_assert(!exists(tp("outside/pwned")));
	char inside[4300];
	snprintf(inside, sizeof inside, "%s/via-dest%s/pwned", tmp_root, outside);
	ck_assert_msg(exists(inside), "%s missing", inside);
	ck_assert(exists(tp("via-dest/pwned2")));
	ck_assert(!exists(tp("pwned2")));
	/* relative links are followed from where they are */
	const struct tent climb[] = {{"a", 'd', NULL, 0755},
	                             {"a/b", 'l', "..", 0777},
	                             {"a/b/a/b/c", 'f', "z", 0}};
	craft_tar(tp("via2"), climb, 3, l[0]);
	craft_image(tp("via2"), "x", l, 1);
	ck_assert_msg(ht_image_unpack_layout(tp("via2"), "x", tp("via2-dest"), &err) == 0, "%s",
	              err.msg);
	ck_assert(exists(tp("via2-dest/c")));
}
END_TEST

START_TEST(test_index_platforms)
{
	ht_err err = {0};
	char *layout = tp("layout");
	const char *plats[] = {"linux/amd64", "linux/arm64", "linux/arm/v7"};
	char digests[3][80];
	for (int i = 0; i < 3; i++) {
		ht_image *img = ht_image_new(plats[i], &err);
		ht_layer *lb = ht_layer_new();
		ck_assert_int_eq(ht_layer_add_data(lb, "/platform", plats[i], strlen(plats[i]), 0644,
		                                   &err),
		                 0);
		ck_assert_int_eq(ht_image_append_layer(img, lb, tp("work"), &err), 0);
		char ref[32];
		snprintf(ref, sizeof ref, "p%d", i);
		ck_assert_int_eq(ht_image_write_layout(img, layout, ref, digests[i], &err), 0);
		ht_layer_free(lb);
		ht_image_free(img);
	}
	/* an index over the three, in a Docker list and in an OCI index */
	for (int docker = 0; docker < 2; docker++) {
		json_t *list = json_array();
		for (int i = 0; i < 3; i++) {
			json_t *d = descriptor(layout, HT_MT_OCI_MANIFEST, digests[i]);
			char os[16], arch[16], variant[16] = "";
			ck_assert_int_ge(sscanf(plats[i], "%15[^/]/%15[^/]/%15s", os, arch, variant), 2);
			json_t *p = json_pack("{s:s, s:s}", "os", os, "architecture", arch);
			if (*variant)
				json_object_set_new(p, "variant", json_string(variant));
			json_object_set_new(d, "platform", p);
			json_array_append_new(list, d);
		}
		const char *mt = docker ? HT_MT_DOCKER_LIST : HT_MT_OCI_INDEX;
		json_t *idx = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", mt,
		                        "manifests", list);
		char *text = ht_oci_json_dump(idx);
		char idigest[80];
		ck_assert_int_eq(ht_oci_blob_put(layout, text, strlen(text), idigest, &err), 0);
		free(text);
		json_decref(idx);
		json_t *index = NULL;
		ck_assert_int_eq(ht_oci_index_read(layout, &index, &err), 0);
		json_t *d = descriptor(layout, mt, idigest);
		ck_assert_int_eq(ht_oci_index_set_ref(index, "multi", d, &err), 0);
		ck_assert_int_eq(ht_oci_index_write(layout, index, &err), 0);
		json_decref(d);
		json_decref(index);

		for (int i = 0; i < 3; i++) {
			ht_image *img = NULL;
			ck_assert_msg(ht_image_from_layout(layout, "multi", plats[i], &img, &err) == 0, "%s",
			              err.msg);
			char got[80];
			ht_image_digest(img, got, &err);
			ck_assert_str_eq(got, digests[i]);
			char *dest = tp("dest-%d-%d", docker, i);
			ck_assert_int_eq(ht_image_unpack(img, dest, &err), 0);
			char f[4200];
			snprintf(f, sizeof f, "%s/platform", dest);
			char *content = slurp(f, NULL);
			ck_assert_str_eq(content, plats[i]);
			free(content);
			ht_image_free(img);
		}
		ht_image *img = NULL;
		ck_assert_int_eq(ht_image_from_layout(layout, "multi", "linux/s390x", &img, &err),
		                 HYPERTEST_ERR_NOT_FOUND);
		ck_assert_ptr_nonnull(strstr(err.msg, "linux/s390x"));
		ck_assert_ptr_nonnull(strstr(err.msg, "multi"));
		ck_assert_int_eq(ht_image_from_layout(layout, "multi", "linux/arm/v6", &img, &err),
		                 HYPERTEST_ERR_NOT_FOUND);
		/* without a platform: linux/amd64 */
		ck_assert_msg(ht_image_unpack_layout(layout, "multi", tp("dflt%d", docker), &err) == 0,
		              "%s", err.msg);
		char *content = slurp(tp("dflt%d/platform", docker), NULL);
		ck_assert_str_eq(content, "linux/amd64");
		free(content);
	}

	/* hypertest deploy on that base: the configuration's "platform" picks
	 * the manifest of the index (through the fixture provider) */
	{
		const char *tests_build = getenv("HT_TESTS_BUILDDIR");
		char cfg[8192], link_from[4200], link_to[4300];
		char *project = tp("project"), *plugins = tp("plugins"), *content;
		hypertest *h;

		ck_assert_int_eq(ht_mkdir_p(tp("project/tests"), &err), 0);
		ck_assert_int_eq(ht_mkdir_p(plugins, &err), 0);
		put_file(tp("project/tests/t"), "a test\n", 7, 0644);
		snprintf(cfg, sizeof cfg,
		         "{\"platform\": \"linux/arm64\", \"testRunner\": {\"plugin\": \"fixture\","
		         " \"options\": {\"count\": 1}}, \"cloudProvider\": {\"plugin\": \"fixture\","
		         " \"options\": {\"target\": {\"layout\": \"%s\", \"baseLayout\": \"%s\","
		         " \"baseRef\": \"multi\"}}}}",
		         tp("deployed"), layout);
		put_file(tp("project/hypertest.config.json"), cfg, strlen(cfg), 0644);
		snprintf(link_from, sizeof link_from, "%s/abi/.libs/fixture-good.so",
		         tests_build && *tests_build ? tests_build : HT_TESTS_BUILDDIR);
		snprintf(link_to, sizeof link_to, "%s/fixture-good.so", plugins);
		ck_assert_int_eq(symlink(link_from, link_to), 0);
		setenv("HYPERTEST_PLUGIN_PATH", plugins, 1);
		h = hypertest_new();
		ck_assert_int_eq(hypertest_set_project_dir(h, project), 0);
		ck_assert_int_eq(hypertest_config_load_file(h, NULL), 0);
		ck_assert_msg(hypertest_deploy(h) == 0, "%s", hypertest_errmsg(h));
		hypertest_free(h);
		ck_assert_msg(ht_image_unpack_layout(tp("deployed"), "latest", tp("deployed-root"), &err) == 0,
		              "%s", err.msg);
		content = slurp(tp("deployed-root/platform"), NULL);
		ck_assert_str_eq(content, "linux/arm64");
		free(content);
	}
}
END_TEST

START_TEST(test_layout_store)
{
	ht_err err = {0};
	char *dir = tp("store");
	ck_assert_int_eq(ht_oci_layout_init(dir, &err), 0);
	char *index = slurp(tp("store/index.json"), NULL);
	ck_assert_str_eq(index, "{\"manifests\":[],\"schemaVersion\":2}");
	free(index);
	char digest[80];
	ck_assert_int_eq(ht_oci_blob_put(dir, "abc", 3, digest, &err), 0);
	ck_assert_str_eq(digest,
	                 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert(ht_oci_blob_exists(dir, digest));
	char *data = NULL;
	size_t len = 0;
	ck_assert_int_eq(ht_oci_blob_read(dir, digest, 3, &data, &len, &err), 0);
	ck_assert_str_eq(data, "abc");
	free(data);
	ck_assert_int_eq(ht_oci_blob_read(dir, digest, 4, &data, &len, &err), HYPERTEST_ERR_IMAGE);
	ck_assert_int_eq(ht_oci_blob_read(dir,
	                                  "sha256:0000000000000000000000000000000000000000000000000000"
	                                  "000000000000",
	                                  -1, &data, &len, &err),
	                 HYPERTEST_ERR_NOT_FOUND);
	PUT(tp("file"), "abc", 0600);
	char d2[80];
	size_t sz = 0;
	ck_assert_int_eq(ht_oci_blob_put_file(tp("other"), tp("file"), digest, d2, &sz, &err),
	                 HYPERTEST_ERR_IO); /* not a layout */
	ck_assert_int_eq(ht_oci_layout_init(tp("other"), &err), 0);
	ck_assert_int_eq(ht_oci_blob_put_file(tp("other"), tp("file"), digest, d2, &sz, &err), 0);
	ck_assert_str_eq(d2, digest);
	ck_assert_uint_eq(sz, 3);
	PUT(tp("file"), "abd", 0600);
	ck_assert_int_eq(ht_oci_blob_put_file(tp("third"), tp("file"), digest, d2, &sz, &err),
	                 HYPERTEST_ERR_IO);
	ck_assert_int_eq(ht_oci_layout_init(tp("third"), &err), 0);
	ck_assert_int_eq(ht_oci_blob_put_file(tp("third"), tp("file"), digest, d2, &sz, &err),
	                 HYPERTEST_ERR_DIGEST);
	ck_assert_ptr_nonnull(strstr(err.msg, digest));
	ck_assert(!ht_oci_blob_exists(tp("third"), digest));
	/* refs: replaced, others kept */
	json_t *idx = NULL;
	ck_assert_int_eq(ht_oci_index_read(dir, &idx, &err), 0);
	json_t *a = json_pack("{s:s}", "digest", "sha256:a"), *b = json_pack("{s:s}", "digest", "b");
	json_t *c = json_pack("{s:s}", "digest", "c");
	ck_assert_int_eq(ht_oci_index_set_ref(idx, "x", a, &err), 0);
	ck_assert_int_eq(ht_oci_index_set_ref(idx, "y", b, &err), 0);
	ck_assert_int_eq(ht_oci_index_set_ref(idx, "x", c, &err), 0);
	json_t *list = json_object_get(idx, "manifests");
	ck_assert_int_eq(json_array_size(list), 2);
	ck_assert_str_eq(ht_oci_desc_ref(json_array_get(list, 0)), "y");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "digest")), "c");
	ck_assert_int_eq(ht_oci_index_write(dir, idx, &err), 0);
	json_decref(a);
	json_decref(b);
	json_decref(c);
	json_decref(idx);
	PUT(tp("store/index.json"), "{\"manifests\": [}", 0644);
	ck_assert_int_eq(ht_oci_index_read(dir, &idx, &err), HYPERTEST_ERR_IMAGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "index.json:1:"));
	PUT(tp("store/oci-layout"), "{\"imageLayoutVersion\":\"2.0.0\"}", 0644);
	ck_assert_int_eq(ht_oci_layout_init(dir, &err), HYPERTEST_ERR_IMAGE);
	ck_assert_ptr_nonnull(strstr(err.msg, "2.0.0"));
}
END_TEST

static Suite *image_suite(void)
{
	Suite *s = suite_create("image");
	TCase *tc = tcase_create("image");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_reproducible);
	tcase_add_test(tc, test_change_one_file);
	tcase_add_test(tc, test_system_tools);
	tcase_add_test(tc, test_diff_id);
	tcase_add_test(tc, test_layer_errors);
	tcase_add_test(tc, test_base_plus_layer);
	tcase_add_test(tc, test_docker_base);
	tcase_add_test(tc, test_corrupt_blob);
	tcase_add_test(tc, test_refs);
	tcase_add_test(tc, test_whiteouts);
	tcase_add_test(tc, test_path_traversal);
	tcase_add_test(tc, test_index_platforms);
	tcase_add_test(tc, test_layout_store);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(image_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
