#include "kf_compat.h"

#include "kf_net.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include "kf_buf.h"
#include "kf_mem.h"

struct range {
	int family;
	unsigned char addr[16];
	unsigned bits;
};

struct kf_net_trust {
	struct range *ranges;
	size_t n;
};

/* Parse a textual address into family and 16 bytes.  False on garbage. */
static bool parse_addr(const char *s, size_t n, int *family, unsigned char out[16])
{
	char tmp[KF_NET_ADDR_MAX];

	if (n == 0 || n >= sizeof(tmp))
		return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(out, 0, 16);
	if (inet_pton(AF_INET, tmp, out) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, tmp, out) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		*family = AF_INET6;
		if (memcmp(out, mapped, sizeof(mapped)) == 0) { /* ::ffff:a.b.c.d is IPv4 */
			memmove(out, out + 12, 4);
			memset(out + 4, 0, 12);
			*family = AF_INET;
		}
		return true;
	}
	return false;
}

static bool in_range(const struct range *r, int family, const unsigned char *a)
{
	unsigned full, rest;

	if (r->family != family)
		return false;
	full = r->bits / 8;
	rest = r->bits % 8;
	if (memcmp(r->addr, a, full) != 0)
		return false;
	if (rest) {
		unsigned char mask = (unsigned char)(0xff << (8 - rest));

		if ((r->addr[full] & mask) != (a[full] & mask))
			return false;
	}
	return true;
}

struct kf_net_trust *kf_net_trust_parse(const char *spec, struct kf_buf *err)
{
	struct kf_net_trust *t = kf_xcalloc(1, sizeof(*t));
	const char *p = spec ? spec : "";

	while (*p) {
		const char *start, *slash;
		size_t len;
		struct range r;

		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != ' ' && *p != ',' && *p != '\t')
			p++;
		len = (size_t)(p - start);
		slash = memchr(start, '/', len);
		if (!parse_addr(start, slash ? (size_t)(slash - start) : len, &r.family, r.addr))
			goto out_bad;
		r.bits = r.family == AF_INET ? 32 : 128;
		if (slash) {
			char *end;
			long bits = strtol(slash + 1, &end, 10);

			if (end != p || slash + 1 == p || bits < 0 || bits > (long)r.bits)
				goto out_bad;
			r.bits = (unsigned)bits;
		}
		t->ranges = kf_xrealloc(t->ranges, (t->n + 1) * sizeof(*t->ranges));
		t->ranges[t->n++] = r;
		continue;
out_bad:
		kf_buf_addf(err, "'%.*s' is not an address or CIDR range", (int)len, start);
		kf_net_trust_free(t);
		return NULL;
	}
	return t;
}

void kf_net_trust_free(struct kf_net_trust *t)
{
	if (!t)
		return;
	free(t->ranges);
	free(t);
}

static bool trusted_n(const struct kf_net_trust *t, const char *ip, size_t n)
{
	unsigned char a[16];
	int family;

	if (!t || !parse_addr(ip, n, &family, a))
		return false;
	for (size_t i = 0; i < t->n; i++)
		if (in_range(&t->ranges[i], family, a))
			return true;
	return false;
}

bool kf_net_trusted(const struct kf_net_trust *t, const char *ip)
{
	return ip && trusted_n(t, ip, strlen(ip));
}

static void copy_addr(char out[KF_NET_ADDR_MAX], const char *s, size_t n)
{
	if (n >= KF_NET_ADDR_MAX)
		n = KF_NET_ADDR_MAX - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

void kf_net_client_ip(const struct kf_net_trust *t, const char *peer, const char *xff,
		      char out[KF_NET_ADDR_MAX])
{
	const char *end;

	peer = peer ? peer : "";
	copy_addr(out, peer, strlen(peer));
	if (!xff || !kf_net_trusted(t, peer))
		return;
	end = xff + strlen(xff);
	/* walk the list from the right: the nearest hop first */
	while (end > xff) {
		const char *start = end;
		const char *s, *e;
		unsigned char a[16];
		int family;

		while (start > xff && start[-1] != ',')
			start--;
		s = start;
		e = end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (!parse_addr(s, (size_t)(e - s), &family, a)) {
			copy_addr(out, peer, strlen(peer)); /* malformed: trust none of it */
			return;
		}
		copy_addr(out, s, (size_t)(e - s));
		if (!trusted_n(t, s, (size_t)(e - s)))
			return;
		end = start > xff ? start - 1 : xff;
	}
}
