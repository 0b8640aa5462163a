// Bundle the widget SDK (components/sdk) into one minified ES module named by its content's
// hash, with the manifest the server reads: the file, its SRI hash, its sizes and a digest
// of the sources it was built from. `npm run build:sdk`; scripts/run and scripts/test run it
// with --if-stale (nothing to do when the sources did not change). The output
// (components/dist) is never committed.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const SOURCES = "components/sdk";
const OUT = "components/dist";
const KEPT = 10; // earlier builds stay served: pages that pinned one (with its SRI hash) keep working

export function sourcesDigest() {
  const digest = createHash("sha256");
  for (const name of readdirSync(SOURCES).sort()) {
    digest.update(name);
    digest.update(readFileSync(join(SOURCES, name)));
  }
  digest.update(readFileSync("components/build.mjs"));
  return digest.digest("hex");
}

if (process.argv.includes("--if-stale")) {
  try {
    const built = JSON.parse(readFileSync(join(OUT, "manifest.json"), "utf8"));
    if (built.sources === sourcesDigest()) process.exit(0);
  } catch (_) {
    // no manifest yet: build
  }
}

const result = await build({
  entryPoints: [join(SOURCES, "index.js")],
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  legalComments: "none",
  write: false,
});
const code = result.outputFiles[0].contents;
const hash = createHash("sha256").update(code).digest("hex").slice(0, 16);
const file = `lifeaccount.${hash}.js`;
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, file), code);
const builds = readdirSync(OUT)
  .filter((name) => /^lifeaccount\.[0-9a-f]{16}\.js$/.test(name))
  .sort((a, b) => statSync(join(OUT, b)).mtimeMs - statSync(join(OUT, a)).mtimeMs);
for (const old of builds.slice(KEPT)) if (old !== file) unlinkSync(join(OUT, old));
const manifest = {
  file,
  integrity: `sha384-${createHash("sha384").update(code).digest("base64")}`,
  bytes: code.length,
  gzip_bytes: gzipSync(code, { level: 9 }).length,
  sources: sourcesDigest(),
};
// Whole or not at all: a server reading it meanwhile sees the old manifest or the new one.
writeFileSync(join(OUT, "manifest.json.part"), `${JSON.stringify(manifest, null, 1)}\n`);
renameSync(join(OUT, "manifest.json.part"), join(OUT, "manifest.json"));
console.log(`built ${OUT}/${file}: ${manifest.bytes} bytes, ${manifest.gzip_bytes} gzipped`);
