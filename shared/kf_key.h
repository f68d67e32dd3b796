/*
 * kf_key.h - random keys and tokens from libsodium's CSPRNG.
 *
 * kf_key_init() must be called once at start-up (it initialises libsodium
 * and returns KF_ERR_IO if that fails).
 */
#ifndef KF_KEY_H
#define KF_KEY_H

#include "kf_compat.h"

/* Length of session tokens and ws_keys, as in the seed (32 characters). */
#define KF_KEY_LEN 32

int kf_key_init(void);
/* Fill out[0..n-1] with characters from [A-Za-z0-9] and set out[n] = 0. */
void kf_key_random(char *out, size_t n);
/* True when s (n bytes) has the shape of a key: KF_KEY_LEN of [A-Za-z0-9]. */
bool kf_key_valid(const char *s, size_t n);
/*
 * The hex digest (32 chars + NUL in out) under which a token is stored, so
 * that a copy of the store does not hold usable tokens.
 */
void kf_key_digest(const char *token, size_t n, char out[33]);

/*
 * The session token an HTTP request carries: "Authorization: Bearer T"
 * first, else the gid cookie.  Either header may be NULL.  Returns a
 * pointer into that header and its length in *len, or NULL.
 */
const char *kf_key_from_headers(const char *authorization, const char *cookie, size_t *len);

#endif
