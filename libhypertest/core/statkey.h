/*
 * statkey.h - cache keys made of what stat() says of files: the layer cache
 * (oci/layer.c) and the test-directory hash cache (commands/dirhash.c) both
 * trust a remembered result while every file keeps its metadata.
 */
#ifndef HT_STATKEY_H
#define HT_STATKEY_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

/* s with its terminating NUL, so that "ab","c" and "a","bc" differ. */
void ht_key_str(EVP_MD_CTX *c, const char *s);
/* v as 8 bytes, least significant first. */
void ht_key_u64(EVP_MD_CTX *c, uint64_t v);
/* st's mode, size, modification and change times (to the nanosecond),
 * inode and device.  Returns 1 when either time is at or after limit: a
 * file changed that recently may change again within the same clock tick
 * without its metadata showing it, so a key made of it is not to be
 * remembered; else 0. */
int ht_key_stat(EVP_MD_CTX *c, const struct stat *st, const struct timespec *limit);
/* Whether t is at or after limit. */
int ht_timespec_after(const struct timespec *t, const struct timespec *limit);

#endif
