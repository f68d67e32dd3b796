/*
 * kf_log.h - leveled logging, one line per event.
 *
 * Lines go to standard error (journald under systemd) or to a file opened
 * in append mode; each line is written with a single write(2), so threads
 * do not interleave.  The level is checked before anything is formatted.
 * Never pass a password, token, session id or ws_key: log a redacted form.
 */
#ifndef KF_LOG_H
#define KF_LOG_H

#include "kf_compat.h"

enum kf_log_level {
	KF_LOG_ERROR = 0,
	KF_LOG_WARN = 1,
	KF_LOG_INFO = 2,
	KF_LOG_DEBUG = 3,
};

/* Program name shown on each line (borrowed: must outlive logging). */
void kf_log_set_ident(const char *ident);
void kf_log_set_level(enum kf_log_level level);
/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int kf_log_level_parse(const char *s);
/*
 * Log to path (append, created 0640) instead of stderr; NULL or "" goes
 * back to stderr.  Returns 0 or KF_ERR_IO (errno set).
 */
int kf_log_set_file(const char *path);
bool kf_log_enabled(enum kf_log_level level);
void kf_log_write(enum kf_log_level level, const char *func, const char *fmt, ...)
	KF_PRINTF(3, 4);

#define kf_log(level, ...)                                          \
	do {                                                        \
		if (kf_log_enabled(level))                          \
			kf_log_write((level), __func__, __VA_ARGS__); \
	} while (0)

#define kf_err(...) kf_log(KF_LOG_ERROR, __VA_ARGS__)
#define kf_warn(...) kf_log(KF_LOG_WARN, __VA_ARGS__)
#define kf_info(...) kf_log(KF_LOG_INFO, __VA_ARGS__)
#define kf_debug(...) kf_log(KF_LOG_DEBUG, __VA_ARGS__)

#endif
