/*
 * runners-core.h - what the checks of the framework runners
 * (check_runner_pytest.c, check_runner_ctest.c) share beyond the fake core
 * (fake-core.h: the upcalls and loading the module): the headers they use
 * and runs_ok().  Included by one test program each.
 */
#ifndef HT_TESTS_RUNNERS_CORE_H
#define HT_TESTS_RUNNERS_CORE_H

#define _GNU_SOURCE
#include <check.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hypertest/plugin.h>

#include "fake-core.h"

/* Is there a program on PATH (or a path) that runs argv with exit 0? */
static int runs_ok(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#endif /* HT_TESTS_RUNNERS_CORE_H */
