/*
 * kf_config.h - the INI configuration shared by kefu-api, kefu-relay and
 * kefuctl.
 *
 * One table in kf_config.c lists every section and key with its type,
 * default and bounds; conf/kefu.ini.sample documents the same keys.  A
 * loaded config is validated as a whole: every unknown section or key and
 * every bad value is reported (section, key and reason), and loading fails.
 * After loading, a config is read-only and may be shared between threads.
 *
 * Getters take the section and key as written in the table (the lookup is
 * case-insensitive) and abort on a name that is not in the table: that is a
 * programming error, not a user error.
 */
#ifndef KF_CONFIG_H
#define KF_CONFIG_H

#include "kf_compat.h"

struct kf_buf;
struct kf_config;

/*
 * Load and validate path.  On failure returns NULL and appends one line per
 * problem to err (lines end with '\n').  Caller frees with kf_config_free().
 */
struct kf_config *kf_config_load(const char *path, struct kf_buf *err);
/* A config holding every default.  Never NULL. */
struct kf_config *kf_config_defaults(void);
void kf_config_free(struct kf_config *cfg);

long long kf_config_int(const struct kf_config *cfg, const char *section, const char *key);
bool kf_config_bool(const struct kf_config *cfg, const char *section, const char *key);
/* Borrowed; valid while cfg lives.  Never NULL (an unset string is ""). */
const char *kf_config_str(const struct kf_config *cfg, const char *section, const char *key);
/* The path cfg was loaded from ("" for defaults).  Borrowed. */
const char *kf_config_path(const struct kf_config *cfg);

#endif
