/*
 * config_check.h - what config.c and config_check.c share: the overrides,
 * the frames that say where a value sits, what an error message needs, and
 * the steps of a load that check and rewrite a document.
 */
#ifndef HT_CONFIG_CHECK_H
#define HT_CONFIG_CHECK_H

#include <stddef.h>

#include <jansson.h>

#include "util.h"

#define CONCURRENCY_MIN 1
#define CONCURRENCY_MAX 100000
#define RETRIES_MAX 100
#define CONCURRENCY_DEFAULT 30

struct override {
	char *key;       /* dotted, as given */
	char **parts;    /* key split at '.' */
	size_t nparts;
	char *text;      /* the value as given */
	json_t *value;   /* parsed, or the bare word as a string */
	int positioned;  /* an object or array read from text: jsonpos applies */
};

/* Where a value sits: a chain of frames from the value up to the root
 * (the root itself is the NULL frame). */
struct frame {
	const struct frame *up;
	const char *key; /* NULL for an array element */
	size_t index;
};

/* What an error message needs to say where. */
struct ctx {
	const char *origin;
	const char *text;
	size_t text_len;
	const json_t *src;
	const struct override *ov;
	size_t nov;
	ht_err *err;
};

/* A short picture of a value for "got ...". */
void ht_config_describe(const json_t *v, char *out, size_t size);
/* "$schema", "//..." and "_comment...". */
int ht_config_is_comment_key(const char *key);
/* Drop the comment keys of v at any depth. */
void ht_config_strip_comments(json_t *v);
/* Expand the ${VAR} references in every string of v (at frame f). */
int ht_config_expand(const struct ctx *c, json_t *v, const struct frame *f);
/* The document is a JSON object. */
int ht_config_check_root(const struct ctx *c, const json_t *doc);
/* The core keys and the plugin sections of doc. */
int ht_config_validate(const struct ctx *c, json_t *doc);

/* "WHERE: key 'DOTTED': msg" into c->err, WHERE at the dotted key's value
 * (or its closest existing ancestor); HYPERTEST_ERR_CONFIG. */
int ht_config_report_key(const struct ctx *c, const char *dotted, const char *msg);

#endif
