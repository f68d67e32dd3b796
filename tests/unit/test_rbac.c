/*
 * test_rbac.c - rbac: method and path patterns, the checks on patterns a
 * client stores, and which sets of grants reach every admin route.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include "rbac.h"
#include "router.h"

#define M(pat, method, want) \
	cr_expect_eq(kf_rbac_method_match(pat, method), want, "method '%s' vs '%s'", pat, method)
#define P(pat, path, want) \
	cr_expect_eq(kf_rbac_path_match(pat, path), want, "path '%s' vs '%s'", pat, path)

Test(rbac, method_star_matches_any)
{
	M("*", "GET", true);
	M("*", "POST", true);
	M("*", "OPTIONS", true);
	M(" * ", "DELETE", true);
}

Test(rbac, method_one)
{
	M("GET", "GET", true);
	M("get", "GET", true);
	M("GET", "POST", false);
	M("GE", "GET", false);
	M("GETX", "GET", false);
	M("", "GET", false);
	M(NULL, "GET", false);
}

Test(rbac, method_list)
{
	M("GET,POST", "GET", true);
	M("GET,POST", "POST", true);
	M("GET,POST", "PUT", false);
	M("get, post", "POST", true);
	M(" GET , POST ", "POST", true);
	M("GET,,POST", "POST", true);
	M("GET,*", "PATCH", true);
	M(",", "GET", false);
}

Test(rbac, path_literal)
{
	P("/admin/user", "/admin/user", true);
	P("/admin/user", "/admin/user/add", false);
	P("/admin/user", "/admin", false);
	P("/admin/user", "/admin/users", false);
	P("/Admin/user", "/admin/user", false);
	P("/", "/", true);
	P("/", "/admin", false);
}

Test(rbac, path_star_is_one_segment)
{
	P("/admin/*", "/admin/user", true);
	P("/admin/*", "/admin/role", true);
	P("/admin/*", "/admin/user/add", false);
	P("/admin/*", "/admin", false);
	P("/admin/*/add", "/admin/user/add", true);
	P("/admin/*/add", "/admin/role/add", true);
	P("/admin/*/add", "/admin/user/del", false);
	P("/admin/*/add", "/admin/user/x/add", false);
	P("/*", "/healthz", true);
	P("/*", "/admin/user", false);
}

Test(rbac, path_star_within_a_segment)
{
	P("/admin/user*", "/admin/user", true);
	P("/admin/user*", "/admin/users", true);
	P("/admin/user*", "/admin/user/add", false);
	P("/admin/*_map", "/admin/auth_map", true);
	P("/admin/*_map/*", "/admin/auth_map/add", true);
	P("/admin/a*h", "/admin/auth", true);
	P("/admin/a*h", "/admin/auth_map", false);
	P("/admin/*a*", "/admin/auth_map", true);
	P("/admin/*a*", "/admin/role", false);
	P("/admin/*a*", "/admin/me", false);
}

Test(rbac, path_globstar_any_depth)
{
	P("/admin/**", "/admin/user", true);
	P("/admin/**", "/admin/user/add", true);
	P("/admin/**", "/admin/a/b/c/d", true);
	P("/admin/**", "/admin", true);
	P("/admin/**", "/api/link", false);
	P("/admin/**", "/administrator/x", false);
	P("/**", "/admin/user/add", true);
	P("/**", "/", true);
	P("/admin/**/add", "/admin/user/add", true);
	P("/admin/**/add", "/admin/add", true);
	P("/admin/**/add", "/admin/x/y/add", true);
	P("/admin/**/add", "/admin/user/del", false);
	P("/admin/**/**/add", "/admin/user/add", true);
	P("/**/del", "/admin/user/del", true);
	P("/**/del", "/admin/user/add", false);
	P("/api/**", "/api/link", true);
	P("/api/**", "/admin/me", false);
}

Test(rbac, path_bad_input)
{
	P(NULL, "/admin", false);
	P("admin/**", "/admin/user", false);
	P("/admin/**", "admin/user", false);
	P("", "/", false);
}

Test(rbac, path_many_segments_refused_not_crashed)
{
	char deep[1024];
	size_t n = 0;

	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(deep + n, sizeof(deep) - n, "/a");
	P("/**", deep, false); /* more segments than a match considers */
	P("/**/**/**/**/**/**/**/**/**/**/**/**/**/x", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/y", false);
}

Test(rbac, method_invalid)
{
	cr_expect_null(kf_rbac_method_invalid("*", 1));
	cr_expect_null(kf_rbac_method_invalid("GET", 3));
	cr_expect_null(kf_rbac_method_invalid("get,post", 8));
	cr_expect_null(kf_rbac_method_invalid("GET, POST", 9));
	cr_expect_null(kf_rbac_method_invalid("OPTIONS", 7));
	cr_expect_not_null(kf_rbac_method_invalid("", 0));
	cr_expect_not_null(kf_rbac_method_invalid("GT", 2));
	cr_expect_not_null(kf_rbac_method_invalid("GET,", 4));
	cr_expect_not_null(kf_rbac_method_invalid(",GET", 4));
	cr_expect_not_null(kf_rbac_method_invalid("GET,,POST", 9));
	cr_expect_not_null(kf_rbac_method_invalid("GET POST", 8));
	cr_expect_not_null(kf_rbac_method_invalid("GET,POST,PUT,DELETE,PATCH", 25));
}

Test(rbac, path_invalid)
{
	char long_path[260];

	cr_expect_null(kf_rbac_path_invalid("/admin/**", 9));
	cr_expect_null(kf_rbac_path_invalid("/", 1));
	cr_expect_null(kf_rbac_path_invalid("/admin/user/", 12));
	cr_expect_null(kf_rbac_path_invalid("/管理/*", strlen("/管理/*")));
	cr_expect_not_null(kf_rbac_path_invalid("", 0));
	cr_expect_not_null(kf_rbac_path_invalid("admin", 5));
	cr_expect_not_null(kf_rbac_path_invalid("/admin//user", 12));
	cr_expect_not_null(kf_rbac_path_invalid("/admin user", 11));
	cr_expect_not_null(kf_rbac_path_invalid("/admin\n", 7));
	cr_expect_not_null(kf_rbac_path_invalid("/admin?x=1", 10));
	cr_expect_not_null(kf_rbac_path_invalid("/admin#x", 8));
	memset(long_path, 'a', sizeof(long_path));
	long_path[0] = '/';
	cr_expect_not_null(kf_rbac_path_invalid(long_path, 201));
	cr_expect_null(kf_rbac_path_invalid(long_path, 200));
}

static const struct kf_route fake_routes[] = {
	{ "/admin/login", KF_M_POST, KF_AUTH_NONE, NULL, KF_PREFETCH_NONE },
	{ "/admin/me", KF_M_GET | KF_M_POST, KF_AUTH_RBAC, NULL, KF_PREFETCH_NONE },
	{ "/admin/user", KF_M_POST, KF_AUTH_RBAC, NULL, KF_PREFETCH_NONE },
	{ "/admin/user/add", KF_M_POST, KF_AUTH_RBAC, NULL, KF_PREFETCH_NONE },
	{ "/api/link", KF_M_POST, KF_AUTH_NONE, NULL, KF_PREFETCH_NONE },
	{ "/healthz", KF_M_GET, KF_AUTH_NONE, NULL, KF_PREFETCH_NONE },
};

static bool covers(const struct kf_rbac_grant *g, size_t n)
{
	return kf_rbac_covers_admin(g, n, fake_routes, KF_ARRAY_LEN(fake_routes));
}

Test(rbac, covers_admin_seed_grant)
{
	struct kf_rbac_grant g[] = { { 1, "*", "/admin/**" } };

	cr_expect(covers(g, 1));
}

Test(rbac, covers_admin_broader)
{
	struct kf_rbac_grant g1[] = { { 1, "*", "/**" } };
	struct kf_rbac_grant g2[] = { { 1, "GET,POST", "/admin/**" } };
	struct kf_rbac_grant g3[] = { { 1, "POST", "/admin/**" }, { 1, "GET", "/admin/me" } };

	cr_expect(covers(g1, 1));
	cr_expect(covers(g2, 1), "GET and POST are every method the admin routes take");
	cr_expect(covers(g3, 2), "grants add up");
}

Test(rbac, covers_admin_narrower)
{
	struct kf_rbac_grant none[1] = { { 0, NULL, NULL } };
	struct kf_rbac_grant g1[] = { { 1, "POST", "/admin/**" } };
	struct kf_rbac_grant g2[] = { { 1, "*", "/admin/*" } };
	struct kf_rbac_grant g3[] = { { 1, "*", "/api/**" } };
	struct kf_rbac_grant g4[] = { { 1, NULL, "/admin/**" }, { 1, "*", NULL } };

	cr_expect_not(covers(none, 0));
	cr_expect_not(covers(g1, 1), "GET /admin/me is left out");
	cr_expect_not(covers(g2, 1), "/admin/user/add is left out");
	cr_expect_not(covers(g3, 1));
	cr_expect_not(covers(g4, 2), "NULL patterns match nothing");
}

Test(rbac, covers_admin_real_table)
{
	size_t n;
	const struct kf_route *t = kf_router_table(&n);
	struct kf_rbac_grant seed[] = { { 1, "*", "/admin/**" }, { 1, "*", "/api/**" } };
	struct kf_rbac_grant api_only[] = { { 1, "*", "/api/**" } };

	cr_expect(kf_rbac_covers_admin(seed, 2, t, n));
	cr_expect_not(kf_rbac_covers_admin(api_only, 1, t, n));
}

Test(rbac, every_admin_route_is_rbac_but_login)
{
	size_t n;
	const struct kf_route *t = kf_router_table(&n);

	for (size_t i = 0; i < n; i++) {
		if (strncmp(t[i].path, "/admin/", 7) != 0 || strcmp(t[i].path, "/admin/login") == 0)
			continue;
		cr_expect_eq(t[i].auth, KF_AUTH_RBAC, "%s must take the grant check", t[i].path);
	}
}

Test(rbac, cache_new_free)
{
	struct kf_rbac *r = kf_rbac_new(60);

	kf_rbac_invalidate(r);
	kf_rbac_free(r);
	kf_rbac_free(NULL);
}
