#include "kf_compat.h"

#include "kf_err.h"

const char *kf_err_str(int err)
{
	switch (err) {
	case KF_OK: return "ok";
	case KF_ERR_NOMEM: return "out of memory";
	case KF_ERR_INVAL: return "invalid input";
	case KF_ERR_RANGE: return "out of range";
	case KF_ERR_NOTFOUND: return "not found";
	case KF_ERR_EXISTS: return "already exists";
	case KF_ERR_IO: return "i/o error";
	case KF_ERR_STORE: return "store unavailable";
	case KF_ERR_TOOBIG: return "too large";
	case KF_ERR_LIMIT: return "rate limited";
	case KF_ERR_AUTH: return "not authorized";
	case KF_ERR_CONFIG: return "bad configuration";
	}
	return "unknown error";
}
