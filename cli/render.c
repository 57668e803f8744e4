/*
 * render.c - shows the library's events and log lines.  Three modes: a live
 * display redrawn in place on a terminal (deploy steps with spinners, invoke
 * counters, failures listed as they end), one plain line per event
 * otherwise (or with --quiet, or TERM=dumb), and one JSON line per event with
 * --json.  Progress goes to stderr; doctor checks go to stdout.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum render_mode { MODE_PLAIN, MODE_LIVE, MODE_JSON };
enum step_state { STEP_PENDING, STEP_RUNNING, STEP_DONE, STEP_FAILED };

#define REDRAW_INTERVAL_MS 100

#define GREEN "\033[32m"
#define RED "\033[31m"
#define YELLOW "\033[33m"
#define CYAN "\033[36m"
#define DIM "\033[2m"
#define BOLD "\033[1m"
#define RESET "\033[0m"

#define ICON_OK "\xe2\x9c\x94"      /* ✔ */
#define ICON_FAIL "\xe2\x9c\x96"    /* ✖ */
#define ICON_PENDING "\xe2\x97\x8c" /* ◌ */
#define ICON_SKIP "\xe2\x86\xb7"    /* ↷ */
#define ICON_RUNNING "\xe2\xa7\x97" /* ⧗ */

static const char *const spinner[] = {
    "\xe2\xa0\x8b", "\xe2\xa0\x99", "\xe2\xa0\xb9", "\xe2\xa0\xb8", "\xe2\xa0\xbc",
    "\xe2\xa0\xb4", "\xe2\xa0\xa6", "\xe2\xa0\xa7", "\xe2\xa0\x87", "\xe2\xa0\x8f"};
#define NSPIN (sizeof spinner / sizeof spinner[0])

/* The steps of a deploy, shown pending before they start. */
static const char *const deploy_steps[] = {"pull", "build", "push", "manifest", "update"};

struct step {
	char *name;
	int state;
	int64_t t0;  /* when it started (monotonic ms) */
	int64_t dur; /* ms, once ended */
	char *msg;
};

#define RING 256 /* finished tests kept for the display (no screen is taller) */
#define STACK_LINES 5 /* lines of a failure's stack in the final block */

struct fin {
	char *label; /* "name (file)" */
	char id[40];
	int status;
	int64_t dur;
	char *msg, *stack; /* failures only */
};

struct inflight {
	char id[40];
	char *name; /* from the context, or NULL */
};

struct render {
	int cmd, mode, quiet, verbose;
	int log_max;      /* log lines above this level are dropped */
	int color_err, color_out;
	FILE *json_out;

	struct step *steps;
	size_t nsteps;

	int run_started, run_ended, summary_shown;
	int64_t total, concurrency, passed, failed, skipped, started, ended, done;
	int64_t in_flight; /* the last event's count (a retry starts a test again), or -1 */
	int64_t run_t0;

	int doctor[3]; /* per enum hypertest_check_status */

	/* live display of a run: the finished tests (the last RING of them, and
	 * every failure), the tests in flight */
	char *run_id;
	struct fin *ring;  /* RING entries, a circular buffer */
	size_t ring_head, ring_n;
	struct fin *fails;
	size_t nfails, cap_fails;
	struct inflight *running;
	size_t nrunning, cap_running;
	int64_t t_start;   /* when the command started (monotonic ms) */

	/* live display */
	int region_lines;  /* lines of the display below the permanent output */
	int finishing;     /* the last draw: no cancel notice */
	int64_t last_draw; /* monotonic ms, 0 before the first draw */
	unsigned spin;
	struct cli_buf perm; /* permanent lines waiting for the next draw */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_str(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- small formatting helpers ------------------------------------------- */

static void color_on(struct cli_buf *b, int color, const char *code)
{
	if (color)
		cli_buf_puts(b, code);
}

static void color_off(struct cli_buf *b, int color)
{
	if (color)
		cli_buf_puts(b, RESET);
}

static void colored(struct cli_buf *b, int color, const char *code, const char *text)
{
	color_on(b, color, code);
	cli_buf_puts(b, text);
	color_off(b, color);
}

static void add_secs(struct cli_buf *b, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	cli_buf_printf(b, "%lld.%llds", (long long)(ms / 1000), (long long)(ms % 1000 / 100));
}

/* n bytes of text that came from tests, plugins or servers, made safe for a
 * terminal: escape sequences (colored test output) dropped, other control
 * characters shown as spaces; newlines kept if keep_newlines. */
static void add_clean(struct cli_buf *b, const char *s, size_t n, int keep_newlines)
{
	const char *end = s + n;

	while (s < end) {
		unsigned char c = (unsigned char)*s;
		if (c == '\033') {
			s++;
			if (s < end && *s == '[') {
				for (s++; s < end && !(*s >= 0x40 && *s <= 0x7e); s++)
					;
				if (s < end)
					s++;
			}
			continue;
		}
		if ((c < 0x20 && !(c == '\n' && keep_newlines)) || c == 0x7f)
			cli_buf_add(b, " ", 1);
		else
			cli_buf_add(b, s, 1);
		s++;
	}
}

static void add_text(struct cli_buf *b, const char *s)
{
	if (s)
		add_clean(b, s, strlen(s), 0);
}

/* The first line of s (up to 200 bytes, not cutting a UTF-8 sequence). */
static void add_first_line(struct cli_buf *b, const char *s)
{
	size_t n;

	if (!s)
		return;
	while (*s == '\n' || *s == '\r')
		s++;
	n = strcspn(s, "\r\n");
	if (n > 200) {
		n = 200;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		add_clean(b, s, n, 0);
		cli_buf_puts(b, "...");
		return;
	}
	add_clean(b, s, n, 0);
}

/* The whole of s, each line indented by four spaces, ending with a newline. */
static void add_indented(struct cli_buf *b, const char *s)
{
	while (s && *s) {
		size_t n = strcspn(s, "\n");
		cli_buf_puts(b, "    ");
		add_clean(b, s, n, 0);
		cli_buf_puts(b, "\n");
		s += n;
		if (*s == '\n')
			s++;
	}
}

static const char *ev_str(const hypertest_event *ev, int field)
{
	const char *s = hypertest_event_str(ev, field);
	return s ? s : "";
}

static const char *status_word(int64_t status)
{
	switch (status) {
	case HYPERTEST_STATUS_SUCCESS: return "passed";
	case HYPERTEST_STATUS_FAILED: return "failed";
	case HYPERTEST_STATUS_SKIPPED: return "skipped";
	default: return "ended";
	}
}

static const char *status_color(int64_t status)
{
	switch (status) {
	case HYPERTEST_STATUS_SUCCESS: return GREEN;
	case HYPERTEST_STATUS_FAILED: return RED;
	default: return YELLOW;
	}
}

/* "name (file)" of a test, the test id when the name is missing. */
static void add_test_label(struct cli_buf *b, const hypertest_event *ev)
{
	const char *name = hypertest_event_str(ev, HYPERTEST_FIELD_NAME);
	const char *file = hypertest_event_str(ev, HYPERTEST_FIELD_FILE_PATH);

	if (!name || !*name || strcmp(name, "unknown") == 0) {
		/* the function reported none: the id at least tells them apart */
		cli_buf_puts(b, "test ");
		name = ev_str(ev, HYPERTEST_FIELD_TEST_ID);
	}
	add_text(b, name);
	if (file && *file && strcmp(file, name) != 0 && strcmp(file, "unknown") != 0) {
		cli_buf_puts(b, " (");
		add_text(b, file);
		cli_buf_puts(b, ")");
	}
}

/* "warning: LABEL: artifact x: not stored: why", a line for each of what
 * the function could not do for the test. */
static void add_test_warnings(struct render *r, struct cli_buf *b, const hypertest_event *ev)
{
	const char *w = hypertest_event_str(ev, HYPERTEST_FIELD_WARNINGS), *nl;

	for (; w && *w; w = nl ? nl + 1 : NULL) {
		nl = strchr(w, '\n');
		colored(b, r->color_err, YELLOW, "warning: ");
		add_test_label(b, ev);
		cli_buf_puts(b, ": ");
		add_clean(b, w, nl ? (size_t)(nl - w) : strlen(w), 0);
		cli_buf_puts(b, "\n");
	}
}

static void add_log_line(struct render *r, struct cli_buf *b, int level, const char *msg)
{
	switch (level) {
	case HYPERTEST_LOG_ERROR: colored(b, r->color_err, RED, "error: "); break;
	case HYPERTEST_LOG_WARNING: colored(b, r->color_err, YELLOW, "warning: "); break;
	case HYPERTEST_LOG_DEBUG: colored(b, r->color_err, DIM, "debug: "); break;
	default: break;
	}
	add_clean(b, msg, strlen(msg), 1);
	cli_buf_puts(b, "\n");
}

static void add_doctor_line(struct render *r, struct cli_buf *b, const hypertest_event *ev)
{
	int64_t st = hypertest_event_int(ev, HYPERTEST_FIELD_STATUS);
	const char *plugin = ev_str(ev, HYPERTEST_FIELD_PLUGIN);
	const char *msg = ev_str(ev, HYPERTEST_FIELD_MESSAGE);

	if (st == HYPERTEST_CHECK_OK)
		colored(b, r->color_out, GREEN, ICON_OK);
	else if (st == HYPERTEST_CHECK_WARNING)
		colored(b, r->color_out, YELLOW, "!");
	else
		colored(b, r->color_out, RED, ICON_FAIL);
	cli_buf_puts(b, " ");
	add_text(b, ev_str(ev, HYPERTEST_FIELD_CHECK));
	if (*plugin) {
		cli_buf_puts(b, " (");
		add_text(b, plugin);
		cli_buf_puts(b, ")");
	}
	if (*msg) {
		cli_buf_puts(b, " - ");
		add_clean(b, msg, strlen(msg), 1);
	}
	cli_buf_puts(b, "\n");
}

/* "run done: 34 tests, 30 passed, 3 failed, 1 skipped in 47.3s" */
static void add_counts(struct cli_buf *b, int64_t total, int64_t passed, int64_t failed,
                       int64_t skipped, int64_t ms)
{
	cli_buf_printf(b, "%lld tests, %lld passed, %lld failed, %lld skipped in ", (long long)total,
	               (long long)passed, (long long)failed, (long long)skipped);
	add_secs(b, ms);
}

/* "report: PATH", where the bucket's copy is, where the artifacts are. */
static void add_report_lines(struct cli_buf *b, const hypertest_event *ev)
{
	const char *step = ev_str(ev, HYPERTEST_FIELD_STEP), *s;

	if (!strcmp(step, "junit")) {
		cli_buf_puts(b, "junit: ");
		add_text(b, ev_str(ev, HYPERTEST_FIELD_PATH));
		cli_buf_puts(b, "\n");
		return;
	}
	cli_buf_puts(b, "report: ");
	add_text(b, ev_str(ev, HYPERTEST_FIELD_PATH));
	s = ev_str(ev, HYPERTEST_FIELD_URL);
	if (*s) {
		cli_buf_puts(b, " (stored at ");
		add_text(b, s);
		cli_buf_puts(b, ")");
	}
	cli_buf_puts(b, "\n");
	s = ev_str(ev, HYPERTEST_FIELD_ARTIFACTS);
	if (*s) {
		cli_buf_puts(b, "artifacts: ");
		add_text(b, s);
		cli_buf_puts(b, "\n");
	}
}

/* ---- state shared by the plain and live modes -------------------------------- */

static struct step *find_step(struct render *r, const char *name)
{
	struct step *s;
	size_t i;

	for (i = 0; i < r->nsteps; i++)
		if (strcmp(r->steps[i].name, name) == 0)
			return &r->steps[i];
	s = realloc(r->steps, (r->nsteps + 1) * sizeof *s);
	if (!s)
		return NULL;
	r->steps = s;
	s = &r->steps[r->nsteps];
	memset(s, 0, sizeof *s);
	s->name = strdup(name);
	if (!s->name)
		return NULL;
	r->nsteps++;
	return s;
}

static void track(struct render *r, const hypertest_event *ev)
{
	int type = hypertest_event_type(ev);
	struct step *s;
	int64_t v;

	switch (type) {
	case HYPERTEST_EVENT_RUN_START:
		r->run_started = 1;
		r->run_t0 = now_ms();
		r->total = hypertest_event_int(ev, HYPERTEST_FIELD_TOTAL);
		r->concurrency = hypertest_event_int(ev, HYPERTEST_FIELD_CONCURRENCY);
		break;
	case HYPERTEST_EVENT_TEST_START:
		r->started++;
		r->in_flight = hypertest_event_int(ev, HYPERTEST_FIELD_IN_FLIGHT);
		break;
	case HYPERTEST_EVENT_TEST_END:
		r->ended++;
		r->in_flight = hypertest_event_int(ev, HYPERTEST_FIELD_IN_FLIGHT);
		switch (hypertest_event_int(ev, HYPERTEST_FIELD_STATUS)) {
		case HYPERTEST_STATUS_SUCCESS: r->passed++; break;
		case HYPERTEST_STATUS_FAILED: r->failed++; break;
		case HYPERTEST_STATUS_SKIPPED: r->skipped++; break;
		default: break;
		}
		v = hypertest_event_int(ev, HYPERTEST_FIELD_DONE);
		r->done = v >= 0 ? v : r->ended;
		v = hypertest_event_int(ev, HYPERTEST_FIELD_TOTAL);
		if (v >= 0)
			r->total = v;
		break;
	case HYPERTEST_EVENT_RUN_END:
		r->run_ended = 1;
		break;
	case HYPERTEST_EVENT_STEP_START:
	case HYPERTEST_EVENT_STEP_END:
	case HYPERTEST_EVENT_STEP_ERROR:
		s = find_step(r, ev_str(ev, HYPERTEST_FIELD_STEP));
		if (!s)
			break;
		if (type == HYPERTEST_EVENT_STEP_START) {
			s->state = STEP_RUNNING;
			s->t0 = now_ms();
			break;
		}
		s->state = type == HYPERTEST_EVENT_STEP_END ? STEP_DONE : STEP_FAILED;
		v = hypertest_event_int(ev, HYPERTEST_FIELD_DURATION);
		s->dur = v >= 0 ? v : (s->t0 ? now_ms() - s->t0 : 0);
		free(s->msg);
		s->msg = dup_str(hypertest_event_str(ev, HYPERTEST_FIELD_MESSAGE));
		break;
	case HYPERTEST_EVENT_DOCTOR_CHECK:
		v = hypertest_event_int(ev, HYPERTEST_FIELD_STATUS);
		if (v >= 0 && v <= 2)
			r->doctor[v]++;
		break;
	default:
		break;
	}
}

/* ---- plain mode: one line per event ------------------------------------------- */

static void plain_event(struct render *r, const hypertest_event *ev)
{
	struct cli_buf b = {0};
	int type = hypertest_event_type(ev);
	int64_t st;
	const char *s;

	switch (type) {
	case HYPERTEST_EVENT_RUN_START:
		cli_buf_printf(&b, "run %s started: %lld tests, %lld at a time\n",
		               ev_str(ev, HYPERTEST_FIELD_RUN_ID), (long long)r->total,
		               (long long)r->concurrency);
		break;
	case HYPERTEST_EVENT_TEST_START:
		if (r->quiet)
			break;
		cli_buf_printf(&b, "test started #%lld ",
		               (long long)hypertest_event_int(ev, HYPERTEST_FIELD_INDEX));
		s = hypertest_event_str(ev, HYPERTEST_FIELD_NAME);
		if (s && *s) {
			add_text(&b, s);
			cli_buf_puts(&b, " ");
		}
		cli_buf_printf(&b, "[%s]\n", ev_str(ev, HYPERTEST_FIELD_TEST_ID));
		break;
	case HYPERTEST_EVENT_TEST_END:
		st = hypertest_event_int(ev, HYPERTEST_FIELD_STATUS);
		cli_buf_puts(&b, "test ");
		colored(&b, r->color_err, status_color(st), status_word(st));
		cli_buf_puts(&b, " ");
		add_test_label(&b, ev);
		cli_buf_printf(&b, " [%s] %lldms", ev_str(ev, HYPERTEST_FIELD_TEST_ID),
		               (long long)hypertest_event_int(ev, HYPERTEST_FIELD_DURATION));
		s = hypertest_event_str(ev, HYPERTEST_FIELD_MESSAGE);
		if (st == HYPERTEST_STATUS_SKIPPED && s && *s) {
			cli_buf_puts(&b, ": ");
			add_first_line(&b, s);
		}
		cli_buf_puts(&b, "\n");
		if (st == HYPERTEST_STATUS_FAILED)
			add_indented(&b, s && *s ? s : "failed");
		add_test_warnings(r, &b, ev);
		break;
	case HYPERTEST_EVENT_RUN_END:
		cli_buf_puts(&b, "run done: ");
		add_counts(&b, hypertest_event_int(ev, HYPERTEST_FIELD_TOTAL),
		           hypertest_event_int(ev, HYPERTEST_FIELD_PASSED),
		           hypertest_event_int(ev, HYPERTEST_FIELD_FAILED),
		           hypertest_event_int(ev, HYPERTEST_FIELD_SKIPPED),
		           hypertest_event_int(ev, HYPERTEST_FIELD_DURATION));
		s = ev_str(ev, HYPERTEST_FIELD_PATH);
		cli_buf_printf(&b, "; results: %s", *s ? s : "not written to a file");
		s = ev_str(ev, HYPERTEST_FIELD_URL);
		if (*s)
			cli_buf_printf(&b, " and %s", s);
		cli_buf_puts(&b, "\n");
		r->summary_shown = 1;
		break;
	case HYPERTEST_EVENT_REPORT:
		add_report_lines(&b, ev);
		break;
	case HYPERTEST_EVENT_STEP_START:
		cli_buf_printf(&b, "step %s started\n", ev_str(ev, HYPERTEST_FIELD_STEP));
		break;
	case HYPERTEST_EVENT_STEP_END:
	case HYPERTEST_EVENT_STEP_ERROR:
		cli_buf_printf(&b, "step %s ", ev_str(ev, HYPERTEST_FIELD_STEP));
		if (type == HYPERTEST_EVENT_STEP_END)
			colored(&b, r->color_err, GREEN, "done");
		else
			colored(&b, r->color_err, RED, "failed");
		cli_buf_puts(&b, " ");
		add_secs(&b, hypertest_event_int(ev, HYPERTEST_FIELD_DURATION));
		s = ev_str(ev, HYPERTEST_FIELD_MESSAGE);
		if (*s) {
			cli_buf_puts(&b, type == HYPERTEST_EVENT_STEP_END ? " - " : ": ");
			add_first_line(&b, s);
		}
		cli_buf_puts(&b, "\n");
		break;
	case HYPERTEST_EVENT_DOCTOR_CHECK:
		add_doctor_line(r, &b, ev);
		fputs(cli_buf_str(&b), stdout);
		fflush(stdout);
		cli_buf_free(&b);
		return;
	default:
		if (r->verbose && type != HYPERTEST_EVENT_LOG)
			cli_buf_printf(&b, "event %s\n", hypertest_event_json(ev));
		break;
	}
	/* the lines of a run are its output: stdout, like the TypeScript version's */
	if (r->cmd == CLI_CMD_INVOKE || r->cmd == CLI_CMD_REPORT) {
		fflush(stderr);
		fputs(cli_buf_str(&b), stdout);
		fflush(stdout);
	} else {
		fputs(cli_buf_str(&b), stderr);
		fflush(stderr);
	}
	cli_buf_free(&b);
}

/* ---- live mode: a display redrawn in place -------------------------------------- */

static int term_width(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Append line (ANSI sequences included) cut to width columns, counting one
 * column per character, so that it never wraps. */
static void add_fitted(struct render *r, struct cli_buf *b, const char *line, int width)
{
	const unsigned char *p = (const unsigned char *)line;
	int cols = 0, cut = 0;

	while (*p) {
		if (*p == '\033' && p[1] == '[') {
			const unsigned char *q = p + 2;
			while (*q && !(*q >= 0x40 && *q <= 0x7e))
				q++;
			if (*q)
				q++;
			cli_buf_add(b, (const char *)p, (size_t)(q - p));
			p = q;
			continue;
		}
		if ((*p & 0xc0) != 0x80 && cols++ == width - 1) {
			cut = 1; /* one column is kept free: no wrap on any terminal */
			break;
		}
		cli_buf_add(b, (const char *)p, 1);
		p++;
	}
	if (cut)
		color_off(b, r->color_err);
	cli_buf_puts(b, "\n");
}

static void add_step_row(struct render *r, struct cli_buf *line, const struct step *s,
                         int namew, int64_t now)
{
	switch (s->state) {
	case STEP_PENDING: colored(line, r->color_err, DIM, ICON_PENDING); break;
	case STEP_RUNNING: colored(line, r->color_err, CYAN, spinner[r->spin % NSPIN]); break;
	case STEP_DONE: colored(line, r->color_err, GREEN, ICON_OK); break;
	default: colored(line, r->color_err, RED, ICON_FAIL); break;
	}
	cli_buf_printf(line, " %-*s", namew, s->name);
	if (s->state == STEP_RUNNING || s->state == STEP_DONE || s->state == STEP_FAILED) {
		cli_buf_puts(line, "  ");
		add_secs(line, s->state == STEP_RUNNING ? now - s->t0 : s->dur);
	}
	if (s->msg && *s->msg && s->state != STEP_RUNNING) {
		cli_buf_puts(line, "  ");
		color_on(line, r->color_err && s->state == STEP_DONE, DIM);
		add_first_line(line, s->msg);
		color_off(line, r->color_err && s->state == STEP_DONE);
	}
}

static void add_counts_row(struct render *r, struct cli_buf *line, int64_t now)
{
	int64_t running = r->in_flight >= 0 ? r->in_flight : r->started - r->ended;

	if (running < 0)
		running = 0;
	colored(line, r->color_err, GREEN, ICON_OK);
	cli_buf_printf(line, " %lld passed  ", (long long)r->passed);
	colored(line, r->color_err, RED, ICON_FAIL);
	cli_buf_printf(line, " %lld failed  ", (long long)r->failed);
	colored(line, r->color_err, YELLOW, ICON_SKIP);
	cli_buf_printf(line, " %lld skipped  ", (long long)r->skipped);
	colored(line, r->color_err, CYAN, ICON_RUNNING);
	cli_buf_printf(line, " %lld running  %lld/%lld  ", (long long)running, (long long)r->done,
	               (long long)(r->total >= 0 ? r->total : 0));
	add_secs(line, now - r->run_t0);
}

static int term_height(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

static void fin_free(struct fin *f)
{
	free(f->label);
	free(f->msg);
	free(f->stack);
	memset(f, 0, sizeof *f);
}

/* What the display keeps of a test that ended: O(1) per test, and the
 * tests in flight (removal is O(in flight)). */
static void live_track(struct render *r, const hypertest_event *ev)
{
	int type = hypertest_event_type(ev);
	const char *id = ev_str(ev, HYPERTEST_FIELD_TEST_ID);
	size_t i;

	if (type == HYPERTEST_EVENT_RUN_START) {
		free(r->run_id);
		r->run_id = dup_str(ev_str(ev, HYPERTEST_FIELD_RUN_ID));
	} else if (type == HYPERTEST_EVENT_TEST_START) {
		if (r->nrunning == r->cap_running) {
			size_t cap = r->cap_running ? r->cap_running * 2 : 64;
			struct inflight *g = realloc(r->running, cap * sizeof *g);
			if (!g)
				return;
			r->running = g;
			r->cap_running = cap;
		}
		snprintf(r->running[r->nrunning].id, sizeof r->running[0].id, "%s", id);
		r->running[r->nrunning++].name = dup_str(hypertest_event_str(ev, HYPERTEST_FIELD_NAME));
	} else if (type == HYPERTEST_EVENT_TEST_END) {
		struct cli_buf label = {0};
		struct fin *f;
		int st = (int)hypertest_event_int(ev, HYPERTEST_FIELD_STATUS);
		for (i = r->nrunning; i-- > 0;)
			if (strcmp(r->running[i].id, id) == 0) {
				free(r->running[i].name);
				r->running[i] = r->running[--r->nrunning];
				break;
			}
		add_test_label(&label, ev);
		if (r->ring_n < RING) {
			f = &r->ring[(r->ring_head + r->ring_n++) % RING];
		} else {
			f = &r->ring[r->ring_head];
			r->ring_head = (r->ring_head + 1) % RING;
			fin_free(f);
		}
		f->label = dup_str(cli_buf_str(&label));
		snprintf(f->id, sizeof f->id, "%s", id);
		f->status = st;
		f->dur = hypertest_event_int(ev, HYPERTEST_FIELD_DURATION);
		if (st == HYPERTEST_STATUS_FAILED) {
			if (r->nfails == r->cap_fails) {
				size_t cap = r->cap_fails ? r->cap_fails * 2 : 16;
				struct fin *g = realloc(r->fails, cap * sizeof *g);
				if (!g) {
					cli_buf_free(&label);
					return;
				}
				r->fails = g;
				r->cap_fails = cap;
			}
			f = &r->fails[r->nfails++];
			memset(f, 0, sizeof *f);
			f->label = dup_str(cli_buf_str(&label));
			snprintf(f->id, sizeof f->id, "%s", id);
			f->status = st;
			f->dur = hypertest_event_int(ev, HYPERTEST_FIELD_DURATION);
			f->msg = dup_str(hypertest_event_str(ev, HYPERTEST_FIELD_MESSAGE));
			f->stack = dup_str(hypertest_event_str(ev, HYPERTEST_FIELD_STACK_TRACE));
		}
		cli_buf_free(&label);
	}
}

static void add_fin_row(struct render *r, struct cli_buf *line, const struct fin *f)
{
	switch (f->status) {
	case HYPERTEST_STATUS_SUCCESS: colored(line, r->color_err, GREEN, ICON_OK); break;
	case HYPERTEST_STATUS_FAILED: colored(line, r->color_err, RED, ICON_FAIL); break;
	default: colored(line, r->color_err, YELLOW, ICON_SKIP); break;
	}
	cli_buf_printf(line, " %s  ", f->label ? f->label : "");
	add_secs(line, f->dur);
}

/* The run's part of the display, at most max_lines lines: a header, the
 * finished tests (all of them while they fit, else the failures and the
 * last few), the tests running now and how many are queued. */
static int add_run_rows(struct render *r, struct cli_buf *out, int width, int max_lines)
{
	struct cli_buf line = {0};
	int lines = 0, budget, nf, nr, i;
	int64_t queued = r->total - r->started;

	if (max_lines < 3)
		return 0;
	color_on(&line, r->color_err, BOLD);
	cli_buf_printf(&line, "Run %s", r->run_id ? r->run_id : "");
	color_off(&line, r->color_err);
	cli_buf_printf(&line, "  %lld tests, concurrency %lld", (long long)r->total,
	               (long long)r->concurrency);
	add_fitted(r, out, cli_buf_str(&line), width);
	cli_buf_free(&line);
	lines++;
	budget = max_lines - 2; /* the header, the running line */
	if ((size_t)budget >= r->ring_n && r->ring_n == (size_t)r->ended) {
		nf = 0;
		nr = (int)r->ring_n;
	} else {
		/* failures (the last ones), a line for what is left out, the last few */
		nf = (int)r->nfails < budget / 2 ? (int)r->nfails : budget / 2;
		nr = budget - nf - 1;
		if (nr < 0)
			nr = 0;
		if ((size_t)nr > r->ring_n)
			nr = (int)r->ring_n;
	}
	for (i = (int)r->nfails - nf; i < (int)r->nfails; i++) {
		add_fin_row(r, &line, &r->fails[i]);
		add_fitted(r, out, cli_buf_str(&line), width);
		cli_buf_free(&line);
		lines++;
	}
	if (nf || (size_t)nr < (size_t)r->ended) {
		color_on(&line, r->color_err, DIM);
		cli_buf_printf(&line, "  ... %lld more finished (%zu failed in all)",
		               (long long)(r->ended - nr - nf), r->nfails);
		color_off(&line, r->color_err);
		add_fitted(r, out, cli_buf_str(&line), width);
		cli_buf_free(&line);
		lines++;
	}
	for (i = 0; i < nr; i++) {
		const struct fin *f = &r->ring[(r->ring_head + r->ring_n - (size_t)nr + (size_t)i) % RING];
		add_fin_row(r, &line, f);
		add_fitted(r, out, cli_buf_str(&line), width);
		cli_buf_free(&line);
		lines++;
	}
	colored(&line, r->color_err, CYAN, spinner[r->spin % NSPIN]);
	cli_buf_printf(&line, " running %zu", r->nrunning);
	for (i = 0; i < (int)r->nrunning && i < 4; i++)
		cli_buf_printf(&line, "%s%s", i ? ", " : ": ",
		               r->running[i].name ? r->running[i].name : r->running[i].id);
	if (r->nrunning > 4)
		cli_buf_printf(&line, ", +%zu", r->nrunning - 4);
	cli_buf_printf(&line, "  queued %lld", (long long)(queued > 0 ? queued : 0));
	add_fitted(r, out, cli_buf_str(&line), width);
	cli_buf_free(&line);
	lines++;
	return lines;
}

/* The final block of a run: every failure with its whole message and the
 * first lines of its stack. */
static void add_failures_block(struct render *r, struct cli_buf *b)
{
	size_t i;
	if (!r->nfails)
		return;
	cli_buf_puts(b, "\n");
	color_on(b, r->color_err, BOLD);
	cli_buf_printf(b, "Failures (%zu):", r->nfails);
	color_off(b, r->color_err);
	cli_buf_puts(b, "\n");
	for (i = 0; i < r->nfails; i++) {
		const struct fin *f = &r->fails[i];
		colored(b, r->color_err, RED, ICON_FAIL);
		cli_buf_printf(b, " %s [%s]  ", f->label ? f->label : "", f->id);
		add_secs(b, f->dur);
		cli_buf_puts(b, "\n");
		add_indented(b, f->msg && *f->msg ? f->msg : "failed");
		if (f->stack && *f->stack) {
			const char *p = f->stack;
			int k;
			for (k = 0; k < STACK_LINES && *p; k++) {
				size_t n = strcspn(p, "\n");
				color_on(b, r->color_err, DIM);
				cli_buf_puts(b, "      ");
				add_clean(b, p, n, 0);
				color_off(b, r->color_err);
				cli_buf_puts(b, "\n");
				p += n;
				if (*p == '\n')
					p++;
			}
			if (*p)
				cli_buf_puts(b, "      ...\n");
		}
	}
	cli_buf_puts(b, "\n");
}

/* Move up over the display, print the permanent lines, draw it again. */
static void live_draw(struct render *r)
{
	struct cli_buf out = {0}, line = {0};
	int64_t now = now_ms();
	int width = term_width(), namew = 0, lines = 0;
	size_t i;

	if (r->region_lines > 0)
		cli_buf_printf(&out, "\r\033[%dA", r->region_lines);
	cli_buf_puts(&out, "\r\033[J");
	cli_buf_puts(&out, cli_buf_str(&r->perm));
	cli_buf_free(&r->perm);

	for (i = 0; i < r->nsteps; i++)
		if ((int)strlen(r->steps[i].name) > namew)
			namew = (int)strlen(r->steps[i].name);
	for (i = 0; i < r->nsteps; i++) {
		add_step_row(r, &line, &r->steps[i], namew, now);
		add_fitted(r, &out, cli_buf_str(&line), width);
		cli_buf_free(&line);
		lines++;
	}
	if (r->run_started && !r->run_ended) {
		int room = term_height() - 1 - lines - 1 - (cli_cancel_requested ? 1 : 0);
		lines += add_run_rows(r, &out, width, room);
		add_counts_row(r, &line, now);
		add_fitted(r, &out, cli_buf_str(&line), width);
		cli_buf_free(&line);
		lines++;
	}
	if (cli_cancel_requested && !r->finishing) {
		color_on(&line, r->color_err, YELLOW);
		cli_buf_puts(&line, "Cancelling: waiting for the work in flight"
		                    " (Ctrl-C again to stop at once)");
		color_off(&line, r->color_err);
		add_fitted(r, &out, cli_buf_str(&line), width);
		cli_buf_free(&line);
		lines++;
	}
	fputs(cli_buf_str(&out), stderr);
	fflush(stderr);
	cli_buf_free(&out);
	r->region_lines = lines;
	r->last_draw = now;
	r->spin++;
}

static void live_event(struct render *r, const hypertest_event *ev)
{
	int type = hypertest_event_type(ev);
	int force = 0;
	const char *s;

	switch (type) {
	case HYPERTEST_EVENT_RUN_START:
		live_track(r, ev);
		force = 1;
		break;
	case HYPERTEST_EVENT_TEST_START:
		live_track(r, ev);
		break;
	case HYPERTEST_EVENT_TEST_END:
		live_track(r, ev);
		if (hypertest_event_str(ev, HYPERTEST_FIELD_WARNINGS))
			add_test_warnings(r, &r->perm, ev);
		break;
	case HYPERTEST_EVENT_REPORT:
		add_report_lines(&r->perm, ev);
		force = 1;
		break;
	case HYPERTEST_EVENT_RUN_END:
		color_on(&r->perm, r->color_err, BOLD);
		cli_buf_printf(&r->perm, "Run %s", ev_str(ev, HYPERTEST_FIELD_RUN_ID));
		color_off(&r->perm, r->color_err);
		cli_buf_puts(&r->perm, "\n");
		add_failures_block(r, &r->perm);
		add_counts(&r->perm, hypertest_event_int(ev, HYPERTEST_FIELD_TOTAL),
		           hypertest_event_int(ev, HYPERTEST_FIELD_PASSED),
		           hypertest_event_int(ev, HYPERTEST_FIELD_FAILED),
		           hypertest_event_int(ev, HYPERTEST_FIELD_SKIPPED),
		           hypertest_event_int(ev, HYPERTEST_FIELD_DURATION));
		cli_buf_puts(&r->perm, "\n");
		s = ev_str(ev, HYPERTEST_FIELD_PATH);
		if (*s)
			cli_buf_printf(&r->perm, "Results: %s\n", s);
		s = ev_str(ev, HYPERTEST_FIELD_URL);
		if (*s)
			cli_buf_printf(&r->perm, "Results stored at %s\n", s);
		r->summary_shown = 1;
		force = 1;
		break;
	case HYPERTEST_EVENT_STEP_START:
	case HYPERTEST_EVENT_STEP_END:
	case HYPERTEST_EVENT_STEP_ERROR:
		force = 1;
		break;
	case HYPERTEST_EVENT_DOCTOR_CHECK: {
		/* stdout may share the terminal: take the display away meanwhile */
		struct cli_buf b = {0};
		add_doctor_line(r, &b, ev);
		if (r->region_lines > 0) {
			fprintf(stderr, "\r\033[%dA\r\033[J", r->region_lines);
			fflush(stderr);
			r->region_lines = 0;
		}
		fputs(cli_buf_str(&b), stdout);
		fflush(stdout);
		cli_buf_free(&b);
		force = 1;
		break;
	}
	default:
		break;
	}
	if (force || r->last_draw == 0 || now_ms() - r->last_draw >= REDRAW_INTERVAL_MS)
		live_draw(r);
}

/* ---- callbacks ------------------------------------------------------------------ */

static void on_event(const hypertest_event *ev, void *ud)
{
	struct render *r = ud;
	int type = hypertest_event_type(ev);

	if (r->mode == MODE_JSON) {
		track(r, ev);
		fprintf(r->json_out, "%s\n", hypertest_event_json(ev));
		fflush(r->json_out);
		return;
	}
	track(r, ev);
	if (type == HYPERTEST_EVENT_LOG)
		return; /* shown by on_log */
	if (r->mode == MODE_LIVE)
		live_event(r, ev);
	else
		plain_event(r, ev);
}

static void on_log(int level, const char *message, void *ud)
{
	struct render *r = ud;

	if (level > r->log_max)
		return;
	if (r->mode == MODE_LIVE) {
		add_log_line(r, &r->perm, level, message ? message : "");
		live_draw(r);
	} else {
		struct cli_buf b = {0};
		add_log_line(r, &b, level, message ? message : "");
		fputs(cli_buf_str(&b), stderr);
		fflush(stderr);
		cli_buf_free(&b);
	}
}

/* ---- life cycle ------------------------------------------------------------------ */

struct render *render_new(const struct render_opts *o)
{
	struct render *r = calloc(1, sizeof *r);
	const char *term = getenv("TERM");
	const char *nc = getenv("NO_COLOR");
	int dumb = !term || !*term || strcmp(term, "dumb") == 0;
	int color = !o->no_color && !(nc && *nc) && !dumb;
	int err_tty = isatty(STDERR_FILENO);
	size_t i;

	if (!r)
		return NULL;
	r->cmd = o->cmd;
	r->quiet = o->quiet;
	r->verbose = o->verbose;
	r->log_max = o->quiet ? HYPERTEST_LOG_WARNING : o->verbose ? HYPERTEST_LOG_DEBUG : HYPERTEST_LOG_INFO;
	r->total = -1;
	r->concurrency = -1;
	r->t_start = now_ms();
	r->ring = calloc(RING, sizeof *r->ring);
	if (!r->ring) {
		free(r);
		return NULL;
	}
	if (o->json)
		r->mode = MODE_JSON;
	else if (err_tty && !dumb && !o->quiet)
		r->mode = MODE_LIVE;
	else
		r->mode = MODE_PLAIN;
	r->color_err = color && err_tty;
	r->color_out = color && isatty(STDOUT_FILENO);
	/* with --json, stdout carries the command's own result where it has one */
	r->json_out = (o->cmd == CLI_CMD_DEPLOY || o->cmd == CLI_CMD_DOCTOR || o->cmd == CLI_CMD_REPORT)
	                  ? stdout
	                  : stderr;
	if (r->mode == MODE_LIVE && o->cmd == CLI_CMD_DEPLOY)
		for (i = 0; i < sizeof deploy_steps / sizeof deploy_steps[0]; i++)
			find_step(r, deploy_steps[i]);
	return r;
}

void render_attach(struct render *r, hypertest *h)
{
	hypertest_set_event_callback(h, on_event, r);
	hypertest_set_log_callback(h, r->mode == MODE_JSON ? NULL : on_log, r);
}

int render_is_live(const struct render *r)
{
	return r->mode == MODE_LIVE;
}

int render_color_out(const struct render *r)
{
	return r->color_out;
}

void render_finish(struct render *r)
{
	if (r->mode != MODE_LIVE)
		return;
	r->finishing = 1;
	if (r->region_lines > 0 || r->perm.len > 0)
		live_draw(r);
	r->region_lines = 0; /* what is on screen now stays */
}

void render_note(struct render *r, const char *fmt, ...)
{
	struct cli_buf b = {0};
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		char *s = malloc((size_t)n + 1);
		if (s) {
			va_start(ap, fmt);
			vsnprintf(s, (size_t)n + 1, fmt, ap);
			va_end(ap);
			cli_buf_printf(&b, "%s\n", s);
			free(s);
		}
	}
	if (r->mode == MODE_LIVE && r->region_lines > 0) {
		cli_buf_puts(&r->perm, cli_buf_str(&b));
		live_draw(r);
	} else {
		fputs(cli_buf_str(&b), stderr);
		fflush(stderr);
	}
	cli_buf_free(&b);
}

void render_run_summary(struct render *r, const hypertest_run *run)
{
	struct cli_buf b = {0};
	const char *path;

	if (r->mode == MODE_JSON || r->summary_shown || !run)
		return;
	if (r->mode == MODE_PLAIN)
		cli_buf_puts(&b, "run done: ");
	add_counts(&b, (int64_t)hypertest_run_total(run),
	           (int64_t)hypertest_run_count(run, HYPERTEST_STATUS_SUCCESS),
	           (int64_t)hypertest_run_count(run, HYPERTEST_STATUS_FAILED),
	           (int64_t)hypertest_run_count(run, HYPERTEST_STATUS_SKIPPED),
	           hypertest_run_duration(run));
	path = hypertest_run_results_path(run);
	if (path)
		cli_buf_printf(&b, r->mode == MODE_PLAIN ? "; results: %s" : "\nResults: %s", path);
	render_note(r, "%s", cli_buf_str(&b));
	r->summary_shown = 1;
	cli_buf_free(&b);
}

void render_deploy_end(struct render *r, int ok)
{
	struct cli_buf b = {0};

	if (r->mode == MODE_JSON)
		return;
	if (ok)
		colored(&b, r->color_err, GREEN, ICON_OK);
	else
		colored(&b, r->color_err, RED, ICON_FAIL);
	cli_buf_printf(&b, " deploy %s in ", ok ? "done" : "failed");
	add_secs(&b, now_ms() - r->t_start);
	render_note(r, "%s", cli_buf_str(&b));
	cli_buf_free(&b);
}

void render_doctor_counts(const struct render *r, int *ok, int *warnings, int *failed)
{
	*ok = r->doctor[HYPERTEST_CHECK_OK];
	*warnings = r->doctor[HYPERTEST_CHECK_WARNING];
	*failed = r->doctor[HYPERTEST_CHECK_FAILED];
}

void render_free(struct render *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->nsteps; i++) {
		free(r->steps[i].name);
		free(r->steps[i].msg);
	}
	free(r->steps);
	cli_buf_free(&r->perm);
	for (i = 0; i < r->ring_n; i++)
		fin_free(&r->ring[(r->ring_head + i) % RING]);
	free(r->ring);
	for (i = 0; i < r->nfails; i++)
		fin_free(&r->fails[i]);
	free(r->fails);
	for (i = 0; i < r->nrunning; i++)
		free(r->running[i].name);
	free(r->running);
	free(r->run_id);
	free(r);
}

void render_set_log_level(struct render *r, int level)
{
	r->log_max = level;
}
