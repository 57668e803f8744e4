/*
 * check_unpack_hostile.c - hostile layers against the image unpacker
 * (image_unpack.c): a directory mode applied through a symbolic link put
 * in the directory's place, whiteouts naming "." or "..", setuid bits, the
 * mode of the unpacked root; after each, nothing outside the unpack root
 * exists or changed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <archive.h>
#include <archive_entry.h>
#include <check.h>
#include <jansson.h>

#include <hypertest/hypertest.h>

#include "image.h"
#include "oci_layout.h"

static char tmp_root[4096];

static void tmp_setup(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(tmp_root, sizeof tmp_root, "%s/check_unpack_hostile.XXXXXX", t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmp_root));
}

/* The same tests on a kernel without openat2: a seccomp filter makes it
 * fail with ENOSYS in the test's process, and the unpacker walks the path
 * one component at a time. */
static void no_openat2_setup(void)
{
	tmp_setup();
#ifdef SYS_openat2
	struct sock_filter f[] = {
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
	ck_assert_int_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	ck_assert_int_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
	errno = 0;
	ck_assert_int_eq(syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0), -1);
	ck_assert_int_eq(errno, ENOSYS);
#endif
}

static void make_writable(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	chmod(path, 0700);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char sub[8192];
		snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
		make_writable(sub);
	}
	if (d)
		closedir(d);
}

static void tmp_teardown(void)
{
	make_writable(tmp_root);
	ht_rm_rf(tmp_root, NULL);
}

static char *tp(char *buf, const char *name)
{
	snprintf(buf, 4200, "%s/%s", tmp_root, name);
	return buf;
}

struct tent {
	const char *path;
	char type; /* f file, d dir, l symlink */
	const char *data;
	unsigned mode;
};

/* One uncompressed tar blob per layer in layout, an image of them as ref. */
static void craft(const char *layout, const char *ref, const struct tent *const *layers,
                  const size_t *counts, size_t nlayers)
{
	ht_err err = {0};
	ck_assert_msg(ht_oci_layout_init(layout, &err) == 0, "%s", err.msg);
	json_t *diff_ids = json_array(), *descs = json_array();
	for (size_t l = 0; l < nlayers; l++) {
		char tar[4200], digest[80];
		snprintf(tar, sizeof tar, "%s/layer.tar", tmp_root);
		struct archive *a = archive_write_new();
		archive_write_set_format_pax_restricted(a);
		ck_assert_int_eq(archive_write_open_filename(a, tar), ARCHIVE_OK);
		for (size_t i = 0; i < counts[l]; i++) {
			const struct tent *t = &layers[l][i];
			struct archive_entry *e = archive_entry_new();
			archive_entry_set_pathname(e, t->path);
			archive_entry_set_perm(e, t->mode ? t->mode : 0644);
			if (t->type == 'd') {
				archive_entry_set_filetype(e, AE_IFDIR);
			} else if (t->type == 'l') {
				archive_entry_set_filetype(e, AE_IFLNK);
				archive_entry_set_symlink(e, t->data);
			} else {
				archive_entry_set_filetype(e, AE_IFREG);
				archive_entry_set_size(e, (la_int64_t)strlen(t->data));
			}
			ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
			if (t->type == 'f')
				archive_write_data(a, t->data, strlen(t->data));
			archive_entry_free(e);
		}
		ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
		archive_write_free(a);
		ck_assert_msg(ht_oci_blob_put_file(layout, tar, NULL, digest, NULL, &err) == 0, "%s",
		              err.msg);
		unlink(tar);
		char *bp = ht_oci_blob_path(layout, digest);
		struct stat st;
		ck_assert_int_eq(stat(bp, &st), 0);
		free(bp);
		json_array_append_new(diff_ids, json_string(digest));
		json_array_append_new(descs, json_pack("{s:s, s:s, s:I}", "mediaType",
		                                       "application/vnd.oci.image.layer.v1.tar",
		                                       "digest", digest, "size",
		                                       (json_int_t)st.st_size));
	}
	json_t *config = json_pack("{s:s, s:s, s:{s:s, s:o}}", "architecture", "amd64", "os",
	                           "linux", "rootfs", "type", "layers", "diff_ids", diff_ids);
	char *text = ht_oci_json_dump(config);
	char cdigest[80], mdigest[80];
	ck_assert_int_eq(ht_oci_blob_put(layout, text, strlen(text), cdigest, &err), 0);
	json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2,
	                      "mediaType", HT_MT_OCI_MANIFEST, "config", "mediaType",
	                      HT_MT_OCI_CONFIG, "digest", cdigest, "size",
	                      (json_int_t)strlen(text), "layers", descs);
	free(text);
	text = ht_oci_json_dump(m);
	ck_assert_int_eq(ht_oci_blob_put(layout, text, strlen(text), mdigest, &err), 0);
	json_t *index = NULL;
	ck_assert_int_eq(ht_oci_index_read(layout, &index, &err), 0);
	json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", HT_MT_OCI_MANIFEST, "digest",
	                      mdigest, "size", (json_int_t)strlen(text));
	free(text);
	ck_assert_int_eq(ht_oci_index_set_ref(index, ref, d, &err), 0);
	ck_assert_int_eq(ht_oci_index_write(layout, index, &err), 0);
	json_decref(d);
	json_decref(index);
	json_decref(m);
	json_decref(config);
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* The invariant after any unpack into tmp_root/parent/dest: the scratch
 * directory beside it (the "host") is untouched, and the parent holds
 * nothing but dest and the witness. */
static void assert_nothing_outside(void)
{
	char p[4200];
	ck_assert_uint_eq(mode_of(tp(p, "host")), 0750);
	ck_assert_uint_eq(mode_of(tp(p, "host/target")), 0750);
	ck_assert_uint_eq(mode_of(tp(p, "parent")), 0755);
	ck_assert(exists(tp(p, "parent/witness")));
	DIR *d = opendir(tp(p, "parent"));
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			ck_assert_msg(!strcmp(e->d_name, "dest") || !strcmp(e->d_name, "witness"),
			              "%s appeared beside the unpack root", e->d_name);
			n++;
		}
	closedir(d);
	d = opendir(tp(p, "host"));
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		ck_assert_msg(!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		                  !strcmp(e->d_name, "target"),
		              "%s appeared in the host directory", e->d_name);
	closedir(d);
}

static void make_host(void)
{
	char p[4200];
	ck_assert_int_eq(mkdir(tp(p, "host"), 0750), 0);
	ck_assert_int_eq(mkdir(tp(p, "host/target"), 0750), 0);
	chmod(tp(p, "host"), 0750);
	chmod(tp(p, "host/target"), 0750);
	ck_assert_int_eq(mkdir(tp(p, "parent"), 0755), 0);
	chmod(tp(p, "parent"), 0755);
	FILE *f = fopen(tp(p, "parent/witness"), "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
}

static int unpack(const char *ref, ht_err *err)
{
	char layout[4200], dest[4200];
	return ht_image_unpack_layout(tp(layout, "layout"), ref, tp(dest, "parent/dest"), err);
}

/* Item: the deferred mode of a directory is not applied through the
 * symbolic link a later layer put in its parent's place. */
START_TEST(test_dir_mode_through_link)
{
	make_host();
	char host[4200];
	tp(host, "host");
	const struct tent one[] = {{"a", 'd', NULL, 0755}, {"a/target", 'd', NULL, 0777}};
	const struct tent two[] = {{"a", 'l', host, 0777}};
	const struct tent *layers[] = {one, two};
	size_t counts[] = {2, 1};
	char p[4200];
	craft(tp(p, "layout"), "chmod", layers, counts, 2);
	ht_err err = {0};
	ck_assert_msg(unpack("chmod", &err) == 0, "%s", err.msg);
	assert_nothing_outside();
	char target[4200] = {0};
	ck_assert_int_gt(readlink(tp(p, "parent/dest/a"), target, sizeof target - 1), 0);
	ck_assert_str_eq(target, host);
	/* the same within one layer */
	make_writable(tp(p, "parent/dest"));
	ht_rm_rf(tp(p, "parent/dest"), NULL);
	ht_rm_rf(tp(p, "layout"), NULL);
	const struct tent same[] = {{"b", 'd', NULL, 0755}, {"b/target", 'd', NULL, 0777},
	                            {"b", 'l', host, 0777}};
	const struct tent *l1[] = {same};
	size_t c1[] = {3};
	craft(tp(p, "layout"), "same", l1, c1, 1);
	ck_assert_msg(unpack("same", &err) == 0, "%s", err.msg);
	assert_nothing_outside();
}
END_TEST

/* Item: ".wh..", ".wh..." and ".wh." are refused, naming the layer and
 * the entry; the directory holding the unpack root stays. */
START_TEST(test_whiteout_names)
{
	make_host();
	const char *names[] = {".wh...", ".wh..", ".wh.", "sub/.wh...", "sub/.wh.."};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char p[4200], ref[16];
		snprintf(ref, sizeof ref, "w%zu", i);
		const struct tent one[] = {{"sub", 'd', NULL, 0755}, {"sub/f", 'f', "f", 0644},
		                           {names[i], 'f', "", 0644}};
		const struct tent *layers[] = {one};
		size_t counts[] = {3};
		make_writable(tp(p, "parent/dest"));
		ht_rm_rf(tp(p, "parent/dest"), NULL);
		craft(tp(p, "layout"), ref, layers, counts, 1);
		ht_err err = {0};
		ck_assert_int_eq(unpack(ref, &err), HYPERTEST_ERR_IMAGE);
		ck_assert_msg(strstr(err.msg, "whiteout") && strstr(err.msg, names[i]) &&
		                  strstr(err.msg, "layer sha256:"),
		              "%s: %s", names[i], err.msg);
		assert_nothing_outside();
		ck_assert(exists(tp(p, "parent/dest")));
	}
}
END_TEST

/* Item: setuid, setgid and sticky bits are dropped; the root is its
 * owner's alone. */
START_TEST(test_modes)
{
	make_host();
	const struct tent one[] = {{"bin", 'd', NULL, 0755}, {"bin/su", 'f', "x", 04755},
	                           {"bin/sg", 'f', "x", 02755}, {"tmp", 'd', NULL, 01777},
	                           {"shared", 'd', NULL, 02775}};
	const struct tent *layers[] = {one};
	size_t counts[] = {5};
	char p[4200];
	craft(tp(p, "layout"), "modes", layers, counts, 1);
	ht_err err = {0};
	ck_assert_msg(unpack("modes", &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(mode_of(tp(p, "parent/dest/bin/su")), 0755);
	ck_assert_uint_eq(mode_of(tp(p, "parent/dest/bin/sg")), 0755);
	ck_assert_uint_eq(mode_of(tp(p, "parent/dest/tmp")), 0777);
	ck_assert_uint_eq(mode_of(tp(p, "parent/dest/shared")), 0775);
	ck_assert_uint_eq(mode_of(tp(p, "parent/dest")), 0700);
	assert_nothing_outside();
}
END_TEST

/* Whiteouts, opaque whiteouts, files, links and hard links through a
 * symbolic link to the host: all stay inside. */
START_TEST(test_operations_stay_inside)
{
	make_host();
	char host[4200], p[4200];
	tp(host, "host");
	const struct tent one[] = {{"h", 'l', host, 0777}, {"up", 'l', "/..", 0777},
	                           {"f", 'f', "f", 0644}};
	const struct tent two[] = {{"h/target/.wh..wh..opq", 'f', "", 0644},
	                           {"h/.wh.target", 'f', "", 0644},
	                           {"h/new", 'f', "x", 0644},
	                           {"up/h/ln", 'l', "f", 0777},
	                           {"h/target/deep", 'd', NULL, 0777}};
	const struct tent *layers[] = {one, two};
	size_t counts[] = {3, 5};
	craft(tp(p, "layout"), "ops", layers, counts, 2);
	ht_err err = {0};
	ck_assert_msg(unpack("ops", &err) == 0, "%s", err.msg);
	assert_nothing_outside();
	/* what was written through the absolute link landed in the image */
	char inside[8400];
	snprintf(inside, sizeof inside, "%s/parent/dest%s/new", tmp_root, host);
	ck_assert_msg(exists(inside), "%s missing", inside);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("unpack-hostile");
	TCase *tc = tcase_create("unpack-hostile");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_dir_mode_through_link);
	tcase_add_test(tc, test_whiteout_names);
	tcase_add_test(tc, test_modes);
	tcase_add_test(tc, test_operations_stay_inside);
	suite_add_tcase(s, tc);
	/* the fixture must run in the test's own process (CK_FORK) */
	TCase *walk = tcase_create("without-openat2");
	tcase_add_checked_fixture(walk, no_openat2_setup, tmp_teardown);
	tcase_set_timeout(walk, 60);
	tcase_add_test(walk, test_dir_mode_through_link);
	tcase_add_test(walk, test_whiteout_names);
	tcase_add_test(walk, test_modes);
	tcase_add_test(walk, test_operations_stay_inside);
	suite_add_tcase(s, walk);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
