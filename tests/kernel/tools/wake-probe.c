// wake-probe: how late a task that works and sleeps in turn gets the CPU
// back after each sleep, for the kernel test of the latency hint's pick-time
// effect. Built static on the host and copied into the guest.
//
//   wake-probe BUSY_US SLEEP_US SECONDS
//
// Each cycle spins for BUSY_US, then sleeps until an absolute time SLEEP_US
// later; the lateness of each wake-up (now - that time) is one sample. A task
// that uses more than its share of a busy CPU is not credited as a sleeper,
// so on a stock kernel it waits for the running task's slice to end.
// Prints one line:
//   samples N p50_us A p99_us B max_us C rq_wait_us D runs E
// with the run-queue wait and the number of runs from /proc/self/schedstat
// (the kernel's own wait statistics) over the measurement.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void schedstat(long long *wait_ns, long long *runs)
{
	long long run_ns = 0;
	FILE *f = fopen("/proc/self/schedstat", "r");
	if (!f || fscanf(f, "%lld %lld %lld", &run_ns, wait_ns, runs) != 3) {
		fprintf(stderr, "wake-probe: cannot read /proc/self/schedstat (CONFIG_SCHED_INFO)\n");
		exit(2);
	}
	fclose(f);
}

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: wake-probe BUSY_US SLEEP_US SECONDS\n");
		return 1;
	}
	long long busy = atoll(argv[1]) * 1000, sleep_ns = atoll(argv[2]) * 1000;
	long long end = now_ns() + atoll(argv[3]) * 1000000000LL;
	size_t cap = 1 << 20, n = 0;
	long long *late = malloc(cap * sizeof(*late));
	long long w0, r0, w1, r1;

	if (!late || busy < 0 || sleep_ns <= 0)
		return 1;
	schedstat(&w0, &r0);
	while (now_ns() < end && n < cap) {
		long long spin_end = now_ns() + busy;
		while (now_ns() < spin_end)
			;
		long long due = now_ns() + sleep_ns;
		struct timespec t = { .tv_sec = due / 1000000000LL, .tv_nsec = due % 1000000000LL };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
		late[n++] = now_ns() - due;
	}
	schedstat(&w1, &r1);
	qsort(late, n, sizeof(*late), cmp);
	printf("samples %zu p50_us %lld p99_us %lld max_us %lld rq_wait_us %lld runs %lld\n", n,
	       n ? late[n / 2] / 1000 : 0, n ? late[(n * 99) / 100] / 1000 : 0, n ? late[n - 1] / 1000 : 0,
	       (w1 - w0) / 1000, r1 - r0);
	return 0;
}
