#include "kf_compat.h"

#include "router.h"

#include "handlers.h"
#include "kf_buf.h"
#include "kf_json.h"

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
	{ "/admin/ws/conversations", POST, KF_AUTH_RBAC, kf_h_ws_conversations },
	{ "/admin/ws/history", POST, KF_AUTH_RBAC, kf_h_ws_history },
	{ "/api/link", POST, KF_AUTH_NONE, kf_h_api_link },
	{ "/healthz", GET, KF_AUTH_NONE, kf_h_healthz },
	{ "/admin/user", GET | POST, KF_AUTH_RBAC, kf_h_user_list },
	{ "/admin/user/add", POST, KF_AUTH_RBAC, kf_h_user_add },
	{ "/admin/user/edit", POST, KF_AUTH_RBAC, kf_h_user_edit },
	{ "/admin/user/del", POST, KF_AUTH_RBAC, kf_h_user_del },
	{ "/admin/auth", GET | POST, KF_AUTH_RBAC, kf_h_auth_list },
	{ "/admin/auth/add", POST, KF_AUTH_RBAC, kf_h_auth_add },
	{ "/admin/auth/edit", POST, KF_AUTH_RBAC, kf_h_auth_edit },
	{ "/admin/auth/del", POST, KF_AUTH_RBAC, kf_h_auth_del },
	{ "/admin/role", GET | POST, KF_AUTH_RBAC, kf_h_role_list },
	{ "/admin/role/add", POST, KF_AUTH_RBAC, kf_h_role_add },
	{ "/admin/role/edit", POST, KF_AUTH_RBAC, kf_h_role_edit },
	{ "/admin/role/del", POST, KF_AUTH_RBAC, kf_h_role_del },
	{ "/admin/auth_map", GET | POST, KF_AUTH_RBAC, kf_h_auth_map_list },
	{ "/admin/auth_map/add", POST, KF_AUTH_RBAC, kf_h_auth_map_add },
	{ "/admin/auth_map/edit", POST, KF_AUTH_RBAC, kf_h_auth_map_edit },
	{ "/admin/auth_map/del", POST, KF_AUTH_RBAC, kf_h_auth_map_del },
	{ "/admin/perf/stats", GET, KF_AUTH_RBAC, kf_h_perf_stats },
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

void kf_router_json(struct kf_buf *out)
{
	static const char *const auth_names[] = { "none", "session", "rbac" };
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < KF_ARRAY_LEN(routes); i++) {
		struct json_object *r = json_object_new_object();
		struct json_object *m = json_object_new_array();

		for (size_t b = 0; b < KF_ARRAY_LEN(method_names); b++)
			if (routes[i].methods & (1u << b))
				json_object_array_add(m, json_object_new_string(method_names[b]));
		kf_json_set_str(r, "path", routes[i].path);
		json_object_object_add(r, "methods", m);
		kf_json_set_str(r, "auth", auth_names[routes[i].auth]);
		json_object_array_add(arr, r);
	}
	kf_json_append(out, arr);
	json_object_put(arr);
}
