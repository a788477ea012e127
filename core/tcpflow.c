/*
 * tcpflow.c: captured frames to TCP segments, segments to byte streams.
 */
#include "tcpflow.h"
#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- frames ---- */

static int parse_tcp(const uint8_t *p, size_t len, rtmp_tcp_seg *seg)
{
    if (len < 20)
        return RTMP_ERR_TCP_TRUNCATED;
    size_t hl = (size_t)(p[12] >> 4) * 4;
    if (hl < 20 || hl > len)
        return RTMP_ERR_TCP_TRUNCATED;
    seg->sport = be16(p);
    seg->dport = be16(p + 2);
    seg->seq = be32(p + 4);
    seg->ack = be32(p + 8);
    seg->flags = p[13];
    seg->payload = p + hl;
    seg->len = len - hl;
    return 1;
}

static int parse_ip(uint16_t ethertype, const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth);
static int parse_bare_ip(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth);
static int parse_ether(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth);

/* Name one more tunnel in seg->encap (cut short if it ever fills). */
static void add_encap(rtmp_tcp_seg *seg, const char *name, const char *fmt, uint32_t id)
{
    size_t n = strlen(seg->encap);
    if (n + 1 >= sizeof seg->encap)
        return;
    int w = snprintf(seg->encap + n, sizeof seg->encap - n, "%s%s", n ? " / " : "", name);
    if (w < 0 || (size_t)w >= sizeof seg->encap - n || !fmt)
        return;
    n = strlen(seg->encap);
    snprintf(seg->encap + n, sizeof seg->encap - n, fmt, (unsigned)id);
}

/* GTP-U (3GPP TS 29.281): an 8-byte header, 4 more when any of E, S or
 * PN is set, then extension headers while the last byte of the previous
 * one names a next type (each is a length in 4-byte units, including the
 * length and next-type bytes).  Only a G-PDU (type 255) carries a user
 * packet: an IPv4 or IPv6 packet. */
static int parse_gtpu(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 8)
        return RTMP_ERR_TCP_TRUNCATED;
    if (p[0] >> 5 != 1 || !(p[0] & 0x10) || p[1] != 255)
        return 0;                      /* not GTPv1-U, or not a G-PDU */
    size_t total = 8 + (size_t)be16(p + 2);
    if (total > len)
        return RTMP_ERR_TCP_TRUNCATED;
    size_t off = 8;
    if (p[0] & 0x07) {
        if (off + 4 > total)
            return RTMP_ERR_TCP_TRUNCATED;
        uint8_t next = p[off + 3];
        off += 4;
        while (next != 0) {
            if (off + 1 > total)
                return RTMP_ERR_TCP_TRUNCATED;
            size_t ext = (size_t)p[off] * 4;
            if (ext == 0)
                return 0;              /* a zero length cannot end */
            if (off + ext > total)
                return RTMP_ERR_TCP_TRUNCATED;
            next = p[off + ext - 1];
            off += ext;
        }
    }
    add_encap(seg, "GTP-U", " teid=0x%x", be32(p + 4));
    return parse_bare_ip(p + off, total - off, seg, depth + 1);
}

/* VXLAN (RFC 7348): 8 bytes, the I flag set, a 24-bit VNI; an Ethernet
 * frame inside. */
static int parse_vxlan(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 8)
        return RTMP_ERR_TCP_TRUNCATED;
    if (!(p[0] & 0x08))
        return 0;
    add_encap(seg, "VXLAN", " vni=%u", (uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6]);
    return parse_ether(p + 8, len - 8, seg, depth + 1);
}

static int parse_udp(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 8)
        return RTMP_ERR_TCP_TRUNCATED;
    size_t ulen = be16(p + 4);
    if (ulen == 0)
        ulen = len;                    /* jumbograms, offload */
    if (ulen < 8 || ulen > len)
        return RTMP_ERR_TCP_TRUNCATED;
    uint16_t sport = be16(p), dport = be16(p + 2);
    if (dport == 2152 || sport == 2152)
        return parse_gtpu(p + 8, ulen - 8, seg, depth);
    if (dport == 4789 || sport == 4789)
        return parse_vxlan(p + 8, ulen - 8, seg, depth);
    return 0;
}

/* GRE (RFC 2784, 2890): flags C (checksum and reserved, 4 bytes), K (key,
 * 4), S (sequence, 4); version 0 only; routing (R) is not taken apart. */
static int parse_gre(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 4)
        return RTMP_ERR_TCP_TRUNCATED;
    uint16_t flags = be16(p);
    if ((flags & 0x0007) != 0 || (flags & 0x4000))
        return 0;                      /* PPTP's version 1, or source routing */
    uint16_t proto = be16(p + 2);
    size_t off = 4;
    if (flags & 0x8000)
        off += 4;
    int has_key = (flags & 0x2000) != 0;
    size_t key_off = off;
    if (has_key)
        off += 4;
    if (flags & 0x1000)
        off += 4;
    if (off > len)
        return RTMP_ERR_TCP_TRUNCATED;
    if (proto != 0x0800 && proto != 0x86DD && proto != 0x6558)
        return 0;                      /* ERSPAN, PPP, MPLS, ... */
    if (has_key)
        add_encap(seg, "GRE", " key=0x%x", be32(p + key_off));
    else
        add_encap(seg, "GRE", NULL, 0);
    if (proto == 0x6558)
        return parse_ether(p + off, len - off, seg, depth + 1);
    return parse_ip(proto, p + off, len - off, seg, depth + 1);
}

/* What an IP packet carries: TCP, or a tunnel to take apart. */
static int parse_l4(uint8_t proto, const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (proto == 6)
        return parse_tcp(p, len, seg);
    if (depth >= RTMP_TCP_MAX_ENCAP)
        return 0;
    if (proto == 17)
        return parse_udp(p, len, seg, depth);
    if (proto == 47)
        return parse_gre(p, len, seg, depth);
    return 0;
}

static int parse_ipv4(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 20)
        return RTMP_ERR_TCP_TRUNCATED;
    size_t hl = (size_t)(p[0] & 0x0F) * 4;
    size_t total = be16(p + 2);
    if (hl < 20 || hl > len)
        return RTMP_ERR_TCP_TRUNCATED;
    if (p[9] != 6 && p[9] != 17 && p[9] != 47)
        return 0;
    if (be16(p + 6) & 0x3FFF)   /* a fragment (more fragments, or an offset) */
        return 0;
    if (total == 0)
        total = len;          /* segmentation offload: the length is left 0 */
    if (total < hl || total > len)
        return RTMP_ERR_TCP_TRUNCATED;    /* snapped short */
    len = total;                          /* drop link-layer padding */
    seg->family = 4;
    memset(seg->src, 0, sizeof seg->src);
    memset(seg->dst, 0, sizeof seg->dst);
    memcpy(seg->src, p + 12, 4);
    memcpy(seg->dst, p + 16, 4);
    return parse_l4(p[9], p + hl, len - hl, seg, depth);
}

static int parse_ipv6(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 40)
        return RTMP_ERR_TCP_TRUNCATED;
    size_t plen = be16(p + 4);
    if (40 + plen > len)
        return RTMP_ERR_TCP_TRUNCATED;
    len = 40 + plen;
    seg->family = 6;
    memcpy(seg->src, p + 8, 16);
    memcpy(seg->dst, p + 24, 16);
    uint8_t next = p[6];
    size_t off = 40;
    for (int hops = 0; hops < 8; hops++) {
        if (next == 6 || next == 17 || next == 47)
            return parse_l4(next, p + off, len - off, seg, depth);
        if (next != 0 && next != 43 && next != 60)
            return 0;                    /* fragments (44), other protocols */
        if (off + 8 > len)
            return RTMP_ERR_TCP_TRUNCATED;
        size_t ext = ((size_t)p[off + 1] + 1) * 8;
        if (off + ext > len)
            return RTMP_ERR_TCP_TRUNCATED;
        next = p[off];
        off += ext;
    }
    return 0;
}

static int parse_ip(uint16_t ethertype, const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (ethertype == 0x0800)
        return parse_ipv4(p, len, seg, depth);
    if (ethertype == 0x86DD)
        return parse_ipv6(p, len, seg, depth);
    return 0;
}

/* The IP version from the first nibble. */
static int parse_bare_ip(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 1)
        return RTMP_ERR_TCP_TRUNCATED;
    if (p[0] >> 4 == 4)
        return parse_ipv4(p, len, seg, depth);
    if (p[0] >> 4 == 6)
        return parse_ipv6(p, len, seg, depth);
    return 0;
}

/* Ethernet II, with 802.1Q / 802.1ad tags. */
static int parse_ether(const uint8_t *p, size_t len, rtmp_tcp_seg *seg, int depth)
{
    if (len < 14)
        return RTMP_ERR_TCP_TRUNCATED;
    size_t off = 12;
    uint16_t type = be16(p + off);
    while (type == 0x8100 || type == 0x88A8) { /* VLAN tags */
        off += 4;
        if (off + 2 > len)
            return RTMP_ERR_TCP_TRUNCATED;
        type = be16(p + off);
    }
    return parse_ip(type, p + off + 2, len - off - 2, seg, depth);
}

int rtmp_tcp_parse(int linktype, const uint8_t *p, size_t len, rtmp_tcp_seg *seg)
{
    memset(seg, 0, sizeof *seg);
    switch (linktype) {
    case RTMP_LINK_ETHERNET:
        return parse_ether(p, len, seg, 0);
    case RTMP_LINK_LINUX_SLL:
        if (len < 16)
            return RTMP_ERR_TCP_TRUNCATED;
        return parse_ip(be16(p + 14), p + 16, len - 16, seg, 0);
    case RTMP_LINK_LINUX_SLL2:
        if (len < 20)
            return RTMP_ERR_TCP_TRUNCATED;
        return parse_ip(be16(p), p + 20, len - 20, seg, 0);
    case RTMP_LINK_NULL:
    case RTMP_LINK_LOOP:
        /* the family's value (2 for IPv4; 24, 28 or 30 for IPv6) in either
         * byte order: the first nibble of the packet decides */
        if (len < 4)
            return RTMP_ERR_TCP_TRUNCATED;
        return parse_bare_ip(p + 4, len - 4, seg, 0);
    case RTMP_LINK_RAW:
    case RTMP_LINK_IPV4:
    case RTMP_LINK_IPV6:
        return parse_bare_ip(p, len, seg, 0);
    default:
        return 0;
    }
}

void rtmp_tcp_endpoint(int family, const uint8_t *a, uint16_t port, char *out, size_t outlen)
{
    if (family == 4) {
        snprintf(out, outlen, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], port);
        return;
    }
    /* IPv6, with the longest run of zero groups as "::" */
    uint16_t g[8];
    for (int i = 0; i < 8; i++)
        g[i] = be16(a + 2 * i);
    int best = -1, bestlen = 1;
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && g[j] == 0)
            j++;
        if (j - i > bestlen) {
            best = i;
            bestlen = j - i;
        }
        i = j > i ? j : i + 1;
    }
    char buf[64];
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            n += (size_t)snprintf(buf + n, sizeof buf - n, "::");
            i += bestlen - 1;
            continue;
        }
        if (n > 1 && buf[n - 1] != ':')
            buf[n++] = ':';
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%x", g[i]);
    }
    buf[n] = '\0';
    snprintf(out, outlen, "%s]:%u", buf, port);
}

/* ---- reassembly ---- */

typedef struct pseg {
    struct pseg *next;
    uint64_t     off;    /* stream offset of data[0] */
    size_t       len;
    uint8_t      data[];
} pseg;

struct rtmp_tcpflow {
    int      started;
    uint32_t isn;        /* sequence number of stream offset 0 */
    uint64_t next;       /* stream offset of the next byte to emit */
    uint64_t gaps, emitted;
    size_t   pending, max_pending;
    pseg    *waiting;    /* sorted by off */
};

rtmp_tcpflow *rtmp_tcpflow_new(size_t max_pending)
{
    rtmp_tcpflow *f = calloc(1, sizeof *f);
    if (f)
        f->max_pending = max_pending ? max_pending : 4u << 20;
    return f;
}

void rtmp_tcpflow_free(rtmp_tcpflow *f)
{
    if (!f)
        return;
    while (f->waiting) {
        pseg *s = f->waiting;
        f->waiting = s->next;
        free(s);
    }
    free(f);
}

uint64_t rtmp_tcpflow_gaps(const rtmp_tcpflow *f) { return f->gaps; }
uint64_t rtmp_tcpflow_emitted(const rtmp_tcpflow *f) { return f->emitted; }
size_t rtmp_tcpflow_pending(const rtmp_tcpflow *f) { return f->pending; }

/* Emit the part of [off, off+len) past f->next, if it touches it. */
static int emit_from(rtmp_tcpflow *f, uint64_t off, const uint8_t *p, size_t len,
                     rtmp_tcpflow_emit emit, void *ud)
{
    if (off > f->next || off + len <= f->next)
        return 0;
    size_t skip = (size_t)(f->next - off);
    f->next += len - skip;
    f->emitted += len - skip;
    return emit(ud, p + skip, len - skip);
}

/* Emit the waiting segments that are now in order. */
static int drain(rtmp_tcpflow *f, rtmp_tcpflow_emit emit, void *ud)
{
    while (f->waiting && f->waiting->off <= f->next) {
        pseg *s = f->waiting;
        f->waiting = s->next;
        f->pending -= s->len;
        int rc = emit_from(f, s->off, s->data, s->len, emit, ud);
        free(s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Give up the hole before the first waiting segment. */
static int skip_hole(rtmp_tcpflow *f, rtmp_tcpflow_emit emit, void *ud)
{
    if (!f->waiting)
        return 0;
    f->gaps += f->waiting->off - f->next;
    f->next = f->waiting->off;
    return drain(f, emit, ud);
}

int rtmp_tcpflow_add(rtmp_tcpflow *f, uint32_t seq, int syn, const uint8_t *p, size_t n,
                     rtmp_tcpflow_emit emit, void *ud)
{
    if (syn) {
        if (!f->started) {
            f->started = 1;
            f->isn = seq + 1;
        }
        seq++;            /* the SYN takes one sequence number */
    }
    if (n == 0)
        return 0;
    if (!f->started) {
        f->started = 1;
        f->isn = seq;
    }
    /* the offset nearest to where the stream is now (sequence numbers wrap) */
    uint32_t expect = f->isn + (uint32_t)f->next;
    int64_t off = (int64_t)f->next + (int32_t)(seq - expect);
    if (off < 0) {            /* starts before the stream did */
        if ((uint64_t)-off >= n)
            return 0;
        p += -off;
        n -= (size_t)-off;
        off = 0;
    }
    if ((uint64_t)off + n <= f->next)
        return 0;             /* a retransmission of bytes already emitted */
    if ((uint64_t)off <= f->next) {
        int rc = emit_from(f, (uint64_t)off, p, n, emit, ud);
        return rc < 0 ? rc : drain(f, emit, ud);
    }
    /* early: wait in order (an exact duplicate of a waiting one is dropped) */
    pseg **pp = &f->waiting;
    while (*pp && (*pp)->off < (uint64_t)off)
        pp = &(*pp)->next;
    if (*pp && (*pp)->off == (uint64_t)off && (*pp)->len >= n)
        return 0;
    pseg *s = malloc(sizeof *s + n);
    if (!s)
        return RTMP_ERR_NOMEM;
    s->off = (uint64_t)off;
    s->len = n;
    memcpy(s->data, p, n);
    s->next = *pp;
    *pp = s;
    f->pending += n;
    while (f->pending > f->max_pending) {
        int rc = skip_hole(f, emit, ud);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int rtmp_tcpflow_flush(rtmp_tcpflow *f, rtmp_tcpflow_emit emit, void *ud)
{
    while (f->waiting) {
        int rc = skip_hole(f, emit, ud);
        if (rc < 0)
            return rc;
    }
    return 0;
}
