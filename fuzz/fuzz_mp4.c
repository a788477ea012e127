/*
 * fuzz_mp4.c: the MP4 reader and writer (core/mp4read.c, mp4write.c,
 * mp4codec.c) and rtmp.mp4 over them (l_mp4.c).
 *
 * The input is an MP4 file.  In C, the sans-I/O reader is fed exactly the
 * ranges it asks for from the input (libFuzzer's buffer ends at the
 * input's end, so ASan sees any read past it).  Checks: every range asked
 * for lies inside the file; failures are MP4_* codes (or NOMEM); at most
 * RTMP_MP4_MAX_TRACKS tracks, each audio or video with a timescale; every
 * sample inside the file and of a listed track; every RTMP message built
 * from a configuration or a sample (rtmp_mp4_put_message, the inverse of
 * the media model) parses back with rtmp_media_parse to the same packet,
 * codec, track ids and bytes; those messages given to the fragmented
 * writer are taken or refused with MP4_CONFIG / MP4_CODEC only, and what
 * it writes reads back without error with as many samples as it counted.
 * Then the same file through rtmp.mp4.open, :messages() and
 * rtmp.mp4.writer as a script uses them: failures are nil, message, code
 * with the documented codes, and the written file reads back whole.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/chunk.h"
#include "../core/error.h"
#include "../core/media.h"
#include "../core/mp4.h"

#define MAX_SAMPLES 2000

static const char check[] =
    "local mp4 = require('rtmp').mp4\n"
    "local function code_ok(c, extra) return c == 'NOMEM' or (c or ''):find('^MP4_') or c == extra end\n"
    "return function(s)\n"
    "  local f = assert(io.open(FUZZ_MP4_IN, 'wb')); f:write(s); f:close()\n"
    "  local r, err, code = mp4.open(FUZZ_MP4_IN)\n"
    "  if not r then assert(type(err) == 'string' and code_ok(code), tostring(code)); return end\n"
    "  for _, t in ipairs(r.tracks) do\n"
    "    assert(t.kind == 'audio' or t.kind == 'video')\n"
    "    assert(math.type(t.timescale) == 'integer' and t.timescale > 0 and #t.entry == 4)\n"
    "    assert(t.codec == nil or type(t.config) == 'string' or type(t.config_error) == 'string')\n"
    "  end\n"
    "  local parts = {}\n"
    "  local w = assert(mp4.writer(function(b) parts[#parts + 1] = b; return true end))\n"
    "  local it, n = r:messages(), 0\n"
    "  while n < 3000 do\n"
    "    local m, e, c = it()\n"
    "    if not m then\n"
    "      if e then assert(type(e) == 'string' and code_ok(c), tostring(c)) end\n"
    "      break\n"
    "    end\n"
    "    n = n + 1\n"
    "    assert(m.type == 8 or m.type == 9 or m.type == 18, m.type)\n"
    "    if m.type ~= 18 then assert(m.decode_error == nil, m.decode_error) end\n"
    "    local ok, werr, wcode = w:write(m)\n"
    "    if not ok then assert(wcode == 'MP4_CONFIG' or wcode == 'MP4_CODEC' or wcode == 'MP4_LIMIT', tostring(wcode)) end\n"
    "  end\n"
    "  r:close()\n"
    "  assert(w:close())\n"
    "  local out = table.concat(parts)\n"
    "  assert(#out == w.bytes)\n"
    "  if #out == 0 then return end\n"
    "  local g = assert(io.open(FUZZ_MP4_OUT, 'wb')); g:write(out); g:close()\n"
    "  local back = assert(mp4.open(FUZZ_MP4_OUT))\n"
    "  local k = 0\n"
    "  while true do\n"
    "    local smp, berr = back:read()\n"
    "    if not smp then assert(not berr, berr); break end\n"
    "    k = k + 1\n"
    "  end\n"
    "  back:close()\n"
    "  assert(k == w.samples, 'wrote ' .. w.samples .. ' samples, read back ' .. k)\n"
    "end\n";

static int mp4_code(int rc)
{
    return rc == RTMP_ERR_NOMEM || (rc >= RTMP_ERR_MP4_TRUNCATED && rc <= RTMP_ERR_MP4_CODEC);
}

/* One step of a reader over the file p[0 .. n), the ranges it asks for fed. */
static int step(rtmp_mp4_reader *r, const uint8_t *p, size_t n, rtmp_mp4_sample *s)
{
    for (;;) {
        int rc = rtmp_mp4_read(r, s);
        if (rc != RTMP_MP4_NEED)
            return rc;
        uint64_t off;
        size_t len;
        rtmp_mp4_reader_need(r, &off, &len);
        if (off > n || len > n - off)
            fuzz_fail("asked for %zu bytes at %llu of a %zu-byte file", len, (unsigned long long)off, n);
        rtmp_mp4_reader_feed(r, p + off, len);
    }
}

/* Parse the body just built and compare it with what went in. */
static void parsed_back(const rtmp_buf *b, uint8_t type, int packet, const rtmp_mp4_part *parts, unsigned n)
{
    rtmp_media m;
    int rc = rtmp_media_parse(&m, type, b->data, b->len);
    if (rc < 0)
        fuzz_fail("a message built does not parse: %s", rtmp_errname(rc));
    if (m.packet != packet || m.ntracks != n)
        fuzz_fail("built packet %d with %u tracks, parsed %d with %u", packet, n, m.packet, m.ntracks);
    for (unsigned i = 0; i < n; i++) {
        const rtmp_media_track *t = &m.track[i];
        if (t->codec != parts[i].track->codec || (m.multitrack != RTMP_MEDIA_SINGLE && t->id != parts[i].track->rtmp_id))
            fuzz_fail("track %u: codec %d id %d parsed as codec %d id %d", i, parts[i].track->codec,
                      parts[i].track->rtmp_id, t->codec, t->id);
        if (t->size != parts[i].len || (t->size && memcmp(b->data + t->offset, parts[i].data, t->size) != 0))
            fuzz_fail("track %u: %zu bytes built, %zu parsed or different", i, parts[i].len, t->size);
    }
}

/* Build the message of parts, check it, give it to the writer. */
static void build(rtmp_mp4_writer *w, rtmp_buf **out, int packet, int key, int enhanced, int multi,
                  const rtmp_mp4_part *parts, unsigned n, uint32_t ts)
{
    rtmp_buf *b = NULL;
    int rc = rtmp_mp4_put_message(&b, packet, key, enhanced, multi, parts, n);
    if (rc < 0 && rc != RTMP_ERR_NOMEM)
        fuzz_fail("a message of codec %d, packet %d could not be built: %s", parts[0].track->codec, packet,
                  rtmp_errname(rc));
    if (rc >= 0 && b) {
        uint8_t type = parts[0].track->type;
        parsed_back(b, type, packet, parts, n);
        rc = rtmp_mp4_writer_message(w, type, ts, b->data, b->len, out);
        if (rc < 0 && rc != RTMP_ERR_MP4_CONFIG && rc != RTMP_ERR_MP4_CODEC && rc != RTMP_ERR_NOMEM)
            fuzz_fail("the writer refused a message with %s", rtmp_errname(rc));
    }
    rtmp_buf_unref(b);
}

static void c_checks(const uint8_t *data, size_t size)
{
    int enhanced = size > 20 && (data[size - 1] & 1);
    rtmp_mp4_reader *r = rtmp_mp4_reader_new(size, NULL);
    rtmp_mp4_writer *w = rtmp_mp4_writer_new(NULL);
    rtmp_buf *out = NULL;
    if (!r || !w)
        goto done;
    rtmp_mp4_sample s;
    int rc = step(r, data, size, &s);
    if (rc < 0 && !mp4_code(rc))
        fuzz_fail("open: unexpected code %s", rtmp_errname(rc));
    if (rc != RTMP_MP4_TRACKS)
        goto done;
    unsigned nt = rtmp_mp4_reader_ntracks(r), kinds[2] = { 0, 0 };
    if (nt > RTMP_MP4_MAX_TRACKS)
        fuzz_fail("%u tracks", nt);
    for (unsigned i = 0; i < nt; i++) {
        const rtmp_mp4_track *t = rtmp_mp4_reader_track(r, i);
        if ((t->type != RTMP_MSG_AUDIO && t->type != RTMP_MSG_VIDEO) || t->timescale == 0)
            fuzz_fail("track %u: type %d, timescale %u", i, t->type, t->timescale);
        if (rtmp_mp4_codec_of(t->codec))
            kinds[t->type == RTMP_MSG_VIDEO]++;
    }
    /* sequence starts, one track at a time */
    for (unsigned i = 0; i < nt; i++) {
        const rtmp_mp4_track *t = rtmp_mp4_reader_track(r, i);
        const rtmp_mp4_codec *c = rtmp_mp4_codec_of(t->codec);
        if (!c || c->seq_start == RTMP_MP4_SEQ_NONE)
            continue;
        rtmp_buf *cfg = NULL;
        rc = rtmp_mp4_config_to_rtmp(t, &cfg);
        if (rc < 0 && rc != RTMP_ERR_MP4_CONFIG && rc != RTMP_ERR_NOMEM)
            fuzz_fail("configuration of track %u: %s", i, rtmp_errname(rc));
        if (rc >= 0) {
            rtmp_mp4_part part = { .track = t, .data = cfg ? cfg->data : (const uint8_t *)"", .len = (size_t)rc };
            build(w, &out, RTMP_MEDIA_SEQ_START, 1, enhanced, kinds[t->type == RTMP_MSG_VIDEO] > 1, &part, 1, 0);
        }
        rtmp_buf_unref(cfg);
    }
    for (int k = 0; k < MAX_SAMPLES; k++) {
        rc = step(r, data, size, &s);
        if (rc == RTMP_MP4_END || (rc < 0 && mp4_code(rc)))
            break;
        if (rc != RTMP_MP4_SAMPLE)
            fuzz_fail("read: unexpected %d (%s)", rc, rc < 0 ? rtmp_errname(rc) : "");
        if (s.track >= nt || s.offset > size || s.size > size - s.offset)
            fuzz_fail("sample of track %u at %llu, %u bytes, outside the %zu-byte file", s.track,
                      (unsigned long long)s.offset, s.size, size);
        const rtmp_mp4_track *t = rtmp_mp4_reader_track(r, s.track);
        if (!rtmp_mp4_codec_of(t->codec))
            continue;
        int32_t cts = (int32_t)(s.cts_us / 1000);
        rtmp_mp4_part part = { .track = t, .data = data + s.offset, .len = s.size,
                               .cts = cts > 0x7FFFFF || cts < -0x800000 ? 0 : cts };
        build(w, &out, RTMP_MEDIA_CODED_FRAMES, s.key, enhanced, kinds[t->type == RTMP_MSG_VIDEO] > 1, &part, 1,
              (uint32_t)(s.time_us > 0 ? s.time_us / 1000 : 0));
    }
    if (rtmp_mp4_writer_finish(w, &out) < 0 || !out || out->len == 0)
        goto done;
    /* what the writer made reads back whole, with every sample it wrote */
    rtmp_mp4_writer_stats st;
    rtmp_mp4_writer_stats_get(w, &st);
    rtmp_mp4_reader *back = rtmp_mp4_reader_new(out->len, NULL);
    uint64_t n = 0;
    if (back) {
        while ((rc = step(back, out->data, out->len, &s)) > 0)
            n += rc == RTMP_MP4_SAMPLE;
        if (rc < 0 && rc != RTMP_ERR_NOMEM)
            fuzz_fail("the file written does not read back: %s", rtmp_errname(rc));
        if (rc == 0 && n != st.samples)
            fuzz_fail("wrote %llu samples, read back %llu", (unsigned long long)st.samples, (unsigned long long)n);
        rtmp_mp4_reader_free(back);
    }
done:
    rtmp_buf_unref(out);
    rtmp_mp4_writer_free(w);
    rtmp_mp4_reader_free(r);
}

/* The input and the file written, one pair per process, removed at exit. */
static char paths[2][256];

static void remove_paths(void)
{
    for (int i = 0; i < 2; i++)
        unlink(paths[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    c_checks(data, size);
    lua_State *L = fuzz_lua(check);
    if (!paths[0][0]) {
        static const char *const globals[2] = { "FUZZ_MP4_IN", "FUZZ_MP4_OUT" };
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        for (int i = 0; i < 2; i++) {
            snprintf(paths[i], sizeof paths[i], "%s/luartmp-fuzz-mp4-%ld-%s.mp4", dir, (long)getpid(), i ? "out" : "in");
            lua_pushstring(L, paths[i]);
            lua_setglobal(L, globals[i]);
        }
        atexit(remove_paths);
    }
    fuzz_lua_check(data, size);
    return 0;
}
