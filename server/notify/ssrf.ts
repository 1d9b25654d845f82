/**
 * Where a webhook may be delivered. LSS posts to URLs an admin gave it, from inside a network that
 * may hold things no one outside should reach (a cloud's metadata address, a Redis, an admin
 * page). So, unless the operator allows private targets (LSS_WEBHOOK_ALLOW_PRIVATE, for a
 * receiver on the same network):
 * - a URL must be https, and its host must not be localhost or an address of a loopback,
 *   private, link-local, shared (CGNAT) or unspecified range, checked when it is subscribed;
 * - on Node, its name is resolved before each delivery, and a name that resolves to such an
 *   address is not posted to (a public name pointed at 127.0.0.1 later);
 * - redirects are never followed (a 3xx is a failed delivery), so a public receiver cannot
 *   bounce a delivery to a loopback address.
 */

const PRIVATE_V4: Array<[number, number]> = [
  [0x00000000, 8], // 0.0.0.0/8
  [0x0a000000, 8], // 10/8
  [0x64400000, 10], // 100.64/10
  [0x7f000000, 8], // 127/8
  [0xa9fe0000, 16], // 169.254/16 (cloud metadata)
  [0xac100000, 12], // 172.16/12
  [0xc0a80000, 16], // 192.168/16
  [0xc0000000, 24], // 192.0.0/24
  [0xc6120000, 15], // 198.18/15
  [0xe0000000, 4], // multicast
  [0xf0000000, 4], // reserved
];

function v4Number(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** An IPv6 address as its eight 16-bit groups (a trailing dotted IPv4 part read as two), or null. */
function v6Groups(text: string): number[] | null {
  let ip = text;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(ip)?.[1];
  if (dotted) {
    const v4 = v4Number(dotted);
    if (v4 === null) return null;
    ip = `${ip.slice(0, -dotted.length)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = ip.split("::");
  if (halves.length > 2) return null;
  const part = (h: string | undefined) => (h ? h.split(":") : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => Number.parseInt(g, 16));
}

/** Whether an IP address (v4 or v6, as text, brackets or not) is one no webhook should reach. */
export function isPrivateAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, "").toLowerCase();
  const v4 = v4Number(ip);
  if (v4 !== null) return PRIVATE_V4.some(([base, bits]) => v4 >>> (32 - bits) === base >>> (32 - bits));
  const g = v6Groups(ip);
  if (!g) return false;
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, h7 = 0, h8 = 0] = g;
  const embedded = `${h7 >>> 8}.${h7 & 0xff}.${h8 >>> 8}.${h8 & 0xff}`;
  // ::, ::1, and IPv4 written as IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d).
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0) {
    if (f === 0 && h7 === 0 && h8 <= 1) return true;
    if (f === 0xffff || f === 0) return isPrivateAddress(embedded);
  }
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0)
    return isPrivateAddress(embedded);
  // Unique local (fc00::/7), link-local and site-local (fe80::/9), multicast (ff00::/8).
  return (a & 0xfe00) === 0xfc00 || (a & 0xff80) === 0xfe80 || (a & 0xff00) === 0xff00;
}

/** Why a subscription's URL is refused, or null. */
export function webhookUrlProblem(text: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "url must be an absolute URL such as https://hooks.example.com/lss";
  }
  if (url.username || url.password)
    return "url must not hold a user name or password (put a secret in its path)";
  if (url.protocol !== "https:" && !(allowPrivate && url.protocol === "http:")) {
    return `url must be https (got ${url.protocol.replace(/:$/, "")})${allowPrivate ? " or http" : ""}`;
  }
  if (allowPrivate) return null;
  const host = url.hostname.toLowerCase();
  if (host === "localhost" || host.endsWith(".localhost") || isPrivateAddress(host)) {
    return `url must be a public address: ${host} is loopback, private or link-local (LSS_WEBHOOK_ALLOW_PRIVATE=true allows it)`;
  }
  return null;
}

type Lookup = (host: string, opts: { all: true }) => Promise<Array<{ address: string }>>;
const nodeLookup = (() => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const dns = proc?.getBuiltinModule?.("node:dns") as { promises?: { lookup?: Lookup } } | undefined;
  return dns?.promises?.lookup ?? null;
})();

/**
 * Why a delivery to `url` must not go now, or null: on Node, its name resolves to a private
 * address. (Elsewhere, Workers and Vercel, outbound requests do not reach private networks.)
 */
export async function deliveryProblem(url: string, allowPrivate: boolean): Promise<string | null> {
  if (allowPrivate || !nodeLookup) return null;
  const host = new URL(url).hostname;
  const addresses = await nodeLookup(host.replace(/^\[|\]$/g, ""), { all: true }).catch(() => []);
  const bad = addresses.find((a) => isPrivateAddress(a.address));
  return bad ? `${host} resolves to ${bad.address}, a private address` : null;
}
