/*
 * report_html.c - the summary report as one self-contained HTML page:
 * inline CSS and JavaScript, nothing fetched.  Every string from the
 * results is HTML-escaped; the data the script draws the timeline from is
 * JSON inside <script type="application/json"> with every '<' written
 * \u003c, so no "</script>" can end it early.  The page's address may
 * preset the filter: index.html#q=TEXT&status=failed.
 */
#include <stdlib.h>
#include <string.h>

#include "report.h"

static const char *const status_label[] = {"passed", "failed", "skipped"};

/* Text into HTML (element content and attribute values alike). */
static void esc_n(ht_buf *b, const char *s, size_t len)
{
	char *clean = ht_xml_text(s, len);
	const char *p;
	if (!clean)
		return;
	for (p = clean; *p; p++) {
		switch (*p) {
		case '&': ht_buf_puts(b, "&amp;"); break;
		case '<': ht_buf_puts(b, "&lt;"); break;
		case '>': ht_buf_puts(b, "&gt;"); break;
		case '"': ht_buf_puts(b, "&quot;"); break;
		case '\'': ht_buf_puts(b, "&#39;"); break;
		default: {
			size_t n = strcspn(p, "&<>\"'");
			ht_buf_append(b, p, n);
			p += n - 1;
		}
		}
	}
	free(clean);
}

static void esc(ht_buf *b, const char *s)
{
	if (s)
		esc_n(b, s, strlen(s));
}

static void duration(ht_buf *b, int64_t ms)
{
	if (ms < 0)
		ht_buf_puts(b, "\xE2\x80\x93");
	else if (ms < 1000)
		ht_buf_printf(b, "%lld ms", (long long)ms);
	else if (ms < 60000)
		ht_buf_printf(b, "%.2f s", (double)ms / 1000.0);
	else
		ht_buf_printf(b, "%lldm %02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

/* A URI: percent-encode what is not unreserved or '/'. */
static void uri(ht_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
			char ch = (char)c;
			ht_buf_append(b, &ch, 1);
		} else {
			ht_buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
		}
	}
}

/* Single-quoted for a POSIX shell, for the aws s3 cp command shown. */
static void shell_quote(ht_buf *out, const char *s)
{
	ht_buf q = HT_BUF_INIT;
	ht_buf_puts(&q, "'");
	for (; *s; s++)
		if (*s == '\'')
			ht_buf_puts(&q, "'\\''");
		else
			ht_buf_append(&q, s, 1);
	ht_buf_puts(&q, "'");
	esc(out, q.data);
	ht_buf_free(&q);
}

static double num(json_t *o, const char *key, int *has)
{
	json_t *v = json_object_get(o, key);
	*has = json_is_number(v);
	return *has ? json_number_value(v) : 0.0;
}

/* A cost object in words: dollars, GB-seconds and billed time (aws), CPU
 * time and peak memory (local).  Only numbers: nothing to escape. */
static void cost_text(ht_buf *b, json_t *c, int with_invocations)
{
	const char *sep = "";
	int has;
	double v;
	if (with_invocations && (v = num(c, "invocations", &has), has)) {
		ht_buf_printf(b, "%.0f invocation%s", v, v == 1 ? "" : "s");
		sep = " \xC2\xB7 ";
	}
	if ((v = num(c, "dollars", &has), has)) {
		ht_buf_printf(b, "%s$%.6f", sep, v);
		sep = " \xC2\xB7 ";
	}
	if ((v = num(c, "gbSeconds", &has), has)) {
		ht_buf_printf(b, "%s%.3f GB-s", sep, v);
		sep = " \xC2\xB7 ";
	}
	if ((v = num(c, "billedMs", &has), has)) {
		ht_buf_printf(b, "%s%.0f ms billed", sep, v);
		sep = " \xC2\xB7 ";
	}
	if ((v = num(c, "cpuMs", &has), has)) {
		ht_buf_printf(b, "%s%.3f CPU-seconds", sep, v / 1000.0);
		sep = " \xC2\xB7 ";
	}
	if ((v = num(c, "maxRssKB", &has), has))
		ht_buf_printf(b, "%speak memory %.1f MB", sep, v / 1024.0);
}

/* Each attempt of a test that ran more than once: status, duration and
 * the message of a failed one. */
static void attempts_list(ht_buf *b, const ht_report_test *t)
{
	size_t i;
	if (!t->attempts || json_array_size(t->attempts) < 2)
		return;
	ht_buf_puts(b, "<ol class=attempts>");
	for (i = 0; i < json_array_size(t->attempts); i++) {
		json_t *a = json_array_get(t->attempts, i), *e = json_object_get(a, "error"),
		       *d = json_object_get(a, "duration");
		const char *st = json_string_value(json_object_get(a, "status"));
		const char *label = st && !strcmp(st, "success") ? "passed"
		                    : st && !strcmp(st, "skipped") ? "skipped"
		                                                   : "failed";
		ht_buf_printf(b, "<li class=\"attempt %s\">%s \xC2\xB7 ", label, label);
		duration(b, json_is_integer(d) ? (int64_t)json_integer_value(d) : -1);
		if (json_is_object(e) && json_is_string(json_object_get(e, "message"))) {
			ht_buf_puts(b, "<pre class=attempt-message>");
			esc(b, json_string_value(json_object_get(e, "message")));
			ht_buf_puts(b, "</pre>");
		}
		ht_buf_puts(b, "</li>");
	}
	ht_buf_puts(b, "</ol>");
}

static void artifact_links(ht_buf *b, const ht_report *r, const ht_report_test *t)
{
	size_t i;
	if (!t->nobjects) {
		ht_buf_puts(b, "<span class=none>none</span>");
		return;
	}
	ht_buf_puts(b, "<ul class=artifacts>");
	for (i = 0; i < t->nobjects; i++) {
		const ht_report_object *o = &t->objects[i];
		ht_buf_puts(b, "<li><a href=\"");
		if (r->relative_links) {
			/* from {runId}/report/index.html to {runId}/{testId}/name */
			ht_buf_puts(b, "../");
			uri(b, t->id);
			ht_buf_puts(b, "/");
			uri(b, o->name);
		} else if (o->url && o->url[0] == '/') {
			ht_buf_puts(b, "file://");
			uri(b, o->url);
		} else if (o->url) {
			esc(b, o->url);
		} else if (r->s3 && r->s3_base) {
			esc(b, r->s3_base);
			uri(b, o->key);
		} else {
			ht_buf_puts(b, "../");
			uri(b, t->id);
			ht_buf_puts(b, "/");
			uri(b, o->name);
		}
		ht_buf_puts(b, "\">");
		esc(b, o->name);
		ht_buf_printf(b, "</a> <small>%lld B</small>", o->size);
		if (r->s3 && r->s3_base) {
			ht_buf u = HT_BUF_INIT;
			ht_buf_printf(&u, "%s%s", r->s3_base, o->key);
			ht_buf_puts(b, " <code class=cp>aws s3 cp ");
			shell_quote(b, u.data ? u.data : "");
			ht_buf_puts(b, " .</code>");
			ht_buf_free(&u);
		}
		ht_buf_puts(b, "</li>");
	}
	ht_buf_puts(b, "</ul>");
}

/* The table's cell: the test's folder of artifacts (each file is linked
 * in the failure blocks), which keeps a page of 5,000 tests small. */
static void folder_link(ht_buf *b, const ht_report *r, const ht_report_test *t)
{
	if (!t->nobjects) {
		ht_buf_puts(b, "<span class=none>none</span>");
		return;
	}
	ht_buf_puts(b, "<a href=\"");
	if (r->relative_links || !t->objects[0].url) {
		ht_buf_puts(b, "../");
		uri(b, t->id);
		ht_buf_puts(b, "/");
	} else if (r->s3 && r->s3_base) {
		esc(b, r->s3_base);
		uri(b, r->run_id);
		ht_buf_puts(b, "/");
		uri(b, t->id);
		ht_buf_puts(b, "/");
	} else {
		/* the folder of the first object's URL */
		const char *u = t->objects[0].url, *name = t->objects[0].name;
		size_t ul = strlen(u), nl = strlen(name);
		char *dir = ul > nl ? ht_strdup(u) : NULL;
		if (dir) {
			dir[ul - nl] = '\0';
			if (dir[0] == '/')
				ht_buf_puts(b, "file://");
			uri(b, dir);
			free(dir);
		}
	}
	ht_buf_printf(b, "\">%zu file%s</a>", t->nobjects, t->nobjects == 1 ? "" : "s");
	if (r->s3 && r->s3_base) {
		ht_buf u = HT_BUF_INIT;
		ht_buf_printf(&u, "%s%s/%s/", r->s3_base, r->run_id, t->id);
		ht_buf_puts(b, " <code class=cp>aws s3 cp --recursive ");
		shell_quote(b, u.data ? u.data : "");
		ht_buf_puts(b, " .</code>");
		ht_buf_free(&u);
	}
}

static void log_tail(ht_buf *b, const ht_report *r, const char *what, const char *tail, int cut)
{
	size_t len;
	if (!tail || !*tail)
		return;
	len = strlen(tail);
	if (r->html_tail && len > r->html_tail) {
		tail += len - r->html_tail;
		cut = 1;
	}
	if (cut) { /* start on a whole line when there is one */
		const char *nl = strchr(tail, '\n');
		if (nl && nl[1])
			tail = nl + 1;
	}
	ht_buf_printf(b, "<details open class=log><summary>%s%s</summary><pre>", what,
	              cut ? " (last lines)" : "");
	esc(b, tail);
	ht_buf_puts(b, "</pre></details>");
}

static void expected(ht_buf *b, const ht_report_test *t)
{
	if (t->expected < 0) {
		ht_buf_puts(b, "<span class=none>no history</span>");
		return;
	}
	duration(b, t->expected);
	if (t->duration >= 0 && t->expected > 0) {
		double d = 100.0 * (double)(t->duration - t->expected) / (double)t->expected;
		ht_buf_printf(b, " <span class=\"delta %s\">%+.0f%%</span>",
		              d > 20 ? "slower" : d < -20 ? "faster" : "same", d);
	}
}

static const char style[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em;"
    "color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}"
    "code,pre{font:12px/1.35 ui-monospace,monospace}pre{background:#f6f6f6;padding:.5em;"
    "overflow:auto;max-height:30em;white-space:pre-wrap;word-break:break-word}"
    ".counts{display:flex;gap:1em;list-style:none;padding:0}.counts li{padding:.4em .8em;"
    "border-radius:4px;background:#eee}.counts .failed{background:#fdd}.counts .passed"
    "{background:#dfd}.counts .skipped{background:#ffd}"
    ".failure{border-left:4px solid #c00;padding:.2em 1em;margin:1em 0;background:#fff8f8}"
    ".failure h3{margin:.3em 0}.meta{color:#666;font-size:.9em}.message{background:#fee}"
    "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .5em;"
    "border-bottom:1px solid #eee;vertical-align:top}th{cursor:pointer;user-select:none;"
    "background:#fafafa}tr.failed td:nth-child(2){color:#c00;font-weight:bold}"
    "tr.skipped td:nth-child(2){color:#a80}tr.passed td:nth-child(2){color:#080}"
    ".artifacts{margin:0;padding-left:1em}.none{color:#999}.slower{color:#c00}"
    ".faster{color:#080}.controls{margin:.5em 0;display:flex;gap:.5em;align-items:center}"
    "#timeline svg{width:100%;border:1px solid #eee}.bar.passed{fill:#6b6}.bar.failed"
    "{fill:#d44}.bar.skipped{fill:#db4}.inflight{fill:none;stroke:#36c;stroke-width:1.5}"
    ".cp{color:#555}.stopped{border:2px solid #c60;background:#fff3e0;padding:.5em 1em}"
    ".counts .flaky{background:#eef}.flaky-mark{background:#ccf;border-radius:3px;"
    "padding:0 .3em;font-size:.85em}.attempts{margin:.2em 0;padding-left:1.5em}"
    ".attempts pre{margin:.1em 0;max-height:8em}.attempt.failed{color:#c00}"
    ".attempt.passed{color:#080}";

/* The table sorts and filters in place; the timeline is drawn from the
 * embedded data: one bar per invocation on the first free lane, and the
 * number in flight over time. */
static const char script[] =
    "(function(){'use strict';"
    "var data=JSON.parse(document.getElementById('report-data').textContent);"
    "var tbody=document.querySelector('#tests-table tbody');"
    "var rows=Array.prototype.slice.call(tbody.rows);"
    "rows.forEach(function(r){r.dataset.text=r.cells[0].textContent.toLowerCase();});"
    "var filter=document.getElementById('filter'),status=document.getElementById('status');"
    "var shown=document.getElementById('shown');"
    "function apply(){var q=filter.value.toLowerCase(),s=status.value,n=0;"
    "rows.forEach(function(r){var ok=(!s||r.dataset.status===s)&&"
    "(!q||r.dataset.text.indexOf(q)>=0);r.hidden=!ok;if(ok)n++;});"
    "shown.textContent=n+' of '+rows.length+' shown';}"
    "filter.addEventListener('input',apply);status.addEventListener('change',apply);"
    "var order={failed:0,skipped:1,passed:2},dir={};"
    "document.querySelectorAll('#tests-table th[data-key]').forEach(function(th){"
    "th.addEventListener('click',function(){var k=th.dataset.key;dir[k]=-(dir[k]||-1);"
    "var d=dir[k];rows.sort(function(a,b){var x,y;if(k==='duration'){x=+a.dataset.duration;"
    "y=+b.dataset.duration;}else if(k==='status'){x=order[a.dataset.status];"
    "y=order[b.dataset.status];}else{x=a.dataset.text;y=b.dataset.text;}"
    "return x<y?-d:x>y?d:0;});rows.forEach(function(r){tbody.appendChild(r);});});});"
    "var h=new URLSearchParams(location.hash.slice(1));"
    "if(h.has('q'))filter.value=h.get('q');if(h.has('status'))status.value=h.get('status');"
    "apply();"
    "var ns='http://www.w3.org/2000/svg',t=data.tests,t0=data.start,span=Math.max(1,data.end-t0);"
    "var lanes=[],lane=new Array(t.length),idx=t.map(function(_,i){return i;});"
    "idx.sort(function(a,b){return t[a][0]-t[b][0];});"
    "idx.forEach(function(i){var l=0;while(l<lanes.length&&lanes[l]>t[i][0])l++;"
    "lanes[l]=t[i][1];lane[i]=l;});"
    "var W=1000,bh=Math.max(1,Math.min(12,Math.floor(400/Math.max(1,lanes.length)))),"
    "H=lanes.length*bh,CH=60;"
    "var svg=document.createElementNS(ns,'svg');svg.setAttribute('viewBox','0 0 '+W+' '+(H+CH+10));"
    "svg.setAttribute('preserveAspectRatio','none');svg.style.height=(H+CH+10)+'px';"
    "var names=['passed','failed','skipped'];"
    "t.forEach(function(e,i){var r=document.createElementNS(ns,'rect');"
    "var x=(e[0]-t0)/span*W,w=Math.max(.5,(e[1]-e[0])/span*W);"
    "r.setAttribute('x',x);r.setAttribute('y',lane[i]*bh);r.setAttribute('width',w);"
    "r.setAttribute('height',Math.max(1,bh-1));r.setAttribute('class','bar '+names[e[2]]);"
    "var ti=document.createElementNS(ns,'title');ti.textContent=e[3]+' ('+(e[1]-e[0])+' ms)';"
    "r.appendChild(ti);svg.appendChild(r);});"
    "var ev=[];t.forEach(function(e){ev.push([e[0],1],[e[1],-1]);});"
    "ev.sort(function(a,b){return a[0]-b[0]||a[1]-b[1];});"
    "var c=0,max=1,pts=[];ev.forEach(function(e){c+=e[1];if(c>max)max=c;pts.push([e[0],c]);});"
    "var base=H+CH+5,prev=base,dpts=['0,'+base];pts.forEach(function(p){"
    "var x=((p[0]-t0)/span*W).toFixed(1),y=(base-p[1]/max*CH).toFixed(1);"
    "dpts.push(x+','+prev,x+','+y);prev=y;});"
    "var pl=document.createElementNS(ns,'polyline');pl.setAttribute('class','inflight');"
    "pl.setAttribute('points',dpts.join(' '));svg.appendChild(pl);"
    "document.getElementById('timeline-chart').appendChild(svg);"
    "document.getElementById('timeline-note').textContent=t.length+' invocations on '+"
    "lanes.length+' lanes; at most '+max+' in flight'+(data.concurrency?' (concurrency '+"
    "data.concurrency+')':'')+'; the line shows how many were in flight over time.';"
    "})();";

/* Failed first, then skipped, then passed; by start time within each. */
static int row_order(const void *a, const void *b)
{
	static const int rank[] = {2, 0, 1};
	const ht_report_test *x = *(const ht_report_test *const *)a,
	                     *y = *(const ht_report_test *const *)b;
	if (rank[x->status_code] != rank[y->status_code])
		return rank[x->status_code] - rank[y->status_code];
	return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

static void embed_data(ht_buf *b, const ht_report *r)
{
	json_t *doc = json_object(), *tests = json_array();
	char *text, *p;
	size_t i;

	json_object_set_new(doc, "runId", json_string(r->run_id));
	json_object_set_new(doc, "start", json_integer(r->start_ms));
	json_object_set_new(doc, "end", json_integer(r->end_ms));
	json_object_set_new(doc, "concurrency", json_integer(r->concurrency));
	for (i = 0; i < r->n; i++) {
		const ht_report_test *t = &r->tests[i];
		char *name = ht_xml_text(t->name, strlen(t->name));
		json_array_append_new(tests, json_pack("[IIis]", (json_int_t)t->start_ms,
		                                       (json_int_t)t->end_ms, t->status_code,
		                                       name ? name : ""));
		free(name);
	}
	json_object_set_new(doc, "tests", tests);
	text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(doc);
	ht_buf_puts(b, "<script type=\"application/json\" id=report-data>");
	for (p = text; p && *p; p++) {
		size_t n = strcspn(p, "<");
		ht_buf_append(b, p, n);
		p += n;
		if (!*p)
			break;
		ht_buf_puts(b, "\\u003c");
	}
	ht_buf_puts(b, "</script>");
	free(text);
}

/* The head, the title, the run's figures, the early stop and the cost. */
static void page_header(ht_buf *b, const ht_report *r)
{
	char date[32];

	ht_buf_puts(b, "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
	               "<meta name=viewport content=\"width=device-width\">"
	               "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; "
	               "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
	               "<title>hypertest run ");
	esc(b, r->run_id);
	ht_buf_printf(b, "</title><style>%s</style></head><body>\n<header><h1>hypertest run <code>",
	              style);
	esc(b, r->run_id);
	ht_buf_puts(b, "</code></h1><p class=meta>");
	ht_iso8601(r->start_ms, date);
	ht_buf_printf(b, "started %s, took ", date);
	duration(b, r->end_ms - r->start_ms);
	if (r->concurrency)
		ht_buf_printf(b, ", concurrency %ld", r->concurrency);
	ht_buf_printf(b,
	              "</p><ul class=counts><li class=total><b id=count-total>%zu</b> tests</li>"
	              "<li class=failed><b id=count-failed>%zu</b> failed</li>"
	              "<li class=passed><b id=count-passed>%zu</b> passed</li>"
	              "<li class=skipped><b id=count-skipped>%zu</b> skipped</li>",
	              r->n, r->counts[HYPERTEST_STATUS_FAILED], r->counts[HYPERTEST_STATUS_SUCCESS],
	              r->counts[HYPERTEST_STATUS_SKIPPED]);
	if (r->flaky >= 0)
		ht_buf_printf(b, "<li class=flaky><b id=count-flaky>%ld</b> flaky</li>", r->flaky);
	ht_buf_puts(b, "</ul></header>\n");
	if (r->stopped_message) {
		ht_buf_puts(b, "<p class=stopped id=stopped><b>Stopped early:</b> ");
		esc(b, r->stopped_message);
		ht_buf_puts(b, "; the tests not run are shown as skipped.</p>\n");
	}
	if (r->cost) {
		ht_buf_puts(b, "<p class=meta id=run-cost>Cost: ");
		cost_text(b, r->cost, 1);
		ht_buf_puts(b, "</p>\n");
	}
}

/* A failed test's article: its message, stack, attempts, logs and artifacts. */
static void failure_article(ht_buf *b, const ht_report *r, const ht_report_test *t)
{
	ht_buf_puts(b, "\n<article class=failure id=\"failure-");
	esc(b, t->id);
	ht_buf_puts(b, "\"><h3>");
	esc(b, t->name);
	ht_buf_puts(b, "</h3><p class=meta>");
	esc(b, t->file_path);
	ht_buf_puts(b, " \xC2\xB7 <code>");
	esc(b, t->id);
	ht_buf_puts(b, "</code> \xC2\xB7 ");
	duration(b, t->duration);
	ht_buf_puts(b, "</p><pre class=message>");
	esc(b, t->message ? t->message : "failed");
	ht_buf_puts(b, "</pre>");
	if (t->stack) {
		ht_buf_puts(b, "<pre class=stack>");
		esc(b, t->stack);
		ht_buf_puts(b, "</pre>");
	}
	attempts_list(b, t);
	log_tail(b, r, "stdout", t->out_tail, t->out_cut);
	log_tail(b, r, "stderr", t->err_tail, t->err_cut);
	artifact_links(b, r, t);
	ht_buf_puts(b, "</article>");
}

/* A row of the table of all tests. */
static void test_row(ht_buf *b, const ht_report *r, const ht_report_test *t)
{
	ht_buf_printf(b, "<tr class=%s data-status=%s data-duration=%lld><td>",
	              status_label[t->status_code], status_label[t->status_code],
	              (long long)t->duration);
	if (t->status_code == HYPERTEST_STATUS_FAILED) {
		ht_buf_puts(b, "<a href=\"#failure-");
		esc(b, t->id);
		ht_buf_puts(b, "\">");
		esc(b, t->name);
		ht_buf_puts(b, "</a>");
	} else {
		esc(b, t->name);
	}
	if (t->flaky)
		ht_buf_puts(b, " <span class=flaky-mark title=\"failed, then passed on a retry\">"
		               "flaky</span>");
	ht_buf_puts(b, "<br><small class=meta>");
	esc(b, t->file_path);
	ht_buf_puts(b, " \xC2\xB7 ");
	esc(b, t->id);
	ht_buf_puts(b, "</small>");
	if (t->status_code == HYPERTEST_STATUS_SKIPPED && t->message) {
		ht_buf_puts(b, "<br><small>");
		esc(b, t->message);
		ht_buf_puts(b, "</small>");
	}
	if (t->status_code != HYPERTEST_STATUS_FAILED)
		attempts_list(b, t);
	ht_buf_printf(b, "</td><td>%s</td><td>", status_label[t->status_code]);
	duration(b, t->duration);
	if (t->cost) {
		ht_buf_puts(b, "<br><small class=test-cost>");
		cost_text(b, t->cost, 0);
		ht_buf_puts(b, "</small>");
	}
	ht_buf_puts(b, "</td><td>");
	expected(b, t);
	ht_buf_puts(b, "</td><td>");
	folder_link(b, r, t);
	ht_buf_puts(b, "</td></tr>\n");
}

char *ht_report_html(const ht_report *r)
{
	ht_buf b = HT_BUF_INIT;
	const ht_report_test **rows = calloc(r->n ? r->n : 1, sizeof *rows);
	size_t i;

	if (!rows)
		return NULL;
	for (i = 0; i < r->n; i++)
		rows[i] = &r->tests[i];
	qsort(rows, r->n, sizeof *rows, row_order);

	page_header(&b, r);
	ht_buf_printf(&b, "<section id=failures><h2>Failures (%zu)</h2>",
	              r->counts[HYPERTEST_STATUS_FAILED]);
	for (i = 0; i < r->n && rows[i]->status_code == HYPERTEST_STATUS_FAILED; i++)
		failure_article(&b, r, rows[i]);
	if (!r->counts[HYPERTEST_STATUS_FAILED])
		ht_buf_puts(&b, "<p>No test failed.</p>");
	ht_buf_puts(&b, "</section>\n<section id=timeline><h2>Timeline</h2><p class=meta "
	                "id=timeline-note>(needs JavaScript)</p><div id=timeline-chart></div>"
	                "</section>\n");
	ht_buf_puts(&b, "<section id=tests><h2>All tests</h2><div class=controls>"
	                "<input id=filter type=search placeholder=\"Filter by name, file or id\" "
	                "size=40><select id=status><option value=\"\">all statuses</option>"
	                "<option value=failed>failed</option><option value=passed>passed</option>"
	                "<option value=skipped>skipped</option></select><span id=shown></span>"
	                "</div><table id=tests-table><thead><tr><th data-key=name>Name</th>"
	                "<th data-key=status>Status</th><th data-key=duration>Duration</th>"
	                "<th>History</th><th>Artifacts</th></tr></thead><tbody>\n");
	for (i = 0; i < r->n; i++)
		test_row(&b, r, rows[i]);
	ht_buf_puts(&b, "</tbody></table></section>\n");
	if (r->s3)
		ht_buf_puts(&b, "<p class=meta>The artifacts are in S3: copy one with the "
		                "<code>aws s3 cp</code> command shown beside it, with credentials that "
		                "can read the bucket.</p>");
	embed_data(&b, r);
	ht_buf_printf(&b, "<script>%s</script></body></html>\n", script);
	free(rows);
	if (b.len == 0 || !b.data) {
		ht_buf_free(&b);
		return NULL;
	}
	return ht_buf_steal(&b);
}
