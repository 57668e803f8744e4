/*
 * elfdeps.c - the closure of the shared libraries ELF objects need, found
 * as glibc's ld.so finds them, without running anything: each DT_NEEDED,
 * breadth-first, looked up in the DT_RPATH chain (objects without
 * DT_RUNPATH), LD_LIBRARY_PATH, the object's DT_RUNPATH, /etc/ld.so.cache
 * and the default directories, skipping files of another class or machine.
 *
 * ELF files are read with pread and every offset and size is checked
 * against the file; the cache is read whole and checked the same way.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfdeps.h"

#define NO_OBJ ((size_t)-1)
#define MAX_TABLE (64u << 20)     /* a dynamic section or string table */
#define MAX_CACHE (256u << 20)    /* ld.so.cache */
#define DEFAULT_CACHE "/etc/ld.so.cache"

/* ---- the result --------------------------------------------------------------- */

struct entry {
	char *name; /* DT_NEEDED */
	char *path; /* real path */
};

struct ht_elfdeps {
	char *interp, *interp_path;
	int machine;
	struct entry *ents;
	size_t n_ents, cap_ents;
};

/* ---- reading ELF files ------------------------------------------------------- */

/* What the loader compares between a candidate and the program. */
struct elf_id {
	int cls, data, machine, type;
	uint32_t flags;
};

struct elf_file {
	int fd;
	const char *path;
	uint64_t size;
	struct elf_id id;
	uint64_t phoff, shoff;
	size_t phnum, phentsize, shentsize;
};

struct phdr {
	uint32_t type;
	uint64_t offset, vaddr, filesz;
};

/* One loaded object. */
struct elf_obj {
	char *path;     /* real path */
	char *origin;   /* $ORIGIN: the directory it was found in */
	char *soname, *rpath, *runpath, *interp;
	char **needed;
	size_t n_needed;
	int nodeflib;   /* DF_1_NODEFLIB */
	size_t loader;  /* the object whose DT_NEEDED loaded it, NO_OBJ for roots */
	struct elf_id id;
};

static uint64_t get_u(const unsigned char *p, size_t n, int big)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v |= (uint64_t)p[big ? n - 1 - i : i] << (8 * i);
	return v;
}

static int bad(const struct elf_file *f, ht_err *err, const char *what)
{
	return ht_err_set(err, HYPERTEST_ERR_INVALID, "%s: truncated or corrupt ELF file (%s)",
	                  f->path, what);
}

/* Read len bytes at off, all inside the file. */
static int rd(const struct elf_file *f, uint64_t off, void *buf, size_t len, const char *what,
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

static int elf_open(struct elf_file *f, const char *path, ht_err *err)
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

static void elf_close(struct elf_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int read_phdr(const struct elf_file *f, size_t i, struct phdr *p, ht_err *err)
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
static int read_segment(const struct elf_file *f, uint64_t off, uint64_t len, uint64_t max,
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
static int dyn_string(const struct elf_file *f, const char *tab, uint64_t tablen, uint64_t off,
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

static int parse_dynamic(const struct elf_file *f, const struct phdr *dyn, struct dyn_info *di,
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

static void obj_clear(struct elf_obj *o)
{
	size_t i;

	for (i = 0; i < o->n_needed; i++)
		free(o->needed[i]);
	free(o->needed);
	free(o->path);
	free(o->origin);
	free(o->soname);
	free(o->rpath);
	free(o->runpath);
	free(o->interp);
	memset(o, 0, sizeof *o);
}

/* Read the dependency information of an opened ELF file into o. */
static int elf_read_deps(const struct elf_file *f, struct elf_obj *o, ht_err *err)
{
	struct phdr p, dyn = {0, 0, 0, 0}, *loads = NULL;
	struct dyn_info di;
	size_t i, n_loads = 0;
	int have_dyn = 0, rc = 0;
	char *tab = NULL;
	uint64_t tabbase = 0, tablen = 0;

	memset(&di, 0, sizeof di);
	o->id = f->id;
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

/* ---- machines ------------------------------------------------------------------- */

const char *ht_elf_machine_arch(int e_machine)
{
	switch (e_machine) {
	case EM_X86_64: return "amd64";
	case EM_AARCH64: return "arm64";
	case EM_386: return "386";
	case EM_ARM: return "arm";
	case EM_PPC64: return "ppc64le";
	case EM_S390: return "s390x";
	case EM_RISCV: return "riscv64";
	default: return NULL;
	}
}

/* Debian's multiarch tuple of an ELF identity, or NULL. */
static const char *multiarch(const struct elf_id *id)
{
	int is64 = id->cls == ELFCLASS64, le = id->data == ELFDATA2LSB;

	switch (id->machine) {
	case EM_X86_64: return is64 ? "x86_64-linux-gnu" : "x86_64-linux-gnux32";
	case EM_386: return "i386-linux-gnu";
	case EM_AARCH64: return le ? "aarch64-linux-gnu" : "aarch64_be-linux-gnu";
	case EM_ARM:
		return (id->flags & EF_ARM_ABI_FLOAT_HARD) ? "arm-linux-gnueabihf" : "arm-linux-gnueabi";
	case EM_PPC64: return le ? "powerpc64le-linux-gnu" : "powerpc64-linux-gnu";
	case EM_PPC: return "powerpc-linux-gnu";
	case EM_S390: return is64 ? "s390x-linux-gnu" : "s390-linux-gnu";
	case EM_RISCV: return is64 ? "riscv64-linux-gnu" : NULL;
	default: return NULL;
	}
}

/* AT_PLATFORM as the kernel sets it, or NULL when it depends on the CPU. */
static const char *platform(const struct elf_id *id)
{
	switch (id->machine) {
	case EM_X86_64: return "x86_64";
	case EM_386: return "i686";
	case EM_AARCH64: return "aarch64";
	default: return NULL;
	}
}

/* ---- resolution ------------------------------------------------------------- */

struct ctx {
	ht_elfdeps *d;
	struct elf_id id;            /* of the roots */
	struct elf_obj *objs;
	size_t n_objs, cap_objs;
	size_t main_obj;             /* the program (first root with PT_INTERP) */
	const char *cache_path;
	char *cache;                 /* the whole file, NULL when absent or invalid */
	size_t cache_len, cache_new, cache_nlibs;
	int cache_loaded;
	char lib[64];                /* $LIB */
	ht_buf searched;             /* directories tried, for the error message */
};

static int nomem(ht_err *err)
{
	return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
}

static size_t find_obj_path(const struct ctx *c, const char *real)
{
	size_t i;

	for (i = 0; i < c->n_objs; i++)
		if (strcmp(c->objs[i].path, real) == 0)
			return i;
	return NO_OBJ;
}

static char *dir_of(const char *path)
{
	char *abs = ht_abspath(NULL, path), *slash;

	if (!abs)
		return NULL;
	slash = strrchr(abs, '/');
	if (slash == abs)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	return abs;
}

/* Load the ELF file at path (already opened as f) as a new object. */
static int add_obj(struct ctx *c, struct elf_file *f, const char *real, const char *found,
                   size_t loader, size_t *idx, ht_err *err)
{
	struct elf_obj o;
	int rc;

	if (c->n_objs == c->cap_objs) {
		size_t cap = c->cap_objs ? 2 * c->cap_objs : 16;
		struct elf_obj *n = realloc(c->objs, cap * sizeof *n);
		if (!n)
			return nomem(err);
		c->objs = n;
		c->cap_objs = cap;
	}
	memset(&o, 0, sizeof o);
	o.loader = loader;
	o.path = ht_strdup(real);
	o.origin = dir_of(found);
	if (!o.path || !o.origin) {
		obj_clear(&o);
		return nomem(err);
	}
	f->path = real;
	rc = elf_read_deps(f, &o, err);
	if (rc != 0) {
		obj_clear(&o);
		return rc;
	}
	c->objs[c->n_objs] = o;
	*idx = c->n_objs++;
	return 0;
}

/* Expand $ORIGIN, $LIB and $PLATFORM (or ${...}) in s[0..len).  1 when a
 * token has no value here (the loader drops such a directory). */
static int expand(const struct ctx *c, const char *s, size_t len, const char *origin, char **out)
{
	static const char *const names[] = {"ORIGIN", "LIB", "PLATFORM"};
	ht_buf b = HT_BUF_INIT;
	size_t i = 0, k;

	while (i < len) {
		const char *val = NULL;
		size_t used = 0;
		if (s[i] == '$') {
			for (k = 0; k < 3 && !used; k++) {
				size_t nl = strlen(names[k]);
				const char *p = s + i + 1;
				size_t rest = len - i - 1;
				if (rest >= nl + 2 && p[0] == '{' && memcmp(p + 1, names[k], nl) == 0 &&
				    p[nl + 1] == '}')
					used = nl + 3;
				else if (rest >= nl && memcmp(p, names[k], nl) == 0 &&
				         (rest == nl || !(p[nl] == '_' || (p[nl] >= '0' && p[nl] <= '9') ||
				                          ((p[nl] | 0x20) >= 'a' && (p[nl] | 0x20) <= 'z'))))
					used = nl + 1;
				if (used)
					val = k == 0 ? origin : k == 1 ? c->lib : platform(&c->id);
			}
			if (used && !val) {
				ht_buf_free(&b);
				return 1;
			}
		}
		if (used) {
			if (ht_buf_puts(&b, val) != 0)
				goto oom;
			i += used;
		} else {
			if (ht_buf_append(&b, s + i, 1) != 0)
				goto oom;
			i++;
		}
	}
	if (ht_buf_append(&b, "", 0) != 0)
		goto oom;
	*out = ht_buf_steal(&b);
	return 0;
oom:
	ht_buf_free(&b);
	return -1;
}

/* Try one file: 1 found (*idx), 0 not usable (missing, not ELF, another
 * class or machine: the loader goes on), or an error code (negated). */
static int try_file(struct ctx *c, const char *path, size_t loader, size_t *idx, ht_err *err)
{
	struct elf_file f;
	char *real;
	size_t k;
	int rc;

	if (elf_open(&f, path, NULL) != 0 || f.id.cls != c->id.cls || f.id.data != c->id.data ||
	    f.id.machine != c->id.machine || (f.id.type != ET_DYN && f.id.type != ET_EXEC)) {
		elf_close(&f);
		return 0;
	}
	real = realpath(path, NULL);
	if (!real) {
		elf_close(&f);
		return 0;
	}
	k = find_obj_path(c, real);
	if (k != NO_OBJ) {
		*idx = k;
		rc = 1;
	} else {
		rc = add_obj(c, &f, real, path, loader, idx, err);
		rc = rc == 0 ? 1 : -rc;
	}
	free(real);
	elf_close(&f);
	return rc;
}

/* Try name in each directory of list (separated by any of seps). */
static int try_list(struct ctx *c, const char *list, const char *seps, const char *origin,
                    const char *name, size_t loader, size_t *idx, ht_err *err)
{
	const char *p = list;

	for (;;) {
		size_t len = strcspn(p, seps);
		char *dir = NULL, *path;
		int rc = expand(c, p, len, origin, &dir);
		if (rc < 0)
			return -nomem(err);
		if (rc == 0) {
			path = ht_path_join(dir[0] ? dir : ".", name);
			ht_buf_printf(&c->searched, "%s%s", c->searched.len ? ", " : "",
			              dir[0] ? dir : ".");
			free(dir);
			if (!path)
				return -nomem(err);
			rc = try_file(c, path, loader, idx, err);
			free(path);
			if (rc != 0)
				return rc;
		}
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

/* Read the ld.so cache once; an absent or invalid one is ignored, as the
 * loader does.  Layout (glibc's "new" format, alone or after the old one):
 * 20-byte magic "glibc-ld.so.cache1.1", nlibs, len_strings, a byte order
 * flag, 3 pad bytes, extension offset, 3 unused words; then nlibs entries
 * {int32 flags, uint32 key, uint32 value, uint32 osversion, uint64 hwcap};
 * string offsets count from the magic. */
static void cache_load(struct ctx *c)
{
	static const char magic_new[] = "glibc-ld.so.cache1.1", magic_old[] = "ld.so-1.7.0";
	size_t off = 0, len;
	char *data;
	const unsigned char *h;
	uint32_t nlibs;
	int order;

	c->cache_loaded = 1;
	if (ht_read_file(c->cache_path, &data, &len, NULL) != 0)
		return;
	if (len >= 16 && memcmp(data, magic_old, sizeof magic_old) == 0) {
		uint32_t n;
		memcpy(&n, data + 12, 4);
		if (n > (len - 16) / 12) {
			free(data);
			return;
		}
		off = (16 + (size_t)n * 12 + 7) & ~(size_t)7;
	}
	if (off > len || len - off < 48 || memcmp(data + off, magic_new, 20) != 0) {
		free(data);
		return;
	}
	h = (const unsigned char *)data + off;
	order = h[28];
	if (order == 1 || order > 3 ||
	    (order != 0 && (order == 3) != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__))) {
		free(data);
		return;
	}
	memcpy(&nlibs, h + 20, 4);
	if (nlibs > (len - off - 48) / 24) {
		free(data);
		return;
	}
	c->cache_nlibs = nlibs;
	c->cache = data;
	c->cache_len = len;
	c->cache_new = off;
}

/* A string of the cache, or NULL when out of bounds. */
static const char *cache_str(const struct ctx *c, uint32_t off)
{
	size_t at = c->cache_new + off;

	if (at < c->cache_new || at >= c->cache_len ||
	    !memchr(c->cache + at, '\0', c->cache_len - at))
		return NULL;
	return c->cache + at;
}

/* The first usable entry for name, in the cache's order (ldconfig's order
 * of the directories); entries for glibc-hwcaps or legacy hwcap
 * subdirectories are not taken (the layer must run on any CPU). */
static int try_cache(struct ctx *c, const char *name, size_t loader, size_t *idx, ht_err *err)
{
	size_t i;

	if (!c->cache_loaded)
		cache_load(c);
	ht_buf_printf(&c->searched, "%s%s", c->searched.len ? ", " : "", c->cache_path);
	for (i = 0; c->cache && i < c->cache_nlibs; i++) {
		const char *e = c->cache + c->cache_new + 48 + i * 24, *key, *value;
		int32_t flags;
		uint32_t k, v;
		uint64_t hwcap;
		int rc;
		memcpy(&flags, e, 4);
		memcpy(&k, e + 4, 4);
		memcpy(&v, e + 8, 4);
		memcpy(&hwcap, e + 16, 8);
		if (((flags & 0xff) != 1 && (flags & 0xff) != 3) || hwcap != 0)
			continue;
		key = cache_str(c, k);
		if (!key || strcmp(key, name) != 0 || !(value = cache_str(c, v)))
			continue;
		rc = try_file(c, value, loader, idx, err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int try_defaults(struct ctx *c, const char *name, size_t loader, size_t *idx, ht_err *err)
{
	const char *ma = multiarch(&c->id);
	char *dirs = ht_asprintf("%s%s%s%s%s%s/lib:/usr/lib", ma ? "/lib/" : "", ma ? ma : "",
	                         ma ? ":/usr/lib/" : "", ma ? ma : "", ma ? ":" : "",
	                         c->id.cls == ELFCLASS64 ? "/lib64:/usr/lib64:" : "");
	int rc;

	if (!dirs)
		return -nomem(err);
	rc = try_list(c, dirs, ":", "", name, loader, idx, err);
	free(dirs);
	return rc;
}

/* Find the object for DT_NEEDED name of objs[loader]: 0 and *idx, or an error. */
static int resolve_one(struct ctx *c, size_t loader, const char *name, size_t *idx, ht_err *err)
{
	const char *lib_path = getenv("LD_LIBRARY_PATH");
	size_t k, l;
	int rc = 0, did_main = 0;

	/* already loaded under that soname */
	for (k = 0; k < c->n_objs; k++) {
		if (c->objs[k].soname && strcmp(c->objs[k].soname, name) == 0) {
			*idx = k;
			return 0;
		}
	}
	c->searched.len = 0;
	if (c->searched.data)
		c->searched.data[0] = '\0';
	if (strchr(name, '/')) {
		char *path = NULL;
		rc = expand(c, name, strlen(name), c->objs[loader].origin, &path);
		if (rc < 0)
			return nomem(err);
		if (rc == 0) {
			rc = try_file(c, path, loader, idx, err);
			free(path);
		} else {
			rc = 0;
		}
		if (rc == 0)
			return ht_err_set(err, HYPERTEST_ERR_NOT_FOUND,
			                  "%s needed by %s: no such ELF file of the same machine", name,
			                  c->objs[loader].path);
		return rc > 0 ? 0 : -rc;
	}
	if (!c->objs[loader].runpath) {
		for (l = loader; rc == 0 && l != NO_OBJ; l = c->objs[l].loader) {
			/* only the program's DT_RPATH is void beside a DT_RUNPATH */
			if (c->objs[l].rpath && !(l == c->main_obj && c->objs[l].runpath))
				rc = try_list(c, c->objs[l].rpath, ":", c->objs[l].origin, name, loader,
				              idx, err);
			did_main |= l == c->main_obj;
		}
		if (rc == 0 && !did_main && c->main_obj != NO_OBJ && c->objs[c->main_obj].rpath &&
		    !c->objs[c->main_obj].runpath)
			rc = try_list(c, c->objs[c->main_obj].rpath, ":", c->objs[c->main_obj].origin,
			              name, loader, idx, err);
	}
	if (rc == 0 && lib_path && *lib_path)
		rc = try_list(c, lib_path, ":;", c->objs[c->main_obj != NO_OBJ ? c->main_obj : 0].origin,
		              name, loader, idx, err);
	if (rc == 0 && c->objs[loader].runpath)
		rc = try_list(c, c->objs[loader].runpath, ":", c->objs[loader].origin, name, loader,
		              idx, err);
	if (rc == 0 && !c->objs[loader].nodeflib)
		rc = try_cache(c, name, loader, idx, err);
	if (rc == 0 && !c->objs[loader].nodeflib)
		rc = try_defaults(c, name, loader, idx, err);
	if (rc == 0)
		return ht_err_set(err, HYPERTEST_ERR_NOT_FOUND, "%s needed by %s not found (searched %s)",
		                  name, c->objs[loader].path,
		                  c->searched.data ? c->searched.data : "nothing");
	return rc > 0 ? 0 : -rc;
}

static int add_entry(ht_elfdeps *d, const char *name, const char *path)
{
	struct entry *e;

	if (d->n_ents == d->cap_ents) {
		size_t cap = d->cap_ents ? 2 * d->cap_ents : 16;
		e = realloc(d->ents, cap * sizeof *e);
		if (!e)
			return HYPERTEST_ERR_NOMEM;
		d->ents = e;
		d->cap_ents = cap;
	}
	e = &d->ents[d->n_ents];
	e->name = ht_strdup(name);
	e->path = ht_strdup(path);
	if (!e->name || !e->path) {
		free(e->name);
		free(e->path);
		return HYPERTEST_ERR_NOMEM;
	}
	d->n_ents++;
	return 0;
}

static int has_entry(const ht_elfdeps *d, const char *name)
{
	size_t i;

	for (i = 0; i < d->n_ents; i++)
		if (strcmp(d->ents[i].name, name) == 0)
			return 1;
	return 0;
}

/* Load the dependencies of objs[from..], breadth-first. */
static int load_queue(struct ctx *c, size_t from, ht_err *err)
{
	size_t i, j, idx;
	int rc;

	for (i = from; i < c->n_objs; i++) {
		for (j = 0; j < c->objs[i].n_needed; j++) {
			const char *name = c->objs[i].needed[j];
			if (has_entry(c->d, name))
				continue;
			if ((rc = resolve_one(c, i, name, &idx, err)) != 0)
				return rc;
			if (add_entry(c->d, name, c->objs[idx].path) != 0)
				return nomem(err);
		}
	}
	return 0;
}

static int same_machine(const struct elf_id *a, const struct elf_id *b)
{
	return a->cls == b->cls && a->data == b->data && a->machine == b->machine;
}

/* Open and load path (a root or the interpreter) unless already loaded. */
static int add_root_file(struct ctx *c, const char *path, int first, const char *what,
                         size_t *idx, ht_err *err)
{
	struct elf_file f;
	char *real = realpath(path, NULL);
	int rc;

	if (!real)
		return ht_err_set(err, errno == ENOENT ? HYPERTEST_ERR_NOT_FOUND : HYPERTEST_ERR_IO,
		                  "%s%s: %s", what, path, strerror(errno));
	*idx = find_obj_path(c, real);
	if (*idx != NO_OBJ) {
		free(real);
		return 0;
	}
	rc = elf_open(&f, real, err);
	if (rc == 0 && f.id.type != ET_EXEC && f.id.type != ET_DYN)
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
		                "%s: not an executable or shared object (e_type %d)", real, f.id.type);
	if (rc == 0 && first)
		c->id = f.id;
	if (rc == 0 && !same_machine(&f.id, &c->id))
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
		                "%s%s is for machine %d (%s, %d-bit), %s for machine %d (%s, %d-bit)",
		                what, real, f.id.machine, ht_elf_machine_arch(f.id.machine) ?
		                ht_elf_machine_arch(f.id.machine) : "?", f.id.cls == ELFCLASS64 ? 64 : 32,
		                c->objs[0].path, c->id.machine, ht_elf_machine_arch(c->id.machine) ?
		                ht_elf_machine_arch(c->id.machine) : "?", c->id.cls == ELFCLASS64 ? 64 : 32);
	if (rc == 0)
		rc = add_obj(c, &f, real, real, NO_OBJ, idx, err);
	elf_close(&f);
	free(real);
	return rc;
}

static int resolve(struct ctx *c, const char *const *roots, size_t n, ht_err *err)
{
	const char *ma;
	size_t r, idx, from;
	int rc;

	for (r = 0; r < n; r++) {
		if (!roots[r] || !*roots[r])
			return ht_err_set(err, HYPERTEST_ERR_INVALID, "ELF root %zu: empty path", r);
		from = c->n_objs;
		if ((rc = add_root_file(c, roots[r], r == 0, "", &idx, err)) != 0)
			return rc;
		if (r == 0) {
			ma = multiarch(&c->id);
			if (ma)
				snprintf(c->lib, sizeof c->lib, "lib/%s", ma);
			else
				snprintf(c->lib, sizeof c->lib, "%s",
				         c->id.cls == ELFCLASS64 ? "lib64" : "lib");
		}
		if (c->objs[idx].interp && !c->d->interp) {
			size_t ii;
			if (!(c->d->interp = ht_strdup(c->objs[idx].interp)))
				return nomem(err);
			if (c->main_obj == NO_OBJ)
				c->main_obj = idx;
			rc = add_root_file(c, c->d->interp, 0, "interpreter ", &ii, err);
			if (rc != 0) {
				ht_err_prefix(err, "%s", c->objs[idx].path);
				return rc;
			}
			if (!(c->d->interp_path = ht_strdup(c->objs[ii].path)))
				return nomem(err);
		}
		if ((rc = load_queue(c, from, err)) != 0)
			return rc;
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

int ht_elfdeps_resolve_cache(const char *const *roots, size_t n, const char *ld_cache,
                             ht_elfdeps **out, ht_err *err)
{
	struct ctx c;
	size_t i;
	int rc;

	*out = NULL;
	if (!roots || n == 0)
		return ht_err_set(err, HYPERTEST_ERR_INVALID, "no ELF file to resolve");
	memset(&c, 0, sizeof c);
	c.main_obj = NO_OBJ;
	c.cache_path = ld_cache ? ld_cache : DEFAULT_CACHE;
	c.d = calloc(1, sizeof *c.d);
	if (!c.d)
		return nomem(err);
	rc = resolve(&c, roots, n, err);
	if (rc == 0) {
		c.d->machine = c.id.machine;
		if (c.d->n_ents)
			qsort(c.d->ents, c.d->n_ents, sizeof *c.d->ents, cmp_entry);
		*out = c.d;
	} else {
		ht_elfdeps_free(c.d);
	}
	for (i = 0; i < c.n_objs; i++)
		obj_clear(&c.objs[i]);
	free(c.objs);
	free(c.cache);
	ht_buf_free(&c.searched);
	return rc;
}

int ht_elfdeps_resolve(const char *const *roots, size_t n, ht_elfdeps **out, ht_err *err)
{
	return ht_elfdeps_resolve_cache(roots, n, DEFAULT_CACHE, out, err);
}

const char *ht_elfdeps_interp(const ht_elfdeps *d)
{
	return d->interp;
}

const char *ht_elfdeps_interp_path(const ht_elfdeps *d)
{
	return d->interp_path;
}

size_t ht_elfdeps_count(const ht_elfdeps *d)
{
	return d->n_ents;
}

const char *ht_elfdeps_soname(const ht_elfdeps *d, size_t i)
{
	return i < d->n_ents ? d->ents[i].name : NULL;
}

const char *ht_elfdeps_path(const ht_elfdeps *d, size_t i)
{
	return i < d->n_ents ? d->ents[i].path : NULL;
}

int ht_elfdeps_machine(const ht_elfdeps *d)
{
	return d->machine;
}

void ht_elfdeps_free(ht_elfdeps *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n_ents; i++) {
		free(d->ents[i].name);
		free(d->ents[i].path);
	}
	free(d->ents);
	free(d->interp);
	free(d->interp_path);
	free(d);
}
