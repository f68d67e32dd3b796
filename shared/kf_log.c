#include "kf_compat.h"

#include "kf_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "kf_err.h"

static const char *log_ident = "kefu";
static atomic_int log_level = KF_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
/* the process id in every line, read once (a child of fork reads its own) */
static atomic_long log_pid;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
	atomic_store(&log_pid, 0);
}

static void pid_watch_forks(void)
{
	(void)pthread_atfork(NULL, NULL, pid_forget);
}

static long log_getpid(void)
{
	long pid = atomic_load(&log_pid);

	if (!pid) {
		pthread_once(&pid_once, pid_watch_forks);
		pid = (long)getpid();
		atomic_store(&log_pid, pid);
	}
	return pid;
}

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void kf_log_set_ident(const char *ident)
{
	log_ident = ident ? ident : "kefu";
}

void kf_log_set_level(enum kf_log_level level)
{
	atomic_store(&log_level, (int)level);
}

int kf_log_level_parse(const char *s)
{
	for (size_t i = 0; i < KF_ARRAY_LEN(level_names); i++)
		if (s && strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

int kf_log_set_file(const char *path)
{
	int fd = STDERR_FILENO;
	int old;

	if (path && *path) {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return KF_ERR_IO;
	}
	old = atomic_exchange(&log_fd, fd);
	if (old != STDERR_FILENO)
		close(old);
	return 0;
}

bool kf_log_enabled(enum kf_log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

void kf_log_write(enum kf_log_level level, const char *func, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s[%ld] %s: ",
		     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		     tm.tm_sec, ts.tv_nsec / 1000000L,
		     level_names[(unsigned)level < KF_ARRAY_LEN(level_names) ? level : 0],
		     log_ident, log_getpid(), func);
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len = len + (size_t)n < sizeof(line) - 1 ? len + (size_t)n : sizeof(line) - 2;
	/* one event, one line: fold embedded newlines */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	{
		int saved = errno;
		ssize_t w = write(atomic_load(&log_fd), line, len);

		(void)w; /* a failed log write has nowhere to be reported */
		errno = saved;
	}
}
