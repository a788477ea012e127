/* Placeholder: filled in by the chunk part of the binding. */
#include "l_rtmp.h"

void rtmp_l_open_chunk(lua_State *L) { (void)L; }
