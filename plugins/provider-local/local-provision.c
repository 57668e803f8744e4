/*
 * local-provision.c - provisioning for the local provider (plugin ABI 1.3):
 * its resources are two directories, the bucket (bucketDir) and the
 * function (functionDir).  Provisioning creates them and marks each with a
 * file, MARK, the local stand-in for the cloud's tags; destroy removes only
 * marked directories, and a bucket holding objects only when forced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "local.h"

#define MARK ".hypertest-provisioned"

enum { RES_BUCKET, RES_FUNCTION, RES_COUNT };

static const char *res_type(int r) { return r == RES_BUCKET ? "bucket" : "function"; }

static const char *res_dir(local_provider *p, int r)
{
	return r == RES_BUCKET ? p->bucket_dir : p->function_dir;
}

/* 1 directory, 0 missing, -1 something else or an error (errno). */
static int is_dir(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 1;
}

static int is_marked(const char *dir)
{
	char *mark = htp_path_join(dir, MARK);
	int marked = mark && access(mark, F_OK) == 0;
	free(mark);
	return marked;
}

/* How many entries of dir are objects (the mark and doctor's probes are
 * not); -1 on an error. */
static long count_objects(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, MARK) &&
		    strncmp(e->d_name, ".hypertest-doctor-", 18) != 0)
			n++;
	closedir(d);
	return n;
}

static int add_item(local_provider *p, json_t *arr, int r, const char *action,
                    const char *reason)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "type", res_type(r), "name", res_dir(p, r),
	                      "action", action, "reason", reason);
	if (!o || json_array_append_new(arr, o) != 0)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	return 0;
}

static int hand_over(local_provider *p, json_t *arr, hypertest_buffer *out)
{
	char *text = json_dumps(arr, JSON_COMPACT);
	int rc;

	json_decref(arr);
	if (!text)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = p->up.buffer_append(out, text, strlen(text));
	free(text);
	return rc ? local_fail(p, rc, "cannot hand over the answer") : 0;
}

static int write_mark(local_provider *p, const char *dir)
{
	const char *name = p->up.core_str ? p->up.core_str(p->core, HYPERTEST_CORE_IMAGE_NAME) : NULL;
	char *mark = htp_path_join(dir, MARK);
	FILE *f;
	int ok;

	if (!mark)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	f = fopen(mark, "w");
	ok = f && fprintf(f, "hypertest\n%s\n", name ? name : "") > 0;
	if (f && fclose(f) != 0)
		ok = 0;
	if (!ok) {
		int rc = local_fail(p, HYPERTEST_ERR_IO, "cannot write %s: %s", mark, strerror(errno));
		free(mark);
		return rc;
	}
	free(mark);
	return 0;
}

/* The plan (apply 0) or its execution (apply 1). */
static int provision(local_provider *p, int apply, hypertest_buffer *out)
{
	json_t *arr = json_array();
	int r, rc = 0;

	if (!arr)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	for (r = 0; r < RES_COUNT && !rc; r++) {
		const char *dir = res_dir(p, r);
		int st = is_dir(dir);
		if (st < 0) {
			rc = local_fail(p, HYPERTEST_ERR_IO, "%s directory %s: %s", res_type(r), dir,
			                strerror(errno));
		} else if (st == 0) {
			if (apply && local_mkdir_p(dir) != 0)
				rc = local_fail(p, HYPERTEST_ERR_IO, "cannot create %s: %s", dir,
				                strerror(errno));
			else if (!apply || !(rc = write_mark(p, dir)))
				rc = add_item(p, arr, r, "create", "the directory does not exist");
		} else if (!is_marked(dir)) {
			if (!apply || !(rc = write_mark(p, dir)))
				rc = add_item(p, arr, r, "update", "the directory is not marked as hypertest's");
		} else {
			rc = add_item(p, arr, r, "exists", "the directory exists and is marked");
		}
	}
	if (rc) {
		json_decref(arr);
		return rc;
	}
	return hand_over(p, arr, out);
}

int local_provision_plan(void *self, hypertest_buffer *out)
{
	return provision(self, 0, out);
}

int local_provision_apply(void *self, hypertest_buffer *out)
{
	return provision(self, 1, out);
}

int local_resources_destroy(void *self, unsigned flags, hypertest_buffer *out)
{
	local_provider *p = self;
	int list = (flags & HYPERTEST_DESTROY_LIST) != 0;
	json_t *arr = json_array();
	int r, rc = 0;

	if (!arr)
		return local_fail(p, HYPERTEST_ERR_NOMEM, "out of memory");
	/* the function first: the bucket may have to stay */
	for (r = RES_COUNT - 1; r >= 0 && !rc; r--) {
		const char *dir = res_dir(p, r);
		long objects = 0;
		char reason[128];

		if (is_dir(dir) != 1 || !is_marked(dir))
			continue; /* not ours: never listed, never touched */
		if (r == RES_BUCKET && (objects = count_objects(dir)) < 0) {
			rc = local_fail(p, HYPERTEST_ERR_IO, "cannot read %s: %s", dir, strerror(errno));
			break;
		}
		if (objects > 0 && !(flags & HYPERTEST_DESTROY_FORCE)) {
			snprintf(reason, sizeof reason, "is not empty: %ld entr%s (--force empties it)", objects,
			         objects == 1 ? "y" : "ies");
			rc = add_item(p, arr, r, "keep", reason);
			continue;
		}
		if (objects > 0)
			snprintf(reason, sizeof reason, "marked as hypertest's; %ld entr%s emptied first",
			         objects, objects == 1 ? "y" : "ies");
		else
			snprintf(reason, sizeof reason, "marked as hypertest's");
		if (!list && local_rm_rf(dir) != 0)
			rc = local_fail(p, HYPERTEST_ERR_IO, "cannot remove %s: %s", dir, strerror(errno));
		else
			rc = add_item(p, arr, r, "delete", reason);
	}
	if (rc) {
		json_decref(arr);
		return rc;
	}
	return hand_over(p, arr, out);
}
