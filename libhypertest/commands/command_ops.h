/*
 * command_ops.h - the operations the commands lend the core (core.h's
 * ht_ops): each command installs them on its handle before it creates a
 * plugin instance.
 */
#ifndef HT_COMMAND_OPS_H
#define HT_COMMAND_OPS_H

#include "core.h"

/* invoke.c: an invocation's test id, and its completion. */
const char *ht_invocation_test_id(struct hypertest_invocation *inv);
void ht_invocation_usage(struct hypertest_invocation *inv, const char *quantity, double value);
void ht_invocation_done(struct hypertest_invocation *inv, const char *response, size_t len,
                        int error_code, const char *error_message);

/* Point h->ops at the commands' table (static, shared read-only). */
void ht_command_ops_install(hypertest *h);

#endif /* HT_COMMAND_OPS_H */
