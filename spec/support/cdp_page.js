// Drive a headless Chromium over the DevTools protocol for the browser
// spec (spec/interop/browser_spec.lua), with the `ws` package from
// tools/node/node_modules:
//
//   node spec/support/cdp_page.js DEVTOOLS_PORT PAGE_URL SHOT.png [TIMEOUT_S]
//   node spec/support/cdp_page.js DEVTOOLS_PORT PAGE_URL --eval EXPR
//   node spec/support/cdp_page.js DEVTOOLS_PORT PAGE_URL --until EXPR [TIMEOUT_S]
//
// Opens PAGE_URL in the browser's first page, waits (up to TIMEOUT_S,
// default 20) until the page's <video id="player"> has a current time
// above 0.5 s, reads the current time twice 2 s apart, takes a
// screenshot of the video element into SHOT.png, and prints one line
// "t1=S t2=S readyState=N width=N height=N playing=KEY url=URL error=E
// mse=true|false" (the page's state from window.luartmpPage; mse:
// whether MSE takes H.264).  With --eval: once the page has loaded,
// prints "value=" and what EXPR gives as a JSON value.  With --until: the
// same, once EXPR gives something other than null, undefined or false
// (asked every 250 ms; spec/interop/mp4_browser_spec.lua).  Exits 1 with
// the reason on stderr when something fails.
"use strict";
const path = require("path");
const fs = require("fs");
const http = require("http");
const WebSocket = require(path.join(__dirname, "../../tools/node/node_modules/ws"));

const [port, pageUrl, shot, timeoutArg, untilTimeout] = process.argv.slice(2);
const timeout = (shot === "--eval" ? 20 : Number((shot === "--until" ? untilTimeout : timeoutArg) || 20)) * 1000;
const started = Date.now();

function fail(why) {
  process.stderr.write("cdp_page: " + why + "\n");
  process.exit(1);
}
setTimeout(() => fail("timed out after " + timeout / 1000 + " s"), timeout + 5000).unref();

function getJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    }).on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  let targets;
  for (;;) { // the browser may still be starting
    try { targets = await getJson(`http://127.0.0.1:${port}/json/list`); break; } catch (e) {
      if (Date.now() - started > timeout) fail("no DevTools endpoint: " + e);
      await sleep(200);
    }
  }
  const page = targets.find((t) => t.type === "page");
  if (!page) fail("no page target");
  const ws = new WebSocket(page.webSocketDebuggerUrl, { perMessageDeflate: false });
  await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject); });
  let seq = 0;
  const waiting = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.id && waiting.has(msg.id)) {
      const { resolve, reject } = waiting.get(msg.id);
      waiting.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    }
  });
  const send = (method, params) => new Promise((resolve, reject) => {
    const id = ++seq;
    waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params: params || {} }));
  });
  const evaluate = async (expr) => {
    const r = await send("Runtime.evaluate", { expression: expr, returnByValue: true });
    if (r.exceptionDetails) throw new Error(expr + ": " + JSON.stringify(r.exceptionDetails));
    return r.result.value;
  };

  await send("Page.enable");
  await send("Runtime.enable");
  await send("Emulation.setDeviceMetricsOverride", { width: 900, height: 800, deviceScaleFactor: 1, mobile: false });
  const loaded = new Promise((resolve) => ws.on("message", (data) => {
    if (JSON.parse(data).method === "Page.loadEventFired") resolve();
  }));
  await send("Page.navigate", { url: pageUrl });
  if (shot === "--eval") {
    await loaded;
    await sleep(300); // the page's scripts ran at load; let their first fetches settle
    process.stdout.write("value=" + JSON.stringify(await evaluate(timeoutArg)) + "\n");
    process.exit(0);
  }
  if (shot === "--until") {
    await loaded;
    let value = null;
    while (value === null || value === undefined || value === false) {
      await sleep(250);
      value = await evaluate(timeoutArg);
    }
    process.stdout.write("value=" + JSON.stringify(value) + "\n");
    process.exit(0);
  }
  const video = "document.getElementById('player')";
  let t1 = 0;
  while (Date.now() - started < timeout) {
    await sleep(250);
    try { t1 = await evaluate(`${video} ? ${video}.currentTime : 0`); } catch (e) { t1 = 0; }
    if (t1 > 0.5) break;
  }
  const page_state = await evaluate("JSON.stringify(window.luartmpPage || null)");
  const mse = await evaluate("!!(window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.42E01E\"'))");
  if (!(t1 > 0.5)) fail(`the video did not start: currentTime ${t1}, page ${page_state}, MSE H.264 ${mse}`);
  await sleep(2000);
  const t2 = await evaluate(`${video}.currentTime`);
  const info = await evaluate(`(() => { const v = ${video}, r = v.getBoundingClientRect();
    return { readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,
             x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height }; })()`);
  const png = await send("Page.captureScreenshot", {
    format: "png", clip: { x: info.x, y: info.y, width: info.w, height: info.h, scale: 1 } });
  fs.writeFileSync(shot, Buffer.from(png.data, "base64"));
  const pg = JSON.parse(page_state) || {};
  process.stdout.write(`t1=${t1} t2=${t2} readyState=${info.readyState} width=${info.width} ` +
    `height=${info.height} playing=${pg.playing} url=${pg.url} error=${pg.error} mse=${mse}\n`);
  ws.close();
  process.exit(0);
}

main().catch((e) => fail(e.stack || String(e)));
