/*
 * test_store.c - the parts of kf_store that need no Redis: the time until
 * midnight (which sets the per-IP login counter's expiry) and the release
 * helpers.  Each Criterion test runs in its own process, so setting TZ here
 * affects no other test.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include <stdlib.h>
#include <time.h>

#include "kf_store.h"

static void set_tz(const char *tz)
{
	cr_assert_eq(setenv("TZ", tz, 1), 0);
	tzset();
}

Test(store, until_midnight_utc)
{
	set_tz("UTC0");
	/* 2024-01-01 00:00:00 UTC */
	cr_expect_eq(kf_store_until_midnight(1704067200), 86400);
	cr_expect_eq(kf_store_until_midnight(1704067200 + 1), 86399);
	cr_expect_eq(kf_store_until_midnight(1704067200 + 43200), 43200);
	cr_expect_eq(kf_store_until_midnight(1704067200 + 86399), 1);
	cr_expect_eq(kf_store_until_midnight(0), 86400);
}

Test(store, until_midnight_other_zone)
{
	/* UTC+8, no daylight saving: midnight is at 16:00 UTC */
	set_tz("CST-8");
	cr_expect_eq(kf_store_until_midnight(1704067200), 16 * 3600);
	cr_expect_eq(kf_store_until_midnight(1704067200 + 16 * 3600 - 1), 1);
	cr_expect_eq(kf_store_until_midnight(1704067200 + 16 * 3600), 86400);
}

Test(store, until_midnight_daylight_saving)
{
	/* US Eastern rules without needing tzdata */
	set_tz("EST5EDT,M3.2.0,M11.1.0");
	/* 2024-03-10 00:00 EST: a 23-hour day */
	cr_expect_eq(kf_store_until_midnight(1710046800), 23 * 3600);
	/* 2024-11-03 00:00 EDT: a 25-hour day */
	cr_expect_eq(kf_store_until_midnight(1730606400), 25 * 3600);
	/* the second before midnight is still 1 */
	cr_expect_eq(kf_store_until_midnight(1710046800 + 23 * 3600 - 1), 1);
}

Test(store, until_midnight_always_positive)
{
	set_tz("EST5EDT,M3.2.0,M11.1.0");
	for (time_t t = 1709900000; t < 1710300000; t += 599) {
		long s = kf_store_until_midnight(t);

		cr_assert(s >= 1 && s <= 25 * 3600, "%ld at %lld", s, (long long)t);
	}
}

Test(store, release_helpers)
{
	struct kf_pairs p = { NULL, 0 };
	struct kf_keys k = { NULL, 0 };

	kf_pairs_release(&p);
	kf_keys_release(&k);
	kf_pairs_release(NULL);
	kf_keys_release(NULL);
	p.v = calloc(2, sizeof(*p.v));
	p.n = 2;
	k.v = calloc(3, sizeof(*k.v));
	k.n = 3;
	kf_pairs_release(&p);
	kf_keys_release(&k);
	cr_expect_null(p.v);
	cr_expect_eq(p.n, 0);
	cr_expect_null(k.v);
	cr_expect_eq(k.n, 0);
}
