/*
 * chunk.h: the RTMP chunk layer, sans I/O.
 *
 * The reader is an incremental push parser: bytes in, whole messages out
 * through a callback.  The writer turns one message into chunks appended
 * to a buffer, compressing headers against the previous message on the
 * same chunk stream the way real peers do.
 */
#ifndef RTMP_CHUNK_H
#define RTMP_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "warm.h"

#define RTMP_DEFAULT_CHUNK_SIZE 128
#define RTMP_MIN_CSID 2
#define RTMP_MAX_CSID 65599
#define RTMP_FMT_AUTO 0xFF

/* Message types. */
enum {
    RTMP_MSG_SET_CHUNK_SIZE = 1,
    RTMP_MSG_ABORT = 2,
    RTMP_MSG_ACK = 3,
    RTMP_MSG_USER_CONTROL = 4,
    RTMP_MSG_WINDOW_ACK_SIZE = 5,
    RTMP_MSG_SET_PEER_BANDWIDTH = 6,
    RTMP_MSG_AUDIO = 8,
    RTMP_MSG_VIDEO = 9,
    RTMP_MSG_AMF3_DATA = 15,
    RTMP_MSG_AMF3_SHARED_OBJECT = 16,
    RTMP_MSG_AMF3_COMMAND = 17,
    RTMP_MSG_AMF0_DATA = 18,
    RTMP_MSG_AMF0_SHARED_OBJECT = 19,
    RTMP_MSG_AMF0_COMMAND = 20,
    RTMP_MSG_AGGREGATE = 22,
};

/* One message header.  The reader fills every field (fmt is the fmt of
 * the message's first chunk); the writer reads every field, and fmt is
 * RTMP_FMT_AUTO or the fmt to force on the first chunk. */
typedef struct rtmp_msg_hdr {
    uint32_t csid;
    uint32_t timestamp;  /* absolute, modulo 2^32 */
    uint32_t length;
    uint32_t stream_id;  /* message stream id */
    uint8_t  type;
    uint8_t  fmt;
} rtmp_msg_hdr;

/* How a fmt 3 chunk is read after a header that had an extended timestamp. */
enum {
    RTMP_EXT_TS_DETECT = 0,  /* take the 4 bytes only if they repeat the
                                extended timestamp (default, tolerant) */
    RTMP_EXT_TS_SPEC,        /* always present, as the spec says */
    RTMP_EXT_TS_NEVER,       /* never present (some encoders omit it) */
};

/* Receive-side limits and tolerances; all checked before allocating. */
typedef struct rtmp_reader_config {
    uint32_t max_message;       /* longest message accepted (bytes) */
    uint32_t max_amf_message;   /* longest data, shared-object or command
                                   message (types 15-20) accepted, the ones
                                   the binding decodes into Lua values (a
                                   few times their size); 0 = max_message */
    uint32_t max_chunk_streams; /* distinct csids seen (each keeps its header
                                   state for decompression, so none retires) */
    uint32_t min_chunk_size;    /* range accepted by rtmp_reader_set_chunk_size */
    uint32_t max_chunk_size;
    int      ext_ts_fmt3;       /* RTMP_EXT_TS_* */
    int      accept_fresh_fmt;  /* a new csid may start with fmt 1-3 (fields
                                   it lacks are zero) instead of failing
                                   with RTMP_ERR_FRESH_CSID */
} rtmp_reader_config;

#define RTMP_DEFAULT_MAX_MESSAGE       (8u << 20)
#define RTMP_DEFAULT_MAX_CHUNK_STREAMS 64u

/* Defaults: max_message 8 MiB (nginx-rtmp's 1 MiB cuts keyframes of
 * high-bitrate streams), max_amf_message 0 (connections set 1 MiB:
 * rtmp_conn_config_default), max_chunk_streams 64, chunk size 1 .. 0x7FFFFFFF
 * (the spec's range: memory follows the bytes received, so a huge chunk
 * size costs nothing), ext_ts_fmt3 RTMP_EXT_TS_DETECT, accept_fresh_fmt 0. */
void rtmp_reader_config_default(rtmp_reader_config *cfg);

/* Called once per complete message.  payload is valid only until the
 * callback returns.  Return 0 to go on, or a negative code to make
 * rtmp_reader_feed stop and return it.  The callback may call
 * rtmp_reader_set_chunk_size and rtmp_reader_abort; they take effect at
 * the next byte of input. */
typedef int (*rtmp_reader_cb)(void *ud, const rtmp_msg_hdr *h, const uint8_t *payload);

typedef struct rtmp_reader rtmp_reader;

/* New reader at chunk size 128; NULL on OOM.  cfg is copied (NULL: the
 * defaults).
 *
 * Reading rules, where peers differ: the fmt 3 chunk that begins a new
 * message repeats the previous delta (after a fmt 0 header the delta is
 * that header's timestamp, spec 5.3.1.2.4).  A fmt 0/1 header arriving
 * while a message is being reassembled on its csid fails with
 * RTMP_ERR_LENGTH_CHANGED if its length differs; otherwise (and for fmt 2)
 * its fields are ignored and the chunk continues the message.  With
 * RTMP_EXT_TS_DETECT a fmt 3 chunk after an extended header waits for 4
 * bytes to compare them, so the last message of a stream whose peer omits
 * the field is delivered only when 4 more bytes arrive. */
rtmp_reader *rtmp_reader_new(const rtmp_reader_config *cfg, rtmp_reader_cb cb, void *ud);
void rtmp_reader_free(rtmp_reader *r);

/* Parse len bytes.  Returns len when all were consumed, or a negative
 * RTMP_ERR_* (the reader is then unusable and returns it again):
 * FRESH_CSID, TOO_MANY_CSID, MSG_TOO_LONG, LENGTH_CHANGED, NOMEM, or what
 * the callback returned.  The callback must not call feed.  Partial
 * headers and payloads are kept between calls; memory held follows the
 * bytes received (see rtmp_reader_buffered) plus a small constant per
 * chunk stream, one spare buffer of at most 64 KiB and the unused part
 * of one 64 KiB block (buffers made at once are carved from it),
 * whatever length or chunk size the peer declares. */
ssize_t rtmp_reader_feed(rtmp_reader *r, const uint8_t *in, size_t len);

/* Change the incoming chunk size; RTMP_ERR_CHUNK_SIZE when outside the
 * configured range (the size is then unchanged). */
int rtmp_reader_set_chunk_size(rtmp_reader *r, uint32_t size);
uint32_t rtmp_reader_chunk_size(const rtmp_reader *r);

/* Change a receive-side tolerance of a running reader; it applies from
 * the next chunk header read (a header already being read keeps the rule
 * it started with).  set_ext_ts_fmt3: RTMP_ERR_INVAL for an unknown mode. */
int rtmp_reader_set_ext_ts_fmt3(rtmp_reader *r, int mode);
void rtmp_reader_set_accept_fresh_fmt(rtmp_reader *r, int on);

/* The reader's current configuration (tolerances included). */
const rtmp_reader_config *rtmp_reader_get_config(const rtmp_reader *r);

/* Discard the partial message on csid (Abort message).  0 even when there
 * is none.  Called outside the callback while a chunk of that message is
 * arriving, the rest of that chunk is skipped. */
int rtmp_reader_abort(rtmp_reader *r, uint32_t csid);

/* Within the callback: the buffer holding the payload it was given
 * (data is the payload, len its length), or NULL when the payload lies
 * in the input fed (a message in one chunk).  A reference taken on it
 * (rtmp_buf_ref) keeps the payload past the callback with no copy; the
 * reader then lets go of that buffer instead of reusing it. */
rtmp_buf *rtmp_reader_payload_buf(const rtmp_reader *r);

/* Note what the reader's next input will touch (warm.h): the reader, the
 * chunk stream it read last, where that stream's next payload bytes go
 * (its partial message), and the spare buffer or else where the next
 * buffer is carved. */
void rtmp_reader_warm(const rtmp_reader *r, rtmp_warm *w);

/* Bytes currently allocated for partial messages (for accounting/tests).
 * A message's buffer grows with the bytes received (geometrically from
 * 256 bytes, never more than 64 KiB past them nor past the declared
 * length) and is released when the message is delivered or aborted, so
 * this is 0 between messages and at most
 * max(256, min(2 * received, received + 64 KiB)) per partial message, except
 * for one message at a time, which may hold up to 64 KiB from its start:
 * - the reader keeps one released buffer of at most 64 KiB (not counted
 *   here while idle) and starts the next message in it: a steady stream
 *   of messages then allocates nothing;
 * - without one (the callback kept the last buffer:
 *   rtmp_reader_payload_buf), a message of at most 64 KiB gets a buffer
 *   of its declared length at once, when no other message is partial and
 *   the peer has sent at least twice that length so far: a stream of
 *   messages the callback keeps is then neither grown nor copied.
 * So a hostile peer can make a reader hold at most 64 KiB more than the
 * bytes it sent. */
size_t rtmp_reader_buffered(const rtmp_reader *r);

/* Every byte the reader holds on the heap now (for accounting): the
 * reader itself, its chunk-stream table (capacity, at most the next power
 * of two from 8 past max_chunk_streams, of a few dozen bytes each), the
 * partial messages (rtmp_reader_buffered), the spare buffer and the
 * room left in the block buffers are carved from. */
size_t rtmp_reader_memory(const rtmp_reader *r);

typedef struct rtmp_writer rtmp_writer;

/* New writer at chunk size 128; NULL on OOM. */
rtmp_writer *rtmp_writer_new(void);
void rtmp_writer_free(rtmp_writer *w);

/* Bytes the writer holds on the heap (itself and its chunk-stream table,
 * one entry per csid this side sent on). */
size_t rtmp_writer_memory(const rtmp_writer *w);

/* Outgoing chunk size (1 .. 0x7FFFFFFF); RTMP_ERR_CHUNK_SIZE otherwise. */
int rtmp_writer_set_chunk_size(rtmp_writer *w, uint32_t size);
uint32_t rtmp_writer_chunk_size(const rtmp_writer *w);

/* Whether fmt 3 chunks repeat the extended timestamp of the header before
 * them: 1 (the default, as the spec says) or 0 (left out, the quirk of some
 * encoders).  Applies to every fmt 3 chunk written afterwards by
 * rtmp_writer_write and rtmp_writer_chunk (continuations, and the first
 * chunk of a message sent as fmt 3), not to rtmp_chunk_write_fmt0. */
void rtmp_writer_set_ext_ts_fmt3(rtmp_writer *w, int on);
int rtmp_writer_ext_ts_fmt3(const rtmp_writer *w);

/* Append the chunks of one message (h->length bytes of payload) to *out.
 * The first chunk's fmt is chosen against the previous message on
 * h->csid (0 new stream or stream id changed or time went back; 1 same
 * stream; 2 same stream, type and length; 3 same delta too) unless h->fmt
 * forces one.  Continuation chunks are fmt 3 and repeat the extended
 * timestamp when the first chunk had one.  Never fmt 3 right after a fmt 0
 * (readers disagree about that delta).  A forced fmt is written as asked;
 * the writer then assumes what a reader would infer from it (a forced fmt 3
 * means the previous delta, whatever h->timestamp says).  payload may be
 * NULL when h->length is 0.  0, RTMP_ERR_NOMEM, or RTMP_ERR_INVAL (csid
 * outside 2..65599, fmt not 0..3 or AUTO). */
int rtmp_writer_write(rtmp_writer *w, const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_buf **out);

/* Chunk one message with a fmt 0 first chunk at the given chunk size,
 * independent of any writer: the bytes are the same for every connection
 * with that chunk size, so they can be shared.  0, RTMP_ERR_NOMEM, or
 * RTMP_ERR_INVAL (bad csid or chunk size). */
int rtmp_chunk_write_fmt0(uint32_t chunk_size, const rtmp_msg_hdr *h, const uint8_t *payload, rtmp_buf **out);

/* The chunk stream a message of this type goes on unless told: 2 for
 * protocol control, 6 audio, 7 video and aggregates, 5 data, 3 the rest. */
uint32_t rtmp_chunk_default_csid(uint8_t type);

/* Copy n payload bytes, from payload offset from on, out of buf: bytes
 * rtmp_chunk_write_fmt0(chunk_size, h, ...) wrote (a fmt 0 header, then
 * fmt 3 headers between chunks, each with the extended timestamp when
 * the first has one).  0, or RTMP_ERR_INVAL when from + n passes
 * h->length or buf is shorter than that layout says. */
int rtmp_chunk_gather_fmt0(uint32_t chunk_size, const rtmp_msg_hdr *h, const rtmp_buf *buf,
                           size_t from, uint8_t *out, size_t n);

/* Record in w that a message with header h was sent on h->csid by other
 * means (rtmp_chunk_write_fmt0), so the next compressed header is right.
 * 0, RTMP_ERR_NOMEM or RTMP_ERR_INVAL (bad csid). */
int rtmp_writer_note(rtmp_writer *w, const rtmp_msg_hdr *h);

/* Make the next automatically chosen header on csid a fmt 0, which every
 * reader takes the same way: after an Abort, a message left unfinished, or
 * anything else that may leave the peer's idea of the chunk stream
 * different from the writer's.  Nothing when csid was never written. */
void rtmp_writer_reset(rtmp_writer *w, uint32_t csid);

/* One message sent chunk by chunk (rtmp_writer_begin, then
 * rtmp_writer_chunk until sent == h.length).  Owned by the caller, who
 * also keeps the payload; other messages, on this csid or others, may be
 * written between two chunks: what is written is what goes on the wire. */
typedef struct rtmp_wmsg {
    rtmp_msg_hdr h;      /* the message; h.fmt: the first chunk's fmt or AUTO */
    uint32_t sent;       /* payload bytes already written */
    uint32_t tsv;        /* the first header's timestamp field value (the
                            timestamp after fmt 0, else the delta) */
    uint32_t delta;      /* the delta a reader holds after the first header */
    uint8_t  ext;        /* that header was extended (fmt 3: the stream's last was) */
    uint8_t  started;    /* the first chunk was written */
} rtmp_wmsg;

/* What one chunk looks like.  size: payload bytes (0: the writer's chunk
 * size at the time of the call; the last chunk takes what is left).
 * fmt: RTMP_FMT_AUTO (first chunk: h.fmt or chosen as rtmp_writer_write
 * does; later chunks: 3), or 0-3.  ext: -1 default, 1 write the extended
 * timestamp (fmt 0-2: the extended form even for a small value; fmt 3:
 * the 4 bytes), 0 leave the 4 bytes out of a fmt 3 chunk (no effect on
 * fmt 0-2, whose extended form follows the value). */
typedef struct rtmp_chunk_opts {
    uint32_t size;
    uint8_t  fmt;
    int      ext;
} rtmp_chunk_opts;

/* Prepare m for h (h->length payload bytes; nothing is written).  0, or
 * RTMP_ERR_INVAL (csid outside 2..65599, length over 2^24-1, bad fmt). */
int rtmp_writer_begin(rtmp_writer *w, const rtmp_msg_hdr *h, rtmp_wmsg *m);

/* Append the next chunk of m to *out: the header o asks for, then the next
 * o->size bytes of payload (the whole payload, the same pointer each
 * call).  The first chunk updates the writer's state of the csid the way
 * rtmp_writer_write does.  A later chunk with a fmt 0-2 header repeats the
 * message's fields (fmt 0 its timestamp, length, type and stream; fmt 1
 * its delta, length and type; fmt 2 its delta); since readers differ on
 * such a header, the next automatic header on that csid is then fmt 0.
 * The payload bytes written (0 only for an empty message), or
 * RTMP_ERR_INVAL (m complete, bad fmt), RTMP_ERR_NOMEM. */
int rtmp_writer_chunk(rtmp_writer *w, rtmp_wmsg *m, const uint8_t *payload,
                      const rtmp_chunk_opts *o, rtmp_buf **out);

#endif
