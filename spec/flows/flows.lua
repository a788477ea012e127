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
      { id = 2, recorded = 2, bytes = 13754, sha256 = "dfa3c0450a8879d3eb2f5dcd843ba3b899706e9e15a91e29291d3e7b479ca9ac", closed = "peer closed the connection" },
    },
  },
  {
    name = "gst_publish_ffmpeg_play",
    about = "GStreamer rtmp2sink publishes, ffmpeg plays 0.7 s later (against nginx-rtmp); replayed into live.lua",
    capture = "spec/flows/gst_publish_ffmpeg_play.pcapng", trace = "spec/flows/gst_publish_ffmpeg_play.trace",
    script = "scripts/live.lua",
    stderr = "",
    conns = {
      { id = 1, recorded = 1, bytes = 3748, sha256 = "92a41e460779a96d2e39430e7a4e65633297e29e2b638629588994c23f110f5d", closed = "peer closed the connection" },
      { id = 2, recorded = 2, bytes = 11136, sha256 = "91e8033919984fd302372514fb20fe9e0b2efb31be0df3c524de3e25166d47c8", closed = "peer closed the connection" },
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
      { id = 2, recorded = 2, bytes = 13754, sha256 = "e1b0ca5ca10a0610967ba5f5a0d1159d8e816d3b592634c3ccaef61eb521d296", closed = "peer closed the connection" },
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
      { id = 2, recorded = 2, bytes = 13754, sha256 = "682d7beda97ef727fc60e0631bcfce5226b70c32cfe658b723c85a284235c8eb", closed = "peer closed the connection" },
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
      { id = 1, recorded = 2, bytes = 3474, sha256 = "6e11429d4fbb09163d21b83ee98838aa251cd10100fe4af918949a435e0ed6b5", closed = "closed by the script" },
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
      { id = 1, recorded = 1, bytes = 11069, sha256 = "6f614978f0f23913666a7ab02a99c557561b415e6bba635bd0a31454fa85d98f", closed = "closed by the script" },
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
      { id = 1, recorded = 1, bytes = 3400, sha256 = "a983f8403731b166f3117202ddab83a69372f0e11475e2704117ae5398931059", closed = "peer closed the connection" },
    },
  },
}
