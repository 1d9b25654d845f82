/**
 * The `lss` command line (commander): wrap a command in a lock (`run`), the lease steps apart
 * (`acquire`, `renew`, `release`, `status`, `wait`), what there is to see (`history`, `list`), and
 * the /locks API (`create`, `lock`, `unlock`, `check`), one group per file under commands/.
 * Configuration by flags or LSS_URL / LSS_TOKEN.
 */
import { Command, CommanderError, Option } from "commander";
import { LssError } from "../client/errors.js";
import { VERSION } from "../version.js";
import { registerAcquire, registerLeaseSteps, registerWait } from "./commands/leases.js";
import { registerReads } from "./commands/reads.js";
import { registerRun } from "./commands/run.js";
import { registerStateLocks } from "./commands/state-locks.js";
import { cliContext } from "./context.js";
import { Exit } from "./exit-codes.js";
import type { Terminal } from "./output.js";

export function buildProgram(term: Terminal, env: Record<string, string | undefined> = process.env) {
  const program = new Command("lss")
    .description("Locks for cron jobs, scripts and pipelines, on an LSS server")
    .addOption(new Option("--url <url>", "the LSS server").env("LSS_URL"))
    .addOption(new Option("--token <token>", "API token").env("LSS_TOKEN"))
    .addOption(
      new Option("--namespace <namespace>", "act in this namespace (a token with the admin scope)").env(
        "LSS_NAMESPACE",
      ),
    )
    .version(VERSION, "-V, --version")
    .option("--json", "print results as JSON")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => term.out(s.trimEnd()), writeErr: (s) => term.err(s.trimEnd()) });
  const { context, exitCode } = cliContext(term, env);
  // In the order `lss --help` lists them.
  registerRun(program, context);
  registerAcquire(program, context);
  registerLeaseSteps(program, context);
  registerReads(program, context);
  registerWait(program, context);
  registerStateLocks(program, context);
  return { program, exitCode };
}

/** Parses argv, runs the command, and returns the exit code; never throws. */
export async function main(
  argv: string[],
  term: Terminal,
  env?: Record<string, string | undefined>,
): Promise<number> {
  const { program, exitCode } = buildProgram(term, env);
  try {
    await program.parseAsync(argv);
    return exitCode();
  } catch (err) {
    term.progress(null);
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return Exit.ok;
      if (err.code.startsWith("lss.")) term.err(err.message);
      return Exit.usage;
    }
    if (err instanceof LssError) {
      term.err(`lss: ${err.message}${err.status ? ` (${err.code})` : ""}`);
      return Exit.failure;
    }
    term.err(`lss: ${err instanceof Error ? err.message : String(err)}`);
    return Exit.failure;
  }
}
