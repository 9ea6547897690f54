/*
 * qemu-exec: the guest side of the host's `paio qemu exec`.
 *
 * Runs as a supervised unit. It opens the path given as its only argument
 * (a character device, or a unix socket it connects to, for tests), else the
 * device named by paio.exec_port=/dev/X on the kernel command line (a serial
 * line, such as the Raspberry Pi's PL011 UART under QEMU, where there is no
 * virtio), else the virtio-serial port named org.paio.exec. A terminal is put
 * in raw mode (8N1, no flow control, no echo) so that every byte passes
 * unchanged. It serves this byte protocol, one command per '\n'-terminated
 * line:
 *
 *   host  HELLO\n                 guest  PAIO-EXEC-READY 2\n  (2: PUT is understood)
 *   host  RUN <len>\n<script>     guest  OUT <len>\n<bytes> ... EXIT <code>\n
 *   host  KILL\n                  SIGKILL to the running script (EXIT 137)
 *   host  PUT <len> <mode> <sha256> <path>\n
 *                                 guest  MORE <n>\n ... OK <sha256>\n | ERR <reason>\n
 *   host  POWEROFF\n | REBOOT\n   guest  OK\n, then signals PID 1
 *   anything else                 guest  ERR <reason>\n
 *
 * The script runs as root under /bin/sh in its own session; stdout and
 * stderr share one pipe, so their relative order is kept. One poll() loop
 * watches both the port and the script's output, so HELLO and KILL are
 * answered while a script runs. When the host goes away the running script
 * is killed and the port is reopened. Without the port (real hardware) the
 * program idles forever instead of exiting, so its unit does not flap.
 * A serial line never hangs up: a host that comes back simply goes on.
 *
 * PUT writes a file of <len> bytes at <path> (absolute; the rest of the line,
 * spaces allowed) with the octal <mode>, creating missing parent directories
 * (0755). The host sends the file's bytes only as the guest asks for them:
 * each MORE <n> lets it send n more. The guest grants a window ahead (1 MiB;
 * 32 KiB on a terminal) and tops it up as it writes, so a serial line without
 * flow control never has more than a window in its buffers, and a slow disk
 * slows the host down instead of filling memory. The bytes go to a temporary
 * file beside <path>, with the space reserved first; it is renamed to <path>
 * only when all of them arrived and their SHA-256 (computed here) equals
 * <sha256>, so <path> never holds a partial or damaged file. ERR (starting
 * with the path) comes at once for a path that cannot be written or a file
 * that does not fit, or during the transfer when a write fails; then the
 * guest asks for nothing more, the host still sends what was already granted,
 * and the guest drops it. A transfer cut off (the host hangs up, or no byte
 * for 60 s: a serial line cannot say that the host went away) is dropped with
 * its temporary file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME "org.paio.exec"
#define CMDLINE_KEY "paio.exec_port="
#define MAX_LINE (PATH_MAX + 128) /* a PUT line carries a path */
#define MAX_SCRIPT (16u << 20)
#define CHUNK 4096                /* script output per OUT frame */
#define IN_CHUNK 65536            /* what is read from the host at once */
#define MAX_PUT 999999999999999ULL
/* The window of PUT bytes the host may have on their way, and the step in
 * which it is topped up: on a virtio port (flow controlled end to end) and on
 * a terminal (raw, no flow control: the kernel's buffers must hold it all). */
#define PUT_WINDOW (1u << 20)
#define PUT_STEP (256u << 10)
#define TTY_PUT_WINDOW (32u << 10)
#define TTY_PUT_STEP (8u << 10)
#define PUT_IDLE_MS 60000

static char *const SCRIPT_ENV[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", NULL};

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	unsigned char block[64];
	size_t used;
};

/* A PUT in progress. */
struct put {
	int active;                  /* its bytes are being received */
	int fd;                      /* the temporary file; -1 after an error (the rest is dropped) */
	unsigned long long len;      /* the file's size */
	unsigned long long received; /* bytes that came */
	unsigned long long granted;  /* bytes the host was allowed to send (MORE) */
	unsigned long long window, step;
	mode_t mode;
	char want[65];               /* the SHA-256 the host announced, lower-case hex */
	char path[PATH_MAX];
	char tmp[PATH_MAX + 48];
	struct sha256 sha;
	long long last_ms;           /* when the last byte came */
};

struct conn {
	int fd;
	int tty;              /* the port is a terminal (no flow control) */
	char line[MAX_LINE + 1];
	size_t line_len;
	int discarding;       /* after an over-long line: drop bytes up to '\n' */
	size_t body_left;     /* bytes of a RUN script still to come */
	int body_fd;          /* where they go; -1: they are dropped */
	int body_err;         /* errno of a failed write to the script file */
	char script[64];      /* the script file being written or run */
	pid_t pid;            /* running script (also its process group), or 0 */
	int out;              /* read end of its output pipe, or -1 after EOF */
	struct put put;
};

static long long put_idle_ms = PUT_IDLE_MS;

/* ---- I/O helpers ------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd w = {fd, POLLOUT, 0};
			poll(&w, 1, 1000);
			continue;
		}
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int reply(struct conn *c, const char *text)
{
	return write_all(c->fd, text, strlen(text));
}

static int replyf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int replyf(struct conn *c, const char *fmt, ...)
{
	char msg[MAX_LINE + PATH_MAX + 256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return 0;
	if ((size_t)n > sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	/* One line, whatever an error text holds. */
	for (int i = 0; i < n; i++)
		if (msg[i] == '\n')
			msg[i] = ' ';
	msg[n++] = '\n';
	return write_all(c->fd, msg, (size_t)n);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------------- */

static const uint32_t SHA_K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_init(struct sha256 *s)
{
	static const uint32_t H0[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(s->h, H0, sizeof(H0));
	s->bytes = 0;
	s->used = 0;
}

static void sha256_block(struct sha256 *s, const unsigned char *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + SHA_K[i] + w[i];
		uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
	s->h[5] += f;
	s->h[6] += g;
	s->h[7] += h;
}

static void sha256_update(struct sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	s->bytes += len;
	if (s->used > 0) {
		size_t n = 64 - s->used < len ? 64 - s->used : len;
		memcpy(s->block + s->used, p, n);
		s->used += n;
		p += n;
		len -= n;
		if (s->used < 64)
			return;
		sha256_block(s, s->block);
		s->used = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha256_block(s, p);
	memcpy(s->block, p, len);
	s->used = len;
}

/* Finishes the hash into 64 lower-case hex digits and a NUL. */
static void sha256_hex(struct sha256 *s, char out[65])
{
	uint64_t bits = s->bytes * 8;
	unsigned char pad[72] = {0x80};
	size_t padlen = (s->used < 56 ? 56 : 120) - s->used;
	for (int i = 0; i < 8; i++)
		pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
	sha256_update(s, pad, padlen + 8);
	for (int i = 0; i < 8; i++)
		snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

/* ---- finding and opening the port --------------------------------------- */

/* Finds /dev/vportNpM whose sysfs name is PORT_NAME. */
static int find_port(char *path, size_t size)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	struct dirent *e;
	int found = -1;
	while (found < 0 && (e = readdir(d))) {
		char file[320], name[64] = "";
		snprintf(file, sizeof(file), "/sys/class/virtio-ports/%s/name", e->d_name);
		FILE *f = e->d_name[0] == '.' ? NULL : fopen(file, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f))
			name[strcspn(name, " \t\n")] = '\0';
		if (strcmp(name, PORT_NAME) == 0) {
			snprintf(path, size, "/dev/%s", e->d_name);
			found = 0;
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

/* Finds paio.exec_port=/dev/X on the kernel command line. */
static int cmdline_port(char *path, size_t size)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	int found = -1;
	for (char *save = NULL, *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		/* The last one wins, as with other kernel parameters. */
		if (strncmp(w, CMDLINE_KEY, strlen(CMDLINE_KEY)) == 0 && w[strlen(CMDLINE_KEY)] == '/') {
			snprintf(path, size, "%s", w + strlen(CMDLINE_KEY));
			found = 0;
		}
	}
	return found;
}

/* A serial line must carry the protocol byte for byte: no echo, no line
 * editing, no CR/LF translation, no signals from ^C, no XON/XOFF; 8N1, and
 * CLOCAL so that no modem line is waited for. The speed is left as it is. */
static int make_raw(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return -1;
	cfmakeraw(&t);
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | CSTOPB | CRTSCTS | HUPCL);
	t.c_cflag |= CS8 | CREAD | CLOCAL;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	/* TCSAFLUSH: what arrived before, in cooked mode, is dropped; the host repeats HELLO. */
	return tcsetattr(fd, TCSAFLUSH, &t);
}

static int open_port(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		/* O_NONBLOCK: a serial line without CLOCAL would block the open until carrier. */
		int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return -1;
		if (isatty(fd) && make_raw(fd) < 0) {
			fprintf(stderr, "qemu-exec: cannot put %s in raw mode: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		return fd;
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return -1;
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* ---- running a script ------------------------------------------------------- */

static int start_script(struct conn *c)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		/* Own session and process group, so KILL reaches everything it started. */
		setsid();
		signal(SIGPIPE, SIG_DFL); /* ignored here; SIG_IGN would survive exec */
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		if (chdir("/root") < 0 && chdir("/") < 0)
			_exit(126);
		execve("/bin/sh", (char *[]){"sh", c->script, NULL}, SCRIPT_ENV);
		_exit(127);
	}
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return -1;
	}
	c->pid = pid;
	c->out = pipefd[0];
	return 0;
}

/* The script was reaped: cleans up and turns its wait status into an EXIT code. */
static int script_done(struct conn *c, int status)
{
	if (c->out >= 0)
		close(c->out);
	c->out = -1;
	c->pid = 0;
	unlink(c->script);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The host is gone: nobody is left to read the script's output or to KILL it. */
static void abandon_script(struct conn *c)
{
	int status = 0;
	kill(-c->pid, SIGKILL);
	while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
		;
	script_done(c, status);
}

/* ---- protocol ------------------------------------------------------------------- */

/* RUN <len>: creates the script file that the next <len> bytes go to. */
static int begin_run(struct conn *c, const char *arg)
{
	static unsigned counter;
	size_t digits = strspn(arg, "0123456789");
	if (digits == 0 || digits > 9 || arg[digits] != '\0')
		return reply(c, "ERR bad RUN length\n"); /* no length to skip: stay line-based */
	c->body_left = (size_t)strtoul(arg, NULL, 10);
	c->body_fd = -1;
	c->body_err = 0;
	/* From here on the <len> bytes are consumed either way, so the stream stays in step. */
	if (c->pid > 0)
		return reply(c, "ERR busy: a script is running\n");
	if (c->body_left > MAX_SCRIPT)
		return reply(c, "ERR script too large\n");
	snprintf(c->script, sizeof(c->script), "/tmp/paio-exec.%d.%u.sh", (int)getpid(), counter++);
	unlink(c->script);
	/* O_EXCL|O_NOFOLLOW: /tmp is shared, and root must not write through a planted link. */
	c->body_fd = open(c->script, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (c->body_fd < 0) {
		char msg[MAX_LINE];
		snprintf(msg, sizeof(msg), "ERR cannot create %s: %s\n", c->script, strerror(errno));
		return reply(c, msg);
	}
	return 0;
}

/* The whole script has arrived: run it, or say why not. */
static int end_run(struct conn *c)
{
	if (c->body_fd < 0)
		return 0; /* refused at RUN: already answered */
	close(c->body_fd);
	c->body_fd = -1;
	char msg[MAX_LINE];
	if (c->body_err) {
		snprintf(msg, sizeof(msg), "ERR cannot write %s: %s\n", c->script, strerror(c->body_err));
	} else if (start_script(c) < 0) {
		snprintf(msg, sizeof(msg), "ERR cannot start the script: %s\n", strerror(errno));
	} else {
		return 0;
	}
	unlink(c->script);
	return reply(c, msg);
}

/* ---- PUT: a file from the host ------------------------------------------------ */

/* Creates the directories above path (0755), as mkdir -p; on failure names the one that failed. */
static int make_parents(const char *path, char *failed, size_t size)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *end = strrchr(dir, '/');
	if (!end || end == dir)
		return 0; /* directly under / */
	*end = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char keep = *p;
		*p = '\0';
		struct stat st;
		if (mkdir(dir, 0755) < 0) {
			int err = errno;
			if (err != EEXIST || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
				snprintf(failed, size, "%s", dir);
				errno = err == EEXIST ? ENOTDIR : err;
				return -1;
			}
		}
		if (keep == '\0')
			return 0;
		*p = keep;
	}
}

/* Drops the PUT's temporary file. */
static void put_discard(struct put *p)
{
	if (p->fd >= 0) {
		close(p->fd);
		unlink(p->tmp);
	}
	p->fd = -1;
}

/* A PUT failed while its bytes come: say so at once, and drop what the host still sends. */
static int put_fail(struct conn *c, const char *what, int err)
{
	struct put *p = &c->put;
	put_discard(p);
	int rc = replyf(c, "ERR %s: %s after %llu of %llu bytes: %s; nothing was written there",
			p->path, what, p->received, p->len, strerror(err));
	if (p->received >= p->granted)
		p->active = 0;
	return rc;
}

/* Lets the host send more, keeping up to a window of bytes on their way. */
static int put_grant(struct conn *c)
{
	struct put *p = &c->put;
	unsigned long long ahead = p->granted - p->received;
	if (p->fd < 0 || p->granted >= p->len || ahead + p->step > p->window)
		return 0;
	unsigned long long n = p->window - ahead;
	if (n > p->len - p->granted)
		n = p->len - p->granted;
	p->granted += n;
	return replyf(c, "MORE %llu", n);
}

/* Every byte came: check the SHA-256, then put the file in place. */
static int put_finish(struct conn *c)
{
	struct put *p = &c->put;
	char got[65];
	p->active = 0;
	sha256_hex(&p->sha, got);
	if (strcmp(got, p->want) != 0) {
		put_discard(p);
		return replyf(c, "ERR %s: SHA-256 mismatch: %s arrived, the host sent %s; nothing was written there", p->path, got, p->want);
	}
	const char *what = NULL;
	if (fchmod(p->fd, p->mode) < 0)
		what = "cannot set its mode";
	else if (fsync(p->fd) < 0)
		what = "cannot write it to disk";
	else if (rename(p->tmp, p->path) < 0)
		what = "cannot move it in place";
	if (what) {
		int err = errno;
		put_discard(p);
		return replyf(c, "ERR %s: %s: %s; nothing was written there", p->path, what, strerror(err));
	}
	close(p->fd);
	p->fd = -1;
	/* The rename itself must survive a power cut too. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", p->path);
	char *slash = strrchr(dir, '/');
	slash[slash == dir ? 1 : 0] = '\0';
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return replyf(c, "OK %s", got);
}

/* PUT <len> <mode> <sha256> <path>: checks, makes the directories and the temporary file, asks for the bytes. */
static int begin_put(struct conn *c, char *arg)
{
	static unsigned counter;
	struct put *p = &c->put;
	char *fields[4] = {arg, NULL, NULL, NULL};
	for (int i = 1; i < 4; i++) {
		char *sp = strchr(fields[i - 1], ' ');
		if (!sp)
			return reply(c, "ERR bad PUT: PUT <len> <mode> <sha256> <path> expected\n");
		*sp = '\0';
		fields[i] = sp + 1;
	}
	size_t digits = strspn(fields[0], "0123456789");
	size_t octal = strspn(fields[1], "01234567");
	size_t hex = strspn(fields[2], "0123456789abcdefABCDEF");
	if (digits == 0 || digits > 15 || fields[0][digits] != '\0')
		return reply(c, "ERR bad PUT length\n");
	if (octal == 0 || octal > 5 || fields[1][octal] != '\0' || strtoul(fields[1], NULL, 8) > 07777)
		return reply(c, "ERR bad PUT mode (octal, up to 7777)\n");
	if (hex != 64 || fields[2][hex] != '\0')
		return reply(c, "ERR bad PUT SHA-256 (64 hex digits)\n");
	const char *path = fields[3];
	if (strlen(path) >= sizeof(p->path))
		return reply(c, "ERR bad PUT: path too long\n");

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	snprintf(p->path, sizeof(p->path), "%s", path);
	p->len = strtoull(fields[0], NULL, 10);
	p->mode = (mode_t)strtoul(fields[1], NULL, 8);
	for (int i = 0; i < 64; i++)
		p->want[i] = (char)(fields[2][i] | 0x20); /* lower case */
	p->window = c->tty ? TTY_PUT_WINDOW : PUT_WINDOW;
	p->step = c->tty ? TTY_PUT_STEP : PUT_STEP;

	const char *base = strrchr(path, '/');
	if (path[0] != '/')
		return replyf(c, "ERR %s: not an absolute path", path);
	if (base[1] == '\0' || strcmp(base + 1, ".") == 0 || strcmp(base + 1, "..") == 0)
		return replyf(c, "ERR %s: names a directory, not a file", path);
	char failed[PATH_MAX];
	if (make_parents(path, failed, sizeof(failed)) < 0)
		return replyf(c, "ERR %s: cannot create the directory %s: %s", path, failed, strerror(errno));
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return replyf(c, "ERR %s: is a directory", path);
	/* The temporary file lies beside the target, so that rename() is atomic. */
	snprintf(p->tmp, sizeof(p->tmp), "%.*s/.paio-put.%d.%u", (int)(base - path), path, (int)getpid(), counter++);
	/* O_EXCL|O_NOFOLLOW: root must not write through a planted link. */
	p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (p->fd < 0)
		return replyf(c, "ERR %s: cannot create a file in its directory: %s", path, strerror(errno));
	/* Reserve the space now: a file that does not fit is refused before its bytes travel. */
	if (p->len > 0 && fallocate(p->fd, 0, 0, (off_t)p->len) < 0 && (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)) {
		int err = errno;
		struct statvfs vfs;
		char free_text[64] = "";
		if (fstatvfs(p->fd, &vfs) == 0)
			snprintf(free_text, sizeof(free_text), " (%llu bytes free there)", (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		put_discard(p);
		return replyf(c, "ERR %s: %s: %llu bytes do not fit%s", path, strerror(err), p->len, free_text);
	}
	sha256_init(&p->sha);
	p->last_ms = now_ms();
	if (p->len == 0)
		return put_finish(c);
	p->active = 1;
	return put_grant(c);
}

/* Bytes of the PUT in progress; returns how many were taken, or -1 when the port failed. */
static ssize_t put_bytes(struct conn *c, const char *buf, size_t len)
{
	struct put *p = &c->put;
	/* After an error only what was granted still comes. */
	unsigned long long limit = p->fd >= 0 ? p->len : p->granted;
	size_t n = len < limit - p->received ? len : (size_t)(limit - p->received);
	p->last_ms = now_ms();
	if (p->fd >= 0) {
		if (write_all(p->fd, buf, n) < 0) {
			int err = errno;
			p->received += n;
			return put_fail(c, err == ENOSPC ? "the disk is full" : "cannot write", err) < 0 ? -1 : (ssize_t)n;
		}
		sha256_update(&p->sha, buf, n);
	}
	p->received += n;
	if (p->fd < 0) {
		if (p->received >= p->granted)
			p->active = 0;
		return (ssize_t)n;
	}
	if (p->received == p->len)
		return put_finish(c) < 0 ? -1 : (ssize_t)n;
	return put_grant(c) < 0 ? -1 : (ssize_t)n;
}

/* No byte for a long time: the host is gone (a serial line never says so). */
static int put_stalled(struct conn *c)
{
	struct put *p = &c->put;
	p->active = 0;
	if (p->fd < 0)
		return 0; /* already answered */
	put_discard(p);
	return replyf(c, "ERR %s: no data for %lld s after %llu of %llu bytes; nothing was written there",
		      p->path, put_idle_ms / 1000, p->received, p->len);
}

static int handle_line(struct conn *c, char *line)
{
	if (strcmp(line, "HELLO") == 0)
		return reply(c, "PAIO-EXEC-READY 2\n");
	if (strcmp(line, "KILL") == 0) {
		/* Silent when idle: a KILL that crossed the script's EXIT is not an error.
		 * The unreaped child keeps its pid, so -pid cannot name a stranger. */
		if (c->pid > 0)
			kill(-c->pid, SIGKILL);
		return 0;
	}
	if (strcmp(line, "POWEROFF") == 0 || strcmp(line, "REBOOT") == 0) {
		int rc = reply(c, "OK\n");
		kill(1, line[0] == 'P' ? SIGUSR2 : SIGTERM); /* PAIO's PID 1 shuts down on these */
		return rc;
	}
	if (strncmp(line, "RUN ", 4) == 0)
		return begin_run(c, line + 4);
	if (strncmp(line, "PUT ", 4) == 0)
		return begin_put(c, line + 4);
	return reply(c, "ERR unknown command\n");
}

/* Feeds bytes from the host through the parser; -1 when the port failed. */
static int feed(struct conn *c, const char *buf, size_t len)
{
	while (len > 0) {
		if (c->body_left > 0) {
			size_t n = len < c->body_left ? len : c->body_left;
			if (c->body_fd >= 0 && !c->body_err && write_all(c->body_fd, buf, n) < 0)
				c->body_err = errno;
			buf += n;
			len -= n;
			c->body_left -= n;
			if (c->body_left == 0 && end_run(c) < 0)
				return -1;
			continue;
		}
		if (c->put.active) {
			ssize_t n = put_bytes(c, buf, len);
			if (n < 0)
				return -1;
			buf += n;
			len -= (size_t)n;
			continue;
		}
		char ch = *buf++;
		len--;
		if (ch != '\n') {
			if (c->discarding)
				continue;
			if (c->line_len == MAX_LINE) {
				c->discarding = 1;
				if (reply(c, "ERR line too long\n") < 0)
					return -1;
				continue;
			}
			c->line[c->line_len++] = ch;
			continue;
		}
		c->line[c->line_len] = '\0';
		int skip = c->discarding;
		c->line_len = 0;
		c->discarding = 0;
		if (!skip && handle_line(c, c->line) < 0)
			return -1;
		/* A RUN 0 has no body: run the empty script at once. */
		if (c->body_left == 0 && c->body_fd >= 0 && end_run(c) < 0)
			return -1;
	}
	return 0;
}

/* Serves one connection until the host goes away. */
static void serve(struct conn *c)
{
	static char in[IN_CHUNK];
	char buf[CHUNK], head[32];
	for (;;) {
		struct pollfd fds[2] = {{c->fd, POLLIN, 0}, {c->out, POLLIN, 0}};
		/* Output ended but the script may still be running: look again shortly. */
		int timeout = c->pid > 0 && c->out < 0 ? 20 : -1;
		if (c->put.active) {
			long long left = c->put.last_ms + put_idle_ms - now_ms();
			int t = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
			if (timeout < 0 || t < timeout)
				timeout = t;
		}
		int ready = poll(fds, 2, timeout);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (c->put.active && now_ms() - c->put.last_ms >= put_idle_ms && put_stalled(c) < 0)
			return;
		if (c->out >= 0 && fds[1].revents) {
			ssize_t n = read(c->out, buf, sizeof(buf));
			if (n > 0) {
				int h = snprintf(head, sizeof(head), "OUT %zd\n", n);
				if (write_all(c->fd, head, (size_t)h) < 0 || write_all(c->fd, buf, (size_t)n) < 0)
					return;
			} else if (n == 0 || errno != EINTR) {
				close(c->out);
				c->out = -1;
			}
		}
		int status;
		if (c->pid > 0 && c->out < 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
			snprintf(head, sizeof(head), "EXIT %d\n", script_done(c, status));
			if (reply(c, head) < 0)
				return;
		}
		if (fds[0].revents) {
			ssize_t n = read(c->fd, in, sizeof(in));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || feed(c, in, (size_t)n) < 0)
				return;
		}
	}
}

static void __attribute__((noreturn)) idle_forever(const char *what)
{
	fprintf(stderr, "qemu-exec: no %s; idle\n", what);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	char path[300];
	signal(SIGPIPE, SIG_IGN); /* a vanished host shows up as EPIPE, not as our death */
	/* Tests shorten the wait after which a silent PUT is dropped. */
	const char *idle = getenv("QEMU_EXEC_PUT_IDLE_MS");
	if (idle && atoll(idle) > 0)
		put_idle_ms = atoll(idle);
	if (argc > 1) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else if (cmdline_port(path, sizeof(path)) == 0) {
		/* The device may still be appearing: give it 3 s. */
		for (int tries = 0; access(path, F_OK) < 0; tries++) {
			if (tries == 15)
				idle_forever(path);
			usleep(200000);
		}
	} else {
		/* The host names the port shortly after the device appears: give it 3 s. */
		int tries = 0;
		while (find_port(path, sizeof(path)) < 0) {
			if (++tries == 15)
				idle_forever(PORT_NAME " virtio port");
			usleep(200000);
		}
	}
	for (;;) {
		static struct conn c;
		memset(&c, 0, sizeof(c));
		c.fd = open_port(path);
		c.body_fd = -1;
		c.out = -1;
		c.put.fd = -1;
		if (c.fd >= 0) {
			c.tty = isatty(c.fd);
			serve(&c);
			if (c.pid > 0)
				abandon_script(&c);
			if (c.body_fd >= 0) {
				close(c.body_fd);
				unlink(c.script);
			}
			/* A transfer cut off leaves nothing behind. */
			put_discard(&c.put);
			close(c.fd);
		}
		usleep(200000);
	}
}
