/**
 * Keeping a lease: renew it when a third of its TTL is left until stopped, or until it is lost. The action's
 * detached renewer and `lss run` both run it; what they do with a renewal or a loss (a status file,
 * stopping the command) is theirs, told through the callbacks.
 */
import { abortableSleep, type LssClient } from "./client.js";
import { LssError } from "./errors.js";

export interface Renewed {
  state: "held";
  renewed_at: string;
  expires_at: string | null;
  renewals: number;
}

export interface Lost {
  state: "lost";
  at: string;
  reason: string;
}

export type RenewStatus = Renewed | Lost;

export interface RenewLoopOptions {
  client: Pick<LssClient, "renew">;
  key: string;
  /** The lease's token. */
  token: string;
  ttlMs: number;
  /** Time left on the lease when the loop starts. */
  expiresInMs: number;
  /** Stops the loop (and cuts off a renew call in flight). */
  signal: AbortSignal;
  onRenewed?(status: Renewed): void;
  onLost?(status: Lost): void;
  /**
   * Count the lease as lost this long before it would expire unrenewed, so that the caller can stop
   * its work in time (lss run: the grace period). Renew calls in flight are cut off then too.
   */
  lossMarginMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

/**
 * How often a lease of ttlMs is renewed: when a third of it is left (every 40 s for 60 s), or for a
 * short lease when half of it or 5 s is left, whichever is less; at most every second. Each renewal
 * is a store write that Upstash bills, and renewals are most of a month's bill; what is left still
 * gives a renewal that fails several retries (each a quarter of the time left, below), and a dead
 * holder's lease frees within one TTL whatever the cadence.
 */
export const renewEvery = (ttlMs: number) =>
  Math.max(1000, Math.floor(ttlMs - Math.max(ttlMs / 3, Math.min(5000, ttlMs / 2))));

/** The server's answers that mean the lease is gone for good (retrying cannot bring it back). */
const LOST = new Set(["not_held", "lock_held", "forbidden", "unauthorized"]);

/**
 * Renews until stopped (resolves "stopped") or until the lease is lost (resolves "lost"). Loss is
 * judged by a local deadline too: a server that stops answering must not keep a renew call (and
 * its retries) in flight past the lease's expiry.
 */
export async function renewLoop(opts: RenewLoopOptions): Promise<"stopped" | "lost"> {
  const { client, signal } = opts;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const margin = opts.lossMarginMs ?? 0;
  // The lease is only of use until the margin: the cadence is of what is left before it.
  const every = renewEvery(Math.max(0, opts.ttlMs - margin));
  let expiresAt = now() + opts.expiresInMs;
  let renewals = 0;
  let delay = every;
  const lost = (reason: string) => {
    opts.onLost?.({ state: "lost", at: new Date(now()).toISOString(), reason });
    return "lost" as const;
  };
  let lastError = "no answer in time";
  const expiredReason = () => `could not renew before the lease expired: ${lastError}`;
  for (;;) {
    try {
      await sleep(Math.max(0, Math.min(delay, expiresAt - margin - now())), signal);
    } catch {
      return "stopped";
    }
    const left = expiresAt - margin - now();
    if (left <= 0) return lost(expiredReason());
    const attempt = AbortSignal.any([signal, AbortSignal.timeout(Math.ceil(left))]);
    try {
      const lease = await client.renew(opts.key, { token: opts.token, ttlMs: opts.ttlMs, signal: attempt });
      renewals++;
      expiresAt = now() + (lease.expires_in_ms ?? opts.ttlMs);
      opts.onRenewed?.({
        state: "held",
        renewed_at: new Date(now()).toISOString(),
        expires_at: lease.expires_at,
        renewals,
      });
      delay = every;
    } catch (err) {
      if (signal.aborted) return "stopped";
      const reason = err instanceof Error ? err.message : String(err);
      if (err instanceof LssError && LOST.has(err.code)) return lost(reason);
      if (!attempt.aborted) lastError = reason;
      if (attempt.aborted || now() >= expiresAt - margin) return lost(expiredReason());
      // The server is unreachable for now: try again soon, well before the lease runs out.
      delay = Math.max(200, Math.floor(Math.min(every, (expiresAt - margin - now()) / 4)));
    }
  }
}
