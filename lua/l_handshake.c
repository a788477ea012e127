/* Placeholder: filled in by the handshake part of the binding. */
#include "l_rtmp.h"

void rtmp_l_open_handshake(lua_State *L) { (void)L; }
