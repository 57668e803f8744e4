/*
 * fuzz-playwright.c - the Playwright runner's JSON report readers: an
 * input is a report read both as the listing of `playwright test --list`
 * (each way of choosing projects) and as the outcome of one test.
 */
#include <stdlib.h>

#include "playwright.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char *names[] = {"chromium", "firefox", NULL};
	pw_options o = {0};
	pw_listing l;
	pw_outcome out;
	char *error = NULL;
	int p;

	for (p = PW_PROJECTS_FIRST; p <= PW_PROJECTS_NAMED; p++) {
		o.projects = p;
		o.names = p == PW_PROJECTS_NAMED ? names : NULL;
		o.n_names = p == PW_PROJECTS_NAMED ? 2 : 0;
		if (pw_listing_parse((const char *)data, len, &o, &l, &error) == 0)
			pw_listing_free(&l);
		free(error);
		error = NULL;
	}
	if (pw_outcome_parse((const char *)data, len, "a.spec.ts:3", "/project", &out, &error) == 0)
		pw_outcome_free(&out);
	free(error);
	return 0;
}
