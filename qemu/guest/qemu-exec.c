/*
 * qemu-exec: the guest side of the host's `paio qemu exec`.
 *
 * Runs as a supervised unit. It opens the virtio-serial port named
 * org.paio.exec (or, for tests, a path given as argument: a character device
 * or a unix socket) and serves this byte protocol:
 *
 *   host  HELLO\n                 guest  PAIO-EXEC-READY 1\n
 *   host  RUN <len>\n<script>     guest  OUT <len>\n<bytes> ... EXIT <code>\n
 *   host  KILL\n                  (while a script runs: SIGKILL its process group)
 *   host  POWEROFF\n | REBOOT\n   guest  OK\n, then signals PID 1
 *   anything else                 guest  ERR <reason>\n
 *
 * The script runs as root with /bin/sh; stdout and stderr share one pipe, so
 * their order is kept. On hardware without the port it idles forever.
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
#include <unistd.h>

#define PORT_NAME "org.paio.exec"
#define MAX_LINE 256
#define MAX_SCRIPT (16 << 20)

static int port = -1;
static char line[MAX_LINE + 1];
static size_t line_len;
static int discarding; /* inside an over-long line: drop bytes up to the next newline */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd w = {fd, POLLOUT, 0};
				poll(&w, 1, 1000);
				continue;
			}
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int reply(const char *text)
{
	return write_all(port, text, strlen(text));
}

/* Finds /dev/vportNpM whose name is PORT_NAME. */
static int find_port(char *path, size_t size)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -1;
	struct dirent *e;
	int found = -1;
	while (found < 0 && (e = readdir(d))) {
		char file[320], name[64] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/sys/class/virtio-ports/%s/name", e->d_name);
		FILE *f = fopen(file, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f)) {
			name[strcspn(name, "\n")] = '\0';
			if (strcmp(name, PORT_NAME) == 0) {
				snprintf(path, size, "/dev/%s", e->d_name);
				found = 0;
			}
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

static int open_port(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof(addr.sun_path))
			return -1;
		memcpy(addr.sun_path, path, strlen(path) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

/* Reads exactly len bytes from the port into buf; -1 on EOF or error. */
static int read_exact(char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = read(port, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Runs a script and streams its output; returns -1 if the port failed. */
static int run_script(const char *script, size_t len)
{
	static unsigned counter;
	char path[64], header[32], buf[4096];
	snprintf(path, sizeof(path), "/tmp/paio-exec.%d.%u.sh", (int)getpid(), counter++);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (fd < 0 || write_all(fd, script, len) < 0) {
		if (fd >= 0)
			close(fd);
		snprintf(buf, sizeof(buf), "ERR cannot write %s: %s\n", path, strerror(errno));
		return reply(buf);
	}
	close(fd);

	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return reply("ERR pipe failed\n");
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		signal(SIGPIPE, SIG_DFL);
		if (chdir("/root") < 0 && chdir("/") < 0)
			_exit(126);
		char *argv[] = {"sh", path, NULL};
		char *env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", NULL};
		execve("/bin/sh", argv, env);
		_exit(127);
	}
	close(out[1]);
	if (pid < 0) {
		close(out[0]);
		unlink(path);
		return reply("ERR fork failed\n");
	}

	int port_ok = 0;
	for (int open_out = 1; open_out;) {
		struct pollfd fds[2] = {{out[0], POLLIN, 0}, {port, POLLIN, 0}};
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents) {
			ssize_t n = read(out[0], buf, sizeof(buf));
			if (n > 0) {
				int h = snprintf(header, sizeof(header), "OUT %zd\n", n);
				if (write_all(port, header, (size_t)h) < 0 || write_all(port, buf, (size_t)n) < 0)
					port_ok = -1;
			} else if (n == 0 || errno != EINTR) {
				open_out = 0;
			}
		}
		if (fds[1].revents & POLLIN) {
			/* Only KILL is expected while a script runs; other input waits. */
			char c;
			ssize_t n = read(port, &c, 1);
			if (n <= 0) {
				port_ok = -1;
				kill(-pid, SIGKILL);
			} else if (c == '\n') {
				line[line_len] = '\0';
				if (strcmp(line, "KILL") == 0)
					kill(-pid, SIGKILL);
				line_len = 0;
			} else if (line_len < MAX_LINE) {
				line[line_len++] = c;
			}
		} else if (fds[1].revents & (POLLHUP | POLLERR)) {
			port_ok = -1;
			kill(-pid, SIGKILL);
			fds[1].fd = -1;
		}
	}
	close(out[0]);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	unlink(path);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	snprintf(header, sizeof(header), "EXIT %d\n", code);
	if (port_ok < 0 || reply(header) < 0)
		return -1;
	return 0;
}

/* Handles one complete command line; returns -1 if the port failed. */
static int handle(const char *cmd)
{
	if (strcmp(cmd, "HELLO") == 0)
		return reply("PAIO-EXEC-READY 1\n");
	if (strcmp(cmd, "POWEROFF") == 0 || strcmp(cmd, "REBOOT") == 0) {
		int rc = reply("OK\n");
		kill(1, cmd[0] == 'P' ? SIGUSR2 : SIGTERM);
		return rc;
	}
	if (strcmp(cmd, "KILL") == 0)
		return 0; /* nothing is running */
	if (strncmp(cmd, "RUN ", 4) == 0) {
		char *end;
		unsigned long len = strtoul(cmd + 4, &end, 10);
		if (*end != '\0' || end == cmd + 4 || len > MAX_SCRIPT)
			return reply("ERR bad RUN length\n");
		char *script = malloc(len + 1);
		if (!script)
			return reply("ERR out of memory\n");
		int rc = read_exact(script, len);
		if (rc == 0)
			rc = run_script(script, len);
		free(script);
		return rc;
	}
	return reply("ERR unknown command\n");
}

static void serve(void)
{
	char buf[512];
	line_len = 0;
	discarding = 0;
	for (;;) {
		ssize_t n = read(port, buf, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		char c = buf[0];
		if (c == '\n') {
			line[line_len] = '\0';
			int was_discarding = discarding;
			line_len = 0;
			discarding = 0;
			if (was_discarding) {
				if (reply("ERR line too long\n") < 0)
					return;
			} else if (handle(line) < 0) {
				return;
			}
		} else if (!discarding) {
			if (line_len < MAX_LINE)
				line[line_len++] = c;
			else
				discarding = 1;
		}
	}
}

int main(int argc, char **argv)
{
	char path[300];
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1) {
		snprintf(path, sizeof(path), "%s", argv[1]);
	} else if (find_port(path, sizeof(path)) < 0) {
		fprintf(stderr, "qemu-exec: no %s virtio port; idle\n", PORT_NAME);
		for (;;)
			pause();
	}
	for (;;) {
		port = open_port(path);
		if (port >= 0) {
			serve();
			close(port);
		}
		usleep(200000);
	}
}
