/**
 * The action without an API token: the built dist/ as the runner runs it, in jobs with
 * `permissions: id-token: write` (the runner's ID-token endpoint served by a local OIDC issuer
 * whose tokens live seconds), against a server process that trusts that issuer through its policy.
 */
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pathTo } from "../src/protocol/paths.js";
import { MAIN, newJob, POST, sleep, until } from "./support/action-e2e.js";
import { type OidcIssuer, startOidcIssuer } from "./support/oidc-issuer.js";
import { isAlive, type StepResult } from "./support/runner.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";
import { ADMIN_TOKEN } from "./support/stores.js";

const POLICY = {
  rules: [
    {
      name: "acme org",
      match: { repository_owner: "acme", repository_owner_id: "900001" },
      namespace: "default",
      scopes: ["locks:read", "locks:write"],
    },
  ],
};

/** What an ID token looks like (a JWT: base64url JSON header, payload, signature). */
const JWT = /eyJ[\w-]*\.[\w-]+\.[\w-]+/g;
const hasJwt = (text: string) => new RegExp(JWT.source).test(text);

let issuer: OidcIssuer;
let server: ServerProcess;

beforeAll(async () => {
  issuer = await startOidcIssuer();
  // The audience is left to the defaults on both sides: the server's is LSS_PUBLIC_URL's origin,
  // the action's the origin of its url input.
  server = await startServerProcess((url) => ({
    LSS_ADMIN_TOKEN: ADMIN_TOKEN,
    LSS_PUBLIC_URL: url,
    LSS_OIDC_ISSUER: issuer.url,
    LSS_OIDC_POLICY: JSON.stringify(POLICY),
    LSS_RATE_LIMIT: "off",
  }));
}, 60_000);
afterAll(async () => {
  await server?.kill();
  await issuer?.close();
});

/** The key's lease as the admin sees it. */
async function status(key: string) {
  const res = await fetch(`${server.url}${pathTo("status", { key })}`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return (await res.json()) as { locked: boolean; holder_id: string | null; fencing_token: number | null };
}

/** A step's inputs without a token: the job's OIDC token is the credential. */
const inputs = (key: string, extra: Record<string, string> = {}) => ({ url: server.url, key, ...extra });

/**
 * No ID token anywhere a person or a later step could read it: not in the log (only in the
 * `::add-mask::` commands the runner consumes), not on stderr, not in an output or the summary.
 * Returns how many ID tokens the step masked.
 */
function expectNoIdToken(step: StepResult): number {
  const masked = step.stdout.split("\n").filter((line) => line.startsWith("::add-mask::") && hasJwt(line));
  const shown = step.stdout
    .split("\n")
    .filter((line) => !line.startsWith("::add-mask::"))
    .join("\n");
  expect(shown.match(JWT)).toBeNull();
  expect(step.stderr.match(JWT)).toBeNull();
  expect(JSON.stringify(step.outputs).match(JWT)).toBeNull();
  expect(step.summary.match(JWT)).toBeNull();
  return masked.length;
}

describe("the action with the job's GitHub OIDC token (no token input)", () => {
  it("acquires, renews past the ID token's expiry with fresh ones, and post releases; the holder is the verified one", async () => {
    // ID tokens that live 8 s, a lease of 5 s renewed every ~1.7 s: the renewer needs several.
    const idToken = issuer.runnerEnv({}, { expiresIn: 8 });
    const job = newJob("acme/webapp", "Deploy", { idToken });
    const step = inputs("oidc-renewed", { mode: "acquire", ttl: "5s", holder: "someone-else entirely" });
    try {
      const before = issuer.counts.idTokens;
      const main = await job.step(MAIN, { inputs: step });
      expect(main.exitCode, main.stdout + main.stderr).toBe(0);
      expect(main.outputs.acquired).toBe("true");
      expect(main.stdout).toContain("with the job's GitHub OIDC token");
      // The holder is what the server verified (repository, run), not what the job said.
      const held = await status("oidc-renewed");
      expect(held.locked).toBe(true);
      expect(held.holder_id).toContain("acme/webapp");
      expect(held.holder_id).toContain("/actions/runs/4242");
      expect(held.holder_id).not.toContain("someone-else");
      expect(main.outputs.holder).toBe(held.holder_id);
      expect(main.summary).toContain("acme/webapp");
      expect(main.summary).not.toContain("someone-else");
      expect(expectNoIdToken(main)).toBeGreaterThanOrEqual(1);
      // The request token is masked too; the renewer got it through its config file, not its environment.
      expect(main.stdout).toContain(`::add-mask::${idToken.ACTIONS_ID_TOKEN_REQUEST_TOKEN}`);
      const pid = Number(main.state["renewer-pid"]);
      expect(isAlive(pid)).toBe(true);
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      expect(environ).not.toContain(idToken.ACTIONS_ID_TOKEN_REQUEST_TOKEN);
      expect(environ).not.toContain("ACTIONS_ID_TOKEN_REQUEST");
      expect(environ.match(JWT)).toBeNull();
      const configFile = readFileSync(`/proc/${pid}/cmdline`, "utf8")
        .split("\0")
        .find((a) => a.endsWith("config.json"));
      expect(configFile).toBeDefined();
      await until(async () => !existsSync(configFile!), 2000, "the renewer to delete its config file");

      const afterMain = issuer.counts.idTokens;
      expect(afterMain).toBeGreaterThan(before);
      // Well past the first ID tokens' expiry (8 s) and several ttls: still held, same grant.
      await sleep(16_000);
      const still = await status("oidc-renewed");
      expect(still.locked).toBe(true);
      expect(still.fencing_token).toBe(Number(main.outputs["fencing-token"]));
      // The renewer fetched fresh ID tokens as they expired (one lives 8 s, reused for 6 s).
      expect(issuer.counts.idTokens - afterMain).toBeGreaterThanOrEqual(2);
      const renewal = JSON.parse(readFileSync(main.state["renewer-status-file"]!, "utf8")) as {
        state: string;
        renewals: number;
      };
      expect(renewal.state).toBe("held");
      expect(renewal.renewals).toBeGreaterThanOrEqual(6);

      // Post, at the end of the job: with a fresh ID token of its own.
      const beforePost = issuer.counts.idTokens;
      const post = await job.step(POST, { inputs: step });
      expect(post.exitCode, post.stdout + post.stderr).toBe(0);
      expect(post.stdout).toContain("Released oidc-renewed");
      expect(post.summary).toContain("acme/webapp");
      expect(issuer.counts.idTokens).toBeGreaterThan(beforePost);
      expect(isAlive(pid)).toBe(false);
      expect((await status("oidc-renewed")).locked).toBe(false);
      expectNoIdToken(post);
    } finally {
      await job.cleanup();
    }
  }, 60_000);

  it("holds for the QA team with a lease-token, and a later job releases it, both without an API token", async () => {
    const lock = newJob("acme/webapp", "QA hold", { idToken: issuer.runnerEnv() });
    const unlock = newJob("acme/webapp", "QA hold", { idToken: issuer.runnerEnv() });
    const team = { "lease-token": "qa-team-hold-token-0123456789" };
    try {
      const main = await lock.step(MAIN, {
        inputs: inputs("oidc-hold", { mode: "acquire", hold: "1h", ...team }),
      });
      expect(main.exitCode, main.stdout).toBe(0);
      expect(
        (await lock.step(POST, { inputs: inputs("oidc-hold", { mode: "acquire", hold: "1h", ...team }) }))
          .exitCode,
      ).toBe(0);
      expect((await status("oidc-hold")).locked).toBe(true); // kept after the job
      const released = await unlock.step(MAIN, { inputs: inputs("oidc-hold", { mode: "release", ...team }) });
      expect(released.exitCode, released.stdout).toBe(0);
      expect(released.stdout).toContain("Released oidc-hold");
      expect((await status("oidc-hold")).locked).toBe(false);
    } finally {
      await lock.cleanup();
      await unlock.cleanup();
    }
  }, 30_000);

  it("fails at once without a token in a job that cannot request an ID token, saying to add the permission", async () => {
    const job = newJob("acme/webapp", "Deploy"); // no permissions: id-token: write
    try {
      const started = Date.now();
      const main = await job.step(MAIN, { inputs: inputs("oidc-none", { mode: "acquire" }) });
      expect(main.exitCode).toBe(1);
      const error = main.annotations.find((a) => a.level === "error")?.message ?? "";
      expect(error).toContain("Input 'token' is empty");
      expect(error).toContain("add `permissions: id-token: write`");
      expect(Date.now() - started).toBeLessThan(5000);
      const post = await job.step(POST, { inputs: inputs("oidc-none", { mode: "acquire" }) });
      expect(post.exitCode).toBe(0);
      expect((await status("oidc-none")).locked).toBe(false);
    } finally {
      await job.cleanup();
    }
  }, 20_000);

  it("is refused for a repository the policy has no rule for, saying the policy decides", async () => {
    const job = newJob("evil/webapp", "Deploy", {
      idToken: issuer.runnerEnv({ repository: "evil/webapp", repository_owner_id: "900666" }),
    });
    try {
      const main = await job.step(MAIN, {
        inputs: inputs("oidc-refused", { mode: "acquire", timeout: "0" }),
      });
      expect(main.exitCode).toBe(1);
      const error = main.annotations.find((a) => a.level === "error")?.message ?? "";
      expect(error).toMatch(/^LSS refused: .*OIDC policy/);
      expectNoIdToken(main);
      expect((await status("oidc-refused")).locked).toBe(false);
    } finally {
      await job.cleanup();
    }
  }, 20_000);
});
