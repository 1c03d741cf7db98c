//! Call sessions: start (or join the live one), answer, reject, end, ring timeouts.

use sqlx::PgPool;
use telemed_domain::appointment::{Appointment, AppointmentState};
use telemed_domain::call::{Call, CallCommand, CallError, CallState, CallStatus, EndReason};
use telemed_domain::{AppointmentId, CallId, Position, UserId};
use time::Duration;

use crate::clock::Clock;
use crate::context::CommandContext;
use crate::error::CommandError;
use crate::executor::Executor;
use crate::store::{Source, Store};

type Result<T> = std::result::Result<T, CommandError<CallError>>;

/// When calls may start, relative to their appointment.
#[derive(Clone, Copy, Debug)]
pub struct CallRules {
    /// How long before the start.
    pub early: Duration,
    /// How long after the end.
    pub late: Duration,
    /// How long a call rings before it is missed.
    pub ring_timeout: Duration,
}

/// A started (or joined) call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// The call.
    pub id: CallId,
    /// Where its events are.
    pub position: Position,
    /// Whether this request created it.
    pub created: bool,
}

/// Where a signaling message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relay {
    /// To this participant.
    To(UserId),
    /// Nowhere: the call is over (its status).
    CallOver(CallStatus),
}

/// Call commands.
pub struct Calls {
    pool: PgPool,
    executor: Executor,
    appointments: Store<Appointment>,
    calls: Store<Call>,
    clock: Clock,
    rules: CallRules,
}

impl Calls {
    /// Calls on `pool`.
    pub fn new(pool: &PgPool, clock: Clock, rules: CallRules) -> Self {
        Self {
            pool: pool.clone(),
            executor: Executor::new(pool.clone()),
            appointments: Store::new(pool, ()),
            calls: Store::new(pool, ()),
            clock,
            rules,
        }
    }

    /// The rules.
    pub fn rules(&self) -> CallRules {
        self.rules
    }

    /// The state of call `id` (participants never change, so a cached state is fine for
    /// authorization; the status may lag by a moment).
    pub async fn state(&self, id: CallId) -> Result<Option<CallState>> {
        let loaded = self.calls.load(&id.to_string(), Source::Cache).await?;
        Ok(loaded.aggregate.state().cloned())
    }

    /// Decides where `by`'s signaling on call `id` goes: to the other participant while the
    /// call is ringing or active. An `answer` from the callee of a ringing call picks it up
    /// (the caller may answer too, resolving glare, without picking up). Not a participant:
    /// `NotFound`.
    pub async fn signal(
        &self,
        id: CallId,
        by: UserId,
        answer: bool,
        context: &CommandContext,
    ) -> Result<Relay> {
        let call = self
            .state(id)
            .await?
            .filter(|call| call.has(by))
            .ok_or(CommandError::Rejected(CallError::NotFound))?;
        if !call.status.is_live() {
            return Ok(Relay::CallOver(call.status));
        }
        if answer && call.status == CallStatus::Ringing && by != call.caller_id {
            self.answer(id, by, context).await?;
        }
        Ok(Relay::To(call.other(by)))
    }

    /// Starts a call of `appointment_id` by `by`, or returns the one already ringing or active.
    /// The `active_calls` row is the claim: whoever inserts it creates the call; a claim whose
    /// call is over is released and the next round tries again.
    pub async fn start(
        &self,
        appointment_id: AppointmentId,
        by: UserId,
        context: &CommandContext,
    ) -> Result<Started> {
        for _ in 0..5 {
            if let Some(id) = self.claimed(appointment_id).await? {
                if let Some(started) = self.join(appointment_id, id, by).await? {
                    return Ok(started);
                }
                continue;
            }
            if let Some(id) = self.claim(appointment_id).await? {
                return self.create(appointment_id, id, by, context).await;
            }
        }
        Err(CommandError::Contention)
    }

    /// The call that holds the appointment's claim, if any.
    async fn claimed(&self, appointment_id: AppointmentId) -> Result<Option<CallId>> {
        let existing: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT call_id FROM active_calls WHERE appointment_id = $1")
                .bind(appointment_id.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
        Ok(existing.map(CallId::from))
    }

    /// `by` joins call `id` if it is still live (refused unless a participant); a call that is
    /// over gives its claim back and answers `None`.
    async fn join(
        &self,
        appointment_id: AppointmentId,
        id: CallId,
        by: UserId,
    ) -> Result<Option<Started>> {
        let loaded = self.calls.load(&id.to_string(), Source::Database).await?;
        match loaded.aggregate.state() {
            Some(state) if state.status.is_live() => {
                if !state.has(by) {
                    return Err(CommandError::Rejected(CallError::NotParticipant));
                }
                let position = crate::executor::last_position(
                    &self.pool,
                    telemed_domain::call::AGGREGATE_TYPE,
                    &id.to_string(),
                )
                .await?
                .unwrap_or_default();
                Ok(Some(Started {
                    id,
                    position,
                    created: false,
                }))
            }
            _ => {
                self.release(appointment_id, id).await?;
                Ok(None)
            }
        }
    }

    /// Claims the appointment for a new call; `None` when another request claimed it first.
    async fn claim(&self, appointment_id: AppointmentId) -> Result<Option<CallId>> {
        let id = CallId::new();
        let claimed = sqlx::query(
            "INSERT INTO active_calls (appointment_id, call_id) VALUES ($1, $2)
             ON CONFLICT (appointment_id) DO NOTHING",
        )
        .bind(appointment_id.as_uuid())
        .bind(id.as_uuid())
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        Ok(claimed.then_some(id))
    }

    /// Records call `id`, which holds the appointment's claim, as started by `by`; the claim
    /// is given back if the call cannot start.
    async fn create(
        &self,
        appointment_id: AppointmentId,
        id: CallId,
        by: UserId,
        context: &CommandContext,
    ) -> Result<Started> {
        let appointment = self
            .appointments
            .load(&appointment_id.to_string(), Source::Database)
            .await?
            .aggregate
            .state()
            .cloned();
        let Some(appointment) = appointment else {
            self.release(appointment_id, id).await?;
            return Err(CommandError::Rejected(CallError::NotParticipant));
        };
        let command = CallCommand::Start {
            appointment_id,
            appointment,
            by,
            at: self.clock.now(),
            early: self.rules.early,
            late: self.rules.late,
        };
        match self
            .executor
            .create(&self.calls, &id.to_string(), command, context)
            .await
        {
            Ok(position) => Ok(Started {
                id,
                position,
                created: true,
            }),
            Err(error) => {
                self.release(appointment_id, id).await?;
                Err(error)
            }
        }
    }

    /// Checks, by the rule that starting a call follows, that `by` may join a call of
    /// `appointment_id` now; returns the appointment.
    pub async fn joinable(
        &self,
        appointment_id: AppointmentId,
        by: UserId,
    ) -> Result<AppointmentState> {
        let appointment = self
            .appointments
            .load(&appointment_id.to_string(), Source::Database)
            .await?
            .aggregate
            .state()
            .cloned()
            .ok_or(CommandError::Rejected(CallError::NotParticipant))?;
        let (early, late) = (self.rules.early, self.rules.late);
        telemed_domain::call::joinable(&appointment, by, self.clock.now(), early, late)
            .map_err(CommandError::Rejected)?;
        Ok(appointment)
    }

    /// Now, by this service's clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    async fn release(&self, appointment_id: AppointmentId, id: CallId) -> Result<()> {
        sqlx::query("DELETE FROM active_calls WHERE appointment_id = $1 AND call_id = $2")
            .bind(appointment_id.as_uuid())
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn on_call(
        &self,
        id: CallId,
        command: CallCommand,
        context: &CommandContext,
    ) -> Result<Position> {
        let position = self
            .executor
            .execute(&self.calls, &id.to_string(), command, context)
            .await?;
        if let Some(state) = self.state(id).await?
            && !state.status.is_live()
        {
            self.release(state.appointment_id, id).await?;
        }
        Ok(position)
    }

    /// `by` answers call `id` (a no-op when already active).
    pub async fn answer(
        &self,
        id: CallId,
        by: UserId,
        context: &CommandContext,
    ) -> Result<Position> {
        let at = self.clock.now();
        self.on_call(id, CallCommand::Answer { by, at }, context)
            .await
    }

    /// `by` declines call `id`.
    pub async fn reject(
        &self,
        id: CallId,
        by: UserId,
        context: &CommandContext,
    ) -> Result<Position> {
        let at = self.clock.now();
        self.on_call(id, CallCommand::Reject { by, at }, context)
            .await
    }

    /// `by` ends call `id` for `reason` (a no-op when it is already over). The callee hanging
    /// up a call that is still ringing declines it.
    pub async fn end(
        &self,
        id: CallId,
        by: UserId,
        reason: EndReason,
        context: &CommandContext,
    ) -> Result<Position> {
        let at = self.clock.now();
        let declines = self
            .calls
            .load::<CallError>(&id.to_string(), Source::Database)
            .await?
            .aggregate
            .state()
            .is_some_and(|call| {
                call.status == telemed_domain::call::CallStatus::Ringing
                    && call.has(by)
                    && call.caller_id != by
                    && reason == EndReason::user_hangup()
            });
        if declines {
            return self.reject(id, by, context).await;
        }
        self.on_call(id, CallCommand::End { by, reason, at }, context)
            .await
    }

    /// Marks calls that rang longer than the ring timeout as missed; returns how many.
    pub async fn sweep_ring_timeouts(&self, context: &CommandContext) -> Result<usize> {
        let cutoff = self.clock.now() - self.rules.ring_timeout;
        let ringing: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT call_id FROM calls WHERE status = 'ringing' AND started_at < $1",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        let mut missed = 0;
        for id in ringing {
            let at = self.clock.now();
            match self
                .on_call(CallId::from(id), CallCommand::TimeOut { at }, context)
                .await
            {
                Ok(_) => missed += 1,
                Err(error) => tracing::warn!(%error, call = %id, "cannot time out a call"),
            }
        }
        Ok(missed)
    }
}
