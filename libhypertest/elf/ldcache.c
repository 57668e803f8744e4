/*
 * ldcache.c - reading glibc's ld.so.cache, read whole, every offset checked
 * against its size.  Layout (glibc's "new" format, alone or after the old
 * one): 20-byte magic "glibc-ld.so.cache1.1", nlibs, len_strings, a byte
 * order flag, 3 pad bytes, extension offset, 3 unused words; then nlibs
 * entries {int32 flags, uint32 key, uint32 value, uint32 osversion, uint64
 * hwcap}; string offsets count from the magic.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ldcache.h"
#include "util.h"

void ht_ldcache_load(struct ht_ldcache *lc, const char *path)
{
	static const char magic_new[] = "glibc-ld.so.cache1.1", magic_old[] = "ld.so-1.7.0";
	size_t off = 0, len;
	char *data;
	const unsigned char *h;
	uint32_t nlibs;
	int order;

	memset(lc, 0, sizeof *lc);
	if (ht_read_file(path, &data, &len, NULL) != 0)
		return;
	if (len >= 16 && memcmp(data, magic_old, sizeof magic_old) == 0) {
		uint32_t n;
		memcpy(&n, data + 12, 4);
		if (n > (len - 16) / 12) {
			free(data);
			return;
		}
		off = (16 + (size_t)n * 12 + 7) & ~(size_t)7;
	}
	if (off > len || len - off < 48 || memcmp(data + off, magic_new, 20) != 0) {
		free(data);
		return;
	}
	h = (const unsigned char *)data + off;
	order = h[28];
	if (order == 1 || order > 3 ||
	    (order != 0 && (order == 3) != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__))) {
		free(data);
		return;
	}
	memcpy(&nlibs, h + 20, 4);
	if (nlibs > (len - off - 48) / 24) {
		free(data);
		return;
	}
	lc->nlibs = nlibs;
	lc->data = data;
	lc->len = len;
	lc->new_off = off;
}

void ht_ldcache_free(struct ht_ldcache *lc)
{
	free(lc->data);
	memset(lc, 0, sizeof *lc);
}

/* A string of the cache, or NULL when out of bounds. */
static const char *cache_str(const struct ht_ldcache *lc, uint32_t off)
{
	size_t at = lc->new_off + off;

	if (at < lc->new_off || at >= lc->len || !memchr(lc->data + at, '\0', lc->len - at))
		return NULL;
	return lc->data + at;
}

const char *ht_ldcache_next(const struct ht_ldcache *lc, const char *name, size_t *pos)
{
	while (lc->data && *pos < lc->nlibs) {
		const char *e = lc->data + lc->new_off + 48 + *pos * 24, *key, *value;
		int32_t flags;
		uint32_t k, v;
		uint64_t hwcap;
		++*pos;
		memcpy(&flags, e, 4);
		memcpy(&k, e + 4, 4);
		memcpy(&v, e + 8, 4);
		memcpy(&hwcap, e + 16, 8);
		if (((flags & 0xff) != 1 && (flags & 0xff) != 3) || hwcap != 0)
			continue;
		key = cache_str(lc, k);
		if (!key || strcmp(key, name) != 0 || !(value = cache_str(lc, v)))
			continue;
		return value;
	}
	return NULL;
}
