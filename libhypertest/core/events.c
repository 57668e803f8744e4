/*
 * events.c - events and log lines delivered to the embedder.  An event is a
 * JSON object built for the duration of one callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct hypertest_event {
	int type;
	json_t *obj;
	char *json; /* made when first asked for (hypertest_event_json) */
};

static const char *const field_keys[] = {
	[HYPERTEST_FIELD_LEVEL] = "level",
	[HYPERTEST_FIELD_MESSAGE] = "message",
	[HYPERTEST_FIELD_RUN_ID] = "runId",
	[HYPERTEST_FIELD_TEST_ID] = "testId",
	[HYPERTEST_FIELD_TOTAL] = "total",
	[HYPERTEST_FIELD_CONCURRENCY] = "concurrency",
	[HYPERTEST_FIELD_INDEX] = "index",
	[HYPERTEST_FIELD_STATUS] = "status",
	[HYPERTEST_FIELD_NAME] = "name",
	[HYPERTEST_FIELD_FILE_PATH] = "filePath",
	[HYPERTEST_FIELD_DURATION] = "duration",
	[HYPERTEST_FIELD_PASSED] = "passed",
	[HYPERTEST_FIELD_FAILED] = "failed",
	[HYPERTEST_FIELD_SKIPPED] = "skipped",
	[HYPERTEST_FIELD_PATH] = "path",
	[HYPERTEST_FIELD_STEP] = "step",
	[HYPERTEST_FIELD_CODE] = "code",
	[HYPERTEST_FIELD_CHECK] = "check",
	[HYPERTEST_FIELD_PLUGIN] = "plugin",
	[HYPERTEST_FIELD_DONE] = "done",
	[HYPERTEST_FIELD_IN_FLIGHT] = "inFlight",
	[HYPERTEST_FIELD_URL] = "url",
	[HYPERTEST_FIELD_ARTIFACTS] = "artifacts",
	[HYPERTEST_FIELD_STACK_TRACE] = "stackTrace",
	[HYPERTEST_FIELD_WARNINGS] = "warnings",
};

static const char *const type_names[] = {
	[HYPERTEST_EVENT_LOG] = "log",
	[HYPERTEST_EVENT_RUN_START] = "run_start",
	[HYPERTEST_EVENT_TEST_START] = "test_start",
	[HYPERTEST_EVENT_TEST_END] = "test_end",
	[HYPERTEST_EVENT_RUN_END] = "run_end",
	[HYPERTEST_EVENT_STEP_START] = "step_start",
	[HYPERTEST_EVENT_STEP_END] = "step_end",
	[HYPERTEST_EVENT_STEP_ERROR] = "step_error",
	[HYPERTEST_EVENT_DOCTOR_CHECK] = "doctor_check",
	[HYPERTEST_EVENT_REPORT] = "report",
};

#define NFIELDS (sizeof field_keys / sizeof field_keys[0])

const char *ht_event_key(int field)
{
	if (field <= 0 || (size_t)field >= NFIELDS)
		return NULL;
	return field_keys[field];
}

static int field_is_int(int field)
{
	switch (field) {
	case HYPERTEST_FIELD_LEVEL:
	case HYPERTEST_FIELD_TOTAL:
	case HYPERTEST_FIELD_CONCURRENCY:
	case HYPERTEST_FIELD_INDEX:
	case HYPERTEST_FIELD_STATUS:
	case HYPERTEST_FIELD_DURATION:
	case HYPERTEST_FIELD_PASSED:
	case HYPERTEST_FIELD_FAILED:
	case HYPERTEST_FIELD_SKIPPED:
	case HYPERTEST_FIELD_CODE:
	case HYPERTEST_FIELD_DONE:
	case HYPERTEST_FIELD_IN_FLIGHT:
		return 1;
	default:
		return 0;
	}
}

static void deliver(hypertest *h, int type, json_t *obj)
{
	struct hypertest_event ev;

	ev.type = type;
	ev.obj = obj;
	json_object_set_new(obj, "event", json_string(type_names[type]));
	ev.json = NULL; /* most callbacks never ask for it */
	h->event_cb(&ev, h->event_ud);
	free(ev.json);
}

void ht_emit(hypertest *h, int type, ...)
{
	va_list ap;
	json_t *obj;
	int field;

	if (!h->event_cb)
		return;
	obj = json_object();
	if (!obj)
		return;
	va_start(ap, type);
	while ((field = va_arg(ap, int)) != 0) {
		const char *key = ht_event_key(field);
		if (field_is_int(field)) {
			int64_t v = va_arg(ap, int64_t);
			if (key)
				json_object_set_new(obj, key, json_integer((json_int_t)v));
		} else {
			const char *v = va_arg(ap, const char *);
			if (key && v)
				json_object_set_new(obj, key, json_string(v));
		}
	}
	va_end(ap);
	deliver(h, type, obj);
	json_decref(obj);
}

void ht_log(hypertest *h, int level, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (level > h->log_level || (!h->log_cb && !h->event_cb))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (h->log_cb)
		h->log_cb(level, msg, h->log_ud);
	ht_emit(h, HYPERTEST_EVENT_LOG, HYPERTEST_FIELD_LEVEL, (int64_t)level,
	        HYPERTEST_FIELD_MESSAGE, msg, 0);
}

int hypertest_set_event_callback(hypertest *h, hypertest_event_cb cb, void *userdata)
{
	if (!h)
		return HYPERTEST_ERR_INVALID;
	h->event_cb = cb;
	h->event_ud = userdata;
	return HYPERTEST_OK;
}

int hypertest_set_log_callback(hypertest *h, hypertest_log_cb cb, void *userdata)
{
	if (!h)
		return HYPERTEST_ERR_INVALID;
	h->log_cb = cb;
	h->log_ud = userdata;
	return HYPERTEST_OK;
}

int hypertest_set_log_level(hypertest *h, int max_level)
{
	if (!h || max_level < HYPERTEST_LOG_ERROR || max_level > HYPERTEST_LOG_DEBUG)
		return h ? ht_fail(h, HYPERTEST_ERR_INVALID, "log level %d: expected 0 to 3", max_level)
		         : HYPERTEST_ERR_INVALID;
	h->log_level = max_level;
	return HYPERTEST_OK;
}

int hypertest_event_type(const hypertest_event *ev)
{
	return ev ? ev->type : 0;
}

const char *hypertest_event_str(const hypertest_event *ev, int field)
{
	const char *key = ht_event_key(field);
	json_t *v;
	if (!ev || !key || field_is_int(field))
		return NULL;
	v = json_object_get(ev->obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int64_t hypertest_event_int(const hypertest_event *ev, int field)
{
	const char *key = ht_event_key(field);
	json_t *v;
	if (!ev || !key || !field_is_int(field))
		return -1;
	v = json_object_get(ev->obj, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

const char *hypertest_event_json(const hypertest_event *ev)
{
	if (!ev)
		return "{}";
	/* the event is the callback's for its duration, on the thread that
	 * delivers it: its text is made once, the first time it is asked for */
	if (!ev->json)
		((struct hypertest_event *)ev)->json =
		    json_dumps(ev->obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	return ev->json ? ev->json : "{}";
}
