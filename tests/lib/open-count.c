/*
 * open-count.c - counts this process's fopen calls on one path; see
 * open-count.h.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "open-count.h"

static char watched[512];
static int opens;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void count(const char *path)
{
	pthread_mutex_lock(&mu);
	if (path && watched[0] && strcmp(path, watched) == 0)
		opens++;
	pthread_mutex_unlock(&mu);
}

typedef FILE *(*fopen_fn)(const char *, const char *);

FILE *fopen(const char *path, const char *mode)
{
	static fopen_fn real;
	if (!real)
		real = (fopen_fn)dlsym(RTLD_NEXT, "fopen");
	count(path);
	return real(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
	static fopen_fn real;
	if (!real)
		real = (fopen_fn)dlsym(RTLD_NEXT, "fopen64");
	count(path);
	return real(path, mode);
}

void open_count_watch(const char *path)
{
	pthread_mutex_lock(&mu);
	snprintf(watched, sizeof watched, "%s", path);
	opens = 0;
	pthread_mutex_unlock(&mu);
}

int open_count(void)
{
	int n;
	pthread_mutex_lock(&mu);
	n = opens;
	pthread_mutex_unlock(&mu);
	return n;
}
