//! The secret iCal feed, read by a real calendar parser (Python's `icalendar`): one VEVENT per
//! appointment, times that round-trip, SEQUENCE that grows with each change, and revocation.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tokio::io::AsyncWriteExt;

use crate::helpers::{TestApp, User, expect_problem, expect_status, spawn_app};
use crate::scheduling::{days_ahead, instant};

/// Parses a calendar from stdin and prints `[[uid, dtstart, dtend, status, sequence], …]`.
const PARSE: &str = r#"
import json, sys
import icalendar
calendar = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
print(json.dumps([
    [str(e["UID"]), e.decoded("DTSTART").isoformat(), e.decoded("DTEND").isoformat(),
     str(e.get("STATUS")), int(e.get("SEQUENCE", 0))]
    for e in calendar.walk("VEVENT")
]))
"#;

/// One VEVENT as `icalendar` read it.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    uid: String,
    start: OffsetDateTime,
    end: OffsetDateTime,
    status: String,
    sequence: i64,
}

/// Parses `ics` with Python's `icalendar`; fails (never skips) when it is not installed.
async fn parse(ics: &str) -> Vec<Event> {
    // scripts/test exports its virtualenv's python, which has the package.
    let python3 = std::env::var("TELEMED_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let probe = tokio::process::Command::new(&python3)
        .args(["-c", "import icalendar"])
        .output()
        .await;
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "Python's icalendar package is required: set TELEMED_PYTHON to a python that has it \
         (scripts/test builds .venv-test from tests/python/requirements.txt): {probe:?}"
    );
    let mut python = tokio::process::Command::new(&python3)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut stdin = python.stdin.take().unwrap();
    stdin.write_all(ics.as_bytes()).await.unwrap();
    drop(stdin);
    let output = python.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "icalendar could not read the feed: {}\n{ics}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<(String, String, String, String, i64)> =
        serde_json::from_slice(&output.stdout).unwrap();
    rows.into_iter()
        .map(|(uid, start, end, status, sequence)| Event {
            uid,
            start: instant(&start),
            end: instant(&end),
            status,
            sequence,
        })
        .collect()
}

/// The URL of `user`'s feed.
async fn feed_url(app: &TestApp, user: &User) -> String {
    let body = expect_status(
        app.get("/api/v1/me/calendar-feed", &user.token).await,
        StatusCode::OK,
    )
    .await;
    body["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url: {body}"))
        .to_string()
}

/// Fetches a feed without credentials and parses it.
async fn read_feed(app: &TestApp, url: &str) -> Vec<Event> {
    let response = app.client.get(url).send().await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let status = response.status();
    let ics = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{ics}");
    assert_eq!(
        content_type.as_deref(),
        Some("text/calendar; charset=utf-8")
    );
    parse(&ics).await
}

/// The event of appointment `id` in `events`.
fn event<'a>(events: &'a [Event], id: &str) -> &'a Event {
    let uid = format!("{id}@telemed");
    events
        .iter()
        .find(|e| e.uid == uid)
        .unwrap_or_else(|| panic!("no {uid} in {events:?}"))
}

#[tokio::test]
async fn the_feed_follows_each_change_of_an_appointment() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let day = days_ahead(3);
    let utc = |h: i64, m: i64| day + Duration::hours(h) + Duration::minutes(m);
    app.open_window(&doctor, utc(14, 0), utc(17, 0)).await;
    let first = app
        .book(&patient, &doctor.id, utc(14, 0), utc(14, 30))
        .await;
    let second = app
        .book(&patient, &doctor.id, utc(15, 0), utc(15, 45))
        .await;
    let (first, second) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );

    let url = feed_url(&app, &patient).await;
    assert!(
        url.starts_with(&format!("{}/api/v1/calendar/", app.address)),
        "{url}"
    );
    assert!(url.ends_with(".ics"), "{url}");
    assert_eq!(
        feed_url(&app, &patient).await,
        url,
        "the same URL on every request"
    );

    let events = read_feed(&app, &url).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let requested = event(&events, first).clone();
    assert_eq!((requested.start, requested.end), (utc(14, 0), utc(14, 30)));
    assert_eq!(
        (requested.status.as_str(), requested.sequence),
        ("TENTATIVE", 0)
    );
    let other = event(&events, second);
    assert_eq!((other.start, other.end), (utc(15, 0), utc(15, 45)));
    assert_eq!((other.status.as_str(), other.sequence), ("TENTATIVE", 0));

    expect_status(
        app.act(&doctor, first, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let confirmed = event(&read_feed(&app, &url).await, first).clone();
    assert_eq!(confirmed.status, "CONFIRMED");
    assert!(confirmed.sequence > requested.sequence, "{confirmed:?}");

    expect_status(
        app.reschedule(&doctor, first, utc(16, 0), utc(16, 30))
            .await,
        StatusCode::OK,
    )
    .await;
    let moved = event(&read_feed(&app, &url).await, first).clone();
    assert_eq!((moved.start, moved.end), (utc(16, 0), utc(16, 30)));
    assert_eq!(moved.status, "TENTATIVE");
    assert!(moved.sequence > confirmed.sequence, "{moved:?}");

    expect_status(
        app.act(&patient, first, "confirm", &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let reconfirmed = event(&read_feed(&app, &url).await, first).clone();
    assert_eq!(reconfirmed.status, "CONFIRMED");
    assert!(reconfirmed.sequence > moved.sequence, "{reconfirmed:?}");

    let reason = json!({ "reason": "travelling" });
    expect_status(
        app.act(&patient, second, "cancel", &reason).await,
        StatusCode::OK,
    )
    .await;
    let events = read_feed(&app, &url).await;
    let cancelled = event(&events, second);
    assert_eq!(cancelled.status, "CANCELLED");
    assert!(cancelled.sequence > 0, "{cancelled:?}");
    assert_eq!(
        event(&events, first),
        &reconfirmed,
        "the other one is unchanged"
    );

    // The doctor's own feed tells the same story.
    let doctors = read_feed(&app, &feed_url(&app, &doctor).await).await;
    assert_eq!(doctors.len(), 2);
    assert_eq!(event(&doctors, first), &reconfirmed);
    assert_eq!(event(&doctors, second), cancelled);
}

#[tokio::test]
async fn a_revoked_feed_stops_working_and_a_new_secret_url_replaces_it() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let stranger = app.patient().await;
    let day = days_ahead(3);
    app.open_window(
        &doctor,
        day + Duration::hours(14),
        day + Duration::hours(17),
    )
    .await;
    let start = day + Duration::hours(14);
    app.book(&patient, &doctor.id, start, start + Duration::minutes(30))
        .await;

    let old = feed_url(&app, &patient).await;
    assert_eq!(read_feed(&app, &old).await.len(), 1);
    // Another user's feed has none of it, and their URL is a different secret.
    let theirs = feed_url(&app, &stranger).await;
    assert_ne!(theirs, old);
    assert!(read_feed(&app, &theirs).await.is_empty());

    let revoked = app.delete("/api/v1/me/calendar-feed", &patient.token).await;
    assert_eq!(
        expect_status(revoked, StatusCode::NO_CONTENT).await,
        Value::Null
    );
    let gone = app.client.get(&old).send().await.unwrap();
    expect_problem(gone, StatusCode::NOT_FOUND).await;

    let new = feed_url(&app, &patient).await;
    assert_ne!(new, old);
    assert_eq!(read_feed(&app, &new).await.len(), 1);
    // The stranger's feed survives the patient's revocation.
    assert!(read_feed(&app, &theirs).await.is_empty());
    let guessed = app.url("/api/v1/calendar/not-a-real-token.ics");
    expect_problem(
        app.client.get(&guessed).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn a_feed_holds_only_the_users_own_consultations_even_for_admins() {
    let app = spawn_app().await;
    let doctor = app.doctor().await;
    let patient = app.patient().await;
    let admin = app.staff("admin").await;
    let start = crate::scheduling::days_ahead(3) + time::Duration::hours(14);
    app.open_window(&doctor, start, start + time::Duration::hours(1))
        .await;
    app.book(
        &patient,
        &doctor.id,
        start,
        start + time::Duration::minutes(30),
    )
    .await;

    let feed = |user: &crate::helpers::User| {
        let app = &app;
        let token = user.token.clone();
        async move {
            let url = expect_status(
                app.get("/api/v1/me/calendar-feed", &token).await,
                StatusCode::OK,
            )
            .await;
            let response = app
                .client
                .get(url["url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.text().await.unwrap()
        }
    };
    assert_eq!(feed(&patient).await.matches("BEGIN:VEVENT").count(), 1);
    assert_eq!(feed(&doctor).await.matches("BEGIN:VEVENT").count(), 1);
    let admin_feed = feed(&admin).await;
    assert!(admin_feed.starts_with("BEGIN:VCALENDAR"), "{admin_feed}");
    assert_eq!(
        admin_feed.matches("BEGIN:VEVENT").count(),
        0,
        "{admin_feed}"
    );
}
