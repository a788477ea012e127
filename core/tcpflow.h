/*
 * tcpflow.h: TCP segments out of captured frames, and the byte stream
 * of one direction of a TCP connection put back together.
 *
 * Sans-I/O: the capture tools (lua/l_pcap.c) read frames with libpcap
 * and hand them here.  rtmp_tcp_parse takes one link-layer frame apart
 * down to its TCP segment; an rtmp_tcpflow takes the segments of one
 * direction in capture order and gives back the bytes in sequence order:
 * a segment that arrives early waits for the bytes before it, a
 * retransmitted or overlapping segment contributes only the bytes not
 * seen yet (the first copy wins), and a hole that never fills is skipped
 * and counted once the segments waiting behind it pass a bound or the
 * flow is flushed.
 *
 * Tunnels are taken apart on the way down: GTP-U (UDP port 2152, G-PDU,
 * with the optional sequence/N-PDU fields and extension headers), GRE
 * (checksum, key and sequence fields; IPv4, IPv6 or Ethernet inside) and
 * VXLAN (UDP port 4789, Ethernet inside), nested up to
 * RTMP_TCP_MAX_ENCAP deep.  seg->encap names them, outermost first.
 */
#ifndef RTMP_TCPFLOW_H
#define RTMP_TCPFLOW_H

#include <stddef.h>
#include <stdint.h>

/* Link-layer types (pcap LINKTYPE_* values) rtmp_tcp_parse knows. */
enum {
    RTMP_LINK_NULL = 0,        /* BSD loopback: 4-byte host-order address family */
    RTMP_LINK_ETHERNET = 1,    /* Ethernet II, with 802.1Q tags */
    RTMP_LINK_RAW = 101,       /* a bare IPv4 or IPv6 packet */
    RTMP_LINK_LOOP = 108,      /* OpenBSD loopback: the family in network order */
    RTMP_LINK_LINUX_SLL = 113, /* Linux "any" device, v1 */
    RTMP_LINK_IPV4 = 228,
    RTMP_LINK_IPV6 = 229,
    RTMP_LINK_LINUX_SLL2 = 276 /* Linux "any" device, v2 */
};

/* Tunnels taken apart inside one frame, at most. */
#define RTMP_TCP_MAX_ENCAP 4

enum { RTMP_TCP_FIN = 0x01, RTMP_TCP_SYN = 0x02, RTMP_TCP_RST = 0x04, RTMP_TCP_ACK = 0x10 };

/* One TCP segment.  Addresses are in network order (4 bytes used for
 * IPv4); payload points into the frame given to rtmp_tcp_parse. */
typedef struct rtmp_tcp_seg {
    int            family;      /* 4 or 6 */
    uint8_t        src[16], dst[16];
    uint16_t       sport, dport;
    uint32_t       seq, ack;
    uint8_t        flags;       /* RTMP_TCP_* */
    const uint8_t *payload;
    size_t         len;
    /* the tunnels the segment came through, outermost first, separated
     * by " / " ("GTP-U teid=0x1a2b", "GRE key=0x5", "VXLAN vni=42");
     * "" for none */
    char           encap[96];
} rtmp_tcp_seg;

/* Take the frame p[0 .. len) of link type linktype apart.  Returns 1 and
 * fills seg for a TCP segment (the payload trimmed to the IP length, so
 * Ethernet padding is not taken for data), 0 for anything else (another
 * protocol, an IP fragment, an unknown link type, a GTP-U message that
 * is not a G-PDU, GRE with routing or version 1, tunnels nested deeper
 * than RTMP_TCP_MAX_ENCAP), or a negative RTMP_ERR_TCP_TRUNCATED when a
 * header runs past the captured bytes. */
int rtmp_tcp_parse(int linktype, const uint8_t *p, size_t len, rtmp_tcp_seg *seg);

/* Write "1.2.3.4:80" or "[::1]:80" into out. */
void rtmp_tcp_endpoint(int family, const uint8_t *addr, uint16_t port, char *out, size_t outlen);

/* One direction of a connection. */
typedef struct rtmp_tcpflow rtmp_tcpflow;

/* Bytes in sequence order, as they become available.  Returns 0 to go
 * on, < 0 to stop (rtmp_tcpflow_add then returns that value). */
typedef int (*rtmp_tcpflow_emit)(void *ud, const uint8_t *p, size_t n);

/* A new direction.  max_pending bounds the bytes held for segments that
 * wait for a hole to fill (0: 4 MiB); past it the hole is given up. */
rtmp_tcpflow *rtmp_tcpflow_new(size_t max_pending);
void rtmp_tcpflow_free(rtmp_tcpflow *f);

/* Add one segment of this direction: seq, whether it carries SYN, and
 * its payload.  The stream starts at the SYN (its sequence number plus
 * one) or, when no SYN was captured, at the first segment with data.
 * Calls emit for every byte run that is now in order.  Returns 0, the
 * negative value emit returned, or RTMP_ERR_NOMEM. */
int rtmp_tcpflow_add(rtmp_tcpflow *f, uint32_t seq, int syn, const uint8_t *p, size_t n,
                     rtmp_tcpflow_emit emit, void *ud);

/* The end of the capture: give up every hole and emit what waits behind
 * them, in sequence order.  Returns 0 or what emit returned. */
int rtmp_tcpflow_flush(rtmp_tcpflow *f, rtmp_tcpflow_emit emit, void *ud);

/* Bytes skipped over holes so far; bytes emitted so far; bytes waiting. */
uint64_t rtmp_tcpflow_gaps(const rtmp_tcpflow *f);
uint64_t rtmp_tcpflow_emitted(const rtmp_tcpflow *f);
size_t rtmp_tcpflow_pending(const rtmp_tcpflow *f);

#endif
