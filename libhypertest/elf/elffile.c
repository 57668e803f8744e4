/*
 * elffile.c - reading one ELF file (either class, either byte order) for the
 * dynamic loader's view of it: the ELF header, the program headers,
 * PT_INTERP, and from PT_DYNAMIC the DT_NEEDED, DT_SONAME, DT_RPATH and
 * DT_RUNPATH strings, DT_STRTAB's address translated through the PT_LOAD
 * segments.  Read with pread; every offset and size is checked against the
 * file.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elffile.h"

#define MAX_TABLE (64u << 20)     /* a dynamic section or string table */

struct phdr {
	uint32_t type;
	uint64_t offset, vaddr, filesz;
};

static uint64_t get_u(const unsigned char *p, size_t n, int big)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[big ? n - 1 - i : i] << (8 * i);
	return v;
}

static int bad(const struct ht_elf_file *f, ht_err *err, const char *what)
{
	return ht_err_set(err, HYPERTEST_ERR_INVALID, "%s: truncated or corrupt ELF file (%s)",
	                  f->path, what);
}

/* Read len bytes at off, all inside the file. */
static int rd(const struct ht_elf_file *f, uint64_t off, void *buf, size_t len, const char *what,
              ht_err *err)
{
	size_t done = 0;

	if (off > f->size || len > f->size - off)
		return bad(f, err, what);
	while (done < len) {
		ssize_t r = pread(f->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", f->path, strerror(errno));
		if (r == 0)
			return bad(f, err, what);
		done += (size_t)r;
	}
	return 0;
}

#define U(p, n) get_u((p), (n), f->id.data == ELFDATA2MSB)

int ht_elf_open(struct ht_elf_file *f, const char *path, ht_err *err)
{
	unsigned char h[64];
	struct stat st;
	int is64, rc;

	memset(f, 0, sizeof *f);
	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return ht_err_set(err, errno == ENOENT ? HYPERTEST_ERR_NOT_FOUND : HYPERTEST_ERR_IO,
		                  "%s: %s", path, strerror(errno));
	if (fstat(f->fd, &st) != 0)
		return ht_err_set(err, HYPERTEST_ERR_IO, "%s: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "%s: not a regular file", path);
	f->size = (uint64_t)st.st_size;
	if (f->size < EI_NIDENT || rd(f, 0, h, EI_NIDENT, "ident", err) != 0 ||
	    memcmp(h, ELFMAG, SELFMAG) != 0)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "%s: not an ELF file", path);
	f->id.cls = h[EI_CLASS];
	f->id.data = h[EI_DATA];
	if ((f->id.cls != ELFCLASS32 && f->id.cls != ELFCLASS64) ||
	    (f->id.data != ELFDATA2LSB && f->id.data != ELFDATA2MSB) || h[EI_VERSION] != EV_CURRENT)
		return bad(f, err, "unknown class, byte order or version");
	is64 = f->id.cls == ELFCLASS64;
	if ((rc = rd(f, 0, h, is64 ? 64 : 52, "ELF header", err)) != 0)
		return rc;
	f->id.type = (int)U(h + 16, 2);
	f->id.machine = (int)U(h + 18, 2);
	f->phoff = is64 ? U(h + 32, 8) : U(h + 28, 4);
	f->shoff = is64 ? U(h + 40, 8) : U(h + 32, 4);
	f->id.flags = (uint32_t)(is64 ? U(h + 48, 4) : U(h + 36, 4));
	f->phentsize = (size_t)(is64 ? U(h + 54, 2) : U(h + 42, 2));
	f->phnum = (size_t)(is64 ? U(h + 56, 2) : U(h + 44, 2));
	f->shentsize = (size_t)(is64 ? U(h + 58, 2) : U(h + 46, 2));
	if (f->phnum == PN_XNUM) {
		/* the real count is sh_info of section 0 */
		unsigned char s[4];
		if (f->shentsize < (is64 ? 64u : 40u))
			return bad(f, err, "section header size");
		if ((rc = rd(f, f->shoff + (is64 ? 44 : 28), s, 4, "section header 0", err)) != 0)
			return rc;
		f->phnum = (size_t)U(s, 4);
	}
	if (f->phnum > 0 && f->phentsize < (is64 ? 56u : 32u))
		return bad(f, err, "program header size");
	if (f->phoff > f->size || (uint64_t)f->phnum * f->phentsize > f->size - f->phoff)
		return bad(f, err, "program headers beyond the end of the file");
	return 0;
}

void ht_elf_close(struct ht_elf_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int read_phdr(const struct ht_elf_file *f, size_t i, struct phdr *p, ht_err *err)
{
	unsigned char b[56];
	int is64 = f->id.cls == ELFCLASS64;
	int rc = rd(f, f->phoff + (uint64_t)i * f->phentsize, b, is64 ? 56 : 32, "program header",
	            err);

	if (rc != 0)
		return rc;
	p->type = (uint32_t)U(b, 4);
	p->offset = is64 ? U(b + 8, 8) : U(b + 4, 4);
	p->vaddr = is64 ? U(b + 16, 8) : U(b + 8, 4);
	p->filesz = is64 ? U(b + 32, 8) : U(b + 16, 4);
	return 0;
}

/* A segment's bytes (at most max), malloc'd with a NUL after them. */
static int read_segment(const struct ht_elf_file *f, uint64_t off, uint64_t len, uint64_t max,
                        const char *what, char **out, ht_err *err)
{
	char *b;
	int rc;

	if (len > max)
		return bad(f, err, what);
	b = malloc((size_t)len + 1);
	if (!b)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = rd(f, off, b, (size_t)len, what, err);
	if (rc != 0) {
		free(b);
		return rc;
	}
	b[len] = '\0';
	*out = b;
	return 0;
}

/* The string at off of the string table, copied. */
static int dyn_string(const struct ht_elf_file *f, const char *tab, uint64_t tablen, uint64_t off,
                      char **out, ht_err *err)
{
	if (off >= tablen || !memchr(tab + off, '\0', (size_t)(tablen - off)))
		return bad(f, err, "dynamic string offset outside DT_STRTAB");
	*out = ht_strdup(tab + off);
	return *out ? 0 : ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

struct dyn_info {
	uint64_t strtab, strsz, soname, rpath, runpath, flags_1;
	int has_strtab, has_strsz, has_soname, has_rpath, has_runpath;
	uint64_t *needed;
	size_t n_needed;
};

static int parse_dynamic(const struct ht_elf_file *f, const struct phdr *dyn, struct dyn_info *di,
                         ht_err *err)
{
	size_t esz = f->id.cls == ELFCLASS64 ? 16 : 8, i, n;
	char *b;
	int rc = read_segment(f, dyn->offset, dyn->filesz, MAX_TABLE, "PT_DYNAMIC", &b, err);

	if (rc != 0)
		return rc;
	n = (size_t)dyn->filesz / esz;
	di->needed = calloc(n ? n : 1, sizeof *di->needed);
	if (!di->needed) {
		free(b);
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		const unsigned char *e = (const unsigned char *)b + i * esz;
		int64_t tag = (int64_t)U(e, esz / 2);
		uint64_t val = U(e + esz / 2, esz / 2);
		if (esz == 8)
			tag = (int32_t)(uint32_t)tag;
		if (tag == DT_NULL)
			break;
		switch (tag) {
		case DT_NEEDED: di->needed[di->n_needed++] = val; break;
		case DT_STRTAB: di->strtab = val; di->has_strtab = 1; break;
		case DT_STRSZ: di->strsz = val; di->has_strsz = 1; break;
		case DT_SONAME: if (!di->has_soname) { di->soname = val; di->has_soname = 1; } break;
		case DT_RPATH: if (!di->has_rpath) { di->rpath = val; di->has_rpath = 1; } break;
		case DT_RUNPATH: if (!di->has_runpath) { di->runpath = val; di->has_runpath = 1; } break;
		case DT_FLAGS_1: di->flags_1 = val; break;
		default: break;
		}
	}
	free(b);
	return 0;
}

void ht_elf_deps_clear(struct ht_elf_deps *d)
{
	char *strs[] = {d->soname, d->rpath, d->runpath, d->interp};
	size_t i;

	for (i = 0; i < d->n_needed; i++)
		free(d->needed[i]);
	free(d->needed);
	for (i = 0; i < sizeof strs / sizeof *strs; i++)
		free(strs[i]);
	memset(d, 0, sizeof *d);
}

/* Read the dependency information of an opened ELF file into o. */
int ht_elf_read_deps(const struct ht_elf_file *f, struct ht_elf_deps *o, ht_err *err)
{
	struct phdr p, dyn = {0, 0, 0, 0}, *loads = NULL;
	struct dyn_info di;
	size_t i, n_loads = 0;
	int have_dyn = 0, rc = 0;
	char *tab = NULL;
	uint64_t tabbase = 0, tablen = 0;

	memset(&di, 0, sizeof di);
	loads = calloc(f->phnum ? f->phnum : 1, sizeof *loads);
	if (!loads)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	for (i = 0; i < f->phnum && rc == 0; i++) {
		if ((rc = read_phdr(f, i, &p, err)) != 0)
			break;
		if (p.type == PT_LOAD) {
			loads[n_loads++] = p;
		} else if (p.type == PT_DYNAMIC && !have_dyn) {
			dyn = p;
			have_dyn = 1;
		} else if (p.type == PT_INTERP && !o->interp) {
			rc = read_segment(f, p.offset, p.filesz, PATH_MAX, "PT_INTERP", &o->interp, err);
			if (rc == 0 && (p.filesz == 0 || strlen(o->interp) + 1 != p.filesz ||
			                o->interp[0] == '\0'))
				rc = bad(f, err, "PT_INTERP is not one string");
		}
	}
	if (rc == 0 && have_dyn && dyn.filesz > 0)
		rc = parse_dynamic(f, &dyn, &di, err);
	if (rc == 0 && (di.n_needed || di.has_soname || di.has_rpath || di.has_runpath)) {
		/* DT_STRTAB is an address: find the PT_LOAD holding it */
		if (!di.has_strtab)
			rc = bad(f, err, "no DT_STRTAB");
		for (i = 0; rc == 0 && i < n_loads; i++) {
			if (di.strtab >= loads[i].vaddr && di.strtab - loads[i].vaddr < loads[i].filesz) {
				tabbase = loads[i].offset + (di.strtab - loads[i].vaddr);
				tablen = loads[i].filesz - (di.strtab - loads[i].vaddr);
				break;
			}
		}
		if (rc == 0 && i == n_loads)
			rc = bad(f, err, "DT_STRTAB outside the PT_LOAD segments");
		if (rc == 0 && di.has_strsz && di.strsz < tablen)
			tablen = di.strsz;
		if (rc == 0)
			rc = read_segment(f, tabbase, tablen, MAX_TABLE, "DT_STRTAB", &tab, err);
	}
	if (rc == 0 && di.n_needed) {
		o->needed = calloc(di.n_needed, sizeof *o->needed);
		if (!o->needed)
			rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		for (i = 0; rc == 0 && i < di.n_needed; i++) {
			rc = dyn_string(f, tab, tablen, di.needed[i], &o->needed[i], err);
			if (rc == 0) {
				o->n_needed++;
				if (o->needed[i][0] == '\0')
					rc = bad(f, err, "empty DT_NEEDED");
			}
		}
	}
	if (rc == 0 && di.has_soname)
		rc = dyn_string(f, tab, tablen, di.soname, &o->soname, err);
	if (rc == 0 && di.has_rpath)
		rc = dyn_string(f, tab, tablen, di.rpath, &o->rpath, err);
	if (rc == 0 && di.has_runpath)
		rc = dyn_string(f, tab, tablen, di.runpath, &o->runpath, err);
	o->nodeflib = (di.flags_1 & DF_1_NODEFLIB) != 0;
	free(tab);
	free(loads);
	free(di.needed);
	return rc;
}
