#include "kf_compat.h"

#include "kf_json.h"

#include "kf_buf.h"

struct json_object *kf_json_parse(const char *text, size_t len, int max_depth,
				  const char **why)
{
	struct json_tokener *tok;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;

	*why = NULL;
	if (len > (size_t)INT32_MAX) {
		*why = "JSON text too large";
		return NULL;
	}
	if (!kf_utf8_valid(text, len)) {
		*why = "JSON text is not valid UTF-8";
		return NULL;
	}
	tok = json_tokener_new_ex(max_depth > 0 ? max_depth : KF_JSON_MAX_DEPTH);
	if (!tok) {
		*why = "out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue) {
		*why = "JSON text ends too early";
		goto out_fail;
	}
	if (jerr != json_tokener_success) {
		*why = jerr == json_tokener_error_depth ? "JSON nested too deeply"
							: "malformed JSON";
		goto out_fail;
	}
	if (json_tokener_get_parse_end(tok) != len) {
		size_t i = json_tokener_get_parse_end(tok);

		while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' ||
				   text[i] == '\n'))
			i++;
		if (i != len) {
			*why = "trailing data after JSON value";
			goto out_fail;
		}
	}
	json_tokener_free(tok);
	return obj;

out_fail:
	json_object_put(obj);
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

size_t kf_utf8_len(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			count++;
	return count;
}
