/*
 * pytest.h - what the files of the "pytest" runner share: the runner and
 * its options (pytest.c), listing (collect.c), node ids (nodeid.c) and
 * running one test (run-test.c).
 */
#ifndef HT_RUNNER_PYTEST_H
#define HT_RUNNER_PYTEST_H

#include "../common/htplugin.h"

#define PYT_PREFIX "runner 'pytest': "
#define PYT_MESSAGE_BYTES 4096
#define PYT_STACK_BYTES (256u << 10)
#define PYT_OUTPUT_LIMIT (16ull << 20)

extern hypertest_upcalls pyt_up; /* bound by hypertest_plugin_init */

typedef struct pyt_runner {
	hypertest_core *core;
	char *python;    /* the interpreter */
	char **args;     /* more pytest arguments (before "--") */
	char *root_dir;  /* where pytest runs, relative to the project ("." by default) */
	char *test_dir;  /* relative to the project, inside root_dir */
	char *test_arg;  /* test_dir relative to root_dir: what is collected */
	char **include;  /* more project-relative paths for the image */
} pyt_runner;

/* The project directory (the task root in the function). */
const char *pyt_project_dir(const pyt_runner *r);
/* The argv "python -m pytest -p no:cacheprovider --rootdir=. EXTRA... ARGS... -- LAST". */
char **pyt_argv(const pyt_runner *r, const char *const *extra, const char *last);
/* The environment of pytest: ours, without writing bytecode. */
/* environ for pytest; art_var ("HT_TEST_ARTIFACTS_OUTPUT_PATH=DIR") or NULL */
char **pyt_env(char *art_var);

int pyt_list_tests(void *self, hypertest_list *list);
int pyt_run_test(void *self, const char *context_json, const char *artifacts_dir,
                 hypertest_result *result);

/* A node id "path::Class::test[params]", taken apart. */
typedef struct pyt_nodeid {
	char *file;      /* "path" */
	char *title;     /* "Class > test[params]" */
	char *classname; /* as pytest's JUnit report writes it: "path.Class" (slashes as dots, no .py) */
	char *name;      /* "test[params]" */
} pyt_nodeid;
/* 0, EINVAL when it has no "::", or ENOMEM. */
int pyt_nodeid_parse(const char *nodeid, pyt_nodeid *out);
void pyt_nodeid_free(pyt_nodeid *n);

#endif /* HT_RUNNER_PYTEST_H */
