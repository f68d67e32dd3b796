/*
 * app.h - one request through kefu-api's pipeline, free of FastCGI I/O so
 * that tests can drive it: body limits, CORS (preflight and response
 * headers), routing (404/405), parameter parsing (400/415), session check
 * (401/503), the handler, and the trace log line.
 */
#ifndef KF_APP_H
#define KF_APP_H

#include "kf_compat.h"

struct kf_reply;
struct kf_req;
struct kf_worker;

/*
 * True when the declared body is too large to read: rep then holds the 413
 * (or 400 for a malformed Content-Length) and the body must not be read.
 */
bool kf_app_refuse_body(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* Handle req (body already in req->body) and fill rep. */
void kf_app_handle(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* Write the trace line for a finished request (duration in microseconds). */
void kf_app_trace(const struct kf_req *req, const struct kf_reply *rep, long long usec);

#endif
