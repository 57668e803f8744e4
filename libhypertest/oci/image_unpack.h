/*
 * image_unpack.h - extracting image layers (tar, gzip or other compression
 * libarchive reads) into a directory, the way a container runtime stacks
 * them: OCI whiteouts applied, paths kept inside the directory, no chown.
 */
#ifndef HT_IMAGE_UNPACK_H
#define HT_IMAGE_UNPACK_H

#include "util.h"

typedef struct ht_unpack ht_unpack;

/* Start unpacking into dest (created; must be empty or missing; made mode
 * 0700: the tree is its owner's alone). */
int ht_unpack_new(const char *dest, ht_unpack **out, ht_err *err);
/* Extract the layer blob digest of the OCI layout at layout_dir (its
 * digest is verified, and its size when size >= 0) on top of what is
 * there: ".wh.NAME" removes NAME, ".wh..wh..opq" empties its directory of
 * what lower layers put there.  Entries with an absolute path or a ".."
 * component, hard links leaving the image and relative symbolic links
 * climbing above its root are refused (HYPERTEST_ERR_IMAGE); an absolute
 * symbolic link is kept as it is (it means the image's root).  Parent
 * directories are resolved inside dest as the container would see them
 * (symbolic links followed, never out of dest); each operation then works
 * in a directory opened beneath dest without following any link.
 * ".wh." naming nothing, "." or ".." is refused.  Setuid, setgid and
 * sticky bits are dropped. */
int ht_unpack_layer(ht_unpack *u, const char *layout_dir, const char *digest, long long size,
                    ht_err *err);
/* Give directories their modes (kept writable until now); a directory
 * that a later entry replaced by a symbolic link is left alone. */
int ht_unpack_finish(ht_unpack *u, ht_err *err);
void ht_unpack_free(ht_unpack *u);

#endif /* HT_IMAGE_UNPACK_H */
