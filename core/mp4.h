/*
 * mp4.h: MP4 files (ISO BMFF, ISO/IEC 14496-12) read and written, sans
 * I/O.  The reader (mp4read.c) takes bytes the caller read from a file,
 * at the ranges it asks for, and yields the tracks and their samples in
 * decode order interleaved by time; the writer (mp4write.c) takes RTMP
 * audio and video messages and makes a fragmented MP4 (ftyp, moov with
 * mvex, then moof + mdat per fragment) into a buffer the caller writes
 * out.  Both share the track description below; mp4codec.c holds the
 * one table codec <-> sample entry <-> configuration box, the
 * conversions between a configuration box and what an RTMP SequenceStart
 * carries, and the RTMP messages made from samples (headers through the
 * media model's rtmp_media_put_head, core/media.h).
 *
 * Codecs (RTMP FourCC, sample entry, configuration box; the RTMP
 * SequenceStart body of each, Enhanced RTMP v2):
 *   avc1  avc1 (avc3 read)  avcC   the AVCDecoderConfigurationRecord (legacy AVC: the same)
 *   hvc1  hvc1 (hev1 read)  hvcC   the HEVCDecoderConfigurationRecord
 *   av01  av01              av1C   the AV1CodecConfigurationRecord
 *   vp09  vp09              vpcC   the VPCodecConfigurationRecord (the box is a FullBox,
 *   vp08  vp08              vpcC   version 1: its 4 header bytes are not sent)
 *   mp4a  mp4a (esds 0x40, 0x66-0x68)   esds   the AudioSpecificConfig (legacy AAC: the same)
 *   .mp3  mp4a (esds 0x6B, 0x69), .mp3  esds   none (legacy MP3 has no sequence header)
 *   Opus  Opus              dOps   the Opus ID header "OpusHead" (RFC 7845 5.1, little-endian;
 *                                  dOps holds the same fields big-endian, without the magic)
 *   fLaC  fLaC              dfLa   "fLaC" and the metadata blocks, STREAMINFO first (dfLa: a
 *                                  FullBox holding the blocks); a bare 34-byte STREAMINFO is
 *                                  taken too (what FFmpeg sends)
 *   ac-3  ac-3              dac3   empty (the spec defines none; dac3 is made from the first
 *   ec-3  ec-3              dec3   syncframe's header when writing)
 *
 * Limits: a moov or moof is held whole in memory, up to max_box bytes
 * (RTMP_ERR_MP4_LIMIT beyond); the sample tables are read in place from
 * the held moov, never expanded (a cursor per track), so memory is the
 * moov's size plus a constant.  Every box size, entry count and offset is
 * checked against what holds it before it is used.
 */
#ifndef RTMP_MP4_H
#define RTMP_MP4_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define RTMP_MP4_TAG(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* Most audio and video tracks a file may have (more: RTMP_ERR_MP4_LIMIT). */
#define RTMP_MP4_MAX_TRACKS 16

/* A track, as the reader found it or as the writer builds it. */
typedef struct rtmp_mp4_track {
    uint32_t id;            /* track_ID (tkhd, tfhd, trex) */
    uint8_t  type;          /* RTMP_MSG_AUDIO or RTMP_MSG_VIDEO */
    uint8_t  codec;         /* RTMP_MEDIA_AVC ...; RTMP_MEDIA_CODEC_NONE: a sample entry not in the table */
    uint8_t  rtmp_id;       /* the RTMP track id: 0 for the first track of its kind, then 1, 2 ... */
    uint8_t  oti;           /* esds objectTypeIndication (0 when there is no esds) */
    uint32_t entry;         /* the sample entry's type as read or written ('avc1', 'hev1', 'mp4a', ...) */
    uint32_t timescale;     /* mdhd: ticks per second, > 0 */
    uint64_t duration;      /* mdhd, in ticks (0: unknown) */
    uint16_t width, height; /* visual sample entry (0 for audio) */
    uint32_t sample_rate;   /* audio: Hz (the sample entry's; Opus 48000) */
    uint16_t channels;      /* audio */
    int64_t  shift;         /* edit list: ticks added to every decode time (empty edit minus media_time) */
    const uint8_t *config;  /* the configuration box's content (after a FullBox header; esds: the
                             * DecoderSpecificInfo), or NULL */
    size_t   config_len;
} rtmp_mp4_track;

/* ---- the codec table (mp4codec.c) ---- */

typedef struct rtmp_mp4_codec {
    uint8_t  codec;         /* RTMP_MEDIA_* */
    uint32_t entry;         /* sample entry written */
    uint32_t entry_alt;     /* another sample entry read as this codec, or 0 */
    uint32_t box;           /* its configuration box */
    int8_t   box_version;   /* the box is a FullBox of this version; -1 a plain box */
    uint8_t  oti;           /* esds objectTypeIndication written (MP3 in mp4a), 0: no esds */
    uint8_t  seq_start;     /* what an RTMP SequenceStart carries: RTMP_MP4_SEQ_* */
} rtmp_mp4_codec;

enum {
    RTMP_MP4_SEQ_NONE = 0,  /* no SequenceStart is sent (MP3); the configuration is in the frames */
    RTMP_MP4_SEQ_EMPTY,     /* an empty one (AC-3, E-AC-3); the configuration is in the frames */
    RTMP_MP4_SEQ_CONFIG,    /* the configuration: a track cannot be written without it */
};

/* The row of a codec (RTMP_MEDIA_*), or NULL when MP4 cannot carry it here. */
const rtmp_mp4_codec *rtmp_mp4_codec_of(int codec);

/* The row of a sample entry type (with the esds objectTypeIndication for
 * 'mp4a'), or NULL. */
const rtmp_mp4_codec *rtmp_mp4_codec_of_entry(uint32_t entry, uint8_t oti);

/* Convert track t's configuration to what an RTMP SequenceStart carries
 * (the table above), appended to *out.  Returns the bytes appended (0:
 * the codec sends none or an empty one), RTMP_ERR_MP4_CONFIG (malformed
 * or missing where the codec needs one) or RTMP_ERR_NOMEM. */
int rtmp_mp4_config_to_rtmp(const rtmp_mp4_track *t, rtmp_buf **out);

/* Convert an RTMP SequenceStart body p[0 .. len) of `codec` to the
 * configuration box's content, appended to *out, and fill in what it
 * tells of the track: sample_rate and channels for audio.  Returns the
 * bytes appended (0: none, for codecs whose configuration comes from the
 * first frame), RTMP_ERR_MP4_CONFIG, RTMP_ERR_MP4_CODEC or RTMP_ERR_NOMEM. */
int rtmp_mp4_config_from_rtmp(int codec, const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out);

/* Set t's sample_rate and channels from its configuration where it
 * tells them (AudioSpecificConfig, dOps, STREAMINFO, dac3, dec3): a
 * sample entry's fields are often a template (2 channels).  0, or
 * RTMP_ERR_MP4_CONFIG when the configuration does not parse (t unchanged). */
int rtmp_mp4_config_params(rtmp_mp4_track *t);

/* For codecs whose configuration is in every frame (AC-3, E-AC-3, MP3):
 * the configuration box's content made from the frame p[0 .. len),
 * appended to *out (MP3: none), and sample_rate, channels and oti of *t.
 * Returns the bytes appended, RTMP_ERR_MP4_CONFIG (no frame header there)
 * or RTMP_ERR_NOMEM. */
int rtmp_mp4_config_from_frame(int codec, const uint8_t *p, size_t len, rtmp_mp4_track *t, rtmp_buf **out);

/* A video track's picture size from its configuration record (AVC, HEVC:
 * the SPS, cropped; AV1: the sequence header's maximum frame size) or,
 * for VP9, from a key frame's uncompressed header (frame, flen).  0, or
 * RTMP_ERR_MP4_CONFIG (not there, or it does not parse) / RTMP_ERR_MP4_CODEC. */
int rtmp_mp4_video_size(int codec, const uint8_t *config, size_t len, const uint8_t *frame, size_t flen,
                        uint16_t *width, uint16_t *height);

/* ---- RTMP messages from samples (mp4codec.c) ---- */

/* One track's part of a message: the track and its sample's data. */
typedef struct rtmp_mp4_part {
    const rtmp_mp4_track *track;
    const uint8_t *data;
    size_t   len;
    int32_t  cts;           /* composition time offset in ms */
} rtmp_mp4_part;

/* Append the body of the RTMP message carrying parts[0 .. n): packet
 * RTMP_MEDIA_SEQ_START (data: the RTMP configuration,
 * rtmp_mp4_config_to_rtmp) or RTMP_MEDIA_CODED_FRAMES; key for video
 * keyframes.  One part of a kind that has one track is a single-track
 * message (legacy AVC, AAC and MP3 unless enhanced); otherwise
 * (multitrack, the tracks of a kind that has more than one) a
 * multitrack message: ManyTracks when the parts share a codec, else
 * ManyTracksManyCodecs, track ids from rtmp_id.  All parts are of one
 * kind.  Returns the bytes appended, RTMP_ERR_INVAL (a codec RTMP cannot
 * carry in that form, n out of 1 .. RTMP_MEDIA_MAX_TRACKS) or
 * RTMP_ERR_NOMEM. */
int rtmp_mp4_put_message(rtmp_buf **out, int packet, int key, int enhanced, int multitrack,
                         const rtmp_mp4_part *parts, unsigned n);

/* Append an AMF0 data message body "@setDataFrame", "onMetaData" and an
 * ECMA array describing the first video and audio track of tracks[0 ..
 * n) (duration in seconds, width, height, videocodecid and audiocodecid:
 * the legacy id where the legacy form is sent (not enhanced), else the
 * FourCC as a number; audiosamplerate, audiochannels, stereo).  0 or
 * RTMP_ERR_NOMEM. */
int rtmp_mp4_put_metadata(rtmp_buf **out, const rtmp_mp4_track *tracks, unsigned n, double duration, int enhanced);

/* ---- the reader (mp4read.c) ---- */

typedef struct rtmp_mp4_reader rtmp_mp4_reader;

typedef struct rtmp_mp4_limits {
    size_t   max_box;       /* bytes of a moov or moof held (default 64 MiB) */
    uint32_t max_sample;    /* bytes of one sample (default 64 MiB) */
} rtmp_mp4_limits;

typedef struct rtmp_mp4_sample {
    unsigned track;         /* index into the reader's tracks */
    uint64_t dts;           /* decode time in the track's ticks (as the file has it) */
    int32_t  cts;           /* composition offset in ticks (presentation = dts + cts) */
    uint32_t duration;      /* ticks */
    uint8_t  key;           /* a sync sample */
    int64_t  time_us;       /* decode time on the movie's timeline in microseconds (edit list applied) */
    int64_t  cts_us;        /* the composition offset in microseconds */
    uint64_t offset;        /* where its bytes are in the file */
    uint32_t size;
} rtmp_mp4_sample;

/* What rtmp_mp4_read returns (>= 0); a negative code is an error. */
enum {
    RTMP_MP4_END = 0,       /* no more samples */
    RTMP_MP4_SAMPLE,        /* *s filled */
    RTMP_MP4_NEED,          /* feed the range rtmp_mp4_reader_need names, then read again */
    RTMP_MP4_TRACKS,        /* the movie box is read: the tracks are known (once, before any sample) */
};

/* A reader of a file of file_size bytes (lim NULL: the defaults).  NULL
 * when out of memory. */
rtmp_mp4_reader *rtmp_mp4_reader_new(uint64_t file_size, const rtmp_mp4_limits *lim);
void rtmp_mp4_reader_free(rtmp_mp4_reader *r);

/* One step: RTMP_MP4_TRACKS, RTMP_MP4_SAMPLE, RTMP_MP4_NEED, RTMP_MP4_END,
 * or a negative code, kept (every later call returns it):
 *   RTMP_ERR_MP4_TRUNCATED  a box or a sample's data past the end of the file;
 *   RTMP_ERR_MP4_BOX        a box size below its header or past the box holding it;
 *   RTMP_ERR_MP4_TABLE      counts that do not fit their box or do not agree
 *                           (stts, ctts, stsz, stsc, stco, stss, trun), a sample
 *                           past the last chunk, a fragment of an unknown track;
 *   RTMP_ERR_MP4_LIMIT      a moov or moof over max_box, a sample over max_sample,
 *                           more than RTMP_MP4_MAX_TRACKS tracks;
 *   RTMP_ERR_MP4_NO_MOOV    the file ended without a moov;
 *   RTMP_ERR_MP4_CONFIG     a sample entry or configuration box cut short;
 *   RTMP_ERR_NOMEM.
 * rtmp_mp4_reader_where tells the box and offset of an error. */
int rtmp_mp4_read(rtmp_mp4_reader *r, rtmp_mp4_sample *s);

/* The range the reader needs after RTMP_MP4_NEED: len bytes from offset. */
void rtmp_mp4_reader_need(const rtmp_mp4_reader *r, uint64_t *offset, size_t *len);

/* Hand over the bytes of that range: p[0 .. len), len at most what was
 * asked (less: the file ended early, an error at the next read).  The
 * bytes are copied.  0 or RTMP_ERR_NOMEM. */
int rtmp_mp4_reader_feed(rtmp_mp4_reader *r, const uint8_t *p, size_t len);

/* The tracks (after RTMP_MP4_TRACKS): how many, and each.  Only audio
 * and video tracks are listed. */
unsigned rtmp_mp4_reader_ntracks(const rtmp_mp4_reader *r);
const rtmp_mp4_track *rtmp_mp4_reader_track(const rtmp_mp4_reader *r, unsigned i);

/* The movie's duration in seconds (mvhd or mehd; 0 unknown) and whether
 * the file has fragments (mvex). */
double rtmp_mp4_reader_duration(const rtmp_mp4_reader *r);
int rtmp_mp4_reader_fragmented(const rtmp_mp4_reader *r);

/* Where the last error was found: the box type (0: none) and the file
 * offset of that box. */
void rtmp_mp4_reader_where(const rtmp_mp4_reader *r, uint32_t *box, uint64_t *offset);

/* ---- the writer (mp4write.c) ---- */

typedef struct rtmp_mp4_writer rtmp_mp4_writer;

typedef struct rtmp_mp4_writer_opts {
    uint32_t fragment_ms;   /* without video: a fragment every this many ms (default 1000) */
    size_t   max_fragment;  /* sample bytes held before a fragment is cut anyway (default 32 MiB) */
} rtmp_mp4_writer_opts;

typedef struct rtmp_mp4_writer_stats {
    unsigned tracks;        /* tracks in the moov (0 before it is written) */
    uint64_t fragments;     /* moof + mdat pairs written */
    uint64_t samples;       /* samples written */
    uint64_t dropped;       /* frames of a track without its configuration (no sequence start yet) */
    uint64_t late;          /* frames of tracks that began after the moov was written */
    uint64_t ignored;       /* messages with nothing to write: ends, metadata, commands, config changes */
} rtmp_mp4_writer_stats;

/* A writer (opts NULL: the defaults); NULL when out of memory. */
rtmp_mp4_writer *rtmp_mp4_writer_new(const rtmp_mp4_writer_opts *opts);
void rtmp_mp4_writer_free(rtmp_mp4_writer *w);

/* Take one RTMP message: type 8 or 9 (other types: 0, nothing done),
 * timestamp in ms, body p[0 .. len).  A sequence start becomes a track
 * (one per kind and RTMP track id) and its sample entry; frames become
 * samples; a video keyframe of the first video track (without video:
 * fragment_ms of audio) closes the fragment before it, and the bytes of
 * the file made so far are appended to *out (the caller writes them).
 * Returns 0, or RTMP_ERR_MP4_CONFIG / RTMP_ERR_MP4_CODEC (a sequence
 * start that cannot become a sample entry: the message is refused, the
 * file stays valid), a RTMP_ERR_MEDIA_* code (the body does not parse),
 * RTMP_ERR_NOMEM. */
int rtmp_mp4_writer_message(rtmp_mp4_writer *w, uint8_t type, uint32_t timestamp, const uint8_t *p,
                            size_t len, rtmp_buf **out);

/* Width and height for the first video track's sample entry (onMetaData),
 * when its configuration (or, for VP9, its first key frame) does not say;
 * used when the moov is written. */
void rtmp_mp4_writer_dimensions(rtmp_mp4_writer *w, uint16_t width, uint16_t height);

/* Write what is held (the moov if not yet, the last fragment) to *out.
 * 0 or RTMP_ERR_NOMEM.  A writer that got no frame writes nothing. */
int rtmp_mp4_writer_finish(rtmp_mp4_writer *w, rtmp_buf **out);

void rtmp_mp4_writer_stats_get(const rtmp_mp4_writer *w, rtmp_mp4_writer_stats *st);

#endif
