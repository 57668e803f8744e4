/* sleep_long.c - sleeps the given number of seconds (for TIMEOUT). */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	sleep(argc > 1 ? (unsigned)atoi(argv[1]) : 30);
	return 0;
}
