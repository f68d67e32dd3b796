/*
 * kf_json.h - json-c helpers: parsing untrusted text under limits, typed
 * field access, and serialisation.
 *
 * Objects returned are owned by the caller (json_object_put); strings
 * returned by getters are borrowed from the object they came from.
 */
#ifndef KF_JSON_H
#define KF_JSON_H

#include "kf_compat.h"

#include <json-c/json.h>

struct kf_buf;

/* Deepest nesting kf_json_parse accepts. */
#define KF_JSON_MAX_DEPTH 16

/*
 * Parse exactly len bytes of text as one JSON value, validating UTF-8 and
 * refusing nesting deeper than max_depth (0: KF_JSON_MAX_DEPTH) or trailing
 * garbage.  Returns the value, or NULL with a short reason in why
 * (a static string).  A JSON "null" is returned as NULL with why = NULL.
 */
struct json_object *kf_json_parse(const char *text, size_t len, int max_depth,
				  const char **why);

/* The string member key of obj, or NULL when absent or not a string. */
const char *kf_json_get_str(struct json_object *obj, const char *key, size_t *len);

/* Append obj as compact JSON (no slash escaping) to out. */
void kf_json_append(struct kf_buf *out, struct json_object *obj);

/* obj[key] = string s of n bytes (s may hold any bytes json-c accepts). */
void kf_json_set_strn(struct json_object *obj, const char *key, const char *s, size_t n);
void kf_json_set_str(struct json_object *obj, const char *key, const char *s);
void kf_json_set_int(struct json_object *obj, const char *key, int64_t v);

/* True when the n bytes at s are valid UTF-8 (no overlongs or surrogates). */
bool kf_utf8_valid(const char *s, size_t n);
/* Replace every byte of s (n bytes) that is not valid UTF-8 with '?'. */
void kf_utf8_sanitize(char *s, size_t n);
/* Number of code points in valid UTF-8 s of n bytes. */
size_t kf_utf8_len(const char *s, size_t n);

#endif
