/**
 * `npm ci` on every platform: npm refuses (EBADPLATFORM) a package whose `os` or `cpu` does not
 * match the machine unless it is optional, in which case it skips it (npm-install-checks'
 * checkPlatform, as npm's install applies it). So every locked package limited to some platforms
 * must be optional; and `node` in npm scripts is the machine's own, not a Node from node_modules.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { minVersion, subset } from "semver";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<
    string,
    {
      os?: string[];
      cpu?: string[];
      optional?: boolean;
      dev?: boolean;
      devOptional?: boolean;
      bin?: Record<string, string>;
      engines?: { node?: string };
    }
  >;
};

describe("npm ci on macOS, Windows, arm64 and x64", () => {
  it("locks no package limited to some platforms that npm must install", () => {
    const limited = Object.entries(lock.packages).filter(([, p]) => p.os || p.cpu);
    expect(limited.length).toBeGreaterThan(0); // esbuild's, workerd's… binaries: optional
    const required = limited.filter(([, p]) => !p.optional && !p.devOptional).map(([path]) => path);
    expect(required).toEqual([]);
  });

  it("installs no package with a `node` command, which npm scripts and npx would run instead of the machine's", () => {
    const withNode = Object.entries(lock.packages)
      .filter(([, p]) => p.bin && "node" in p.bin)
      .map(([path]) => path);
    expect(withNode).toEqual([]);
    expect(existsSync(join(ROOT, "node_modules/.bin/node"))).toBe(false);
  });
});

describe("the Node the server needs", () => {
  const ours = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { engines: { node: string } })
    .engines.node;

  it("is one every package the server runs with accepts", () => {
    const refusing = Object.entries(lock.packages)
      .filter(([path, p]) => path && !p.dev && p.engines?.node && !subset(ours, p.engines.node))
      .map(([path, p]) => `${path} (${p.engines?.node})`);
    expect(refusing).toEqual([]);
  });

  it("is the one the README names", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const minimum = minVersion(ours)?.version.replace(/\.0$/, "");
    expect(readme).toContain(`Node.js ${minimum} or later`);
  });
});
