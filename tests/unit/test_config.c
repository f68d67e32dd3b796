/*
 * test_config.c - kf_config: defaults, loading a file, and the messages a
 * bad file gets (each names the section and the key).
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "kf_buf.h"
#include "kf_config.h"
#include "kf_log.h"

/* Write text to a fresh file under /tmp; its path goes into path. */
static void write_temp(char path[64], const char *text)
{
	int fd;
	size_t n = strlen(text);

	cr_assert(snprintf(path, 64, "/tmp/kefu-test-config-XXXXXX") < 64);
	fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp failed");
	cr_assert_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
}

/*
 * Load text as a config file.  Returns the config (or NULL); the messages
 * land in err, which the caller releases.
 */
static struct kf_config *load_text(const char *text, struct kf_buf *err)
{
	char path[64];
	struct kf_config *cfg;

	write_temp(path, text);
	cfg = kf_config_load(path, err);
	unlink(path);
	return cfg;
}

/* Assert that text is refused with a message holding every needle. */
/* text loads, and [section] key is want */
static void expect_loaded_int(const char *text, const char *section, const char *key,
			      long long want)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text(text, &err);

	cr_assert_not_null(cfg, "refused: %s", kf_buf_str(&err));
	cr_expect_eq(kf_config_int(cfg, section, key), want);
	kf_config_free(cfg);
	kf_buf_release(&err);
}

static void assert_refused(const char *text, const char *needle1, const char *needle2)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text(text, &err);

	cr_expect_null(cfg, "config was accepted:\n%s", text);
	kf_config_free(cfg);
	cr_expect(err.len > 0, "no message for:\n%s", text);
	cr_expect(err.len > 0 && err.data[err.len - 1] == '\n', "message lacks a newline: %s",
		  kf_buf_str(&err));
	cr_expect_not_null(strstr(kf_buf_str(&err), needle1), "'%s' not in: %s", needle1,
			   kf_buf_str(&err));
	if (needle2)
		cr_expect_not_null(strstr(kf_buf_str(&err), needle2), "'%s' not in: %s",
				   needle2, kf_buf_str(&err));
	kf_buf_release(&err);
}

Test(config, defaults)
{
	struct kf_config *cfg = kf_config_defaults();

	cr_assert_not_null(cfg);
	cr_expect_eq(kf_config_int(cfg, "Redis", "Port"), 6379);
	cr_expect_eq(kf_config_int(cfg, "Api", "Workers"), 16);
	cr_expect_eq(kf_config_int(cfg, "Api", "MaxBodyBytes"), 65536);
	cr_expect_eq(kf_config_int(cfg, "Websocket", "PingLastTimeSec"), 50);
	cr_expect_eq(kf_config_int(cfg, "Relay", "RedisSpinUs"), 150);
	cr_expect_not(kf_config_bool(cfg, "Api", "CookieSecure"));
	cr_expect_str_eq(kf_config_str(cfg, "Redis", "KeyPrefix"), "kf:");
	cr_expect_str_eq(kf_config_str(cfg, "Redis", "Password"), "");
	cr_expect_str_eq(kf_config_str(cfg, "Log", "Level"), "info");
	cr_expect_str_eq(kf_config_str(cfg, "Events", "Backend"), "none");
	cr_expect_str_eq(kf_config_str(cfg, "Relay", "PublicUrl"), "ws://127.0.0.1");
	cr_expect_str_eq(kf_config_path(cfg), "");
	kf_config_free(cfg);
}

Test(config, free_null_is_noop)
{
	kf_config_free(NULL);
}

Test(config, file_overrides_defaults)
{
	struct kf_buf err = KF_BUF_INIT;
	char path[64];
	struct kf_config *cfg;

	write_temp(path, "; a comment\n"
			 "[Redis]\n"
			 "Port = 6380\n"
			 "KeyPrefix = test:\n"
			 "\n"
			 "[Api]\n"
			 "Workers = 8\n"
			 "CookieSecure = yes\n"
			 "CorsAllowOrigins = https://a.example, https://b.example\n"
			 "\n"
			 "[Log]\n"
			 "Level = DEBUG\n"
			 "\n"
			 "[Relay]\n"
			 "PublicUrl = wss://chat.example.com\n"
			 "\n"
			 "[Messages]\n"
			 "NoAgent = \xe6\x9a\x82\xe6\x97\xa0\xe5\xae\xa2\xe6\x9c\x8d\n");
	cfg = kf_config_load(path, &err);
	cr_assert_not_null(cfg, "refused: %s", kf_buf_str(&err));
	cr_expect_eq(err.len, 0);
	cr_expect_eq(kf_config_int(cfg, "Redis", "Port"), 6380);
	cr_expect_str_eq(kf_config_str(cfg, "Redis", "KeyPrefix"), "test:");
	cr_expect_eq(kf_config_int(cfg, "Api", "Workers"), 8);
	cr_expect(kf_config_bool(cfg, "Api", "CookieSecure"));
	cr_expect_str_eq(kf_config_str(cfg, "Api", "CorsAllowOrigins"),
			 "https://a.example, https://b.example");
	/* an enum is stored lowercased */
	cr_expect_str_eq(kf_config_str(cfg, "Log", "Level"), "debug");
	cr_expect_str_eq(kf_config_str(cfg, "Relay", "PublicUrl"), "wss://chat.example.com");
	cr_expect_str_eq(kf_config_str(cfg, "Messages", "NoAgent"),
			 "\xe6\x9a\x82\xe6\x97\xa0\xe5\xae\xa2\xe6\x9c\x8d");
	/* untouched keys keep their defaults */
	cr_expect_eq(kf_config_int(cfg, "Db", "PortMaster"), 3306);
	cr_expect_str_eq(kf_config_path(cfg), path);
	kf_config_free(cfg);
	kf_buf_release(&err);
	unlink(path);
}

Test(config, sample_file_loads)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = kf_config_load("conf/kefu.ini.sample", &err);

	if (!cfg && access("conf/kefu.ini.sample", R_OK) != 0) {
		kf_buf_release(&err);
		cr_skip_test("conf/kefu.ini.sample not found (run from the repository root)");
	}
	cr_assert_not_null(cfg, "the sample config is refused: %s", kf_buf_str(&err));
	cr_expect_eq(kf_config_int(cfg, "Redis", "Port"), 6379);
	kf_config_free(cfg);
	kf_buf_release(&err);
}

Test(config, empty_file_gives_defaults)
{
	expect_loaded_int("", "Api", "Workers", 16);
}

Test(config, keys_are_case_insensitive)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text("[REDIS]\nport = 7000\n[api]\nMAXBODYBYTES = 1024\n",
					  &err);

	cr_assert_not_null(cfg, "refused: %s", kf_buf_str(&err));
	cr_expect_eq(kf_config_int(cfg, "Redis", "Port"), 7000);
	cr_expect_eq(kf_config_int(cfg, "redis", "PORT"), 7000);
	cr_expect_eq(kf_config_int(cfg, "Api", "MaxBodyBytes"), 1024);
	kf_config_free(cfg);
	kf_buf_release(&err);
}

Test(config, bool_spellings)
{
	static const char *const yes[] = { "true", "Yes", "ON", "1" };
	static const char *const no[] = { "false", "No", "off", "0" };

	for (size_t i = 0; i < KF_ARRAY_LEN(yes); i++) {
		struct kf_buf err = KF_BUF_INIT;
		char text[128];
		struct kf_config *cfg;

		cr_assert(snprintf(text, sizeof(text), "[Api]\nCookieSecure = %s\n", yes[i]) > 0);
		cfg = load_text(text, &err);
		cr_assert_not_null(cfg, "'%s' refused: %s", yes[i], kf_buf_str(&err));
		cr_expect(kf_config_bool(cfg, "Api", "CookieSecure"), "'%s' is not true", yes[i]);
		kf_config_free(cfg);

		cr_assert(snprintf(text, sizeof(text), "[Api]\nCookieSecure = %s\n", no[i]) > 0);
		cfg = load_text(text, &err);
		cr_assert_not_null(cfg, "'%s' refused: %s", no[i], kf_buf_str(&err));
		cr_expect_not(kf_config_bool(cfg, "Api", "CookieSecure"), "'%s' is not false",
			      no[i]);
		kf_config_free(cfg);
		kf_buf_release(&err);
	}
}

Test(config, int_bounds_are_inclusive)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text("[Redis]\nPort = 65535\nDb = 0\n", &err);

	cr_assert_not_null(cfg, "refused: %s", kf_buf_str(&err));
	cr_expect_eq(kf_config_int(cfg, "Redis", "Port"), 65535);
	kf_config_free(cfg);
	kf_buf_release(&err);
}

Test(config, unknown_section)
{
	assert_refused("[Nope]\nFoo = 1\n", "nope", "unknown section");
}

Test(config, unknown_key)
{
	assert_refused("[Redis]\nPorts = 6379\n", "[Redis] ports", "unknown key");
}

Test(config, int_not_a_number)
{
	assert_refused("[Redis]\nPort = abc\n", "[Redis] Port", "'abc'");
	assert_refused("[Redis]\nPort = 12abc\n", "[Redis] Port", "whole number");
	assert_refused("[Redis]\nPort = 1.5\n", "[Redis] Port", "whole number");
	assert_refused("[Redis]\nPort = 99999999999999999999999\n", "[Redis] Port",
		       "whole number");
}

Test(config, int_out_of_range)
{
	assert_refused("[Redis]\nPort = 70000\n", "[Redis] Port", "out of range");
	assert_refused("[Redis]\nPort = 0\n", "[Redis] Port", "out of range");
	assert_refused("[Api]\nWorkers = -1\n", "[Api] Workers", "out of range");
	assert_refused("[Relay]\nRedisSpinUs = -1\n", "[Relay] RedisSpinUs", "out of range");
	assert_refused("[Relay]\nRedisSpinUs = 10001\n", "[Relay] RedisSpinUs", "out of range");
	assert_refused("[Relay]\nRedisSpinUs = 1e3\n", "[Relay] RedisSpinUs", "whole number");
}

Test(config, bad_bool)
{
	assert_refused("[Api]\nCookieSecure = maybe\n", "[Api] CookieSecure", "'maybe'");
}

Test(config, bad_enum)
{
	assert_refused("[Log]\nLevel = loud\n", "[Log] Level", "'loud'");
	assert_refused("[Events]\nBackend = redis\n", "[Events] Backend", "none|mq|kafka|both");
}

Test(config, string_too_long)
{
	struct kf_buf text = KF_BUF_INIT;

	kf_buf_adds(&text, "[Redis]\nKeyPrefix = ");
	for (int i = 0; i < 65; i++)
		kf_buf_addc(&text, 'x');
	kf_buf_adds(&text, "\n");
	assert_refused(kf_buf_str(&text), "[Redis] KeyPrefix", "longer than 64");
	kf_buf_release(&text);
}

Test(config, public_url_must_be_ws)
{
	assert_refused("[Relay]\nPublicUrl = http://chat.example.com\n", "[Relay] PublicUrl",
		       "'http://chat.example.com'");
}

Test(config, workers_need_connections)
{
	assert_refused("[Api]\nWorkers = 20\n[Db]\nMaxOpenConns = 10\n", "[Api] Workers",
		       "MaxOpenConns");
}

/* an older file that allows fewer connections than the default workers */
Test(config, default_workers_fit_connections)
{
	expect_loaded_int("[Db]\nMaxOpenConns = 10\n", "Api", "Workers", 10);
}

Test(config, syntax_error)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text("[Redis]\nthis line has no equals sign\n", &err);

	cr_expect_null(cfg);
	kf_config_free(cfg);
	cr_expect(err.len > 0);
	cr_expect_not_null(strstr(kf_buf_str(&err), "/tmp/kefu-test-config-"), "%s",
			   kf_buf_str(&err));
	kf_buf_release(&err);
}

Test(config, missing_file)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = kf_config_load("/tmp/kefu-test-no-such-dir/none.ini", &err);

	cr_expect_null(cfg);
	cr_expect_not_null(strstr(kf_buf_str(&err), "/tmp/kefu-test-no-such-dir/none.ini"), "%s",
			   kf_buf_str(&err));
	cr_expect_not_null(strstr(kf_buf_str(&err), "unable to read"), "%s", kf_buf_str(&err));
	kf_buf_release(&err);
}

Test(config, several_errors_at_once)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg = load_text("[Redis]\n"
					  "Port = abc\n"
					  "Bogus = 1\n"
					  "[Log]\n"
					  "Level = loud\n"
					  "[Api]\n"
					  "CookieSecure = perhaps\n"
					  "Workers = 0\n",
					  &err);
	const char *s = kf_buf_str(&err);
	size_t lines = 0;

	cr_expect_null(cfg);
	kf_config_free(cfg);
	cr_expect_not_null(strstr(s, "[Redis] Port"), "%s", s);
	cr_expect_not_null(strstr(s, "[Redis] bogus"), "%s", s);
	cr_expect_not_null(strstr(s, "[Log] Level"), "%s", s);
	cr_expect_not_null(strstr(s, "[Api] CookieSecure"), "%s", s);
	cr_expect_not_null(strstr(s, "[Api] Workers"), "%s", s);
	for (size_t i = 0; i < err.len; i++)
		lines += err.data[i] == '\n';
	cr_expect_eq(lines, 5, "expected one line per problem, got:\n%s", s);
	kf_buf_release(&err);
}

Test(config, errors_are_appended)
{
	struct kf_buf err = KF_BUF_INIT;
	struct kf_config *cfg;

	kf_buf_adds(&err, "earlier\n");
	cfg = load_text("[Redis]\nPort = abc\n", &err);
	cr_expect_null(cfg);
	cr_expect_eq(strncmp(kf_buf_str(&err), "earlier\n[Redis] Port", 20), 0, "%s",
		     kf_buf_str(&err));
	kf_buf_release(&err);
}

/*
 * Regression (was a bug, now fixed): a key written before any [Section] line is
 * silently dropped.  iniparser stores it as ":port", which
 * iniparser_getnsec() does not count as a section, so kf_config_load()
 * never looks at it and loads the file without a word, against the
 * contract that every unknown key is reported.
 */
Test(config, key_outside_section_is_reported)
{
	assert_refused("Port = 1\n[Redis]\nHost = localhost\n", "port", "unknown");
}

Test(config, unknown_name_in_getter_aborts, .signal = SIGABRT)
{
	struct kf_config *cfg = kf_config_defaults();

	kf_log_set_file("/dev/null"); /* the abort is expected: keep its log line quiet */
	(void)kf_config_int(cfg, "Redis", "NoSuchKey");
	kf_config_free(cfg);
}
