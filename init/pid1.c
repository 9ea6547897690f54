/*
 * PAIO PID 1.
 *
 * Small, static and policy-free: everything that learns or decides runs in
 * the supervisor, which this program starts and keeps alive.
 *
 *  - mounts /proc, /sys, /dev, /dev/pts, /run, /tmp and /sys/fs/cgroup (v2),
 *    sets the hostname and brings up the loopback interface;
 *  - mounts the data partition at /var/lib/paio: checks it with e2fsck, or
 *    creates an ext4 file system if the partition is blank; falls back to a
 *    tmpfs (and says so) rather than touch a partition it does not recognise;
 *  - starts the supervisor, reaps every zombie, restarts the supervisor with
 *    exponential backoff, and opens a rescue shell on the console after 5
 *    deaths within 60 s;
 *  - SIGTERM/SIGINT: reboot, SIGUSR2: poweroff, SIGUSR1: halt. It stops the
 *    supervisor (which stops the units), kills what is left, syncs, unmounts
 *    the data partition and calls reboot(2). It never exits.
 *
 * Signals are blocked and taken synchronously with sigtimedwait(), so no work
 * happens inside an asynchronous signal handler.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATA_DIR "/var/lib/paio"
#define RUN_DIR "/run/paio"
#define DEFAULT_DATA "PARTLABEL=paio-data"
#define DEFAULT_SUPERVISOR "/usr/lib/paio/supervisor.js"
#define BUN "/usr/bin/bun"
#define MAX_DEATHS 5
#define DEATH_WINDOW_MS 60000
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000
#define STABLE_RUN_MS 60000
#define SUPERVISOR_STOP_MS 20000
#define ORPHAN_STOP_MS 3000

static char *const CHILD_ENV[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux", NULL};

/* ---- small helpers ------------------------------------------------------ */

static void say(const char *fmt, ...)
{
	char buf[1600];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "paio-init: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDOUT_FILENO, buf, n) < 0) {
		/* nowhere else to report it */
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double uptime_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ssize_t len = (ssize_t)strlen(text);
	ssize_t w = write(fd, text, len);
	close(fd);
	return w == len ? 0 : -1;
}

/* Reads a whole small file into buf (NUL-terminated); returns bytes or -1. */
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

/* The value of "key=value" on the kernel command line, or NULL. */
static const char *cmdline_arg(const char *key, char *out, size_t size)
{
	char line[4096];
	if (read_file("/proc/cmdline", line, sizeof(line)) < 0)
		return NULL;
	size_t klen = strlen(key);
	for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
		if (strncmp(tok, key, klen) == 0 && tok[klen] == '=') {
			snprintf(out, size, "%s", tok + klen + 1);
			return out;
		}
	}
	return NULL;
}

/* ---- mounts --------------------------------------------------------------- */

static void mount_one(const char *src, const char *dir, const char *type,
		      unsigned long flags, const char *opts)
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

/* Services talk to each other and are health-checked over 127.0.0.1. */
static void loopback_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
			say("cannot bring up the loopback interface: %s", strerror(errno));
	}
	close(fd);
}

static void set_hostname(void)
{
	char name[65];
	if (read_file("/etc/hostname", name, sizeof(name)) <= 0)
		return;
	name[strcspn(name, " \n")] = '\0';
	if (name[0] && sethostname(name, strlen(name)) < 0)
		say("cannot set hostname: %s", strerror(errno));
}

/* ---- data partition ----------------------------------------------------- */

/* Finds /dev/NAME of the partition whose uevent has PARTNAME=label. */
static int find_partlabel(const char *label, char *dev, size_t size)
{
	DIR *d = opendir("/sys/class/block");
	if (!d)
		return -1;
	struct dirent *e;
	int found = -1;
	char path[300], text[1024], want[300];
	snprintf(want, sizeof(want), "PARTNAME=%s\n", label);
	while (found < 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/block/%s/uevent", e->d_name);
		if (read_file(path, text, sizeof(text)) > 0 && strstr(text, want)) {
			snprintf(dev, size, "/dev/%s", e->d_name);
			found = 0;
		}
	}
	closedir(d);
	return found;
}

static int resolve_data_device(const char *spec, char *dev, size_t size)
{
	for (int i = 0; i < 50; i++) { /* disks may appear late: wait up to 5 s */
		if (strncmp(spec, "PARTLABEL=", 10) == 0) {
			if (find_partlabel(spec + 10, dev, size) == 0 && access(dev, F_OK) == 0)
				return 0;
		} else if (access(spec, F_OK) == 0) {
			snprintf(dev, size, "%s", spec);
			return 0;
		}
		usleep(100000);
	}
	return -1;
}

enum content { CONTENT_EXT, CONTENT_BLANK, CONTENT_OTHER, CONTENT_UNREADABLE };

/* ext2/3/4 has magic 0xEF53 at byte 1080; a fresh image has only zeros. */
static enum content probe_content(const char *dev)
{
	static unsigned char buf[1 << 20];
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CONTENT_UNREADABLE;
	size_t got = 0;
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got < 2048)
		return CONTENT_UNREADABLE;
	if (buf[1080] == 0x53 && buf[1081] == 0xEF)
		return CONTENT_EXT;
	for (size_t i = 0; i < got; i++)
		if (buf[i])
			return CONTENT_OTHER;
	return CONTENT_BLANK;
}

/* Runs a program to completion with the console as output; returns its exit status. */
static int run_wait(char *const argv[])
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execve(argv[0], argv, CHILD_ENV);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void data_volatile(const char *dev, const char *reason)
{
	char line[1400];
	say("data: %s; using a tmpfs at " DATA_DIR ": nothing written there will persist", reason);
	mount_one("tmpfs", DATA_DIR, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	write_file(RUN_DIR "/data-volatile", reason);
	snprintf(line, sizeof(line), "device=%s state=volatile reason=%s\n", dev, reason);
	write_file(RUN_DIR "/data-status", line);
}

static void mount_data(void)
{
	char spec[256], dev[300] = "none", why[1024], line[1400];
	if (!cmdline_arg("paio.data", spec, sizeof(spec)))
		snprintf(spec, sizeof(spec), "%s", DEFAULT_DATA);
	mkdir("/var", 0755);
	mkdir("/var/lib", 0755);
	mkdir(DATA_DIR, 0755);
	if (resolve_data_device(spec, dev, sizeof(dev)) < 0) {
		snprintf(why, sizeof(why), "no data partition %s (set paio.data= on the kernel command line)", spec);
		data_volatile(spec, why);
		return;
	}
	const char *state = "mounted";
	int fsck = -1;
	switch (probe_content(dev)) {
	case CONTENT_EXT: {
		char *argv[] = {"/sbin/e2fsck", "-p", dev, NULL};
		fsck = run_wait(argv);
		if (fsck >= 4)
			say("data: e2fsck found errors on %s it could not fix (status %d); mounting anyway", dev, fsck);
		break;
	}
	case CONTENT_BLANK: {
		say("data: %s is blank, creating ext4 file system", dev);
		char *argv[] = {"/sbin/mke2fs", "-q", "-t", "ext4", "-L", "paio-data", "-F", dev, NULL};
		int rc = run_wait(argv);
		if (rc != 0) {
			snprintf(why, sizeof(why), "mke2fs on %s failed with status %d", dev, rc);
			data_volatile(dev, why);
			return;
		}
		state = "formatted";
		break;
	}
	case CONTENT_OTHER:
		snprintf(why, sizeof(why),
			 "%s holds something that is not an ext4 file system; not formatting it. "
			 "To reset it, zero its first MiB (dd if=/dev/zero of=%s bs=1M count=1) and reboot",
			 dev, dev);
		data_volatile(dev, why);
		return;
	case CONTENT_UNREADABLE:
		snprintf(why, sizeof(why), "cannot read %s: %s", dev, strerror(errno));
		data_volatile(dev, why);
		return;
	}
	if (mount(dev, DATA_DIR, "ext4", MS_NOATIME | MS_NODEV | MS_NOSUID, NULL) < 0) {
		snprintf(why, sizeof(why), "cannot mount %s on " DATA_DIR ": %s", dev, strerror(errno));
		data_volatile(dev, why);
		return;
	}
	snprintf(line, sizeof(line), "device=%s fsck=%d state=%s\n", dev, fsck, state);
	write_file(RUN_DIR "/data-status", line);
	say("data: %s", line);
	if (mkdir(DATA_DIR "/units", 0755) < 0 && errno != EEXIST)
		say("data: cannot create " DATA_DIR "/units: %s", strerror(errno));
}

/* ---- supervisor and rescue shell ---------------------------------------- */

static pid_t spawn(const char *path, char *const argv[], int console_tty, char *const env[])
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (console_tty) {
		int fd = open("/dev/console", O_RDWR);
		if (fd >= 0) {
			ioctl(fd, TIOCSCTTY, 1);
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
	} else {
		int fd = open("/dev/null", O_RDONLY);
		if (fd >= 0 && fd != 0) {
			dup2(fd, 0);
			close(fd);
		}
	}
	execve(path, argv, env);
	say("cannot run %s: %s", path, strerror(errno));
	_exit(127);
}

static pid_t start_supervisor(void)
{
	static char script[256];
	if (!cmdline_arg("paio.supervisor", script, sizeof(script)))
		snprintf(script, sizeof(script), "%s", DEFAULT_SUPERVISOR);
	/* A script ending in .js runs under Bun; anything else is executed as is. */
	size_t len = strlen(script);
	if (len > 3 && strcmp(script + len - 3, ".js") == 0) {
		char *argv[] = {"bun", script, NULL};
		return spawn(BUN, argv, 0, CHILD_ENV);
	}
	char *argv[] = {script, NULL};
	return spawn(script, argv, 0, CHILD_ENV);
}

static pid_t start_rescue_shell(void)
{
	static char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux", "PS1=rescue# ", NULL};
	char *argv[] = {"sh", NULL};
	return spawn("/bin/sh", argv, 1, env);
}

static void describe_status(int status, char *out, size_t size)
{
	if (WIFEXITED(status))
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(out, size, "ended (status 0x%x)", status);
}

/* ---- shutdown --------------------------------------------------------------- */

/* Reaps children until `pid` is gone (pid > 0) or none are left (pid == -1), or time runs out. */
static int reap_until(pid_t pid, long long deadline_ms)
{
	while (now_ms() < deadline_ms) {
		int status;
		pid_t got;
		while ((got = waitpid(-1, &status, WNOHANG)) > 0)
			if (got == pid)
				return 0;
		if (got < 0 && errno == ECHILD)
			return 0;
		if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
			return 0;
		usleep(20000);
	}
	return -1;
}

static void unmount_data(void)
{
	for (int i = 0; i < 10; i++) {
		if (umount2(DATA_DIR, 0) == 0) {
			say("data file system unmounted cleanly");
			return;
		}
		if (errno == EINVAL) /* not a mount point: nothing to do */
			return;
		usleep(200000);
	}
	say("cannot unmount " DATA_DIR " (%s); remounting it read-only", strerror(errno));
	if (mount(NULL, DATA_DIR, NULL, MS_REMOUNT | MS_RDONLY, NULL) == 0)
		say("data file system remounted read-only");
	else
		say("cannot remount " DATA_DIR " read-only: %s", strerror(errno));
	umount2(DATA_DIR, MNT_DETACH);
}

static void shutdown_system(unsigned int how, pid_t supervisor)
{
	const char *what = how == RB_POWER_OFF ? "poweroff" : how == RB_HALT_SYSTEM ? "halt" : "reboot";
	say("shutting down (%s)", what);
	if (supervisor > 0) {
		kill(supervisor, SIGTERM);
		if (reap_until(supervisor, now_ms() + SUPERVISOR_STOP_MS) < 0) {
			say("supervisor did not stop within %d s; killing it", SUPERVISOR_STOP_MS / 1000);
			kill(supervisor, SIGKILL);
		}
	}
	kill(-1, SIGTERM);
	reap_until(-1, now_ms() + ORPHAN_STOP_MS);
	kill(-1, SIGKILL);
	reap_until(-1, now_ms() + 1000);
	sync();
	unmount_data();
	umount2("/tmp", MNT_DETACH);
	sync();
	reboot((int)how);
	say("reboot(2) failed: %s", strerror(errno));
	for (;;)
		pause();
}

/* ---- main loop ----------------------------------------------------------- */

int main(void)
{
	if (getpid() != 1 && !getenv("PAIO_PID1_TEST")) {
		fprintf(stderr, "paio-init: must run as PID 1 (it is /sbin/init)\n");
		return 1;
	}
	int con = open("/dev/console", O_RDWR | O_NOCTTY);
	if (con >= 0) {
		dup2(con, 1);
		dup2(con, 2);
		if (con > 2)
			close(con);
	}
	mount_kernel_fs();
	say("started at uptime %.2f s", uptime_s());
	set_hostname();
	loopback_up();
	/* Ctrl-Alt-Del becomes SIGINT for us instead of an immediate reset. */
	reboot(RB_DISABLE_CAD);

	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP, SIGPIPE};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);

	mount_data();

	long long deaths[MAX_DEATHS] = {0};
	int ndeaths = 0;
	long long backoff = BACKOFF_FIRST_MS, restart_at = 0, started_at = now_ms();
	pid_t supervisor = start_supervisor(), rescue = 0;

	for (;;) {
		struct timespec tick = {0, 100 * 1000000};
		siginfo_t info;
		int sig = sigtimedwait(&set, &info, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			shutdown_system(RB_AUTOBOOT, supervisor);
		if (sig == SIGUSR2)
			shutdown_system(RB_POWER_OFF, supervisor);
		if (sig == SIGUSR1)
			shutdown_system(RB_HALT_SYSTEM, supervisor);

		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid == supervisor) {
				char how[128];
				describe_status(status, how, sizeof(how));
				long long now = now_ms();
				if (now - started_at >= STABLE_RUN_MS)
					backoff = BACKOFF_FIRST_MS;
				/* keep the times of the last MAX_DEATHS deaths */
				memmove(deaths, deaths + 1, sizeof(deaths) - sizeof(deaths[0]));
				deaths[MAX_DEATHS - 1] = now;
				if (ndeaths < MAX_DEATHS)
					ndeaths++;
				supervisor = 0;
				if (ndeaths == MAX_DEATHS && now - deaths[0] <= DEATH_WINDOW_MS) {
					say("supervisor (pid %d) %s", pid, how);
					say("supervisor died %d times within %d s; starting a rescue shell on the console "
					    "(exit it to try the supervisor again)", MAX_DEATHS, DEATH_WINDOW_MS / 1000);
					rescue = start_rescue_shell();
				} else {
					say("supervisor (pid %d) %s; restarting in %lld ms", pid, how, backoff);
					restart_at = now + backoff;
					backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				}
			} else if (pid == rescue) {
				say("rescue shell ended; starting the supervisor again");
				rescue = 0;
				ndeaths = 0;
				backoff = BACKOFF_FIRST_MS;
				restart_at = now_ms();
			}
			/* any other pid: an orphan, now reaped */
		}
		if (!supervisor && !rescue && restart_at && now_ms() >= restart_at) {
			restart_at = 0;
			started_at = now_ms();
			supervisor = start_supervisor();
		}
	}
}
