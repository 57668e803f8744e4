/*
 * local-deploy.c - "updating the function" of the local provider.
 *
 * functionDir/
 *   images/<hex>/            an image this provider unpacked, its own:
 *     image.json               {"digest": "sha256:<hex>", "tree": "<sha256>"}, written
 *                              first without "tree", which is added once the unpack
 *                              finished (the SHA-256 of the tree's listing:
 *                              paths, modes, sizes, modification times)
 *     lock                     held shared by each invoke running the image,
 *                              exclusive by a deploy removing or repairing it
 *     root/                    the root filesystem, read-only
 *   current                  {"digest": "sha256:<hex>", "root": ".../images/<hex>/root",
 *                             "imageConfig": {"Entrypoint": [...], "Cmd": [...],
 *                                             "Env": [...], "WorkingDir": "..."}}
 *   scratch/<testId>/        one per invocation in flight (local-invoke.c)
 *
 * An update unpacks the image unless it is there, complete, with the
 * listing recorded (a changed image is unpacked again), adds the sandbox's
 * mount points, seals the tree read-only, reads the image config from the
 * OCI layout (local-image.c), replaces current atomically, then removes
 * the other images of its own that no invoke holds.  An entry of images/
 * without an image.json naming it was not made here and is left alone
 * (with "functionDir": "." it may be the project's).  isolation "image"
 * runs the recorded entry point; the other isolations do not need the
 * config, so there a layout without it is no error (imageConfig is left
 * out).  Images of the earlier layout (images/<hex> beside
 * images/<hex>.complete holding the digest) are recognised and removed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "local.h"

#define LEGACY_SUFFIX ".complete" /* the earlier layout's marker */
#define MANIFEST "image.json"
#define LOCK_NAME "lock"
/* functionDir/current: a digest, a path and four fields of an image config */
#define CURRENT_MAX ((size_t)16 << 20)
#define ROOT_SUFFIX "/root"
#define HOLD_TRIES 5

void local_deployed_clear(local_deployed *d)
{
	local_strv_free(d->image.entrypoint);
	local_strv_free(d->image.cmd);
	local_strv_free(d->image.env);
	free(d->image.workdir);
	free(d->digest);
	free(d->root);
	free(d->task_root);
	free(d->config);
	for (size_t i = 0; i < d->nentries; i++)
		free(d->entries[i]);
	free(d->entries);
	if (d->has_lock)
		close(d->lock_fd); /* the image may go now */
	memset(d, 0, sizeof *d);
}

/* Read functionDir/current: digest and root (malloc'd), and the image
 * config into ic unless NULL. */
static int read_current(local_provider *p, char **digest, char **root, local_image_config *ic)
{
	char *path = htp_path_join(p->function_dir, "current");
	char *text;
	size_t len;
	if (!path)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (local_read_file(path, CURRENT_MAX, &text, &len) != 0) {
		int e = errno;
		int rc = e == ENOENT
		             ? local_fail(p, HYPERTEST_ERR_NOT_FOUND,
		                          "nothing deployed in %s (run hypertest deploy)",
		                          p->function_dir)
		             : local_fail(p, HYPERTEST_ERR_IO, "cannot read %s: %s", path,
		                          e == EFBIG ? "larger than 16 MiB, its limit"
		                          : e == EINVAL ? "not a regular file" : strerror(e));
		free(path);
		return rc;
	}
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	free(text);
	const char *d = json_string_value(json_object_get(j, "digest"));
	const char *r = json_string_value(json_object_get(j, "root"));
	json_t *icj = json_object_get(j, "imageConfig");
	int rc = 0;
	if (!d || !r || !local_digest_hex(d) || r[0] != '/')
		rc = local_fail(p, HYPERTEST_ERR_IO,
		                "%s is damaged (expected {\"digest\", \"root\"}); "
		                "run hypertest deploy again", path);
	else if (!(*digest = local_strdup(d)) || !(*root = local_strdup(r)))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	else if (ic && icj && local_image_config_parse(icj, ic) != 0)
		rc = errno == ENOMEM
		         ? local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory")
		         : local_fail(p, HYPERTEST_ERR_IO, "%s is damaged (\"imageConfig\" is not an "
		                      "image config); run hypertest deploy again", path);
	json_decref(j);
	free(path);
	return rc;
}

/* The top-level names of the task root, which each invocation's scratch
 * directory links to.  ".hypertest" is left out: the scratch directory
 * keeps HOME and TMPDIR there. */
static int list_entries(local_provider *p, local_deployed *d)
{
	DIR *dir = opendir(d->task_root);
	if (!dir)
		return local_fail(p, HYPERTEST_ERR_IMAGE,
		                  "the deployed image %s has no /var/task (%s: %s)",
		                  d->digest, d->task_root, strerror(errno));
	size_t cap = 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(dir)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, ".hypertest"))
			continue;
		if (d->nentries == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **ne = realloc(d->entries, ncap * sizeof *ne);
			if (!ne) {
				rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
				break;
			}
			d->entries = ne;
			cap = ncap;
		}
		if (!(d->entries[d->nentries] = local_strdup(e->d_name)))
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		else
			d->nentries++;
	}
	closedir(dir);
	return rc;
}

/* Make the directory rel (absolute in the image) in root where it is
 * missing, never following a link of the image: at a symbolic link or a
 * file on the way it stops (the sandbox resolves that path in the image
 * itself).  1 when root + rel is a directory of the image now, 0 when it
 * stopped, -1 with errno. */
static int dir_in_root(const char *root, const char *rel)
{
	size_t cap = strlen(root) + strlen(rel) + 2, n = strlen(root);
	char *path = malloc(cap);
	if (!path)
		return -1;
	memcpy(path, root, n + 1);
	int rc = 1;
	for (const char *s = rel; rc == 1 && *s;) {
		size_t len = strcspn(s, "/");
		if (len == 0 || (len == 1 && s[0] == '.')) {
			s += len + (s[len] == '/');
			continue;
		}
		if (len == 2 && s[0] == '.' && s[1] == '.') {
			rc = 0;
			break;
		}
		path[n++] = '/';
		memcpy(path + n, s, len);
		n += len;
		path[n] = '\0';
		s += len + (s[len] == '/');
		struct stat st;
		if (lstat(path, &st) != 0 && errno == ENOENT && mkdir(path, 0755) != 0 &&
		    errno != EEXIST)
			rc = -1;
		else if (lstat(path, &st) != 0)
			rc = -1;
		else if (!S_ISDIR(st.st_mode))
			rc = 0;
	}
	int e = errno;
	free(path);
	errno = e;
	return rc;
}

/* An empty file at root + etc/name to bind the host's /etc/name on (as
 * container runtimes do with resolv.conf and hosts); 1 when it is there,
 * a regular file of the image, and the host has /etc/name. */
static int file_mount_point(const char *root, const char *name)
{
	char host[64];
	struct stat st;
	snprintf(host, sizeof host, "/etc/%s", name);
	if (stat(host, &st) != 0 || !S_ISREG(st.st_mode) || dir_in_root(root, "etc") != 1)
		return 0;
	char *path = htp_strdupf("%s/etc/%s", root, name);
	int ok = 0;
	if (path && lstat(path, &st) != 0 && errno == ENOENT) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd >= 0)
			close(fd);
	}
	if (path && lstat(path, &st) == 0 && S_ISREG(st.st_mode))
		ok = 1;
	free(path);
	return ok;
}

/* The mount points of isolation "image"'s sandbox in the unpacked root
 * (read-only in the sandbox, so they must be there before): made by deploy
 * before the tree is sealed, so that a later change of isolation finds
 * them.  Only empty directories and files are added. */
static int make_mount_points(local_provider *p, const char *root, const char *workdir,
                             int *bind_resolv, int *bind_hosts)
{
	const char *dirs[] = {"dev", "proc", "tmp", workdir ? workdir : LOCAL_IMAGE_WORKDIR};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (dir_in_root(root, dirs[i]) < 0)
			return local_fail(p, HYPERTEST_ERR_IO, "cannot create /%s in the deployed "
			                  "image %s: %s (deploy again)",
			                  dirs[i][0] == '/' ? dirs[i] + 1 : dirs[i], root,
			                  strerror(errno));
	*bind_resolv = file_mount_point(root, "resolv.conf");
	*bind_hosts = file_mount_point(root, "hosts");
	return 0;
}

static int prepare_root(local_provider *p, local_deployed *d)
{
	return make_mount_points(p, d->root, d->image.workdir, &d->bind_resolv, &d->bind_hosts);
}

/* ---- the images directory -------------------------------------------------------- */

/* Whether dir is an image of ours (dir/image.json names the digest whose
 * hex is dir's last component): 1, with the recorded listing digest in
 * *tree (malloc'd, NULL while the unpack is unfinished) unless tree is
 * NULL; 0 when it is not. */
static int read_manifest(const char *dir, char **tree)
{
	char *path = htp_path_join(dir, MANIFEST), *text = NULL;
	size_t len;
	int ours = 0;
	if (tree)
		*tree = NULL;
	if (path && local_read_file(path, 4096, &text, &len) == 0 && len < 4096) {
		json_t *j = json_loadb(text, len, 0, NULL);
		const char *hex = local_digest_hex(json_string_value(json_object_get(j, "digest")));
		const char *t = json_string_value(json_object_get(j, "tree"));
		const char *slash = strrchr(dir, '/');
		ours = hex && !strcmp(hex, slash ? slash + 1 : dir);
		if (ours && tree && t && !(*tree = local_strdup(t)))
			ours = 0;
		json_decref(j);
	}
	free(text);
	free(path);
	return ours;
}

static int write_manifest(const char *dir, const char *digest, const char *tree)
{
	json_t *j = tree ? json_pack("{s:s, s:s}", "digest", digest, "tree", tree)
	                 : json_pack("{s:s}", "digest", digest);
	char *text = j ? json_dumps(j, JSON_SORT_KEYS) : NULL;
	char *path = htp_path_join(dir, MANIFEST);
	int rc = text && path ? local_write_atomic(path, text, strlen(text)) : (errno = ENOMEM, -1);
	int e = errno;
	free(path);
	free(text);
	json_decref(j);
	errno = e;
	return rc;
}

/* dir/lock opened (created when create) and locked with how (LOCK_SH,
 * LOCK_EX, | LOCK_NB); -1 with errno (EWOULDBLOCK: held by someone else). */
static int lock_image(const char *dir, int how, int create)
{
	char *path = htp_path_join(dir, LOCK_NAME);
	if (!path) {
		errno = ENOMEM;
		return -1;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);
	free(path);
	if (fd < 0)
		return -1;
	int r;
	while ((r = flock(fd, how)) != 0 && errno == EINTR)
		;
	if (r != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* name in images is an image of the earlier layout: name is "<hex>.complete"
 * holding "algo:<hex>".  1 with the hex part in hex (malloc'd). */
static int legacy_marker(const char *images, const char *name, char **hex)
{
	size_t len = strlen(name), sl = strlen(LEGACY_SUFFIX);
	if (len <= sl || strcmp(name + len - sl, LEGACY_SUFFIX) != 0)
		return 0;
	char *path = htp_path_join(images, name), *text = NULL;
	size_t tl;
	int ok = 0;
	if (path && local_read_file(path, 256, &text, &tl) == 0 && tl < 256 && !memchr(text, 0, tl)) {
		const char *h = local_digest_hex(text);
		ok = h && strlen(h) == len - sl && !strncmp(h, name, len - sl) &&
		     (*hex = strndup(name, len - sl)) != NULL;
	}
	free(text);
	free(path);
	return ok;
}

/* Remove an image of the earlier layout: the marker first, so that a half
 * removed image is never taken for a complete one. */
static void remove_legacy(local_provider *p, const char *images, const char *hex)
{
	char *dir = htp_path_join(images, hex);
	char *marker = dir ? htp_strdupf("%s%s", dir, LEGACY_SUFFIX) : NULL;
	if (!marker || (unlink(marker) != 0 && errno != ENOENT) || local_tree_remove(dir) != 0)
		local_log(p, HYPERTEST_LOG_WARNING, "cannot remove the old image %s: %s",
		          dir ? dir : hex, strerror(errno));
	free(marker);
	free(dir);
}

/* Remove every image of ours but hex that no invoke holds; say what else
 * is there and stays. */
static void remove_other_images(local_provider *p, const char *images, const char *hex)
{
	DIR *dir = opendir(images);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		const char *n = e->d_name;
		char *lhex = NULL;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, hex))
			continue;
		if (legacy_marker(images, n, &lhex)) {
			if (strcmp(lhex, hex) != 0)
				remove_legacy(p, images, lhex);
			free(lhex);
			continue;
		}
		char *path = htp_path_join(images, n);
		char *marker = path ? htp_strdupf("%s%s", path, LEGACY_SUFFIX) : NULL;
		struct stat st;
		if (!marker) {
			free(path);
			break;
		}
		if (lstat(marker, &st) == 0) {
			/* the directory of an earlier-layout image: removed with its marker */
		} else if (read_manifest(path, NULL)) {
			int fd = lock_image(path, LOCK_EX | LOCK_NB, 0);
			char *man = htp_path_join(path, MANIFEST);
			if (fd < 0 && errno == EWOULDBLOCK)
				local_log(p, HYPERTEST_LOG_INFO, "kept the image %s: a running invoke "
				          "uses it (a later deploy removes it)", path);
			else if (!man || (unlink(man) != 0 && errno != ENOENT) ||
			         local_tree_remove(path) != 0)
				local_log(p, HYPERTEST_LOG_WARNING, "cannot remove the old image %s: %s",
				          path, strerror(errno));
			if (fd >= 0)
				close(fd);
			free(man);
		} else {
			local_log(p, HYPERTEST_LOG_WARNING, "left %s alone: it is not an image "
			          "hypertest unpacked (no %s naming it)", path, MANIFEST);
		}
		free(marker);
		free(path);
	}
	closedir(dir);
}

/* Hold the image of d->root (images/<hex>/root) for as long as d is
 * loaded: a shared lock on images/<hex>/lock, taken while the image is
 * still complete.  0 held (or nothing to hold: an image of the earlier
 * layout), 1 the image went meanwhile (read current again), 2 (only with
 * nb) someone holds it exclusively, -1 failed. */
static int hold_image(local_provider *p, local_deployed *d, int nb)
{
	size_t n = strlen(d->root), sl = strlen(ROOT_SUFFIX);
	if (n <= sl || strcmp(d->root + n - sl, ROOT_SUFFIX) != 0)
		return 0;
	char *dir = strndup(d->root, n - sl);
	if (!dir) {
		local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
		return -1;
	}
	int fd = lock_image(dir, LOCK_SH | (nb ? LOCK_NB : 0), 0), rc = 0;
	char *tree = NULL;
	if (fd < 0 && nb && errno == EWOULDBLOCK) {
		rc = 2;
	} else if (fd < 0 && errno != ENOENT) {
		local_fail(p, HYPERTEST_ERR_IO, "cannot lock the deployed image %s: %s", dir,
		           strerror(errno));
		rc = -1;
	} else if (fd < 0 || !read_manifest(dir, &tree) || !tree)
		rc = 1;
	if (rc == 0) {
		d->lock_fd = fd;
		d->has_lock = 1;
	} else if (fd >= 0) {
		close(fd);
	}
	free(tree);
	free(dir);
	return rc;
}

static int deployed_load(local_provider *p, int *busy)
{
	if (busy)
		*busy = 0;
	if (p->dep_loaded)
		return 0;
	local_deployed d;
	int rc = 0;
	for (int tries = 0;; tries++) {
		memset(&d, 0, sizeof d);
		rc = read_current(p, &d.digest, &d.root, &d.image);
		int held = rc ? 0 : hold_image(p, &d, busy != NULL);
		if (held < 0)
			rc = HYPERTEST_ERR_IO;
		if (held == 2) {
			local_deployed_clear(&d);
			*busy = 1;
			return 0;
		}
		if (held != 1)
			break;
		local_deployed_clear(&d);
		if (tries + 1 == HOLD_TRIES)
			return local_fail(p, HYPERTEST_ERR_IO, "the image named by %s/current is "
			                  "not there or not complete (run hypertest deploy)",
			                  p->function_dir);
	}
	int image = LOCAL_RUNS_IMAGE(p);
	if (rc == 0) {
		d.task_root = htp_path_join(d.root, "var/task");
		d.config = d.task_root ? htp_path_join(d.task_root, "hypertest.config.json") : NULL;
		/* in the image's own root the scratch directory links to nothing */
		rc = !d.config ? local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory")
		     : image   ? prepare_root(p, &d)
		               : list_entries(p, &d);
	}
	if (rc != 0) {
		local_deployed_clear(&d);
		return rc;
	}
	local_deployed_clear(&p->dep);
	p->dep = d;
	p->dep_loaded = 1;
	return 0;
}

int local_deployed_load(local_provider *p)
{
	return deployed_load(p, NULL);
}

int local_deployed_load_try(local_provider *p, int *busy)
{
	return deployed_load(p, busy);
}

int local_deployed_load_try_err(local_provider *p, int *busy, char **error)
{
	char **was = local_fail_into(p, error);
	int rc = deployed_load(p, busy);
	local_fail_into(p, was);
	return rc;
}

int local_function_digest(void *self, hypertest_buffer *digest)
{
	local_provider *p = self;
	char *d = NULL, *root = NULL;
	int rc = read_current(p, &d, &root, NULL);
	if (rc == 0 && p->up.buffer_append(digest, d, strlen(d)) != 0)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	free(d);
	free(root);
	return rc;
}

/* ---- deploying ---------------------------------------------------------------------- */

struct target {
	const char *images, *hex, *digest, *ref;
	char *dir;  /* images/<hex> */
	char *root; /* images/<hex>/root */
	const char *workdir;
};

/* Unpack into t->root (dir locked by us), add the mount points, seal it,
 * record its listing. */
static int unpack_sealed(local_provider *p, const struct target *t)
{
	if (!p->up.image_unpack)
		return local_fail(p, HYPERTEST_ERR_UNSUPPORTED,
		                  "this core cannot unpack images (upcall %d missing)",
		                  HYPERTEST_UP_IMAGE_UNPACK);
	if (write_manifest(t->dir, t->digest, NULL) != 0 || local_tree_remove(t->root) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot clear %s: %s", t->root,
		                  strerror(errno));
	local_log(p, HYPERTEST_LOG_INFO, "unpacking %s into %s", t->digest, t->root);
	int rc = p->up.image_unpack(p->core, p->image_dir, t->ref, t->root);
	int br, bh;
	char tree[65];
	if (rc == 0)
		rc = make_mount_points(p, t->root, t->workdir, &br, &bh);
	if (rc == 0 && (local_tree_seal(t->root) != 0 || local_tree_digest(t->root, tree) != 0))
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot make %s read-only: %s", t->root,
		                strerror(errno));
	if (rc == 0 && write_manifest(t->dir, t->digest, tree) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot write %s/%s: %s", t->dir, MANIFEST,
		                strerror(errno));
	return rc;
}

/* The image of t in images/<hex>, unpacked, complete and unchanged: kept
 * when its listing is the one recorded, unpacked (again) otherwise. */
static int ensure_image(local_provider *p, const struct target *t)
{
	char *tree = NULL, now[65];
	struct stat st;
	int fd = -1, rc = 0;
	if (read_manifest(t->dir, &tree)) {
		if (tree && local_tree_digest(t->root, now) == 0 && !strcmp(now, tree)) {
			local_log(p, HYPERTEST_LOG_DEBUG, "%s is already unpacked in %s", t->digest,
			          t->root);
			free(tree);
			return 0;
		}
		fd = lock_image(t->dir, LOCK_EX | LOCK_NB, 1);
		if (fd < 0 && errno == EWOULDBLOCK && tree) {
			local_log(p, HYPERTEST_LOG_WARNING, "the image in %s changed since it was "
			          "deployed, but a running invoke uses it: not repaired (deploy again "
			          "once it ends)", t->root);
			free(tree);
			return 0;
		}
		if (fd >= 0 && tree)
			local_log(p, HYPERTEST_LOG_WARNING, "the image in %s changed since it was "
			          "deployed (did a test write into it?): unpacking it again", t->root);
		free(tree);
	} else if (lstat(t->dir, &st) == 0) {
		char *marker = htp_strdupf("%s%s", t->dir, LEGACY_SUFFIX), *lhex = NULL;
		const char *slash = strrchr(marker ? marker : "", '/');
		int legacy = marker && legacy_marker(t->images, slash + 1, &lhex);
		free(lhex);
		free(marker);
		if (!legacy)
			return local_fail(p, HYPERTEST_ERR_IO, "%s is in the way and was not made by "
			                  "hypertest (no %s naming it): move it away or choose another "
			                  "functionDir", t->dir, MANIFEST);
		remove_legacy(p, t->images, t->hex);
	}
	if (fd < 0 && (mkdir(t->dir, 0700) == 0 || errno == EEXIST) &&
	    write_manifest(t->dir, t->digest, NULL) == 0)
		fd = lock_image(t->dir, LOCK_EX | LOCK_NB, 1);
	if (fd < 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot take %s for unpacking: %s", t->dir,
		                  errno == EWOULDBLOCK ? "another deploy holds it" : strerror(errno));
	rc = unpack_sealed(p, t);
	close(fd);
	return rc;
}

static int function_update(local_provider *p, const char *image_ref, const char *image_digest);

int local_function_update(void *self, const char *image_ref, const char *image_digest)
{
	local_provider *p = self;
	char fn_digest[72];
	char *built_layout = p->image_dir;
	if (p->fn_layout) {
		/* functionImage: the function runs that image, not the one built */
		int frc = local_lambda_function_image(p, fn_digest);
		if (frc != 0)
			return frc;
		local_log(p, HYPERTEST_LOG_INFO, "the function runs functionImage %s (%s), not "
		          "the image built (%s)", p->fn_layout, fn_digest,
		          image_digest ? image_digest : "?");
		image_ref = p->fn_ref;
		image_digest = fn_digest;
		p->image_dir = p->fn_layout;
	}
	int rc = function_update(p, image_ref, image_digest);
	p->image_dir = built_layout;
	return rc;
}

static int function_update(local_provider *p, const char *image_ref, const char *image_digest)
{
	const char *hex = local_digest_hex(image_digest);
	if (!hex)
		return local_fail(p, HYPERTEST_ERR_INVALID,
		                  "'%s' is not an image digest (algorithm:hex)",
		                  image_digest ? image_digest : "");
	/* what this provider holds of the old image goes first */
	local_deployed_clear(&p->dep);
	p->dep_loaded = 0;
	struct target t = {NULL, hex, image_digest, image_ref, NULL, NULL, NULL};
	char *images = htp_path_join(p->function_dir, "images");
	t.images = images;
	t.dir = images ? htp_path_join(images, hex) : NULL;
	t.root = t.dir ? htp_path_join(t.dir, "root") : NULL;
	char *current = htp_path_join(p->function_dir, "current");
	json_t *j = json_pack("{s:s, s:s}", "digest", image_digest, "root", t.root ? t.root : "");
	json_t *ic = NULL;
	char *text = NULL;
	int rc = 0;
	if (!t.root || !current || !j)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	else if (local_mkdir_p(p->function_dir) != 0 ||
	         (mkdir(images, 0700) != 0 && errno != EEXIST) || local_mkdir_p(images) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s", images,
		                strerror(errno));
	if (rc == 0) {
		/* Only isolation "image" needs the entry point. */
		char *icerr = NULL, **was = local_fail_into(p, &icerr);
		int icrc = local_image_config_read(p, image_digest, &ic);
		local_fail_into(p, was);
		if (icrc != 0 && LOCAL_RUNS_IMAGE(p))
			rc = local_fail(p, icrc, "%s", icerr ? icerr : "out of memory");
		else if (icrc != 0)
			local_log(p, HYPERTEST_LOG_DEBUG, "no image config recorded: %s",
			          icerr ? icerr : "out of memory");
		else
			t.workdir = json_string_value(json_object_get(ic, "WorkingDir"));
		free(icerr);
	}
	if (rc == 0)
		rc = ensure_image(p, &t);
	if (rc == 0 && ic && json_object_set(j, "imageConfig", ic) != 0)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0 && !(text = json_dumps(j, JSON_SORT_KEYS)))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0 && local_write_atomic(current, text, strlen(text)) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot write %s: %s", current,
		                strerror(errno));
	if (rc == 0)
		remove_other_images(p, images, hex);
	json_decref(ic);
	json_decref(j);
	free(text);
	free(images);
	free(t.dir);
	free(t.root);
	free(current);
	return rc;
}
