#include "kf_compat.h"

#include "rbac.h"

#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "kf_db.h"
#include "kf_err.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_store.h"
#include "reply.h"
#include "request.h"
#include "router.h"

/* Most path segments a pattern or path may have to be matched at all. */
#define MAX_SEGS 64

/* The names of enum kf_method's bits, in bit order. */
static const char *const method_names[] = { "GET",   "POST", "PUT",    "DELETE",
					     "PATCH", "HEAD", "OPTIONS" };

/* ------------------------------------------------------------ patterns */

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

bool kf_rbac_method_match(const char *pat, const char *method)
{
	size_t mlen = strlen(method);
	const char *p = pat;

	if (!p)
		return false;
	while (*p) {
		const char *start, *end;

		while (is_space(*p) || *p == ',')
			p++;
		start = p;
		while (*p && *p != ',')
			p++;
		end = p;
		while (end > start && is_space(end[-1]))
			end--;
		if (end == start)
			continue;
		if (end - start == 1 && *start == '*')
			return true;
		if ((size_t)(end - start) == mlen && strncasecmp(start, method, mlen) == 0)
			return true;
	}
	return false;
}

const char *kf_rbac_method_invalid(const char *pat, size_t n)
{
	size_t i = 0, tokens = 0;

	if (n == 0)
		return "must not be empty";
	if (n > KF_RBAC_METHOD_MAX)
		return "must be at most 20 characters";
	while (i < n) {
		size_t start, end;
		bool known = false;

		while (i < n && is_space(pat[i]))
			i++;
		start = i;
		while (i < n && pat[i] != ',')
			i++;
		end = i;
		while (end > start && is_space(pat[end - 1]))
			end--;
		if (end == start)
			return "has an empty entry: write * or methods separated by commas";
		if (end - start == 1 && pat[start] == '*') {
			known = true;
		} else {
			for (size_t m = 0; m < KF_ARRAY_LEN(method_names); m++)
				if (strlen(method_names[m]) == end - start &&
				    strncasecmp(method_names[m], pat + start, end - start) == 0)
					known = true;
		}
		if (!known)
			return "must be * or a list of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS";
		tokens++;
		if (i < n)
			i++; /* the comma */
		if (i == n && pat[n - 1] == ',')
			return "has an empty entry: write * or methods separated by commas";
	}
	return tokens ? NULL : "must not be empty";
}

const char *kf_rbac_path_invalid(const char *pat, size_t n)
{
	if (n == 0)
		return "must not be empty";
	if (n > KF_RBAC_PATH_MAX)
		return "must be at most 200 bytes";
	if (pat[0] != '/')
		return "must start with '/'";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pat[i];

		if (c <= 0x20 || c == 0x7f)
			return "must not contain spaces or control characters";
		if (c == '?' || c == '#')
			return "must be a path without '?' or '#'";
		if (c == '/' && i + 1 < n && pat[i + 1] == '/')
			return "must not contain an empty segment ('//')";
	}
	return NULL;
}

struct seg {
	const char *s;
	size_t n;
};

/* Split p (after its leading '/') into segments.  -1 when too many. */
static int split(const char *p, struct seg *out)
{
	int n = 0;

	if (*p == '/')
		p++;
	for (;;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (n == MAX_SEGS)
			return -1;
		out[n].s = p;
		out[n].n = len;
		n++;
		if (!e)
			return n;
		p = e + 1;
	}
}

/* Glob within one segment: '*' matches any run of bytes. */
static bool seg_match(const char *p, size_t pn, const char *s, size_t sn)
{
	size_t pi = 0, si = 0, star = (size_t)-1, mark = 0;

	while (si < sn) {
		if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < pn && p[pi] == s[si]) {
			pi++;
			si++;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

static bool is_globstar(const struct seg *g)
{
	return g->n == 2 && g->s[0] == '*' && g->s[1] == '*';
}

static bool segs_match(const struct seg *p, int np, const struct seg *s, int ns)
{
	while (np > 0) {
		if (is_globstar(p)) {
			while (np > 1 && is_globstar(p + 1)) { /* "**" / "**" is one "**" */
				p++;
				np--;
			}
			if (np == 1)
				return true;
			for (int k = 0; k <= ns; k++)
				if (segs_match(p + 1, np - 1, s + k, ns - k))
					return true;
			return false;
		}
		if (ns == 0 || !seg_match(p->s, p->n, s->s, s->n))
			return false;
		p++;
		np--;
		s++;
		ns--;
	}
	return ns == 0;
}

bool kf_rbac_path_match(const char *pat, const char *path)
{
	struct seg ps[MAX_SEGS], ss[MAX_SEGS];
	int np, ns;

	if (!pat || pat[0] != '/' || path[0] != '/')
		return false;
	np = split(pat, ps);
	ns = split(path, ss);
	if (np < 0 || ns < 0)
		return false;
	return segs_match(ps, np, ss, ns);
}

static bool grants_allow(const struct kf_rbac_grant *g, size_t n, const char *method,
			 const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (kf_rbac_method_match(g[i].method, method) &&
		    kf_rbac_path_match(g[i].path, path))
			return true;
	return false;
}

bool kf_rbac_covers_admin(const struct kf_rbac_grant *g, size_t n,
			  const struct kf_route *routes, size_t nr)
{
	for (size_t r = 0; r < nr; r++) {
		if (routes[r].auth != KF_AUTH_RBAC || strncmp(routes[r].path, "/admin/", 7) != 0)
			continue;
		for (size_t m = 0; m < KF_ARRAY_LEN(method_names); m++)
			if ((routes[r].methods & (1u << m)) &&
			    !grants_allow(g, n, method_names[m], routes[r].path))
				return false;
	}
	return true;
}

/* ------------------------------------------------------------ the cache */

struct account {
	int64_t id;
	int64_t role;
};

/* An immutable picture of the tables; swapped whole under the rwlock. */
struct snap {
	char version[KF_STORE_VERSION_MAX];
	int64_t loaded_ms;
	struct kf_rbac_grant *grants; /* sorted by role; strings owned */
	size_t ngrants, grants_cap;
	struct account *accounts;     /* sorted by id */
	size_t naccounts, accounts_cap;
};

struct kf_rbac {
	pthread_rwlock_t lock;  /* guards cur */
	pthread_mutex_t reload; /* one reload at a time */
	struct snap *cur;
	long max_age_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void snap_free(struct snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ngrants; i++) {
		free((char *)s->grants[i].method);
		free((char *)s->grants[i].path);
	}
	free(s->grants);
	free(s->accounts);
	free(s);
}

struct kf_rbac *kf_rbac_new(long max_age_sec)
{
	struct kf_rbac *rbac = kf_xcalloc(1, sizeof(*rbac));

	if (pthread_rwlock_init(&rbac->lock, NULL) != 0 ||
	    pthread_mutex_init(&rbac->reload, NULL) != 0) {
		kf_err("unable to initialise the RBAC cache locks");
		abort();
	}
	rbac->max_age_ms = max_age_sec * 1000;
	return rbac;
}

void kf_rbac_free(struct kf_rbac *rbac)
{
	if (!rbac)
		return;
	snap_free(rbac->cur);
	pthread_rwlock_destroy(&rbac->lock);
	pthread_mutex_destroy(&rbac->reload);
	free(rbac);
}

void kf_rbac_invalidate(struct kf_rbac *rbac)
{
	struct snap *old;

	pthread_rwlock_wrlock(&rbac->lock);
	old = rbac->cur;
	rbac->cur = NULL;
	pthread_rwlock_unlock(&rbac->lock);
	snap_free(old);
}

static int64_t col_int(const struct kf_db_row *row, unsigned i)
{
	return row->vals[i] ? strtoll(row->vals[i], NULL, 10) : 0;
}

/* Columns: role, method, path (NULL method or path matches nothing). */
static int take_grant(void *ud, const struct kf_db_row *row)
{
	struct snap *s = ud;
	struct kf_rbac_grant *g;

	if (s->ngrants == s->grants_cap) {
		s->grants_cap = s->grants_cap ? s->grants_cap * 2 : 16;
		s->grants = kf_xrealloc(s->grants, s->grants_cap * sizeof(*s->grants));
	}
	g = &s->grants[s->ngrants++];
	g->role = col_int(row, 0);
	g->method = row->vals[1] ? kf_xstrdup(row->vals[1]) : NULL;
	g->path = row->vals[2] ? kf_xstrdup(row->vals[2]) : NULL;
	return 0;
}

/* Columns: id, role. */
static int take_account(void *ud, const struct kf_db_row *row)
{
	struct snap *s = ud;

	if (s->naccounts == s->accounts_cap) {
		s->accounts_cap = s->accounts_cap ? s->accounts_cap * 2 : 16;
		s->accounts = kf_xrealloc(s->accounts, s->accounts_cap * sizeof(*s->accounts));
	}
	s->accounts[s->naccounts].id = col_int(row, 0);
	s->accounts[s->naccounts].role = col_int(row, 1);
	s->naccounts++;
	return 0;
}

/*
 * Read the enabled grants and every account from the primary.  locking:
 * inside a transaction, with locking reads.  Returns a new snap or NULL
 * (KF_ERR_STORE, logged by kf_db).
 */
static struct snap *load_snap(struct kf_db *db, bool locking)
{
	static const char grants_sql[] =
		"SELECT m.`role`, p.`method`, p.`path` FROM `admin_auth_map` m"
		" JOIN `admin_auth` p ON p.`id` = m.`auth` WHERE p.`enable` = 1"
		" ORDER BY m.`role`";
	static const char grants_lock_sql[] =
		"SELECT m.`role`, p.`method`, p.`path` FROM `admin_auth_map` m"
		" JOIN `admin_auth` p ON p.`id` = m.`auth` WHERE p.`enable` = 1"
		" ORDER BY m.`role` LOCK IN SHARE MODE";
	static const char accounts_sql[] = "SELECT `id`, `role` FROM `admin` ORDER BY `id`";
	static const char accounts_lock_sql[] =
		"SELECT `id`, `role` FROM `admin` ORDER BY `id` LOCK IN SHARE MODE";
	struct snap *s = kf_xcalloc(1, sizeof(*s));

	if (kf_db_query(db, KF_DB_PRIMARY, locking ? grants_lock_sql : grants_sql, NULL, 0,
			take_grant, s) != 0 ||
	    kf_db_query(db, KF_DB_PRIMARY, locking ? accounts_lock_sql : accounts_sql, NULL, 0,
			take_account, s) != 0) {
		snap_free(s);
		return NULL;
	}
	s->loaded_ms = now_ms();
	return s;
}

/* The account's index in s, or -1. */
static long find_account(const struct snap *s, int64_t id)
{
	size_t lo = 0, hi = s->naccounts;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->accounts[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->naccounts && s->accounts[lo].id == id ? (long)lo : -1;
}

/* The grants of role in s: *n of them from the returned one. */
static const struct kf_rbac_grant *role_grants(const struct snap *s, int64_t role, size_t *n)
{
	size_t lo = 0, hi = s->ngrants, end;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->grants[mid].role < role)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (end = lo; end < s->ngrants && s->grants[end].role == role; end++)
		;
	*n = end - lo;
	return s->grants + lo;
}

static bool fresh(const struct kf_rbac *rbac, const struct snap *s, const char *version)
{
	return s && strcmp(s->version, version) == 0 &&
	       now_ms() - s->loaded_ms < rbac->max_age_ms;
}

/* Make sure the cache is at version (reloading when it is not). */
static int refresh(struct kf_rbac *rbac, struct kf_db *db, const char *version)
{
	struct snap *s, *old = NULL;
	bool ok;
	int rc = 0;

	pthread_rwlock_rdlock(&rbac->lock);
	ok = fresh(rbac, rbac->cur, version);
	pthread_rwlock_unlock(&rbac->lock);
	if (ok)
		return 0;
	pthread_mutex_lock(&rbac->reload);
	pthread_rwlock_rdlock(&rbac->lock);
	ok = fresh(rbac, rbac->cur, version); /* another worker may have done it */
	pthread_rwlock_unlock(&rbac->lock);
	if (!ok) {
		s = load_snap(db, false);
		if (!s) {
			rc = KF_ERR_STORE;
		} else {
			snprintf(s->version, sizeof(s->version), "%s", version);
			pthread_rwlock_wrlock(&rbac->lock);
			old = rbac->cur;
			rbac->cur = s;
			pthread_rwlock_unlock(&rbac->lock);
			kf_debug("RBAC cache loaded: %zu grants, %zu accounts", s->ngrants,
				 s->naccounts);
		}
	}
	pthread_mutex_unlock(&rbac->reload);
	snap_free(old);
	return rc;
}

static int take_role(void *ud, const struct kf_db_row *row)
{
	int64_t *role = ud;

	*role = col_int(row, 0);
	return 0;
}

int kf_rbac_check(struct kf_worker *w, const struct kf_req *req, const char *method,
		  const char *path, int64_t *role)
{
	struct kf_rbac *rbac = w->api->rbac;
	int64_t admin_id = req->session.admin_id;
	char version[KF_STORE_VERSION_MAX];
	const struct kf_rbac_grant *g;
	size_t ng;
	long idx;
	int rc;

	if (req->has_rbac_version)
		memcpy(version, req->rbac_version, sizeof(version));
	else if (kf_store_rbac_version(w->redis, w->api->prefix, version) != 0)
		return KF_ERR_STORE;
	rc = refresh(rbac, w->db, version);
	if (rc != 0)
		return rc;
	pthread_rwlock_rdlock(&rbac->lock);
	if (!rbac->cur) { /* invalidated since refresh: look again next time */
		pthread_rwlock_unlock(&rbac->lock);
		rc = refresh(rbac, w->db, version);
		if (rc != 0)
			return rc;
		pthread_rwlock_rdlock(&rbac->lock);
	}
	idx = rbac->cur ? find_account(rbac->cur, admin_id) : -1;
	if (idx >= 0) {
		*role = rbac->cur->accounts[idx].role;
	} else {
		/*
		 * Not in the cache: an account made behind the API's back
		 * (kefuctl) since the last reload, or one that is gone.  Ask.
		 */
		struct kf_db_param p = KF_DB_INT(admin_id);

		pthread_rwlock_unlock(&rbac->lock);
		*role = -1;
		rc = kf_db_query(w->db, KF_DB_PRIMARY, "SELECT `role` FROM `admin` WHERE `id` = ?",
				 &p, 1, take_role, role);
		if (rc != 0)
			return KF_ERR_STORE;
		if (*role < 0)
			return KF_ERR_NOTFOUND;
		pthread_rwlock_rdlock(&rbac->lock);
	}
	rc = KF_ERR_AUTH;
	if (rbac->cur) {
		g = role_grants(rbac->cur, *role, &ng);
		if (grants_allow(g, ng, method, path))
			rc = 0;
	}
	pthread_rwlock_unlock(&rbac->lock);
	return rc;
}

bool kf_rbac_authorize(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep)
{
	int64_t role = 0;
	int rc = kf_rbac_check(w, req, req->method, req->route->path, &role);

	switch (rc) {
	case 0:
		req->session.role = role;
		return true;
	case KF_ERR_AUTH:
		kf_reply_error(rep, 403, "forbidden: your role is not granted %s %s", req->method,
			       req->route->path);
		return false;
	case KF_ERR_NOTFOUND:
		/* the account was deleted: end the session as well */
		if (kf_store_session_delete(w->redis, w->api->prefix, req->token,
					    strlen(req->token)) == KF_ERR_STORE)
			kf_warn("admin %lld: unable to delete the session of a deleted account",
				(long long)req->session.admin_id);
		kf_reply_error(rep, 401, "not logged in: the account no longer exists");
		return false;
	default:
		kf_reply_error(rep, 503,
			       "service unavailable: a data store is down, try again shortly");
		return false;
	}
}

int kf_rbac_count_super(struct kf_db *db, long *count)
{
	const struct kf_route *routes;
	struct snap *s = load_snap(db, true);
	bool *super;
	size_t nr, i = 0;

	*count = 0;
	if (!s)
		return KF_ERR_STORE;
	routes = kf_router_table(&nr);
	super = kf_xcalloc(s->ngrants + 1, sizeof(*super));
	/* grants are sorted by role: judge each role's run once */
	while (i < s->ngrants) {
		size_t n;
		const struct kf_rbac_grant *g = role_grants(s, s->grants[i].role, &n);

		super[i] = kf_rbac_covers_admin(g, n, routes, nr);
		i += n;
	}
	for (size_t a = 0; a < s->naccounts; a++) {
		size_t n;
		const struct kf_rbac_grant *g = role_grants(s, s->accounts[a].role, &n);

		if (n && super[g - s->grants])
			(*count)++;
	}
	free(super);
	snap_free(s);
	return 0;
}

int kf_rbac_changed(struct kf_worker *w)
{
	int rc = kf_store_rbac_bump(w->redis, w->api->prefix);

	kf_rbac_invalidate(w->api->rbac);
	if (rc != 0)
		kf_err("unable to publish an RBAC change to Redis: other processes apply it "
		       "within [Api] RbacReloadSec");
	return rc;
}
