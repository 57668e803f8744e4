/*
 * nodeid.c - takes a pytest node id apart.  "tests/t.py::TestC::test_y[a::b [c]]"
 * is the file "tests/t.py", the title "TestC > test_y[a::b [c]]", and in
 * pytest's JUnit report the classname "tests.t.TestC" and the name
 * "test_y[a::b [c]]".  Python names hold neither ':' nor '[', so the
 * parameter part starts at the first '[' after the file, and only "::"
 * before it separate names.  The JUnit fields follow pytest's own rule
 * (split at the first '[' of the whole id, then at "::").
 */
#define _GNU_SOURCE
#include "pytest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pyt_nodeid_free(pyt_nodeid *n)
{
	free(n->file);
	free(n->title);
	free(n->classname);
	free(n->name);
	memset(n, 0, sizeof n[0]);
}

/* "a::b::c" (n bytes) with "::" replaced by sep, into b. */
static void join_parts(htp_buf *b, const char *s, size_t n, const char *sep)
{
	for (size_t i = 0; i < n;) {
		if (i + 1 < n && s[i] == ':' && s[i + 1] == ':') {
			htp_buf_str(b, sep);
			i += 2;
		} else {
			htp_buf_add(b, s + i, 1);
			i++;
		}
	}
}

int pyt_nodeid_parse(const char *id, pyt_nodeid *out)
{
	memset(out, 0, sizeof *out);
	const char *sep = strstr(id, "::");
	if (!sep || sep == id)
		return EINVAL;
	htp_buf title = {0}, cls = {0};
	const char *rest = sep + 2;
	size_t names = strcspn(rest, "["); /* names part of the rest */
	join_parts(&title, rest, names, " > ");
	htp_buf_str(&title, rest + names);

	/* pytest: partition at the first '[', split the left side at "::" */
	size_t left = strcspn(id, "[");
	const char *last = NULL; /* start of the last name of the left side */
	for (const char *p = id; p + 1 < id + left; p++)
		if (p[0] == ':' && p[1] == ':')
			last = p + 2, p++;
	size_t path_len = (size_t)(sep - id);
	if (last) {
		/* the path with '/' as '.', without ".py" */
		size_t plen = path_len;
		if (plen > 3 && !memcmp(id + plen - 3, ".py", 3))
			plen -= 3;
		for (size_t i = 0; i < plen; i++)
			htp_buf_add(&cls, id[i] == '/' ? "." : id + i, 1);
		if (last - 2 > sep) { /* classes between the path and the last name */
			htp_buf_add(&cls, ".", 1);
			join_parts(&cls, sep + 2, (size_t)(last - 2 - (sep + 2)), ".");
		}
	}
	htp_buf_add(&cls, "", 0);
	out->file = strndup(id, path_len);
	out->title = htp_buf_take(&title);
	out->classname = htp_buf_take(&cls);
	out->name = strdup(last ? last : id);
	if (!out->file || !out->title || !out->classname || !out->name) {
		pyt_nodeid_free(out);
		return ENOMEM;
	}
	return 0;
}
