/**
 * Waiting for a lock, for the action and the CLI: take it (acquire), see it free (free), or see a
 * /locks lock unlocked (state-lock), polling until then or until the timeout. The poll comes
 * early when the holder's lease is about to expire, so a free lock is seen without waiting a
 * whole interval.
 */
import type { GrantResponse } from "../protocol/lease.js";
import { type AcquireParams, abortableSleep, type HeldLease, type LssClient } from "./client.js";

export type WaitTarget =
  | { kind: "acquire"; key: string; params: AcquireParams & { token: string } }
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
  | { outcome: "unknown"; waitedMs: number };

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  signal?: AbortSignal;
  onWait?: (progress: WaitProgress) => void;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

type Check = { done: WaitResult } | { holder: HeldLease | null };

export async function waitFor(client: LssClient, target: WaitTarget, opts: WaitOptions): Promise<WaitResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const started = now();

  const check = async (): Promise<Check> => {
    const waitedMs = now() - started;
    switch (target.kind) {
      case "acquire": {
        const r = await client.acquire(target.key, target.params, opts.signal);
        return r.acquired ? { done: { outcome: "acquired", lease: r.lease, waitedMs } } : { holder: r.held };
      }
      case "free": {
        const s = await client.status(target.key, opts.signal);
        return s.locked ? { holder: s } : { done: { outcome: "free", waitedMs } };
      }
      case "state-lock": {
        const s = await client.stateLock(target.id, opts.signal);
        if (s.state === "unknown") return { done: { outcome: "unknown", waitedMs } };
        if (s.state === "unlocked") return { done: { outcome: "free", waitedMs } };
        return { holder: null };
      }
    }
  };

  for (let attempt = 1; ; attempt++) {
    const result = await check();
    if ("done" in result) return result.done;
    const waitedMs = now() - started;
    const remaining = opts.timeoutMs - waitedMs;
    if (remaining <= 0) return { outcome: "timeout", waitedMs, holder: result.holder };
    opts.onWait?.({ waitedMs, attempt, holder: result.holder });
    const expiresIn = result.holder?.expires_in_ms;
    const base = Math.min(opts.pollMs, expiresIn != null ? expiresIn + 50 : Number.POSITIVE_INFINITY);
    const jittered = base * (0.8 + Math.random() * 0.4);
    await sleep(Math.max(100, Math.min(jittered, remaining)), opts.signal);
  }
}
