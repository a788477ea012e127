/*
 * l_digest.c: rtmp.sha256(bytes) -> 64 lowercase hex digits, from
 * libcrypto (which the handshake already links), for the replay's output
 * hashes and any script that needs one.
 */
#include <openssl/evp.h>

#include "l_rtmp.h"

static int l_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(s, len, md, &n, EVP_sha256(), NULL))
        return luaL_error(L, "sha256: libcrypto failed");
    static const char hex[] = "0123456789abcdef";
    char out[2 * EVP_MAX_MD_SIZE];
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    lua_pushlstring(L, out, 2 * (size_t)n);
    return 1;
}

void rtmp_l_open_digest(lua_State *L)
{
    lua_pushcfunction(L, l_sha256);
    lua_setfield(L, -2, "sha256");
}
