/*
 * report.c - hypertest report: the summary report of a run, built from the
 * bucket through the provider (the results file and the objects below
 * {runId}/), written to {runId}/report/index.html in the bucket, to
 * .hypertest/reports/{runId}/index.html locally, and as JUnit XML.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command_ops.h"
#include "report.h"

#define HT_TAIL_MAX 4096            /* bytes of a log shown per failed test */
#define HT_TAIL_BUDGET (1024 * 1024) /* all tails together */

/* ---- UTF-8 for XML and HTML ----------------------------------------------------- */

static int xml_char_ok(unsigned long c)
{
	return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
	       (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

char *ht_xml_text(const char *s, size_t len)
{
	ht_buf b = HT_BUF_INIT;
	const unsigned char *p = (const unsigned char *)(s ? s : ""), *end = p + (s ? len : 0);

	while (p < end) {
		unsigned long c;
		size_t n, i;
		if (*p < 0x80) {
			c = *p, n = 1;
		} else if ((*p & 0xE0) == 0xC0) {
			c = *p & 0x1F, n = 2;
		} else if ((*p & 0xF0) == 0xE0) {
			c = *p & 0x0F, n = 3;
		} else if ((*p & 0xF8) == 0xF0) {
			c = *p & 0x07, n = 4;
		} else {
			ht_buf_puts(&b, "\xEF\xBF\xBD");
			p++;
			continue;
		}
		if ((size_t)(end - p) < n) {
			ht_buf_puts(&b, "\xEF\xBF\xBD");
			p++;
			continue;
		}
		for (i = 1; i < n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				break;
			c = (c << 6) | (p[i] & 0x3F);
		}
		/* overlong forms, surrogates and non-characters are replaced */
		if (i < n || (n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
		    !xml_char_ok(c)) {
			ht_buf_puts(&b, "\xEF\xBF\xBD");
			p += i < n ? i : n;
			continue;
		}
		ht_buf_append(&b, p, n);
		p += n;
	}
	if (!b.data)
		ht_buf_puts(&b, "");
	return ht_buf_steal(&b);
}

/* ---- the model ------------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? (int64_t)json_number_value(v) : dflt;
}

/* Epoch milliseconds of an ISO-8601 date "YYYY-MM-DDTHH:MM:SS(.mmm)Z", or -1. */
static int64_t parse_date(const char *s)
{
	int y, mo, d, hh, mi, ss, ms = 0, n = 0;
	int64_t days;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &hh, &mi, &ss, &n) != 6)
		return -1;
	if (s[n] == '.')
		ms = atoi(s + n + 1);
	/* days from civil (proleptic Gregorian) */
	y -= mo <= 2;
	{
		int64_t era = (y >= 0 ? y : y - 399) / 400;
		int64_t yoe = y - era * 400;
		int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
		int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
		days = era * 146097 + doe - 719468;
	}
	return ((days * 24 + hh) * 60 + mi) * 60000 + (int64_t)ss * 1000 + ms;
}

/* ---- a test of the model ---------------------------------------------------------- */

/* Copies of s1..sn (NULL stays NULL) in one block; *out[k] point into it. */
static char *copy_strings(const char *const *in, const char **out[], size_t n)
{
	size_t k, total = 0, at = 0;
	char *block;

	for (k = 0; k < n; k++)
		total += in[k] ? strlen(in[k]) + 1 : 0;
	if (!(block = malloc(total ? total : 1)))
		return NULL;
	for (k = 0; k < n; k++) {
		*out[k] = NULL;
		if (in[k]) {
			size_t len = strlen(in[k]) + 1;
			memcpy(block + at, in[k], len);
			*out[k] = block + at;
			at += len;
		}
	}
	return block;
}

/* A new test of the model with copies of its id, name, file path, status,
 * message and stack trace (in[0..5], the last two may be NULL); NULL when
 * out of memory. */
static ht_report_test *push_test(ht_report *r, const char *const in[6], ht_err *err)
{
	ht_report_test *t;
	const char **out[6];

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		ht_report_test *tests = realloc(r->tests, cap * sizeof *tests);
		if (!tests) {
			ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
			return NULL;
		}
		r->tests = tests;
		r->cap = cap;
	}
	t = &r->tests[r->n];
	memset(t, 0, sizeof *t);
	out[0] = &t->id;
	out[1] = &t->name;
	out[2] = &t->file_path;
	out[3] = &t->status;
	out[4] = &t->message;
	out[5] = &t->stack;
	if (!(t->strings = copy_strings(in, out, 6))) {
		ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		return NULL;
	}
	r->n++;
	t->status_code = !strcmp(t->status, "success")   ? HYPERTEST_STATUS_SUCCESS
	                 : !strcmp(t->status, "skipped") ? HYPERTEST_STATUS_SKIPPED
	                                                 : HYPERTEST_STATUS_FAILED;
	r->counts[t->status_code]++;
	return t;
}

/* Test i of the model from its entry e of the results (borrowed): what it
 * reads is copied, so the entry can go as soon as it is read. */
static int add_test(ht_report *r, json_t *e, ht_err *err)
{
	ht_report_test *t;
	json_t *error = json_object_get(e, "error"), *attempts = json_object_get(e, "attempts"),
	       *cost = json_object_get(e, "cost");
	const char *in[6];

	if (!json_is_object(e))
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "results file: testResults[%zu] is not an object", r->n);
	in[0] = jstr(e, "testId") ? jstr(e, "testId") : "";
	in[1] = jstr(e, "name") ? jstr(e, "name") : "unknown";
	in[2] = jstr(e, "filePath") ? jstr(e, "filePath") : "unknown";
	in[3] = jstr(e, "status") ? jstr(e, "status") : "failed";
	in[4] = json_is_object(error) ? jstr(error, "message") : jstr(e, "skipMessage");
	in[5] = json_is_object(error) ? jstr(error, "stackTrace") : NULL;
	if (!(t = push_test(r, in, err)))
		return err->code;
	t->start_ms = jint(e, "startTime", parse_date(jstr(e, "startDate")));
	t->end_ms = jint(e, "endTime", parse_date(jstr(e, "endDate")));
	t->duration = jint(e, "duration", -1);
	t->expected = jint(e, "expectedDuration", -1);
	t->flaky = json_is_true(json_object_get(e, "flaky"));
	/* the report shows the attempts of a test that had more than one */
	t->attempts = json_is_array(attempts) && json_array_size(attempts) > 1
	                  ? json_incref(attempts)
	                  : NULL;
	t->cost = json_is_object(cost) ? json_incref(cost) : NULL;
	return HYPERTEST_OK;
}

/* ---- reading the results a test at a time ---------------------------------------- */

static size_t skip_space(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* The JSON value at s[*i] (after white space), *i moved past it; NULL
 * when there is none. */
static json_t *value_at(const char *s, size_t len, size_t *i)
{
	json_error_t jerr;
	json_t *v;

	*i = skip_space(s, len, *i);
	v = json_loadb(s + *i, len - *i, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &jerr);
	if (v)
		*i += (size_t)jerr.position;
	return v;
}

/* The tests of the array at s[*i], each read into the model and let go. */
static int tests_at(ht_report *r, const char *s, size_t len, size_t *i)
{
	size_t j = skip_space(s, len, *i);
	ht_err err;

	if (j >= len || s[j] != '[')
		return -1;
	j = skip_space(s, len, j + 1);
	if (j < len && s[j] == ']') {
		*i = j + 1;
		return 0;
	}
	for (;;) {
		json_t *e = value_at(s, len, &j);
		int rc = e ? add_test(r, e, &err) : -1;
		json_decref(e);
		if (rc)
			return -1;
		j = skip_space(s, len, j);
		if (j < len && s[j] == ',') {
			j++;
			continue;
		}
		if (j < len && s[j] == ']') {
			*i = j + 1;
			return 0;
		}
		return -1;
	}
}

/* One member of the document at s[*i] into r->doc, "testResults" into
 * the model. */
static int member_at(ht_report *r, const char *s, size_t len, size_t *i)
{
	json_t *key = value_at(s, len, i), *v = NULL;
	int tests = json_is_string(key) && !strcmp(json_string_value(key), "testResults");
	int rc = -1;

	*i = skip_space(s, len, *i);
	if (json_is_string(key) && *i < len && s[*i] == ':') {
		(*i)++;
		/* the tests: read once (a second list would replace the first) */
		if (tests)
			v = json_object_get(r->doc, "testResults") || tests_at(r, s, len, i)
			        ? NULL
			        : json_array();
		else
			v = value_at(s, len, i);
		rc = v && !json_object_setn_new(r->doc, json_string_value(key),
		                                json_string_length(key), v)
		         ? 0
		         : -1;
	}
	json_decref(key);
	return rc;
}

/* The document's members in r->doc and its tests in the model, read
 * without the whole tree of the file ever existing (at 20,000 tests, tens
 * of MB); -1 for anything but an object whose members are all JSON, whose
 * tests are all objects, which json_loadb then reads to say what is wrong
 * with it. */
static int load_by_test(ht_report *r, const char *s, size_t len)
{
	size_t i = skip_space(s, len, 0);

	if (!(r->doc = json_object()) || i >= len || s[i] != '{')
		return -1;
	i = skip_space(s, len, i + 1);
	if (i < len && s[i] == '}')
		return skip_space(s, len, i + 1) == len ? 0 : -1;
	for (;;) {
		if (member_at(r, s, len, &i))
			return -1;
		i = skip_space(s, len, i);
		if (i < len && s[i] == ',') {
			i++;
			continue;
		}
		if (i < len && s[i] == '}')
			return skip_space(s, len, i + 1) == len ? 0 : -1;
		return -1;
	}
}

static void take_run_members(ht_report *r);

int ht_report_parse(ht_report *r, const char *results, size_t len, ht_err *err)
{
	json_error_t jerr;
	json_t *list;
	size_t i;
	int by_test;

	memset(r, 0, sizeof *r);
	if (!(by_test = load_by_test(r, results, len) == 0)) {
		ht_report_clear(r);
		if (!(r->doc = json_loadb(results, len, 0, &jerr)))
			return ht_err_set(err, HYPERTEST_ERR_INVALID,
			                  "results file: line %d, column %d: %s", jerr.line, jerr.column,
			                  jerr.text);
	}
	list = json_object_get(r->doc, "testResults");
	r->run_id = jstr(r->doc, "runId");
	if (!json_is_object(r->doc) || !r->run_id || !json_is_array(list))
		return ht_err_set(err, HYPERTEST_ERR_INVALID,
		                  "results file: expected an object with 'runId' and 'testResults'");
	take_run_members(r);
	for (i = 0; !by_test && i < json_array_size(list); i++) {
		int rc = add_test(r, json_array_get(list, i), err);
		if (rc)
			return rc;
	}
	if (!r->tests && !(r->tests = calloc(1, sizeof *r->tests)))
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return HYPERTEST_OK;
}

/* s, when JSON can hold it (valid UTF-8): a string the results file could
 * not hold is absent there, and so it is from the model. */
static const char *if_json(const char *s)
{
	json_t *v = s ? json_string(s) : NULL;
	json_decref(v);
	return v ? s : NULL;
}

int ht_report_from_run(ht_report *r, const hypertest_run *run, ht_err *err)
{
	static const char *const status_names[] = {"success", "failed", "skipped"};
	size_t i;

	memset(r, 0, sizeof *r);
	if (!(r->doc = ht_results_doc(run)) || !(r->run_id = jstr(r->doc, "runId")))
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	take_run_members(r);
	for (i = 0; i < run->n; i++) {
		const ht_test_result *rec = &run->tests[i];
		int failed = rec->status == HYPERTEST_STATUS_FAILED;
		const char *in[6];
		ht_report_test *t;

		in[0] = rec->test_id;
		in[1] = if_json(rec->name ? rec->name : "unknown");
		in[2] = if_json(rec->file_path ? rec->file_path : "unknown");
		in[3] = status_names[rec->status];
		in[4] = failed ? if_json(rec->message ? rec->message : "")
		        : rec->status == HYPERTEST_STATUS_SKIPPED ? if_json(rec->message)
		                                                  : NULL;
		in[5] = failed ? if_json(rec->stack_trace) : NULL;
		if (!in[1])
			in[1] = "unknown";
		if (!in[2])
			in[2] = "unknown";
		if (!(t = push_test(r, in, err)))
			return err->code;
		t->start_ms = rec->start_ms;
		t->end_ms = rec->end_ms;
		t->duration = rec->duration;
		t->expected = rec->expected_ms >= 0 ? rec->expected_ms : -1;
		t->flaky = rec->flaky != 0;
		if (rec->n_attempt_log > 1 && !(t->attempts = ht_results_attempts(rec)))
			return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		t->cost = run->cost && json_is_object(rec->usage) ? json_incref(rec->usage) : NULL;
	}
	if (!r->tests && !(r->tests = calloc(1, sizeof *r->tests)))
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	return HYPERTEST_OK;
}

/* The run's members of the model, from r->doc. */
static void take_run_members(ht_report *r)
{
	r->start_ms = parse_date(jstr(r->doc, "startDate"));
	r->end_ms = parse_date(jstr(r->doc, "endDate"));
	r->concurrency = (long)jint(r->doc, "concurrency", 0);
	r->flaky = (long)jint(json_object_get(r->doc, "tests"), "flaky", -1);
	r->cost = json_is_object(json_object_get(r->doc, "cost")) ? json_object_get(r->doc, "cost")
	                                                          : NULL;
	{
		json_t *stopped = json_object_get(r->doc, "stopped");
		if (json_is_object(stopped))
			r->stopped_message = jstr(stopped, "message") ? jstr(stopped, "message")
			                                              : "stopped early";
	}
	if (r->concurrency <= 0)
		r->concurrency = 0;
}

void ht_report_clear(ht_report *r)
{
	size_t i, j;
	for (i = 0; r->tests && i < r->n; i++) {
		for (j = 0; j < r->tests[i].nobjects; j++) {
			free(r->tests[i].objects[j].key);
			free(r->tests[i].objects[j].name);
			free(r->tests[i].objects[j].url);
		}
		free(r->tests[i].objects);
		free(r->tests[i].out_tail);
		free(r->tests[i].err_tail);
		free(r->tests[i].strings);
		json_decref(r->tests[i].attempts);
		json_decref(r->tests[i].cost);
	}
	free(r->tests);
	free(r->s3_base);
	json_decref(r->doc);
	memset(r, 0, sizeof *r);
}

/* ---- reading the bucket ------------------------------------------------------------ */

static int cmp_test_id(const void *a, const void *b)
{
	return strcmp((*(ht_report_test *const *)a)->id, (*(ht_report_test *const *)b)->id);
}

static int cmp_object(const void *a, const void *b)
{
	return strcmp(((const ht_report_object *)a)->name, ((const ht_report_object *)b)->name);
}

static ht_report_test *find_test(ht_report_test **by_id, size_t n, const char *id, size_t idlen)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strncmp(by_id[mid]->id, id, idlen);
		if (c == 0 && by_id[mid]->id[idlen])
			c = 1;
		if (c == 0)
			return by_id[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Attach the listed objects to their tests ("{runId}/{testId}/..."). */
static int attach_objects(ht_report *r, const struct hypertest_params *objs)
{
	ht_report_test **by_id = calloc(r->n ? r->n : 1, sizeof *by_id);
	size_t i, plen = strlen(r->run_id);

	if (!by_id)
		return HYPERTEST_ERR_NOMEM;
	for (i = 0; i < r->n; i++)
		by_id[i] = &r->tests[i];
	qsort(by_id, r->n, sizeof *by_id, cmp_test_id);
	for (i = 0; i < objs->n; i++) {
		const char *key = objs->items[i].key, *id, *slash;
		ht_report_test *t;
		ht_report_object *o;
		if (strncmp(key, r->run_id, plen) || key[plen] != '/')
			continue;
		id = key + plen + 1;
		slash = strchr(id, '/');
		if (!slash || !slash[1] || !(t = find_test(by_id, r->n, id, (size_t)(slash - id))))
			continue;
		o = realloc(t->objects, (t->nobjects + 1) * sizeof *o);
		if (!o) {
			free(by_id);
			return HYPERTEST_ERR_NOMEM;
		}
		t->objects = o;
		o = &t->objects[t->nobjects++];
		o->key = ht_strdup(key);
		o->name = ht_strdup(slash + 1);
		o->size = strtoll(objs->items[i].value ? objs->items[i].value : "0", NULL, 10);
		o->url = NULL;
	}
	for (i = 0; i < r->n; i++)
		if (r->tests[i].nobjects > 1)
			qsort(r->tests[i].objects, r->tests[i].nobjects, sizeof *r->tests[i].objects,
			      cmp_object);
	free(by_id);
	return HYPERTEST_OK;
}

static char *get_tail(hypertest *h, ht_instance *provider, const char *key, size_t max, int *cut)
{
	hypertest_PROVIDER_OBJECT_GET_fn get = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_GET);
	hypertest_buffer buf;
	char *tail = NULL;

	memset(&buf, 0, sizeof buf);
	*cut = 0;
	ht_err_clear(&h->err);
	if (get && get(provider->self, key, &buf) == HYPERTEST_OK) {
		const char *d = buf.buf.data ? buf.buf.data : "";
		size_t len = buf.buf.len, off = 0;
		if (len > max) {
			off = len - max;
			while (off < len && ((unsigned char)d[off] & 0xC0) == 0x80)
				off++; /* start on a character */
			*cut = 1;
		}
		tail = ht_xml_text(d + off, len - off);
	} else {
		ht_log(h, HYPERTEST_LOG_WARNING, "report: cannot read %s: %s", key,
		       h->err.msg[0] ? h->err.msg : "unknown error");
	}
	ht_buf_free(&buf.buf);
	return tail;
}

static const ht_report_object *find_object(const ht_report_test *t, const char *name)
{
	size_t i;
	for (i = 0; i < t->nobjects; i++)
		if (!strcmp(t->objects[i].name, name))
			return &t->objects[i];
	return NULL;
}

/* The tails of the logs: failed tests (HTML) or every test (JUnit). */
static void read_tails(hypertest *h, ht_instance *provider, ht_report *r, int all, size_t max)
{
	size_t i, nfailed = r->counts[HYPERTEST_STATUS_FAILED];
	size_t per = nfailed ? HT_TAIL_BUDGET / (2 * nfailed) : HT_TAIL_MAX; /* two logs each */

	if (per > HT_TAIL_MAX)
		per = HT_TAIL_MAX;
	if (per < 256)
		per = 256;
	r->html_tail = per; /* JUnit reads more; the page stays within its budget */
	if (all && max > per)
		per = max;
	for (i = 0; i < r->n; i++) {
		ht_report_test *t = &r->tests[i];
		const ht_report_object *o;
		if (!all && t->status_code != HYPERTEST_STATUS_FAILED)
			continue;
		if ((o = find_object(t, "stdout.log")) && o->size > 0)
			t->out_tail = get_tail(h, provider, o->key, per, &t->out_cut);
		if ((o = find_object(t, "stderr.log")) && o->size > 0)
			t->err_tail = get_tail(h, provider, o->key, per, &t->err_cut);
	}
}

static char *object_url(hypertest *h, ht_instance *provider, const char *key)
{
	hypertest_PROVIDER_OBJECT_URL_fn ou = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_URL);
	hypertest_buffer buf;
	memset(&buf, 0, sizeof buf);
	ht_err_clear(&h->err);
	if (!ou || ou(provider->self, key, &buf) != HYPERTEST_OK) {
		ht_buf_free(&buf.buf);
		return NULL;
	}
	return ht_buf_steal(&buf.buf);
}

static void fill_urls(hypertest *h, ht_instance *provider, ht_report *r)
{
	size_t i, j;
	char *probe = object_url(h, provider, r->run_id);
	r->s3 = probe && !strncmp(probe, "s3://", 5);
	if (r->s3 && strlen(probe) > strlen(r->run_id)) {
		free(r->s3_base);
		r->s3_base = ht_strdup(probe);
		if (r->s3_base)
			r->s3_base[strlen(probe) - strlen(r->run_id)] = '\0';
	}
	free(probe);
	for (i = 0; i < r->n; i++)
		for (j = 0; j < r->tests[i].nobjects; j++) {
			ht_report_object *o = &r->tests[i].objects[j];
			if (r->s3) /* no call per object: the URL is s3://bucket/key */
				continue;
			o->url = object_url(h, provider, o->key);
		}
}

/* The run id of the local results file. */
static char *last_run_id(hypertest *h)
{
	const char *name = ht_config_str(h->cfg, "resultsFileName");
	char *path = ht_abspath(h->project_dir, name), *text = NULL, *id = NULL;
	size_t len;
	ht_err err;
	json_t *doc;

	ht_err_clear(&err);
	if (!path || ht_read_file(path, &text, &len, &err) != HYPERTEST_OK) {
		ht_fail(h, HYPERTEST_ERR_NOT_FOUND,
		        "no run to report: cannot read the results file %s (%s); name a RUN_ID",
		        path ? path : name, err.msg);
		free(path);
		return NULL;
	}
	doc = json_loadb(text, len, 0, NULL);
	if (jstr(doc, "runId"))
		id = ht_strdup(jstr(doc, "runId"));
	else
		ht_fail(h, HYPERTEST_ERR_INVALID, "%s: no 'runId'; name a RUN_ID", path);
	json_decref(doc);
	free(text);
	free(path);
	return id;
}

static int safe_run_id(const char *s)
{
	size_t n = 0;
	for (; *s; s++, n++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return 0;
	return n > 0 && n <= 128;
}

/* A provider without OBJECT_LIST or OBJECT_GET cannot be reported on. */
static int report_unsupported(hypertest *h, ht_instance *provider, int has_list)
{
	const char *pname = provider->core.plugin->name, *abi = provider->core.plugin->abi;
	unsigned major = 0, minor = 0;
	if (sscanf(abi, "%u.%u", &major, &minor) == 2 && major == 1 && minor < 3)
		return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
		               "provider '%s' cannot read its bucket (built for ABI %s; the report "
		               "needs OBJECT_LIST, ABI 1.3): rebuild or upgrade the plugin",
		               pname, abi);
	return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED,
	               "provider '%s' cannot read its bucket (it offers no %s operation)", pname,
	               has_list ? "OBJECT_GET" : "OBJECT_LIST");
}

/* The run's results file from the bucket, into buf. */
static int fetch_results(hypertest *h, ht_instance *provider, const char *id,
                         hypertest_buffer *buf)
{
	hypertest_PROVIDER_OBJECT_GET_fn get = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_GET);
	char *key = ht_asprintf("%s/%s", id, ht_config_str(h->cfg, "resultsFileName"));
	int rc;

	ht_err_clear(&h->err);
	rc = key ? get(provider->self, key, buf) : HYPERTEST_ERR_NOMEM;
	if (rc == HYPERTEST_ERR_NOT_FOUND)
		rc = ht_fail(h, HYPERTEST_ERR_NOT_FOUND,
		             "no run '%s' in the bucket of provider '%s' (no object %s)", id,
		             provider->core.plugin->name, key);
	else if (rc != HYPERTEST_OK)
		rc = ht_plugin_error(h, provider, rc, "reading the results");
	free(key);
	return rc;
}

/* The run's objects, listed and attached to the report's tests. */
static int list_objects(hypertest *h, ht_instance *provider, const char *id, ht_report *r,
                        struct hypertest_params *objs)
{
	hypertest_PROVIDER_OBJECT_LIST_fn list = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_LIST);
	char *prefix = ht_asprintf("%s/", id);
	int rc;

	ht_err_clear(&h->err);
	if (!prefix || (rc = list(provider->self, prefix, objs)) != HYPERTEST_OK) {
		free(prefix);
		return ht_plugin_error(h, provider, prefix ? rc : HYPERTEST_ERR_NOMEM,
		                       "listing the run's objects");
	}
	free(prefix);
	if ((rc = attach_objects(r, objs)) != HYPERTEST_OK)
		return ht_fail(h, rc, "out of memory");
	return HYPERTEST_OK;
}

static int write_junit(hypertest *h, ht_report *r, const char *id, const char *junit_path)
{
	char *path = ht_abspath(h->project_dir, junit_path);
	ht_err err;

	ht_err_clear(&err);
	if (!path || ht_report_junit(r, path, &err) != HYPERTEST_OK) {
		int rc = ht_fail(h, HYPERTEST_ERR_IO, "cannot write JUnit XML: %s",
		                 path ? err.msg : "out of memory");
		free(path);
		return rc;
	}
	ht_emit(h, HYPERTEST_EVENT_REPORT, HYPERTEST_FIELD_RUN_ID, id, HYPERTEST_FIELD_STEP, "junit",
	        HYPERTEST_FIELD_PATH, path, HYPERTEST_FIELD_URL, "", 0);
	free(path);
	return HYPERTEST_OK;
}

/* The HTML report: a copy in the bucket whose links to the artifacts are
 * relative, and a local copy whose links go to where the objects are. */
static int write_html(hypertest *h, ht_instance *provider, ht_report *r, const char *id,
                      const char *art)
{
	hypertest_PROVIDER_OBJECT_PUT_fn put = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_PUT);
	char *key = ht_asprintf("%s/report/index.html", id), *page, *url = NULL, *dir, *local = NULL;
	ht_err err;
	int rc;

	fill_urls(h, provider, r);
	r->relative_links = 1;
	page = ht_report_html(r);
	if (!key || !page) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	ht_err_clear(&h->err);
	rc = put ? put(provider->self, key, page, strlen(page), "text/html; charset=utf-8")
	         : HYPERTEST_ERR_UNSUPPORTED;
	if (rc != HYPERTEST_OK) {
		rc = ht_plugin_error(h, provider, rc, "storing the report");
		goto out;
	}
	url = object_url(h, provider, key);
	r->relative_links = 0;
	free(page);
	page = ht_report_html(r);
	dir = ht_asprintf("%s/reports/%s", ht_state_dir(h), id);
	local = dir ? ht_path_join(dir, "index.html") : NULL;
	free(dir);
	ht_err_clear(&err);
	if (!page || !local) {
		rc = ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (ht_write_file_atomic(local, page, strlen(page), &err) != HYPERTEST_OK) {
		rc = ht_fail(h, HYPERTEST_ERR_IO, "cannot write the report: %s", err.msg);
		goto out;
	}
	ht_emit(h, HYPERTEST_EVENT_REPORT, HYPERTEST_FIELD_RUN_ID, id, HYPERTEST_FIELD_STEP, "html",
	        HYPERTEST_FIELD_PATH, local, HYPERTEST_FIELD_URL, url ? url : "",
	        HYPERTEST_FIELD_ARTIFACTS, art ? art : "", 0);
out:
	free(key);
	free(page);
	free(url);
	free(local);
	return rc;
}

int ht_report_run(hypertest *h, ht_instance *provider, const char *run_id, const hypertest_run *run,
                  int html, const char *junit_path)
{
	const char *results = NULL;
	int has_list = HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_LIST) != NULL;
	struct hypertest_params objs = {NULL, 0, 0, 1};
	hypertest_buffer buf;
	ht_report r;
	char *id = NULL, *art = NULL;
	ht_err err;
	int rc;

	memset(&r, 0, sizeof r);
	memset(&buf, 0, sizeof buf);
	if (!has_list || !HT_OP(provider, HYPERTEST_PROVIDER_OBJECT_GET))
		return report_unsupported(h, provider, has_list);
	id = run_id ? ht_strdup(run_id) : last_run_id(h);
	if (!id)
		return h->err.code ? h->err.code : HYPERTEST_ERR_NOMEM;
	if (!safe_run_id(id)) {
		rc = ht_fail(h, HYPERTEST_ERR_INVALID,
		             "run id '%s': expected letters, digits, '-' and '_'", id);
		goto out;
	}
	if (!run) {
		if ((rc = fetch_results(h, provider, id, &buf)) != HYPERTEST_OK)
			goto out;
		results = buf.buf.data ? buf.buf.data : "";
	}
	ht_err_clear(&err);
	if ((rc = run ? ht_report_from_run(&r, run, &err)
	              : ht_report_parse(&r, results, strlen(results), &err)) != HYPERTEST_OK) {
		rc = ht_fail(h, rc, "run %s: %s", id, err.msg);
		goto out;
	}
	if (strcmp(r.run_id, id) != 0) {
		rc = ht_fail(h, HYPERTEST_ERR_INVALID, "the results of run %s name run %s", id, r.run_id);
		goto out;
	}
	if ((rc = list_objects(h, provider, id, &r, &objs)) != HYPERTEST_OK)
		goto out;
	read_tails(h, provider, &r, junit_path != NULL, 64 * 1024);
	art = object_url(h, provider, id);
	if (junit_path && (rc = write_junit(h, &r, id, junit_path)) != HYPERTEST_OK)
		goto out;
	if (html && (rc = write_html(h, provider, &r, id, art)) != HYPERTEST_OK)
		goto out;
	rc = HYPERTEST_OK;
out:
	ht_params_clear(&objs);
	ht_buf_free(&buf.buf);
	ht_report_clear(&r);
	free(id);
	free(art);
	return rc;
}

/* ---- the public entry point ---------------------------------------------------------- */

int hypertest_report(hypertest *h, const char *run_id)
{
	ht_instance *provider = NULL;
	int rc;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	ht_command_ops_install(h);
	if ((rc = ht_require_config(h)) ||
	    (rc = ht_instance_create(h, HYPERTEST_KIND_PROVIDER, &provider)))
		return rc;
	rc = ht_report_run(h, provider, run_id, NULL, 1, ht_junit_output(h));
	ht_instance_destroy(provider);
	return rc;
}
