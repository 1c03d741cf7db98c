//! Accounts: registration and login.
//!
//! Credentials (e-mail, argon2id hash, role) live in the mutable `credentials` table and never
//! in the event log; the profile that goes with an account is an aggregate, so it is audited.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, SaltString};
use sqlx::{PgPool, Row};
use telemed_domain::doctor::DoctorCommand;
use telemed_domain::patient::PatientCommand;
use telemed_domain::staff::StaffCommand;
use telemed_domain::values::{Email, Password, PersonName, TimeZoneName};
use telemed_domain::{Position, Role, UserId};

use crate::context::CommandContext;
use crate::error::{BoxError, CommandError, classify_sqlx};
use crate::profiles::Profiles;

/// A validated request to open an account.
#[derive(Debug)]
pub struct NewAccount {
    /// Login e-mail.
    pub email: Email,
    /// Password meeting the policy.
    pub password: Password,
    /// Role of the account.
    pub role: Role,
    /// Display name for the profile.
    pub name: PersonName,
    /// Time zone for the profile.
    pub timezone: TimeZoneName,
}

/// An account as stored (without its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// User id.
    pub id: UserId,
    /// Login e-mail as given at registration.
    pub email: String,
    /// Role.
    pub role: Role,
}

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Another account already uses this e-mail (compared case-insensitively).
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// The database could not be reached.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("unexpected failure: {0}")]
    Internal(#[source] BoxError),
}

/// Why login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown e-mail or wrong password; deliberately the same answer for both.
    #[error("e-mail or password is incorrect")]
    InvalidCredentials,
    /// The database could not be reached.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("unexpected failure: {0}")]
    Internal(#[source] BoxError),
}

const INSERT_CREDENTIALS: &str =
    "INSERT INTO credentials (user_id, email, password_hash, role) VALUES ($1, $2, $3, $4)";
const DELETE_CREDENTIALS: &str = "DELETE FROM credentials WHERE user_id = $1";
const DELETE_DEAD_REGISTRATION: &str = "DELETE FROM credentials c
 WHERE lower(c.email) = lower($1) AND c.created_at < now() - interval '1 minute'
   AND NOT EXISTS (SELECT 1 FROM events e
                    WHERE e.aggregate_id = c.user_id::text
                      AND e.aggregate_type IN ('doctor', 'patient', 'staff'))";
const SELECT_BY_EMAIL: &str =
    "SELECT user_id, email, password_hash, role FROM credentials WHERE lower(email) = lower($1)";
const SELECT_BY_ID: &str = "SELECT user_id, email, role FROM credentials WHERE user_id = $1";

/// Registration and login.
#[derive(Clone)]
pub struct Accounts {
    pool: PgPool,
    profiles: Arc<Profiles>,
}

impl Accounts {
    /// Account services on `pool`, creating profiles through `profiles`.
    pub fn new(pool: PgPool, profiles: Arc<Profiles>) -> Self {
        Self { pool, profiles }
    }

    /// Opens an account and registers its profile. `context` builds the command context from
    /// the new user's id (self-registration acts as the new user; the CLI as the system).
    /// If the profile cannot be recorded, the credentials are removed again.
    pub async fn register(
        &self,
        new: NewAccount,
        context: impl FnOnce(UserId) -> CommandContext,
    ) -> Result<(Account, Position), RegisterError> {
        let id = UserId::new();
        let hash = hash_password(new.password).await?;
        let mut inserted = self
            .insert_credentials(id, &new.email, new.role, &hash)
            .await;
        if is_unique_violation(&inserted) && self.remove_dead_registration(&new.email).await? {
            inserted = self
                .insert_credentials(id, &new.email, new.role, &hash)
                .await;
        }
        if let Err(error) = inserted {
            return Err(match &error {
                sqlx::Error::Database(db) if db.is_unique_violation() => RegisterError::EmailTaken,
                _ => register_error(error),
            });
        }
        let context = context(id);
        match self
            .register_profile(id, new.role, new.name, new.timezone, &context)
            .await
        {
            Ok(position) => Ok((
                Account {
                    id,
                    email: new.email.as_str().to_string(),
                    role: new.role,
                },
                position,
            )),
            Err(error) => {
                if let Err(cleanup) = sqlx::query(DELETE_CREDENTIALS)
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                {
                    tracing::error!(user_id = %id, error = %cleanup, "could not remove credentials of a failed registration");
                }
                Err(error)
            }
        }
    }

    async fn insert_credentials(
        &self,
        id: UserId,
        email: &Email,
        role: Role,
        hash: &str,
    ) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
        sqlx::query(INSERT_CREDENTIALS)
            .bind(id.as_uuid())
            .bind(email.as_str())
            .bind(hash)
            .bind(role.as_str())
            .execute(&self.pool)
            .await
    }

    /// A registration that crashed between its credentials and its profile event leaves the
    /// e-mail taken by an account that can never sign in. Once such credentials are a minute
    /// old and still have no profile event, they are removed so the e-mail can register again.
    async fn remove_dead_registration(&self, email: &Email) -> Result<bool, RegisterError> {
        let removed = sqlx::query(DELETE_DEAD_REGISTRATION)
            .bind(email.as_str())
            .execute(&self.pool)
            .await
            .map_err(register_error)?;
        Ok(removed.rows_affected() == 1)
    }

    async fn register_profile(
        &self,
        id: UserId,
        role: Role,
        name: PersonName,
        timezone: TimeZoneName,
        context: &CommandContext,
    ) -> Result<Position, RegisterError> {
        fn convert<E: std::error::Error + Send + Sync + 'static>(
            error: CommandError<E>,
        ) -> RegisterError {
            match error {
                CommandError::Unavailable(source) => RegisterError::Unavailable(source),
                CommandError::Rejected(e) => RegisterError::Internal(Box::new(e)),
                other => RegisterError::Internal(Box::new(other)),
            }
        }
        match role {
            Role::Doctor => self
                .profiles
                .doctor(id, DoctorCommand::Register { name, timezone }, context)
                .await
                .map_err(convert),
            Role::Patient => self
                .profiles
                .patient(id, PatientCommand::Register { name, timezone }, context)
                .await
                .map_err(convert),
            Role::Admin | Role::Auditor => self
                .profiles
                .staff(
                    id,
                    StaffCommand::Register {
                        role,
                        name,
                        timezone,
                    },
                    context,
                )
                .await
                .map_err(convert),
        }
    }

    /// Checks an e-mail and password. Unknown e-mails cost the same hashing work as wrong
    /// passwords, so timing does not reveal which accounts exist.
    pub async fn authenticate(&self, email: &str, password: &str) -> Result<Account, LoginError> {
        let row = sqlx::query(SELECT_BY_EMAIL)
            .bind(email.trim())
            .fetch_optional(&self.pool)
            .await
            .map_err(login_error)?;
        let (account, hash) = match row {
            Some(row) => {
                let account = account_from_row(&row).map_err(LoginError::Internal)?;
                let hash: String = row.try_get("password_hash").map_err(login_error)?;
                (Some(account), Some(hash))
            }
            None => (None, None),
        };
        let password = password.to_string();
        let verified = crate::hashing::run(move || match &hash {
            Some(hash) => verify_password(&password, hash),
            None => verify_password(&password, dummy_hash()),
        })
        .await
        .map_err(|e| LoginError::Internal(Box::new(e)))?;
        match (account, verified) {
            (Some(account), true) => Ok(account),
            _ => Err(LoginError::InvalidCredentials),
        }
    }

    /// The account with this id, if it exists.
    pub async fn find(&self, id: UserId) -> Result<Option<Account>, sqlx::Error> {
        let row = sqlx::query(SELECT_BY_ID)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| account_from_row(&row).map_err(sqlx::Error::Decode))
            .transpose()
    }
}

fn account_from_row(row: &sqlx::postgres::PgRow) -> Result<Account, BoxError> {
    let id: uuid::Uuid = row.try_get("user_id")?;
    let email: String = row.try_get("email")?;
    let role: String = row.try_get("role")?;
    Ok(Account {
        id: UserId::from(id),
        email,
        role: role.parse()?,
    })
}

fn is_unique_violation<T>(result: &Result<T, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(db)) if db.is_unique_violation())
}

fn register_error(error: sqlx::Error) -> RegisterError {
    match classify_sqlx(error) {
        (true, source) => RegisterError::Unavailable(source),
        (false, source) => RegisterError::Internal(source),
    }
}

fn login_error(error: sqlx::Error) -> LoginError {
    match classify_sqlx(error) {
        (true, source) => LoginError::Unavailable(source),
        (false, source) => LoginError::Internal(source),
    }
}

/// Hashes with argon2id (the crate's defaults: 19 MiB, 2 passes) on the hashing pool.
async fn hash_password(password: Password) -> Result<String, RegisterError> {
    crate::hashing::run(move || hash_blocking(password.expose()))
        .await
        .map_err(|e| RegisterError::Internal(Box::new(e)))?
        .map_err(|e| RegisterError::Internal(e.to_string().into()))
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    // 16 bytes from the OS's generator.
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let salt = SaltString::encode_b64(&bytes)?;
    let argon2 = Argon2::default();
    let output = compute(&argon2, password, salt.as_salt())?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let settings = (
        argon2::Algorithm::try_from(parsed.algorithm),
        parsed.version.map(argon2::Version::try_from).transpose(),
        argon2::Params::try_from(&parsed),
    );
    let (Ok(algorithm), Ok(version), Ok(params)) = settings else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
    // `Output` compares in constant time.
    compute(&argon2, password, salt).is_ok_and(|output| output == expected)
}

thread_local! {
    /// argon2's working memory (19 MiB with the defaults), kept per hashing thread: allocating
    /// and freeing it per hash makes glibc raise its mmap threshold and keep the freed blocks in
    /// fragmented heaps (200 concurrent registrations left 387 MiB resident even on a 2-thread
    /// pool; with the buffer reused, ~17 MiB).
    static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The argon2 output for `password` and `salt`, computed in this thread's reused memory.
fn compute(
    argon2: &Argon2<'_>,
    password: &str,
    salt: argon2::password_hash::Salt<'_>,
) -> Result<argon2::password_hash::Output, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let params = argon2.params();
    let length = params
        .output_len()
        .unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
    MEMORY.with_borrow_mut(|memory| {
        memory.resize(params.block_count(), argon2::Block::default());
        argon2::password_hash::Output::init_with(length, |out| {
            argon2
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt_bytes,
                    out,
                    &mut memory[..],
                )
                .map_err(argon2::password_hash::Error::from)
        })
    })
}

/// A real hash of a random password, verified against when the e-mail is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(&uuid::Uuid::new_v4().to_string()).unwrap_or_else(|_| {
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0000000000000000000000000000000000000000000".to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_own_password_only() {
        let hash = hash_blocking("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse battery!", &hash));
    }

    #[test]
    fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let standard = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse battery", &standard));
        let ours = hash_blocking("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        assert!(PasswordHash::new(dummy_hash()).is_ok());
        assert!(!verify_password("anything", dummy_hash()));
    }
}
