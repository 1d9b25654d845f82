/**
 * Lock events on Upstash: Redis pub/sub over REST, as a Server-Sent Events stream per watch
 * (`POST <url>/subscribe/<channel>`; lines `data: subscribe,<channel>,1`, then
 * `data: message,<channel>,<payload>`). One stream per waiting request fits every runtime: a
 * Worker may not share a stream between requests, and a serverless instance may be frozen
 * between them.
 *
 * The stream is read here rather than with @upstash/redis's `subscribe()`, because that one says
 * nothing when its stream ends or breaks (it neither reconnects nor emits an event), and a waiter
 * must know: it then peeks at the store while this reconnects, and asks again once it is back.
 */
import { Mailbox, parseLockEvent } from "./events.js";
import type { EventSource } from "./redis/transport.js";
import type { LockEvents } from "./types.js";

export interface UpstashEventsOptions {
  url: string;
  token: string;
  /** How long the subscription may take to be confirmed before the watch starts out not live. */
  timeoutMs: number;
}

/** Delays between attempts to subscribe again, the last one repeated. */
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 5000];

export function upstashEvents(opts: UpstashEventsOptions): EventSource {
  const endpoint = opts.url.replace(/\/+$/, "");

  return (channels): LockEvents => ({
    async watch(ref, signal) {
      const channel = channels.of(ref);
      const stop = new AbortController();
      const mailbox = new Mailbox(false, () => stop.abort());
      signal?.addEventListener("abort", () => mailbox.close(), { once: true });

      // `told`: the waiter has its watch (live or not); a later subscription must tell it to ask again.
      let told = false;
      let tell: () => void = () => {};
      const ready = new Promise<void>((resolve) => {
        tell = () => {
          told = true;
          resolve();
        };
      });
      const timer = setTimeout(() => told || tell(), opts.timeoutMs);

      void (async () => {
        for (let attempt = 0; !stop.signal.aborted; attempt++) {
          await readStream(endpoint, opts.token, channel, stop.signal, {
            subscribed: () => {
              attempt = -1; // the next drop retries after the first delay
              // Before the waiter has its watch, it has not asked the store yet: nothing was missed.
              mailbox.setLive(true, told);
              if (!told) tell();
            },
            message: (payload) => {
              const event = parseLockEvent(payload);
              if (event) mailbox.push(event);
            },
          }).catch(() => {});
          // The stream ended or failed: events may be missed until the next one is subscribed.
          mailbox.setLive(false);
          if (!told) tell();
          await sleep(RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)] ?? 1000, stop.signal);
        }
      })();

      await ready;
      clearTimeout(timer);
      return mailbox;
    },
    close: async () => {},
  });
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** One SSE subscription, read to its end (resolves) or failure (rejects). */
async function readStream(
  endpoint: string,
  token: string,
  channel: string,
  signal: AbortSignal,
  on: { subscribed: () => void; message: (payload: string) => void },
): Promise<void> {
  const res = await fetch(`${endpoint}/subscribe/${channel}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
    body: "[]",
    signal,
  });
  if (!res.ok || !res.body) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`subscribe answered ${res.status}`);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      if (buffer.length > 1 << 20) throw new Error("event stream line over 1 MiB");
      for (const line of lines) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trimStart();
        const first = data.indexOf(",");
        const second = data.indexOf(",", first + 1);
        if (first < 0 || second < 0) continue;
        const type = data.slice(0, first);
        if (type === "subscribe") on.subscribed();
        else if (type === "message") on.message(data.slice(second + 1));
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
