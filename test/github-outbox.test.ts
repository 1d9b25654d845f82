/**
 * The App's records stay bounded and its calls stay worth sending: on the memory store (the one
 * engine's scripts) with the GitHub emulator as the API, and a clock the test moves. An approval
 * is sent again for as long as GitHub waits for one; a status comment is given up after an hour;
 * a gate past its longest hold, or past GitHub's 30 days of waiting, is forgotten by the tick and
 * gives back what it held.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../server/crypto.js";
import { createGitHubApi } from "../server/github/api.js";
import { createGitHubApp } from "../server/github/app.js";
import type { GitHubAppConfig } from "../server/github/config.js";
import { createMemoryStore } from "../server/stores/memory.js";
import type { LockStore } from "../server/stores/types.js";
import { type GitHubEmulator, startGitHubEmulator } from "./support/github-emulator.js";

let github: GitHubEmulator;
beforeAll(async () => {
  github = await startGitHubEmulator();
});
afterAll(() => github?.close());

const REPO = { repositoryId: 303, repository: "acme/api" };

function setup() {
  let offset = 0;
  const now = () => Date.now() + offset;
  const config: GitHubAppConfig = {
    appId: github.appId,
    privateKeyPem: github.privateKeyPem,
    webhookSecret: github.webhookSecret,
    apiUrl: github.url,
    rules: [
      {
        repositoryId: REPO.repositoryId,
        environment: "qa",
        namespace: "default",
        keys: ["qa-env"],
        mode: "exclusive",
        limit: 1,
        maxHoldMs: 60 * 60_000,
      },
    ],
    freezes: [],
    cronSecret: null,
    tickMs: 30_000,
  };
  const store = createMemoryStore();
  const api = createGitHubApi({ ...config, sleep: async () => {} });
  const lines: string[] = [];
  const app = createGitHubApp({
    config,
    store,
    api,
    githubUrl: "https://github.com",
    now,
    log: (l) => lines.push(l),
  });
  const ask = (runId: number, environment = "qa") =>
    app.gates.requested({ ...REPO, environment, runId, deploymentId: runId * 10, installationId: 9 });
  return { app, store, ask, lines, now, later: (ms: number) => (offset += ms) };
}

/** Someone else holds qa-env (an E2E job through the action). */
const holdKey = (store: LockStore, holderId: string, ttlMs: number) =>
  store.acquire(
    { namespace: "default", key: "qa-env" },
    {
      tokenHash: sha256Hex(holderId),
      holderId,
      reason: null,
      ttlMs,
      registeredOnly: false,
      queueWindowMs: null,
      mode: "exclusive",
      limit: 1,
      actor: null,
    },
  );

describe("the outbox", () => {
  it("sends an approval again, later and later, for as long as GitHub waits for it", async () => {
    const { app, ask, later, now } = setup();
    github.down(60_000);
    expect(await ask(1)).toBe("approved");
    const [call] = await app.outbox.pending();
    expect(call).toMatchObject({ kind: "approve", attempts: 1 });
    const gaps: number[] = [];
    for (let i = 0; i < 8; i++) {
      const before = (await app.outbox.pending())[0];
      later((before?.nextAt ?? 0) - now());
      await app.outbox.flush();
      const after = (await app.outbox.pending())[0];
      gaps.push((after?.nextAt ?? 0) - (before?.nextAt ?? 0));
    }
    // Backed off (up to 10 s between tries, so that GitHub back gets it soon), and still there
    // after days of GitHub down.
    expect(gaps.at(-1)).toBeGreaterThanOrEqual(10_000);
    expect(gaps.at(-1)).toBeLessThan(11_000);
    expect(gaps[0]).toBeLessThan(gaps.at(-1) as number);
    later(20 * 86_400_000);
    await app.outbox.flush();
    expect(await app.outbox.pending()).toHaveLength(1);
    github.down(0);
    later(60_000);
    await app.outbox.flush();
    expect(await app.outbox.pending()).toEqual([]);
    expect(github.reviews.filter((r) => r.runId === 1).map((r) => r.body.state)).toEqual(["approved"]);
  });

  it("gives up a status comment GitHub could not take for an hour: a newer one says more", async () => {
    const { app, store, ask, later, lines } = setup();
    await holdKey(store, "e2e", 60_000);
    github.down(60_000);
    expect(await ask(2)).toBe("queued");
    expect((await app.outbox.pending()).map((c) => c.kind)).toEqual(["status"]);
    later(61 * 60_000);
    await app.outbox.flush();
    expect(await app.outbox.pending()).toEqual([]);
    expect(lines.some((l) => /not taken after \d+ attempts; given up/.test(l))).toBe(true);
    github.down(0);
  });
});

describe("the gates' records", () => {
  it("never sends an approval for a gate that was forgotten while GitHub was down (its lease is gone)", async () => {
    const { app, store, ask, later } = setup();
    github.down(60_000);
    expect(await ask(5)).toBe("approved");
    expect((await app.outbox.pending()).map((c) => c.kind)).toEqual(["approve"]);
    later(61 * 60_000); // past the rule's longest hold: the lease has expired
    await app.tick();
    expect(await app.gates.all()).toEqual([]);
    expect(await app.outbox.pending()).toEqual([]);
    github.down(0);
    later(60_000);
    await app.tick();
    expect(github.reviews.filter((r) => r.runId === 5)).toEqual([]);
    expect((await store.inspect({ namespace: "default", key: "qa-env" })).lease).toBeNull();
  });

  it("takes an environment's name in any case, as GitHub does (QA is qa)", async () => {
    const { app, ask } = setup();
    expect(await ask(6, "QA")).toBe("approved");
    expect((await app.gates.all()).map((g) => g.refs.map((r) => r.key))).toEqual([["qa-env"]]);
  });

  it("forgets a held gate past its longest hold (its job's end never came) and frees its key", async () => {
    const { app, store, ask, later } = setup();
    expect(await ask(3)).toBe("approved");
    expect(await app.gates.all()).toHaveLength(1);
    later(30 * 60_000);
    await app.tick();
    expect(await app.gates.all()).toHaveLength(1); // within its hold: kept
    later(31 * 60_000);
    await app.tick();
    expect(await app.gates.all()).toEqual([]);
    expect((await store.inspect({ namespace: "default", key: "qa-env" })).lease).toBeNull();
  });

  it("forgets a gate that waited past GitHub's 30 days, and takes it out of the key's queue", async () => {
    const { app, store, ask, later } = setup();
    const ref = { namespace: "default", key: "qa-env" };
    await holdKey(store, "forever", 3_600_000);
    expect(await ask(4)).toBe("queued");
    expect((await store.inspect(ref)).waiting).toBe(1);
    later(31 * 86_400_000 + 1);
    await app.tick();
    expect(await app.gates.all()).toEqual([]);
    expect((await store.inspect(ref)).waiting).toBe(0);
  });
});
