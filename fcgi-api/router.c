#include "kf_compat.h"

#include "router.h"

#include "handlers.h"
#include "kf_buf.h"

#define GET KF_M_GET
#define POST KF_M_POST

static const struct kf_route routes[] = {
	{ "/admin/login", POST, KF_AUTH_NONE, kf_h_login },
	{ "/admin/logout", GET | POST, KF_AUTH_RBAC, kf_h_logout },
	{ "/admin/me", GET | POST, KF_AUTH_RBAC, kf_h_me },
	{ "/admin/ws", POST, KF_AUTH_RBAC, kf_h_ws_register },
	{ "/admin/ws/info", POST, KF_AUTH_RBAC, kf_h_ws_info },
	{ "/admin/ws/link_user", POST, KF_AUTH_RBAC, kf_h_ws_link_user },
	{ "/admin/ws/close", POST, KF_AUTH_RBAC, kf_h_ws_close },
	{ "/api/link", POST, KF_AUTH_NONE, kf_h_api_link },
	{ "/healthz", GET, KF_AUTH_NONE, kf_h_healthz },
};

#undef GET
#undef POST

static const char *const method_names[] = { "GET",   "POST", "PUT",    "DELETE",
					     "PATCH", "HEAD", "OPTIONS" };

unsigned kf_method_bit(const char *method)
{
	for (size_t i = 0; i < KF_ARRAY_LEN(method_names); i++)
		if (strcmp(method, method_names[i]) == 0)
			return 1u << i;
	return 0;
}

const struct kf_route *kf_router_match(const char *path, unsigned m, unsigned *allowed)
{
	*allowed = 0;
	for (size_t i = 0; i < KF_ARRAY_LEN(routes); i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		*allowed |= routes[i].methods;
		if (routes[i].methods & m)
			return &routes[i];
	}
	return NULL;
}

const struct kf_route *kf_router_table(size_t *n)
{
	*n = KF_ARRAY_LEN(routes);
	return routes;
}

void kf_router_allow(unsigned methods, struct kf_buf *out)
{
	bool first = true;

	for (size_t i = 0; i < KF_ARRAY_LEN(method_names); i++) {
		if (!(methods & (1u << i)))
			continue;
		kf_buf_addf(out, "%s%s", first ? "" : ", ", method_names[i]);
		first = false;
	}
}
