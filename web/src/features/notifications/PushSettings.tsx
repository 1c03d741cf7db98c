import { useEffect, useState } from "preact/hooks";
import { api, must } from "@/shared/api/client";
import { ProblemError } from "@/shared/api/problem";
import type { SessionUser } from "@/shared/auth/session";
import { ErrorState, Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { disablePush, enablePush, isSubscribed, PermissionRefused, permission, pushSupported } from "./push";

/** The server's VAPID public key, or null when push is not configured (404). */
async function loadKey(): Promise<string | null> {
  const res = await api.GET("/api/v1/notifications/push-key");
  if (res.response.status === 404) return null;
  return must(res).public_key;
}

/** Web Push on this device: on, off, or why it cannot be. */
export function PushSettings({ user }: { user: SessionUser }) {
  const key = useResource(loadKey, []);
  return (
    <section class="card notif-section" aria-labelledby="notif-push-h">
      <h2 id="notif-push-h">Push notifications on this device</h2>
      <Loaded resource={key} what="Checking push notifications">
        {(k) =>
          k === null ? (
            <p class="muted">Push notifications are not available on this server.</p>
          ) : !pushSupported() ? (
            <p class="muted">This browser cannot receive push notifications. You still get every notification in the inbox above.</p>
          ) : (
            <PushToggle user={user} publicKey={k} />
          )
        }
      </Loaded>
    </section>
  );
}

/** A server problem as it is; a browser failure (no push service, private window…) explained. */
function pushProblem(e: unknown, title: string): ProblemError {
  if (e instanceof ProblemError) return e;
  const reason = e instanceof Error ? e.message : String(e);
  return new ProblemError({
    status: 0,
    title,
    detail: `the browser said "${reason}". Private windows and some browsers cannot receive push notifications; you still get every notification in the inbox above.`,
  });
}

const blockedHelp =
  "Notifications are blocked for this site in your browser. To allow them, open the site settings (the icon to the left of the address bar), set Notifications to Allow, then reload this page.";

function PushToggle({ user, publicKey }: { user: SessionUser; publicKey: string }) {
  const [state, setState] = useState<"checking" | "on" | "off">("checking");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ProblemError>();
  const [perm, setPerm] = useState(permission());
  const [message, setMessage] = useState("");

  useEffect(() => {
    isSubscribed(user.id)
      .then((yes) => setState(yes ? "on" : "off"))
      .catch(() => setState("off"));
  }, [user.id]);

  async function enable() {
    setBusy(true);
    setError(undefined);
    try {
      await enablePush(user.id, publicKey);
      setState("on");
      setMessage("Push notifications are on for this device.");
    } catch (e) {
      if (e instanceof PermissionRefused) {
        setMessage(e.state === "denied" ? "Notifications are blocked." : "Permission was not given.");
      } else {
        setError(pushProblem(e, "Could not turn on push notifications"));
      }
    } finally {
      setPerm(permission());
      setBusy(false);
    }
  }

  async function disable() {
    setBusy(true);
    setError(undefined);
    try {
      await disablePush(user.id);
      setState("off");
      setMessage("Push notifications are off for this device.");
    } catch (e) {
      setError(pushProblem(e, "Could not turn off push notifications"));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <p class="visually-hidden" role="status">
        {message}
      </p>
      {state === "checking" && <p class="muted">Checking this device…</p>}
      {state === "on" && (
        <>
          <p>
            <span class="badge confirmed">On</span> This device gets a notification when something changes, even when Telemed is
            closed.
          </p>
          <button type="button" class="button secondary" onClick={() => void disable()} disabled={busy} aria-busy={busy}>
            {busy ? "Working…" : "Disable push notifications on this device"}
          </button>
        </>
      )}
      {state === "off" && perm === "denied" && (
        <p class="notice warn" role="alert">
          {blockedHelp}
        </p>
      )}
      {state === "off" && perm !== "denied" && (
        <>
          <p>Get a notification on this device when an appointment changes or a message arrives, even when Telemed is closed.</p>
          {perm === "default" && <p class="hint">Your browser will ask for permission.</p>}
          <button type="button" class="button primary" onClick={() => void enable()} disabled={busy} aria-busy={busy}>
            {busy ? "Working…" : "Enable push notifications on this device"}
          </button>
        </>
      )}
      {error && (
        <div class="notif-more">
          <ErrorState error={error} />
        </div>
      )}
    </>
  );
}
