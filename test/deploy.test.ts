/**
 * The one-step deploys, each as far as this machine can run it: the systemd unit verified by
 * systemd-analyze and its ExecStart run with the example settings against a real redis-server; the
 * Vercel deploy button's link and vercel.json (whose function the bridge tests run); and what the
 * README tells Workers users about Wrangler's Node.
 */
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../server/config.js";
import { VERSION } from "../src/version.js";
import { freePort } from "./support/ports.js";
import { killOnExit, sleep } from "./support/processes.js";
import { type RedisServerHandle, startRedisServer } from "./support/redis-server.js";
import { NODE24 } from "./support/runner.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");
const README = read("README.md");
const REPOSITORY = JSON.parse(read("package.json"))
  .repository.url.replace(/^git\+/, "")
  .replace(/\.git$/, "");

/** A unit file's settings of one section, in order (a key may repeat). */
function section(unit: string, name: string): [string, string][] {
  const body = unit.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? "";
  return body
    .split("\n")
    .slice(1)
    .filter((line) => /^\w+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]);
}

/** KEY=value lines of an environment file, comments and blank lines left out. */
const environmentFile = (text: string) =>
  Object.fromEntries(
    text
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );

describe("the systemd unit (deploy/lss.service)", () => {
  const unit = read("deploy/lss.service");
  const service = Object.fromEntries(section(unit, "Service"));
  const hasSystemd = spawnSync("systemd-analyze", ["--version"]).status === 0;

  it.skipIf(!hasSystemd)("passes systemd-analyze verify with nothing to say", () => {
    const dir = mkdtempSync(join(tmpdir(), "lss-unit-"));
    try {
      writeFileSync(join(dir, "lss.service"), unit);
      const r = spawnSync("systemd-analyze", ["verify", join(dir, "lss.service")], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      // And it can fail: a key systemd does not know is named.
      writeFileSync(join(dir, "lss.service"), unit.replace("[Service]\n", "[Service]\nRestartEvery=1\n"));
      const bad = spawnSync("systemd-analyze", ["verify", join(dir, "lss.service")], { encoding: "utf8" });
      expect(bad.stderr).toContain("Unknown key 'RestartEvery'");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs as its own user, restarts on failure, and gives held requests time to answer on stop", () => {
    expect(service.User).toBe("lss");
    expect(service.Restart).toBe("on-failure");
    expect(service.EnvironmentFile).toBe("/etc/lss/lss.env");
    // LSS_MAX_WAIT_MS is at most 55 s by default.
    expect(Number(service.TimeoutStopSec)).toBeGreaterThan(55);
    expect(service.NoNewPrivileges).toBe("true");
  });

  describe("its ExecStart, with deploy/lss.env.example's settings", () => {
    let redis: RedisServerHandle;
    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterAll(async () => redis?.kill());

    it("serves on Redis, trusts the proxy, and exits 0 on SIGTERM", async () => {
      const settings = environmentFile(read("deploy/lss.env.example"));
      expect(Object.keys(settings)).toEqual(
        expect.arrayContaining(["PORT", "REDIS_URL", "LSS_ADMIN_TOKEN", "LSS_TRUST_PROXY"]),
      );
      const [program, ...args] = (service.ExecStart ?? "").split(" ");
      expect(program).toMatch(/^\/.*\/node$/);
      // The example ships no admin token that would work as it is.
      expect(settings.LSS_ADMIN_TOKEN).toBe("");
      const port = await freePort();
      // This checkout stands for /opt/lss, this test's Node for the machine's, its Redis for the example's.
      const child = spawn(process.execPath, args, {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          ...settings,
          PORT: String(port),
          REDIS_URL: redis.url,
          LSS_ADMIN_TOKEN: "an-admin-token-for-the-unit-test",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      killOnExit(child);
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      const url = `http://127.0.0.1:${port}`;
      let health: { status?: string; store?: string; version?: string } = {};
      for (let i = 0; i < 100 && health.status !== "ok"; i++) {
        health = await fetch(`${url}/health`).then(
          (r) => r.json() as Promise<typeof health>,
          () => ({}),
        );
        if (health.status !== "ok") await sleep(200);
      }
      expect(health, output).toMatchObject({ status: "ok", store: "redis", version: VERSION });
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = await exited;
      expect(code, output).toBe(0);
    }, 60_000);
  });
});

/** A recipe of the quickstart's "Deploy it", from its heading to the next heading of its level or above. */
function recipe(heading: string): string {
  const start = README.indexOf(`\n#### ${heading}\n`);
  expect(start, `the README has a recipe "${heading}"`).toBeGreaterThanOrEqual(0);
  const next = README.slice(start + 5).search(/^#{1,4} /m);
  return README.slice(start, next < 0 ? undefined : start + 5 + next);
}

/** A value each variable takes as the recipe's reader would set it. */
const SAMPLES: Record<string, string> = {
  UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "AXX-example-token",
  REDIS_URL: "redis://redis.internal:6379",
  LSS_ADMIN_TOKEN: "an-admin-token-of-32-characters!",
};

describe.each([
  ["Vercel + Upstash", "vercel"],
  ["Cloudflare Workers + Upstash", "workers"],
  ["Node + Redis (self-hosted)", "node"],
] as const)("the README's recipe %s", (heading, runtime) => {
  it("names every variable a durable deployment with an admin token needs there", () => {
    const named = new Set(recipe(heading).match(/\b[A-Z][A-Z0-9_]{3,}\b/g));
    const env = Object.fromEntries(Object.entries(SAMPLES).filter(([name]) => named.has(name)));
    // The Upstash pair where both are named, else REDIS_URL: one store, as a reader would set it.
    if (env.UPSTASH_REDIS_REST_URL && runtime !== "node") delete env.REDIS_URL;
    if (runtime === "node") {
      delete env.UPSTASH_REDIS_REST_URL;
      delete env.UPSTASH_REDIS_REST_TOKEN;
    }
    const config = loadConfig(env, runtime);
    expect(config.store.kind).not.toBe("memory");
    expect(config.adminToken).toBeTruthy();
    if (runtime !== "node") expect(config.locksApiAuth).toBe("bearer");
  });
});

describe("the Vercel deploy button", () => {
  const link = README.match(/\(https:\/\/vercel\.com\/new\/clone\?[^)\s]+\)/)?.[0].slice(1, -1);
  const params = new URL(link ?? "https://invalid/").searchParams;

  it("clones this repository", () => {
    expect(link, "the README has a deploy button").toBeTruthy();
    expect(params.get("repository-url")).toBe(REPOSITORY);
  });

  it("asks for every variable a Vercel deployment needs, and they make a working configuration", () => {
    const asked = (params.get("env") ?? "").split(",");
    expect(asked).toEqual(["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "LSS_ADMIN_TOKEN"]);
    const config = loadConfig(
      {
        UPSTASH_REDIS_REST_URL: "https://eu1-example.upstash.io",
        UPSTASH_REDIS_REST_TOKEN: "AXX-example-token",
        LSS_ADMIN_TOKEN: "an-admin-token-of-32-characters!",
      },
      "vercel",
    );
    expect(config.store.kind).toBe("upstash");
    // Without one of them, the deployment would not start: each is needed.
    expect(() => loadConfig({ LSS_ADMIN_TOKEN: "an-admin-token-of-32-characters!" }, "vercel")).toThrow();
    expect(params.get("envDescription")).toBeTruthy();
  });

  it("links to the README's Vercel steps", () => {
    const anchor = new URL(params.get("envLink") ?? "https://invalid/").hash.slice(1);
    expect(params.get("envLink")).toContain(REPOSITORY);
    const slugs = [...README.matchAll(/^#+ (.+)$/gm)].map((m) =>
      (m[1] ?? "")
        .toLowerCase()
        .replace(/[^\w\- ]/g, "")
        .replaceAll(" ", "-"),
    );
    expect(slugs).toContain(anchor);
  });
});

describe("vercel.json", () => {
  const config = JSON.parse(read("vercel.json"));

  it("sends every path to the one function, and builds nothing else", () => {
    expect(Object.keys(config.functions)).toEqual(["api/index.ts"]);
    expect(config.rewrites).toEqual([{ source: "/(.*)", destination: "/api" }]);
    // Vercel serves the output directory's files before rewrites: it must be empty, or it would
    // answer paths (such as /docs) that are the server's.
    const dir = mkdtempSync(join(tmpdir(), "lss-vercel-"));
    try {
      const built = spawnSync("sh", ["-c", config.buildCommand], { cwd: dir });
      expect(built.status).toBe(0);
      expect(readdirSync(join(dir, config.outputDirectory))).toEqual([]);
      expect(readdirSync(dir)).toEqual([config.outputDirectory]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(config.framework).toBeNull();
  });

  it("lets a held wait answer: maxDuration above LSS_MAX_WAIT_MS", () => {
    expect(config.functions["api/index.ts"].maxDuration * 1000).toBeGreaterThan(loadConfig({}).maxWaitMs);
  });
});

describe("Workers", () => {
  it("wrangler deploy (--dry-run: all but the upload) bundles the Worker under the free plan's 3 MB", () => {
    const out = mkdtempSync(join(tmpdir(), "lss-wrangler-"));
    try {
      const r = spawnSync(
        NODE24,
        ["node_modules/wrangler/bin/wrangler.js", "deploy", "--dry-run", "--outdir", out],
        {
          cwd: ROOT,
          encoding: "utf8",
          env: { PATH: process.env.PATH, HOME: process.env.HOME, WRANGLER_SEND_METRICS: "false", CI: "true" },
        },
      );
      expect(r.status, r.stderr).toBe(0);
      const gzip = Number(/gzip: ([\d.]+) KiB/.exec(r.stdout)?.[1]);
      expect(gzip).toBeGreaterThan(0);
      expect(gzip).toBeLessThan(3 * 1024);
      expect(readFileSync(join(out, "workers.js"), "utf8")).toContain(`"${VERSION}"`);
      console.info(`the Worker: ${gzip} KiB gzipped`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 60_000);

  it("the README names the Node that Wrangler needs", () => {
    const engines = JSON.parse(read("node_modules/wrangler/package.json")).engines.node as string;
    const minimum = engines.replace(/^>=\s*/, "");
    const workers = README.slice(README.indexOf("### Cloudflare Workers"));
    expect(workers.slice(0, workers.indexOf("\n### ", 5))).toContain(`Node ${minimum}`);
  });
});
