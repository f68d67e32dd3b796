/*
 * stats.h - what GET /admin/perf/stats reports: this process's requests
 * and their latency by route, and its resources from /proc/self.
 *
 * kf_stats_record() is called once per finished request from any worker:
 * lock-free (C11 atomics).  Each route of the table has a count, the
 * replies by status class, total and largest latency, and a histogram of
 * latencies in buckets a quarter of a power of two wide, from which p50
 * and p99 are estimated (the upper edge of the bucket holding them, so
 * at most 25 % above the truth, and never above the largest seen).
 * Requests that matched no route (404, 405, CORS preflight) share one
 * entry, "(unmatched)".
 */
#ifndef KF_STATS_H
#define KF_STATS_H

#include "kf_compat.h"

#include <json-c/json.h>

struct kf_route;

/* Histogram buckets: latencies from 1 us to about 2^32 us (71 min). */
#define KF_STATS_BUCKETS 132

/* Count one request: its route (NULL: unmatched), status and duration. */
void kf_stats_record(const struct kf_route *route, int status, long long usec);
/*
 * The counters as JSON: {"total": N, "routes": [{"path", "methods",
 * "count", "status_2xx", "status_3xx", "status_4xx", "status_5xx",
 * "avg_us", "max_us", "p50_us", "p99_us"}, ...]}, routes in table order
 * then "(unmatched)"; routes never requested are left out.  Caller owns it.
 */
struct json_object *kf_stats_requests_json(void);

struct kf_stats_proc {
	long long uptime_sec; /* since the process started (-1: unknown) */
	long long rss_bytes;  /* resident set (-1: unknown) */
	long open_fds;        /* entries of /proc/self/fd (-1: unknown) */
	long threads;         /* (-1: unknown) */
};

/* Read /proc/self.  Fields that cannot be read are -1. */
void kf_stats_proc(struct kf_stats_proc *out);

/* The bucket of a latency, and the upper edge (in us) of a bucket. */
unsigned kf_stats_bucket(unsigned long long usec);
unsigned long long kf_stats_bucket_upper(unsigned b);
/*
 * The latency at quantile q (0..1) of a histogram of n buckets holding
 * total samples: the upper edge of the bucket where it falls, capped at
 * max.  0 when total is 0.
 */
unsigned long long kf_stats_quantile(const unsigned long long *hist, size_t n,
				     unsigned long long total, double q,
				     unsigned long long max);

#endif
