#include "kf_compat.h"

#include "kf_key.h"

#include <sodium.h>

#include "kf_err.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int kf_key_init(void)
{
	return sodium_init() < 0 ? KF_ERR_IO : 0;
}

void kf_key_random(char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
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
