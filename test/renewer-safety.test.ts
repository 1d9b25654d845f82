/**
 * The renewer deletes its config file as soon as it has read it (the API token or OIDC request
 * token in it must not stay on disk). It must never delete anything else: run as the runner runs
 * it (the built dist/renew), with no argument, or with a config file beside other files.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";

const RENEWER = fileURLToPath(new URL("../dist/renew/index.js", import.meta.url));
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "lss-renewer-safety-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

it("started without a config file: exits 2 saying so, and deletes nothing where it runs", () => {
  const cwd = tempDir();
  const canary = join(cwd, "keep-me.txt");
  writeFileSync(canary, "still here");
  const run = spawnSync(process.execPath, [RENEWER], { cwd, encoding: "utf8", timeout: 10_000 });
  expect(run.status).toBe(2);
  expect(run.stderr).toMatch(/no config file given/);
  expect(existsSync(canary)).toBe(true);
  expect(existsSync(cwd)).toBe(true);
});

it("deletes its config file, but not a folder that holds other files", () => {
  const dir = tempDir();
  const config = join(dir, "config.json");
  const neighbour = join(dir, "someone-elses.txt");
  writeFileSync(config, "{ not json");
  writeFileSync(neighbour, "still here");
  const run = spawnSync(process.execPath, [RENEWER, config], { encoding: "utf8", timeout: 10_000 });
  expect(run.status).not.toBe(0);
  expect(existsSync(config)).toBe(false);
  expect(existsSync(neighbour)).toBe(true);
});

it("removes the private folder main made for the config file once it is empty", () => {
  const parent = tempDir();
  const dir = mkdtempSync(join(parent, "lss-renewer-"));
  const config = join(dir, "config.json");
  writeFileSync(config, "{ not json");
  spawnSync(process.execPath, [RENEWER, config], { encoding: "utf8", timeout: 10_000 });
  expect(existsSync(dir)).toBe(false);
  expect(existsSync(parent)).toBe(true);
});
