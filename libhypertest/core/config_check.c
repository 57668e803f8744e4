/*
 * config_check.c - the steps of a configuration load that check and
 * rewrite a document (config.c has the order they run in): where a value
 * came from (file, line and column, or the override that set it) for error
 * messages, comment keys, ${VAR} environment references, and the
 * validation of the core keys with "did you mean" for unknown ones.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "config_check.h"
#include "jsonpos.h"

static const char *const core_keys[] = {
	"imageName", "localImageName", "localBaseImageName", "buildManifestFileName",
	"resultsFileName", "driftDetectionPolicy", "concurrency", "retries", "cost", "pluginPath", "platform",
	"testRunner", "cloudProvider", "report", "junit", "logLevel", NULL
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
void ht_config_describe(const json_t *v, char *out, size_t size)
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

int ht_config_report_key(const struct ctx *c, const char *dotted, const char *msg)
{
	struct frame frames[16];
	char *copy = ht_strdup(dotted), *part, *dot;
	const struct frame *up = NULL;
	size_t n = 0;
	int rc;

	if (!copy)
		return ht_err_set(c->err, HYPERTEST_ERR_NOMEM, "out of memory");
	for (part = copy; part && n < sizeof frames / sizeof frames[0]; part = dot) {
		dot = strchr(part, '.');
		if (dot)
			*dot++ = '\0';
		frames[n] = (struct frame){up, part, 0};
		up = &frames[n++];
	}
	rc = report(c, up, R_KEY, "%s", msg);
	free(copy);
	return rc;
}

/* ---- comments ----------------------------------------------------------------- */

int ht_config_is_comment_key(const char *key)
{
	return strcmp(key, "$schema") == 0 || strncmp(key, "//", 2) == 0 ||
	       strncmp(key, "_comment", 8) == 0;
}

void ht_config_strip_comments(json_t *v)
{
	const char *key;
	json_t *child;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, key, child) {
			if (ht_config_is_comment_key(key))
				json_object_del(v, key);
			else
				ht_config_strip_comments(child);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			ht_config_strip_comments(child);
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

int ht_config_expand(const struct ctx *c, json_t *v, const struct frame *f)
{
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_string(v))
		return expand_string(c, v, f);
	if (json_is_object(v)) {
		json_object_foreach(v, key, child) {
			struct frame sub = {f, key, 0};
			int rc = ht_config_expand(c, child, &sub);
			if (rc)
				return rc;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			struct frame sub = {f, NULL, i};
			int rc = ht_config_expand(c, child, &sub);
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
	ht_config_describe(v, got, sizeof got);
	return report(c, f, R_KEY, "expected a string, got %s", got);
}

static int check_bool(const struct ctx *c, const json_t *v, const struct frame *f)
{
	char got[96];

	if (json_is_boolean(v))
		return 0;
	ht_config_describe(v, got, sizeof got);
	return report(c, f, R_KEY, "expected true or false, got %s", got);
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
		ht_config_describe(v, got, sizeof got);
		return report(c, f, R_KEY, "expected a non-empty file name, got %s", got);
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return report(c, f, R_KEY, "a file name cannot contain a NUL character");
	if (s[0] == '/')
		return report(c, f, R_KEY, "expected a relative file name, got the absolute path \"%s\"", s);
	for (seg = s; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL) {
		if (strncmp(seg, "..", 2) == 0 && (seg[2] == '/' || seg[2] == '\0'))
			return report(c, f, R_KEY, "a file name cannot contain a '..' segment, got \"%s\"", s);
		if (seg[0] == '.' && (seg[1] == '/' || seg[1] == '\0'))
			return report(c, f, R_KEY,
			              "expected a file name, got \"%s\" (a '.' segment names a directory)", s);
		if (seg[0] == '/' || seg[0] == '\0')
			return report(c, f, R_KEY,
			              "expected a file name, got \"%s\" (%s)", s,
			              seg[0] ? "an empty segment" : "a name ending with '/' is a directory");
	}
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
	ht_config_describe(v, got, sizeof got);
	s = json_is_string(v) ? suggest(json_string_value(v), names) : NULL;
	if (s)
		return report(c, f, R_KEY,
		              "expected \"silence\", \"warning\" or \"error\", got %s (did you mean \"%s\"?)",
		              got, s);
	return report(c, f, R_KEY, "expected \"silence\", \"warning\" or \"error\", got %s", got);
}

/* logLevel: the least important log lines shown (the CLI's default). */
static int check_log_level(const struct ctx *c, const json_t *v, const struct frame *f)
{
	static const char *const names[] = {"error", "warning", "info", "debug", NULL};
	const char *const *n, *s;
	char got[96];

	if (json_is_string(v)) {
		for (n = names; *n; n++)
			if (strcmp(json_string_value(v), *n) == 0)
				return 0;
	}
	ht_config_describe(v, got, sizeof got);
	s = json_is_string(v) ? suggest(json_string_value(v), names) : NULL;
	if (s)
		return report(c, f, R_KEY,
		              "expected \"error\", \"warning\", \"info\" or \"debug\", got %s "
		              "(did you mean \"%s\"?)",
		              got, s);
	return report(c, f, R_KEY, "expected \"error\", \"warning\", \"info\" or \"debug\", got %s",
	              got);
}

static int check_concurrency(const struct ctx *c, const json_t *v, const struct frame *f)
{
	char got[96];

	if (json_is_integer(v) && json_integer_value(v) >= CONCURRENCY_MIN &&
	    json_integer_value(v) <= CONCURRENCY_MAX)
		return 0;
	ht_config_describe(v, got, sizeof got);
	return report(c, f, R_KEY, "expected an integer from %d to %d, got %s", CONCURRENCY_MIN,
	              CONCURRENCY_MAX, got);
}

static int check_retries(const struct ctx *c, const json_t *v, const struct frame *f)
{
	char got[96];

	if (json_is_integer(v) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= RETRIES_MAX)
		return 0;
	ht_config_describe(v, got, sizeof got);
	return report(c, f, R_KEY, "expected an integer from 0 to %d, got %s", RETRIES_MAX, got);
}

/* cost: {"pricePerGBSecond": N, "pricePerRequest": N}, dollars, >= 0 */
static int check_cost(const struct ctx *c, const json_t *v, const struct frame *f)
{
	static const char *const cost_keys[] = {"pricePerGBSecond", "pricePerRequest", NULL};
	const char *key;
	const json_t *child;
	char got[96];

	if (!json_is_object(v)) {
		ht_config_describe(v, got, sizeof got);
		return report(c, f, R_KEY,
		              "expected an object {\"pricePerGBSecond\": N, \"pricePerRequest\": N}, "
		              "got %s",
		              got);
	}
	json_object_foreach((json_t *)v, key, child) {
		struct frame sub = {f, key, 0};
		if (strcmp(key, "pricePerGBSecond") && strcmp(key, "pricePerRequest"))
			return unknown_key(c, &sub, cost_keys);
		if (!json_is_number(child) || json_number_value(child) < 0) {
			ht_config_describe(child, got, sizeof got);
			return report(c, &sub, R_KEY, "expected a price in dollars (a number >= 0), got %s",
			              got);
		}
	}
	return 0;
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
				ht_config_describe(item, got, sizeof got);
				return report(c, &sub, R_KEY, "expected a directory (a string), got %s", got);
			}
		}
		return 0;
	}
	ht_config_describe(v, got, sizeof got);
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
		ht_config_describe(v, got, sizeof got);
		return report(c, f, R_KEY, "expected an object {\"plugin\": NAME, \"options\": {...}}, got %s",
		              got);
	}
	json_object_foreach((json_t *)v, key, child) {
		struct frame sub = {f, key, 0};
		if (strcmp(key, "plugin") == 0) {
			if (!json_is_string(child) || json_string_length(child) == 0) {
				ht_config_describe(child, got, sizeof got);
				return report(c, &sub, R_KEY, "expected the plugin's name (a non-empty string), got %s",
				              got);
			}
		} else if (strcmp(key, "options") == 0) {
			if (!json_is_object(child)) {
				ht_config_describe(child, got, sizeof got);
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

int ht_config_validate(const struct ctx *c, json_t *doc)
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
		else if (strcmp(key, "cost") == 0)
			rc = check_cost(c, v, &f);
		else if (strcmp(key, "retries") == 0)
			rc = check_retries(c, v, &f);
		else if (strcmp(key, "pluginPath") == 0)
			rc = check_plugin_path(c, v, &f);
		else if (strcmp(key, "platform") == 0)
			rc = check_platform(c, v, &f);
		else if (strcmp(key, "report") == 0)
			rc = check_bool(c, v, &f);
		else if (strcmp(key, "junit") == 0)
			rc = check_string(c, v, &f);
		else if (strcmp(key, "logLevel") == 0)
			rc = check_log_level(c, v, &f);
		else if (strcmp(key, "testRunner") == 0 || strcmp(key, "cloudProvider") == 0)
			rc = check_section(c, v, &f);
		else
			rc = unknown_key(c, &f, core_keys);
		if (rc)
			return rc;
	}
	return 0;
}

int ht_config_check_root(const struct ctx *c, const json_t *doc)
{
	char got[96];

	if (json_is_object(doc))
		return 0;
	ht_config_describe(doc, got, sizeof got);
	return report(c, NULL, R_PLAIN, "expected a JSON object at the top level, got %s", got);
}
