/**
 * Builds what the `lss` npm package ships into packages/lss (npm's prepack runs it):
 * - bin/lss.js: the CLI, as dist/cli is built (one bundle, no runtime dependencies);
 * - dist/: the client, as dist/client is built (src/client/index.ts with what it imports, zod
 *   included, in the chunks ncc splits off for import());
 * - dist/types/: its declarations from src/, where each protocol type the client names is written
 *   out in full (the schemas' z.infer<…>), so that the package's types need no zod either.
 */
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(ROOT, "packages/lss");
const ENTRY = join(ROOT, "src/client/index.ts");

const version = (path) => JSON.parse(readFileSync(path, "utf8")).version;
if (version(join(OUT, "package.json")) !== version(join(ROOT, "package.json"))) {
  throw new Error("packages/lss/package.json's version is not package.json's: run npm run release");
}

rmSync(join(OUT, "bin"), { recursive: true, force: true });
rmSync(join(OUT, "dist"), { recursive: true, force: true });
mkdirSync(join(OUT, "bin"), { recursive: true });

// The CLI and the client: the bundles check-dist keeps equal to src/.
copyFileSync(join(ROOT, "dist/cli/index.js"), join(OUT, "bin/lss.js"));
chmodSync(join(OUT, "bin/lss.js"), 0o755);
for (const file of ["LICENSE", "CHANGELOG.md"]) copyFileSync(join(ROOT, file), join(OUT, file));

cpSync(join(ROOT, "dist/client"), join(OUT, "dist"), {
  recursive: true,
  filter: (f) => !f.endsWith("package.json"),
});

writeDeclarations();

/** tsc's declarations of the client, then each module that imports zod replaced by its types written out. */
function writeDeclarations() {
  const options = {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    declaration: true,
    emitDeclarationOnly: true,
    rootDir: join(ROOT, "src"),
    outDir: join(OUT, "dist/types"),
    skipLibCheck: true,
    types: ["node"],
  };
  const program = ts.createProgram([ENTRY], options);
  const problems = ts.getPreEmitDiagnostics(program);
  if (problems.length) throw new Error(ts.formatDiagnostics(problems, formatHost));
  const checker = program.getTypeChecker();
  const written = [];
  program.emit(undefined, (file, text, _bom, _onError, sources) => {
    const source = sources?.[0];
    const body = /from "zod"/.test(text) && source ? typesWrittenOut(checker, source) : text;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, body);
    written.push(relative(OUT, file));
  });
  for (const file of written) {
    const text = readFileSync(join(OUT, file), "utf8");
    if (/from "zod"|import\("zod/.test(text)) throw new Error(`${file} still names zod`);
  }
}

/** A module's exported types, each as the type it is; its values (the schemas) left out. */
function typesWrittenOut(checker, source) {
  const module = checker.getSymbolAtLocation(source);
  const flags = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias;
  const lines = [`/** The types of ${relative(ROOT, source.fileName)}'s schemas, written out. */`];
  for (const symbol of checker.getExportsOfModule(module)) {
    if (!(symbol.flags & ts.SymbolFlags.TypeAlias)) continue;
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    lines.push(`export type ${symbol.name} = ${checker.typeToString(type, undefined, flags)};`);
  }
  return `${lines.join("\n")}\n`;
}

const formatHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => ROOT,
  getNewLine: () => "\n",
};
