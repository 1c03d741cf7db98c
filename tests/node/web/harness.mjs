// The browser journeys' harness: a real `telemed serve` (restartable on the same port), Debian's
// Chromium through playwright-core with one context per person, screenshots of every screen at
// desktop and phone width, and an axe-core scan of every screen.
//
// Configuration (set by tests/blackbox/web_app.rs): TELEMED_BIN, DATABASE_URL, TELEMED_WEB_DIR,
// TELEMED_CHROMIUM, TELEMED_SHOTS (screenshot folder).
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";

export const DESKTOP = { width: 1280, height: 860 };
export const PHONE = { width: 375, height: 740 };
const shots = process.env.TELEMED_SHOTS ?? "screenshots";
mkdirSync(shots, { recursive: true });

/** A free port on 127.0.0.1 (the server is restarted on the same one, so pages reconnect). */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** `telemed serve` as a child process; `restart()` stops and starts it on the same port. */
export class Server {
  static async start(env = {}) {
    const server = new Server(await freePort(), env);
    await server.up();
    return server;
  }

  constructor(port, env) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.env = {
      ...process.env,
      TELEMED_BIND: `127.0.0.1:${port}`,
      TELEMED_RATE_LIMITS: "off",
      TELEMED_DB_MAX_CONNECTIONS: "8",
      RUST_LOG: "warn",
      ...env,
    };
    this.log = [];
  }

  async up() {
    this.child = spawn(process.env.TELEMED_BIN, ["serve"], { env: this.env, stdio: ["ignore", "ignore", "pipe"] });
    this.child.stderr.on("data", (chunk) => this.log.push(String(chunk)));
    const exited = new Promise((_, reject) =>
      this.child.once("exit", (code) => reject(new Error(`telemed serve exited (${code}): ${this.log.join("")}`))),
    );
    await Promise.race([this.ready(), exited]);
  }

  async ready() {
    for (let i = 0; i < 600; i++) {
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("telemed serve was not ready within 30 s");
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    // Forget up()'s "exited early" listener first, then wait for this exit.
    this.child.removeAllListeners("exit");
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }

  async restart() {
    await this.stop();
    await this.up();
  }

  /** Runs a `telemed` command (e.g. `user create`) against the same database. */
  cli(args) {
    return new Promise((resolve, reject) => {
      const child = spawn(process.env.TELEMED_BIN, args, { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (c) => (out += c));
      child.stderr.on("data", (c) => (err += c));
      child.on("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`telemed ${args[0]}: ${err}`))));
    });
  }
}

/** Debian's Chromium with fake camera and microphone. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.TELEMED_CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--allow-loopback-in-peer-connection",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * One person: their own browser context (in their own time zone) and page. `problems` collects
 * the page's console errors and uncaught exceptions, with the time and the resource's URL, so
 * that the journey can tell the expected ones (an error path's 4xx, the server's restart) from
 * the others.
 */
export async function person(browser, server, name, { timezoneId = "UTC", locale = "en-GB" } = {}) {
  const context = await browser.newContext({ baseURL: server.url, viewport: DESKTOP, timezoneId, locale });
  await context.grantPermissions(["camera", "microphone"], { origin: server.url });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push({ who: name, at: Date.now(), text: m.text(), url: m.location()?.url ?? "" });
  });
  page.on("pageerror", (e) => problems.push({ who: name, at: Date.now(), text: `page error: ${e.message}`, url: "" }));
  return { name, context, page, problems };
}

/**
 * Saves the screen at desktop and phone width and scans it with axe: returns the serious and
 * critical violations.
 */
export async function screen(who, label) {
  const { page } = who;
  const file = `${who.name}-${label}`.replace(/[^a-z0-9-]+/gi, "-").toLowerCase();
  await page.screenshot({ path: join(shots, `${file}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(shots, `${file}-phone.png`), fullPage: true });
  const phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.setViewportSize(DESKTOP);
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const violations = results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      screen: `${who.name}: ${label}`,
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  if (phoneOverflow > 1) {
    violations.push({ screen: `${who.name}: ${label}`, id: "phone-overflow", impact: "serious", help: `page is ${phoneOverflow}px wider than a 375px phone`, targets: [] });
  }
  return { file, violations };
}

/** Polls `probe` (an async function returning a value) until `accept(value)`, or throws. */
export async function eventually(what, probe, accept = Boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (accept(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}

/**
 * The inbound video frames decoded by the page's active call (the app exposes its
 * RTCPeerConnection as window.__telemedPeer).
 */
export function framesDecoded(page) {
  return page.evaluate(async () => {
    const pc = window.__telemedPeer;
    if (!pc) return -1;
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
    });
    return frames;
  });
}
