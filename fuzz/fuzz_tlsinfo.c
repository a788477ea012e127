/*
 * fuzz_tlsinfo.c: the TLS hello reader and record walker (core/tlsinfo.c)
 * and rtmp.pcap.tls / rtmp.pcap.tls_walk over them (lua/l_pcap.c).
 *
 * The input is one direction's first bytes.  Checks: the result is 0, 1
 * or an RTMP_ERR_TLS_* code; a hello read lies inside the input (used),
 * its SNI and ALPN names inside the gathered message, its lists within
 * their bounds and totals; every prefix shorter than `used` reads as 0
 * (cut short), never as an error or another hello; the walker never goes
 * past the input and counts whole records only; the Lua functions give a
 * table, false or nil plus an error name with the documented types.
 */
#include "fuzz.h"

#include <stdlib.h>

#include "../core/error.h"
#include "../core/tlsinfo.h"

static const char check[] =
    "local rtmp = require('rtmp')\n"
    "local function opt(v, t, k) assert(v == nil or type(v) == t, k .. ' is ' .. type(v)) end\n"
    "return function(s)\n"
    "  local h, err, code = rtmp.pcap.tls(s)\n"
    "  if h == nil then\n"
    "    assert(type(err) == 'string' and type(code) == 'string' and code:match('^TLS_'), tostring(code))\n"
    "  elseif h then\n"
    "    assert(math.type(h.bytes) == 'integer' and h.bytes <= #s)\n"
    "    if h.alert then assert(type(h.alert) == 'string' and h.hello == nil) else\n"
    "      assert(h.hello == 'client' or h.hello == 'server')\n"
    "      assert(type(h.version) == 'string' and math.type(h.version_id) == 'integer')\n"
    "      opt(h.sni, 'string', 'sni'); opt(h.alpn, 'table', 'alpn'); opt(h.versions, 'table', 'versions')\n"
    "      opt(h.cipher_name, 'string', 'cipher_name'); opt(h.group, 'string', 'group')\n"
    "      for _, a in ipairs(h.alpn or {}) do assert(#a >= 1 and #a <= 255) end\n"
    "    end\n"
    "  end\n"
    "  local w = rtmp.pcap.tls_walk(s)\n"
    "  assert(w.bytes <= #s and w.records == w.handshake + w.application_data + w.alert\n"
    "         + w.change_cipher_spec + w.heartbeat)\n"
    "end\n";

static int inside(const rtmp_tls_hello *h, const uint8_t *p, size_t n)
{
    const uint8_t *lo = h->msg + 4, *hi = h->msg + 4 + h->msg_len;
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void check_hello(const rtmp_tls_hello *h, size_t size)
{
    if (h->used > size)
        fuzz_fail("used %zu of %zu bytes", h->used, size);
    if (h->type == RTMP_TLS_ALERT)
        return;
    if (h->type != RTMP_TLS_CLIENT_HELLO && h->type != RTMP_TLS_SERVER_HELLO)
        fuzz_fail("hello type %d", h->type);
    if (h->msg_len + 4 > RTMP_TLS_MAX_HELLO)
        fuzz_fail("message of %zu bytes", h->msg_len);
    if (h->sni && !inside(h, h->sni, h->sni_len))
        fuzz_fail("SNI outside the hello");
    if (h->nalpn > RTMP_TLS_MAX_LIST || h->nalpn > h->alpn_total)
        fuzz_fail("%u ALPN names of %u", h->nalpn, h->alpn_total);
    for (unsigned i = 0; i < h->nalpn; i++)
        if (h->alpn_len[i] == 0 || !inside(h, h->alpn[i], h->alpn_len[i]))
            fuzz_fail("ALPN name %u outside the hello or empty", i);
    if (h->nversions > RTMP_TLS_MAX_LIST || h->nversions > h->versions_total)
        fuzz_fail("%u versions of %u", h->nversions, h->versions_total);
    if (h->nciphers > RTMP_TLS_MAX_LIST || h->nciphers > h->ciphers_total)
        fuzz_fail("%u cipher suites of %u", h->nciphers, h->ciphers_total);
    if (h->type == RTMP_TLS_SERVER_HELLO && (h->nciphers != 1 || h->ciphers[0] != h->cipher))
        fuzz_fail("a ServerHello with %u cipher suites", h->nciphers);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rtmp_tls_hello *h = malloc(sizeof *h), *pre = malloc(sizeof *pre);
    if (!h || !pre)
        abort();
    int rc = rtmp_tls_hello_read(h, data, size);
    if (rc < 0 && rc != RTMP_ERR_TLS_RECORD && rc != RTMP_ERR_TLS_UNEXPECTED && rc != RTMP_ERR_TLS_MALFORMED
        && rc != RTMP_ERR_TLS_LIMIT)
        fuzz_fail("unexpected code %s", rtmp_errname(rc));
    if (rc > 1)
        fuzz_fail("result %d", rc);
    if (rc == 1) {
        check_hello(h, size);
        /* every prefix before the hello's last record is "cut short":
         * all of them for small inputs, 64 spread over the rest */
        size_t step = h->used <= 2048 ? 1 : h->used / 64;
        for (size_t k = 0; k < h->used; k += step) {
            int prc = rtmp_tls_hello_read(pre, data, k);
            if (prc != 0)
                fuzz_fail("the prefix of %zu bytes (hello at %zu) gives %d", k, h->used, prc);
        }
    }
    rtmp_tls_walk_stats st;
    size_t walked = rtmp_tls_walk(data, size, &st);
    if (walked > size || st.bytes > walked || (!st.partial && walked != st.bytes))
        fuzz_fail("walked %zu (whole records %zu, partial %d) of %zu", walked, st.bytes, st.partial, size);
    unsigned sum = 0;
    for (int i = 0; i < 5; i++)
        sum += st.by_type[i];
    if (sum != st.records || st.bytes < (size_t)st.records * RTMP_TLS_RECORD_HEADER)
        fuzz_fail("%u records, %u by type, %zu bytes", st.records, sum, st.bytes);
    free(h);
    free(pre);
    fuzz_lua(check);
    fuzz_lua_check(data, size);
    return 0;
}
