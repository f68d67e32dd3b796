/*
 * frame.h - kefu's WebSocket protocol: parsing what clients send and
 * building what the relay sends (PROTOCOL.md is the reference).
 *
 * Client frames are JSON objects with a "type": ping, chat (content, and
 * for agents an optional "to" visitor key) or ack (seq).  Server frames
 * carry the seed's type, content and send_time plus ws_key, from and ip
 * where they apply.  Pure functions: no I/O, no global state.
 */
#ifndef KF_FRAME_H
#define KF_FRAME_H

#include "kf_compat.h"

#include <time.h>

#include "kf_key.h"

struct kf_buf;

enum kf_frame_type { KF_FRAME_PING, KF_FRAME_CHAT, KF_FRAME_ACK };

struct kf_frame {
	enum kf_frame_type type;
	const char *content;   /* chat: borrowed from the frame; NUL-terminated */
	size_t content_len;
	char to[KF_KEY_LEN + 1]; /* chat: "to"; ack: "ws_key"; "" when absent */
	int64_t seq;             /* ack */
	void *owner;             /* the parsed JSON, released by kf_frame_release */
};

/*
 * Parse one text message (len bytes, already known to be valid UTF-8).
 * max_content limits the chat content in bytes.  Returns 0, or -1 with a
 * short reason for the client in why (static string).  On success release
 * the frame with kf_frame_release().
 */
int kf_frame_parse(const char *text, size_t len, size_t max_content, struct kf_frame *out,
		   const char **why);
void kf_frame_release(struct kf_frame *f);

/* Fields of a server frame; NULL fields are left out. */
struct kf_frame_out {
	const char *type;    /* chat, connect, close, system, pong, error */
	const char *content;
	size_t content_len;  /* 0: strlen(content) */
	const char *from;    /* chat: the visitor's key or "agent" */
	const char *ws_key;  /* the visitor the frame is about */
	const char *ip;      /* connect: the visitor's address */
	int64_t seq;         /* chat: its number in the conversation (0: none) */
	const char *send_time; /* NULL: now */
};

/* Append the JSON of f, with send_time from now (local time) unless given, to out. */
void kf_frame_build(struct kf_buf *out, const struct kf_frame_out *f, time_t now);

/* "YYYY-MM-DD HH:MM:SS" in local time into buf (at least 20 bytes). */
void kf_frame_time(time_t t, char *buf, size_t size);

#endif
