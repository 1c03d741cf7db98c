//! Chat per appointment over REST, WebSocket and Socket.IO: who may read and write, live
//! delivery once, idempotent `client_msg_id`, content limits, paging, typing, read markers.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{
    TestApp, TestDb, User, expect_problem, expect_status, problem_fields, spawn_app, spawn_app_on,
};
use crate::live::Ws;
use crate::scheduling::{days_ahead, expect_conflict};

/// An appointment between a doctor and a patient, three days ahead.
pub(crate) struct Consultation {
    pub(crate) app: TestApp,
    pub(crate) doctor: User,
    pub(crate) patient: User,
    pub(crate) id: String,
}

impl Consultation {
    pub(crate) async fn book() -> Self {
        Self::book_in(spawn_app().await).await
    }

    pub(crate) async fn book_in(app: TestApp) -> Self {
        let doctor = app.doctor().await;
        let patient = app.patient().await;
        let day = days_ahead(3);
        app.open_window(&doctor, day + Duration::hours(9), day + Duration::hours(12))
            .await;
        let start = day + Duration::hours(10);
        let booked = app
            .book(&patient, &doctor.id, start, start + Duration::minutes(30))
            .await;
        let id = booked["id"].as_str().unwrap().to_string();
        Self {
            app,
            doctor,
            patient,
            id,
        }
    }

    pub(crate) fn path(&self) -> String {
        format!("/api/v1/appointments/{}/messages", self.id)
    }

    async fn post_raw(&self, user: &User, body: &Value) -> reqwest::Response {
        self.app.post(&self.path(), Some(&user.token), body).await
    }

    pub(crate) async fn post(&self, user: &User, content: &str) -> Value {
        expect_status(
            self.post_raw(user, &json!({ "content": content })).await,
            StatusCode::CREATED,
        )
        .await
    }

    pub(crate) async fn history(&self, user: &User, query: &[(&str, &str)]) -> reqwest::Response {
        self.app.get_with(&self.path(), &user.token, query).await
    }
}

#[tokio::test]
async fn participants_chat_over_rest_and_the_other_side_receives_each_message_once() {
    let c = Consultation::book().await;
    let mut doctor_ws = Ws::connect(&c.app, &c.doctor).await;

    let sent = c
        .post(&c.patient, "  Hello doctor,\n<b>not bold</b> ")
        .await;
    assert_eq!(
        sent["content"], "  Hello doctor,\n<b>not bold</b> ",
        "stored as given"
    );
    assert_eq!(sent["sender_id"], c.patient.id.as_str());
    assert_eq!(sent["appointment_id"], c.id.as_str());
    for field in ["id", "sent_at", "position"] {
        assert!(sent[field].is_string(), "{field} in {sent}");
    }
    let live = doctor_ws.next_named("chat:message").await;
    assert_eq!(live["data"], sent);
    doctor_ws.expect_no_events_named("chat:message").await;

    let reply = c.post(&c.doctor, "Hello! How can I help?").await;
    let history = expect_status(c.history(&c.patient, &[]).await, StatusCode::OK).await;
    assert_eq!(history["messages"], json!([sent, reply]));
    assert!(history.get("next_before").is_none(), "{history}");

    // Strangers, other doctors and staff get 404 for reading and writing.
    let stranger = c.app.patient().await;
    let other_doctor = c.app.doctor().await;
    let admin = c.app.staff("admin").await;
    for user in [&stranger, &other_doctor, &admin] {
        expect_problem(c.history(user, &[]).await, StatusCode::NOT_FOUND).await;
        expect_problem(
            c.post_raw(user, &json!({ "content": "hi" })).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
}

#[tokio::test]
async fn a_repeated_client_msg_id_returns_the_first_message_over_rest_and_websocket() {
    let c = Consultation::book().await;
    let first = expect_status(
        c.post_raw(
            &c.patient,
            &json!({ "content": "once", "client_msg_id": "m-1" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let again = expect_status(
        c.post_raw(
            &c.patient,
            &json!({ "content": "twice?", "client_msg_id": "m-1" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again, first);
    let mut ws = Ws::connect(&c.app, &c.patient).await;
    let ack = ws
        .request(
            "chat:send",
            json!({ "appointment_id": c.id, "content": "thrice?", "client_msg_id": "m-1" }),
        )
        .await;
    assert_eq!(ack["data"], first, "{ack}");
    let history = expect_status(c.history(&c.patient, &[]).await, StatusCode::OK).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(c.app.events_of(first["id"].as_str().unwrap()).await, 1);

    // The same key from the other participant is another message.
    let theirs = expect_status(
        c.post_raw(
            &c.doctor,
            &json!({ "content": "mine", "client_msg_id": "m-1" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(theirs["id"], first["id"]);
}

#[tokio::test]
async fn content_is_validated_and_bad_posts_change_nothing() {
    let c = Consultation::book().await;
    let too_long = "a".repeat(4_001);
    for (body, field) in [
        (json!({ "content": "" }), "content"),
        (json!({ "content": " \n\t " }), "content"),
        (json!({ "content": too_long }), "content"),
        (json!({ "content": "ring\u{7}" }), "content"),
        (
            json!({ "content": "ok", "client_msg_id": "" }),
            "client_msg_id",
        ),
        (
            json!({ "content": "ok", "client_msg_id": "x".repeat(101) }),
            "client_msg_id",
        ),
    ] {
        let problem = expect_problem(
            c.post_raw(&c.patient, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(problem_fields(&problem), vec![field], "{body}");
    }
    let unknown = expect_problem(
        c.post_raw(&c.patient, &json!({ "content": "hi", "html": true }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem_fields(&unknown), vec!["html"]);
    c.post(&c.patient, &"é".repeat(4_000)).await;
    let history = expect_status(c.history(&c.patient, &[]).await, StatusCode::OK).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);

    // Over the WebSocket, the same rules name the data's fields.
    let mut ws = Ws::connect(&c.app, &c.patient).await;
    let ack = ws
        .request(
            "chat:send",
            json!({ "appointment_id": c.id, "content": "" }),
        )
        .await;
    assert_eq!(ack["error"]["errors"][0]["field"], "data.content", "{ack}");
    let ack = ws
        .request(
            "chat:send",
            json!({ "appointment_id": "nope", "content": "hi" }),
        )
        .await;
    assert_eq!(
        ack["error"]["errors"][0]["field"], "data.appointment_id",
        "{ack}"
    );
}

#[tokio::test]
async fn a_cancelled_appointment_closes_its_conversation() {
    let c = Consultation::book().await;
    c.post(&c.patient, "see you").await;
    expect_status(
        c.app
            .act(&c.patient, &c.id, "cancel", &json!({ "reason": "better" }))
            .await,
        StatusCode::OK,
    )
    .await;
    expect_conflict(
        c.post_raw(&c.doctor, &json!({ "content": "sorry to hear" }))
            .await,
        "conversation_closed",
    )
    .await;
    // The history stays readable.
    let history = expect_status(c.history(&c.patient, &[]).await, StatusCode::OK).await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_conversation_closes_a_while_after_the_appointment() {
    let c = Consultation::book().await;
    // A server whose clock is past the appointment's end plus the 72 h grace period.
    let later = spawn_app_on(
        TestDb {
            url: c.app.db.url.clone(),
        },
        |config| config.clock_offset = Duration::days(7),
    )
    .await;
    let problem = expect_conflict(
        later
            .post(
                &c.path(),
                Some(&c.patient.token),
                &json!({ "content": "thanks!" }),
            )
            .await,
        "conversation_closed",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("72 hours"),
        "{problem}"
    );
}

#[tokio::test]
async fn history_pages_backwards_through_every_message_once_in_order() {
    let c = Consultation::book().await;
    let mut sent = Vec::new();
    for n in 0..25 {
        let author = if n % 2 == 0 { &c.patient } else { &c.doctor };
        sent.push(c.post(author, &format!("message {n}")).await["id"].clone());
    }
    let mut pages: Vec<Vec<Value>> = Vec::new();
    let mut before = String::new();
    loop {
        let page = expect_status(
            c.history(&c.doctor, &[("limit", "10"), ("before", &before)])
                .await,
            StatusCode::OK,
        )
        .await;
        pages.push(page["messages"].as_array().unwrap().clone());
        match page["next_before"].as_str() {
            Some(next) => before = next.to_string(),
            None => break,
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 5]
    );
    let all: Vec<Value> = pages
        .into_iter()
        .rev()
        .flatten()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(all, sent);

    let bad = c
        .history(&c.doctor, &[("limit", "0"), ("before", "x")])
        .await;
    let problem = expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["limit", "before"]);
}

#[tokio::test]
async fn typing_is_relayed_live_across_processes_and_never_stored() {
    let c = Consultation::book().await;
    let other_process = spawn_app_on(
        TestDb {
            url: c.app.db.url.clone(),
        },
        |_| {},
    )
    .await;
    let mut doctor_ws = Ws::connect(&other_process, &c.doctor).await;
    let mut patient_ws = Ws::connect(&c.app, &c.patient).await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&c.app.pool)
        .await
        .unwrap();

    let ack = patient_ws
        .request("chat:typing", json!({ "appointment_id": c.id }))
        .await;
    assert_eq!(ack["data"], json!({ "ok": true }), "{ack}");
    let typing = doctor_ws.next_named("chat:typing").await;
    assert_eq!(
        typing["data"],
        json!({ "appointment_id": c.id, "user_id": c.patient.id })
    );
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&c.app.pool)
        .await
        .unwrap();
    assert_eq!(events_after, events_before, "typing is not an event");
    let history = expect_status(c.history(&c.patient, &[]).await, StatusCode::OK).await;
    assert_eq!(history["messages"], json!([]));
    patient_ws.expect_no_events_named("chat:typing").await;

    // A stranger cannot type into it.
    let stranger = c.app.patient().await;
    let mut stranger_ws = Ws::connect(&c.app, &stranger).await;
    let refused = stranger_ws
        .request("chat:typing", json!({ "appointment_id": c.id }))
        .await;
    assert_eq!(refused["error"]["status"], 404, "{refused}");
}

#[tokio::test]
async fn read_markers_are_stored_and_announced() {
    let c = Consultation::book().await;
    let first = c.post(&c.doctor, "one").await;
    let second = c.post(&c.doctor, "two").await;
    let mut doctor_ws = Ws::connect(&c.app, &c.doctor).await;
    let mut patient_ws = Ws::connect(&c.app, &c.patient).await;

    let ack = patient_ws
        .request(
            "chat:read",
            json!({ "appointment_id": c.id, "up_to": second["id"] }),
        )
        .await;
    assert_eq!(ack["data"], json!({ "ok": true }), "{ack}");
    let read = doctor_ws.next_named("chat:read").await;
    assert_eq!(read["data"]["user_id"], c.patient.id.as_str());
    assert_eq!(read["data"]["up_to"], second["id"]);

    // Moving backwards changes nothing; REST answers 204.
    let back = c
        .app
        .post(
            &format!("{}/read", c.path()),
            Some(&c.patient.token),
            &json!({ "up_to": first["id"] }),
        )
        .await;
    assert_eq!(back.status(), StatusCode::NO_CONTENT);
    let stored: uuid::Uuid = sqlx::query_scalar(
        "SELECT up_to FROM chat_reads WHERE appointment_id = $1::uuid AND user_id = $2::uuid",
    )
    .bind(&c.id)
    .bind(&c.patient.id)
    .fetch_one(&c.app.pool)
    .await
    .unwrap();
    assert_eq!(stored.to_string(), second["id"].as_str().unwrap());

    let foreign = c
        .app
        .post(
            &format!("{}/read", c.path()),
            Some(&c.patient.token),
            &json!({ "up_to": uuid::Uuid::new_v4() }),
        )
        .await;
    let problem = expect_problem(foreign, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem_fields(&problem), vec!["up_to"]);
}

/// Where each stored chat message sits in the commit order: message id → (transaction id,
/// global position).
async fn stored_messages(app: &TestApp) -> std::collections::HashMap<String, (u64, i64, i64)> {
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_id, transaction_id::text, global_position, count(*) OVER (PARTITION BY aggregate_id)
           FROM events WHERE aggregate_type = 'chat_message'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, xid, position, copies)| (id, (xid.parse().unwrap(), position, copies)))
        .collect()
}

#[tokio::test]
async fn two_hundred_concurrent_senders_in_a_hundred_rooms_have_every_message_stored_once_in_order()
{
    const ROOMS: usize = 100;
    const DOCTORS: usize = 4;
    const MESSAGES: usize = 5;
    let app = spawn_app().await;
    let day = days_ahead(4);
    let mut doctors = Vec::new();
    for _ in 0..DOCTORS {
        let doctor = app.doctor().await;
        app.open_window(&doctor, day + Duration::hours(8), day + Duration::hours(18))
            .await;
        doctors.push(doctor);
    }
    let patients = app.patients(ROOMS, 10).await;
    let mut rooms = Vec::with_capacity(ROOMS);
    for (n, patient) in patients.iter().enumerate() {
        let doctor = &doctors[n % DOCTORS];
        let start = day + Duration::hours(8) + Duration::minutes(15 * (n / DOCTORS) as i64);
        let booked = app
            .book(patient, &doctor.id, start, start + Duration::minutes(15))
            .await;
        rooms.push(booked["id"].as_str().unwrap().to_string());
    }

    // Both participants of every room post at once, each its messages one after the other.
    let senders = rooms.iter().enumerate().flat_map(|(n, room)| {
        [
            (&doctors[n % DOCTORS], room, format!("d{n}")),
            (&patients[n], room, format!("p{n}")),
        ]
    });
    let sending = senders.map(|(user, room, sender)| {
        let app = &app;
        async move {
            let path = format!("/api/v1/appointments/{room}/messages");
            let mut acked = Vec::new();
            for n in 0..MESSAGES {
                let body = json!({ "content": format!("{sender} #{n}"), "client_msg_id": format!("{sender}-{n}") });
                // As a client does: a 503 (the server shedding load on a busy machine) is
                // retried with the same client_msg_id, which must not store it twice.
                let mut attempts = 0;
                let response = loop {
                    let response = app.post(&path, Some(&user.token), &body).await;
                    attempts += 1;
                    if response.status() != StatusCode::SERVICE_UNAVAILABLE || attempts == 20 {
                        break response;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                };
                let message = expect_status(response, StatusCode::CREATED).await;
                acked.push(message["id"].as_str().unwrap().to_string());
            }
            (sender, acked)
        }
    });
    let acked = futures::future::join_all(sending).await;

    // Every acknowledged message is stored once, and each sender's in the order sent.
    let stored = stored_messages(&app).await;
    assert_eq!(stored.len(), 2 * ROOMS * MESSAGES, "messages stored");
    for (sender, ids) in &acked {
        let positions: Vec<(u64, i64)> = ids
            .iter()
            .map(|id| {
                let (xid, position, copies) = stored[id];
                assert_eq!(copies, 1, "{sender}: message {id} stored {copies} times");
                (xid, position)
            })
            .collect();
        assert!(
            positions.is_sorted(),
            "{sender}: stored out of the order sent: {positions:?}"
        );
    }
    assert_eq!(
        app.rows_in("chat_messages").await,
        (2 * ROOMS * MESSAGES) as i64
    );
    // Concurrent posts were committed together (group commit), not one transaction each.
    let transactions: std::collections::HashSet<u64> =
        stored.values().map(|(xid, _, _)| *xid).collect();
    assert!(
        transactions.len() < stored.len(),
        "{} messages in {} transactions",
        stored.len(),
        transactions.len()
    );
}
