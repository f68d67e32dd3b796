/*
 * banned.h - string functions that are easy to misuse are compile errors.
 *
 * Use kf_buf (kf_buf.h) to build strings and snprintf with a checked result
 * for fixed buffers.  System headers are included before this one (by
 * kf_compat.h users), so the macros only affect kefu's own code.
 */
#ifndef KF_BANNED_H
#define KF_BANNED_H

#include <stdio.h>
#include <string.h>

#define KF_BANNED(func) sorry_##func##_is_banned_in_kefu

#undef strcpy
#define strcpy(x, y) KF_BANNED(strcpy)
#undef strcat
#define strcat(x, y) KF_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) KF_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) KF_BANNED(strncat)
#undef sprintf
#define sprintf(...) KF_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) KF_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) KF_BANNED(strtok)
#undef gets
#define gets(x) KF_BANNED(gets)

#endif
