/*
 * ctest.h - what the files of the "ctest" runner share: the runner and its
 * options (ctest.c), listing, the ctest version and the stand-in
 * CTestTestfile.cmake (discover.c) and running one test (run-test.c).
 */
#ifndef HT_RUNNER_CTEST_H
#define HT_RUNNER_CTEST_H

#include "../common/htplugin.h"

#define CT_PREFIX "runner 'ctest': "
#define CT_MESSAGE_BYTES 4096
#define CT_OUTPUT_LIMIT (16ull << 20)

extern hypertest_upcalls ct_up; /* bound by hypertest_plugin_init */

typedef struct ct_runner {
	hypertest_core *core;
	char *ctest;      /* the program */
	char **args;      /* more ctest arguments (-C Release, ...) */
	char *build_dir;  /* as given: absolute, or relative to the project */
	char *source_dir; /* relative to the project */
	char *test_dir;   /* relative to the project: hashed for drift */
	int major, minor; /* ctest's version, once known (major 0: not yet) */
} ct_runner;

const char *ct_project_dir(const ct_runner *r);
/* The absolute build directory on this side (malloc'd). */
char *ct_build_dir(const ct_runner *r);
/* Ask `ctest --version` once (in no particular directory); 0 or an error
 * code (set through the core). */
int ct_version(ct_runner *r);
/* path made absolute against the current directory (malloc'd). */
char *ct_absolute(const char *path);
/* Write dir/CTestTestfile.cmake holding only subdirs(BUILD), BUILD an
 * absolute path as a CMake bracket argument (no escapes, no variables).
 * ctest run in dir then runs the tests of BUILD under their own names and
 * numbers, in their own working directories, and writes its Testing/ into
 * dir, never into BUILD.  0 or an error code (set through the core). */
int ct_write_testfile(ct_runner *r, const char *dir, const char *build);

int ct_list_tests(void *self, hypertest_list *list);
int ct_run_test(void *self, const char *context_json, const char *artifacts_dir,
                hypertest_result *result);
/* "^name$" with every metacharacter of CMake's regular expressions
 * (^ $ . [ ] | ( ) * + ? \ and braces) escaped with a backslash. */
char *ct_regex_exact(const char *name);

#endif /* HT_RUNNER_CTEST_H */
