/*
 * kf_net.h - client addresses behind proxies.
 *
 * A kf_net_trust is a list of addresses and CIDR ranges (IPv4 and IPv6)
 * parsed from a config value such as "127.0.0.1, 10.0.0.0/8, ::1".
 * kf_net_client_ip() picks the address a limit or log line should use:
 * the peer address, unless the peer is trusted, in which case the
 * X-Forwarded-For list is walked from the right past trusted hops.
 */
#ifndef KF_NET_H
#define KF_NET_H

#include "kf_compat.h"

struct kf_buf;
struct kf_net_trust;

/* Longest textual address kefu handles, with NUL (INET6_ADDRSTRLEN). */
#define KF_NET_ADDR_MAX 46

/*
 * Parse spec (may be empty).  Returns NULL and appends a reason to err when
 * an entry is not an address or range.  Caller frees with kf_net_trust_free.
 */
struct kf_net_trust *kf_net_trust_parse(const char *spec, struct kf_buf *err);
void kf_net_trust_free(struct kf_net_trust *t);
/* True when the textual address ip is in the list. */
bool kf_net_trusted(const struct kf_net_trust *t, const char *ip);
/*
 * Write the client address into out (KF_NET_ADDR_MAX bytes): peer, or the
 * rightmost untrusted valid address of xff (may be NULL) when peer is
 * trusted.  Falls back to peer on a malformed header.
 */
void kf_net_client_ip(const struct kf_net_trust *t, const char *peer, const char *xff,
		      char out[KF_NET_ADDR_MAX]);

#endif
