#include "kf_compat.h"

#include "kf_mem.h"

#include <stdlib.h>
#include <unistd.h>

KF_COLD KF_NORETURN static void die_oom(size_t n)
{
	char msg[96];
	int len = snprintf(msg, sizeof(msg), "kefu: out of memory allocating %zu bytes\n", n);

	if (len > 0 && (size_t)len < sizeof(msg)) {
		ssize_t w = write(STDERR_FILENO, msg, (size_t)len);
		(void)w; /* nothing more to do: we are aborting */
	}
	abort();
}

void *kf_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die_oom(n);
	return p;
}

void *kf_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		die_oom(nmemb * size);
	return p;
}

void *kf_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		die_oom(n);
	return q;
}

char *kf_xstrdup(const char *s)
{
	if (!s)
		return NULL;
	return kf_xmemdup0(s, strlen(s));
}

char *kf_xstrdup_or_empty(const char *s)
{
	return kf_xstrdup(s ? s : "");
}

char *kf_xmemdup0(const void *s, size_t n)
{
	char *p = kf_xmalloc(n + 1);

	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
