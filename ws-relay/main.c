/*
 * main.c - kefu-relay: the WebSocket relay daemon.
 *
 *   kefu-relay [--config FILE] [--listen HOST:PORT] [--node-id ID] [--log FILE]
 *
 * One libuv loop carries libwebsockets (the connections), hiredis's async
 * client (the control channel) and the timers.  SIGTERM or SIGINT drains:
 * no new connections, every client is closed with 1001 so it reconnects
 * elsewhere, and the process exits when they are gone or after [Relay]
 * DrainTimeoutSec.  Under systemd (Type=notify) it reports READY and
 * STOPPING.
 */
#include "kf_compat.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_key.h"
#include "kf_log.h"
#include "kf_mem.h"
#include "kf_redis.h"
#include "relay.h"

#define DEFAULT_CONFIG "/etc/kefu/kefu.ini"

struct kf_relay kf_relay;

static lws_retry_bo_t idle_policy;

static const struct lws_protocols protocols[] = {
	/*
	 * A small receive buffer: lws keeps it for each connection's whole life,
	 * and conn.c reassembles messages that arrive in several pieces.
	 */
	{ "kefu", kf_conn_callback, sizeof(struct kf_conn), 512, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/*
 * lws's own log lines go through kf_log, at most LWS_LOG_PER_SEC a second
 * (at the open-file limit lws can report a failed accept in a tight loop).
 */
#define LWS_LOG_PER_SEC 10

static bool lws_log_allowed(void)
{
	static time_t second;
	static unsigned count, dropped;
	time_t now = time(NULL);

	if (now != second) {
		if (dropped)
			kf_warn("lws: %u more log lines in the last second were dropped", dropped);
		second = now;
		count = 0;
		dropped = 0;
	}
	if (++count <= LWS_LOG_PER_SEC)
		return true;
	dropped++;
	return false;
}

static void lws_emit(int level, const char *line)
{
	size_t n = strlen(line);

	if (!lws_log_allowed())
		return;

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		kf_log(KF_LOG_ERROR, "lws: %.*s", (int)n, line);
	else if (level & LLL_WARN)
		kf_log(KF_LOG_WARN, "lws: %.*s", (int)n, line);
	else if (getenv("KEFU_LWS_DEBUG"))
		kf_log(KF_LOG_ERROR, "lws: %.*s", (int)n, line);
}

/* Descriptors kept free for Redis, MySQL, logs and the listening socket. */
#define FD_RESERVE 64

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	kf_info("open files: soft limit %llu, hard limit %llu", (unsigned long long)rl.rlim_cur,
		(unsigned long long)rl.rlim_max);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			kf_info("open files: soft limit raised to %llu", (unsigned long long)rl.rlim_cur);
		else
			kf_warn("open files: unable to raise the soft limit: %s", strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur > FD_RESERVE * 2)
		kf_relay.fd_limit = (long)rl.rlim_cur - FD_RESERVE;
}

static void load_settings(const struct kf_config *cfg)
{
	struct kf_relay *r = &kf_relay;

	r->prefix = kf_config_str(cfg, "Redis", "KeyPrefix");
	r->cap = (long)kf_config_int(cfg, "Relay", "MaxVisitorsPerAgent");
	r->ping_sec = (long)kf_config_int(cfg, "Websocket", "PingLastTimeSec");
	r->chat_sec = (long)kf_config_int(cfg, "Websocket", "ChatLastTimeSec");
	r->max_visitors = (long)kf_config_int(cfg, "Websocket", "MaxConnection");
	r->visitor_grace = (long)kf_config_int(cfg, "Relay", "VisitorReconnectGraceSec");
	r->agent_grace = (long)kf_config_int(cfg, "Relay", "AgentReconnectGraceSec");
	r->max_msg = (size_t)kf_config_int(cfg, "Relay", "MaxMessageBytes");
	r->max_frame = (size_t)kf_config_int(cfg, "Relay", "MaxFrameBytes");
	r->max_rate = (long)kf_config_int(cfg, "Relay", "MaxMessagesPerSec");
	r->max_bad = (long)kf_config_int(cfg, "Relay", "MaxBadFrames");
	r->queue_max = (size_t)kf_config_int(cfg, "Relay", "SendQueueMax");
	r->drain_sec = (long)kf_config_int(cfg, "Relay", "DrainTimeoutSec");
	r->link_per_min = (long)kf_config_int(cfg, "Api", "LinkPerIpPerMinute");
	r->visitor_key_ttl = (long)kf_config_int(cfg, "Relay", "VisitorKeyTtlSec");
	r->history_max = (long)kf_config_int(cfg, "Relay", "HistoryMax");
	r->backlog_max = (long)kf_config_int(cfg, "Relay", "BacklogMax");
	r->heartbeat_sec = (long)kf_config_int(cfg, "Relay", "HeartbeatSec");
	r->node_ttl = (long)kf_config_int(cfg, "Relay", "NodeTtlSec");
	r->msg_no_agent = kf_config_str(cfg, "Messages", "NoAgent");
	r->msg_new_visitor = kf_config_str(cfg, "Messages", "NewVisitor");
	r->msg_chat_ended = kf_config_str(cfg, "Messages", "ChatEnded");
	r->msg_agent_joined = kf_config_str(cfg, "Messages", "AgentJoined");
	r->msg_agent_away = kf_config_str(cfg, "Messages", "AgentAway");
	r->msg_agent_back = kf_config_str(cfg, "Messages", "AgentBack");
}

static void stop_loop(void)
{
	kf_route_stop();
	kf_timers_stop();
	kf_bus_stop();
	uv_timer_stop(&kf_relay.drain_timer);
	uv_signal_stop(&kf_relay.sigterm);
	uv_signal_stop(&kf_relay.sigint);
	uv_signal_stop(&kf_relay.sighup);
	lws_context_destroy(kf_relay.ctx);
	kf_relay.ctx = NULL;
}

static void drain_check(uv_timer_t *t)
{
	static long waited_ms;

	(void)t;
	waited_ms += 100;
	if (kf_relay.nconns == 0 || waited_ms >= kf_relay.drain_sec * 1000) {
		if (kf_relay.nconns)
			kf_warn("drain: %zu connections still open after %lds, exiting",
				kf_relay.nconns, kf_relay.drain_sec);
		else
			kf_info("drain: every client has gone");
		stop_loop();
	}
}

static void begin_drain(void)
{
	struct kf_conn *c, *tmp;

	if (kf_relay.draining)
		return;
	kf_relay.draining = true;
	sd_notify(0, "STOPPING=1");
	kf_info("draining: closing %zu connections with 1001", kf_relay.nconns);
	HASH_ITER(hh, kf_relay.visitors, c, tmp)
		kf_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down, reconnect");
	HASH_ITER(hh, kf_relay.agents, c, tmp)
		kf_conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down, reconnect");
	/* nothing to wait for: no 100 ms tick first */
	uv_timer_start(&kf_relay.drain_timer, drain_check, kf_relay.nconns ? 100 : 0, 100);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)s;
	kf_info("signal %d: shutting down", signum);
	begin_drain();
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kefu-relay [--config FILE] [--listen HOST:PORT] [--node-id ID] [--log FILE]\n"
		   "  --config FILE    the INI file (default: $KEFU_CONFIG, else " DEFAULT_CONFIG ")\n"
		   "  --listen ADDR    override [Relay] Listen\n"
		   "  --node-id ID     override [Relay] NodeId\n"
		   "  --log FILE       override [Log] File\n"
		   "  --check          validate the configuration and exit\n");
}

/* Split "HOST:PORT" into host (in buf) and port.  False when malformed. */
static bool split_listen(const char *s, char *host, size_t size, int *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (!colon || (size_t)(colon - s) >= size)
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (*end || p < 1 || p > 65535)
		return false;
	*port = (int)p;
	return true;
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("KEFU_CONFIG");
	const char *listen_addr = NULL, *node = NULL, *log_file = NULL;
	bool check_only = false;
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = NULL;
	struct lws_context_creation_info info;
	uv_loop_t loop;
	void *foreign[1];
	char host[256];
	int port = 0;
	int status = 1;

	kf_log_set_ident("kefu-relay");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_addr = argv[++i];
		else if (strcmp(argv[i], "--node-id") == 0 && i + 1 < argc)
			node = argv[++i];
		else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			log_file = argv[++i];
		else if (strcmp(argv[i], "--check") == 0)
			check_only = true;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kefu-relay: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!config_path || !*config_path)
		config_path = DEFAULT_CONFIG;
	cfg = kf_config_load(config_path, &err);
	if (!cfg) {
		fprintf(stderr, "kefu-relay: configuration refused:\n%s", kf_buf_str(&err));
		goto out;
	}
	if (!listen_addr)
		listen_addr = kf_config_str(cfg, "Relay", "Listen");
	if (!split_listen(listen_addr, host, sizeof(host), &port)) {
		fprintf(stderr, "kefu-relay: [Relay] Listen: expected HOST:PORT, got '%s'\n",
			listen_addr);
		goto out;
	}
	kf_relay.trusted = kf_net_trust_parse(kf_config_str(cfg, "Relay", "TrustedProxies"), &err);
	if (!kf_relay.trusted) {
		fprintf(stderr, "kefu-relay: [Relay] TrustedProxies: %s\n", kf_buf_str(&err));
		goto out;
	}
	if (check_only) {
		printf("%s: ok\n", config_path);
		status = 0;
		goto out;
	}
	kf_log_set_level((enum kf_log_level)kf_log_level_parse(kf_config_str(cfg, "Log", "Level")));
	if (!log_file)
		log_file = kf_config_str(cfg, "Log", "File");
	if (kf_log_set_file(log_file) != 0) {
		fprintf(stderr, "kefu-relay: unable to open log '%s': %s\n", log_file, strerror(errno));
		goto out;
	}
	lws_set_log_level(getenv("KEFU_LWS_DEBUG") ? 0xffff : LLL_ERR | LLL_WARN, lws_emit);
	if (kf_key_init() != 0) {
		kf_err("unable to initialise libsodium");
		goto out;
	}
	raise_nofile();
	kf_relay.cfg = cfg;
	kf_relay.node = node ? node : kf_config_str(cfg, "Relay", "NodeId");
	load_settings(cfg);
	kf_relay.redis = kf_redis_new(cfg);
	/* the loop can do nothing while it waits for these (a key redeemed in
	 * the upgrade, mostly): a short poll beats a sleep and a wakeup */
	kf_redis_set_spin(kf_relay.redis, (int)kf_config_int(cfg, "Relay", "RedisSpinUs"));
	/* chat events and the task worker (events.c); stopped at out: */
	if (kf_relay_events_start(cfg, kf_relay.node) != 0)
		goto out;

	uv_loop_init(&loop);
	kf_relay.loop = &loop;
	uv_timer_init(&loop, &kf_relay.tick);
	uv_timer_init(&loop, &kf_relay.sub_retry);
	uv_timer_init(&loop, &kf_relay.cmd_retry);
	uv_timer_init(&loop, &kf_relay.cmd_connect_timer);
	uv_timer_init(&loop, &kf_relay.sub_connect_timer);
	uv_timer_init(&loop, &kf_relay.drain_timer);
	uv_signal_init(&loop, &kf_relay.sigterm);
	uv_signal_init(&loop, &kf_relay.sigint);
	uv_signal_init(&loop, &kf_relay.sighup);
	uv_signal_start(&kf_relay.sigterm, on_signal, SIGTERM);
	uv_signal_start(&kf_relay.sigint, on_signal, SIGINT);
	uv_signal_start(&kf_relay.sighup, on_signal, SIGHUP);
	signal(SIGPIPE, SIG_IGN);

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	foreign[0] = &loop;
	info.foreign_loops = foreign;
	kf_relay.ctx = lws_create_context(&info);
	if (!kf_relay.ctx) {
		kf_err("unable to create the libwebsockets context");
		goto out_loop;
	}
	/*
	 * No lws validity timers: lws 4.1 keeps every connection's timers in
	 * one sorted list per thread, so a validity timer per connection makes
	 * each handshake walk all the others (O(N), measured: 36 % of the
	 * relay's time while 10,000 visitors connect).  Liveness is kefu's own
	 * rule (a client frame every PingLastTimeSec, timers.c); lws still
	 * answers the clients' protocol pings.
	 */
	idle_policy.secs_since_valid_ping = 0;
	idle_policy.secs_since_valid_hangup = 0;
	memset(&info, 0, sizeof(info));
	info.retry_and_idle_policy = &idle_policy;
	info.port = port;
	info.iface = host;
	info.protocols = protocols;
	info.vhost_name = "kefu";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	info.keepalive_timeout = 60;
	kf_relay.vhost = lws_create_vhost(kf_relay.ctx, &info);
	if (!kf_relay.vhost) {
		kf_err("unable to listen on %s (port taken?)", listen_addr);
		lws_context_destroy(kf_relay.ctx);
		goto out_loop;
	}
	kf_bus_heartbeat();
	kf_bus_start();
	kf_route_start();
	kf_timers_start();
	kf_relay.persist = kf_persist_start(cfg, kf_relay.node);
	kf_info("node %s listening on %s", kf_relay.node, listen_addr);
	sd_notify(0, "READY=1");
	uv_run(&loop, UV_RUN_DEFAULT);
	status = 0;
	/* the writer has had the drain to catch up; what is left waits in Redis */
	kf_persist_stop(kf_relay.persist, 2000);
	kf_relay.persist = NULL;
	kf_info("stopped");
out_loop:
	uv_close((uv_handle_t *)&kf_relay.tick, NULL);
	uv_close((uv_handle_t *)&kf_relay.sub_retry, NULL);
	uv_close((uv_handle_t *)&kf_relay.cmd_retry, NULL);
	uv_close((uv_handle_t *)&kf_relay.cmd_connect_timer, NULL);
	uv_close((uv_handle_t *)&kf_relay.sub_connect_timer, NULL);
	uv_close((uv_handle_t *)&kf_relay.drain_timer, NULL);
	if (kf_relay.chat_flush.loop) /* kf_route_start ran */
		uv_close((uv_handle_t *)&kf_relay.chat_flush, NULL);
	uv_close((uv_handle_t *)&kf_relay.sigterm, NULL);
	uv_close((uv_handle_t *)&kf_relay.sigint, NULL);
	uv_close((uv_handle_t *)&kf_relay.sighup, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		kf_debug("event loop closed with handles still open");
out:
	kf_relay_events_stop(); /* after the drain: the events of its closes are flushed */
	kf_redis_free(kf_relay.redis);
	kf_net_trust_free(kf_relay.trusted);
	kf_config_free(cfg);
	kf_buf_release(&err);
	return status;
}
