/*
 * fuzz-ldcache.c - the ld.so.cache reader: an input is a cache file,
 * loaded and searched for a few names as the dependency closure does.
 */
#include "fuzz-util.h"
#include "ldcache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const names[] = {"libc.so.6", "libm.so.6", "libz.so.1", "", "a"};
	const char *path = fz_path("ld.so.cache");
	struct ht_ldcache lc;
	size_t i, pos;

	fz_write(path, data, len);
	ht_ldcache_load(&lc, path);
	for (i = 0; i < sizeof names / sizeof *names; i++) {
		pos = 0;
		while (ht_ldcache_next(&lc, names[i], &pos))
			;
	}
	ht_ldcache_free(&lc);
	return 0;
}
