/*
 * junit.c - a run as JUnit XML, the form Jenkins and GitLab read: one
 * <testsuite> per run, one <testcase> per test (classname: the test's file
 * path; name: the runner's name for it), <failure message=...> with the
 * stack trace, <skipped message=...>, time in seconds, <system-out> and
 * <system-err> from the captured logs (their last 64 KiB); with retries,
 * Surefire's <flakyFailure> and <rerunFailure> for the failed attempts.  Written with
 * libxml2's xmlTextWriter; every string first made valid XML 1.0 text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlwriter.h>

#include "report.h"

static int attr(xmlTextWriterPtr w, const char *name, const char *value)
{
	char *clean = ht_xml_text(value ? value : "", value ? strlen(value) : 0);
	int rc = clean ? xmlTextWriterWriteAttribute(w, BAD_CAST name, BAD_CAST clean) : -1;
	free(clean);
	return rc < 0 ? -1 : 0;
}

static int text(xmlTextWriterPtr w, const char *value)
{
	char *clean = ht_xml_text(value ? value : "", value ? strlen(value) : 0);
	int rc = clean ? xmlTextWriterWriteString(w, BAD_CAST clean) : -1;
	free(clean);
	return rc < 0 ? -1 : 0;
}

static int element(xmlTextWriterPtr w, const char *name, const char *value)
{
	if (xmlTextWriterStartElement(w, BAD_CAST name) < 0 || text(w, value) ||
	    xmlTextWriterEndElement(w) < 0)
		return -1;
	return 0;
}

static void seconds(char out[32], int64_t ms)
{
	snprintf(out, 32, "%.3f", ms < 0 ? 0.0 : (double)ms / 1000.0);
}

/* The first line of a message (the failure's message attribute), at most
 * 1,000 bytes; the whole message goes into the element. */
static char *first_line(const char *s)
{
	size_t n = strcspn(s ? s : "", "\n");
	if (n > 1000)
		n = 1000;
	return s ? strndup(s, n) : ht_strdup("");
}

/* The failed attempts before the last one, as Surefire writes them: a
 * test that passed on a retry gets a <flakyFailure> for each, a test that
 * failed on every attempt a <rerunFailure> for each retry's failure. */
static int earlier_attempts(xmlTextWriterPtr w, const ht_report_test *t)
{
	size_t i, n = t->attempts ? json_array_size(t->attempts) : 0;
	const char *elem = t->flaky ? "flakyFailure" : "rerunFailure";
	int bad = 0;
	if (n < 2 || (!t->flaky && t->status_code != HYPERTEST_STATUS_FAILED))
		return 0;
	for (i = 0; i + 1 < n; i++) {
		json_t *a = json_array_get(t->attempts, i), *e = json_object_get(a, "error");
		const char *msg = json_is_object(e) ? json_string_value(json_object_get(e, "message"))
		                                    : NULL;
		const char *st = json_string_value(json_object_get(a, "status"));
		char *line;
		if (st && strcmp(st, "failed"))
			continue;
		line = first_line(msg ? msg : "failed");
		bad |= xmlTextWriterStartElement(w, BAD_CAST elem) < 0;
		bad |= attr(w, "message", line ? line : "");
		bad |= attr(w, "type", "failure");
		bad |= text(w, msg ? msg : "failed");
		bad |= xmlTextWriterEndElement(w) < 0;
		free(line);
	}
	return bad;
}

int ht_report_junit(const ht_report *r, const char *path, ht_err *err)
{
	xmlTextWriterPtr w;
	char num[32], date[32], *tmp = ht_asprintf("%s.tmp", path);
	size_t i;
	int bad = 0;

	if (!tmp)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	{
		char *slash = strrchr(tmp, '/');
		if (slash && slash != tmp) {
			*slash = '\0';
			if (ht_mkdir_p(tmp, err) != HYPERTEST_OK) {
				free(tmp);
				return err->code;
			}
			*slash = '/';
		}
	}
	w = xmlNewTextWriterFilename(tmp, 0);
	if (!w) {
		free(tmp);
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: cannot open for writing", path);
	}
	xmlTextWriterSetIndent(w, 1);
	bad |= xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL) < 0;
	bad |= xmlTextWriterStartElement(w, BAD_CAST "testsuites") < 0;
	bad |= xmlTextWriterStartElement(w, BAD_CAST "testsuite") < 0;
	bad |= attr(w, "name", "hypertest");
	snprintf(num, sizeof num, "%zu", r->n);
	bad |= attr(w, "tests", num);
	snprintf(num, sizeof num, "%zu", r->counts[HYPERTEST_STATUS_FAILED]);
	bad |= attr(w, "failures", num);
	bad |= attr(w, "errors", "0");
	snprintf(num, sizeof num, "%zu", r->counts[HYPERTEST_STATUS_SKIPPED]);
	bad |= attr(w, "skipped", num);
	seconds(num, r->end_ms - r->start_ms);
	bad |= attr(w, "time", num);
	/* the XSD's xs:dateTime without a zone */
	ht_iso8601(r->start_ms, date);
	date[19] = '\0';
	bad |= attr(w, "timestamp", date);
	bad |= attr(w, "hostname", "hypertest");
	bad |= attr(w, "id", "0");
	bad |= attr(w, "package", r->run_id);
	bad |= xmlTextWriterStartElement(w, BAD_CAST "properties") < 0;
	bad |= xmlTextWriterStartElement(w, BAD_CAST "property") < 0;
	bad |= attr(w, "name", "runId");
	bad |= attr(w, "value", r->run_id);
	bad |= xmlTextWriterEndElement(w) < 0;
	bad |= xmlTextWriterEndElement(w) < 0;
	for (i = 0; i < r->n && !bad; i++) {
		const ht_report_test *t = &r->tests[i];
		bad |= xmlTextWriterStartElement(w, BAD_CAST "testcase") < 0;
		bad |= attr(w, "name", t->name);
		bad |= attr(w, "classname", t->file_path);
		seconds(num, t->duration);
		bad |= attr(w, "time", num);
		if (t->status_code == HYPERTEST_STATUS_FAILED) {
			char *line = first_line(t->message ? t->message : "failed");
			ht_buf body = HT_BUF_INIT;
			ht_buf_puts(&body, t->message ? t->message : "failed");
			if (t->stack)
				ht_buf_printf(&body, "\n%s", t->stack);
			bad |= xmlTextWriterStartElement(w, BAD_CAST "failure") < 0;
			bad |= attr(w, "message", line ? line : "");
			bad |= attr(w, "type", "failure");
			bad |= text(w, body.data ? body.data : "");
			bad |= xmlTextWriterEndElement(w) < 0;
			ht_buf_free(&body);
			free(line);
		} else if (t->status_code == HYPERTEST_STATUS_SKIPPED) {
			bad |= xmlTextWriterStartElement(w, BAD_CAST "skipped") < 0;
			bad |= attr(w, "message", t->message ? t->message : "skipped");
			bad |= xmlTextWriterEndElement(w) < 0;
		}
		bad |= earlier_attempts(w, t);
		if (t->out_tail)
			bad |= element(w, "system-out", t->out_tail);
		if (t->err_tail)
			bad |= element(w, "system-err", t->err_tail);
		bad |= xmlTextWriterEndElement(w) < 0;
	}
	bad |= element(w, "system-out", "");
	bad |= element(w, "system-err", "");
	bad |= xmlTextWriterEndDocument(w) < 0;
	xmlFreeTextWriter(w);
	if (bad) {
		remove(tmp);
		free(tmp);
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: cannot write the XML", path);
	}
	if (rename(tmp, path) != 0) {
		remove(tmp);
		free(tmp);
		return ht_err_set(err, HYPERTEST_ERR_IO, "cannot rename %s.tmp to %s", path, path);
	}
	free(tmp);
	return HYPERTEST_OK;
}
