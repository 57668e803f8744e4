/*
 * plugins.c - plugin discovery and loading.  Modules are found on the
 * plugin path (HYPERTEST_PLUGIN_PATH, the configuration's pluginPath, the
 * installed plugin directory; or just the files HYPERTEST_PLUGIN_MODULES
 * names), opened with libltdl, their descriptor checked
 * before any of their code runs, then initialised; they register plugins by
 * name.  The first plugin of a kind and name on the path wins.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ltdl.h>

#include "core.h"

struct ht_module {
	char *path;
	lt_dlhandle handle;
};

/* libltdl keeps global state: every call into it holds this lock. */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;
/* A module's init may set its own statics: handles scanning in several
 * threads initialise modules one at a time. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *kind_name(int kind)
{
	return kind == HYPERTEST_KIND_RUNNER ? "runner" : kind == HYPERTEST_KIND_PROVIDER ? "provider" : "";
}

static void plugin_clear(ht_plugin *p)
{
	free(p->name);
	free(p->description);
	free(p->path);
	free(p->version);
	free(p->error);
}

void ht_registry_free(ht_plugin_registry *reg)
{
	size_t i;

	for (i = 0; i < reg->nplugins; i++)
		plugin_clear(&reg->plugins[i]);
	free(reg->plugins);
	pthread_mutex_lock(&ltdl_lock);
	for (i = 0; i < reg->nmodules; i++) {
		if (reg->modules[i]->handle) {
			lt_dlclose(reg->modules[i]->handle);
			lt_dlexit();
		}
		free(reg->modules[i]->path);
		free(reg->modules[i]);
	}
	pthread_mutex_unlock(&ltdl_lock);
	free(reg->modules);
	free(reg->search_path);
	memset(reg, 0, sizeof *reg);
}

static ht_plugin *add_entry(ht_plugin_registry *reg)
{
	ht_plugin *p = realloc(reg->plugins, (reg->nplugins + 1) * sizeof *p);
	if (!p)
		return NULL;
	reg->plugins = p;
	p = &reg->plugins[reg->nplugins++];
	memset(p, 0, sizeof *p);
	return p;
}

static void add_failure(ht_plugin_registry *reg, const char *path, const char *fmt, ...) HT_PRINTF(3, 4);
static void add_failure(ht_plugin_registry *reg, const char *path, const char *fmt, ...)
{
	ht_plugin *p = add_entry(reg);
	char msg[1024];
	va_list ap;

	if (!p)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->state = HT_PLUGIN_FAILED;
	p->path = ht_strdup(path);
	p->error = ht_strdup(msg);
	p->name = ht_strdup("");
	p->version = ht_strdup("");
	p->description = ht_strdup("");
}

/* HYPERTEST_UP_REGISTER */
int ht_module_register(struct hypertest_core *core, int kind, const char *name,
                       const char *description, const hypertest_dispatch *ops)
{
	ht_plugin_registry *reg = core ? core->reg : NULL;
	const hypertest_plugin_descriptor *desc;
	ht_plugin *p;
	size_t i;

	if (!reg || !core->module)
		return HYPERTEST_ERR_INVALID; /* only during hypertest_plugin_init */
	if ((kind != HYPERTEST_KIND_RUNNER && kind != HYPERTEST_KIND_PROVIDER) || !name || !*name ||
	    !ops)
		return HYPERTEST_ERR_INVALID;
	pthread_mutex_lock(&ltdl_lock);
	desc = lt_dlsym(core->module->handle, "hypertest_plugin_info");
	pthread_mutex_unlock(&ltdl_lock);
	p = add_entry(reg);
	if (!p)
		return HYPERTEST_ERR_NOMEM;
	p->kind = kind;
	p->name = ht_strdup(name);
	p->description = ht_strdup(description ? description : "");
	p->path = ht_strdup(core->module->path);
	p->version = ht_strdup(desc && desc->version ? desc->version : "");
	p->error = ht_strdup("");
	p->ops = ops;
	p->module = core->module;
	if (desc)
		snprintf(p->abi, sizeof p->abi, "%u.%u", (unsigned)desc->abi_major,
		         (unsigned)desc->abi_minor);
	p->state = HT_PLUGIN_LOADED;
	for (i = 0; i + 1 < reg->nplugins; i++) {
		ht_plugin *q = &reg->plugins[i];
		if (q->state != HT_PLUGIN_FAILED && q->kind == kind && !strcmp(q->name, name)) {
			p->state = HT_PLUGIN_SHADOWED;
			free(p->error);
			p->error = ht_asprintf("shadowed by %s", q->path);
			break;
		}
	}
	core->registered++;
	return HYPERTEST_OK;
}

/* Close every module but the ones of keep[0..n): a function serves with
 * one provider and one runner, and each module left loaded (and the
 * libraries it pulls in: the aws provider alone maps some thirty) is
 * mappings that every fork of a fork server copies and every exit tears
 * down.  The released modules' plugins stay listed, failed, with nothing
 * to call. */
void ht_plugins_release_unused(ht_plugin_registry *reg, const ht_plugin *const *keep, size_t n)
{
	size_t i, j, k;

	pthread_mutex_lock(&ltdl_lock);
	for (i = 0; i < reg->nmodules; i++) {
		ht_module *m = reg->modules[i];
		int used = 0;
		for (k = 0; k < n && !used; k++)
			used = keep[k] && keep[k]->module == m;
		if (used || !m->handle)
			continue;
		for (j = 0; j < reg->nplugins; j++) {
			ht_plugin *p = &reg->plugins[j];
			if (p->module != m)
				continue;
			p->ops = NULL;
			p->module = NULL;
			if (p->state != HT_PLUGIN_FAILED) {
				p->state = HT_PLUGIN_FAILED;
				free(p->error);
				p->error = ht_strdup("unloaded: the function serves with other plugins");
			}
		}
		lt_dlclose(m->handle);
		lt_dlexit();
		m->handle = NULL;
	}
	pthread_mutex_unlock(&ltdl_lock);
}

static void load_module(hypertest *h, ht_plugin_registry *reg, const char *path)
{
	const hypertest_plugin_descriptor *desc;
	hypertest_plugin_init_fn init;
	struct hypertest_core core;
	ht_module *m, **mods;
	lt_dladvise advise;
	lt_dlhandle handle = NULL;
	size_t i;
	int rc;

	for (i = 0; i < reg->nmodules; i++)
		if (!strcmp(reg->modules[i]->path, path))
			return; /* the same directory listed twice */

	pthread_mutex_lock(&ltdl_lock);
	if (lt_dlinit() != 0) {
		pthread_mutex_unlock(&ltdl_lock);
		add_failure(reg, path, "cannot initialise the module loader");
		return;
	}
	if (lt_dladvise_init(&advise) == 0) {
		lt_dladvise_local(&advise);
		handle = lt_dlopenadvise(path, advise);
		lt_dladvise_destroy(&advise);
	}
	if (!handle) {
		const char *why = lt_dlerror();
		add_failure(reg, path, "cannot load module: %s", why ? why : "unknown reason");
		lt_dlexit();
		pthread_mutex_unlock(&ltdl_lock);
		return;
	}
	desc = lt_dlsym(handle, "hypertest_plugin_info");
	init = (hypertest_plugin_init_fn)(uintptr_t)lt_dlsym(handle, "hypertest_plugin_init");
	pthread_mutex_unlock(&ltdl_lock);

	m = calloc(1, sizeof *m);
	mods = realloc(reg->modules, (reg->nmodules + 1) * sizeof *mods);
	if (!m || !mods) {
		free(m);
		if (mods)
			reg->modules = mods;
		pthread_mutex_lock(&ltdl_lock);
		lt_dlclose(handle);
		lt_dlexit();
		pthread_mutex_unlock(&ltdl_lock);
		return;
	}
	reg->modules = mods;
	m->path = ht_strdup(path);
	m->handle = handle;
	reg->modules[reg->nmodules++] = m;

	/* Check the descriptor before running anything of the module. */
	if (!desc) {
		add_failure(reg, path, "not a hypertest plugin: no hypertest_plugin_info symbol");
		return;
	}
	if (desc->magic != HYPERTEST_PLUGIN_MAGIC) {
		add_failure(reg, path, "not a hypertest plugin: bad magic 0x%08x in hypertest_plugin_info",
		            (unsigned)desc->magic);
		return;
	}
	if (desc->abi_major != HYPERTEST_PLUGIN_ABI_MAJOR) {
		add_failure(reg, path,
		            "plugin ABI %u.%u is not supported: this hypertest implements plugin ABI "
		            "%d.%d (major versions differ; rebuild the plugin against hypertest %s)",
		            (unsigned)desc->abi_major, (unsigned)desc->abi_minor,
		            HYPERTEST_PLUGIN_ABI_MAJOR, HYPERTEST_PLUGIN_ABI_MINOR, hypertest_version());
		return;
	}
	if (desc->abi_minor > HYPERTEST_PLUGIN_ABI_MINOR) {
		add_failure(reg, path,
		            "plugin ABI %u.%u is newer than this hypertest's plugin ABI %d.%d "
		            "(upgrade hypertest or rebuild the plugin)",
		            (unsigned)desc->abi_major, (unsigned)desc->abi_minor,
		            HYPERTEST_PLUGIN_ABI_MAJOR, HYPERTEST_PLUGIN_ABI_MINOR);
		return;
	}
	if (!init) {
		add_failure(reg, path, "not a hypertest plugin: no hypertest_plugin_init symbol");
		return;
	}
	memset(&core, 0, sizeof core);
	core.h = h;
	core.module = m;
	core.reg = reg;
	ht_err_clear(&h->err);
	pthread_mutex_lock(&init_lock);
	rc = init(&core, ht_upcalls);
	pthread_mutex_unlock(&init_lock);
	if (rc != 0) {
		add_failure(reg, path, "hypertest_plugin_init failed (%d%s%s)", rc,
		            h->err.msg[0] ? ": " : "", h->err.msg);
		ht_err_clear(&h->err);
		return;
	}
	if (core.registered == 0)
		add_failure(reg, path, "module %s registered no plugin",
		            desc->module ? desc->module : "?");
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && !strcmp(s + n - m, suffix);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_dir(hypertest *h, ht_plugin_registry *reg, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, i;

	if (!d) {
		if (errno != ENOENT)
			ht_log(h, HYPERTEST_LOG_DEBUG, "plugin directory %s: %s", dir, strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char **grown;
		if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".so"))
			continue;
		grown = realloc(names, (n + 1) * sizeof *names);
		if (!grown)
			break;
		names = grown;
		names[n] = ht_path_join(dir, e->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n > 1) /* names is NULL for a directory without modules */
		qsort(names, n, sizeof *names, cmp_str);
	for (i = 0; i < n; i++) {
		load_module(h, reg, names[i]);
		free(names[i]);
	}
	free(names);
}

static void append_dirs(ht_buf *path, const char *list, const char *base)
{
	const char *p = list;

	while (p && *p) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 0) {
			char *dir = ht_asprintf("%.*s", (int)len, p);
			char *abs = dir ? ht_abspath(base, dir) : NULL;
			if (abs) {
				if (path->len)
					ht_buf_puts(path, ":");
				ht_buf_puts(path, abs);
			}
			free(abs);
			free(dir);
		}
		p = end ? end + 1 : NULL;
	}
}

/* HYPERTEST_PLUGIN_MODULES, when set, names the module files to load, and
 * no directory is searched: a provider that starts the function program
 * on this machine passes HYPERTEST_CORE_FUNCTION_MODULES there, so that
 * the function loads its own two modules alone (a module that is loaded
 * once keeps the libraries it pulls in that cannot be unloaded, and every
 * fork of a fork server copies their mappings). */
int ht_plugins_scan(hypertest *h)
{
	ht_buf path = HT_BUF_INIT;
	const char *only = getenv("HYPERTEST_PLUGIN_MODULES");
	char *extra = ht_config_loaded(h->cfg) ? ht_config_plugin_path(h->cfg, h->project_dir) : NULL;
	const char *p;

	if (h->scanned && ((!extra && !h->scanned_extra) ||
	                   (extra && h->scanned_extra && !strcmp(extra, h->scanned_extra)))) {
		free(extra);
		return HYPERTEST_OK;
	}
	ht_registry_free(&h->reg);
	free(h->function_modules);
	h->function_modules = NULL;
	if (only && *only) {
		append_dirs(&path, only, h->project_dir);
	} else {
		only = NULL;
		append_dirs(&path, getenv("HYPERTEST_PLUGIN_PATH"), h->project_dir);
		append_dirs(&path, extra, h->project_dir);
		append_dirs(&path, HT_PLUGINDIR, NULL);
	}
	if (!path.data && ht_buf_puts(&path, "") != HYPERTEST_OK) {
		free(extra);
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	h->reg.search_path = ht_buf_steal(&path);
	for (p = h->reg.search_path; p && *p;) {
		const char *end = strchr(p, ':');
		char *dir = ht_asprintf("%.*s", (int)(end ? (size_t)(end - p) : strlen(p)), p);
		if (dir && only)
			load_module(h, &h->reg, dir);
		else if (dir)
			scan_dir(h, &h->reg, dir);
		free(dir);
		p = end ? end + 1 : NULL;
	}
	free(h->scanned_extra);
	h->scanned_extra = extra;
	h->scanned = 1;
	return HYPERTEST_OK;
}

/* HYPERTEST_CORE_FUNCTION_MODULES: the files of the configured provider's
 * and runner's modules, "" unless both are loaded. */
const char *ht_function_modules(hypertest *h)
{
	const ht_plugin *prov, *run;

	if (h->function_modules)
		return h->function_modules;
	if (!ht_config_loaded(h->cfg) || ht_plugins_scan(h) != HYPERTEST_OK)
		return "";
	prov = ht_plugin_lookup(h, HYPERTEST_KIND_PROVIDER,
	                        ht_config_plugin_name(h->cfg, "cloudProvider"));
	run = ht_plugin_lookup(h, HYPERTEST_KIND_RUNNER, ht_config_plugin_name(h->cfg, "testRunner"));
	if (!prov || !run)
		return "";
	if (prov->module == run->module)
		h->function_modules = ht_strdup(prov->path);
	else
		h->function_modules = ht_asprintf("%s:%s", prov->path, run->path);
	return h->function_modules ? h->function_modules : "";
}

int hypertest_plugins_scan(hypertest *h)
{
	if (!h)
		return HYPERTEST_ERR_INVALID;
	return ht_plugins_scan(h);
}

size_t hypertest_plugin_count(const hypertest *h)
{
	return h ? h->reg.nplugins : 0;
}

const char *hypertest_plugin_str(const hypertest *h, size_t i, int field)
{
	const ht_plugin *p;
	static const char *const states[] = {"loaded", "shadowed", "failed"};

	if (!h || i >= h->reg.nplugins)
		return NULL;
	p = &h->reg.plugins[i];
	switch (field) {
	case HYPERTEST_PLUGIN_NAME: return p->name;
	case HYPERTEST_PLUGIN_KIND: return kind_name(p->kind);
	case HYPERTEST_PLUGIN_PATH: return p->path;
	case HYPERTEST_PLUGIN_ABI: return p->abi;
	case HYPERTEST_PLUGIN_STATE: return states[p->state];
	case HYPERTEST_PLUGIN_ERROR: return p->error ? p->error : "";
	case HYPERTEST_PLUGIN_VERSION: return p->version;
	case HYPERTEST_PLUGIN_DESCRIPTION: return p->description;
	default: return NULL;
	}
}

const char *hypertest_plugin_search_path(const hypertest *h)
{
	return h && h->reg.search_path ? h->reg.search_path : "";
}

hypertest_fn ht_op(const ht_plugin *p, int id)
{
	const hypertest_dispatch *d;
	for (d = p->ops; d && d->id != 0; d++)
		if (d->id == id)
			return d->fn;
	return NULL;
}

ht_plugin *ht_plugin_lookup(hypertest *h, int kind, const char *name)
{
	size_t i;

	for (i = 0; name && i < h->reg.nplugins; i++) {
		ht_plugin *p = &h->reg.plugins[i];
		if (p->state == HT_PLUGIN_LOADED && p->kind == kind && !strcmp(p->name, name))
			return p;
	}
	return NULL;
}

int ht_plugin_find(hypertest *h, int kind, const char *name, ht_plugin **out)
{
	ht_buf found = HT_BUF_INIT;
	size_t i;
	int rc;

	if ((*out = ht_plugin_lookup(h, kind, name)) != NULL)
		return HYPERTEST_OK;
	for (i = 0; i < h->reg.nplugins; i++) {
		ht_plugin *p = &h->reg.plugins[i];
		if (p->state == HT_PLUGIN_LOADED && p->kind == kind)
			ht_buf_printf(&found, "%s'%s' (%s)", found.len ? ", " : "", p->name, p->path);
	}
	for (i = 0; i < h->reg.nplugins; i++) {
		ht_plugin *p = &h->reg.plugins[i];
		if (p->state == HT_PLUGIN_FAILED)
			ht_buf_printf(&found, "%s%s failed to load: %s", found.len ? "; " : "", p->path,
			              p->error);
	}
	rc = ht_fail(h, HYPERTEST_ERR_PLUGIN,
	             "unknown %s plugin '%s'; found: %s; searched: %s", kind_name(kind), name,
	             found.len ? found.data : "none", h->reg.search_path ? h->reg.search_path : "");
	ht_buf_free(&found);
	return rc;
}

int ht_plugin_error(hypertest *h, ht_instance *inst, int rc, const char *what)
{
	char prefix[256];
	ht_plugin *p = inst->core.plugin;

	snprintf(prefix, sizeof prefix, "%s '%s'", kind_name(p->kind), p->name);
	if (h->err.code != rc || !h->err.msg[0])
		return ht_fail(h, rc, "%s: %s failed: %s", prefix, what, hypertest_strerror(rc));
	if (strncmp(h->err.msg, prefix, strlen(prefix)) != 0)
		ht_err_prefix(&h->err, "%s", prefix);
	return rc;
}

/* A plugin's option error ("option 'region' must be ...", "unknown option
 * 'regoin' ...") gets the position of the option it names in the
 * configuration, and its key path: "FILE:LINE:COLUMN: key
 * 'cloudProvider.options.region': provider 'aws': option 'region' ...".  A
 * message naming no option is left as it is. */
static void locate_option(hypertest *h, const char *section)
{
	const char *at = strstr(h->err.msg, "option '"), *end;
	char key[256], msg[sizeof h->err.msg];
	size_t n;

	if (!at)
		return;
	at += strlen("option '");
	end = strchr(at, '\'');
	n = end ? (size_t)(end - at) : 0;
	if (n == 0 || n > 128 || memchr(at, '.', n))
		return;
	snprintf(key, sizeof key, "%s.options.%.*s", section, (int)n, at);
	memcpy(msg, h->err.msg, sizeof msg);
	ht_config_key_error(h->cfg, key, msg, &h->err);
}

int ht_instance_create(hypertest *h, int kind, ht_instance **out)
{
	const char *section = kind == HYPERTEST_KIND_RUNNER ? "testRunner" : "cloudProvider";
	const char *name = ht_config_plugin_name(h->cfg, section);
	hypertest_OP_CREATE_fn create;
	ht_instance *inst;
	ht_plugin *p;
	char *options;
	int rc;

	*out = NULL;
	if (!name)
		return ht_fail(h, HYPERTEST_ERR_CONFIG, "%s: key '%s' is missing (name the %s plugin)",
		               ht_config_path(h->cfg) ? ht_config_path(h->cfg) : "configuration",
		               section, kind_name(kind));
	rc = ht_plugins_scan(h);
	if (rc)
		return rc;
	rc = ht_plugin_find(h, kind, name, &p);
	if (rc)
		return rc;
	create = (hypertest_OP_CREATE_fn)ht_op(p, HYPERTEST_OP_CREATE);
	if (!create)
		return ht_fail(h, HYPERTEST_ERR_UNSUPPORTED, "%s '%s' (%s) offers no create operation",
		               kind_name(kind), name, p->path);
	inst = calloc(1, sizeof *inst);
	options = ht_config_plugin_options(h->cfg, section);
	if (!inst || !options) {
		free(inst);
		free(options);
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	inst->core.h = h;
	inst->core.plugin = p;
	ht_err_clear(&h->err);
	rc = create(&inst->core, options, &inst->self);
	free(options);
	if (rc != 0) {
		rc = ht_plugin_error(h, inst, rc, "create");
		if (rc == HYPERTEST_ERR_CONFIG)
			locate_option(h, section);
		free(inst);
		return rc;
	}
	*out = inst;
	return HYPERTEST_OK;
}

void ht_instance_destroy(ht_instance *inst)
{
	hypertest_OP_DESTROY_fn destroy;

	if (!inst)
		return;
	destroy = (hypertest_OP_DESTROY_fn)ht_op(inst->core.plugin, HYPERTEST_OP_DESTROY);
	if (destroy)
		destroy(inst->self);
	free(inst);
}
