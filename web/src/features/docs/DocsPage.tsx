import { useEffect, useRef, useState } from "preact/hooks";
import { toProblem, type ProblemError } from "@/shared/api/problem";
import { useSession } from "@/shared/auth/hooks";
import { Page } from "@/shared/ui/Page";
import { ErrorState, Loading } from "@/shared/ui/states";
import { clientEvents, limits, serverEvents, topics, transports, type EventRow } from "./protocol";
import "./docs.css";

/** The API reference: the live protocol's events, then the REST API rendered by Swagger UI. */
export function DocsPage() {
  return (
    <Page title="API reference">
      <p>
        Telemed's REST API lives under <code>/api/v1</code>: JSON in and out, errors as <code>application/problem+json</code>{" "}
        (RFC 9457) naming the field at fault, and a bearer access token from <code>POST /api/v1/auth/login</code>. Changes reach
        clients live over a WebSocket or Socket.IO connection.
      </p>
      <nav class="docs-toc" aria-label="On this page">
        <ul>
          <li>
            <a href="#docs-live" onClick={jump}>
              Live events
            </a>
          </li>
          <li>
            <a href="#docs-rest" onClick={jump}>
              REST API reference
            </a>
          </li>
          <li>
            <a href="/api/v1/openapi.json">OpenAPI document (JSON)</a>
          </li>
        </ul>
      </nav>
      <LiveProtocol />
      <RestReference />
    </Page>
  );
}

/**
 * Moves to an in-page heading and focuses it. Done by hand: Swagger UI rewrites the address's
 * hash (its deep linking), which would undo the browser's own jump.
 */
function jump(e: MouseEvent) {
  const id = (e.currentTarget as HTMLAnchorElement).hash.slice(1);
  const target = document.getElementById(id);
  if (!target) return;
  e.preventDefault();
  target.scrollIntoView({ block: "start" });
  target.focus({ preventScroll: true });
}

function LiveProtocol() {
  return (
    <section class="docs-section" aria-labelledby="docs-live">
      <h2 id="docs-live" tabIndex={-1}>
        Live events
      </h2>
      <p>
        Two transports, one vocabulary. On connect you receive the events of everything you take part in, without subscribing.
      </p>

      <h3>Transports</h3>
      <div class="table-wrap">
        <table class="stack-table docs-table docs-transports">
          <caption class="visually-hidden">How to connect with each transport</caption>
          <thead>
            <tr>
              <th scope="col">Transport</th>
              <th scope="col">Connect</th>
              <th scope="col">Token</th>
              <th scope="col">Frames</th>
              <th scope="col">Acks</th>
            </tr>
          </thead>
          <tbody>
            {transports.map((t) => (
              <tr key={t.name}>
                <th scope="row">{t.name}</th>
                <td data-label="Connect">
                  <code>{t.connect}</code>
                </td>
                <td data-label="Token">{t.auth}</td>
                <td data-label="Frames">{t.frames}</td>
                <td data-label="Acks">{t.acks}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3>Resuming and limits</h3>
      <ul class="docs-limits">
        {limits.map((l) => (
          <li key={l}>{l}</li>
        ))}
      </ul>

      <h3>Topics</h3>
      <p>
        Send <code>subscribe</code> <code>{"{topic}"}</code> to receive more; access is checked at every join.
      </p>
      <div class="table-wrap">
        <table class="stack-table docs-table">
          <caption class="visually-hidden">Topics a client may subscribe to</caption>
          <thead>
            <tr>
              <th scope="col">Topic</th>
              <th scope="col">Who may join</th>
              <th scope="col">Delivers</th>
            </tr>
          </thead>
          <tbody>
            {topics.map((t) => (
              <tr key={t.topic}>
                <th scope="row">
                  <code>{t.topic}</code>
                </th>
                <td data-label="Who may join">{t.who}</td>
                <td data-label="Delivers">{t.delivers}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3>Client → server</h3>
      <EventTable rows={clientEvents} answer="Ack data" caption="Events a client sends, with the data of their acknowledgement" />

      <h3>Server → client</h3>
      <EventTable rows={serverEvents} answer="Sent to" caption="Events the server sends, with who receives them" />
    </section>
  );
}

function EventTable({ rows, answer, caption }: { rows: readonly EventRow[]; answer: string; caption: string }) {
  return (
    <div class="table-wrap">
      <table class="stack-table docs-table">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Event</th>
            <th scope="col">Data</th>
            <th scope="col">{answer}</th>
            <th scope="col">What it does</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name}>
              <th scope="row">
                <code>{r.name}</code>
              </th>
              <td data-label="Data">
                <code>{r.data}</code>
              </td>
              <td data-label={answer}>{r.answer.startsWith("{") || r.answer === "message" ? <code>{r.answer}</code> : r.answer}</td>
              <td data-label="What it does">{r.purpose}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

type ViewerState = { kind: "loading" } | { kind: "ready" } | { kind: "failed"; error: ProblemError };

/** Swagger UI, loaded with `import()` only when this section mounts. */
function RestReference() {
  const session = useSession();
  const node = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<ViewerState>({ kind: "loading" });
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let active = true;
    const target = node.current;
    setState({ kind: "loading" });
    import("./swagger")
      .then((m) => {
        if (!active || !target) return;
        // From here Swagger UI shows its own progress and errors (e.g. the document failing to load).
        m.mountSwagger(target);
        setState({ kind: "ready" });
      })
      .catch((e: unknown) => active && setState({ kind: "failed", error: toProblem(e) }));
    return () => {
      active = false;
      target?.replaceChildren();
    };
  }, [attempt]);

  return (
    <section class="docs-section" aria-labelledby="docs-rest">
      <h2 id="docs-rest" tabIndex={-1}>
        REST API reference
      </h2>
      <p class="muted">
        {session
          ? `“Try it out” sends real requests as you (${session.user.name}, ${session.user.role}), unless you set another token with “Authorize”.`
          : "Sign in to try the endpoints that need an account, or paste an access token with “Authorize”."}
      </p>
      {state.kind === "loading" && <Loading what="Loading the API reference" />}
      {state.kind === "failed" && <ErrorState error={state.error} retry={() => setAttempt((n) => n + 1)} />}
      <div ref={node} class="docs-swagger" />
    </section>
  );
}
