-- Telemed: the whole database schema. Applied idempotently at start-up and by `telemed migrate`
-- (inside one transaction, under an advisory lock, so concurrent starts are safe).

-- ---------------------------------------------------------------------------------------------
-- Event store: the postgres-es `events` table plus the commit-safe global order.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS events (
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL CHECK (sequence > 0),
    event_type      text        NOT NULL,
    event_version   text        NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    -- Our columns. A later global_position can commit before an earlier one, so readers
    -- order by (transaction_id, global_position) and read only below the oldest running
    -- transaction (see projections/src/stream.rs).
    global_position bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX IF NOT EXISTS events_commit_order ON events (transaction_id, global_position);

-- The log is append-only, enforced by the database itself.
CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE OR REPLACE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Wake up stream readers when events commit (NOTIFY is delivered at commit, and identical
-- notifications within one transaction are folded into one).
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('telemed_events', '');
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER events_notify_insert
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- ---------------------------------------------------------------------------------------------
-- Identity: credentials are mutable and never enter the event log.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS credentials (
    user_id       uuid        PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('patient', 'doctor', 'admin', 'auditor')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX IF NOT EXISTS credentials_email_unique ON credentials (lower(email));

-- ---------------------------------------------------------------------------------------------
-- Read side: one checkpoint per projection, moved in the same transaction as its tables.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name            text        PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Projection "profiles": user_profiles, doctor_profiles, patient_profiles.
CREATE TABLE IF NOT EXISTS user_profiles (
    user_id    uuid   PRIMARY KEY,
    role       text   NOT NULL,
    name       text   NOT NULL,
    timezone   text   NOT NULL,
    version    bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS doctor_profiles (
    doctor_id        uuid   PRIMARY KEY,
    name             text   NOT NULL,
    specialties      text[] NOT NULL DEFAULT '{}',
    -- lowercased copies for case-insensitive search
    specialties_key  text[] NOT NULL DEFAULT '{}',
    bio              text   NOT NULL DEFAULT '',
    languages        text[] NOT NULL DEFAULT '{}',
    timezone         text   NOT NULL,
    version          bigint NOT NULL
);

-- Issue 14: the doctor's slot policy (event SlotPolicySet); NULL interval: slots back to back.
ALTER TABLE doctor_profiles ADD COLUMN IF NOT EXISTS buffer_before_minutes integer NOT NULL DEFAULT 0;
ALTER TABLE doctor_profiles ADD COLUMN IF NOT EXISTS buffer_after_minutes  integer NOT NULL DEFAULT 0;
ALTER TABLE doctor_profiles ADD COLUMN IF NOT EXISTS slot_interval_minutes integer;

CREATE INDEX IF NOT EXISTS doctor_profiles_specialties ON doctor_profiles USING gin (specialties_key);
CREATE INDEX IF NOT EXISTS doctor_profiles_name ON doctor_profiles (lower(name));

CREATE TABLE IF NOT EXISTS patient_profiles (
    patient_id  uuid   PRIMARY KEY,
    name        text   NOT NULL,
    timezone    text   NOT NULL,
    phone       text,
    address     text,
    conditions  text[] NOT NULL DEFAULT '{}',
    allergies   text[] NOT NULL DEFAULT '{}',
    medications text[] NOT NULL DEFAULT '{}',
    notes       text   NOT NULL DEFAULT '',
    version     bigint NOT NULL
);

-- ---------------------------------------------------------------------------------------------
-- Scheduling: command-side lookup tables (mutable, written by the booking flow, not by
-- projections), for invariants that span aggregates.
-- ---------------------------------------------------------------------------------------------

-- A patient may not hold two overlapping open appointments. Each booking or reschedule claims
-- its time before the slot is reserved; the exclusion constraint refuses an overlapping claim
-- of another appointment atomically (btree_gist gives GiST the `=`/`<>` on uuid). A
-- reschedule holds its old and new claim until it commits. Claims that no open appointment
-- matches are swept.
CREATE EXTENSION IF NOT EXISTS btree_gist;
DROP TABLE IF EXISTS patient_claims;
CREATE TABLE IF NOT EXISTS patient_time_claims (
    claim_id       uuid        PRIMARY KEY,
    appointment_id uuid        NOT NULL,
    patient_id     uuid        NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    claimed_at     timestamptz NOT NULL DEFAULT now()
);
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'patient_time_claims_no_overlap') THEN
        ALTER TABLE patient_time_claims ADD CONSTRAINT patient_time_claims_no_overlap
            EXCLUDE USING gist (patient_id WITH =, tstzrange(start_at, end_at) WITH &&,
                                appointment_id WITH <>);
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS patient_time_claims_appointment ON patient_time_claims (appointment_id);

-- Idempotency-Key: the first answer to a (user, key) is stored and replayed.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id      uuid        NOT NULL,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    status       smallint,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- Secret, revocable calendar feed tokens.
CREATE TABLE IF NOT EXISTS calendar_feeds (
    token      text        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS calendar_feeds_active ON calendar_feeds (user_id) WHERE revoked_at IS NULL;

-- Projection "availability": availability_windows, reservations, slot_holds, time_off.
CREATE TABLE IF NOT EXISTS availability_windows (
    window_id  uuid        PRIMARY KEY,
    doctor_id  uuid        NOT NULL,
    day_id     text        NOT NULL,
    local_date date        NOT NULL,
    start_at   timestamptz NOT NULL,
    end_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS availability_windows_doctor ON availability_windows (doctor_id, start_at);

CREATE TABLE IF NOT EXISTS reservations (
    reservation_id uuid        PRIMARY KEY,
    appointment_id uuid        NOT NULL,
    doctor_id      uuid        NOT NULL,
    patient_id     uuid        NOT NULL,
    day_id         text        NOT NULL,
    local_date     date        NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    reserved_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_doctor ON reservations (doctor_id, start_at);
CREATE INDEX IF NOT EXISTS reservations_appointment ON reservations (appointment_id);

-- Waitlist holds: time held for an open waitlist offer (only its appointment may take it).
CREATE TABLE IF NOT EXISTS slot_holds (
    hold_id        uuid        PRIMARY KEY,
    appointment_id uuid        NOT NULL,
    doctor_id      uuid        NOT NULL,
    patient_id     uuid        NOT NULL,
    day_id         text        NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS slot_holds_doctor ON slot_holds (doctor_id, start_at);

-- A doctor's time off (events TimeOffBlocked / TimeOffUnblocked, recorded on each doctor-day
-- it may touch; one row per time off).
CREATE TABLE IF NOT EXISTS time_off (
    time_off_id uuid        PRIMARY KEY,
    doctor_id   uuid        NOT NULL,
    start_at    timestamptz NOT NULL,
    end_at      timestamptz NOT NULL,
    note        text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS time_off_doctor ON time_off (doctor_id, start_at);

-- Projection "waitlist": waitlist_entries. FIFO order is the join event's global position.
CREATE TABLE IF NOT EXISTS waitlist_entries (
    entry_id         uuid        PRIMARY KEY,
    patient_id       uuid        NOT NULL,
    doctor_id        uuid        NOT NULL,
    from_date        date        NOT NULL,
    to_date          date        NOT NULL,
    duration_minutes integer     NOT NULL,
    status           text        NOT NULL,
    joined_at        timestamptz NOT NULL,
    joined_order     bigint      NOT NULL,
    offer_id         uuid,
    offer_day_id     text,
    offer_start      timestamptz,
    offer_end        timestamptz,
    offer_expires_at timestamptz,
    appointment_id   uuid,
    passed_starts    timestamptz[] NOT NULL DEFAULT '{}',
    passed_ends      timestamptz[] NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS waitlist_entries_doctor ON waitlist_entries (doctor_id, status, joined_order);
CREATE INDEX IF NOT EXISTS waitlist_entries_patient ON waitlist_entries (patient_id, joined_order);
CREATE INDEX IF NOT EXISTS waitlist_entries_offer ON waitlist_entries (offer_id);
-- The last offer that closed unaccepted ('declined', 'expired' or 'withdrawn'): a late answer to
-- it is a 409 naming how it closed, not a 404.
ALTER TABLE waitlist_entries ADD COLUMN IF NOT EXISTS last_offer_id uuid;
ALTER TABLE waitlist_entries ADD COLUMN IF NOT EXISTS last_offer_end text;
CREATE INDEX IF NOT EXISTS waitlist_entries_last_offer ON waitlist_entries (last_offer_id);
CREATE INDEX IF NOT EXISTS waitlist_entries_expiry ON waitlist_entries (offer_expires_at) WHERE status = 'offered';

-- Projection "appointments": appointments.
CREATE TABLE IF NOT EXISTS appointments (
    appointment_id         uuid        PRIMARY KEY,
    doctor_id              uuid        NOT NULL,
    patient_id             uuid        NOT NULL,
    start_at               timestamptz NOT NULL,
    end_at                 timestamptz NOT NULL,
    status                 text        NOT NULL,
    awaiting               text,
    reason                 text        NOT NULL,
    day_id                 text        NOT NULL,
    reservation_id         uuid        NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    rescheduled_from_start timestamptz,
    rescheduled_from_end   timestamptz,
    cancelled_by           uuid,
    cancel_reason          text,
    cancelled_at           timestamptz,
    sequence               bigint      NOT NULL,
    position               text        NOT NULL
);
CREATE INDEX IF NOT EXISTS appointments_patient ON appointments (patient_id, start_at);
CREATE INDEX IF NOT EXISTS appointments_doctor ON appointments (doctor_id, start_at);
CREATE INDEX IF NOT EXISTS appointments_doctor_status ON appointments (doctor_id, status);
CREATE INDEX IF NOT EXISTS appointments_reservation ON appointments (reservation_id);
CREATE INDEX IF NOT EXISTS appointments_doctor_patient ON appointments (doctor_id, patient_id);

-- Projection "conversations": chat messages and read markers. Messages are ordered by the
-- commit-safe position of their event (xid, global position).
CREATE TABLE IF NOT EXISTS chat_messages (
    message_id     uuid        PRIMARY KEY,
    appointment_id uuid        NOT NULL,
    sender_id      uuid        NOT NULL,
    content        text        NOT NULL,
    client_msg_id  text,
    sent_at        timestamptz NOT NULL,
    xid            bigint      NOT NULL,
    gpos           bigint      NOT NULL,
    position       text        NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_messages_page ON chat_messages (appointment_id, xid, gpos);

CREATE TABLE IF NOT EXISTS chat_reads (
    appointment_id uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    up_to          uuid        NOT NULL,
    read_at        timestamptz NOT NULL,
    PRIMARY KEY (appointment_id, user_id)
);

-- Ephemeral live traffic (typing, call signaling) between server processes travels by
-- NOTIFY; a payload over NOTIFY's 8000-byte limit (an SDP offer can be) is parked here and
-- only its id is notified. Rows are deleted after a minute.
CREATE TABLE IF NOT EXISTS live_relay (
    relay_id   bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Projection "calls": the call log.
CREATE TABLE IF NOT EXISTS calls (
    call_id        uuid        PRIMARY KEY,
    appointment_id uuid        NOT NULL,
    doctor_id      uuid        NOT NULL,
    patient_id     uuid        NOT NULL,
    caller_id      uuid        NOT NULL,
    status         text        NOT NULL,
    started_at     timestamptz NOT NULL,
    answered_at    timestamptz,
    ended_at       timestamptz,
    end_reason     text,
    duration_seconds bigint,
    position       text        NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_appointment ON calls (appointment_id, started_at);
CREATE INDEX IF NOT EXISTS calls_ringing ON calls (started_at) WHERE status = 'ringing';

-- Command side: the one live call of an appointment, so that two participants starting a
-- call at once get the same call (the row is replaced once that call is over).
CREATE TABLE IF NOT EXISTS active_calls (
    appointment_id uuid PRIMARY KEY,
    call_id        uuid NOT NULL
);

-- Reads of patient data by anyone but the patient: who, what, when, outcome. Append-only,
-- enforced like the event log.
CREATE TABLE IF NOT EXISTS access_log (
    entry_id    bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid        NOT NULL,
    actor_role  text        NOT NULL,
    patient_id  uuid        NOT NULL,
    resource    text        NOT NULL,
    resource_id text        NOT NULL,
    outcome     text        NOT NULL CHECK (outcome IN ('allowed', 'denied')),
    request_id  text        NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_patient ON access_log (patient_id, entry_id);
-- A reader's own entries (a doctor's export lists the reads they made).
CREATE INDEX IF NOT EXISTS access_log_actor ON access_log (actor_id, entry_id);

CREATE OR REPLACE FUNCTION access_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only: % on access_log is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE TRIGGER access_log_append_only
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION access_log_refuse_change();

CREATE OR REPLACE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_refuse_change();

-- ---------------------------------------------------------------------------------------------
-- Failed sign-ins per account (lower-cased e-mail, known or not): after repeated failures the
-- account is locked for a while. Security state, not domain history: kept outside the log so
-- that guessing attacks do not fill it, and shared by every process.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS login_failures (
    email        text        PRIMARY KEY,
    failures     integer     NOT NULL,
    locked_until timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- Refresh tokens (SHA-256 of the opaque token) of sign-in sessions. A token is spent when
-- traded for the next; presenting a spent one revokes its whole session.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash  bytea       PRIMARY KEY,
    session_id  uuid        NOT NULL,
    user_id     uuid        NOT NULL,
    role        text        NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    spent_at    timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS refresh_tokens_revoked ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;

-- ---------------------------------------------------------------------------------------------
-- Notifications.
--
-- Projection "notifications": each user's in-app notifications (one per appointment change
-- and new message, for the other party; ids derive from the event's position, so a rebuild
-- gives the same ids) and the appointment facts it needs. Titles and bodies are rendered when
-- read, in the recipient's current time zone.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS notification_appointments (
    appointment_id uuid        PRIMARY KEY,
    doctor_id      uuid        NOT NULL,
    patient_id     uuid        NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    status         text        NOT NULL
);

CREATE TABLE IF NOT EXISTS notifications (
    notification_id   uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL,
    kind              text        NOT NULL,
    appointment_id    uuid,
    actor_id          uuid,
    start_at          timestamptz,
    previous_start_at timestamptz,
    at                timestamptz NOT NULL,
    gpos              bigint      NOT NULL,
    position          text        NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_user ON notifications (user_id, gpos DESC);
CREATE INDEX IF NOT EXISTS notifications_gpos ON notifications (gpos);

-- Read state is the user's, not the log's: kept apart so a rebuild of the projection keeps it.
CREATE TABLE IF NOT EXISTS notification_reads (
    notification_id uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL,
    read_at         timestamptz NOT NULL
);

-- Channel preferences (defaults when absent: e-mail and push on, SMS off).
CREATE TABLE IF NOT EXISTS notification_preferences (
    user_id    uuid        PRIMARY KEY,
    email      boolean     NOT NULL,
    push       boolean     NOT NULL,
    sms        boolean     NOT NULL,
    phone      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Web Push subscriptions, one per device (browser).
CREATE TABLE IF NOT EXISTS push_subscriptions (
    subscription_id uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL,
    endpoint        text        NOT NULL UNIQUE,
    p256dh          text        NOT NULL,
    auth            text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user ON push_subscriptions (user_id);

-- The outbox: one row per (what, channel), written by the notifications projection in the
-- same transaction as its checkpoint (never emptied by a rebuild: replays find their rows and
-- change nothing) and worked off by every process's dispatcher. `dedupe_key` + `channel` is
-- unique, so each reminder or change is sent at most once per channel. A delivery is claimed
-- (`sending`) in its own committed transaction before anything leaves the server; one whose
-- process died mid-send is marked failed, never sent twice.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    delivery_id     uuid        PRIMARY KEY,
    dedupe_key      text        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'push', 'sms')),
    user_id         uuid        NOT NULL,
    kind            text        NOT NULL,
    appointment_id  uuid,
    notification_id uuid,
    due_at          timestamptz NOT NULL,
    state           text        NOT NULL CHECK (state IN
                        ('scheduled', 'sending', 'sent', 'retrying', 'failed', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_until   timestamptz,
    last_error      text,
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dedupe_key, channel)
);
CREATE INDEX IF NOT EXISTS notification_deliveries_due ON notification_deliveries (next_attempt_at)
    WHERE state IN ('scheduled', 'retrying');
CREATE INDEX IF NOT EXISTS notification_deliveries_sending ON notification_deliveries (claimed_until)
    WHERE state = 'sending';
CREATE INDEX IF NOT EXISTS notification_deliveries_appointment ON notification_deliveries (appointment_id);

-- ---------------------------------------------------------------------------------------------
-- Tamper evidence (projections/src/chain.rs): a hash chain over the log in commit-safe order.
-- Entry n links SHA-256(link n-1 ‖ canonical bytes of event n); the head is the last entry.
-- Written by the projection "chain" (its checkpoint is in projection_checkpoints) behind the
-- writers; a rebuild leaves sealed entries alone. The event's identity and the digests of its
-- payload and metadata are kept to name what changed, or which event went missing.
-- Append-only, enforced like the log.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS event_chain (
    n               bigint      PRIMARY KEY CHECK (n > 0),
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL UNIQUE,
    aggregate_type  text        NOT NULL,
    aggregate_id    text        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    payload_sha256  bytea       NOT NULL CHECK (octet_length(payload_sha256) = 32),
    metadata_sha256 bytea       NOT NULL CHECK (octet_length(metadata_sha256) = 32),
    link            bytea       NOT NULL CHECK (octet_length(link) = 32)
);

CREATE OR REPLACE FUNCTION event_chain_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event chain is append-only: % on event_chain is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE TRIGGER event_chain_append_only
    BEFORE UPDATE OR DELETE ON event_chain
    FOR EACH ROW EXECUTE FUNCTION event_chain_refuse_change();

CREATE OR REPLACE TRIGGER event_chain_no_truncate
    BEFORE TRUNCATE ON event_chain
    FOR EACH STATEMENT EXECUTE FUNCTION event_chain_refuse_change();
