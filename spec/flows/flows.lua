-- Written by spec/support/record_flows.lua: the recorded flows and what
-- replaying each one must give.  Do not edit by hand.
return {
  {
    name = "ffmpeg_publish_rtmpdump_play",
    about = "ffmpeg publishes, rtmpdump plays 0.7 s later (both against nginx-rtmp); replayed into live.lua",
    capture = "spec/flows/ffmpeg_publish_rtmpdump_play.pcapng", trace = "spec/flows/ffmpeg_publish_rtmpdump_play.trace",
    script = "scripts/live.lua",
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 3748, sha256 = "a20df65c929dc88b10ba9a985099b2f09d592b6296813886a992fc2d9b0eed86", closed = "peer closed the connection" },
      { id = 2, recorded = 2, bytes = 13754, sha256 = "12fbd5c541a5289ae01afb8b2a73ed6e0f45ed1647f64937138afd05c8ede4db", closed = "peer closed the connection" },
    },
  },
  {
    name = "gst_publish_ffmpeg_play",
    about = "GStreamer rtmp2sink publishes, ffmpeg plays 0.7 s later (against nginx-rtmp); replayed into live.lua",
    capture = "spec/flows/gst_publish_ffmpeg_play.pcapng", trace = "spec/flows/gst_publish_ffmpeg_play.trace",
    script = "scripts/live.lua",
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 3748, sha256 = "9afc730cdd3fa255fe1359160d1ae1d603d071434d85e4f9b0ba20450be12144", closed = "peer closed the connection" },
      { id = 2, recorded = 2, bytes = 11142, sha256 = "d985987b5f1954327115dc5bf696ee01254eb1c3358404f38157a78f436f3cc9", closed = "peer closed the connection" },
    },
  },
  {
    name = "ffmpeg_publish_gst_play",
    about = "ffmpeg publishes, GStreamer rtmp2src plays 0.7 s later (against nginx-rtmp); replayed into live.lua",
    capture = "spec/flows/ffmpeg_publish_gst_play.pcapng", trace = "spec/flows/ffmpeg_publish_gst_play.trace",
    script = "scripts/live.lua",
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 3748, sha256 = "a20df65c929dc88b10ba9a985099b2f09d592b6296813886a992fc2d9b0eed86", closed = "peer closed the connection" },
      { id = 2, recorded = 2, bytes = 13754, sha256 = "4d436776811e810b3e7cec600c027fb323c8a0213fdd03d5a6285986e85b1e77", closed = "peer closed the connection" },
    },
  },
  {
    name = "luartmp_live_serves_ffmpeg_rtmpdump",
    about = "luartmp live.lua serves ffmpeg's stream to ffmpeg and rtmpdump players; replayed into live.lua, whose output after the handshake must equal what the real server sent",
    capture = "spec/flows/luartmp_live_serves_ffmpeg_rtmpdump.pcapng", trace = "spec/flows/luartmp_live_serves_ffmpeg_rtmpdump.trace",
    script = "scripts/live.lua",
    fidelity = true,
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 3748, sha256 = "a20df65c929dc88b10ba9a985099b2f09d592b6296813886a992fc2d9b0eed86", closed = "peer closed the connection" },
      { id = 2, recorded = 2, bytes = 13754, sha256 = "f577f6679b6bc3b54b419a1df4d4edb9715f84e3cad448fa7bb476a8879cbe8b", closed = "peer closed the connection" },
      { id = 3, recorded = 3, bytes = 13784, sha256 = "127a06e6e1750341c3d7a9ab51e2c172c900f67280bf6e3208417a70489ad111", closed = "peer closed the connection" },
    },
  },
  {
    name = "nginx_serves_play_lua",
    about = "nginx-rtmp serves a stream ffmpeg publishes to the luartmp play client; replayed into play.lua with nginx's bytes of the player's connection (2)",
    capture = "spec/flows/nginx_serves_play_lua.pcapng", trace = "spec/flows/nginx_serves_play_lua.trace",
    script = "scripts/client/play.lua",
    args = { "rtmp://$SERVER/live/tiny", "$OUT" },
    connection = 2,
    fidelity = true,
    exit = 0,
    stderr = "",
    conns = {
      { id = 1, recorded = 2, bytes = 3457, sha256 = "59bce32f0f08961fedaaa8c8ea5cd5e418867bfe08effc6f07bdf76f238e2466", closed = "closed by the script" },
    },
  },
  {
    name = "nginx_takes_publish_lua",
    about = "the luartmp publish client sends a synthetic FLV to nginx-rtmp in real time; replayed into publish.lua (same file), whose output after the handshake must equal what it really sent",
    capture = "spec/flows/nginx_takes_publish_lua.pcapng", trace = "spec/flows/nginx_takes_publish_lua.trace",
    script = "scripts/client/publish.lua",
    args = { "$FLV", "rtmp://$SERVER/live/synth" },
    fidelity = true,
    exit = 0,
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 11052, sha256 = "bfcebc59fb59e87dc9f29bdc62e0c1293f77cf80fd41294cc5658bf560d72e3a", closed = "closed by the script" },
    },
  },
  {
    name = "ffmpeg_listen_serves_play_lua",
    about = "ffmpeg -listen 1 serves the tiny FLV to the luartmp play client; replayed into play.lua with ffmpeg's bytes",
    capture = "spec/flows/ffmpeg_listen_serves_play_lua.pcapng", trace = "spec/flows/ffmpeg_listen_serves_play_lua.trace",
    script = "scripts/client/play.lua",
    args = { "rtmp://$SERVER/live/tiny", "$OUT" },
    fidelity = true,
    exit = 0,
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 3383, sha256 = "66c4e03cc81292e85d506f8d684e6e14299b353654d26234cae60385d14151a4", closed = "peer closed the connection" },
    },
  },
}
