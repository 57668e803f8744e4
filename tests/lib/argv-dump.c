/*
 * argv-dump - test helper: writes each of its arguments after the first,
 * followed by a NUL byte, into the file named by the first.  Used to check
 * that arguments reach a program byte for byte.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: argv-dump FILE [ARG...]\n", stderr);
		return 2;
	}
	FILE *f = fopen(argv[1], "wb");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	for (int i = 2; i < argc; i++)
		fwrite(argv[i], 1, strlen(argv[i]) + 1, f);
	return fclose(f) == 0 ? 0 : 2;
}
