/*
 * config.h - hypertest.config.json: reading, validation, defaults,
 * environment references and overrides.
 */
#ifndef HT_CONFIG_H
#define HT_CONFIG_H

#include <stddef.h>

#include "util.h"

typedef struct ht_config ht_config;

enum ht_drift_policy {
	HT_DRIFT_SILENCE = 0, /* "silence" (the TypeScript name; "ignore" accepted too) */
	HT_DRIFT_WARNING = 1, /* "warning" (default) */
	HT_DRIFT_ERROR = 2    /* "error" */
};

ht_config *ht_config_new(void);
void ht_config_free(ht_config *cfg);

/* Replace the loaded document by the file's or the string's.  Errors:
 * HYPERTEST_ERR_CONFIG with "FILE:LINE:COLUMN: key 'a.b': what", unknown
 * keys with the nearest known one ("did you mean 'concurrency'?"),
 * HYPERTEST_ERR_NOT_FOUND when the file does not exist. */
int ht_config_load_file(ht_config *cfg, const char *path, ht_err *err);
int ht_config_load_string(ht_config *cfg, const char *json, const char *origin, ht_err *err);
/* Override a dotted key with JSON text; kept across later loads and
 * validated like the file's own values (origin "override KEY").
 * - A value that is not valid JSON and does not start with '{', '[' or '"'
 *   is taken as a string, as written ("--set imageName=foo" sets "foo";
 *   "30x" sets the string "30x"); "true", "null", "12" stay JSON.
 * - Missing intermediate objects are created; an intermediate that exists
 *   and is not an object is an error.  A later override of the same key, or
 *   of an ancestor, replaces the earlier one.
 * - ${VAR} references in the value are expanded when it is set; the other
 *   values keep what they were expanded to at load time.
 * - A failed load or set leaves the previous state (document, overrides)
 *   unchanged.
 * - An override whose value is an object or array gets positions inside
 *   its text.
 * For loads and sets alike:
 * - Keys "$schema", "//..." and "_comment..." are comments at any depth
 *   (plugin options included): dropped before expansion and validation.
 * - Positions in errors: the value (the key for an unknown key; the
 *   enclosing object for a missing member), columns counted in characters
 *   like jansson's.
 * - ht_config_str and ht_config_get_json take dotted keys; a number selects
 *   an array element ("pluginPath.0").  ht_config_plugin_path with a NULL
 *   base_dir resolves against the loaded file's directory (else the current
 *   directory). */
int ht_config_set(ht_config *cfg, const char *key, const char *json_value, ht_err *err);

/* The largest configuration file read (the text, not counting overrides). */
#define HT_CONFIG_MAX ((size_t)1 << 20)

/* Set err to "FILE:LINE:COLUMN: key 'DOTTED': msg", the position of the
 * dotted key's value in the loaded text (or of its closest existing
 * ancestor, or the override that set it); HYPERTEST_ERR_CONFIG. */
int ht_config_key_error(const ht_config *cfg, const char *dotted, const char *msg, ht_err *err);

/* Whether a document was loaded (file or string). */
int ht_config_loaded(const ht_config *cfg);
/* Path of the loaded file, or NULL. */
const char *ht_config_path(const ht_config *cfg);
/* What messages call the loaded configuration: its path, or the origin a
 * string was loaded with; NULL before a load. */
const char *ht_config_origin(const ht_config *cfg);

/* Effective values (after overrides, ${VAR} expanded, defaults applied).
 * Core string keys: imageName, localImageName, localBaseImageName,
 * buildManifestFileName ("hypertest.manifest.json"), resultsFileName
 * ("hypertest.results.json"); NULL when unset and without default. */
/* (Any dotted key with a string value works; the pointer stays valid until
 * the next successful load or set.) */
const char *ht_config_str(const ht_config *cfg, const char *key);
long ht_config_concurrency(const ht_config *cfg); /* default 30 */
long ht_config_retries(const ht_config *cfg);     /* default 0 */
int ht_config_drift_policy(const ht_config *cfg); /* enum ht_drift_policy */
/* The "report" key: 0 when false, else 1 (the default). */
int ht_config_report(const ht_config *cfg);
/* Extra plugin directories (the "pluginPath" key: a string with ':' or an
 * array), ':'-joined, relative entries made absolute against base_dir; NULL
 * when unset.  malloc'd. */
char *ht_config_plugin_path(const ht_config *cfg, const char *base_dir);
/* "testRunner" or "cloudProvider": the plugin's name, or NULL if unset. */
const char *ht_config_plugin_name(const ht_config *cfg, const char *section);
/* The section's "options" object as JSON text ("{}" if absent), with
 * environment references expanded.  malloc'd. */
char *ht_config_plugin_options(const ht_config *cfg, const char *section);
/* Any key's effective value as JSON text, or NULL.  malloc'd. */
char *ht_config_get_json(const ht_config *cfg, const char *key);
/* The whole effective document as JSON text (sorted keys).  malloc'd. */
char *ht_config_dump(const ht_config *cfg);

#endif /* HT_CONFIG_H */
