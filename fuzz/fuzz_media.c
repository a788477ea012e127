/*
 * fuzz_media.c: the media model (core/media.c) and the media fields of
 * message objects (l_msg.c over it).
 *
 * Byte 0 picks the message type (bit 0 clear: audio, set: video); the
 * rest is the body, parsed in place (libFuzzer's buffer ends exactly at
 * the input's end, so ASan sees any read past it).  Checks: the result is
 * 0 or an RTMP_ERR_MEDIA_* code; at most RTMP_MEDIA_MAX_TRACKS tracks,
 * each inside the body, in order and not overlapping; a command frame has
 * no track; a class other than KEEP only for frames; every prefix whose
 * parse got as far as the packet type gives the same header answers as
 * the whole body (what FLV append relies on); and every media field of
 * rtmp.message reads without error with the documented types.
 */
#include "fuzz.h"

#include "../core/chunk.h"
#include "../core/error.h"
#include "../core/media.h"

static const char check[] =
    "local rtmp = require('rtmp')\n"
    "local function opt(v, t, k) assert(v == nil or type(v) == t, k .. ' is ' .. type(v)) end\n"
    "return function(s)\n"
    "  local m = rtmp.message({ type = s:byte(1) & 1 == 1 and 9 or 8 }, s:sub(2))\n"
    "  for _, k in ipairs{ 'keyframe', 'sequence_header', 'sequence_end' } do\n"
    "    assert(type(m[k]) == 'boolean', k)\n"
    "  end\n"
    "  opt(m.codec, 'string', 'codec'); opt(m.packet, 'string', 'packet')\n"
    "  opt(m.codec_id, 'number', 'codec_id'); opt(m.command, 'number', 'command')\n"
    "  opt(m.nano_offset, 'number', 'nano_offset'); opt(m.multitrack, 'string', 'multitrack')\n"
    "  opt(m.decode_error, 'string', 'decode_error')\n"
    "  local tracks = m.tracks\n"
    "  assert(type(tracks) == 'table' and #tracks <= 16)\n"
    "  local total = 0\n"
    "  for _, t in ipairs(tracks) do\n"
    "    assert(math.type(t.id) == 'integer' and t.id >= 0 and t.id <= 255)\n"
    "    assert(math.type(t.size) == 'integer' and t.size >= 0)\n"
    "    total = total + t.size\n"
    "    assert(t.packet == m.packet and t.keyframe == m.keyframe and t.sequence_header == m.sequence_header)\n"
    "  end\n"
    "  assert(total <= #s - 1, 'tracks hold more bytes than the body')\n"
    "  if m.track then assert(tracks[1] and m.track.id == tracks[1].id) else assert(#tracks == 0) end\n"
    "end\n";

static int same_header(const rtmp_media *a, const rtmp_media *b)
{
    /* ManyTracksManyCodecs: the message's codec is the first track's, known once that track is read */
    int codec_known = a->multitrack != RTMP_MEDIA_MANY_TRACKS_MANY_CODECS;
    return a->enhanced == b->enhanced && a->frame == b->frame && a->packet == b->packet
        && (!codec_known || (a->codec == b->codec && a->fourcc == b->fourcc)) && a->multitrack == b->multitrack
        && a->legacy_id == b->legacy_id && a->has_nano == b->has_nano && a->nano == b->nano
        && rtmp_media_class(a) == rtmp_media_class(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t type = (data[0] & 1) ? RTMP_MSG_VIDEO : RTMP_MSG_AUDIO;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    rtmp_media m;
    int rc = rtmp_media_parse(&m, type, p, len);
    if (rc < 0 && (rc < RTMP_ERR_MEDIA_EMPTY || rc > RTMP_ERR_MEDIA_TRACKS))
        fuzz_fail("unexpected code %s", rtmp_errname(rc));
    if (m.ntracks > RTMP_MEDIA_MAX_TRACKS)
        fuzz_fail("%u tracks", m.ntracks);
    size_t at = 0;
    for (unsigned i = 0; i < m.ntracks; i++) {
        const rtmp_media_track *t = &m.track[i];
        if (t->offset < at || t->offset > len || t->size > len - t->offset)
            fuzz_fail("track %u at %zu size %zu: outside the body (%zu) or before %zu", i, t->offset, t->size,
                      len, at);
        at = t->offset + t->size;
    }
    if (m.packet == RTMP_MEDIA_COMMAND && m.ntracks)
        fuzz_fail("a command frame with %u tracks", m.ntracks);
    int cls = rtmp_media_class(&m);
    if (cls != RTMP_MEDIA_CLASS_KEEP && m.packet != RTMP_MEDIA_CODED_FRAMES
        && m.packet != RTMP_MEDIA_CODED_FRAMES_X && m.packet != RTMP_MEDIA_UNKNOWN_PACKET)
        fuzz_fail("class %d for packet %d", cls, m.packet);
    if (rc == 0 && m.packet == RTMP_MEDIA_NO_PACKET)
        fuzz_fail("parsed without a packet type");
    for (size_t k = 0; k < len && k < 96; k++) {
        rtmp_media pre;
        rtmp_media_parse(&pre, type, p, k);
        if (pre.packet != RTMP_MEDIA_NO_PACKET && !same_header(&pre, &m))
            fuzz_fail("the prefix of %zu bytes answers differently from the whole body", k);
    }
    fuzz_lua(check);
    fuzz_lua_check(data, size);
    return 0;
}
