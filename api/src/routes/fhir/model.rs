//! The FHIR R4 resources and data types Telemed serves, as typed serde structs holding exactly
//! the elements it fills (see docs/decisions.md for why not a generated FHIR crate). Optional
//! elements are left out when empty, as FHIR JSON requires (no `null`, no empty arrays).

use serde::Serialize;

/// `Meta`: the version and last change of a resource.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The resource's revision (the aggregate's event count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When it last changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

/// `Coding`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Coding {
    /// The code system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Its display text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    /// `code` of `system` shown as `display`.
    pub fn new(system: &str, code: &str, display: &str) -> Self {
        Self {
            system: Some(system.into()),
            code: Some(code.into()),
            display: Some(display.into()),
        }
    }
}

/// `CodeableConcept`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CodeableConcept {
    /// Codes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// Plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// A concept given by text only.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            coding: vec![],
            text: Some(text.into()),
        }
    }

    /// A concept given by one code.
    pub fn coded(coding: Coding) -> Self {
        Self {
            text: coding.display.clone(),
            coding: vec![coding],
        }
    }
}

/// `Reference`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Reference {
    /// `Type/id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A name to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    /// `kind/id`.
    pub fn to(kind: &str, id: impl std::fmt::Display) -> Self {
        Self {
            reference: Some(format!("{kind}/{id}")),
            display: None,
        }
    }

    /// `kind/id` shown as `display`.
    pub fn named(kind: &str, id: impl std::fmt::Display, display: Option<String>) -> Self {
        Self {
            display,
            ..Self::to(kind, id)
        }
    }
}

/// `Period`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Period {
    /// Start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

/// `Extension`: the few Telemed defines, each with one value.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// Its definition's URL.
    pub url: String,
    /// A period value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_period: Option<Period>,
    /// A text value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    /// A reference value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_reference: Option<Reference>,
}

/// `HumanName`.
#[derive(Clone, Debug, Serialize)]
pub struct HumanName {
    /// The whole name as written (Telemed keeps one display name).
    pub text: String,
}

/// `ContactPoint`.
#[derive(Clone, Debug, Serialize)]
pub struct ContactPoint {
    /// `phone`, `email`, …
    pub system: String,
    /// The number or address.
    pub value: String,
}

/// `Address`.
#[derive(Clone, Debug, Serialize)]
pub struct Address {
    /// The whole address as written.
    pub text: String,
}

/// `Practitioner.qualification` and the like: a concept.
#[derive(Clone, Debug, Serialize)]
pub struct Qualification {
    /// What.
    pub code: CodeableConcept,
}

/// `Appointment.participant`.
#[derive(Clone, Debug, Serialize)]
pub struct Participant {
    /// Who.
    pub actor: Reference,
    /// `required`.
    pub required: String,
    /// `accepted`, `needs-action`, `declined`.
    pub status: String,
}

/// `Encounter.participant`.
#[derive(Clone, Debug, Serialize)]
pub struct EncounterParticipant {
    /// Who.
    pub individual: Reference,
}

/// `Communication.payload`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// The text.
    pub content_string: String,
}

/// `Provenance.agent`.
#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    /// Who acted.
    pub who: Reference,
}

/// `OperationOutcome.issue`.
#[derive(Clone, Debug, Serialize)]
pub struct Issue {
    /// `error`, `information`, …
    pub severity: String,
    /// An `issue-type` code (`invalid`, `not-found`, `forbidden`, …).
    pub code: String,
    /// What happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// The search parameter or element at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
}

/// Every resource Telemed serves, tagged by `resourceType`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "resourceType")]
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    /// A doctor.
    Practitioner(Practitioner),
    /// A patient.
    Patient(Patient),
    /// A doctor's bookable time.
    Schedule(Schedule),
    /// A free slot.
    Slot(Slot),
    /// An appointment.
    Appointment(Appointment),
    /// A chat message or a notification.
    Communication(Communication),
    /// A video call.
    Encounter(Encounter),
    /// One event of an appointment's history.
    Provenance(Provenance),
    /// A known condition.
    Condition(Condition),
    /// A known allergy.
    AllergyIntolerance(AllergyIntolerance),
    /// A current medication.
    MedicationStatement(MedicationStatement),
    /// The patient's free-text notes.
    Observation(Observation),
    /// A search result or a collection.
    Bundle(Bundle),
    /// An error.
    OperationOutcome(OperationOutcome),
}

/// `Practitioner`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    /// Id (the doctor's user id).
    pub id: String,
    /// Active.
    pub active: bool,
    /// The display name.
    pub name: Vec<HumanName>,
    /// Specialties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub qualification: Vec<Qualification>,
    /// Languages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communication: Vec<CodeableConcept>,
    /// The doctor's zone and bio.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
}

/// `Patient`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// Id (the patient's user id).
    pub id: String,
    /// Active.
    pub active: bool,
    /// The display name.
    pub name: Vec<HumanName>,
    /// Phone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Postal address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    /// The patient's zone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
}

/// `Schedule`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Id (the doctor's id).
    pub id: String,
    /// Active.
    pub active: bool,
    /// Specialties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub specialty: Vec<CodeableConcept>,
    /// The doctor.
    pub actor: Vec<Reference>,
    /// What it is.
    pub comment: String,
}

/// `Slot`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// Id: `{doctor}-{start, Unix seconds}-{minutes}`.
    pub id: String,
    /// The doctor's schedule.
    pub schedule: Reference,
    /// Always `free`.
    pub status: String,
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
}

/// `Appointment`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    /// Id.
    pub id: String,
    /// Version (the appointment's event count) and last change.
    pub meta: Meta,
    /// The previous time of a rescheduled appointment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// `pending`, `booked`, `cancelled`, `fulfilled`, `noshow`.
    pub status: String,
    /// Why it was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelation_reason: Option<CodeableConcept>,
    /// Why the patient consults.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reason_code: Vec<CodeableConcept>,
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
    /// Duration.
    pub minutes_duration: i64,
    /// When it was requested.
    pub created: String,
    /// Telemed's own status, when FHIR's is coarser (`rescheduled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The doctor and the patient.
    pub participant: Vec<Participant>,
}

/// `Communication`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Communication {
    /// Id.
    pub id: String,
    /// `completed`.
    pub status: String,
    /// `message` or `notification`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    /// The appointment it belongs to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub part_of: Vec<Reference>,
    /// The patient it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    /// When it was sent.
    pub sent: String,
    /// When it was read (notifications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<String>,
    /// To whom.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipient: Vec<Reference>,
    /// From whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<Reference>,
    /// The text.
    pub payload: Vec<Payload>,
}

/// `Encounter`: a video call of an appointment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    /// Id (the call's).
    pub id: String,
    /// `planned`, `in-progress`, `finished`, `cancelled`.
    pub status: String,
    /// `VR` (virtual).
    pub class: Coding,
    /// The patient.
    pub subject: Reference,
    /// The doctor and the patient.
    pub participant: Vec<EncounterParticipant>,
    /// The appointment.
    pub appointment: Vec<Reference>,
    /// From ringing to its end.
    pub period: Period,
    /// Why it ended, with Telemed's call status.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
}

/// `Provenance`: one event of an appointment's history.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// Id: `{appointment}-{sequence}`.
    pub id: String,
    /// The appointment.
    pub target: Vec<Reference>,
    /// When the event was recorded.
    pub recorded: String,
    /// The event type.
    pub activity: CodeableConcept,
    /// Who caused it.
    pub agent: Vec<Agent>,
    /// The whole event as the audit log holds it (JSON).
    pub extension: Vec<Extension>,
}

/// `Condition`.
#[derive(Clone, Debug, Serialize)]
pub struct Condition {
    /// Id.
    pub id: String,
    /// The condition.
    pub code: CodeableConcept,
    /// The patient.
    pub subject: Reference,
}

/// `AllergyIntolerance`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllergyIntolerance {
    /// Id.
    pub id: String,
    /// `active`: the patient lists it as current (required by invariant ait-1).
    pub clinical_status: CodeableConcept,
    /// `unconfirmed`: told by the patient, not verified by a clinician.
    pub verification_status: CodeableConcept,
    /// The allergy.
    pub code: CodeableConcept,
    /// The patient.
    pub patient: Reference,
}

/// `MedicationStatement`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationStatement {
    /// Id.
    pub id: String,
    /// `active`.
    pub status: String,
    /// The medication.
    pub medication_codeable_concept: CodeableConcept,
    /// The patient.
    pub subject: Reference,
}

/// `Observation`: the free-text notes of a medical history.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Id.
    pub id: String,
    /// `final`.
    pub status: String,
    /// What.
    pub code: CodeableConcept,
    /// The patient.
    pub subject: Reference,
    /// The notes.
    pub value_string: String,
}

/// `Bundle`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// `searchset` or `collection`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was assembled.
    pub timestamp: String,
    /// Matches in all pages (searchsets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// `self`, `next`, `previous`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<Link>,
    /// The resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<Entry>,
}

/// `Bundle.link`.
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    /// `self`, `next`, `previous`.
    pub relation: String,
    /// The URL.
    pub url: String,
}

/// `Bundle.entry`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Where the resource is read.
    pub full_url: String,
    /// The resource.
    pub resource: Resource,
    /// `match` (searchsets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchMode>,
}

/// `Bundle.entry.search`.
#[derive(Clone, Debug, Serialize)]
pub struct SearchMode {
    /// `match`.
    pub mode: String,
}

/// `OperationOutcome`.
#[derive(Clone, Debug, Serialize)]
pub struct OperationOutcome {
    /// What went wrong.
    pub issue: Vec<Issue>,
}

impl Resource {
    /// `Type/id` of the resource (none for bundles and outcomes).
    pub fn local_reference(&self) -> Option<String> {
        let (kind, id) = match self {
            Resource::Practitioner(r) => ("Practitioner", &r.id),
            Resource::Patient(r) => ("Patient", &r.id),
            Resource::Schedule(r) => ("Schedule", &r.id),
            Resource::Slot(r) => ("Slot", &r.id),
            Resource::Appointment(r) => ("Appointment", &r.id),
            Resource::Communication(r) => ("Communication", &r.id),
            Resource::Encounter(r) => ("Encounter", &r.id),
            Resource::Provenance(r) => ("Provenance", &r.id),
            Resource::Condition(r) => ("Condition", &r.id),
            Resource::AllergyIntolerance(r) => ("AllergyIntolerance", &r.id),
            Resource::MedicationStatement(r) => ("MedicationStatement", &r.id),
            Resource::Observation(r) => ("Observation", &r.id),
            Resource::Bundle(_) | Resource::OperationOutcome(_) => return None,
        };
        Some(format!("{kind}/{id}"))
    }
}
