//! The `waitlist` projection: every waitlist entry with its open offer, and the queries the
//! API and the waitlist matcher read (waiting entries of a doctor in FIFO order, lapsed
//! offers).

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgExecutor, Row};
use telemed_domain::calendar::Interval;
use telemed_domain::waitlist::patient::MAX_OPEN_ENTRIES;
use telemed_domain::waitlist::{AGGREGATE_TYPE, WaitlistEvent};
use telemed_domain::{AppointmentId, DayId, UserId};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::event::StoredEvent;
use crate::runner::{Projection, ProjectionError};

/// Builds `waitlist_entries`.
pub struct WaitlistProjection;

const JOINED: &str = "INSERT INTO waitlist_entries
       (entry_id, patient_id, doctor_id, from_date, to_date, duration_minutes, status,
        joined_at, joined_order, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 'waiting', $7, $8, $7)
ON CONFLICT (entry_id) DO NOTHING";

const OFFERED: &str = "UPDATE waitlist_entries
   SET status = 'offered', offer_id = $2, offer_day_id = $3, offer_start = $4, offer_end = $5,
       offer_expires_at = $6, updated_at = $7
 WHERE entry_id = $1";

const ACCEPTED: &str = "UPDATE waitlist_entries
   SET status = 'booked', appointment_id = $2, offer_expires_at = NULL, updated_at = $3
 WHERE entry_id = $1";

/// A declined or lapsed offer (`$3`: how it closed): the entry waits again and remembers the
/// time it passed on, and the offer.
const PASSED: &str = "UPDATE waitlist_entries
   SET status = 'waiting', passed_starts = passed_starts || offer_start,
       passed_ends = passed_ends || offer_end, last_offer_id = offer_id, last_offer_end = $3,
       offer_id = NULL, offer_day_id = NULL,
       offer_start = NULL, offer_end = NULL, offer_expires_at = NULL, updated_at = $2
 WHERE entry_id = $1";

/// Leaving; an open offer is withdrawn.
const LEFT: &str = "UPDATE waitlist_entries
   SET status = 'left', last_offer_id = COALESCE(offer_id, last_offer_id),
       last_offer_end = CASE WHEN offer_id IS NULL THEN last_offer_end ELSE 'withdrawn' END,
       offer_id = NULL, offer_day_id = NULL, offer_start = NULL,
       offer_end = NULL, offer_expires_at = NULL, updated_at = $2
 WHERE entry_id = $1";

#[async_trait]
impl Projection for WaitlistProjection {
    fn name(&self) -> &'static str {
        "waitlist"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["waitlist_entries"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != AGGREGATE_TYPE {
            return Ok(());
        }
        let Ok(entry) = event.aggregate_id.parse::<Uuid>() else {
            return Ok(());
        };
        match event.decode()? {
            WaitlistEvent::WaitlistJoined { request, at } => {
                sqlx::query(JOINED)
                    .bind(entry)
                    .bind(request.patient_id.as_uuid())
                    .bind(request.doctor_id.as_uuid())
                    .bind(request.from)
                    .bind(request.to)
                    .bind(i32::from(request.duration_minutes))
                    .bind(at)
                    .bind(event.position.global_position)
                    .execute(&mut *tx)
                    .await?;
            }
            WaitlistEvent::OfferMade { offer, at, .. } => {
                sqlx::query(OFFERED)
                    .bind(entry)
                    .bind(offer.offer_id)
                    .bind(offer.day.to_string())
                    .bind(offer.interval.start)
                    .bind(offer.interval.end)
                    .bind(offer.expires_at)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            WaitlistEvent::OfferAccepted {
                appointment_id, at, ..
            } => {
                sqlx::query(ACCEPTED)
                    .bind(entry)
                    .bind(appointment_id.as_uuid())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            WaitlistEvent::OfferDeclined { at, .. } => passed(tx, entry, at, "declined").await?,
            WaitlistEvent::OfferExpired { at, .. } => passed(tx, entry, at, "expired").await?,
            WaitlistEvent::WaitlistLeft { at, .. } => {
                sqlx::query(LEFT)
                    .bind(entry)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Entry `entry`'s open offer closed unaccepted at `at` (`end`: how).
async fn passed(
    tx: &mut PgConnection,
    entry: Uuid,
    at: OffsetDateTime,
    end: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(PASSED)
        .bind(entry)
        .bind(at)
        .bind(end)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// An open offer as the patient sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OfferView {
    /// Offer id (accept or decline it with this).
    pub id: Uuid,
    /// First instant (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    /// First instant after (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end: OffsetDateTime,
    /// Until when the time is held for the patient.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// A waitlist entry as the patient sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Entry id.
    pub id: Uuid,
    /// The doctor.
    #[schema(value_type = String, format = Uuid)]
    pub doctor_id: UserId,
    /// The doctor's name.
    pub doctor_name: String,
    /// First acceptable date (doctor's zone).
    #[serde(serialize_with = "calendar_date")]
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    /// Last acceptable date (doctor's zone).
    #[serde(serialize_with = "calendar_date")]
    #[schema(value_type = String, format = Date)]
    pub to: Date,
    /// Length of the appointment sought.
    pub duration_minutes: i32,
    /// `waiting`, `offered`, `booked` or `left`.
    pub status: String,
    /// When the patient joined.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: OffsetDateTime,
    /// The open offer (status `offered`).
    pub offer: Option<OfferView>,
    /// The appointment booked from an accepted offer (status `booked`).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub appointment_id: Option<AppointmentId>,
}

/// A date as `YYYY-MM-DD`, as documented (serde's default for `time::Date` is a tuple).
fn calendar_date<S: serde::Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(date)
}

const ENTRY_COLUMNS: &str =
    "e.entry_id, e.patient_id, e.doctor_id, COALESCE(d.name, '') AS doctor_name,
       e.from_date, e.to_date, e.duration_minutes, e.status, e.joined_at, e.offer_id,
       e.offer_start, e.offer_end, e.offer_expires_at, e.appointment_id";

fn entry_from_row(row: &PgRow) -> Result<(UserId, EntryView), sqlx::Error> {
    let offer = match (
        row.try_get::<Option<Uuid>, _>("offer_id")?,
        row.try_get::<Option<OffsetDateTime>, _>("offer_start")?,
        row.try_get::<Option<OffsetDateTime>, _>("offer_end")?,
        row.try_get::<Option<OffsetDateTime>, _>("offer_expires_at")?,
    ) {
        (Some(id), Some(start), Some(end), Some(expires_at)) => Some(OfferView {
            id,
            start,
            end,
            expires_at,
        }),
        _ => None,
    };
    let patient = UserId::from(row.try_get::<Uuid, _>("patient_id")?);
    Ok((
        patient,
        EntryView {
            id: row.try_get("entry_id")?,
            doctor_id: UserId::from(row.try_get::<Uuid, _>("doctor_id")?),
            doctor_name: row.try_get("doctor_name")?,
            from: row.try_get("from_date")?,
            to: row.try_get("to_date")?,
            duration_minutes: row.try_get("duration_minutes")?,
            status: row.try_get("status")?,
            joined_at: row.try_get("joined_at")?,
            offer,
            appointment_id: row
                .try_get::<Option<Uuid>, _>("appointment_id")?
                .map(AppointmentId::from),
        },
    ))
}

/// The entries of `patient` that are waiting or offered, oldest first; at most
/// [`MAX_OPEN_ENTRIES`], as many as a patient may have open.
pub async fn entries_of(
    db: impl PgExecutor<'_>,
    patient: UserId,
) -> Result<Vec<EntryView>, sqlx::Error> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM waitlist_entries e
           LEFT JOIN doctor_profiles d ON d.doctor_id = e.doctor_id
          WHERE e.patient_id = $1 AND e.status IN ('waiting', 'offered')
          ORDER BY e.joined_order
          LIMIT $2"
    );
    sqlx::query(&sql)
        .bind(patient.as_uuid())
        .bind(MAX_OPEN_ENTRIES as i64)
        .fetch_all(db)
        .await?
        .iter()
        .map(|row| entry_from_row(row).map(|(_, view)| view))
        .collect()
}

/// Entry `id` with its patient.
pub async fn entry(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<(UserId, EntryView)>, sqlx::Error> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM waitlist_entries e
           LEFT JOIN doctor_profiles d ON d.doctor_id = e.doctor_id WHERE e.entry_id = $1"
    );
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(entry_from_row)
        .transpose()
}

/// The entry that offer `offer` was made to, with its patient: while the offer is open, once
/// it was accepted, and while it is the entry's last offer that closed unaccepted.
pub async fn entry_of_offer(
    db: impl PgExecutor<'_>,
    offer: Uuid,
) -> Result<Option<(UserId, EntryView)>, sqlx::Error> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM waitlist_entries e
           LEFT JOIN doctor_profiles d ON d.doctor_id = e.doctor_id
          WHERE e.offer_id = $1 OR e.last_offer_id = $1
          LIMIT 1"
    );
    sqlx::query(&sql)
        .bind(offer)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(entry_from_row)
        .transpose()
}

/// A waiting entry as the matcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// Entry id.
    pub entry_id: Uuid,
    /// The patient.
    pub patient_id: UserId,
    /// Length sought.
    pub duration_minutes: i64,
    /// Times this entry passed on.
    pub passed: Vec<Interval>,
}

/// The entries waiting for `doctor` whose date range holds `date`, first come first.
pub async fn waiting_for(db: impl PgExecutor<'_>, day: DayId) -> Result<Vec<Waiting>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT entry_id, patient_id, duration_minutes, passed_starts, passed_ends
           FROM waitlist_entries
          WHERE doctor_id = $1 AND status = 'waiting' AND from_date <= $2 AND to_date >= $2
          ORDER BY joined_order",
    )
    .bind(day.doctor.as_uuid())
    .bind(day.date)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            let starts: Vec<OffsetDateTime> = row.try_get("passed_starts")?;
            let ends: Vec<OffsetDateTime> = row.try_get("passed_ends")?;
            Ok(Waiting {
                entry_id: row.try_get("entry_id")?,
                patient_id: UserId::from(row.try_get::<Uuid, _>("patient_id")?),
                duration_minutes: i64::from(row.try_get::<i32, _>("duration_minutes")?),
                passed: starts
                    .into_iter()
                    .zip(ends)
                    .map(|(start, end)| Interval { start, end })
                    .collect(),
            })
        })
        .collect()
}

/// Open offers that lapsed at `now`: `(entry, offer)`.
pub async fn lapsed_offers(
    db: impl PgExecutor<'_>,
    now: OffsetDateTime,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT entry_id, offer_id FROM waitlist_entries
          WHERE status = 'offered' AND offer_expires_at <= $1 AND offer_id IS NOT NULL
          ORDER BY offer_expires_at LIMIT 100",
    )
    .bind(now)
    .fetch_all(db)
    .await
}

/// When the next open offer lapses, if any is open.
pub async fn next_lapse(db: impl PgExecutor<'_>) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(offer_expires_at) FROM waitlist_entries WHERE status = 'offered'",
    )
    .fetch_one(db)
    .await
}
