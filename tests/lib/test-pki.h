/*
 * test-pki.h - certificates made at test time for the TLS tests (OpenSSL,
 * P-256 keys): a test CA, a server certificate it signed for 127.0.0.1
 * and localhost, another CA of another name (a wrong one), and a bundle of
 * 149 throwaway roots with the test CA last.
 */
#ifndef HT_TESTS_TEST_PKI_H
#define HT_TESTS_TEST_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct test_pki {
	char ca[512];         /* DIR/ca.pem: the test CA */
	char wrong_ca[512];   /* DIR/wrong-ca.pem: a CA that signed nothing here */
	char bundle[512];     /* DIR/bundle-150.pem: 149 throwaway roots, then the test CA */
	char cert[512];       /* DIR/server.pem: for 127.0.0.1 and localhost */
	char key[512];        /* DIR/server.key */
	X509 *server_cert;    /* the same, loaded */
	EVP_PKEY *server_key;
} test_pki;

/* Write the files into dir (which exists); 0, or -1 with a message on
 * standard error. */
int test_pki_make(test_pki *p, const char *dir);
/* Free the loaded certificate and key, remove the files. */
void test_pki_free(test_pki *p);

#endif
