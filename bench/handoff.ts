/**
 * `npm run bench:handoff`: the fair FIFO queue with server-side waiting, against polling clients.
 *
 * One run, on a fresh redis-server and TWO server processes (server/node.ts), clients spread over
 * both (client i talks to server i % 2, so a handoff to the next client in line crosses servers):
 *
 *   1. Handoff latency (release → next waiter granted), with 1, 10 and 100 waiters: a holder takes the
 *      key, the waiters arrive in a known order 5 ms apart and long-poll (wait_ms 55000, own token,
 *      re-ask at once on 409); the holder releases and each waiter, once granted, holds 20 ms and
 *      releases. Handoff = grant response − previous release response (bench clock). Checks that no
 *      two grants overlap and that fencing tokens strictly increase.
 *   2. Fairness: grant order against arrival order, and the spread of waiting times.
 *   3. The same chain with polling clients (no wait_ms, an acquire every 1 s ± 20 %): the baseline.
 *   4. Redis commands per waiter per minute while waiting (INFO deltas; the holder's renewals, every
 *      20 s with ttl 60000, measured alone in the same run and subtracted), long-poll vs polling.
 *
 * Prints a report and writes bench/handoff-results.json. Talks to 127.0.0.1 only; cleans up every
 * child process and the redis-server on success, failure and Ctrl-C. Takes about 3 minutes.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { startRedisServer } from "../test/support/redis-server.js";
import {
  Cleanup,
  type CommandCounters,
  commandCounters,
  machineBusySeconds,
  percentile,
  runBench,
  type Service,
  sleep,
  startService,
  waitForQuiet,
} from "./lib.js";

const SERVER_ENTRY = process.env.BENCH_SERVER_ENTRY || "server/node.ts";
const SERVERS = 2;
const KEY_PREFIX = "lss"; // the server's default LSS_KEY_PREFIX (startService strips LSS_* from our env)
const NAMESPACE = "default"; // where the admin token acts

const MAX_WAIT_MS = 55_000; // LSS_MAX_WAIT_MS, and the wait_ms of every long-polling client
const TTL_MS = 30_000;
const HOLD_MS = 20;
const ARRIVAL_GAP_MS = 5;
const POLL_MS = 1_000;
const POLL_JITTER = 0.2;
const SIZES = [1, 10, 100] as const;
type Mode = "queued" | "polling";
/** Rounds per size: one chain of N waiters gives N handoffs, so small N is repeated. */
const ROUNDS: Record<Mode, Record<(typeof SIZES)[number], number>> = {
  queued: { 1: 20, 10: 5, 100: 1 },
  polling: { 1: 10, 10: 3, 100: 1 },
};
const ROUND_LIMIT_MS: Record<Mode, number> = { queued: 30_000, polling: 45_000 };
/** Bounds on a client's loop, besides the round's time limit. */
const MAX_ASKS = 20;
const MAX_POLLS = 200;

// Part 4
const CMD_WAITERS = 10;
const CMD_WINDOW_MS = 30_000;
const HOLDER_TTL_MS = 60_000;
const RENEW_EVERY_MS = 20_000;
const PROBE_WAIT_MS = 1_000;
const PROBE_ASKS = 10;

const benchDir = dirname(fileURLToPath(import.meta.url));
const rootDir = join(benchDir, "..");
const resultsFile = join(benchDir, "handoff-results.json");

const now = () => performance.now();
const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");
const round2 = (n: number) => (Number.isFinite(n) ? Math.round(n * 100) / 100 : n);
const newToken = () => randomBytes(16).toString("hex");

/** Resolves at performance.now() ≥ at, or at once when the signal is aborted. */
function sleepUntil(at: number, signal?: AbortSignal): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// HTTP: Node's global fetch (undici's global Agent: keep-alive, no per-origin connection limit)
// ---------------------------------------------------------------------------------------------

interface ApiBody {
  status?: string;
  token?: string;
  fencing_token?: number;
  acquired_at?: string;
  holder_id?: string | null;
  expires_in_ms?: number | null;
  position?: number | null;
  error?: { code?: string; message?: string };
}

interface Reply {
  status: number;
  body: ApiBody;
  /** performance.now() when the request was handed to fetch / when the whole response was read. */
  sentAt: number;
  doneAt: number;
}

const http = {
  adminToken: "",
  inflight: 0,
  maxInflight: 0,
  requests: 0,
  /** Network-level failures that were retried (same token, so retries are safe). */
  retried: [] as string[],
};

async function post(base: string, path: string, payload: unknown, signal?: AbortSignal): Promise<Reply> {
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
function connectionsTo(port: number): number | null {
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

// ---------------------------------------------------------------------------------------------
// Parts 1–3: handoff chains
// ---------------------------------------------------------------------------------------------

/** Client i, spread over the servers, arriving now. */
const newClient = (i: number): Client => ({
  index: i,
  server: i % SERVERS,
  token: newToken(),
  arrivedAt: now(),
  requests: 0,
  conflicts: 0,
  unexpected: [],
});

interface Client {
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

interface Chain {
  /** Clients currently holding by the bench's account: > 1 at a grant is an overlap. */
  holding: number;
  overlaps: number;
}

interface RoundResult {
  mode: Mode;
  waiters: number;
  handoffsMs: number[];
  handoffsFromReleaseSentMs: number[];
  waitsMs: number[];
  granted: number;
  overlaps: number;
  fenceViolations: number;
  acquiredAtViolations: number;
  outOfOrder: number;
  inversions: number;
  maxDisplacement: number;
  /** queued: whether the order in Redis's queue (before the release) was the arrival order. */
  queueOrderIsArrivalOrder: boolean | null;
  /** queued: grants at a place other than their place in Redis's queue. */
  outOfQueueOrder: number | null;
  requests: number;
  conflicts: number;
  unexpected: string[];
  connections: Array<number | null> | null;
  durationMs: number;
}

async function grantAndRelease(
  c: Client,
  base: string,
  key: string,
  r: Reply,
  chain: Chain,
  signal: AbortSignal,
): Promise<void> {
  c.grantedAt = r.doneAt;
  c.fence = r.body.fencing_token;
  c.acquiredAt = r.body.acquired_at ? Date.parse(r.body.acquired_at) : undefined;
  if (chain.holding > 0) chain.overlaps++;
  chain.holding++;
  await sleep(HOLD_MS);
  chain.holding--;
  const rel = await post(base, `/infra/locks/${key}/release`, { token: c.token }, signal);
  c.releaseSentAt = rel.sentAt;
  c.releasedAt = rel.doneAt;
  c.releaseStatus = rel.status;
  if (rel.status !== 200) c.unexpected.push(`release → ${rel.status} ${JSON.stringify(rel.body.error)}`);
}

/** Long-poll: wait_ms 55000 with its own token, re-asking at once after a 409. */
async function queuedClient(c: Client, base: string, key: string, chain: Chain, signal: AbortSignal) {
  const path = `/infra/locks/${key}/acquire`;
  for (let ask = 0; ask < MAX_ASKS && !signal.aborted; ask++) {
    const r = await post(base, path, { ttl_ms: TTL_MS, token: c.token, wait_ms: MAX_WAIT_MS }, signal);
    c.requests++;
    if (r.status === 200) return grantAndRelease(c, base, key, r, chain, signal);
    if (r.status === 409) {
      c.conflicts++;
      continue;
    }
    c.unexpected.push(`acquire → ${r.status} ${JSON.stringify(r.body.error)}`);
    await sleep(50);
  }
}

/** A typical polling client: a single-try acquire every 1 s ± 20 %. */
async function pollingClient(c: Client, base: string, key: string, chain: Chain, signal: AbortSignal) {
  const path = `/infra/locks/${key}/acquire`;
  for (let poll = 0; poll < MAX_POLLS && !signal.aborted; poll++) {
    if (poll > 0) await sleepUntil(now() + POLL_MS * (1 + (Math.random() * 2 - 1) * POLL_JITTER), signal);
    if (signal.aborted) return;
    const r = await post(base, path, { ttl_ms: TTL_MS, token: c.token }, signal);
    c.requests++;
    if (r.status === 200) return grantAndRelease(c, base, key, r, chain, signal);
    if (r.status === 409) c.conflicts++;
    else c.unexpected.push(`acquire → ${r.status} ${JSON.stringify(r.body.error)}`);
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, limitMs: number, stepMs = 10) {
  const deadline = now() + limitMs;
  while (now() < deadline) {
    if (await check()) return true;
    await sleep(stepMs);
  }
  return check();
}

async function runRound(
  mode: Mode,
  n: number,
  roundNo: number,
  servers: Service[],
  redis: Redis,
): Promise<RoundResult> {
  const started = now();
  const key = `handoff-${mode}-${n}-${roundNo}`;
  const base = (i: number) => (servers[i % SERVERS] as Service).url;
  const stop = new AbortController();
  const limit = setTimeout(() => stop.abort(), ROUND_LIMIT_MS[mode]);
  const unexpected: string[] = [];
  const chain: Chain = { holding: 0, overlaps: 0 };
  const clients: Client[] = [];
  const running: Array<Promise<void>> = [];
  let connections: Array<number | null> | null = null;
  try {
    // The holder (server 0).
    const holderToken = newToken();
    const holder = await post(base(0), `/infra/locks/${key}/acquire`, { ttl_ms: TTL_MS, token: holderToken });
    if (holder.status !== 200)
      throw new Error(`holder acquire → ${holder.status} ${JSON.stringify(holder.body)}`);
    chain.holding = 1;

    // The waiters arrive in index order, ARRIVAL_GAP_MS apart.
    const loop = mode === "queued" ? queuedClient : pollingClient;
    for (let i = 0; i < n; i++) {
      const c = newClient(i);
      clients.push(c);
      running.push(
        loop(c, base(i), key, chain, stop.signal).catch((err: unknown) => {
          if (!stop.signal.aborted) c.unexpected.push(`client failed: ${String(err)}`);
        }),
      );
      if (i < n - 1) await sleep(ARRIVAL_GAP_MS);
    }

    // Everyone is waiting before the holder lets go.
    let queueOrderIsArrivalOrder: boolean | null = null;
    let queueOrder: number[] | null = null;
    if (mode === "queued") {
      const queueKey = `${KEY_PREFIX}:queue:${NAMESPACE}:${key}`;
      const joined = await waitFor(async () => (await redis.zcard(queueKey)) >= n, 5_000);
      if (!joined) unexpected.push(`only ${await redis.zcard(queueKey)} of ${n} waiters queued after 5 s`);
      const byHash = new Map(clients.map((c) => [sha256(c.token), c.index]));
      const order = (await redis.zrange(queueKey, 0, -1)).map((h) => byHash.get(h) ?? -1);
      queueOrderIsArrivalOrder = order.length === n && order.every((index, pos) => index === pos);
      queueOrder = order;
      await sleep(50);
    } else {
      const polled = await waitFor(() => clients.every((c) => c.requests > 0), 5_000);
      if (!polled) unexpected.push("not every polling client had its first answer after 5 s");
      // The release lands at a random moment of the pollers' cycles.
      await sleep(Math.random() * POLL_MS);
    }
    if (n >= 100) connections = servers.map((s) => connectionsTo(s.port));

    chain.holding--;
    const released = await post(base(0), `/infra/locks/${key}/release`, { token: holderToken });
    if (released.status !== 200) unexpected.push(`holder release → ${released.status}`);
    await Promise.all(running);

    // Grants in the order the bench saw them; the holder's release starts the chain.
    const granted = clients
      .filter((c) => c.grantedAt !== undefined)
      .sort((a, b) => (a.grantedAt ?? 0) - (b.grantedAt ?? 0));
    const handoffsMs: number[] = [];
    const handoffsFromReleaseSentMs: number[] = [];
    let prevReleasedAt = released.doneAt;
    let prevReleaseSentAt = released.sentAt;
    let prevFence = holder.body.fencing_token ?? Number.NEGATIVE_INFINITY;
    let prevAcquiredAt = holder.body.acquired_at ? Date.parse(holder.body.acquired_at) : 0;
    let fenceViolations = 0;
    let acquiredAtViolations = 0;
    for (const c of granted) {
      handoffsMs.push((c.grantedAt ?? 0) - prevReleasedAt);
      handoffsFromReleaseSentMs.push((c.grantedAt ?? 0) - prevReleaseSentAt);
      if (!(c.fence !== undefined && c.fence > prevFence)) fenceViolations++;
      if (!(c.acquiredAt !== undefined && c.acquiredAt >= prevAcquiredAt)) acquiredAtViolations++;
      prevFence = c.fence ?? prevFence;
      prevAcquiredAt = c.acquiredAt ?? prevAcquiredAt;
      if (c.releasedAt === undefined || c.releaseSentAt === undefined) break; // the chain ends here
      prevReleasedAt = c.releasedAt;
      prevReleaseSentAt = c.releaseSentAt;
    }
    // Fairness: arrival position = index; grant position = place in `granted`.
    let outOfOrder = 0;
    let maxDisplacement = 0;
    granted.forEach((c, pos) => {
      const d = Math.abs(pos - c.index);
      if (d > 0) outOfOrder++;
      maxDisplacement = Math.max(maxDisplacement, d);
    });
    // queued: grant order against Redis's queue order (FIFO as the server saw the arrivals).
    let outOfQueueOrder: number | null = null;
    if (queueOrder) {
      const order = queueOrder;
      outOfQueueOrder = granted.filter((c, pos) => order[pos] !== c.index).length;
    }
    let inversions = 0;
    for (let a = 0; a < granted.length; a++) {
      for (let b = a + 1; b < granted.length; b++) {
        if ((granted[a] as Client).index > (granted[b] as Client).index) inversions++;
      }
    }
    for (const c of clients) unexpected.push(...c.unexpected.map((u) => `client ${c.index}: ${u}`));
    if (granted.length < n) unexpected.push(`${n - granted.length} of ${n} waiters never granted`);
    return {
      mode,
      waiters: n,
      handoffsMs,
      handoffsFromReleaseSentMs,
      waitsMs: granted.map((c) => (c.grantedAt ?? 0) - c.arrivedAt),
      granted: granted.length,
      overlaps: chain.overlaps,
      fenceViolations,
      acquiredAtViolations,
      outOfOrder,
      inversions,
      maxDisplacement,
      queueOrderIsArrivalOrder,
      outOfQueueOrder,
      requests: clients.reduce((sum, c) => sum + c.requests, 0),
      conflicts: clients.reduce((sum, c) => sum + c.conflicts, 0),
      unexpected,
      connections,
      durationMs: now() - started,
    };
  } finally {
    clearTimeout(limit);
    stop.abort();
    await Promise.all(running);
    // Nobody stays queued on a finished round's key.
    await Promise.all(
      clients
        .filter((c) => c.grantedAt === undefined)
        .map((c) => post(base(c.index), `/infra/locks/${key}/leave`, { token: c.token }).catch(() => {})),
    );
  }
}

interface Stats {
  p50: number;
  p99: number;
  max: number;
  min: number;
  count: number;
}

const statsOf = (values: number[]): Stats => ({
  p50: round2(percentile(values, 50)),
  p99: round2(percentile(values, 99)),
  max: round2(values.length ? Math.max(...values) : Number.NaN),
  min: round2(values.length ? Math.min(...values) : Number.NaN),
  count: values.length,
});

interface Series {
  mode: Mode;
  waiters: number;
  rounds: number;
  granted: number;
  expectedGrants: number;
  handoffMs: Stats;
  /** Grant − previous release SENT (includes the release's own round trip). */
  handoffFromReleaseSentMs: Stats;
  /** Handoffs where the grant reached the bench before the previous release's response did. */
  grantBeforeReleaseResponse: number;
  /** Handoffs of ≥ 500 ms (half a poll interval): never expected from a queued waiter. */
  slowHandoffs: number;
  overlaps: number;
  fenceViolations: number;
  acquiredAtViolations: number;
  fairness: {
    outOfOrderGrants: number;
    inversions: number;
    maxDisplacement: number;
    /** queued: rounds where Redis's queue order differed from the arrival order. */
    queueOrderMismatches: number | null;
    /** queued: grants at a place other than their place in Redis's queue (server-side FIFO violations). */
    outOfQueueOrderGrants: number | null;
  };
  waitMs: Stats;
  requestsPerWaiter: number;
  conflicts: number;
  /** Established connections to each server while all N waited (N = 100 only). */
  connections: Array<number | null> | null;
  durationMs: number;
  unexpected: string[];
}

function summarize(rounds: RoundResult[]): Series {
  const first = rounds[0] as RoundResult;
  const all = <T>(pick: (r: RoundResult) => T[]) => rounds.flatMap(pick);
  const sum = (pick: (r: RoundResult) => number) => rounds.reduce((s, r) => s + pick(r), 0);
  const handoffs = all((r) => r.handoffsMs);
  return {
    mode: first.mode,
    waiters: first.waiters,
    rounds: rounds.length,
    granted: sum((r) => r.granted),
    expectedGrants: first.waiters * rounds.length,
    handoffMs: statsOf(handoffs),
    handoffFromReleaseSentMs: statsOf(all((r) => r.handoffsFromReleaseSentMs)),
    grantBeforeReleaseResponse: handoffs.filter((h) => h < 0).length,
    slowHandoffs: handoffs.filter((h) => h >= POLL_MS / 2).length,
    overlaps: sum((r) => r.overlaps),
    fenceViolations: sum((r) => r.fenceViolations),
    acquiredAtViolations: sum((r) => r.acquiredAtViolations),
    fairness: {
      outOfOrderGrants: sum((r) => r.outOfOrder),
      inversions: sum((r) => r.inversions),
      maxDisplacement: Math.max(...rounds.map((r) => r.maxDisplacement)),
      queueOrderMismatches:
        first.mode === "queued" ? rounds.filter((r) => r.queueOrderIsArrivalOrder === false).length : null,
      outOfQueueOrderGrants: first.mode === "queued" ? sum((r) => r.outOfQueueOrder ?? 0) : null,
    },
    waitMs: statsOf(all((r) => r.waitsMs)),
    requestsPerWaiter: round2(sum((r) => r.requests) / (first.waiters * rounds.length)),
    conflicts: sum((r) => r.conflicts),
    connections: rounds.find((r) => r.connections)?.connections ?? null,
    durationMs: Math.round(sum((r) => r.durationMs)),
    unexpected: all((r) => r.unexpected).slice(0, 20),
  };
}

// ---------------------------------------------------------------------------------------------
// Part 4: Redis commands per waiter per minute while waiting
// ---------------------------------------------------------------------------------------------

interface Window {
  label: string;
  durationMs: number;
  /** total_commands_processed growth, our INFO subtracted. */
  executed: number;
  /** EVAL/EVALSHA calls: commands the servers sent (round trips). */
  scripts: number;
  byCommand: Record<string, number>;
  /** Holder renewals that ran inside the window. */
  renewals: number;
  /** A renewal that straddled a window edge makes the subtraction approximate. */
  straddled: boolean;
}

interface PerWaiter {
  executedPerMin: number;
  scriptsPerMin: number;
}

interface CommandResult {
  waiters: number;
  windowMs: number;
  renewEveryMs: number;
  holderAlone: Window;
  perRenewal: { executed: number; scripts: number };
  queuedJoin: Window & { perWaiter: { executed: number; scripts: number } };
  queuedWaiting: Window & { perWaiter: PerWaiter; nonWaitingAnswers: number };
  /** Cost of one long-poll request that ends in 409 (join/refresh + the check at its deadline). */
  askCycle: Window & {
    asks: number;
    /** Each request: its duration, status, and the acquire scripts / commands it cost. */
    requests: AskSample[];
    perAsk: { executed: number; scripts: number };
  };
  /** Waiting + one ask cycle per 55 s: what a waiter costs per minute in steady state. */
  queuedSteadyPerWaiter: PerWaiter;
  polling: Window & { perWaiter: PerWaiter; pollsPerWaiterPerMin: number };
  /** polling ÷ queued steady state. */
  ratio: { executed: number; scripts: number };
}

type Renewal = { sentAt: number; doneAt: number; status: number };
type AskSample = { ms: number; status: number; scripts: number; executed: number };

function windowOf(
  label: string,
  before: CommandCounters,
  after: CommandCounters,
  startedAt: number,
  endedAt: number,
  renewals: Renewal[],
  /** Commands the bench itself sent in the window besides the INFO that took `before`. */
  own: Record<string, number> = {},
): Window {
  const mine: Record<string, number> = { ...own, info: (own.info ?? 0) + 1 };
  const byCommand: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after.calls)) {
    const grown = calls - (before.calls[name] ?? 0) - (mine[name] ?? 0);
    if (grown > 0) byCommand[name] = grown;
  }
  const scripts = Object.entries(byCommand)
    .filter(([name]) => name === "eval" || name === "evalsha")
    .reduce((s, [, n]) => s + n, 0);
  const inside = renewals.filter((r) => r.sentAt >= startedAt && r.sentAt < endedAt).length;
  const straddled = renewals.some(
    (r) => (r.sentAt < startedAt && r.doneAt > startedAt) || (r.sentAt < endedAt && r.doneAt > endedAt),
  );
  const ownTotal = Object.values(mine).reduce((a, b) => a + b, 0);
  return {
    label,
    durationMs: Math.round(endedAt - startedAt),
    // The INFO that took `before` is counted in `after`.
    executed: after.total - before.total - ownTotal,
    scripts,
    byCommand,
    renewals: inside,
    straddled,
  };
}

async function countCommands(servers: Service[], redis: Redis): Promise<CommandResult> {
  const key = "cmd-waiting";
  const base = (i: number) => (servers[i % SERVERS] as Service).url;
  const acquirePath = `/infra/locks/${key}/acquire`;
  const holderToken = newToken();
  const held = await post(base(0), acquirePath, { ttl_ms: HOLDER_TTL_MS, token: holderToken });
  if (held.status !== 200) throw new Error(`holder acquire → ${held.status} ${JSON.stringify(held.body)}`);
  const t0 = held.doneAt;
  const at = (s: number) => t0 + s * 1000;

  // The holder renews every 20 s (at t0 + 20, 40, 60, …), from the bench; the renewal at t0 loads the
  // RENEW script (EVALSHA → NOSCRIPT → EVAL) before any window, so that every measured renewal costs the same.
  const renewals: Renewal[] = [];
  const stopRenewing = new AbortController();
  const renewing = (async () => {
    for (let k = 0; k <= 10; k++) {
      await sleepUntil(t0 + k * RENEW_EVERY_MS, stopRenewing.signal);
      if (stopRenewing.signal.aborted) return;
      const r = await post(base(0), `/infra/locks/${key}/renew`, {
        token: holderToken,
        ttl_ms: HOLDER_TTL_MS,
      });
      renewals.push({ sentAt: r.sentAt, doneAt: r.doneAt, status: r.status });
    }
  })();
  const measure = async (label: string, from: number, to: number, during?: () => Promise<void>) => {
    await sleepUntil(from);
    const startedAt = now();
    const before = await commandCounters(redis);
    if (during) await during();
    await sleepUntil(to);
    const after = await commandCounters(redis);
    return windowOf(label, before, after, startedAt, now(), renewals);
  };

  const waiters: Client[] = [];
  const stopWaiting = new AbortController();
  const waiting: Array<Promise<void>> = [];
  let nonWaitingAnswers = 0;
  try {
    // A: the holder alone, one renewal (t0 + 20 s) inside [t0 + 5, t0 + 35].
    console.log("  commands: holder alone (30 s)…");
    const holderAlone = await measure("holder alone", at(5), at(5) + CMD_WINDOW_MS);
    const perRenewal = {
      executed: holderAlone.renewals ? holderAlone.executed / holderAlone.renewals : 0,
      scripts: holderAlone.renewals ? holderAlone.scripts / holderAlone.renewals : 0,
    };
    const net = (w: Window) => ({
      executed: w.executed - w.renewals * perRenewal.executed,
      scripts: w.scripts - w.renewals * perRenewal.scripts,
    });
    const perMinute = (w: Window, count: number): PerWaiter => {
      const n = net(w);
      return {
        executedPerMin: round2((n.executed / count) * (60_000 / w.durationMs)),
        scriptsPerMin: round2((n.scripts / count) * (60_000 / w.durationMs)),
      };
    };

    // B: W long-polling waiters join (t0 + 41 s, after the renewal at 40 s), then wait 30 s.
    console.log(`  commands: ${CMD_WAITERS} long-polling waiters (30 s)…`);
    const queueKey = `${KEY_PREFIX}:queue:${NAMESPACE}:${key}`;
    await sleepUntil(at(41));
    const joinBefore = await commandCounters(redis);
    const joinStartedAt = now();
    for (let i = 0; i < CMD_WAITERS; i++) {
      const c = newClient(i);
      waiters.push(c);
      waiting.push(
        post(
          base(i),
          acquirePath,
          { ttl_ms: TTL_MS, token: c.token, wait_ms: MAX_WAIT_MS },
          stopWaiting.signal,
        )
          .then(() => {
            nonWaitingAnswers++; // nothing should answer before we stop waiting
          })
          .catch(() => {}),
      );
      await sleep(ARRIVAL_GAP_MS);
    }
    let zcards = 0;
    await waitFor(async () => {
      zcards++;
      return (await redis.zcard(queueKey)) >= CMD_WAITERS;
    }, 5_000);
    const joinAfter = await commandCounters(redis);
    const joinWindow = windowOf("join", joinBefore, joinAfter, joinStartedAt, now(), renewals, {
      zcard: zcards,
    });
    const queuedJoin = {
      ...joinWindow,
      perWaiter: {
        executed: round2(net(joinWindow).executed / CMD_WAITERS),
        scripts: round2(net(joinWindow).scripts / CMD_WAITERS),
      },
    };
    const waitingWindow = await measure("long-polling waiters", at(45), at(45) + CMD_WINDOW_MS);
    const queuedWaiting = {
      ...waitingWindow,
      perWaiter: perMinute(waitingWindow, CMD_WAITERS),
      nonWaitingAnswers,
    };
    stopWaiting.abort(); // the server leaves the queue for an aborted request; /leave to be sure
    await Promise.all(waiting);
    await Promise.all(
      waiters.map((c) =>
        post(base(c.index), `/infra/locks/${key}/leave`, { token: c.token }).catch(() => {}),
      ),
    );

    // The cost of one long-poll request that ends in 409: one probe, wait_ms 1000, same key.
    console.log(
      `  commands: cost of a long-poll request that ends in 409 (${PROBE_ASKS} × ${PROBE_WAIT_MS} ms)…`,
    );
    const probeToken = newToken();
    const probeAsk = () =>
      post(base(1), acquirePath, { ttl_ms: TTL_MS, token: probeToken, wait_ms: PROBE_WAIT_MS });
    const joined = await probeAsk();
    if (joined.status !== 409)
      throw new Error(`probe join → ${joined.status} ${JSON.stringify(joined.body)}`);
    // One INFO reading between requests: the acquire scripts each request ran, renewals subtracted.
    let probeAnswers = 0;
    const requests: AskSample[] = [];
    const probeStartedAt = now();
    const probeFirst = await commandCounters(redis);
    let previous = probeFirst;
    for (let i = 0; i < PROBE_ASKS; i++) {
      const startedAt = now();
      const r = await probeAsk();
      if (r.status === 409) probeAnswers++;
      const after = await commandCounters(redis);
      const w = windowOf("ask", previous, after, startedAt, now(), renewals);
      requests.push({
        ms: Math.round(r.doneAt - r.sentAt),
        status: r.status,
        scripts: w.scripts - w.renewals * perRenewal.scripts,
        executed: w.executed - w.renewals * perRenewal.executed,
      });
      previous = after;
    }
    const probeWindow = windowOf("ask cycle", probeFirst, previous, probeStartedAt, now(), renewals, {
      info: PROBE_ASKS - 1,
    });
    await post(base(1), `/infra/locks/${key}/leave`, { token: probeToken });
    const askCycle = {
      ...probeWindow,
      asks: probeAnswers,
      requests,
      perAsk: {
        executed: round2(net(probeWindow).executed / PROBE_ASKS),
        scripts: round2(net(probeWindow).scripts / PROBE_ASKS),
      },
    };
    // Steady state: a long-polling waiter asks once per MAX_WAIT_MS.
    const asksPerMin = 60_000 / MAX_WAIT_MS;
    const queuedSteadyPerWaiter: PerWaiter = {
      executedPerMin: round2(queuedWaiting.perWaiter.executedPerMin + askCycle.perAsk.executed * asksPerMin),
      scriptsPerMin: round2(queuedWaiting.perWaiter.scriptsPerMin + askCycle.perAsk.scripts * asksPerMin),
    };

    // C: W polling clients (start at t0 + 101 s, after the renewal at 100 s), window [t0 + 105, t0 + 135].
    console.log(`  commands: ${CMD_WAITERS} polling clients (30 s)…`);
    await sleepUntil(at(101));
    const stopPolling = new AbortController();
    const polls: number[] = [];
    const polling: Array<Promise<void>> = [];
    for (let i = 0; i < CMD_WAITERS; i++) {
      const token = newToken();
      polling.push(
        (async () => {
          for (let p = 0; p < 200 && !stopPolling.signal.aborted; p++) {
            if (p > 0) {
              await sleepUntil(
                now() + POLL_MS * (1 + (Math.random() * 2 - 1) * POLL_JITTER),
                stopPolling.signal,
              );
            }
            if (stopPolling.signal.aborted) return;
            const r = await post(base(i), acquirePath, { ttl_ms: TTL_MS, token }, stopPolling.signal);
            polls.push(r.sentAt);
            if (r.status !== 409) nonWaitingAnswers++;
          }
        })().catch(() => {}),
      );
      await sleep(ARRIVAL_GAP_MS);
    }
    const startC = at(105);
    const pollWindow = await measure("polling clients", startC, startC + CMD_WINDOW_MS);
    stopPolling.abort();
    await Promise.all(polling);
    const endC = startC + pollWindow.durationMs;
    const pollsInside = polls.filter((t) => t >= startC && t <= endC).length;
    const pollingResult = {
      ...pollWindow,
      perWaiter: perMinute(pollWindow, CMD_WAITERS),
      pollsPerWaiterPerMin: round2((pollsInside / CMD_WAITERS) * (60_000 / pollWindow.durationMs)),
    };
    if (nonWaitingAnswers) console.log(`  WARNING: ${nonWaitingAnswers} answers other than 409 while held`);

    return {
      waiters: CMD_WAITERS,
      windowMs: CMD_WINDOW_MS,
      renewEveryMs: RENEW_EVERY_MS,
      holderAlone,
      perRenewal: { executed: round2(perRenewal.executed), scripts: round2(perRenewal.scripts) },
      queuedJoin,
      queuedWaiting,
      askCycle,
      queuedSteadyPerWaiter,
      polling: pollingResult,
      ratio: {
        executed: round2(pollingResult.perWaiter.executedPerMin / queuedSteadyPerWaiter.executedPerMin),
        scripts: round2(pollingResult.perWaiter.scriptsPerMin / queuedSteadyPerWaiter.scriptsPerMin),
      },
    };
  } finally {
    stopWaiting.abort();
    stopRenewing.abort();
    await Promise.all(waiting);
    await renewing.catch(() => {});
    await post(base(0), `/infra/locks/${key}/release`, { token: holderToken }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

interface Report {
  machine: {
    node: string;
    platform: string;
    cpuModel: string;
    cores: number;
    redis: string;
    servers: number;
    coresBusyBefore: number | null;
    /** All processes on the machine, averaged over parts 1–3. */
    coresBusyDuringHandoffs: number | null;
  };
  settings: {
    waitMs: number;
    ttlMs: number;
    holdMs: number;
    arrivalGapMs: number;
    pollMs: number;
    pollJitter: number;
    rounds: Record<Mode, Record<string, number>>;
  };
  handoff: Series[];
  ratios: Array<{ waiters: number; p50: number; p99: number }>;
  commands: CommandResult;
  http: { requests: number; maxConcurrent: number; retried: number; retriedSamples: string[] };
  durationS: number;
  warnings: string[];
}

/** JSON laid out the way biome formats it (short arrays of plain values on one line), so that lint passes. */
function toJson(value: unknown, indent = "", prefix = 0): string {
  if (value === null || typeof value !== "object") {
    return JSON.stringify(typeof value === "number" && !Number.isFinite(value) ? null : value) ?? "null";
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const items = value.map((v) => toJson(v, inner, 0));
    const flat = `[${items.join(", ")}]`;
    const plain = value.every((v) => v === null || typeof v !== "object");
    if (plain && indent.length + prefix + flat.length + 1 <= 110) return flat;
    return `[\n${items.map((s) => `${inner}${s}`).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return "{}";
  const lines = entries.map(([k, v]) => {
    const head = `${JSON.stringify(k)}: `;
    return `${inner}${head}${toJson(v, inner, head.length)}`;
  });
  return `{\n${lines.join(",\n")}\n${indent}}`;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const pad = (s: string | number, width: number) => String(s).padEnd(width);
const padL = (s: string | number, width: number) => String(s).padStart(width);

function render(r: Report): string {
  const m = r.machine;
  const c = r.commands;
  const line = (s: Series) => {
    const h = s.handoffMs;
    return (
      `  ${pad(s.mode, 8)}${padL(s.waiters, 4)} ${padL(`${s.rounds}×`, 4)} ${padL(`${s.granted}/${s.expectedGrants}`, 8)}` +
      `${padL(fmt(h.p50), 9)}${padL(fmt(h.p99), 9)}${padL(fmt(h.max), 9)}${padL(fmt(h.min), 9)}` +
      `${padL(fmt(s.handoffFromReleaseSentMs.p50), 10)}${padL(s.grantBeforeReleaseResponse, 7)}${padL(s.slowHandoffs, 7)}` +
      `${padL(s.overlaps, 6)}${padL(s.fenceViolations + s.acquiredAtViolations, 6)}`
    );
  };
  const fair = (s: Series) =>
    `  ${pad(s.mode, 8)}${padL(s.waiters, 4)}${padL(s.fairness.outOfOrderGrants, 12)}${padL(s.fairness.inversions, 12)}` +
    `${padL(s.fairness.maxDisplacement, 10)}${padL(s.fairness.queueOrderMismatches ?? "-", 10)}` +
    `${padL(s.fairness.outOfQueueOrderGrants ?? "-", 10)}` +
    `${padL(fmt(s.waitMs.min), 10)}${padL(fmt(s.waitMs.p50), 10)}${padL(fmt(s.waitMs.max), 10)}` +
    `${padL(fmt(s.requestsPerWaiter, 2), 10)}${padL(s.conflicts, 8)}`;
  const win = (w: Window) =>
    `${w.durationMs} ms, ${w.renewals} renewal(s) inside, executed ${w.executed} (${w.scripts} scripts) ` +
    Object.entries(w.byCommand)
      .map(([k, n]) => `${k}×${n}`)
      .join(" ");
  const ordered = [...r.handoff].sort((a, b) => a.waiters - b.waiters || a.mode.localeCompare(b.mode));
  const conn = r.handoff
    .filter((s) => s.connections)
    .map((s) => `${s.mode} N=${s.waiters}: ${s.connections?.map((n) => n ?? "n/a").join(" + ")}`)
    .join("; ");
  return [
    "",
    "=== LSS handoff benchmark: server-side FIFO waiting vs polling ===",
    `machine   node ${m.node}, ${m.platform}, ${m.cores} cores (${m.cpuModel}), ${m.redis}`,
    `          ${m.servers} server processes (${SERVER_ENTRY}) on one redis-server; client i → server i % 2; bench, servers`,
    `          and redis share the cores; machine cores busy before ${m.coresBusyBefore ?? "n/a"}, during parts 1–3 ${m.coresBusyDuringHandoffs ?? "n/a"}`,
    `settings  wait_ms ${r.settings.waitMs}, hold ${r.settings.holdMs} ms, arrivals ${r.settings.arrivalGapMs} ms apart, polling every ${r.settings.pollMs} ms ± ${r.settings.pollJitter * 100} %`,
    "",
    "1+3. Handoff latency, ms: grant response − previous release response (bench clock, performance.now())",
    "     'from sent' = grant − previous release SENT; 'early' = grant arrived before the release's own response;",
    "     'slow' = handoffs ≥ 500 ms; 'fence' = fencing-token / acquired_at order violations",
    "  mode       N  rnd   granted      p50      p99      max      min  from sent  early   slow  ovlp fence",
    ...ordered.map(line),
    "",
    "     ratio queued/polling   " +
      r.ratios.map((x) => `N=${x.waiters}: p50 ${fmt(x.p50, 3)}, p99 ${fmt(x.p99, 3)}`).join("   "),
    "",
    "2. Fairness: grant order vs arrival order; waits from arrival to grant (ms)",
    "     'out of order' = waiters granted at a place other than their arrival place; 'queue≠arrival' = rounds where",
    "     Redis's queue (read before the release) was not in arrival order; '≠queue' = grants at a place other than",
    "     their place in Redis's queue (a server-side FIFO violation); requests/waiter and 409s over the run",
    "  mode       N out of order  inversions  max displ queue≠arr    ≠queue  wait min  wait p50  wait max  req/waitr    409s",
    ...ordered.map(fair),
    `   connections to the servers while 100 waited (/proc/net/tcp, server side): ${conn || "n/a"}`,
    `   bench HTTP: ${r.http.requests} requests, at most ${r.http.maxConcurrent} in flight, ${r.http.retried} retried after a network error`,
    "",
    `4. Redis commands per waiter per minute while waiting (${c.waiters} waiters, key held, holder renews every ${c.renewEveryMs / 1000} s`,
    `   with ttl ${HOLDER_TTL_MS} from the bench; INFO deltas, our INFO and ZCARD subtracted; executed = total_commands_processed,`,
    "   which counts the commands inside Lua scripts too; scripts = EVALSHA/EVAL = round trips)",
    `   holder alone         ${win(c.holderAlone)}`,
    `                        → per renewal: ${fmt(c.perRenewal.executed, 2)} executed, ${fmt(c.perRenewal.scripts, 2)} scripts`,
    `   joining (once)       ${win(c.queuedJoin)}`,
    `                        → per waiter: ${fmt(c.queuedJoin.perWaiter.executed, 2)} executed, ${fmt(c.queuedJoin.perWaiter.scripts, 2)} scripts`,
    `   long-poll, waiting   ${win(c.queuedWaiting)}`,
    `                        → per waiter per minute: ${fmt(c.queuedWaiting.perWaiter.executedPerMin, 2)} executed, ${fmt(c.queuedWaiting.perWaiter.scriptsPerMin, 2)} scripts (no re-ask falls in this window)`,
    `   long-poll ask cycle  ${win(c.askCycle)}`,
    `                        → per request that ends in 409: ${fmt(c.askCycle.perAsk.executed, 2)} executed, ${fmt(c.askCycle.perAsk.scripts, 2)} scripts (${c.askCycle.asks}/${PROBE_ASKS} ended in 409)`,
    `                        acquire scripts per request: ${c.askCycle.requests.map((q) => q.scripts).join(" ")}` +
      ` (request durations ${c.askCycle.requests.map((q) => q.ms).join(" ")} ms)`,
    `   LONG-POLL steady     per waiter per minute: ${fmt(c.queuedSteadyPerWaiter.executedPerMin, 2)} executed, ${fmt(c.queuedSteadyPerWaiter.scriptsPerMin, 2)} scripts`,
    `                        (waiting + one request per ${MAX_WAIT_MS / 1000} s)`,
    `   polling (1 s ±20 %)  ${win(c.polling)}`,
    `   POLLING              per waiter per minute: ${fmt(c.polling.perWaiter.executedPerMin, 2)} executed, ${fmt(c.polling.perWaiter.scriptsPerMin, 2)} scripts (${fmt(c.polling.pollsPerWaiterPerMin, 1)} polls)`,
    `   RATIO polling/long-poll: executed ${fmt(c.ratio.executed, 1)}×, scripts ${fmt(c.ratio.scripts, 1)}×`,
    "",
    r.warnings.length ? `WARNINGS:\n${r.warnings.map((w) => `  - ${w}`).join("\n")}` : "warnings: none",
    `total ${r.durationS} s; written to ${resultsFile}`,
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------

let interrupted = false;

function startLss(redisUrl: string, adminToken: string, n: number, cleanup: Cleanup) {
  return startService(
    {
      name: `lss #${n}`,
      nodeArgs: ["--import", "tsx", SERVER_ENTRY],
      env: {
        REDIS_URL: redisUrl,
        LSS_ADMIN_TOKEN: adminToken,
        LSS_RATE_LIMIT: "off",
        LSS_MAX_WAIT_MS: String(MAX_WAIT_MS),
      },
      cwd: rootDir,
      readyPath: "/health",
    },
    cleanup,
  );
}

async function main() {
  const runStarted = now();
  const cleanup = new Cleanup();
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ninterrupted: stopping the servers and redis-server…");
    void cleanup.run().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const servers: Service[] = [];
  try {
    http.adminToken = randomBytes(16).toString("hex");
    const redisServer = await startRedisServer();
    cleanup.defer(() => redisServer.stop());
    const redis = new Redis(redisServer.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    redis.on("error", () => {}); // each command reports its own error
    await redis.connect();
    cleanup.defer(async () => redis.disconnect());
    const redisVersion = /^redis_version:(.+)$/m.exec(await redis.info("server"))?.[1]?.trim() ?? "?";
    console.log(`redis-server ${redisVersion} on ${redisServer.url}`);

    for (let i = 0; i < SERVERS; i++)
      servers.push(await startLss(redisServer.url, http.adminToken, i, cleanup));
    console.log(`servers: ${servers.map((s) => s.url).join(", ")}`);
    const coresBusyBefore = await waitForQuiet(0.5, 10_000);

    // Parts 1–3.
    const busyBefore = machineBusySeconds();
    const handoffStarted = now();
    const series: Series[] = [];
    for (const n of SIZES) {
      for (const mode of ["queued", "polling"] as const) {
        const rounds: RoundResult[] = [];
        for (let i = 0; i < ROUNDS[mode][n]; i++) {
          if (interrupted) throw new Error("interrupted");
          rounds.push(await runRound(mode, n, i, servers, redis));
        }
        const s = summarize(rounds);
        series.push(s);
        console.log(
          `  ${mode} N=${n}: ${s.rounds} round(s), ${s.granted}/${s.expectedGrants} granted, handoff p50 ${fmt(s.handoffMs.p50)} ms p99 ${fmt(s.handoffMs.p99)} ms (${fmt(s.durationMs / 1000)} s)`,
        );
      }
    }
    const busyAfter = machineBusySeconds();
    const coresBusyDuringHandoffs =
      busyBefore == null || busyAfter == null
        ? null
        : round2((busyAfter - busyBefore) / ((now() - handoffStarted) / 1000));

    // Part 4.
    console.log("Redis commands per waiter (about 2 minutes)…");
    const commands = await countCommands(servers, redis);

    const find = (mode: Mode, n: number) => series.find((s) => s.mode === mode && s.waiters === n) as Series;
    const ratios = SIZES.map((n) => ({
      waiters: n,
      p50: Math.round((find("queued", n).handoffMs.p50 / find("polling", n).handoffMs.p50) * 1000) / 1000,
      p99: Math.round((find("queued", n).handoffMs.p99 / find("polling", n).handoffMs.p99) * 1000) / 1000,
    }));

    const warnings: string[] = [];
    for (const s of series) {
      const tag = `${s.mode} N=${s.waiters}`;
      if (s.granted < s.expectedGrants)
        warnings.push(`${tag}: only ${s.granted}/${s.expectedGrants} granted`);
      if (s.overlaps) warnings.push(`${tag}: ${s.overlaps} overlapping grants`);
      if (s.fenceViolations)
        warnings.push(`${tag}: fencing tokens did not strictly increase ${s.fenceViolations}×`);
      if (s.acquiredAtViolations) warnings.push(`${tag}: acquired_at went back ${s.acquiredAtViolations}×`);
      if (s.mode === "queued" && s.slowHandoffs) {
        warnings.push(`${tag}: ${s.slowHandoffs} handoff(s) ≥ ${POLL_MS / 2} ms (max ${s.handoffMs.max} ms)`);
      }
      if (s.mode === "queued" && (s.fairness.outOfOrderGrants || s.fairness.queueOrderMismatches)) {
        warnings.push(
          `${tag}: ${s.fairness.outOfOrderGrants} grants out of arrival order, ${s.fairness.queueOrderMismatches} round(s) where Redis's queue was not in arrival order, ${s.fairness.outOfQueueOrderGrants} grants out of Redis's queue order`,
        );
      }
      if (s.mode === "queued" && s.conflicts)
        warnings.push(`${tag}: ${s.conflicts} unexpected 409s (re-asks)`);
      for (const u of s.unexpected) warnings.push(`${tag}: ${u}`);
    }
    if (commands.queuedSteadyPerWaiter.executedPerMin > 12) {
      warnings.push(
        `long-polling waiters cost ${commands.queuedSteadyPerWaiter.executedPerMin} commands per waiter per minute (> 12)`,
      );
    }
    if (commands.queuedWaiting.perWaiter.executedPerMin > 0.5) {
      warnings.push(
        `long-polling waiters sent commands while merely waiting: ${commands.queuedWaiting.perWaiter.executedPerMin} per waiter per minute`,
      );
    }
    if (commands.queuedWaiting.nonWaitingAnswers) {
      warnings.push(
        `${commands.queuedWaiting.nonWaitingAnswers} answers other than 409 while the key was held`,
      );
    }
    for (const w of [commands.holderAlone, commands.queuedWaiting, commands.polling]) {
      if (w.straddled) warnings.push(`${w.label}: a renewal straddled the window edge`);
      if (w.renewals !== 1)
        warnings.push(`${w.label}: ${w.renewals} renewals inside the window (expected 1)`);
    }
    if (http.retried.length) warnings.push(`${http.retried.length} requests retried after a network error`);
    if ((coresBusyDuringHandoffs ?? 0) > availableParallelism() * 0.9) {
      warnings.push(`the machine was saturated during parts 1–3 (${coresBusyDuringHandoffs} cores busy)`);
    }

    const report: Report = {
      machine: {
        node: process.version,
        platform: `${process.platform}/${process.arch}`,
        cpuModel: cpus()[0]?.model ?? "?",
        cores: availableParallelism(),
        redis: `redis-server ${redisVersion}`,
        servers: SERVERS,
        coresBusyBefore,
        coresBusyDuringHandoffs,
      },
      settings: {
        waitMs: MAX_WAIT_MS,
        ttlMs: TTL_MS,
        holdMs: HOLD_MS,
        arrivalGapMs: ARRIVAL_GAP_MS,
        pollMs: POLL_MS,
        pollJitter: POLL_JITTER,
        rounds: ROUNDS,
      },
      handoff: series,
      ratios,
      commands,
      http: {
        requests: http.requests,
        maxConcurrent: http.maxInflight,
        retried: http.retried.length,
        retriedSamples: http.retried.slice(0, 5),
      },
      durationS: Math.round((now() - runStarted) / 1000),
      warnings,
    };
    writeFileSync(resultsFile, `${toJson(report)}\n`);
    console.log(render(report));
  } catch (err) {
    for (const s of servers) console.error(`--- ${s.name} output ---\n${s.output()}`);
    throw err;
  } finally {
    await cleanup.run();
  }
}

runBench(main, () => interrupted);
