/*
 * test_router.c - the route table, method bits, matching (404 vs 405) and
 * the Allow header.  Walks kf_router_table() so a new route is covered
 * without a new test.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include "kf_buf.h"
#include "router.h"

static const char *const methods[] = { "GET", "POST", "PUT", "DELETE",
				       "PATCH", "HEAD", "OPTIONS" };

Test(router, method_bit)
{
	for (size_t i = 0; i < KF_ARRAY_LEN(methods); i++)
		cr_expect_eq(kf_method_bit(methods[i]), 1u << i, "%s", methods[i]);
	cr_expect_eq(kf_method_bit("GET"), KF_M_GET);
	cr_expect_eq(kf_method_bit("POST"), KF_M_POST);
	cr_expect_eq(kf_method_bit("OPTIONS"), KF_M_OPTIONS);
	/* HTTP method names are case-sensitive */
	cr_expect_eq(kf_method_bit("get"), 0);
	cr_expect_eq(kf_method_bit(""), 0);
	cr_expect_eq(kf_method_bit("GETS"), 0);
	cr_expect_eq(kf_method_bit("GE"), 0);
	cr_expect_eq(kf_method_bit("TRACE"), 0);
	cr_expect_eq(kf_method_bit("CONNECT"), 0);
}

Test(router, table_is_sane)
{
	size_t n = 0;
	const struct kf_route *t = kf_router_table(&n);

	cr_assert_not_null(t);
	cr_assert_gt(n, 0);
	for (size_t i = 0; i < n; i++) {
		cr_expect_not_null(t[i].path);
		cr_expect_eq(t[i].path[0], '/', "%s", t[i].path);
		cr_expect_neq(t[i].methods, 0, "%s has no methods", t[i].path);
		cr_expect_eq(t[i].methods & ~0x7fu, 0, "%s has unknown method bits", t[i].path);
		cr_expect_not_null(t[i].fn, "%s has no handler", t[i].path);
		cr_expect(t[i].auth == KF_AUTH_NONE || t[i].auth == KF_AUTH_SESSION ||
				  t[i].auth == KF_AUTH_RBAC,
			  "%s has auth %d", t[i].path, (int)t[i].auth);
		/* a route's query string is never part of its path */
		cr_expect_null(strchr(t[i].path, '?'), "%s", t[i].path);
		/* a prefetch rides on the session's round trip of an RBAC route */
		cr_expect(t[i].prefetch == KF_PREFETCH_NONE || t[i].auth == KF_AUTH_RBAC,
			  "%s prefetches without RBAC", t[i].path);
	}
}

Test(router, info_reads_its_view_with_the_session)
{
	unsigned allowed = 0;
	const struct kf_route *r = kf_router_match("/admin/ws/info", KF_M_POST, &allowed);

	cr_assert_not_null(r);
	cr_expect_eq(r->prefetch, KF_PREFETCH_VIEW);
	r = kf_router_match("/admin/ws/link_user", KF_M_POST, &allowed);
	cr_assert_not_null(r);
	cr_expect_eq(r->prefetch, KF_PREFETCH_NONE, "link_user's view depends on who asks");
}

Test(router, every_route_is_found)
{
	size_t n = 0;
	const struct kf_route *t = kf_router_table(&n);

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < KF_ARRAY_LEN(methods); k++) {
			unsigned bit = kf_method_bit(methods[k]);
			unsigned allowed = 12345;
			const struct kf_route *r;

			if (!(t[i].methods & bit))
				continue;
			r = kf_router_match(t[i].path, bit, &allowed);
			cr_expect_not_null(r, "%s %s not found", methods[k], t[i].path);
			if (!r)
				continue;
			cr_expect_str_eq(r->path, t[i].path);
			cr_expect(r->methods & bit);
			cr_expect_eq(r->fn, t[i].fn);
		}
	}
}

Test(router, unknown_path)
{
	static const char *const paths[] = { "/",	   "/nope",	    "/admin",
					     "/admin/",	   "/healthz/",	    "/HEALTHZ",
					     "healthz",	   "/admin/login/", "/admin/login?x=1",
					     "//healthz", "" };

	for (size_t i = 0; i < KF_ARRAY_LEN(paths); i++) {
		unsigned allowed = 12345;

		cr_expect_null(kf_router_match(paths[i], KF_M_GET, &allowed), "%s", paths[i]);
		cr_expect_eq(allowed, 0, "'%s' gave allowed %u", paths[i], allowed);
		allowed = 12345;
		cr_expect_null(kf_router_match(paths[i], KF_M_POST, &allowed), "%s", paths[i]);
		cr_expect_eq(allowed, 0);
	}
}

Test(router, wrong_method)
{
	size_t n = 0;
	const struct kf_route *t = kf_router_table(&n);
	bool tried = false;

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < KF_ARRAY_LEN(methods); k++) {
			unsigned bit = kf_method_bit(methods[k]);
			unsigned taken = 0;
			unsigned allowed = 0;

			/* every method any route on this path takes */
			for (size_t j = 0; j < n; j++)
				if (strcmp(t[j].path, t[i].path) == 0)
					taken |= t[j].methods;
			if (taken & bit)
				continue;
			tried = true;
			cr_expect_null(kf_router_match(t[i].path, bit, &allowed), "%s %s",
				       methods[k], t[i].path);
			cr_expect_eq(allowed, taken, "%s %s: allowed %u, expected %u", methods[k],
				     t[i].path, allowed, taken);
		}
		/* an unknown method (bit 0) is never matched */
		{
			unsigned allowed = 0;

			cr_expect_null(kf_router_match(t[i].path, 0, &allowed));
			cr_expect_neq(allowed, 0);
		}
	}
	cr_expect(tried, "no route refuses any method");
}

Test(router, known_routes)
{
	unsigned allowed = 0;
	const struct kf_route *r;

	r = kf_router_match("/admin/login", KF_M_POST, &allowed);
	cr_assert_not_null(r);
	cr_expect_eq(r->auth, KF_AUTH_NONE);
	cr_expect_null(kf_router_match("/admin/login", KF_M_GET, &allowed));
	cr_expect_eq(allowed, KF_M_POST);
	r = kf_router_match("/admin/me", KF_M_GET, &allowed);
	cr_assert_not_null(r);
	cr_expect_neq(r->auth, KF_AUTH_NONE, "/admin/me needs no login");
	r = kf_router_match("/healthz", KF_M_GET, &allowed);
	cr_assert_not_null(r);
	cr_expect_eq(r->auth, KF_AUTH_NONE);
	cr_expect_null(kf_router_match("/healthz", KF_M_DELETE, &allowed));
	cr_expect_eq(allowed, KF_M_GET);
}

/* kf_router_allow(methods) as a string, compared with want. */
static void expect_allow(unsigned m, const char *want)
{
	struct kf_buf out = KF_BUF_INIT;

	kf_router_allow(m, &out);
	cr_expect_str_eq(kf_buf_str(&out), want, "methods %u", m);
	kf_buf_release(&out);
}

Test(router, paths_are_unique_per_method)
{
	size_t n = 0;
	const struct kf_route *t = kf_router_table(&n);

	/* two entries for one path must not share a method: the second is dead */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(t[i].path, t[j].path) == 0)
				cr_expect_eq(t[i].methods & t[j].methods, 0, "%s listed twice",
					     t[i].path);
}

Test(router, allow_formatting)
{
	expect_allow(0, "");
	expect_allow(KF_M_GET, "GET");
	expect_allow(KF_M_POST, "POST");
	expect_allow(KF_M_GET | KF_M_POST, "GET, POST");
	/* always in table order, whatever order the bits were set in */
	expect_allow(KF_M_OPTIONS | KF_M_GET | KF_M_DELETE, "GET, DELETE, OPTIONS");
	expect_allow(0x7f, "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS");
	/* unknown bits are ignored */
	expect_allow(KF_M_POST | 0x100, "POST");
}

Test(router, allow_appends)
{
	struct kf_buf out = KF_BUF_INIT;

	kf_buf_adds(&out, "Allow: ");
	kf_router_allow(KF_M_GET | KF_M_POST, &out);
	cr_expect_str_eq(kf_buf_str(&out), "Allow: GET, POST");
	kf_buf_release(&out);
}
