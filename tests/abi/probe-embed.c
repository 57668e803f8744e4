/*
 * probe-embed.c - a module that uses every type of the embedding API
 * (hypertest.h and common.h) that no function of libhypertest.so carries
 * in its signature: the enums, whose values abidw records only when a
 * variable or a function of the object uses them.  One exported variable
 * per type, so that a new type or enumerator is a compatible addition and
 * a changed value an incompatible change.  Nothing calls into it.
 */
#include <hypertest/hypertest.h>

#define PROBE_EXPORT HYPERTEST_EXPORT

/* The version of the headers, as enumerators: the major changes only with
 * a new soname; the minor and the patch grow, and are not recorded. */
enum probe_embed_constant {
	probe_id_HYPERTEST_VERSION_MAJOR = HYPERTEST_VERSION_MAJOR
};

PROBE_EXPORT enum probe_embed_constant probe_embed_constant;

/* common.h */
PROBE_EXPORT enum hypertest_error probe_error;
PROBE_EXPORT enum hypertest_log_level probe_log_level;
PROBE_EXPORT enum hypertest_status probe_status;
PROBE_EXPORT enum hypertest_check_status probe_check_status;
PROBE_EXPORT enum hypertest_destroy_flag probe_destroy_flag;

/* hypertest.h */
PROBE_EXPORT enum hypertest_flag probe_flag;
PROBE_EXPORT enum hypertest_invoke_option probe_invoke_option;
PROBE_EXPORT enum hypertest_event_type probe_event_type;
PROBE_EXPORT enum hypertest_event_field probe_event_field;
PROBE_EXPORT enum hypertest_test_field probe_test_field;
PROBE_EXPORT enum hypertest_plugin_field probe_plugin_field;
PROBE_EXPORT hypertest *probe_handle;
PROBE_EXPORT hypertest_run *probe_run;
PROBE_EXPORT const hypertest_event *probe_event;
PROBE_EXPORT hypertest_event_cb probe_event_cb;
PROBE_EXPORT hypertest_log_cb probe_log_cb;
