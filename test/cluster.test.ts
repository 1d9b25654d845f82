/**
 * Several server processes on one redis-server (two over TCP, one through @upstash/redis), many
 * concurrent clients: never two holders at once, fencing tokens strictly increasing in grant order.
 * Also: a lease outlives the server process that granted it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";
import { ADMIN_TOKEN, sleep } from "./support/stores.js";
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
        const got = await post(base, `/infra/locks/${key}/acquire`, { ttl_ms: 5000, holder_id: `w${i}` });
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
        const released = await post(base, `/infra/locks/${key}/release`, { token: got.body.token });
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
    const granted = await post(a, "/infra/locks/agree/acquire", { ttl_ms: 10_000, holder_id: "on-a" });
    expect(granted.status).toBe(200);
    const conflict = await post(c, "/infra/locks/agree/acquire", { ttl_ms: 10_000 });
    expect(conflict.status).toBe(409);
    expect(conflict.body.holder_id).toBe("on-a");
    expect((await post(b, "/infra/locks/agree/release", { token: granted.body.token })).status).toBe(200);
    expect((await post(c, "/infra/locks/agree/acquire", { ttl_ms: 10_000 })).status).toBe(200);
  });
});

describe("restart", () => {
  it("keeps a lease and a state lock across a server restart", async () => {
    const first = await startServerProcess({ ...common, REDIS_URL: redis.url, LSS_KEY_PREFIX: "restart" });
    const lease = await post(first.url, "/infra/locks/long-job/acquire", {
      ttl_ms: 60_000,
      holder_id: "nightly",
    });
    const stateLock = (await fetch(`${first.url}/locks?l=true`, { method: "POST" }).then((r) =>
      r.json(),
    )) as { id: string };
    await first.kill("SIGKILL");

    const second = await startServerProcess({ ...common, REDIS_URL: redis.url, LSS_KEY_PREFIX: "restart" });
    try {
      const seen = await fetch(`${second.url}/infra/locks/long-job`, {
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      }).then((r) => r.json());
      expect(seen).toMatchObject({
        locked: true,
        holder_id: "nightly",
        fencing_token: lease.body.fencing_token,
      });
      expect((await fetch(`${second.url}/locks/${stateLock.id}`)).status).toBe(423);
      expect((await post(second.url, "/infra/locks/long-job/acquire", { ttl_ms: 1000 })).status).toBe(409);
      expect(
        (await post(second.url, "/infra/locks/long-job/release", { token: lease.body.token })).status,
      ).toBe(200);
      const next = await post(second.url, "/infra/locks/long-job/acquire", { ttl_ms: 1000 });
      expect(next.body.fencing_token).toBeGreaterThan(lease.body.fencing_token);
    } finally {
      await second.kill();
    }
  }, 40_000);
});
