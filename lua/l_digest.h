/*
 * l_digest.h: digests of byte strings (l_digest.c), from libcrypto.
 */
#ifndef RTMP_L_DIGEST_H
#define RTMP_L_DIGEST_H

#include "l_rtmp.h"

/* [-0, +0, m] rtmp.sha256 into the module table on top. */
void rtmp_l_open_digest(lua_State *L);

#endif
