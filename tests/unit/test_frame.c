#include "kf_compat.h"

#include <criterion/criterion.h>

#include "frame.h"
#include "kf_buf.h"
#include "kf_json.h"

#define MAXC 64

static int parse(const char *text, struct kf_frame *f, const char **why)
{
	return kf_frame_parse(text, strlen(text), MAXC, f, why);
}

static void assert_refused(const char *text, const char *word)
{
	struct kf_frame f;
	const char *why = NULL;

	cr_expect_eq(parse(text, &f, &why), -1, "accepted: %s", text);
	cr_expect_not_null(why, "no reason for: %s", text);
	if (why && word)
		cr_expect_not_null(strstr(why, word), "'%s' not in '%s' (%s)", word, why, text);
}

Test(frame, ping)
{
	struct kf_frame f;
	const char *why = NULL;

	cr_assert_eq(parse("{\"type\":\"ping\"}", &f, &why), 0);
	cr_expect_eq(f.type, KF_FRAME_PING);
	kf_frame_release(&f);
}

Test(frame, chat_with_and_without_to)
{
	struct kf_frame f;
	const char *why = NULL;

	cr_assert_eq(parse("{\"type\":\"chat\",\"content\":\"h\\u00e9llo\"}", &f, &why), 0);
	cr_expect_eq(f.type, KF_FRAME_CHAT);
	cr_expect_eq(f.content_len, 6);
	cr_expect_arr_eq(f.content, "h\xc3\xa9llo", 6);
	cr_expect_str_empty(f.to);
	kf_frame_release(&f);

	cr_assert_eq(parse("{\"type\":\"chat\",\"content\":\"x\",\"to\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\"}",
			   &f, &why), 0);
	cr_expect_str_eq(f.to, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
	kf_frame_release(&f);
}

Test(frame, ack)
{
	struct kf_frame f;
	const char *why = NULL;

	cr_assert_eq(parse("{\"type\":\"ack\",\"seq\":42}", &f, &why), 0);
	cr_expect_eq(f.type, KF_FRAME_ACK);
	cr_expect_eq(f.seq, 42);
	kf_frame_release(&f);
	assert_refused("{\"type\":\"ack\"}", "seq");
	assert_refused("{\"type\":\"ack\",\"seq\":-1}", "seq");
	assert_refused("{\"type\":\"ack\",\"seq\":\"1\"}", "seq");
}

Test(frame, refuses_bad_input)
{
	assert_refused("", NULL);
	assert_refused("not json", "JSON");
	assert_refused("{\"type\":", "JSON");
	assert_refused("[1,2]", "object");
	assert_refused("\"chat\"", "object");
	assert_refused("null", NULL);
	assert_refused("{}", "type");
	assert_refused("{\"type\":5}", "type");
	assert_refused("{\"type\":\"dance\"}", "unknown type");
	assert_refused("{\"type\":\"chat\"}", "content");
	assert_refused("{\"type\":\"chat\",\"content\":5}", "content");
	assert_refused("{\"type\":\"chat\",\"content\":\"\"}", "empty");
	assert_refused("{\"type\":\"chat\",\"content\":\"a\\u0000b\"}", "NUL");
	assert_refused("{\"type\":\"chat\",\"content\":\"x\",\"to\":\"short\"}", "to");
	assert_refused("{\"type\":\"chat\",\"content\":\"x\",\"to\":7}", "to");
	assert_refused("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}", "deeply");
}

Test(frame, content_limit)
{
	struct kf_buf b = KF_BUF_INIT;
	struct kf_frame f;
	const char *why = NULL;

	kf_buf_adds(&b, "{\"type\":\"chat\",\"content\":\"");
	for (int i = 0; i < MAXC; i++)
		kf_buf_addc(&b, 'a');
	kf_buf_adds(&b, "\"}");
	cr_expect_eq(kf_frame_parse(b.data, b.len, MAXC, &f, &why), 0, "the limit itself is allowed");
	kf_frame_release(&f);
	kf_buf_reset(&b);
	kf_buf_adds(&b, "{\"type\":\"chat\",\"content\":\"");
	for (int i = 0; i <= MAXC; i++)
		kf_buf_addc(&b, 'a');
	kf_buf_adds(&b, "\"}");
	cr_expect_eq(kf_frame_parse(b.data, b.len, MAXC, &f, &why), -1);
	cr_expect_not_null(why ? strstr(why, "too long") : NULL);
	kf_buf_release(&b);
}

Test(frame, build_has_the_seed_fields)
{
	struct kf_buf b = KF_BUF_INIT;
	struct kf_frame_out out = { .type = "chat",
				    .content = "hi \"there\" / \xe4\xbd\xa0",
				    .from = "agent",
				    .ws_key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" };
	struct json_object *o;
	const char *why;

	kf_frame_build(&b, &out, 0);
	o = kf_json_parse(b.data, b.len, 0, &why);
	cr_assert_not_null(o, "built frame is not JSON: %s", b.data);
	cr_expect_str_eq(kf_json_get_str(o, "type", NULL), "chat");
	cr_expect_str_eq(kf_json_get_str(o, "content", NULL), "hi \"there\" / \xe4\xbd\xa0");
	cr_expect_str_eq(kf_json_get_str(o, "from", NULL), "agent");
	cr_expect_str_eq(kf_json_get_str(o, "ws_key", NULL), "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345");
	cr_expect_null(kf_json_get_str(o, "ip", NULL), "absent fields are left out");
	cr_expect(!json_object_object_get_ex(o, "seq", NULL), "no seq unless given: %s", b.data);
	cr_expect_eq(strlen(kf_json_get_str(o, "send_time", NULL)), 19);
	cr_expect_null(strstr(b.data, "\\/"), "no slash escaping: %s", b.data);
	json_object_put(o);
	kf_buf_release(&b);
}

Test(frame, build_chat_with_seq_and_send_time)
{
	struct kf_buf b = KF_BUF_INIT;
	struct kf_frame_out out = { .type = "chat", .content = "a\0b", .content_len = 3,
				    .from = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
				    .ws_key = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
				    .seq = 42, .send_time = "2026-01-02 03:04:05" };
	struct json_object *o, *seq;
	const char *why;

	kf_frame_build(&b, &out, 0);
	o = kf_json_parse(b.data, b.len, 0, &why);
	cr_assert_not_null(o, "built frame is not JSON: %s", b.data);
	cr_assert(json_object_object_get_ex(o, "seq", &seq), "seq missing: %s", b.data);
	cr_expect(json_object_is_type(seq, json_type_int), "seq is a number: %s", b.data);
	cr_expect_eq(json_object_get_int64(seq), 42);
	cr_expect_str_eq(kf_json_get_str(o, "send_time", NULL), "2026-01-02 03:04:05");
	cr_expect_eq(json_object_get_string_len(json_object_object_get(o, "content")), 3,
		     "content keeps its length (a NUL inside): %s", b.data);
	json_object_put(o);
	kf_buf_release(&b);
}

Test(frame, time_format)
{
	char buf[32];

	setenv("TZ", "UTC", 1);
	tzset();
	kf_frame_time(86400 + 3600 + 61, buf, sizeof(buf));
	cr_expect_str_eq(buf, "1970-01-02 01:01:01");
}
