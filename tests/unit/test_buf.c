/*
 * test_buf.c - kf_buf: growth, formatting, detach, reset and embedded NULs.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdlib.h>

#include "kf_buf.h"

/* Assert the invariants every buffer keeps. */
static void assert_sane(const struct kf_buf *b)
{
	if (!b->data) {
		cr_assert_eq(b->len, 0);
		cr_assert_eq(b->cap, 0);
		return;
	}
	cr_assert(b->len < b->cap, "len %zu, cap %zu", b->len, b->cap);
	cr_assert_eq(b->data[b->len], '\0', "not NUL-terminated");
}

Test(buf, init_is_empty)
{
	struct kf_buf a = KF_BUF_INIT;
	struct kf_buf b;

	kf_buf_init(&b);
	cr_expect_null(a.data);
	cr_expect_eq(a.len, 0);
	cr_expect_null(b.data);
	cr_expect_str_eq(kf_buf_str(&a), "");
	cr_expect_str_eq(kf_buf_str(&b), "");
	kf_buf_release(&a);
	kf_buf_release(&b);
	kf_buf_release(NULL);
}

Test(buf, add_variants)
{
	struct kf_buf b = KF_BUF_INIT;

	kf_buf_add(&b, "abc", 3);
	kf_buf_adds(&b, "def");
	kf_buf_addc(&b, 'g');
	kf_buf_add(&b, NULL, 0);
	kf_buf_adds(&b, "");
	kf_buf_addf(&b, "-%d-%s-%zu", 42, "x", (size_t)7);
	assert_sane(&b);
	cr_expect_str_eq(kf_buf_str(&b), "abcdefg-42-x-7");
	cr_expect_eq(b.len, 14);
	kf_buf_release(&b);
	cr_expect_null(b.data);
	cr_expect_eq(b.len, 0);
	cr_expect_eq(b.cap, 0);
}

Test(buf, add_grows_past_many_kb)
{
	struct kf_buf b = KF_BUF_INIT;
	char chunk[1000];

	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)('a' + i % 26);
	for (int i = 0; i < 300; i++) {
		kf_buf_add(&b, chunk, sizeof(chunk));
		assert_sane(&b);
	}
	cr_expect_eq(b.len, 300000);
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] != (char)('a' + (i % 1000) % 26))
			cr_assert_fail("byte %zu is wrong", i);
	kf_buf_release(&b);
}

Test(buf, addf_grows_past_many_kb)
{
	struct kf_buf b = KF_BUF_INIT;
	struct kf_buf big = KF_BUF_INIT;

	for (int i = 0; i < 10000; i++)
		kf_buf_addc(&big, (char)('0' + i % 10));
	/* one call far larger than the first allocation */
	kf_buf_addf(&b, "<%s>", big.data);
	assert_sane(&b);
	cr_expect_eq(b.len, 10002);
	cr_expect_eq(b.data[0], '<');
	cr_expect_eq(b.data[10001], '>');
	cr_expect_eq(memcmp(b.data + 1, big.data, big.len), 0);
	/* many small calls */
	kf_buf_reset(&b);
	for (int i = 0; i < 5000; i++)
		kf_buf_addf(&b, "%04d,", i);
	assert_sane(&b);
	cr_expect_eq(b.len, 25000);
	cr_expect_eq(strncmp(b.data, "0000,0001,", 10), 0);
	cr_expect_eq(strcmp(b.data + b.len - 5, "4999,"), 0);
	kf_buf_release(&b);
	kf_buf_release(&big);
}

Test(buf, addf_exact_boundaries)
{
	/* lengths around the first allocation (64) and its doublings */
	for (size_t n = 50; n < 300; n++) {
		struct kf_buf b = KF_BUF_INIT;
		struct kf_buf want = KF_BUF_INIT;

		for (size_t i = 0; i < n; i++)
			kf_buf_addc(&want, 'x');
		kf_buf_addf(&b, "%s", want.data);
		assert_sane(&b);
		cr_expect_eq(b.len, n);
		cr_expect_str_eq(b.data, want.data);
		/* and appended after existing content */
		kf_buf_addf(&b, "%s", want.data);
		assert_sane(&b);
		cr_expect_eq(b.len, 2 * n);
		kf_buf_release(&b);
		kf_buf_release(&want);
	}
}

Test(buf, grow_reserves)
{
	struct kf_buf b = KF_BUF_INIT;
	char *before;

	kf_buf_grow(&b, 1000);
	cr_assert_not_null(b.data);
	cr_expect_geq(b.cap, 1001);
	cr_expect_eq(b.len, 0);
	before = b.data;
	for (int i = 0; i < 1000; i++)
		kf_buf_addc(&b, 'z');
	cr_expect_eq(b.data, before, "reserved room was not used");
	assert_sane(&b);
	kf_buf_release(&b);
}

Test(buf, reset_keeps_memory)
{
	struct kf_buf b = KF_BUF_INIT;
	char *data;
	size_t cap;

	kf_buf_reset(&b); /* on an empty buffer */
	cr_expect_null(b.data);
	kf_buf_adds(&b, "hello world");
	data = b.data;
	cap = b.cap;
	kf_buf_reset(&b);
	cr_expect_eq(b.len, 0);
	cr_expect_eq(b.data, data);
	cr_expect_eq(b.cap, cap);
	cr_expect_str_eq(kf_buf_str(&b), "");
	kf_buf_adds(&b, "x");
	cr_expect_str_eq(kf_buf_str(&b), "x");
	kf_buf_release(&b);
}

Test(buf, detach)
{
	struct kf_buf b = KF_BUF_INIT;
	size_t len = 99;
	char *p;

	kf_buf_adds(&b, "payload");
	p = kf_buf_detach(&b, &len);
	cr_assert_not_null(p);
	cr_expect_str_eq(p, "payload");
	cr_expect_eq(len, 7);
	cr_expect_null(b.data);
	cr_expect_eq(b.len, 0);
	cr_expect_eq(b.cap, 0);
	free(p);

	/* an empty buffer still gives an allocation (its text: see below) */
	p = kf_buf_detach(&b, &len);
	cr_assert_not_null(p);
	cr_expect_eq(len, 0);
	free(p);

	/* len may be NULL; the buffer is reusable afterwards */
	kf_buf_adds(&b, "again");
	p = kf_buf_detach(&b, NULL);
	cr_expect_str_eq(p, "again");
	free(p);
	kf_buf_adds(&b, "more");
	cr_expect_str_eq(kf_buf_str(&b), "more");
	kf_buf_release(&b);
}

/*
 * Regression (was a bug, now fixed): kf_buf_grow() on a buffer that has no memory
 * yet allocates it but never writes data[0] = '\0'.  The header promises
 * "data is always NUL-terminated", yet after kf_buf_grow(&b, n) on an empty
 * buffer kf_buf_str() returns uninitialised bytes, and kf_buf_detach() of a
 * never-written buffer (which grows by 0 first) hands back an unterminated
 * "string".  ASan fills fresh malloc memory with 0xbe, so this fails
 * reliably under `make unit`.
 */
Test(buf, grow_and_detach_on_empty_keep_nul)
{
	struct kf_buf b = KF_BUF_INIT;
	size_t len = 99;
	char *p;

	kf_buf_grow(&b, 100);
	cr_expect_eq(b.len, 0);
	cr_expect_eq(kf_buf_str(&b)[0], '\0', "kf_buf_str after grow is not \"\"");
	kf_buf_release(&b);

	p = kf_buf_detach(&b, &len);
	cr_assert_not_null(p);
	cr_expect_eq(len, 0);
	cr_expect_eq(p[0], '\0', "kf_buf_detach of an empty buffer is not \"\"");
	free(p);
}

Test(buf, embedded_nul)
{
	struct kf_buf b = KF_BUF_INIT;
	size_t len;
	char *p;

	kf_buf_add(&b, "a\0b", 3);
	kf_buf_addc(&b, '\0');
	kf_buf_adds(&b, "c");
	assert_sane(&b);
	cr_expect_eq(b.len, 5);
	cr_expect_eq(memcmp(b.data, "a\0b\0c", 6), 0);
	/* as a C string it stops at the first NUL */
	cr_expect_str_eq(kf_buf_str(&b), "a");
	p = kf_buf_detach(&b, &len);
	cr_expect_eq(len, 5);
	cr_expect_eq(memcmp(p, "a\0b\0c", 6), 0);
	free(p);
}

Test(buf, vaddf_is_used_by_addf_with_many_args)
{
	struct kf_buf b = KF_BUF_INIT;

	kf_buf_addf(&b, "%s|%d|%lld|%c|%x|%.3s|%5s|%-3d|%%", "s", -1, 123456789012LL, 'c', 255,
		    "abcdef", "r", 7);
	cr_expect_str_eq(kf_buf_str(&b), "s|-1|123456789012|c|ff|abc|    r|7  |%");
	kf_buf_release(&b);
}

/*
 * Regression (was a bug, now fixed): kf_buf_grow()'s overflow check is
 * "need = len + n + 1; if (need < len) abort()", which misses n == SIZE_MAX
 * (need wraps to exactly len).  kf_buf_grow(&b, SIZE_MAX) then returns
 * without making room instead of aborting, and a kf_buf_add() of that size
 * would write past the buffer.  Checking n > SIZE_MAX - len - 1 fixes it.
 */
Test(buf, grow_overflow_aborts, .signal = SIGABRT)
{
	struct kf_buf b = KF_BUF_INIT;

	kf_buf_adds(&b, "x");
	kf_buf_grow(&b, SIZE_MAX);
	kf_buf_release(&b);
}

Test(buf, grow_overflow_near_max_aborts, .signal = SIGABRT)
{
	struct kf_buf b = KF_BUF_INIT;

	kf_buf_adds(&b, "x");
	kf_buf_grow(&b, SIZE_MAX - 1);
	kf_buf_release(&b);
}
