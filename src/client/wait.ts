/**
 * Waiting for a lock, for the action and the CLI: take it (acquire), see it free (free), or see a
 * /locks lock unlocked (state-lock), until then or until the timeout. For leases the server holds
 * each request (acquire: in the key's first-come-first-served queue) and answers the moment it
 * is granted or free, so waiting is one request per LONG_POLL_MS, not a poll every few seconds.
 * /locks locks are polled, sooner when the holder's lease is about to expire.
 */
import type { GrantResponse } from "../protocol/lease.js";
import {
  type AcquireParams,
  abortableSleep,
  type HeldLease,
  type LockTarget,
  type LssClient,
} from "./client.js";

export type WaitTarget =
  | { kind: "acquire"; key: LockTarget; params: AcquireParams & { token: string } }
  | { kind: "free"; key: string }
  | { kind: "state-lock"; id: string };

export interface WaitProgress {
  waitedMs: number;
  attempt: number;
  /** Who holds it (null for /locks locks, which have no holder). */
  holder: HeldLease | null;
}

export type WaitResult =
  | { outcome: "acquired"; lease: GrantResponse; waitedMs: number }
  | { outcome: "free"; waitedMs: number }
  | { outcome: "timeout"; waitedMs: number; holder: HeldLease | null }
  | { outcome: "unknown"; waitedMs: number }
  /** A newer waiter of its supersede group took its place (by: that one's holder id). */
  | { outcome: "superseded"; waitedMs: number; by: string | null };

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  signal?: AbortSignal;
  onWait?: (progress: WaitProgress) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** How long each request may be held by the server (LONG_POLL_MS); 0, the default: poll. */
  longPollMs?: number;
}

/** How long one request asks the server to hold it; servers cut it to their own bound. */
export const LONG_POLL_MS = 55_000;

type Check = { done: WaitResult } | { holder: HeldLease | null };

export async function waitFor(client: LssClient, target: WaitTarget, opts: WaitOptions): Promise<WaitResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const longPollMs = opts.longPollMs ?? 0;
  const started = now();

  /** One ask; for leases the server holds it (in the queue, for acquire) up to `hold` ms. */
  const check = async (hold: number): Promise<Check> => {
    const waitedMs = () => now() - started;
    switch (target.kind) {
      case "acquire": {
        const r = await client.acquire(target.key, { ...target.params, signal: opts.signal, waitMs: hold });
        if (r.acquired) return { done: { outcome: "acquired", lease: r.lease, waitedMs: waitedMs() } };
        if ("superseded" in r)
          return { done: { outcome: "superseded", by: r.superseded.by, waitedMs: waitedMs() } };
        return { holder: r.held };
      }
      case "free": {
        const s = await client.status(target.key, { signal: opts.signal, waitMs: hold });
        return s.locked ? { holder: s } : { done: { outcome: "free", waitedMs: waitedMs() } };
      }
      case "state-lock": {
        const s = await client.stateLock(target.id, { signal: opts.signal });
        if (s.state === "unknown") return { done: { outcome: "unknown", waitedMs: waitedMs() } };
        if (s.state === "unlocked") return { done: { outcome: "free", waitedMs: waitedMs() } };
        return { holder: null };
      }
    }
  };

  // Giving up or cancelled: leave the key's queue, so that nobody waits behind us.
  const leaveQueue = async () => {
    if (target.kind === "acquire")
      await client
        .leave(target.key, { token: target.params.token, holderId: target.params.holderId })
        .catch(() => {});
  };

  try {
    for (let attempt = 1; ; attempt++) {
      const remaining = opts.timeoutMs - (now() - started);
      // The first ask answers at once (so the caller can say who holds it right away); the next
      // ones are held by the server.
      const holds = target.kind !== "state-lock" && attempt > 1 && longPollMs > 0;
      const hold = holds ? Math.max(0, Math.min(remaining, longPollMs)) : 0;
      const asked = now();
      const result = await check(hold);
      if ("done" in result) return result.done;
      const waitedMs = now() - started;
      if (opts.timeoutMs - waitedMs <= 0) {
        await leaveQueue();
        return { outcome: "timeout", waitedMs, holder: result.holder };
      }
      opts.onWait?.({ waitedMs, attempt, holder: result.holder });
      // The server held the request: ask again at once. It did not (a /locks lock, or a server
      // that does not hold requests): poll, sooner when the holder's lease is about to expire.
      if (
        (attempt === 1 && target.kind !== "state-lock" && longPollMs > 0) ||
        (hold > 0 && now() - asked >= hold / 2)
      ) {
        continue;
      }
      const expiresIn = result.holder?.expires_in_ms;
      const base = Math.min(opts.pollMs, expiresIn != null ? expiresIn + 50 : Number.POSITIVE_INFINITY);
      const jittered = base * (0.8 + Math.random() * 0.4);
      await sleep(Math.max(100, Math.min(jittered, opts.timeoutMs - waitedMs)), opts.signal);
    }
  } catch (err) {
    if (opts.signal?.aborted) await leaveQueue();
    throw err;
  }
}
