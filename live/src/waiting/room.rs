//! The waiting room's bookkeeping on one process, with no IO: who waits for which doctor, who
//! is connected where, which doctors are in a call; and, for each change, what to tell this
//! process's clients and the other processes ([`Effect`]s).
//!
//! Every process keeps a replica of every entry; the process where a patient checked in owns
//! the entry and alone decides that the patient left because they disconnected, or because the
//! appointment's call started or the appointment was cancelled. Anyone may apply a `leave`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use telemed_domain::{AppointmentId, CallId, UserId};

use super::message::{Body, DoctorStatus, Entry, Message, NodeId, Reason};

/// `waiting:joined`.
pub const JOINED: &str = "waiting:joined";
/// `waiting:left`.
pub const LEFT: &str = "waiting:left";
/// `doctor:status`.
pub const STATUS: &str = "doctor:status";

/// Something a change requires of the process.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send `event` with `data` to this process's connections of user `to`.
    Deliver {
        /// Event name.
        event: &'static str,
        /// Its data.
        data: Value,
        /// The recipient.
        to: UserId,
    },
    /// Tell the other processes.
    Broadcast(Message),
}

/// A check-in refused because a call of the appointment is ringing or active.
#[derive(Debug, PartialEq, Eq)]
pub struct CallLive;

struct Owned {
    owner: NodeId,
    entry: Entry,
}

struct Local {
    connections: usize,
    doctor: bool,
}

struct Remote {
    present: HashSet<UserId>,
    seen: Instant,
}

/// One process's view of the waiting room.
pub struct Room {
    node: NodeId,
    entries: HashMap<AppointmentId, Owned>,
    local: HashMap<UserId, Local>,
    remote: HashMap<NodeId, Remote>,
    /// Users this process told the others are connected here.
    announced: HashSet<UserId>,
    /// Ringing or active calls: their doctor and appointment.
    calls: HashMap<CallId, (UserId, AppointmentId)>,
    /// The status last told to each waiting doctor's patients.
    told: HashMap<UserId, DoctorStatus>,
    effects: Vec<Effect>,
}

impl Room {
    /// The room of process `node`.
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            entries: HashMap::new(),
            local: HashMap::new(),
            remote: HashMap::new(),
            announced: HashSet::new(),
            calls: HashMap::new(),
            told: HashMap::new(),
            effects: Vec::new(),
        }
    }

    /// The effects of the changes since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    fn deliver(&mut self, event: &'static str, data: Value, to: UserId) {
        self.effects.push(Effect::Deliver { event, data, to });
    }

    fn broadcast(&mut self, body: Body) {
        let node = self.node;
        self.effects.push(Effect::Broadcast(Message { node, body }));
    }

    /// A connection of `user` opened on this process.
    pub fn connect(&mut self, user: UserId, doctor: bool) {
        let local = self.local.entry(user).or_insert(Local {
            connections: 0,
            doctor,
        });
        local.connections += 1;
        local.doctor |= doctor;
        self.settle(user);
    }

    /// A connection of `user` on this process closed.
    pub fn disconnect(&mut self, user: UserId) {
        if let Some(local) = self.local.get_mut(&user) {
            local.connections = local.connections.saturating_sub(1);
            if local.connections == 0 {
                self.local.remove(&user);
            }
        }
        self.settle(user);
    }

    /// Whether `user` has a connection on any process.
    fn is_present(&self, user: UserId) -> bool {
        self.local.contains_key(&user) || self.remote.values().any(|r| r.present.contains(&user))
    }

    fn is_waiting(&self, patient: UserId) -> bool {
        self.entries
            .values()
            .any(|owned| owned.entry.patient_id == patient)
    }

    /// After `user`'s presence may have changed: tell the others, tell the patients of a doctor
    /// whose status changed, and drop the entries of a patient connected nowhere.
    fn settle(&mut self, user: UserId) {
        let wanted = self
            .local
            .get(&user)
            .is_some_and(|local| local.doctor || self.is_waiting(user));
        if wanted != self.announced.contains(&user) {
            if wanted {
                self.announced.insert(user);
            } else {
                self.announced.remove(&user);
            }
            self.broadcast(Body::Presence { user, up: wanted });
        }
        self.settle_doctor(user);
        if !self.is_present(user) {
            let gone: Vec<AppointmentId> = self
                .entries
                .iter()
                .filter(|(_, o)| o.owner == self.node && o.entry.patient_id == user)
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                self.remove(id, Reason::Disconnected, true);
            }
        }
    }

    /// What the patients waiting for `doctor` should see.
    pub fn status(&self, doctor: UserId) -> DoctorStatus {
        if self.calls.values().any(|(d, _)| *d == doctor) {
            DoctorStatus::InCall
        } else if self.is_present(doctor) {
            DoctorStatus::Online
        } else {
            DoctorStatus::Away
        }
    }

    /// Tells `doctor`'s waiting patients their status when it changed.
    fn settle_doctor(&mut self, doctor: UserId) {
        let patients: Vec<UserId> = self
            .entries
            .values()
            .filter(|o| o.entry.doctor_id == doctor)
            .map(|o| o.entry.patient_id)
            .collect();
        if patients.is_empty() {
            self.told.remove(&doctor);
            return;
        }
        let status = self.status(doctor);
        if let Some(old) = self.told.insert(doctor, status)
            && old != status
        {
            for patient in patients {
                self.deliver(STATUS, status_data(doctor, status), patient);
            }
        }
    }

    fn insert(&mut self, owner: NodeId, entry: Entry) {
        let (patient, doctor) = (entry.patient_id, entry.doctor_id);
        self.deliver(JOINED, entry.to_json(), doctor);
        if owner == self.node {
            self.broadcast(Body::Joined {
                entry: entry.clone(),
            });
        }
        self.entries
            .insert(entry.appointment_id, Owned { owner, entry });
        self.settle(patient);
        self.settle_doctor(doctor);
    }

    /// Removes entry `id`, tells its doctor and, when `decided` here, the other processes.
    fn remove(&mut self, id: AppointmentId, reason: Reason, decided: bool) -> Option<Entry> {
        let Owned { entry, .. } = self.entries.remove(&id)?;
        let data = json!({
            "appointment_id": id,
            "patient_id": entry.patient_id,
            "reason": reason.as_str(),
        });
        self.deliver(LEFT, data, entry.doctor_id);
        if decided {
            self.broadcast(Body::Left {
                appointment_id: id,
                reason,
            });
        }
        self.settle(entry.patient_id);
        self.settle_doctor(entry.doctor_id);
        Some(entry)
    }

    /// The patient of `entry` checks in on this process. Returns the entry that stands (the
    /// first check-in's, if any) and the doctor's status, which the patient is also sent.
    pub fn check_in(&mut self, entry: Entry) -> Result<(Entry, DoctorStatus), CallLive> {
        let kept = match self.entries.get(&entry.appointment_id) {
            Some(existing) => existing.entry.clone(),
            None => {
                if self.calls.values().any(|(_, a)| *a == entry.appointment_id) {
                    return Err(CallLive);
                }
                self.insert(self.node, entry.clone());
                entry
            }
        };
        let status = self.status(kept.doctor_id);
        self.deliver(STATUS, status_data(kept.doctor_id, status), kept.patient_id);
        Ok((kept, status))
    }

    /// `patient` leaves the room of appointment `id` (`reason`); `false` when not waiting.
    pub fn leave(&mut self, id: AppointmentId, patient: UserId, reason: Reason) -> bool {
        let theirs = self
            .entries
            .get(&id)
            .is_some_and(|o| o.entry.patient_id == patient);
        theirs && self.remove(id, reason, true).is_some()
    }

    /// Every patient waiting for `doctor`, first come first.
    pub fn entries_for(&self, doctor: UserId) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self
            .entries
            .values()
            .filter(|o| o.entry.doctor_id == doctor)
            .map(|o| o.entry.clone())
            .collect();
        entries.sort_by_key(|e| (e.checked_in_at, e.appointment_id.as_uuid()));
        entries
    }

    /// A call of `appointment` with `doctor` started ringing.
    pub fn call_started(&mut self, call: CallId, appointment: AppointmentId, doctor: UserId) {
        self.calls.insert(call, (doctor, appointment));
        self.settle_doctor(doctor);
        if self.owns(appointment) {
            self.remove(appointment, Reason::CallStarted, true);
        }
    }

    /// Call `call` is over (ended, missed, rejected).
    pub fn call_over(&mut self, call: CallId) {
        if let Some((doctor, _)) = self.calls.remove(&call) {
            self.settle_doctor(doctor);
        }
    }

    /// `appointment` was cancelled, rescheduled, completed or marked a no-show.
    pub fn appointment_closed(&mut self, appointment: AppointmentId) {
        if self.owns(appointment) {
            self.remove(appointment, Reason::Cancelled, true);
        }
    }

    fn owns(&self, appointment: AppointmentId) -> bool {
        self.entries
            .get(&appointment)
            .is_some_and(|o| o.owner == self.node)
    }

    /// Applies another process's message, received at `now`.
    pub fn receive(&mut self, message: Message, now: Instant) {
        let node = message.node;
        if node == self.node {
            return;
        }
        self.remote
            .entry(node)
            .or_insert_with(|| Remote {
                present: HashSet::new(),
                seen: now,
            })
            .seen = now;
        match message.body {
            Body::Joined { entry } => self.joined(node, entry),
            Body::Left {
                appointment_id,
                reason,
            } => {
                self.remove(appointment_id, reason, false);
            }
            Body::Presence { user, up } => {
                if let Some(remote) = self.remote.get_mut(&node) {
                    if up {
                        remote.present.insert(user);
                    } else {
                        remote.present.remove(&user);
                    }
                }
                self.settle(user);
            }
            Body::Snapshot { entries, present } => self.reconcile(node, entries, present),
            Body::Hello => self.broadcast(self.snapshot()),
        }
    }

    /// Another process's check-in. Two processes checking in the same appointment at once
    /// agree on the earlier one (then the lower process id), as every process sees both.
    fn joined(&mut self, node: NodeId, entry: Entry) {
        match self.entries.get_mut(&entry.appointment_id) {
            None => self.insert(node, entry),
            Some(existing)
                if (entry.checked_in_at, node) < (existing.entry.checked_in_at, existing.owner) =>
            {
                *existing = Owned { owner: node, entry };
            }
            Some(_) => {}
        }
    }

    /// Makes `node`'s share what its snapshot says.
    fn reconcile(&mut self, node: NodeId, entries: Vec<Entry>, present: Vec<UserId>) {
        let present: HashSet<UserId> = present.into_iter().collect();
        let before = match self.remote.get_mut(&node) {
            Some(remote) => std::mem::replace(&mut remote.present, present.clone()),
            None => HashSet::new(),
        };
        let listed: HashSet<AppointmentId> = entries.iter().map(|e| e.appointment_id).collect();
        let stale: Vec<AppointmentId> = self
            .entries
            .iter()
            .filter(|(id, o)| o.owner == node && !listed.contains(id))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove(id, Reason::Disconnected, false);
        }
        for entry in entries {
            if !self.entries.contains_key(&entry.appointment_id) {
                self.insert(node, entry);
            }
        }
        for user in before.symmetric_difference(&present) {
            self.settle(*user);
        }
    }

    /// This process's share, for the others.
    pub fn snapshot(&self) -> Body {
        Body::Snapshot {
            entries: self
                .entries
                .values()
                .filter(|o| o.owner == self.node)
                .map(|o| o.entry.clone())
                .collect(),
            present: self.announced.iter().copied().collect(),
        }
    }

    /// Asks the other processes for their snapshots and offers this one's (after this process
    /// (re)started listening).
    pub fn hello(&mut self) {
        self.broadcast(Body::Hello);
        self.heartbeat();
    }

    /// Sends this process's snapshot (its heartbeat).
    pub fn heartbeat(&mut self) {
        self.broadcast(self.snapshot());
    }

    /// Forgets the processes not heard from for `silence` before `now` (they died without a
    /// word): their connections go, and their entries with them unless the patient is
    /// connected elsewhere.
    pub fn expire(&mut self, now: Instant, silence: Duration) {
        let dead: Vec<NodeId> = self
            .remote
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.seen) > silence)
            .map(|(node, _)| *node)
            .collect();
        for node in dead {
            self.adopt(node);
            self.reconcile(node, Vec::new(), Vec::new());
            self.remote.remove(&node);
        }
    }

    /// Gives the entries of dead process `node` whose patient is still connected elsewhere to
    /// the lowest process id among those the patient is connected to: every process picks the
    /// same one (e.g. after the patient reconnected to another process and checked in again).
    fn adopt(&mut self, node: NodeId) {
        let orphans: Vec<(AppointmentId, UserId)> = self
            .entries
            .iter()
            .filter(|(_, o)| o.owner == node)
            .map(|(id, o)| (*id, o.entry.patient_id))
            .collect();
        for (id, patient) in orphans {
            let here = self.local.contains_key(&patient).then_some(self.node);
            let adopter = self
                .remote
                .iter()
                .filter(|(n, r)| **n != node && r.present.contains(&patient))
                .map(|(n, _)| *n)
                .chain(here)
                .min();
            if let (Some(adopter), Some(owned)) = (adopter, self.entries.get_mut(&id)) {
                owned.owner = adopter;
            }
        }
    }

    /// Remembers the calls that were live when this process started.
    pub fn load_calls(&mut self, calls: impl IntoIterator<Item = (CallId, AppointmentId, UserId)>) {
        for (call, appointment, doctor) in calls {
            self.calls.insert(call, (doctor, appointment));
        }
    }
}

fn status_data(doctor: UserId, status: DoctorStatus) -> Value {
    json!({ "doctor_id": doctor, "status": status.as_str() })
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn entry(patient: UserId, doctor: UserId, minute: i64) -> Entry {
        let at = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute);
        Entry {
            appointment_id: AppointmentId::new(),
            patient_id: patient,
            patient_name: "Ada".into(),
            doctor_id: doctor,
            checked_in_at: at,
            start: at + time::Duration::minutes(10),
        }
    }

    /// The deliveries among `effects`: (event, recipient, data).
    fn delivered(effects: &[Effect]) -> Vec<(&'static str, UserId, Value)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver { event, data, to } => Some((*event, *to, data.clone())),
                Effect::Broadcast(_) => None,
            })
            .collect()
    }

    fn broadcast(effects: &[Effect]) -> Vec<Body> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Broadcast(message) => Some(message.body.clone()),
                Effect::Deliver { .. } => None,
            })
            .collect()
    }

    fn statuses(effects: &[Effect]) -> Vec<String> {
        delivered(effects)
            .into_iter()
            .filter(|(event, ..)| *event == STATUS)
            .map(|(_, _, data)| data["status"].as_str().unwrap().to_string())
            .collect()
    }

    fn lefts(effects: &[Effect]) -> Vec<String> {
        delivered(effects)
            .into_iter()
            .filter(|(event, ..)| *event == LEFT)
            .map(|(_, _, data)| data["reason"].as_str().unwrap().to_string())
            .collect()
    }

    fn message(node: NodeId, body: Body) -> Message {
        Message { node, body }
    }

    #[test]
    fn a_check_in_reaches_the_doctor_once_and_keeps_its_first_time() {
        let mut room = Room::new(NodeId::new_v4());
        let (patient, doctor) = (UserId::new(), UserId::new());
        room.connect(patient, false);
        room.take_effects();
        let first = entry(patient, doctor, 0);
        let (kept, status) = room.check_in(first.clone()).unwrap();
        assert_eq!((kept, status), (first.clone(), DoctorStatus::Away));
        let effects = room.take_effects();
        let events: Vec<_> = delivered(&effects)
            .into_iter()
            .map(|d| (d.0, d.1))
            .collect();
        assert_eq!(events, vec![(JOINED, doctor), (STATUS, patient)]);
        assert!(matches!(
            &broadcast(&effects)[..],
            [Body::Joined { .. }, Body::Presence { up: true, .. }]
        ));

        let again = Entry {
            checked_in_at: first.checked_in_at + time::Duration::minutes(3),
            ..first.clone()
        };
        let (kept, _) = room.check_in(again).unwrap();
        assert_eq!(kept.checked_in_at, first.checked_in_at);
        let effects = room.take_effects();
        assert_eq!(statuses(&effects), vec!["away"]);
        assert!(broadcast(&effects).is_empty(), "nothing new to tell");
        assert_eq!(room.entries_for(doctor), vec![first]);
    }

    #[test]
    fn the_patients_last_connection_ends_the_wait_not_an_earlier_one() {
        let mut room = Room::new(NodeId::new_v4());
        let (patient, doctor) = (UserId::new(), UserId::new());
        room.connect(patient, false);
        room.connect(patient, false);
        room.check_in(entry(patient, doctor, 0)).unwrap();
        room.take_effects();
        room.disconnect(patient);
        assert!(room.take_effects().is_empty());
        room.disconnect(patient);
        let effects = room.take_effects();
        assert_eq!(lefts(&effects), vec!["disconnected"]);
        assert!(matches!(
            &broadcast(&effects)[..],
            [
                Body::Presence { up: false, .. },
                Body::Left {
                    reason: Reason::Disconnected,
                    ..
                }
            ]
        ));
        assert!(room.entries_for(doctor).is_empty());
    }

    #[test]
    fn patients_follow_their_doctor_online_away_and_into_the_call() {
        let mut room = Room::new(NodeId::new_v4());
        let (patient, doctor, other) = (UserId::new(), UserId::new(), UserId::new());
        room.connect(patient, false);
        room.connect(other, false);
        let mine = entry(patient, doctor, 0);
        room.check_in(mine.clone()).unwrap();
        room.check_in(entry(other, doctor, 1)).unwrap();
        room.take_effects();
        room.connect(doctor, true);
        assert_eq!(statuses(&room.take_effects()), vec!["online", "online"]);
        room.disconnect(doctor);
        assert_eq!(statuses(&room.take_effects()), vec!["away", "away"]);
        room.connect(doctor, true);
        room.take_effects();

        let call = CallId::new();
        room.call_started(call, mine.appointment_id, doctor);
        let effects = room.take_effects();
        assert_eq!(statuses(&effects), vec!["in_call", "in_call"]);
        assert_eq!(lefts(&effects), vec!["call_started"]);
        assert_eq!(room.entries_for(doctor).len(), 1);
        room.call_over(call);
        assert_eq!(statuses(&room.take_effects()), vec!["online"]);
        let after = room.check_in(entry(patient, doctor, 2));
        assert!(after.is_ok(), "a new check-in after the call is fine");
    }

    #[test]
    fn a_check_in_during_the_appointments_call_is_refused() {
        let mut room = Room::new(NodeId::new_v4());
        let (patient, doctor) = (UserId::new(), UserId::new());
        let waiting = entry(patient, doctor, 0);
        room.call_started(CallId::new(), waiting.appointment_id, doctor);
        assert_eq!(room.check_in(waiting), Err(CallLive));
    }

    #[test]
    fn a_connection_on_another_process_keeps_the_patient_waiting() {
        let (a, b) = (NodeId::new_v4(), NodeId::new_v4());
        let mut room = Room::new(a);
        let (patient, doctor) = (UserId::new(), UserId::new());
        room.connect(patient, false);
        room.check_in(entry(patient, doctor, 0)).unwrap();
        let now = Instant::now();
        room.receive(
            message(
                b,
                Body::Presence {
                    user: patient,
                    up: true,
                },
            ),
            now,
        );
        room.take_effects();
        room.disconnect(patient);
        assert!(lefts(&room.take_effects()).is_empty());
        room.receive(
            message(
                b,
                Body::Presence {
                    user: patient,
                    up: false,
                },
            ),
            now,
        );
        assert_eq!(lefts(&room.take_effects()), vec!["disconnected"]);
    }

    #[test]
    fn another_process_check_ins_reach_local_doctors_and_its_silence_ends_them() {
        let (a, b) = (NodeId::new_v4(), NodeId::new_v4());
        let mut room = Room::new(a);
        let (patient, doctor) = (UserId::new(), UserId::new());
        room.connect(doctor, true);
        room.take_effects();
        let start = Instant::now();
        let remote = entry(patient, doctor, 0);
        room.receive(
            message(
                b,
                Body::Joined {
                    entry: remote.clone(),
                },
            ),
            start,
        );
        let effects = room.take_effects();
        assert_eq!(delivered(&effects)[0].0, JOINED);
        assert!(broadcast(&effects).is_empty(), "the owner tells the others");
        // Its own echo and a repeated snapshot change nothing.
        room.receive(
            message(
                a,
                Body::Left {
                    appointment_id: remote.appointment_id,
                    reason: Reason::Left,
                },
            ),
            start,
        );
        room.receive(
            message(
                b,
                Body::Snapshot {
                    entries: vec![remote.clone()],
                    present: vec![patient],
                },
            ),
            start,
        );
        assert!(room.take_effects().is_empty());
        assert_eq!(room.entries_for(doctor), vec![remote]);

        room.expire(start + SILENCE_FOR_TEST, SILENCE_FOR_TEST);
        assert!(room.take_effects().is_empty(), "not silent for long enough");
        room.expire(start + SILENCE_FOR_TEST * 2, SILENCE_FOR_TEST);
        assert_eq!(lefts(&room.take_effects()), vec!["disconnected"]);
        assert!(room.entries_for(doctor).is_empty());
    }

    #[test]
    fn a_dead_process_entry_stays_while_its_patient_is_connected_elsewhere() {
        let (dead, alive) = (NodeId::new_v4(), NodeId::new_v4());
        let here = NodeId::new_v4();
        let mut room = Room::new(here);
        let (patient, doctor) = (UserId::new(), UserId::new());
        let start = Instant::now();
        let waiting = entry(patient, doctor, 0);
        room.receive(
            message(
                dead,
                Body::Joined {
                    entry: waiting.clone(),
                },
            ),
            start,
        );
        room.receive(
            message(
                dead,
                Body::Presence {
                    user: patient,
                    up: true,
                },
            ),
            start,
        );
        // The patient reconnected to another live process.
        let later = start + SILENCE_FOR_TEST;
        room.receive(
            message(
                alive,
                Body::Presence {
                    user: patient,
                    up: true,
                },
            ),
            later,
        );
        room.take_effects();
        room.expire(later + Duration::from_secs(1), SILENCE_FOR_TEST);
        assert!(
            room.take_effects().is_empty(),
            "{:?}",
            room.entries_for(doctor)
        );
        assert_eq!(room.entries_for(doctor), vec![waiting]);
        // The adopter is the only live process the patient is on; when it goes, so does the entry.
        room.expire(later + SILENCE_FOR_TEST * 2, SILENCE_FOR_TEST);
        assert_eq!(lefts(&room.take_effects()), vec!["disconnected"]);
    }

    const SILENCE_FOR_TEST: Duration = Duration::from_secs(20);

    #[test]
    fn a_snapshot_corrects_missed_messages() {
        let (a, b) = (NodeId::new_v4(), NodeId::new_v4());
        let mut room = Room::new(a);
        let (doctor, p1, p2) = (UserId::new(), UserId::new(), UserId::new());
        let now = Instant::now();
        let gone = entry(p1, doctor, 0);
        room.receive(
            message(
                b,
                Body::Joined {
                    entry: gone.clone(),
                },
            ),
            now,
        );
        room.take_effects();
        let missed = entry(p2, doctor, 1);
        room.receive(
            message(
                b,
                Body::Snapshot {
                    entries: vec![missed.clone()],
                    present: vec![doctor],
                },
            ),
            now,
        );
        let effects = room.take_effects();
        let events: Vec<_> = delivered(&effects).into_iter().map(|d| d.0).collect();
        assert_eq!(events, vec![LEFT, JOINED]);
        assert_eq!(room.entries_for(doctor), vec![missed]);
        assert_eq!(room.status(doctor), DoctorStatus::Online);
    }

    #[test]
    fn simultaneous_check_ins_on_two_processes_agree_on_the_first() {
        let (a, b) = (NodeId::new_v4(), NodeId::new_v4());
        let (patient, doctor) = (UserId::new(), UserId::new());
        let mut on_a = Room::new(a);
        let mut on_b = Room::new(b);
        on_a.connect(patient, false);
        on_b.connect(patient, false);
        let early = entry(patient, doctor, 0);
        let late = Entry {
            checked_in_at: early.checked_in_at + time::Duration::seconds(1),
            ..early.clone()
        };
        on_a.check_in(late.clone()).unwrap();
        on_b.check_in(early.clone()).unwrap();
        let now = Instant::now();
        on_a.receive(
            message(
                b,
                Body::Joined {
                    entry: early.clone(),
                },
            ),
            now,
        );
        on_b.receive(message(a, Body::Joined { entry: late }), now);
        assert_eq!(on_a.entries_for(doctor), vec![early.clone()]);
        assert_eq!(on_b.entries_for(doctor), vec![early]);
        assert_eq!(
            on_a.snapshot(),
            Body::Snapshot {
                entries: vec![],
                present: vec![patient]
            }
        );
    }
}
