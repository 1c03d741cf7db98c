import { useResource } from "@/shared/ui/useResource";
import { ErrorState, Loading } from "@/shared/ui/states";
import { fetchChainHead } from "./api";

/** The head of the tamper-evident hash chain, with the command that checks the log against it. */
export function ChainHeadCard() {
  const head = useResource(fetchChainHead, []);
  return (
    <section class="audit-section card" aria-labelledby="audit-chain">
      <h2 id="audit-chain">Tamper evidence</h2>
      {head.error ? (
        <ErrorState error={head.error} retry={() => void head.reload()} />
      ) : !head.data ? (
        <Loading what="Loading the chain head" />
      ) : (
        <>
          <p class="muted small">
            The log is sealed into a hash chain. Keep this head: <code>telemed audit verify</code> with it proves later that
            the history up to it was not changed.
          </p>
          <dl class="audit-chain">
            <dt>Events sealed</dt>
            <dd>{head.data.events}</dd>
            <dt>Position</dt>
            <dd>
              <code>{head.data.position}</code>
            </dd>
            <dt>Head hash</dt>
            <dd>
              <code class="audit-hash">{head.data.hash}</code>
            </dd>
          </dl>
          <p class="small">
            <code class="audit-hash">
              telemed audit verify --head {head.data.hash} --at {head.data.position}
            </code>
          </p>
          <button type="button" class="button secondary" onClick={() => void head.reload()} disabled={head.loading} aria-busy={head.loading}>
            {head.loading ? "Loading…" : "Refresh head"}
          </button>
        </>
      )}
    </section>
  );
}
