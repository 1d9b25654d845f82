/**
 * The load the benchmarks put on a lock server: autocannon, one acquire → release sequence per
 * connection, with latency per request and CPU per process.
 */
import autocannon from "autocannon";
import {
  cpuSeconds,
  interrupted,
  machineBusySeconds,
  ownCpuSeconds,
  percentile,
  round,
  waitForQuiet,
  whenInterrupted,
} from "./lib.js";

/** How long each acquired lease may live: longer than any pair takes. */
const TTL_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// Load: autocannon, one acquire → release sequence per connection
// ---------------------------------------------------------------------------------------------

export interface Latency {
  p50: number;
  p99: number;
  count: number;
}

export interface LoadResult {
  target: string;
  connections: number;
  durationS: number;
  pairs: number;
  pairsPerSec: number;
  requestsPerSec: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  /** Sequences cut short because an acquire failed (no token to release). */
  skippedReleases: number;
  latencyMs: { all: Latency; acquire: Latency; release: Latency };
  /** CPU seconds per 1000 pairs, per process (null where /proc is unavailable). */
  cpuPer1000Pairs: Record<string, number | null>;
  /** Cores busy on average during the run, per process. */
  coresBusy: Record<string, number | null>;
  /** Cores that processes other than ours kept busy during the run: noise (null without /proc). */
  otherProcessesCores: number | null;
  /** Cores the whole machine kept busy in the second before the run started. */
  machineCoresBusyBefore: number | null;
}

type Kind = "acquire" | "release";
type PairContext = { key?: string; token?: string };

/**
 * The per-connection request sequence. Keys come from a pool: an acquire takes a key nobody holds
 * (or mints a new one), a successful release gives it back. Each connection has at most one pair in
 * flight, so at most `connections` keys exist and no two acquires ever meet on a key (no 409s).
 * autocannon resets the context at the start of each sequence, so the key travels in it.
 */
function pairSequence(keyPrefix: string, seen: { last: Kind; pairs: number }): autocannon.Request[] {
  const pool: string[] = [];
  let minted = 0;
  return [
    {
      method: "POST",
      body: JSON.stringify({ ttl_ms: TTL_MS }),
      setupRequest: (req, context) => {
        const ctx = context as PairContext;
        ctx.key = pool.pop() ?? `${keyPrefix}-${minted++}`;
        return { ...req, path: `/infra/locks/${ctx.key}/acquire` };
      },
      onResponse: (status, body, context) => {
        seen.last = "acquire";
        if (status === 200) (context as PairContext).token = (JSON.parse(body) as { token: string }).token;
      },
    },
    {
      method: "POST",
      setupRequest: (req, context) => {
        const ctx = context as PairContext;
        // Falsy = skip the rest of this sequence (autocannon counts it in `resets`).
        if (!ctx.token) return null as unknown as autocannon.Request;
        return {
          ...req,
          path: `/infra/locks/${ctx.key}/release`,
          body: JSON.stringify({ token: ctx.token }),
        };
      },
      onResponse: (status, _body, context) => {
        seen.last = "release";
        const ctx = context as PairContext;
        if (status !== 200 || !ctx.key) return; // a key in an unknown state is not reused
        seen.pairs++;
        pool.push(ctx.key);
      },
    },
  ];
}

const latencyOf = (values: number[]): Latency => ({
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  count: values.length,
});

/** The autocannon run in progress, so that Ctrl-C can stop it before stopping the servers. */
let activeLoad: autocannon.Instance | null = null;
whenInterrupted(() => activeLoad?.stop());

export async function load(
  target: string,
  baseUrl: string,
  opts: {
    durationS: number;
    connections: number;
    keyPrefix: string;
    adminToken: string;
    watch: Record<string, () => number | undefined>;
  },
): Promise<LoadResult> {
  const seen = { last: "acquire" as Kind, pairs: 0 };
  const times: Record<Kind, number[]> = { acquire: [], release: [] };
  // Someone else's burst would skew the run: give it up to 20 s to pass.
  const machineCoresBusyBefore = await waitForQuiet(0.3, 20_000);
  const pids = Object.fromEntries(Object.entries(opts.watch).map(([name, pid]) => [name, pid()]));
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const machineBefore = machineBusySeconds();
  const ownBefore = ownCpuSeconds();

  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: baseUrl,
        connections: opts.connections,
        duration: opts.durationS,
        headers: { authorization: `Bearer ${opts.adminToken}`, "content-type": "application/json" },
        requests: pairSequence(opts.keyPrefix, seen),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    // autocannon calls the request's onResponse (which sets seen.last) right before this event.
    instance.on("response", (_client, status, _bytes, responseTime) => {
      if (status >= 200 && status < 300) times[seen.last].push(responseTime);
    });
    activeLoad = instance;
  }).finally(() => {
    activeLoad = null;
  });
  if (interrupted()) throw new Error("interrupted");

  const machineAfter = machineBusySeconds();
  const ownCpu = ownCpuSeconds() - ownBefore;
  const cpu: Record<string, number | null> = { "load generator (bench)": ownCpu };
  for (const [name, pid] of Object.entries(pids)) {
    const before = cpuBefore[name];
    const after = cpuSeconds(pid);
    cpu[name] = before == null || after == null ? null : after - before;
  }
  const ours = Object.values(cpu);
  const otherProcessesCores =
    machineBefore == null || machineAfter == null || ours.some((s) => s == null)
      ? null
      : round(
          Math.max(0, machineAfter - machineBefore - ours.reduce<number>((a, b) => a + (b ?? 0), 0)) /
            result.duration,
          2,
        );
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats ?? {}).map(([code, { count }]) => [code, count ?? 0]),
  );
  return {
    target,
    connections: opts.connections,
    durationS: result.duration,
    pairs: seen.pairs,
    pairsPerSec: round(seen.pairs / result.duration, 1),
    requestsPerSec: round(result.requests.total / result.duration, 1),
    non2xx: result.non2xx,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    skippedReleases: result.resets,
    latencyMs: {
      all: {
        p50: result.latency.p50,
        p99: result.latency.p99,
        count: times.acquire.length + times.release.length,
      },
      acquire: latencyOf(times.acquire),
      release: latencyOf(times.release),
    },
    cpuPer1000Pairs: Object.fromEntries(
      Object.entries(cpu).map(([name, s]) => [name, s == null ? null : round((s / seen.pairs) * 1000, 3)]),
    ),
    coresBusy: Object.fromEntries(
      Object.entries(cpu).map(([name, s]) => [name, s == null ? null : round(s / result.duration, 2)]),
    ),
    otherProcessesCores,
    machineCoresBusyBefore,
  };
}
