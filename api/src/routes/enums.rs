//! The closed sets of names in responses (statuses, roles, outcomes), stated as enums in the
//! OpenAPI document from the domain's own lists, so that generated clients get precise types.
//! The response types keep plain `String`s; this names their values.

use serde_json::Value;
use telemed_domain::Role;
use telemed_domain::appointment::{Party, Status};
use telemed_domain::call::CallStatus;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, RefOr};

/// The names as JSON values.
fn names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Value> {
    names.into_iter().map(Value::from).collect()
}

/// `(component, property, values)` for every enumerated response property.
fn enumerated() -> Vec<(&'static str, &'static str, Vec<Value>)> {
    let roles = [Role::Patient, Role::Doctor, Role::Admin, Role::Auditor].map(|r| r.as_str());
    let calls = [
        CallStatus::Ringing,
        CallStatus::Active,
        CallStatus::Ended,
        CallStatus::Missed,
        CallStatus::Rejected,
        CallStatus::Failed,
    ]
    .map(CallStatus::as_str);
    // Parties have no name of their own but the one they serialise to.
    let parties = [Party::Doctor, Party::Patient]
        .iter()
        .filter_map(|party| serde_json::to_value(party).ok())
        .collect();
    vec![
        (
            "AppointmentView",
            "status",
            names(Status::ALL.map(|s| s.as_str())),
        ),
        ("AppointmentView", "awaiting_confirmation_by", parties),
        ("UserView", "role", names(roles)),
        ("AccessEntry", "actor_role", names(roles)),
        ("AccessEntry", "outcome", names(["allowed", "denied"])),
        ("AuthResponse", "token_type", names(["Bearer"])),
        ("CallView", "status", names(calls)),
    ]
}

/// Sets `enum` on every enumerated response property of `api`'s components.
pub fn document_response_enums(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for (component, property, values) in enumerated() {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(component) else {
            continue;
        };
        if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property) {
            field.enum_values = Some(values);
        }
    }
}
