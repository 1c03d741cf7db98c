/** The app: routing, the signed-in guard, the layout and the live connection's lifetime. */
import { useEffect } from "preact/hooks";
import { ErrorBoundary, LocationProvider, Route, Router, useLocation } from "preact-iso";
import { useSession } from "@/shared/auth/hooks";
import { live } from "@/shared/live/live";
import { homeOf, paths } from "@/shared/paths";
import { Layout } from "./Layout";
import { screens, type Screen } from "./routes";

export function App() {
  const session = useSession();
  useEffect(() => {
    if (session) live.start();
    else live.stop();
  }, [session?.user.id]);
  return (
    <LocationProvider>
      <Layout>
        <ErrorBoundary>
          <Router>
            {[
              ...screens.map((s) => <Route key={s.path} path={s.path} component={guard(s)} />),
              <Route key="home" path={paths.home} component={Home} />,
              <Route key="404" default component={NotFound} />,
            ]}
          </Router>
        </ErrorBoundary>
      </Layout>
    </LocationProvider>
  );
}

const guards = new Map<Screen, () => preact.JSX.Element | null>();

/** The screen if the signed-in user's role may see it; else sign-in or their home. */
function guard(screen: Screen) {
  let guarded = guards.get(screen);
  if (!guarded) {
    guarded = function Guarded() {
      const session = useSession();
      const { route, url } = useLocation();
      const allowed = !screen.roles || (session && screen.roles.includes(session.user.role));
      useEffect(() => {
        if (allowed) return;
        route(session ? homeOf(session.user.role) : `${paths.signIn}?next=${encodeURIComponent(url)}`, true);
      }, [allowed]);
      const Component = screen.component;
      return allowed ? <Component /> : null;
    };
    guards.set(screen, guarded);
  }
  return guarded;
}

function Home() {
  const session = useSession();
  const { route } = useLocation();
  useEffect(() => route(session ? homeOf(session.user.role) : paths.signIn, true), [session?.user.role]);
  return null;
}

function NotFound() {
  return (
    <section class="page">
      <h1>Page not found</h1>
      <p>
        There is nothing at this address. <a href={paths.home}>Go to the start page</a>.
      </p>
    </section>
  );
}
