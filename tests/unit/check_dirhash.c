/*
 * check_dirhash.c - tests of the test-directory hash (dirhash.c): the
 * content transform, the UTF-16 order, fixture directories built here from
 * byte arrays whose expected digests were computed by
 * tests/unit/dirhash-reference.js (Node), random directories compared with that
 * script when node is on PATH, and the errors.
 *
 * To recompute the expected digests:
 *   ./check_dirhash --write-fixtures DIR
 *   for d in DIR/ * ; do node tests/unit/dirhash-reference.js "$d"; done
 */

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "scratch-dir.h"

#include "dirhash.h"

extern char **environ;

#define B(lit) lit, sizeof(lit) - 1
#define CHUNK 65536 /* CHUNK_SIZE of dirhash.c */

/* ---- scratch directories --------------------------------------------------- */

static void make_dir(const char *path)
{
	ck_assert_msg(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path,
	              strerror(errno));
}

/* ---- fixtures ------------------------------------------------------------- */

enum kind { K_FILE, K_DIR, K_LINK, K_FIFO };

struct node {
	enum kind kind;
	const char *path; /* relative to the fixture directory */
	const char *data; /* content, or the target of a link */
	size_t len;
};

struct fixture {
	const char *name;
	const struct node *nodes;
	size_t count;
	void (*extra)(const char *dir);
	const char *expected; /* from dirhash-reference.js */
};

static const struct node fx_ascii[] = {
	{K_FILE, "hello.txt", B("hello world\n")},
	{K_FILE, "b.spec.js", B("test('b', () => {});\n")},
	{K_FILE, ".hidden", B("dotfiles count too\n")},
};

static const struct node fx_crlf[] = {
	{K_FILE, "crlf.txt", B("one\r\ntwo\r\n")},
	{K_FILE, "cr.txt", B("lone\rcarriage\r")},
	{K_FILE, "mixed.txt", B("\r\r\n\n\r\n\r\r")},
	{K_FILE, "name\r\nwith-crlf", B("the CR LF in the name stays\r\n")},
};

static const struct node fx_bom[] = {
	{K_FILE, "bom.txt", B("\xEF\xBB\xBF" "hello\r\n")},
	{K_FILE, "bom-only", B("\xEF\xBB\xBF")},
};

static const struct node fx_invalid[] = {
	{K_FILE, "trunc2", B("a\xC3")},
	{K_FILE, "trunc3", B("\xE2\x82" "x\xE2\x82")},
	{K_FILE, "overlong", B("\xE0\x80\xAF \xC1\xBF \xF0\x80\x80\xAF \xE0\x9F\xBF")},
	{K_FILE, "surrogates", B("\xED\xA0\x80\xED\xBF\xBF\xED\xA0\xBD\xED\xB8\x80")},
	{K_FILE, "f5-ff", B("\xF5\xF6\xF7\xF8\xF9\xFA\xFB\xFC\xFD\xFE\xFF")},
	{K_FILE, "c0-80", B("\xC0\x80" "z\xC1\x81")},
	{K_FILE, "cut4", B("x\xF0\x9F\x98")},
	{K_FILE, "above10ffff", B("\xF4\x90\x80\x80\xF4\x8F\xBF\xBF")},
	{K_FILE, "continuations", B("\x80\xBF\x80\x80")},
	{K_FILE, "mix", B("\xE2\x82\xAC\xF0\x9F\x98\x80\xE2\r\n\xC3\r\n\xF0\x9F\r\n")},
};

static const struct node fx_binary[] = {
	{K_FILE, "logo.png",
	 B("\x89PNG\r\n\x1A\n\x00\x00\x00\x0DIHDR\x00\x00\x00\x10\x00\x00\x00\x10"
	   "\x08\x06\x00\x00\x00\x1F\xF3\xFF\x61\x00\x00\x00\x0A" "IDAT\x78\x9C\x63\x00\x01"
	   "\x00\x00\x05\x00\x01\x0D\x0A\x2D\xB4\x00\x00\x00\x00IEND\xAE\x42\x60\x82")},
	{K_FILE, "zeros.bin", B("\x00\x00\x00\r\n\x00")},
};

static const struct node fx_names[] = {
	{K_FILE, "\xF0\x9F\x98\x80", B("U+1F600")},
	{K_FILE, "\xEF\xBD\x9E", B("U+FF5E")},
	{K_FILE, "\xEF\xBD\x9E\xEF\xBD\x9E", B("U+FF5E twice")},
	{K_FILE, "\xEE\x80\x80", B("U+E000")},
	{K_FILE, "\xED\x9F\xBF", B("U+D7FF")},
	{K_DIR, "\xF0\x9F\x98\x81", NULL, 0},
	{K_FILE, "\xF0\x9F\x98\x81/x", B("U+1F601/x")},
	{K_FILE, "A", B("upper A")},
	{K_FILE, "Z", B("upper Z")},
	{K_FILE, "e", B("e")},
	{K_FILE, "\xC3\xA9", B("e acute")},
	{K_DIR, "a", NULL, 0},
	{K_FILE, "a/b", B("a slash b")},
	{K_FILE, "a-b", B("a dash b")},
	{K_FILE, "a.b", B("a dot b")},
	{K_FILE, "a b", B("a space b")},
};

static const struct node fx_bad_names[] = {
	{K_FILE, "bad\xFF.txt", B("ff")},
	{K_FILE, "bad\xC3.txt", B("c3")},
	{K_FILE, "\xFE", B("fe, decodes like the next one")},
	{K_FILE, "\xEF\xBF\xBD", B("a real U+FFFD")},
	{K_FILE, "\xED\xA0\x80", B("an encoded surrogate: three U+FFFD")},
	{K_FILE, "cut\xF0\x9F\x98", B("cut emoji")},
};

static const struct node fx_nested[] = {
	{K_DIR, "x", NULL, 0},
	{K_DIR, "x/y", NULL, 0},
	{K_DIR, "x/y/z", NULL, 0},
	{K_DIR, "empty", NULL, 0},
	{K_DIR, "empty/inner", NULL, 0},
	{K_FILE, "x/top.txt", B("top")},
	{K_FILE, "x/y/other.txt", B("other")},
	{K_FILE, "x/y/z/deep.txt", B("deep\r\n")},
	{K_FILE, "x.txt", B("beside x")},
	{K_FILE, "x-y.txt", B("x dash y")},
};

static const struct node fx_links[] = {
	{K_DIR, "real", NULL, 0},
	{K_FILE, "real/target.txt", B("target\r\n")},
	{K_LINK, "link.txt", B("real/target.txt")},
	{K_LINK, "linkdir", B("real")},
	{K_FILE, "../links-outside.txt", B("outside the directory")},
	{K_LINK, "outside", B("../links-outside.txt")},
};

static const struct node fx_empty_file[] = {
	{K_FILE, "empty", B("")},
	{K_FILE, "nonempty", B("x")},
	{K_FIFO, "fifo", NULL, 0},
};

/* The content of split.txt: ASCII lines with CRLF, and at the ends of read
 * chunks sequences cut by the boundary. */
static void make_split(const char *dir)
{
	static const char line[] = "The quick brown fox jumps\r\n"; /* 27 bytes */
	static const struct {
		size_t at;
		const char *bytes;
		size_t len;
	} cuts[] = {
		{1 * CHUNK - 1, B("\xF0\x9F\x98\x80")}, /* valid, cut 1|3 */
		{2 * CHUNK - 2, B("\xF0\x9F\x98\x80")}, /* valid, cut 2|2 */
		{3 * CHUNK - 3, B("\xF0\x9F\x98\x80")}, /* valid, cut 3|1 */
		{4 * CHUNK - 1, B("\r\n")},             /* CRLF cut */
		{5 * CHUNK - 2, B("\xE2\x82" "A")},     /* invalid, cut 2|1 */
		{6 * CHUNK - 1, B("\r\r\n")},           /* lone CR, then CRLF */
		{7 * CHUNK - 1, B("\xC3(")},            /* invalid, cut 1|1 */
		{8 * CHUNK - 3, B("\xF0\x9F\x98x")},    /* invalid, cut 3|1 */
		{9 * CHUNK - 1, B("\xE2\x82\xAC")},     /* valid, cut 1|2 */
		{10 * CHUNK - 3, B("\xF0\x9F\x98")},    /* cut by the end of the file */
	};
	size_t size = 10 * CHUNK, i;
	char *data = malloc(size), path[4096];

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < size; i++)
		data[i] = line[i % (sizeof line - 1)];
	for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
		memcpy(data + cuts[i].at, cuts[i].bytes, cuts[i].len);
	snprintf(path, sizeof path, "%s/split.txt", dir);
	write_bytes(path, data, size, 0644);
	free(data);
}

/* A sparse file of 300 MiB: streamed, never held in memory. */
static void make_big(const char *dir)
{
	static const char tail[] = "\xE2\x82\xAC\r\nend\xF0\x9F";
	const off_t size = (off_t)300 << 20;
	const size_t len = sizeof tail - 1;
	char path[4096];
	int fd;

	snprintf(path, sizeof path, "%s/big.bin", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, size), 0);
	ck_assert_int_eq(pwrite(fd, tail, len, size - (off_t)len), (ssize_t)len);
	close(fd);
}

static const struct node fx_none[] = {{K_DIR, "sub", NULL, 0}};

#define FX(n, nodes, extra, hex) {n, nodes, sizeof nodes / sizeof nodes[0], extra, hex}

static const struct fixture fixtures[] = {
	FX("ascii", fx_ascii, NULL,
	   "7e4d32e2cd760cac1a17b43efb1ca35b47cb454fd9724af2f0d08d502467512c"),
	FX("crlf", fx_crlf, NULL,
	   "294a94ae19ec9ef30d7e31c4f6efbe29dc955644201726323be1cecf94834e9f"),
	FX("bom", fx_bom, NULL,
	   "d62994e7a5f1a36a8a838b612bdc9316261fdab8d4e0bed210c7a2fe107d243f"),
	FX("invalid", fx_invalid, NULL,
	   "995d04c453659ea28632bb87dcf30ba1e63cb41096f6a9e28fb84dac1848df74"),
	FX("binary", fx_binary, NULL,
	   "9a87e7375458ee1d79ef2681cb1cd637a1a96373e77f2c6f9a07caacdd946762"),
	FX("names", fx_names, NULL,
	   "f42e0c35aa209b17e3b1efda5108600b10b6f598e66a4b0a5cfbaf1a27cc0557"),
	FX("bad-names", fx_bad_names, NULL,
	   "0db1b144a126760b3cdd28ae65509c5bd5a7a3ab69c973e8fdaa2c63b6a086a3"),
	FX("nested", fx_nested, NULL,
	   "1fbdab93eaf96060d6fcbf23b4750cb5e80f8c780dbd40714ae52bb5f36576ac"),
	FX("links", fx_links, NULL,
	   "c21910aecbeeba7e76d40a809f6fec50f811d110d41f33932333b863fef14916"),
	FX("empty-file", fx_empty_file, NULL,
	   "7bd7e5d1d21e9cf569e99fb86052973fb52691434079f9269972ed3319d2535a"),
	FX("split", fx_none, make_split,
	   "4884211f6a653dfa5a5550613c5c151c03e462090fb5cccc41c2ff337a544120"),
	FX("big", fx_none, make_big,
	   "074e4415e7f76d92bad4272c7a2447fdd95fbf7396180ec48ce5e958e5552372"),
};
#define NFIXTURES (sizeof fixtures / sizeof fixtures[0])

static void build_fixture(const struct fixture *f, const char *dir)
{
	char path[4096];
	size_t i;

	make_dir(dir);
	for (i = 0; i < f->count; i++) {
		const struct node *n = &f->nodes[i];
		snprintf(path, sizeof path, "%s/%s", dir, n->path);
		switch (n->kind) {
		case K_FILE:
			write_bytes(path, n->data, n->len, 0644);
			break;
		case K_DIR:
			make_dir(path);
			break;
		case K_LINK:
			ck_assert_msg(symlink(n->data, path) == 0, "symlink %s", path);
			break;
		case K_FIFO:
			ck_assert_msg(mkfifo(path, 0644) == 0, "mkfifo %s", path);
			break;
		}
	}
	if (f->extra)
		f->extra(dir);
}

START_TEST(test_fixture)
{
	const struct fixture *f = &fixtures[_i];
	char hex[65];
	ht_err err;
	int rc;

	build_fixture(f, tpath("%s", f->name));
	rc = ht_dirhash(tpath("%s", f->name), hex, &err);
	ck_assert_msg(rc == HYPERTEST_OK, "%s: %s", f->name, err.msg);
	ck_assert_msg(!strcmp(hex, f->expected), "%s: got %s, expected %s", f->name, hex,
	              f->expected);
}
END_TEST

/* A FIFO is skipped (reading it would block): the same hash without it. */
START_TEST(test_special_files_skipped)
{
	char with[65], without[65];
	ht_err err;

	make_dir(tpath("fifo"));
	write_bytes(tpath("fifo/a"), B("a"), 0644);
	ck_assert_int_eq(ht_dirhash(tpath("fifo"), without, &err), HYPERTEST_OK);
	ck_assert_int_eq(mkfifo(tpath("fifo/pipe"), 0644), 0);
	ck_assert_int_eq(ht_dirhash(tpath("fifo"), with, &err), HYPERTEST_OK);
	ck_assert_str_eq(with, without);
}
END_TEST

/* ht_dirhash_cached: always the hash ht_dirhash_skip computes; the files
 * are not read while none changed (a cache whose hash was replaced is then
 * believed), and read again after any change: content of the same size
 * (even with the mtime put back), mode, name, a file removed or added;
 * never recorded for files changed in the last second. */
static const char fake_hash[] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

static void rewrite_cached_hash(const char *cache, const char *dir, const char *hash)
{
	json_t *doc = json_load_file(cache, 0, NULL);
	ck_assert_msg(doc != NULL, "no cache %s", cache);
	json_t *e = json_object_get(json_object_get(doc, "dirs"), dir);
	ck_assert_msg(e != NULL, "no entry for %s", dir);
	json_object_set_new(e, "hash", json_string(hash));
	ck_assert_int_eq(json_dump_file(doc, cache, 0), 0);
	json_decref(doc);
}

static void settle(void)
{
	struct timespec ts = {1, 200000000};
	nanosleep(&ts, NULL);
}

/* The cached hash of dir, asserted equal to the uncached one. */
static void cached_is_plain(const char *dir, const char *const *skip, const char *cache,
                            char cached[65])
{
	char plain[65];
	ht_err err;
	ck_assert_msg(ht_dirhash_cached(dir, skip, cache, cached, &err) == HYPERTEST_OK, "%s",
	              err.msg);
	ck_assert_msg(ht_dirhash_skip(dir, skip, plain, &err) == HYPERTEST_OK, "%s", err.msg);
	ck_assert_str_eq(cached, plain);
}

/* Let the files age, record their hash, replace it by fake_hash in the
 * cache and check that the cache is what answers now. */
static void record_then_fake(const char *dir, const char *cache)
{
	char hex[65];
	ht_err err;
	settle();
	cached_is_plain(dir, NULL, cache, hex);
	rewrite_cached_hash(cache, dir, fake_hash);
	ck_assert_int_eq(ht_dirhash_cached(dir, NULL, cache, hex, &err), HYPERTEST_OK);
	ck_assert_str_eq(hex, fake_hash); /* the files were not read */
}

START_TEST(test_cached)
{
	char cached[65], first[65];
	struct stat st;
	ht_err err;
	char *dir = ht_strdup(tpath("cached"));
	char *cache = ht_strdup(tpath("cache.json"));

	make_dir(dir);
	make_dir(tpath("cached/sub"));
	write_bytes(tpath("cached/a"), B("one"), 0644);
	write_bytes(tpath("cached/sub/b"), B("two"), 0644);
	/* just written: hashed, not recorded; rewritten at once (likely within
	 * the same tick of the file system's clock): hashed again */
	cached_is_plain(dir, NULL, cache, first);
	ck_assert_int_eq(access(cache, F_OK), -1);
	write_bytes(tpath("cached/a"), B("uno"), 0644);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_ne(cached, first);
	ck_assert_int_eq(access(cache, F_OK), -1);

	/* content of the same size */
	record_then_fake(dir, cache);
	write_bytes(tpath("cached/a"), B("one"), 0644);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_eq(cached, first);

	/* content of the same size, the mtime put back: the ctime tells */
	record_then_fake(dir, cache);
	ck_assert_int_eq(stat(tpath("cached/a"), &st), 0);
	write_bytes(tpath("cached/a"), B("ein"), 0644);
	struct timespec times[2] = {st.st_atim, st.st_mtim};
	ck_assert_int_eq(utimensat(AT_FDCWD, tpath("cached/a"), times, 0), 0);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_ne(cached, fake_hash);
	ck_assert_str_ne(cached, first);

	/* mode (not hashed, but read again) */
	record_then_fake(dir, cache);
	ck_assert_int_eq(chmod(tpath("cached/a"), 0755), 0);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_ne(cached, fake_hash);

	/* name */
	record_then_fake(dir, cache);
	ck_assert_int_eq(rename(tpath("cached/sub/b"), tpath("cached/sub/c")), 0);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_ne(cached, fake_hash);

	/* a file removed, a file added */
	record_then_fake(dir, cache);
	ck_assert_int_eq(unlink(tpath("cached/sub/c")), 0);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_ne(cached, fake_hash);
	record_then_fake(dir, cache);
	write_bytes(tpath("cached/sub/d"), B("four"), 0644);
	cached_is_plain(dir, NULL, cache, cached);
	ck_assert_str_ne(cached, fake_hash);

	/* a cache that is not JSON: hashed, and replaced */
	write_bytes(cache, B("not json"), 0644);
	settle();
	cached_is_plain(dir, NULL, cache, cached);
	rewrite_cached_hash(cache, dir, fake_hash);
	ck_assert_int_eq(ht_dirhash_cached(dir, NULL, cache, cached, &err), HYPERTEST_OK);
	ck_assert_str_eq(cached, fake_hash);
	free(dir);
	free(cache);
}
END_TEST

/* The project's cache lives in .hypertest, which a test directory "."
 * leaves out: writing it changes nothing, with or without the cache. */
START_TEST(test_cached_project)
{
	char plain[65], cached[65];
	ht_err err;
	char *dir = ht_strdup(tpath("cproj"));
	char *cache = ht_strdup(tpath("cproj/.hypertest/dirhash-cache.json"));

	make_dir(dir);
	make_dir(tpath("cproj/.hypertest"));
	write_bytes(tpath("cproj/a.spec.ts"), B("test"), 0644);
	settle();
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", NULL, plain, &err),
	                 HYPERTEST_OK);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", cache, cached, &err),
	                 HYPERTEST_OK);
	ck_assert_str_eq(cached, plain);
	ck_assert_int_eq(access(cache, F_OK), 0);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", NULL, plain, &err),
	                 HYPERTEST_OK);
	ck_assert_str_eq(cached, plain);
	rewrite_cached_hash(cache, dir, fake_hash);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", cache, cached, &err),
	                 HYPERTEST_OK);
	ck_assert_str_eq(cached, fake_hash);
	/* the results file is left out of the key as of the hash */
	write_bytes(tpath("cproj/res.json"), B("{}"), 0644);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", cache, cached, &err),
	                 HYPERTEST_OK);
	ck_assert_str_eq(cached, fake_hash);
	write_bytes(tpath("cproj/b.spec.ts"), B("test"), 0644);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", cache, cached, &err),
	                 HYPERTEST_OK);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "man.json", NULL, plain, &err),
	                 HYPERTEST_OK);
	ck_assert_str_eq(cached, plain);
	ck_assert_str_ne(cached, fake_hash);
	free(dir);
	free(cache);
}
END_TEST

/* ---- the transform and the order ---------------------------------------- */

static const struct {
	const char *in;
	size_t in_len;
	const char *out;
	size_t out_len;
} vectors[] = {
	{B(""), B("")},
	{B("abc"), B("abc")},
	{B("a\r\nb\r\n"), B("a\nb\n")},
	{B("a\rb\r"), B("a\rb\r")},
	{B("\r\r\n\n"), B("\r\n\n")},
	{B("a\0\r\n"), B("a\0\n")},
	{B("\xEF\xBB\xBFx"), B("\xEF\xBB\xBFx")},
	{B("\xE2\x82\xAC\xF0\x9F\x98\x80"), B("\xE2\x82\xAC\xF0\x9F\x98\x80")},
	{B("\xC3"), B("\xEF\xBF\xBD")},
	{B("\x80"), B("\xEF\xBF\xBD")},
	{B("\xE0\x80\x80"), B("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")},
	{B("\xED\xA0\x80"), B("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")},
	{B("\xF0\x9F\x98"), B("\xEF\xBF\xBD")},
	{B("\xF0\x9F\x98" "A"), B("\xEF\xBF\xBD" "A")},
	{B("\xF0\x80"), B("\xEF\xBF\xBD\xEF\xBF\xBD")},
	{B("\xF4\x90\x80\x80"), B("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD")},
	{B("\xF4\x8F\xBF\xBF"), B("\xF4\x8F\xBF\xBF")},
	{B("\xC0\x80"), B("\xEF\xBF\xBD\xEF\xBF\xBD")},
	{B("\xF5\xFF"), B("\xEF\xBF\xBD\xEF\xBF\xBD")},
	{B("\xE2\r\n"), B("\xEF\xBF\xBD\n")},
	{B("\xE2\x82\r\n\r"), B("\xEF\xBF\xBD\n\r")},
};

START_TEST(test_normalize)
{
	char *out = NULL;
	size_t len = 12345;

	ck_assert_int_eq(ht_node_utf8_normalize(vectors[_i].in, vectors[_i].in_len, &out, &len),
	                 HYPERTEST_OK);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(len == vectors[_i].out_len && !memcmp(out, vectors[_i].out, len),
	              "vector %d: got %zu bytes", _i, len);
	ck_assert_int_eq(out[len], '\0');
	free(out);
}
END_TEST

START_TEST(test_utf16_strcmp)
{
	/* supplementary (lead surrogate D83D) before U+E000..U+FFFF ... */
	ck_assert_int_lt(ht_utf16_strcmp("\xF0\x9F\x98\x80", "\xEF\xBD\x9E"), 0);
	ck_assert_int_gt(ht_utf16_strcmp("\xEF\xBD\x9E", "\xF0\x9F\x98\x80"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("\xF4\x8F\xBF\xBF", "\xEE\x80\x80"), 0);
	/* ... but after U+D7FF and below */
	ck_assert_int_lt(ht_utf16_strcmp("\xED\x9F\xBF", "\xF0\x9F\x98\x80"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("\xC3\xA9", "\xF0\x9F\x98\x80"), 0);
	/* between supplementary ones, code point order */
	ck_assert_int_lt(ht_utf16_strcmp("\xF0\x9F\x98\x80", "\xF0\x9F\x98\x81"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("\xF0\x90\x80\x80", "\xF3\xA0\x80\x80"), 0);
	/* ASCII */
	ck_assert_int_lt(ht_utf16_strcmp("B", "a"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("a-b", "a.b"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("a.b", "a/b"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("a", "ab"), 0);
	ck_assert_int_gt(ht_utf16_strcmp("ab", "a"), 0);
	ck_assert_int_eq(ht_utf16_strcmp("", ""), 0);
	ck_assert_int_lt(ht_utf16_strcmp("", "a"), 0);
	ck_assert_int_eq(ht_utf16_strcmp("same\xE2\x82\xAC", "same\xE2\x82\xAC"), 0);
	/* invalid parts compare as U+FFFD */
	ck_assert_int_eq(ht_utf16_strcmp("\xFF", "\xEF\xBF\xBD"), 0);
	ck_assert_int_eq(ht_utf16_strcmp("x\xC3y", "x\xEF\xBF\xBDy"), 0);
	ck_assert_int_gt(ht_utf16_strcmp("\xFF", "\xF0\x9F\x98\x80"), 0);
	ck_assert_int_lt(ht_utf16_strcmp("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD!"),
	                 0);
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

START_TEST(test_missing_dir)
{
	char hex[65];
	ht_err err;
	const char *dir = tpath("does-not-exist");

	ck_assert_int_eq(ht_dirhash(dir, hex, &err), HYPERTEST_ERR_IO);
	ck_assert_int_eq(err.code, HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, dir) && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
}
END_TEST

START_TEST(test_not_a_dir)
{
	char hex[65];
	ht_err err;
	const char *file = tpath("plain-file");

	write_bytes(file, B("x"), 0644);
	ck_assert_int_eq(ht_dirhash(file, hex, &err), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, file) && strstr(err.msg, strerror(ENOTDIR)), "%s", err.msg);
}
END_TEST

/* hypertest's own files inside the test directory ("testDir": ".") never
 * count: .hypertest/, the results file, the manifest; anything else does. */
START_TEST(test_project_state_left_out)
{
	char before[65], after[65], plain[65];
	ht_err err;
	char *dir = ht_strdup(tpath("proj"));

	make_dir(dir);
	make_dir(tpath("proj/tests"));
	write_bytes(tpath("proj/tests/a.spec.ts"), B("test"), 0644);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "m/man.json", NULL, before, &err),
	                 HYPERTEST_OK);
	make_dir(tpath("proj/.hypertest"));
	make_dir(tpath("proj/.hypertest/bucket"));
	write_bytes(tpath("proj/.hypertest/bucket/x"), B("x"), 0644);
	write_bytes(tpath("proj/res.json"), B("{}"), 0644);
	make_dir(tpath("proj/m"));
	write_bytes(tpath("proj/m/man.json"), B("{}"), 0644);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "m/man.json", NULL, after, &err),
	                 HYPERTEST_OK);
	ck_assert_str_eq(before, after);
	ck_assert_int_eq(ht_dirhash(dir, plain, &err), HYPERTEST_OK);
	ck_assert_str_ne(plain, before);
	/* from a subdirectory of the project: the same names are other files */
	ck_assert_int_eq(ht_dirhash_project(tpath("proj/m"), dir, "res.json", "man.json", NULL, after,
	                                    &err),
	                 HYPERTEST_OK);
	ck_assert_int_eq(ht_dirhash(tpath("proj/m"), plain, &err), HYPERTEST_OK);
	ck_assert_str_eq(after, plain);
	/* another file still counts */
	write_bytes(tpath("proj/other.json"), B("{}"), 0644);
	ck_assert_int_eq(ht_dirhash_project(dir, dir, "res.json", "m/man.json", NULL, after, &err),
	                 HYPERTEST_OK);
	ck_assert_str_ne(before, after);
	free(dir);
}
END_TEST

START_TEST(test_empty_dir)
{
	char hex[65];
	ht_err err;
	const char *dir = tpath("empty");

	make_dir(dir);
	ck_assert_int_eq(ht_dirhash(dir, hex, &err), HYPERTEST_ERR_EMPTY);
	ck_assert_msg(strstr(err.msg, dir), "%s", err.msg);
	/* directories alone are no files either */
	make_dir(tpath("empty/sub"));
	make_dir(tpath("empty/sub/inner"));
	ck_assert_int_eq(ht_dirhash(dir, hex, &err), HYPERTEST_ERR_EMPTY);
	ck_assert_int_eq(err.code, HYPERTEST_ERR_EMPTY);
	ck_assert_msg(strstr(err.msg, dir), "%s", err.msg);
}
END_TEST

START_TEST(test_dangling_link)
{
	char hex[65];
	ht_err err;

	make_dir(tpath("dangling"));
	write_bytes(tpath("dangling/a"), B("a"), 0644);
	ck_assert_int_eq(symlink("nowhere", tpath("dangling/broken")), 0);
	ck_assert_int_eq(ht_dirhash(tpath("dangling"), hex, &err), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, tpath("dangling/broken")) && strstr(err.msg, strerror(ENOENT)),
	              "%s", err.msg);
}
END_TEST

START_TEST(test_unreadable_file)
{
	char hex[65];
	ht_err err;

	if (geteuid() == 0) {
		fprintf(stderr, "test_unreadable_file: root reads any file, nothing to test\n");
		return;
	}
	make_dir(tpath("unreadable"));
	write_bytes(tpath("unreadable/secret"), B("s"), 0644);
	ck_assert_int_eq(chmod(tpath("unreadable/secret"), 0), 0);
	ck_assert_int_eq(ht_dirhash(tpath("unreadable"), hex, &err), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, tpath("unreadable/secret")) && strstr(err.msg, strerror(EACCES)),
	              "%s", err.msg);
}
END_TEST

/* read() failing after open(): /proc/self/mem is a regular file whose
 * offset 0 is never mapped. */
START_TEST(test_read_error)
{
	char hex[65];
	ht_err err;

	if (access("/proc/self/mem", R_OK) != 0) {
		fprintf(stderr, "test_read_error: no /proc/self/mem\n");
		return;
	}
	make_dir(tpath("readerr"));
	ck_assert_int_eq(symlink("/proc/self/mem", tpath("readerr/mem")), 0);
	ck_assert_int_eq(ht_dirhash(tpath("readerr"), hex, &err), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, tpath("readerr/mem")) && strstr(err.msg, strerror(EIO)),
	              "%s", err.msg);
}
END_TEST

START_TEST(test_link_loop)
{
	char hex[65];
	ht_err err;

	make_dir(tpath("cycle"));
	make_dir(tpath("cycle/sub"));
	write_bytes(tpath("cycle/sub/f"), B("f"), 0644);
	ck_assert_int_eq(symlink("..", tpath("cycle/sub/up")), 0);
	ck_assert_int_eq(ht_dirhash(tpath("cycle"), hex, &err), HYPERTEST_ERR_IO);
	ck_assert_msg(strstr(err.msg, "symbolic link loop") && strstr(err.msg, tpath("cycle/sub/up")),
	              "%s", err.msg);
	/* the same directory reached twice without a loop is fine */
	ck_assert_int_eq(unlink(tpath("cycle/sub/up")), 0);
	ck_assert_int_eq(symlink("sub", tpath("cycle/again")), 0);
	ck_assert_int_eq(ht_dirhash(tpath("cycle"), hex, &err), HYPERTEST_OK);
}
END_TEST

/* ---- random directories against the Node reference ----------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32) % n;
}

static const char *const pieces[] = {
	"a", "B", "z", "0", "-", ".", "_", " ", "\r", "\n", "\r\n", "\xC3\xA9", "\xE2\x82\xAC",
	"\xF0\x9F\x98\x80", "\xEF\xBD\x9E", "\xEE\x80\x80", "\xED\x9F\xBF", "\xEF\xBB\xBF",
	"\xFF", "\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xC0\x80",
	"\xE0\x80\xAF", "\x80", "\xF5",
};
#define NPIECES (sizeof pieces / sizeof pieces[0])

static void random_name(char *out, size_t size)
{
	size_t len = 0, k, n = 1 + rnd(4);

	for (k = 0; k < n; k++) {
		const char *p = pieces[rnd(NPIECES)];
		if (len + strlen(p) + 1 < size) {
			memcpy(out + len, p, strlen(p));
			len += strlen(p);
		}
	}
	out[len] = '\0';
	if (!strcmp(out, ".") || !strcmp(out, ".."))
		strcpy(out, "dots");
}

static void random_content(const char *path)
{
	size_t size, len = 0;
	char *data;
	int mode = (int)rnd(4);

	size = mode == 0 ? rnd(16) : mode == 1 ? rnd(2000) : mode == 2 ? CHUNK - 8 + rnd(16)
	                                                                   : rnd(3 * CHUNK);
	data = malloc(size + 8);
	ck_assert_ptr_nonnull(data);
	while (len < size) {
		if (rnd(3) == 0) {
			data[len++] = (char)rnd(256); /* raw bytes */
		} else {
			const char *p = pieces[rnd(NPIECES)];
			size_t l = strlen(p);
			if (len + l > size)
				l = size - len;
			memcpy(data + len, p, l);
			len += l;
		}
	}
	write_bytes(path, data, size, 0644);
	free(data);
}

/* Fill dir with random entries; returns how many files it made. */
static int random_tree(const char *dir, int depth, char files[][4096], int *nfiles)
{
	int made = 0, n = 1 + (int)rnd(6), k;

	for (k = 0; k < n; k++) {
		char name[64], path[4096];
		struct stat st;
		random_name(name, sizeof name);
		snprintf(path, sizeof path, "%s/%s", dir, name);
		if (lstat(path, &st) == 0)
			continue; /* name taken */
		if (depth < 3 && rnd(3) == 0) {
			make_dir(path);
			made += random_tree(path, depth + 1, files, nfiles);
		} else if (*nfiles > 0 && rnd(6) == 0) {
			ck_assert_int_eq(symlink(files[rnd((uint32_t)*nfiles)], path), 0);
			made++;
		} else {
			random_content(path);
			if (*nfiles < 64)
				strcpy(files[(*nfiles)++], path);
			made++;
		}
	}
	return made;
}

static char *find_node(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t l = end ? (size_t)(end - path) : strlen(path);
		snprintf(buf, sizeof buf, "%.*s/node", (int)l, path);
		if (l && access(buf, X_OK) == 0)
			return ht_strdup(buf);
		path = end ? end + 1 : NULL;
	}
	return NULL;
}

static const char *reference_script(void)
{
	static char buf[4096];
	const char *src = getenv("HT_TESTS_SRCDIR");
#ifdef HT_TESTS_SRCDIR
	if (!src)
		src = HT_TESTS_SRCDIR;
#endif
	snprintf(buf, sizeof buf, "%s/unit/dirhash-reference.js", src ? src : ".");
	return buf;
}

/* Run node dirhash-reference.js dir; the digest into hex. */
static void run_reference(const char *node, const char *dir, char hex[65])
{
	char *argv[] = {(char *)node, (char *)reference_script(), (char *)dir, NULL};
	posix_spawn_file_actions_t fa;
	char out[256];
	size_t len = 0;
	ssize_t got;
	int fds[2], status;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	posix_spawn_file_actions_addclose(&fa, fds[1]);
	ck_assert_int_eq(posix_spawn(&pid, node, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	while ((got = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
		len += (size_t)got;
	close(fds[0]);
	out[len] = '\0';
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reference failed on %s", dir);
	ck_assert_msg(len == 65 && out[64] == '\n', "reference printed '%s'", out);
	memcpy(hex, out, 64);
	hex[64] = '\0';
}

START_TEST(test_random_vs_reference)
{
	static char files[64][4096];
	char *node = find_node();
	const char *seed_env = getenv("HT_DIRHASH_SEED");
	uint64_t seed;
	int round;

	ck_assert_ptr_nonnull(node);
	seed = seed_env ? strtoull(seed_env, NULL, 10)
	                : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	rng_state = seed ? seed : 1;
	for (round = 0; round < 8; round++) {
		char mine[65], ref[65];
		const char *dir = tpath("random-%d", round);
		ht_err err;
		int nfiles = 0;

		make_dir(dir);
		write_bytes(tpath("random-%d/first", round), B("at least one file"), 0644);
		random_tree(dir, 0, files, &nfiles);
		ck_assert_msg(ht_dirhash(dir, mine, &err) == HYPERTEST_OK, "%s", err.msg);
		run_reference(node, dir, ref);
		ck_assert_msg(!strcmp(mine, ref), "HT_DIRHASH_SEED=%llu round %d: %s != %s",
		              (unsigned long long)seed, round, mine, ref);
	}
	free(node);
}
END_TEST

/* ---- suite -------------------------------------------------------------------- */

static Suite *dirhash_suite(void)
{
	Suite *s = suite_create("dirhash");
	TCase *tc = tcase_create("transform");
	char *node;

	tcase_add_loop_test(tc, test_normalize, 0, (int)(sizeof vectors / sizeof vectors[0]));
	tcase_add_test(tc, test_utf16_strcmp);
	suite_add_tcase(s, tc);

	tc = tcase_create("fixtures");
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_fixture, 0, (int)NFIXTURES);
	tcase_add_test(tc, test_special_files_skipped);
	tcase_add_test(tc, test_cached);
	tcase_add_test(tc, test_cached_project);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, test_missing_dir);
	tcase_add_test(tc, test_project_state_left_out);
	tcase_add_test(tc, test_not_a_dir);
	tcase_add_test(tc, test_empty_dir);
	tcase_add_test(tc, test_dangling_link);
	tcase_add_test(tc, test_unreadable_file);
	tcase_add_test(tc, test_read_error);
	tcase_add_test(tc, test_link_loop);
	suite_add_tcase(s, tc);

	node = find_node();
	if (node) {
		tc = tcase_create("reference");
		tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, test_random_vs_reference);
		suite_add_tcase(s, tc);
		free(node);
	} else {
		fprintf(stderr, "check_dirhash: node is not on PATH, "
		                "skipping the comparison with dirhash-reference.js\n");
	}
	return s;
}

/* --write-fixtures DIR: build every fixture below DIR (to recompute the
 * expected digests with the reference) and exit.  A test of its own, for
 * ck_assert works only inside tests. */
START_TEST(test_write_fixtures)
{
	size_t i;

	make_dir(tmp_root);
	for (i = 0; i < NFIXTURES; i++) {
		build_fixture(&fixtures[i], tpath("%s", fixtures[i].name));
	}
}
END_TEST

static Suite *write_fixtures_suite(const char *dir)
{
	Suite *s = suite_create("write-fixtures");
	TCase *tc = tcase_create("write-fixtures");

	snprintf(tmp_root, sizeof tmp_root, "%s", dir);
	tcase_add_test(tc, test_write_fixtures);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 3 && !strcmp(argv[1], "--write-fixtures"))
		sr = srunner_create(write_fixtures_suite(argv[2]));
	else
		sr = srunner_create(dirhash_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
