//! Profile commands: doctors, patients and staff.

use sqlx::PgPool;
use telemed_domain::doctor::{Doctor, DoctorCommand, DoctorError};
use telemed_domain::patient::{Patient, PatientCommand, PatientError};
use telemed_domain::staff::{Staff, StaffCommand, StaffError};
use telemed_domain::{Position, UserId};

use crate::context::CommandContext;
use crate::error::CommandError;
use crate::executor::Executor;
use crate::store::Store;

/// Executes commands on the three profile aggregates.
pub struct Profiles {
    executor: Executor,
    doctors: Store<Doctor>,
    patients: Store<Patient>,
    staff: Store<Staff>,
}

impl Profiles {
    /// Profile services on `pool`.
    pub fn new(pool: &PgPool) -> Self {
        Self {
            executor: Executor::new(pool.clone()),
            doctors: Store::new(pool, ()),
            patients: Store::new(pool, ()),
            staff: Store::new(pool, ()),
        }
    }

    /// Executes a command on doctor `id`'s profile.
    pub async fn doctor(
        &self,
        id: UserId,
        command: DoctorCommand,
        context: &CommandContext,
    ) -> Result<Position, CommandError<DoctorError>> {
        self.executor
            .execute(&self.doctors, &id.to_string(), command, context)
            .await
    }

    /// Executes a command on patient `id`'s profile.
    pub async fn patient(
        &self,
        id: UserId,
        command: PatientCommand,
        context: &CommandContext,
    ) -> Result<Position, CommandError<PatientError>> {
        self.executor
            .execute(&self.patients, &id.to_string(), command, context)
            .await
    }

    /// Executes a command on staff member `id`'s profile.
    pub async fn staff(
        &self,
        id: UserId,
        command: StaffCommand,
        context: &CommandContext,
    ) -> Result<Position, CommandError<StaffError>> {
        self.executor
            .execute(&self.staff, &id.to_string(), command, context)
            .await
    }
}
