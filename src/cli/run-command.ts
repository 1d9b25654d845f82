/**
 * `lss run <key> -- <command…>`: acquire, run the command while renewing the lease, release when it
 * exits, and exit with its code. Signals reach the command. If the lease is ever lost, the command
 * is stopped (SIGTERM, then SIGKILL after a grace period): it never runs on without the lock.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { runRenewer } from "../action/renewer.js";
import { abortableSleep, type LssClient, newToken } from "../client/client.js";
import { describeHolder } from "../client/describe.js";
import { waitFor } from "../client/wait.js";
import { formatDuration } from "../protocol/durations.js";
import { Exit } from "./exit-codes.js";
import { progressLine, type Terminal } from "./output.js";

export interface RunOptions {
  key: string;
  command: string[];
  ttlMs: number;
  timeoutMs: number;
  graceMs: number;
  pollMs: number;
  holder: string;
  reason?: string;
}

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

export async function runLocked(client: LssClient, opts: RunOptions, term: Terminal): Promise<number> {
  const token = newToken();
  const waiting = new AbortController();
  const stopWaiting = () => waiting.abort(new Error("interrupted"));
  process.once("SIGINT", stopWaiting);
  process.once("SIGTERM", stopWaiting);
  let result: Awaited<ReturnType<typeof waitFor>>;
  try {
    result = await waitFor(
      client,
      {
        kind: "acquire",
        key: opts.key,
        params: { ttlMs: opts.ttlMs, holderId: opts.holder, reason: opts.reason, token },
      },
      {
        timeoutMs: opts.timeoutMs,
        pollMs: opts.pollMs,
        signal: waiting.signal,
        onWait: (p) => term.progress(progressLine(opts.key, opts.timeoutMs)(p)),
      },
    );
  } catch (err) {
    term.progress(null);
    if (waiting.signal.aborted) {
      // Interrupted while waiting: an acquire in flight may have been granted; give it back.
      await client.release(opts.key, { token }).catch(() => {});
      term.err(`lss: interrupted while waiting for ${opts.key}`);
      return 130;
    }
    throw err;
  } finally {
    process.off("SIGINT", stopWaiting);
    process.off("SIGTERM", stopWaiting);
  }
  term.progress(null);
  if (result.outcome !== "acquired") {
    const held = result.outcome === "timeout" ? result.holder : null;
    term.err(
      `lss: timed out after ${formatDuration(opts.timeoutMs)} waiting for ${opts.key}: ${describeHolder(held)}`,
    );
    return Exit.timeout;
  }

  const child = spawn(opts.command[0] as string, opts.command.slice(1), {
    stdio: "inherit",
    env: { ...process.env, LSS_KEY: opts.key, LSS_FENCING_TOKEN: String(result.lease.fencing_token) },
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const forwarders = FORWARDED.map((s) => [s, forward(s)] as const);
  for (const [signal, handler] of forwarders) process.on(signal, handler);

  const renewing = new AbortController();
  let lostReason: string | null = null;
  let graceTimer: NodeJS.Timeout | undefined;
  const renewal = runRenewer({
    config: {
      url: client.url,
      apiToken: null,
      key: opts.key,
      leaseToken: token,
      ttlMs: opts.ttlMs,
      expiresInMs: result.lease.expires_in_ms ?? opts.ttlMs,
      statusFile: "",
    },
    client,
    sleep: abortableSleep,
    signal: renewing.signal,
    report: (status) => {
      if (status.state !== "lost") return;
      lostReason = status.reason;
      term.err(`lss: the lease on ${opts.key} was lost (${status.reason}); stopping the command`);
      child.kill("SIGTERM");
      graceTimer = setTimeout(() => child.kill("SIGKILL"), opts.graceMs);
    },
  });

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c, s) => resolve([c, s]));
  }).catch((err: Error) => {
    term.err(`lss: cannot run ${opts.command[0]}: ${err.message}`);
    return [127, null] as [number, null];
  });
  clearTimeout(graceTimer);
  for (const [s, handler] of forwarders) process.off(s, handler);
  renewing.abort();
  await renewal;

  if (lostReason) return Exit.leaseLost;
  await client.release(opts.key, { token }).catch((err: Error) => {
    term.err(
      `lss: could not release ${opts.key} (${err.message}); it frees itself within ${formatDuration(opts.ttlMs)}`,
    );
  });
  // As a shell reports a command killed by a signal.
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 1;
}
