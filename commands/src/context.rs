//! Who is acting, in which request: recorded as the metadata of every event.

use std::collections::HashMap;

use telemed_domain::{Role, UserId};
use uuid::Uuid;

/// The author of a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// An authenticated user (or one registering themselves).
    User {
        /// Their id.
        id: UserId,
        /// Their role.
        role: Role,
    },
    /// An operator tool or a background process, named (e.g. `cli`, `sweeper`).
    System(&'static str),
}

/// The context of one command: actor and correlation id. Never holds secrets.
#[derive(Clone, Debug)]
pub struct CommandContext {
    /// Who is acting.
    pub actor: Actor,
    /// The request or correlation id shared by everything one request causes.
    pub request_id: String,
}

impl CommandContext {
    /// A context for `actor` within request `request_id`.
    pub fn new(actor: Actor, request_id: impl Into<String>) -> Self {
        Self {
            actor,
            request_id: request_id.into(),
        }
    }

    /// A context for a system actor with a fresh correlation id.
    pub fn system(name: &'static str) -> Self {
        Self::new(Actor::System(name), Uuid::new_v4().to_string())
    }

    /// The event metadata for a command called `command`.
    pub fn metadata(&self, command: &str) -> HashMap<String, String> {
        let (actor_id, actor_role) = match &self.actor {
            Actor::User { id, role } => (id.to_string(), role.as_str().to_string()),
            Actor::System(name) => (format!("system:{name}"), "system".to_string()),
        };
        HashMap::from([
            ("actor_id".to_string(), actor_id),
            ("actor_role".to_string(), actor_role),
            ("request_id".to_string(), self.request_id.clone()),
            ("command".to_string(), command.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_the_actor_request_and_command() {
        let id = UserId::new();
        let context = CommandContext::new(
            Actor::User {
                id,
                role: Role::Doctor,
            },
            "req-1",
        );
        let metadata = context.metadata("doctor.update_profile");
        assert_eq!(metadata["actor_id"], id.to_string());
        assert_eq!(metadata["actor_role"], "doctor");
        assert_eq!(metadata["request_id"], "req-1");
        assert_eq!(metadata["command"], "doctor.update_profile");
        assert_eq!(metadata.len(), 4);
    }

    #[test]
    fn system_actors_are_marked_as_such() {
        let metadata = CommandContext::system("cli").metadata("staff.register");
        assert_eq!(metadata["actor_id"], "system:cli");
        assert_eq!(metadata["actor_role"], "system");
    }
}
