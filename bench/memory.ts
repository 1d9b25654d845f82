/**
 * `npm run bench:memory`: what a held lock costs in Redis memory, with the real store
 * (createRedisStore over the TCP transport) on a fresh redis-server of its own per scenario.
 *
 *   held              10,000 keys acquired (exclusive, ttl 10 min) and held, as an action holds them:
 *                     its default holder id, a reason, an actor; one namespace.
 *   held + released   the same keys acquired and released once (a history of 2 events each).
 *   held, 100 keys to a namespace
 *                     the same 10,000 held locks in 100 namespaces (teams): each namespace's sorted
 *                     sets stay within zset-max-listpack-entries and keep the compact encoding.
 *
 * For each: bytes per lock from `INFO memory` (used_memory after − before, ÷ 10,000), the same
 * broken down by the kind of Redis key the store writes (MEMORY USAGE of every key of the kind,
 * SAMPLES 0, summed ÷ 10,000; and the average key), each kind's OBJECT ENCODING, and "lock state
 * only": without the history lists, both as used_memory less their MEMORY USAGE and as measured
 * after deleting them. Prints a table and writes bench/memory-results.json. Takes a few seconds.
 *
 * Knobs (env): BENCH_MEMORY_LOCKS (10000; the store's default allows 10,000 per namespace).
 */
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { unpackRecord } from "../server/stores/record.js";
import { redisKeys } from "../server/stores/redis/keys.js";
import { createRedisStore } from "../server/stores/redis/store.js";
import { connectTcpRedis, tcpEvents, tcpTransport } from "../server/stores/tcp.js";
import type { Actor, LockRef, LockStore } from "../server/stores/types.js";
import { benchDir, benchMain, type Cleanup, machineInfo, round, sleep, startBenchRedis } from "./lib.js";

const LOCKS = Number(process.env.BENCH_MEMORY_LOCKS) || 10_000;
const PREFIX = "lss"; // the server's default LSS_KEY_PREFIX
const NAMESPACE = "default";
const TTL_MS = 10 * 60_000;
/** The action's default holder id (src/action/inputs.ts defaultHolder) for a typical run. */
const HOLDER = "acme/webapp · E2E (job e2e) · https://github.com/acme/webapp/actions/runs/1234567890";
const REASON = "E2E tests against staging";
/** Who asks, as an OIDC-authenticated job is recorded (server/auth/oidc.ts). */
const ACTOR: Actor = { id: "oidc:123456789", name: "acme/webapp" };
const IN_FLIGHT = 64;
const TIMEOUT_MS = 10_000;
const resultsFile = join(benchDir, "memory-results.json");

const keys = redisKeys(PREFIX);
/** Keys per namespace in the "many namespaces" scenario: within zset-max-listpack-entries (128). */
const TEAM_SIZE = 100;
/** The i-th lock: all in one namespace, or TEAM_SIZE to a namespace. */
const refOf = (i: number, perNamespace?: number): LockRef => ({
  namespace: perNamespace ? `team-${Math.floor(i / perNamespace)}` : NAMESPACE,
  key: `webapp-staging-${i}`,
});
const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

/** The kinds of Redis key the store writes for held locks (redis/keys.ts), by the name's third part. */
const KINDS: Record<string, string> = {
  lock: "lock record (string)",
  history: "history (list)",
  index: "namespace index (zset)",
  names: "namespace names (zset)",
  fence: "fencing counter (string)",
};
// prefix:{namespace}:kind[:key]
const kindOf = (key: string) => key.split(":")[2] ?? "?";

interface KindResult {
  kind: string;
  what: string;
  keys: number;
  /** OBJECT ENCODING → how many keys of the kind have it. */
  encodings: Record<string, number>;
  /** MEMORY USAGE (SAMPLES 0) summed over every key of the kind. */
  bytes: number;
  bytesPerKey: number;
  /** bytes ÷ locks. */
  bytesPerLock: number;
}

interface ScenarioResult {
  scenario: string;
  locks: number;
  historyEventsPerKey: Record<string, number>;
  usedMemory: { before: number; after: number; delta: number };
  /** used_memory delta ÷ locks: everything, the keyspace's tables and expiries included. */
  bytesPerLock: number;
  kinds: KindResult[];
  /** Σ MEMORY USAGE ÷ locks. */
  keysBytesPerLock: number;
  /** used_memory delta − Σ MEMORY USAGE, ÷ locks: the expiry table, table growth, allocator rounding. */
  unaccountedPerLock: number;
  lockStateOnly: {
    /** (used_memory delta − the history lists' MEMORY USAGE) ÷ locks. */
    bytesPerLock: number;
    /** used_memory after deleting the history lists, − before, ÷ locks. */
    measuredBytesPerLock: number;
  };
  /** A lock record's fields after the scenario (one sample; unset ones left out). */
  sampleRecord: Record<string, string>;
}

async function usedMemory(redis: Redis): Promise<number> {
  // Client buffers count in used_memory: let the last replies drain first.
  await sleep(200);
  const info = await redis.info("memory");
  const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
  if (!Number.isFinite(used)) throw new Error("used_memory missing from INFO memory");
  return used;
}

/** Runs op(0 … count − 1) with at most IN_FLIGHT at once. */
async function each(count: number, op: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < count) await op(next++);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

/** Every key in the database (SCAN). */
async function allKeys(redis: Redis): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [nextCursor, batch] = await redis.scan(cursor, "COUNT", 1000);
    found.push(...batch);
    cursor = nextCursor;
  } while (cursor !== "0");
  return found;
}

/** One reply per key: `command` over keys in pipelines of 1,000. */
async function perKey<T>(
  redis: Redis,
  names: string[],
  command: (p: ReturnType<Redis["pipeline"]>, key: string) => void,
) {
  const out: T[] = [];
  for (let i = 0; i < names.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const key of names.slice(i, i + 1000)) command(pipeline, key);
    for (const [err, value] of (await pipeline.exec()) ?? []) {
      if (err) throw err;
      out.push(value as T);
    }
  }
  return out;
}

function openStore(url: string): LockStore {
  const client = connectTcpRedis({ mode: "single", url }, TIMEOUT_MS);
  return createRedisStore(tcpTransport(client, TIMEOUT_MS), PREFIX, tcpEvents(client));
}

async function scenario(
  name: string,
  release: boolean,
  cleanup: Cleanup,
  perNamespace?: number,
): Promise<ScenarioResult> {
  console.log(`${name}: ${LOCKS} locks…`);
  const { server, client: redis } = await startBenchRedis(cleanup);
  const store = openStore(server.url);
  try {
    const tokens = Array.from({ length: LOCKS }, () => sha256(randomBytes(16).toString("hex")));
    const acquire = async (ref: LockRef, tokenHash: string) => {
      const r = await store.acquire(ref, {
        tokenHash,
        holderId: HOLDER,
        reason: REASON,
        ttlMs: TTL_MS,
        registeredOnly: false,
        queueWindowMs: null,
        mode: "exclusive",
        limit: 1,
        actor: ACTOR,
      });
      if (r.outcome !== "granted") throw new Error(`acquire ${ref.key} → ${r.outcome}`);
    };
    const releaseOf = async (ref: LockRef, tokenHash: string) => {
      const r = await store.release(ref, { tokenHash, registeredOnly: false, actor: ACTOR });
      if (r.outcome !== "released") throw new Error(`release ${ref.key} → ${r.outcome}`);
    };

    // Warm-up in another namespace: loads the scripts (their cache counts in used_memory) and the
    // fencing counter; then its keys go, so that only the counter is left before the baseline.
    const warm: LockRef = { namespace: "warmup", key: "warm" };
    await acquire(warm, sha256("warm"));
    await releaseOf(warm, sha256("warm"));
    await redis.del(keys.lock(warm), keys.history(warm), keys.index("warmup"), keys.names("warmup"));
    const before = await usedMemory(redis);

    await each(LOCKS, (i) => acquire(refOf(i, perNamespace), tokens[i] as string));
    if (release) await each(LOCKS, (i) => releaseOf(refOf(i, perNamespace), tokens[i] as string));
    const after = await usedMemory(redis);

    const names = await allKeys(redis);
    const byKind = new Map<string, string[]>();
    for (const key of names) {
      const list = byKind.get(kindOf(key)) ?? [];
      list.push(key);
      byKind.set(kindOf(key), list);
    }
    const kinds: KindResult[] = [];
    for (const [kind, list] of [...byKind].sort(
      (a, b) => Object.keys(KINDS).indexOf(a[0]) - Object.keys(KINDS).indexOf(b[0]),
    )) {
      const usage = await perKey<number>(redis, list, (p, key) => p.memory("USAGE", key, "SAMPLES", 0));
      const encodings: Record<string, number> = {};
      for (const e of await perKey<string>(redis, list, (p, key) => p.object("ENCODING", key))) {
        encodings[e] = (encodings[e] ?? 0) + 1;
      }
      const bytes = usage.reduce((a, b) => a + Number(b), 0);
      kinds.push({
        kind,
        what: KINDS[kind] ?? "(unexpected)",
        keys: list.length,
        encodings,
        bytes,
        bytesPerKey: round(bytes / list.length, 1),
        bytesPerLock: round(bytes / LOCKS, 1),
      });
    }
    const historyEventsPerKey: Record<string, number> = {};
    for (const n of await perKey<number>(redis, byKind.get("history") ?? [], (p, key) => p.llen(key))) {
      historyEventsPerKey[n] = (historyEventsPerKey[n] ?? 0) + 1;
    }
    const sampleRecord = Object.fromEntries(
      Object.entries(unpackRecord(await redis.get(keys.lock(refOf(0, perNamespace))))).filter(
        ([, v]) => v != null,
      ),
    ) as Record<string, string>;

    const delta = after - before;
    const keysBytes = kinds.reduce((a, k) => a + k.bytes, 0);
    const historyBytes = kinds.find((k) => k.kind === "history")?.bytes ?? 0;
    // Measured: the same database without its history lists.
    const histories = byKind.get("history") ?? [];
    for (let i = 0; i < histories.length; i += 1000) await redis.del(...histories.slice(i, i + 1000));
    const withoutHistory = await usedMemory(redis);

    return {
      scenario: name,
      locks: LOCKS,
      historyEventsPerKey,
      usedMemory: { before, after, delta },
      bytesPerLock: round(delta / LOCKS, 1),
      kinds,
      keysBytesPerLock: round(keysBytes / LOCKS, 1),
      unaccountedPerLock: round((delta - keysBytes) / LOCKS, 1),
      lockStateOnly: {
        bytesPerLock: round((delta - historyBytes) / LOCKS, 1),
        measuredBytesPerLock: round((withoutHistory - before) / LOCKS, 1),
      },
      sampleRecord,
    };
  } finally {
    await store.close();
    await server.stop();
  }
}

const pad = (s: string | number, width: number) => String(s).padEnd(width);
const padL = (s: string | number, width: number) => String(s).padStart(width);

function render(r: ScenarioResult): string[] {
  const events = Object.entries(r.historyEventsPerKey)
    .map(([n, keys]) => `${keys} with ${n}`)
    .join(", ");
  const encodings = (k: KindResult) =>
    Object.entries(k.encodings)
      .map(([e, n]) => (n === k.keys ? e : `${e}×${n}`))
      .join(" ");
  const total = (label: string, bytes: number) => `  ${pad(label, 69)}${padL(bytes.toFixed(1), 10)}`;
  return [
    `${r.scenario} (${r.locks} locks; history events per key: ${events || "none"})`,
    `  ${pad("Redis key", 36)}${padL("keys", 7)}  ${pad("encoding", 12)}${padL("B/key", 12)}${padL("B/lock", 10)}`,
    ...r.kinds.map(
      (k) =>
        `  ${pad(`${k.kind}: ${k.what}`, 36)}${padL(k.keys, 7)}  ${pad(encodings(k), 12)}` +
        `${padL(k.bytesPerKey.toFixed(1), 12)}${padL(k.bytesPerLock.toFixed(1), 10)}`,
    ),
    total("Σ MEMORY USAGE", r.keysBytesPerLock),
    total("unaccounted (expiry table, keyspace table growth, rounding)", r.unaccountedPerLock),
    total("TOTAL: used_memory delta ÷ locks", r.bytesPerLock),
    total("lock state only: delta − the histories' MEMORY USAGE", r.lockStateOnly.bytesPerLock),
    total("lock state only: measured after deleting the histories", r.lockStateOnly.measuredBytesPerLock),
    `  a record: ${JSON.stringify(r.sampleRecord)}`,
  ];
}

benchMain("redis-server", async (cleanup) => {
  const held = await scenario("held", false, cleanup);
  const released = await scenario("held + released", true, cleanup);
  const teams = await scenario(`held, ${TEAM_SIZE} keys to a namespace`, false, cleanup, TEAM_SIZE);
  // The settings that decide the encodings, from a redis-server like the ones measured.
  const { server, client, version } = await startBenchRedis(cleanup);
  const config = Object.fromEntries(
    await Promise.all(
      [
        "hash-max-listpack-entries",
        "hash-max-listpack-value",
        "zset-max-listpack-entries",
        "list-max-listpack-size",
      ].map(async (name) => [name, ((await client.config("GET", name)) as string[])[1] ?? "?"]),
    ),
  );
  await server.stop();

  const report = {
    machine: { ...machineInfo(), redis: `redis-server ${version}` },
    config,
    settings: {
      locks: LOCKS,
      prefix: PREFIX,
      namespace: NAMESPACE,
      ttlMs: TTL_MS,
      holder: HOLDER,
      reason: REASON,
      actor: ACTOR,
      key: refOf(0).key,
    },
    scenarios: [held, released, teams],
  };
  writeFileSync(resultsFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    [
      "",
      "=== LSS memory benchmark: Redis bytes per held lock (createRedisStore over TCP) ===",
      `machine   node ${report.machine.node}, ${report.machine.redis}; ${Object.entries(config)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
      `locks     exclusive, ttl ${TTL_MS / 60_000} min, keys like "${refOf(0).key}", holder "${HOLDER}" (${HOLDER.length} chars),`,
      `          reason "${REASON}", actor ${JSON.stringify(ACTOR)}`,
      "B/key: MEMORY USAGE (SAMPLES 0) averaged over every key of the kind; B/lock: summed over them ÷ locks",
      "",
      ...render(held),
      "",
      ...render(released),
      "",
      ...render(teams),
      "",
      `written to ${resultsFile}`,
      "",
    ].join("\n"),
  );
});
