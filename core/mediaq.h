/*
 * mediaq.h: one player's media queue, measured, and the slow-reader
 * policy that bounds it.  Sans I/O: the owner passes the byte counters
 * and the clock.
 *
 * The owner (group fan-out) asks rtmp_mediaq_offer before queuing each
 * media message to a player and tells rtmp_mediaq_queued where the
 * message ended in the connection's byte stream.  The queue is measured
 * in bytes (everything still unsent on the connection) and in media time
 * (the newest offered timestamp minus the oldest unsent queued one, per
 * message stream id).  Past either bound the policy drops:
 *
 *   level 0 "ok"          everything is sent;
 *   level 1 "drop_inter"  a message found the queue over a bound: non-key
 *                         video is dropped until the next keyframe
 *                         (inter frames after a dropped one cannot be
 *                         decoded); audio still goes while the bytes bound
 *                         holds;
 *   level 2 "drop_gop"    the next keyframe (or audio) still found it over:
 *                         audio and video are dropped until a keyframe
 *                         finds the queue under both bounds.
 *
 * A keyframe that finds the queue under both bounds is sent and returns
 * the player to level 0.  Never dropped: sequence headers, video info and
 * command frames, enhanced-RTMP packets other than coded frames, and
 * anything that is not audio or video (metadata, commands).  A player
 * over a bound at every offer for max_stall seconds is to be
 * disconnected (RTMP_MEDIAQ_STALL).  With both bounds 0 there is no
 * policy: every message is sent and nothing is tracked.
 */
#ifndef RTMP_MEDIAQ_H
#define RTMP_MEDIAQ_H

#include <stddef.h>
#include <stdint.h>

#include "chunk.h"
#include "media.h"

/* Most unsent media messages tracked; a queue holding more counts as
 * over its bounds. */
#define RTMP_MEDIAQ_MAX_MSGS 4096

typedef struct rtmp_mediaq_config {
    size_t max_bytes;   /* bytes unsent on the connection; 0 = no bound */
    double max_time;    /* seconds of media unsent; 0 = no bound */
    double max_stall;   /* seconds over a bound before disconnecting; 0 = never */
} rtmp_mediaq_config;

/* What rtmp_mediaq_offer says to do with the message. */
enum { RTMP_MEDIAQ_SEND = 0, RTMP_MEDIAQ_DROP = 1, RTMP_MEDIAQ_STALL = 2 };

/* Drop levels. */
enum { RTMP_MEDIAQ_OK = 0, RTMP_MEDIAQ_DROP_INTER = 1, RTMP_MEDIAQ_DROP_GOP = 2 };

/* What an offer changed (rtmp_mediaq.event), for the owner's log. */
enum {
    RTMP_MEDIAQ_EV_NONE = 0,
    RTMP_MEDIAQ_EV_INTER,     /* entered level 1 */
    RTMP_MEDIAQ_EV_GOP,       /* entered level 2 */
    RTMP_MEDIAQ_EV_RECOVERED, /* back to level 0 */
};

/* Message classes, from the header and the payload's first bytes: the
 * media model's (media.h, rtmp_media_class). */
enum {
    RTMP_MEDIAQ_KEEP = RTMP_MEDIA_CLASS_KEEP,    /* never dropped */
    RTMP_MEDIAQ_AUDIO = RTMP_MEDIA_CLASS_AUDIO,  /* audio frame */
    RTMP_MEDIAQ_KEY = RTMP_MEDIA_CLASS_KEY,      /* video keyframe */
    RTMP_MEDIAQ_INTER = RTMP_MEDIA_CLASS_INTER,  /* other video frame (inter, disposable) */
};

typedef struct rtmp_mediaq_entry {
    uint64_t end;        /* connection byte count at the message's last byte */
    uint32_t timestamp;
    uint32_t stream_id;
    double   at;         /* the clock when it was queued */
} rtmp_mediaq_entry;

/* A span of timestamps longer than the wall-clock time the message has
 * waited plus this many seconds is a jump in the publisher's timestamps
 * (a discontinuity, a wrap), not a lag: the wait is taken instead. */
#define RTMP_MEDIAQ_JUMP 10.0

typedef struct rtmp_mediaq {
    rtmp_mediaq_config cfg;
    int      level;          /* RTMP_MEDIAQ_OK .. DROP_GOP */
    int      event;          /* RTMP_MEDIAQ_EV_* of the last offer */
    double   over_since;     /* clock at the first offer of the current run over a bound; < 0: under */
    double   level_since;    /* clock when the current drop level began */
    size_t   bytes;          /* measured at the last offer */
    double   time;           /* seconds, measured at the last offer */
    double   now;            /* the clock of the last offer */
    uint64_t dropped, dropped_bytes;             /* since creation */
    uint64_t run_dropped, run_dropped_bytes;     /* since leaving level 0 */
    rtmp_mediaq_entry *e;    /* ring of queued, unsent media messages */
    uint32_t head, count, cap;
} rtmp_mediaq;

/* Start an empty queue with these bounds (no allocation until the first
 * message is queued). */
void rtmp_mediaq_init(rtmp_mediaq *q, const rtmp_mediaq_config *cfg);

/* Release the ring; q may be reused after rtmp_mediaq_init. */
void rtmp_mediaq_free(rtmp_mediaq *q);

/* Decide for one message about to be queued, of class cls
 * (rtmp_media_class: the same for every player, so a fan-out computes it
 * once per message).  written: bytes the connection has written so far; pending: bytes queued and not written
 * (so written + pending counts every byte ever queued); now: a clock in
 * seconds.  Returns RTMP_MEDIAQ_SEND, RTMP_MEDIAQ_DROP (counted in
 * dropped), or RTMP_MEDIAQ_STALL (over a bound for max_stall seconds: the
 * owner should disconnect; the message is not counted).  Sets q->event,
 * q->bytes and q->time. */
int rtmp_mediaq_offer(rtmp_mediaq *q, const rtmp_msg_hdr *h, int cls,
                      uint64_t written, size_t pending, double now);

/* Record a message just queued after a SEND (h and cls as offered):
 * end is written + pending after queuing it.  Audio and video frames are
 * tracked for the media time (at most RTMP_MEDIAQ_MAX_MSGS at once);
 * other classes only count in bytes.  0 or RTMP_ERR_NOMEM (the message
 * then only counts in bytes). */
int rtmp_mediaq_queued(rtmp_mediaq *q, const rtmp_msg_hdr *h, int cls, uint64_t end);

/* Name of a level: "ok", "drop_inter", "drop_gop". */
const char *rtmp_mediaq_level_name(int level);

#endif
