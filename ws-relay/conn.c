/*
 * conn.c - the lws protocol callback: plain HTTP (healthz, 404), the
 * upgrade check, receiving and reassembling messages under limits,
 * sending (at once when nothing waits ahead, else through a bounded
 * per-connection queue written when writable), and closing with a code.
 */
#include "kf_compat.h"

#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "frame.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"
#include "relay.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_queue(struct kf_conn *c);

/* The largest frame written at once from the stack; larger ones are copied to the heap. */
#define DIRECT_STACK 2048

/*
 * Write one frame now.  lws sends what the socket takes and keeps the rest
 * (lws_partial_buffered) until the socket is writable again.  0, or -1
 * when the connection is broken (it is then killed).
 */
static int write_now(struct kf_conn *c, const char *data, size_t len)
{
	unsigned char stack[LWS_PRE + DIRECT_STACK];
	unsigned char *p = len <= DIRECT_STACK ? stack : kf_xmalloc(LWS_PRE + len);
	int n;

	memcpy(p + LWS_PRE, data, len);
	n = lws_write(c->wsi, p + LWS_PRE, len, LWS_WRITE_TEXT);
	if (p != stack)
		free(p);
	if (n >= 0)
		return 0;
	c->direct = false;
	c->close_code = LWS_CLOSE_STATUS_ABNORMAL_CLOSE;
	snprintf(c->close_reason, sizeof(c->close_reason), "write failed");
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	return -1;
}

int kf_conn_send(struct kf_conn *c, const char *data, size_t len)
{
	struct kf_out *o;

	if (c->close_code)
		return -1; /* closing: nothing more goes out */
	/*
	 * Nothing queued and nothing left over in lws: write now.  Asking
	 * for POLLOUT per frame instead costs a loop round and, with lws on
	 * libuv, two epoll_ctl calls each way (on, then off).
	 */
	if (c->direct && !c->head && !lws_partial_buffered(c->wsi))
		return write_now(c, data, len);
	if (c->queued >= kf_relay.queue_max) {
		kf_warn("%s %s: send queue full (%zu frames), dropping the slow reader",
			c->kind == KF_CONN_AGENT ? "agent" : "visitor", c->ip, c->queued);
		c->leaving = c->kind == KF_CONN_VISITOR;
		free_queue(c);
		kf_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
		/* it does not read, so it never becomes writable: drop it now */
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return -1;
	}
	o = kf_xmalloc(sizeof(*o) + LWS_PRE + len);
	o->next = NULL;
	o->len = len;
	memcpy(o->buf + LWS_PRE, data, len);
	if (c->tail)
		c->tail->next = o;
	else
		c->head = o;
	c->tail = o;
	c->queued++;
	lws_callback_on_writable(c->wsi);
	return 0;
}

void kf_conn_send_frame(struct kf_conn *c, const char *type, const char *content,
			const char *from, const char *ws_key, const char *ip)
{
	struct kf_buf b = KF_BUF_INIT;
	struct kf_frame_out f = {
		.type = type, .content = content, .from = from, .ws_key = ws_key, .ip = ip
	};

	kf_frame_build(&b, &f, time(NULL));
	kf_conn_send(c, b.data, b.len);
	kf_buf_release(&b);
}

void kf_conn_send_chat(struct kf_conn *c, const char *content, size_t len, const char *from,
		       const char *ws_key)
{
	struct kf_buf b = KF_BUF_INIT;
	struct kf_frame_out f = {
		.type = "chat", .content = content, .content_len = len, .from = from, .ws_key = ws_key
	};

	kf_frame_build(&b, &f, time(NULL));
	kf_conn_send(c, b.data, b.len);
	kf_buf_release(&b);
}

void kf_conn_close(struct kf_conn *c, int code, const char *reason)
{
	if (c->close_code)
		return;
	c->close_code = code;
	c->close_at = time(NULL);
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	lws_callback_on_writable(c->wsi);
}

static void free_queue(struct kf_conn *c)
{
	while (c->head) {
		struct kf_out *o = c->head;

		c->head = o->next;
		free(o);
	}
	c->tail = NULL;
	c->queued = 0;
}

/* Queued frames written per writable callback, at most. */
#define WRITES_PER_CALLBACK 32

/*
 * Write queued frames until the socket takes no more (lws then holds a
 * remainder), or close.  Returns -1 to close the connection.
 */
static int on_writable(struct kf_conn *c)
{
	int writes = 0;

	while (c->head && writes++ < WRITES_PER_CALLBACK && !lws_partial_buffered(c->wsi)) {
		struct kf_out *o = c->head;
		int n = lws_write(c->wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_TEXT);

		c->head = o->next;
		if (!c->head)
			c->tail = NULL;
		c->queued--;
		free(o);
		if (n < 0)
			return -1;
	}
	if (writes) {
		if (c->queued < kf_relay.queue_max / 4)
			kf_history_resume(c);
		if (c->head || c->close_code)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (c->close_code && !c->close_started) {
		/*
		 * Start the polite close (close frame, wait for the echo) with
		 * one explicit call.  Returning -1 here instead makes Debian's
		 * lws 4.1.6 (a _DEBUG build on libuv) close twice in a row,
		 * and the second call drops the socket before the close frame
		 * is written.  The polite path does not free the wsi.  Only
		 * once: lws may call back writable again while it waits for
		 * the client's close, and a second kill there drops the
		 * socket at once.  The client may still be sending (a flood),
		 * and its next write then meets a reset, which makes it lose
		 * the close frame it has not read yet (it sees 1006).
		 */
		c->close_started = true;
		lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
				 (unsigned char *)c->close_reason, strlen(c->close_reason));
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
		return 0;
	}
	return 0;
}

/* A client broke the protocol: close with code; its chat ends. */
static void violation(struct kf_conn *c, int code, const char *reason)
{
	c->leaving = true;
	free_queue(c);
	kf_conn_close(c, code, reason);
}

static void bad_frame(struct kf_conn *c, const char *why)
{
	kf_conn_send_frame(c, "error", why, NULL, NULL, NULL);
	if (++c->bad >= (unsigned)kf_relay.max_bad)
		violation(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many bad frames");
}

/* Token bucket: MaxMessagesPerSec per second, bursts up to the same. */
static bool rate_ok(struct kf_conn *c)
{
	int64_t now = now_ms();
	double rate = (double)kf_relay.max_rate;

	c->tokens += (double)(now - c->refill_ms) * rate / 1000.0;
	if (c->tokens > rate)
		c->tokens = rate;
	c->refill_ms = now;
	if (c->tokens < 1.0)
		return false;
	c->tokens -= 1.0;
	return true;
}

static void on_message(struct kf_conn *c, const char *text, size_t len)
{
	struct kf_frame f;
	const char *why;

	c->last_seen = time(NULL);
	if (!rate_ok(c)) {
		violation(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too many messages");
		return;
	}
	if (!kf_utf8_valid(text, len)) {
		violation(c, LWS_CLOSE_STATUS_INVALID_PAYLOAD, "text is not valid UTF-8");
		return;
	}
	if (kf_frame_parse(text, len, kf_relay.max_msg, &f, &why) != 0) {
		bad_frame(c, why);
		return;
	}
	c->bad = 0;
	switch (f.type) {
	case KF_FRAME_PING:
		kf_conn_send_frame(c, "pong", NULL, NULL, NULL, NULL);
		break;
	case KF_FRAME_CHAT:
		kf_route_chat(c, f.content, f.content_len, f.to);
		break;
	case KF_FRAME_ACK:
		kf_route_ack(c, f.seq, f.to);
		break;
	}
	kf_frame_release(&f);
}

static void on_receive(struct kf_conn *c, struct lws *wsi, const char *in, size_t len)
{
	if (c->close_code)
		return; /* closing: ignore the rest */
	if (lws_frame_is_binary(wsi)) {
		violation(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary frames are not supported");
		return;
	}
	if (c->rx.len + len > kf_relay.max_frame) {
		kf_buf_release(&c->rx);
		violation(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
		return;
	}
	if (lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi) &&
	    !lws_remaining_packet_payload(wsi)) {
		on_message(c, in, len); /* the common case: no copy */
		return;
	}
	kf_buf_add(&c->rx, in, len);
	if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
		on_message(c, c->rx.data, c->rx.len);
		kf_buf_release(&c->rx);
	}
}

/* Write a whole HTTP response with the JSON envelope.  0 or -1. */
static int write_json(struct lws *wsi, unsigned status, const char *message,
		      struct json_object *data)
{
	unsigned char buf[LWS_PRE + 2048];
	unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	struct json_object *env = json_object_new_object();
	struct kf_buf body = KF_BUF_INIT;
	int rc = -1;

	kf_json_set_int(env, "code", status);
	kf_json_set_str(env, "message", message);
	json_object_object_add(env, "data", data);
	kf_json_append(&body, env);
	json_object_put(env);
	if (lws_add_http_common_headers(wsi, status, "application/json; charset=utf-8",
					body.len, &p, end) ||
	    lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) < body.len)
		goto out;
	memcpy(p, body.data, body.len);
	p += body.len;
	if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) >= 0)
		rc = 0;
out:
	kf_buf_release(&body);
	return rc;
}

/* Answer a plain HTTP request.  Returns lws's verdict. */
static int http_json(struct lws *wsi, unsigned status, const char *message,
		     struct json_object *data)
{
	if (write_json(wsi, status, message, data) != 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int kf_conn_refuse(struct lws *wsi, unsigned status, const char *message)
{
	return write_json(wsi, status, message, NULL) == 0 ? 1 : -1;
}

static int on_http(struct lws *wsi, const char *path)
{
	if (strcmp(path, "/healthz") == 0) {
		redisReply *pong = kf_redis_cmd(kf_relay.redis, "PING");
		bool ok = pong && pong->type == REDIS_REPLY_STATUS;
		struct json_object *data = json_object_new_object();

		if (pong)
			freeReplyObject(pong);
		kf_json_set_str(data, "redis", ok ? "ok" : "down");
		kf_json_set_str(data, "node", kf_relay.node);
		kf_json_set_int(data, "connections", (int64_t)kf_relay.nconns);
		kf_json_set_str(data, "state", kf_relay.draining ? "draining" : "serving");
		return http_json(wsi, ok && !kf_relay.draining ? 200 : 503,
				 ok ? "ok" : "redis is down", data);
	}
	return http_json(wsi, 404, "no such endpoint: WebSocket paths are /ws/api/link and "
				   "/ws/admin/link",
			 NULL);
}

int kf_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	struct kf_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		/*
		 * Keep a reserve of descriptors: a process at its open-file limit
		 * makes lws retry the failed accept() in a loop.  accept() hands
		 * out the lowest free descriptor, so its number tells how close
		 * the process is ("in" is that descriptor; "user" points to lws's
		 * struct lws_filter_network_conn_args, not to a kf_conn).
		 * Refused here, the socket is closed at once.
		 */
		if (kf_relay.fd_limit && (long)(lws_intptr_t)in >= kf_relay.fd_limit) {
			if (kf_relay.fd_refused++ % 1000 == 0)
				kf_warn("connection refused: %ld open files reached (the limit less a reserve); "
					"run more relay nodes", kf_relay.fd_limit);
			return 1;
		}
		break;
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		if (!in || strcasecmp(in, "websocket") != 0)
			return kf_conn_refuse(wsi, 400, "only WebSocket upgrades are served");
		return kf_session_confirm(wsi);
	case LWS_CALLBACK_ESTABLISHED:
		memset(c, 0, sizeof(*c));
		c->wsi = wsi;
		c->last_seen = time(NULL);
		c->last_chat = c->last_seen;
		c->tokens = (double)kf_relay.max_rate;
		c->refill_ms = now_ms();
		kf_relay.nconns++;
		kf_timers_add(c);
		kf_session_established(wsi, c);
		c->direct = true; /* what established queued goes first */
		break;
	case LWS_CALLBACK_RECEIVE:
		if (c && c->wsi)
			on_receive(c, wsi, in, len);
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (c && c->wsi)
			return on_writable(c);
		break;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && c->wsi)
			c->direct = false; /* lws is closing it */
		if (c && c->wsi && len >= 2) {
			const unsigned char *b = in;
			int code = (b[0] << 8) | b[1];

			if (code == LWS_CLOSE_STATUS_NORMAL || code == LWS_CLOSE_STATUS_GOINGAWAY)
				c->leaving = true;
		}
		break;
	case LWS_CALLBACK_CLOSED:
		if (c && c->wsi) {
			kf_session_closed(c); /* also releases the history tracks */
			free_queue(c);
			kf_buf_release(&c->rx);
			kf_timers_remove(c);
			kf_relay.nconns--;
			c->wsi = NULL;
		}
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		kf_session_abandoned(wsi);
		break;
	default:
		break;
	}
	return 0;
}
