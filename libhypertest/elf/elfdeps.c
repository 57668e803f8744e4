/*
 * elfdeps.c - the closure of the shared libraries ELF objects need, found
 * as glibc's ld.so finds them, without running anything: each DT_NEEDED,
 * breadth-first, looked up in the DT_RPATH chain (objects without
 * DT_RUNPATH), LD_LIBRARY_PATH, the object's DT_RUNPATH, /etc/ld.so.cache
 * and the default directories, skipping files of another class or machine.
 *
 * The ELF files are read by elffile.c, the cache by ldcache.c; this file
 * holds the loader's search rules.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfdeps.h"
#include "elffile.h"
#include "ldcache.h"

#define NO_OBJ ((size_t)-1)
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

/* One loaded object. */
struct elf_obj {
	char *path;     /* real path */
	char *origin;   /* $ORIGIN: the directory it was found in */
	struct ht_elf_deps dyn;
	size_t loader;  /* the object whose DT_NEEDED loaded it, NO_OBJ for roots */
};

static void obj_clear(struct elf_obj *o)
{
	ht_elf_deps_clear(&o->dyn);
	free(o->path);
	free(o->origin);
	memset(o, 0, sizeof *o);
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
static const char *multiarch(const struct ht_elf_id *id)
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
static const char *platform(const struct ht_elf_id *id)
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
	struct ht_elf_id id;         /* of the roots */
	struct elf_obj *objs;
	size_t n_objs, cap_objs;
	size_t main_obj;             /* the program (first root with PT_INTERP) */
	const char *cache_path;
	struct ht_ldcache cache;     /* empty when absent or invalid */
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
static int add_obj(struct ctx *c, struct ht_elf_file *f, const char *real, const char *found,
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
	rc = ht_elf_read_deps(f, &o.dyn, err);
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
	struct ht_elf_file f;
	char *real;
	size_t k;
	int rc;

	if (ht_elf_open(&f, path, NULL) != 0 || f.id.cls != c->id.cls || f.id.data != c->id.data ||
	    f.id.machine != c->id.machine || (f.id.type != ET_DYN && f.id.type != ET_EXEC)) {
		ht_elf_close(&f);
		return 0;
	}
	real = realpath(path, NULL);
	if (!real) {
		ht_elf_close(&f);
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
	ht_elf_close(&f);
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

/* The usable entries for name, in the cache's order (ldconfig's order of
 * the directories); the cache is read once. */
static int try_cache(struct ctx *c, const char *name, size_t loader, size_t *idx, ht_err *err)
{
	const char *value;
	size_t pos = 0;

	if (!c->cache_loaded) {
		ht_ldcache_load(&c->cache, c->cache_path);
		c->cache_loaded = 1;
	}
	ht_buf_printf(&c->searched, "%s%s", c->searched.len ? ", " : "", c->cache_path);
	while ((value = ht_ldcache_next(&c->cache, name, &pos)) != NULL) {
		int rc = try_file(c, value, loader, idx, err);
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
		if (c->objs[k].dyn.soname && strcmp(c->objs[k].dyn.soname, name) == 0) {
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
	if (!c->objs[loader].dyn.runpath) {
		for (l = loader; rc == 0 && l != NO_OBJ; l = c->objs[l].loader) {
			/* only the program's DT_RPATH is void beside a DT_RUNPATH */
			if (c->objs[l].dyn.rpath && !(l == c->main_obj && c->objs[l].dyn.runpath))
				rc = try_list(c, c->objs[l].dyn.rpath, ":", c->objs[l].origin, name, loader,
				              idx, err);
			did_main |= l == c->main_obj;
		}
		if (rc == 0 && !did_main && c->main_obj != NO_OBJ && c->objs[c->main_obj].dyn.rpath &&
		    !c->objs[c->main_obj].dyn.runpath)
			rc = try_list(c, c->objs[c->main_obj].dyn.rpath, ":", c->objs[c->main_obj].origin,
			              name, loader, idx, err);
	}
	if (rc == 0 && lib_path && *lib_path)
		rc = try_list(c, lib_path, ":;", c->objs[c->main_obj != NO_OBJ ? c->main_obj : 0].origin,
		              name, loader, idx, err);
	if (rc == 0 && c->objs[loader].dyn.runpath)
		rc = try_list(c, c->objs[loader].dyn.runpath, ":", c->objs[loader].origin, name, loader,
		              idx, err);
	if (rc == 0 && !c->objs[loader].dyn.nodeflib)
		rc = try_cache(c, name, loader, idx, err);
	if (rc == 0 && !c->objs[loader].dyn.nodeflib)
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
		for (j = 0; j < c->objs[i].dyn.n_needed; j++) {
			const char *name = c->objs[i].dyn.needed[j];
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

static int same_machine(const struct ht_elf_id *a, const struct ht_elf_id *b)
{
	return a->cls == b->cls && a->data == b->data && a->machine == b->machine;
}

/* Open and load path (a root or the interpreter) unless already loaded. */
static int add_root_file(struct ctx *c, const char *path, int first, const char *what,
                         size_t *idx, ht_err *err)
{
	struct ht_elf_file f;
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
	rc = ht_elf_open(&f, real, err);
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
	ht_elf_close(&f);
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
		if (c->objs[idx].dyn.interp && !c->d->interp) {
			size_t ii;
			if (!(c->d->interp = ht_strdup(c->objs[idx].dyn.interp)))
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
	ht_ldcache_free(&c.cache);
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
