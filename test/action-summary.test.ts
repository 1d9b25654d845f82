/** The job summary shows other jobs' words as text: no links, images, HTML or formatting from them. */
import { micromark } from "micromark";
import { gfm, gfmHtml } from "micromark-extension-gfm";
import { describe, expect, it } from "vitest";
import { mdCode, mdText, recentHolders, summaryMarkdown } from "../src/action/summary.js";
import type { HistoryEvent } from "../src/protocol/lease.js";

/** Markdown as GitHub renders it: CommonMark with the GFM extensions (tables, autolink literals…). */
const render = (md: string) => micromark(md, { extensions: [gfm()], htmlExtensions: [gfmHtml()] }).trim();

const hostile = {
  holder_id: "[CI bot](https://evil.example/phish) ![pixel](https://evil.example/p.png)",
  reason: "<img src=x onerror=alert(1)> **urgent** | fake | cell `code` _x_ ~y~ # h",
};

const summary = summaryMarkdown({
  title: `LSS: acquired ${mdCode("qa`env|1")}`,
  lock: "qa`env|1",
  server: "https://lss.example.com",
  heldBefore: {
    ...hostile,
    fencing_token: 5,
    acquired_at: "2026-12-01T10:00:00.000Z",
    expires_at: "2026-12-01T10:01:00.000Z",
    expires_in_ms: 60_000,
    position: null,
  },
  fencingToken: 6,
});

describe("summaryMarkdown with a hostile holder", () => {
  it("leaves no link, image or HTML tag of theirs", () => {
    expect(summary).not.toMatch(/[^\\]\]\(/); // every "](" is escaped
    expect(summary).not.toMatch(/!\[/);
    expect(summary).not.toContain("<img");
    expect(summary).toContain("&lt;img src=x onerror=alert\\(1\\)&gt;");
    expect(summary).toContain("\\*\\*urgent\\*\\*");
  });

  it("keeps the table intact: their pipes do not add cells", () => {
    const row = summary.split("\n").find((line) => line.startsWith("| It was |")) ?? "";
    expect(row.replace(/\\\|/g, "").split("|")).toHaveLength(4); // "", " It was ", " text ", ""
  });

  it("a lock name with backticks and pipes stays one code span", () => {
    expect(summary).toContain("### LSS: acquired ``qa`env\\|1``");
    expect(mdCode("`x`")).toBe("`` `x` ``");
  });

  it("plain text reads as it was, rendered as GitHub renders Markdown (GFM)", () => {
    const text = "octo/app · E2E · https://github.com/octo/app/actions/runs/1 · 10:00:00 · me@x.io";
    expect(render(mdText(text))).toBe(`<p>${text}</p>`);
  });

  it("makes no link of a bare address, www. name or e-mail of theirs", () => {
    for (const text of [
      "see https://evil.example/login",
      "HTTP://EVIL.EXAMPLE",
      "www.evil.example/x",
      "WWW.evil.example",
      "mail ceo@evil.example",
      "(https://evil.example)",
    ]) {
      // Before: GitHub (GFM's autolink literals) made each of these a link.
      expect(render(text)).toContain("<a ");
      expect(render(mdText(text))).not.toContain("<a ");
    }
    const md = summaryMarkdown({
      title: "t",
      lock: "qa",
      server: "https://lss.example.com",
      holder: "https://evil.example/phish www.evil.example a@evil.example",
      recentHolders: ["https://evil.example/x: released 2026-12-01T10:00:00.000Z"],
    });
    expect(render(md)).not.toContain("<a ");
    expect(render(md)).toContain("https://evil.example/phish www.evil.example a@evil.example");
  });
});

describe("the key's recent holders (from its history)", () => {
  const event = (over: Partial<HistoryEvent>): HistoryEvent => ({
    event: "released",
    at: "2026-12-01T10:00:00.000Z",
    holder_id: "job",
    reason: null,
    mode: "exclusive",
    fencing_token: 1,
    held_ms: 60_000,
    actor: null,
    run_url: null,
    ...over,
  });

  it("lists the leases that ended, newest first: who, why, how it ended, when, after how long", () => {
    const lines = recentHolders([
      event({ event: "granted", holder_id: "now" }),
      event({ holder_id: "deploy", reason: "release 1.2", held_ms: 300_000 }),
      event({ event: "queue_timeout", holder_id: "impatient" }),
      event({ event: "expired", holder_id: "crashed", at: "2026-12-01T09:00:00.000Z", held_ms: 3_600_000 }),
      event({ event: "forced_release", holder_id: null, held_ms: null }),
    ]);
    expect(lines).toEqual([
      "deploy (release 1.2): released 2026-12-01T10:00:00.000Z after 5m",
      "crashed: expired 2026-12-01T09:00:00.000Z after 1h",
      "an anonymous holder: force-released 2026-12-01T10:00:00.000Z",
    ]);
  });

  it("shows at most five", () => {
    const many = Array.from({ length: 8 }, (_, i) => event({ holder_id: `job-${i}` }));
    expect(recentHolders(many).map((l) => l.split(":")[0])).toEqual([
      "job-0",
      "job-1",
      "job-2",
      "job-3",
      "job-4",
    ]);
  });

  it("goes into the summary as one row, each holder's text shown as text", () => {
    const md = summaryMarkdown({
      title: "t",
      lock: "qa",
      server: "https://lss",
      recentHolders: recentHolders([event({ holder_id: "[x](https://evil)" }), event({ holder_id: "b" })]),
    });
    const row = md.split("\n").find((l) => l.startsWith("| Held before |")) ?? "";
    expect(row).toContain("\\[x\\]\\(https\\://evil\\)\\: released");
    expect(row).toContain("<br>b\\: released");
    expect(summaryMarkdown({ title: "t", lock: "qa", server: "s", recentHolders: [] })).not.toContain(
      "Held before",
    );
  });
});
