/*
 * local-deploy.c - "updating the function" of the local provider.
 *
 * functionDir/
 *   images/<hex>            the deployed image, unpacked (root filesystem)
 *   images/<hex>.complete   marker written once the unpack finished
 *   current                 {"digest": "sha256:<hex>", "root": ".../images/<hex>",
 *                            "imageConfig": {"Entrypoint": [...], "Cmd": [...],
 *                                            "Env": [...], "WorkingDir": "..."}}
 *   scratch/<testId>/       one per invocation in flight (local-invoke.c)
 *
 * An update unpacks the image once (skipped when the marker is there),
 * reads the image config from the OCI layout (local-image.c), replaces
 * current atomically, then removes every other
 * unpacked image.  isolation "image" runs the recorded entry point; the
 * other isolations do not need the config, so there a layout without it is
 * no error (imageConfig is left out).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "local.h"

#define MARKER_SUFFIX ".complete"

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
	memset(d, 0, sizeof *d);
}

/* Read functionDir/current: digest and root (malloc'd), and the image
 * config into ic unless NULL. */
static int read_current(local_provider *p, char **digest, char **root, local_image_config *ic)
{
	char *path = local_path_join(p->function_dir, "current");
	char *text;
	size_t len;
	if (!path)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (local_read_file(path, &text, &len) != 0) {
		int e = errno;
		int rc = e == ENOENT
		             ? local_fail(p, HYPERTEST_ERR_NOT_FOUND,
		                          "nothing deployed in %s (run hypertest deploy)",
		                          p->function_dir)
		             : local_fail(p, HYPERTEST_ERR_IO, "cannot read %s: %s",
		                          path, strerror(e));
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
	char *path = local_asprintf("%s/etc/%s", root, name);
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

/* isolation "image": the mount points of the sandbox in the unpacked root
 * (read-only in the sandbox, so they must be there before).  Only empty
 * directories and files are added. */
static int prepare_root(local_provider *p, local_deployed *d)
{
	const char *dirs[] = {"dev", "proc", "tmp",
	                      d->image.workdir ? d->image.workdir : LOCAL_IMAGE_WORKDIR};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (dir_in_root(d->root, dirs[i]) < 0)
			return local_fail(p, HYPERTEST_ERR_IO, "cannot create /%s in the deployed "
			                  "image %s: %s", dirs[i][0] == '/' ? dirs[i] + 1 : dirs[i],
			                  d->root, strerror(errno));
	d->bind_resolv = file_mount_point(d->root, "resolv.conf");
	d->bind_hosts = file_mount_point(d->root, "hosts");
	return 0;
}

int local_deployed_load(local_provider *p)
{
	if (p->dep_loaded)
		return 0;
	local_deployed d;
	memset(&d, 0, sizeof d);
	int rc = read_current(p, &d.digest, &d.root, &d.image);
	int image = p->isolation == LOCAL_ISOLATION_IMAGE;
	if (rc == 0) {
		d.task_root = local_path_join(d.root, "var/task");
		d.config = d.task_root ? local_path_join(d.task_root, "hypertest.config.json") : NULL;
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

static int is_marker_of(const char *name, const char *hex)
{
	size_t n = strlen(hex);
	return !strncmp(name, hex, n) && !strcmp(name + n, MARKER_SUFFIX);
}

/* Remove every unpacked image but hex: markers first, so that a half
 * removed image is never taken for a complete one. */
static void remove_other_images(local_provider *p, const char *images, const char *hex)
{
	for (int pass = 0; pass < 2; pass++) {
		DIR *dir = opendir(images);
		if (!dir)
			return;
		struct dirent *e;
		while ((e = readdir(dir)) != NULL) {
			const char *n = e->d_name;
			size_t len = strlen(n), sl = strlen(MARKER_SUFFIX);
			int marker = len > sl && !strcmp(n + len - sl, MARKER_SUFFIX);
			if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, hex) ||
			    is_marker_of(n, hex) || marker != (pass == 0))
				continue;
			char *path = local_path_join(images, n);
			if (path && local_rm_rf(path) != 0)
				local_log(p, HYPERTEST_LOG_WARNING,
				          "cannot remove the old image %s: %s", path,
				          strerror(errno));
			free(path);
		}
		closedir(dir);
	}
}

static int unpack(local_provider *p, const char *image_ref, const char *dest,
                  const char *marker, const char *digest)
{
	struct stat st;
	if (stat(marker, &st) == 0 && stat(dest, &st) == 0 && S_ISDIR(st.st_mode)) {
		local_log(p, HYPERTEST_LOG_DEBUG, "%s is already unpacked in %s",
		          digest, dest);
		return 0;
	}
	if (!p->up.image_unpack)
		return local_fail(p, HYPERTEST_ERR_UNSUPPORTED,
		                  "this core cannot unpack images (upcall %d missing)",
		                  HYPERTEST_UP_IMAGE_UNPACK);
	if ((unlink(marker) != 0 && errno != ENOENT) || local_rm_rf(dest) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot clear %s: %s", dest,
		                  strerror(errno));
	local_log(p, HYPERTEST_LOG_INFO, "unpacking %s into %s", digest, dest);
	int rc = p->up.image_unpack(p->core, p->image_dir, image_ref, dest);
	if (rc != 0)
		return rc;
	if (local_write_atomic(marker, digest, strlen(digest)) != 0)
		return local_fail(p, HYPERTEST_ERR_IO, "cannot write %s: %s", marker,
		                  strerror(errno));
	return 0;
}

int local_function_update(void *self, const char *image_ref, const char *image_digest)
{
	local_provider *p = self;
	const char *hex = local_digest_hex(image_digest);
	if (!hex)
		return local_fail(p, HYPERTEST_ERR_INVALID,
		                  "'%s' is not an image digest (algorithm:hex)",
		                  image_digest ? image_digest : "");
	char *images = local_path_join(p->function_dir, "images");
	char *dest = images ? local_path_join(images, hex) : NULL;
	char *marker = dest ? local_asprintf("%s%s", dest, MARKER_SUFFIX) : NULL;
	char *current = local_path_join(p->function_dir, "current");
	json_t *j = json_pack("{s:s, s:s}", "digest", image_digest, "root", dest ? dest : "");
	char *text = NULL;
	int rc = 0;
	if (!marker || !current || !j)
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	else if (local_mkdir_p(images) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s", images,
		                strerror(errno));
	if (rc == 0)
		rc = unpack(p, image_ref, dest, marker, image_digest);
	if (rc == 0) {
		/* Only isolation "image" needs the entry point. */
		json_t *ic = NULL;
		int icrc = local_image_config_read(p, image_digest, &ic);
		if (icrc != 0 && p->isolation == LOCAL_ISOLATION_IMAGE)
			rc = icrc;
		else if (icrc != 0)
			local_log(p, HYPERTEST_LOG_DEBUG, "no image config recorded: %s",
			          p->last_error);
		else if (json_object_set_new(j, "imageConfig", ic) != 0)
			rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (rc == 0 && !(text = json_dumps(j, JSON_SORT_KEYS)))
		rc = local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == 0 && local_write_atomic(current, text, strlen(text)) != 0)
		rc = local_fail(p, HYPERTEST_ERR_IO, "cannot write %s: %s", current,
		                strerror(errno));
	if (rc == 0) {
		remove_other_images(p, images, hex);
		local_deployed_clear(&p->dep);
		p->dep_loaded = 0;
	}
	json_decref(j);
	free(text);
	free(images);
	free(dest);
	free(marker);
	free(current);
	return rc;
}
