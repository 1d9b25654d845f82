#!/usr/bin/env node
/**
 * The Node 24 some tests need: GitHub runs the action (`runs.using: node24`) with it, and Wrangler
 * needs Node 22.12 or later. `npm test` runs this first (pretest): it finds a Node 24 on this
 * machine, or fetches the official binary from npm (node-<platform>-<arch>: Linux x64 and arm64,
 * Windows x64 have it; macOS has none) into a cache folder outside the repository. It is no dependency of the project, so that `npm ci` works on every
 * platform and `node` in npm scripts stays the machine's own.
 *
 * Found, in order: the Node running this (if 24+), LSS_NODE24, the cache folder.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The Node 24 the tests run the action with: the same release every time. */
export const NODE24_VERSION = "24.21.0";

const platform = process.platform === "win32" ? "win" : process.platform;
const PACKAGE = `node-${platform}-${process.arch}`;
const CACHE = join(
  process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"),
  "lss",
  `${PACKAGE}-${NODE24_VERSION}`,
);
const CACHED = join(
  CACHE,
  "node_modules",
  PACKAGE,
  "bin",
  process.platform === "win32" ? "node.exe" : "node",
);

/** The major version of the Node at `node`, or 0 when it does not run. */
export const majorOf = (node) => {
  try {
    return Number(
      execFileSync(node, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }).trim(),
    );
  } catch {
    return 0;
  }
};

/** A Node 24 (or later) this machine has, without fetching one; null when there is none. */
export function findNode24() {
  if (Number(process.versions.node.split(".")[0]) >= 24) return process.execPath;
  const given = process.env.LSS_NODE24;
  if (given) {
    if (majorOf(given) >= 24) return given;
    throw new Error(`LSS_NODE24 is ${given}, which is not a Node 24 or later`);
  }
  return existsSync(CACHED) ? CACHED : null;
}

/** How to get one, for the tests' error messages. */
export const HOW_TO_GET_NODE24 =
  "run `node scripts/node24.mjs` (npm test runs it first), or set LSS_NODE24 to a Node 24 binary";

function fetchNode24() {
  mkdirSync(CACHE, { recursive: true });
  console.error(`lss: fetching Node ${NODE24_VERSION} (${PACKAGE}) from npm into ${CACHE}`);
  try {
    execFileSync(
      "npm",
      [
        "install",
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        "--prefix",
        CACHE,
        `${PACKAGE}@${NODE24_VERSION}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"], shell: process.platform === "win32" },
    );
  } catch {
    throw new Error(
      `npm has no ${PACKAGE}@${NODE24_VERSION} for this machine: install Node 24 (e.g. nvm install 24) and set LSS_NODE24 to its binary`,
    );
  }
  if (majorOf(CACHED) < 24) throw new Error(`${CACHED} does not run as Node 24`);
  return CACHED;
}

// As pretest: without a Node 24 the other tests still run (lint and type check too); only those
// that need it fail, each saying how to get one.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    console.log(`Node 24 for the tests: ${findNode24() ?? fetchNode24()}`);
  } catch (err) {
    console.error(`lss: no Node 24 for the tests that need it: ${err.message}`);
  }
}
