#include "kf_compat.h"

#include "stats.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kf_buf.h"
#include "kf_json.h"
#include "router.h"

/* Routes with their own entry; the table has far fewer. */
#define MAX_ROUTES 128

struct route_stats {
	atomic_ullong count;
	atomic_ullong by_class[6]; /* index status / 100 (0: other) */
	atomic_ullong total_us;
	atomic_ullong max_us;
	atomic_ullong hist[KF_STATS_BUCKETS];
};

/* [MAX_ROUTES]: unmatched, and routes past MAX_ROUTES (none today). */
static struct route_stats stats[MAX_ROUTES + 1];

unsigned kf_stats_bucket(unsigned long long usec)
{
	unsigned e = 0;
	unsigned b;

	if (usec < 4)
		return (unsigned)usec; /* 0..3 us: exact */
	while ((usec >> e) >= 8)
		e++;
	/* usec >> e is 4..7: the quarter within the octave */
	b = 4 + e * 4 + (unsigned)((usec >> e) - 4);
	return b < KF_STATS_BUCKETS ? b : KF_STATS_BUCKETS - 1;
}

unsigned long long kf_stats_bucket_upper(unsigned b)
{
	unsigned e, q;

	if (b < 4)
		return b;
	e = (b - 4) / 4;
	q = (b - 4) % 4;
	return ((4ULL + q + 1) << e) - 1;
}

unsigned long long kf_stats_quantile(const unsigned long long *hist, size_t n,
				     unsigned long long total, double q,
				     unsigned long long max)
{
	unsigned long long rank, seen = 0;

	if (total == 0)
		return 0;
	rank = (unsigned long long)(q * (double)total);
	if (rank >= total)
		rank = total - 1;
	for (size_t b = 0; b < n; b++) {
		seen += hist[b];
		if (seen > rank) {
			unsigned long long up = kf_stats_bucket_upper((unsigned)b);

			return up < max ? up : max;
		}
	}
	return max;
}

void kf_stats_record(const struct kf_route *route, int status, long long usec)
{
	size_t n, idx = MAX_ROUTES;
	const struct kf_route *table = kf_router_table(&n);
	struct route_stats *s;
	unsigned long long us = usec > 0 ? (unsigned long long)usec : 0;
	unsigned long long old;

	if (route && route >= table && route < table + n && (size_t)(route - table) < MAX_ROUTES)
		idx = (size_t)(route - table);
	s = &stats[idx];
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->by_class[status >= 100 && status < 600 ? status / 100 : 0],
				  1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->total_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->hist[kf_stats_bucket(us)], 1, memory_order_relaxed);
	old = atomic_load_explicit(&s->max_us, memory_order_relaxed);
	while (us > old &&
	       !atomic_compare_exchange_weak_explicit(&s->max_us, &old, us, memory_order_relaxed,
						      memory_order_relaxed))
		;
}

static struct json_object *route_json(struct route_stats *s, const char *path, unsigned methods)
{
	struct json_object *o = json_object_new_object();
	unsigned long long hist[KF_STATS_BUCKETS], total = 0;
	unsigned long long count = atomic_load(&s->count);
	unsigned long long max = atomic_load(&s->max_us);
	static const char *const classes[] = { NULL, NULL, "status_2xx", "status_3xx",
					       "status_4xx", "status_5xx" };

	for (size_t b = 0; b < KF_STATS_BUCKETS; b++) {
		hist[b] = atomic_load(&s->hist[b]);
		total += hist[b];
	}
	kf_json_set_str(o, "path", path);
	if (methods) {
		struct kf_buf m = KF_BUF_INIT;

		kf_router_allow(methods, &m);
		kf_json_set_str(o, "methods", kf_buf_str(&m));
		kf_buf_release(&m);
	}
	kf_json_set_int(o, "count", (int64_t)count);
	for (size_t c = 2; c < KF_ARRAY_LEN(classes); c++)
		kf_json_set_int(o, classes[c], (int64_t)atomic_load(&s->by_class[c]));
	kf_json_set_int(o, "avg_us",
			count ? (int64_t)(atomic_load(&s->total_us) / count) : 0);
	kf_json_set_int(o, "max_us", (int64_t)max);
	kf_json_set_int(o, "p50_us",
			(int64_t)kf_stats_quantile(hist, KF_STATS_BUCKETS, total, 0.50, max));
	kf_json_set_int(o, "p99_us",
			(int64_t)kf_stats_quantile(hist, KF_STATS_BUCKETS, total, 0.99, max));
	return o;
}

struct json_object *kf_stats_requests_json(void)
{
	struct json_object *out = json_object_new_object();
	struct json_object *routes = json_object_new_array();
	size_t n;
	const struct kf_route *table = kf_router_table(&n);
	unsigned long long total = 0;

	for (size_t i = 0; i < n && i < MAX_ROUTES; i++) {
		if (atomic_load(&stats[i].count) == 0)
			continue;
		total += atomic_load(&stats[i].count);
		json_object_array_add(routes,
				      route_json(&stats[i], table[i].path, table[i].methods));
	}
	if (atomic_load(&stats[MAX_ROUTES].count)) {
		total += atomic_load(&stats[MAX_ROUTES].count);
		json_object_array_add(routes, route_json(&stats[MAX_ROUTES], "(unmatched)", 0));
	}
	kf_json_set_int(out, "total", (int64_t)total);
	json_object_object_add(out, "routes", routes);
	return out;
}

/* The value of "Name:" in /proc/self/status, in its units; -1 if absent. */
static long long status_field(const char *name)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t n = strlen(name);
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Seconds since this process started, from /proc/self/stat and /proc/uptime. */
static long long uptime_sec(void)
{
	FILE *f;
	char buf[1024];
	const char *p;
	double up = 0;
	unsigned long long start = 0;
	long hz = sysconf(_SC_CLK_TCK);
	size_t n;

	f = fopen("/proc/self/stat", "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	if (!p || hz <= 0)
		return -1;
	p++;
	/* p is at the space before field 3 (the state); starttime is field 22 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return -1;
	start = strtoull(p + 1, NULL, 10);
	f = fopen("/proc/uptime", "re");
	if (!f)
		return -1;
	if (fscanf(f, "%lf", &up) != 1)
		up = -1;
	fclose(f);
	if (up < 0)
		return -1;
	return (long long)(up - (double)start / (double)hz);
}

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

void kf_stats_proc(struct kf_stats_proc *out)
{
	long long rss_kib = status_field("VmRSS");

	out->uptime_sec = uptime_sec();
	out->rss_bytes = rss_kib >= 0 ? rss_kib * 1024 : -1;
	out->open_fds = count_fds();
	out->threads = (long)status_field("Threads");
}
