//! Time zones: weekly windows in a doctor's wall-clock time across both 2027 New York DST
//! transitions, slots rendered in other zones, and bookings at the edge of the gap.
//!
//! Expected instants were computed by hand and checked with Python's `zoneinfo`. In 2027
//! New York springs forward on 14 March (02:00 → 03:00, 07:00Z) and falls back on 7 November
//! (02:00 → 01:00, 06:00Z); Lord Howe is on +11:00 from early October to 4 April 2027
//! (02:00 → 01:30, 2027-04-03T15:00Z), +10:30 otherwise; Kolkata is +05:30 all year.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{TestApp, TestDb, User, expect_status, spawn_app_on};
use crate::scheduling::{at, instant, rfc3339};

/// An app whose horizon reaches 2027, and a doctor in New York.
async fn eastern_practice() -> (TestApp, User) {
    let app = spawn_app_on(TestDb::create().await, |c| {
        c.booking_horizon = Duration::days(3650);
    })
    .await;
    let doctor = app
        .register("doctor", "Dr. Eastern", "America/New_York")
        .await;
    (app, doctor)
}

/// Every day of the week, 01:00–04:00 and 09:00–12:00, from `from` to `to`.
fn every_day(from: &str, to: &str) -> Value {
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let rules: Vec<Value> = days
        .iter()
        .flat_map(|day| {
            [
                json!({ "weekday": day, "start": "01:00", "end": "04:00" }),
                json!({ "weekday": day, "start": "09:00", "end": "12:00" }),
            ]
        })
        .collect();
    json!({ "weekly": rules, "from": from, "to": to })
}

/// The `(start, end)` of the windows of a 201 answer, in start order.
fn bounds(opened: &Value) -> Vec<(String, String)> {
    let mut bounds: Vec<_> = opened["windows"]
        .as_array()
        .unwrap_or_else(|| panic!("no windows: {opened}"))
        .iter()
        .map(|w| {
            (
                w["start"].as_str().unwrap().to_string(),
                w["end"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    bounds.sort();
    bounds
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, e)| (s.to_string(), e.to_string()))
        .collect()
}

/// The slots of `duration` minutes in `[from, to)` read with `tz`, as
/// `(start, local_start, local_end)`.
async fn local_slots(
    app: &TestApp,
    doctor: &User,
    reader: &User,
    (from, to): (&str, &str),
    duration: &str,
    tz: &str,
) -> Vec<(String, String, String)> {
    let query = [
        ("from", from),
        ("to", to),
        ("duration", duration),
        ("tz", tz),
    ];
    let body = expect_status(
        app.availability_raw(&doctor.id, &reader.token, &query)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        body["timezone"], "America/New_York",
        "the doctor's zone, whatever `tz` is"
    );
    body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |key: &str| {
                s[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("no {key}: {s}"))
                    .to_string()
            };
            // The local rendering is the same instant as the UTC one.
            assert_eq!(instant(&field("local_start")), at(&s["start"]), "{s}");
            assert_eq!(instant(&field("local_end")), at(&s["end"]), "{s}");
            (
                rfc3339(at(&s["start"])),
                field("local_start"),
                field("local_end"),
            )
        })
        .collect()
}

fn triples(expected: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test]
async fn weekly_windows_follow_new_york_wall_clock_time_across_both_2027_transitions() {
    let (app, doctor) = eastern_practice().await;

    let spring = expect_status(
        app.open_availability(&doctor, &every_day("2027-03-13", "2027-03-15"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        bounds(&spring),
        pairs(&[
            // Saturday, EST (-05:00).
            ("2027-03-13T06:00:00Z", "2027-03-13T09:00:00Z"),
            ("2027-03-13T14:00:00Z", "2027-03-13T17:00:00Z"),
            // Sunday: 01:00 EST to 04:00 EDT is two hours; 09:00 is EDT.
            ("2027-03-14T06:00:00Z", "2027-03-14T08:00:00Z"),
            ("2027-03-14T13:00:00Z", "2027-03-14T16:00:00Z"),
            // Monday, EDT (-04:00).
            ("2027-03-15T05:00:00Z", "2027-03-15T08:00:00Z"),
            ("2027-03-15T13:00:00Z", "2027-03-15T16:00:00Z"),
        ]),
        "{spring}"
    );
    assert_eq!(spring["skipped"], json!([]), "{spring}");

    let autumn = expect_status(
        app.open_availability(&doctor, &every_day("2027-11-06", "2027-11-08"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        bounds(&autumn),
        pairs(&[
            // Saturday, EDT.
            ("2027-11-06T05:00:00Z", "2027-11-06T08:00:00Z"),
            ("2027-11-06T13:00:00Z", "2027-11-06T16:00:00Z"),
            // Sunday: 01:00 is ambiguous, the start takes the earlier (EDT) instant; 04:00 EST;
            // four hours.
            ("2027-11-07T05:00:00Z", "2027-11-07T09:00:00Z"),
            ("2027-11-07T14:00:00Z", "2027-11-07T17:00:00Z"),
            // Monday, EST.
            ("2027-11-08T06:00:00Z", "2027-11-08T09:00:00Z"),
            ("2027-11-08T14:00:00Z", "2027-11-08T17:00:00Z"),
        ]),
        "{autumn}"
    );
    assert_eq!(autumn["skipped"], json!([]), "{autumn}");

    // The slots agree with the windows: 60-minute slots over the whole of both weekends.
    let patient = app.patient().await;
    let spring_slots = app
        .free_starts(
            &doctor.id,
            &patient.token,
            instant("2027-03-13T00:00:00Z"),
            instant("2027-03-16T12:00:00Z"),
            60,
        )
        .await;
    assert_eq!(spring_slots.len(), 3 + 3 + 2 + 3 + 3 + 3);
    let autumn_slots = app
        .free_starts(
            &doctor.id,
            &patient.token,
            instant("2027-11-06T00:00:00Z"),
            instant("2027-11-09T12:00:00Z"),
            60,
        )
        .await;
    assert_eq!(autumn_slots.len(), 3 + 3 + 4 + 3 + 3 + 3);
}

#[tokio::test]
async fn slots_read_from_kolkata_and_lord_howe_carry_those_zones_offsets_at_each_instant() {
    let (app, doctor) = eastern_practice().await;
    for day in ["2027-03-14", "2027-11-07"] {
        let response = app.open_availability(&doctor, &every_day(day, day)).await;
        expect_status(response, StatusCode::CREATED).await;
    }
    let reader = app.patient().await;

    let spring = ("2027-03-14T05:00:00Z", "2027-03-14T09:00:00Z");
    assert_eq!(
        local_slots(&app, &doctor, &reader, spring, "60", "Asia/Kolkata").await,
        triples(&[
            (
                "2027-03-14T06:00:00Z",
                "2027-03-14T11:30:00+05:30",
                "2027-03-14T12:30:00+05:30"
            ),
            (
                "2027-03-14T07:00:00Z",
                "2027-03-14T12:30:00+05:30",
                "2027-03-14T13:30:00+05:30"
            ),
        ])
    );
    assert_eq!(
        local_slots(&app, &doctor, &reader, spring, "60", "Australia/Lord_Howe").await,
        triples(&[
            (
                "2027-03-14T06:00:00Z",
                "2027-03-14T17:00:00+11:00",
                "2027-03-14T18:00:00+11:00"
            ),
            (
                "2027-03-14T07:00:00Z",
                "2027-03-14T18:00:00+11:00",
                "2027-03-14T19:00:00+11:00"
            ),
        ])
    );
    // In the doctor's own zone the gap shows: 01:00 EST, then 03:00 EDT.
    assert_eq!(
        local_slots(&app, &doctor, &reader, spring, "60", "America/New_York").await,
        triples(&[
            (
                "2027-03-14T06:00:00Z",
                "2027-03-14T01:00:00-05:00",
                "2027-03-14T03:00:00-04:00"
            ),
            (
                "2027-03-14T07:00:00Z",
                "2027-03-14T03:00:00-04:00",
                "2027-03-14T04:00:00-04:00"
            ),
        ])
    );

    let autumn = ("2027-11-07T04:00:00Z", "2027-11-07T10:00:00Z");
    assert_eq!(
        local_slots(&app, &doctor, &reader, autumn, "60", "Asia/Kolkata").await,
        triples(&[
            (
                "2027-11-07T05:00:00Z",
                "2027-11-07T10:30:00+05:30",
                "2027-11-07T11:30:00+05:30"
            ),
            (
                "2027-11-07T06:00:00Z",
                "2027-11-07T11:30:00+05:30",
                "2027-11-07T12:30:00+05:30"
            ),
            (
                "2027-11-07T07:00:00Z",
                "2027-11-07T12:30:00+05:30",
                "2027-11-07T13:30:00+05:30"
            ),
            (
                "2027-11-07T08:00:00Z",
                "2027-11-07T13:30:00+05:30",
                "2027-11-07T14:30:00+05:30"
            ),
        ])
    );
    assert_eq!(
        local_slots(&app, &doctor, &reader, autumn, "60", "Australia/Lord_Howe").await,
        triples(&[
            (
                "2027-11-07T05:00:00Z",
                "2027-11-07T16:00:00+11:00",
                "2027-11-07T17:00:00+11:00"
            ),
            (
                "2027-11-07T06:00:00Z",
                "2027-11-07T17:00:00+11:00",
                "2027-11-07T18:00:00+11:00"
            ),
            (
                "2027-11-07T07:00:00Z",
                "2027-11-07T18:00:00+11:00",
                "2027-11-07T19:00:00+11:00"
            ),
            (
                "2027-11-07T08:00:00Z",
                "2027-11-07T19:00:00+11:00",
                "2027-11-07T20:00:00+11:00"
            ),
        ])
    );
    // In New York 01:00 happens twice.
    assert_eq!(
        local_slots(&app, &doctor, &reader, autumn, "60", "America/New_York").await,
        triples(&[
            (
                "2027-11-07T05:00:00Z",
                "2027-11-07T01:00:00-04:00",
                "2027-11-07T01:00:00-05:00"
            ),
            (
                "2027-11-07T06:00:00Z",
                "2027-11-07T01:00:00-05:00",
                "2027-11-07T02:00:00-05:00"
            ),
            (
                "2027-11-07T07:00:00Z",
                "2027-11-07T02:00:00-05:00",
                "2027-11-07T03:00:00-05:00"
            ),
            (
                "2027-11-07T08:00:00Z",
                "2027-11-07T03:00:00-05:00",
                "2027-11-07T04:00:00-05:00"
            ),
        ])
    );

    // Lord Howe leaves summer time at 2027-04-03T15:00Z: the offset changes between slots, and
    // within one (14:30Z–15:00Z ends at 01:30 after starting at 01:30).
    app.open_window(
        &doctor,
        instant("2027-04-03T14:00:00Z"),
        instant("2027-04-03T16:00:00Z"),
    )
    .await;
    let april = ("2027-04-03T14:00:00Z", "2027-04-03T16:00:00Z");
    assert_eq!(
        local_slots(&app, &doctor, &reader, april, "30", "Australia/Lord_Howe").await,
        triples(&[
            (
                "2027-04-03T14:00:00Z",
                "2027-04-04T01:00:00+11:00",
                "2027-04-04T01:30:00+11:00"
            ),
            (
                "2027-04-03T14:30:00Z",
                "2027-04-04T01:30:00+11:00",
                "2027-04-04T01:30:00+10:30"
            ),
            (
                "2027-04-03T15:00:00Z",
                "2027-04-04T01:30:00+10:30",
                "2027-04-04T02:00:00+10:30"
            ),
            (
                "2027-04-03T15:30:00Z",
                "2027-04-04T02:00:00+10:30",
                "2027-04-04T02:30:00+10:30"
            ),
        ])
    );
}

#[tokio::test]
async fn a_booking_at_the_first_instant_after_the_spring_forward_gap_succeeds() {
    let (app, doctor) = eastern_practice().await;
    let response = app
        .open_availability(&doctor, &every_day("2027-03-14", "2027-03-14"))
        .await;
    expect_status(response, StatusCode::CREATED).await;
    let patient = app.patient().await;

    // 07:00Z is 03:00 EDT, the instant right after 01:59:59 EST.
    let start = instant("2027-03-14T07:00:00Z");
    let booked = app
        .book(&patient, &doctor.id, start, start + Duration::minutes(30))
        .await;
    assert_eq!(booked["start"], "2027-03-14T07:00:00Z");
    assert_eq!(booked["end"], "2027-03-14T07:30:00Z");
    let free = app
        .free_starts(
            &doctor.id,
            &patient.token,
            instant("2027-03-14T05:00:00Z"),
            instant("2027-03-14T09:00:00Z"),
            30,
        )
        .await;
    assert_eq!(
        free,
        [
            "2027-03-14T06:00:00Z",
            "2027-03-14T06:30:00Z",
            "2027-03-14T07:30:00Z"
        ]
        .map(instant)
    );
    // The hour before the gap is bookable too: 01:00–02:00 EST.
    let before = instant("2027-03-14T06:00:00Z");
    app.book(
        &app.patient().await,
        &doctor.id,
        before,
        before + Duration::hours(1),
    )
    .await;
}

#[tokio::test]
async fn weekly_rules_inside_or_across_a_dst_transition_are_skipped_shortened_or_widened() {
    let (app, doctor) = eastern_practice().await;

    // 02:00–02:45 on 14 March 2027 never happens in New York.
    let body = json!({
        "weekly": [{ "weekday": "sun", "start": "02:00", "end": "02:45" }],
        "from": "2027-03-14", "to": "2027-03-14"
    });
    let opened = expect_status(
        app.open_availability(&doctor, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(opened["windows"], json!([]), "{opened}");
    let skipped = opened["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{opened}");
    assert_eq!(skipped[0]["date"], "2027-03-14");
    assert_eq!(skipped[0]["weekday"], "sun");
    let reason = skipped[0]["reason"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("daylight"), "{opened}");

    // A bound inside the gap moves to its end (03:00 EDT, 07:00Z): both windows are shortened.
    let body = json!({
        "weekly": [
            { "weekday": "sun", "start": "01:30", "end": "02:30" },
            { "weekday": "sun", "start": "02:30", "end": "03:30" }
        ],
        "from": "2027-03-14", "to": "2027-03-14"
    });
    let opened = expect_status(
        app.open_availability(&doctor, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        bounds(&opened),
        pairs(&[
            ("2027-03-14T06:30:00Z", "2027-03-14T07:00:00Z"),
            ("2027-03-14T07:00:00Z", "2027-03-14T07:30:00Z"),
        ]),
        "{opened}"
    );
    assert_eq!(opened["skipped"], json!([]));

    // At fall-back 01:15–01:45 starts at the first 01:15 (EDT) and ends at the second 01:45
    // (EST): ninety minutes.
    let body = json!({
        "weekly": [{ "weekday": "sun", "start": "01:15", "end": "01:45" }],
        "from": "2027-11-07", "to": "2027-11-07"
    });
    let opened = expect_status(
        app.open_availability(&doctor, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        bounds(&opened),
        pairs(&[("2027-11-07T05:15:00Z", "2027-11-07T06:45:00Z")]),
        "{opened}"
    );
}
