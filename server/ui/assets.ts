/**
 * The dashboard's stylesheet and its one small script, as constants: served by the app itself
 * (no CDN, no build step, no file read at request time), the same on Node, Vercel and Workers.
 */
import { sha256Hex } from "../crypto.js";

export const CSS = `
:root {
  color-scheme: light dark;
  --bg: #f7f7f8; --fg: #1b1d21; --muted: #5b616b; --card: #fff; --line: #d9dce1;
  --accent: #1f5fbf; --held: #a4262c; --held-bg: #fde7e9; --free: #1e6b36; --free-bg: #dff3e4;
  --warn-bg: #fff4ce; --focus: #ffbf47;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  line-height: 1.45;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15171a; --fg: #e8eaed; --muted: #a3a9b3; --card: #1f2226; --line: #3a3f46;
    --accent: #8ab4f8; --held: #ffb3b8; --held-bg: #4a1c20; --free: #9ee2b0; --free-bg: #173522;
    --warn-bg: #4a3f12;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--fg); overflow-wrap: break-word; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid var(--focus); outline-offset: 2px;
}
.skip { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; z-index: 1; }
.skip:focus { left: .5rem; top: .5rem; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .6rem 1rem;
  background: var(--card); border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; text-decoration: none; font-size: 1.1rem; }
header.top .who { color: var(--muted); font-size: .9rem; margin-left: auto; }
header.top form { margin: 0; }
header.top form.switch { display: flex; gap: .3rem; }
header.top form.switch input { width: auto; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: .4rem 0 1rem; overflow-wrap: anywhere; }
h1 code { font-size: 1.2rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .6rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
section.card, form.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem; margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin: .4rem 0 .2rem; }
.hint { color: var(--muted); font-size: .85rem; margin: .2rem 0 .4rem; }
input[type=text], input[type=password], input[type=search] { width: 100%; max-width: 32rem; padding: .5rem .6rem;
  font: inherit; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
button, .button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--card); cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: transparent; color: var(--accent); }
button.danger, .button.danger { background: var(--held); border-color: var(--held); color: var(--card); }
.row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
.row > div { flex: 1 1 12rem; }
.row > div.fit { flex: 0 0 auto; }
.actions { display: flex; flex-wrap: wrap; gap: 1rem; }
.actions > form, .actions > div { flex: 1 1 18rem; margin: 0; }
.msg { padding: .6rem .9rem; border-radius: 6px; margin: 0 0 1rem; border: 1px solid var(--line); }
.msg.error { background: var(--held-bg); color: var(--held); border-color: var(--held); }
.msg.ok { background: var(--free-bg); color: var(--free); border-color: var(--free); }
.msg.warn { background: var(--warn-bg); }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .85rem; font-weight: 600; }
.badge.held { background: var(--held-bg); color: var(--held); }
.badge.free { background: var(--free-bg); color: var(--free); }
.muted { color: var(--muted); }
.live-status { color: var(--muted); font-size: .85rem; min-height: 1.2em; margin: .3rem 0; }
.table-wrap { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; color: var(--muted); white-space: nowrap; }
td[data-label=Key], td[data-label=Holder] { overflow-wrap: anywhere; min-width: 9rem; }
td[data-label=Holder] { min-width: 14rem; }
td.num, td[data-label=Since], td[data-label=Until], td[data-label=When] { white-space: nowrap; }
.card > h2:first-child, .card > h3:first-child { margin-top: 0; }
tbody tr:last-child td { border-bottom: 0; }
td.num { font-variant-numeric: tabular-nums; }
.pager { display: flex; gap: 1rem; margin: .8rem 0; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: .6rem 0; padding: .4rem .8rem; }
label.check { display: block; font-weight: normal; margin: .2rem 0; }
a.nav { margin-right: .8rem; }
td[data-label=URL] { overflow-wrap: anywhere; min-width: 12rem; }
#webhook-secret { user-select: all; overflow-wrap: anywhere; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
footer { max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 40rem) {
  main { padding: .7rem; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border-bottom: 1px solid var(--line); padding: .4rem 0; }
  table.stack td { border: 0; padding: .15rem .7rem; min-width: 0; white-space: normal; overflow-wrap: anywhere; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; color: var(--muted); }
  table.stack td.empty::before { content: none; }
}
`;

/**
 * Times in the viewer's zone, time left counting down, and live regions: an element with
 * `data-live="<url>"` is re-fetched (HTML, authenticated by the session cookie) every few seconds
 * while the page is visible, and its content replaced.
 */
export const JS = `
(function () {
  "use strict";
  var PERIOD = 3000;
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function left(ms) {
    if (ms <= 0) return "expired";
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
      m = Math.floor(s % 3600 / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + two(m) + "m";
    if (m > 0) return m + "m " + two(s % 60) + "s";
    return (s % 60) + "s";
  }
  function prepare(root) {
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i], when = new Date(t.getAttribute("datetime"));
      if (isNaN(when.getTime()) || t.hasAttribute("data-local")) continue;
      t.title = t.textContent;
      t.textContent = when.toLocaleString();
      t.setAttribute("data-local", "");
    }
    var now = Date.now(), spans = root.querySelectorAll("[data-left-ms]");
    for (var j = 0; j < spans.length; j++) {
      spans[j].setAttribute("data-until", String(now + Number(spans[j].getAttribute("data-left-ms"))));
      spans[j].removeAttribute("data-left-ms");
    }
  }
  function tick() {
    var spans = document.querySelectorAll("[data-until]"), now = Date.now();
    for (var i = 0; i < spans.length; i++) spans[i].textContent = left(Number(spans[i].getAttribute("data-until")) - now);
  }
  function say(text) {
    var el = document.getElementById("live-status");
    if (el) el.textContent = text;
  }
  var stopped = false;
  function refresh(el) {
    var main = document.getElementById("main");
    return fetch(el.getAttribute("data-live"), {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html", "LSS-Shown-Namespace": (main && main.getAttribute("data-namespace")) || "" }
    }).then(function (res) {
      if (res.status === 401) {
        stopped = true;
        say("Signed out: reload the page to sign in again.");
        return;
      }
      if (res.status === 409) {
        stopped = true;
        return res.text().then(say);
      }
      if (!res.ok) { say("Could not update (" + res.status + "); retrying."); return; }
      return res.text().then(function (html) {
        el.innerHTML = html;
        prepare(el);
        tick();
        say("Live: updated at " + new Date().toLocaleTimeString() + ".");
      });
    }, function () { say("Could not reach the server; retrying."); });
  }
  function poll() {
    if (stopped || document.hidden) return;
    var regions = document.querySelectorAll("[data-live]");
    for (var i = 0; i < regions.length; i++) refresh(regions[i]);
  }
  function start() {
    prepare(document);
    tick();
    setInterval(tick, 1000);
    if (document.querySelector("[data-live]")) {
      say("Live: updates every " + PERIOD / 1000 + " s.");
      setInterval(poll, PERIOD);
      document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
`;

/** Content-addressed asset URLs: cached for a year, a new build gets new names. */
export const CSS_PATH = `/ui/assets/ui-${sha256Hex(CSS).slice(0, 12)}.css`;
export const JS_PATH = `/ui/assets/ui-${sha256Hex(JS).slice(0, 12)}.js`;
