// The browser journeys of the web app (issue 11), run by tests/blackbox/web_app.rs inside a
// loopback-only network namespace: a real `telemed serve` on a fresh database serving web/dist,
// Debian's Chromium through playwright-core, one browser context per person:
//
// - a doctor (America/New_York) signs up, fills in the profile, opens a weekly template;
//   later adds time off and removes it;
// - a patient (Asia/Kolkata) signs up, finds the doctor, books; the doctor's dashboard shows the
//   request live and the doctor confirms; the patient checks in and shows in the doctor's
//   waiting queue; the doctor starts the video call from the queue, the patient's waiting room
//   rings and opens the consultation room, the patient answers: each page sees the other's
//   video playing (framesDecoded growing); they chat (each sees the other typing and the read
//   receipt), hang up; the server restarts mid-chat and the conversation resumes with no lost
//   or doubled message; the patient reschedules, the doctor confirms; the patient cancels,
//   joins the doctor's waitlist, sees the entry and leaves it;
// - an auditor (created with the CLI) sees each step in the event log, and the access log.
//
// Every form's error path: bad input shows the field's error next to the field (the server's
// own where the client cannot know) and changes nothing. Every screen is saved at desktop and
// phone width and scanned with axe (harness.mjs). The last stdout line is the result:
// {error, violations, screens, steps, tti_ms, problems, expected_problems, duration_ms}.
//
// Locators are by role, label and accessible name; waits are web-first (locator.waitFor, or
// `eventually` polling a condition): no fixed sleeps.
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { eventually, framesDecoded, launchBrowser, person, screen, Server } from "./harness.mjs";

const started = Date.now();
const result = {
  error: null,
  violations: [],
  screens: [],
  steps: [],
  tti_ms: null,
  problems: [],
  expected_problems: [],
  duration_ms: null,
};
const shots = process.env.TELEMED_SHOTS ?? "screenshots";
mkdirSync(shots, { recursive: true });
for (const f of readdirSync(shots)) if (f.startsWith("failure-")) rmSync(join(shots, f)); // a past run's
const PASSWORD = "correct horse battery staple";
const people = [];
let currentStep = "setup";

/** Runs one named, timed step. */
async function step(name, fn) {
  currentStep = name;
  const t0 = Date.now();
  await fn();
  result.steps.push({ name, ms: Date.now() - t0 });
  process.stderr.write(`✓ ${name} (${Date.now() - t0} ms)\n`);
}

/** Saves and scans one screen. */
async function shot(who, label) {
  const { file, violations } = await screen(who, label);
  result.screens.push(file);
  result.violations.push(...violations);
}

// ---- Expected console errors ------------------------------------------------------------
//
// Chromium logs every 4xx answer of fetch() as a console error ("Failed to load resource: the
// server responded with a status of 422 ()"), and every refused connection while the server
// restarts. Those are expected exactly where an error path or the restart provokes them: each
// allowance names the person, the status (or the refused connection) and the URL's path, and
// only holds while its step runs. Anything else a page logs is a problem.
const allowances = [];

/** Allows `who`'s console errors matching `text` (and the resource `path`) while `fn` runs. */
async function allowing(who, text, path, fn) {
  const a = { who: who.name, text, path, from: Date.now(), to: Infinity };
  allowances.push(a);
  try {
    return await fn();
  } finally {
    a.to = Date.now() + 2_000; // the console event may arrive just after the UI showed the error
  }
}

const status = (code) => new RegExp(`^Failed to load resource: the server responded with a status of ${code}\\b`);
const refused = /^Failed to load resource: net::ERR_CONNECTION_REFUSED$/;
const socketFailed = /^WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/socket\.io\/\?EIO=4&transport=websocket(&[^']*)?' failed/;

function classifyProblems() {
  for (const p of people.flatMap((w) => w.problems)) {
    let pathname = "";
    try {
      pathname = p.url ? new URL(p.url).pathname : "";
    } catch {
      // not a URL
    }
    const allowed = allowances.some(
      (a) => a.who === p.who && p.at >= a.from && p.at <= a.to && a.text.test(p.text) && (!a.path || a.path.test(pathname)),
    );
    (allowed ? result.expected_problems : result.problems).push(`${p.who}: ${p.text}${p.url ? ` (${p.url})` : ""}`);
  }
}

// ---- Helpers ----------------------------------------------------------------------------

/** The error shown for a control: its aria-describedby texts once it is aria-invalid. */
async function fieldError(control, expected) {
  return eventually(
    `field error ${expected}`,
    () =>
      control.evaluate((el) => {
        if (el.getAttribute("aria-invalid") !== "true") return "";
        return (el.getAttribute("aria-describedby") ?? "")
          .split(/\s+/)
          .map((id) => document.getElementById(id)?.textContent ?? "")
          .join(" ");
      }),
    (text) => expected.test(text),
  );
}

/** The header's live status: "Live", "Connecting…" or "Offline". */
function liveStatus(page) {
  return page.locator("header .live-status").innerText();
}

/** The texts of a conversation's delivered messages, in order. */
function conversation(page) {
  return page.locator(".cr-messages .cr-text").allInnerTexts();
}

/** Wall-clock hour and weekday now in `zone`. */
function nowIn(zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone: zone, weekday: "long", hour: "2-digit", hourCycle: "h23" })
      .formatToParts(new Date())
      .map((p) => [p.type, p.value]),
  );
  return { weekday: parts.weekday, hour: Number(parts.hour) };
}

const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const hh = (h) => `${String(h).padStart(2, "0")}:00`;

/** The first free slot's button in a SlotWeek (going on to the week of the next free time if this one has none). */
async function firstSlot(page, verb) {
  const slots = page.getByRole("button", { name: new RegExp(`^${verb} `) });
  const later = page.getByRole("button", { name: /^Go to the next free time/ });
  await slots.first().or(later).waitFor();
  if (!(await slots.count())) await later.click();
  return slots.first();
}

// ---- The journey --------------------------------------------------------------------------

let server;
let browser;
try {
  for (const k of ["TELEMED_STUN_URLS", "TELEMED_TURN_URLS", "TELEMED_TURN_SECRET"]) delete process.env[k];
  server = await Server.start({
    TELEMED_WEB_DIR: process.env.TELEMED_WEB_DIR,
    TELEMED_BOOKING_MIN_NOTICE_MINUTES: "0",
    TELEMED_CALL_EARLY_JOIN_MINUTES: "1440",
    // Web Push on (a fresh VAPID key), so the notifications screen shows its real settings.
    TELEMED_VAPID_PRIVATE_KEY: generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ format: "jwk" }).d,
    TELEMED_VAPID_SUBJECT: "mailto:journeys@example.test",
  });
  browser = await launchBrowser();
  const stamp = Date.now().toString(36);
  const email = (who) => `${who}.${stamp}@example.test`;
  const auditorEmail = email("auditor");
  await server.cli(["user", "create", "--role", "auditor", "--email", auditorEmail, "--password", PASSWORD, "--name", "Alan Turing", "--timezone", "Europe/London"]);

  const doctor = await person(browser, server, "doctor", { timezoneId: "America/New_York" });
  const patient = await person(browser, server, "patient", { timezoneId: "Asia/Kolkata" });
  const auditor = await person(browser, server, "auditor", { timezoneId: "Europe/London" });
  people.push(doctor, patient, auditor);
  const D = doctor.page;
  const P = patient.page;
  const A = auditor.page;
  let appointmentId = "";

  await step("sign-in page, cold load (time to interactive)", async () => {
    // tti_ms: from the navigation's start (performance.timeOrigin) to the first moment the
    // sign-in form is usable: its e-mail field present and its submit button rendered, visible
    // and enabled, as seen by a MutationObserver installed before any of the page's scripts.
    // Cold: a new browser context (empty HTTP cache), first navigation to /signin.
    await doctor.context.addInitScript(() => {
      const usable = () => {
        const form = document.querySelector('form[aria-label="Sign in"]');
        const button = form?.querySelector('button[type="submit"]');
        return !!(form?.querySelector('input[type="email"]') && button && !button.disabled && button.getClientRects().length);
      };
      const observer = new MutationObserver(() => {
        if (window.__tti === undefined && usable()) {
          window.__tti = performance.now();
          observer.disconnect();
        }
      });
      observer.observe(document, { subtree: true, childList: true, attributes: true });
    });
    await D.goto("/signin");
    await D.getByRole("button", { name: "Sign in", exact: true }).waitFor();
    result.tti_ms = Math.round(await eventually("time to interactive", () => D.evaluate(() => window.__tti ?? null), (v) => v !== null));
    await shot(doctor, "sign-in");
  });

  await step("doctor signs up (server's field error first)", async () => {
    await D.getByRole("link", { name: "Create an account" }).click();
    await D.getByRole("heading", { name: "Create your account" }).waitFor();
    await D.getByLabel("Full name").fill("Meredith Grey");
    await D.getByLabel("E-mail").fill(email("grey"));
    // Long enough for the form, refused by the server: its message goes next to the field.
    await D.getByLabel("Password").fill("aaaaaaaaaaaa");
    await D.getByRole("radio", { name: "Doctor" }).check();
    await D.getByLabel("Time zone").selectOption("America/New_York");
    await allowing(doctor, status(422), /^\/api\/v1\/auth\/register$/, async () => {
      await D.getByRole("button", { name: "Create account" }).click();
      await fieldError(D.getByLabel("Password"), /single repeated character/);
    });
    if (!D.url().endsWith("/signup")) throw new Error(`a refused sign-up moved to ${D.url()}`);
    await D.getByRole("banner").getByRole("link", { name: "Sign in" }).waitFor(); // still signed out
    await shot(doctor, "sign-up-error");
    await D.getByLabel("Password").fill(PASSWORD);
    await D.getByRole("button", { name: "Create account" }).click();
    await D.waitForURL(/\/profile\?welcome=1$/);
  });

  await step("doctor fills in the profile (error path first)", async () => {
    await D.getByRole("heading", { name: "Your public profile" }).waitFor();
    const name = D.getByLabel("Name as patients see it");
    await name.fill("");
    await D.getByRole("button", { name: "Save profile" }).click();
    await fieldError(name, /is required/);
    await name.fill("Meredith Grey");
    await D.getByLabel("Specialties").fill("Cardiology\nFamily medicine");
    await D.getByLabel("Languages you consult in").fill("en\nes");
    await D.getByLabel("Introduction").fill("Twenty years of practice in cardiology; I also see families for general care.");
    await D.getByRole("button", { name: "Save profile" }).click();
    await D.getByRole("status").filter({ hasText: "Saved." }).waitFor();
    await shot(doctor, "profile");
  });

  // The weekly template: four hours from the current hour in New York (split at midnight), so
  // that the first free slot is within the next hour and can be called and checked in.
  const { weekday, hour } = nowIn("America/New_York");
  const today = WEEKDAYS.indexOf(weekday);
  const rules = [{ day: WEEKDAYS[today], from: hh(hour), to: hour + 4 >= 24 ? "00:00" : hh(hour + 4) }];
  if (hour + 4 > 24) rules.push({ day: WEEKDAYS[(today + 1) % 7], from: "00:00", to: hh(hour + 4 - 24) });

  await step("doctor opens a weekly template (server's field error first)", async () => {
    await D.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Availability" }).click();
    await D.getByRole("heading", { name: "Weekly template" }).waitFor();
    await D.getByRole("heading", { name: "Your windows" }).waitFor();
    await D.getByLabel("Day of rule 1").selectOption({ label: rules[0].day });
    await D.getByLabel("From (rule 1)").fill("12:00");
    await D.getByLabel("To (rule 1)").fill("09:00");
    await allowing(doctor, status(422), /\/availability$/, async () => {
      await D.getByRole("button", { name: "Add weekly windows" }).click();
      await fieldError(D.getByLabel("To (rule 1)"), /after/);
    });
    await shot(doctor, "availability-error");
    if (await D.getByRole("button", { name: /^Edit window / }).count()) throw new Error("a refused template added windows");
    await D.getByLabel("From (rule 1)").fill(rules[0].from);
    await D.getByLabel("To (rule 1)").fill(rules[0].to);
    if (rules[1]) {
      await D.getByRole("button", { name: "Add a day" }).click();
      await D.getByLabel("Day of rule 2").selectOption({ label: rules[1].day });
      await D.getByLabel("From (rule 2)").fill(rules[1].from);
      await D.getByLabel("To (rule 2)").fill(rules[1].to);
    }
    await D.getByRole("button", { name: "Add weekly windows" }).click();
    await D.getByText(/^Added \d+ windows?/).waitFor();
    await D.getByRole("button", { name: /^Edit window / }).first().waitFor();
    await shot(doctor, "availability");
  });

  await step("doctor's dashboard, nothing booked yet", async () => {
    await D.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Dashboard" }).click();
    await D.getByText("No requests waiting for you.").waitFor();
    await D.getByText("No one is waiting.").waitFor();
    await shot(doctor, "dashboard-empty");
  });

  await step("patient signs up in another zone (a taken e-mail first)", async () => {
    await P.goto("/signup");
    await P.getByLabel("Full name").fill("Priya Sharma");
    await P.getByLabel("E-mail").fill(email("grey"));
    await P.getByLabel("Password").fill(PASSWORD);
    await allowing(patient, status(409), /^\/api\/v1\/auth\/register$/, async () => {
      await P.getByRole("button", { name: "Create account" }).click();
      await fieldError(P.getByLabel("E-mail"), /already has an account/);
    });
    await P.getByRole("banner").getByRole("link", { name: "Sign in" }).waitFor(); // still signed out
    await P.getByLabel("E-mail").fill(email("priya"));
    // The device's zone, as Chromium names it (its ICU still says Asia/Calcutta).
    const zone = await P.getByLabel("Time zone").inputValue();
    if (!/^Asia\/(Kolkata|Calcutta)$/.test(zone)) throw new Error(`the sign-up form picked ${zone}, not the device's zone`);
    await shot(patient, "sign-up");
    await P.getByRole("button", { name: "Create account" }).click();
    await P.waitForURL(/\/doctors$/);
  });

  await step("patient finds the doctor (empty search first)", async () => {
    await P.getByLabel("Name or keyword").fill("nobody-by-this-name");
    await P.getByRole("button", { name: "Search" }).click();
    await P.getByText(/No doctor matches/).waitFor();
    await shot(patient, "find-doctor-empty");
    await P.getByLabel("Name or keyword").fill("");
    await P.getByLabel("Specialty").fill("Cardiology");
    await P.getByRole("button", { name: "Search" }).click();
    await P.waitForURL(/specialty=Cardiology/);
    await P.getByRole("heading", { name: "Meredith Grey" }).waitFor();
    await shot(patient, "find-doctor");
    await P.getByRole("link", { name: "See free times with Dr Meredith Grey" }).click();
    await P.getByRole("heading", { name: "Free times with Dr Meredith Grey" }).waitFor();
    await (await firstSlot(P, "Book")).waitFor();
    await shot(patient, "doctor-free-times");
  });

  await step("patient books the first free time (error path first)", async () => {
    await (await firstSlot(P, "Book")).click();
    const dialog = P.getByRole("dialog", { name: "Book an appointment" });
    await dialog.waitFor();
    await dialog.getByRole("button", { name: "Request this time" }).click();
    await fieldError(dialog.getByLabel("Reason for the consultation"), /is required/);
    await shot(patient, "booking-dialog-error");
    await dialog.getByLabel("Reason for the consultation").fill("Chest pain when climbing stairs");
    await shot(patient, "booking-dialog");
    await dialog.getByRole("button", { name: "Request this time" }).click();
    await P.waitForURL(/\/appointments\?booked=/);
    appointmentId = new URL(P.url()).searchParams.get("booked");
    await P.getByText(/has been sent to Dr Meredith Grey/).waitFor();
    await P.getByRole("heading", { name: "Upcoming" }).waitFor();
    await shot(patient, "appointments-requested");
  });

  await step("the request shows live on the doctor's dashboard; the doctor confirms", async () => {
    const confirm = D.getByRole("button", { name: /^Confirm appointment with Priya Sharma, / });
    await confirm.waitFor();
    await D.getByRole("status").filter({ hasText: /Priya Sharma/ }).first().waitFor();
    await shot(doctor, "dashboard-request");
    await confirm.click();
    await D.getByText(/^Confirmed the appointment with Priya Sharma/).waitFor();
    // The patient's list turns live: the confirmed appointment offers the check-in.
    await P.getByRole("link", { name: /^Check in with Dr Meredith Grey on / }).waitFor();
    await shot(patient, "appointments-confirmed");
  });

  await step("patient checks in and shows in the doctor's waiting queue", async () => {
    await P.getByRole("link", { name: /^Check in with Dr Meredith Grey on / }).click();
    await P.getByRole("heading", { name: "Check your camera, microphone and connection" }).waitFor();
    await P.getByRole("button", { name: "Check in" }).click();
    await P.getByText(/You are checked in/).waitFor();
    // The pre-call check: the camera's preview plays and the devices are listed.
    await P.getByRole("combobox", { name: "Camera" }).waitFor();
    await eventually("the camera preview plays", () => P.getByLabel("Your camera", { exact: true }).evaluate((v) => v.readyState >= 2 && !v.paused));
    await shot(patient, "waiting-room");
    await D.getByRole("button", { name: "Start call with Priya Sharma" }).waitFor();
    await shot(doctor, "waiting-queue");
  });

  const composer = (page) => page.getByLabel(/^Message to /);
  const inLog = (page, text) => page.getByRole("region", { name: /^Conversation with / }).getByText(text, { exact: true });

  await step("both enter the consultation room", async () => {
    await P.getByRole("link", { name: "Open the consultation room (chat)" }).click();
    await P.getByRole("heading", { name: "Consultation with Dr Meredith Grey" }).waitFor();
    await D.getByRole("link", { name: /^Open consultation room with Priya Sharma, / }).click();
    await D.getByRole("heading", { name: "Consultation with Priya Sharma" }).waitFor();
    await composer(D).waitFor();
    await composer(P).waitFor();
    await P.getByText(/^No messages yet/).waitFor();
    await shot(patient, "consultation-room");
  });

  await step("they chat: each sees the other typing, the message and the read receipt", async () => {
    // The composer's error path: nothing to send.
    await P.getByRole("button", { name: "Send" }).click();
    await fieldError(composer(P), /Write a message first/);
    await composer(P).pressSequentially("Hello doctor, I can see you.");
    await D.getByText("Priya Sharma is typing…").waitFor();
    await composer(P).press("Enter");
    await inLog(D, "Hello doctor, I can see you.").waitFor();
    await P.locator(".cr-msg.mine", { hasText: "Hello doctor, I can see you." }).getByText("· Read").waitFor();
    await composer(D).pressSequentially("Hello Priya. Tell me about the chest pain.");
    await P.getByText("Dr Meredith Grey is typing…").waitFor();
    await composer(D).press("Enter");
    await inLog(P, "Hello Priya. Tell me about the chest pain.").waitFor();
    await D.locator(".cr-msg.mine", { hasText: "Hello Priya. Tell me about the chest pain." }).getByText("· Read").waitFor();
    await shot(patient, "consultation-chat");
    await shot(doctor, "consultation-chat");
  });

  await step("the doctor starts the video call, the patient answers: both see video; hang up", async () => {
    await D.getByRole("button", { name: "Start video call" }).click();
    const answer = P.getByRole("button", { name: "Answer" });
    await answer.waitFor();
    await shot(patient, "incoming-call");
    await answer.click();
    for (const [who, page] of [
      [doctor, D],
      [patient, P],
    ]) {
      await page.getByText(/^In call with /).waitFor();
      const first = await eventually(`${who.name} decodes video`, () => framesDecoded(page), (n) => n > 0, 30_000);
      await eventually(`${who.name}'s video keeps playing`, () => framesDecoded(page), (n) => n >= first + 10, 15_000);
    }
    await shot(doctor, "call-active");
    await shot(patient, "call-active");
    await D.getByRole("button", { name: "Hang up" }).click();
    await D.getByText(/^The call has ended/).waitFor();
    await P.getByText(/^The call has ended/).waitFor();
  });

  await step("the server restarts mid-chat: nothing lost, nothing doubled", async () => {
    // In the order the server receives them: before the drop; the doctor's, as soon as the
    // doctor's page is back (the patient's may still be reconnecting: it gets it by resuming);
    // the patient's, written while the server was down and retried once it is back.
    const texts = ["Before the restart.", "Sent as soon as the server was back.", "Written while the server was down."];
    await composer(P).fill(texts[0]);
    await composer(P).press("Enter");
    await inLog(D, texts[0]).waitFor();
    const outage = async (fn) =>
      allowing(patient, refused, null, () =>
        allowing(doctor, refused, null, () => allowing(patient, socketFailed, null, () => allowing(doctor, socketFailed, null, fn))),
      );
    await outage(async () => {
      await server.stop();
      for (const page of [D, P]) await eventually("the page sees the server gone", () => liveStatus(page), (s) => /Connecting|Offline/.test(s));
      await composer(P).fill(texts[2]);
      await composer(P).press("Enter");
      await P.getByText(/^Not sent/).waitFor();
      await shot(patient, "chat-server-down");
      await server.up();
      await eventually("the doctor's page reconnects", () => liveStatus(D), (s) => /Live/.test(s), 30_000);
      await composer(D).fill(texts[1]);
      await composer(D).press("Enter");
      await eventually("the patient's page reconnects", () => liveStatus(P), (s) => /Live/.test(s), 30_000);
    });
    await inLog(P, texts[1]).waitFor();
    await P.getByRole("button", { name: `Retry sending “${texts[2]}”` }).click();
    await inLog(D, texts[2]).waitFor();
    for (const [who, page] of [
      [doctor, D],
      [patient, P],
    ]) {
      const seen = await eventually(
        `${who.name}'s conversation has every message once`,
        () => conversation(page),
        (list) => list.filter((x) => texts.includes(x)).join("\n") === texts.join("\n"),
      );
      if (new Set(seen).size !== seen.length) throw new Error(`${who.name} sees a doubled message: ${JSON.stringify(seen)}`);
      // And after a reload, from the server's history: the same, once each.
      await page.reload();
      const reloaded = await eventually(`${who.name}'s reloaded conversation`, () => conversation(page), (list) => list.length >= seen.length);
      if (reloaded.join("\n") !== seen.join("\n")) throw new Error(`${who.name}: live ${JSON.stringify(seen)} but stored ${JSON.stringify(reloaded)}`);
    }
    await shot(patient, "chat-after-restart");
  });

  await step("patient reschedules (error path first); the doctor confirms", async () => {
    await P.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "My appointments" }).click();
    await P.getByRole("link", { name: /^Reschedule appointment with Dr Meredith Grey on / }).click();
    await P.getByRole("heading", { name: "Choose a new time" }).waitFor();
    await (await firstSlot(P, "Choose")).waitFor();
    await shot(patient, "reschedule");
    await (await firstSlot(P, "Choose")).click();
    const dialog = P.getByRole("dialog", { name: "Move the appointment?" });
    await dialog.getByRole("button", { name: "Move appointment" }).click();
    await fieldError(dialog.getByLabel("Reason for the change"), /is required/);
    await dialog.getByLabel("Reason for the change").fill("A meeting came up at work.");
    await shot(patient, "reschedule-dialog");
    await dialog.getByRole("button", { name: "Move appointment" }).click();
    await P.waitForURL(/\/appointments\?rescheduled=/);
    await P.getByText(/Your appointment has been moved/).waitFor();
    await shot(patient, "appointments-rescheduled");
    const confirm = D.getByRole("button", { name: /^Confirm appointment with Priya Sharma, / });
    await D.getByRole("link", { name: "Back to dashboard" }).click();
    await confirm.waitFor();
    await D.getByText(/^Moved from /).first().waitFor();
    await shot(doctor, "dashboard-rescheduled");
    await confirm.click();
    await P.getByRole("link", { name: /^Check in with Dr Meredith Grey on / }).waitFor();
  });

  await step("patient cancels (error path first); the doctor's dashboard empties", async () => {
    await P.getByRole("button", { name: /^Cancel appointment with Dr Meredith Grey on / }).click();
    const dialog = P.getByRole("dialog", { name: "Cancel this appointment?" });
    await dialog.getByRole("button", { name: "Confirm cancellation" }).click();
    await fieldError(dialog.getByLabel("Reason for cancelling"), /is required/);
    await dialog.getByLabel("Reason for cancelling").fill("I feel better now.");
    await shot(patient, "cancel-dialog");
    await dialog.getByRole("button", { name: "Confirm cancellation" }).click();
    await P.getByText(/^You cancelled your appointment with Dr Meredith Grey/).waitFor();
    await P.getByRole("link", { name: "Book again with Dr Meredith Grey" }).waitFor();
    await shot(patient, "appointments-cancelled");
    await eventually("the doctor's dashboard drops the appointment", () => D.locator("li.dash-appt").count(), (n) => n === 0);
  });

  await step("patient joins the doctor's waitlist (error path first), sees it and leaves it", async () => {
    await P.getByRole("link", { name: "Book again with Dr Meredith Grey" }).click();
    const section = P.getByRole("region", { name: "No time suits you?" });
    await section.getByRole("button", { name: "Join the waitlist" }).waitFor();
    const day = (date, days) => new Date(Date.parse(`${date}T12:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
    const from = await section.getByLabel("From", { exact: true }).inputValue();
    await section.getByLabel("To", { exact: true }).fill(day(from, -1));
    await allowing(patient, status(422), /\/waitlist$/, async () => {
      await section.getByRole("button", { name: "Join the waitlist" }).click();
      await fieldError(section.getByLabel("To", { exact: true }), /must not be before/);
    });
    const to = day(from, 7);
    await section.getByLabel("To", { exact: true }).fill(to);
    await section.getByRole("button", { name: "Join the waitlist" }).click();
    await section.getByText(/^You are on Dr Meredith Grey's waitlist/).waitFor();
    await shot(patient, "waitlist-joined");
    await section.getByRole("link", { name: "your appointments" }).click();
    const waitlist = P.getByRole("region", { name: "Waitlist" });
    // The dates as the patient entered them (YYYY-MM-DD), whether or not time is offered yet.
    const entry = waitlist.getByRole("listitem").filter({ hasText: `30 minutes, between ${from} and ${to}` });
    await entry.waitFor();
    await shot(patient, "waitlist");
    await entry.getByRole("button", { name: "Leave the waitlist" }).click();
    await waitlist.getByText(/^You left .*'s waitlist\.$/).waitFor();
    await eventually("the entry leaves the list", () => entry.count(), (n) => n === 0);
  });

  await step("doctor adds time off and removes it (error path first)", async () => {
    await D.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Availability" }).click();
    const section = D.getByRole("region", { name: "Time off" });
    await section.getByRole("heading", { name: "Add time off" }).waitFor();
    await section.getByText("No time off planned.").waitFor();
    const from = await section.getByLabel("From date").inputValue();
    await section.getByLabel("To date").fill(from);
    await allowing(doctor, status(422), /\/time-off$/, async () => {
      await section.getByRole("button", { name: "Add time off" }).click();
      await fieldError(section.getByLabel("To date"), /after/);
    });
    const next = new Date(Date.parse(`${from}T12:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    await section.getByLabel("To date").fill(next);
    await section.getByLabel("Note").fill("Conference");
    await section.getByRole("button", { name: "Add time off" }).click();
    const item = section.getByRole("list", { name: "Planned time off" }).getByRole("listitem").filter({ hasText: "Conference" });
    await item.getByText("No appointments inside it.").waitFor();
    await shot(doctor, "time-off");
    await item.getByRole("button", { name: /^Remove time off / }).click();
    await section.getByText("No time off planned.").waitFor();
  });

  await step("notifications (the preferences' error path)", async () => {
    await P.getByRole("link", { name: /^Notifications/ }).click();
    await P.getByRole("heading", { name: "How we reach you" }).waitFor();
    const phone = P.getByLabel("Mobile number for SMS");
    await phone.fill("12345");
    await allowing(patient, status(422), /^\/api\/v1\/notifications\/preferences$/, async () => {
      await P.getByRole("button", { name: "Save preferences" }).click();
      await fieldError(phone, /international number/);
    });
    await shot(patient, "notifications-error");
    await P.reload();
    await P.getByRole("heading", { name: "How we reach you" }).waitFor();
    if ((await P.getByLabel("Mobile number for SMS").inputValue()) !== "") throw new Error("a refused phone number was saved");
    await P.getByRole("heading", { level: 3 }).first().waitFor();
    await shot(patient, "notifications");
    await D.getByRole("link", { name: /^Notifications/ }).click();
    await D.getByRole("heading", { level: 3 }).first().waitFor();
    await shot(doctor, "notifications");
  });

  await step("patient's profile, and downloading their data", async () => {
    await P.getByRole("banner").getByRole("link", { name: "Priya Sharma" }).click();
    await P.getByRole("heading", { name: "Your details" }).waitFor();
    const [download] = await Promise.all([
      P.waitForEvent("download"),
      P.getByRole("button", { name: "Download my data" }).click(),
    ]);
    if (!/^telemed-export-\d{4}-\d{2}-\d{2}\.json$/.test(download.suggestedFilename())) {
      throw new Error(`the export is saved as ${download.suggestedFilename()}`);
    }
    const exported = JSON.parse(readFileSync(await download.path(), "utf8"));
    const kinds = exported.bundle.entry.map((e) => e.resource.resourceType);
    if (exported.user.name !== "Priya Sharma" || kinds[0] !== "Patient" || !kinds.includes("Appointment")) {
      throw new Error(`the export lacks the patient or their appointments: ${kinds.join(", ")}`);
    }
    await P.getByRole("status").filter({ hasText: /^Downloaded telemed-export-/ }).waitFor();
    await shot(patient, "profile");
  });

  await step("error states: an unknown doctor, an unknown page", async () => {
    await allowing(patient, status(404), /^\/api\/v1\/doctors\/0{8}-/, async () => {
      await P.goto("/doctors/00000000-0000-0000-0000-000000000000");
      await P.getByRole("heading", { name: "Doctor" }).waitFor();
      await P.getByRole("link", { name: "Back to the doctor search" }).waitFor();
    });
    await shot(patient, "doctor-not-found");
    await P.goto("/no-such-page");
    await P.getByRole("heading", { name: "Page not found" }).waitFor();
    await shot(patient, "not-found");
  });

  await step("auditor signs in (wrong password first)", async () => {
    await A.goto("/signin");
    await A.getByLabel("E-mail").fill(auditorEmail);
    await A.getByLabel("Password").fill("not the password");
    await allowing(auditor, status(401), /^\/api\/v1\/auth\/login$/, async () => {
      await A.getByRole("button", { name: "Sign in", exact: true }).click();
      await A.getByRole("alert").getByText(/Could not sign in/).waitFor();
    });
    await shot(auditor, "sign-in-error");
    await A.getByLabel("Password").fill(PASSWORD);
    await A.getByRole("button", { name: "Sign in", exact: true }).click();
    await A.waitForURL(/\/audit$/);
    await A.getByRole("table").first().waitFor();
    await shot(auditor, "event-log");
  });

  await step("the auditor sees each step of the appointment in the event log", async () => {
    const id = A.getByLabel("Aggregate id");
    await id.fill("x".repeat(201)); // the server's limit is 200 characters; the form has none
    await allowing(auditor, status(422), /^\/api\/v1\/audit\/events$/, async () => {
      await A.getByRole("button", { name: "Apply filters" }).click();
      await fieldError(id, /at most 200 characters/);
    });
    await shot(auditor, "event-log-filter-error");
    await id.fill(appointmentId);
    await A.getByRole("button", { name: "Apply filters" }).click();
    await A.waitForURL(new RegExp(`aggregate_id=${appointmentId}`));
    const table = A.getByRole("table", { name: /Recorded events/ });
    const eventsOf = async () => ((await table.count()) ? table.locator('tbody td[data-label="Event"]').allInnerTexts() : []);
    const history = ["AppointmentRequested", "AppointmentConfirmed", "AppointmentRescheduled", "AppointmentConfirmed", "AppointmentCancelled"];
    await eventually("the appointment's history, step by step", eventsOf, (events) => events.join() === history.join());
    await shot(auditor, "appointment-history");
    // And the whole log, page after page: every kind of step of the journey is there.
    await A.getByRole("link", { name: "Show all events" }).click();
    await A.waitForURL(/\/audit$/);
    const more = A.getByRole("button", { name: "Load more events" });
    const newer = A.getByRole("button", { name: "Check for newer events" });
    await more.or(newer).waitFor();
    while (await more.isVisible()) {
      await more.click();
      await more.or(newer).waitFor();
    }
    const all = new Set(await eventsOf());
    for (const kind of ["StaffRegistered", "DoctorRegistered", "DoctorProfileUpdated", "WindowOpened", "PatientRegistered", "AppointmentRequested", "CallStarted", "CallAnswered", "CallEnded", "MessagePosted", "MessagesRead", "AppointmentCancelled"]) {
      if (!all.has(kind)) throw new Error(`the event log lacks ${kind}: ${[...all].join(", ")}`);
    }
  });

  await step("access log and API docs", async () => {
    await A.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Access log" }).click();
    await A.getByRole("heading", { name: "Reads" }).waitFor();
    await A.getByRole("table").first().waitFor();
    await shot(auditor, "access-log");
    await A.getByRole("banner").getByRole("link", { name: "API" }).click();
    await A.getByRole("heading", { level: 2 }).first().waitFor();
    await shot(auditor, "docs");
  });
} catch (e) {
  result.error = { step: currentStep, message: String(e?.message ?? e), stack: String(e?.stack ?? "") };
  for (const who of people) {
    try {
      await who.page.screenshot({ path: join(shots, `failure-${who.name}.png`), fullPage: true });
    } catch {
      // the page is gone
    }
  }
  if (server) result.server_log = server.log.join("").slice(-4000);
} finally {
  await browser?.close().catch(() => undefined);
  await server?.stop().catch(() => undefined);
}
classifyProblems();
result.duration_ms = Date.now() - started;
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
