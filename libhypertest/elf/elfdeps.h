/*
 * elfdeps.h - the shared libraries ELF programs and modules need, found the
 * way glibc's dynamic loader finds them on this machine, by reading the ELF
 * files and /etc/ld.so.cache (nothing is executed).  Internal (ht_ names).
 */
#ifndef HT_ELFDEPS_H
#define HT_ELFDEPS_H

#include <stddef.h>

#include "util.h"

typedef struct ht_elfdeps ht_elfdeps;

/* Resolve the closure of the shared libraries needed by the ELF files
 * roots[0..n-1] (roots[0] typically the program, the others modules it
 * dlopen()s, in that order), reading /etc/ld.so.cache and LD_LIBRARY_PATH.
 * HYPERTEST_ERR_NOT_FOUND for a missing file or library (the message names
 * the library, the object needing it and the directories searched);
 * HYPERTEST_ERR_INVALID for a file that is not ELF, is truncated or corrupt
 * (the message names the file) or roots of different machines;
 * HYPERTEST_ERR_IO for a read error. */
int ht_elfdeps_resolve(const char *const *roots, size_t n, ht_elfdeps **out, ht_err *err);

/* The same with another ld.so.cache (a path that does not exist: none). */
int ht_elfdeps_resolve_cache(const char *const *roots, size_t n, const char *ld_cache,
                             ht_elfdeps **out, ht_err *err);

/* PT_INTERP of the first root that has one, as written, or NULL. */
const char *ht_elfdeps_interp(const ht_elfdeps *d);
/* The real path of that file, or NULL. */
const char *ht_elfdeps_interp_path(const ht_elfdeps *d);

/* The libraries, each DT_NEEDED name once, sorted by name (strcmp). */
size_t ht_elfdeps_count(const ht_elfdeps *d);
const char *ht_elfdeps_soname(const ht_elfdeps *d, size_t i); /* the DT_NEEDED name */
const char *ht_elfdeps_path(const ht_elfdeps *d, size_t i);   /* its real path */

/* e_machine of the roots (EM_X86_64, ...). */
int ht_elfdeps_machine(const ht_elfdeps *d);

/* OCI/Go architecture name of an e_machine: "amd64", "arm64", "386", "arm",
 * "ppc64le", "s390x", "riscv64"; NULL if unknown. */
const char *ht_elf_machine_arch(int e_machine);

void ht_elfdeps_free(ht_elfdeps *d);

#endif /* HT_ELFDEPS_H */
