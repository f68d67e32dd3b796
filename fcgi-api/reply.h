/*
 * reply.h - the reply of one request: the seed's JSON envelope
 * {"code": <HTTP status>, "message": "...", "data": ...}, extra headers, and
 * its rendering as a FastCGI/CGI response.
 *
 * A reply owns its data object and its strings; kf_reply_release() frees
 * them.  Setting a new result replaces (and frees) the old one.
 */
#ifndef KF_REPLY_H
#define KF_REPLY_H

#include "kf_compat.h"

#include <json-c/json.h>

#include "kf_buf.h"

struct kf_reply {
	int status;
	struct kf_buf message;
	struct json_object *data;  /* owned; NULL renders as null */
	struct kf_buf headers;     /* extra "Name: value\r\n" lines */
	bool raw;                  /* body holds the whole payload (not JSON envelope) */
	struct kf_buf body;        /* used when raw */
	const char *content_type;  /* used when raw; static */
};

void kf_reply_init(struct kf_reply *rep);
void kf_reply_release(struct kf_reply *rep);
/* Success: status 200, message "ok", data (owned, may be NULL). */
void kf_reply_ok(struct kf_reply *rep, struct json_object *data);
/* Any status with a formatted message and no data. */
void kf_reply_error(struct kf_reply *rep, int status, const char *fmt, ...) KF_PRINTF(3, 4);
/* Status, message and data (owned) together. */
void kf_reply_set(struct kf_reply *rep, int status, const char *message,
		  struct json_object *data);
/* Add a response header line (without the CRLF). */
void kf_reply_header(struct kf_reply *rep, const char *fmt, ...) KF_PRINTF(2, 3);
/* The reason phrase of an HTTP status ("Not Found"). */
const char *kf_reply_reason(int status);
/* The full CGI response (Status line, headers, blank line, body) into out. */
void kf_reply_render(const struct kf_reply *rep, struct kf_buf *out);

#endif
