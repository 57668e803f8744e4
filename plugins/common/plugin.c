/*
 * plugin.c - what touches the core: errors reported through its set_error
 * upcall, and the registration every hypertest_plugin_init does.
 */
#define _GNU_SOURCE
#include "htplugin.h"

#include <stdlib.h>

int htp_fail(const hypertest_upcalls *up, hypertest_core *core, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = htp_vstrdupf(fmt, ap);
	va_end(ap);
	if (up->set_error)
		up->set_error(core, code, msg ? msg : "plugin: out of memory");
	free(msg);
	return code;
}

int htp_register(hypertest_upcalls *up, hypertest_core *core, const hypertest_dispatch *upcalls,
                 int kind, const char *name, const char *description,
                 const hypertest_dispatch *ops)
{
	hypertest_upcalls bound;
	if (hypertest_upcalls_bind(&bound, upcalls) != 0)
		return HYPERTEST_ERR_ABI;
	*up = bound;
	return up->register_plugin(core, kind, name, description, ops);
}
