/*
 * credentials.c - credentials and region for the aws provider, found where
 * every AWS tool looks (environment, ~/.aws/credentials, ~/.aws/config,
 * profiles), with where each came from; the INI reader of those files; and
 * aws_redact(), which takes secrets out of text before it is logged.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "credentials.h"

/* ---- INI -------------------------------------------------------------------- */

static char *trim(char *s)
{
	char *e;
	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int aws_ini_parse(const char *path, const char *text, aws_ini_fn fn, void *ud, char **err)
{
	char *copy = strdup(text), *line, *next, *section = NULL;
	int lineno = 0, rc = 0, nested_ok = 0;
	if (!copy)
		return aws_fail(err, HYPERTEST_ERR_NOMEM, "%s: out of memory", path);
	for (line = copy; line; line = next) {
		char *s, *eq;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		s = trim(line);
		if ((line[0] == ' ' || line[0] == '\t') && nested_ok)
			continue; /* a nested block ("s3 =" then indented keys) */
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = strchr(s, ']');
			char *rest;
			if (!close) {
				rc = aws_fail(err, HYPERTEST_ERR_CONFIG, "%s:%d: section header without ']'",
				              path, lineno);
				break;
			}
			*close = '\0';
			rest = trim(close + 1);
			if (*rest && *rest != '#' && *rest != ';') {
				rc = aws_fail(err, HYPERTEST_ERR_CONFIG,
				              "%s:%d: unexpected text after the section header", path,
				              lineno);
				break;
			}
			section = trim(s + 1);
			/* "profile   dev" is "profile dev" */
			if (strncmp(section, "profile", 7) == 0 &&
			    (section[7] == ' ' || section[7] == '\t')) {
				char *name = trim(section + 8);
				memmove(section + 8, name, strlen(name) + 1);
				section[7] = ' ';
			}
			if (!*section) {
				rc = aws_fail(err, HYPERTEST_ERR_CONFIG, "%s:%d: empty section name", path,
				              lineno);
				break;
			}
			nested_ok = 0;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			rc = aws_fail(err, HYPERTEST_ERR_CONFIG,
			              "%s:%d: expected \"key = value\" or \"[section]\"", path, lineno);
			break;
		}
		if (!section) {
			rc = aws_fail(err, HYPERTEST_ERR_CONFIG,
			              "%s:%d: \"key = value\" before any [section]", path, lineno);
			break;
		}
		*eq = '\0';
		{
			char *key = trim(s), *value = trim(eq + 1);
			if (!*key) {
				rc = aws_fail(err, HYPERTEST_ERR_CONFIG, "%s:%d: empty key", path, lineno);
				break;
			}
			nested_ok = *value == '\0';
			if (fn(ud, section, key, value, lineno))
				break;
		}
	}
	free(copy);
	return rc;
}

/* ---- the files ----------------------------------------------------------------- */

typedef struct profile_vals {
	const char *want1, *want2; /* section names that are the profile */
	char *key_id, *secret, *token, *region, *ca_bundle;
	int found;                 /* a section of that name exists */
} profile_vals;

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return 0;
}

static int profile_cb(void *ud, const char *section, const char *key, const char *value,
                      int line)
{
	profile_vals *pv = ud;
	(void)line;
	if (strcmp(section, pv->want1) != 0 && !(pv->want2 && strcmp(section, pv->want2) == 0))
		return 0;
	pv->found = 1;
	if (strcasecmp(key, "aws_access_key_id") == 0)
		return set_str(&pv->key_id, value);
	if (strcasecmp(key, "aws_secret_access_key") == 0)
		return set_str(&pv->secret, value);
	if (strcasecmp(key, "aws_session_token") == 0)
		return set_str(&pv->token, value);
	if (strcasecmp(key, "region") == 0)
		return set_str(&pv->region, value);
	if (strcasecmp(key, "ca_bundle") == 0)
		return set_str(&pv->ca_bundle, value);
	return 0;
}

static void profile_vals_free(profile_vals *pv)
{
	free(pv->key_id);
	free(pv->secret);
	free(pv->token);
	free(pv->region);
	free(pv->ca_bundle);
}

static char *read_text(const char *path, int *missing)
{
	FILE *f = fopen(path, "rb");
	htp_buf b = {0};
	char chunk[4096];
	size_t n;
	*missing = 0;
	if (!f) {
		*missing = errno == ENOENT || errno == ENOTDIR;
		return NULL;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		htp_buf_add(&b, chunk, n);
	fclose(f);
	return htp_buf_take(&b);
}

static char *home_path(const char *rel)
{
	const char *home = getenv("HOME");
	htp_buf b = {0};
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	htp_buf_addf(&b, "%s/%s", home, rel);
	return htp_buf_take(&b);
}

/* Is there a "[name]" section header in text (even an empty section)? */
static int has_section(const char *text, const char *name)
{
	const char *p = text;
	size_t n = strlen(name);
	while (p && *p) {
		const char *s = p;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '[') {
			s++;
			while (*s == ' ' || *s == '\t')
				s++;
			if (strncmp(s, name, n) == 0) {
				const char *t = s + n;
				while (*t == ' ' || *t == '\t')
					t++;
				if (*t == ']')
					return 1;
			}
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return 0;
}

/* Read one profile from one file; 0 (missing file included) or an error. */
static int read_profile(const char *path, const char *s1, const char *s2, profile_vals *pv,
                        char **err)
{
	int missing, rc;
	char *text = read_text(path, &missing);
	if (!text) {
		if (missing)
			return 0;
		return aws_fail(err, HYPERTEST_ERR_CONFIG, "%s: cannot read: %s", path,
		                strerror(errno));
	}
	pv->want1 = s1;
	pv->want2 = s2;
	rc = aws_ini_parse(path, text, profile_cb, pv, err);
	if (rc == 0 && (has_section(text, s1) || (s2 && has_section(text, s2))))
		pv->found = 1;
	free(text);
	return rc;
}

static char *dupf(const char *fmt, const char *a, const char *b)
{
	htp_buf buf = {0};
	htp_buf_addf(&buf, fmt, a, b);
	return htp_buf_take(&buf);
}

void aws_credentials_free(aws_credentials *c)
{
	if (c->secret_access_key)
		memset(c->secret_access_key, 0, strlen(c->secret_access_key));
	if (c->session_token)
		memset(c->session_token, 0, strlen(c->session_token));
	free(c->access_key_id);
	free(c->secret_access_key);
	free(c->session_token);
	free(c->region);
	free(c->profile);
	free(c->creds_source);
	free(c->region_source);
	free(c->ca_bundle);
	free(c->ca_bundle_source);
	memset(c, 0, sizeof *c);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* Where aws_credentials_load looks: the profile and the two files. */
typedef struct load_ctx {
	const char *profile;
	int named; /* the profile was named (option or AWS_PROFILE) */
	char *cred_path, *conf_path;
	profile_vals cv, fv; /* its values in the credentials and config files */
} load_ctx;

/* Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN (copies; checked for memory by the caller). */
static int creds_from_env(aws_credentials *c, const char *ek, const char *es, char **err)
{
	if (!ek || !es)
		return aws_fail(err, HYPERTEST_ERR_AUTH,
		                "incomplete AWS credentials in the environment: %s is set but %s "
		                "is not",
		                ek ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		                ek ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	c->access_key_id = strdup(ek);
	c->secret_access_key = strdup(es);
	if (env("AWS_SESSION_TOKEN"))
		c->session_token = strdup(env("AWS_SESSION_TOKEN"));
	c->creds_source = strdup("environment");
	return 0;
}

/* Credentials from the profile: the credentials file's section first, then
 * the config file's. */
static int creds_from_profile(aws_credentials *c, const load_ctx *x, char **err)
{
	const profile_vals *cv = &x->cv, *fv = &x->fv;
	const profile_vals *src = cv->key_id || cv->secret ? cv : fv->key_id || fv->secret ? fv : NULL;
	const char *path = src == cv ? x->cred_path : x->conf_path;
	if (!src && x->named && !cv->found && !fv->found)
		return aws_fail(err, HYPERTEST_ERR_NOT_FOUND, "AWS profile \"%s\" not found in %s or %s",
		                x->profile, x->cred_path, x->conf_path);
	if (!src)
		return aws_fail(err, HYPERTEST_ERR_AUTH,
		                "no AWS credentials: not in the environment "
		                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) nor in profile \"%s\" "
		                "of %s or %s",
		                x->profile, x->cred_path, x->conf_path);
	if (!src->key_id || !src->secret)
		return aws_fail(err, HYPERTEST_ERR_AUTH,
		                "incomplete AWS credentials in %s [profile %s]: %s is missing", path,
		                x->profile, src->key_id ? "aws_secret_access_key" : "aws_access_key_id");
	c->access_key_id = strdup(src->key_id);
	c->secret_access_key = strdup(src->secret);
	if (src->token && *src->token)
		c->session_token = strdup(src->token);
	c->creds_source = dupf("%s [profile %s]", path, x->profile);
	return 0;
}

/* The region: the option, AWS_REGION, AWS_DEFAULT_REGION, the profile's in
 * the config file. */
static int region_load(aws_credentials *c, const aws_credentials_options *o, const load_ctx *x,
                       char **err)
{
	if (o && o->region && *o->region) {
		c->region = strdup(o->region);
		c->region_source = strdup("option");
	} else if (env("AWS_REGION")) {
		c->region = strdup(env("AWS_REGION"));
		c->region_source = strdup("environment (AWS_REGION)");
	} else if (env("AWS_DEFAULT_REGION")) {
		c->region = strdup(env("AWS_DEFAULT_REGION"));
		c->region_source = strdup("environment (AWS_DEFAULT_REGION)");
	} else if (x->fv.region && *x->fv.region) {
		c->region = strdup(x->fv.region);
		c->region_source = dupf("%s [profile %s]", x->conf_path, x->profile);
	} else {
		return aws_fail(err, HYPERTEST_ERR_CONFIG,
		                "no AWS region: set the option \"region\", AWS_REGION, "
		                "AWS_DEFAULT_REGION, or region in [profile %s] of %s",
		                x->profile, x->conf_path);
	}
	return 0;
}

int aws_credentials_load(aws_credentials *c, const aws_credentials_options *o, char **err)
{
	const char *profile_opt = o && o->profile && *o->profile ? o->profile : NULL;
	const char *ek = env("AWS_ACCESS_KEY_ID"), *es = env("AWS_SECRET_ACCESS_KEY");
	char *conf_section = NULL;
	load_ctx x;
	int rc = 0;

	memset(c, 0, sizeof *c);
	memset(&x, 0, sizeof x);
	x.profile = profile_opt ? profile_opt : env("AWS_PROFILE");
	x.named = x.profile != NULL;
	if (!x.profile)
		x.profile = "default";
	c->profile = strdup(x.profile);
	x.cred_path = env("AWS_SHARED_CREDENTIALS_FILE") ? strdup(env("AWS_SHARED_CREDENTIALS_FILE"))
	                                                 : home_path(".aws/credentials");
	x.conf_path = env("AWS_CONFIG_FILE") ? strdup(env("AWS_CONFIG_FILE"))
	                                     : home_path(".aws/config");
	conf_section = dupf("profile %s", x.profile, NULL);
	if (!c->profile || !x.cred_path || !x.conf_path || !conf_section) {
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
		goto out;
	}

	/* the files are read in every case: the region may be there */
	rc = read_profile(x.cred_path, x.profile, NULL, &x.cv, err);
	if (rc == 0)
		rc = read_profile(x.conf_path, conf_section,
		                  strcmp(x.profile, "default") == 0 ? "default" : NULL, &x.fv, err);
	if (rc)
		goto out;

	/* credentials, then the region */
	if ((ek || es) && !profile_opt)
		rc = creds_from_env(c, ek, es, err);
	else
		rc = creds_from_profile(c, &x, err);
	if (rc == 0)
		rc = region_load(c, o, &x, err);
	if (rc)
		goto out;
	/* ca_bundle: the config file's, as the AWS CLI reads it */
	if (x.fv.ca_bundle && *x.fv.ca_bundle) {
		c->ca_bundle = strdup(x.fv.ca_bundle);
		c->ca_bundle_source = dupf("ca_bundle in %s [profile %s]", x.conf_path, x.profile);
		if (!c->ca_bundle || !c->ca_bundle_source)
			rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
	}
	if (!c->access_key_id || !c->secret_access_key || !c->creds_source || !c->region ||
	    !c->region_source)
		rc = aws_fail(err, HYPERTEST_ERR_NOMEM, "out of memory");
out:
	if (x.cv.secret)
		memset(x.cv.secret, 0, strlen(x.cv.secret));
	if (x.fv.secret)
		memset(x.fv.secret, 0, strlen(x.fv.secret));
	profile_vals_free(&x.cv);
	profile_vals_free(&x.fv);
	free(x.cred_path);
	free(x.conf_path);
	free(conf_section);
	if (rc)
		aws_credentials_free(c);
	return rc;
}

/* ---- redaction ------------------------------------------------------------------ */

#define REDACTED "<redacted>"

/* Replace every occurrence of needle (non-empty) in *s. */
static int replace_all(char **s, const char *needle)
{
	htp_buf b = {0};
	const char *p = *s, *hit;
	size_t n = strlen(needle);
	if (n == 0 || !strstr(*s, needle))
		return 0;
	while ((hit = strstr(p, needle))) {
		if (htp_buf_add(&b, p, (size_t)(hit - p)) < 0 || htp_buf_str(&b, REDACTED) < 0) {
			htp_buf_free(&b);
			return -1;
		}
		p = hit + n;
	}
	if (htp_buf_str(&b, p) < 0) {
		htp_buf_free(&b);
		return -1;
	}
	free(*s);
	*s = htp_buf_take(&b);
	return 0;
}

static int replace_secret(char **s, const char *secret)
{
	htp_buf enc = {0};
	int rc;
	if (!secret || !*secret)
		return 0;
	if (replace_all(s, secret) < 0 || aws_uri_encode(&enc, secret, strlen(secret), 0) < 0) {
		htp_buf_free(&enc);
		return -1;
	}
	rc = replace_all(s, enc.data);
	htp_buf_free(&enc);
	return rc;
}

/* Does text at p start with word (case-insensitive)? */
static int starts(const char *p, const char *word)
{
	return strncasecmp(p, word, strlen(word)) == 0;
}

char *aws_redact(const char *text, const aws_credentials *c)
{
	static const char *const headers[] = {"authorization:", "x-amz-security-token:",
	                                      "proxy-authorization:", NULL};
	static const char *const params[] = {"x-amz-signature=", "x-amz-security-token=", NULL};
	htp_buf b = {0};
	const char *p = text ? text : "";
	char *out;
	int at_line_start = 1;

	while (*p) {
		size_t i;
		int done = 0;
		if (at_line_start) {
			const char *s = p;
			while (*s == ' ' || *s == '\t' || *s == '>' || *s == '<')
				s++; /* curl's "> " / "< " prefixes */
			for (i = 0; headers[i] && !done; i++) {
				if (starts(s, headers[i])) {
					const char *e = s + strlen(headers[i]);
					if (htp_buf_add(&b, p, (size_t)(e - p)) < 0 ||
					    htp_buf_str(&b, " " REDACTED) < 0)
						goto fail;
					while (*e && *e != '\n' && *e != '\r')
						e++;
					p = e;
					done = 1;
				}
			}
		}
		for (i = 0; params[i] && !done; i++) {
			if (starts(p, params[i])) {
				const char *e = p + strlen(params[i]);
				if (htp_buf_add(&b, p, (size_t)(e - p)) < 0 || htp_buf_str(&b, REDACTED) < 0)
					goto fail;
				while (*e && *e != '&' && *e != ' ' && *e != '\n' && *e != '\r' &&
				       *e != '"' && *e != '#')
					e++;
				p = e;
				done = 1;
			}
		}
		if (done) {
			at_line_start = 0;
			continue;
		}
		at_line_start = *p == '\n';
		if (htp_buf_add(&b, p, 1) < 0)
			goto fail;
		p++;
	}
	out = htp_buf_take(&b);
	if (c && (replace_secret(&out, c->secret_access_key) < 0 ||
	          replace_secret(&out, c->session_token) < 0)) {
		free(out);
		return NULL;
	}
	return out;
fail:
	htp_buf_free(&b);
	return NULL;
}
