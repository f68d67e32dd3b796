/*
 * listing.h - the admin list replies, in the seed's shape:
 *   {"data": [rows...], "count": TOTAL, "pn": PAGE, "pc": PAGE_SIZE}
 * with pages chosen by the fields pn (>= 1, default 1) and pc (1..[Api]
 * MaxPageSize, default the smaller of 20 and MaxPageSize), and row values
 * copied from MySQL rows: text exactly as stored (NULL as ""), times as the
 * seed wrote them ("YYYY-MM-DD HH:MM:SS", local time).
 */
#ifndef KF_LISTING_H
#define KF_LISTING_H

#include "kf_compat.h"

#include <json-c/json.h>

struct kf_db_param;
struct kf_db_row;
struct kf_reply;
struct kf_req;
struct kf_worker;

/* Rows in a list are numbered from 1; a page asks for at most this one. */
#define KF_LIST_MAX_PN 1000000

struct kf_page {
	int64_t pn;
	int64_t pc;
	int64_t offset; /* (pn - 1) * pc */
};

/* Read pn and pc.  Returns 0, or -1 with rep set to a 400 naming the field. */
int kf_list_page(struct kf_worker *w, struct kf_req *req, struct kf_reply *rep,
		 struct kf_page *page);
/* Reply 200 with rows (owned, an array) and the page. */
void kf_list_reply(struct kf_reply *rep, struct json_object *rows, int64_t count,
		   const struct kf_page *page);

/* obj[key] = the text of column i of row ("" for NULL). */
void kf_list_set_text(struct json_object *obj, const char *key, const struct kf_db_row *row,
		      unsigned i);
/* obj[key] = column i as a number (0 for NULL). */
void kf_list_set_int(struct json_object *obj, const char *key, const struct kf_db_row *row,
		     unsigned i);
/* obj[key] = column i (Unix seconds) in the seed's time format, or null. */
void kf_list_set_time(struct json_object *obj, const char *key, const struct kf_db_row *row,
		      unsigned i);
/* Column i as a number (0 for NULL). */
int64_t kf_list_col_int(const struct kf_db_row *row, unsigned i);

/*
 * One list reply: count the rows with count_sql (its parameters: the n
 * filter params) and read the page with page_sql (the filter params, then
 * LIMIT ? OFFSET ?), each row turned into an object by fn (ud: the rows
 * array).  Replies 200 with the page, or 503 when a store fails.
 */
void kf_list_query(struct kf_worker *w, struct kf_reply *rep, const struct kf_page *page,
		   const char *count_sql, const char *page_sql, const struct kf_db_param *filter,
		   size_t n, int (*fn)(void *ud, const struct kf_db_row *row));

/* A row callback for "SELECT COUNT(*) ...": *(int64_t *)ud = column 0. */
int kf_list_take_count(void *ud, const struct kf_db_row *row);

#endif
