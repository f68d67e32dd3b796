#include "kf_compat.h"

#include "frame.h"

#include "kf_buf.h"
#include "kf_json.h"

/* Client frames are flat objects: nesting beyond this is refused. */
#define FRAME_MAX_DEPTH 4

int kf_frame_parse(const char *text, size_t len, size_t max_content, struct kf_frame *out,
		   const char **why)
{
	struct json_object *obj, *v;
	const char *type;

	memset(out, 0, sizeof(*out));
	obj = kf_json_parse(text, len, FRAME_MAX_DEPTH, why);
	if (!obj) {
		if (!*why)
			*why = "invalid JSON: expected an object";
		return -1;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		*why = "invalid frame: expected a JSON object";
		goto out_fail;
	}
	type = kf_json_get_str(obj, "type", NULL);
	if (!type) {
		*why = "invalid frame: missing field 'type'";
		goto out_fail;
	}
	if (strcmp(type, "ping") == 0) {
		out->type = KF_FRAME_PING;
	} else if (strcmp(type, "chat") == 0) {
		const char *to;
		size_t to_len = 0;

		out->type = KF_FRAME_CHAT;
		if (!json_object_object_get_ex(obj, "content", &v) ||
		    !json_object_is_type(v, json_type_string)) {
			*why = "invalid chat: missing field 'content' (a string)";
			goto out_fail;
		}
		out->content = json_object_get_string(v);
		out->content_len = (size_t)json_object_get_string_len(v);
		if (out->content_len == 0) {
			*why = "invalid chat: 'content' is empty";
			goto out_fail;
		}
		if (out->content_len > max_content) {
			*why = "invalid chat: 'content' is too long";
			goto out_fail;
		}
		if (memchr(out->content, '\0', out->content_len)) {
			*why = "invalid chat: 'content' holds a NUL character";
			goto out_fail;
		}
		if (json_object_object_get_ex(obj, "to", &v) && v) {
			to = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
			to_len = to ? (size_t)json_object_get_string_len(v) : 0;
			if (!to || !kf_key_valid(to, to_len)) {
				*why = "invalid chat: 'to' is not a ws_key";
				goto out_fail;
			}
			memcpy(out->to, to, to_len);
			out->to[to_len] = '\0';
		}
	} else if (strcmp(type, "ack") == 0) {
		out->type = KF_FRAME_ACK;
		if (!json_object_object_get_ex(obj, "seq", &v) || !json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < 0) {
			*why = "invalid ack: missing field 'seq' (a number)";
			goto out_fail;
		}
		out->seq = json_object_get_int64(v);
		/* an agent says which conversation: "ws_key" (or "to") */
		if ((json_object_object_get_ex(obj, "ws_key", &v) ||
		     json_object_object_get_ex(obj, "to", &v)) && v) {
			const char *k = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
			size_t n = k ? (size_t)json_object_get_string_len(v) : 0;

			if (!k || !kf_key_valid(k, n)) {
				*why = "invalid ack: 'ws_key' is not a ws_key";
				goto out_fail;
			}
			memcpy(out->to, k, n);
			out->to[n] = '\0';
		}
	} else {
		*why = "invalid frame: unknown type (expected ping, chat or ack)";
		goto out_fail;
	}
	out->owner = obj;
	return 0;

out_fail:
	json_object_put(obj);
	memset(out, 0, sizeof(*out));
	return -1;
}

void kf_frame_release(struct kf_frame *f)
{
	if (!f)
		return;
	json_object_put(f->owner);
	memset(f, 0, sizeof(*f));
}

void kf_frame_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0 && size)
		buf[0] = '\0';
}

void kf_frame_build(struct kf_buf *out, const struct kf_frame_out *f, time_t now)
{
	struct json_object *o = json_object_new_object();
	char when[32];

	if (!f->send_time)
		kf_frame_time(now, when, sizeof(when));
	kf_json_set_str(o, "type", f->type);
	if (f->content)
		kf_json_set_strn(o, "content", f->content,
				 f->content_len ? f->content_len : strlen(f->content));
	kf_json_set_str(o, "send_time", f->send_time ? f->send_time : when);
	if (f->from)
		kf_json_set_str(o, "from", f->from);
	if (f->ws_key)
		kf_json_set_str(o, "ws_key", f->ws_key);
	if (f->ip)
		kf_json_set_str(o, "ip", f->ip);
	if (f->seq > 0)
		kf_json_set_int(o, "seq", f->seq);
	kf_json_append(out, o);
	json_object_put(o);
}
