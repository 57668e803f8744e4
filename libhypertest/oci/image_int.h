/*
 * image_int.h - what image.c and image_read.c share: the image, where the
 * blob of each of its layers is, and how both make one.
 */
#ifndef HT_IMAGE_INT_H
#define HT_IMAGE_INT_H

#include <stddef.h>

#include <jansson.h>

#include "image.h"
#include "registry.h"

/* Where a blob can be read: an OCI layout, or a registry repository. */
struct source {
	char *dir;
	ht_registry *reg;
	char *registry, *repository;
};

struct ht_image {
	char *os, *arch, *variant;
	char *manifest_mt;  /* media type of the manifest */
	int docker;         /* Docker schema 2: new parts get Docker media types */
	json_t *config;     /* the config document */
	char *config_mt;    /* media type of the config blob */
	char *config_raw;   /* serialised config (the base's bytes while unchanged) */
	size_t config_len;
	int config_dirty;   /* config changed since config_raw */
	char *manifest_raw; /* the base's manifest bytes while nothing changed */
	size_t manifest_len;
	json_t *layers;     /* layer descriptors */
	size_t layers_uploaded; /* by the last ht_image_push_registry */
	size_t layers_built;    /* appended layers written (not found in the cache) */
	size_t layers_reused;   /* appended layers taken from the cache */
	struct source *src; /* per layer: where its blob is */
	size_t n_src, cap_src;
};

static inline int ht_image_nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* A descriptor's "size", -1 when it has none. */
static inline long long ht_image_desc_size(json_t *desc)
{
	json_t *s = json_object_get(desc, "size");
	return json_is_integer(s) ? (long long)json_integer_value(s) : -1;
}

/* "os/architecture[/variant]" (NULL: linux/amd64) split into new strings. */
int ht_image_parse_platform(const char *platform, char **os, char **arch, char **variant,
                            ht_err *err);
/* An image with no config and no layers yet. */
ht_image *ht_image_alloc(void);
/* Record where the next layer's blob is: the layout dir, or reg's
 * repository. */
int ht_image_push_src(ht_image *img, const char *dir, ht_registry *reg, const char *registry,
                      const char *repository, ht_err *err);

#endif
