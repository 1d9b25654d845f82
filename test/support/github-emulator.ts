/**
 * GitHub, as the App sees it, on loopback: installation tokens for an App JWT it checks against
 * the App's public key (RS256, iss = the App id, at most 10 minutes long), the protection-rule
 * review endpoint (recording every decision and status comment), check runs, and signed webhooks sent to the
 * server as GitHub sends them. It can go down (503) for a while.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { importSPKI, jwtVerify } from "jose";
import { hmacHex } from "../../server/github/signature.js";

export interface Review {
  at: number;
  installationId: number;
  repository: string;
  runId: number;
  body: { environment_name?: string; state?: string; comment?: string };
}

/** An installation GitHub does not know (the App was uninstalled): its token is refused with 404. */
export const UNKNOWN_INSTALLATION = 404404;

export interface CheckRun {
  at: number;
  repository: string;
  body: {
    name?: string;
    head_sha?: string;
    status?: string;
    conclusion?: string;
    output?: { title?: string; summary?: string };
  };
}

export interface GitHubEmulator {
  url: string;
  appId: string;
  /** The App's private key, PKCS#1 PEM, as GitHub hands it out. */
  privateKeyPem: string;
  webhookSecret: string;
  reviews: Review[];
  /** Check runs created, oldest first. */
  checks: CheckRun[];
  /** The newest check run of a name for a commit: the one a required check reads. */
  checkOf(sha: string, name?: string): CheckRun | undefined;
  /** Decisions refused because the run's environment was decided already (422). */
  redecided(): number;
  /** Every API request it answered (tokens, reviews, check runs, refusals). */
  requests(): number;
  /** Installation tokens handed out. */
  tokensIssued(): number;
  /** Every API call it answered 503 to while down. */
  refused(): number;
  down(ms: number): void;
  /** The review endpoint answers this status for a run from now on (422: "not waiting"). */
  answerRun(runId: number, status: number): void;
  /** Sends a signed webhook to `target`, as GitHub does; the answer. */
  send(
    target: string,
    event: string,
    payload: unknown,
    opts?: { delivery?: string; secret?: string },
  ): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => resolve(text));
  });

export async function startGitHubEmulator(): Promise<GitHubEmulator> {
  const appId = "424242";
  const webhookSecret = "emulated-webhook-secret-0123456789";
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const verifyKey = await importSPKI(publicKey.export({ type: "spki", format: "pem" }).toString(), "RS256");
  const tokens = new Map<string, number>(); // token → installation
  const reviews: Review[] = [];
  const checks: CheckRun[] = [];
  let downUntil = 0;
  const runAnswers = new Map<number, number>();
  let refused = 0;
  let requests = 0;
  let redecided = 0;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    requests++;
    if (Date.now() < downUntil) {
      refused++;
      return json(res, 503, { message: "Service Unavailable" });
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const tokenRoute = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    if (req.method === "POST" && tokenRoute) {
      try {
        const { payload } = await jwtVerify(bearer, verifyKey, { issuer: appId, algorithms: ["RS256"] });
        if ((payload.exp ?? 0) - (payload.iat ?? 0) > 600) throw new Error("a JWT lives at most 10 minutes");
      } catch (err) {
        return json(res, 401, {
          message: `A JSON web token could not be decoded: ${(err as Error).message}`,
        });
      }
      if (Number(tokenRoute[1]) === UNKNOWN_INSTALLATION)
        return json(res, 404, { message: "Integration not found" });
      const token = `ghs_${randomUUID().replaceAll("-", "")}`;
      tokens.set(token, Number(tokenRoute[1]));
      return json(res, 201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString() });
    }
    const reviewRoute =
      /^\/repos\/([\w.-]+\/[\w.-]+)\/actions\/runs\/(\d+)\/deployment_protection_rule$/.exec(path);
    if (req.method === "POST" && reviewRoute) {
      const installationId = tokens.get(bearer);
      if (installationId === undefined) return json(res, 401, { message: "Bad credentials" });
      const forced = runAnswers.get(Number(reviewRoute[2]));
      if (forced)
        return json(res, forced, { message: "No pending deployment requests to approve or reject" });
      const review = JSON.parse(body || "{}") as Review["body"];
      // As GitHub: a run's environment is decided once; a second decision finds nothing pending.
      const decided = reviews.some(
        (r) =>
          r.runId === Number(reviewRoute[2]) &&
          r.body.environment_name === review.environment_name &&
          r.body.state !== undefined,
      );
      if (decided) {
        redecided++;
        return json(res, 422, { message: "No pending deployment requests to approve or reject" });
      }
      reviews.push({
        at: Date.now(),
        installationId,
        repository: reviewRoute[1] as string,
        runId: Number(reviewRoute[2]),
        body: review,
      });
      return json(res, 204, null);
    }
    const checkRoute = /^\/repos\/([\w.-]+\/[\w.-]+)\/check-runs$/.exec(path);
    if (req.method === "POST" && checkRoute) {
      if (tokens.get(bearer) === undefined) return json(res, 401, { message: "Bad credentials" });
      const parsed = JSON.parse(body || "{}") as CheckRun["body"];
      if (!parsed.name || !/^[0-9a-f]{40}$/.test(parsed.head_sha ?? ""))
        return json(res, 422, { message: "name and head_sha are required" });
      checks.push({ at: Date.now(), repository: checkRoute[1] as string, body: parsed });
      return json(res, 201, { id: checks.length, ...parsed });
    }
    return json(res, 404, { message: "Not Found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    appId,
    privateKeyPem,
    webhookSecret,
    reviews,
    checks,
    checkOf: (sha, name = "lss/freeze") =>
      checks.filter((c) => c.body.head_sha === sha && c.body.name === name).at(-1),
    tokensIssued: () => tokens.size,
    requests: () => requests,
    redecided: () => redecided,
    refused: () => refused,
    down(ms) {
      downUntil = Date.now() + ms;
    },
    answerRun(runId, status) {
      runAnswers.set(runId, status);
    },
    async send(target, event, payload, opts = {}) {
      const text = JSON.stringify(payload);
      const res = await fetch(`${target}/github/webhook`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-github-event": event,
          "x-github-delivery": opts.delivery ?? randomUUID(),
          "x-hub-signature-256": `sha256=${hmacHex(opts.secret ?? webhookSecret, text)}`,
        },
        body: text,
      });
      const answer = await res.text();
      return { status: res.status, body: answer ? JSON.parse(answer) : null };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The payloads GitHub sends, with the fields the App reads. */
export const payloads = {
  protectionRule: (o: {
    repoId: number;
    repo: string;
    runId: number;
    environment: string;
    installationId?: number;
  }) => ({
    action: "requested",
    environment: o.environment,
    event: "push",
    deployment_callback_url: `https://api.github.com/repos/${o.repo}/actions/runs/${o.runId}/deployment_protection_rule`,
    deployment: { id: o.runId * 10, environment: o.environment, ref: "main", sha: "0".repeat(40) },
    repository: { id: o.repoId, full_name: o.repo },
    installation: { id: o.installationId ?? 7 },
    sender: { login: "octocat" },
  }),
  pullRequest: (o: {
    repoId: number;
    repo: string;
    number: number;
    sha: string;
    base: string;
    action?: string;
  }) => ({
    action: o.action ?? "opened",
    number: o.number,
    pull_request: { number: o.number, head: { sha: o.sha, ref: "feature" }, base: { ref: o.base } },
    repository: { id: o.repoId, full_name: o.repo },
    installation: { id: 7 },
    sender: { login: "octocat" },
  }),
  mergeGroup: (o: { repoId: number; repo: string; sha: string; base: string; action?: string }) => ({
    action: o.action ?? "checks_requested",
    merge_group: {
      head_sha: o.sha,
      head_ref: `refs/heads/gh-readonly-queue/${o.base}/pr-1`,
      base_ref: `refs/heads/${o.base}`,
    },
    repository: { id: o.repoId, full_name: o.repo },
    installation: { id: 7 },
  }),
  jobCompleted: (o: { repoId: number; repo: string; runId: number; environment: string | null }) => ({
    action: "completed",
    workflow_job: {
      id: o.runId * 100,
      run_id: o.runId,
      name: "deploy",
      conclusion: "success",
      status: "completed",
    },
    ...(o.environment ? { deployment: { id: o.runId * 10, environment: o.environment } } : {}),
    repository: { id: o.repoId, full_name: o.repo },
    installation: { id: 7 },
  }),
};
