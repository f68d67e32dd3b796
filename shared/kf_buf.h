/*
 * kf_buf.h - a growable, length-carrying byte buffer.
 *
 * data is always NUL-terminated (the NUL is not counted in len) so it can be
 * handed to APIs that want a C string, but it may also hold NUL bytes.
 * Use KF_BUF_INIT or kf_buf_init(); kf_buf_release() frees and resets;
 * kf_buf_reset() empties and keeps the memory.  Growth aborts on OOM.
 */
#ifndef KF_BUF_H
#define KF_BUF_H

#include "kf_compat.h"

#include <stdarg.h>

struct kf_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define KF_BUF_INIT { NULL, 0, 0 }

void kf_buf_init(struct kf_buf *b);
void kf_buf_release(struct kf_buf *b);
void kf_buf_reset(struct kf_buf *b);
/* Make room for n more bytes (plus the NUL). */
void kf_buf_grow(struct kf_buf *b, size_t n);
void kf_buf_add(struct kf_buf *b, const void *p, size_t n);
void kf_buf_adds(struct kf_buf *b, const char *s);
void kf_buf_addc(struct kf_buf *b, char c);
void kf_buf_addf(struct kf_buf *b, const char *fmt, ...) KF_PRINTF(2, 3);
void kf_buf_vaddf(struct kf_buf *b, const char *fmt, va_list ap) KF_PRINTF(2, 0);
/* The contents as a C string ("" when empty; never NULL). */
const char *kf_buf_str(const struct kf_buf *b);
/* Hand the memory to the caller (who frees it) and reset b. Never NULL. */
char *kf_buf_detach(struct kf_buf *b, size_t *len);

#endif
