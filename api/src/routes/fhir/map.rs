//! From Telemed's read models to FHIR resources: one function per resource, no queries.

use telemed_domain::UserId;
use telemed_domain::calendar::Interval;
use telemed_projections::StoredEvent;
use telemed_projections::appointments::AppointmentView;
use telemed_projections::calls::CallView;
use telemed_projections::conversations::MessageView;
use telemed_projections::notifications::NotificationRow;
use telemed_projections::profiles::{DoctorView, PatientView};
use time::OffsetDateTime;

use super::model::*;
use crate::routes::params::utc;

/// `Appointment.extension`: the period an appointment had before its last reschedule.
pub const RESCHEDULED_FROM: &str = "https://telemed.dev/fhir/StructureDefinition/rescheduled-from";
/// A person's IANA time zone.
pub const TIMEZONE: &str = "https://telemed.dev/fhir/StructureDefinition/timezone";
/// A doctor's introduction.
pub const BIO: &str = "https://telemed.dev/fhir/StructureDefinition/bio";
/// `Provenance.extension`: the whole event, as the audit log holds it.
pub const EVENT: &str = "https://telemed.dev/fhir/StructureDefinition/event";
/// `Encounter.extension`: Telemed's call status and why it ended.
pub const CALL_STATUS: &str = "https://telemed.dev/fhir/StructureDefinition/call-status";
/// `Communication.category` codes.
pub const CATEGORY: &str = "https://telemed.dev/fhir/CodeSystem/communication-category";

fn text_extension(url: &str, value: &str) -> Option<Extension> {
    (!value.trim().is_empty()).then(|| Extension {
        url: url.into(),
        value_period: None,
        value_string: Some(value.into()),
        value_reference: None,
    })
}

fn language(code: &str) -> CodeableConcept {
    CodeableConcept::coded(Coding {
        system: Some("urn:ietf:bcp:47".into()),
        code: Some(code.into()),
        display: None,
    })
}

/// A doctor.
pub fn practitioner(doctor: &DoctorView) -> Practitioner {
    Practitioner {
        id: doctor.id.to_string(),
        active: true,
        name: vec![HumanName {
            text: doctor.name.clone(),
        }],
        qualification: doctor
            .specialties
            .iter()
            .map(|s| Qualification {
                code: CodeableConcept::text(s.clone()),
            })
            .collect(),
        communication: doctor.languages.iter().map(|l| language(l)).collect(),
        extension: [
            text_extension(TIMEZONE, &doctor.timezone),
            text_extension(BIO, &doctor.bio),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// A patient (demographics; the medical history is in [`medical_history`]).
pub fn patient(view: &PatientView) -> Patient {
    let phone = view.contact.phone.iter().map(|p| ContactPoint {
        system: "phone".into(),
        value: p.clone(),
    });
    Patient {
        id: view.id.to_string(),
        active: true,
        name: vec![HumanName {
            text: view.name.clone(),
        }],
        telecom: phone.collect(),
        address: view
            .contact
            .address
            .iter()
            .map(|a| Address { text: a.clone() })
            .collect(),
        extension: text_extension(TIMEZONE, &view.timezone)
            .into_iter()
            .collect(),
    }
}

/// A patient's medical history: a `Condition`, `AllergyIntolerance` or `MedicationStatement`
/// per entry and an `Observation` holding the free-text notes.
pub fn medical_history(view: &PatientView) -> Vec<Resource> {
    let history = &view.medical_history;
    let subject = || Reference::to("Patient", view.id);
    let id = |kind: &str, n: usize| format!("{}-{kind}-{n}", view.id);
    let mut resources = Vec::new();
    for (n, condition) in history.conditions.iter().enumerate() {
        resources.push(Resource::Condition(Condition {
            id: id("condition", n + 1),
            code: CodeableConcept::text(condition.clone()),
            subject: subject(),
        }));
    }
    for (n, allergy) in history.allergies.iter().enumerate() {
        resources.push(Resource::AllergyIntolerance(AllergyIntolerance {
            id: id("allergy", n + 1),
            clinical_status: CodeableConcept::coded(Coding::new(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            )),
            verification_status: CodeableConcept::coded(Coding::new(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "unconfirmed",
                "Unconfirmed",
            )),
            code: CodeableConcept::text(allergy.clone()),
            patient: subject(),
        }));
    }
    for (n, medication) in history.medications.iter().enumerate() {
        resources.push(Resource::MedicationStatement(MedicationStatement {
            id: id("medication", n + 1),
            // A free-text list the patient keeps does not establish that it is taken now.
            status: "unknown".into(),
            medication_codeable_concept: CodeableConcept::text(medication.clone()),
            subject: subject(),
        }));
    }
    if !history.notes.trim().is_empty() {
        resources.push(Resource::Observation(Observation {
            id: id("notes", 1),
            status: "final".into(),
            code: CodeableConcept::text("Medical history notes"),
            subject: subject(),
            value_string: history.notes.clone(),
        }));
    }
    resources
}

/// A doctor's schedule: one per doctor, with the doctor's id.
pub fn schedule(doctor: &DoctorView) -> Schedule {
    Schedule {
        id: doctor.id.to_string(),
        active: true,
        specialty: doctor
            .specialties
            .iter()
            .map(|s| CodeableConcept::text(s.clone()))
            .collect(),
        actor: vec![Reference::named(
            "Practitioner",
            doctor.id,
            Some(doctor.name.clone()),
        )],
        comment: format!("Free consultations with {}", doctor.name),
    }
}

/// The id of doctor `doctor`'s free slot `slot`.
pub fn slot_id(doctor: UserId, slot: &Interval) -> String {
    let minutes = (slot.end - slot.start).whole_minutes();
    format!("{doctor}-{}-{minutes}", slot.start.unix_timestamp())
}

/// A free slot.
pub fn slot(doctor: UserId, interval: &Interval) -> Slot {
    Slot {
        id: slot_id(doctor, interval),
        schedule: Reference::to("Schedule", doctor),
        status: "free".into(),
        start: utc(interval.start),
        end: utc(interval.end),
    }
}

/// FHIR's `Appointment.status` for Telemed's status: a rescheduled appointment waits for the
/// other party's confirmation, so it is `pending` again.
pub fn appointment_status(status: &str) -> &'static str {
    match status {
        "confirmed" => "booked",
        "cancelled" => "cancelled",
        "completed" => "fulfilled",
        "no_show" => "noshow",
        _ => "pending",
    }
}

/// The names to show beside references, when known.
pub type Names = std::collections::HashMap<UserId, String>;

/// An appointment. Its doctor and patient take part; the one whose confirmation it awaits
/// `needs-action`. A reschedule shows as the `rescheduled-from` extension (the period before)
/// and `comment` `rescheduled`; a cancellation as `cancelationReason`.
pub fn appointment(view: &AppointmentView, names: &Names) -> Appointment {
    let participant = |kind: &str, id: UserId, party: &str| Participant {
        actor: Reference::named(kind, id, names.get(&id).cloned()),
        required: "required".into(),
        status: if view.awaiting_confirmation_by.as_deref() == Some(party) {
            "needs-action".into()
        } else {
            "accepted".into()
        },
    };
    let extension = view
        .rescheduled_from
        .iter()
        .map(|before| Extension {
            url: RESCHEDULED_FROM.into(),
            value_period: Some(Period {
                start: Some(utc(before.start)),
                end: Some(utc(before.end)),
            }),
            value_string: None,
            value_reference: None,
        })
        .collect();
    Appointment {
        id: view.id.to_string(),
        meta: Meta {
            version_id: Some(view.revision.to_string()),
            last_updated: Some(utc(view.updated_at)),
        },
        extension,
        status: appointment_status(&view.status).into(),
        cancelation_reason: view
            .cancellation
            .as_ref()
            .map(|c| CodeableConcept::text(c.reason.clone())),
        reason_code: vec![CodeableConcept::text(view.reason.clone())],
        start: utc(view.start),
        end: utc(view.end),
        minutes_duration: (view.end - view.start).whole_minutes(),
        created: utc(view.created_at),
        comment: (view.status == "rescheduled").then(|| "rescheduled".into()),
        participant: vec![
            participant("Practitioner", view.doctor_id, "doctor"),
            participant("Patient", view.patient_id, "patient"),
        ],
    }
}

/// A reference to `user`, a participant of `view`.
fn party(view: &AppointmentView, user: UserId) -> Reference {
    if user == view.doctor_id {
        Reference::to("Practitioner", user)
    } else {
        Reference::to("Patient", user)
    }
}

fn category(code: &str) -> CodeableConcept {
    CodeableConcept::coded(Coding::new(CATEGORY, code, code))
}

/// A chat message of appointment `view`.
pub fn message(view: &AppointmentView, message: &MessageView) -> Communication {
    let recipient = if message.sender_id == view.doctor_id {
        view.patient_id
    } else {
        view.doctor_id
    };
    Communication {
        id: message.id.to_string(),
        status: "completed".into(),
        category: vec![category("message")],
        part_of: vec![Reference::to("Appointment", view.id)],
        subject: Some(Reference::to("Patient", view.patient_id)),
        sent: utc(message.sent_at),
        received: None,
        recipient: vec![party(view, recipient)],
        sender: Some(party(view, message.sender_id)),
        payload: vec![Payload {
            content_string: message.content.clone(),
        }],
    }
}

/// An in-app notification to `recipient` (`Patient/…` or `Practitioner/…`).
pub fn notification(row: &NotificationRow, recipient: Reference) -> Communication {
    let what = row.kind.replace('_', " ");
    let by = row.actor_name.as_deref().unwrap_or("Telemed");
    let when = row
        .start_at
        .map(|t| format!(" (starts {})", utc(t)))
        .unwrap_or_default();
    Communication {
        id: row.id.to_string(),
        status: "completed".into(),
        category: vec![category("notification")],
        part_of: row
            .appointment_id
            .iter()
            .map(|a| Reference::to("Appointment", a))
            .collect(),
        subject: None,
        sent: utc(row.at),
        received: row.read_at.map(utc),
        recipient: vec![recipient],
        sender: None,
        payload: vec![Payload {
            content_string: format!("{what} by {by}{when}"),
        }],
    }
}

/// FHIR's `Encounter.status` for a call's status.
fn encounter_status(status: &str) -> &'static str {
    match status {
        "ringing" => "planned",
        "active" => "in-progress",
        "ended" => "finished",
        _ => "cancelled",
    }
}

/// A video call of appointment `view`.
pub fn call(view: &AppointmentView, call: &CallView) -> Encounter {
    let status = match &call.end_reason {
        Some(reason) => format!("{} ({reason})", call.status),
        None => call.status.clone(),
    };
    Encounter {
        id: call.call_id.to_string(),
        status: encounter_status(&call.status).into(),
        class: Coding::new(
            "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "VR",
            "virtual",
        ),
        subject: Reference::to("Patient", view.patient_id),
        participant: call
            .participants
            .iter()
            .map(|p| EncounterParticipant {
                individual: party(view, *p),
            })
            .collect(),
        appointment: vec![Reference::to("Appointment", view.id)],
        period: Period {
            start: Some(utc(call.started_at)),
            end: call.ended_at.map(utc),
        },
        extension: text_extension(CALL_STATUS, &status).into_iter().collect(),
    }
}

/// One event of appointment `view`'s history; the agent is the event's actor (metadata
/// `actor_id`, `actor_role`), else the system.
pub fn provenance(view: &AppointmentView, event: &StoredEvent) -> Provenance {
    let actor = event.metadata["actor_id"]
        .as_str()
        .and_then(|id| id.parse::<UserId>().ok());
    let who = match actor {
        Some(id) if id == view.doctor_id || id == view.patient_id => party(view, id),
        Some(id) => Reference {
            reference: None,
            display: Some(format!(
                "{} {id}",
                event.metadata["actor_role"].as_str().unwrap_or("user")
            )),
        },
        None => Reference {
            reference: None,
            display: Some("Telemed".into()),
        },
    };
    let json = serde_json::to_string(event).unwrap_or_default();
    Provenance {
        id: format!("{}-{}", view.id, event.sequence),
        target: vec![Reference::to("Appointment", view.id)],
        recorded: utc(event.recorded_at),
        activity: CodeableConcept::text(event.event_type.clone()),
        agent: vec![Agent { who }],
        extension: text_extension(EVENT, &json).into_iter().collect(),
    }
}

/// FHIR's `instant` of now.
pub fn now() -> String {
    utc(OffsetDateTime::now_utc())
}
