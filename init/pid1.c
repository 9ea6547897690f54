/*
 * PAIO PID 1 (/sbin/init, started by the initramfs with switch_root).
 *
 * Small, static and policy-free: everything that learns or decides runs in
 * the supervisor, which this program starts and keeps alive. It never exits.
 *
 *  - mounts /proc, /sys, /dev, /dev/pts, /run, /tmp and /sys/fs/cgroup (v2),
 *    sets the hostname from /etc/hostname and brings up the loopback interface;
 *  - mounts the data partition (paio.data=/dev/X|PARTLABEL=name|PARTUUID=sig-nn (MBR), default
 *    PARTLABEL=paio-data) at /var/lib/paio: e2fsck -p if it holds ext2/3/4,
 *    mke2fs if its first MiB is all zeros, and otherwise (or on any failure)
 *    a tmpfs instead, so it never formats what it does not recognise. The
 *    outcome goes to /run/paio/data-status; /run/paio/data-volatile marks
 *    the tmpfs case;
 *  - starts the supervisor (bun /usr/lib/paio/supervisor.js, or
 *    paio.supervisor=PATH), reaps every zombie, restarts the supervisor with
 *    exponential backoff (that grows only while supervisors die soon after
 *    they start: one that was ready for 10 s is replaced at once) and opens a rescue shell on the console after 5
 *    deaths within 60 s, or after 3 supervisors in a row that never became
 *    ready. It keeps trying the supervisor every 30 s meanwhile: a device
 *    nobody stands at must come back by itself once the cause is gone;
 *  - watches the supervisor through a pipe it hands over as fd 3
 *    (PAIO_NOTIFY_FD=3): the supervisor writes "ready\n" once and then a
 *    heartbeat byte every 2 s from its event loop. One that is not ready
 *    within paio.supervisor_ready_timeout seconds (default 60), or that stays
 *    silent for paio.supervisor_stall_timeout seconds (default 20) once ready,
 *    is hung: it is killed with SIGKILL and counts as a death. Its units keep
 *    running and the next supervisor takes them back;
 *  - on a new system slot's trial boot (paio.trial=1, docs/updates.md) a
 *    supervisor that keeps dying or never becomes ready means the new version
 *    is bad: instead of the rescue shell, PID 1 appends the reason to the
 *    update journal on the data partition and reboots, so the bootloader's
 *    tries run out and it goes back to the previous slot. Once the supervisor
 *    has committed the slot (/run/paio/update-committed) this no longer applies;
 *  - SIGTERM, SIGINT (Ctrl-Alt-Del): reboot; SIGUSR2: poweroff; SIGUSR1: halt.
 *    It stops the supervisor (which stops the units), kills what is left,
 *    unmounts the data partition cleanly and calls reboot(2).
 *
 * Signals stay blocked and are read from a signalfd in a poll() loop, so
 * no work happens in an asynchronous signal handler. Messages go to the
 * console, prefixed "paio-init: ".
 *
 * It refuses to run as any other PID unless PAIO_PID1_TEST=1 (say, in a
 * mount namespace); then a shutdown stops the supervisor and exits instead
 * of killing every process and rebooting.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <poll.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATA_DIR "/var/lib/paio"
#define RUN_DIR "/run/paio"
#define MAX_DEATHS 5
#define DEATH_WINDOW_MS 60000
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000
#define STABLE_RUN_MS 60000
#define STABLE_READY_MS 10000 /* ready this long: it was working, so the next one starts without a long wait */
#define MAX_UNREADY 3		      /* supervisors in a row that never became ready */
#define READY_TIMEOUT_S_DEFAULT 60    /* paio.supervisor_ready_timeout */
#define STALL_TIMEOUT_S_DEFAULT 20    /* paio.supervisor_stall_timeout: under a 30 s hardware watchdog */
#define NOTIFY_FD 3

static char *const CHILD_ENV[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux", NULL};
static char *const SUPERVISOR_ENV[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux",
				       "PAIO_NOTIFY_FD=3", NULL};
static char *const RESCUE_ENV[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux",
				   "PS1=rescue# ", NULL};

/* ---- small helpers ---------------------------------------------------------- */

static void say(const char *fmt, ...)
{
	char buf[1024] = "paio-init: ";
	size_t n = strlen(buf);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(buf);
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, n) < 0) {
		/* the console is all we have: nowhere to report this */
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a small file into buf, NUL-terminated; returns its length or -1. */
static ssize_t read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) < 0)
		say("cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* The value of "key=value" on the kernel command line, or NULL. */
static const char *cmdline_arg(const char *key, char *out, size_t size)
{
	char line[4096];
	size_t klen = strlen(key);
	if (read_file("/proc/cmdline", line, sizeof(line)) < 0)
		return NULL;
	for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n"))
		if (strncmp(tok, key, klen) == 0 && tok[klen] == '=') {
			snprintf(out, size, "%s", tok + klen + 1);
			return out;
		}
	return NULL;
}

/*
 * Whether this boot is a new slot's trial that is not committed yet: then a
 * supervisor that cannot run means the new version is bad.
 */
static int on_uncommitted_trial(char *slot, size_t size)
{
	char v[16];
	if (!cmdline_arg("paio.trial", v, sizeof(v)) || strcmp(v, "1") != 0)
		return 0;
	if (access(RUN_DIR "/update-committed", F_OK) == 0)
		return 0;
	if (!cmdline_arg("rauc.slot", slot, size) || (strcmp(slot, "A") != 0 && strcmp(slot, "B") != 0))
		snprintf(slot, size, "?");
	return 1;
}

/* Appends a trial-failed event to the update journal (init/update/journal.ts), in one write. */
static void journal_trial_failed(const char *slot, const char *reason)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char line[512];
	int n = snprintf(line, sizeof(line), "{\"kind\":\"trial-failed\",\"at\":%lld,\"slot\":\"%s\",\"reason\":\"%s\"}\n",
			 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, slot, reason);
	mkdir(DATA_DIR "/update", 0755);
	int fd = open(DATA_DIR "/update/journal.jsonl", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, (size_t)n) != n)
		say("cannot append to the update journal: %s", strerror(errno));
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* In a freshly forked child: nothing of PID 1's signal setup may leak into it. */
static void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
}

/* Runs a program to completion, output on the console; returns its exit status. */
static int run_wait(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		reset_signals();
		execve(argv[0], argv, CHILD_ENV);
		_exit(127);
	}
	int status = 0;
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (pid < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- mounts -------------------------------------------------------------------- */

static int console_to_stdio(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	dup2(fd, STDOUT_FILENO); /* dup2 clears O_CLOEXEC: children inherit the console */
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

static void mount_one(const char *src, const char *dir, const char *type, unsigned long flags, const char *opts)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, flags, opts) < 0 && errno != EBUSY)
		say("cannot mount %s on %s: %s", type, dir, strerror(errno));
}

static void mount_kernel_fs(void)
{
	mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=666");
	mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_one("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate");
	mkdir(RUN_DIR, 0755);
}

static void set_hostname(void)
{
	char name[65];
	if (read_file("/etc/hostname", name, sizeof(name)) <= 0)
		return;
	name[strcspn(name, " \t\n")] = '\0';
	if (name[0] && sethostname(name, strlen(name)) < 0)
		say("cannot set hostname: %s", strerror(errno));
}

/* Services talk to each other and are health-checked over 127.0.0.1. */
static void loopback_up(void)
{
	struct ifreq ifr = {.ifr_name = "lo"};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			say("cannot bring up the loopback interface: %s", strerror(errno));
	}
	close(fd);
}

/* ---- data partition -------------------------------------------------------------- */

/* /dev/DEVNAME of the block device whose uevent says PARTNAME=label (a GPT partition's name). */
static int find_partlabel(const char *label, char *dev, size_t size)
{
	DIR *d = opendir("/sys/class/block");
	struct dirent *e;
	int found = -1;
	while (d && found < 0 && (e = readdir(d))) {
		char path[320], text[1024], *save, *devname = NULL;
		int match = 0;
		snprintf(path, sizeof(path), "/sys/class/block/%s/uevent", e->d_name);
		if (e->d_name[0] == '.' || read_file(path, text, sizeof(text)) <= 0)
			continue;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			if (strncmp(l, "DEVNAME=", 8) == 0)
				devname = l + 8;
			else if (strncmp(l, "PARTNAME=", 9) == 0 && strcmp(l + 9, label) == 0)
				match = 1;
		}
		if (match && devname) {
			snprintf(dev, size, "/dev/%s", devname);
			found = 0;
		}
	}
	if (d)
		closedir(d);
	return found;
}

/*
 * The PARTUUID the kernel gives a partition of an MBR disk (the Raspberry Pi
 * image): the disk signature (4 bytes at offset 440, little-endian) and the
 * partition number, as "50a10001-03". sysfs does not show it, so it is read
 * from the parent disk. -1 when NAME is not a partition of an MBR disk.
 */
static int mbr_partuuid(const char *name, char *out, size_t size)
{
	char path[320], buf[32], link[512];
	snprintf(path, sizeof(path), "/sys/class/block/%s/partition", name);
	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	int number = atoi(buf);
	snprintf(path, sizeof(path), "/sys/class/block/%s", name);
	ssize_t len = readlink(path, link, sizeof(link) - 1); /* .../mmcblk0/mmcblk0p3 */
	if (len <= 0)
		return -1;
	link[len] = '\0';
	char *slash = strrchr(link, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	const char *parent = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	char disk[600];
	snprintf(disk, sizeof(disk), "/dev/%s", parent);
	unsigned char mbr[512];
	int fd = open(disk, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd < 0 ? -1 : pread(fd, mbr, sizeof(mbr), 0);
	if (fd >= 0)
		close(fd);
	/* A boot signature, and not GPT's protective MBR (its partition type 0xEE). */
	if (got != (ssize_t)sizeof(mbr) || mbr[510] != 0x55 || mbr[511] != 0xaa || mbr[450] == 0xee)
		return -1;
	snprintf(out, size, "%02x%02x%02x%02x-%02d", mbr[443], mbr[442], mbr[441], mbr[440], number);
	return 0;
}

static int find_partuuid(const char *uuid, char *dev, size_t size)
{
	DIR *d = opendir("/sys/class/block");
	struct dirent *e;
	int found = -1;
	while (d && found < 0 && (e = readdir(d))) {
		char id[32];
		if (e->d_name[0] != '.' && mbr_partuuid(e->d_name, id, sizeof(id)) == 0 && strcasecmp(id, uuid) == 0) {
			snprintf(dev, size, "/dev/%s", e->d_name);
			found = 0;
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* Disks may appear a little after their driver loaded: wait up to 5 s. */
static int wait_for_device(const char *spec, char *dev, size_t size)
{
	for (int i = 0; i < 50; i++, usleep(100000)) {
		if (strncmp(spec, "PARTLABEL=", 10) == 0) {
			if (find_partlabel(spec + 10, dev, size) < 0)
				continue;
		} else if (strncmp(spec, "PARTUUID=", 9) == 0) {
			if (find_partuuid(spec + 9, dev, size) < 0)
				continue;
		} else {
			snprintf(dev, size, "%s", spec);
		}
		if (access(dev, F_OK) == 0)
			return 0;
	}
	return -1;
}

enum content { CONTENT_EXT, CONTENT_BLANK, CONTENT_OTHER, CONTENT_UNREADABLE };

/* ext2/3/4 has the magic 0xEF53 (little-endian) at byte 1080; a fresh image has only zeros. */
static enum content probe(const char *dev, char *why, size_t size)
{
	static unsigned char buf[1 << 20];
	size_t got = 0;
	int fd = open(dev, O_RDONLY | O_CLOEXEC), err = fd < 0 ? errno : 0;
	while (fd >= 0 && got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = errno;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	if (err) {
		snprintf(why, size, "cannot read %s: %s", dev, strerror(err));
		return CONTENT_UNREADABLE;
	}
	if (got < 2048) {
		snprintf(why, size, "%s is too small (%zu bytes)", dev, got);
		return CONTENT_UNREADABLE;
	}
	if (buf[1080] == 0x53 && buf[1081] == 0xEF)
		return CONTENT_EXT;
	for (size_t i = 0; i < got; i++)
		if (buf[i])
			return CONTENT_OTHER;
	return CONTENT_BLANK;
}

/* Nothing usable: a tmpfs keeps the system running, and everyone is told it is volatile. */
static void data_volatile(const char *dev, const char *reason)
{
	char line[600];
	say("data: %s; using a tmpfs at " DATA_DIR " instead: nothing written there will persist", reason);
	mount_one("tmpfs", DATA_DIR, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	write_file(RUN_DIR "/data-volatile", "");
	snprintf(line, sizeof(line), "device=%s state=volatile reason=%s\n", dev, reason);
	write_file(RUN_DIR "/data-status", line);
	say("data: %.*s", (int)strlen(line) - 1, line);
}

/* Returns 1 when a real (persistent) file system is mounted at DATA_DIR. */
static int mount_data(void)
{
	char spec[256], dev[300], why[400], line[400], fsck_text[16] = "";
	if (!cmdline_arg("paio.data", spec, sizeof(spec)))
		snprintf(spec, sizeof(spec), "PARTLABEL=paio-data");
	mkdir("/var/lib", 0755);
	mkdir(DATA_DIR, 0755);
	if (wait_for_device(spec, dev, sizeof(dev)) < 0) {
		snprintf(why, sizeof(why), "no device %s after 5 s (paio.data= on the kernel command line names it)", spec);
		data_volatile(spec, why);
		return 0;
	}
	const char *state = "mounted";
	switch (probe(dev, why, sizeof(why))) {
	case CONTENT_EXT: {
		int fsck = run_wait((char *[]){"/sbin/e2fsck", "-p", dev, NULL});
		if (fsck >= 4) /* left for the mount to judge; the status file keeps the evidence */
			say("data: e2fsck could not repair %s (status %d); mounting it anyway", dev, fsck);
		snprintf(fsck_text, sizeof(fsck_text), " fsck=%d", fsck);
		break;
	}
	case CONTENT_BLANK: {
		say("data: %s is blank, creating ext4 file system", dev);
		int rc = run_wait((char *[]){"/sbin/mke2fs", "-q", "-t", "ext4", "-L", "paio-data", "-F", dev, NULL});
		if (rc != 0) {
			snprintf(why, sizeof(why), "mke2fs on %s failed with status %d", dev, rc);
			data_volatile(dev, why);
			return 0;
		}
		state = "formatted";
		break;
	}
	case CONTENT_OTHER:
		/* It could be someone's data: only an explicit wipe makes it ours. */
		say("data: %s holds neither an ext2/3/4 file system nor zeros; not formatting it. "
		    "To have it formatted at the next boot, zero its first MiB: "
		    "dd if=/dev/zero of=%s bs=1M count=1", dev, dev);
		data_volatile(dev, "unrecognised content, not formatted (zero its first MiB to reset it)");
		return 0;
	case CONTENT_UNREADABLE:
		data_volatile(dev, why);
		return 0;
	}
	if (mount(dev, DATA_DIR, "ext4", MS_NOATIME | MS_NODEV | MS_NOSUID, NULL) < 0) {
		snprintf(why, sizeof(why), "cannot mount %s as ext4: %s", dev, strerror(errno));
		data_volatile(dev, why);
		return 0;
	}
	snprintf(line, sizeof(line), "device=%s%s state=%s\n", dev, fsck_text, state);
	write_file(RUN_DIR "/data-status", line);
	say("data: %.*s", (int)strlen(line) - 1, line);
	return 1;
}

/* ---- supervisor and rescue shell ---------------------------------------------- */

/* notify_fd >= 0: handed to the child as fd 3 (the supervisor's readiness pipe). */
static pid_t spawn(const char *path, char *const argv[], char *const env[], int own_console, int notify_fd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	reset_signals();
	setsid();
	/* The rescue shell needs the console as its controlling tty (job control, Ctrl-C);
	 * the supervisor must not have one, so a key on the console cannot signal it. */
	int in = own_console ? open("/dev/console", O_RDWR) : open("/dev/null", O_RDONLY);
	if (own_console && in >= 0) {
		ioctl(in, TIOCSCTTY, 1);
		dup2(in, STDOUT_FILENO);
		dup2(in, STDERR_FILENO);
	}
	if (in > 0) {
		dup2(in, STDIN_FILENO);
		if (in > STDERR_FILENO)
			close(in);
	}
	if (notify_fd == NOTIFY_FD)
		fcntl(NOTIFY_FD, F_SETFD, 0); /* dup2 onto itself would keep close-on-exec */
	else if (notify_fd >= 0)
		dup2(notify_fd, NOTIFY_FD);
	execve(path, argv, env);
	say("cannot run %s: %s", path, strerror(errno));
	_exit(127);
}

/* Starts the supervisor; *notify_rd gets the read end of its readiness pipe (or -1). */
static pid_t start_supervisor(int *notify_rd)
{
	static char path[256];
	if (!cmdline_arg("paio.supervisor", path, sizeof(path)))
		snprintf(path, sizeof(path), "/usr/lib/paio/supervisor.js");
	/* A .js file runs under Bun; anything else is executed as it is. */
	int p[2] = {-1, -1};
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		say("cannot create the supervisor's readiness pipe: %s; not watching it", strerror(errno));
	size_t len = strlen(path);
	pid_t pid;
	if (len > 3 && strcmp(path + len - 3, ".js") == 0)
		pid = spawn("/usr/bin/bun", (char *[]){"bun", path, NULL}, SUPERVISOR_ENV, 0, p[1]);
	else
		pid = spawn(path, (char *[]){path, NULL}, SUPERVISOR_ENV, 0, p[1]);
	if (p[1] >= 0)
		close(p[1]);
	if (pid <= 0 && p[0] >= 0) {
		close(p[0]);
		p[0] = -1;
	}
	*notify_rd = p[0];
	return pid;
}

/* A whole number of seconds from the kernel command line, or the default. */
static long long cmdline_seconds(const char *key, long long def)
{
	char value[32];
	if (!cmdline_arg(key, value, sizeof(value)))
		return def;
	char *end;
	long long s = strtoll(value, &end, 10);
	if (*end || s <= 0) {
		say("%s=%s is not a positive number of seconds; using %lld", key, value, def);
		return def;
	}
	return s;
}

static void describe_status(int status, char *out, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
}

/* ---- shutdown ---------------------------------------------------------------------- */

/* Reaps children until `pid` is gone (or, for -1, no child is left); 0 if time ran out. */
static int reap_until(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	do {
		pid_t got;
		while ((got = waitpid(-1, NULL, WNOHANG)) > 0)
			if (got == pid)
				return 1;
		if (got < 0 && errno == ECHILD)
			return 1;
		usleep(20000);
	} while (now_ms() < deadline);
	return 0;
}

static void unmount_data(int persistent)
{
	int err = 0;
	if (!persistent) { /* a tmpfs: nothing to keep */
		umount2(DATA_DIR, MNT_DETACH);
		return;
	}
	for (int i = 0; i < 10; i++, usleep(200000)) {
		if (umount2(DATA_DIR, 0) == 0) {
			say("data file system unmounted cleanly");
			return;
		}
		if ((err = errno) != EBUSY)
			break;
	}
	/* Still busy: read-only first (that flushes the journal), then detach it. */
	say("cannot unmount " DATA_DIR ": %s; remounting it read-only", strerror(err));
	if (mount(NULL, DATA_DIR, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0)
		say("data file system remounted read-only");
	else
		say("cannot remount " DATA_DIR " read-only: %s", strerror(errno));
	umount2(DATA_DIR, MNT_DETACH);
}

/* Never returns; the shutdown signals stay blocked, so a second one changes nothing. */
static void shutdown_system(unsigned int how, pid_t supervisor, int data_persistent)
{
	say("shutting down (%s)", how == RB_POWER_OFF ? "poweroff" : how == RB_HALT_SYSTEM ? "halt" : "reboot");
	if (supervisor > 0) {
		kill(supervisor, SIGTERM);
		if (!reap_until(supervisor, 20000))
			say("the supervisor did not stop within 20 s; killing everything");
	}
	if (getpid() != 1) { /* PAIO_PID1_TEST: kill(-1) and reboot(2) would hit the whole host */
		say("test mode: not killing everything, not rebooting");
		exit(0);
	}
	kill(-1, SIGTERM);
	if (!reap_until(-1, 3000))
		say("processes left after SIGTERM; sending SIGKILL");
	kill(-1, SIGKILL);
	reap_until(-1, 1000);
	sync();
	unmount_data(data_persistent);
	umount2("/tmp", MNT_DETACH);
	umount2("/run", MNT_DETACH);
	sync();
	reboot((int)how);
	say("reboot(2) failed: %s", strerror(errno));
	for (;;)
		sleep(3600);
}

/* ---- watching the supervisor ------------------------------------------------------ */

struct watch {
	pid_t pid;		 /* the running supervisor, 0 when none */
	int notify_rd;		 /* read end of its readiness pipe, -1 when not watched */
	int ready;		 /* it said "ready" */
	long long started_at;	 /* ms */
	long long last_beat;	 /* ms: the last byte it wrote */
	long long ready_at;	 /* ms: when it said "ready" */
	long long ready_timeout; /* ms */
	long long stall_timeout; /* ms */
};

static void unwatch(struct watch *w)
{
	if (w->notify_rd >= 0)
		close(w->notify_rd);
	w->notify_rd = -1;
}

/* Reads what the supervisor wrote: "ready\n" once, then heartbeat bytes. */
static void drain_notify(struct watch *w)
{
	char buf[256];
	for (;;) {
		ssize_t n = read(w->notify_rd, buf, sizeof(buf));
		if (n > 0) {
			w->last_beat = now_ms();
			if (!w->ready && memchr(buf, '\n', (size_t)n)) {
				w->ready = 1;
				w->ready_at = w->last_beat;
				say("supervisor (pid %d) is ready after %.1f s", w->pid,
				    (double)(w->last_beat - w->started_at) / 1000);
			}
			continue;
		}
		if (n == 0) { /* it closed the pipe (or exited): nothing left to watch */
			/* A supervisor that dies closes its pipe too, a moment before it can be reaped: its death is
			 * reported then. Give it that moment (at most 100 ms) before saying it closed the pipe alive. */
			int exited = 0;
			for (int i = 0; w->pid > 0 && !exited && i < 20; i++) {
				siginfo_t si = {0};
				exited = waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == w->pid;
				if (!exited)
					usleep(5000);
			}
			if (w->pid > 0 && !exited)
				say("supervisor (pid %d) closed its readiness pipe; no longer watching for hangs", w->pid);
			unwatch(w);
		}
		return; /* EAGAIN: all read */
	}
}

/* ms until the supervisor must next be heard from; -1 when not watched. */
static long long watch_deadline(const struct watch *w)
{
	if (w->pid <= 0 || w->notify_rd < 0)
		return -1;
	return w->ready ? w->last_beat + w->stall_timeout : w->started_at + w->ready_timeout;
}

/* A supervisor that is alive but never ready, or silent, is killed; its death is then handled as any other. */
static void check_hung(struct watch *w)
{
	long long deadline = watch_deadline(w);
	if (deadline < 0 || now_ms() < deadline)
		return;
	if (w->ready)
		say("supervisor (pid %d) stopped answering: no heartbeat for %lld s; killing it (its units keep running)",
		    w->pid, w->stall_timeout / 1000);
	else
		say("supervisor (pid %d) not ready within %lld s; killing it (its units keep running)", w->pid,
		    w->ready_timeout / 1000);
	kill(w->pid, SIGKILL);
	unwatch(w);
}

/* ---- main loop ------------------------------------------------------------------- */

int main(void)
{
	const char *test = getenv("PAIO_PID1_TEST");
	if (getpid() != 1 && !(test && strcmp(test, "1") == 0)) {
		fprintf(stderr, "paio-init: must run as PID 1 (it is /sbin/init)\n");
		return 1;
	}
	/* All signals we act on are read from a signalfd in the loop below, never by a handler. */
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);

	int have_console = console_to_stdio() == 0;
	mount_kernel_fs();
	if (!have_console) /* started without a /dev: the console exists now */
		console_to_stdio();
	char uptime[64] = "0";
	read_file("/proc/uptime", uptime, sizeof(uptime));
	say("started at uptime %.2f s", strtod(uptime, NULL));
	reboot(RB_DISABLE_CAD); /* Ctrl-Alt-Del now sends us SIGINT instead of resetting */
	set_hostname();
	loopback_up();
	int data_persistent = mount_data();
	if (mkdir(DATA_DIR "/units", 0755) < 0 && errno != EEXIST)
		say("data: cannot create " DATA_DIR "/units: %s", strerror(errno));
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		say("cannot create a signalfd: %s; starting a rescue shell", strerror(errno));
		for (;;) {
			pid_t sh = spawn("/bin/sh", (char *[]){"sh", NULL}, RESCUE_ENV, 1, -1);
			while (sh > 0 && waitpid(-1, NULL, 0) != sh)
				;
			sleep(1);
		}
	}

	long long deaths[MAX_DEATHS] = {0}; /* times of the latest deaths, oldest first */
	int ndeaths = 0, nunready = 0, restart_pending = 1;
	long long backoff = BACKOFF_FIRST_MS, restart_at = now_ms();
	pid_t rescue = 0;
	struct watch w = {.pid = 0, .notify_rd = -1};
	w.ready_timeout = cmdline_seconds("paio.supervisor_ready_timeout", READY_TIMEOUT_S_DEFAULT) * 1000;
	w.stall_timeout = cmdline_seconds("paio.supervisor_stall_timeout", STALL_TIMEOUT_S_DEFAULT) * 1000;

	for (;;) {
		if (restart_pending && now_ms() >= restart_at) {
			restart_pending = 0;
			w.started_at = w.last_beat = now_ms();
			w.ready = 0;
			w.pid = start_supervisor(&w.notify_rd);
			if (w.pid < 0) {
				say("cannot fork the supervisor: %s; retrying in %lld ms", strerror(errno), backoff);
				w.pid = 0;
				restart_pending = 1;
				restart_at = now_ms() + backoff;
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			}
		}
		/* Sleep until a signal, a word from the supervisor, a due restart or a watch deadline. */
		long long wake = watch_deadline(&w);
		if (restart_pending && (wake < 0 || restart_at < wake))
			wake = restart_at;
		long long left = wake < 0 ? -1 : wake - now_ms();
		int timeout = left < 0 ? (wake < 0 ? -1 : 0) : left > 3600000 ? 3600000 : (int)left;
		struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = w.notify_rd, .events = POLLIN}};
		if (poll(pfd, w.notify_rd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			say("poll: %s", strerror(errno));
		if (w.notify_rd >= 0 && pfd[1].revents)
			drain_notify(&w);

		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			int sig = (int)si.ssi_signo;
			if (sig == SIGTERM || sig == SIGINT)
				shutdown_system(RB_AUTOBOOT, w.pid, data_persistent);
			else if (sig == SIGUSR2)
				shutdown_system(RB_POWER_OFF, w.pid, data_persistent);
			else if (sig == SIGUSR1)
				shutdown_system(RB_HALT_SYSTEM, w.pid, data_persistent);
		}
		check_hung(&w);

		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			char how[128];
			describe_status(status, how, sizeof(how));
			if (pid == rescue) {
				rescue = 0;
				ndeaths = nunready = 0;
				backoff = BACKOFF_FIRST_MS;
				if (w.pid == 0) { /* none running: try it now rather than at the next 30 s */
					say("rescue shell (pid %d) %s; starting the supervisor again", pid, how);
					restart_pending = 1;
					restart_at = now_ms();
				} else
					say("rescue shell (pid %d) %s; the supervisor (pid %d) is running", pid, how, w.pid);
			}
			if (pid != w.pid)
				continue; /* an orphan, now reaped */
			long long now = now_ms();
			if (w.notify_rd >= 0) /* whatever it wrote last still counts */
				drain_notify(&w);
			unwatch(&w);
			w.pid = 0;
			nunready = w.ready ? 0 : nunready + 1;
			/* One that ran a while, or was ready and working for a while, died of something new: no long wait
			 * (its units are unsupervised meanwhile). Only quick deaths make the wait grow. */
			if (now - w.started_at >= STABLE_RUN_MS || (w.ready && now - w.ready_at >= STABLE_READY_MS))
				backoff = BACKOFF_FIRST_MS;
			memmove(deaths, deaths + 1, sizeof(deaths) - sizeof(deaths[0]));
			deaths[MAX_DEATHS - 1] = now;
			ndeaths = ndeaths < MAX_DEATHS ? ndeaths + 1 : MAX_DEATHS;
			int crash_loop = ndeaths == MAX_DEATHS && now - deaths[0] <= DEATH_WINDOW_MS;
			char trial_slot[8];
			if ((crash_loop || nunready >= MAX_UNREADY) && on_uncommitted_trial(trial_slot, sizeof(trial_slot))) {
				char reason[160];
				if (crash_loop)
					snprintf(reason, sizeof(reason), "the supervisor died %d times within %d s", MAX_DEATHS, DEATH_WINDOW_MS / 1000);
				else
					snprintf(reason, sizeof(reason), "%d supervisors in a row never became ready", MAX_UNREADY);
				say("supervisor (pid %d) %s; %s on the trial boot of slot %s: rebooting so that the previous version runs again",
				    pid, how, reason, trial_slot);
				if (data_persistent)
					journal_trial_failed(trial_slot, reason);
				shutdown_system(RB_AUTOBOOT, 0, data_persistent);
			}
			if (crash_loop || nunready >= MAX_UNREADY) {
				/* A person at the console gets a shell; a device nobody stands at must not stay without its
				 * supervisor, so it is tried again at the longest backoff whether or not the shell is used. */
				say("supervisor (pid %d) %s", pid, how);
				char why[96];
				if (crash_loop)
					snprintf(why, sizeof(why), "supervisor died %d times within %d s", MAX_DEATHS, DEATH_WINDOW_MS / 1000);
				else
					snprintf(why, sizeof(why), "%d supervisors in a row never became ready", MAX_UNREADY);
				if (rescue > 0)
					say("%s; the rescue shell (pid %d) is still open; trying the supervisor again in %d s", why,
					    rescue, BACKOFF_MAX_MS / 1000);
				else {
					say("%s; starting a rescue shell on the console (exit it to try the supervisor at once); "
					    "trying the supervisor again in %d s meanwhile", why, BACKOFF_MAX_MS / 1000);
					rescue = spawn("/bin/sh", (char *[]){"sh", NULL}, RESCUE_ENV, 1, -1);
					if (rescue <= 0) {
						say("cannot fork the rescue shell: %s", strerror(errno));
						rescue = 0;
					}
				}
				ndeaths = nunready = 0;
				backoff = BACKOFF_MAX_MS;
				restart_pending = 1;
				restart_at = now + BACKOFF_MAX_MS;
				continue;
			}
			say("supervisor (pid %d) %s; restarting in %lld ms", pid, how, backoff);
			restart_pending = 1;
			restart_at = now + backoff;
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		}
	}
}
