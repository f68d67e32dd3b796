#include "kf_compat.h"

#include "api.h"

#include <stdlib.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_mem.h"
#include "kf_net.h"
#include "kf_redis.h"
#include "rbac.h"

/* Split a comma- or space-separated list into a NULL-terminated array. */
static char **split_list(const char *s)
{
	char **out = kf_xcalloc(1, sizeof(*out));
	size_t n = 0;

	while (*s) {
		const char *start;

		while (*s == ' ' || *s == ',' || *s == '\t')
			s++;
		if (!*s)
			break;
		start = s;
		while (*s && *s != ' ' && *s != ',' && *s != '\t')
			s++;
		out = kf_xrealloc(out, (n + 2) * sizeof(*out));
		out[n++] = kf_xmemdup0(start, (size_t)(s - start));
		out[n] = NULL;
	}
	return out;
}

struct kf_api *kf_api_new(const struct kf_config *cfg, struct kf_buf *err)
{
	struct kf_api *api = kf_xcalloc(1, sizeof(*api));
	size_t err_start = err->len;

	api->cfg = cfg;
	api->prefix = kf_config_str(cfg, "Redis", "KeyPrefix");
	api->cost.ops = (unsigned long long)kf_config_int(cfg, "Security", "Argon2OpsLimit");
	api->cost.mem_bytes = (size_t)kf_config_int(cfg, "Security", "Argon2MemLimitKiB") * 1024;
	api->max_body = (size_t)kf_config_int(cfg, "Api", "MaxBodyBytes");
	api->session_ttl = (long)kf_config_int(cfg, "Api", "SessionLifetimeSec");
	api->cookie_secure = kf_config_bool(cfg, "Api", "CookieSecure");
	api->login_max_ip = (long)kf_config_int(cfg, "Api", "LoginMaxFailPerIpPerDay");
	api->login_max_user = (long)kf_config_int(cfg, "Api", "LoginMaxFailPerUser");
	api->login_window = (long)kf_config_int(cfg, "Api", "LoginFailWindowSec");
	api->cors_origins = split_list(kf_config_str(cfg, "Api", "CorsAllowOrigins"));
	api->rbac = kf_rbac_new((long)kf_config_int(cfg, "Api", "RbacReloadSec"));
	for (char **o = api->cors_origins; *o; o++)
		if (strncmp(*o, "http://", 7) != 0 && strncmp(*o, "https://", 8) != 0)
			kf_buf_addf(err, "[Api] CorsAllowOrigins: '%s' is not an http(s) origin\n", *o);
	{
		struct kf_buf why = KF_BUF_INIT;

		api->trusted = kf_net_trust_parse(kf_config_str(cfg, "Api", "TrustedProxies"), &why);
		if (!api->trusted)
			kf_buf_addf(err, "[Api] TrustedProxies: %s\n", kf_buf_str(&why));
		kf_buf_release(&why);
	}
	if (err->len > err_start) {
		kf_api_free(api);
		return NULL;
	}
	return api;
}

void kf_api_free(struct kf_api *api)
{
	if (!api)
		return;
	if (api->cors_origins)
		for (char **o = api->cors_origins; *o; o++)
			free(*o);
	free(api->cors_origins);
	kf_net_trust_free(api->trusted);
	kf_rbac_free(api->rbac);
	free(api);
}

bool kf_api_origin_allowed(const struct kf_api *api, const char *origin)
{
	if (!origin || !*origin)
		return false;
	for (char **o = api->cors_origins; *o; o++)
		if (strcmp(*o, origin) == 0)
			return true;
	return false;
}

struct kf_worker *kf_worker_new(const struct kf_api *api)
{
	struct kf_worker *w = kf_xcalloc(1, sizeof(*w));

	w->api = api;
	w->redis = kf_redis_new(api->cfg);
	w->db = kf_db_new(api->cfg);
	return w;
}

void kf_worker_free(struct kf_worker *w)
{
	if (!w)
		return;
	kf_redis_free(w->redis);
	kf_db_free(w->db);
	free(w);
}
