/*
 * loadgen.c - kefu's benchmark load generator.
 *
 * One controller process forks --procs worker processes; each worker holds
 * its share of the WebSocket connections on its own epoll loop (a minimal
 * RFC 6455 client: handshake with Sec-WebSocket-Accept checked, masked
 * client frames, unmasked server frames, ping/pong, close).  A plain epoll
 * client rather than lws's client API because the load generator shares a
 * core with Redis and must cost as little per message as possible.
 *
 * Protocols (--proto):
 *   kefu   kefu's real protocol (PROTOCOL.md): visitors on
 *          /ws/api/link?ws_key=K, agents on /ws/admin/link?ws_key=T.
 *          Visitor keys come from POST /api/link through the web server
 *          (--keys rest) or from the same Lua script kefu-api runs, called
 *          directly in Redis (--keys redis, for large counts); agent keys
 *          always from kf_store_agent_register in Redis, just before each
 *          agent connects, since tickets are single-use and live 60 s (the script
 *          POST /admin/ws runs), one synthetic admin id per agent, since
 *          the REST call registers only the logged-in admin.
 *   node   tests/bench/peers/node-relay.mjs: the same paths and frames;
 *          visitor and agent of pair i both use ws_key=p<i>.
 *   nchan  Nchan pubsub: /ws?me=<own channel>&peer=<peer's channel>; a
 *          message is the raw content; pings are WebSocket pings.
 *
 * Every chat message carries "@@" + 16 hex digits of CLOCK_MONOTONIC
 * nanoseconds at the moment it is written; the receiver (in any worker: the
 * clock is system-wide) records the latency in a log-linear histogram
 * (1.6 % resolution).  A 1:1 pair is one visitor and the agent it is
 * assigned (kefu: [Relay] MaxVisitorsPerAgent = 1); both sides send.
 *
 * Phases, each bounded in time: connect the idle group, connect the chat
 * group, one ping per connection (answered), settle, sample the servers'
 * RSS and /proc/net/sockstat; then hold (--hold-sec), then step the total
 * chat rate (--rates) for --step-sec each, draining up to --drain-sec after
 * each step (either may be left out); then close everything (1000), exit.
 *
 * Output: a human-readable report on stdout, and machine-readable lines
 * starting with "R " (name value) and "S " (one per step, key=value).
 */
#define _GNU_SOURCE 1
#include "kf_compat.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_key.h"
#include "kf_redis.h"
#include "kf_store.h"

#define MAX_PROCS 16
#define MAX_URLS 8
#define MAX_PIDS 8
#define MAX_RATES 64
#define HIST_N 2560
#define RBUF 65536
#define CARRY_MAX (1 << 20)
#define WBUF_SOFT 16384

enum proto { P_KEFU, P_NODE, P_NCHAN };
enum role { R_VISITOR, R_AGENT };
enum cstate { C_NEW, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DONE };
enum group { G_IDLE, G_CHAT };
enum fail { F_CONNECT, F_HTTP, F_TIMEOUT, F_EOF, F_KEY, F_NKINDS };
static const char *const fail_names[F_NKINDS] = { "connect", "http", "timeout", "eof", "key" };

enum cmd { CMD_NONE, CMD_CONNECT, CMD_PING, CMD_STEP, CMD_CLOSE, CMD_EXIT };

/* ---- shared memory between the controller and the workers ---- */

struct slot {
	uint64_t ack_seq;            /* last command finished */
	uint64_t mint_ok, mint_ns;   /* keys minted, time spent */
	uint64_t ok[2], fail[2], fail_by[F_NKINDS];
	int64_t first_ns[2], last_ns[2];
	uint64_t ready[2];           /* open and paired, per group */
	uint64_t open_now, dropped;
	int last_close_code, last_http, last_errno;
	uint64_t pings, pongs;
	/* the current step */
	uint64_t sent, delivered, acks, errors, stray, skipped;
	uint64_t cpu_ns;             /* this worker's user+sys during the step */
	uint64_t hist[HIST_N];
	/* the reconnect storm (--storm-after) */
	uint64_t storm_dropped, storm_back, storm_failed;
	uint64_t stalled;
	uint64_t ag_acks, v_unique, v_dup, v_recovered, own_replay;
	uint64_t storm_hist[HIST_N];          /* ns from the drop to open again */
	char err_text[3][120];
	int nerr_text;
};

struct ctl {
	uint64_t seq;                /* bumped by the controller per command */
	int cmd;
	int group;
	int64_t start_ns, end_ns;    /* step window (CLOCK_MONOTONIC) */
	int64_t storm_ns;            /* the step drops and reconnects then (0: no) */
	int stall;                   /* this step: the stall candidates stop reading */
	double wrate[MAX_PROCS];     /* messages/s per worker for the step */
	struct slot slot[MAX_PROCS];
};

/* ---- options ---- */

struct url {
	char host[64];
	int port;
	struct sockaddr_in sa;
};

static struct {
	enum proto proto;
	struct url urls[MAX_URLS], aurls[MAX_URLS];
	int nurls, naurls;
	bool keys_redis;
	const char *http;
	const char *config;
	long pairs, idle;            /* pairs chatting; idle connections */
	int procs, nsrc, conc;
	double rates[MAX_RATES];
	int nrates;
	double step_sec, drain_sec, hold_sec, settle_sec, stop_p99_ms;
	int msg_bytes, ping_sec;
	const char *pid_names[MAX_PIDS];
	int pids[MAX_PIDS], npids;
	const char *label;
	double connect_timeout;
	double storm_after, storm_tail;
	double stall_pct;
	double trace_slow_ms;
} opt = {
	.proto = P_KEFU,
	.procs = 0,
	.nsrc = 8,
	.conc = 128,
	.step_sec = 5,
	.drain_sec = 2,
	.hold_sec = 0,
	.settle_sec = 2,
	.stop_p99_ms = 100,
	.msg_bytes = 32,
	.ping_sec = 20,
	.label = "run",
	.connect_timeout = 15,
	.storm_tail = 2,
};

static struct ctl *ctl;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static KF_NORETURN KF_PRINTF(1, 2) void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "loadgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void add(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* ---- histogram: 128 exact buckets, then 64 per octave ---- */

static int hist_idx(uint64_t v)
{
	int e;

	if (v < 128)
		return (int)v;
	e = 63 - __builtin_clzll(v) - 6; /* v >> e in [64, 128) */
	{
		int i = 128 + (e - 1) * 64 + (int)((v >> e) - 64);

		return i < HIST_N ? i : HIST_N - 1;
	}
}

static double hist_value(int i)
{
	int e, sub;

	if (i < 128)
		return i;
	e = (i - 128) / 64 + 1;
	sub = (i - 128) % 64 + 64;
	return ((double)sub + 0.5) * (double)(1ULL << e);
}

/* p in [0,1]: the value in ns (0 when empty). */
static double hist_pct(const uint64_t *h, double p)
{
	uint64_t total = 0, want, run = 0;

	for (int i = 0; i < HIST_N; i++)
		total += h[i];
	if (!total)
		return 0;
	want = (uint64_t)ceil(p * (double)total);
	if (want < 1)
		want = 1;
	for (int i = 0; i < HIST_N; i++) {
		run += h[i];
		if (run >= want)
			return hist_value(i);
	}
	return hist_value(HIST_N - 1);
}

static double hist_max(const uint64_t *h)
{
	for (int i = HIST_N - 1; i >= 0; i--)
		if (h[i])
			return hist_value(i);
	return 0;
}

/* ---- process samples ---- */

static long rss_kb(int pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
}

/* utime + stime of pid in ns (-1 when gone). */
static int64_t proc_cpu_ns(int pid)
{
	char path[64], buf[1024];
	FILE *f;
	size_t n;
	char *p;
	unsigned long long ut = 0, st = 0;
	long hz = sysconf(_SC_CLK_TCK);

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* after ") ": state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (1000000000ULL / (unsigned long long)hz));
}

/* TCP sockets in use and the kernel's TCP memory (pages) from sockstat. */
static void sockstat(long *inuse, long *mem_pages)
{
	char line[256];
	FILE *f = fopen("/proc/net/sockstat", "r");

	*inuse = *mem_pages = -1;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "TCP:", 4) == 0) {
			char *p = strstr(line, "inuse ");
			char *m = strstr(line, " mem ");

			if (p)
				*inuse = strtol(p + 6, NULL, 10);
			if (m)
				*mem_pages = strtol(m + 5, NULL, 10);
		}
	}
	fclose(f);
}

static uint64_t self_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_utime.tv_sec * 1000000000ULL + (uint64_t)ru.ru_utime.tv_usec * 1000 +
	       (uint64_t)ru.ru_stime.tv_sec * 1000000000ULL + (uint64_t)ru.ru_stime.tv_usec * 1000;
}

/* ======================================================================
 * worker
 * ====================================================================== */

struct conn {
	int fd;
	uint8_t role, state, group, ready;
	bool closing;
	int url;
	uint32_t src;
	int64_t t0;
	int64_t next_ping;
	char key[KF_KEY_LEN + 8];    /* visitor key, agent ticket, or pair id */
	char peer[KF_KEY_LEN + 8];   /* agent: its visitor's key; nchan: peer channel */
	char wskey[25];
	uint32_t mask_state;
	char *carry;
	uint32_t ncarry;
	char *wbuf;
	uint32_t wlen, woff;
	bool storm;                  /* dropped by the storm, reconnecting */
	bool stall_cand, stalled;    /* --stall-pct: may stop reading / has stopped */
	int64_t back_at;             /* when it was open again */
	int64_t vmax;                /* visitor: highest seq of an agent's chat */
};

struct worker {
	int id;
	int ep;
	struct conn *c;
	long n;                      /* connections */
	long first[2], count[2];     /* index range of each group */
	long cursor[2];              /* next to connect */
	long inflight;
	long *chat;                  /* indices of chat connections (senders) */
	long nchat, rr;
	struct slot *s;
	uint64_t seq_seen;
	int cmd;                     /* command in progress */
	int group;
	int64_t cmd_t0;
	double wrate;
	int64_t step_t0, step_t1;
	uint64_t step_sent;
	uint64_t cpu0;
	bool step_done;
	int64_t last_scan;
	char *rbuf;
	struct kf_redis *redis;
	struct kf_config *cfg;
	const char *prefix;
	long long admin_base;
	bool stormed;
	int64_t storm_t0;
	long storm_cursor;
};

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x ? x : 0x9e3779b9u;
}

static void conn_fail(struct worker *w, struct conn *c, enum fail why);
static void conn_dead(struct worker *w, struct conn *c, int code);

static void ep_mod(struct worker *w, struct conn *c, uint32_t ev)
{
	if (c->stalled)
		ev &= ~(uint32_t)EPOLLIN; /* a stalled reader reads nothing */
	struct epoll_event e = { .events = ev, .data.u64 = (uint64_t)(c - w->c) };

	epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Queue or write bytes; false when the connection died. */
static bool conn_write(struct worker *w, struct conn *c, const void *data, size_t len)
{
	ssize_t n = 0;

	if (c->wlen == c->woff) {
		n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				conn_dead(w, c, -errno);
				return false;
			}
			n = 0;
		}
		if ((size_t)n == len)
			return true;
	}
	{
		size_t rest = len - (size_t)n;
		size_t have = c->wlen - c->woff;

		if (c->woff && have)
			memmove(c->wbuf, c->wbuf + c->woff, have);
		c->wlen = (uint32_t)have;
		c->woff = 0;
		c->wbuf = realloc(c->wbuf, have + rest);
		if (!c->wbuf)
			die("out of memory");
		memcpy(c->wbuf + have, (const char *)data + n, rest);
		c->wlen += (uint32_t)rest;
		ep_mod(w, c, EPOLLIN | EPOLLOUT);
	}
	return true;
}

static void flush_out(struct worker *w, struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_dead(w, c, -errno);
			return;
		}
		c->woff += (uint32_t)n;
	}
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
	ep_mod(w, c, EPOLLIN);
}

/* A masked client frame. */
static bool ws_send(struct worker *w, struct conn *c, int opcode, const char *p, size_t len)
{
	unsigned char hdr[14];
	char stackbuf[1024];
	char *out = stackbuf;
	size_t h = 0;
	uint32_t m = xorshift(&c->mask_state);
	unsigned char mk[4] = { (unsigned char)m, (unsigned char)(m >> 8),
				(unsigned char)(m >> 16), (unsigned char)(m >> 24) };
	bool ok;

	hdr[h++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		hdr[h++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (unsigned char)(len >> 8);
		hdr[h++] = (unsigned char)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(hdr + h, mk, 4);
	h += 4;
	if (h + len > sizeof(stackbuf)) {
		out = malloc(h + len);
		if (!out)
			die("out of memory");
	}
	memcpy(out, hdr, h);
	for (size_t i = 0; i < len; i++)
		out[h + i] = (char)(p[i] ^ mk[i & 3]);
	ok = conn_write(w, c, out, h + len);
	if (out != stackbuf)
		free(out);
	return ok;
}

static void send_ping(struct worker *w, struct conn *c)
{
	static const char ping[] = "{\"type\":\"ping\"}";

	if (opt.proto == P_NCHAN)
		ws_send(w, c, 0x9, "kp", 2);
	else
		ws_send(w, c, 0x1, ping, sizeof(ping) - 1);
	add(&w->s->pings, 1);
}

static void close_fd(struct worker *w, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free(c->carry);
	c->carry = NULL;
	c->ncarry = 0;
	free(c->wbuf);
	c->wbuf = NULL;
	c->wlen = c->woff = 0;
}

static void conn_fail(struct worker *w, struct conn *c, enum fail why)
{
	if (c->state == C_CONNECTING || c->state == C_HANDSHAKE)
		w->inflight--;
	close_fd(w, c);
	c->state = C_DONE;
	add(&w->s->fail[c->group], 1);
	add(&w->s->fail_by[why], 1);
	if (c->storm)
		add(&w->s->storm_failed, 1);
}

/* An open connection ended (by the server, or an error). */
static void conn_dead(struct worker *w, struct conn *c, int code)
{
	if (c->state != C_OPEN) {
		conn_fail(w, c, F_EOF);
		return;
	}
	close_fd(w, c);
	c->state = C_DONE;
	if (c->ready)
		add(&w->s->ready[c->group], (uint64_t)-1);
	c->ready = 0;
	add(&w->s->open_now, (uint64_t)-1);
	if (!c->closing) {
		add(&w->s->dropped, 1);
		w->s->last_close_code = code;
	}
}

static void set_ready(struct worker *w, struct conn *c)
{
	if (c->ready)
		return;
	c->ready = 1;
	add(&w->s->ready[c->group], 1);
}

/* ---- starting a connection ---- */

static const char *conn_path(struct conn *c, char *buf, size_t size)
{
	switch (opt.proto) {
	case P_NCHAN:
		snprintf(buf, size, "/ws?me=%s&peer=%s", c->key, c->peer);
		break;
	default:
		if (c->role == R_VISITOR && c->vmax > 0 && opt.proto == P_KEFU)
			snprintf(buf, size, "/ws/api/link?ws_key=%s&last_seq=%lld", c->key,
				 (long long)c->vmax);
		else
			snprintf(buf, size, "%s?ws_key=%s",
				 c->role == R_VISITOR ? "/ws/api/link" : "/ws/admin/link", c->key);
	}
	return buf;
}

static const struct url *conn_url(const struct conn *c)
{
	if (c->role == R_AGENT && opt.naurls)
		return &opt.aurls[c->url % opt.naurls];
	return &opt.urls[c->url % opt.nurls];
}

static void conn_start(struct worker *w, struct conn *c)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	const struct url *u = conn_url(c);
	int one = 1;
	struct epoll_event e;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	c->t0 = now_ns();
	if (w->s->first_ns[c->group] == 0)
		w->s->first_ns[c->group] = c->t0;
	c->state = C_CONNECTING;
	w->inflight++;
	if (fd < 0) {
		w->s->last_errno = errno;
		conn_fail(w, c, F_CONNECT);
		return;
	}
	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (c->stall_cand) {
		/* a small window, so a stalled reader backs up into the server soon */
		int rcv = 4096;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	}
	src.sin_addr.s_addr = htonl(0x7f000002u + c->src);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
		w->s->last_errno = errno;
		conn_fail(w, c, F_CONNECT);
		return;
	}
	e.events = EPOLLOUT;
	e.data.u64 = (uint64_t)(c - w->c);
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
		w->s->last_errno = errno;
		conn_fail(w, c, F_CONNECT);
		return;
	}
	if (connect(fd, (const struct sockaddr *)&u->sa, sizeof(u->sa)) != 0 &&
	    errno != EINPROGRESS) {
		w->s->last_errno = errno;
		conn_fail(w, c, F_CONNECT);
	}
}

static void make_wskey(struct conn *c)
{
	uint8_t raw[16];

	for (int i = 0; i < 16; i += 4) {
		uint32_t r = xorshift(&c->mask_state);

		memcpy(raw + i, &r, 4);
	}
	base64_encode_raw(c->wskey, 16, raw);
	c->wskey[24] = '\0';
}

static void on_connected(struct worker *w, struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	char req[512], path[200];
	const struct url *u = conn_url(c);
	int n;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
		w->s->last_errno = err;
		conn_fail(w, c, F_CONNECT);
		return;
	}
	make_wskey(c);
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n",
		     conn_path(c, path, sizeof(path)), u->host, u->port, c->wskey);
	c->state = C_HANDSHAKE;
	ep_mod(w, c, EPOLLIN);
	if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		w->s->last_errno = errno;
		conn_fail(w, c, F_CONNECT);
	}
}

static void expected_accept(const char *wskey, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	struct sha1_ctx ctx;
	uint8_t d[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, strlen(wskey), (const uint8_t *)wskey);
	sha1_update(&ctx, sizeof(guid) - 1, (const uint8_t *)guid);
	sha1_digest(&ctx, sizeof(d), d);
	base64_encode_raw(out, sizeof(d), d);
	out[28] = '\0';
}

/* ---- frames from the server ---- */

/* The string value of "name":"..." in a JSON text (no escapes expected). */
static bool json_str(const char *p, size_t n, const char *name, const char **v, size_t *vlen)
{
	char pat[32];
	size_t pl = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", name);
	const char *q = memmem(p, n, pat, pl), *end = p + n, *e;

	if (!q)
		return false;
	q += pl;
	while (q < end && *q == ' ')
		q++;
	if (q >= end || *q != '"')
		return false;
	q++;
	e = memchr(q, '"', (size_t)(end - q));
	if (!e)
		return false;
	*v = q;
	*vlen = (size_t)(e - q);
	return true;
}

static bool is_step_live(struct worker *w)
{
	return w->cmd == CMD_STEP;
}

/* The send time in a message's "@@" + 16 hex digits marker. */
static bool marker_ts(const char *p, size_t n, uint64_t *ts)
{
	const char *m = memmem(p, n, "@@", 2);

	*ts = 0;
	if (!m || (size_t)(p + n - m) < 18)
		return false;
	for (int i = 2; i < 18; i++) {
		char ch = m[i];
		unsigned d = ch >= '0' && ch <= '9' ? (unsigned)(ch - '0')
			   : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10) : 99;

		if (d > 15)
			return false;
		*ts = *ts << 4 | d;
	}
	return true;
}

static void on_marker(struct worker *w, const char *p, size_t n)
{
	uint64_t ts;
	int64_t now;

	if (!marker_ts(p, n, &ts))
		return;
	if (!is_step_live(w)) {
		add(&w->s->stray, 1);
		return;
	}
	now = now_ns();
	add(&w->s->delivered, 1);
	add(&w->s->hist[hist_idx(now > (int64_t)ts ? (uint64_t)(now - (int64_t)ts) : 0)], 1);
	/* --trace-slow-ms: when each slow message was sent, to find what stalls */
	if (opt.trace_slow_ms > 0 && (double)(now - (int64_t)ts) > opt.trace_slow_ms * 1e6)
		fprintf(stderr, "slow: sent at %.3f ms (CLOCK_MONOTONIC), took %.3f ms\n",
			(double)ts / 1e6, (double)(now - (int64_t)ts) / 1e6);
}

/* The integer value of "name":N in a JSON text (-1 when absent). */
static long long json_int(const char *p, size_t n, const char *name)
{
	char pat[32];
	size_t pl = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", name);
	const char *q = memmem(p, n, pat, pl);
	long long v = 0;

	if (!q)
		return -1;
	for (q += pl; q < p + n && *q >= '0' && *q <= '9'; q++)
		v = v * 10 + (*q - '0');
	return v;
}

/*
 * A chat frame on a chatting visitor during the storm step: an agent's
 * message with a seq above what it has seen is new (in order, exactly
 * once), else a duplicate; its own messages replayed are counted apart.
 * New ones sent before the visitor was back were recovered by the replay.
 */
static void storm_chat(struct worker *w, struct conn *c, const char *p, size_t n)
{
	const char *f;
	size_t fl;
	uint64_t ts;
	long long seq = json_int(p, n, "seq");

	if (!is_step_live(w) || seq < 0)
		return;
	if (!json_str(p, n, "from", &f, &fl) || fl != 5 || memcmp(f, "agent", 5) != 0) {
		add(&w->s->own_replay, 1);
		return;
	}
	if (seq <= c->vmax) {
		add(&w->s->v_dup, 1);
		return;
	}
	c->vmax = seq;
	add(&w->s->v_unique, 1);
	if (c->back_at && marker_ts(p, n, &ts) && (int64_t)ts < c->back_at)
		add(&w->s->v_recovered, 1);
}

static void on_text(struct worker *w, struct conn *c, const char *p, size_t n)
{
	const char *t, *v;
	size_t tl, vl;

	if (opt.proto == P_NCHAN) {
		on_marker(w, p, n);
		return;
	}
	if (!json_str(p, n, "type", &t, &tl)) {
		on_marker(w, p, n);
		return;
	}
	if (tl == 4 && memcmp(t, "chat", 4) == 0) {
		on_marker(w, p, n);
		if (opt.storm_after > 0 && c->role == R_VISITOR && c->group == G_CHAT)
			storm_chat(w, c, p, n);
	} else if (tl == 3 && memcmp(t, "ack", 3) == 0) {
		add(&w->s->acks, 1);
		if (opt.storm_after > 0 && c->role == R_AGENT && c->group == G_CHAT && is_step_live(w))
			add(&w->s->ag_acks, 1);
	} else if (tl == 4 && memcmp(t, "pong", 4) == 0) {
		add(&w->s->pongs, 1);
	} else if (tl == 7 && memcmp(t, "connect", 7) == 0) {
		if (c->role == R_AGENT) {
			if (!c->peer[0] && json_str(p, n, "ws_key", &v, &vl) && vl < sizeof(c->peer)) {
				memcpy(c->peer, v, vl);
				c->peer[vl] = '\0';
			}
			if (c->peer[0])
				set_ready(w, c);
		} else {
			set_ready(w, c);
		}
	} else if (tl == 5 && memcmp(t, "error", 5) == 0) {
		add(&w->s->errors, 1);
		if (w->s->nerr_text < 3) {
			snprintf(w->s->err_text[w->s->nerr_text], sizeof(w->s->err_text[0]), "%.*s",
				 (int)(n > 110 ? 110 : n), p);
			w->s->nerr_text++;
		}
	} else if (tl == 5 && memcmp(t, "close", 5) == 0) {
		if (c->role == R_AGENT) /* its visitor left */
			c->peer[0] = '\0';
	}
}

/*
 * Parse whole frames in p[0..n); returns bytes consumed.  May close c
 * (state C_DONE).
 */
static size_t parse_frames(struct worker *w, struct conn *c, const char *p, size_t n)
{
	size_t off = 0;

	while (c->state == C_OPEN && n - off >= 2) {
		const unsigned char *b = (const unsigned char *)p + off;
		int op = b[0] & 0x0f;
		uint64_t len = b[1] & 0x7f;
		size_t h = 2;

		if (len == 126) {
			if (n - off < 4)
				break;
			len = (uint64_t)b[2] << 8 | b[3];
			h = 4;
		} else if (len == 127) {
			if (n - off < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | b[2 + i];
			h = 10;
		}
		if (b[1] & 0x80)
			h += 4; /* a masked server frame: not expected, skip the key */
		if (len > CARRY_MAX) {
			conn_dead(w, c, -1009);
			return n;
		}
		if (n - off < h + len)
			break;
		{
			const char *pl = p + off + h;

			switch (op) {
			case 0x0: /* continuation: scan it as text */
			case 0x1:
			case 0x2:
				on_text(w, c, pl, (size_t)len);
				break;
			case 0x8: {
				int code = len >= 2 ? ((unsigned char)pl[0] << 8 | (unsigned char)pl[1]) : 1005;

				if (!c->closing)
					ws_send(w, c, 0x8, pl, len >= 2 ? 2 : 0);
				conn_dead(w, c, code);
				return n;
			}
			case 0x9:
				ws_send(w, c, 0xA, pl, (size_t)len);
				break;
			case 0xA:
				add(&w->s->pongs, 1);
				break;
			default:
				break;
			}
		}
		off += h + (size_t)len;
	}
	return off;
}

/* Bytes arrived during the handshake (in c->carry). */
static void on_handshake_data(struct worker *w, struct conn *c)
{
	char *end = memmem(c->carry, c->ncarry, "\r\n\r\n", 4);
	char accept[29];
	const char *a;
	int status;
	size_t hl, rest;

	if (!end) {
		if (c->ncarry > 8192)
			conn_fail(w, c, F_HTTP);
		return;
	}
	hl = (size_t)(end - c->carry) + 4;
	if (sscanf(c->carry, "HTTP/1.1 %d", &status) != 1)
		status = 0;
	if (status != 101) {
		w->s->last_http = status;
		conn_fail(w, c, F_HTTP);
		return;
	}
	expected_accept(c->wskey, accept);
	c->carry[hl - 1] = '\0';
	a = strcasestr(c->carry, "\nSec-WebSocket-Accept:");
	if (a) {
		a += 22;
		while (*a == ' ')
			a++;
	}
	if (!a || strncmp(a, accept, 28) != 0) {
		w->s->last_http = -101;
		conn_fail(w, c, F_HTTP);
		return;
	}
	c->state = C_OPEN;
	w->inflight--;
	add(&w->s->ok[c->group], 1);
	add(&w->s->open_now, 1);
	w->s->last_ns[c->group] = now_ns();
	if (c->storm && !c->back_at) {
		c->back_at = now_ns();
		add(&w->s->storm_back, 1);
		add(&w->s->storm_hist[hist_idx((uint64_t)(c->back_at - w->storm_t0))], 1);
	}
	c->next_ping = now_ns() + (int64_t)opt.ping_sec * 1000000000 +
		       (int64_t)(xorshift(&c->mask_state) % 1000) * 1000000 * opt.ping_sec;
	if (opt.proto == P_NCHAN)
		set_ready(w, c);
	rest = c->ncarry - hl;
	if (rest) {
		size_t used = parse_frames(w, c, c->carry + hl, rest);

		if (c->state != C_OPEN)
			return;
		memmove(c->carry, c->carry + hl + used, rest - used);
		c->ncarry = (uint32_t)(rest - used);
	} else {
		c->ncarry = 0;
	}
	if (!c->ncarry) {
		free(c->carry);
		c->carry = NULL;
	}
}

static void carry_add(struct conn *c, const char *p, size_t n)
{
	c->carry = realloc(c->carry, c->ncarry + n + 1);
	if (!c->carry)
		die("out of memory");
	memcpy(c->carry + c->ncarry, p, n);
	c->ncarry += (uint32_t)n;
	c->carry[c->ncarry] = '\0';
}

static void on_readable(struct worker *w, struct conn *c)
{
	ssize_t n = recv(c->fd, w->rbuf, RBUF, MSG_DONTWAIT);

	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_dead(w, c, n == 0 ? 1006 : -errno);
		return;
	}
	if (c->state == C_HANDSHAKE) {
		carry_add(c, w->rbuf, (size_t)n);
		on_handshake_data(w, c);
		return;
	}
	if (c->state != C_OPEN)
		return;
	if (c->ncarry) {
		size_t used;

		carry_add(c, w->rbuf, (size_t)n);
		used = parse_frames(w, c, c->carry, c->ncarry);
		if (c->state != C_OPEN)
			return;
		if (used == c->ncarry) {
			free(c->carry);
			c->carry = NULL;
			c->ncarry = 0;
		} else {
			memmove(c->carry, c->carry + used, c->ncarry - used);
			c->ncarry -= (uint32_t)used;
		}
		if (c->ncarry > CARRY_MAX)
			conn_dead(w, c, -1009);
	} else {
		size_t used = parse_frames(w, c, w->rbuf, (size_t)n);

		if (c->state == C_OPEN && used < (size_t)n)
			carry_add(c, w->rbuf + used, (size_t)n - used);
	}
}

/* ---- keys ---- */

struct http_conn {
	int fd;
	struct sockaddr_in sa;
	char host[64];
	int port;
};

static bool parse_url(const char *s, const char *scheme, char *host, size_t hsize, int *port)
{
	size_t sl = strlen(scheme);
	const char *h, *colon;
	char *end;
	long p;

	if (strncmp(s, scheme, sl) != 0)
		return false;
	h = s + sl;
	colon = strchr(h, ':');
	if (!colon || (size_t)(colon - h) >= hsize)
		return false;
	memcpy(host, h, (size_t)(colon - h));
	host[colon - h] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (p <= 0 || p > 65535 || (*end && *end != '/'))
		return false;
	*port = (int)p;
	return true;
}

static bool http_connect(struct http_conn *h)
{
	struct timeval tv = { 5, 0 };

	h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->fd < 0)
		return false;
	setsockopt(h->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(h->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(h->fd, (struct sockaddr *)&h->sa, sizeof(h->sa)) != 0) {
		close(h->fd);
		h->fd = -1;
		return false;
	}
	return true;
}

/* POST /api/link on a keep-alive connection; the key into key.  0 or -1. */
static int http_link(struct http_conn *h, char key[KF_KEY_LEN + 1])
{
	char req[256], buf[8192];
	int n, tries;

	n = snprintf(req, sizeof(req),
		     "POST /api/link HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: 0\r\n\r\n", h->host,
		     h->port);
	for (tries = 0; tries < 2; tries++) {
		size_t got = 0;
		long clen = -1;
		char *hend = NULL;

		if (h->fd < 0 && !http_connect(h))
			return -1;
		if (send(h->fd, req, (size_t)n, MSG_NOSIGNAL) != n)
			goto retry;
		for (;;) {
			ssize_t r = recv(h->fd, buf + got, sizeof(buf) - 1 - got, 0);

			if (r <= 0)
				goto retry;
			got += (size_t)r;
			buf[got] = '\0';
			if (!hend && (hend = strstr(buf, "\r\n\r\n"))) {
				const char *cl = strcasestr(buf, "\r\nContent-Length:");

				clen = cl ? strtol(cl + 17, NULL, 10) : -1;
				if (clen < 0)
					return -1;
			}
			if (hend && got >= (size_t)(hend - buf) + 4 + (size_t)clen)
				break;
			if (got >= sizeof(buf) - 1)
				return -1;
		}
		{
			const char *v;
			size_t vl;
			int status = 0;

			sscanf(buf, "HTTP/1.1 %d", &status);
			if (status != 200 || !json_str(hend + 4, (size_t)clen, "ws_key", &v, &vl) ||
			    vl != KF_KEY_LEN) {
				fprintf(stderr, "loadgen: POST /api/link answered %d: %.200s\n", status,
					hend + 4);
				return -1;
			}
			memcpy(key, v, vl);
			key[vl] = '\0';
			if (strcasestr(buf, "\r\nConnection: close")) {
				close(h->fd);
				h->fd = -1;
			}
			return 0;
		}
retry:
		if (h->fd >= 0)
			close(h->fd);
		h->fd = -1;
	}
	return -1;
}

/* A fresh single-use ticket for agent connection i (a synthetic admin id). */
static int agent_ticket(struct worker *w, long i, char key[KF_KEY_LEN + 1])
{
	/* admin_id is an unsigned INT in MySQL: stay below 2^32 */
	long long id = w->admin_base + (long long)w->id * 40000LL + i;
	char name[32];

	snprintf(name, sizeof(name), "bench-%lld", id);
	return kf_store_agent_register(w->redis, w->prefix, id, name,
				       (long)kf_config_int(w->cfg, "Relay", "AgentKeyTtlSec"), key);
}

/* Mint keys for one group of this worker's connections.  false: give up. */
static bool mint_keys(struct worker *w, int g)
{
	long lo = w->first[g], hi = lo + w->count[g];
	int64_t t0 = now_ns();
	struct http_conn hc = { .fd = -1 };
	long pair_base;
	bool ok = true;

	if (opt.proto != P_KEFU) {
		/* pairs numbered across workers: group offset + this worker's share */
		for (long i = lo; i < hi; i++) {
			struct conn *c = &w->c[i];
			long pair = (i - lo) / 2;

			pair_base = (long)w->id * 10000000L + (g == G_CHAT ? 5000000L : 0);
			if (opt.proto == P_NODE) {
				snprintf(c->key, sizeof(c->key), "p%ld", pair_base + pair);
			} else {
				snprintf(c->key, sizeof(c->key), "%c%ld", c->role == R_VISITOR ? 'v' : 'a',
					 pair_base + pair);
				snprintf(c->peer, sizeof(c->peer), "%c%ld",
					 c->role == R_VISITOR ? 'a' : 'v', pair_base + pair);
			}
		}
		return true;
	}
	if (!opt.keys_redis) {
		if (!parse_url(opt.http, "http://", hc.host, sizeof(hc.host), &hc.port))
			die("--http must be http://HOST:PORT");
		hc.sa.sin_family = AF_INET;
		hc.sa.sin_port = htons((uint16_t)hc.port);
		inet_pton(AF_INET, hc.host, &hc.sa.sin_addr);
	}
	for (long i = lo; i < hi && ok; i++) {
		struct conn *c = &w->c[i];
		char key[KF_KEY_LEN + 1];
		int rc;

		if (c->role == R_AGENT) {
			continue; /* single-use tickets live 60 s: taken just before connecting */
		} else if (opt.keys_redis) {
			rc = kf_store_visitor_issue(
				w->redis, w->prefix, "127.0.0.1",
				(long)kf_config_int(w->cfg, "Relay", "VisitorKeyTtlSec"),
				(long)kf_config_int(w->cfg, "Websocket", "MaxConnection"), 0, time(NULL), key);
		} else {
			rc = http_link(&hc, key);
		}
		if (rc != 0) {
			add(&w->s->fail_by[F_KEY], 1);
			c->state = C_DONE;
			add(&w->s->fail[g], 1);
			if (ld(&w->s->fail_by[F_KEY]) > 20)
				ok = false;
			continue;
		}
		memcpy(c->key, key, sizeof(key));
		add(&w->s->mint_ok, 1);
	}
	if (hc.fd >= 0)
		close(hc.fd);
	add(&w->s->mint_ns, (uint64_t)(now_ns() - t0));
	if (!ok)
		for (long i = lo; i < hi; i++)
			if (w->c[i].state == C_NEW) {
				w->c[i].state = C_DONE;
				add(&w->s->fail[g], 1);
				add(&w->s->fail_by[F_KEY], 1);
			}
	return ok;
}

/* ---- the worker's commands ---- */

static void finish_cmd(struct worker *w)
{
	__atomic_store_n(&w->s->ack_seq, w->seq_seen, __ATOMIC_RELEASE);
	w->cmd = CMD_NONE;
}

static void start_cmd(struct worker *w)
{
	uint64_t seq = __atomic_load_n(&ctl->seq, __ATOMIC_ACQUIRE);

	if (seq == w->seq_seen)
		return;
	w->seq_seen = seq;
	w->cmd = ctl->cmd;
	w->cmd_t0 = now_ns();
	switch (w->cmd) {
	case CMD_CONNECT:
		w->group = ctl->group;
		w->cursor[w->group] = w->first[w->group];
		mint_keys(w, w->group);
		break;
	case CMD_PING:
		for (long i = 0; i < w->n; i++)
			if (w->c[i].state == C_OPEN)
				send_ping(w, &w->c[i]);
		break;
	case CMD_STEP:
		w->s->sent = w->s->delivered = w->s->acks = w->s->errors = 0;
		w->s->stray = w->s->skipped = 0;
		memset(w->s->hist, 0, sizeof(w->s->hist));
		w->wrate = ctl->wrate[w->id];
		w->step_t0 = ctl->start_ns;
		w->step_t1 = ctl->end_ns;
		w->step_sent = 0;
		w->step_done = false;
		w->cpu0 = self_cpu_ns();
		w->s->cpu_ns = 0;
		if (ctl->stall)
			for (long i = 0; i < w->n; i++) {
				struct conn *c = &w->c[i];

				if (c->stall_cand && c->state == C_OPEN && !c->stalled) {
					c->stalled = true;
					ep_mod(w, c, c->wlen > c->woff ? EPOLLOUT : 0);
					add(&w->s->stalled, 1);
				}
			}
		/* the chat senders: open, paired connections of the chat group */
		w->nchat = 0;
		for (long i = w->first[G_CHAT]; i < w->first[G_CHAT] + w->count[G_CHAT]; i++)
			if (w->c[i].state == C_OPEN && w->c[i].ready)
				w->chat[w->nchat++] = i;
		break;
	case CMD_CLOSE:
		for (long i = 0; i < w->n; i++) {
			struct conn *c = &w->c[i];

			if (c->state == C_OPEN) {
				c->closing = true;
				ws_send(w, c, 0x8, "\x03\xe8", 2);
				if (c->stalled) /* it reads nothing: no answer to wait for */
					conn_dead(w, c, 1000);
			} else if (c->state == C_CONNECTING || c->state == C_HANDSHAKE) {
				conn_fail(w, c, F_TIMEOUT);
			}
		}
		break;
	default:
		break;
	}
}

static void send_chat(struct worker *w, struct conn *c)
{
	char content[512], frame[768];
	int64_t t = now_ns();
	int n, fl;

	n = snprintf(content, sizeof(content), "@@%016" PRIx64 "~", (uint64_t)t);
	while (n < opt.msg_bytes && n < (int)sizeof(content) - 1)
		content[n++] = 'x';
	content[n] = '\0';
	if (opt.proto == P_NCHAN) {
		ws_send(w, c, 0x1, content, (size_t)n);
	} else {
		if (c->role == R_AGENT)
			fl = snprintf(frame, sizeof(frame),
				      "{\"type\":\"chat\",\"content\":\"%s\",\"to\":\"%s\"}", content,
				      c->peer);
		else
			fl = snprintf(frame, sizeof(frame), "{\"type\":\"chat\",\"content\":\"%s\"}",
				      content);
		ws_send(w, c, 0x1, frame, (size_t)fl);
	}
	add(&w->s->sent, 1);
}

/*
 * The storm: every idle connection and every chatting visitor of this
 * worker is reset at once (no close frame: a dropped connection), then all
 * reconnect with the same keys (kefu visitors with last_seq; kefu agents
 * with fresh tickets, since theirs are single-use).
 */
static void storm_drop(struct worker *w, int64_t now)
{
	struct linger lg = { 1, 0 };

	w->stormed = true;
	w->storm_t0 = now;
	w->storm_cursor = 0;
	for (long i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];

		if (c->state != C_OPEN || (c->group == G_CHAT && c->role != R_VISITOR))
			continue;
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close_fd(w, c);
		if (c->ready)
			add(&w->s->ready[c->group], (uint64_t)-1);
		c->ready = 0;
		add(&w->s->open_now, (uint64_t)-1);
		c->state = C_NEW;
		c->storm = true;
		c->back_at = 0;
		add(&w->s->storm_dropped, 1);
	}
}

static void storm_reconnect(struct worker *w)
{
	while (w->inflight < opt.conc && w->storm_cursor < w->n) {
		long i = w->storm_cursor++;
		struct conn *c = &w->c[i];
		char key[KF_KEY_LEN + 1];

		if (!c->storm || c->state != C_NEW)
			continue;
		if (opt.proto == P_KEFU && c->role == R_AGENT) {
			if (agent_ticket(w, i, key) != 0) {
				c->state = C_DONE;
				add(&w->s->storm_failed, 1);
				add(&w->s->fail_by[F_KEY], 1);
				continue;
			}
			memcpy(c->key, key, sizeof(key));
		}
		conn_start(w, c);
	}
}

static void run_step(struct worker *w)
{
	int64_t now = now_ns();
	uint64_t due;
	long budget = 4000;

	if (w->step_done)
		return;
	if (now < w->step_t0)
		return;
	w->step_t1 = __atomic_load_n(&ctl->end_ns, __ATOMIC_RELAXED); /* may be moved */
	if (ctl->storm_ns && !w->stormed && now >= ctl->storm_ns)
		storm_drop(w, now);
	if (w->stormed)
		storm_reconnect(w);
	if (now >= w->step_t1 || !w->nchat) {
		w->s->cpu_ns = self_cpu_ns() - w->cpu0;
		w->step_done = true;
		finish_cmd(w);
		w->cmd = CMD_STEP; /* still counting deliveries until the next command */
		return;
	}
	due = (uint64_t)((double)(now - w->step_t0) * w->wrate / 1e9);
	while (w->step_sent < due && budget-- > 0) {
		long tries = 0;
		struct conn *c;

		do {
			c = &w->c[w->chat[w->rr]];
			w->rr = (w->rr + 1) % w->nchat;
		} while ((c->state != C_OPEN || !c->ready || c->wlen - c->woff > WBUF_SOFT) &&
			 ++tries < w->nchat);
		if (tries >= w->nchat) {
			add(&w->s->skipped, due - w->step_sent);
			w->step_sent = due;
			break;
		}
		send_chat(w, c);
		w->step_sent++;
	}
}

static void run_connect(struct worker *w)
{
	int g = w->group;
	long end = w->first[g] + w->count[g];

	while (w->inflight < opt.conc && w->cursor[g] < end) {
		long i = w->cursor[g]++;
		struct conn *c = &w->c[i];
		char key[KF_KEY_LEN + 1];

		if (c->state != C_NEW)
			continue;
		if (opt.proto == P_KEFU && c->role == R_AGENT) {
			if (agent_ticket(w, i, key) != 0) {
				c->state = C_DONE;
				add(&w->s->fail[g], 1);
				add(&w->s->fail_by[F_KEY], 1);
				continue;
			}
			memcpy(c->key, key, sizeof(key));
		}
		conn_start(w, c);
	}
	if (w->cursor[g] >= end && w->inflight == 0)
		finish_cmd(w);
}

/* Once a second: handshake timeouts, pings. */
static void scan(struct worker *w, int64_t now)
{
	int64_t tmo = (int64_t)(opt.connect_timeout * 1e9);

	for (long i = 0; i < w->n; i++) {
		struct conn *c = &w->c[i];

		if ((c->state == C_CONNECTING || c->state == C_HANDSHAKE) && now - c->t0 > tmo)
			conn_fail(w, c, F_TIMEOUT);
		else if (c->state == C_OPEN && !c->closing && now >= c->next_ping) {
			send_ping(w, c);
			c->next_ping = now + (int64_t)opt.ping_sec * 1000000000;
		}
	}
}

static void worker_run(struct worker *w)
{
	struct epoll_event ev[512];
	int64_t close_t0 = 0;

	for (;;) {
		int timeout = w->cmd == CMD_STEP && !w->step_done ? 1 : 10;
		int n = epoll_wait(w->ep, ev, 512, timeout);
		int64_t now;

		for (int i = 0; i < n; i++) {
			struct conn *c = &w->c[ev[i].data.u64];

			if (c->fd < 0)
				continue;
			if (c->state == C_CONNECTING) {
				if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
					on_connected(w, c);
				continue;
			}
			if (c->stalled && (ev[i].events & (EPOLLERR | EPOLLHUP))) {
				conn_dead(w, c, 1006);
				continue;
			}
			if (!c->stalled && (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				on_readable(w, c);
			if (c->fd >= 0 && (ev[i].events & EPOLLOUT))
				flush_out(w, c);
		}
		now = now_ns();
		if (w->cmd == CMD_NONE || (w->cmd == CMD_STEP && w->step_done))
			start_cmd(w);
		switch (w->cmd) {
		case CMD_CONNECT:
			run_connect(w);
			break;
		case CMD_PING:
			/* answered, or 20 s */
			if (ld(&w->s->pongs) >= ld(&w->s->pings) || now - w->cmd_t0 > 20000000000LL)
				finish_cmd(w);
			break;
		case CMD_STEP:
			run_step(w);
			break;
		case CMD_CLOSE: {
			long open = 0;

			if (!close_t0)
				close_t0 = now;
			for (long i = 0; i < w->n; i++)
				open += w->c[i].state == C_OPEN;
			if (!open || now - close_t0 > 5000000000LL) {
				for (long i = 0; i < w->n; i++)
					if (w->c[i].fd >= 0)
						close_fd(w, &w->c[i]);
				finish_cmd(w);
			}
			break;
		}
		case CMD_EXIT:
			finish_cmd(w);
			return;
		default:
			break;
		}
		if (now - w->last_scan > 1000000000LL) {
			w->last_scan = now;
			scan(w, now);
		}
		if (getppid() == 1) /* the controller died */
			return;
	}
}

static void worker_main(int id, long idle_pairs, long chat_pairs, long conn_base)
{
	struct worker *w = calloc(1, sizeof(*w));
	long n = 2 * (idle_pairs + chat_pairs);
	struct kf_buf err = KF_BUF_INIT;

	if (!w)
		die("out of memory");
	w->id = id;
	w->s = &ctl->slot[id];
	w->n = n;
	w->c = calloc((size_t)(n ? n : 1), sizeof(*w->c));
	w->chat = calloc((size_t)(n ? n : 1), sizeof(long));
	w->rbuf = malloc(RBUF);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!w->c || !w->chat || !w->rbuf || w->ep < 0)
		die("worker %d: out of memory", id);
	w->first[G_IDLE] = 0;
	w->count[G_IDLE] = 2 * idle_pairs;
	w->first[G_CHAT] = 2 * idle_pairs;
	w->count[G_CHAT] = 2 * chat_pairs;
	for (long i = 0; i < n; i++) {
		struct conn *c = &w->c[i];
		long g = i < w->first[G_CHAT] ? G_IDLE : G_CHAT;
		long pair = (i - w->first[g]) / 2 + (g == G_CHAT ? idle_pairs : 0);

		c->fd = -1;
		c->group = (uint8_t)g;
		c->role = (i - w->first[g]) % 2 ? R_AGENT : R_VISITOR;
		c->url = (int)(conn_base / 2 + pair);
		c->src = (uint32_t)((conn_base + i) % opt.nsrc);
		c->mask_state = (uint32_t)(0x12345u + (uint32_t)id * 7919u + (uint32_t)i * 104729u);
		if (opt.stall_pct > 0 && g == G_CHAT) {
			long every = (long)(100.0 / opt.stall_pct + 0.5);

			c->stall_cand = (i - w->first[G_CHAT]) % (every > 0 ? every : 1) == 0;
		}
		xorshift(&c->mask_state);
	}
	if (opt.proto == P_KEFU) {
		w->cfg = kf_config_load(opt.config, &err);
		if (!w->cfg)
			die("worker %d: %s: %s", id, opt.config, err.data ? err.data : "unreadable");
		if (kf_key_init() != 0)
			die("libsodium init failed");
		w->redis = kf_redis_new(w->cfg);
		w->prefix = kf_config_str(w->cfg, "Redis", "KeyPrefix");
		w->admin_base = 2000000000LL + (long long)(time(NULL) % 2000) * 1000000LL;
	}
	worker_run(w);
	if (w->redis)
		kf_redis_free(w->redis);
	if (w->cfg)
		kf_config_free(w->cfg);
	kf_buf_release(&err);
	exit(0);
}

/* ======================================================================
 * controller
 * ====================================================================== */

static pid_t kids[MAX_PROCS];
static int nkids;

static uint64_t sum(size_t off)
{
	uint64_t t = 0;

	for (int i = 0; i < nkids; i++)
		t += ld((const uint64_t *)((const char *)&ctl->slot[i] + off));
	return t;
}

#define SUM(field) sum(offsetof(struct slot, field))

static void command(int cmd, int group)
{
	ctl->cmd = cmd;
	ctl->group = group;
	__atomic_store_n(&ctl->seq, ctl->seq + 1, __ATOMIC_RELEASE);
}

/* Wait until every worker finished the current command, at most secs. */
static bool wait_acks(double secs)
{
	int64_t t0 = now_ns();

	for (;;) {
		int done = 0;

		for (int i = 0; i < nkids; i++)
			done += __atomic_load_n(&ctl->slot[i].ack_seq, __ATOMIC_ACQUIRE) == ctl->seq;
		if (done == nkids)
			return true;
		if ((double)(now_ns() - t0) / 1e9 > secs)
			return false;
		for (int i = 0; i < nkids; i++) {
			int st;

			if (kids[i] > 0 && waitpid(kids[i], &st, WNOHANG) == kids[i]) {
				kids[i] = 0; /* reaped */
				if (__atomic_load_n(&ctl->slot[i].ack_seq, __ATOMIC_ACQUIRE) != ctl->seq)
					die("worker %d exited early (status %d)", i, st);
			}
		}
		usleep(5000);
	}
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static void add_url(struct url *list, int *n, const char *s, const char *scheme)
{
	char host[64];
	int port;

	if (*n >= MAX_URLS)
		die("at most %d URLs", MAX_URLS);
	if (!parse_url(s, scheme, host, sizeof(host), &port))
		die("bad URL '%s' (want %sHOST:PORT)", s, scheme);
	snprintf(list[*n].host, sizeof(list[*n].host), "%s", host);
	list[*n].port = port;
	list[*n].sa.sin_family = AF_INET;
	list[*n].sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &list[*n].sa.sin_addr) != 1)
		die("'%s': need a numeric IPv4 host", s);
	if ((ntohl(list[*n].sa.sin_addr.s_addr) >> 24) != 127)
		die("'%s': only loopback (127.0.0.0/8) targets are allowed", s);
	(*n)++;
}

static void add_urls(struct url *list, int *n, const char *s)
{
	char buf[1024], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save))
		add_url(list, n, tok, "ws://");
}

static void usage(void)
{
	fputs("usage: loadgen --proto kefu|node|nchan --url ws://127.0.0.1:P[,ws://...]\n"
	      "  [--agent-url ws://...]  agents connect here (e.g. another relay node)\n"
	      "  --pairs N               1:1 pairs that chat (N visitors + N agents)\n"
	      "  --idle N                idle connections besides (paired too; they ping)\n"
	      "  --keys rest|redis       kefu visitor keys: POST /api/link or the Redis script\n"
	      "  --http http://H:P       the web server, for --keys rest\n"
	      "  --config FILE           kefu.ini (Redis address, prefix, TTLs); kefu only\n"
	      "  --procs N  --src N  --conc N   workers, source addresses 127.0.0.2.., handshakes\n"
	      "                          in flight per worker\n"
	      "  --rates R1,R2,...       total chat msg/s per step (both directions); none: hold\n"
	      "  --step-sec S --drain-sec S --hold-sec S --settle-sec S --stop-p99-ms MS\n"
	      "  --msg-bytes N --ping-sec N --pid NAME=PID (repeatable) --label NAME\n"
	      "  --trace-slow-ms MS      print each message slower than MS (to stderr): when it\n"
	      "                          was sent (CLOCK_MONOTONIC, as perf shows) and how long\n"
	      "                          it took\n"
	      "  --stall-pct P           the last step repeats with P %% of the chat connections\n"
	      "                          no longer reading (small SO_RCVBUF from the start)\n"
	      "  --storm-after S         in the first step, S s in: reset every idle connection\n"
	      "                          and chatting visitor at once, reconnect them all, end the\n"
	      "                          step --storm-tail-sec S (2) after the last is back\n"
	      "                          (--step-sec: at most)\n",
	      stderr);
	exit(2);
}

static double arg_num(const char *s, double lo, double hi, const char *name)
{
	char *end;
	double v = strtod(s, &end);

	if (*end || v < lo || v > hi)
		die("%s: '%s' is not a number from %g to %g", name, s, lo, hi);
	return v;
}

static void parse_args(int argc, char **argv)
{
	const char *keys = "rest";

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		i++;
		if (strcmp(a, "--proto") == 0) {
			if (strcmp(v, "kefu") == 0)
				opt.proto = P_KEFU;
			else if (strcmp(v, "node") == 0)
				opt.proto = P_NODE;
			else if (strcmp(v, "nchan") == 0)
				opt.proto = P_NCHAN;
			else
				usage();
		} else if (strcmp(a, "--url") == 0) {
			add_urls(opt.urls, &opt.nurls, v);
		} else if (strcmp(a, "--agent-url") == 0) {
			add_urls(opt.aurls, &opt.naurls, v);
		} else if (strcmp(a, "--keys") == 0) {
			if (strcmp(v, "rest") && strcmp(v, "redis"))
				usage();
			keys = v;
		} else if (strcmp(a, "--http") == 0) {
			opt.http = v;
		} else if (strcmp(a, "--config") == 0) {
			opt.config = v;
		} else if (strcmp(a, "--pairs") == 0) {
			opt.pairs = (long)arg_num(v, 0, 1e6, a);
		} else if (strcmp(a, "--idle") == 0) {
			opt.idle = (long)arg_num(v, 0, 1e6, a);
		} else if (strcmp(a, "--procs") == 0) {
			opt.procs = (int)arg_num(v, 1, MAX_PROCS, a);
		} else if (strcmp(a, "--src") == 0) {
			opt.nsrc = (int)arg_num(v, 1, 250, a);
		} else if (strcmp(a, "--conc") == 0) {
			opt.conc = (int)arg_num(v, 1, 10000, a);
		} else if (strcmp(a, "--rates") == 0) {
			char buf[1024], *save = NULL, *tok;

			snprintf(buf, sizeof(buf), "%s", v);
			for (tok = strtok_r(buf, ",", &save); tok && opt.nrates < MAX_RATES;
			     tok = strtok_r(NULL, ",", &save))
				opt.rates[opt.nrates++] = arg_num(tok, 1, 1e7, a);
		} else if (strcmp(a, "--step-sec") == 0) {
			opt.step_sec = arg_num(v, 0.2, 600, a);
		} else if (strcmp(a, "--drain-sec") == 0) {
			opt.drain_sec = arg_num(v, 0, 60, a);
		} else if (strcmp(a, "--hold-sec") == 0) {
			opt.hold_sec = arg_num(v, 0, 3600, a);
		} else if (strcmp(a, "--settle-sec") == 0) {
			opt.settle_sec = arg_num(v, 0, 60, a);
		} else if (strcmp(a, "--stop-p99-ms") == 0) {
			opt.stop_p99_ms = arg_num(v, 0.01, 1e6, a);
		} else if (strcmp(a, "--msg-bytes") == 0) {
			opt.msg_bytes = (int)arg_num(v, 20, 500, a);
		} else if (strcmp(a, "--trace-slow-ms") == 0) {
			opt.trace_slow_ms = arg_num(v, 0.001, 1e6, a);
		} else if (strcmp(a, "--ping-sec") == 0) {
			opt.ping_sec = (int)arg_num(v, 1, 3600, a);
		} else if (strcmp(a, "--connect-timeout") == 0) {
			opt.connect_timeout = arg_num(v, 1, 600, a);
		} else if (strcmp(a, "--stall-pct") == 0) {
			opt.stall_pct = arg_num(v, 0.01, 100, a);
		} else if (strcmp(a, "--storm-after") == 0) {
			opt.storm_after = arg_num(v, 0.1, 600, a);
		} else if (strcmp(a, "--storm-tail-sec") == 0) {
			opt.storm_tail = arg_num(v, 0, 60, a);
		} else if (strcmp(a, "--label") == 0) {
			opt.label = v;
		} else if (strcmp(a, "--pid") == 0) {
			const char *eq = strchr(v, '=');

			if (!eq || opt.npids >= MAX_PIDS)
				usage();
			opt.pid_names[opt.npids] = strndup(v, (size_t)(eq - v));
			opt.pids[opt.npids++] = (int)arg_num(eq + 1, 1, 1e9, a);
		} else {
			usage();
		}
	}
	opt.keys_redis = strcmp(keys, "redis") == 0;
	if (!opt.nurls)
		usage();
	if (opt.proto == P_KEFU && !opt.config)
		die("--proto kefu needs --config (agent keys are registered in Redis)");
	if (opt.proto == P_KEFU && !opt.keys_redis && !opt.http)
		die("--keys rest needs --http");
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	printf("fd limit per process: %llu (soft raised to the hard limit)\n",
	       (unsigned long long)rl.rlim_cur);
}

/* busy and total jiffies of CPUs 0 and 1 (/proc/stat) */
static void core_times(unsigned long long busy[2], unsigned long long total[2])
{
	char line[512];
	FILE *f = fopen("/proc/stat", "r");

	busy[0] = busy[1] = total[0] = total[1] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v[8] = { 0 };
		int cpu;

		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 9 ||
		    cpu < 0 || cpu > 1)
			continue;
		for (int i = 0; i < 8; i++)
			total[cpu] += v[i];
		busy[cpu] = total[cpu] - v[3] - v[4]; /* less idle and iowait */
	}
	fclose(f);
}

struct sample {
	long rss[MAX_PIDS];
	int64_t cpu[MAX_PIDS];
	unsigned long long core_busy[2], core_total[2];
	long tcp_inuse, tcp_mem;
	int64_t t;
};

static void take_sample(struct sample *s)
{
	for (int i = 0; i < opt.npids; i++) {
		s->rss[i] = rss_kb(opt.pids[i]);
		s->cpu[i] = proc_cpu_ns(opt.pids[i]);
	}
	sockstat(&s->tcp_inuse, &s->tcp_mem);
	core_times(s->core_busy, s->core_total);
	s->t = now_ns();
}

static void print_fail_detail(void)
{
	printf("  failures by kind:");
	for (int k = 0; k < F_NKINDS; k++)
		printf(" %s=%" PRIu64, fail_names[k], SUM(fail_by[k]));
	for (int i = 0; i < nkids; i++) {
		struct slot *s = &ctl->slot[i];

		if (s->last_http || s->last_errno || s->last_close_code) {
			printf(" | worker %d: last HTTP status %d, errno %d (%s), close code %d", i,
			       s->last_http, s->last_errno, s->last_errno ? strerror(s->last_errno) : "-",
			       s->last_close_code);
			break;
		}
	}
	printf("\n");
}

static void connect_group(int g, long expect)
{
	int64_t t0 = now_ns();
	uint64_t ok, fail, ready;
	int64_t first = 0, last = 0;
	double secs;

	uint64_t mint0 = SUM(mint_ok), mint_ns0 = SUM(mint_ns);

	if (!expect)
		return;
	command(CMD_CONNECT, g);
	if (!wait_acks(600))
		printf("  (connect phase still running after 600 s; going on)\n");
	/* kefu and node: wait for assignment ("connect" frames), at most 30 s,
	 * or 2 s without progress (a partner that failed to connect) */
	{
		uint64_t last_ready = 0;
		int still = 0;

		for (int i = 0; i < 3000 && still < 200; i++) {
			ok = g == G_IDLE ? SUM(ok[0]) : SUM(ok[1]);
			ready = g == G_IDLE ? SUM(ready[0]) : SUM(ready[1]);
			if (ready >= ok)
				break;
			still = ready == last_ready ? still + 1 : 0;
			last_ready = ready;
			usleep(10000);
		}
	}
	ok = g == G_IDLE ? SUM(ok[0]) : SUM(ok[1]);
	fail = g == G_IDLE ? SUM(fail[0]) : SUM(fail[1]);
	ready = g == G_IDLE ? SUM(ready[0]) : SUM(ready[1]);
	for (int i = 0; i < nkids; i++) {
		int64_t f = ctl->slot[i].first_ns[g], l = ctl->slot[i].last_ns[g];

		if (f && (!first || f < first))
			first = f;
		if (l > last)
			last = l;
	}
	secs = last > first ? (double)(last - first) / 1e9 : 0;
	printf("%s connections: %" PRIu64 " of %ld open, %" PRIu64 " failed, %" PRIu64
	       " paired; handshakes %.0f/s (%.2f s, %.2f s with key minting)\n",
	       g == G_IDLE ? "idle" : "chat", ok, expect, fail, ready, secs > 0 ? (double)ok / secs : 0,
	       secs, (double)(now_ns() - t0) / 1e9);
	if (SUM(mint_ok) > mint0) {
		double ms = (double)(SUM(mint_ns) - mint_ns0) / 1e6 / nkids;

		printf("  visitor keys minted: %" PRIu64 " in %.2f s per worker (%.0f keys/s)\n",
		       SUM(mint_ok) - mint0, ms / 1000, ms > 0 ? (double)(SUM(mint_ok) - mint0) / ms * 1000 : 0);
	}
	if (fail)
		print_fail_detail();
	printf("R %s_open %" PRIu64 "\nR %s_failed %" PRIu64 "\nR %s_paired %" PRIu64
	       "\nR %s_hs_per_sec %.0f\n",
	       g == G_IDLE ? "idle" : "chat", ok, g == G_IDLE ? "idle" : "chat", fail,
	       g == G_IDLE ? "idle" : "chat", ready, g == G_IDLE ? "idle" : "chat",
	       secs > 0 ? (double)ok / secs : 0);
	fflush(stdout);
}

/* Time (ms after the drop) by which fraction f of the dropped were back; -1: never. */
static double storm_time(const uint64_t *h, uint64_t dropped, double f)
{
	uint64_t want = (uint64_t)ceil(f * (double)dropped), run = 0;

	for (int i = 0; i < HIST_N && want; i++) {
		run += h[i];
		if (run >= want)
			return hist_value(i) / 1e6;
	}
	return -1;
}

static void storm_report(void)
{
	uint64_t h[HIST_N];
	uint64_t dropped = SUM(storm_dropped), back = SUM(storm_back), failed = SUM(storm_failed);
	uint64_t acked = SUM(ag_acks), uniq = SUM(v_unique);
	double t99, t100;

	memset(h, 0, sizeof(h));
	for (int i = 0; i < nkids; i++)
		for (int j = 0; j < HIST_N; j++)
			h[j] += ld(&ctl->slot[i].storm_hist[j]);
	t99 = storm_time(h, dropped, 0.99);
	t100 = storm_time(h, dropped, 1.0);
	printf("storm: %" PRIu64 " connections reset at once; %" PRIu64 " back, %" PRIu64
	       " failed; 99 %% back after %.0f ms, all after %.0f ms (-1: never)\n",
	       dropped, back, failed, t99, t100);
	printf("storm chat: agents' messages stored (acked) %" PRIu64 ", delivered to their visitors "
	       "%" PRIu64 " (%" PRIu64 " of them sent before the visitor was back: recovered), missed "
	       "%" PRId64 ", duplicates %" PRIu64 ", own messages replayed %" PRIu64 "\n",
	       acked, uniq, SUM(v_recovered), (int64_t)acked - (int64_t)uniq, SUM(v_dup),
	       SUM(own_replay));
	printf("R storm_dropped %" PRIu64 "\nR storm_back %" PRIu64 "\nR storm_failed %" PRIu64
	       "\nR storm_t99_ms %.0f\nR storm_t100_ms %.0f\nR storm_acked %" PRIu64
	       "\nR storm_delivered %" PRIu64 "\nR storm_recovered %" PRIu64 "\nR storm_missed %" PRId64
	       "\nR storm_dup %" PRIu64 "\n",
	       dropped, back, failed, t99, t100, acked, uniq, SUM(v_recovered),
	       (int64_t)acked - (int64_t)uniq, SUM(v_dup));
}

/* One rate step; returns false when stepping should stop. */
static bool step(int k, double rate, double *best10, double *best100)
{
	uint64_t ready[MAX_PROCS], tot = 0;
	uint64_t sent, deliv, prev = 0, hist[HIST_N];
	struct sample a, b;
	int64_t t0;
	double secs = opt.step_sec, p50, p99, p999, pmax, lgcpu, mps, target;
	uint64_t errors, skipped, stray;
	bool lossless, client_limited, storm;
	uint64_t drops0 = SUM(dropped), drops;
	char cpus[512] = "";
	size_t cl = 0;

	for (int i = 0; i < nkids; i++) {
		/* senders: ready chat connections of worker i */
		ready[i] = ld(&ctl->slot[i].ready[G_CHAT]);
		tot += ready[i];
	}
	if (!tot) {
		printf("no chat connections are paired: nothing to send\n");
		return false;
	}
	for (int i = 0; i < nkids; i++)
		ctl->wrate[i] = rate * (double)ready[i] / (double)tot;
	t0 = now_ns() + 50000000; /* 50 ms for every worker to see it */
	ctl->start_ns = t0;
	ctl->end_ns = t0 + (int64_t)(secs * 1e9);
	storm = k == 0 && opt.storm_after > 0;
	ctl->stall = opt.stall_pct > 0 && k == opt.nrates - 1;
	ctl->storm_ns = storm ? t0 + (int64_t)(opt.storm_after * 1e9) : 0;
	take_sample(&a);
	command(CMD_STEP, 0);
	if (storm) {
		/* end the step storm_tail s after the last dropped one is back (or gave up) */
		int64_t lim = ctl->end_ns, tail = (int64_t)(opt.storm_tail * 1e9);

		while (now_ns() < lim) {
			uint64_t dropped_n = SUM(storm_dropped);

			if (now_ns() > ctl->storm_ns + 500000000 && dropped_n &&
			    SUM(storm_back) + SUM(storm_failed) >= dropped_n) {
				if (ctl->end_ns > now_ns() + tail)
					__atomic_store_n(&ctl->end_ns, now_ns() + tail, __ATOMIC_RELAXED);
				break;
			}
			usleep(20000);
		}
		secs = (double)(ctl->end_ns - t0) / 1e9;
	}
	if (!wait_acks(secs + 30))
		printf("  (a worker did not finish the step in time)\n");
	take_sample(&b);
	/* drain: until everything sent arrived, or drain_sec */
	sent = SUM(sent);
	for (int i = 0; i < (int)(opt.drain_sec * 100) + 1; i++) {
		deliv = SUM(delivered);
		if (storm ? SUM(v_unique) >= SUM(ag_acks) : deliv >= sent)
			break;
		if (deliv == prev && i > 50)
			break; /* nothing more arrives */
		prev = deliv;
		usleep(10000);
	}
	deliv = SUM(delivered);
	memset(hist, 0, sizeof(hist));
	for (int i = 0; i < nkids; i++)
		for (int j = 0; j < HIST_N; j++)
			hist[j] += ld(&ctl->slot[i].hist[j]);
	p50 = hist_pct(hist, 0.50) / 1e6;
	p99 = hist_pct(hist, 0.99) / 1e6;
	p999 = hist_pct(hist, 0.999) / 1e6;
	pmax = hist_max(hist) / 1e6;
	lgcpu = (double)SUM(cpu_ns) / (secs * 1e9) * 100;
	errors = SUM(errors);
	skipped = SUM(skipped);
	stray = SUM(stray);
	mps = (double)deliv / secs;
	target = rate * secs;
	drops = SUM(dropped) - drops0;
	/* skipped: the server stopped reading (16 KB unsent on every sender) */
	lossless = deliv >= sent && errors == 0 && skipped == 0 && drops == 0;
	client_limited = (double)(sent + skipped) < 0.97 * target;
	for (int i = 0; i < opt.npids; i++) {
		double pct = a.cpu[i] >= 0 && b.cpu[i] >= 0
				     ? (double)(b.cpu[i] - a.cpu[i]) / (double)(b.t - a.t) * 100
				     : -1;

		cl += (size_t)snprintf(cpus + cl, sizeof(cpus) - cl, " cpu_%s=%.0f", opt.pid_names[i],
				       pct);
		if (cl >= sizeof(cpus))
			break;
	}
	for (int i = 0; i < opt.npids && cl < sizeof(cpus); i++)
		cl += (size_t)snprintf(cpus + cl, sizeof(cpus) - cl, " rss_kb_%s=%ld", opt.pid_names[i],
				       b.rss[i]);
	if (ctl->stall && cl < sizeof(cpus))
		cl += (size_t)snprintf(cpus + cl, sizeof(cpus) - cl, " stalled=%" PRIu64, SUM(stalled));
	/* how busy each core was, whoever used it (others share this machine) */
	for (int c = 0; c < 2 && cl < sizeof(cpus); c++) {
		unsigned long long dt = b.core_total[c] - a.core_total[c];

		cl += (size_t)snprintf(cpus + cl, sizeof(cpus) - cl, " core%d_busy=%.0f", c,
				       dt ? (double)(b.core_busy[c] - a.core_busy[c]) * 100 / (double)dt
					  : -1.0);
	}
	printf("step %2d: rate %7.0f/s sent %8" PRIu64 " delivered %8" PRIu64
	       " (%.0f msg/s) p50 %.3f p99 %.3f p99.9 %.3f max %.3f ms; loadgen cpu %.0f%%;%s%s%s\n",
	       k, rate, sent, deliv, mps, p50, p99, p999, pmax, lgcpu, cpus,
	       lossless ? "" : " LOSS/ERRORS", client_limited ? " CLIENT-LIMITED" : "");
	printf("S label=%s rate=%.0f sent=%" PRIu64 " delivered=%" PRIu64 " mps=%.0f p50_ms=%.4f "
	       "p99_ms=%.4f p999_ms=%.4f max_ms=%.3f lg_cpu=%.0f errors=%" PRIu64
	       " skipped=%" PRIu64 " stray=%" PRIu64 " acks=%" PRIu64 " dropped=%" PRIu64
	       " lossless=%d client_limited=%d%s\n",
	       opt.label, rate, sent, deliv, mps, p50, p99, p999, pmax, lgcpu, errors, skipped, stray,
	       SUM(acks), drops, lossless, client_limited, cpus);
	if (errors)
		for (int i = 0; i < nkids; i++)
			for (int j = 0; j < ctl->slot[i].nerr_text; j++)
				printf("  error frame: %s\n", ctl->slot[i].err_text[j]);
	if (storm)
		storm_report();
	fflush(stdout);
	/* the highest rate of any step that met the bound with no loss */
	if (lossless && !client_limited && p99 <= 10 && mps > *best10)
		*best10 = mps;
	if (lossless && !client_limited && p99 <= 100 && mps > *best100)
		*best100 = mps;
	if (client_limited) {
		printf("  the load generator could not send at this rate: stopping\n");
		return false;
	}
	return lossless && p99 <= opt.stop_p99_ms;
}

static void ping_round(void)
{
	uint64_t p0 = SUM(pings), q0 = SUM(pongs);

	command(CMD_PING, 0);
	wait_acks(25);
	printf("pings: %" PRIu64 " sent, %" PRIu64 " answered\n", SUM(pings) - p0, SUM(pongs) - q0);
}

/* Servers' RSS per open connection, and the kernel's TCP memory. */
static void report_memory(const char *tag, const struct sample *s0, const struct sample *s1)
{
	uint64_t open = SUM(open_now);

	printf("R %sopen %" PRIu64 "\n", tag, open);
	printf("R %sdropped %" PRIu64 "\n", tag, SUM(dropped));
	printf("R %stcp_inuse %ld\nR %stcp_mem_kb %ld\nR tcp_mem_kb_before %ld\n", tag,
	       s1->tcp_inuse, tag, s1->tcp_mem * 4, s0->tcp_mem * 4);
	for (int i = 0; i < opt.npids; i++) {
		double per = open ? (double)(s1->rss[i] - s0->rss[i]) * 1024 / (double)open : 0;

		printf("%s: RSS %ld KB before, %ld KB with %" PRIu64 " connections open: %.0f B per "
		       "connection\n",
		       opt.pid_names[i], s0->rss[i], s1->rss[i], open, per);
		printf("R rss_kb_before_%s %ld\nR %srss_kb_%s %ld\nR %sbytes_per_conn_%s %.0f\n",
		       opt.pid_names[i], s0->rss[i], tag, opt.pid_names[i], s1->rss[i], tag,
		       opt.pid_names[i], per);
	}
	printf("kernel TCP buffer memory (sockstat 'mem', both ends on loopback): %ld KB before, "
	       "%ld KB now; %ld TCP sockets in use\n",
	       s0->tcp_mem * 4, s1->tcp_mem * 4, s1->tcp_inuse);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long per_w_idle[MAX_PROCS], per_w_chat[MAX_PROCS], base = 0;
	long total_conns;
	struct sample s0, s1, s2;
	double hold_cpu[MAX_PIDS];
	int rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	raise_nofile();
	total_conns = 2 * (opt.pairs + opt.idle / 2);
	if (!opt.procs)
		opt.procs = (int)((total_conns + 18999) / 19000);
	if (opt.procs < 1)
		opt.procs = 1;
	if (opt.procs > MAX_PROCS)
		die("%ld connections need more than %d workers", total_conns, MAX_PROCS);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(ctl, 0, sizeof(*ctl));
	printf("loadgen %s: proto %s, %ld chat pairs + %ld idle connections over %d worker(s), "
	       "%d source address(es) 127.0.0.2-127.0.0.%d, %d handshakes in flight per worker\n",
	       opt.label, opt.proto == P_KEFU ? "kefu" : opt.proto == P_NODE ? "node" : "nchan",
	       opt.pairs, 2 * (opt.idle / 2), opt.procs, opt.nsrc, opt.nsrc + 1, opt.conc);
	if (opt.proto == P_KEFU)
		printf("keys: visitors via %s; agents via kf_store_agent_register in Redis (the "
		       "script POST /admin/ws runs), synthetic admin ids\n",
		       opt.keys_redis ? "kf_store_visitor_issue in Redis (the script POST /api/link runs)"
				      : "POST /api/link through the web server");
	for (int i = 0; i < opt.procs; i++) {
		per_w_idle[i] = opt.idle / 2 / opt.procs + (i < (opt.idle / 2) % opt.procs);
		per_w_chat[i] = opt.pairs / opt.procs + (i < opt.pairs % opt.procs);
	}
	take_sample(&s0);
	fflush(stdout);
	for (int i = 0; i < opt.procs; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork: %s", strerror(errno));
		if (p == 0)
			worker_main(i, per_w_idle[i], per_w_chat[i], base);
		kids[nkids++] = p;
		base += 2 * (per_w_idle[i] + per_w_chat[i]);
	}
	signal(SIGPIPE, SIG_IGN);

	connect_group(G_IDLE, 2 * (opt.idle / 2));
	if (opt.idle / 2 && opt.pairs) {
		/* memory with the idle group alone (e.g. 10k), then with everything */
		ping_round();
		sleep_s(opt.settle_sec);
		take_sample(&s1);
		report_memory("idle_", &s0, &s1);
	}
	connect_group(G_CHAT, 2 * opt.pairs);
	ping_round();
	sleep_s(opt.settle_sec);
	take_sample(&s1);
	report_memory("", &s0, &s1);
	if (opt.hold_sec > 0) {
		sleep_s(opt.hold_sec);
		take_sample(&s2);
		printf("after holding %.0f s: %" PRIu64 " open, %" PRIu64 " dropped", opt.hold_sec,
		       SUM(open_now), SUM(dropped));
		for (int i = 0; i < opt.npids; i++) {
			double pct = s1.cpu[i] >= 0 && s2.cpu[i] >= 0 && s2.t > s1.t
					     ? (double)(s2.cpu[i] - s1.cpu[i]) / (double)(s2.t - s1.t) * 100
					     : -1;

			printf(", %s RSS %ld KB and %.0f %% CPU while idle", opt.pid_names[i], s2.rss[i],
			       pct);
			hold_cpu[i] = pct;
		}
		printf("\nR held %" PRIu64 "\nR dropped_after_hold %" PRIu64 "\n", SUM(open_now),
		       SUM(dropped));
		for (int i = 0; i < opt.npids; i++)
			printf("R hold_cpu_%s %.0f\n", opt.pid_names[i], hold_cpu[i]);
	}
	if (opt.nrates) {
		double best10 = 0, best100 = 0;

		for (int k = 0; k < opt.nrates; k++)
			if (!step(k, opt.rates[k], &best10, &best100))
				break;
		printf("best: %.0f msg/s with p99 <= 10 ms, %.0f msg/s with p99 <= 100 ms (no loss)\n",
		       best10, best100);
		printf("R best_p99_10ms %.0f\nR best_p99_100ms %.0f\n", best10, best100);
		printf("R dropped_end %" PRIu64 "\n", SUM(dropped));
	}
	command(CMD_CLOSE, 0);
	if (!wait_acks(15))
		printf("(closing took over 15 s)\n");
	command(CMD_EXIT, 0);
	wait_acks(5);
	for (int i = 0; i < nkids; i++) {
		int st;
		int64_t t0 = now_ns();

		while (kids[i] > 0 && waitpid(kids[i], &st, WNOHANG) == 0) {
			if (now_ns() - t0 > 5000000000LL) {
				kill(kids[i], SIGKILL);
				waitpid(kids[i], &st, 0);
				break;
			}
			usleep(10000);
		}
	}
	return rc;
}
