#include "kf_compat.h"

#include "kf_buf.h"

#include <stdlib.h>

#include "kf_mem.h"

void kf_buf_init(struct kf_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void kf_buf_release(struct kf_buf *b)
{
	if (!b)
		return;
	free(b->data);
	kf_buf_init(b);
}

void kf_buf_reset(struct kf_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void kf_buf_grow(struct kf_buf *b, size_t n)
{
	size_t need;
	size_t cap;

	if (n > SIZE_MAX - b->len - 1) /* overflow */
		abort();
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	b->data = kf_xrealloc(b->data, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void kf_buf_add(struct kf_buf *b, const void *p, size_t n)
{
	kf_buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void kf_buf_adds(struct kf_buf *b, const char *s)
{
	kf_buf_add(b, s, strlen(s));
}

void kf_buf_addc(struct kf_buf *b, char c)
{
	kf_buf_add(b, &c, 1);
}

void kf_buf_vaddf(struct kf_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	kf_buf_grow(b, 64);
	va_copy(cp, ap);
	n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->data[b->len] = '\0';
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		kf_buf_grow(b, (size_t)n);
		n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		if (n < 0) {
			b->data[b->len] = '\0';
			return;
		}
	}
	b->len += (size_t)n;
}

void kf_buf_addf(struct kf_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kf_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

const char *kf_buf_str(const struct kf_buf *b)
{
	return b->data ? b->data : "";
}

char *kf_buf_detach(struct kf_buf *b, size_t *len)
{
	char *p;

	kf_buf_grow(b, 0);
	p = b->data;
	if (len)
		*len = b->len;
	kf_buf_init(b);
	return p;
}
