/*
 * runtime_layer.h - the layer that makes any Linux image of this machine's
 * architecture a function image (see runtime_layer.c).
 */
#ifndef HT_RUNTIME_LAYER_H
#define HT_RUNTIME_LAYER_H

#include <stddef.h>

#include "layer.h"
#include "util.h"

#define HT_RUNTIME_PREFIX "/opt/hypertest"

/* The runtime layer for the function runtime program and the plugin
 * modules[0..n_modules-1] (paths of ELF files on this machine): those, the
 * libraries they load, the loader and a CA bundle, with the entry point,
 * environment and labels that start it.  image_arch (NULL: not checked) is
 * the base image's architecture: one that differs from the program's is
 * HYPERTEST_ERR_INVALID, as is a library that cannot be found
 * (HYPERTEST_ERR_NOT_FOUND, naming it and who needs it). */
int ht_runtime_layer(const char *program, const char *const *modules, size_t n_modules,
                     const char *image_arch, ht_layer **out, ht_err *err);

#endif /* HT_RUNTIME_LAYER_H */
