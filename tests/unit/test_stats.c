/*
 * test_stats.c - stats: latency buckets, quantiles, per-route counters and
 * the /proc/self readings.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include "router.h"
#include "stats.h"

Test(stats, buckets_cover_and_grow)
{
	unsigned prev = 0;

	for (unsigned long long us = 0; us < 5000000; us += 1 + us / 7) {
		unsigned b = kf_stats_bucket(us);

		cr_assert(b < KF_STATS_BUCKETS);
		cr_assert(b >= prev, "bucket of %llu went down", us);
		cr_assert(kf_stats_bucket_upper(b) >= us, "%llu above its bucket's edge %llu", us,
			  kf_stats_bucket_upper(b));
		if (b > 0)
			cr_assert(kf_stats_bucket_upper(b - 1) < us, "%llu fits an earlier bucket", us);
		prev = b;
	}
	cr_expect_eq(kf_stats_bucket(~0ULL), KF_STATS_BUCKETS - 1);
}

Test(stats, bucket_edges_within_a_quarter)
{
	for (unsigned b = 8; b + 1 < KF_STATS_BUCKETS; b++) {
		unsigned long long lo = kf_stats_bucket_upper(b - 1) + 1;
		unsigned long long hi = kf_stats_bucket_upper(b);

		cr_expect(hi <= lo + lo / 4, "bucket %u: %llu..%llu", b, lo, hi);
	}
}

Test(stats, quantiles)
{
	unsigned long long hist[KF_STATS_BUCKETS] = { 0 };
	unsigned long long total = 0;

	cr_expect_eq(kf_stats_quantile(hist, KF_STATS_BUCKETS, 0, 0.5, 0), 0);
	for (unsigned long long us = 1; us <= 100; us++) {
		hist[kf_stats_bucket(us * 100)]++;
		total++;
	}
	{
		unsigned long long p50 = kf_stats_quantile(hist, KF_STATS_BUCKETS, total, 0.5, 10000);
		unsigned long long p99 = kf_stats_quantile(hist, KF_STATS_BUCKETS, total, 0.99, 10000);

		cr_expect(p50 >= 5000 && p50 <= 5000 * 5 / 4 + 1, "p50 %llu", p50);
		cr_expect(p99 >= 9900 && p99 <= 10000, "p99 %llu", p99);
	}
	/* capped at the largest seen */
	cr_expect_eq(kf_stats_quantile(hist, KF_STATS_BUCKETS, total, 1.0, 10000), 10000);
}

static struct json_object *route_entry(struct json_object *req, const char *path)
{
	struct json_object *routes;

	cr_assert(json_object_object_get_ex(req, "routes", &routes));
	for (size_t i = 0; i < json_object_array_length(routes); i++) {
		struct json_object *r = json_object_array_get_idx(routes, i), *p;

		if (json_object_object_get_ex(r, "path", &p) &&
		    strcmp(json_object_get_string(p), path) == 0)
			return r;
	}
	return NULL;
}

static int64_t field(struct json_object *o, const char *key)
{
	struct json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no %s", key);
	return json_object_get_int64(v);
}

Test(stats, record_by_route)
{
	size_t n;
	const struct kf_route *t = kf_router_table(&n);
	struct json_object *j, *r;

	cr_assert(n >= 1);
	kf_stats_record(&t[0], 200, 1000);
	kf_stats_record(&t[0], 401, 3000);
	kf_stats_record(&t[0], 503, 2000);
	kf_stats_record(NULL, 404, 10);
	j = kf_stats_requests_json();
	cr_expect_eq(field(j, "total"), 4);
	r = route_entry(j, t[0].path);
	cr_assert_not_null(r);
	cr_expect_eq(field(r, "count"), 3);
	cr_expect_eq(field(r, "status_2xx"), 1);
	cr_expect_eq(field(r, "status_4xx"), 1);
	cr_expect_eq(field(r, "status_5xx"), 1);
	cr_expect_eq(field(r, "avg_us"), 2000);
	cr_expect_eq(field(r, "max_us"), 3000);
	cr_expect(field(r, "p50_us") >= 2000 && field(r, "p50_us") <= 2500);
	cr_expect_eq(field(r, "p99_us"), 3000);
	r = route_entry(j, "(unmatched)");
	cr_assert_not_null(r);
	cr_expect_eq(field(r, "count"), 1);
	if (n > 1)
		cr_expect_null(route_entry(j, t[n - 1].path), "unrequested routes are left out");
	json_object_put(j);
}

Test(stats, proc_self)
{
	struct kf_stats_proc p;

	kf_stats_proc(&p);
	cr_expect(p.uptime_sec >= 0 && p.uptime_sec < 3600, "uptime %lld", p.uptime_sec);
	cr_expect(p.rss_bytes > 1024 * 1024, "rss %lld", p.rss_bytes);
	cr_expect(p.open_fds >= 3, "fds %ld", p.open_fds);
	cr_expect(p.threads >= 1, "threads %ld", p.threads);
}
