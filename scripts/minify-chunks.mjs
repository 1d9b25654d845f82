// ncc minifies each bundle's entry (-m) but not the chunks it splits off for import() (the
// client's response schemas, with zod): minify those too, with the esbuild that tsx brings.
import { readdirSync } from "node:fs";
import { buildSync } from "esbuild";

for (const dir of ["dist/main", "dist/post", "dist/renew", "dist/cli", "dist/client"]) {
  for (const file of readdirSync(dir).filter((f) => /^\d+\.index\.js$/.test(f))) {
    const path = `${dir}/${file}`;
    buildSync({
      entryPoints: [path],
      outfile: path,
      allowOverwrite: true,
      minify: true,
      format: "esm",
      logLevel: "warning",
    });
  }
}
