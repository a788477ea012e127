/*
 * l_group.h: the group object (l_group.c), for connections that forward
 * a published stream to one (conn:forward, l_conn.c).
 */
#ifndef RTMP_L_GROUP_H
#define RTMP_L_GROUP_H

#include "l_rtmp.h"
#include "../core/group.h"

/* [-0, +0, v] the group at idx; raises when it is not one. */
rtmp_group *rtmp_l_group_check(lua_State *L, int idx);

#endif
