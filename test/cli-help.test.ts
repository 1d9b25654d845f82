/**
 * `lss <command> --help` shows each duration's default as a duration (30s, 10m): shown in
 * milliseconds, a copied `--ttl 30000` would be read as 30000 seconds. What it shows reads back
 * as the very default the command uses.
 */
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram, main } from "../src/cli/program.js";
import { parseDuration } from "../src/protocol/durations.js";

const term = () => {
  const out: string[] = [];
  const t = {
    out: (l: string) => out.push(l),
    err: (l: string) => out.push(l),
    progress: () => {},
    interactive: false,
  };
  return { t, out };
};

async function helpOf(command: string): Promise<string> {
  const { t, out } = term();
  expect(await main(["node", "lss", command, "--help"], t, {})).toBe(0);
  return out.join("\n").replace(/\s+/g, " ");
}

const { program } = buildProgram(term().t, {});
const durationOptions = (cmd: Command) => cmd.options.filter((o) => o.flags.includes("<duration>"));
const commands = program.commands.filter((c) => durationOptions(c).length > 0);

describe.each(commands.map((c) => [c.name(), c] as const))("lss %s --help", (name, cmd) => {
  it.each(durationOptions(cmd).map((o) => [o.long ?? o.flags, o] as const))(
    "shows %s's default as a duration that reads back as the default it uses",
    async (_flag, option) => {
      const shown = option.defaultValueDescription ?? "";
      expect(shown).toMatch(/^\d+[smh]$/);
      expect(parseDuration(shown)).toBe(option.defaultValue);
      expect(await helpOf(name)).toContain(`(default: ${shown})`);
    },
  );
});

it("covers the commands that take durations, with lss run's defaults: a 30 s lease, 10 minutes of waiting", async () => {
  expect(commands.map((c) => c.name()).sort()).toEqual(["acquire", "renew", "run", "wait"]);
  const help = await helpOf("run");
  expect(help).toMatch(/--ttl <duration> .*?\(default: 30s\)/);
  expect(help).toMatch(/--timeout <duration> .*?\(default: 10m\)/);
});
