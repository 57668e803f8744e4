/*
 * grep.c - the grep patterns that name one Playwright test, written exactly
 * as the TypeScript hypertest writes them, so that manifests of either
 * implementation run the same tests in the other:
 *
 *   ^<project> <spec path> <describe titles and test title>$
 *
 * each part escaped as the npm package escape-string-regexp escapes (a
 * backslash before | \ { } ( ) [ ] ^ $ + * ? . and \x2d for -), the parts
 * joined by single spaces, then every backslash doubled (that version put
 * the pattern in double quotes on a shell command line).  The function side
 * undoes the doubling before Playwright sees the pattern.
 */
#include "playwright.h"

#include <stdlib.h>
#include <string.h>

void pw_regex_escape(htp_buf *out, const char *s)
{
	static const char special[] = "|\\{}()[]^$+*?.";
	for (const char *p = s; *p; p++) {
		if (*p == '-') {
			htp_buf_add(out, "\\x2d", 4);
		} else {
			if (strchr(special, *p))
				htp_buf_add(out, "\\", 1);
			htp_buf_add(out, p, 1);
		}
	}
}

static char *double_backslashes(const char *s)
{
	htp_buf b = {0};
	for (const char *p = s; *p; p++)
		htp_buf_add(&b, *p == '\\' ? "\\\\" : p, *p == '\\' ? 2 : 1);
	return htp_buf_take(&b);
}

char *pw_grep_pattern(const char *project, const char *spec, const char *const *titles,
                      size_t n_titles)
{
	htp_buf b = {0};
	htp_buf_add(&b, "^", 1);
	pw_regex_escape(&b, project);
	htp_buf_add(&b, " ", 1);
	pw_regex_escape(&b, spec);
	htp_buf_add(&b, " ", 1);
	for (size_t i = 0; i < n_titles; i++) {
		if (i > 0)
			htp_buf_add(&b, " ", 1);
		pw_regex_escape(&b, titles[i]);
	}
	htp_buf_add(&b, "$", 1);
	char *plain = htp_buf_take(&b);
	char *doubled = plain ? double_backslashes(plain) : NULL;
	free(plain);
	return doubled;
}

char *pw_grep_undouble(const char *s)
{
	htp_buf b = {0};
	for (const char *p = s; *p; p++) {
		htp_buf_add(&b, p, 1);
		if (p[0] == '\\' && p[1] == '\\')
			p++;
	}
	return htp_buf_take(&b);
}
