/*
 * error.h: the one table of luartmp error codes.
 *
 * Every fallible core function returns a value >= 0 on success or a
 * negative RTMP_ERR_* code.  The list below generates the enum, the
 * names ("RTMP_ERR_MSG_TOO_LONG") and the human messages.
 */
#ifndef RTMP_ERROR_H
#define RTMP_ERROR_H

#define RTMP_ERRORS(X)                                                        \
    X(NOMEM,          "out of memory")                                        \
    X(INVAL,          "invalid argument")                                     \
    X(CLOSED,         "closed")                                               \
    X(TIMEOUT,        "timeout")                                              \
    X(IO,             "input/output error")                                   \
    X(QUEUE_FULL,     "output queue full")                                    \
    X(HS_VERSION,     "unsupported handshake version")                        \
    X(HS_DIGEST,      "handshake digest mismatch")                            \
    X(CHUNK_SIZE,     "chunk size out of range")                              \
    X(MSG_TOO_LONG,   "message longer than the limit")                        \
    X(TOO_MANY_CSID,  "too many chunk streams")                               \
    X(FRESH_CSID,     "new chunk stream does not start with a fmt 0 header")  \
    X(LENGTH_CHANGED, "message length changed in the middle of a message")    \
    X(CONTROL,        "malformed protocol control message")                   \
    X(AMF_TRUNCATED,  "AMF value truncated")                                  \
    X(AMF_MARKER,     "unknown or unsupported AMF marker")                    \
    X(AMF_DEPTH,      "AMF nesting too deep")                                 \
    X(AMF_REFERENCE,  "AMF reference out of range")                           \
    X(AMF_TYPE,       "AMF value of the wrong type")                          \
    X(AMF_EXTERNALIZABLE, "AMF3 externalizable class without a handler")      \
    X(AGG_TRUNCATED,  "aggregate sub-message runs past the end of the message") \
    X(AGG_BACKPTR,    "aggregate back pointer does not match the sub-message") \
    X(AGG_NESTED,     "aggregate message inside an aggregate")                \
    X(AGG_CONTROL,    "protocol control message inside an aggregate")         \
    X(SO_TRUNCATED,   "shared object message truncated")                      \
    X(SO_ENCODING,    "unsupported shared object encoding byte")              \
    X(FLV_SIGNATURE,  "not an FLV file (no FLV signature)")                   \
    X(FLV_HEADER,     "FLV header data offset below 9")                       \
    X(FLV_TRUNCATED,  "FLV file truncated")                                   \
    X(FLV_PREV_SIZE,  "FLV previous tag size does not match the tag")         \
    X(FLV_TAG_TYPE,   "FLV tag of a type other than audio, video or script data") \
    X(FLV_ENCRYPTED,  "encrypted FLV tag (filter bit set)")                   \
    X(TCP_TRUNCATED,  "captured frame shorter than its headers")              \
    X(TLS_RECORD,     "not a TLS record (content type, version or length out of range)") \
    X(TLS_UNEXPECTED, "TLS stream that does not begin with a hello or an alert") \
    X(TLS_MALFORMED,  "malformed TLS hello or alert (a length runs past what holds it)") \
    X(TLS_LIMIT,      "TLS hello longer than the reader holds (32 KiB)")     \
    X(STOP,           "stopped by callback")                                  \
    X(MEDIA_EMPTY,    "audio or video message without a header byte")         \
    X(MEDIA_TRUNCATED, "audio or video header cut short")                     \
    X(MEDIA_MODEX_SIZE, "ModEx data runs past the end of the message")        \
    X(MEDIA_MODEX,    "ModEx TimestampOffsetNano shorter than 3 bytes or over 999999 ns") \
    X(MEDIA_PACKET,   "reserved or misplaced enhanced RTMP packet type")      \
    X(MEDIA_MULTITRACK, "reserved enhanced RTMP multitrack type")             \
    X(MEDIA_TRACK_SIZE, "multitrack track size runs past the end of the message") \
    X(MEDIA_TRACKS,   "more tracks in one message than the media model holds (16)") \
    X(MP4_TRUNCATED,  "MP4 file truncated (a box or a sample runs past the end)") \
    X(MP4_BOX,        "malformed MP4 box (size below its header, or past its parent)") \
    X(MP4_TABLE,      "MP4 sample tables do not agree (counts, sizes or offsets)") \
    X(MP4_LIMIT,      "MP4 box, table or sample over the reader's limit")     \
    X(MP4_NO_MOOV,    "MP4 file without a movie box (moov)")                  \
    X(MP4_CONFIG,     "codec configuration malformed or missing")             \
    X(MP4_CODEC,      "codec that MP4 or RTMP cannot carry here")             \
    X(URL_SCHEME,     "not an rtmp:// URL")                                   \
    X(URL_HOST,       "no host in URL")                                       \
    X(URL_IPV6,       "bad IPv6 host in URL")

enum {
    RTMP_OK = 0,
#define RTMP_X_ENUM(name, msg) RTMP_ERR_##name,
    RTMP_ERR_BASE_ = -1000,
    RTMP_ERRORS(RTMP_X_ENUM)
#undef RTMP_X_ENUM
    RTMP_ERR_END_
};

/* Human-readable message for an error code ("message longer than the limit").
 * Unknown codes give "unknown error". */
const char *rtmp_strerror(int err);

/* Short stable name for an error code, without prefix ("MSG_TOO_LONG"). */
const char *rtmp_errname(int err);

#endif
