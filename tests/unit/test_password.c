/*
 * test_password.c - kf_password: Argon2id hashes, the seed's legacy SHA-1
 * format, and when a stored hash must be replaced.  A cheap Argon2 cost
 * keeps the tests fast.
 */
#include "kf_compat.h"

#include <criterion/criterion.h>

#include "kf_key.h"
#include "kf_password.h"

static const struct kf_password_cost cheap = { 1, 8192 * 1024 };

/* The seed's test vector: legacy_hash(LEGACY_PW) == LEGACY_HASH. */
#define LEGACY_PW "c3677a175c42af337e386a2ab992a312942fc6cc"
#define LEGACY_HASH "76e7cb24c890edb3cfc8b3f66282d8a94274ef83"

static void setup(void)
{
	cr_assert_eq(kf_key_init(), 0);
}

TestSuite(password, .init = setup);

Test(password, hash_and_verify)
{
	char h[KF_PASSWORD_HASH_MAX];
	const char *pw = "correct horse battery staple";

	cr_assert_eq(kf_password_hash(&cheap, pw, strlen(pw), h), 0);
	cr_expect_eq(strncmp(h, "$argon2id$", 10), 0, "%s", h);
	cr_expect_lt(strlen(h), KF_PASSWORD_HASH_MAX);
	cr_expect_null(strstr(h, pw));
	cr_expect_eq(kf_password_verify(&cheap, h, pw, strlen(pw)), KF_PASSWORD_OK);
}

Test(password, hashes_are_salted)
{
	char a[KF_PASSWORD_HASH_MAX], b[KF_PASSWORD_HASH_MAX];

	cr_assert_eq(kf_password_hash(&cheap, "pw", 2, a), 0);
	cr_assert_eq(kf_password_hash(&cheap, "pw", 2, b), 0);
	cr_expect_str_neq(a, b);
	cr_expect_eq(kf_password_verify(&cheap, a, "pw", 2), KF_PASSWORD_OK);
	cr_expect_eq(kf_password_verify(&cheap, b, "pw", 2), KF_PASSWORD_OK);
}

Test(password, wrong_password)
{
	char h[KF_PASSWORD_HASH_MAX];

	cr_assert_eq(kf_password_hash(&cheap, "secret", 6, h), 0);
	cr_expect_eq(kf_password_verify(&cheap, h, "Secret", 6), KF_PASSWORD_BAD);
	cr_expect_eq(kf_password_verify(&cheap, h, "secret!", 7), KF_PASSWORD_BAD);
	cr_expect_eq(kf_password_verify(&cheap, h, "secre", 5), KF_PASSWORD_BAD);
	cr_expect_eq(kf_password_verify(&cheap, h, "", 0), KF_PASSWORD_BAD);
	/* n counts: "secret" with n = 5 is "secre" */
	cr_expect_eq(kf_password_verify(&cheap, h, "secret", 5), KF_PASSWORD_BAD);
}

Test(password, binary_and_utf8_passwords)
{
	char h[KF_PASSWORD_HASH_MAX];
	const char pw[] = "p\0w\xe4\xbd\xa0";

	cr_assert_eq(kf_password_hash(&cheap, pw, sizeof(pw) - 1, h), 0);
	cr_expect_eq(kf_password_verify(&cheap, h, pw, sizeof(pw) - 1), KF_PASSWORD_OK);
	cr_expect_eq(kf_password_verify(&cheap, h, "p", 1), KF_PASSWORD_BAD);
}

Test(password, empty_password_hashes)
{
	char h[KF_PASSWORD_HASH_MAX];

	cr_assert_eq(kf_password_hash(&cheap, "", 0, h), 0);
	cr_expect_eq(kf_password_verify(&cheap, h, "", 0), KF_PASSWORD_OK);
	cr_expect_eq(kf_password_verify(&cheap, h, "x", 1), KF_PASSWORD_BAD);
}

Test(password, null_or_empty_stored)
{
	cr_expect_eq(kf_password_verify(&cheap, NULL, "pw", 2), KF_PASSWORD_BAD);
	cr_expect_eq(kf_password_verify(&cheap, "", "pw", 2), KF_PASSWORD_BAD);
	cr_expect_eq(kf_password_verify(&cheap, "", "", 0), KF_PASSWORD_BAD);
}

Test(password, unusable_stored)
{
	static const char *const bad[] = {
		"*",
		"!locked",
		"$argon2id$garbage",
		"$2y$10$abcdefghijklmnopqrstuv",
		/* 39 and 41 hex digits are not the legacy format */
		"76e7cb24c890edb3cfc8b3f66282d8a94274ef8",
		"76e7cb24c890edb3cfc8b3f66282d8a94274ef833",
		/* 40 characters but not all hex */
		"76e7cb24c890edb3cfc8b3f66282d8a94274ef8g",
	};

	for (size_t i = 0; i < KF_ARRAY_LEN(bad); i++)
		cr_expect_eq(kf_password_verify(&cheap, bad[i], LEGACY_PW, strlen(LEGACY_PW)),
			     KF_PASSWORD_BAD, "'%s' was not refused", bad[i]);
}

Test(password, legacy_vector)
{
	char out[41];

	memset(out, '#', sizeof(out));
	kf_password_legacy_hash(LEGACY_PW, strlen(LEGACY_PW), out);
	cr_expect_eq(out[40], '\0');
	cr_expect_str_eq(out, LEGACY_HASH);
}

Test(password, legacy_verify_needs_rehash)
{
	cr_expect_eq(kf_password_verify(&cheap, LEGACY_HASH, LEGACY_PW, strlen(LEGACY_PW)),
		     KF_PASSWORD_REHASH);
	cr_expect_eq(kf_password_verify(&cheap, LEGACY_HASH, "wrong", 5), KF_PASSWORD_BAD);
	cr_expect_eq(kf_password_verify(&cheap, LEGACY_HASH, LEGACY_PW, strlen(LEGACY_PW) - 1),
		     KF_PASSWORD_BAD);
}

Test(password, legacy_uppercase_stored)
{
	const char *upper = "76E7CB24C890EDB3CFC8B3F66282D8A94274EF83";
	const char *mixed = "76e7CB24c890EDB3cfc8B3F66282d8a94274Ef83";

	cr_expect_eq(kf_password_verify(&cheap, upper, LEGACY_PW, strlen(LEGACY_PW)),
		     KF_PASSWORD_REHASH);
	cr_expect_eq(kf_password_verify(&cheap, mixed, LEGACY_PW, strlen(LEGACY_PW)),
		     KF_PASSWORD_REHASH);
	cr_expect_eq(kf_password_verify(&cheap, upper, "wrong", 5), KF_PASSWORD_BAD);
}

Test(password, legacy_hash_of_other_passwords)
{
	char a[41], b[41];

	kf_password_legacy_hash("admin", 5, a);
	kf_password_legacy_hash("admin2", 6, b);
	cr_expect_eq(strlen(a), 40);
	cr_expect_str_neq(a, b);
	cr_expect_eq(kf_password_verify(&cheap, a, "admin", 5), KF_PASSWORD_REHASH);
	cr_expect_eq(kf_password_verify(&cheap, a, "admin2", 6), KF_PASSWORD_BAD);
}

Test(password, lower_cost_needs_rehash)
{
	const struct kf_password_cost stronger_ops = { 2, 8192 * 1024 };
	const struct kf_password_cost stronger_mem = { 1, 16384 * 1024 };
	char h[KF_PASSWORD_HASH_MAX];

	cr_assert_eq(kf_password_hash(&cheap, "pw", 2, h), 0);
	cr_expect_eq(kf_password_verify(&stronger_ops, h, "pw", 2), KF_PASSWORD_REHASH);
	cr_expect_eq(kf_password_verify(&stronger_mem, h, "pw", 2), KF_PASSWORD_REHASH);
	/* a wrong password is BAD whatever the cost */
	cr_expect_eq(kf_password_verify(&stronger_ops, h, "px", 2), KF_PASSWORD_BAD);
	/* at the configured cost it is OK */
	cr_expect_eq(kf_password_verify(&cheap, h, "pw", 2), KF_PASSWORD_OK);
}

Test(password, dummy_verify_returns)
{
	/* only its timing matters; it must not crash, leak, or need a hash */
	kf_password_dummy_verify(&cheap, "anything", 8);
	kf_password_dummy_verify(&cheap, "", 0);
}
