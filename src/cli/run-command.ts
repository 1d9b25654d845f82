/**
 * `lss run <key> -- <command…>`: acquire, run the command while renewing the lease, release when it
 * exits, and exit with its code. Signals reach the command. If the lease is lost, or cannot be
 * renewed in time, the command is stopped (SIGTERM, then SIGKILL after the grace period) before
 * the lease runs out on the server: it never runs on without the lock.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { constants } from "node:os";
import { type LockTarget, type LssClient, newToken, releaseAny, targetName } from "../client/client.js";
import { describeHolder, supersededText, timedOutText, waitingText } from "../client/describe.js";
import { renewLoop } from "../client/renew-loop.js";
import { LONG_POLL_MS, waitFor } from "../client/wait.js";
import { formatDuration } from "../protocol/durations.js";
import type { IfHeld } from "./args.js";
import { Exit } from "./exit-codes.js";
import type { Terminal } from "./output.js";
import { unconfirmedAcquire, withoutApiToken } from "./settle.js";

export interface RunOptions {
  /** A key, or a pool (several keys: whichever is free first). */
  key: LockTarget;
  shared?: boolean;
  limit?: number;
  /** While waiting: its place in the queue, highest first. */
  priority?: number;
  /** While waiting: its supersede group (a newer waiter of it takes this one's place). */
  supersede?: string;
  command: string[];
  ttlMs: number;
  timeoutMs: number;
  /** Held by another: wait (up to timeoutMs), fail or skip (succeed without running the command). */
  ifHeld?: IfHeld;
  graceMs: number;
  pollMs: number;
  holder: string;
  reason?: string;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

/** As a shell reports a process ended by a signal. */
const signalExit = (signal: NodeJS.Signals) => 128 + (constants.signals[signal] ?? 0);

/** What the signal handlers and the steps share: the command once it runs, the signal that interrupted. */
interface RunState {
  child: ChildProcess | null;
  interruptedBy: NodeJS.Signals | null;
  waiting: AbortController;
}

/**
 * One set of handlers from the first request to the end: while waiting a signal stops the wait;
 * once the command runs it is forwarded. No moment in between where a signal kills lss with the
 * lock held. Returns their removal.
 */
function forwardSignals(state: RunState): () => void {
  const handlers = FORWARDED.map((signal) => {
    const handler = () => {
      if (state.child) state.child.kill(signal);
      else {
        state.interruptedBy ??= signal;
        state.waiting.abort(new Error(`received ${signal}`));
      }
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

type Lease = Extract<Awaited<ReturnType<typeof waitFor>>, { outcome: "acquired" }>["lease"];

/** The lease, or the exit code of not getting it (timed out, or interrupted: then given back). */
async function acquireFor(
  client: LssClient,
  opts: RunOptions,
  token: string,
  state: RunState,
  term: Terminal,
): Promise<Lease | number> {
  const name = targetName(opts.key);
  const params = {
    ttlMs: opts.ttlMs,
    holderId: opts.holder,
    reason: opts.reason,
    token,
    shared: opts.shared,
    limit: opts.limit,
    priority: opts.priority,
    supersede: opts.supersede,
  };
  let result: Awaited<ReturnType<typeof waitFor>>;
  try {
    result = await waitFor(
      client,
      { kind: "acquire", key: opts.key, params },
      {
        timeoutMs: opts.timeoutMs,
        pollMs: opts.pollMs,
        signal: state.waiting.signal,
        longPollMs: LONG_POLL_MS,
        onWait: (p) => term.progress(waitingText(name, opts.timeoutMs, p)),
      },
    );
  } catch (err) {
    term.progress(null);
    // An acquire in flight may have been granted (interrupted, or the server could not confirm
    // it): give it back.
    if (!state.interruptedBy) throw await unconfirmedAcquire(client, opts.key, token, err);
    await releaseAny(client, opts.key, token);
    term.err(`lss: interrupted while waiting for ${name} (${state.interruptedBy})`);
    return signalExit(state.interruptedBy);
  }
  term.progress(null);
  if (result.outcome === "superseded") {
    term.err(`lss: ${supersededText(name, result.by)}; the command was not run`);
    return Exit.superseded;
  }
  if (result.outcome !== "acquired") {
    const held = result.outcome === "timeout" ? result.holder : null;
    if (opts.ifHeld === "skip") {
      term.err(`lss: ${name} is ${describeHolder(held)}: skipped (--if-held skip); the command was not run`);
      return Exit.ok;
    }
    if (opts.ifHeld === "fail") {
      term.err(`lss: ${name} is ${describeHolder(held)} (--if-held fail)`);
      return Exit.timeout;
    }
    term.err(`lss: ${timedOutText(name, opts.timeoutMs, held)}`);
    return Exit.timeout;
  }
  if (state.interruptedBy) {
    await client.release(result.lease.key, { token }).catch(() => {});
    return signalExit(state.interruptedBy);
  }
  return result.lease;
}

/** The command's end: its exit code and signal (127 when it cannot be run). */
const ended = (running: ChildProcess, opts: RunOptions, term: Terminal) =>
  new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    running.once("error", reject);
    running.once("exit", (c, s) => resolve([c, s]));
  }).catch((err: Error) => {
    term.err(`lss: cannot run ${opts.command[0]}: ${err.message}`);
    return [127, null] as [number, null];
  });

/** Runs the command while the lease is renewed; stops it before a lost lease runs out; releases after. */
async function runHolding(
  client: LssClient,
  opts: RunOptions,
  token: string,
  lease: Lease,
  state: RunState,
  term: Terminal,
) {
  const { key } = lease;
  const running = spawn(opts.command[0] as string, opts.command.slice(1), {
    stdio: "inherit",
    // The command gets the lock's name and fencing token, never the API token.
    env: { ...withoutApiToken(process.env), LSS_KEY: key, LSS_FENCING_TOKEN: String(lease.fencing_token) },
  });
  state.child = running;
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
    expiresInMs: lease.expires_in_ms ?? opts.ttlMs,
    signal: renewing.signal,
    lossMarginMs: marginMs,
    onLost: (status) => {
      lostReason = status.reason;
      term.err(`lss: the lease on ${key} was lost (${status.reason}); stopping the command`);
      running.kill("SIGTERM");
      killTimer = setTimeout(() => running.kill("SIGKILL"), killAfterMs);
    },
  });
  const [code, signal] = await ended(running, opts, term);
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

export async function runLocked(client: LssClient, opts: RunOptions, term: Terminal): Promise<number> {
  const token = newToken();
  const state: RunState = { child: null, interruptedBy: null, waiting: new AbortController() };
  const stopForwarding = forwardSignals(state);
  try {
    const lease = await acquireFor(client, opts, token, state, term);
    return typeof lease === "number" ? lease : await runHolding(client, opts, token, lease, state, term);
  } finally {
    stopForwarding();
  }
}
