//! Chat read state for apps: read markers and the caller's unread count in a conversation's
//! history, and `GET /api/v1/me/unread` across all of the caller's conversations.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::chat::Consultation;
use crate::helpers::{User, expect_status};
use crate::scheduling::days_ahead;

impl Consultation {
    /// The first page of history as `user` sees it.
    async fn page(&self, user: &User, query: &[(&str, &str)]) -> Value {
        expect_status(self.history(user, query).await, StatusCode::OK).await
    }

    /// `user` has read up to `message`.
    async fn read(&self, user: &User, message: &Value) {
        let response = self
            .app
            .post(
                &format!("{}/read", self.path()),
                Some(&user.token),
                &json!({ "up_to": message["id"] }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    /// `GET /api/v1/me/unread` as `user`.
    async fn unread(&self, user: &User) -> Value {
        expect_status(
            self.app.get("/api/v1/me/unread", &user.token).await,
            StatusCode::OK,
        )
        .await
    }

    /// A second appointment of the same doctor with a new patient, and its id.
    async fn second_patient(&self) -> (User, String) {
        let patient = self.app.patient().await;
        let start = days_ahead(3) + Duration::hours(11);
        let booked = self
            .app
            .book(
                &patient,
                &self.doctor.id,
                start,
                start + Duration::minutes(30),
            )
            .await;
        (patient, booked["id"].as_str().unwrap().to_string())
    }
}

/// `{user_id, up_to}` of each marker, without the time.
fn markers(page: &Value) -> Vec<(String, String)> {
    page["read_markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m["at"].as_str().unwrap().ends_with('Z'), "{m}");
            (
                m["user_id"].as_str().unwrap().into(),
                m["up_to"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn id(message: &Value) -> String {
    message["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn history_shows_both_read_markers_and_the_callers_unread_count() {
    let c = Consultation::book().await;
    let empty = c.page(&c.doctor, &[]).await;
    assert_eq!(empty["read_markers"], json!([]));
    assert_eq!(empty["unread_count"], 0);

    let first = c.post(&c.patient, "one").await;
    c.post(&c.patient, "two").await;
    c.post(&c.patient, "three").await;
    let reply = c.post(&c.doctor, "reply").await;
    assert_eq!(c.page(&c.doctor, &[]).await["unread_count"], 3);
    assert_eq!(c.page(&c.patient, &[]).await["unread_count"], 1);

    c.read(&c.doctor, &first).await;
    let doctors = c.page(&c.doctor, &[("limit", "1")]).await;
    assert_eq!(doctors["unread_count"], 2, "counted beyond the page");
    assert_eq!(markers(&doctors), vec![(c.doctor.id.clone(), id(&first))]);
    let patients = c.page(&c.patient, &[]).await;
    assert_eq!(patients["unread_count"], 1);
    assert_eq!(
        markers(&patients),
        markers(&doctors),
        "both see the same markers"
    );

    // Reading up to one's own later message reads everything before it.
    c.read(&c.doctor, &reply).await;
    c.read(&c.patient, &reply).await;
    let mut both = vec![
        (c.doctor.id.clone(), id(&reply)),
        (c.patient.id.clone(), id(&reply)),
    ];
    both.sort();
    for user in [&c.doctor, &c.patient] {
        let page = c.page(user, &[]).await;
        assert_eq!(page["unread_count"], 0, "{page}");
        assert_eq!(markers(&page), both);
    }
}

#[tokio::test]
async fn me_unread_lists_each_conversation_with_unread_messages_for_both_sides() {
    let c = Consultation::book().await;
    let (other_patient, other_id) = c.second_patient().await;
    assert_eq!(c.unread(&c.doctor).await, json!({ "conversations": [] }));

    let first = c.post(&c.patient, "one").await;
    c.post(&c.patient, "two").await;
    c.post(&c.doctor, "reply").await;
    let other_messages = format!("/api/v1/appointments/{other_id}/messages");
    let hello = expect_status(
        c.app
            .post(
                &other_messages,
                Some(&other_patient.token),
                &json!({ "content": "hello" }),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;

    let mut expected = vec![
        json!({ "appointment_id": c.id, "unread_count": 2 }),
        json!({ "appointment_id": other_id, "unread_count": 1 }),
    ];
    expected.sort_by_key(|e| e["appointment_id"].as_str().unwrap().to_string());
    assert_eq!(c.unread(&c.doctor).await["conversations"], json!(expected));
    assert_eq!(
        c.unread(&c.patient).await,
        json!({ "conversations": [{ "appointment_id": c.id, "unread_count": 1 }] })
    );
    assert_eq!(
        c.unread(&other_patient).await,
        json!({ "conversations": [] })
    );

    c.read(&c.doctor, &first).await;
    for entry in &mut expected {
        if entry["appointment_id"] == c.id.as_str() {
            entry["unread_count"] = json!(1);
        }
    }
    assert_eq!(c.unread(&c.doctor).await["conversations"], json!(expected));
    let read = c
        .app
        .post(
            &format!("{other_messages}/read"),
            Some(&c.doctor.token),
            &json!({ "up_to": hello["id"] }),
        )
        .await;
    assert_eq!(read.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.unread(&c.doctor).await,
        json!({ "conversations": [{ "appointment_id": c.id, "unread_count": 1 }] })
    );

    let admin = c.app.staff("admin").await;
    assert_eq!(c.unread(&admin).await, json!({ "conversations": [] }));
    let anonymous = c
        .app
        .client
        .get(c.app.url("/api/v1/me/unread"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_openapi_document_describes_the_read_state() {
    let c = Consultation::book().await;
    let document = expect_status(
        c.app
            .client
            .get(c.app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(document["paths"]["/api/v1/me/unread"]["get"].is_object());
    let page = &document["components"]["schemas"]["MessagePage"]["properties"];
    assert!(
        page["read_markers"].is_object() && page["unread_count"].is_object(),
        "{page}"
    );
}
