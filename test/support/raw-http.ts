/**
 * One HTTP/1.1 request written byte for byte on a TCP socket: for request lines and headers that
 * fetch and node:http will not send as given (an absolute-form target, a forged Host).
 */
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * Sends `method target HTTP/1.1` with `headers` (Host included only when given) and `body`, with
 * Connection: close, and reads the whole answer.
 */
export function rawRequest(
  serverUrl: string,
  opts: { method: string; target: string; headers?: Record<string, string>; body?: string },
): Promise<RawResponse> {
  const { hostname, port } = new URL(serverUrl);
  const body = opts.body ?? "";
  const lines = [`${opts.method} ${opts.target} HTTP/1.1`];
  for (const [name, value] of Object.entries(opts.headers ?? {})) lines.push(`${name}: ${value}`);
  if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  lines.push("Connection: close", "", body);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      const head = split < 0 ? text : text.slice(0, split);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: split < 0 ? "" : text.slice(split + 4) });
    });
    socket.write(lines.join("\r\n"));
  });
}
