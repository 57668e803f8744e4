/*
 * report.h - the summary report of a run: read from the bucket through the
 * provider (the results file and each test's artifacts), written as one
 * self-contained HTML page and as JUnit XML.
 */
#ifndef HT_REPORT_H
#define HT_REPORT_H

#include "core.h"

typedef struct ht_report_object {
	char *key;  /* bucket key, "{runId}/{testId}/..." */
	char *name; /* below the test's prefix */
	long long size;
	char *url;  /* where it is, for people (OBJECT_URL), or NULL */
} ht_report_object;

typedef struct ht_report_test {
	const char *id, *name, *file_path, *status, *message, *stack; /* in strings */
	char *strings;   /* one block: copies of the test's strings, read from its entry */
	int status_code; /* enum hypertest_status */
	int64_t start_ms, end_ms, duration, expected;
	ht_report_object *objects;
	size_t nobjects;
	char *out_tail, *err_tail; /* last bytes of stdout.log and stderr.log, or NULL */
	int out_cut, err_cut;      /* the tail is not the whole log */
	int flaky;                 /* failed, then passed on a retry */
	json_t *attempts;          /* the "attempts" array when it has two or more, or NULL */
	json_t *cost;              /* the test's "cost" object, or NULL */
} ht_report_test;

typedef struct ht_report {
	json_t *doc; /* the results document (its testResults read into tests) */
	const char *run_id;
	int64_t start_ms, end_ms;
	long concurrency;
	size_t counts[3];
	long flaky;                   /* tests.flaky, or -1 without retries */
	json_t *cost;                 /* borrowed: the run's "cost" object, or NULL */
	const char *stopped_message;  /* stopped early (--max-failures), or NULL */
	ht_report_test *tests;
	size_t n, cap;
	int s3;              /* object URLs are s3:// */
	char *s3_base;       /* "s3://bucket/" when s3 */
	int relative_links;  /* links relative to {runId}/report/index.html */
	size_t html_tail;    /* bytes of a log tail the page shows (0: all it has) */
} ht_report;

/* Build the model from results JSON text (no bucket access); tests keep
 * the results file's order. */
int ht_report_parse(ht_report *r, const char *results, size_t len, ht_err *err);
/* The same model from a finished run's records (what ht_report_parse of
 * ht_results_json(run) gives), without writing and reading the text. */
int ht_report_from_run(ht_report *r, const hypertest_run *run, ht_err *err);
void ht_report_clear(ht_report *r);

/* The HTML page (malloc'd NUL-terminated), or NULL when out of memory. */
char *ht_report_html(const ht_report *r);
/* JUnit XML to path; err says why not. */
int ht_report_junit(const ht_report *r, const char *path, ht_err *err);

/* s as valid UTF-8 holding only characters XML 1.0 allows (tab, newline
 * and carriage return kept; other control characters, invalid sequences
 * and encoded surrogates become U+FFFD).  malloc'd. */
char *ht_xml_text(const char *s, size_t len);

/* Build the report of run_id (NULL: the one in the local results file)
 * with the provider; run (may be NULL: its results are fetched from the
 * bucket) is the finished run of that id.  html: write index.html;
 * junit_path: also write JUnit XML there (NULL: not). */
int ht_report_run(hypertest *h, ht_instance *provider, const char *run_id,
                  const hypertest_run *run, int html, const char *junit_path);

#endif /* HT_REPORT_H */
