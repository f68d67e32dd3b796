/*
 * handlers.h - the request handlers the route table points at, grouped by
 * file (h_login.c, h_health.c ...).  A handler reads req (parameters
 * already parsed, session already checked when the route needs one) and
 * fills rep; it never writes to the client itself.
 */
#ifndef KF_HANDLERS_H
#define KF_HANDLERS_H

#include "router.h"

/* h_login.c */
void kf_h_login(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_logout(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_me(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_ws.c */
void kf_h_ws_register(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_ws_info(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_ws_link_user(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_ws_close(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_history.c */
void kf_h_ws_conversations(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_ws_history(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_api.c */
void kf_h_api_link(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_health.c */
void kf_h_healthz(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_user.c */
void kf_h_user_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_user_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_user_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_user_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_role.c */
void kf_h_role_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_role_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_role_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_role_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_auth.c */
void kf_h_auth_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_auth_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_auth_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_auth_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_auth_map.c */
void kf_h_auth_map_list(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_auth_map_add(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_auth_map_edit(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
void kf_h_auth_map_del(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);
/* h_perf.c */
void kf_h_perf_stats(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep);

#endif
