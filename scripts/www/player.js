// The player page (scripts/www/index.html, served by scripts/http_api.lua):
// lists /api/streams and plays one with mpegts.js over HTTP-FLV, or WS-FLV
// when "over WebSocket" is ticked.  /?play=APP/NAME plays it at once
// (muted, so a browser lets it start), /?play=APP/NAME&ws=1 over WS-FLV.
(function () {
  "use strict";
  var video = document.getElementById("player");
  var status = document.getElementById("status");
  var wsBox = document.getElementById("ws");
  var params = new URLSearchParams(location.search);
  var player = null;
  // what a test (or a curious reader) can look at
  var state = window.luartmpPage = { playing: null, error: null, mpegts: !!window.mpegts };

  if (!window.mpegts) document.getElementById("missing").style.display = "block";
  wsBox.checked = params.get("ws") === "1";

  function say(text) { status.textContent = text; }

  function flvUrl(key, ws) {
    var path = "/" + key.split("/").map(encodeURIComponent).join("/") + ".flv";
    return (ws ? (location.protocol === "https:" ? "wss://" : "ws://") : location.protocol + "//") + location.host + path;
  }

  function play(key) {
    if (!window.mpegts) { say("mpegts.js is not installed: cannot play " + key); return; }
    if (!mpegts.getFeatureList().mseLivePlayback) { say("this browser has no Media Source Extensions"); return; }
    if (player) { player.destroy(); player = null; }
    var url = flvUrl(key, wsBox.checked);
    player = mpegts.createPlayer({ type: "flv", isLive: true, url: url },
      { enableStashBuffer: false, liveBufferLatencyChasing: true });
    player.attachMediaElement(video);
    player.on(mpegts.Events.ERROR, function (type, detail) {
      state.error = type + ": " + detail;
      say("error playing " + key + ": " + state.error);
    });
    player.load();
    video.muted = true;
    var started = player.play();
    if (started && started.catch) started.catch(function (e) { say("press play: " + e); });
    state.playing = key;
    state.url = url;
    say("playing " + key + " (" + url + ")");
  }

  function cell(row, text) {
    var td = row.insertCell();
    td.textContent = text == null ? "" : String(text);
    return td;
  }

  function list() {
    fetch("/api/streams").then(function (r) { return r.json(); }).then(function (data) {
      var body = document.querySelector("#streams tbody");
      body.textContent = "";
      data.streams.forEach(function (s) {
        var key = s.app + "/" + s.name, row = body.insertRow();
        var codec = s.codec || {};
        cell(row, key);
        cell(row, s.publishing ? "yes" : "no");
        cell(row, s.players);
        cell(row, codec.video ? (codec.video.width || "?") + "x" + (codec.video.height || "?") : "");
        cell(row, codec.audio ? (codec.audio.sample_rate || "") + " Hz" : "");
        var a = document.createElement("a");
        a.textContent = "play";
        a.onclick = function () { play(key); };
        row.insertCell().appendChild(a);
      });
      state.streams = data.streams.length;
    }).catch(function (e) { say("/api/streams: " + e); });
  }

  list();
  setInterval(list, 5000);
  if (params.get("play")) play(params.get("play"));
})();
