/*
 * test-pki.c - certificates made at test time for the TLS tests; see
 * test-pki.h.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "test-pki.h"

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	if (!(ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)))
		return -1;
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

/* A certificate for key, subject CN=cn, signed by issuer_key (issuer NULL:
 * self-signed): a CA, or a server certificate for 127.0.0.1. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       int is_ca, long serial)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509 *by;
	int bad = !c || !name;
	if (bad)
		goto out;
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	by = issuer ? issuer : c;
	if (is_ca)
		bad = add_ext(c, by, NID_basic_constraints, "critical,CA:TRUE") ||
		      add_ext(c, by, NID_key_usage, "critical,keyCertSign,cRLSign") ||
		      add_ext(c, by, NID_subject_key_identifier, "hash");
	else
		bad = add_ext(c, by, NID_basic_constraints, "CA:FALSE") ||
		      add_ext(c, by, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") ||
		      add_ext(c, by, NID_ext_key_usage, "serverAuth");
	bad = bad || X509_sign(c, issuer_key, EVP_sha256()) <= 0;
out:
	X509_NAME_free(name);
	if (bad) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static int write_certs(const char *path, X509 *const *certs, size_t n)
{
	FILE *f = fopen(path, "w");
	size_t i;
	int rc = f ? 0 : -1;
	for (i = 0; rc == 0 && i < n; i++)
		if (PEM_write_X509(f, certs[i]) != 1)
			rc = -1;
	if (f && fclose(f) != 0)
		rc = -1;
	return rc;
}

int test_pki_make(test_pki *p, const char *dir)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *wrong_key = EVP_EC_gen("P-256"),
	         *junk_key = EVP_EC_gen("P-256");
	X509 *ca = NULL, *wrong = NULL, *bundle[150] = {0};
	FILE *f;
	int i, rc = -1;
	memset(p, 0, sizeof *p);
	snprintf(p->ca, sizeof p->ca, "%s/ca.pem", dir);
	snprintf(p->wrong_ca, sizeof p->wrong_ca, "%s/wrong-ca.pem", dir);
	snprintf(p->bundle, sizeof p->bundle, "%s/bundle-150.pem", dir);
	snprintf(p->cert, sizeof p->cert, "%s/server.pem", dir);
	snprintf(p->key, sizeof p->key, "%s/server.key", dir);
	p->server_key = EVP_EC_gen("P-256");
	if (!ca_key || !wrong_key || !junk_key || !p->server_key)
		goto out;
	ca = make_cert(ca_key, "hypertest test CA", NULL, ca_key, 1, 1);
	p->server_cert = ca ? make_cert(p->server_key, "127.0.0.1", ca, ca_key, 0, 2) : NULL;
	/* another name: a CA of the same name would be taken for the issuer */
	wrong = make_cert(wrong_key, "another test CA", NULL, wrong_key, 1, 3);
	if (!ca || !p->server_cert || !wrong)
		goto out;
	for (i = 0; i < 149; i++) {
		char cn[64];
		snprintf(cn, sizeof cn, "throwaway root %d", i);
		if (!(bundle[i] = make_cert(junk_key, cn, NULL, junk_key, 1, 100 + i)))
			goto out;
	}
	bundle[149] = ca;
	if (write_certs(p->ca, &ca, 1) || write_certs(p->wrong_ca, &wrong, 1) ||
	    write_certs(p->bundle, bundle, 150) || write_certs(p->cert, &p->server_cert, 1))
		goto out;
	if (!(f = fopen(p->key, "w")))
		goto out;
	rc = PEM_write_PrivateKey(f, p->server_key, NULL, NULL, 0, NULL, NULL) == 1 ? 0 : -1;
	if (fclose(f) != 0)
		rc = -1;
out:
	if (rc)
		fprintf(stderr, "test-pki: cannot make the test certificates in %s\n", dir);
	for (i = 0; i < 149; i++)
		X509_free(bundle[i]);
	X509_free(ca);
	X509_free(wrong);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(wrong_key);
	EVP_PKEY_free(junk_key);
	return rc;
}

void test_pki_free(test_pki *p)
{
	X509_free(p->server_cert);
	EVP_PKEY_free(p->server_key);
	p->server_cert = NULL;
	p->server_key = NULL;
	unlink(p->ca);
	unlink(p->wrong_ca);
	unlink(p->bundle);
	unlink(p->cert);
	unlink(p->key);
}
