#include "kf_compat.h"

#include "kf_json.h"

#include "kf_buf.h"

/* True when obj holds a NaN or an infinity anywhere (json-c accepts them). */
static bool has_nonfinite(struct json_object *obj)
{
	switch (json_object_get_type(obj)) {
	case json_type_double: {
		double d = json_object_get_double(obj);

		return d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308;
	}
	case json_type_object: {
		json_object_object_foreach(obj, key, val) {
			(void)key;
			if (val && has_nonfinite(val))
				return true;
		}
		return false;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(obj); i++) {
			struct json_object *v = json_object_array_get_idx(obj, i);

			if (v && has_nonfinite(v))
				return true;
		}
		return false;
	default:
		return false;
	}
}

struct json_object *kf_json_parse(const char *text, size_t len, int max_depth,
				  const char **why)
{
	struct json_tokener *tok;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t end;

	*why = NULL;
	if (len > (size_t)INT32_MAX) {
		*why = "JSON text too large";
		return NULL;
	}
	if (!kf_utf8_valid(text, len)) {
		*why = "JSON text is not valid UTF-8";
		return NULL;
	}
	/* json-c counts the outermost value as one level of its limit */
	tok = json_tokener_new_ex((max_depth > 0 ? max_depth : KF_JSON_MAX_DEPTH) + 1);
	if (!tok) {
		*why = "out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* a bare scalar ("123", "null") ends only where the input does */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
		if (jerr == json_tokener_success && !obj)
			goto out_null;
		if (jerr != json_tokener_success) {
			*why = "JSON text ends too early";
			goto out_fail;
		}
	}
	if (jerr != json_tokener_success) {
		*why = jerr == json_tokener_error_depth ? "JSON nested too deeply"
							: "malformed JSON";
		goto out_fail;
	}
	while (end < len && (text[end] == ' ' || text[end] == '\t' || text[end] == '\r' ||
			     text[end] == '\n'))
		end++;
	if (end != len) {
		*why = "trailing data after JSON value";
		goto out_fail;
	}
	if (obj && has_nonfinite(obj)) {
		*why = "malformed JSON: NaN and Infinity are not JSON";
		goto out_fail;
	}
	if (!obj)
		goto out_null;
	json_tokener_free(tok);
	return obj;

out_fail:
	json_object_put(obj);
out_null:
	json_tokener_free(tok);
	return NULL;
}

const char *kf_json_get_str(struct json_object *obj, const char *key, size_t *len)
{
	struct json_object *v;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (len)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

void kf_json_append(struct kf_buf *out, struct json_object *obj)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

	kf_buf_add(out, s, n);
}

void kf_json_set_strn(struct json_object *obj, const char *key, const char *s, size_t n)
{
	json_object_object_add(obj, key, json_object_new_string_len(s, (int)n));
}

void kf_json_set_str(struct json_object *obj, const char *key, const char *s)
{
	json_object_object_add(obj, key, s ? json_object_new_string(s) : NULL);
}

void kf_json_set_int(struct json_object *obj, const char *key, int64_t v)
{
	json_object_object_add(obj, key, json_object_new_int64(v));
}

bool kf_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t need;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= need)
			return false;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

void kf_utf8_sanitize(char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t step = 1;

		if ((unsigned char)s[i] >= 0x80) {
			/* the longest valid sequence starting here, if any */
			for (step = 4; step >= 2; step--)
				if (i + step <= n && kf_utf8_valid(s + i, step))
					break;
			if (step < 2) {
				s[i] = '?';
				step = 1;
			}
		}
		i += step;
	}
}

size_t kf_utf8_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			count++;
	return count;
}
