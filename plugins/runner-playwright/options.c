/*
 * options.c - the options of the "playwright" runner, checked key by key
 * (every error names its key):
 *
 *   command   argv that starts Playwright's test command, run without a
 *             shell; default ["npx", "playwright", "test"].  Listing adds
 *             --list --reporter=json, running adds --grep and friends.
 *   config    the Playwright config file, relative to the project
 *             directory (passed as --config, and put into the image).
 *             Default: Playwright's own lookup; the image gets the first of
 *             playwright.config.{ts,js,mjs,cjs,mts,cts} that exists.
 *   projects  "first" (default: the first project of the config, as the
 *             TypeScript hypertest does), "all", or an array of names.
 *   include   more relative paths put into the image (node_modules, for
 *             instance, when the base image does not provide them).
 */
#define _GNU_SOURCE
#include "playwright.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define PREFIX "runner 'playwright': "

static int nomem(char **error)
{
	*error = strdup(PREFIX "out of memory");
	return HYPERTEST_ERR_NOMEM;
}

/* A non-empty array of strings without repeats (relative paths if asked). */
static int strings(json_t *obj, const char *key, int relpaths, char ***out, size_t *count,
                   char **error)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_array(v) && json_array_size(v) == 0)
		return htp_errorf(error, HYPERTEST_ERR_CONFIG,
		                  PREFIX "option '%s': expected a non-empty array of strings", key);
	int rc = htp_opt_strings(PREFIX, obj, key, relpaths, out, error);
	if (rc)
		return rc;
	size_t n = htp_strv_len(*out);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp((*out)[i], (*out)[j]))
				return htp_errorf(error, HYPERTEST_ERR_CONFIG,
				                  PREFIX "option '%s': element %zu repeats '%s'",
				                  key, i + 1, (*out)[i]);
	if (count)
		*count = n;
	return 0;
}

static int parse(pw_options *o, json_t *obj, char **error)
{
	static const char *const option_names[] = {"command", "config", "projects", "include",
	                                           NULL};
	json_t *v;
	int rc;
	if ((rc = htp_options_known(PREFIX, obj, option_names, error)))
		return rc;

	if (json_object_get(obj, "command")) {
		if ((rc = strings(obj, "command", 0, &o->command, NULL, error)))
			return rc;
		if (!o->command[0][0])
			return htp_errorf(error, HYPERTEST_ERR_CONFIG,
			                  PREFIX "option 'command': the program (element 1) is empty");
	} else {
		static const char *const def[] = {"npx", "playwright", "test"};
		if (!(o->command = calloc(4, sizeof *o->command)))
			return nomem(error);
		for (int i = 0; i < 3; i++)
			if (!(o->command[i] = strdup(def[i])))
				return nomem(error);
	}

	if (json_object_get(obj, "config") &&
	    (rc = htp_opt_relpath(PREFIX, obj, "config", NULL, &o->config, error)))
		return rc;

	o->projects = PW_PROJECTS_FIRST;
	if ((v = json_object_get(obj, "projects"))) {
		if (json_is_string(v) && !strcmp(json_string_value(v), "first"))
			o->projects = PW_PROJECTS_FIRST;
		else if (json_is_string(v) && !strcmp(json_string_value(v), "all"))
			o->projects = PW_PROJECTS_ALL;
		else if (json_is_array(v)) {
			if ((rc = strings(obj, "projects", 0, &o->names, &o->n_names, error)))
				return rc;
			o->projects = PW_PROJECTS_NAMED;
		} else
			return htp_errorf(error, HYPERTEST_ERR_CONFIG, PREFIX "option 'projects': expected \"first\", \"all\" or an "
			                  "array of project names");
	}

	if (json_object_get(obj, "include") &&
	    (rc = strings(obj, "include", 1, &o->include, NULL, error)))
		return rc;
	return 0;
}

void pw_options_free(pw_options *o)
{
	htp_strv_free(o->command);
	free(o->config);
	htp_strv_free(o->names);
	htp_strv_free(o->include);
	memset(o, 0, sizeof *o);
}

int pw_options_parse(pw_options *o, const char *json, char **error)
{
	memset(o, 0, sizeof *o);
	json_t *root = NULL;
	int rc = htp_options_load(PREFIX, json, &root, error);
	if (!rc)
		rc = parse(o, root, error);
	json_decref(root);
	if (rc)
		pw_options_free(o);
	return rc;
}
