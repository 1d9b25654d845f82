/**
 * Contended load through real server processes, for the chaos suites: clients contend for a few
 * keys until a number of grants, each acquiring (waiting in the queue), holding a moment and
 * releasing, every failure retried with the same token. Each holder records when it got the key
 * and when it let go, with its fencing token, so that a history can be checked: no two holders of
 * a key at once, fencing tokens rising with every grant of a key, none handed out twice.
 */
import { performance } from "node:perf_hooks";
import { pathTo } from "../../src/protocol/paths.js";
import { ADMIN_TOKEN } from "./app.js";
import { sleep } from "./processes.js";
import type { ServerProcess } from "./server-process.js";

export interface Grant {
  key: string;
  client: number;
  fence: number;
  /** When the holder heard it was granted, and when it asked to release (performance.now()). */
  start: number;
  end: number;
}

type Outcome = { status: number; body: Record<string, unknown> | null } | { error: string };

export interface LoadOptions {
  /** The servers to spread calls over, as they are now (a disruption may change the list). */
  servers: () => ServerProcess[];
  grants: number;
  clients: number;
  keys: number;
  ttlMs: number;
  /** Runs beside the load; `granted()` says how many grants there have been so far. */
  disrupt(granted: () => number): Promise<void>;
  /** After this long without a grant the load gives up (and `stalled` says what it last saw). */
  stallMs?: number;
  /**
   * Stop at this time (performance.now()) even short of `grants`: a slow machine still checks
   * safety on what it did. The disruption is always waited for.
   */
  until?: () => number;
}

export interface LoadResult {
  grants: Grant[];
  /** Set when the load gave up: the last answers per client (status and error code). */
  stalled: string[] | null;
  /** When each 503 came. */
  answers503: number[];
  networkErrors: number;
  elapsedMs: number;
}

export const now = () => performance.now();

export async function contendedLoad(opts: LoadOptions): Promise<LoadResult> {
  const grants: Grant[] = [];
  const answers503: number[] = [];
  let networkErrors = 0;
  let stop = false;
  let stalled: string[] | null = null;
  const lastAnswer: string[] = Array.from({ length: opts.clients }, () => "");

  const call = async (path: string, body: unknown, client: number, attempt: number): Promise<Outcome> => {
    const live = opts.servers();
    const server = live[(client + attempt) % live.length] as ServerProcess;
    try {
      const res = await fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      if (res.status === 503) answers503.push(now());
      lastAnswer[client] = `${path} ${res.status} ${text.slice(0, 160)}`;
      return { status: res.status, body: text ? JSON.parse(text) : null };
    } catch (err) {
      networkErrors++;
      lastAnswer[client] = `${path} ${(err as Error).message}`;
      return { error: (err as Error).message };
    }
  };

  const acquire = async (key: string, token: string, client: number): Promise<number> => {
    for (let attempt = 0; !stop; attempt++) {
      const body = { ttl_ms: opts.ttlMs, token, wait_ms: 2000 };
      const r = await call(pathTo("acquire", { key }), body, client, attempt);
      if ("status" in r && r.status === 200) return r.body?.fencing_token as number;
      if ("error" in r || r.status >= 500) await sleep(20);
    }
    return 0;
  };

  const clientLoop = async (client: number) => {
    const key = `chaos-${client % opts.keys}`;
    for (let round = 0; !stop; round++) {
      const token = `c${client}-r${round}`;
      const fence = await acquire(key, token, client);
      if (!fence) return;
      const start = now();
      await sleep(Math.random() * 2);
      grants.push({ key, client, fence, start, end: now() });
      if (grants.length >= opts.grants || now() > (opts.until?.() ?? Number.POSITIVE_INFINITY)) stop = true;
      // Release; a failure is retried with the same token until the server answers.
      for (let attempt = 0; ; attempt++) {
        const r = await call(pathTo("release", { key }), { token }, client, attempt);
        if ("status" in r && (r.status === 200 || r.status === 409)) break;
        await sleep(20);
      }
    }
  };

  const started = now();
  const watchdog = setInterval(() => {
    const last = grants.at(-1)?.start ?? started;
    if (now() - last < (opts.stallMs ?? 60_000)) return;
    stalled = [...lastAnswer];
    stop = true;
  }, 1000);
  try {
    const disruption = opts.disrupt(() => grants.length);
    await Promise.all([...Array.from({ length: opts.clients }, (_, i) => clientLoop(i)), disruption]);
  } finally {
    clearInterval(watchdog);
  }
  return { grants, stalled, answers503, networkErrors, elapsedMs: now() - started };
}

/** Two holders of a key at once, a grant of a key with a token no higher than the one before, a token given twice. */
export function checkHistory(grants: Grant[]) {
  let overlaps = 0;
  let fenceInversions = 0;
  for (const key of new Set(grants.map((g) => g.key))) {
    const history = grants.filter((g) => g.key === key).sort((a, b) => a.start - b.start);
    for (let i = 1; i < history.length; i++) {
      const [prev, cur] = [history[i - 1] as Grant, history[i] as Grant];
      if (cur.start < prev.end) overlaps++;
      if (cur.fence <= prev.fence) fenceInversions++;
    }
  }
  const fences = grants.map((g) => g.fence);
  return { overlaps, fenceInversions, duplicateFences: fences.length - new Set(fences).size };
}

/** The longest stretch without a grant that began after `from` (how long service was gone). */
export function longestGap(grants: Grant[], from: number): number {
  const starts = grants
    .map((g) => g.start)
    .filter((t) => t >= from)
    .sort((a, b) => a - b);
  let gap = 0;
  let last = from;
  for (const t of starts) {
    gap = Math.max(gap, t - last);
    last = t;
  }
  return Math.round(gap);
}
