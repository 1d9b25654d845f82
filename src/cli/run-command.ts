/**
 * `lss run <key> -- <command…>`: acquire, run the command while renewing the lease, release when it
 * exits, and exit with its code. Signals reach the command. If the lease is lost, or cannot be
 * renewed in time, the command is stopped (SIGTERM, then SIGKILL after the grace period) before
 * the lease runs out on the server: it never runs on without the lock.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { type LockTarget, type LssClient, newToken, releaseAny, targetName } from "../client/client.js";
import { timedOutText, waitingText } from "../client/describe.js";
import { renewLoop } from "../client/renew-loop.js";
import { LONG_POLL_MS, waitFor } from "../client/wait.js";
import { formatDuration } from "../protocol/durations.js";
import { Exit } from "./exit-codes.js";
import type { Terminal } from "./output.js";
import { unconfirmedAcquire, withoutApiToken } from "./settle.js";

export interface RunOptions {
  /** A key, or a pool (several keys: whichever is free first). */
  key: LockTarget;
  shared?: boolean;
  limit?: number;
  command: string[];
  ttlMs: number;
  timeoutMs: number;
  graceMs: number;
  pollMs: number;
  holder: string;
  reason?: string;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/** As a shell reports a process ended by a signal. */
const signalExit = (signal: NodeJS.Signals) => 128 + (constants.signals[signal] ?? 0);

export async function runLocked(client: LssClient, opts: RunOptions, term: Terminal): Promise<number> {
  const token = newToken();
  const waiting = new AbortController();
  let child: ChildProcess | null = null;
  let interruptedBy: NodeJS.Signals | null = null;
  // One set of handlers from the first request to the end: while waiting a signal stops the wait;
  // once the command runs it is forwarded. No moment in between where a signal kills lss
  // with the lock held.
  const handlers = FORWARDED.map((signal) => {
    const handler = () => {
      if (child) child.kill(signal);
      else {
        interruptedBy ??= signal;
        waiting.abort(new Error(`received ${signal}`));
      }
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return await acquireAndRun();
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }

  async function acquireAndRun(): Promise<number> {
    let result: Awaited<ReturnType<typeof waitFor>>;
    try {
      result = await waitFor(
        client,
        {
          kind: "acquire",
          key: opts.key,
          params: {
            ttlMs: opts.ttlMs,
            holderId: opts.holder,
            reason: opts.reason,
            token,
            shared: opts.shared,
            limit: opts.limit,
          },
        },
        {
          timeoutMs: opts.timeoutMs,
          pollMs: opts.pollMs,
          signal: waiting.signal,
          longPollMs: LONG_POLL_MS,
          onWait: (p) => term.progress(waitingText(targetName(opts.key), opts.timeoutMs, p)),
        },
      );
    } catch (err) {
      term.progress(null);
      // An acquire in flight may have been granted (interrupted, or the server could not confirm
      // it): give it back.
      if (!interruptedBy) throw await unconfirmedAcquire(client, opts.key, token, err);
      await releaseAny(client, opts.key, token);
      term.err(`lss: interrupted while waiting for ${targetName(opts.key)} (${interruptedBy})`);
      return signalExit(interruptedBy);
    }
    term.progress(null);
    if (result.outcome !== "acquired") {
      const held = result.outcome === "timeout" ? result.holder : null;
      term.err(`lss: ${timedOutText(targetName(opts.key), opts.timeoutMs, held)}`);
      return Exit.timeout;
    }
    // The key it got (of a pool: which one).
    const key = result.lease.key;
    if (interruptedBy) {
      await client.release(key, { token }).catch(() => {});
      return signalExit(interruptedBy);
    }

    const running = spawn(opts.command[0] as string, opts.command.slice(1), {
      stdio: "inherit",
      // The command gets the lock's name and fencing token, never the API token.
      env: {
        ...withoutApiToken(process.env),
        LSS_KEY: key,
        LSS_FENCING_TOKEN: String(result.lease.fencing_token),
      },
    });
    child = running;

    // Count the lease as lost early enough that SIGTERM + grace + SIGKILL all happen before it
    // expires on the server (the margin cannot exceed half the ttl: renewals must still fit).
    const marginMs = Math.min(opts.graceMs + 500, Math.floor(opts.ttlMs / 2));
    const killAfterMs = Math.max(0, Math.min(opts.graceMs, marginMs - 200));
    const renewing = new AbortController();
    let lostReason: string | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    const renewal = renewLoop({
      client,
      key,
      token,
      ttlMs: opts.ttlMs,
      expiresInMs: result.lease.expires_in_ms ?? opts.ttlMs,
      signal: renewing.signal,
      lossMarginMs: marginMs,
      onLost: (status) => {
        lostReason = status.reason;
        term.err(`lss: the lease on ${key} was lost (${status.reason}); stopping the command`);
        running.kill("SIGTERM");
        killTimer = setTimeout(() => running.kill("SIGKILL"), killAfterMs);
      },
    });

    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      running.once("error", reject);
      running.once("exit", (c, s) => resolve([c, s]));
    }).catch((err: Error) => {
      term.err(`lss: cannot run ${opts.command[0]}: ${err.message}`);
      return [127, null] as [number, null];
    });
    clearTimeout(killTimer);
    renewing.abort();
    await renewal;

    if (lostReason) return Exit.leaseLost;
    await client.release(key, { token }).catch((err: Error) => {
      term.err(
        `lss: could not release ${key} (${err.message}); it frees itself within ${formatDuration(opts.ttlMs)}`,
      );
    });
    if (signal) return signalExit(signal);
    return code ?? 1;
  }
}
