/*
 * What this machine charges a process for sleeping (bench/cpu.sh):
 *
 *   coldprobe KB SLEEP_MS
 *
 * prints the CPU time, in microseconds, of reading and writing every cache
 * line of a KB-kilobyte buffer four times over, median of 101 tries, right
 * after the previous try ("warm") and right after a SLEEP_MS sleep.  On the
 * development VM the caches come back cold after a sleep (whether the host
 * ran others on the idle vCPU or the core slept deeply is not known): the
 * backend pays that on every page it waits for, so the figures of
 * bench/cpu.sh that include waits move with it.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRIES 101

static double
cpu_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int
by_value(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

/* the median CPU time of touching buf, sleeping ms before each try */
static double
median_touch(volatile unsigned char *buf, size_t n, int ms)
{
	double		t[TRIES];

	for (int i = 0; i < TRIES; i++)
	{
		double		t0;

		if (ms > 0)
			poll(NULL, 0, ms);
		t0 = cpu_us();
		for (int pass = 0; pass < 4; pass++)
			for (size_t j = 0; j < n; j += 64)
				buf[j]++;
		t[i] = cpu_us() - t0;
	}
	qsort(t, TRIES, sizeof(double), by_value);
	return t[TRIES / 2];
}

int
main(int argc, char **argv)
{
	size_t		n;
	int			ms;
	volatile unsigned char *buf;

	if (argc != 3 || atoi(argv[1]) <= 0 || atoi(argv[2]) <= 0)
	{
		fprintf(stderr, "usage: coldprobe KB SLEEP_MS\n");
		return 2;
	}
	n = (size_t) atoi(argv[1]) * 1024;
	ms = atoi(argv[2]);
	buf = malloc(n);
	if (buf == NULL)
		return 1;
	memset((void *) buf, 1, n);
	printf("%.1f %.1f\n", median_touch(buf, n, 0), median_touch(buf, n, ms));
	return 0;
}
