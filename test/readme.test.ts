/**
 * What a new user does first: `npm start` with no configuration, then the README's and the
 * reference's curl commands (docs/), with the real curl, against that process.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ServerProcess, startServerProcess } from "./support/server-process.js";

const sh = promisify(execFile);
let server: ServerProcess;
let token: string;

beforeAll(async () => {
  server = await startServerProcess({}); // no configuration at all: memory store
  token = /admin token for this process[^:]*: (\S+)/.exec(server.output())?.[1] ?? "";
}, 30_000);
afterAll(() => server.kill());

const curl = async (script: string) =>
  (await sh("bash", ["-c", script], { env: { PATH: process.env.PATH ?? "", LSS: server.url, TOKEN: token } }))
    .stdout;

describe("a new user's first minutes", () => {
  it("is told loudly that locks are not durable, and gets a token to try the lease API", () => {
    expect(server.output()).toMatch(/WARNING: in-memory store: locks are NOT durable/);
    expect(token).toMatch(/^lss-try-[0-9a-f]{24}$/);
  });

  it("runs the README's lease API commands", async () => {
    const acquired = JSON.parse(
      await curl(`curl -s -X POST $LSS/infra/locks/qa-env/acquire -H "Authorization: Bearer $TOKEN" \\
        -H "Content-Type: application/json" -d '{"ttl_ms":60000,"holder_id":"e2e-suite","reason":"nightly E2E"}'`),
    );
    expect(acquired).toMatchObject({ status: "ok", key: "qa-env", locked: true, holder_id: "e2e-suite" });
    const seen = JSON.parse(await curl(`curl -s $LSS/infra/locks/qa-env -H "Authorization: Bearer $TOKEN"`));
    expect(seen).toMatchObject({ locked: true, holder_id: "e2e-suite", reason: "nightly E2E" });
    const released = JSON.parse(
      await curl(`curl -s -X POST $LSS/infra/locks/qa-env/release -H "Authorization: Bearer $TOKEN" \\
        -H "Content-Type: application/json" -d '{"token":"${acquired.token}"}'`),
    );
    expect(released).toEqual({ status: "ok", key: "qa-env", locked: false });
  });

  it("runs the lease API reference's history command, which shows the lease just taken and released", async () => {
    const reference = readFileSync(new URL("../docs/lease-api.md", import.meta.url), "utf8");
    const command = reference
      .split("\n")
      .find((l) => l.startsWith('curl -s "$LSS/infra/locks/qa-env/history'));
    expect(command).toBeDefined();
    const page = JSON.parse(await curl(command as string));
    expect(page.events.map((e: { event: string }) => e.event)).toEqual(["released", "granted"]);
    expect(page.events[0]).toMatchObject({
      holder_id: "e2e-suite",
      reason: "nightly E2E",
      actor: { token_id: "admin" },
    });
  });

  it("runs the Lock State Service commands, in the forms its scripts use (curl -sf, -sI, -w)", async () => {
    const created = JSON.parse(await curl(`curl -s -X POST "$LSS/locks?l=true&e=3600"`));
    expect(created).toMatchObject({ locked: true, lockId: created.id, lockKey: created.key, isLocked: true });
    const { id, key } = created;
    expect(await curl(`curl -s -o /dev/null -w '%{http_code}' $LSS/locks/${id}`)).toBe("423");
    expect(await curl(`curl -X GET $LSS/locks/${id} -sI | head -1`)).toMatch(/^HTTP\/1\.1 423/);
    expect(
      await curl(`curl -sf $LSS/locks/${id} >/dev/null && echo "there is no lock" || echo "locked"`),
    ).toBe("locked\n");
    expect(
      await curl(`curl -s -o /dev/null -w '%{http_code}' -X PATCH "$LSS/locks/${id}/unlock?k=${key}"`),
    ).toBe("204");
    expect(await curl(`curl -sf $LSS/locks/${id} && echo "there is no lock"`)).toBe("there is no lock\n");
    expect(
      await curl(`curl -s -o /dev/null -w '%{http_code}' -X PATCH "$LSS/locks/${id}/lock?k=${key}&e=60"`),
    ).toBe("204");
    expect(await curl(`curl -s -o /dev/null -w '%{http_code}' $LSS/locks/nope`)).toBe("404");
  });

  it("serves the API reference and the OpenAPI document", async () => {
    const doc = JSON.parse(await curl(`curl -s $LSS/openapi.json`));
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/infra/locks/{key}/acquire",
        "/locks",
        "/locks/{id}",
        "/admin/tokens",
        "/health",
      ]),
    );
    expect(await curl(`curl -s $LSS/docs`)).toMatch(/<html/i);
    expect(JSON.parse(await curl(`curl -s $LSS/health`))).toMatchObject({ status: "ok", store: "memory" });
  });
});

describe("the quickstart's first step, run locally and pasted as it is", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const from = readme.indexOf("### 1. Run it locally");
  const section = readme.slice(from, readme.indexOf("\n### ", from + 1));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  // The server started with an admin token of the reader's choosing, and the block pasted after.
  const start = blocks.find((b) => /^LSS_ADMIN_TOKEN=\S+ npm start\n$/.test(b));
  const block = blocks.find((b) => b.includes("export LSS="));
  let tryServer: ServerProcess;

  beforeAll(async () => {
    // The first block starts the server: its variables, on a free port instead of 8787.
    const env = Object.fromEntries(
      [...(start ?? "").matchAll(/\b([A-Z_]+)=(\S+)(?= )/g)].map((m) => [m[1] as string, m[2] as string]),
    );
    expect(start).toMatch(/ npm start\n$/);
    tryServer = await startServerProcess(env);
  }, 30_000);
  afterAll(() => tryServer?.kill());

  /** The block as typed into an interactive shell: bash, or zsh (macOS's), where `#` starts a comment only with interactivecomments. */
  const paste = async (shell: "bash" | "zsh") => {
    expect(block).toContain("export LSS=http://localhost:8787 ");
    const pasted = (block ?? "").replace("http://localhost:8787", tryServer.url);
    const env = { PATH: process.env.PATH ?? "" };
    if (shell === "bash") return (await sh("bash", ["-c", pasted], { env })).stdout;
    const zsh = spawn("zsh", ["-f", "-i"], { env, stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    zsh.stdout.on("data", (d) => (out += d));
    zsh.stdin.end(`PS1=""; PROMPT_EOL_MARK=""\n${pasted}\nexit\n`);
    await once(zsh, "exit");
    return out;
  };
  const hasZsh = spawnSync("zsh", ["--version"]).status === 0;

  const printsWhatItsCommentsSay = async (shell: "bash" | "zsh") => {
    const stdout = await paste(shell);
    const [status, released, ...codes] = stdout.trim().split("\n");
    expect(JSON.parse(status ?? "")).toMatchObject({ locked: true, holder_id: "e2e-suite" });
    expect(JSON.parse(status ?? "").fencing_token).toBeGreaterThan(0);
    expect(JSON.parse(released ?? "")).toEqual({ status: "ok", key: "qa-env", locked: false });
    expect(codes).toEqual(["423", "204", "204"]);
    // And each answer is the one its comment shows.
    for (const code of codes) expect(block).toContain(`# ${code}:`);
    expect(block).toContain('# {"status":"ok","key":"qa-env","locked":false}');
  };

  it("prints what its comments say, pasted into bash", () => printsWhatItsCommentsSay("bash"));
  // .ci/run installs zsh.
  it.skipIf(!hasZsh)("prints what its comments say, pasted into zsh (macOS's shell)", () =>
    printsWhatItsCommentsSay("zsh"),
  );
});
