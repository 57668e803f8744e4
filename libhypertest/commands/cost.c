/*
 * cost.c - what a run cost: the usage each invocation's provider reported
 * (HYPERTEST_UP_INVOCATION_USAGE), summed per test and per run into the
 * results file's added "cost" objects: billed time in GB-seconds and a
 * dollar estimate from the provider's prices (the configuration's "cost"
 * object overrides them), or CPU time and peak memory for providers that
 * run functions on this machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static void add(json_t *o, const char *key, double v)
{
	json_object_set_new(o, key, json_real(num(o, key) + v));
}

void ht_usage_add(ht_test_result *t, const char *quantity, double value)
{
	if (value < 0 || value != value)
		return;
	if (!t->usage && !(t->usage = json_object()))
		return;
	if (!strcmp(quantity, "billedMs")) {
		/* GB-seconds with the memory size reported before it */
		add(t->usage, "billedMs", value);
		add(t->usage, "gbSeconds", value / 1000.0 * num(t->usage, "memoryMB") / 1024.0);
	} else if (!strcmp(quantity, "cpuMs")) {
		add(t->usage, "cpuMs", value);
	} else if (!strcmp(quantity, "maxRssKB")) {
		if (value > num(t->usage, "maxRssKB"))
			json_object_set_new(t->usage, "maxRssKB", json_real(value));
	} else if (!strcmp(quantity, "memoryMB") || !strcmp(quantity, "pricePerGBSecond") ||
	           !strcmp(quantity, "pricePerRequest")) {
		json_object_set_new(t->usage, quantity, json_real(value));
	}
}

/* The configuration's override of a price, or -1. */
static double config_price(hypertest *h, const char *key)
{
	json_t *v = NULL;
	char *text = NULL, path[64];
	double d = -1;

	snprintf(path, sizeof path, "cost.%s", key);
	text = hypertest_config_get(h, path);
	if (text && (v = json_loads(text, JSON_DECODE_ANY, NULL)) && json_is_number(v))
		d = json_number_value(v);
	json_decref(v);
	free(text);
	return d;
}

void ht_cost_total(hypertest *h, hypertest_run *run)
{
	json_t *c;
	double gbs = 0, billed = 0, cpu = 0, rss = 0, pgbs = -1, preq = -1;
	size_t i, requests = 0, reported = 0;

	for (i = 0; i < run->n; i++) {
		ht_test_result *t = &run->tests[i];
		requests += (size_t)t->attempts;
		if (!t->usage)
			continue;
		reported++;
		gbs += num(t->usage, "gbSeconds");
		billed += num(t->usage, "billedMs");
		cpu += num(t->usage, "cpuMs");
		if (num(t->usage, "maxRssKB") > rss)
			rss = num(t->usage, "maxRssKB");
		if (json_object_get(t->usage, "pricePerGBSecond"))
			pgbs = num(t->usage, "pricePerGBSecond");
		if (json_object_get(t->usage, "pricePerRequest"))
			preq = num(t->usage, "pricePerRequest");
	}
	if (!reported || !(c = json_object()))
		return;
	if (config_price(h, "pricePerGBSecond") >= 0)
		pgbs = config_price(h, "pricePerGBSecond");
	if (config_price(h, "pricePerRequest") >= 0)
		preq = config_price(h, "pricePerRequest");
	json_object_set_new(c, "invocations", json_integer((json_int_t)requests));
	if (billed > 0) {
		json_object_set_new(c, "billedMs", json_real(billed));
		json_object_set_new(c, "gbSeconds", json_real(gbs));
	}
	if (cpu > 0 || rss > 0) {
		json_object_set_new(c, "cpuMs", json_real(cpu));
		json_object_set_new(c, "maxRssKB", json_real(rss));
	}
	if (pgbs >= 0 || preq >= 0) {
		double dollars = gbs * (pgbs > 0 ? pgbs : 0) + (double)requests * (preq > 0 ? preq : 0);
		json_object_set_new(c, "pricePerGBSecond", json_real(pgbs > 0 ? pgbs : 0));
		json_object_set_new(c, "pricePerRequest", json_real(preq > 0 ? preq : 0));
		json_object_set_new(c, "dollars", json_real(dollars));
		ht_log(h, HYPERTEST_LOG_INFO,
		       "cost: %zu invocations, %.3f GB-s billed (%.0f ms), about $%.6f", requests, gbs,
		       billed, dollars);
	} else if (billed > 0) {
		ht_log(h, HYPERTEST_LOG_INFO, "cost: %zu invocations, %.3f GB-s billed (%.0f ms)",
		       requests, gbs, billed);
	}
	if (cpu > 0 || rss > 0)
		ht_log(h, HYPERTEST_LOG_INFO,
		       "cost: %zu invocations, %.3f CPU-seconds, peak memory of a test %.1f MB",
		       requests, cpu / 1000.0, rss / 1024.0);
	run->cost = c;
}
