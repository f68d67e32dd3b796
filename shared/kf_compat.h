/*
 * kf_compat.h - included first by every kefu source file.
 *
 * Sets the feature-test macros once so that every translation unit sees the
 * same POSIX surface, then pulls in banned.h so that unsafe string functions
 * are compile errors everywhere.
 */
#ifndef KF_COMPAT_H
#define KF_COMPAT_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define KF_COLD __attribute__((cold))
#define KF_NORETURN __attribute__((noreturn))
#define KF_WUR __attribute__((warn_unused_result))
#else
#define KF_PRINTF(f, a)
#define KF_COLD
#define KF_NORETURN
#define KF_WUR
#endif

#define KF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#include "banned.h"

#endif
