/**
 * Several server processes on one redis-server (two over TCP, one through @upstash/redis), many
 * concurrent clients: never two holders at once, fencing tokens strictly increasing in grant order.
 * Also: a lease outlives the server process that granted it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import { ADMIN_TOKEN } from "./support/app.js";
import { sleep } from "./support/processes.js";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";
import { startUpstashBridge, type UpstashBridge } from "./support/upstash-bridge.js";

let redis: RedisServerHandle;
let bridge: UpstashBridge;
const servers: ServerProcess[] = [];

const common = { LSS_ADMIN_TOKEN: ADMIN_TOKEN, LSS_RATE_LIMIT: "off", LSS_KEY_PREFIX: "cluster" };

beforeAll(async () => {
  redis = await startRedisServer();
  bridge = await startUpstashBridge({ redisUrl: redis.url });
  servers.push(
    ...(await Promise.all([
      startServerProcess({ ...common, REDIS_URL: redis.url }),
      startServerProcess({ ...common, REDIS_URL: redis.url }),
      startServerProcess({
        ...common,
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: bridge.token,
      }),
    ])),
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.kill()));
  await bridge?.close();
  await redis?.stop();
});

const post = async (base: string, path: string, body: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: inspected field by field
  return { status: res.status, body: (await res.json()) as any };
};

describe("many clients, several servers, one Redis", () => {
  it("never grants a key to two holders at once, and fencing tokens only go up", async () => {
    const key = "contended";
    let inside = 0;
    let maxInside = 0;
    const grantOrder: number[] = [];
    const statuses = new Map<number, number>();
    const deadline = Date.now() + 4000;

    const worker = async (i: number) => {
      const base = servers[i % servers.length]!.url;
      while (Date.now() < deadline) {
        const got = await post(base, pathTo("acquire", { key }), { ttl_ms: 5000, holder_id: `w${i}` });
        statuses.set(got.status, (statuses.get(got.status) ?? 0) + 1);
        if (got.status !== 200) {
          await sleep(Math.random() * 5);
          continue;
        }
        inside++;
        maxInside = Math.max(maxInside, inside);
        grantOrder.push(got.body.fencing_token);
        await sleep(Math.random() * 3);
        // Leave the critical section before releasing: the next grant can only follow the release.
        inside--;
        const released = await post(base, pathTo("release", { key }), { token: got.body.token });
        expect(released.status).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: 24 }, (_, i) => worker(i)));

    expect(maxInside).toBe(1);
    expect(grantOrder.length).toBeGreaterThan(50);
    for (let i = 1; i < grantOrder.length; i++)
      expect(grantOrder[i]).toBeGreaterThan(grantOrder[i - 1] as number);
    // Only grants and conflicts: no 5xx under contention.
    expect([...statuses.keys()].sort()).toEqual([200, 409]);
  }, 30_000);

  it("agrees across servers and transports on who holds a key", async () => {
    const [a, b, c] = servers.map((s) => s.url) as [string, string, string];
    const granted = await post(a, pathTo("acquire", { key: "agree" }), { ttl_ms: 10_000, holder_id: "on-a" });
    expect(granted.status).toBe(200);
    const conflict = await post(c, pathTo("acquire", { key: "agree" }), { ttl_ms: 10_000 });
    expect(conflict.status).toBe(409);
    expect(conflict.body.holder_id).toBe("on-a");
    expect((await post(b, pathTo("release", { key: "agree" }), { token: granted.body.token })).status).toBe(
      200,
    );
    expect((await post(c, pathTo("acquire", { key: "agree" }), { ttl_ms: 10_000 })).status).toBe(200);
  });
});

/**
 * A history checker for one key held in both modes: every hold is recorded as it is entered and
 * left, in this process's order. Entering checks the rules against who is inside at that moment.
 */
const holdLedger = (limit: number) => {
  const inside = { exclusive: 0, shared: 0 };
  const broken: string[] = [];
  let mostShared = 0;
  return {
    enter(mode: "exclusive" | "shared", who: string) {
      if (inside.exclusive > 0) broken.push(`${who} (${mode}) entered while an exclusive hold was inside`);
      if (mode === "exclusive" && inside.shared > 0)
        broken.push(`${who} (exclusive) entered beside ${inside.shared} shared holds`);
      inside[mode]++;
      if (inside.shared > limit) broken.push(`${inside.shared} shared holds at once, limit ${limit}`);
      mostShared = Math.max(mostShared, inside.shared);
    },
    leave(mode: "exclusive" | "shared") {
      inside[mode]--;
    },
    get broken() {
      return broken;
    },
    get mostShared() {
      return mostShared;
    },
  };
};

describe("shared holds and pools, several servers, one Redis", () => {
  it("never lets exclusive overlap anything, nor more than limit shared at once", async () => {
    const key = "mixed";
    const limit = 3;
    const ledger = holdLedger(limit);
    const fences: number[] = [];
    const granted = { exclusive: 0, shared: 0 };
    const statuses = new Map<number, number>();
    const deadline = Date.now() + 4000;

    const worker = async (i: number) => {
      const base = servers[i % servers.length]!.url;
      // One in four workers writes (deploys); the rest read (E2E runs).
      const mode = i % 4 === 0 ? "exclusive" : "shared";
      const body = mode === "shared" ? { mode, limit } : {};
      // A waiter keeps its token (its place in the queue) until it is granted, as clients do.
      let token = crypto.randomUUID();
      while (Date.now() < deadline) {
        const got = await post(base, pathTo("acquire", { key }), {
          ttl_ms: 5000,
          holder_id: `w${i}`,
          wait_ms: 300,
          token,
          ...body,
        });
        statuses.set(got.status, (statuses.get(got.status) ?? 0) + 1);
        if (got.status !== 200) continue;
        token = crypto.randomUUID();
        ledger.enter(mode, `w${i}`);
        granted[mode]++;
        fences.push(got.body.fencing_token);
        await sleep(Math.random() * 4);
        ledger.leave(mode);
        const released = await post(base, pathTo("release", { key }), { token: got.body.token });
        expect(released.status).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => worker(i)));

    expect(ledger.broken).toEqual([]);
    // The test saw both modes and real sharing, or it proved nothing.
    expect(granted.exclusive).toBeGreaterThan(5);
    expect(granted.shared).toBeGreaterThan(20);
    expect(ledger.mostShared).toBeGreaterThan(1);
    // Every grant (shared ones too) has its own fencing token.
    expect(new Set(fences).size).toBe(fences.length);
    expect([...statuses.keys()].every((s) => s === 200 || s === 409)).toBe(true);
  }, 30_000);

  it("hands each key of a pool to one holder at a time, and every contender gets one", async () => {
    const keys = ["qa-1", "qa-2", "qa-3"];
    const holders = new Map<string, string>();
    const broken: string[] = [];
    const perKey = new Map<string, number>();
    const deadline = Date.now() + 3000;

    const worker = async (i: number) => {
      const base = servers[i % servers.length]!.url;
      let grants = 0;
      let token = crypto.randomUUID();
      while (Date.now() < deadline) {
        const got = await post(base, pathTo("acquirePool"), {
          keys,
          ttl_ms: 5000,
          holder_id: `w${i}`,
          wait_ms: 300,
          token,
        });
        if (got.status !== 200) continue;
        token = crypto.randomUUID();
        const key: string = got.body.key;
        if (holders.has(key)) broken.push(`w${i} got ${key} while ${holders.get(key)} held it`);
        holders.set(key, `w${i}`);
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
        grants++;
        await sleep(Math.random() * 4);
        holders.delete(key);
        const released = await post(base, pathTo("release", { key }), { token: got.body.token });
        expect(released.status).toBe(200);
      }
      return grants;
    };
    const grants = await Promise.all(Array.from({ length: 9 }, (_, i) => worker(i)));

    expect(broken).toEqual([]);
    expect(grants.every((g) => g > 0)).toBe(true);
    expect([...perKey.keys()].sort()).toEqual(keys);
  }, 30_000);
});

describe("restart", () => {
  it("keeps a lease and a state lock across a server restart", async () => {
    const first = await startServerProcess({ ...common, REDIS_URL: redis.url, LSS_KEY_PREFIX: "restart" });
    const lease = await post(first.url, pathTo("acquire", { key: "long-job" }), {
      ttl_ms: 60_000,
      holder_id: "nightly",
    });
    const stateLock = (await fetch(`${first.url}/locks?l=true`, { method: "POST" }).then((r) =>
      r.json(),
    )) as { id: string };
    await first.kill("SIGKILL");

    const second = await startServerProcess({ ...common, REDIS_URL: redis.url, LSS_KEY_PREFIX: "restart" });
    try {
      const seen = await fetch(`${second.url}${pathTo("status", { key: "long-job" })}`, {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json());
      expect(seen).toMatchObject({
        locked: true,
        holder_id: "nightly",
        fencing_token: lease.body.fencing_token,
      });
      expect((await fetch(`${second.url}/locks/${stateLock.id}`)).status).toBe(423);
      expect((await post(second.url, pathTo("acquire", { key: "long-job" }), { ttl_ms: 1000 })).status).toBe(
        409,
      );
      expect(
        (await post(second.url, pathTo("release", { key: "long-job" }), { token: lease.body.token })).status,
      ).toBe(200);
      const next = await post(second.url, pathTo("acquire", { key: "long-job" }), { ttl_ms: 1000 });
      expect(next.body.fencing_token).toBeGreaterThan(lease.body.fencing_token);
    } finally {
      await second.kill();
    }
  }, 40_000);
});
