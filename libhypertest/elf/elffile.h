/*
 * elffile.h - reading one ELF file: its identification (class, byte order,
 * machine, type, flags) and what the dynamic loader needs of it (PT_INTERP,
 * DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, DF_1_NODEFLIB).  Internal.
 *
 * (Not named elf.h: with the library's and the tests' -I flags that name
 * would hide the system's <elf.h>.)
 */
#ifndef HT_ELFFILE_H
#define HT_ELFFILE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* What the loader compares between a candidate and the program. */
struct ht_elf_id {
	int cls, data, machine, type; /* EI_CLASS, EI_DATA, e_machine, e_type */
	uint32_t flags;               /* e_flags */
};

/* An opened ELF file (ht_elf_open); its headers were checked against its size. */
struct ht_elf_file {
	int fd;
	const char *path; /* for messages; the caller may point it elsewhere */
	uint64_t size;
	struct ht_elf_id id;
	uint64_t phoff, shoff;
	size_t phnum, phentsize, shentsize;
};

/* The dependency information of an ELF file, strings malloc'd, NULL when absent. */
struct ht_elf_deps {
	char *soname, *rpath, *runpath, *interp;
	char **needed; /* the DT_NEEDED names, in order */
	size_t n_needed;
	int nodeflib;  /* DF_1_NODEFLIB */
};

/* Open path and read its ELF header.  HYPERTEST_ERR_NOT_FOUND (missing),
 * HYPERTEST_ERR_IO, or HYPERTEST_ERR_INVALID (not a regular file, not ELF,
 * truncated or corrupt).  Call ht_elf_close even on failure. */
int ht_elf_open(struct ht_elf_file *f, const char *path, ht_err *err);
void ht_elf_close(struct ht_elf_file *f);

/* Read the program headers, PT_INTERP and PT_DYNAMIC of f into *d (zeroed
 * by the caller), the strings through the PT_LOAD holding DT_STRTAB.  On
 * failure *d may be partly filled: ht_elf_deps_clear it. */
int ht_elf_read_deps(const struct ht_elf_file *f, struct ht_elf_deps *d, ht_err *err);
void ht_elf_deps_clear(struct ht_elf_deps *d);

#endif /* HT_ELFFILE_H */
