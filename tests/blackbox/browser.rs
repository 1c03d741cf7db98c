//! A real browser call: two headless Chromium pages (Debian's `chromium`, driven by
//! `playwright-core` in `tests/node/browser-call.mjs`) with fake camera and microphone, as the
//! doctor and the patient of a confirmed appointment, exchange offer, answer and ICE only
//! through Telemed's WebSocket signaling. The connection must reach `connected` and media must
//! flow both ways (inbound-rtp bytes grow on each side); the hang-up ends the call in the log.

use std::process::Stdio;

use serde_json::{Value, json};

use crate::calls::CallSetup;

#[tokio::test]
async fn two_browsers_connect_through_our_signaling_and_media_flows_both_ways() {
    let s = CallSetup::new(|_| {}).await;
    let call_id = s.start_call(&s.doctor).await;
    let ice = crate::helpers::expect_status(
        s.now.get("/api/v1/ice-servers", &s.doctor.token).await,
        reqwest::StatusCode::OK,
    )
    .await;
    let node = std::env::var("TELEMED_NODE").unwrap_or_else(|_| "node".to_string());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/node/browser-call.mjs"
    );
    let child = tokio::process::Command::new(&node)
        .arg(script)
        .arg(&s.now.address)
        .arg(&call_id)
        .arg(&s.doctor.token)
        .arg(&s.patient.token)
        .arg(ice["ice_servers"].to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {node} (scripts/test installs it): {e}"));
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .expect("the browser call took over two minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!(
                "no result ({e}); stdout: {stdout}; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    eprintln!("browser call: {result}");
    assert!(result["error"].is_null(), "{result}");
    for side in ["caller", "callee"] {
        assert_eq!(result[side]["state"], "connected", "{result}");
        assert!(
            result[side]["after"].as_u64() > result[side]["before"].as_u64(),
            "{side} received no media: {result}"
        );
        assert_eq!(result[side]["errors"], json!([]), "{result}");
    }
    assert_eq!(result["endedWith"], "user_hangup", "{result}");

    let log = s.log(&s.patient).await;
    let call = &log["calls"][0];
    assert_eq!(call["call_id"], call_id.as_str());
    assert_eq!(call["status"], "ended");
    assert_eq!(call["end_reason"], "user_hangup");
    assert!(call["answered_at"].is_string(), "{call}");
}
