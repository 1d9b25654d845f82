/**
 * /docs: the API reference as one self-contained page, rendered on the server from the app's own
 * OpenAPI document (no script, no CDN): every operation with its method, path, summary,
 * description, parameters, request body and responses, schemas written out compactly.
 */
import { Hono } from "hono";

// The parts of an OpenAPI 3.0 document this page reads.
interface Schema {
  type?: string;
  $ref?: string;
  enum?: unknown[];
  const?: unknown;
  nullable?: boolean;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  additionalProperties?: boolean | Schema;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  description?: string;
  format?: string;
}
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Schema;
}
interface Content {
  [mediaType: string]: { schema?: Schema };
}
interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; description?: string; content?: Content };
  responses?: Record<string, { description?: string; content?: Content }>;
  security?: unknown[];
}
export interface OpenApiDocument {
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
  security?: unknown[];
}

const METHODS = ["get", "head", "post", "put", "patch", "delete", "options"];

const esc = (text: string) => text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** Plain text with `code` spans. */
const prose = (text: string) => esc(text).replace(/`([^`]+)`/g, (_m, code: string) => `<code>${code}</code>`);

function range(min: number | undefined, max: number | undefined, unit = "") {
  if (min !== undefined && max !== undefined) return `${min}–${max}${unit}`;
  if (min !== undefined) return `≥ ${min}${unit}`;
  if (max !== undefined) return `≤ ${max}${unit}`;
  return "";
}

/** A schema written out like a type: `{ ttl_ms: integer (1–86400000), holder_id?: string … }`. */
export function schemaText(s: Schema | undefined, indent = ""): string {
  if (!s) return "any";
  const nullable = s.nullable ? " | null" : "";
  if (s.$ref) return `${s.$ref.replace(/^#\/components\/schemas\//, "")}${nullable}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ") + nullable;
  for (const union of [s.anyOf, s.oneOf]) {
    if (union) return union.map((u) => schemaText(u, indent)).join(" | ") + nullable;
  }
  if (s.allOf) return s.allOf.map((u) => schemaText(u, indent)).join(" & ") + nullable;
  if (s.type === "array") {
    const bound = range(s.minItems, s.maxItems, " items");
    return `${schemaText(s.items, indent)}[]${bound ? ` (${bound})` : ""}${nullable}`;
  }
  if (s.type === "object" || s.properties) {
    const props = Object.entries(s.properties ?? {});
    if (props.length === 0) return `object${nullable}`;
    const inner = `${indent}  `;
    const required = new Set(s.required ?? []);
    const lines = props.map(([name, p]) => {
      const note = p.description ? `  // ${p.description}` : "";
      return `${inner}${name}${required.has(name) ? "" : "?"}: ${schemaText(p, inner)}${note}`;
    });
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      lines.push(`${inner}[other]: ${schemaText(s.additionalProperties, inner)}`);
    } else if (s.additionalProperties === true) {
      lines.push(`${inner}…`);
    }
    return `{\n${lines.join("\n")}\n${indent}}${nullable}`;
  }
  const bounds =
    s.type === "string" ? range(s.minLength, s.maxLength, " chars") : range(s.minimum, s.maximum);
  const extras = [bounds, s.format, s.pattern ? `pattern ${s.pattern}` : ""].filter(Boolean).join(", ");
  return `${s.type ?? "any"}${extras ? ` (${extras})` : ""}${nullable}`;
}

const slug = (method: string, path: string) =>
  `${method}-${path}`.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");

function contentBlock(content: Content | undefined) {
  if (!content) return "";
  return Object.entries(content)
    .map(
      ([type, { schema }]) =>
        `<p class="type">${esc(type)}</p><pre><code>${esc(schemaText(schema))}</code></pre>`,
    )
    .join("");
}

function operationHtml(method: string, path: string, op: Operation, globalSecurity: boolean) {
  const params = op.parameters ?? [];
  // An operation that says `security: []` (or a document without security) needs no token.
  const open = (op.security ?? (globalSecurity ? [{}] : [])).length === 0;
  const parts = [
    `<section class="op" id="${slug(method, path)}" aria-labelledby="${slug(method, path)}-h">`,
    `<h3 id="${slug(method, path)}-h"><span class="method ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>`,
    op.summary ? `<p class="summary">${prose(op.summary)}</p>` : "",
    op.description ? `<p>${prose(op.description)}</p>` : "",
    open ? `<p class="note">No token needed.</p>` : "",
  ];
  if (params.length > 0) {
    parts.push(
      `<h4>Parameters</h4><div class="scroll"><table><thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Type</th><th scope="col">Description</th></tr></thead><tbody>`,
      ...params.map(
        (p) =>
          `<tr><td><code>${esc(p.name)}</code>${p.required ? ' <span class="req">required</span>' : ""}</td>` +
          `<td>${esc(p.in)}</td><td><code>${esc(schemaText(p.schema))}</code></td>` +
          `<td>${p.description ? prose(p.description) : ""}</td></tr>`,
      ),
      "</tbody></table></div>",
    );
  }
  if (op.requestBody) {
    parts.push(
      `<h4>Request body${op.requestBody.required ? ' <span class="req">required</span>' : ""}</h4>`,
      op.requestBody.description ? `<p>${prose(op.requestBody.description)}</p>` : "",
      contentBlock(op.requestBody.content),
    );
  }
  const responses = Object.entries(op.responses ?? {});
  if (responses.length > 0) {
    parts.push('<h4>Responses</h4><dl class="responses">');
    for (const [code, r] of responses) {
      parts.push(
        `<dt><span class="status s${code[0]}">${esc(code)}</span> ${r.description ? prose(r.description) : ""}</dt>`,
      );
      if (r.content) {
        const ok = code.startsWith("2");
        parts.push(
          `<dd>${ok ? "" : "<details><summary>Body</summary>"}${contentBlock(r.content)}${ok ? "" : "</details>"}</dd>`,
        );
      }
    }
    parts.push("</dl>");
  }
  parts.push("</section>");
  return parts.join("");
}

const STYLE = `
:root { color-scheme: light dark; --bg: #f7f7f8; --fg: #1b1d21; --muted: #5b616b; --card: #fff; --line: #d9dce1;
  --accent: #1f5fbf; --code: #eef0f3; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; }
@media (prefers-color-scheme: dark) { :root { --bg: #15171a; --fg: #e8eaed; --muted: #a3a9b3; --card: #1f2226;
  --line: #3a3f46; --accent: #8ab4f8; --code: #2a2e34; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); overflow-wrap: anywhere; }
a { color: var(--accent); }
a:focus-visible, summary:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.25rem; margin-top: 2rem; } h3 { font-size: 1.05rem; margin: 0 0 .4rem; }
h4 { font-size: .9rem; margin: 1rem 0 .3rem; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
code { background: var(--code); border-radius: 4px; padding: 0 .25rem; font-size: .9em; }
pre { background: var(--code); border-radius: 6px; padding: .6rem .8rem; overflow-x: auto; font-size: .85rem; margin: .2rem 0 .6rem; }
pre code { background: none; padding: 0; }
.op { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin: 0 0 1rem; }
.method { display: inline-block; min-width: 4.2rem; text-align: center; border-radius: 4px; padding: 0 .4rem;
  font-size: .85rem; color: #fff; background: #5b616b; }
.method.get { background: #1e6b36; } .method.post { background: #1f5fbf; } .method.delete { background: #a4262c; }
.method.patch, .method.put { background: #8a5a00; } .method.head { background: #4b5563; }
.summary { font-weight: 600; margin: .2rem 0; }
.note, .type { color: var(--muted); font-size: .85rem; margin: .2rem 0; }
.req { color: #a4262c; font-size: .8rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
dl.responses dt { margin-top: .4rem; } dl.responses dd { margin: .2rem 0 .2rem 1rem; }
.status { font-weight: 700; font-variant-numeric: tabular-nums; }
.status.s2 { color: #1e6b36; } .status.s4 { color: #a4262c; } .status.s5 { color: #8a5a00; }
nav.toc ul { padding-left: 1.2rem; } nav.toc li { margin: .15rem 0; }
`;

/** The reference page of an OpenAPI document. */
export function docsHtml(doc: OpenApiDocument): string {
  const globalSecurity = (doc.security ?? []).length > 0;
  const byTag = new Map<string, Array<[string, string, Operation]>>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? "Other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)?.push([method, path, op]);
    }
  }
  const toc = [...byTag]
    .map(
      ([tag, ops]) =>
        `<li>${esc(tag)}<ul>${ops
          .map(
            ([m, p, op]) =>
              `<li><a href="#${slug(m, p)}"><code>${m.toUpperCase()} ${esc(p)}</code></a>${op.summary ? ` — ${prose(op.summary)}` : ""}</li>`,
          )
          .join("")}</ul></li>`,
    )
    .join("");
  const sections = [...byTag]
    .map(
      ([tag, ops]) =>
        `<h2 id="tag-${slug("", tag)}">${esc(tag)}</h2>${ops.map(([m, p, op]) => operationHtml(m, p, op, globalSecurity)).join("")}`,
    )
    .join("");
  const schemas = Object.entries(doc.components?.schemas ?? {});
  const components =
    schemas.length === 0
      ? ""
      : `<h2 id="schemas">Schemas</h2>${schemas
          .map(
            ([name, s]) =>
              `<section class="op" id="schema-${slug("", name)}"><h3><code>${esc(name)}</code></h3><pre><code>${esc(schemaText(s))}</code></pre></section>`,
          )
          .join("")}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} — API reference</title><style>${STYLE}</style></head>
<body><main>
<h1>${esc(doc.info.title)} <small>API reference, version ${esc(doc.info.version)}</small></h1>
${doc.info.description ? `<p>${prose(doc.info.description)}</p>` : ""}
<p>Authenticate with <code>Authorization: Bearer &lt;token&gt;</code> (the admin token or a minted <code>lss_…</code> token) unless an operation says otherwise. Errors come in one shape: <code>{"status":"error","error":{"code","message"}, …}</code>. The same document as OpenAPI 3: <a href="/openapi.json">/openapi.json</a>. The lock dashboard: <a href="/ui">/ui</a>.</p>
<nav class="toc" aria-label="Operations"><h2>Operations</h2><ul>${toc}</ul></nav>
${sections}
${components}
</main></body></html>`;
}

/** GET /docs, rendered once from the app's OpenAPI document (which the app builds on first use). */
export function docsRoutes(document: () => unknown) {
  let page: string | undefined;
  return new Hono().get("/docs", (c) => {
    page ??= docsHtml(document() as OpenApiDocument);
    return c.html(page);
  });
}
