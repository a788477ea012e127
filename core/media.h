/*
 * media.h: the one media model.  An audio or video message body (an FLV
 * tag body) parsed into a plain struct: what codec, what kind of packet,
 * which frame type, which tracks and where each track's codec data lies.
 * Sans I/O, no allocation; track payloads are offsets into the caller's
 * bytes.  Every consumer (message fields, the slow-reader class, the
 * trace, FLV) asks here.
 *
 * Forms read (FLV spec 10.1 annex E; Enhanced RTMP v2):
 *   legacy audio  byte 0: sound format(4) rate(2) size(1) type(1); AAC
 *                 (format 10) adds a packet type byte (0 sequence header,
 *                 1 raw).
 *   legacy video  byte 0: frame type(4) codec id(4); AVC (7) and legacy
 *                 HEVC (12) add a packet type byte (0 sequence header,
 *                 1 NALU, 2 end of sequence) and an SI24 composition
 *                 time; frame type 5 (command) is followed by one command
 *                 byte instead of a payload.
 *   ExAudioTagHeader  byte 0: 1001 PPPP (sound format 9), ExVideoTagHeader
 *                 byte 0: 1 FFF PPPP.  Then, while P is ModEx (7): UI8
 *                 size-1 (when 255: UI16 size-1), the data, a byte
 *                 TTTT PPPP (T 0 = TimestampOffsetNano: UI24 ns at the
 *                 start of the data).  Video with F = 5 and P != Metadata:
 *                 one command byte, no body.  P = Multitrack (video 6,
 *                 audio 5): a byte MMMM PPPP (M 0 OneTrack, 1 ManyTracks,
 *                 2 ManyTracksManyCodecs), a FourCC unless M = 2, then
 *                 per track [FourCC if M = 2] UI8 id [UI24 size if M != 0]
 *                 and the track's bytes.  Otherwise a FourCC and the body.
 *                 avc1/hvc1/vvc1 CodedFrames start with an SI24
 *                 composition time; a MultichannelConfig body is UI8
 *                 order, UI8 count, then count bytes (order 2, custom) or
 *                 a UI32 of channel flags (order 1, native).
 *
 * Malformed bodies are refused with a negative RTMP_ERR_MEDIA_* code and
 * no byte past the end is read.  The struct then holds what was read
 * before the fault: the header fields (frame, packet, codec of the
 * message) once the header was whole, and the tracks completed so far;
 * rtmp_media_class and the other questions below read only header
 * fields, so a prefix of a body that holds its header (FLV append reads
 * 32 bytes of each tag) gets the same answers as the whole body.
 *
 * One leniency, kept from the classifiers this replaces: a legacy AVC or
 * HEVC body that ends inside its composition time reads as composition
 * time 0 with an empty payload (the packet type byte is still required).
 */
#ifndef RTMP_MEDIA_H
#define RTMP_MEDIA_H

#include <stddef.h>
#include <stdint.h>

/* Most tracks one message may hold (a multitrack message with more is
 * refused with RTMP_ERR_MEDIA_TRACKS). */
#define RTMP_MEDIA_MAX_TRACKS 16

/* Packet kinds: one vocabulary for legacy and enhanced headers. */
enum {
    RTMP_MEDIA_SEQ_START = 0,          /* decoder configuration: AVC/HEVC/AAC packet type 0, SequenceStart */
    RTMP_MEDIA_CODED_FRAMES,           /* frames (legacy frames of codecs without a packet type too) */
    RTMP_MEDIA_SEQ_END,                /* AVC/HEVC end of sequence, SequenceEnd */
    RTMP_MEDIA_CODED_FRAMES_X,         /* frames, composition time 0 implied */
    RTMP_MEDIA_METADATA,               /* video: AMF "colorInfo" */
    RTMP_MEDIA_MPEG2TS_SEQ_START,      /* video: AV1 MPEG-2 TS descriptor */
    RTMP_MEDIA_MULTICHANNEL_CONFIG,    /* audio: channel order and mapping */
    RTMP_MEDIA_COMMAND,                /* video command frame: no tracks, see rtmp_media.command */
    RTMP_MEDIA_UNKNOWN_PACKET,         /* legacy AVC/HEVC/AAC packet type byte of no defined value */
    RTMP_MEDIA_NO_PACKET = 0xFF        /* not known: the header was cut short */
};

/* Codecs.  Names (rtmp_media_codec_name): the FourCC where the codec has
 * one, whatever the header form; legacy names for the others. */
enum {
    RTMP_MEDIA_CODEC_NONE = 0,     /* reserved legacy id, or an enhanced FourCC not listed here */
    RTMP_MEDIA_AVC,                /* "avc1"  (legacy 7) */
    RTMP_MEDIA_HEVC,               /* "hvc1"  (legacy 12) */
    RTMP_MEDIA_VVC,                /* "vvc1" */
    RTMP_MEDIA_VP8,                /* "vp08" */
    RTMP_MEDIA_VP9,                /* "vp09" */
    RTMP_MEDIA_AV1,                /* "av01"  (legacy 13) */
    RTMP_MEDIA_H263,               /* "h263"  (legacy 2) */
    RTMP_MEDIA_SCREEN,             /* "screen" (3) */
    RTMP_MEDIA_VP6,                /* "vp6"   (4) */
    RTMP_MEDIA_VP6A,               /* "vp6a"  (5) */
    RTMP_MEDIA_SCREEN2,            /* "screen2" (6) */
    RTMP_MEDIA_AAC,                /* "mp4a"  (legacy 10) */
    RTMP_MEDIA_OPUS,               /* "Opus" */
    RTMP_MEDIA_FLAC,               /* "fLaC" */
    RTMP_MEDIA_AC3,                /* "ac-3" */
    RTMP_MEDIA_EAC3,               /* "ec-3" */
    RTMP_MEDIA_MP3,                /* ".mp3"  (legacy 2 and 14, MP3 8 kHz) */
    RTMP_MEDIA_PCM,                /* "pcm"   (0, platform-endian) */
    RTMP_MEDIA_ADPCM,              /* "adpcm" (1) */
    RTMP_MEDIA_PCM_LE,             /* "pcm_le" (3) */
    RTMP_MEDIA_NELLYMOSER16,       /* "nellymoser16" (4) */
    RTMP_MEDIA_NELLYMOSER8,        /* "nellymoser8" (5) */
    RTMP_MEDIA_NELLYMOSER,         /* "nellymoser" (6) */
    RTMP_MEDIA_G711A,              /* "g711a" (7) */
    RTMP_MEDIA_G711U,              /* "g711u" (8) */
    RTMP_MEDIA_SPEEX,              /* "speex" (11) */
    RTMP_MEDIA_DEVICE,             /* "device" (15, device-specific sound) */
    RTMP_MEDIA_CODEC_COUNT_
};

/* Slow-reader classes (mediaq.h uses them as RTMP_MEDIAQ_KEEP ... _INTER). */
enum {
    RTMP_MEDIA_CLASS_KEEP = 0,     /* never dropped: configuration, ends, metadata, commands, unknown */
    RTMP_MEDIA_CLASS_AUDIO,        /* audio frames */
    RTMP_MEDIA_CLASS_KEY,          /* video frames of a keyframe (frame type 1 or 4) */
    RTMP_MEDIA_CLASS_INTER,        /* other video frames (2 inter, 3 disposable) */
};

/* Multitrack modes (rtmp_media.multitrack). */
enum {
    RTMP_MEDIA_SINGLE = -1,        /* not a multitrack message */
    RTMP_MEDIA_ONE_TRACK = 0,
    RTMP_MEDIA_MANY_TRACKS = 1,
    RTMP_MEDIA_MANY_TRACKS_MANY_CODECS = 2,
};

typedef struct rtmp_media_track {
    uint32_t fourcc;          /* enhanced: the FourCC as a big-endian UI32; legacy: 0 */
    uint8_t  codec;           /* RTMP_MEDIA_AVC ... (CODEC_NONE: an unlisted FourCC) */
    uint8_t  id;              /* multitrack track id; 0 for a single track */
    uint8_t  channel_order;   /* MultichannelConfig: 0 unspecified, 1 native, 2 custom */
    uint8_t  channel_count;   /* MultichannelConfig */
    int32_t  cts;             /* composition time offset in ms; 0 where the form has none */
    size_t   offset;          /* the track's codec data is body[offset .. offset + size), */
    size_t   size;            /* after the composition time when there is one */
} rtmp_media_track;

typedef struct rtmp_media {
    uint8_t  type;            /* RTMP_MSG_AUDIO (8) or RTMP_MSG_VIDEO (9) */
    uint8_t  enhanced;        /* 1: ExAudioTagHeader / ExVideoTagHeader */
    uint8_t  frame;           /* video frame type (1 key, 2 inter, 3 disposable, 4 generated key,
                               * 5 command; 0, 6, 7 undefined); 0 for audio */
    uint8_t  packet;          /* RTMP_MEDIA_SEQ_START ... (NO_PACKET until the header is whole);
                               * one packet type for every track of a message */
    uint8_t  wire_packet;     /* the packet type byte or nibble as sent (after ModEx and
                               * Multitrack); 0xFF for legacy forms without one */
    uint8_t  legacy_id;       /* legacy codec id / sound format (9 for enhanced audio, 0 for enhanced video) */
    uint8_t  sound_rate;      /* legacy audio: 0 5.5 kHz, 1 11 kHz, 2 22 kHz, 3 44 kHz */
    uint8_t  sound_bits;      /* legacy audio: 8 or 16 */
    uint8_t  sound_channels;  /* legacy audio: 1 or 2 */
    uint8_t  codec;           /* the message's codec: the first track's, or the legacy id's */
    uint32_t fourcc;          /* the message's FourCC (enhanced, when known), else 0 */
    int8_t   multitrack;      /* RTMP_MEDIA_SINGLE or a multitrack mode */
    uint8_t  command;         /* RTMP_MEDIA_COMMAND: 0 StartSeek, 1 EndSeek (as sent) */
    uint8_t  modex;           /* ModEx blocks read */
    uint8_t  has_nano;        /* a ModEx TimestampOffsetNano was read */
    uint32_t nano;            /* its value in ns, 0 .. 999999 */
    unsigned ntracks;         /* tracks in track[] (0 for command frames) */
    rtmp_media_track track[RTMP_MEDIA_MAX_TRACKS];
} rtmp_media;

/* Parse the body p[0 .. len) of a message of type `type` (8 audio, 9
 * video) into *m.  Returns 0, or a negative code (m then holds what was
 * read before the fault, see above):
 *   RTMP_ERR_INVAL            type is neither 8 nor 9;
 *   RTMP_ERR_MEDIA_EMPTY      len is 0 (no header byte);
 *   RTMP_ERR_MEDIA_TRUNCATED  a header field cut short (packet type byte,
 *                             FourCC, ModEx type byte or 16-bit size, track
 *                             id or size, command, composition time,
 *                             channel configuration);
 *   RTMP_ERR_MEDIA_MODEX_SIZE ModEx data past the end;
 *   RTMP_ERR_MEDIA_MODEX      a TimestampOffsetNano shorter than 3 bytes or
 *                             over 999999 ns;
 *   RTMP_ERR_MEDIA_PACKET     an enhanced packet type that is reserved, or
 *                             Multitrack/ModEx as the tracks' packet type;
 *   RTMP_ERR_MEDIA_MULTITRACK a multitrack mode other than 0, 1, 2;
 *   RTMP_ERR_MEDIA_TRACK_SIZE a track size past the end;
 *   RTMP_ERR_MEDIA_TRACKS     more than RTMP_MEDIA_MAX_TRACKS tracks.
 * An unlisted FourCC is not an error (codec RTMP_MEDIA_CODEC_NONE, the
 * FourCC kept), nor are trailing bytes after a command. */
int rtmp_media_parse(rtmp_media *m, uint8_t type, const uint8_t *p, size_t len);

/* 1 when the message is video of frame type 1 (key) or 4 (generated
 * key), legacy or enhanced, whatever its packet type; else 0. */
int rtmp_media_is_keyframe(const rtmp_media *m);

/* 1 when the packet configures a decoder: legacy AVC/HEVC/AAC packet type
 * 0, SequenceStart, MPEG2TSSequenceStart, MultichannelConfig; else 0. */
int rtmp_media_is_sequence_header(const rtmp_media *m);

/* 1 for an AVC/HEVC end of sequence or a SequenceEnd; else 0. */
int rtmp_media_is_sequence_end(const rtmp_media *m);

/* The slow-reader class (RTMP_MEDIA_CLASS_*) from the header fields:
 * audio frames (coded frames, or a legacy AAC packet type other than 0)
 * AUDIO; video frames (coded frames, or a legacy codec without a packet
 * type) KEY for frame types 1 and 4, INTER for 2 and 3; everything else
 * KEEP, including a header cut short. */
int rtmp_media_class(const rtmp_media *m);

/* The codec's name ("avc1", "mp4a", "vp6", ...), or NULL for
 * RTMP_MEDIA_CODEC_NONE and unknown values. */
const char *rtmp_media_codec_name(int codec);

/* The packet kind's name: "seq_start", "coded_frames", "seq_end",
 * "coded_frames_x", "metadata", "mpeg2ts_seq_start",
 * "multichannel_config", "command"; NULL for UNKNOWN_PACKET, NO_PACKET
 * and unknown values. */
const char *rtmp_media_packet_name(int packet);

/* The FLV spec's short name of a legacy codec id (type 9: "h263",
 * "screen", "vp6", "vp6a", "screen2", "avc", "hevc" (12), "av1" (13)) or
 * sound format (type 8: "pcm", "adpcm", "mp3", "pcm_le",
 * "nellymoser16", "nellymoser8", "nellymoser", "g711a", "g711u", "aac",
 * "speex", "mp3_8k", "device"); NULL for reserved ids (and 9 for audio,
 * the enhanced header). */
const char *rtmp_media_legacy_name(uint8_t type, unsigned id);

/* The multitrack mode's name: "one_track", "many_tracks",
 * "many_tracks_many_codecs"; NULL for RTMP_MEDIA_SINGLE. */
const char *rtmp_media_multitrack_name(int mode);

/* The FourCC of a codec that has one (RTMP_MEDIA_AVC: "avc1" ... MP3:
 * ".mp3") as a big-endian UI32; 0 for the others. */
uint32_t rtmp_media_fourcc(int codec);

/* The legacy codec id (video) or sound format (audio) of a codec, the
 * lowest where there are two (MP3: 2); -1 when it has none. */
int rtmp_media_legacy_id(int codec);

/* 1 for the codecs rtmp_media_put_head writes in their legacy form
 * unless told otherwise (AVC, AAC, MP3), else 0. */
int rtmp_media_legacy_form(int codec);

/* The message type that carries a codec: RTMP_MSG_VIDEO for AVC ...
 * SCREEN2, RTMP_MSG_AUDIO for AAC ... DEVICE, 0 for CODEC_NONE and
 * unknown values. */
int rtmp_media_codec_type(int codec);

/* Building headers: the inverse of rtmp_media_parse for the forms a
 * publisher sends (core/mp4 makes messages from MP4 samples with it). */
typedef struct rtmp_media_head {
    uint8_t  type;        /* RTMP_MSG_AUDIO or RTMP_MSG_VIDEO */
    uint8_t  codec;       /* RTMP_MEDIA_AVC ... (ManyTracksManyCodecs: each track's, not this) */
    uint8_t  packet;      /* RTMP_MEDIA_SEQ_START, CODED_FRAMES or SEQ_END */
    uint8_t  frame;       /* video frame type (1 key, 2 inter); 0 for audio */
    uint8_t  enhanced;    /* 1: ExAudioTagHeader / ExVideoTagHeader also where a legacy form exists */
    int8_t   multitrack;  /* RTMP_MEDIA_SINGLE, or the mode of a multitrack message (enhanced) */
    uint8_t  sound;       /* legacy audio: the low nibble of byte 0 (rate(2) size(1) type(1)) */
    int32_t  cts;         /* single track: the composition time of AVC/HEVC/VVC coded frames (ms) */
} rtmp_media_head;

#define RTMP_MEDIA_HEAD_MAX 16        /* bytes rtmp_media_put_head writes at most */
#define RTMP_MEDIA_TRACK_HEAD_MAX 11  /* bytes rtmp_media_put_track writes at most */

/* Write the header of a message into out.  A single track: everything
 * before its codec data (legacy AVC: byte 0, packet type, SI24
 * composition time; legacy AAC: byte 0, packet type; legacy MP3: byte 0;
 * enhanced: byte 0, the FourCC, the composition time of avc1/hvc1/vvc1
 * coded frames).  A multitrack message: byte 0, the multitrack byte and,
 * unless ManyTracksManyCodecs, the FourCC; each track follows with
 * rtmp_media_put_track and its data.  The legacy forms written are AVC,
 * AAC and MP3 (unless h->enhanced); every other codec with a FourCC is
 * written enhanced.  Returns the bytes written, or RTMP_ERR_INVAL: a
 * codec with neither form, a packet the form has not (legacy MP3 frames
 * only, legacy AAC no end, an enhanced multitrack message of a codec
 * without a FourCC), a composition time out of SI24 range. */
int rtmp_media_put_head(uint8_t out[RTMP_MEDIA_HEAD_MAX], const rtmp_media_head *h);

/* Write what precedes one track's codec data in the multitrack message
 * whose header h describes: the FourCC of `codec` (ManyTracksManyCodecs),
 * the track id, the UI24 size of the rest of the track (not in OneTrack)
 * and the composition time of avc1/hvc1/vvc1 coded frames.  `size` is
 * the length of the codec data that follows.  Returns the bytes written,
 * or RTMP_ERR_INVAL (a size that does not fit in 24 bits, a codec without
 * a FourCC, a composition time out of range). */
int rtmp_media_put_track(uint8_t out[RTMP_MEDIA_TRACK_HEAD_MAX], const rtmp_media_head *h, uint8_t codec,
                         uint8_t id, int32_t cts, size_t size);

#endif
