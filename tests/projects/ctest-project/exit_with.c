/* exit_with.c - prints its second argument and exits with its first. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc > 2)
		puts(argv[2]);
	return argc > 1 ? atoi(argv[1]) : 0;
}
