/**
 * `npm ci` on every platform: npm refuses (EBADPLATFORM) a package whose `os` or `cpu` does not
 * match the machine unless it is optional, in which case it skips it (npm-install-checks'
 * checkPlatform, as npm's install applies it). So every locked package limited to some platforms
 * must be optional; and `node` in npm scripts is the machine's own, not a Node from node_modules.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
  packages: Record<
    string,
    { os?: string[]; cpu?: string[]; optional?: boolean; devOptional?: boolean; bin?: Record<string, string> }
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
