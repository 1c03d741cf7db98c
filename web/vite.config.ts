import { defineConfig } from "vitest/config";
import preact from "@preact/preset-vite";
import { fileURLToPath, URL } from "node:url";

// The app is served by `telemed serve` from web/dist; `npm run dev` proxies the API to a
// server on 127.0.0.1:8080 (scripts/run).
const api = process.env.TELEMED_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [preact()],
  resolve: { alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) } },
  // The API reference viewer (Swagger UI, /docs only) is one large lazy chunk.
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, target: "es2022", chunkSizeWarningLimit: 2000, manifest: true },
  server: {
    proxy: {
      "/api": { target: api, ws: true },
      "/socket.io": { target: api, ws: true },
      "/healthz": { target: api },
    },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
