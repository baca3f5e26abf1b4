// A page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// the browser is never downloaded), for the integration tests.
//
//   node browser.js --url URL [--count N] [--timeout-ms MS] [--types elog,experiments]
//
// Prints JSON lines like the other clients: {"ev":"console","text":..} for the page's
// console, {"ev":"ready","room":..} when the page's client joined its room (again after
// each reconnect), {"ev":"refused","room":..} when the join was refused,
// {"ev":"msg","type":..,"data":..} for each CustomEvent dispatched on the page's
// .lgbk_socketio elements, {"ev":"done"} after --count of them, {"ev":"resync","room":..,
// "reason":..} for each psdm_ws_resync event on them (not counted), {"ev":"dropped",
// "position":..} when the client drops a message the page already has. Exits 1 on
// --timeout-ms.
"use strict";
const path = require("path");
const { chromium } = require(path.join(__dirname, "..", "..", "..", "node_modules", "playwright-core"));

const args = { url: null, count: -1, timeout: 60000, types: ["elog", "experiments"] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i], v = argv[i + 1];
  if (a === "--url") { args.url = v; i++; }
  else if (a === "--count") { args.count = parseInt(v, 10); i++; }
  else if (a === "--timeout-ms") { args.timeout = parseInt(v, 10); i++; }
  else if (a === "--types") { args.types = v.split(","); i++; }
  else { console.error(`browser: unknown argument ${a}`); process.exit(2); }
}
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  let received = 0;
  const finish = async (code) => { await browser.close().catch(() => {}); process.exit(code); };
  setTimeout(() => { out({ ev: "timeout", count: received }); finish(1); }, args.timeout);
  process.on("SIGTERM", () => finish(0));

  const page = await browser.newPage();
  await page.exposeFunction("__psdmReport", (type, detail) => {
    out({ ev: "msg", type, data: detail });
    if (++received === args.count) { out({ ev: "done" }); finish(0); }
  });
  await page.exposeFunction("__psdmResync", (detail) => out({ ev: "resync", room: detail.room, reason: detail.reason }));
  // Listen on the page's .lgbk_socketio elements as an application would.
  await page.addInitScript((types) => {
    document.addEventListener("DOMContentLoaded", () => {
      document.querySelectorAll(".lgbk_socketio").forEach((el) => {
        types.forEach((t) => el.addEventListener(t, (e) => window.__psdmReport(t, e.detail)));
        el.addEventListener("psdm_ws_resync", (e) => window.__psdmResync(e.detail));
      });
    });
  }, args.types);
  page.on("console", (m) => {
    const text = m.text();
    out({ ev: "console", text });
    let r = text.match(/^Joined room (.*)$/);
    if (r) out({ ev: "ready", room: r[1] });
    r = text.match(/^Not allowed to join room (\S+)/);
    if (r) out({ ev: "refused", room: r[1] });
    r = text.match(/^Dropped a message already received; position=(\S+)$/);
    if (r) out({ ev: "dropped", position: r[1] });
  });
  page.on("pageerror", (e) => out({ ev: "pageerror", text: String(e) }));
  await page.goto(args.url);
  out({ ev: "loaded" });
})().catch((e) => { out({ ev: "error", text: String(e) }); process.exit(1); });
