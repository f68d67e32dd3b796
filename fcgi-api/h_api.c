/*
 * h_api.c - the visitor's side over REST:
 *   POST /api/link   issue a visitor ws_key and its URL (no login), limited
 *                    per client IP ([Api] LinkPerIpPerMinute) and by
 *                    [Websocket] MaxConnection live visitors
 */
#include "kf_compat.h"

#include <time.h>

#include "api.h"
#include "handlers.h"
#include "kf_config.h"
#include "kf_err.h"
#include "kf_json.h"
#include "kf_store.h"
#include "reply.h"
#include "request.h"

void kf_h_api_link(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	const struct kf_config *cfg = w->api->cfg;
	time_t now = time(NULL);
	char key[KF_KEY_LEN + 1];
	struct kf_buf url = KF_BUF_INIT;
	struct json_object *data;
	int rc;

	rc = kf_store_visitor_issue(w->redis, w->api->prefix, req->client_ip,
				    (long)kf_config_int(cfg, "Relay", "VisitorKeyTtlSec"),
				    (long)kf_config_int(cfg, "Websocket", "MaxConnection"),
				    (long)kf_config_int(cfg, "Api", "LinkPerIpPerMinute"), now, key);
	if (rc == KF_ERR_LIMIT) {
		kf_reply_header(rep, "Retry-After: %ld", 60 - (long)(now % 60));
		kf_reply_error(rep, 429, "too many chat links from this address, try again later");
		return;
	}
	if (rc == KF_ERR_TOOBIG) {
		kf_reply_header(rep, "Retry-After: 30");
		kf_reply_error(rep, 503, "too many visitors connected, try again later");
		return;
	}
	if (rc != 0) {
		kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
		return;
	}
	kf_buf_addf(&url, "%s/ws/api/link?ws_key=%s", kf_config_str(cfg, "Relay", "PublicUrl"), key);
	data = json_object_new_object();
	kf_json_set_str(data, "ws_key", key);
	kf_json_set_str(data, "url", url.data);
	kf_json_set_int(data, "expires_in", kf_config_int(cfg, "Relay", "VisitorKeyTtlSec"));
	kf_reply_ok(rep, data);
	kf_buf_release(&url);
}
