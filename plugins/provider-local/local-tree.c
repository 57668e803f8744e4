/*
 * local-tree.c - an unpacked image as the local provider keeps it: sealed
 * read-only (no write bit on any file or directory, so that a test with
 * isolation "none", writing through its scratch directory's links, cannot
 * change it by accident), summarised by a digest of its listing (each
 * entry's path, type and mode, size and modification time, in name order:
 * cheap to recompute at each deploy, and changed by any write, removal,
 * rename or chmod, even root's), and unsealed again to be removed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "local.h"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of directory fd (consumed), sorted; NULL-terminated. */
static char **sorted_names(int fd)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return NULL;
	}
	size_t n = 0, cap = 16;
	char **v = malloc(cap * sizeof *v);
	struct dirent *e;
	while (v && (e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n + 1 == cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof *nv);
			if (!nv) {
				v[n] = NULL;
				local_strv_free(v);
				v = NULL;
				break;
			}
			v = nv;
		}
		if (!(v[n] = local_strdup(e->d_name))) {
			local_strv_free(v);
			v = NULL;
			break;
		}
		v[++n] = NULL;
	}
	if (v) {
		v[n] = NULL;
		qsort(v, n, sizeof *v, name_cmp);
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return v;
}

enum walk_op { WALK_DIGEST, WALK_SEAL, WALK_UNSEAL };

/* Visit the tree below directory fd (borrowed), never following a link:
 * digest its listing, seal it or unseal it. */
static int walk(int fd, const char *rel, enum walk_op op, EVP_MD_CTX *md)
{
	int dup_fd = dup(fd);
	if (dup_fd < 0)
		return -1;
	char **names = sorted_names(dup_fd);
	if (!names)
		return -1;
	int rc = 0;
	for (size_t i = 0; !rc && names[i]; i++) {
		struct stat st;
		if (fstatat(fd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -1;
			break;
		}
		char *sub = *rel ? htp_strdupf("%s/%s", rel, names[i]) : local_strdup(names[i]);
		if (!sub) {
			rc = -1;
			break;
		}
		if (op == WALK_DIGEST) {
			char line[256];
			int n = snprintf(line, sizeof line, "\t%o\t%lld\t%lld.%09ld\n",
			                 (unsigned)st.st_mode, (long long)st.st_size,
			                 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			if (EVP_DigestUpdate(md, sub, strlen(sub) + 1) != 1 ||
			    EVP_DigestUpdate(md, line, (size_t)n) != 1)
				rc = -1;
		}
		if (!rc && S_ISDIR(st.st_mode)) {
			int sfd = openat(fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0 && op == WALK_UNSEAL && errno == EACCES &&
			    fchmodat(fd, names[i], 0700, 0) == 0)
				sfd = openat(fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0) {
				rc = -1;
			} else {
				if (op == WALK_UNSEAL && fchmod(sfd, (st.st_mode & 07777) | 0700) != 0)
					rc = -1;
				if (!rc)
					rc = walk(sfd, sub, op, md);
				/* a directory is sealed after its contents */
				if (!rc && op == WALK_SEAL && fchmod(sfd, st.st_mode & 07555) != 0)
					rc = -1;
				close(sfd);
			}
		} else if (!rc && op == WALK_SEAL && !S_ISLNK(st.st_mode) && (st.st_mode & 0222) &&
		           fchmodat(fd, names[i], st.st_mode & 07555, 0) != 0) {
			rc = -1;
		}
		free(sub);
	}
	int saved = errno;
	local_strv_free(names);
	errno = saved;
	return rc;
}

static int walk_path(const char *root, enum walk_op op, EVP_MD_CTX *md)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && op == WALK_UNSEAL && errno == EACCES && chmod(root, 0700) == 0)
		fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	int rc = fstat(fd, &st);
	if (rc == 0 && op == WALK_UNSEAL)
		rc = fchmod(fd, 0700);
	if (rc == 0)
		rc = walk(fd, "", op, md);
	if (rc == 0 && op == WALK_SEAL)
		rc = fchmod(fd, 0500);
	if (rc == 0 && op == WALK_DIGEST) {
		char line[64];
		int n = snprintf(line, sizeof line, "/\t%o\n", (unsigned)st.st_mode);
		rc = EVP_DigestUpdate(md, line, (size_t)n) == 1 ? 0 : -1;
	}
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int local_tree_seal(const char *root)
{
	return walk_path(root, WALK_SEAL, NULL);
}

int local_tree_remove(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(st.st_mode) && walk_path(path, WALK_UNSEAL, NULL) != 0)
		return -1;
	return local_rm_rf(path);
}

int local_tree_digest(const char *root, char out[65])
{
	out[0] = '\0';
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		errno = ENOMEM;
		return -1;
	}
	int rc = walk_path(root, WALK_DIGEST, md);
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (rc == 0 && (EVP_DigestFinal_ex(md, h, &n) != 1 || n != 32)) {
		errno = EIO;
		rc = -1;
	}
	for (unsigned i = 0; rc == 0 && i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	EVP_MD_CTX_free(md);
	return rc;
}
