#include "kf_compat.h"

#include "router.h"

#include "handlers.h"
#include "kf_buf.h"
#include "kf_json.h"

#define GET KF_M_GET
#define POST KF_M_POST
#define NONE KF_PREFETCH_NONE

static const struct kf_route routes[] = {
	{ "/admin/login", POST, KF_AUTH_NONE, kf_h_login, NONE },
	{ "/admin/logout", GET | POST, KF_AUTH_RBAC, kf_h_logout, NONE },
	{ "/admin/me", GET | POST, KF_AUTH_RBAC, kf_h_me, NONE },
	{ "/admin/ws", POST, KF_AUTH_RBAC, kf_h_ws_register, NONE },
	{ "/admin/ws/info", POST, KF_AUTH_RBAC, kf_h_ws_info, KF_PREFETCH_VIEW },
	{ "/admin/ws/link_user", POST, KF_AUTH_RBAC, kf_h_ws_link_user, NONE },
	{ "/admin/ws/close", POST, KF_AUTH_RBAC, kf_h_ws_close, NONE },
	{ "/admin/ws/conversations", POST, KF_AUTH_RBAC, kf_h_ws_conversations, NONE },
	{ "/admin/ws/history", POST, KF_AUTH_RBAC, kf_h_ws_history, NONE },
	{ "/api/link", POST, KF_AUTH_NONE, kf_h_api_link, NONE },
	{ "/healthz", GET, KF_AUTH_NONE, kf_h_healthz, NONE },
	{ "/admin/user", GET | POST, KF_AUTH_RBAC, kf_h_user_list, NONE },
	{ "/admin/user/add", POST, KF_AUTH_RBAC, kf_h_user_add, NONE },
	{ "/admin/user/edit", POST, KF_AUTH_RBAC, kf_h_user_edit, NONE },
	{ "/admin/user/del", POST, KF_AUTH_RBAC, kf_h_user_del, NONE },
	{ "/admin/auth", GET | POST, KF_AUTH_RBAC, kf_h_auth_list, NONE },
	{ "/admin/auth/add", POST, KF_AUTH_RBAC, kf_h_auth_add, NONE },
	{ "/admin/auth/edit", POST, KF_AUTH_RBAC, kf_h_auth_edit, NONE },
	{ "/admin/auth/del", POST, KF_AUTH_RBAC, kf_h_auth_del, NONE },
	{ "/admin/role", GET | POST, KF_AUTH_RBAC, kf_h_role_list, NONE },
	{ "/admin/role/add", POST, KF_AUTH_RBAC, kf_h_role_add, NONE },
	{ "/admin/role/edit", POST, KF_AUTH_RBAC, kf_h_role_edit, NONE },
	{ "/admin/role/del", POST, KF_AUTH_RBAC, kf_h_role_del, NONE },
	{ "/admin/auth_map", GET | POST, KF_AUTH_RBAC, kf_h_auth_map_list, NONE },
	{ "/admin/auth_map/add", POST, KF_AUTH_RBAC, kf_h_auth_map_add, NONE },
	{ "/admin/auth_map/edit", POST, KF_AUTH_RBAC, kf_h_auth_map_edit, NONE },
	{ "/admin/auth_map/del", POST, KF_AUTH_RBAC, kf_h_auth_map_del, NONE },
	{ "/admin/perf/stats", GET, KF_AUTH_RBAC, kf_h_perf_stats, NONE },
};

#undef GET
#undef POST
#undef NONE

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
