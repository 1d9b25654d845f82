/**
 * The handoff benchmark's clients: HTTP through Node's global fetch (undici's global Agent:
 * keep-alive, no per-origin connection limit), timing on the bench's clock, and the connections a
 * server holds.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { sleep } from "../lib.js";
import { MAX_WAIT_MS, SERVERS } from "./settings.js";

export const now = () => performance.now();
export const newToken = () => randomBytes(16).toString("hex");

/** Resolves at performance.now() ≥ at, or at once when the signal is aborted. */
export function sleepUntil(at: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, at - now()));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface ApiBody {
  status?: string;
  token?: string;
  fencing_token?: number;
  acquired_at?: string;
  holder_id?: string | null;
  expires_in_ms?: number | null;
  position?: number | null;
  error?: { code?: string; message?: string };
}

export interface Reply {
  status: number;
  body: ApiBody;
  /** performance.now() when the request was handed to fetch / when the whole response was read. */
  sentAt: number;
  doneAt: number;
}

export const http = {
  adminToken: "",
  inflight: 0,
  maxInflight: 0,
  requests: 0,
  /** Network-level failures that were retried (same token, so retries are safe). */
  retried: [] as string[],
};

export async function post(
  base: string,
  path: string,
  payload: unknown,
  signal?: AbortSignal,
): Promise<Reply> {
  for (let attempt = 0; ; attempt++) {
    const timeout = AbortSignal.timeout(MAX_WAIT_MS + 15_000);
    const sentAt = now();
    http.inflight++;
    http.requests++;
    http.maxInflight = Math.max(http.maxInflight, http.inflight);
    try {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${http.adminToken}`, "content-type": "application/json" },
        body: JSON.stringify(payload),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      const text = await res.text();
      const doneAt = now();
      let body: ApiBody;
      try {
        body = JSON.parse(text) as ApiBody;
      } catch {
        body = { error: { message: text.slice(0, 200) } };
      }
      return { status: res.status, body, sentAt, doneAt };
    } catch (err) {
      if (signal?.aborted || attempt >= 2) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      http.retried.push(`${path}: ${String(err)}${cause ? ` (${cause.code ?? cause.message})` : ""}`);
      await sleep(50);
    } finally {
      http.inflight--;
    }
  }
}

/** Established TCP connections whose local end is `port` (the server side), from /proc/net/tcp{,6}. */
export function connectionsTo(port: number): number | null {
  let count = 0;
  let read = false;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
      read = true;
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (!local || fields[3] !== "01") continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) count++;
    }
  }
  return read ? count : null;
}

/** Client i, spread over the servers, arriving now. */
export const newClient = (i: number): Client => ({
  index: i,
  server: i % SERVERS,
  token: newToken(),
  arrivedAt: now(),
  requests: 0,
  conflicts: 0,
  unexpected: [],
});

export interface Client {
  index: number;
  server: number;
  token: string;
  /** When its first acquire was handed to fetch. */
  arrivedAt: number;
  requests: number;
  /** 409 answers (queued: the wait window ended; polling: the key was held). */
  conflicts: number;
  grantedAt?: number;
  fence?: number;
  acquiredAt?: number;
  releaseSentAt?: number;
  releasedAt?: number;
  releaseStatus?: number;
  unexpected: string[];
}

export async function waitFor(check: () => boolean | Promise<boolean>, limitMs: number, stepMs = 10) {
  const deadline = now() + limitMs;
  while (now() < deadline) {
    if (await check()) return true;
    await sleep(stepMs);
  }
  return check();
}
