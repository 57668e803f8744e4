/*
 * fuzz-unpack.c - the layer unpacker: an input is up to four layers (tar
 * streams, compressed or not) separated by "\n----\n", unpacked one over
 * the other into box/root of a scratch directory, as deploy unpacks a
 * base image.  After each input, whatever the unpacker answered, nothing
 * may exist or have changed outside box/root: box holds root alone, the
 * directory "outside" beside box still holds exactly its file and its
 * directory with their modes, and the layout still has its index.
 *
 * A tar header carries a checksum, which a mutation almost never keeps
 * right: before a layer is stored, the checksum of each header of an
 * uncompressed stream is recomputed, so that the fuzzer reaches the
 * unpacker rather than libarchive's refusal.
 *
 * The process works in the scratch directory, so that an absolute path
 * outside the root is within the fuzzer's reach: /proc/self/cwd/outside.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "image_unpack.h"
#include "oci_layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Recompute the checksum of each header of an uncompressed tar stream. */
static void fix_checksums(uint8_t *p, size_t len)
{
	size_t off = 0;
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return; /* gzip */
	while (off + 512 <= len) {
		uint8_t *h = p + off;
		unsigned long sum = 0, size = 0;
		size_t i;
		for (i = 0; i < 512 && !h[i]; i++)
			;
		if (i == 512) { /* an end-of-archive block */
			off += 512;
			continue;
		}
		memset(h + 148, ' ', 8);
		for (i = 0; i < 512; i++)
			sum += h[i];
		snprintf((char *)h + 148, 8, "%06lo", sum & 0777777);
		h[155] = ' ';
		for (i = 124; i < 136 && h[i] >= '0' && h[i] <= '7'; i++)
			size = size * 8 + (unsigned long)(h[i] - '0');
		if (size > len)
			size = len;
		off += 512 + (size + 511) / 512 * 512;
	}
}

static char box[4096 + 16], root[4096 + 32], outside[4096 + 16], layout[4096 + 16];

static void broken(const char *what, const char *path)
{
	fprintf(stderr, "fuzz-unpack: the unpack reached outside its root: %s: %s\n", what, path);
	abort();
}

/* dir holds exactly the names given (NULL-terminated), else abort. */
static void only(const char *dir, const char *const names[])
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0, want = 0;
	if (!d)
		broken("missing", dir);
	while (names[want])
		want++;
	while ((de = readdir(d)) != NULL) {
		size_t i;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		for (i = 0; names[i] && strcmp(names[i], de->d_name); i++)
			;
		if (!names[i]) {
			closedir(d);
			broken("an entry appeared", de->d_name);
		}
		n++;
	}
	closedir(d);
	if (n != want)
		broken("an entry disappeared from", dir);
}

static void check_mode(const char *path, mode_t type, mode_t mode)
{
	struct stat st;
	if (lstat(path, &st))
		broken("missing", path);
	if ((st.st_mode & S_IFMT) != type || (st.st_mode & 07777) != mode)
		broken("type or mode changed", path);
	if (S_ISREG(st.st_mode) && st.st_size != 5)
		broken("content changed", path);
}

static void setup(void)
{
	char p[4096 + 64];
	snprintf(box, sizeof box, "%s", fz_path("box"));
	snprintf(root, sizeof root, "%s/root", box);
	snprintf(outside, sizeof outside, "%s", fz_path("outside"));
	snprintf(layout, sizeof layout, "%s", fz_path("layout"));
	fz_rm_rf(box);
	fz_rm_rf(outside);
	fz_rm_rf(layout);
	if (mkdir(box, 0755) || mkdir(outside, 0755))
		abort();
	snprintf(p, sizeof p, "%s/file", outside);
	fz_write(p, (const uint8_t *)"keep\n", 5);
	chmod(p, 0644);
	snprintf(p, sizeof p, "%s/dir", outside);
	if (mkdir(p, 0755) || chmod(p, 0755))
		abort();
	ht_err err = {0};
	if (ht_oci_layout_init(layout, &err))
		abort();
	if (chdir(fz_scratch()))
		abort();
}

static void check(void)
{
	static const char *const box_names[] = {"root", NULL};
	static const char *const outside_names[] = {"file", "dir", NULL};
	static const char *const layout_names[] = {"oci-layout", "index.json", "blobs", NULL};
	static const char *const dir_names[] = {NULL};
	char p[4096 + 64];
	only(box, box_names);
	only(outside, outside_names);
	only(layout, layout_names);
	snprintf(p, sizeof p, "%s/file", outside);
	check_mode(p, S_IFREG, 0644);
	snprintf(p, sizeof p, "%s/dir", outside);
	check_mode(p, S_IFDIR, 0755);
	only(p, dir_names);
	check_mode(box, S_IFDIR, 0755);
	check_mode(outside, S_IFDIR, 0755);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *piece;
	size_t piece_len, pos = 0;
	int n = 0, rc = 0;
	ht_unpack *u = NULL;
	ht_err err = {0};
	char digest[80];

	setup();
	if (ht_unpack_new(root, &u, &err))
		abort();
	while (pos < len && n < 4 && !rc) {
		uint8_t *copy;
		fz_piece(data, len, &pos, &piece, &piece_len);
		copy = malloc(piece_len ? piece_len : 1);
		if (!copy)
			abort();
		memcpy(copy, piece, piece_len);
		fix_checksums(copy, piece_len);
		if (ht_oci_blob_put(layout, copy, piece_len, digest, &err))
			abort();
		free(copy);
		rc = ht_unpack_layer(u, layout, digest, (long long)piece_len, &err);
		n++;
	}
	if (!rc)
		(void)ht_unpack_finish(u, &err);
	ht_unpack_free(u);
	check();
	return 0;
}
