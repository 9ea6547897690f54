// latency-nice: set or read PAIO's per-task latency hint (kernel-patches/0001)
// through sched_setattr()/sched_getattr(), for the kernel tests and the
// benchmark. Built static on the host and copied into the guest.
//
//   latency-nice -n VALUE [-r] [-u UID] [-c CPU] COMMAND [ARG...]
//       set this task's hint to VALUE (-20..19), then exec COMMAND, which
//       keeps it, as do the tasks it forks. -r also sets
//       SCHED_RESET_ON_FORK (children start at 0); -u drops to UID (and
//       GID) first, as an unprivileged caller; -c pins to CPU.
//   latency-nice -g PID...
//       print "PID VALUE" for each task, read back from the kernel.
//
// Exit status: 0, 1 for a usage error, 2 when the kernel refused (the
// message names the errno), 3 when the kernel has no per-task hint at all.
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

// The ABI of the patch: struct sched_attr grows to 60 bytes.
#define SCHED_ATTR_SIZE_VER2 60
#define SCHED_FLAG_RESET_ON_FORK 0x01
#define SCHED_FLAG_KEEP_PARAMS 0x10
#define SCHED_FLAG_LATENCY_NICE 0x80

struct attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
	int32_t sched_latency_nice;
};

// 60 bytes of fields (the size passed and reported), padded to 64 by the compiler.
_Static_assert(offsetof(struct attr, sched_latency_nice) == 56, "sched_latency_nice must follow sched_util_max");

static int get(pid_t pid, struct attr *a)
{
	memset(a, 0, sizeof(*a));
	if (syscall(SYS_sched_getattr, pid, a, SCHED_ATTR_SIZE_VER2, 0) != 0) {
		fprintf(stderr, "latency-nice: sched_getattr(%d): %s\n", (int)pid, strerror(errno));
		exit(2);
	}
	// The kernel reports how much of the struct it knows: 56 on a stock kernel.
	if (a->size < SCHED_ATTR_SIZE_VER2) {
		fprintf(stderr, "latency-nice: this kernel has no per-task latency hint (sched_attr is %u bytes, not %d)\n", a->size, SCHED_ATTR_SIZE_VER2);
		exit(3);
	}
	return a->sched_latency_nice;
}

static void usage(void)
{
	fprintf(stderr, "usage: latency-nice -n VALUE [-r] [-u UID] [-c CPU] COMMAND [ARG...]\n       latency-nice -g PID...\n");
	exit(1);
}

int main(int argc, char **argv)
{
	int opt, reset = 0, cpu = -1;
	long uid = -1, value = 0;
	char *end, *given = NULL;

	if (argc > 1 && strcmp(argv[1], "-g") == 0) {
		if (argc < 3)
			usage();
		for (int i = 2; i < argc; i++) {
			struct attr a;
			printf("%s %d\n", argv[i], get((pid_t)atoi(argv[i]), &a));
		}
		return 0;
	}
	while ((opt = getopt(argc, argv, "+n:ru:c:")) != -1) {
		if (opt == 'n')
			given = optarg;
		else if (opt == 'r')
			reset = 1;
		else if (opt == 'u')
			uid = strtol(optarg, NULL, 10);
		else if (opt == 'c')
			cpu = atoi(optarg);
		else
			usage();
	}
	if (!given || argc - optind < 1)
		usage();
	value = strtol(given, &end, 10);
	if (*end || end == given)
		usage();

	if (cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) {
			fprintf(stderr, "latency-nice: sched_setaffinity(%d): %s\n", cpu, strerror(errno));
			return 2;
		}
	}
	if (uid >= 0 && (setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0)) {
		fprintf(stderr, "latency-nice: dropping to uid %ld: %s\n", uid, strerror(errno));
		return 2;
	}

	struct attr a;
	get(0, &a);
	a.size = SCHED_ATTR_SIZE_VER2;
	// The policy read back, not SCHED_FLAG_KEEP_POLICY: with that flag the
	// kernel keeps the task's reset-on-fork setting and ignores -r.
	a.sched_flags = SCHED_FLAG_KEEP_PARAMS | SCHED_FLAG_LATENCY_NICE | (reset ? SCHED_FLAG_RESET_ON_FORK : 0);
	a.sched_latency_nice = (int32_t)value;
	if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) {
		fprintf(stderr, "latency-nice: sched_setattr(latency nice %ld): %s\n", value, strerror(errno));
		return 2;
	}
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "latency-nice: %s: %s\n", argv[optind], strerror(errno));
	return 127;
}
