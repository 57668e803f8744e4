/*
 * fuzz-junit.c - the XML reader the runners read JUnit reports with
 * (plugins/common's xml.c): an input is a report, parsed and walked as the
 * pytest and CTest runners walk it (every testcase, its attributes, its
 * failure, error, skipped and system-out children and their text).
 */
#include <stdlib.h>
#include <string.h>

#include "htplugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static size_t sink;

static void touch(const char *s)
{
	if (s)
		sink += strlen(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const kids[] = {"failure", "error", "skipped", "system-out",
	                                   "system-err"};
	char *error = NULL;
	htp_xml *doc = htp_xml_parse((const char *)data, len, &error);
	size_t n = 0, i, k;
	htp_xml **cases;

	if (!doc) {
		free(error);
		return 0;
	}
	cases = htp_xml_find_all(doc, "testcase", &n);
	for (i = 0; cases && i < n; i++) {
		touch(htp_xml_attr(cases[i], "classname"));
		touch(htp_xml_attr(cases[i], "name"));
		touch(htp_xml_attr(cases[i], "file"));
		touch(htp_xml_attr(cases[i], "time"));
		touch(htp_xml_attr(cases[i], "status"));
		for (k = 0; k < sizeof kids / sizeof *kids; k++) {
			htp_xml *c = htp_xml_child(cases[i], kids[k]);
			if (c) {
				touch(htp_xml_attr(c, "message"));
				if (c->text && c->text_len)
					sink += (unsigned char)c->text[c->text_len - 1];
			}
		}
	}
	free(cases);
	htp_xml_free(doc);
	return 0;
}
