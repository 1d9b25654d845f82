#!/usr/bin/env node
/**
 * Prepares a release, as actions/typescript-action's script/release does, in one step:
 *
 *   npm run release -- 1.2.0        (or: patch, minor, major)
 *
 * On a clean main it sets the version everywhere it is written (package.json, package-lock.json,
 * packages/lss/package.json, src/version.ts), turns CHANGELOG.md's "Unreleased" section into the
 * version's, rebuilds dist/ (the action carries its version), commits "Release 1.2.0" and tags
 * v1.2.0. Pushing the tag (`git push origin main v1.2.0`, or --push) starts the release workflow:
 * tests, the GitHub release with these notes, the moving major tag (v1), the npm package.
 *
 * Also: --notes <version> prints a version's changelog section (the workflow's release notes), and
 * --check-tag <tag> fails unless the tag is v<package.json's version>.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
const UNRELEASED = "## Unreleased";
/** The branch releases are cut on (the release workflow tests whatever commit the tag names). */
const RELEASE_BRANCH = process.env.RELEASE_BRANCH ?? "main";

class ReleaseError extends Error {}

const read = (file) => readFileSync(join(ROOT, file), "utf8");
const write = (file, text) => writeFileSync(join(ROOT, file), text);
const git = (...args) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
const currentVersion = () => JSON.parse(read("package.json")).version;

/** Two pre-release identifiers by semver's §11: numbers by value, and below words. */
function compareIdentifiers(a, b) {
  const [na, nb] = [/^\d+$/.test(a), /^\d+$/.test(b)];
  if (na && nb) return Math.sign(Number(a) - Number(b));
  if (na !== nb) return na ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

/** -1, 0 or 1, by semver's precedence (a pre-release comes before its release). */
export function compareVersions(a, b) {
  const [pa, pb] = [SEMVER.exec(a), SEMVER.exec(b)];
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return Math.sign(d);
  }
  if (pa[4] === pb[4]) return 0;
  if (pa[4] === undefined) return 1;
  if (pb[4] === undefined) return -1;
  const [ia, ib] = [pa[4].split("."), pb[4].split(".")];
  for (let i = 0; i < Math.min(ia.length, ib.length); i++) {
    const d = compareIdentifiers(ia[i], ib[i]);
    if (d !== 0) return d;
  }
  return Math.sign(ia.length - ib.length);
}

/**
 * The version asked for: given as is, or the next patch, minor or major of `current`. From a
 * pre-release, as `npm version` does: 1.0.0-rc.1's patch is 1.0.0, 1.1.0-rc.1's minor 1.1.0.
 */
export function nextVersion(current, asked) {
  const [, major, minor, patch] = SEMVER.exec(current).slice(0, 4).map(Number);
  const pre = SEMVER.exec(current)[4] !== undefined;
  if (asked === "patch") return `${major}.${minor}.${pre ? patch : patch + 1}`;
  if (asked === "minor") return pre && patch === 0 ? `${major}.${minor}.0` : `${major}.${minor + 1}.0`;
  if (asked === "major") return pre && minor === 0 && patch === 0 ? `${major}.0.0` : `${major + 1}.0.0`;
  if (!SEMVER.test(asked ?? ""))
    throw new ReleaseError(
      `'${asked ?? ""}' is not a version: give one like 1.2.0, or patch, minor or major`,
    );
  return asked;
}

/** The versions of the changelog's sections, newest first. */
const versionsOf = (changelog) => [...changelog.matchAll(/^## (\S+) — /gm)].map((m) => m[1]);

/**
 * The changelog's "Unreleased" section becomes the version's, under a new empty "Unreleased". A
 * release after its own pre-releases (1.0.0 after 1.0.0-rc.1) also lists what they brought.
 */
export function changelogFor(changelog, version, date) {
  const start = changelog.indexOf(`${UNRELEASED}\n`);
  if (start < 0) throw new ReleaseError(`CHANGELOG.md has no '${UNRELEASED}' section`);
  const rest = changelog.slice(start + UNRELEASED.length + 1);
  const end = rest.search(/^## /m);
  const entries = (end < 0 ? rest : rest.slice(0, end)).trim();
  const isStable = !version.includes("-");
  const preReleases = isStable ? versionsOf(changelog).filter((v) => v.startsWith(`${version}-`)) : [];
  const brought = preReleases.map((v) => `From ${v}:\n\n${notesOf(changelog, v).trim()}`);
  const body = [entries, ...brought].filter(Boolean).join("\n\n");
  if (!body) throw new ReleaseError(`CHANGELOG.md's '${UNRELEASED}' section is empty: nothing to release`);
  const older = end < 0 ? "" : rest.slice(end);
  return `${changelog.slice(0, start)}${UNRELEASED}\n\n## ${version} — ${date}\n\n${body}\n${older ? `\n${older}` : ""}`;
}

/** A version's section of the changelog, without its heading. */
export function notesOf(changelog, version) {
  const heading = new RegExp(`^## ${version.replaceAll(".", "\\.")} — .*$`, "m");
  const match = heading.exec(changelog);
  if (!match) throw new ReleaseError(`CHANGELOG.md has no section for ${version}`);
  const rest = changelog.slice(match.index + match[0].length);
  const end = rest.search(/^## /m);
  return `${(end < 0 ? rest : rest.slice(0, end)).trim()}\n`;
}

function setVersion(version) {
  for (const file of ["package.json", "packages/lss/package.json"]) {
    const manifest = JSON.parse(read(file));
    manifest.version = version;
    write(file, `${JSON.stringify(manifest, null, 2)}\n`);
  }
  const lock = JSON.parse(read("package-lock.json"));
  lock.version = version;
  lock.packages[""].version = version;
  write("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
  const source = read("src/version.ts");
  const updated = source.replace(/export const VERSION = "[^"]*";/, `export const VERSION = "${version}";`);
  if (updated === source && !source.includes(`"${version}"`))
    throw new ReleaseError('src/version.ts has no `export const VERSION = "…";` to set');
  write("src/version.ts", updated);
}

function prepare(asked, { push, date }) {
  if (git("status", "--porcelain"))
    throw new ReleaseError("the working tree has changes: commit or stash them first");
  const branch = git("rev-parse", "--abbrev-ref", "HEAD");
  if (branch !== RELEASE_BRANCH)
    throw new ReleaseError(
      `releases are cut on ${RELEASE_BRANCH}, and this is ${branch}: git switch ${RELEASE_BRANCH}`,
    );
  const current = currentVersion();
  const version = nextVersion(current, asked);
  // The current version may be released once (the first release); after that, only a later one.
  const order = compareVersions(version, current);
  if (order < 0 || (order === 0 && git("tag", "--list", `v${current}`)))
    throw new ReleaseError(`${version} is not after ${current}, package.json's version`);
  const tags = git("tag", "--list", "v*.*.*")
    .split("\n")
    .filter((t) => SEMVER.test(t.slice(1)));
  const newer = tags.find((t) => compareVersions(t.slice(1), version) >= 0);
  if (newer) throw new ReleaseError(`tag ${newer} exists: ${version} must come after it`);

  write("CHANGELOG.md", changelogFor(read("CHANGELOG.md"), version, date));
  setVersion(version);
  if (!existsSync(join(ROOT, "node_modules")))
    execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: ROOT, stdio: "inherit" });
  execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" });
  git("add", "--all");
  git("commit", "--quiet", "-m", `Release ${version}`, "-m", notesOf(read("CHANGELOG.md"), version));
  git("tag", "--annotate", `v${version}`, "-m", `v${version}`);
  console.log(`Release ${version} committed and tagged v${version}.`);
  if (push) {
    git("push", "origin", "HEAD", `v${version}`);
    console.log("Pushed: the release workflow takes it from here.");
  } else {
    console.log(`Push it: git push origin HEAD v${version}  (the release workflow takes it from there)`);
  }
}

function main(argv) {
  const args = argv.slice(2);
  if (args[0] === "--notes") return process.stdout.write(notesOf(read("CHANGELOG.md"), args[1] ?? ""));
  if (args[0] === "--check-tag") {
    const expected = `v${currentVersion()}`;
    if (args[1] !== expected)
      throw new ReleaseError(`tag ${args[1]} is not ${expected}, package.json's version`);
    return console.log(`${args[1]} is package.json's version`);
  }
  const push = args.includes("--push");
  const asked = args.find((a) => !a.startsWith("--"));
  const date = process.env.RELEASE_DATE ?? new Date().toISOString().slice(0, 10);
  prepare(asked, { push, date });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv);
  } catch (err) {
    if (!(err instanceof ReleaseError)) throw err;
    console.error(`release: ${err.message}`);
    process.exit(1);
  }
}
