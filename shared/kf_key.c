#include "kf_compat.h"

#include "kf_key.h"

#include <sodium.h>
#include <strings.h>

#include "kf_err.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int kf_key_init(void)
{
	return sodium_init() < 0 ? KF_ERR_IO : 0;
}

/*
 * Characters from random bytes: bytes at or above the largest multiple of
 * the alphabet's size are skipped, so every character is equally likely.
 * One randombytes_buf call (one getrandom system call) yields about 62
 * characters; randombytes_uniform per character made one call each.
 */
void kf_key_random(char *out, size_t n)
{
	const unsigned size = sizeof(alphabet) - 1;
	const unsigned limit = 256 - 256 % size;
	unsigned char pool[64];
	size_t used = sizeof(pool);

	for (size_t i = 0; i < n;) {
		if (used == sizeof(pool)) {
			randombytes_buf(pool, sizeof(pool));
			used = 0;
		}
		if (pool[used] < limit)
			out[i++] = alphabet[pool[used] % size];
		used++;
	}
	sodium_memzero(pool, sizeof(pool));
	out[n] = '\0';
}

bool kf_key_valid(const char *s, size_t n)
{
	if (!s || n != KF_KEY_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

void kf_key_digest(const char *token, size_t n, char out[33])
{
	unsigned char h[16];

	crypto_generichash(h, sizeof(h), (const unsigned char *)token, n, NULL, 0);
	sodium_bin2hex(out, 33, h, sizeof(h));
}

const char *kf_key_from_headers(const char *authorization, const char *cookie, size_t *len)
{
	const char *a = authorization;
	const char *c = cookie;

	*len = 0;
	if (a && strncasecmp(a, "Bearer ", 7) == 0) {
		a += 7;
		while (*a == ' ')
			a++;
		*len = strcspn(a, " ");
		return *len ? a : NULL;
	}
	/* Cookie: name=value; name2=value2 */
	while (c && *c) {
		while (*c == ' ' || *c == ';')
			c++;
		if (strncmp(c, "gid=", 4) == 0) {
			c += 4;
			if (*c == '"')
				c++;
			*len = strcspn(c, "; \"");
			return *len ? c : NULL;
		}
		c = strchr(c, ';');
	}
	return NULL;
}
