/**
 * Releases: one version written in four places and kept equal, the changelog's shape, the release
 * script's rules (pure functions, then the script itself on a clone of this repository), and the
 * release workflow's steps that matter, in their order.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { changelogFor, compareVersions, nextVersion, notesOf } from "../scripts/release.mjs";
import { VERSION } from "../src/version.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const read = (file: string, root = ROOT) => readFileSync(join(root, file), "utf8");
const json = (file: string, root = ROOT) => JSON.parse(read(file, root));

describe("one version", () => {
  it("package.json, package-lock.json, the lss package and src/version.ts agree", () => {
    const version = json("package.json").version;
    expect(VERSION).toBe(version);
    expect(json("packages/lss/package.json").version).toBe(version);
    const lock = json("package-lock.json");
    expect([lock.version, lock.packages[""].version]).toEqual([version, version]);
  });

  it("the changelog opens with Unreleased, then each release newest first, dated", () => {
    const headings = [...read("CHANGELOG.md").matchAll(/^## (.+)$/gm)].map((m) => m[1] ?? "");
    expect(headings[0]).toBe("Unreleased");
    const released = headings.slice(1).map((h) => {
      expect(h).toMatch(/^\d+\.\d+\.\d+(-[\w.]+)? — \d{4}-\d{2}-\d{2}$/);
      return h.split(" ")[0];
    });
    const sorted = [...released].sort((a, b) => compareVersions(b, a));
    expect(released).toEqual(sorted);
  });
});

describe("the release script's rules", () => {
  it("orders versions as semver does (§11)", () => {
    const ordered = [
      "1.0.0-alpha",
      "1.0.0-alpha.1",
      "1.0.0-alpha.beta",
      "1.0.0-beta",
      "1.0.0-beta.2",
      "1.0.0-beta.11",
      "1.0.0-rc.1",
      "1.0.0-rc.9",
      "1.0.0-rc.10",
      "1.0.0",
      "1.9.9",
      "1.10.0",
      "2.0.0",
    ];
    for (const [i, a] of ordered.entries())
      for (const [j, b] of ordered.entries())
        expect([a, b, compareVersions(a, b)]).toEqual([a, b, Math.sign(i - j)]);
  });

  it("takes a version, or patch, minor or major of the current one", () => {
    expect(nextVersion("1.4.2", "patch")).toBe("1.4.3");
    expect(nextVersion("1.4.2", "minor")).toBe("1.5.0");
    expect(nextVersion("1.4.2", "major")).toBe("2.0.0");
    expect(nextVersion("1.4.2", "1.6.0-rc.1")).toBe("1.6.0-rc.1");
    // From a pre-release, its own release first (as npm version does).
    expect(nextVersion("1.0.0-rc.2", "patch")).toBe("1.0.0");
    expect(nextVersion("1.1.0-rc.1", "minor")).toBe("1.1.0");
    expect(nextVersion("1.1.1-rc.1", "minor")).toBe("1.2.0");
    expect(nextVersion("2.0.0-rc.1", "major")).toBe("2.0.0");
    expect(nextVersion("2.1.0-rc.1", "major")).toBe("3.0.0");
    expect(() => nextVersion("1.4.2", "v1.5")).toThrow(/'v1.5' is not a version/);
    expect(() => nextVersion("1.4.2", undefined)).toThrow(/is not a version/);
  });

  const CHANGELOG =
    "# Changelog\n\nIntro.\n\n## Unreleased\n\n- Added a thing.\n\n## 1.0.0 — 2026-01-01\n\n- First.\n";

  it("turns Unreleased into the version's section, under a new empty Unreleased", () => {
    const next = changelogFor(CHANGELOG, "1.1.0", "2026-12-03");
    expect(next).toBe(
      "# Changelog\n\nIntro.\n\n## Unreleased\n\n## 1.1.0 — 2026-12-03\n\n- Added a thing.\n\n## 1.0.0 — 2026-01-01\n\n- First.\n",
    );
    expect(notesOf(next, "1.1.0")).toBe("- Added a thing.\n");
    expect(notesOf(next, "1.0.0")).toBe("- First.\n");
  });

  it("a release after its own pre-releases lists what they brought", () => {
    const rc1 = changelogFor(CHANGELOG, "1.1.0-rc.1", "2026-12-03");
    const rc2 = changelogFor(
      rc1.replace("## Unreleased\n", "## Unreleased\n\n- Fixed the thing.\n"),
      "1.1.0-rc.2",
      "2026-12-04",
    );
    const stable = changelogFor(rc2, "1.1.0", "2026-12-05");
    expect(notesOf(stable, "1.1.0")).toBe(
      "From 1.1.0-rc.2:\n\n- Fixed the thing.\n\nFrom 1.1.0-rc.1:\n\n- Added a thing.\n",
    );
    expect(notesOf(stable, "1.1.0-rc.1")).toBe("- Added a thing.\n");
    // A pre-release of another version brings nothing.
    expect(() => changelogFor(rc2, "1.2.0", "2026-12-05")).toThrow(/nothing to release/);
  });

  it("refuses a release with nothing in Unreleased, or a changelog without it", () => {
    const empty = changelogFor(CHANGELOG, "1.1.0", "2026-12-03");
    expect(() => changelogFor(empty, "1.2.0", "2026-12-04")).toThrow(/section is empty: nothing to release/);
    expect(() => changelogFor("# Changelog\n", "1.2.0", "2026-12-04")).toThrow(/no '## Unreleased' section/);
    expect(() => notesOf(CHANGELOG, "9.9.9")).toThrow(/no section for 9.9.9/);
  });
});

describe("the release script on a clone of this repository", () => {
  let clone: string;
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: "Release Test",
    GIT_AUTHOR_EMAIL: "release@test.invalid",
    GIT_COMMITTER_NAME: "Release Test",
    GIT_COMMITTER_EMAIL: "release@test.invalid",
    RELEASE_DATE: "2026-12-03",
  };
  const release = (...args: string[]) =>
    spawnSync(process.execPath, ["scripts/release.mjs", ...args], { cwd: clone, env, encoding: "utf8" });
  const git = (...args: string[]) => execFileSync("git", args, { cwd: clone, env, encoding: "utf8" }).trim();

  beforeAll(() => {
    clone = mkdtempSync(join(tmpdir(), "lss-release-"));
    execFileSync("git", ["clone", "--quiet", ROOT, clone]);
    // What this checkout has on disk but not committed is not the clone's: its tree is HEAD's.
    // The clone uses this checkout's node_modules (a link, which .gitignore's "node_modules/" misses).
    symlinkSync(join(ROOT, "node_modules"), join(clone, "node_modules"));
    appendFileSync(join(clone, ".git/info/exclude"), "/node_modules\n");
  });
  afterAll(() => rmSync(clone, { recursive: true, force: true }));

  it("refuses a working tree with changes, and a version before the current one", () => {
    const current = json("package.json", clone).version as string;
    const before = compareVersions(current, "0.0.1") > 0 ? "0.0.1" : null;
    if (before) {
      const r = release(before);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`release: ${before} is not after ${current}`);
    }
    execFileSync("sh", ["-c", "echo more >> README.md"], { cwd: clone });
    const dirty = release("major");
    expect(dirty.status).toBe(1);
    expect(dirty.stderr).toContain("release: the working tree has changes");
    git("checkout", "README.md");
    git("switch", "--quiet", "-c", "topic");
    expect(release("major").stderr).toContain("release: releases are cut on main, and this is topic");
    git("switch", "--quiet", "main");
  });

  it("cuts a release in one step: versions, changelog, dist/, commit and tag", () => {
    // A change to release (this checkout may itself be a release, whose Unreleased is empty).
    const log = read("CHANGELOG.md", clone).replace(
      "## Unreleased\n",
      "## Unreleased\n\n- A change to release.\n",
    );
    writeFileSync(join(clone, "CHANGELOG.md"), log);
    git("commit", "--quiet", "-am", "A change");
    const current = json("package.json", clone).version as string;
    const version = nextVersion(current, "major");
    const r = release("major");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Release ${version} committed and tagged v${version}`);

    expect(json("package.json", clone).version).toBe(version);
    expect(json("packages/lss/package.json", clone).version).toBe(version);
    expect(json("package-lock.json", clone).packages[""].version).toBe(version);
    expect(read("src/version.ts", clone)).toContain(`export const VERSION = "${version}";`);
    const changelog = read("CHANGELOG.md", clone);
    expect(changelog).toContain(`## Unreleased\n\n## ${version} — 2026-12-03\n\n- A change to release.\n`);
    // The action's bundles carry the version they were built from.
    expect(read("dist/main/index.js", clone)).toContain(`"${version}"`);
    expect(read("dist/cli/index.js", clone)).toContain(`"${version}"`);

    expect(git("status", "--porcelain")).toBe("");
    expect(git("log", "-1", "--format=%s")).toBe(`Release ${version}`);
    expect(git("rev-parse", `v${version}^{commit}`)).toBe(git("rev-parse", "HEAD"));
    expect(git("cat-file", "-t", `v${version}`)).toBe("tag");
    expect(release("--check-tag", `v${version}`).status).toBe(0);
    expect(release("--check-tag", `v${current}`).stderr).toContain(`is not v${version}`);

    // Once released, the same version is not released again; and nothing new is nothing to release.
    expect(release(version).stderr).toContain(`release: ${version} is not after ${version}`);
    expect(release("patch").stderr).toContain("nothing to release");
    expect(git("status", "--porcelain")).toBe("");
  }, 180_000);
});

describe("the release workflow", () => {
  type Step = { name?: string; uses?: string; run?: string; if?: string; with?: Record<string, unknown> };
  type Job = { needs?: string; permissions?: Record<string, string>; steps: Step[] };
  const workflow = parseYaml(read(".github/workflows/release.yml"));
  const jobs: Record<string, Job> = workflow.jobs;
  const runs = (text: string) => (s: Step) => Boolean(s.run?.includes(text));
  /** The index of the step of `job` that `match`es; the test fails naming it when there is none. */
  const index = (job: Job, match: (s: Step) => boolean, what: string) => {
    const i = job.steps.findIndex(match);
    expect(i, `the workflow has a step that ${what}`).toBeGreaterThanOrEqual(0);
    return i;
  };

  it("runs on version tags only", () => {
    expect(Object.keys(workflow.on)).toEqual(["push"]);
    expect(workflow.on.push.branches).toBeUndefined();
    for (const pattern of workflow.on.push.tags) expect(pattern).toMatch(/^v\[0-9\]\+\.\[0-9\]\+\.\[0-9\]\+/);
  });

  it("tests with read-only rights: the tag, dist/ and the tests, and no credentials kept", () => {
    expect(workflow.permissions).toEqual({ contents: "read" });
    const test = jobs.test as Job;
    expect(test.permissions).toBeUndefined();
    const checkout =
      test.steps[index(test, (s) => s.uses?.startsWith("actions/checkout@") ?? false, "checks out")];
    expect(checkout?.with?.["persist-credentials"]).toBe(false);
    const tag = index(test, runs("release.mjs --check-tag"), "checks the tag against package.json");
    const install = index(test, runs("npm ci"), "installs");
    const dist = index(test, runs("npm run check-dist"), "checks dist/");
    const tests = index(test, runs("npm test"), "runs the tests");
    expect([tag, install, dist, tests]).toEqual([...[tag, install, dist, tests]].sort((a, b) => a - b));
  });

  it("releases only after the tests, each step skipped when already done", () => {
    const release = jobs.release as Job;
    expect(release.needs).toBe("test");
    expect(release.permissions).toEqual({ contents: "write", "id-token": "write" });
    expect(release.steps.find(runs("npm ci"))?.run).toContain("--ignore-scripts");
    const publish = index(release, runs("npm publish ./packages/lss"), "publishes the package");
    const notes = index(release, runs("release.mjs --notes"), "takes the notes from CHANGELOG.md");
    const created = index(release, runs("gh release create"), "creates the GitHub release");
    const major = index(release, runs('git push --force origin "refs/tags/$major"'), "moves the major tag");
    expect([publish, notes, created, major]).toEqual(
      [...[publish, notes, created, major]].sort((a, b) => a - b),
    );
    const step = (i: number) => release.steps[i] as Step;
    expect(step(publish).run).toContain('npm view "$name@$version" version');
    expect(step(publish).run).toContain("--ignore-scripts");
    expect(step(publish).run).toContain("set the NPM_TOKEN secret");
    expect(step(created).run).toContain('gh release view "$GITHUB_REF_NAME"');
    expect(step(created).run).toContain("--notes-file release-notes.md");
    expect(step(created).run).toContain("--verify-tag");
  });

  it("moves the major tag (v1 for v1.2.3) to the tag's commit, never for a pre-release", () => {
    const release = jobs.release as Job;
    const moves = release.steps[index(release, runs("refs/tags/$major"), "moves the major tag")] as Step;
    expect(moves.run).toContain('git tag --force "$major" "$GITHUB_SHA"');
    expect(moves.if).toContain("!contains(github.ref_name, '-')");
    const line = moves.run?.split("\n").find((l) => l.startsWith("major=")) ?? "";
    const major = (tag: string) =>
      execFileSync("bash", ["-c", `${line}; echo "$major"`], { env: { GITHUB_REF_NAME: tag } })
        .toString()
        .trim();
    expect(major("v1.2.3")).toBe("v1");
    expect(major("v12.0.1")).toBe("v12");
  });
});
