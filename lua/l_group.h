/*
 * l_group.h: the group object (l_group.c), for what a group may hold
 * (connections, sessions) and what reads a group's box (l_forward.c).
 *
 * A group holds connections (l_conn.h) and socket-free sessions
 * (l_session.c): each is a core connection (core/conn.h) to the group.
 */
#ifndef RTMP_L_GROUP_H
#define RTMP_L_GROUP_H

#include "l_rtmp.h"
#include "../core/conn.h"
#include "../core/group.h"

/* [-0, +0, v] the group at idx; raises when it is not one. */
rtmp_group *rtmp_l_group_check(lua_State *L, int idx);

/* A group's userdata ("rtmp.group") begins with its rtmp_group pointer
 * (NULL once finalized): l_forward.c reads it without calling l_group.c,
 * which calls l_conn.c (no cycle). */
#define RTMP_L_GROUP_MT "rtmp.group"

/* Sessions ("rtmp.session", l_session.c) a group may hold: their
 * userdata begins with these slots, which the group reads. */
#define RTMP_L_SESSION_MT "rtmp.session"
typedef struct rtmp_l_member {
    rtmp_conn_core *cc;   /* NULL once the session is freed */
    rtmp_mediaq    *mq;   /* slow-reader state (core/group.c), NULL until used */
} rtmp_l_member;

#endif
