/*
 * l_pcap.c: rtmp.pcap, captured TCP for the capture tools.
 *
 *   local cap = assert(rtmp.pcap.open("session.pcapng"))   -- pcap or pcapng
 *   for pkt in cap.next, cap do ... end                     -- TCP segments only
 *   local f = rtmp.pcap.flow()                              -- one direction
 *   local bytes = f:add(pkt.seq, pkt.syn, pkt.payload)      -- what is now in order
 *   local hello = rtmp.pcap.tls(first_bytes)                -- a TLS direction's hello
 *
 * libpcap reads the file; core/tcpflow.c takes frames apart and puts
 * each direction's bytes back in order; core/tlsinfo.c reads what a TLS
 * connection negotiated.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>

#include "l_rtmp.h"
#include "../core/buf.h"
#include "../core/error.h"
#include "../core/tcpflow.h"
#include "../core/tlsinfo.h"

#define PCAP_MT "rtmp.pcap"
#define FLOW_MT "rtmp.tcpflow"

typedef struct lpcap {
    pcap_t *p;
    int     linktype;
    lua_Integer skipped;   /* TCP frames cut short by the snap length */
} lpcap;

typedef struct lflow {
    rtmp_tcpflow *f;
} lflow;

/* ---- files ---- */

static lpcap *check_pcap(lua_State *L)
{
    lpcap *c = luaL_checkudata(L, 1, PCAP_MT);
    if (!c->p)
        luaL_error(L, "capture is closed");
    return c;
}

/* libpcap's DLT_ value for a file's link type, as the LINKTYPE_ number
 * core/tcpflow.h uses (they differ for raw IP and OpenBSD loopback). */
static int link_type(int dlt)
{
    switch (dlt) {
    case DLT_NULL: return RTMP_LINK_NULL;
    case DLT_EN10MB: return RTMP_LINK_ETHERNET;
    case DLT_RAW: return RTMP_LINK_RAW;
    case DLT_LOOP: return RTMP_LINK_LOOP;
    case DLT_LINUX_SLL: return RTMP_LINK_LINUX_SLL;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2: return RTMP_LINK_LINUX_SLL2;
#endif
#ifdef DLT_IPV4
    case DLT_IPV4: return RTMP_LINK_IPV4;
    case DLT_IPV6: return RTMP_LINK_IPV6;
#endif
    default: return -1;
    }
}

/* rtmp.pcap.open(path) -> cap | nil, err */
static int l_open(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[PCAP_ERRBUF_SIZE] = "";
    lpcap *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->p = NULL;
    c->skipped = 0;
    luaL_setmetatable(L, PCAP_MT);
    c->p = pcap_open_offline(path, err);
    if (!c->p) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, err[0] ? err : "cannot read");
        return 2;
    }
    c->linktype = link_type(pcap_datalink(c->p));
    return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
    lua_pushinteger(L, v);
    lua_setfield(L, -2, k);
}

static void set_bool(lua_State *L, const char *k, int v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, k);
}

static void set_addr(lua_State *L, const char *k, int family, const uint8_t *a)
{
    char s[80];
    rtmp_tcp_endpoint(family, a, 0, s, sizeof s);
    /* drop the ":0" and, for IPv6, the brackets */
    char *colon = strrchr(s, ':');
    *colon = '\0';
    if (s[0] == '[') {
        s[strlen(s) - 1] = '\0';
        lua_pushstring(L, s + 1);
    } else {
        lua_pushstring(L, s);
    }
    lua_setfield(L, -2, k);
}

/* cap:next() -> pkt | nil at the end | nil, err.  Frames that are not
 * TCP are skipped; TCP inside GTP-U, GRE or VXLAN is taken out of its
 * tunnels (pkt.encap names them, outermost first); a frame whose headers run past the captured bytes (a
 * short snap length) is skipped and counted in cap:skipped(). */
static int l_next(lua_State *L)
{
    lpcap *c = check_pcap(L);
    for (;;) {
        struct pcap_pkthdr *ph;
        const u_char *data;
        int rc = pcap_next_ex(c->p, &ph, &data);
        if (rc == PCAP_ERROR_BREAK)
            return 0;
        if (rc < 0) {
            lua_pushnil(L);
            lua_pushstring(L, pcap_geterr(c->p));
            return 2;
        }
        if (rc == 0)
            continue;
        rtmp_tcp_seg seg;
        int prc = rtmp_tcp_parse(c->linktype, data, ph->caplen, &seg);
        if (prc < 0)
            c->skipped++;
        if (prc <= 0)
            continue;
        lua_createtable(L, 0, 14);
        lua_pushnumber(L, (double)ph->ts.tv_sec + (double)ph->ts.tv_usec / 1e6);
        lua_setfield(L, -2, "time");
        set_addr(L, "src", seg.family, seg.src);
        set_addr(L, "dst", seg.family, seg.dst);
        set_int(L, "sport", seg.sport);
        set_int(L, "dport", seg.dport);
        set_int(L, "seq", seg.seq);
        set_int(L, "ack", seg.ack);
        set_bool(L, "syn", seg.flags & RTMP_TCP_SYN);
        set_bool(L, "fin", seg.flags & RTMP_TCP_FIN);
        set_bool(L, "rst", seg.flags & RTMP_TCP_RST);
        set_bool(L, "ack_flag", seg.flags & RTMP_TCP_ACK);
        lua_pushlstring(L, (const char *)seg.payload, seg.len);
        lua_setfield(L, -2, "payload");
        if (seg.encap[0]) {
            lua_pushstring(L, seg.encap);
            lua_setfield(L, -2, "encap");
        }
        return 1;
    }
}

static int l_close(lua_State *L)
{
    lpcap *c = luaL_checkudata(L, 1, PCAP_MT);
    if (c->p)
        pcap_close(c->p);
    c->p = NULL;
    return 0;
}

/* cap:skipped() -> frames whose headers ran past the captured bytes */
static int l_skipped(lua_State *L)
{
    lua_pushinteger(L, check_pcap(L)->skipped);
    return 1;
}

/* cap:linktype() -> the pcap LINKTYPE_ number */
static int l_linktype(lua_State *L)
{
    lua_pushinteger(L, check_pcap(L)->linktype);
    return 1;
}

/* ---- one direction of a connection ---- */

static lflow *check_flow(lua_State *L)
{
    lflow *f = luaL_checkudata(L, 1, FLOW_MT);
    if (!f->f)
        luaL_error(L, "flow is closed");
    return f;
}

/* rtmp.pcap.flow([max_pending]) -> flow */
static int l_flow(lua_State *L)
{
    lua_Integer max = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, max >= 0, 1, "must not be negative");
    lflow *f = lua_newuserdatauv(L, sizeof *f, 0);
    f->f = NULL;
    luaL_setmetatable(L, FLOW_MT);
    f->f = rtmp_tcpflow_new((size_t)max);
    if (!f->f)
        return luaL_error(L, "out of memory");
    return 1;
}

static int collect(void *ud, const uint8_t *p, size_t n)
{
    luaL_addlstring(ud, (const char *)p, n);
    return 0;
}

/* flow:add(seq, syn, payload) -> the bytes now in order ("" when none) */
static int l_flow_add(lua_State *L)
{
    lflow *f = check_flow(L);
    lua_Integer seq = luaL_checkinteger(L, 2);
    int syn = lua_toboolean(L, 3);
    size_t n;
    const char *p = luaL_optlstring(L, 4, "", &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int rc = rtmp_tcpflow_add(f->f, (uint32_t)seq, syn, (const uint8_t *)p, n, collect, &b);
    if (rc < 0)
        return luaL_error(L, "%s", rtmp_strerror(rc));
    luaL_pushresult(&b);
    return 1;
}

/* flow:flush() -> what waited behind holes, the holes skipped */
static int l_flow_flush(lua_State *L)
{
    lflow *f = check_flow(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    rtmp_tcpflow_flush(f->f, collect, &b);
    luaL_pushresult(&b);
    return 1;
}

/* flow:gaps(), flow:emitted(), flow:pending() -> byte counts */
static int l_flow_gaps(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rtmp_tcpflow_gaps(check_flow(L)->f));
    return 1;
}

static int l_flow_emitted(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rtmp_tcpflow_emitted(check_flow(L)->f));
    return 1;
}

static int l_flow_pending(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)rtmp_tcpflow_pending(check_flow(L)->f));
    return 1;
}

static int l_flow_gc(lua_State *L)
{
    lflow *f = luaL_checkudata(L, 1, FLOW_MT);
    rtmp_tcpflow_free(f->f);
    f->f = NULL;
    return 0;
}

/* ---- TLS ---- */

/* [-0, +1, m] a value's name from its table, else its number as "0x%04x" */
static void push_named(lua_State *L, const char *name, unsigned id)
{
    char hex[8];
    if (!name) {
        snprintf(hex, sizeof hex, "0x%04x", id & 0xffff);
        name = hex;
    }
    lua_pushstring(L, name);
}

/* [-0, +1, m] a list of 16-bit values as names (versions) or numbers */
static void push_list(lua_State *L, const uint16_t *v, unsigned n, const char *(*name)(uint16_t))
{
    lua_createtable(L, (int)n, 0);
    for (unsigned i = 0; i < n; i++) {
        if (name)
            push_named(L, name(v[i]), v[i]);
        else
            lua_pushinteger(L, v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* rtmp.pcap.tls(bytes) -> hello | false | nil, err, code: the first
 * hello (or alert) of one direction of a TLS connection, from its first
 * bytes (core/tlsinfo.h; docs/CAPTURE.md has the fields).  false when
 * the bytes end before it is complete; nil, message, error name
 * ("TLS_RECORD": not TLS at all) when they are not a hello. */
static int l_tls(lua_State *L)
{
    size_t n;
    const char *p = luaL_checklstring(L, 1, &n);
    rtmp_tls_hello *h = lua_newuserdatauv(L, sizeof *h, 0);
    int rc = rtmp_tls_hello_read(h, (const uint8_t *)p, n);
    if (rc == 0) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, rtmp_strerror(rc));
        lua_pushstring(L, rtmp_errname(rc));
        return 3;
    }
    lua_createtable(L, 0, 16);
    set_int(L, "bytes", (lua_Integer)h->used);
    push_named(L, rtmp_tls_version_name(h->record_version), h->record_version);
    lua_setfield(L, -2, "record_version");
    if (h->type == RTMP_TLS_ALERT) {
        push_named(L, rtmp_tls_alert_name(h->alert_desc), h->alert_desc);
        lua_setfield(L, -2, "alert");
        set_int(L, "alert_id", h->alert_desc);
        if (h->alert_level == 1 || h->alert_level == 2)
            lua_pushstring(L, h->alert_level == 1 ? "warning" : "fatal");
        else
            lua_pushinteger(L, h->alert_level);
        lua_setfield(L, -2, "level");
        return 1;
    }
    lua_pushstring(L, h->type == RTMP_TLS_CLIENT_HELLO ? "client" : "server");
    lua_setfield(L, -2, "hello");
    push_named(L, rtmp_tls_version_name(h->legacy_version), h->legacy_version);
    lua_setfield(L, -2, "legacy_version");
    push_named(L, rtmp_tls_version_name(h->version), h->version);
    lua_setfield(L, -2, "version");
    set_int(L, "version_id", h->version);
    if (h->has_versions) {
        push_list(L, h->versions, h->nversions, rtmp_tls_version_name);
        lua_setfield(L, -2, "versions");
    }
    if (h->type == RTMP_TLS_CLIENT_HELLO) {
        push_list(L, h->ciphers, h->nciphers, NULL);
        lua_setfield(L, -2, "ciphers");
        set_int(L, "ciphers_total", h->ciphers_total);
    } else {
        set_int(L, "cipher", h->cipher);
        push_named(L, rtmp_tls_cipher_name(h->cipher), h->cipher);
        lua_setfield(L, -2, "cipher_name");
        if (h->has_group) {
            push_named(L, rtmp_tls_group_name(h->group), h->group);
            lua_setfield(L, -2, "group");
        }
        set_bool(L, "hello_retry", h->hello_retry);
    }
    if (h->sni) {
        lua_pushlstring(L, (const char *)h->sni, h->sni_len);
        lua_setfield(L, -2, "sni");
    }
    if (h->alpn_total) {
        lua_createtable(L, (int)h->nalpn, 0);
        for (unsigned i = 0; i < h->nalpn; i++) {
            lua_pushlstring(L, (const char *)h->alpn[i], h->alpn_len[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "alpn");
    }
    set_int(L, "extensions", h->extensions);
    return 1;
}

/* rtmp.pcap.tls_walk(bytes) -> { records, bytes, partial, handshake,
 * application_data, alert, change_cipher_spec, heartbeat }: the TLS
 * records that follow one another from the first byte (bytes: how far
 * they go; partial: the last one is cut short by the end of the input). */
static int l_tls_walk(lua_State *L)
{
    size_t n;
    const char *p = luaL_checklstring(L, 1, &n);
    rtmp_tls_walk_stats st;
    size_t walked = rtmp_tls_walk((const uint8_t *)p, n, &st);
    static const char *const kinds[] = { "change_cipher_spec", "alert", "handshake", "application_data",
                                         "heartbeat" };
    lua_createtable(L, 0, 8);
    set_int(L, "records", st.records);
    set_int(L, "bytes", (lua_Integer)walked);
    set_bool(L, "partial", st.partial);
    for (int i = 0; i < 5; i++)
        set_int(L, kinds[i], st.by_type[i]);
    return 1;
}

void rtmp_l_open_pcap(lua_State *L)
{
    static const luaL_Reg pcap_methods[] = {
        { "next", l_next }, { "close", l_close }, { "linktype", l_linktype }, { "skipped", l_skipped },
        { NULL, NULL }
    };
    static const luaL_Reg flow_methods[] = {
        { "add", l_flow_add }, { "flush", l_flow_flush }, { "gaps", l_flow_gaps },
        { "emitted", l_flow_emitted }, { "pending", l_flow_pending }, { "close", l_flow_gc },
        { NULL, NULL }
    };
    luaL_newmetatable(L, PCAP_MT);
    luaL_newlib(L, pcap_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);

    luaL_newmetatable(L, FLOW_MT);
    luaL_newlib(L, flow_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_flow_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
    lua_pushcfunction(L, l_tls);
    lua_setfield(L, -2, "tls");
    lua_pushcfunction(L, l_tls_walk);
    lua_setfield(L, -2, "tls_walk");
    lua_pushcfunction(L, l_flow);
    lua_setfield(L, -2, "flow");
    lua_setfield(L, -2, "pcap");
}
