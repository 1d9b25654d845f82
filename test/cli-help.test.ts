/**
 * `lss <command> --help` shows each duration's default as a duration (30s, 10m): shown in
 * milliseconds, a copied `--ttl 30000` would be read as 30000 seconds. And the defaults it shows
 * are the ones the commands use.
 */
import { describe, expect, it } from "vitest";
import { main } from "../src/cli/program.js";
import { parseDuration } from "../src/protocol/durations.js";

async function helpOf(command: string): Promise<string> {
  const out: string[] = [];
  const term = {
    out: (l: string) => out.push(l),
    err: (l: string) => out.push(l),
    progress: () => {},
    interactive: false,
  };
  expect(await main(["node", "lss", command, "--help"], term, {})).toBe(0);
  return out.join("\n").replace(/\s+/g, " ");
}

describe.each(["run", "acquire", "renew", "wait"])("lss %s --help", (command) => {
  it("shows every duration's default as a duration that reads back as the same", async () => {
    const help = await helpOf(command);
    const defaults = [...help.matchAll(/--[a-z-]+ <duration> [^(]*\(default: ([^)]+)\)/g)].map(
      (m) => m[1] ?? "",
    );
    expect(defaults.length).toBeGreaterThan(0);
    for (const shown of defaults) {
      expect(shown).toMatch(/^\d+[smh]$/);
      expect(parseDuration(shown)).not.toBeNull();
    }
  });
});

it("lss run's defaults: a 30 s lease, 10 minutes of waiting", async () => {
  const help = await helpOf("run");
  expect(help).toMatch(/--ttl <duration> .*?\(default: 30s\)/);
  expect(help).toMatch(/--timeout <duration> .*?\(default: 10m\)/);
});
