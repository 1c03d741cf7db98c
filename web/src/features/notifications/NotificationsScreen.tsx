import { useSession } from "@/shared/auth/hooks";
import { Page } from "@/shared/ui/Page";
import { Inbox } from "./Inbox";
import { Preferences } from "./Preferences";
import { PushSettings } from "./PushSettings";
import "./notifications.css";

/** The inbox, then how notifications reach the person outside the app. */
export function NotificationsScreen() {
  const session = useSession();
  if (!session) return null;
  return (
    <Page title="Notifications">
      <Inbox user={session.user} />
      <Preferences user={session.user} />
      <PushSettings user={session.user} />
    </Page>
  );
}
