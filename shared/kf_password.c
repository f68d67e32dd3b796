#include "kf_compat.h"

#include "kf_password.h"

#include <nettle/sha1.h>
#include <pthread.h>

#include "kf_err.h"

/* The seed's fixed salt (ORIGINAL.md, "Schema"). */
static const char legacy_prefix[] = "3'2W4E($*^%*URFY7\"&HEASfa<@#RCVSATY4590-GA";
static const char legacy_suffix[] = "%9da%$^#'saT\"HS>fdhgashs#@fA";

int kf_password_hash(const struct kf_password_cost *cost, const char *pw, size_t n,
		     char out[KF_PASSWORD_HASH_MAX])
{
	if (crypto_pwhash_str_alg(out, pw, n, cost->ops, cost->mem_bytes,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return KF_ERR_NOMEM;
	return 0;
}

void kf_password_legacy_hash(const char *pw, size_t n, char out[41])
{
	struct sha1_ctx ctx;
	uint8_t digest[SHA1_DIGEST_SIZE];

	sha1_init(&ctx);
	sha1_update(&ctx, sizeof(legacy_prefix) - 1, (const uint8_t *)legacy_prefix);
	sha1_update(&ctx, n, (const uint8_t *)pw);
	sha1_update(&ctx, sizeof(legacy_suffix) - 1, (const uint8_t *)legacy_suffix);
	sha1_digest(&ctx, sizeof(digest), digest);
	sodium_bin2hex(out, 41, digest, sizeof(digest));
}

static bool is_legacy(const char *stored)
{
	size_t i;

	for (i = 0; stored[i]; i++)
		if (!((stored[i] >= '0' && stored[i] <= '9') || (stored[i] >= 'a' && stored[i] <= 'f') ||
		      (stored[i] >= 'A' && stored[i] <= 'F')))
			return false;
	return i == 40;
}

enum kf_password_check kf_password_verify(const struct kf_password_cost *cost,
					  const char *stored, const char *pw, size_t n)
{
	if (!stored || !*stored) {
		kf_password_dummy_verify(cost, pw, n);
		return KF_PASSWORD_BAD;
	}
	if (is_legacy(stored)) {
		char got[41];
		char want[41];

		kf_password_legacy_hash(pw, n, got);
		for (int i = 0; i < 40; i++)
			want[i] = (char)(stored[i] >= 'A' && stored[i] <= 'F' ? stored[i] + 32 : stored[i]);
		want[40] = '\0';
		return sodium_memcmp(got, want, 40) == 0 ? KF_PASSWORD_REHASH : KF_PASSWORD_BAD;
	}
	if (crypto_pwhash_str_verify(stored, pw, n) != 0)
		return KF_PASSWORD_BAD;
	if (crypto_pwhash_str_needs_rehash(stored, cost->ops, cost->mem_bytes) != 0)
		return KF_PASSWORD_REHASH;
	return KF_PASSWORD_OK;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[KF_PASSWORD_HASH_MAX];
static const struct kf_password_cost *dummy_cost;

static void make_dummy(void)
{
	if (kf_password_hash(dummy_cost, "kefu-dummy", 10, dummy_hash) != 0)
		dummy_hash[0] = '\0';
}

void kf_password_dummy_verify(const struct kf_password_cost *cost, const char *pw, size_t n)
{
	dummy_cost = cost;
	pthread_once(&dummy_once, make_dummy);
	if (dummy_hash[0] && crypto_pwhash_str_verify(dummy_hash, pw, n) == 0)
		return; /* cannot happen: the dummy password is not reachable */
}
