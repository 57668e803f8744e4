/*
 * credentials.h - where the aws provider's credentials and region come
 * from (environment, shared credentials and config files, profiles), the
 * INI reader of those files, and aws_redact(), which keeps secrets out of
 * every message and log line.
 */
#ifndef HT_PROVIDER_AWS_CREDENTIALS_H
#define HT_PROVIDER_AWS_CREDENTIALS_H

#include "sigv4.h"

typedef struct aws_credentials {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;  /* NULL when none */
	char *region;         /* NULL when none was found */
	char *profile;        /* the profile looked at */
	/* For doctor: "environment", "/root/.aws/credentials [profile dev]". */
	char *creds_source;
	/* "option", "environment (AWS_REGION)", "/root/.aws/config [profile dev]". */
	char *region_source;
	/* The profile's ca_bundle (config file), NULL when none, and
	 * "ca_bundle in /root/.aws/config [profile dev]". */
	char *ca_bundle;
	char *ca_bundle_source;
} aws_credentials;

typedef struct aws_credentials_options {
	const char *profile; /* the plugin option "profile", or NULL */
	const char *region;  /* the plugin option "region", or NULL */
} aws_credentials_options;

/* Credentials: the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN) unless a profile was named by the option, then the
 * profile (option, AWS_PROFILE, "default") of the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, section [NAME]), then
 * of the config file (AWS_CONFIG_FILE or ~/.aws/config, [profile NAME] or
 * [default]).  Region: the option, AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's region in the config file.  ca_bundle: the profile's, in the
 * config file.
 * Errors: HYPERTEST_ERR_AUTH (no or incomplete credentials),
 * HYPERTEST_ERR_CONFIG (a file that does not parse: file:line; no region),
 * HYPERTEST_ERR_NOT_FOUND (a named profile that exists nowhere). */
int aws_credentials_load(aws_credentials *c, const aws_credentials_options *o, char **err);
void aws_credentials_free(aws_credentials *c);

/* ---- INI files --------------------------------------------------------------- */

/* Called for each key = value of the file, with its section. Return non-zero to stop. */
typedef int (*aws_ini_fn)(void *ud, const char *section, const char *key, const char *value,
                          int line);
/* Parse text (path names it in errors): [section], key = value, comments
 * starting with # or ;, blank lines; indented lines after "key =" are a
 * nested block and are skipped.  0, or HYPERTEST_ERR_CONFIG naming path:line. */
int aws_ini_parse(const char *path, const char *text, aws_ini_fn fn, void *ud, char **err);

/* ---- secrets out of text ----------------------------------------------------- */

/* A copy of text (NUL-terminated, caller frees; NULL without memory) with
 * the value of every Authorization and X-Amz-Security-Token header, every
 * X-Amz-Signature and X-Amz-Security-Token query parameter, and every
 * occurrence of the secret key or session token of c (may be NULL), raw
 * or URI-encoded, replaced by "<redacted>". */
char *aws_redact(const char *text, const aws_credentials *c);

#endif /* HT_PROVIDER_AWS_CREDENTIALS_H */
