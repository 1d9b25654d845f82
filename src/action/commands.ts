/**
 * The part of the runner's protocol the action speaks, in a few lines instead of @actions/core
 * (whose HTTP client, undici among it, cost every step ~100 ms of start-up it never used):
 * log lines and `::notice::`/`::warning::`/`::error::`/`::add-mask::` workflow commands on stdout, outputs and
 * saved state appended to the GITHUB_OUTPUT and GITHUB_STATE files (`name<<DELIMITER` heredocs),
 * state read back as STATE_<name>, the job summary appended to GITHUB_STEP_SUMMARY. Each does what
 * @actions/core's function of the same name does.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync, existsSync } from "node:fs";
import { EOL } from "node:os";

/** As @actions/core escapes a command's data: %, CR and LF. */
const escapeData = (text: string) => text.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");

const escapeProperty = (text: string) => escapeData(text).replace(/:/g, "%3A").replace(/,/g, "%2C");

/** `::name::data`, or `::name prop=value::data`. */
function issue(name: string, data: string, properties: Record<string, string> = {}) {
  const props = Object.entries(properties)
    .map(([k, v]) => `${k}=${escapeProperty(v)}`)
    .join(",");
  process.stdout.write(`::${name}${props ? ` ${props}` : ""}::${escapeData(data)}${EOL}`);
}

/** Appends `name<<ghadelimiter_<uuid>` … to the runner's file for `command` (OUTPUT, STATE). */
function appendKeyValue(file: string, name: string, value: string) {
  if (!existsSync(file)) throw new Error(`Missing file at path: ${file}`);
  const delimiter = `ghadelimiter_${randomUUID()}`;
  if (name.includes(delimiter) || value.includes(delimiter)) {
    throw new Error(`Unexpected input: ${name} should not contain the delimiter "${delimiter}"`);
  }
  appendFileSync(file, `${name}<<${delimiter}${EOL}${value}${EOL}${delimiter}${EOL}`, "utf8");
}

export const info = (message: string) => {
  process.stdout.write(message + EOL);
};
export const warning = (message: string) => issue("warning", message);
export const notice = (message: string) => issue("notice", message);
export const error = (message: string) => issue("error", message);
export const setFailed = (message: string) => {
  process.exitCode = 1;
  error(message);
};
/** Masks the value in every later line of the job's log. */
export const setSecret = (value: string) => issue("add-mask", value);

export function setOutput(name: string, value: string) {
  const file = process.env.GITHUB_OUTPUT;
  if (file) return appendKeyValue(file, name, value);
  process.stdout.write(EOL);
  issue("set-output", value, { name });
}

export function saveState(name: string, value: string) {
  const file = process.env.GITHUB_STATE;
  if (file) return appendKeyValue(file, name, value);
  issue("save-state", value, { name });
}

export const getState = (name: string) => process.env[`STATE_${name}`] ?? "";

/** Appends Markdown to the job summary; outside a runner (no GITHUB_STEP_SUMMARY) there is none. */
export function appendSummary(markdown: string) {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (file) appendFileSync(file, markdown, "utf8");
}
