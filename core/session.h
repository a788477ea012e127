/*
 * session.h: one RTMP connection's protocol state, sans I/O.
 *
 * Ties the handshake, the chunk reader and writer and the engine's
 * control-message defaults together.  Bytes received go in with
 * rtmp_session_feed; bytes to send accumulate in an output queue that the
 * owner drains (rtmp_session_output).  Nothing here touches a socket or a
 * clock, so a recorded session replays byte for byte.
 */
#ifndef RTMP_SESSION_H
#define RTMP_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "chunk.h"
#include "control.h"
#include "handshake.h"
#include "warm.h"

/* The engine's automatic behaviours, switchable per connection; all but
 * RTMP_AUTO_BANDWIDTH_REPLY are on by default (RTMP_AUTO_DEFAULT).  The
 * message callback is told which ones it applied. */
enum {
    RTMP_AUTO_ACK        = 1 << 0,  /* send Acknowledgement when the peer's window is reached */
    RTMP_AUTO_PING       = 1 << 1,  /* answer PingRequest with PingResponse */
    RTMP_AUTO_CHUNK_SIZE = 1 << 2,  /* apply the peer's Set Chunk Size to the reader */
    RTMP_AUTO_ABORT      = 1 << 3,  /* apply the peer's Abort to the reader */
    RTMP_AUTO_WINDOW     = 1 << 4,  /* record the peer's Window Ack Size as our ack window */
    RTMP_AUTO_BANDWIDTH  = 1 << 5,  /* record the peer's Set Peer Bandwidth */
    RTMP_AUTO_BANDWIDTH_REPLY = 1 << 6, /* answer Set Peer Bandwidth with Window Ack
                                       Size when the limit it sets differs from the
                                       last window we sent (RTMP 1.0 5.4.5 SHOULD;
                                       off by default: FFmpeg, librtmp and
                                       nginx-rtmp never answer) */
    RTMP_AUTO_ALL        = 0x7F,
    RTMP_AUTO_DEFAULT    = RTMP_AUTO_ALL & ~RTMP_AUTO_BANDWIDTH_REPLY,
};

/* Name of one RTMP_AUTO_* bit ("ack", "ping", "chunk_size", "abort",
 * "window", "bandwidth", "bandwidth_reply"), and the bit for a name (0
 * when unknown). */
const char *rtmp_auto_name(unsigned bit);
unsigned rtmp_auto_bit(const char *name);

#define RTMP_DEFAULT_ACK_WINDOW 2500000u

typedef struct rtmp_session_config {
    int                role;        /* RTMP_ROLE_SERVER or RTMP_ROLE_CLIENT */
    unsigned           hs_flags;    /* RTMP_HS_FLAG_* */
    unsigned           autos;       /* RTMP_AUTO_* bits on at start */
    uint32_t           ack_window;  /* window used before the peer sends one */
    uint64_t           bytes_in_start; /* initial count of bytes received after the
                                          handshake, the acknowledgement sequence
                                          (resuming a session; tests of the 2^32 wrap) */
    int                hs_seeded;   /* 1: seed the handshake's filler bytes with
                                       hs_seed (rtmp_handshake_seed), so output is
                                       a pure function of input (replay, tests) */
    uint64_t           hs_seed;
    rtmp_reader_config reader;
    int                max_amf_depth; /* nesting accepted in AMF values from the peer
                                         (decoded by the binding; conn.c's connect
                                         detection checks a connect's body with it) */
} rtmp_session_config;

void rtmp_session_config_default(rtmp_session_config *cfg, int role);

typedef struct rtmp_session_handler {
    /* Handshake complete.  Return 0 or a negative code to stop feeding. */
    int (*handshake_done)(void *ud);
    /* One whole message, after the defaults in `applied` (RTMP_AUTO_*
     * bits) were carried out.  payload is valid until return.  Return 0
     * or a negative code (e.g. RTMP_ERR_STOP) to stop feeding. */
    int (*message)(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload, unsigned applied);
} rtmp_session_handler;

typedef struct rtmp_session rtmp_session;

/* Message trace: an observer told of every message the session receives
 * and every message it queues, for a per-connection trace.  dir is
 * RTMP_TRACE_IN or RTMP_TRACE_OUT; fmt is the fmt of the message's first
 * chunk on the wire (-1 when unknown); h is NULL for raw bytes queued with
 * rtmp_session_send_raw, whose count is len.  Otherwise payload holds the
 * message's first len bytes, h->length being the whole length: all of
 * them (len == h->length), except for a message queued already chunked
 * (rtmp_session_send_chunked: group fan-out), where len is
 * min(h->length, RTMP_TRACE_HEAD), gathered from the shared chunks into
 * the stack, so tracing never reassembles a message per member.  That is
 * enough for a trace line (trace.h); an observer needing whole bodies
 * must not rely on out-bound messages.  Everything is valid until
 * return; the observer must not call back into the session. */
enum { RTMP_TRACE_IN = 0, RTMP_TRACE_OUT = 1 };
#define RTMP_TRACE_HEAD 9000  /* 3 body bytes per character of a trace body (trace.c checks it) */
typedef void (*rtmp_session_observer)(void *ud, int dir, int fmt, const rtmp_msg_hdr *h,
                                      const uint8_t *payload, size_t len);

/* New session; NULL on OOM.  cfg and handler are copied. */
rtmp_session *rtmp_session_new(const rtmp_session_config *cfg, const rtmp_session_handler *h, void *ud);
void rtmp_session_free(rtmp_session *s);

/* Client: queue C0C1.  Server: nothing.  0 or negative error. */
int rtmp_session_start(rtmp_session *s);

/* Feed received bytes.  Returns len, or a negative RTMP_ERR_* (protocol
 * error, or what a callback returned); after an error the session takes
 * no more input. */
ssize_t rtmp_session_feed(rtmp_session *s, const uint8_t *in, size_t len);

/* 1 once the handshake is complete. */
int rtmp_session_ready(const rtmp_session *s);

/* Queue one message, chunked by the session's writer (header compression
 * against the previous message on h->csid).  0 or RTMP_ERR_NOMEM/INVAL.
 * Messages sent before the handshake completes wait until it does. */
int rtmp_session_send(rtmp_session *s, const rtmp_msg_hdr *h, const uint8_t *payload);

/* Queue bytes already chunked with rtmp_chunk_write_fmt0 at this
 * session's outgoing chunk size (shared between connections); h is the
 * header they were chunked from, recorded in the writer.  Takes a new
 * reference on buf.  A trace observer is given the first bytes only (see
 * rtmp_session_observer). */
int rtmp_session_send_chunked(rtmp_session *s, const rtmp_msg_hdr *h, rtmp_buf *buf);

/* Queue raw bytes exactly as given (no chunking at all). */
int rtmp_session_send_raw(rtmp_session *s, const uint8_t *p, size_t n);

/* Control messages on csid 2, stream 0.  set_chunk_size also switches
 * the writer to the new size after queuing the message. */
int rtmp_session_set_chunk_size(rtmp_session *s, uint32_t size);
int rtmp_session_send_ack(rtmp_session *s, uint32_t sequence);
int rtmp_session_send_window(rtmp_session *s, uint32_t window);
int rtmp_session_send_peer_bandwidth(rtmp_session *s, uint32_t window, int limit);
int rtmp_session_send_user_control(rtmp_session *s, uint16_t event, int nfields, uint32_t v1, uint32_t v2);

/* Abort message (type 2) for csid, on csid 2; the writer's next automatic
 * header on csid is then fmt 0 (rtmp_writer_reset).  0 or RTMP_ERR_NOMEM. */
int rtmp_session_send_abort(rtmp_session *s, uint32_t csid);

/* One message chunk by chunk through the session's writer (see
 * rtmp_writer_begin and rtmp_writer_chunk); the chunk is queued like any
 * other output.  begin: 0 or RTMP_ERR_INVAL; chunk: payload bytes sent,
 * or RTMP_ERR_INVAL/NOMEM. */
int rtmp_session_begin(rtmp_session *s, const rtmp_msg_hdr *h, rtmp_wmsg *m);
int rtmp_session_chunk(rtmp_session *s, rtmp_wmsg *m, const uint8_t *payload, const rtmp_chunk_opts *o);

/* The output queue, holding every byte queued so far, in order.  The
 * owner writes from it and consumes what was written. */
rtmp_outq *rtmp_session_output(rtmp_session *s);

/* Bytes waiting to be sent. */
size_t rtmp_session_pending(const rtmp_session *s);

/* Every byte the session holds on the heap now (for accounting): itself,
 * the handshake state while it runs, the reader (rtmp_reader_memory), the
 * writer, and its output: the queue's segment array and the buffers its
 * bytes are in (a buffer shared with other connections, one fanned-out
 * media message, is counted whole here and in each of them). */
size_t rtmp_session_memory(const rtmp_session *s);

/* Switch automatic behaviours; returns the bits now on. */
unsigned rtmp_session_autos(const rtmp_session *s);
void rtmp_session_set_autos(rtmp_session *s, unsigned autos);

/* State the script can see. */
typedef struct rtmp_session_info {
    uint64_t bytes_in, bytes_out;    /* all bytes, handshake included */
    uint64_t received;               /* bytes received after the handshake (acks count these) */
    uint32_t in_chunk_size, out_chunk_size;
    uint32_t ack_window;             /* we acknowledge every ack_window bytes */
    uint32_t last_ack_sent;          /* sequence number of our last Acknowledgement */
    uint32_t peer_ack;               /* last sequence number the peer acknowledged */
    uint32_t window_sent;            /* last Window Ack Size we sent (0: none) */
    uint32_t peer_bandwidth;         /* last Set Peer Bandwidth received (0: none) */
    int      peer_bandwidth_limit;   /* its limit type, -1 when none/missing */
    int      hs_peer_kind;           /* RTMP_HS_* */
    int      hs_peer_verified;       /* 1: the peer's C2/S2 answered our C1/S1 (rtmp_handshake_peer_verified) */
} rtmp_session_info;

void rtmp_session_get_info(const rtmp_session *s, rtmp_session_info *info);

/* Install (fn non-NULL) or remove (fn NULL) the trace observer.  While
 * none is installed the only cost is one pointer test per message. */
void rtmp_session_set_observer(rtmp_session *s, rtmp_session_observer fn, void *ud);

rtmp_reader *rtmp_session_reader(rtmp_session *s);
rtmp_writer *rtmp_session_writer(rtmp_session *s);

/* Note what the session's next input will touch (warm.h): its reader's
 * lines (rtmp_reader_warm), then the session. */
void rtmp_session_warm(const rtmp_session *s, rtmp_warm *w);

/* Prefetch the lines a fan-out to this session reads and writes (its
 * readiness, output queue and counters; not its writer; group.c). */
void rtmp_session_prefetch(const rtmp_session *s);

#endif
