/**
 * The main step: acquire (waiting up to `timeout`, then renewing in the background), wait (until
 * free, without taking it) or release (with the lease token, or forced by an admin).
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type HeldLease, type LssClient, newToken, targetName } from "../client/client.js";
import { describeHolder, sentence, supersededText, timedOutText, waitingText } from "../client/describe.js";
import { LssError } from "../client/errors.js";
import { renewEvery } from "../client/renew-loop.js";
import { type WaitOptions, type WaitProgress, waitFor } from "../client/wait.js";
import { formatDuration } from "../protocol/durations.js";
import { describeFailure } from "./failure.js";
import {
  type AcquireInputs,
  type Inputs,
  parseInputs,
  type ReleaseInputs,
  type Target,
  type WaitInputs,
} from "./inputs.js";
import type { ActionIO } from "./io.js";
import { Output, State } from "./names.js";
import type { RenewerConfig } from "./renewer.js";
import { mdCode, recentHolders, summaryMarkdown } from "./summary.js";

export interface MainDeps {
  env: Record<string, string | undefined>;
  io: ActionIO;
  client(inputs: Inputs): LssClient;
  /** Starts the detached renewer; returns its pid. */
  startRenewer(config: RenewerConfig): number;
  /** Aborted when the runner cancels the job (SIGINT/SIGTERM). */
  signal: AbortSignal;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** How often to say "still waiting" between the server's answers (off when undefined). */
  heartbeatMs?: number;
  /** How long the server may hold each waiting request (see waitFor); undefined: poll. */
  longPollMs?: number;
}

export async function runMain(deps: MainDeps): Promise<void> {
  const { io } = deps;
  let inputs: Inputs;
  try {
    inputs = parseInputs(deps.env);
  } catch (err) {
    io.setFailed((err as Error).message);
    return;
  }
  // Masked in every log line from now on, as the lease token is (and each ID token, as fetched).
  if (inputs.auth.kind === "token") io.setSecret(inputs.auth.token);
  if (inputs.auth.kind === "oidc") io.setSecret(inputs.auth.requestToken);
  const client = deps.client(inputs);
  try {
    switch (inputs.mode) {
      case "acquire":
        return await acquire(inputs, client, deps);
      case "wait":
        return await wait(inputs, client, deps);
      case "release":
        return await release(inputs, client, io);
    }
  } catch (err) {
    if (deps.signal.aborted) {
      io.setFailed(`Cancelled while ${inputs.mode === "acquire" ? "acquiring" : "waiting for"} the lock`);
      return;
    }
    io.setFailed(describeFailure(err, inputs));
  }
}

const lockName = (target: Target) =>
  target.kind === "key"
    ? target.key
    : target.kind === "pool"
      ? targetName(target.keys)
      : `/locks/${target.id}`;

/** Fails the step for a wait that ran out, saying who holds the lock and which input to raise. */
const timedOut = (name: string, timeoutMs: number, held: HeldLease | null) =>
  `${sentence(timedOutText(name, timeoutMs, held))}. Raise input 'timeout' to wait longer.`;

function progressLogger(io: ActionIO, inputs: AcquireInputs | WaitInputs) {
  let last: string | null = null;
  return (p: WaitProgress) => {
    const who = describeHolder(p.holder);
    // Every poll says something, so a wait is never silent; a new grant (another holder or
    // fencing token) says so first.
    const grant = p.holder ? `${p.holder.holder_id}#${p.holder.fencing_token}` : "";
    if (last !== null && grant !== last) io.info(`The lock changed hands: now ${who}`);
    last = grant;
    io.info(sentence(waitingText(lockName(inputs.target), inputs.timeoutMs, p)));
  };
}

/**
 * The wait's options, who held the lock at the last answer (undefined: it was free at once), and
 * `run`, which also says every heartbeatMs that the job still waits (a server holds each request
 * up to a minute; the log must not fall silent meanwhile).
 */
function waiting(inputs: AcquireInputs | WaitInputs, deps: MainDeps) {
  const log = progressLogger(deps.io, inputs);
  const now = deps.now ?? Date.now;
  let last: WaitProgress | undefined;
  let lastAt = 0;
  const options: WaitOptions = {
    timeoutMs: inputs.timeoutMs,
    pollMs: inputs.pollMs,
    signal: deps.signal,
    onWait: (p) => {
      last = p;
      lastAt = now();
      log(p);
    },
    now: deps.now,
    sleep: deps.sleep,
    longPollMs: deps.longPollMs,
  };
  return {
    options,
    lastHolder: (): HeldLease | null | undefined => last?.holder,
    async run<T>(wait: () => Promise<T>): Promise<T> {
      const every = deps.heartbeatMs;
      const timer = every
        ? setInterval(() => {
            if (last) {
              const p = { ...last, waitedMs: last.waitedMs + (now() - lastAt) };
              deps.io.info(`Still ${waitingText(lockName(inputs.target), inputs.timeoutMs, p)}`);
            }
          }, every)
        : undefined;
      try {
        return await wait();
      } finally {
        clearInterval(timer);
      }
    },
  };
}

type Acquired = Extract<Awaited<ReturnType<typeof waitFor>>, { outcome: "acquired" }>;
type Superseded = Extract<Awaited<ReturnType<typeof waitFor>>, { outcome: "superseded" }>;
type NotAcquired = Exclude<
  Awaited<ReturnType<typeof waitFor>>,
  { outcome: "acquired" } | { outcome: "free" } | { outcome: "superseded" }
>;

async function acquire(inputs: AcquireInputs, client: LssClient, deps: MainDeps) {
  const { io } = deps;
  const target = inputs.target.kind === "key" ? inputs.target.key : inputs.target.keys;
  const name = lockName(inputs.target);
  const token = inputs.leaseToken ?? newToken();
  io.setSecret(token);
  // Saved before the first request: if the job is cancelled mid-acquire, post can still free it.
  io.saveState(State.leaseToken, token);
  io.saveState(State.ownToken, inputs.leaseToken ? "false" : "true");
  io.saveState(State.phase, "pending");

  const how = inputs.limit ? ` shared (limit ${inputs.limit})` : inputs.shared ? " shared" : "";
  io.info(
    inputs.auth.kind === "oidc"
      ? `Acquiring ${name}${how} on ${client.url} with the job's GitHub OIDC token (the server names the holder from it)`
      : `Acquiring ${name}${how} on ${client.url} as ${inputs.holder}`,
  );
  const waiter = waiting(inputs, deps);
  const params = {
    ttlMs: inputs.holdMs ?? inputs.ttlMs,
    holderId: inputs.holder,
    reason: inputs.reason ?? undefined,
    token,
    shared: inputs.shared,
    limit: inputs.limit ?? undefined,
    priority: inputs.priority,
    supersede: inputs.supersede ?? undefined,
  };
  const result = await waiter.run(() =>
    waitFor(client, { kind: "acquire", key: target, params }, waiter.options),
  );
  io.setOutput(Output.waitedSeconds, String(Math.round(result.waitedMs / 1000)));
  if (result.outcome === "superseded") return superseded(inputs, client, deps, result);
  if (result.outcome !== "acquired") return notAcquired(inputs, client, deps, result as NotAcquired);

  const holder = recordHeld(inputs, deps, result, token);
  const key = result.lease.key;
  const expiry = inputs.holdMs !== null ? holdExpiry(result) : startRenewal(inputs, deps, key, token, result);
  io.info(
    `Acquired ${key} (fencing token ${result.lease.fencing_token}) after ${formatDuration(result.waitedMs)}; lease ${expiry}.`,
  );
  await io.summary(
    summaryMarkdown({
      title: `LSS: acquired ${mdCode(key)}${how}`,
      lock: key,
      server: client.url,
      holder,
      waitedMs: result.waitedMs,
      heldBefore: waiter.lastHolder(),
      fencingToken: result.lease.fencing_token,
      expiry,
      sharedWith: inputs.shared ? await sharedWith(client, key, result, deps) : undefined,
      // It waited: who had the key before it (the history needs a token with locks:read).
      recentHolders: waiter.lastHolder() ? await lastHolders(client, key, deps) : undefined,
    }),
  );
}

/** A wait that ran out: the outputs, a summary of who held it, and the failed step. */
async function notAcquired(inputs: AcquireInputs, client: LssClient, deps: MainDeps, result: NotAcquired) {
  const { io } = deps;
  const name = lockName(inputs.target);
  const target = inputs.target.kind === "key" ? inputs.target.key : null;
  const held = result.outcome === "timeout" ? result.holder : null;
  io.setOutput(Output.acquired, "false");
  if (held?.holder_id) io.setOutput(Output.holder, held.holder_id);
  // Tried once and not granted: nothing of this job's is on the server (no lease, no place).
  if (inputs.ifHeld !== "wait") io.saveState(State.leaseToken, "");
  const skipped = inputs.ifHeld === "skip";
  await io.summary(
    summaryMarkdown({
      title: skipped ? `LSS: skipped, ${mdCode(name)} is held` : `LSS: could not acquire ${mdCode(name)}`,
      lock: name,
      server: client.url,
      waitedMs: result.waitedMs,
      heldBefore: held,
      recentHolders: target ? await lastHolders(client, target, deps) : undefined,
    }),
  );
  const why = `${name} is ${describeHolder(held)}`;
  // The key leads, as the user wrote it (a sentence would capitalize it).
  if (skipped) io.notice(`${why}: skipped (if-held: skip); output acquired is false.`);
  else if (inputs.ifHeld === "fail") io.setFailed(`${why} (if-held: fail).`);
  else io.setFailed(timedOut(name, inputs.timeoutMs, held));
}

/**
 * A newer run of the supersede group took this one's place: the step succeeds (or fails, with
 * if-superseded: fail) with superseded=true. The server took it out of every queue: nothing to release.
 */
async function superseded(inputs: AcquireInputs, client: LssClient, deps: MainDeps, result: Superseded) {
  const { io } = deps;
  const name = lockName(inputs.target);
  io.setOutput(Output.acquired, "false");
  io.setOutput(Output.superseded, "true");
  if (result.by) io.setOutput(Output.holder, result.by);
  io.saveState(State.leaseToken, "");
  await io.summary(
    summaryMarkdown({
      title: `LSS: superseded on ${mdCode(name)}`,
      lock: name,
      server: client.url,
      waitedMs: result.waitedMs,
      heldBefore: null,
    }),
  );
  const why = supersededText(name, result.by);
  if (inputs.ifSuperseded === "fail") io.setFailed(`${sentence(why)} (if-superseded: fail).`);
  else io.notice(`${sentence(why)}; output superseded is true.`);
}

/** The state post needs and the step's outputs of a granted lease; the holder as the server named it. */
function recordHeld(inputs: AcquireInputs, { io, now }: MainDeps, { lease }: Acquired, token: string) {
  const oidc = inputs.auth.kind === "oidc";
  // With OIDC the server names the holder from the token's verified claims, whatever we sent.
  const holder = oidc ? (lease.holder_id ?? inputs.holder) : inputs.holder;
  if (oidc) io.saveState(State.holder, holder);
  // The key it got: of a pool, which one.
  io.saveState(State.key, lease.key);
  io.setOutput(Output.key, lease.key);
  io.saveState(State.phase, "held");
  io.saveState(State.acquiredAt, String(now?.() ?? Date.now()));
  io.setOutput(Output.acquired, "true");
  io.setOutput(Output.token, token);
  io.setOutput(Output.fencingToken, String(lease.fencing_token));
  io.setOutput(Output.expiresAt, lease.expires_at ?? "");
  io.setOutput(Output.holder, holder);
  return holder;
}

const holdExpiry = ({ lease }: Acquired) =>
  `held until ${lease.expires_at}, after the job ends; release it with mode: release and the same lease-token`;

/** The renewer, in a process of its own that outlives this step; what the lease's expiry reads as. */
function startRenewal(
  inputs: AcquireInputs,
  deps: MainDeps,
  key: string,
  token: string,
  { lease }: Acquired,
) {
  const statusFile = join(deps.env.RUNNER_TEMP || tmpdir(), `lss-renewal-${newToken()}.json`);
  const { auth } = inputs;
  const pid = deps.startRenewer({
    url: inputs.url,
    apiToken: auth.kind === "token" ? auth.token : null,
    // What it needs to fetch fresh ID tokens for the rest of the job.
    ...(auth.kind === "oidc"
      ? { idToken: { requestUrl: auth.requestUrl, requestToken: auth.requestToken, audience: auth.audience } }
      : {}),
    key,
    leaseToken: token,
    ttlMs: inputs.ttlMs,
    expiresInMs: lease.expires_in_ms ?? inputs.ttlMs,
    statusFile,
  });
  deps.io.saveState(State.renewerPid, String(pid));
  deps.io.saveState(State.renewerStatusFile, statusFile);
  return `${formatDuration(inputs.ttlMs)}, renewed every ${formatDuration(renewEvery(inputs.ttlMs))} while the job runs`;
}

/** Held shared: who else holds it (the summary's readers want to know whom they share it with). */
const sharedWith = (client: LssClient, key: string, { lease }: Acquired, deps: MainDeps) =>
  client
    .status(key, { signal: deps.signal })
    .then((s) =>
      (s.holders ?? []).filter((h) => h.fencing_token !== lease.fencing_token).map((h) => describeHolder(h)),
    )
    .catch(() => []);

/** The key's last holders for the summary; nothing when the history cannot be read. */
const lastHolders = (client: LssClient, key: string, deps: MainDeps) =>
  client
    .history(key, { limit: 20, signal: deps.signal })
    .then((h) => recentHolders(h.events))
    .catch(() => undefined);

async function wait(inputs: WaitInputs, client: LssClient, deps: MainDeps) {
  const { io } = deps;
  const name = lockName(inputs.target);
  const target =
    inputs.target.kind === "key"
      ? ({ kind: "free", key: inputs.target.key } as const)
      : ({ kind: "state-lock", id: inputs.target.id } as const);
  io.info(`Waiting until ${name} on ${client.url} is free (at most ${formatDuration(inputs.timeoutMs)})`);
  const waiter = waiting(inputs, deps);
  const result = await waiter.run(() => waitFor(client, target, waiter.options));
  io.setOutput(Output.acquired, "false");
  io.setOutput(Output.waitedSeconds, String(Math.round(result.waitedMs / 1000)));
  if (result.outcome === "unknown") {
    io.setFailed(`There is no lock ${name} on ${client.url}: check input 'lock-id'.`);
    return;
  }
  const free = result.outcome === "free";
  await io.summary(
    summaryMarkdown({
      title: free ? `LSS: ${mdCode(name)} is free` : `LSS: gave up waiting for ${mdCode(name)}`,
      lock: name,
      server: client.url,
      waitedMs: result.waitedMs,
      heldBefore: result.outcome === "timeout" ? result.holder : waiter.lastHolder(),
      recentHolders: target.kind === "free" ? await lastHolders(client, target.key, deps) : undefined,
    }),
  );
  if (free) {
    io.info(`${name} is free after ${formatDuration(result.waitedMs)}.`);
    return;
  }
  const held = result.outcome === "timeout" ? result.holder : null;
  if (held?.holder_id) io.setOutput(Output.holder, held.holder_id);
  io.setFailed(timedOut(name, inputs.timeoutMs, held));
}

async function release(inputs: ReleaseInputs, client: LssClient, io: ActionIO) {
  const key = inputs.target.key;
  io.setOutput(Output.acquired, "false");
  try {
    await client.release(key, inputs.how);
    io.info(`Released ${key}${"force" in inputs.how ? " (forced)" : ""}.`);
    await io.summary(
      summaryMarkdown({ title: `LSS: released ${mdCode(key)}`, lock: key, server: client.url }),
    );
  } catch (err) {
    if (err instanceof LssError && err.code === "not_held") {
      io.warning(`${key} was not held (already released, or its lease expired): nothing to release.`);
      return;
    }
    if (err instanceof LssError && err.code === "lock_held") {
      const held = err.body as Parameters<typeof describeHolder>[0];
      io.setFailed(
        `${key} is ${describeHolder(held)}, with another token: input 'lease-token' does not release it.`,
      );
      return;
    }
    throw err;
  }
}
