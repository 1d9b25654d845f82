/** The README's CI stories, end to end: the action's dist/ as the runner runs it, on a real server. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import {
  base,
  type LiveServer,
  MAIN,
  newJob,
  POST,
  sleep,
  startLiveServer,
  until,
} from "./support/action-e2e.js";
import { ADMIN_TOKEN } from "./support/stores.js";

let server: LiveServer;
beforeAll(async () => {
  server = await startLiveServer();
});
afterAll(() => server.close());

describe("story 1: E2E tests block QA deploys", () => {
  it("releases qa-env at the end of the job even when the job failed", async () => {
    const e2e = newJob("octo/app", "E2E");
    try {
      const main = await e2e.step(MAIN, {
        inputs: base(server, "qa-env-1", { mode: "acquire", reason: "E2E suite" }),
      });
      expect(main.outputs.acquired).toBe("true");
      // (the E2E step fails here; post-if: always() still runs the post step)
      const post = await e2e.step(POST, { inputs: base(server, "qa-env-1", { mode: "acquire" }) });
      expect(post.exitCode).toBe(0);
      expect((await server.status("qa-env-1")).locked).toBe(false);
    } finally {
      await e2e.cleanup();
    }
  }, 30_000);
});

describe("story 2: a deploy waits its turn", () => {
  it("waits while qa-env is held, saying who holds it, then proceeds without taking it", async () => {
    const e2e = newJob("octo/app", "E2E");
    const deploy = newJob("octo/app", "Deploy QA");
    try {
      await e2e.step(MAIN, { inputs: base(server, "qa-env-2", { mode: "acquire", reason: "E2E suite" }) });
      const waiting = deploy.start(MAIN, {
        inputs: base(server, "qa-env-2", { mode: "wait", timeout: "30s", "poll-interval": "1s" }),
      });
      await sleep(2000);
      await e2e.step(POST, { inputs: base(server, "qa-env-2", { mode: "acquire" }) });
      const waited = await waiting.result;
      expect(waited.exitCode).toBe(0);
      expect(waited.outputs.acquired).toBe("false");
      expect(Number(waited.outputs["waited-seconds"])).toBeGreaterThanOrEqual(1);
      expect(waited.stdout).toMatch(/Waiting for qa-env-2: held by octo\/app · E2E .*\(E2E suite\) since /);
      expect(waited.stdout).toContain("/actions/runs/");
      expect(waited.summary).toContain("is free");
      expect((await server.status("qa-env-2")).locked).toBe(false);
    } finally {
      await e2e.cleanup();
      await deploy.cleanup();
    }
  }, 40_000);

  it("fails with the same facts when the timeout passes", async () => {
    const e2e = newJob("octo/app", "E2E");
    const deploy = newJob("octo/app", "Deploy QA");
    try {
      await e2e.step(MAIN, { inputs: base(server, "qa-env-2b", { mode: "acquire", reason: "E2E suite" }) });
      const waited = await deploy.step(MAIN, {
        inputs: base(server, "qa-env-2b", { mode: "wait", timeout: "2s", "poll-interval": "1s" }),
      });
      expect(waited.exitCode).toBe(1);
      const failure = waited.annotations.find((a) => a.level === "error")?.message ?? "";
      expect(failure).toMatch(
        /Timed out after 2s waiting for qa-env-2b: held by octo\/app · E2E .*\(E2E suite\)/,
      );
    } finally {
      await e2e.cleanup();
      await deploy.cleanup();
    }
  }, 30_000);
});

describe("story 3: the QA team holds the environment by hand", () => {
  it("holds after the job, releases only with the team's token (or an admin's force)", async () => {
    const lock = newJob("octo/app", "QA hold");
    const other = newJob("octo/app", "Someone else");
    const unlock = newJob("octo/app", "QA hold");
    const secret = "qa-team-secret-token";
    try {
      const held = await lock.step(MAIN, {
        inputs: base(server, "qa-env-3", {
          mode: "acquire",
          hold: "4h",
          "lease-token": secret,
          holder: "QA team (alice)",
          reason: "QA testing",
        }),
      });
      expect(held.exitCode).toBe(0);
      expect(held.state["renewer-pid"]).toBeUndefined(); // a hold is not renewed
      await lock.step(POST, {
        inputs: base(server, "qa-env-3", { mode: "acquire", hold: "4h", "lease-token": secret }),
      });
      await lock.cleanup(); // the job has ended
      const status = await server.status("qa-env-3");
      expect(status).toMatchObject({ locked: true, holder_id: "QA team (alice)" });

      // A deploy's own acquire cannot take it; a release with the wrong token fails and changes nothing.
      const grab = await other.step(MAIN, {
        inputs: base(server, "qa-env-3", { mode: "acquire", timeout: "0" }),
      });
      expect(grab.exitCode).toBe(1);
      expect(grab.outputs.holder).toBe("QA team (alice)");
      const wrong = await other.step(MAIN, {
        inputs: base(server, "qa-env-3", { mode: "release", "lease-token": "guess" }),
      });
      expect(wrong.exitCode).toBe(1);
      expect(wrong.annotations.find((a) => a.level === "error")?.message).toContain("'lease-token'");
      expect((await server.status("qa-env-3")).locked).toBe(true);

      // Locking again with the team's token extends the same hold (same fencing token).
      const extended = await unlock.step(MAIN, {
        inputs: base(server, "qa-env-3", { mode: "acquire", hold: "8h", "lease-token": secret }),
      });
      expect(extended.outputs["fencing-token"]).toBe(held.outputs["fencing-token"]);

      const released = await unlock.step(MAIN, {
        inputs: base(server, "qa-env-3", { mode: "release", "lease-token": secret }),
      });
      expect(released.exitCode).toBe(0);
      expect((await server.status("qa-env-3")).locked).toBe(false);

      // An admin can free a hold deliberately.
      await unlock.step(MAIN, {
        inputs: base(server, "qa-env-3", { mode: "acquire", hold: "1h", "lease-token": secret }),
      });
      const forced = await other.step(MAIN, {
        inputs: base(server, "qa-env-3", { mode: "release", force: "true" }),
      });
      expect(forced.exitCode).toBe(0);
      expect(forced.stdout).toContain("(forced)");
      expect((await server.status("qa-env-3")).locked).toBe(false);
    } finally {
      await lock.cleanup();
      await other.cleanup();
      await unlock.cleanup();
    }
  }, 40_000);
});

describe("the /locks story: a step waits until a status lock is unlocked", () => {
  it("waits on 423 and proceeds on 204, with no API token", async () => {
    const created = (await (await fetch(`${server.url}/locks?l=true`, { method: "POST" })).json()) as {
      id: string;
      key: string;
    };
    const job = newJob();
    try {
      const waiting = job.start(MAIN, {
        inputs: {
          url: server.url,
          "lock-id": created.id,
          mode: "wait",
          timeout: "30s",
          "poll-interval": "1s",
        },
      });
      await sleep(2000);
      const unlocked = await fetch(`${server.url}/locks/${created.id}/unlock?k=${created.key}`, {
        method: "PATCH",
      });
      expect(unlocked.status).toBe(204);
      const result = await waiting.result;
      expect(result.exitCode).toBe(0);
      expect(Number(result.outputs["waited-seconds"])).toBeGreaterThanOrEqual(1);
      expect(result.stdout).toContain(`Waiting for /locks/${created.id}`);

      const unknown = await job.step(MAIN, {
        inputs: { url: server.url, "lock-id": "no-such-lock", mode: "wait" },
      });
      expect(unknown.exitCode).toBe(1);
      expect(unknown.annotations.find((a) => a.level === "error")?.message).toContain("'lock-id'");
    } finally {
      await job.cleanup();
    }
  }, 40_000);
});

describe("a lost lease", () => {
  it("is reported loudly by the post step, which then fails", async () => {
    const job = newJob();
    try {
      const main = await job.step(MAIN, { inputs: base(server, "stolen", { mode: "acquire", ttl: "6s" }) });
      expect(main.exitCode).toBe(0);
      // An operator frees it while the job runs; the next renewal finds it gone.
      const forced = await fetch(`${server.url}${pathTo("release", { key: "stolen" })}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify({ force: true }),
      });
      expect(forced.status).toBe(200);
      const statusFile = main.state["renewer-status-file"] ?? "";
      await until(
        async () => {
          const { readFileSync } = await import("node:fs");
          try {
            return JSON.parse(readFileSync(statusFile, "utf8")).state === "lost";
          } catch {
            return false;
          }
        },
        8000,
        "the renewer to notice",
      );
      const post = await job.step(POST, { inputs: base(server, "stolen", { mode: "acquire", ttl: "6s" }) });
      expect(post.exitCode).toBe(1);
      const errors = post.annotations.filter((a) => a.level === "error").map((a) => a.message);
      expect(errors.join("\n")).toMatch(/The lease on stolen was LOST at .*WITHOUT holding the lock/);
    } finally {
      await job.cleanup();
    }
  }, 30_000);
});

describe("story: E2E suites hold QA shared, a deploy takes it alone", () => {
  it("lets two E2E jobs hold it at once, says whom each shares it with, and makes the deploy wait for both", async () => {
    const [a, b, deploy] = [
      newJob("octo/app", "E2E a"),
      newJob("octo/app", "E2E b"),
      newJob("octo/app", "Deploy"),
    ];
    const shared = (extra: Record<string, string> = {}) =>
      base(server, "qa-shared", { mode: "acquire", shared: "true", reason: "E2E", ...extra });
    try {
      const first = await a.step(MAIN, { inputs: shared() });
      const second = await b.step(MAIN, { inputs: shared() });
      expect([first.outputs.acquired, second.outputs.acquired]).toEqual(["true", "true"]);
      expect(second.summary).toContain("| Shared with |");
      expect(second.summary).toContain("E2E a");
      // The deploy (exclusive) cannot take it while either suite holds it.
      const blocked = await deploy.step(MAIN, {
        inputs: base(server, "qa-shared", { mode: "acquire", timeout: "1s" }),
      });
      expect(blocked.exitCode).not.toBe(0);
      expect(blocked.outputs.acquired).toBe("false");
      const waiting = deploy.start(MAIN, {
        inputs: base(server, "qa-shared", { mode: "acquire", timeout: "30s" }),
      });
      await sleep(500);
      await a.step(POST, { inputs: shared() });
      await sleep(300);
      // Still shared by b, so the deploy still waits: it is granted only after b's release.
      expect((await server.status("qa-shared")).holder_id).toContain("E2E b");
      await b.step(POST, { inputs: shared() });
      const got = await waiting.result;
      expect(got.outputs.acquired).toBe("true");
      expect(Number(got.outputs["waited-seconds"])).toBeGreaterThanOrEqual(1);
      await deploy.step(POST, { inputs: base(server, "qa-shared", { mode: "acquire" }) });
      expect((await server.status("qa-shared")).locked).toBe(false);
    } finally {
      await Promise.all([a.cleanup(), b.cleanup(), deploy.cleanup()]);
    }
  }, 60_000);
});

describe("story: deploy to any free QA environment, then test it", () => {
  it("gives each job one environment of the pool, says which, and hands a freed one to the next job", async () => {
    const pool = (job: ReturnType<typeof newJob>, extra: Record<string, string> = {}) =>
      job.step(MAIN, { inputs: base(server, "pool-qa-1, pool-qa-2", { mode: "acquire", ...extra }) });
    const jobs = [
      newJob("octo/app", "Deploy 1"),
      newJob("octo/app", "Deploy 2"),
      newJob("octo/app", "Deploy 3"),
    ];
    try {
      const [one, two] = [await pool(jobs[0]!), await pool(jobs[1]!)];
      expect([one.outputs.key, two.outputs.key].sort()).toEqual(["pool-qa-1", "pool-qa-2"]);
      expect(one.summary).toContain(`acquired \`${one.outputs.key}\``);
      const third = jobs[2]!.start(MAIN, {
        inputs: base(server, "pool-qa-1, pool-qa-2", { mode: "acquire", timeout: "30s" }),
      });
      await sleep(500);
      // The first job's post releases the key it got (not the pool).
      const post = await jobs[0]!.step(POST, {
        inputs: base(server, "pool-qa-1, pool-qa-2", { mode: "acquire" }),
      });
      expect(post.stdout).toContain(`Released ${one.outputs.key}`);
      const got = await third.result;
      expect(got.outputs.acquired).toBe("true");
      expect(got.outputs.key).toBe(one.outputs.key);
      for (const job of jobs.slice(1)) {
        await job.step(POST, { inputs: base(server, "pool-qa-1, pool-qa-2", { mode: "acquire" }) });
      }
      expect((await server.status("pool-qa-1")).locked).toBe(false);
      expect((await server.status("pool-qa-2")).locked).toBe(false);
    } finally {
      await Promise.all(jobs.map((j) => j.cleanup()));
    }
  }, 60_000);
});
