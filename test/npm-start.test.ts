/**
 * `npm start` as a user runs it, and stops it: stopping npm (its pid, as a process manager or a
 * `kill` does) must not leave the server on the port. npm → sh → node: npm's SIGTERM ends the
 * shell only, so the server watches for its parent's end.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { freePort } from "./support/ports.js";
import { killOnExit, sleep } from "./support/processes.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const healthOf = (url: string) =>
  fetch(`${url}/health`).then(
    (r) => r.status,
    () => null,
  );

it.each([
  ["SIGTERM to npm's pid (a process manager, kill)", "pid"],
  ["SIGINT to its process group (Ctrl-C)", "group"],
] as const)(
  "%s stops the server",
  async (_what, to) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port) };
    const npm = spawn("npm", ["start", "--silent"], { cwd: ROOT, env, stdio: "ignore", detached: true });
    killOnExit(npm);
    for (let i = 0; i < 100 && (await healthOf(url)) !== 200; i++) await sleep(200);
    expect(await healthOf(url)).toBe(200);
    const exited = once(npm, "exit");
    if (to === "pid") npm.kill("SIGTERM");
    else process.kill(-(npm.pid as number), "SIGINT");
    await exited;
    let status: number | null = 200;
    for (let i = 0; i < 25 && status !== null; i++) {
      await sleep(200);
      status = await healthOf(url);
    }
    expect(status, "the server still answers after npm stopped").toBeNull();
  },
  60_000,
);
