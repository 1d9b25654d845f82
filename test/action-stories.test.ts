/** The README's CI stories, end to end: the action's dist/ as the runner runs it, on a real server. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
      const forced = await fetch(`${server.url}/infra/locks/stolen/release`, {
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
