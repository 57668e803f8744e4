/*
 * ldcache.h - glibc's /etc/ld.so.cache read as the dynamic loader reads it:
 * the entries for a library name, in the cache's order.  Internal.
 */
#ifndef HT_LDCACHE_H
#define HT_LDCACHE_H

#include <stddef.h>

/* A loaded cache; data is NULL when the file is absent or invalid. */
struct ht_ldcache {
	char *data;      /* the whole file */
	size_t len;
	size_t new_off;  /* where the "new" format starts */
	size_t nlibs;
};

/* Read path into *lc.  An absent or invalid cache leaves it empty (the
 * loader ignores such a cache); never fails. */
void ht_ldcache_load(struct ht_ldcache *lc, const char *path);
void ht_ldcache_free(struct ht_ldcache *lc);

/* The path of the next entry for name from entry *pos on (start at 0), or
 * NULL at the end; *pos moves past it.  Only ELF entries of libc6 without a
 * hwcap (not glibc-hwcaps or legacy hwcap subdirectories: the result must
 * work on any CPU) are returned. */
const char *ht_ldcache_next(const struct ht_ldcache *lc, const char *name, size_t *pos);

#endif /* HT_LDCACHE_H */
