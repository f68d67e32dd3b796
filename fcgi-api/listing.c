#include "kf_compat.h"

#include "listing.h"

#include <stdlib.h>
#include <time.h>

#include "api.h"
#include "kf_config.h"
#include "kf_db.h"
#include "kf_json.h"
#include "reply.h"
#include "request.h"

/* The page size when none is asked for (capped by [Api] MaxPageSize). */
#define DEFAULT_PC 20

int kf_list_page(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep,
		 struct kf_page *page)
{
	int64_t max = kf_config_int(w->api->cfg, "Api", "MaxPageSize");

	if (kf_req_int(req, rep, "pn", true, 1, 1, KF_LIST_MAX_PN, &page->pn) != 0 ||
	    kf_req_int(req, rep, "pc", true, max < DEFAULT_PC ? max : DEFAULT_PC, 1, max,
		       &page->pc) != 0)
		return -1;
	page->offset = (page->pn - 1) * page->pc;
	return 0;
}

void kf_list_reply(struct kf_reply *rep, struct json_object *rows, int64_t count,
		   const struct kf_page *page)
{
	struct json_object *data = json_object_new_object();

	json_object_object_add(data, "data", rows);
	kf_json_set_int(data, "count", count);
	kf_json_set_int(data, "pn", page->pn);
	kf_json_set_int(data, "pc", page->pc);
	kf_reply_ok(rep, data);
}

void kf_list_set_text(struct json_object *obj, const char *key, const struct kf_db_row *row,
		      unsigned i)
{
	if (row->vals[i])
		kf_json_set_strn(obj, key, row->vals[i], row->lens[i]);
	else
		kf_json_set_str(obj, key, "");
}

int64_t kf_list_col_int(const struct kf_db_row *row, unsigned i)
{
	return row->vals[i] ? strtoll(row->vals[i], NULL, 10) : 0;
}

void kf_list_set_int(struct json_object *obj, const char *key, const struct kf_db_row *row,
		     unsigned i)
{
	kf_json_set_int(obj, key, kf_list_col_int(row, i));
}

void kf_list_set_time(struct json_object *obj, const char *key, const struct kf_db_row *row,
		      unsigned i)
{
	time_t t;
	struct tm tm;
	char text[32];

	if (!row->vals[i]) {
		json_object_object_add(obj, key, NULL);
		return;
	}
	t = (time_t)strtoll(row->vals[i], NULL, 10);
	if (!localtime_r(&t, &tm) || strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		json_object_object_add(obj, key, NULL);
		return;
	}
	kf_json_set_str(obj, key, text);
}

int kf_list_take_count(void *ud, const struct kf_db_row *row)
{
	*(int64_t *)ud = kf_list_col_int(row, 0);
	return 0;
}

/* Filter parameters one list may take. */
#define LIST_MAX_FILTER 4

void kf_list_query(struct kf_worker *w, struct kf_reply *rep, const struct kf_page *page,
		   const char *count_sql, const char *page_sql, const struct kf_db_param *filter,
		   size_t n, int (*fn)(void *ud, const struct kf_db_row *row))
{
	struct kf_db_param p[LIST_MAX_FILTER + 2];
	struct json_object *rows;
	int64_t count = 0;

	if (n > LIST_MAX_FILTER)
		abort(); /* a programming error: the lists are fixed */
	for (size_t i = 0; i < n; i++)
		p[i] = filter[i];
	p[n] = KF_DB_INT(page->pc);
	p[n + 1] = KF_DB_INT(page->offset);
	rows = json_object_new_array();
	if (kf_db_query(w->db, KF_DB_REPLICA, count_sql, p, n, kf_list_take_count, &count) != 0 ||
	    kf_db_query(w->db, KF_DB_REPLICA, page_sql, p, n + 2, fn, rows) != 0) {
		json_object_put(rows);
		kf_reply_error(rep, 503, "service unavailable: a data store is down, try again shortly");
		return;
	}
	kf_list_reply(rep, rows, count, page);
}
