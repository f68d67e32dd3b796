/*
 * kf_mem.h - allocation wrappers that abort on failure.
 *
 * kefu does not try to limp on when malloc fails: every allocation goes
 * through these, which log and abort, so callers never check for NULL.
 */
#ifndef KF_MEM_H
#define KF_MEM_H

#include "kf_compat.h"

void *kf_xmalloc(size_t n);
void *kf_xcalloc(size_t nmemb, size_t size);
void *kf_xrealloc(void *p, size_t n);
/* Copy of s; kf_xstrdup(NULL) returns NULL.  Caller frees. */
char *kf_xstrdup(const char *s);
/* Copy of s, or of "" when s is NULL.  Caller frees. */
char *kf_xstrdup_or_empty(const char *s);
/* Copy of the n bytes at s plus a terminating NUL.  Caller frees. */
char *kf_xmemdup0(const void *s, size_t n);

#endif
