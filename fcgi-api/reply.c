#include "kf_compat.h"

#include "reply.h"

#include <stdarg.h>

#include "kf_json.h"

void kf_reply_init(struct kf_reply *rep)
{
	memset(rep, 0, sizeof(*rep));
	rep->status = 200;
	kf_buf_adds(&rep->message, "ok");
}

void kf_reply_release(struct kf_reply *rep)
{
	kf_buf_release(&rep->message);
	kf_buf_release(&rep->headers);
	kf_buf_release(&rep->body);
	json_object_put(rep->data);
	rep->data = NULL;
}

void kf_reply_set(struct kf_reply *rep, int status, const char *message,
		  struct json_object *data)
{
	rep->status = status;
	kf_buf_reset(&rep->message);
	kf_buf_adds(&rep->message, message);
	json_object_put(rep->data);
	rep->data = data;
}

void kf_reply_ok(struct kf_reply *rep, struct json_object *data)
{
	kf_reply_set(rep, 200, "ok", data);
}

void kf_reply_error(struct kf_reply *rep, int status, const char *fmt, ...)
{
	va_list ap;

	rep->status = status;
	kf_buf_reset(&rep->message);
	va_start(ap, fmt);
	kf_buf_vaddf(&rep->message, fmt, ap);
	va_end(ap);
	json_object_put(rep->data);
	rep->data = NULL;
}

void kf_reply_header(struct kf_reply *rep, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kf_buf_vaddf(&rep->headers, fmt, ap);
	va_end(ap);
	kf_buf_adds(&rep->headers, "\r\n");
}

const char *kf_reply_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

void kf_reply_render(const struct kf_reply *rep, struct kf_buf *out)
{
	kf_buf_addf(out, "Status: %d %s\r\n", rep->status, kf_reply_reason(rep->status));
	kf_buf_add(out, rep->headers.data ? rep->headers.data : "", rep->headers.len);
	if (rep->status == 204) {
		kf_buf_adds(out, "\r\n");
		return;
	}
	if (rep->raw) {
		kf_buf_addf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			    rep->content_type, rep->body.len);
		kf_buf_add(out, kf_buf_str(&rep->body), rep->body.len);
		return;
	}
	{
		struct json_object *env = json_object_new_object();
		struct kf_buf body = KF_BUF_INIT;

		struct kf_buf msg = KF_BUF_INIT;

		/* a message may quote request bytes: keep the envelope valid UTF-8 */
		kf_buf_add(&msg, kf_buf_str(&rep->message), rep->message.len);
		kf_utf8_sanitize(msg.data, msg.len);
		kf_json_set_int(env, "code", rep->status);
		kf_json_set_strn(env, "message", kf_buf_str(&msg), msg.len);
		kf_buf_release(&msg);
		json_object_object_add(env, "data", json_object_get(rep->data));
		kf_json_append(&body, env);
		json_object_put(env);
		kf_buf_addf(out,
			    "Content-Type: application/json; charset=utf-8\r\n"
			    "Content-Length: %zu\r\n"
			    "Cache-Control: no-store\r\n"
			    "X-Content-Type-Options: nosniff\r\n\r\n",
			    body.len);
		kf_buf_add(out, body.data, body.len);
		kf_buf_release(&body);
	}
}
