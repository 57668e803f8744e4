/*
 * open-count.h - how many times this process opened one file with fopen
 * (OpenSSL reads a CA bundle with it): open-count.c defines fopen and
 * fopen64 in the test program, in front of the C library's, and counts the
 * opens of the watched path.
 */
#ifndef HT_TESTS_OPEN_COUNT_H
#define HT_TESTS_OPEN_COUNT_H

/* Watch path from now on (the count starts at 0). */
void open_count_watch(const char *path);
/* Opens of the watched path since. */
int open_count(void);

#endif
