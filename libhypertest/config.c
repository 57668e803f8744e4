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
 * ("override KEY") that put the value there.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "jsonpos.h"

#define CONCURRENCY_MIN 1
#define CONCURRENCY_MAX 100000
#define CONCURRENCY_DEFAULT 30
#define DEFAULT_MANIFEST "hypertest.manifest.json"
#define DEFAULT_RESULTS "hypertest.results.json"

struct override {
	char *key;       /* dotted, as given */
	char **parts;    /* key split at '.' */
	size_t nparts;
	char *text;      /* the value as given */
	json_t *value;   /* parsed, or the bare word as a string */
	int positioned;  /* an object or array read from text: jsonpos applies */
};

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

static const char *const core_keys[] = {
	"imageName", "localImageName", "localBaseImageName", "buildManifestFileName",
	"resultsFileName", "driftDetectionPolicy", "concurrency", "pluginPath", "platform",
	"testRunner", "cloudProvider", NULL
};
static const char *const section_keys[] = {"plugin", "options", NULL};

/* ---- paths and positions ---------------------------------------------------- */

static size_t frame_depth(const struct frame *f)
{
	size_t n = 0;
	for (; f; f = f->up)
		n++;
	return n;
}

/* The frames as steps from the root; malloc'd (NULL when depth is 0). */
static ht_jsonpos_step *frame_steps(const struct frame *f, size_t *n)
{
	size_t d = frame_depth(f);
	ht_jsonpos_step *steps;

	*n = d;
	if (d == 0)
		return NULL;
	steps = calloc(d, sizeof *steps);
	if (!steps)
		return NULL;
	for (; f; f = f->up) {
		d--;
		steps[d].key = f->key;
		steps[d].index = f->index;
	}
	return steps;
}

static void path_string(const ht_jsonpos_step *steps, size_t n, ht_buf *out)
{
	size_t k;

	for (k = 0; k < n; k++) {
		if (steps[k].key)
			ht_buf_printf(out, "%s%s", k ? "." : "", steps[k].key);
		else
			ht_buf_printf(out, "[%zu]", steps[k].index);
	}
}

static int override_covers(const struct override *o, const ht_jsonpos_step *steps,
                           size_t n, size_t upto)
{
	size_t k;

	if (upto > n || upto > o->nparts)
		return 0;
	for (k = 0; k < upto; k++)
		if (!steps[k].key || strcmp(steps[k].key, o->parts[k]) != 0)
			return 0;
	return 1;
}

/* How many steps of the path exist in doc. */
static size_t existing_depth(const json_t *doc, const ht_jsonpos_step *steps, size_t n)
{
	size_t k;

	for (k = 0; k < n && doc; k++) {
		if (steps[k].key)
			doc = json_is_object(doc) ? json_object_get(doc, steps[k].key) : NULL;
		else
			doc = json_is_array(doc) ? json_array_get(doc, steps[k].index) : NULL;
		if (!doc)
			return k;
	}
	return k;
}

static void append_position(ht_buf *b, const char *text, size_t len,
                            const ht_jsonpos_step *steps, size_t n, int at_key)
{
	ht_jsonpos pos;
	int r = ht_jsonpos_find(text, len, steps, n, &pos);

	if (r < 0)
		return;
	if (r == 0 && at_key && pos.key_line > 0)
		ht_buf_printf(b, ":%d:%d", pos.key_line, pos.key_column);
	else if (pos.value_line > 0)
		ht_buf_printf(b, ":%d:%d", pos.value_line, pos.value_column);
}

/*
 * "ORIGIN[:LINE:COLUMN]" for the value at steps: the last override that set
 * it or one of its ancestors; else the override that created its missing
 * part; else the source text, at the value (or the key when at_key), or at
 * the closest existing ancestor.
 */
static void where(const struct ctx *c, const ht_jsonpos_step *steps, size_t n,
                  int at_key, ht_buf *b)
{
	size_t k, m;

	for (k = c->nov; k-- > 0;) {
		const struct override *o = &c->ov[k];
		if (o->nparts <= n && override_covers(o, steps, n, o->nparts)) {
			ht_buf_printf(b, "override %s", o->key);
			if (o->positioned)
				append_position(b, o->text, strlen(o->text), steps + o->nparts,
				                n - o->nparts, at_key);
			return;
		}
	}
	m = existing_depth(c->src, steps, n);
	if (m < n) {
		for (k = 0; k < c->nov; k++) {
			if (c->ov[k].nparts > m && override_covers(&c->ov[k], steps, n, m + 1)) {
				ht_buf_printf(b, "override %s", c->ov[k].key);
				return;
			}
		}
	}
	ht_buf_puts(b, c->origin ? c->origin : "configuration");
	if (c->text)
		append_position(b, c->text, c->text_len, steps, n, at_key);
}

enum report_kind {
	R_PLAIN,   /* "WHERE: message" */
	R_KEY,     /* "WHERE: key 'PATH': message" (at the value) */
	R_UNKNOWN  /* "WHERE: unknown key 'PATH'message" (at the key) */
};

static int report(const struct ctx *c, const struct frame *f, enum report_kind kind,
                  const char *fmt, ...) HT_PRINTF(4, 5);

static int report(const struct ctx *c, const struct frame *f, enum report_kind kind,
                  const char *fmt, ...)
{
	ht_buf b = HT_BUF_INIT;
	size_t n;
	ht_jsonpos_step *steps = frame_steps(f, &n);
	char body[1024];
	va_list ap;
	int code;

	if (n && !steps)
		return ht_err_set(c->err, HYPERTEST_ERR_NOMEM, "out of memory");
	where(c, steps, n, kind == R_UNKNOWN, &b);
	if (kind == R_KEY || kind == R_UNKNOWN) {
		ht_buf_puts(&b, kind == R_KEY ? ": key '" : ": unknown key '");
		path_string(steps, n, &b);
		ht_buf_puts(&b, kind == R_KEY ? "': " : "'");
	} else {
		ht_buf_puts(&b, ": ");
	}
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	ht_buf_puts(&b, body);
	code = b.data ? HYPERTEST_ERR_CONFIG : HYPERTEST_ERR_NOMEM;
	ht_err_set(c->err, code, "%s", b.data ? b.data : "out of memory");
	ht_buf_free(&b);
	free(steps);
	return code;
}

/* A short picture of a value for "got ...". */
static void describe(const json_t *v, char *out, size_t size)
{
	char *s;

	if (json_is_object(v)) {
		snprintf(out, size, "an object");
		return;
	}
	if (json_is_array(v)) {
		snprintf(out, size, "an array");
		return;
	}
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s) {
		snprintf(out, size, "a value");
		return;
	}
	if (strlen(s) > 80)
		snprintf(out, size, "%.70s...", s);
	else
		snprintf(out, size, "%s", s);
	free(s);
}

static const char *suggest(const char *name, const char *const *known)
{
	size_t len = strlen(name), limit = len / 3 > 2 ? len / 3 : 2;
	size_t best = (size_t)-1;
	const char *found = NULL;

	for (; *known; known++) {
		size_t d = ht_edit_distance(name, *known);
		if (d < best) {
			best = d;
			found = *known;
		}
	}
	return best <= limit ? found : NULL;
}

static int unknown_key(const struct ctx *c, const struct frame *f, const char *const *known)
{
	const char *s = suggest(f->key, known);
	ht_buf parent = HT_BUF_INIT;
	size_t n;
	ht_jsonpos_step *steps;
	int rc;

	if (!s)
		return report(c, f, R_UNKNOWN, "%s", "");
	steps = frame_steps(f->up, &n);
	path_string(steps, n, &parent);
	rc = report(c, f, R_UNKNOWN, " (did you mean '%s%s%s'?)", parent.data ? parent.data : "",
	            n ? "." : "", s);
	ht_buf_free(&parent);
	free(steps);
	return rc;
}

/* ---- comments ----------------------------------------------------------------- */

static int is_comment_key(const char *key)
{
	return strcmp(key, "$schema") == 0 || strncmp(key, "//", 2) == 0 ||
	       strncmp(key, "_comment", 8) == 0;
}

static void strip_comments(json_t *v)
{
	const char *key;
	json_t *child;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, key, child) {
			if (is_comment_key(key))
				json_object_del(v, key);
			else
				strip_comments(child);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			strip_comments(child);
	}
}

/* ---- environment references ------------------------------------------------- */

static int is_name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static int is_name_char(char ch)
{
	return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

/* Expand one string value in place. */
static int expand_string(const struct ctx *c, json_t *v, const struct frame *f)
{
	const char *s = json_string_value(v);
	size_t len = json_string_length(v), i = 0;
	ht_buf out = HT_BUF_INIT;
	int rc = 0;

	if (!memchr(s, '$', len))
		return 0;
	while (i < len && rc == 0) {
		const char *close, *val, *def = NULL;
		size_t name_end, def_len = 0;
		char *name;

		if (s[i] != '$' || i + 1 >= len || (s[i + 1] != '$' && s[i + 1] != '{')) {
			rc = ht_buf_append(&out, s + i, 1);
			i++;
			continue;
		}
		if (s[i + 1] == '$') {
			rc = ht_buf_append(&out, "$", 1);
			i += 2;
			continue;
		}
		close = memchr(s + i + 2, '}', len - i - 2);
		if (!close) {
			rc = report(c, f, R_KEY, "unterminated '${' in \"%.*s\"", (int)(len > 200 ? 200 : len), s);
			break;
		}
		name_end = i + 2;
		if (name_end < len && is_name_start(s[name_end]))
			while (name_end < len && is_name_char(s[name_end]))
				name_end++;
		if (name_end > i + 2 && s + name_end + 1 < close && s[name_end] == ':' &&
		    s[name_end + 1] == '-') {
			def = s + name_end + 2;
			def_len = (size_t)(close - def);
		} else if (name_end == i + 2 || s + name_end != close) {
			rc = report(c, f, R_KEY,
			            "invalid environment reference '%.*s' (use ${NAME} or ${NAME:-default}, "
			            "NAME made of letters, digits and '_'; $$ for a '$')",
			            (int)(close - (s + i) + 1), s + i);
			break;
		}
		name = ht_asprintf("%.*s", (int)(name_end - i - 2), s + i + 2);
		if (!name) {
			rc = HYPERTEST_ERR_NOMEM;
			break;
		}
		val = getenv(name);
		if (def && (!val || !*val))
			rc = ht_buf_append(&out, def, def_len);
		else if (val)
			rc = ht_buf_puts(&out, val);
		else
			rc = report(c, f, R_KEY,
			            "environment variable '%s' is not set (write ${%s:-default} for a default)",
			            name, name);
		free(name);
		i = (size_t)(close - s) + 1;
	}
	if (rc == HYPERTEST_ERR_NOMEM)
		ht_err_set(c->err, HYPERTEST_ERR_NOMEM, "out of memory");
	else if (rc == 0 && json_string_setn(v, out.data ? out.data : "", out.len) != 0)
		rc = report(c, f, R_KEY, "the value after expanding environment variables is not valid UTF-8");
	ht_buf_free(&out);
	return rc;
}

static int expand(const struct ctx *c, json_t *v, const struct frame *f)
{
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_string(v))
		return expand_string(c, v, f);
	if (json_is_object(v)) {
		json_object_foreach(v, key, child) {
			struct frame sub = {f, key, 0};
			int rc = expand(c, child, &sub);
			if (rc)
				return rc;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			struct frame sub = {f, NULL, i};
			int rc = expand(c, child, &sub);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* ---- validation ----------------------------------------------------------------- */

static int check_string(const struct ctx *c, const json_t *v, const struct frame *f)
{
	char got[96];

	if (json_is_string(v))
		return 0;
	describe(v, got, sizeof got);
	return report(c, f, R_KEY, "expected a string, got %s", got);
}

/* platform: "os/architecture" or "os/architecture/variant", lowercase. */
static int check_platform(const struct ctx *c, const json_t *v, const struct frame *f)
{
	const char *p;
	int parts = 1, len = 0;

	if (check_string(c, v, f))
		return HYPERTEST_ERR_CONFIG;
	for (p = json_string_value(v); *p; p++) {
		if (*p == '/') {
			if (len == 0)
				break;
			parts++;
			len = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		           *p == '-') {
			len++;
		} else {
			break;
		}
	}
	if (*p || len == 0 || parts < 2 || parts > 3)
		return report(c, f, R_KEY,
		              "expected \"os/architecture[/variant]\" such as \"linux/amd64\", got \"%s\"",
		              json_string_value(v));
	return 0;
}

/* buildManifestFileName, resultsFileName: a relative name inside the bucket
 * and the project, without "..". */
static int check_file_name(const struct ctx *c, const json_t *v, const struct frame *f)
{
	const char *s, *seg;
	char got[96];

	if (!json_is_string(v) || json_string_length(v) == 0) {
		describe(v, got, sizeof got);
		return report(c, f, R_KEY, "expected a non-empty file name, got %s", got);
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return report(c, f, R_KEY, "a file name cannot contain a NUL character");
	if (s[0] == '/')
		return report(c, f, R_KEY, "expected a relative file name, got the absolute path \"%s\"", s);
	for (seg = s; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
		if (strncmp(seg, "..", 2) == 0 && (seg[2] == '/' || seg[2] == '\0'))
			return report(c, f, R_KEY, "a file name cannot contain a '..' segment, got \"%s\"", s);
	return 0;
}

static int check_drift(const struct ctx *c, const json_t *v, const struct frame *f)
{
	static const char *const names[] = {"silence", "warning", "error", "ignore", NULL};
	const char *const *n, *s;
	char got[96];

	if (json_is_string(v)) {
		for (n = names; *n; n++)
			if (strcmp(json_string_value(v), *n) == 0)
				return 0;
	}
	describe(v, got, sizeof got);
	s = json_is_string(v) ? suggest(json_string_value(v), names) : NULL;
	if (s)
		return report(c, f, R_KEY,
		              "expected \"silence\", \"warning\" or \"error\", got %s (did you mean \"%s\"?)",
		              got, s);
	return report(c, f, R_KEY, "expected \"silence\", \"warning\" or \"error\", got %s", got);
}

static int check_concurrency(const struct ctx *c, const json_t *v, const struct frame *f)
{
	char got[96];

	if (json_is_integer(v) && json_integer_value(v) >= CONCURRENCY_MIN &&
	    json_integer_value(v) <= CONCURRENCY_MAX)
		return 0;
	describe(v, got, sizeof got);
	return report(c, f, R_KEY, "expected an integer from %d to %d, got %s", CONCURRENCY_MIN,
	              CONCURRENCY_MAX, got);
}

static int check_plugin_path(const struct ctx *c, const json_t *v, const struct frame *f)
{
	const json_t *item;
	char got[96];
	size_t i;

	if (json_is_string(v))
		return 0;
	if (json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (!json_is_string(item)) {
				struct frame sub = {f, NULL, i};
				describe(item, got, sizeof got);
				return report(c, &sub, R_KEY, "expected a directory (a string), got %s", got);
			}
		}
		return 0;
	}
	describe(v, got, sizeof got);
	return report(c, f, R_KEY,
	              "expected a ':'-separated string or an array of directories, got %s", got);
}

/* testRunner, cloudProvider: {"plugin": NAME, "options": {...}} */
static int check_section(const struct ctx *c, const json_t *v, const struct frame *f)
{
	const char *key;
	const json_t *child;
	char got[96];
	struct frame missing = {f, "plugin", 0};

	if (!json_is_object(v)) {
		describe(v, got, sizeof got);
		return report(c, f, R_KEY, "expected an object {\"plugin\": NAME, \"options\": {...}}, got %s",
		              got);
	}
	json_object_foreach((json_t *)v, key, child) {
		struct frame sub = {f, key, 0};
		if (strcmp(key, "plugin") == 0) {
			if (!json_is_string(child) || json_string_length(child) == 0) {
				describe(child, got, sizeof got);
				return report(c, &sub, R_KEY, "expected the plugin's name (a non-empty string), got %s",
				              got);
			}
		} else if (strcmp(key, "options") == 0) {
			if (!json_is_object(child)) {
				describe(child, got, sizeof got);
				return report(c, &sub, R_KEY, "expected an object, got %s", got);
			}
		} else {
			return unknown_key(c, &sub, section_keys);
		}
	}
	if (!json_object_get(v, "plugin"))
		return report(c, &missing, R_KEY, "missing (the name of the plugin to use)");
	return 0;
}

static int validate(const struct ctx *c, json_t *doc)
{
	const char *key;
	json_t *v;

	json_object_foreach(doc, key, v) {
		struct frame f = {NULL, key, 0};
		int rc;

		if (strcmp(key, "imageName") == 0 || strcmp(key, "localImageName") == 0 ||
		    strcmp(key, "localBaseImageName") == 0)
			rc = check_string(c, v, &f);
		else if (strcmp(key, "buildManifestFileName") == 0 || strcmp(key, "resultsFileName") == 0)
			rc = check_file_name(c, v, &f);
		else if (strcmp(key, "driftDetectionPolicy") == 0)
			rc = check_drift(c, v, &f);
		else if (strcmp(key, "concurrency") == 0)
			rc = check_concurrency(c, v, &f);
		else if (strcmp(key, "pluginPath") == 0)
			rc = check_plugin_path(c, v, &f);
		else if (strcmp(key, "platform") == 0)
			rc = check_platform(c, v, &f);
		else if (strcmp(key, "testRunner") == 0 || strcmp(key, "cloudProvider") == 0)
			rc = check_section(c, v, &f);
		else
			rc = unknown_key(c, &f, core_keys);
		if (rc)
			return rc;
	}
	return 0;
}

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
			describe(child, got, sizeof got);
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

static int check_root(const struct ctx *c, const json_t *doc)
{
	char got[96];

	if (json_is_object(doc))
		return 0;
	describe(doc, got, sizeof got);
	return report(c, NULL, R_PLAIN, "expected a JSON object at the top level, got %s", got);
}

/* From the source document and every override: the validated document. */
static int build_full(const struct ctx *c, json_t **out)
{
	json_t *doc;
	size_t k;
	int rc;

	if (c->src && (rc = check_root(c, c->src)) != 0)
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
	strip_comments(doc);
	rc = expand(c, doc, NULL);
	if (rc == 0)
		rc = validate(c, doc);
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
		if (is_comment_key(o->parts[k])) {
			/* a comment: gone again, nothing to expand */
			strip_comments(doc);
			node = doc;
			break;
		}
	}
	if (!node) {
		rc = c->err ? c->err->code : HYPERTEST_ERR_CONFIG;
	} else {
		if (node != doc) {
			strip_comments(node);
			rc = expand(c, node, &frames[o->nparts - 1]);
		} else {
			rc = 0;
		}
		if (rc == 0)
			rc = validate(c, doc);
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
	src = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!src) {
		if (jerr.line > 0)
			rc = ht_err_set(err, HYPERTEST_ERR_CONFIG, "%s:%d:%d: %s", origin, jerr.line,
			                jerr.column, jerr.text);
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
	rc = ht_read_file(path, &text, &len, err);
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

const char *ht_config_path(const ht_config *cfg)
{
	return cfg ? cfg->path : NULL;
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
