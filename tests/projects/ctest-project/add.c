/* add.c - passes when A + B == C (arguments A B C), else prints why and fails. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: check_add A B C\n");
		return 2;
	}
	long a = atol(argv[1]), b = atol(argv[2]), c = atol(argv[3]);
	printf("checking %ld + %ld == %ld\n", a, b, c);
	if (a + b != c) {
		printf("FAILED: %ld + %ld is %ld, not %ld\n", a, b, a + b, c);
		return 1;
	}
	return 0;
}
