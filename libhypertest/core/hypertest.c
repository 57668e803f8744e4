/*
 * hypertest.c - the handle: creation, errors, versions, project directory,
 * configuration and flags.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#define HT_STR_(x) #x
#define HT_STR(x) HT_STR_(x)

const char *hypertest_version(void)
{
	return HT_STR(HYPERTEST_VERSION_MAJOR) "." HT_STR(HYPERTEST_VERSION_MINOR) "." HT_STR(
	    HYPERTEST_VERSION_PATCH);
}

unsigned hypertest_version_number(void)
{
	return HYPERTEST_VERSION_NUMBER;
}

const char *hypertest_plugin_abi_version(void)
{
	return HT_STR(HYPERTEST_PLUGIN_ABI_MAJOR) "." HT_STR(HYPERTEST_PLUGIN_ABI_MINOR);
}

const char *hypertest_strerror(int code)
{
	switch (code) {
	case HYPERTEST_OK: return "success";
	case HYPERTEST_ERR_NOMEM: return "out of memory";
	case HYPERTEST_ERR_INVALID: return "invalid argument";
	case HYPERTEST_ERR_CONFIG: return "invalid configuration";
	case HYPERTEST_ERR_PLUGIN: return "plugin error";
	case HYPERTEST_ERR_ABI: return "plugin built for an incompatible ABI";
	case HYPERTEST_ERR_IO: return "input/output error";
	case HYPERTEST_ERR_NOT_FOUND: return "not found";
	case HYPERTEST_ERR_MANIFEST: return "manifest missing or malformed";
	case HYPERTEST_ERR_DRIFT: return "deployed tests differ from the local ones";
	case HYPERTEST_ERR_PROVIDER: return "cloud provider error";
	case HYPERTEST_ERR_RUNNER: return "test runner error";
	case HYPERTEST_ERR_HTTP: return "HTTP error";
	case HYPERTEST_ERR_AUTH: return "authentication error";
	case HYPERTEST_ERR_UNSUPPORTED: return "operation not supported";
	case HYPERTEST_ERR_TIMEOUT: return "timed out";
	case HYPERTEST_ERR_CANCELLED: return "cancelled";
	case HYPERTEST_ERR_RESPONSE: return "malformed function response";
	case HYPERTEST_ERR_IMAGE: return "container image error";
	case HYPERTEST_ERR_CHECK: return "a check failed";
	case HYPERTEST_ERR_EMPTY: return "nothing to do";
	case HYPERTEST_ERR_DIGEST: return "digest mismatch";
	default: return "unknown error";
	}
}

hypertest *hypertest_new(void)
{
	hypertest *h = calloc(1, sizeof *h);
	char cwd[PATH_MAX];

	if (!h)
		return NULL;
	h->cfg = ht_config_new();
	h->log_level = HYPERTEST_LOG_INFO;
	if (getcwd(cwd, sizeof cwd))
		h->project_dir = ht_strdup(cwd);
	if (!h->cfg || !h->project_dir) {
		hypertest_free(h);
		return NULL;
	}
	return h;
}

void hypertest_free(hypertest *h)
{
	if (!h)
		return;
	ht_registry_free(&h->reg);
	ht_config_free(h->cfg);
	free(h->project_dir);
	free(h->scanned_extra);
	free(h->function_program);
	free(h->state_dir);
	free(h->function_init_error);
	free(h->function_modules);
	free(h->deploy_output);
	free(h->junit_output);
	json_decref(h->invoke_opts);
	free(h);
}

const char *hypertest_errmsg(const hypertest *h)
{
	return h ? h->err.msg : "no handle";
}

int hypertest_errcode(const hypertest *h)
{
	return h ? h->err.code : HYPERTEST_ERR_INVALID;
}

int ht_fail(hypertest *h, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ht_err_setv(&h->err, code, fmt, ap);
	va_end(ap);
	return code;
}

int hypertest_set_project_dir(hypertest *h, const char *dir)
{
	char *abs;

	if (!h || !dir || !*dir)
		return h ? ht_fail(h, HYPERTEST_ERR_INVALID, "project directory: empty path")
		         : HYPERTEST_ERR_INVALID;
	if (!ht_is_dir(dir))
		return ht_fail(h, HYPERTEST_ERR_NOT_FOUND, "project directory %s: %s", dir,
		               strerror(errno ? errno : ENOTDIR));
	abs = ht_abspath(NULL, dir);
	if (!abs)
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	free(h->project_dir);
	h->project_dir = abs;
	free(h->state_dir);
	h->state_dir = NULL;
	return HYPERTEST_OK;
}

const char *hypertest_project_dir(const hypertest *h)
{
	return h ? h->project_dir : NULL;
}

int hypertest_set_flags(hypertest *h, unsigned flags)
{
	if (!h)
		return HYPERTEST_ERR_INVALID;
	h->flags = flags;
	return HYPERTEST_OK;
}

int hypertest_set_deploy_output(hypertest *h, const char *target)
{
	char *dir = NULL;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	if (target) {
		if (strncmp(target, "oci:", 4) != 0 || !target[4])
			return ht_fail(h, HYPERTEST_ERR_INVALID,
			               "deploy output '%s': expected oci:DIRECTORY", target);
		dir = ht_abspath(h->project_dir, target + 4);
		if (!dir)
			return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	free(h->deploy_output);
	h->deploy_output = dir;
	return HYPERTEST_OK;
}

int hypertest_set_junit_output(hypertest *h, const char *path)
{
	char *copy = NULL;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	if (path && !*path)
		return ht_fail(h, HYPERTEST_ERR_INVALID, "JUnit output: empty path");
	if (path && !(copy = ht_strdup(path)))
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	free(h->junit_output);
	h->junit_output = copy;
	return HYPERTEST_OK;
}

const char *ht_junit_output(hypertest *h)
{
	if (h->junit_output)
		return h->junit_output;
	return h->cfg ? ht_config_str(h->cfg, "junit") : NULL;
}

int hypertest_config_load_file(hypertest *h, const char *path)
{
	char *full;
	int rc;

	if (!h)
		return HYPERTEST_ERR_INVALID;
	full = path ? ht_abspath(h->project_dir, path)
	            : ht_path_join(h->project_dir, "hypertest.config.json");
	if (!full)
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	rc = ht_config_load_file(h->cfg, full, &h->err);
	if (rc == HYPERTEST_ERR_NOT_FOUND)
		ht_err_set(&h->err, HYPERTEST_ERR_CONFIG,
		           "%s: no such configuration file (run 'hypertest init' to write one)", full);
	free(full);
	return rc == HYPERTEST_ERR_NOT_FOUND ? HYPERTEST_ERR_CONFIG : rc;
}

int hypertest_config_load_string(hypertest *h, const char *json, const char *origin)
{
	if (!h || !json)
		return h ? ht_fail(h, HYPERTEST_ERR_INVALID, "configuration: NULL text")
		         : HYPERTEST_ERR_INVALID;
	return ht_config_load_string(h->cfg, json, origin ? origin : "<string>", &h->err);
}

int hypertest_config_set(hypertest *h, const char *key, const char *json_value)
{
	if (!h || !key || !json_value)
		return h ? ht_fail(h, HYPERTEST_ERR_INVALID, "configuration override: NULL argument")
		         : HYPERTEST_ERR_INVALID;
	return ht_config_set(h->cfg, key, json_value, &h->err);
}

char *hypertest_config_get(hypertest *h, const char *key)
{
	if (!h || !key)
		return NULL;
	return ht_config_get_json(h->cfg, key);
}

void hypertest_string_free(char *s)
{
	free(s);
}

void hypertest_cancel(hypertest *h)
{
	if (h)
		atomic_store(&h->cancelled, 1); /* lock-free: fine in a signal handler */
}

/* resultsFileName names a file of the project the results are written to:
 * not a directory, not the configuration file itself. */
static int check_results_name(hypertest *h)
{
	const char *name = ht_config_str(h->cfg, "resultsFileName");
	const char *cfg_path = ht_config_path(h->cfg);
	char *path = name ? ht_abspath(h->project_dir, name) : NULL;
	struct stat st, cst;
	char msg[PATH_MAX + 128];
	int rc = HYPERTEST_OK;

	if (!name)
		return HYPERTEST_OK;
	if (!path)
		return ht_fail(h, HYPERTEST_ERR_NOMEM, "out of memory");
	msg[0] = '\0';
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(msg, sizeof msg, "%s is a directory: expected a file name", path);
	else if (cfg_path && stat(path, &st) == 0 && stat(cfg_path, &cst) == 0 &&
	         st.st_dev == cst.st_dev && st.st_ino == cst.st_ino)
		snprintf(msg, sizeof msg,
		         "%s is the configuration file: the results would overwrite it", path);
	if (msg[0])
		rc = ht_config_key_error(h->cfg, "resultsFileName", msg, &h->err);
	free(path);
	return rc;
}

int ht_require_config(hypertest *h)
{
	int rc = HYPERTEST_OK;
	if (!ht_config_loaded(h->cfg))
		rc = hypertest_config_load_file(h, NULL);
	return rc ? rc : check_results_name(h);
}

const char *ht_state_dir(hypertest *h)
{
	if (!h->state_dir)
		h->state_dir = ht_path_join(h->project_dir, ".hypertest");
	return h->state_dir;
}

const char *ht_function_program(hypertest *h)
{
	if (!h->function_program) {
		const char *env = getenv("HYPERTEST_FUNCTION_PROGRAM");
		h->function_program = (env && *env) ? ht_strdup(env)
		                                    : ht_strdup(HT_BINDIR "/hypertest-function");
	}
	return h->function_program;
}
