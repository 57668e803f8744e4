/*
 * command_ops.c - the table of operations through which the core's upcalls
 * reach layers, images and invocations (core.h, struct ht_ops).
 */
#include "command_ops.h"
#include "image.h"
#include "layer.h"

static const ht_ops command_ops = {
	.layer_add_path = ht_layer_add_path,
	.layer_set = ht_layer_set,
	.image_unpack_layout = ht_image_unpack_layout,
	.invocation_test_id = ht_invocation_test_id,
	.invocation_usage = ht_invocation_usage,
	.invocation_done = ht_invocation_done,
};

void ht_command_ops_install(hypertest *h)
{
	h->ops = &command_ops;
}
