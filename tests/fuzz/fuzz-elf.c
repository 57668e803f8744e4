/*
 * fuzz-elf.c - the ELF reader: an input is a file opened as deploy opens
 * a program and the libraries it needs, its dependencies then read.
 */
#include "elffile.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *path = fz_path("elf");
	struct ht_elf_file f;
	struct ht_elf_deps d = {0};
	ht_err err = {0};

	fz_write(path, data, len);
	if (ht_elf_open(&f, path, &err) == 0)
		(void)ht_elf_read_deps(&f, &d, &err);
	ht_elf_deps_clear(&d);
	ht_elf_close(&f);
	return 0;
}
