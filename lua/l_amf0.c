/* Placeholder: filled in by the amf0 part of the binding. */
#include "l_rtmp.h"

void rtmp_l_open_amf0(lua_State *L) { (void)L; }
