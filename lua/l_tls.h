/*
 * l_tls.h: what a TLS connection negotiated, for Lua (l_tls.c).
 */
#ifndef RTMP_L_TLS_H
#define RTMP_L_TLS_H

#include "l_rtmp.h"
#include "../core/net.h"

/* [-0, +1, m] conn.tls: { version =, cipher =, sni =, ktls_send =,
 * ktls_recv =, records =, peer_verified = } of c (records: who makes
 * the output records, "kernel", "luartmp" or "openssl"; handshake = false and only sni
 * while the TLS handshake runs), or false for a plain connection.
 * Returns 1. */
int rtmp_l_push_tls(lua_State *L, const rtmp_conn *c);

#endif
