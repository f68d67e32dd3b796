/*
 * history.c - each conversation reaches each client in seq order, exactly
 * once.  Frames come from two directions (replies to this node's chat
 * scripts, and other nodes through the pub/sub channel) and from the
 * history stream (PREFIX h:KEY) after a reconnect, so every connection
 * keeps, per conversation, the highest seq it has been sent: an older frame
 * is a duplicate and is dropped; a frame past a gap is held while the gap
 * is read back from the stream.
 */
#include "kf_compat.h"

#include <stdlib.h>
#include <time.h>

#include "frame.h"
#include "kf_json.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "relay.h"

/* Entries read from the stream per request. */
#define REPLAY_BATCH "200"
/* Frames held back per conversation before they are dropped and re-read. */
#define HELD_MAX 1000

struct replay {
	uint64_t conn_id;
	char key[KF_KEY_LEN + 1];
};

static struct kf_track *track(struct kf_conn *c, const char *key, bool create)
{
	struct kf_track *t;

	for (t = c->tracks; t; t = t->next)
		if (strcmp(t->key, key) == 0)
			return t;
	if (!create)
		return NULL;
	t = kf_xcalloc(1, sizeof(*t));
	snprintf(t->key, sizeof(t->key), "%s", key);
	t->next = c->tracks;
	c->tracks = t;
	return t;
}

static void free_held(struct kf_track *t)
{
	while (t->held) {
		struct kf_held *h = t->held;

		t->held = h->next;
		free(h);
	}
	t->nheld = 0;
}

void kf_history_forget(struct kf_conn *c, const char *key)
{
	struct kf_track *t;

	struct kf_track **p = &c->tracks;

	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	if (!*p)
		return;
	t = *p;
	*p = t->next;
	free_held(t);
	free(t);
}

void kf_history_release(struct kf_conn *c)
{
	while (c->tracks) {
		struct kf_track *t = c->tracks;

		c->tracks = t->next;
		free_held(t);
		free(t);
	}
}

/* Keep frame seq (sorted, no duplicates) until the gap before it is filled. */
static void hold(struct kf_track *t, int64_t seq, const char *frame, size_t len)
{
	struct kf_held **pp = &t->held;
	struct kf_held *h;

	while (*pp && (*pp)->seq < seq)
		pp = &(*pp)->next;
	if (*pp && (*pp)->seq == seq)
		return;
	if (frame && t->nheld >= HELD_MAX)
		return; /* it is in the history stream: the replay will bring it */
	h = kf_xmalloc(sizeof(*h) + len + 1);
	h->seq = seq;
	h->own = frame == NULL;
	h->len = len;
	if (frame)
		memcpy(h->frame, frame, len);
	h->frame[len] = '\0';
	h->next = *pp;
	*pp = h;
	t->nheld++;
}

static void replay(struct kf_conn *c, struct kf_track *t, bool initial);

/* Send what is held, in order, now that nothing is being read back. */
static void flush_held(struct kf_conn *c, struct kf_track *t)
{
	while (t->held) {
		struct kf_held *h = t->held;

		t->held = h->next;
		t->nheld--;
		if (h->seq > t->delivered) {
			if (h->seq > t->delivered + 1 && !h->own && !t->exhausted) {
				/* dropped while held (HELD_MAX): read the rest back */
				t->held = h;
				t->nheld++;
				replay(c, t, false);
				return;
			}
			if (!h->own)
				kf_conn_send(c, h->frame, h->len);
			t->delivered = h->seq;
		}
		free(h);
	}
}

/* Room left in c's send queue for replayed frames (keep some for live ones). */
static bool queue_has_room(const struct kf_conn *c)
{
	return c->queued < kf_relay.queue_max / 2;
}

static void on_replay(redisAsyncContext *ac, void *r, void *priv)
{
	struct replay *rp = priv;
	redisReply *reply = r;
	struct kf_conn *c = kf_route_by_id(rp->conn_id);
	struct kf_track *t = c ? track(c, rp->key, false) : NULL;
	bool more = false, advanced = false;

	(void)ac;
	if (!t)
		goto out;
	if (!reply || reply->type != REDIS_REPLY_ARRAY) {
		kf_warn("history of %.6s...: unable to read it back: %s", rp->key,
			reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "redis unavailable");
		t->replaying = false;
		flush_held(c, t);
		goto out;
	}
	for (size_t i = 0; i < reply->elements; i++) {
		const redisReply *e = reply->element[i];
		const redisReply *f;
		const char *from = "", *content = "", *st = "";
		size_t content_len = 0;
		int64_t seq;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		seq = strtoll(e->element[0]->str, NULL, 10);
		f = e->element[1];
		for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2) {
			const char *name = f->element[j]->str;
			const redisReply *v = f->element[j + 1];

			if (strcmp(name, "from") == 0)
				from = v->str;
			else if (strcmp(name, "content") == 0) {
				content = v->str;
				content_len = v->len;
			} else if (strcmp(name, "st") == 0)
				st = v->str;
		}
		if (seq <= t->delivered)
			continue;
		advanced = true;
		if (!queue_has_room(c)) {
			/* the client reads slower than history arrives: wait for room */
			t->paused = true;
			goto out;
		}
		/* on a gap refill the client's own messages are not sent back */
		if (t->initial || !((c->kind == KF_CONN_VISITOR && strcmp(from, c->key) == 0) ||
				    (c->kind == KF_CONN_AGENT && strcmp(from, "agent") == 0))) {
			struct kf_buf b = KF_BUF_INIT;
			struct json_object *o = json_object_new_object();

			kf_json_set_str(o, "type", "chat");
			kf_json_set_strn(o, "content", content, content_len);
			kf_json_set_str(o, "send_time", st);
			kf_json_set_str(o, "from", from);
			kf_json_set_str(o, "ws_key", t->key);
			kf_json_set_int(o, "seq", seq);
			kf_json_append(&b, o);
			json_object_put(o);
			kf_conn_send(c, b.data, b.len);
			kf_buf_release(&b);
		}
		t->delivered = seq;
	}
	more = reply->elements > 0 && (size_t)reply->elements >= (size_t)atoi(REPLAY_BATCH);
	if (more) {
		replay(c, t, t->initial);
		goto out;
	}
	t->replaying = false;
	t->initial = false;
	/* nothing more in the stream (trimmed past HistoryMax): accept the gap */
	t->exhausted = !advanced;
	flush_held(c, t);
	t->exhausted = false;
out:
	free(rp);
}

/* Read back the conversation after t->delivered. */
static void replay(struct kf_conn *c, struct kf_track *t, bool initial)
{
	struct replay *rp = kf_xcalloc(1, sizeof(*rp));
	char stream[128], start[48];
	const char *argv[6];
	size_t lens[6];

	rp->conn_id = c->id;
	memcpy(rp->key, t->key, sizeof(rp->key));
	snprintf(stream, sizeof(stream), "%sh:%s", kf_relay.prefix, t->key);
	snprintf(start, sizeof(start), "(%lld-0", (long long)t->delivered);
	argv[0] = "XRANGE";
	argv[1] = stream;
	argv[2] = start;
	argv[3] = "+";
	argv[4] = "COUNT";
	argv[5] = REPLAY_BATCH;
	for (int i = 0; i < 6; i++)
		lens[i] = strlen(argv[i]);
	t->replaying = true;
	t->initial = initial;
	if (!kf_bus_cmdargv(on_replay, rp, 6, argv, lens)) {
		kf_warn("history of %.6s...: redis unavailable, not replayed", t->key);
		t->replaying = false;
		flush_held(c, t);
		free(rp);
	}
}

void kf_history_resume(struct kf_conn *c)
{
	struct kf_track *t, *next;

	for (t = c->tracks; t; t = next) {
		next = t->next; /* replay may end in kf_history_forget of t */
		if (!t->paused || !queue_has_room(c))
			continue;
		t->paused = false;
		replay(c, t, t->initial);
	}
}

void kf_history_start(struct kf_conn *c, const char *key, int64_t delivered, int64_t last)
{
	struct kf_track *t = track(c, key, true);

	if (delivered < 0)
		delivered = 0;
	if (delivered > last)
		delivered = last;
	t->delivered = delivered;
	if (delivered < last && !t->replaying)
		replay(c, t, true);
}

void kf_history_deliver(struct kf_conn *c, const char *key, int64_t seq, const char *frame,
			size_t len)
{
	struct kf_track *t = track(c, key, true);

	if (c->kind == KF_CONN_VISITOR)
		c->last_chat = time(NULL); /* the conversation is alive, whoever spoke */

	if (t->replaying) {
		hold(t, seq, frame, len);
		return;
	}
	if (seq <= t->delivered)
		return;
	if (seq > t->delivered + 1) {
		hold(t, seq, frame, len);
		replay(c, t, false);
		return;
	}
	if (frame)
		kf_conn_send(c, frame, len);
	t->delivered = seq;
}

void kf_history_own(struct kf_conn *c, const char *key, int64_t seq)
{
	kf_history_deliver(c, key, seq, NULL, 0);
}
