/*
 * statkey.c - cache keys made of what stat() says of files (statkey.h).
 */
#include "statkey.h"

#include <string.h>

void ht_key_str(EVP_MD_CTX *c, const char *s)
{
	EVP_DigestUpdate(c, s, strlen(s) + 1);
}

void ht_key_u64(EVP_MD_CTX *c, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	EVP_DigestUpdate(c, b, sizeof b);
}

int ht_timespec_after(const struct timespec *t, const struct timespec *limit)
{
	return t->tv_sec > limit->tv_sec ||
	       (t->tv_sec == limit->tv_sec && t->tv_nsec >= limit->tv_nsec);
}

int ht_key_stat(EVP_MD_CTX *c, const struct stat *st, const struct timespec *limit)
{
	ht_key_u64(c, (uint64_t)st->st_mode);
	ht_key_u64(c, (uint64_t)st->st_size);
	ht_key_u64(c, (uint64_t)st->st_mtim.tv_sec);
	ht_key_u64(c, (uint64_t)st->st_mtim.tv_nsec);
	ht_key_u64(c, (uint64_t)st->st_ctim.tv_sec);
	ht_key_u64(c, (uint64_t)st->st_ctim.tv_nsec);
	ht_key_u64(c, (uint64_t)st->st_ino);
	ht_key_u64(c, (uint64_t)st->st_dev);
	return ht_timespec_after(&st->st_mtim, limit) || ht_timespec_after(&st->st_ctim, limit);
}
