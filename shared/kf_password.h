/*
 * kf_password.h - stored password hashes.
 *
 * New hashes are Argon2id strings from libsodium's crypto_pwhash_str.  The
 * seed's legacy format (40 lowercase hex digits: SHA-1 of a fixed prefix,
 * the password and a fixed suffix) is verified so migrated accounts can log
 * in once; the caller must then store a fresh Argon2id hash.
 */
#ifndef KF_PASSWORD_H
#define KF_PASSWORD_H

#include "kf_compat.h"

#include <sodium.h>

#define KF_PASSWORD_HASH_MAX crypto_pwhash_STRBYTES
/* Longest password accepted, in bytes. */
#define KF_PASSWORD_MAX 1024

enum kf_password_check {
	KF_PASSWORD_BAD = 0,    /* does not match (or the hash is unusable) */
	KF_PASSWORD_OK = 1,     /* matches */
	KF_PASSWORD_REHASH = 2, /* matches, but store a new hash */
};

struct kf_password_cost {
	unsigned long long ops;    /* Argon2 iterations */
	size_t mem_bytes;          /* Argon2 memory */
};

/*
 * Hash pw (n bytes) into out (NUL-terminated).  Returns 0, or
 * KF_ERR_NOMEM when the memory limit cannot be allocated.
 */
int kf_password_hash(const struct kf_password_cost *cost, const char *pw, size_t n,
		     char out[KF_PASSWORD_HASH_MAX]);
/* Check pw against stored (Argon2id or legacy).  stored may be NULL. */
enum kf_password_check kf_password_verify(const struct kf_password_cost *cost,
					  const char *stored, const char *pw, size_t n);
/*
 * Spend the time of one verification without a stored hash, so that an
 * unknown user cannot be told from a wrong password by timing.
 */
void kf_password_dummy_verify(const struct kf_password_cost *cost, const char *pw, size_t n);
/* The seed's hash of pw: 40 hex digits + NUL into out. */
void kf_password_legacy_hash(const char *pw, size_t n, char out[41]);

#endif
