/** What every command is given: the terminal, the client its flags name, printing, its exit code. */

import { type Command, CommanderError } from "commander";
import { createClient, type LssClient } from "../client/client.js";
import { NAMESPACE_PATTERN, NAMESPACE_RULE } from "../protocol/namespace.js";
import { VERSION } from "../version.js";
import { Exit } from "./exit-codes.js";
import type { Terminal } from "./output.js";

interface Globals {
  url?: string;
  token?: string;
  namespace?: string;
  json?: boolean;
}

export interface CliContext {
  term: Terminal;
  /** The client of --url / LSS_URL and --token / LSS_TOKEN. */
  clientOf(cmd: Command): LssClient;
  json(cmd: Command): boolean;
  /** The result: as JSON with --json, else the plain line. */
  print(cmd: Command, value: unknown, plain: string): void;
  /** The process's exit code, when it is not 0. */
  exit(code: number): void;
}

export function cliContext(term: Terminal, env: Record<string, string | undefined>) {
  let exitCode: number = Exit.ok;
  const json = (cmd: Command) => Boolean((cmd.optsWithGlobals() as Globals).json);
  const context: CliContext = {
    term,
    clientOf(cmd) {
      const g = cmd.optsWithGlobals() as Globals;
      const url = g.url ?? env.LSS_URL;
      if (!url) throw new CommanderError(Exit.usage, "lss.url", "lss: no server: pass --url or set LSS_URL");
      if (!/^https?:\/\//.test(url))
        throw new CommanderError(Exit.usage, "lss.url", `lss: --url must be http(s): '${url}'`);
      const namespace = g.namespace ?? env.LSS_NAMESPACE;
      if (namespace !== undefined && !NAMESPACE_PATTERN.test(namespace))
        throw new CommanderError(
          Exit.usage,
          "lss.namespace",
          `lss: --namespace must be ${NAMESPACE_RULE}: '${namespace}'`,
        );
      return createClient({
        url,
        token: g.token ?? env.LSS_TOKEN,
        namespace,
        userAgent: `lss-cli/${VERSION}`,
      });
    },
    json,
    print: (cmd, value, plain) => term.out(json(cmd) ? JSON.stringify(value) : plain),
    exit: (code) => {
      exitCode = code;
    },
  };
  return { context, exitCode: () => exitCode };
}
