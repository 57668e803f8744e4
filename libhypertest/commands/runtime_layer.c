/*
 * runtime_layer.c - the hypertest runtime layer: everything the function
 * runtime needs to run in any Linux image of this machine's architecture,
 * under one prefix, so that the base image can be any image (a framework's
 * official image, a python image, a root holding nothing but a static
 * busybox) with nothing of hypertest inside.
 *
 *   /opt/hypertest/bin/hypertest-function       the function runtime program
 *   /opt/hypertest/lib/hypertest/plugins/X.so   the plugin modules the deployed
 *                                               configuration uses
 *   /opt/hypertest/lib/<soname>                 every shared library they load,
 *                                               found as ld.so finds them here
 *                                               (elfdeps.c), the loader included
 *   /opt/hypertest/etc/ca-certificates.crt      a CA bundle for HTTPS, if this
 *                                               machine has one
 *
 * The entry point starts the program through the bundled loader with the
 * bundled library path, so no library of the base image is ever used by
 * hypertest, and the programs of the base image (the test framework, which
 * the runner starts) see neither the loader option nor the libraries.  The
 * layer's files come from this hypertest build only, so the same build
 * gives the same layer digest and a redeploy uploads nothing new for it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core.h"
#include "elfdeps.h"
#include "image.h"
#include "layer.h"
#include "runtime_layer.h"

#define PREFIX HT_RUNTIME_PREFIX
#define LIBDIR PREFIX "/lib"
#define PLUGINDIR PREFIX "/lib/hypertest/plugins"
#define PROGRAM PREFIX "/bin/hypertest-function"
#define CA_BUNDLE PREFIX "/etc/ca-certificates.crt"

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* Where this machine keeps its CA bundle: $SSL_CERT_FILE, else the usual
 * places of Debian, Fedora and Alpine; NULL if none. */
static const char *ca_bundle_source(void)
{
	static const char *const known[] = {
	    "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
	    "/etc/ssl/cert.pem"};
	const char *env = getenv("SSL_CERT_FILE");
	struct stat st;
	if (env && *env && stat(env, &st) == 0 && S_ISREG(st.st_mode))
		return env;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (stat(known[i], &st) == 0 && S_ISREG(st.st_mode))
			return known[i];
	return NULL;
}

/* Add a file at an image path once: a library that is also the loader
 * (libc's DT_NEEDED ld-linux) is added by the first. */
static int add_once(ht_layer *lb, json_t *seen, const char *src, const char *dst, ht_err *err)
{
	if (json_object_get(seen, dst))
		return HYPERTEST_OK;
	json_object_set_new(seen, dst, json_string(src));
	return ht_layer_add_path(lb, src, dst, err);
}

static int add_string_setting(ht_layer *lb, const char *key, const char *fmt, const char *a,
                              ht_err *err)
{
	char *v = ht_asprintf(fmt, a);
	if (!v)
		return ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	int rc = ht_layer_set(lb, key, v, err);
	free(v);
	return rc;
}

int ht_runtime_layer(const char *program, const char *const *modules, size_t n_modules,
                     const char *image_arch, ht_layer **out, ht_err *err)
{
	ht_elfdeps *deps = NULL;
	ht_layer *lb = NULL;
	json_t *seen = json_object();
	const char **roots = calloc(n_modules + 1, sizeof *roots);
	char *entry = NULL;
	int rc;

	*out = NULL;
	if (!seen || !roots) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	roots[0] = program;
	for (size_t i = 0; i < n_modules; i++)
		roots[i + 1] = modules[i];
	rc = ht_elfdeps_resolve(roots, n_modules + 1, &deps, err);
	if (rc) {
		ht_err_prefix(err, "the runtime layer: the function runtime %s and its modules", program);
		goto out;
	}
	const char *arch = ht_elf_machine_arch(ht_elfdeps_machine(deps));
	const char *interp = ht_elfdeps_interp_path(deps);
	if (!arch) {
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
		                "the runtime layer: %s is for an ELF machine (%d) hypertest has no "
		                "architecture name for", program, ht_elfdeps_machine(deps));
		goto out;
	}
	if (image_arch && strcmp(image_arch, arch) != 0) {
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
		                "the base image is for %s but this hypertest (%s) runs on %s: its "
		                "runtime layer cannot run there; deploy from a %s machine or choose a "
		                "%s base image", image_arch, program, arch, image_arch, arch);
		goto out;
	}
	if (!interp) {
		rc = ht_err_set(err, HYPERTEST_ERR_INVALID,
		                "the runtime layer: %s has no program interpreter (PT_INTERP): a "
		                "dynamically linked function runtime is needed", program);
		goto out;
	}
	if (!(lb = ht_layer_new())) {
		rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = add_once(lb, seen, program, PROGRAM, err)))
		goto out;
	for (size_t i = 0; i < n_modules; i++) {
		char *dst = ht_path_join(PLUGINDIR, base_name(modules[i]));
		rc = dst ? add_once(lb, seen, modules[i], dst, err)
		         : ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		free(dst);
		if (rc)
			goto out;
	}
	char *loader = ht_path_join(LIBDIR, base_name(ht_elfdeps_interp(deps)));
	rc = loader ? add_once(lb, seen, interp, loader, err)
	            : ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	if (rc == HYPERTEST_OK) {
		json_t *argv = json_pack("[s, s, s, s]", loader, "--library-path", LIBDIR, PROGRAM);
		entry = argv ? json_dumps(argv, JSON_COMPACT) : NULL;
		json_decref(argv);
		if (!entry)
			rc = ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	free(loader);
	if (rc)
		goto out;
	for (size_t i = 0; i < ht_elfdeps_count(deps); i++) {
		char *dst = ht_path_join(LIBDIR, base_name(ht_elfdeps_soname(deps, i)));
		rc = dst ? add_once(lb, seen, ht_elfdeps_path(deps, i), dst, err)
		         : ht_err_set(err, HYPERTEST_ERR_NOMEM, "out of memory");
		free(dst);
		if (rc)
			goto out;
	}
	const char *ca = ca_bundle_source();
	if (ca && (rc = add_once(lb, seen, ca, CA_BUNDLE, err)))
		goto out;
	if ((rc = ht_layer_set(lb, "entrypoint", entry, err)) ||
	    (rc = ht_layer_set(lb, "env", "HYPERTEST_PLUGIN_PATH=" PLUGINDIR, err)) ||
	    (ca && (rc = ht_layer_set(lb, "env", "HYPERTEST_CA_BUNDLE=" CA_BUNDLE, err))) ||
	    (rc = add_string_setting(lb, "label", "org.hypertest.version=%s", hypertest_version(),
	                             err)) ||
	    (rc = add_string_setting(lb, "comment", "hypertest %s runtime", hypertest_version(),
	                             err)))
		goto out;
	*out = lb;
	lb = NULL;
out:
	ht_layer_free(lb);
	ht_elfdeps_free(deps);
	json_decref(seen);
	free(roots);
	free(entry);
	return rc;
}
