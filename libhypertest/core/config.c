/*
 * config.c - hypertest.config.json: reading (jansson), validation of the
 * core keys, defaults, ${VAR} environment references and --set overrides.
 *
 * A load builds a new effective document and replaces the old one only when
 * everything is valid:
 *   source document (as read, kept)
 *   -> copy, overrides applied in the order they were set
 *   -> comment keys removed ("$schema", "//...", "_comment...", any depth)
 *   -> environment references expanded in every string value
 *   -> validated                                    = cfg->cur
 *   -> defaults filled in, "ignore" read as "silence" = cfg->eff
 * ht_config_set applies one more override to a copy of cfg->cur, expands
 * only the new value, and validates the whole document again.
 *
 * Error messages name where the offending text came from: the file (or the
 * origin of a string) with line and column found by jsonpos, or the override
 * ("override KEY") that put the value there.  The steps that check and
 * rewrite a document are config_check.c's.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "config_check.h"

#define DEFAULT_MANIFEST "hypertest.manifest.json"
#define DEFAULT_RESULTS "hypertest.results.json"

struct ht_config {
	char *path;      /* loaded file, or NULL */
	char *origin;    /* name used in messages: path or origin string */
	char *text;      /* source text */
	size_t text_len;
	json_t *src;     /* the document as read, NULL before a load */
	json_t *cur;     /* overrides applied, comments removed, expanded */
	json_t *eff;     /* cur with defaults */
	int loaded;
	struct override *ov;
	size_t nov;
};

/* ---- defaults ------------------------------------------------------------------- */

static json_t *with_defaults(const json_t *cur)
{
	json_t *eff = json_deep_copy(cur);
	json_t *drift;
	int rc = 0;

	if (!eff)
		return NULL;
	if (!json_object_get(eff, "concurrency"))
		rc |= json_object_set_new(eff, "concurrency", json_integer(CONCURRENCY_DEFAULT));
	drift = json_object_get(eff, "driftDetectionPolicy");
	if (!drift)
		rc |= json_object_set_new(eff, "driftDetectionPolicy", json_string("warning"));
	else if (strcmp(json_string_value(drift), "ignore") == 0)
		rc |= json_string_set(drift, "silence");
	if (!json_object_get(eff, "buildManifestFileName"))
		rc |= json_object_set_new(eff, "buildManifestFileName", json_string(DEFAULT_MANIFEST));
	if (!json_object_get(eff, "resultsFileName"))
		rc |= json_object_set_new(eff, "resultsFileName", json_string(DEFAULT_RESULTS));
	/* As the TypeScript hypertest does: a name without ".json" gets it. */
	for (const char *const *s = (const char *const[]){"buildManifestFileName", "resultsFileName",
	                                                   NULL};
	     *s; s++) {
		json_t *v = json_object_get(eff, *s);
		const char *name = json_is_string(v) ? json_string_value(v) : NULL;
		size_t n = name ? strlen(name) : 0;
		if (name && (n < 5 || strcmp(name + n - 5, ".json") != 0)) {
			char *full = ht_asprintf("%s.json", name);
			rc |= full ? json_string_set(v, full) : -1;
			free(full);
		}
	}
	for (const char *const *s = (const char *const[]){"testRunner", "cloudProvider", NULL}; *s; s++) {
		json_t *sec = json_object_get(eff, *s);
		if (sec && !json_object_get(sec, "options"))
			rc |= json_object_set_new(sec, "options", json_object());
	}
	if (rc) {
		json_decref(eff);
		return NULL;
	}
	return eff;
}

/* ---- overrides -------------------------------------------------------------------- */

static void override_clear(struct override *o)
{
	size_t k;

	for (k = 0; k < o->nparts; k++)
		free(o->parts[k]);
	free(o->parts);
	free(o->key);
	free(o->text);
	json_decref(o->value);
	memset(o, 0, sizeof *o);
}

static int override_parse(struct override *o, const char *key, const char *text, ht_err *err)
{
	const char *p, *dot;
	json_error_t jerr;

	memset(o, 0, sizeof *o);
	o->key = ht_strdup(key);
	o->text = ht_strdup(text);
	if (!o->key || !o->text)
		goto nomem;
	for (p = key;; p = dot + 1) {
		char **np;
		dot = strchr(p, '.');
		if ((dot ? (size_t)(dot - p) : strlen(p)) == 0) {
			override_clear(o);
			return ht_err_set(err, HYPERTEST_ERR_CONFIG,
			                  "override %s: invalid key (expected names separated by '.')", key);
		}
		np = realloc(o->parts, (o->nparts + 1) * sizeof *np);
		if (!np)
			goto nomem;
		o->parts = np;
		o->parts[o->nparts] = dot ? ht_asprintf("%.*s", (int)(dot - p), p) : ht_strdup(p);
		if (!o->parts[o->nparts])
			goto nomem;
		o->nparts++;
		if (!dot)
			break;
	}
	o->value = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (o->value) {
		o->positioned = json_is_object(o->value) || json_is_array(o->value);
		return 0;
	}
	p = text + strspn(text, " \t\r\n");
	if (*p == '{' || *p == '[' || *p == '"') {
		ht_err_set(err, HYPERTEST_ERR_CONFIG, "override %s:%d:%d: %s", key, jerr.line, jerr.column,
		           jerr.text);
		override_clear(o);
		return HYPERTEST_ERR_CONFIG;
	}
	/* a bare word (--set imageName=foo): the text itself, as a string */
	o->value = json_string(text);
	if (!o->value) {
		override_clear(o);
		return ht_err_set(err, HYPERTEST_ERR_CONFIG, "override %s: the value is not valid UTF-8", key);
	}
	return 0;
nomem:
	override_clear(o);
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

/* Put the override's value into doc, creating missing objects on the way;
 * returns the node set, or NULL with err set. */
static json_t *override_apply(json_t *doc, const struct override *o, ht_err *err)
{
	json_t *node = doc, *copy;
	size_t k;

	for (k = 0; k + 1 < o->nparts; k++) {
		json_t *child = json_object_get(node, o->parts[k]);
		if (!child) {
			child = json_object();
			if (!child || json_object_set_new(node, o->parts[k], child) != 0)
				goto nomem;
		} else if (!json_is_object(child)) {
			char got[96];
			size_t plen = k;
			for (size_t j = 0; j <= k; j++)
				plen += strlen(o->parts[j]);
			ht_config_describe(child, got, sizeof got);
			ht_err_set(err, HYPERTEST_ERR_CONFIG, "override %s: key '%.*s' is not an object (got %s)",
			           o->key, (int)plen, o->key, got);
			return NULL;
		}
		node = child;
	}
	copy = json_deep_copy(o->value);
	if (!copy || json_object_set_new(node, o->parts[o->nparts - 1], copy) != 0)
		goto nomem;
	return copy;
nomem:
	ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return NULL;
}

/* ---- building ----------------------------------------------------------------------- */

/* From the source document and every override: the validated document. */
static int build_full(const struct ctx *c, json_t **out)
{
	json_t *doc;
	size_t k;
	int rc;

	if (c->src && (rc = ht_config_check_root(c, c->src)) != 0)
		return rc;
	doc = c->src ? json_deep_copy(c->src) : json_object();
	if (!doc)
		return ht_err_set(c->err, HYPERTEST_ERR_NOMEM, "out of memory");
	for (k = 0; k < c->nov; k++) {
		if (!override_apply(doc, &c->ov[k], c->err)) {
			json_decref(doc);
			return c->err ? c->err->code : HYPERTEST_ERR_CONFIG;
		}
	}
	ht_config_strip_comments(doc);
	rc = ht_config_expand(c, doc, NULL);
	if (rc == 0)
		rc = ht_config_validate(c, doc);
	if (rc) {
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

/* From the current document and one more override (the last of c->ov). */
static int build_one(const struct ctx *c, const json_t *cur, json_t **out)
{
	const struct override *o = &c->ov[c->nov - 1];
	struct frame *frames;
	json_t *doc, *node;
	size_t k;
	int rc;

	doc = json_deep_copy(cur);
	frames = calloc(o->nparts, sizeof *frames);
	if (!doc || !frames) {
		json_decref(doc);
		free(frames);
		return ht_err_set(c->err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	for (k = 0; k < o->nparts; k++) {
		frames[k].up = k ? &frames[k - 1] : NULL;
		frames[k].key = o->parts[k];
	}
	node = override_apply(doc, o, c->err);
	for (k = 0; node && k < o->nparts; k++) {
		if (ht_config_is_comment_key(o->parts[k])) {
			/* a comment: gone again, nothing to expand */
			ht_config_strip_comments(doc);
			node = doc;
			break;
		}
	}
	if (!node) {
		rc = c->err ? c->err->code : HYPERTEST_ERR_CONFIG;
	} else {
		if (node != doc) {
			ht_config_strip_comments(node);
			rc = ht_config_expand(c, node, &frames[o->nparts - 1]);
		} else {
			rc = 0;
		}
		if (rc == 0)
			rc = ht_config_validate(c, doc);
	}
	free(frames);
	if (rc) {
		json_decref(doc);
		return rc;
	}
	*out = doc;
	return 0;
}

/* ---- public functions --------------------------------------------------------------- */

ht_config *ht_config_new(void)
{
	ht_config *cfg = calloc(1, sizeof *cfg);

	if (!cfg)
		return NULL;
	cfg->cur = json_object();
	cfg->eff = cfg->cur ? with_defaults(cfg->cur) : NULL;
	if (!cfg->eff) {
		ht_config_free(cfg);
		return NULL;
	}
	return cfg;
}

void ht_config_free(ht_config *cfg)
{
	size_t k;

	if (!cfg)
		return;
	for (k = 0; k < cfg->nov; k++)
		override_clear(&cfg->ov[k]);
	free(cfg->ov);
	free(cfg->path);
	free(cfg->origin);
	free(cfg->text);
	json_decref(cfg->src);
	json_decref(cfg->cur);
	json_decref(cfg->eff);
	free(cfg);
}

/* Parse text and make it the loaded document (text and path are taken). */
static int load_text(ht_config *cfg, char *text, size_t len, const char *origin, char *path,
                     ht_err *err)
{
	json_error_t jerr;
	json_t *src, *cur = NULL, *eff;
	char *origin_copy = ht_strdup(origin);
	struct ctx c;
	int rc;

	if (!origin_copy) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto fail;
	}
	/* A UTF-8 byte-order mark (editors on Windows write one) is not part
	 * of the document: dropped, so that positions count from what follows. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
		memmove(text, text + 3, len - 3 + 1);
		len -= 3;
	}
	if (len == strspn(text, " \t\r\n")) {
		rc = ht_err_set(err, HYPERTEST_ERR_CONFIG,
		                "%s:1:1: the configuration is empty (expected a JSON object)", origin);
		goto fail;
	}
	src = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!src) {
		if (jerr.line > 0)
			rc = ht_err_set(err, HYPERTEST_ERR_CONFIG, "%s:%d:%d: %s", origin, jerr.line,
			                jerr.column > 0 ? jerr.column : 1, jerr.text);
		else
			rc = ht_err_set(err, HYPERTEST_ERR_CONFIG, "%s: %s", origin, jerr.text);
		goto fail;
	}
	c = (struct ctx){origin, text, len, src, cfg->ov, cfg->nov, err};
	rc = build_full(&c, &cur);
	if (rc) {
		json_decref(src);
		goto fail;
	}
	eff = with_defaults(cur);
	if (!eff) {
		json_decref(src);
		json_decref(cur);
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto fail;
	}
	free(cfg->text);
	free(cfg->path);
	free(cfg->origin);
	json_decref(cfg->src);
	json_decref(cfg->cur);
	json_decref(cfg->eff);
	cfg->text = text;
	cfg->text_len = len;
	cfg->path = path;
	cfg->origin = origin_copy;
	cfg->src = src;
	cfg->cur = cur;
	cfg->eff = eff;
	cfg->loaded = 1;
	return 0;
fail:
	free(origin_copy);
	free(text);
	free(path);
	return rc;
}

int ht_config_load_file(ht_config *cfg, const char *path, ht_err *err)
{
	char *text, *path_copy;
	size_t len;
	int rc;

	if (!cfg || !path)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "ht_config_load_file: no configuration or path");
	rc = ht_read_file_max(path, HT_CONFIG_MAX, "a configuration file", &text, &len, err);
	if (rc)
		return rc;
	path_copy = ht_strdup(path);
	if (!path_copy) {
		free(text);
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	return load_text(cfg, text, len, path, path_copy, err);
}

int ht_config_load_string(ht_config *cfg, const char *json, const char *origin, ht_err *err)
{
	char *text;

	if (!cfg || !json)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "ht_config_load_string: no configuration or text");
	text = ht_strdup(json);
	if (!text)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return load_text(cfg, text, strlen(json), origin ? origin : "<string>", NULL, err);
}

/* Whether o's key is k's key or one of its descendants. */
static int override_within(const struct override *o, const struct override *k)
{
	size_t j;

	if (o->nparts < k->nparts)
		return 0;
	for (j = 0; j < k->nparts; j++)
		if (strcmp(o->parts[j], k->parts[j]) != 0)
			return 0;
	return 1;
}

int ht_config_set(ht_config *cfg, const char *key, const char *json_value, ht_err *err)
{
	struct override o, *grown;
	struct ctx c;
	json_t *cur = NULL, *eff = NULL;
	size_t k, w;
	int rc;

	if (!cfg || !key || !json_value)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "ht_config_set: no configuration, key or value");
	rc = override_parse(&o, key, json_value, err);
	if (rc)
		return rc;
	grown = realloc(cfg->ov, (cfg->nov + 1) * sizeof *grown);
	if (!grown) {
		override_clear(&o);
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	cfg->ov = grown;
	cfg->ov[cfg->nov] = o;
	c = (struct ctx){cfg->origin, cfg->text, cfg->text_len, cfg->src, cfg->ov, cfg->nov + 1, err};
	rc = build_one(&c, cfg->cur, &cur);
	if (rc == 0) {
		eff = with_defaults(cur);
		if (!eff) {
			json_decref(cur);
			rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		}
	}
	if (rc) {
		override_clear(&cfg->ov[cfg->nov]);
		return rc;
	}
	json_decref(cfg->cur);
	json_decref(cfg->eff);
	cfg->cur = cur;
	cfg->eff = eff;
	/* earlier overrides of the same key or below it are overwritten: drop them */
	for (k = w = 0; k < cfg->nov; k++) {
		if (override_within(&cfg->ov[k], &o))
			override_clear(&cfg->ov[k]);
		else
			cfg->ov[w++] = cfg->ov[k];
	}
	cfg->ov[w] = o;
	cfg->nov = w + 1;
	return 0;
}

int ht_config_loaded(const ht_config *cfg)
{
	return cfg && cfg->loaded;
}

const char *ht_config_origin(const ht_config *cfg)
{
	return cfg ? cfg->origin : NULL;
}

const char *ht_config_path(const ht_config *cfg)
{
	return cfg ? cfg->path : NULL;
}

int ht_config_key_error(const ht_config *cfg, const char *dotted, const char *msg, ht_err *err)
{
	struct ctx c = {NULL, NULL, 0, NULL, NULL, 0, err};

	if (cfg && cfg->loaded)
		c = (struct ctx){cfg->origin, cfg->text, cfg->text_len, cfg->src, cfg->ov, cfg->nov,
		                 err};
	return ht_config_report_key(&c, dotted, msg);
}

/* The effective value at a dotted key ("a.b.c"; a number selects an array
 * element), or NULL. */
static json_t *lookup(const ht_config *cfg, const char *key)
{
	json_t *node;
	const char *p, *dot;

	if (!cfg || !key || !*key)
		return NULL;
	node = cfg->eff;
	for (p = key; node; p = dot + 1) {
		size_t n;
		char part[256];

		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof part)
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		if (json_is_object(node)) {
			node = json_object_get(node, part);
		} else if (json_is_array(node) && strspn(part, "0123456789") == n) {
			node = json_array_get(node, strtoul(part, NULL, 10));
		} else {
			return NULL;
		}
		if (!dot)
			break;
	}
	return node;
}

const char *ht_config_str(const ht_config *cfg, const char *key)
{
	const json_t *v = lookup(cfg, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

long ht_config_concurrency(const ht_config *cfg)
{
	const json_t *v = lookup(cfg, "concurrency");
	return json_is_integer(v) ? (long)json_integer_value(v) : CONCURRENCY_DEFAULT;
}

int ht_config_report(const ht_config *cfg)
{
	const json_t *v = lookup(cfg, "report");
	return !json_is_false(v);
}

long ht_config_retries(const ht_config *cfg)
{
	const json_t *v = lookup(cfg, "retries");
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

int ht_config_drift_policy(const ht_config *cfg)
{
	const char *s = ht_config_str(cfg, "driftDetectionPolicy");

	if (s && strcmp(s, "silence") == 0)
		return HT_DRIFT_SILENCE;
	if (s && strcmp(s, "error") == 0)
		return HT_DRIFT_ERROR;
	return HT_DRIFT_WARNING;
}

static int add_dir(ht_buf *b, const char *base, const char *dir, size_t n)
{
	char *entry, *abs;
	int rc;

	if (n == 0)
		return 0;
	entry = ht_asprintf("%.*s", (int)n, dir);
	abs = entry ? ht_abspath(base, entry) : NULL;
	free(entry);
	if (!abs)
		return HYPERTEST_ERR_NOMEM;
	rc = ht_buf_printf(b, "%s%s", b->len ? ":" : "", abs);
	free(abs);
	return rc;
}

char *ht_config_plugin_path(const ht_config *cfg, const char *base_dir)
{
	const json_t *v = lookup(cfg, "pluginPath"), *item;
	ht_buf b = HT_BUF_INIT;
	char *dir = NULL;
	const char *base = base_dir;
	size_t i;
	int rc = 0;

	if (!v)
		return NULL;
	if (!base && cfg->path) {
		const char *slash = strrchr(cfg->path, '/');
		if (slash) {
			dir = ht_asprintf("%.*s", slash == cfg->path ? 1 : (int)(slash - cfg->path), cfg->path);
			if (!dir)
				return NULL;
			base = dir;
		}
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v), *colon;
		for (; rc == 0; s = colon + 1) {
			colon = strchr(s, ':');
			rc = add_dir(&b, base, s, colon ? (size_t)(colon - s) : strlen(s));
			if (!colon)
				break;
		}
	} else {
		json_array_foreach(v, i, item) {
			if (rc == 0)
				rc = add_dir(&b, base, json_string_value(item), json_string_length(item));
		}
	}
	free(dir);
	if (rc) {
		ht_buf_free(&b);
		return NULL;
	}
	return ht_buf_steal(&b);
}

const char *ht_config_plugin_name(const ht_config *cfg, const char *section)
{
	const json_t *sec = section ? lookup(cfg, section) : NULL;
	const json_t *name = json_is_object(sec) ? json_object_get(sec, "plugin") : NULL;

	return json_is_string(name) ? json_string_value(name) : NULL;
}

char *ht_config_plugin_options(const ht_config *cfg, const char *section)
{
	const json_t *sec = section ? lookup(cfg, section) : NULL;
	const json_t *opts = json_is_object(sec) ? json_object_get(sec, "options") : NULL;

	if (!json_is_object(opts))
		return ht_strdup("{}");
	return json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS);
}

char *ht_config_get_json(const ht_config *cfg, const char *key)
{
	const json_t *v = lookup(cfg, key);

	return v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
}

char *ht_config_dump(const ht_config *cfg)
{
	return cfg ? json_dumps(cfg->eff, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
}
