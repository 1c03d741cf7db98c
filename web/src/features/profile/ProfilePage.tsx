import { useLocation } from "preact-iso";
import { api, must } from "@/shared/api/client";
import { useSession } from "@/shared/auth/hooks";
import type { SessionUser } from "@/shared/auth/session";
import { Page } from "@/shared/ui/Page";
import { Loaded } from "@/shared/ui/states";
import { useResource } from "@/shared/ui/useResource";
import { DataExport } from "./DataExport";
import { DoctorProfileForm } from "./DoctorProfileForm";
import { PatientProfileForm } from "./PatientProfileForm";
import "./profile.css";

const roleNames: Record<string, string> = { patient: "Patient", doctor: "Doctor", admin: "Administrator", auditor: "Auditor" };

/** The signed-in user's account, and the profile of their role. */
export function ProfilePage() {
  const session = useSession();
  const { query } = useLocation();
  const me = useResource(async () => must(await api.GET("/api/v1/me")), [session?.user.id]);
  if (!session) return null;
  const user = session.user;
  const welcome = query.welcome !== undefined && user.role === "doctor";

  return (
    <Page title="Your profile">
      {welcome && (
        <div class="notice" role="status">
          <p>
            <strong>Welcome to Telemed, {user.name}.</strong> Patients find you by your specialties and languages: fill them in
            below, then open your availability so that patients can book.
          </p>
        </div>
      )}
      <section class="card profile-card" aria-labelledby="profile-account-h">
        <h2 id="profile-account-h">Account</h2>
        {/* Name and zone from the session: a save below updates them at once. */}
        <Loaded resource={me} what="Loading your account">
          {(account) => <AccountDetails user={{ ...account, role: account.role as SessionUser["role"], name: user.name, timezone: user.timezone }} />}
        </Loaded>
      </section>
      {user.role === "patient" && <PatientSection user={user} />}
      {user.role === "doctor" && <DoctorSection user={user} />}
      {(user.role === "patient" || user.role === "doctor") && <DataExport />}
      {(user.role === "admin" || user.role === "auditor") && (
        <p class="muted">Administrator and auditor accounts are managed from the command line; there is nothing to edit here.</p>
      )}
    </Page>
  );
}

function AccountDetails({ user }: { user: SessionUser }) {
  return (
    <dl class="profile-details">
      <div>
        <dt>Name</dt>
        <dd>{user.name}</dd>
      </div>
      <div>
        <dt>E-mail (sign-in)</dt>
        <dd>{user.email}</dd>
      </div>
      <div>
        <dt>Role</dt>
        <dd>{roleNames[user.role] ?? user.role}</dd>
      </div>
      <div>
        <dt>Time zone</dt>
        <dd>{user.timezone}</dd>
      </div>
    </dl>
  );
}

function PatientSection({ user }: { user: SessionUser }) {
  const patient = useResource(
    async () => must(await api.GET("/api/v1/patients/{patient_id}", { params: { path: { patient_id: user.id } } })),
    [user.id],
  );
  return (
    <section class="card">
      <Loaded resource={patient} what="Loading your profile">
        {(p) => <PatientProfileForm patient={p} user={user} />}
      </Loaded>
    </section>
  );
}

function DoctorSection({ user }: { user: SessionUser }) {
  const doctor = useResource(
    async () => must(await api.GET("/api/v1/doctors/{doctor_id}", { params: { path: { doctor_id: user.id } } })),
    [user.id],
  );
  return (
    <section class="card">
      <Loaded resource={doctor} what="Loading your profile">
        {(d) => <DoctorProfileForm doctor={d} user={user} />}
      </Loaded>
    </section>
  );
}
