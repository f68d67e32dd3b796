#include "kf_compat.h"

#include "kf_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include <iniparser.h>

#include "kf_buf.h"
#include "kf_log.h"
#include "kf_mem.h"

enum cfg_type { CFG_INT, CFG_BOOL, CFG_STR, CFG_ENUM };

struct cfg_key {
	const char *section;
	const char *key;
	enum cfg_type type;
	const char *def;      /* default, as text */
	long long min, max;   /* CFG_INT bounds; CFG_STR max length */
	const char *choices;  /* CFG_ENUM: '|'-separated */
};

#define I(s, k, d, lo, hi) { s, k, CFG_INT, #d, lo, hi, NULL }
#define B(s, k, d) { s, k, CFG_BOOL, d, 0, 0, NULL }
#define S(s, k, d, maxlen) { s, k, CFG_STR, d, 0, maxlen, NULL }
#define E(s, k, d, ch) { s, k, CFG_ENUM, d, 0, 0, ch }

/* Every key kefu reads.  Keep conf/kefu.ini.sample in step. */
static const struct cfg_key cfg_table[] = {
	I("Websocket", "PingLastTimeSec", 50, 1, 86400),
	I("Websocket", "ChatLastTimeSec", 180, 1, 604800),
	I("Websocket", "CleanLimitTimeSec", 600, 1, 86400),
	I("Websocket", "MaxConnection", 100, 1, 10000000),

	S("Redis", "Host", "127.0.0.1", 255),
	I("Redis", "Port", 6379, 1, 65535),
	S("Redis", "Socket", "", 107),
	S("Redis", "Password", "", 512),
	I("Redis", "Db", 0, 0, 1023),
	S("Redis", "KeyPrefix", "kf:", 64),
	I("Redis", "ConnectTimeoutMs", 500, 10, 60000),
	I("Redis", "CommandTimeoutMs", 1000, 10, 60000),

	S("Db", "HostMaster", "127.0.0.1", 255),
	I("Db", "PortMaster", 3306, 1, 65535),
	S("Db", "SocketMaster", "", 107),
	S("Db", "UsernameMaster", "kefu", 80),
	S("Db", "PasswordMaster", "", 512),
	S("Db", "DatabaseMaster", "kefu", 64),
	S("Db", "HostSlave", "", 255),
	I("Db", "PortSlave", 3306, 1, 65535),
	S("Db", "SocketSlave", "", 107),
	S("Db", "UsernameSlave", "", 80),
	S("Db", "PasswordSlave", "", 512),
	S("Db", "DatabaseSlave", "", 64),
	I("Db", "MaxIdleConns", 10, 0, 100000),
	I("Db", "MaxOpenConns", 100, 1, 100000),
	I("Db", "ConnMaxLifetimeMinus", 60, 0, 525600),
	I("Db", "ConnectTimeoutSec", 3, 1, 600),
	I("Db", "ReadTimeoutSec", 10, 1, 3600),
	I("Db", "WriteTimeoutSec", 10, 1, 3600),

	S("Mq", "User", "guest", 255),
	S("Mq", "Pwd", "guest", 512),
	S("Mq", "Host", "127.0.0.1", 255),
	I("Mq", "Port", 5672, 1, 65535),
	S("Mq", "Vhost", "/", 255),
	S("Mq", "Exchange", "amq.direct", 255),
	S("Mq", "RoutingKey", "kefu.events", 255),
	S("Mq", "Queue", "kefu.events", 255),
	I("Mq", "Tries", 3, 1, 100),
	I("Mq", "ConnectTimeoutMs", 3000, 10, 600000),
	I("Mq", "ConfirmTimeoutMs", 5000, 10, 600000),
	I("Mq", "ReconnectMaxMs", 5000, 100, 3600000),

	S("Kafka", "User", "", 255),
	S("Kafka", "Pwd", "", 512),
	S("Kafka", "Host", "127.0.0.1", 255),
	I("Kafka", "Port", 9092, 1, 65535),
	S("Kafka", "Brokers", "", 4096),
	S("Kafka", "Topic", "kefu.events", 249),
	E("Kafka", "SecurityProtocol", "auto", "auto|plaintext|ssl|sasl_plaintext|sasl_ssl"),
	E("Kafka", "SaslMechanism", "plain", "plain|scram-sha-256|scram-sha-512"),
	I("Kafka", "Retries", 3, 0, 1000000),
	I("Kafka", "MessageTimeoutMs", 30000, 100, 3600000),

	S("Api", "Listen", "", 107),
	I("Api", "Workers", 16, 1, 256),
	I("Api", "MaxBodyBytes", 65536, 256, 16777216),
	S("Api", "CorsAllowOrigins", "", 4096),
	I("Api", "SessionLifetimeSec", 86400, 60, 31536000),
	B("Api", "CookieSecure", "false"),
	S("Api", "TrustedProxies", "", 4096),
	I("Api", "LoginMaxFailPerIpPerDay", 5, 1, 1000000),
	I("Api", "LoginMaxFailPerUser", 10, 1, 1000000),
	I("Api", "LoginFailWindowSec", 900, 1, 86400),
	I("Api", "LinkPerIpPerMinute", 30, 1, 1000000),
	I("Api", "MaxPageSize", 100, 1, 10000),
	I("Api", "RbacReloadSec", 60, 1, 86400),

	S("Relay", "PublicUrl", "ws://127.0.0.1", 512),
	S("Relay", "Listen", "127.0.0.1:8090", 300),
	S("Relay", "NodeId", "node1", 64),
	S("Relay", "TrustedProxies", "", 4096),
	I("Relay", "MaxVisitorsPerAgent", 10, 1, 100000),
	I("Relay", "VisitorReconnectGraceSec", 60, 0, 86400),
	I("Relay", "AgentReconnectGraceSec", 30, 0, 86400),
	I("Relay", "MaxMessageBytes", 4096, 16, 1048576),
	I("Relay", "MaxFrameBytes", 65536, 128, 16777216),
	I("Relay", "MaxMessagesPerSec", 20, 1, 1000000),
	I("Relay", "MaxBadFrames", 10, 1, 1000000),
	I("Relay", "SendQueueMax", 256, 4, 1000000),
	I("Relay", "AgentKeyTtlSec", 60, 5, 86400),
	I("Relay", "VisitorKeyTtlSec", 600, 5, 604800),
	I("Relay", "DrainTimeoutSec", 10, 0, 3600),
	I("Relay", "HistoryMax", 1000, 10, 10000000),
	I("Relay", "BacklogMax", 1000000, 100, 100000000),
	I("Relay", "WriterBatch", 500, 1, 10000),
	I("Relay", "HeartbeatSec", 5, 1, 3600),
	I("Relay", "NodeTtlSec", 15, 2, 86400),
	I("Relay", "RedisSpinUs", 150, 0, 10000),

	I("Security", "Argon2OpsLimit", 2, 1, 64),
	I("Security", "Argon2MemLimitKiB", 65536, 8, 4194304),

	E("Log", "Level", "info", "error|warn|info|debug"),
	S("Log", "File", "", 4096),

	E("Events", "Backend", "none", "none|mq|kafka|both"),
	I("Events", "QueueMax", 10000, 1, 10000000),
	I("Events", "FlushTimeoutSec", 5, 0, 3600),
	B("Events", "TaskWorker", "false"),
	I("Events", "TaskPollSec", 3, 1, 3600),
	I("Events", "TaskBatch", 10, 1, 10000),
	I("Events", "TaskConcurrency", 100, 1, 1000),
	I("Events", "TaskTimeoutSec", 30, 1, 86400),
	I("Events", "TaskRetryDelaySec", 180, 0, 2592000),
	I("Events", "TaskFirstDelaySec", 30, 0, 2592000),
	I("Events", "TaskStaleSec", 600, 2, 2592000),
	I("Events", "TaskShutdownWaitSec", 8, 0, 3600),

	S("Messages", "NoAgent", "No agent is available yet, please wait.", 1024),
	S("Messages", "NewVisitor", "A new visitor has joined.", 1024),
	S("Messages", "ChatEnded", "The chat has ended.", 1024),
	S("Messages", "AgentJoined", "An agent has joined the chat.", 1024),
	S("Messages", "AgentAway", "Your agent's connection dropped; please wait a moment.", 1024),
	S("Messages", "AgentBack", "Your agent is back.", 1024),
};

#undef I
#undef B
#undef S
#undef E

struct cfg_value {
	char *text;
	long long num; /* CFG_INT, CFG_BOOL */
	bool given;    /* written in the file, not the default */
};

struct kf_config {
	char *path;
	struct cfg_value values[KF_ARRAY_LEN(cfg_table)];
};

static int find_key(const char *section, const char *key)
{
	for (size_t i = 0; i < KF_ARRAY_LEN(cfg_table); i++)
		if (strcasecmp(cfg_table[i].section, section) == 0 &&
		    strcasecmp(cfg_table[i].key, key) == 0)
			return (int)i;
	return -1;
}

/* The table's spelling of section (iniparser lowercases), or NULL. */
static const char *section_name(const char *section)
{
	for (size_t i = 0; i < KF_ARRAY_LEN(cfg_table); i++)
		if (strcasecmp(cfg_table[i].section, section) == 0)
			return cfg_table[i].section;
	return NULL;
}

static int parse_bool(const char *s)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < KF_ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

static bool enum_has(const char *choices, const char *s)
{
	size_t n = strlen(s);
	const char *p = choices;

	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncasecmp(p, s, n) == 0)
			return true;
		if (!bar)
			break;
		p = bar + 1;
	}
	return false;
}

/*
 * Check text against entry k and store it in v.  On a bad value, append a
 * message naming section and key to err and return false.
 */
static bool set_value(const struct cfg_key *k, const char *text, struct cfg_value *v,
		      struct kf_buf *err)
{
	char *end;
	long long n;
	int b;

	switch (k->type) {
	case CFG_INT:
		errno = 0;
		n = strtoll(text, &end, 10);
		while (*end && isspace((unsigned char)*end))
			end++;
		if (!*text || *end || errno) {
			kf_buf_addf(err, "[%s] %s: expected a whole number, got '%s'\n",
				    k->section, k->key, text);
			return false;
		}
		if (n < k->min || n > k->max) {
			kf_buf_addf(err, "[%s] %s: %lld is out of range (%lld..%lld)\n",
				    k->section, k->key, n, k->min, k->max);
			return false;
		}
		v->num = n;
		break;
	case CFG_BOOL:
		b = parse_bool(text);
		if (b < 0) {
			kf_buf_addf(err, "[%s] %s: expected true or false, got '%s'\n",
				    k->section, k->key, text);
			return false;
		}
		v->num = b;
		break;
	case CFG_ENUM:
		if (!enum_has(k->choices, text)) {
			kf_buf_addf(err, "[%s] %s: expected one of %s, got '%s'\n",
				    k->section, k->key, k->choices, text);
			return false;
		}
		break;
	case CFG_STR:
		if ((long long)strlen(text) > k->max) {
			kf_buf_addf(err, "[%s] %s: longer than %lld characters\n",
				    k->section, k->key, k->max);
			return false;
		}
		break;
	}
	free(v->text);
	v->text = kf_xstrdup(text);
	if (k->type == CFG_ENUM)
		for (char *p = v->text; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return true;
}

static struct kf_config *config_new(void)
{
	struct kf_config *cfg = kf_xcalloc(1, sizeof(*cfg));
	struct kf_buf err = KF_BUF_INIT;

	for (size_t i = 0; i < KF_ARRAY_LEN(cfg_table); i++)
		if (!set_value(&cfg_table[i], cfg_table[i].def, &cfg->values[i], &err))
			abort(); /* a default that fails its own bounds */
	kf_buf_release(&err);
	cfg->path = kf_xstrdup("");
	return cfg;
}

struct kf_config *kf_config_defaults(void)
{
	return config_new();
}

/* iniparser reports syntax errors through one global callback. */
static struct kf_buf *ini_errors;

static int ini_error_cb(const char *fmt, ...) KF_PRINTF(1, 2);
static int ini_error_cb(const char *fmt, ...)
{
	va_list ap;

	if (!ini_errors)
		return 0;
	va_start(ap, fmt);
	kf_buf_vaddf(ini_errors, fmt, ap);
	va_end(ap);
	return 0;
}

/* Check the cross-key rules that no single entry can express. */
static void check_rules(struct kf_config *cfg, struct kf_buf *err)
{
	struct cfg_value *workers = &cfg->values[find_key("Api", "Workers")];

	/* the default number of workers fits the connections a file allows */
	if (!workers->given && workers->num > kf_config_int(cfg, "Db", "MaxOpenConns"))
		workers->num = kf_config_int(cfg, "Db", "MaxOpenConns");
	if (kf_config_int(cfg, "Api", "Workers") > kf_config_int(cfg, "Db", "MaxOpenConns"))
		kf_buf_addf(err, "[Api] Workers: %lld workers need more than [Db] MaxOpenConns = %lld connections\n",
			    kf_config_int(cfg, "Api", "Workers"),
			    kf_config_int(cfg, "Db", "MaxOpenConns"));
	if (kf_config_int(cfg, "Relay", "NodeTtlSec") <= kf_config_int(cfg, "Relay", "HeartbeatSec"))
		kf_buf_addf(err, "[Relay] NodeTtlSec: must be longer than [Relay] HeartbeatSec (%lld)\n",
			    kf_config_int(cfg, "Relay", "HeartbeatSec"));
	if (kf_config_int(cfg, "Relay", "MaxMessageBytes") > kf_config_int(cfg, "Relay", "MaxFrameBytes"))
		kf_buf_addf(err, "[Relay] MaxMessageBytes: must not exceed [Relay] MaxFrameBytes (%lld)\n",
			    kf_config_int(cfg, "Relay", "MaxFrameBytes"));
	if (kf_config_int(cfg, "Events", "TaskStaleSec") <= kf_config_int(cfg, "Events", "TaskTimeoutSec"))
		kf_buf_addf(err, "[Events] TaskStaleSec: must be longer than [Events] TaskTimeoutSec (%lld), or a slow task would be taken again while it runs\n",
			    kf_config_int(cfg, "Events", "TaskTimeoutSec"));
	if (*kf_config_str(cfg, "Kafka", "User") &&
	    strncmp(kf_config_str(cfg, "Kafka", "SecurityProtocol"), "sasl_", 5) != 0 &&
	    strcmp(kf_config_str(cfg, "Kafka", "SecurityProtocol"), "auto") != 0)
		kf_buf_addf(err, "[Kafka] SecurityProtocol: User is set, so expected auto, sasl_plaintext or sasl_ssl, got '%s'\n",
			    kf_config_str(cfg, "Kafka", "SecurityProtocol"));
	if (!*kf_config_str(cfg, "Kafka", "User") &&
	    strncmp(kf_config_str(cfg, "Kafka", "SecurityProtocol"), "sasl_", 5) == 0)
		kf_buf_addf(err, "[Kafka] SecurityProtocol: %s needs [Kafka] User and Pwd\n",
			    kf_config_str(cfg, "Kafka", "SecurityProtocol"));
	if (!*kf_config_str(cfg, "Kafka", "Topic"))
		kf_buf_addf(err, "[Kafka] Topic: must not be empty\n");
	if (!*kf_config_str(cfg, "Mq", "Exchange") && !*kf_config_str(cfg, "Mq", "RoutingKey"))
		kf_buf_addf(err, "[Mq] RoutingKey: with the default exchange (Exchange empty) it names the queue and must not be empty\n");
	if (strncmp(kf_config_str(cfg, "Relay", "PublicUrl"), "ws://", 5) != 0 &&
	    strncmp(kf_config_str(cfg, "Relay", "PublicUrl"), "wss://", 6) != 0)
		kf_buf_addf(err, "[Relay] PublicUrl: expected a ws:// or wss:// URL, got '%s'\n",
			    kf_config_str(cfg, "Relay", "PublicUrl"));
}

struct kf_config *kf_config_load(const char *path, struct kf_buf *err)
{
	struct kf_config *cfg = NULL;
	dictionary *d;
	size_t err_start = err->len;
	int nsec;

	if (access(path, R_OK) != 0) {
		kf_buf_addf(err, "unable to read config '%s': %s\n", path, strerror(errno));
		return NULL;
	}
	ini_errors = err;
	iniparser_set_error_callback(ini_error_cb);
	d = iniparser_load(path);
	iniparser_set_error_callback(NULL);
	ini_errors = NULL;
	if (!d) {
		kf_buf_addf(err, "unable to parse config '%s'\n", path);
		return NULL;
	}
	if (err->len > err_start) /* syntax errors were reported */
		goto out_free_dict;

	cfg = config_new();
	free(cfg->path);
	cfg->path = kf_xstrdup(path);
	nsec = iniparser_getnsec(d);
	for (int s = 0; s < nsec; s++) {
		const char *sec = iniparser_getsecname(d, s);
		int nkeys = iniparser_getsecnkeys(d, sec);
		const char *canon = section_name(sec);
		const char **keys;

		if (!canon) {
			kf_buf_addf(err, "[%s]: unknown section\n", sec);
			continue;
		}
		if (nkeys <= 0)
			continue;
		keys = kf_xcalloc((size_t)nkeys, sizeof(*keys));
		if (iniparser_getseckeys(d, sec, keys)) {
			for (int k = 0; k < nkeys; k++) {
				/* iniparser names keys "section:key" */
				const char *name = strchr(keys[k], ':');
				const char *val = iniparser_getstring(d, keys[k], "");
				int idx;

				name = name ? name + 1 : keys[k];
				idx = find_key(sec, name);
				if (idx < 0) {
					kf_buf_addf(err, "[%s] %s: unknown key\n", canon, name);
					continue;
				}
				if (set_value(&cfg_table[idx], val, &cfg->values[idx], err))
					cfg->values[idx].given = true;
			}
		}
		free(keys);
	}
	/* iniparser files keys written before any [Section] as ":key" */
	for (ssize_t i = 0; i < d->size; i++)
		if (d->key[i] && d->key[i][0] == ':')
			kf_buf_addf(err, "%s: unknown key outside any [Section]\n", d->key[i] + 1);
	if (err->len == err_start)
		check_rules(cfg, err);
	if (err->len > err_start) {
		kf_config_free(cfg);
		cfg = NULL;
	}
out_free_dict:
	iniparser_freedict(d);
	return cfg;
}

void kf_config_free(struct kf_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < KF_ARRAY_LEN(cfg_table); i++)
		free(cfg->values[i].text);
	free(cfg->path);
	free(cfg);
}

static const struct cfg_value *lookup(const struct kf_config *cfg, const char *section,
				      const char *key, enum cfg_type type)
{
	int idx = find_key(section, key);

	if (idx < 0 || cfg_table[idx].type != type) {
		kf_err("config key [%s] %s is not in the table as that type", section, key);
		abort();
	}
	return &cfg->values[idx];
}

long long kf_config_int(const struct kf_config *cfg, const char *section, const char *key)
{
	return lookup(cfg, section, key, CFG_INT)->num;
}

bool kf_config_bool(const struct kf_config *cfg, const char *section, const char *key)
{
	return lookup(cfg, section, key, CFG_BOOL)->num != 0;
}

const char *kf_config_str(const struct kf_config *cfg, const char *section, const char *key)
{
	int idx = find_key(section, key);

	if (idx < 0 || cfg_table[idx].type == CFG_INT || cfg_table[idx].type == CFG_BOOL) {
		kf_err("config key [%s] %s is not in the table as a string", section, key);
		abort();
	}
	return cfg->values[idx].text;
}

const char *kf_config_path(const struct kf_config *cfg)
{
	return cfg->path;
}
