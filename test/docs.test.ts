/**
 * The README and the reference under docs/ as a reader follows them: every relative link names a
 * file that exists, and every #anchor a heading (or an explicit id) of its target, as GitHub makes
 * them; the README's tables of the action's inputs and outputs list what action.yml declares.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const ROOT = join(import.meta.dirname, "..");
const PAGES = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");

/** Text outside fenced code blocks, where a `#` line is a heading and `[x](y)` a link. */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, "");

/** GitHub's anchor for a heading: lower case, punctuation dropped but `-` and `_`, spaces to `-`. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replaceAll(" ", "-");

/** The anchors a page offers: its headings' slugs (a repeated one gets -1, -2 …) and explicit ids. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of prose(text).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = slug(heading as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const [, id] of text.matchAll(/<a id="([^"]+)"><\/a>/g)) out.add(id as string);
  return out;
}

describe.each(PAGES)("%s", (page) => {
  const links = [...prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] as string)
    .filter((target) => !/^[a-z]+:/.test(target)); // https:, mailto:: not ours to check

  it("links only to files that exist, at anchors their headings make", () => {
    const broken = links.filter((target) => {
      const [path, anchor] = target.split("#") as [string, string | undefined];
      const file = path === "" ? page : normalize(join(dirname(page), path));
      if (!existsSync(join(ROOT, file))) return true;
      return anchor !== undefined && !anchors(read(file)).has(anchor);
    });
    expect(broken).toEqual([]);
  });
});

describe("the README's links", () => {
  it("reach every page of the reference", () => {
    const linked = new Set(
      [...read("README.md").matchAll(/\]\((docs\/[^)#\s]+\.md)/g)].map((m) => m[1] as string),
    );
    expect(PAGES.filter((p) => p.startsWith("docs/") && !linked.has(p))).toEqual([]);
  });
});

describe("the README's tables of the action", () => {
  const action = parseYaml(read("action.yml")) as {
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
  };
  /** The first column of the table whose header starts with `| <first> |`. */
  const column = (first: string) => {
    const readme = read("README.md");
    const start = readme.indexOf(`\n| ${first} |`);
    expect(start, `the README has a table of ${first}s`).toBeGreaterThanOrEqual(0);
    const rows = readme.slice(start + 1).split("\n");
    const table = rows.slice(
      2,
      rows.findIndex((r) => !r.startsWith("|")),
    );
    return table.map((r) => /^\| `([^`]+)` \|/.exec(r)?.[1]);
  };

  it("list every input action.yml declares, and no other", () => {
    expect([...column("input")].sort()).toEqual(Object.keys(action.inputs).sort());
  });

  it("list every output action.yml declares, and no other", () => {
    expect([...column("output")].sort()).toEqual(Object.keys(action.outputs).sort());
  });
});

describe("slug", () => {
  it("makes GitHub's anchors", () => {
    expect(slug("Vercel + Upstash")).toBe("vercel--upstash");
    expect(slug("1. Run it locally")).toBe("1-run-it-locally");
    expect(slug("Why not GitHub's `concurrency:`?")).toBe("why-not-githubs-concurrency");
    expect(slug("Node + Redis (self-hosted)")).toBe("node--redis-self-hosted");
  });
});
