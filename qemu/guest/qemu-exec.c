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
 *   host  HELLO\n                 guest  PAIO-EXEC-READY 1\n
 *   host  RUN <len>\n<script>     guest  OUT <len>\n<bytes> ... EXIT <code>\n
 *   host  KILL\n                  SIGKILL to the running script (EXIT 137)
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
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define PORT_NAME "org.paio.exec"
#define CMDLINE_KEY "paio.exec_port="
#define MAX_LINE 256
#define MAX_SCRIPT (16u << 20)
#define CHUNK 4096

static char *const SCRIPT_ENV[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", NULL};

struct conn {
	int fd;
	char line[MAX_LINE + 1];
	size_t line_len;
	int discarding;       /* after an over-long line: drop bytes up to '\n' */
	size_t body_left;     /* bytes of a RUN script still to come */
	int body_fd;          /* where they go; -1: they are dropped */
	int body_err;         /* errno of a failed write to the script file */
	char script[64];      /* the script file being written or run */
	pid_t pid;            /* running script (also its process group), or 0 */
	int out;              /* read end of its output pipe, or -1 after EOF */
};

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

static int handle_line(struct conn *c, const char *line)
{
	if (strcmp(line, "HELLO") == 0)
		return reply(c, "PAIO-EXEC-READY 1\n");
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
	char buf[CHUNK], head[32];
	for (;;) {
		struct pollfd fds[2] = {{c->fd, POLLIN, 0}, {c->out, POLLIN, 0}};
		/* Output ended but the script may still be running: look again shortly. */
		int waiting = c->pid > 0 && c->out < 0;
		if (poll(fds, 2, waiting ? 20 : -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
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
			ssize_t n = read(c->fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || feed(c, buf, (size_t)n) < 0)
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
		struct conn c = {.fd = open_port(path), .body_fd = -1, .out = -1};
		if (c.fd >= 0) {
			serve(&c);
			if (c.pid > 0)
				abandon_script(&c);
			if (c.body_fd >= 0) {
				close(c.body_fd);
				unlink(c.script);
			}
			close(c.fd);
		}
		usleep(200000);
	}
}
