/*
 * test_key.c - kf_key: random keys, their shape check and the digest under
 * which a token is stored.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include "kf_key.h"

static bool is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void setup(void)
{
	cr_assert_eq(kf_key_init(), 0);
}

TestSuite(key, .init = setup);

Test(key, random_shape)
{
	char k[KF_KEY_LEN + 2];

	memset(k, '#', sizeof(k));
	kf_key_random(k, KF_KEY_LEN);
	cr_expect_eq(k[KF_KEY_LEN], '\0');
	cr_expect_eq(k[KF_KEY_LEN + 1], '#', "wrote past out[n]");
	cr_expect_eq(strlen(k), KF_KEY_LEN);
	for (size_t i = 0; i < KF_KEY_LEN; i++)
		cr_expect(is_alnum(k[i]), "char %zu is 0x%02x", i, (unsigned char)k[i]);
	cr_expect(kf_key_valid(k, strlen(k)));
}

Test(key, random_differs)
{
	char a[KF_KEY_LEN + 1];
	char b[KF_KEY_LEN + 1];

	kf_key_random(a, KF_KEY_LEN);
	kf_key_random(b, KF_KEY_LEN);
	cr_expect_str_neq(a, b);
}

Test(key, random_uses_whole_alphabet)
{
	bool seen[128] = { false };
	char k[1001];
	int kinds = 0;

	kf_key_random(k, 1000);
	cr_expect_eq(strlen(k), 1000);
	for (size_t i = 0; i < 1000; i++) {
		cr_assert(is_alnum(k[i]));
		seen[(unsigned char)k[i]] = true;
	}
	for (int c = 0; c < 128; c++)
		kinds += seen[c];
	/* 62 symbols over 1000 draws: every one should show up */
	cr_expect_geq(kinds, 55, "only %d distinct characters", kinds);
	cr_expect(seen['A'] || seen['Z'] || seen['a'] || seen['z'] || seen['0'] || seen['9']);
}

Test(key, random_is_uniform)
{
	/* 62,000 draws: about 1,000 of each character.  A modulo bias (the
	 * first 256 % 62 = 8 characters 25 % more likely) would push the
	 * chi-squared statistic (61 degrees of freedom, mean 61) far past 140,
	 * which a fair generator exceeds about once in a million runs. */
	enum { DRAWS = 62000 };
	static char k[DRAWS + 1];
	long count[128] = { 0 };
	double chi2 = 0;

	kf_key_random(k, DRAWS);
	for (size_t i = 0; i < DRAWS; i++)
		count[(unsigned char)k[i]]++;
	for (int c = 0; c < 128; c++) {
		if (!is_alnum((char)c))
			continue;
		chi2 += (count[c] - 1000.0) * (count[c] - 1000.0) / 1000.0;
	}
	cr_expect_lt(chi2, 140.0, "chi-squared %.1f: the characters are not equally likely", chi2);
}

Test(key, random_zero_length)
{
	char k[1] = { 'x' };

	kf_key_random(k, 0);
	cr_expect_eq(k[0], '\0');
}

Test(key, valid)
{
	cr_expect(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCDEF", 32));
	cr_expect(kf_key_valid("01234567890123456789012345678901", 32));
	/* only n bytes are looked at */
	cr_expect(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCDEF!!", 32));
}

Test(key, invalid)
{
	cr_expect_not(kf_key_valid(NULL, 32));
	cr_expect_not(kf_key_valid("", 0));
	cr_expect_not(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCDE", 31));
	cr_expect_not(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCDEFG", 33));
	cr_expect_not(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCDE-", 32));
	cr_expect_not(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCD E", 32));
	cr_expect_not(kf_key_valid("abcdefghijklmnop\0rstuvwxyzABCDEF", 32));
	cr_expect_not(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCD\xc3\xa9", 32));
	cr_expect_not(kf_key_valid("abcdefghijklmnopqrstuvwxyzABCDE=", 32));
}

Test(key, digest_stable_hex)
{
	char a[33], b[33], c[33];
	const char *t = "abcdefghijklmnopqrstuvwxyzABCDEF";

	memset(a, '#', sizeof(a));
	kf_key_digest(t, strlen(t), a);
	kf_key_digest(t, strlen(t), b);
	cr_expect_eq(a[32], '\0');
	cr_expect_eq(strlen(a), 32);
	for (int i = 0; i < 32; i++)
		cr_expect(is_lower_hex(a[i]), "char %d is '%c'", i, a[i]);
	cr_expect_str_eq(a, b);
	/* a different token gives a different digest */
	kf_key_digest("abcdefghijklmnopqrstuvwxyzABCDEG", 32, c);
	cr_expect_str_neq(a, c);
	/* the digest is not the token */
	cr_expect_null(strstr(a, "abcdef"));
}

Test(key, digest_known_value)
{
	char d[33];

	/* BLAKE2b with a 16-byte output (crypto_generichash) of "" */
	kf_key_digest("", 0, d);
	cr_expect_str_eq(d, "cae66941d9efbd404e4d88758ea67670");
	/* only n bytes count */
	{
		char e[33];

		kf_key_digest("abc", 2, d);
		kf_key_digest("ab", 2, e);
		cr_expect_str_eq(d, e);
	}
}
