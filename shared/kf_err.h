/*
 * kf_err.h - error codes shared by every kefu module.
 *
 * Functions return 0 on success or a negative enum kf_err.  kf_err_str()
 * gives a short lowercase description for logs and replies.
 */
#ifndef KF_ERR_H
#define KF_ERR_H

enum kf_err {
	KF_OK = 0,
	KF_ERR_NOMEM = -1,     /* allocation failed (normally aborts instead) */
	KF_ERR_INVAL = -2,     /* bad argument or input */
	KF_ERR_RANGE = -3,     /* value out of bounds */
	KF_ERR_NOTFOUND = -4,  /* no such row, key or entry */
	KF_ERR_EXISTS = -5,    /* already there */
	KF_ERR_IO = -6,        /* system call failed */
	KF_ERR_STORE = -7,     /* Redis or MySQL unavailable or failed */
	KF_ERR_TOOBIG = -8,    /* a size limit was crossed */
	KF_ERR_LIMIT = -9,     /* a rate limit was crossed */
	KF_ERR_AUTH = -10,     /* credentials or session refused */
	KF_ERR_CONFIG = -11,   /* configuration refused */
};

const char *kf_err_str(int err);

#endif
