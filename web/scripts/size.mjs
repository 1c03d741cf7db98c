// Prints what the first screen costs: the JavaScript and CSS a cold visitor downloads before
// the sign-in form shows (the entry chunk, its static imports, and the sign-in feature's
// chunk), raw and gzipped. Run after `npm run build`:  npm run size
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const dist = join(fileURLToPath(new URL("..", import.meta.url)), "dist");
const manifest = JSON.parse(readFileSync(join(dist, ".vite/manifest.json"), "utf8"));
const TARGET_KIB = 150;

/** The chunk of `key` and everything it imports statically. */
function closure(key, seen = new Set()) {
  if (seen.has(key)) return seen;
  seen.add(key);
  for (const dep of manifest[key]?.imports ?? []) closure(dep, seen);
  return seen;
}

const entry = Object.keys(manifest).find((k) => manifest[k].isEntry);
const signIn = Object.keys(manifest).find((k) => k.endsWith("features/auth/index.ts"));
const chunks = closure(signIn, closure(entry));
const files = new Set();
for (const key of chunks) {
  files.add(manifest[key].file);
  for (const css of manifest[key].css ?? []) files.add(css);
}
let js = 0;
let jsGz = 0;
let css = 0;
for (const file of [...files].sort()) {
  const bytes = readFileSync(join(dist, file));
  const gz = gzipSync(bytes, { level: 9 }).length;
  console.log(`${file.padEnd(44)} ${(bytes.length / 1024).toFixed(1).padStart(8)} KiB  gzip ${(gz / 1024).toFixed(1).padStart(7)} KiB`);
  if (file.endsWith(".js")) {
    js += bytes.length;
    jsGz += gz;
  } else css += gz;
}
const kib = (n) => (n / 1024).toFixed(1);
console.log(`first screen JavaScript: ${kib(js)} KiB, gzipped ${kib(jsGz)} KiB (target ≤ ${TARGET_KIB} KiB: ${jsGz / 1024 <= TARGET_KIB ? "met" : "missed"}); CSS gzipped ${kib(css)} KiB`);
