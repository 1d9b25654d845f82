/**
 * What each operation costs in Redis commands, as Upstash bills them (a script's own commands
 * included): the figures of the README's Costs table, on both Redis transports.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import { appOn } from "./support/app.js";
import { commandCount } from "./support/redis-server.js";
import { type StoreBackends, startBackends } from "./support/stores.js";

let backends: StoreBackends;
beforeAll(async () => {
  backends = await startBackends(["redis", "upstash"]);
});
afterAll(() => backends.close());

describe.each(["redis", "upstash"] as const)("commands per operation on %s", (kind) => {
  const setup = async () => {
    const { call } = appOn(backends.open(kind));
    // Scripts loaded, the eviction policy read: what every later call finds done.
    await call("POST", pathTo("acquire", { key: "warm-up" }), { ttl_ms: 60_000, token: "warm" });
    await call("POST", pathTo("renew", { key: "warm-up" }), { ttl_ms: 60_000, token: "warm" });
    await call("POST", pathTo("release", { key: "warm-up" }), { token: "warm" });
    await call("GET", pathTo("status", { key: "warm-up" }));
    await call("GET", pathTo("history", { key: "warm-up" }));
    await call("GET", pathTo("list", {}, { prefix: "warm-up" }));
    const url = backends.redis!.url;
    /** Commands Redis ran for `op` (minus the count's own INFO). */
    const cost = async (op: () => Promise<{ status: number }>, expected = 200) => {
      const before = await commandCount(url);
      const res = await op();
      const after = await commandCount(url);
      expect(res.status).toBe(expected);
      return after - before - 1;
    };
    return { call, cost };
  };
  const acquire = (key: string, token: string, extra: Record<string, unknown> = {}) => ({
    path: pathTo("acquire", { key }),
    body: { ttl_ms: 60_000, token, ...extra },
  });

  it("acquire 13 on a new key, 7 on a key used in the last hour; renew 4; release 6 (history and ended set included)", async () => {
    const { call, cost } = await setup();
    const a = acquire("plain", "t1");
    // The fencing token: INCR, and SET as the counter is held at Redis's clock (a failover's stale counter).
    expect(await cost(() => call("POST", a.path, a.body))).toBe(13);
    expect(
      await cost(() => call("POST", pathTo("renew", { key: "plain" }), { token: "t1", ttl_ms: 60_000 })),
    ).toBe(4);
    expect(await cost(() => call("POST", pathTo("release", { key: "plain" }), { token: "t1" }))).toBe(6);
    const again = acquire("plain", "t2");
    expect(await cost(() => call("POST", again.path, again.body))).toBe(7);
  });

  it("a status: 3 commands for a lock with no queue and no shared holders, 6 with both", async () => {
    const { call, cost } = await setup();
    const a = acquire("looked-at", "t1");
    await call("POST", a.path, a.body);
    expect(await cost(() => call("GET", pathTo("status", { key: "looked-at" })))).toBe(3);
    expect(await cost(() => call("GET", pathTo("status", { key: "never-used" })))).toBe(3);

    // Shared holders (HGETALL) and a waiter (ZRANGE): one more round trip, two more commands; and
    // what the waiters joined with (HMGET): one more.
    for (const t of ["r1", "r2"]) {
      const s = acquire("read-often", t, { mode: "shared" });
      expect((await call("POST", s.path, s.body)).status).toBe(200);
    }
    const writer = acquire("read-often", "w", { wait_ms: 1 });
    expect((await call("POST", writer.path, writer.body)).status).toBe(409);
    expect(await cost(() => call("GET", pathTo("status", { key: "read-often" })))).toBe(6);
    const shown = (await call("GET", pathTo("status", { key: "read-often" }))).body;
    expect(shown.holders).toHaveLength(2);
    expect(shown.queue).toMatchObject([{ position: 1, mode: "exclusive", priority: 0, group: null }]);
  });

  it("a shared acquire beside others 9, a shared release 6; a pool of 3 whose first key is held 17", async () => {
    const { call, cost } = await setup();
    const first = acquire("shared-costs", "r1", { mode: "shared" });
    await call("POST", first.path, first.body);
    const second = acquire("shared-costs", "r2", { mode: "shared" });
    expect(await cost(() => call("POST", second.path, second.body))).toBe(9);
    expect(await cost(() => call("POST", pathTo("release", { key: "shared-costs" }), { token: "r2" }))).toBe(
      6,
    );

    const held = acquire("pool-a", "h");
    await call("POST", held.path, held.body);
    const pool = { keys: ["pool-a", "pool-b", "pool-c"], ttl_ms: 60_000, token: "p" };
    expect(await cost(() => call("POST", pathTo("acquirePool"), pool))).toBe(17);
  });

  it("a history page 4 commands; a listing page 3 plus 2 per key, one round trip however many keys", async () => {
    const { call, cost } = await setup();
    for (const key of ["list-a", "list-b", "list-c"]) {
      const a = acquire(key, `t-${key}`);
      await call("POST", a.path, a.body);
    }
    expect(await cost(() => call("GET", pathTo("history", { key: "list-a" })))).toBe(4);
    expect(await cost(() => call("GET", pathTo("list", {}, { prefix: "list-" })))).toBe(3 + 2 * 3);
    expect(await cost(() => call("GET", pathTo("list", {}, { prefix: "list-", limit: "1" })))).toBe(3 + 2);
  });
});
