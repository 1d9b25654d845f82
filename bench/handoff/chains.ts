/**
 * Parts 1–3: chains of handoffs. A holder takes a key, N waiters arrive in a known order and wait
 * (long-poll, or poll every second); the holder releases and each waiter, once granted, holds
 * briefly and releases. Handoff latency, fairness, overlaps and fencing-token order.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { queueMember } from "../../server/stores/types.js";
import { percentile, round, type Service, sleep } from "../lib.js";
import {
  type Client,
  connectionsTo,
  newClient,
  newToken,
  now,
  post,
  type Reply,
  sleepUntil,
  waitFor,
} from "./client.js";
import {
  ARRIVAL_GAP_MS,
  HOLD_MS,
  MAX_ASKS,
  MAX_POLLS,
  MAX_WAIT_MS,
  type Mode,
  POLL_JITTER,
  POLL_MS,
  queueKeyOf,
  ROUND_LIMIT_MS,
  SERVERS,
  TTL_MS,
} from "./settings.js";

const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

interface Chain {
  /** Clients currently holding by the bench's account: > 1 at a grant is an overlap. */
  holding: number;
  overlaps: number;
}

export interface RoundResult {
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

export async function runRound(
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
      const queueKey = queueKeyOf(key);
      const joined = await waitFor(async () => (await redis.zcard(queueKey)) >= n, 5_000);
      if (!joined) unexpected.push(`only ${await redis.zcard(queueKey)} of ${n} waiters queued after 5 s`);
      // Members as the store names them: the mode, then the token's hash.
      const byMember = new Map(clients.map((c) => [queueMember("exclusive", sha256(c.token)), c.index]));
      const order = (await redis.zrange(queueKey, 0, -1)).map((m) => byMember.get(m) ?? -1);
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

export interface Stats {
  p50: number;
  p99: number;
  max: number;
  min: number;
  count: number;
}

export const statsOf = (values: number[]): Stats => ({
  p50: round(percentile(values, 50)),
  p99: round(percentile(values, 99)),
  max: round(values.length ? Math.max(...values) : Number.NaN),
  min: round(values.length ? Math.min(...values) : Number.NaN),
  count: values.length,
});

export interface Series {
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

export function summarize(rounds: RoundResult[]): Series {
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
    requestsPerWaiter: round(sum((r) => r.requests) / (first.waiters * rounds.length)),
    conflicts: sum((r) => r.conflicts),
    connections: rounds.find((r) => r.connections)?.connections ?? null,
    durationMs: Math.round(sum((r) => r.durationMs)),
    unexpected: all((r) => r.unexpected).slice(0, 20),
  };
}
