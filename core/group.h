/*
 * group.h: fan-out of one publisher's messages to many players, the
 * players' slow-reader policy (mediaq.h), and the late-join cache.
 *
 * A message is chunked once per (outgoing chunk size, message stream id)
 * among the members, with a fmt 0 first chunk, and a reference to the
 * same bytes is queued to each member (rtmp_session_send_chunked).  The
 * chunkings of passing messages (the GOP's, or uncached) are carved side
 * by side out of 64 KiB blocks (buf.h), so a stream costs one allocation
 * per block rather than one per message; a block is freed with the last
 * chunking in it.
 *
 * With a cache (cfg.cache), the group keeps what a player joining late
 * needs to decode, as the same chunked buffers it fanned out (or, for a
 * message no member took, its payload as the publisher's reader kept it:
 * rtmp_group_send_held):
 *   - the metadata (rtmp_group_metadata: onMetaData as players get it);
 *   - each track's configuration: sequence headers (legacy AVC/HEVC/AAC,
 *     SequenceStart, MPEG2TSSequenceStart), MultichannelConfig and the
 *     colour Metadata packet: one per (type, packet kind, the set of
 *     (track id, codec) the message configures), a newer one replacing
 *     the older ones whose tracks it all configures again, at most 32 of
 *     them and 1 MiB of payload together (past it a configuration is not
 *     cached); a joiner gets them in the order they came, so each track's
 *     newest configuration last;
 *   - the current GOP: the messages from the last video keyframe on,
 *     while they add up to at most cfg.gop_max_bytes of payload (past it
 *     the GOP stops growing until the next keyframe).
 * What a message is comes from media.h, never from a second classifier.
 *
 * Two classes of members: capable ones, and legacy ones (players that
 * announced no Enhanced RTMP FourCC: the caller says which on add).  With
 * cfg.legacy = RTMP_GROUP_LEGACY_FORM, legacy members get audio and video
 * only in their legacy form (media.h: not an ExAudioTagHeader or
 * ExVideoTagHeader, so no FourCC codec, multitrack, ModEx or command
 * frame of those) and every other message; capable members get all.  The
 * decision is taken once per message (rtmp_group_send_to lets the caller
 * take it instead), and each cached message keeps it for late joiners.
 * rtmp_group_add sends a joiner references to these buffers (chunked
 * again only for a (chunk size, stream id) no earlier member used, and
 * then kept for the next joiner), in that order, and exempts them from
 * the joiner's output bound (rtmp_conn_core_exempt_queued): the first burst
 * is bounded by the GOP bound plus the configurations' and the metadata's
 * (one message), not by max_output.
 *
 * Members are socket-free connections (conn.h), whoever drives them:
 * core/net.c's sockets or the replay's virtual clock.  The owner keeps two
 * slots per connection that the group reads: the connection (NULL once
 * closed) and its slow-reader state (created here from the connection's
 * settings on first use).  Output goes through rtmp_conn_core_output,
 * which bounds it and tells the connection's driver to write it.
 * cfg.release is called when a member is dropped.
 */
#ifndef RTMP_GROUP_H
#define RTMP_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "chunk.h"
#include "mediaq.h"
#include "conn.h"
#include "warm.h"

/* The default GOP bound (live.lua's gop_max_bytes, rtmp.group's). */
#define RTMP_GROUP_GOP_MAX (32u * 1024 * 1024)

/* What legacy members get (cfg.legacy). */
enum {
    RTMP_GROUP_LEGACY_ALL = 0,   /* every message, as capable members */
    RTMP_GROUP_LEGACY_FORM,      /* audio and video in their legacy form only, and every other message */
};

typedef struct rtmp_group rtmp_group;

typedef struct rtmp_group_config {
    int    cache;                 /* keep the late-join cache */
    size_t gop_max_bytes;         /* payload bytes of the cached GOP at most */
    int    legacy;                /* RTMP_GROUP_LEGACY_*: what legacy members get */
    void (*release)(void *ud);    /* a member is dropped (removed, found closed, group freed) */
} rtmp_group_config;

/* A new, empty group; NULL on OOM. */
rtmp_group *rtmp_group_new(const rtmp_group_config *cfg);

/* Drop every member (release each) and the cache, and free g. */
void rtmp_group_free(rtmp_group *g);

/* Add a member: conn is the owner's slot of the connection (NULL once
 * closed), mq its slot of slow-reader state; media goes out on message
 * stream id stream_id; legacy: 1 for a legacy member (see above), else 0;
 * ud is given to release.  With a cache, the joiner is sent the cache now
 * (a legacy one what its class may get of it).  Returns 0 when added, 1
 * when conn was a member already (its stream id and class are updated,
 * nothing sent, ud not kept), RTMP_ERR_CLOSED (closed or closing),
 * RTMP_ERR_NOMEM. */
int rtmp_group_add(rtmp_group *g, rtmp_conn_core *const *conn, rtmp_mediaq **mq, uint32_t stream_id, int legacy,
                   void *ud);

/* Remove the member whose slot is conn: 1 when it was one, else 0. */
int rtmp_group_remove(rtmp_group *g, rtmp_conn_core *const *conn);

/* Whether the member whose slot is conn is in g and open. */
int rtmp_group_has(const rtmp_group *g, rtmp_conn_core *const *conn);

/* Open members, after dropping the closed ones. */
size_t rtmp_group_count(rtmp_group *g);

/* The i-th member's ud (i < rtmp_group_count), for listing them. */
void *rtmp_group_member(const rtmp_group *g, size_t i);

/* Drop every member. */
void rtmp_group_clear(rtmp_group *g);

/* Fan one message out: h's type, timestamp and csid, payload[0 ..
 * h->length); each member gets it on its own stream id, unless its
 * slow-reader policy drops it (a member over its bounds for max_stall is
 * closed as a slow reader).  With a cache, audio and video are cached as
 * said above.  now: the clock of the members' owner.  Returns the members
 * reached. */
int rtmp_group_send(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, double now);

/* The same, the payload lying in held (held->data is payload, held->len
 * h->length; NULL: none, as rtmp_group_send): where the cache would copy
 * the message because no member took it, it may keep a reference to held
 * instead (when held is not much larger than the payload, and for the
 * metadata or a configuration only when held is not carved from a
 * block).  rtmp_reader_payload_buf hands such a buffer on. */
int rtmp_group_send_held(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_buf *held, double now);

/* The same, the caller deciding whether legacy members get the message:
 * legacy 1 they do, 0 they do not, -1 as cfg.legacy says
 * (rtmp_group_send).  The cached copy keeps the decision. */
int rtmp_group_send_to(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, double now, int legacy);

/* The same for the stream's metadata, which the cache keeps (replacing
 * the older) for joiners. */
int rtmp_group_metadata(rtmp_group *g, const rtmp_msg_hdr *h, const uint8_t *payload, double now);

/* Note what the group's next message will touch (warm.h): the part of
 * the group every message reads and, with a cache, the entry the next
 * message is cached in. */
void rtmp_group_warm(const rtmp_group *g, rtmp_warm *w);

/* The slow-reader state in slot for connection c, made from c's
 * settings (max_queue_bytes, _time, _stall) when the slot is empty; NULL
 * on OOM. */
rtmp_mediaq *rtmp_group_queue(rtmp_mediaq **slot, rtmp_conn_core *c);

/* Empty the cache (the publisher left). */
void rtmp_group_reset(rtmp_group *g);

/* Bytes of payload the cache holds, and messages. */
size_t rtmp_group_cached_bytes(const rtmp_group *g, size_t *messages);

/* Call fn for each cached message in the order a joiner gets them, with
 * its header (as published: stream id 0) and whole payload (valid until
 * fn returns).  Stops at and returns fn's first non-zero result; 0, or
 * RTMP_ERR_NOMEM. */
int rtmp_group_each_cached(const rtmp_group *g,
                           int (*fn)(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload), void *ud);

/* ---- HTTP-FLV and WebSocket-FLV players ----
 *
 * A second encoding of each message, for players that take FLV (an HTTP
 * response, WebSocket binary frames; core/net_http.c drives them): the
 * FLV tag (11-byte tag header, the payload, the 4-byte PreviousTagSize;
 * script data without "@setDataFrame"), made once per message and only
 * while the group has such a player (a late joiner gets the cached
 * messages' tags, made then and kept with the cache), carved from the
 * same blocks as the chunkings and queued by reference to every FLV
 * player: no copy per player.  The buffer keeps RTMP_GROUP_WS_ROOM bytes
 * before the tag, where the tag's WebSocket frame header (FIN, binary,
 * the length; server frames are not masked) is written once: an HTTP
 * player queues the tag, a WebSocket player the frame header and the tag
 * (one frame per tag).  Only audio (8), video (9) and script data (18)
 * have tags; other messages are not sent to FLV players.
 *
 * Timestamps are the publisher's, as RTMP members get them.  A joiner
 * gets the FLV header first (the audio and video flags from the cached
 * configurations: what the stream has; both when nothing is cached yet),
 * then the cache, exempt from its bounds, then the live tags, under the
 * same slow-reader policy (mediaq.h, with the bounds in p->policy) and
 * output bound (p->max_output) as RTMP members.  The classes (legacy or
 * capable) are the RTMP members' too.
 */

/* Bytes before each FLV tag for its WebSocket frame header (2, 4 or 10). */
#define RTMP_GROUP_WS_ROOM 10

/* How the group ends a player (rtmp_flv_player.close's how). */
enum {
    RTMP_FLV_END = 0,   /* the stream ended: write what is queued, then close */
    RTMP_FLV_DROP = 1,  /* a slow reader: drop what is queued and close */
};

typedef struct rtmp_flv_player rtmp_flv_player;
struct rtmp_flv_player {
    /* The owner's: set before rtmp_group_add_flv, read by the group. */
    int                ws;          /* WebSocket frames around each tag */
    int                legacy;      /* a legacy member (see above) */
    rtmp_mediaq_config policy;      /* the slow-reader bounds (max_queue_*) */
    size_t             max_output;  /* queued bytes past which it is closed as a slow reader; 0 = none */
    unsigned long      id;          /* for the log, and rtmp_group_end_flv_id */
    const char        *peer;
    void (*output)(void *ud);       /* output was queued: write it (soon) */
    void (*close)(void *ud, const char *reason, int how); /* the group let go of it (RTMP_FLV_*) */
    void              *ud;
    /* Shared: the output, written by the owner from the front
     * (rtmp_flv_player_wrote); the owner may queue whole WebSocket
     * control frames of its own between the group's. */
    rtmp_outq          q;
    uint64_t           written;     /* bytes the peer took */
    /* The group's. */
    rtmp_group        *group;       /* NULL: in no group */
    rtmp_mediaq        mq;
    uint64_t           exempt_end;  /* written + queued at the end of the late-join burst */
};

/* Join p to g (p zeroed but for the owner's fields): queues the FLV header
 * (in a frame of its own for a WebSocket player) and the cache's tags, and
 * calls p->output.  0, or RTMP_ERR_NOMEM (p not joined). */
int rtmp_group_add_flv(rtmp_group *g, rtmp_flv_player *p);

/* p leaves its group, if any (nothing is sent; its queue stays). */
void rtmp_group_remove_flv(rtmp_flv_player *p);

/* FLV players in g, and the i-th of them (i < the count), for listing
 * them. */
size_t rtmp_group_flv_count(const rtmp_group *g);
const rtmp_flv_player *rtmp_group_flv_player(const rtmp_group *g, size_t i);

/* End every FLV player of g (p->close with RTMP_FLV_END and reason: the
 * stream ended); returns how many. */
size_t rtmp_group_end_flv(rtmp_group *g, const char *reason);

/* End g's FLV player whose id is id, as rtmp_group_end_flv does (the
 * owner's close with RTMP_FLV_END): 1, or 0 when g has none such. */
int rtmp_group_end_flv_id(rtmp_group *g, unsigned long id, const char *reason);

/* The owner wrote n bytes from the front of p->q. */
void rtmp_flv_player_wrote(rtmp_flv_player *p, size_t n);

/* Release what p holds (it leaves its group first): its queue and its
 * slow-reader state. */
void rtmp_flv_player_release(rtmp_flv_player *p);

#endif
