/**
 * The README's quickstart, followed as written from step 3 on, against a real server process:
 * its commands run in bash (GitHub's `gh` replaced by a stand-in that records what it was told,
 * since no test reaches GitHub), and its two workflows' lock steps run as the runner runs the
 * action's dist/, with `${{ vars.* }}` and `${{ secrets.* }}` filled in from what `gh` was told.
 * Then its OIDC step: the policy it shows, on a server that trusts a local issuer, and story 1
 * changed as it says. Step 1 is readme.test.ts's; step 2's recipes are deploy.test.ts's.
 */
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { loadConfig } from "../server/config.js";
import { pathTo } from "../src/protocol/paths.js";
import { MAIN, newJob, POST, until } from "./support/action-e2e.js";
import { startOidcIssuer } from "./support/oidc-issuer.js";
import { freePort, type ServerProcess, startServerProcess } from "./support/server-process.js";

const sh = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const ADMIN = "quickstart-admin-token-0123456789";

/** A step of the quickstart, from its heading to the next heading of its level or above. */
function step(heading: string): string {
  const start = README.indexOf(`\n### ${heading}`);
  expect(start, `the quickstart has a step "${heading}"`).toBeGreaterThanOrEqual(0);
  const next = README.slice(start + 5).search(/^#{1,3} /m);
  return README.slice(start, next < 0 ? undefined : start + 5 + next);
}
const blocks = (text: string, lang: string) =>
  [...text.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1] as string);

/** A folder with a `gh` that records each call's arguments (one JSON array a line) and does nothing else. */
function fakeGh(dir: string) {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const log = join(dir, "gh.log");
  writeFileSync(log, "");
  writeFileSync(
    join(bin, "gh"),
    `#!${process.execPath}\nrequire("fs").appendFileSync(${JSON.stringify(log)}, JSON.stringify(process.argv.slice(2)) + "\\n");\n`,
  );
  chmodSync(join(bin, "gh"), 0o755);
  return {
    path: `${bin}:${process.env.PATH ?? ""}`,
    calls: (): string[][] =>
      readFileSync(log, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

/** What `gh variable set NAME --body V` and `gh secret set NAME --body V` set, by kind and name. */
function settings(calls: string[][]) {
  const out: Record<"vars" | "secrets", Record<string, string>> = { vars: {}, secrets: {} };
  for (const [kind, verb, name, flag, value] of calls) {
    if (verb !== "set" || flag !== "--body" || !name || value === undefined) continue;
    if (kind === "variable") out.vars[name] = value;
    if (kind === "secret") out.secrets[name] = value;
  }
  return out;
}

/** A workflow's lss-action step, its `with` filled in as the runner would; any other expression fails. */
function lockStep(workflow: string, context: ReturnType<typeof settings>) {
  const doc = parseYaml(workflow) as {
    jobs: Record<string, { permissions?: unknown; steps: Array<{ uses?: string; with?: object }> }>;
  };
  const [job] = Object.values(doc.jobs);
  const found = job?.steps.find((s) => /lss-action@/.test(s.uses ?? ""));
  expect(found, "the workflow has a lock step").toBeDefined();
  const inputs = Object.fromEntries(
    Object.entries(found?.with ?? {}).map(([name, value]) => [
      name,
      String(value).replace(
        /\$\{\{\s*(vars|secrets)\.(\w+)\s*\}\}/g,
        (_, kind: "vars" | "secrets", key: string) => {
          const set = context[kind][key];
          expect(set, `${kind}.${key} was set by the quickstart`).toBeDefined();
          return set as string;
        },
      ),
    ]),
  );
  for (const value of Object.values(inputs)) expect(value).not.toContain("${{");
  return { inputs, permissions: job?.permissions };
}

let dir: string;
let server: ServerProcess;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lss-quickstart-"));
  server = await startServerProcess({ LSS_ADMIN_TOKEN: ADMIN, LSS_RATE_LIMIT: "off" });
}, 60_000);
afterAll(async () => {
  await server?.kill();
  rmSync(dir, { recursive: true, force: true });
});

const status = async (url: string, key: string) =>
  (await (
    await fetch(`${url}${pathTo("status", { key })}`, { headers: { Authorization: `Bearer ${ADMIN}` } })
  ).json()) as { locked: boolean; waiting: number; holder_id: string | null; mode: string | null };

/**
 * Step 3's block as the reader runs it: its first lines set LSS and LSS_ADMIN_TOKEN to the reader's
 * own; here the environment gives them instead.
 */
function mintBlock(): string {
  const [block] = blocks(step("3. Give CI a token"), "sh");
  const [first, second, ...rest] = (block ?? "").split("\n");
  expect([first, second]).toEqual([
    expect.stringMatching(/^export LSS=https:\/\//),
    expect.stringMatching(/^export LSS_ADMIN_TOKEN=/),
  ]);
  return rest.join("\n");
}

describe("the quickstart, steps 3 to 5", () => {
  let context: ReturnType<typeof settings>;

  it("step 3 mints a token and sets the variable and the secret the workflows read", async () => {
    const gh = fakeGh(join(dir, "mint"));
    await sh("bash", ["-c", mintBlock()], {
      env: { PATH: gh.path, LSS: server.url, LSS_ADMIN_TOKEN: ADMIN },
    });
    context = settings(gh.calls());
    expect(context.vars.LSS_URL).toBe(server.url);
    expect(context.secrets.LSS_TOKEN).toMatch(/^lss_/);
  });

  it("step 3 sets nothing when the admin token is wrong, and says why", async () => {
    const gh = fakeGh(join(dir, "mint-refused"));
    const run = sh("bash", ["-c", mintBlock()], {
      env: { PATH: gh.path, LSS: server.url, LSS_ADMIN_TOKEN: "not-the-admin-token-0123" },
    });
    await expect(run).rejects.toMatchObject({ stderr: expect.stringContaining("unknown or revoked token") });
    expect(gh.calls()).toEqual([]);
  });

  it("step 3 sets nothing when the server cannot be reached, and says why", async () => {
    const gh = fakeGh(join(dir, "mint-unreachable"));
    const closed = `http://127.0.0.1:${await freePort()}`;
    const run = sh("bash", ["-c", mintBlock()], {
      env: { PATH: gh.path, LSS: closed, LSS_ADMIN_TOKEN: ADMIN },
    });
    await expect(run).rejects.toMatchObject({
      stderr: expect.stringMatching(/Failed to connect|Could not connect/),
    });
    expect(gh.calls()).toEqual([]);
  });

  it("step 5's workflows run green: story 1 holds qa-env shared, story 2 waits for it and then deploys", async () => {
    const [e2eYaml, deployYaml] = blocks(step("5. Paste two workflows"), "yaml");
    const story1 = lockStep(e2eYaml as string, context);
    const story2 = lockStep(deployYaml as string, context);
    // Neither job asks for an ID token: the secret is the credential.
    expect([story1.permissions, story2.permissions]).toEqual([undefined, undefined]);
    const e2e = newJob("acme/webapp", "E2E");
    const deploy = newJob("acme/webapp", "Deploy QA");
    try {
      const held = await e2e.step(MAIN, { inputs: story1.inputs });
      expect(held.exitCode, held.stdout).toBe(0);
      expect(held.outputs.acquired).toBe("true");
      expect(held.stdout).toContain("Acquired qa-env (fencing token ");
      expect(await status(server.url, "qa-env")).toMatchObject({ locked: true, mode: "shared" });

      const waiting = deploy.start(MAIN, { inputs: story2.inputs });
      await until(
        async () => (await status(server.url, "qa-env")).waiting === 1,
        20_000,
        "the deploy to queue",
      );
      const released = await e2e.step(POST, { inputs: story1.inputs });
      expect(released.exitCode).toBe(0);
      expect(released.stdout).toContain("Released qa-env after ");

      const deployed = await waiting.result;
      expect(deployed.exitCode, deployed.stdout).toBe(0);
      expect(deployed.outputs.acquired).toBe("true");
      expect(deployed.stdout).toMatch(/held by acme\/webapp · E2E/);
      expect(await status(server.url, "qa-env")).toMatchObject({ locked: true, mode: "exclusive" });
      expect((await deploy.step(POST, { inputs: story2.inputs })).exitCode).toBe(0);
      expect((await status(server.url, "qa-env")).locked).toBe(false);
    } finally {
      await e2e.cleanup();
      await deploy.cleanup();
    }
  }, 90_000);

  it("the README says what those runs print", () => {
    const text = step("5. Paste two workflows");
    expect(text).toContain("`Acquired qa-env (fencing token …)`");
    expect(text).toContain("`Released qa-env after …`");
  });
});

describe("the quickstart's step 4: an organization's own copy of the action", () => {
  const git = (cwd: string, ...args: string[]) =>
    execFileSync("git", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

  it("carries the release tags, v1 among them, and its update moves v1", async () => {
    const text = step("4. Choose the action");
    const [copy] = blocks(text, "sh");
    const update = /`(git fetch --force origin [^`]+)`/.exec(text)?.[1];
    expect(update).toBeDefined();
    // GitHub's two repositories, as bare repositories on disk: the released one and the copy.
    const here = join(dir, "copy");
    const upstream = join(here, "upstream", "lss-action");
    const theirs = join(here, "acme", "lss-action");
    mkdirSync(join(here, "work"), { recursive: true });
    git(here, "clone", "--quiet", "--bare", ROOT, upstream);
    git(upstream, "tag", "-f", "v1", "HEAD");
    git(here, "init", "--quiet", "--bare", theirs);
    const local = (script: string) =>
      script
        .replaceAll("https://github.com/lss-dev/lss-action", upstream)
        .replaceAll("https://github.com/acme/lss-action", theirs);
    const gh = fakeGh(join(here, "gh"));
    await sh("bash", ["-ec", local(copy as string)], { cwd: join(here, "work"), env: { PATH: gh.path } });
    expect(git(theirs, "rev-parse", "v1^{commit}")).toBe(git(upstream, "rev-parse", "v1^{commit}"));
    expect(git(theirs, "rev-parse", "main")).toBe(git(upstream, "rev-parse", "main"));
    expect(gh.calls()).toEqual([
      ["repo", "create", "acme/lss-action", "--private"],
      [
        "api",
        "-X",
        "PUT",
        "repos/acme/lss-action/actions/permissions/access",
        "-f",
        "access_level=organization",
      ],
    ]);

    // A newer release moves v1 upstream; the update brings it to the copy.
    const next = git(upstream, "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", "Release 1.0.1");
    git(upstream, "update-ref", "refs/heads/main", next);
    git(upstream, "tag", "-f", "v1", next);
    const push = /^git push --mirror .+$/m.exec(local(copy as string))?.[0] as string;
    await sh("bash", ["-ec", `${update} && ${push}`], { cwd: join(here, "work", "lss-action.git") });
    expect(git(theirs, "rev-parse", "v1^{commit}")).toBe(next);
  }, 60_000);
});

describe("the quickstart's OIDC step", () => {
  const text = step("No secret at all: OIDC");
  const [settingsBlock] = blocks(text, "sh");
  /** The block's `NAME=value` lines, a single-quoted value unquoted. */
  const vars = Object.fromEntries(
    [...(settingsBlock ?? "").matchAll(/^([A-Z_]+)=('([^']*)'|\S+)$/gm)].map((m) => [
      m[1] as string,
      (m[3] ?? m[2]) as string,
    ]),
  );
  const policy = JSON.parse(vars.LSS_OIDC_POLICY ?? "null");

  it("gives a policy and a public URL every runtime accepts", () => {
    expect(Object.keys(vars).sort()).toEqual(["LSS_OIDC_POLICY", "LSS_PUBLIC_URL"]);
    const store = {
      UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
      UPSTASH_REDIS_REST_TOKEN: "AXX",
    };
    for (const runtime of ["node", "vercel", "workers"] as const) {
      const config = loadConfig({ ...store, LSS_ADMIN_TOKEN: ADMIN, ...vars }, runtime);
      expect(config.oidc?.rules.map((r) => r.namespace)).toEqual(["default"]);
    }
  });

  it("lets story 1 run with the job's OIDC token instead of the secret, in the same namespace", async () => {
    const issuer = await startOidcIssuer();
    const oidcServer = await startServerProcess((url) => ({
      LSS_ADMIN_TOKEN: ADMIN,
      LSS_RATE_LIMIT: "off",
      LSS_OIDC_ISSUER: issuer.url, // GitHub's own, in production
      LSS_OIDC_POLICY: vars.LSS_OIDC_POLICY as string,
      LSS_PUBLIC_URL: url,
    }));
    const owner = policy.rules[0].match;
    const job = newJob("acme/webapp", "E2E", {
      idToken: issuer.runnerEnv({
        repository: `${owner.repository_owner}/webapp`,
        repository_owner_id: owner.repository_owner_id,
      }),
    });
    try {
      // As the step says: remove `token:` from the lock step (the job gets id-token: write).
      const [e2eYaml] = blocks(step("5. Paste two workflows"), "yaml");
      const { inputs } = lockStep(e2eYaml as string, {
        vars: { LSS_URL: oidcServer.url },
        secrets: { LSS_TOKEN: "unused" },
      });
      delete inputs.token;
      expect(text).toMatch(/remove `token:`/);
      const held = await job.step(MAIN, { inputs });
      expect(held.exitCode, held.stdout).toBe(0);
      // The admin token sees it: the policy's namespace is the quickstart token's, `default`.
      expect(await status(oidcServer.url, "qa-env")).toMatchObject({ locked: true });
      expect((await job.step(POST, { inputs })).exitCode).toBe(0);
    } finally {
      await job.cleanup();
      await oidcServer.kill();
      await issuer.close();
    }
  }, 90_000);
});
