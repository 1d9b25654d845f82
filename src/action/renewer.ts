/**
 * The renewer: a detached process started by main that renews the lease every third of its TTL
 * for as long as the job runs. The post step stops it; if the runner dies, nothing renews and the
 * lease frees itself within one TTL. It reports to a status file so that post can say loudly when
 * the lease was lost.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { LssClient } from "../client/client.js";
import { LssError } from "../client/errors.js";
import type { IdTokenSource } from "./id-token.js";

export interface RenewerConfig {
  url: string;
  apiToken: string | null;
  /** With OIDC: where to fetch the job's ID tokens (the runner's endpoint, valid for the whole job). */
  idToken?: IdTokenSource;
  key: string;
  leaseToken: string;
  ttlMs: number;
  /** Time left on the lease when the renewer starts. */
  expiresInMs: number;
  statusFile: string;
}

export type RenewerStatus =
  | { state: "held"; renewed_at: string; expires_at: string | null; renewals: number }
  | { state: "lost"; at: string; reason: string };

export interface RenewerDeps {
  config: RenewerConfig;
  client: LssClient;
  report(status: RenewerStatus): void;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Aborted when post (or the runner's cleanup) stops the renewer. */
  signal: AbortSignal;
  now?: () => number;
  /**
   * Count the lease as lost this long before it would expire unrenewed, so that the caller can stop
   * its work in time (lss run: the grace period). Renew calls in flight are cut off then too.
   */
  lossMarginMs?: number;
}

/** The server's answers that mean the lease is gone for good (retrying cannot bring it back). */
const LOST = new Set(["not_held", "lock_held", "forbidden", "unauthorized"]);

/**
 * Renews until stopped (resolves "stopped") or until the lease is lost (resolves "lost"). Loss is
 * judged by a local deadline too: a server that stops answering must not keep a renew call (and
 * its retries) in flight past the lease's expiry.
 */
export async function runRenewer(deps: RenewerDeps): Promise<"stopped" | "lost"> {
  const { config, client } = deps;
  const now = deps.now ?? Date.now;
  const margin = deps.lossMarginMs ?? 0;
  const every = Math.max(1000, Math.floor(config.ttlMs / 3));
  let expiresAt = now() + config.expiresInMs;
  let renewals = 0;
  let delay = every;
  const lost = (reason: string) => {
    deps.report({ state: "lost", at: new Date(now()).toISOString(), reason });
    return "lost" as const;
  };
  let lastError = "no answer in time";
  const expiredReason = () => `could not renew before the lease expired: ${lastError}`;
  for (;;) {
    try {
      await deps.sleep(Math.max(0, Math.min(delay, expiresAt - margin - now())), deps.signal);
    } catch {
      return "stopped";
    }
    const left = expiresAt - margin - now();
    if (left <= 0) return lost(expiredReason());
    const attempt = AbortSignal.any([deps.signal, AbortSignal.timeout(Math.ceil(left))]);
    try {
      const lease = await client.renew(config.key, config.leaseToken, config.ttlMs, attempt);
      renewals++;
      expiresAt = now() + (lease.expires_in_ms ?? config.ttlMs);
      deps.report({
        state: "held",
        renewed_at: new Date(now()).toISOString(),
        expires_at: lease.expires_at,
        renewals,
      });
      delay = every;
    } catch (err) {
      if (deps.signal.aborted) return "stopped";
      const reason = err instanceof Error ? err.message : String(err);
      if (err instanceof LssError && LOST.has(err.code)) return lost(reason);
      if (!attempt.aborted) lastError = reason;
      if (attempt.aborted || now() >= expiresAt - margin) return lost(expiredReason());
      // The server is unreachable for now: try again soon, well before the lease runs out.
      delay = Math.max(200, Math.floor(Math.min(every, (expiresAt - margin - now()) / 4)));
    }
  }
}

/** Written whole and renamed, so that post never reads half a status. */
export function writeStatusFile(file: string, status: RenewerStatus) {
  writeFileSync(`${file}.tmp`, JSON.stringify(status));
  renameSync(`${file}.tmp`, file);
}

export function readStatusFile(file: string): RenewerStatus | null {
  if (!file) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as RenewerStatus;
  } catch {
    return null;
  }
}
