/** The job summary shows other jobs' words as text: no links, images, HTML or formatting from them. */
import { describe, expect, it } from "vitest";
import { mdCode, mdText, summaryMarkdown } from "../src/action/summary.js";

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

  it("plain text reads as it was", () => {
    expect(mdText("octo/app · E2E · https://github.com/octo/app/actions/runs/1")).toBe(
      "octo/app · E2E · https://github.com/octo/app/actions/runs/1",
    );
  });
});
