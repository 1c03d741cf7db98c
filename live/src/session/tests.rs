//! The session's resume and dedupe, over an in-memory store and an in-memory WebSocket (a
//! pair of channels), with the real hub and the real WebSocket loop.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context as TaskContext, Poll};

use axum::extract::ws::Message;
use futures::channel::mpsc;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use telemed_domain::{Role, UserId};

use super::*;
use crate::context::Page;
use crate::hub::Hub;
use crate::protocol::ClientEvent;
use crate::ws::{Socket, serve};

/// A store of deliveries and its head; topic access and commands are refused (unused here).
struct Store {
    events: Mutex<Vec<Arc<Delivery>>>,
}

impl Store {
    fn head(&self) -> Position {
        let events = self.events.lock().unwrap();
        events
            .last()
            .and_then(|d| d.position)
            .unwrap_or(Position::START)
    }
}

impl Context for Store {
    async fn replay_head(&self) -> Result<Position, ApiError> {
        Ok(self.head())
    }

    async fn replay_page(&self, after: Position) -> Result<Option<Page>, ApiError> {
        let page: Vec<Arc<Delivery>> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.position.is_some_and(|p| p > after))
            .take(2)
            .cloned()
            .collect();
        Ok(page
            .last()
            .and_then(|d| d.position)
            .map(|last| (last, page)))
    }

    async fn may_follow(&self, _: &Identity, _: Topic) -> Result<(), ApiError> {
        Ok(())
    }

    async fn execute(&self, _: &Identity, _: ClientEvent) -> Result<Value, ApiError> {
        Err(ApiError::NotFound("not in this test".into()))
    }

    fn limits_enabled(&self) -> bool {
        false
    }
}

/// The server's end of an in-memory WebSocket.
struct Duplex {
    to_client: mpsc::UnboundedSender<Message>,
    from_client: mpsc::UnboundedReceiver<Message>,
}

impl Stream for Duplex {
    type Item = Result<Message, std::convert::Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.from_client.poll_next_unpin(cx).map(|m| m.map(Ok))
    }
}

impl Sink<Message> for Duplex {
    type Error = mpsc::SendError;
    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        self.to_client.poll_ready_unpin(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.to_client.start_send_unpin(item)
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        self.to_client.poll_flush_unpin(cx)
    }
    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<(), Self::Error>> {
        self.to_client.poll_close_unpin(cx)
    }
}

/// A connected client: the hub, the store, and its ends of the socket.
struct Client {
    hub: Arc<Hub>,
    store: Arc<Store>,
    user: UserId,
    send: mpsc::UnboundedSender<Message>,
    receive: mpsc::UnboundedReceiver<Message>,
}

fn at(n: i64) -> Position {
    Position::new(n as u64, n)
}

fn event(user: UserId, n: i64) -> Arc<Delivery> {
    named("chat:read", user, n)
}

/// Event `name` of the stored event at `n`, for `user`.
fn named(name: &'static str, user: UserId, n: i64) -> Arc<Delivery> {
    let data = json!({ "n": n, "position": at(n).to_string() });
    Arc::new(Delivery::new(name, data, at(n), vec![Topic::User(user)]))
}

fn patient(user: UserId) -> Identity {
    Identity {
        user,
        role: Role::Patient,
        sid: uuid::Uuid::new_v4(),
        expires_at: u64::MAX / 2,
    }
}

/// An outbound that records the names of the events it is given.
#[derive(Default)]
struct Recorder(Vec<&'static str>);

impl Outbound for Recorder {
    async fn deliver(&mut self, delivery: &Delivery) -> bool {
        self.0.push(delivery.event);
        true
    }
}

impl Client {
    /// Connects after `stored` events are in the store.
    fn connect(stored: i64) -> Self {
        let user = UserId::new();
        let hub = Hub::new(64);
        let store = Arc::new(Store {
            events: Mutex::new((1..=stored).map(|n| event(user, n)).collect()),
        });
        hub.advance(store.head());
        let identity = patient(user);
        let membership = hub.join([Topic::User(user)]);
        let floor = store.head();
        let session = Session::new(
            store.clone(),
            identity,
            membership,
            floor,
            VecDeque::new(),
            None,
        );
        let (to_client, receive) = mpsc::unbounded();
        let (send, from_client) = mpsc::unbounded();
        tokio::spawn(serve(
            Socket(Duplex {
                to_client,
                from_client,
            }),
            session,
        ));
        Self {
            hub,
            store,
            user,
            send,
            receive,
        }
    }

    /// Commits event `n` to the store and publishes it live.
    fn commit(&self, n: i64) {
        let delivery = event(self.user, n);
        self.store.events.lock().unwrap().push(delivery.clone());
        self.hub.publish(&[delivery]);
        self.hub.advance(at(n));
    }

    fn resume(&self, after: i64) {
        let frame =
            json!({ "event": "resume", "data": { "after": at(after).to_string() }, "ack": 1 });
        self.send
            .unbounded_send(Message::text(frame.to_string()))
            .unwrap();
    }

    /// The next frame: `n` for an event, `-replayed` for the resume's ack.
    async fn next(&mut self) -> i64 {
        let message = tokio::time::timeout(Duration::from_secs(5), self.receive.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open");
        let Message::Text(text) = message else {
            panic!("not text: {message:?}")
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        match frame["event"].as_str() {
            // A resume's ack counts what it replayed; any other ack is 0.
            Some("ack") => -frame["data"]["replayed"].as_i64().unwrap_or(0),
            _ => frame["data"]["n"].as_i64().expect("an event"),
        }
    }

    async fn frames(&mut self, count: usize) -> Vec<i64> {
        let mut out = Vec::new();
        for _ in 0..count {
            out.push(self.next().await);
        }
        out
    }
}

#[tokio::test]
async fn replay_then_ack_then_live() {
    let mut client = Client::connect(5);
    client.resume(2);
    assert_eq!(client.frames(4).await, vec![3, 4, 5, -3]);
    client.commit(6);
    assert_eq!(client.next().await, 6);
}

#[tokio::test]
async fn events_sent_live_before_a_resume_are_not_replayed() {
    let mut client = Client::connect(3);
    client.commit(4);
    client.commit(5);
    assert_eq!(client.frames(2).await, vec![4, 5]);
    client.resume(1);
    // 2 and 3 were missed; 4 and 5 went out live already.
    assert_eq!(client.frames(3).await, vec![2, 3, -2]);
    client.commit(6);
    assert_eq!(client.next().await, 6);
}

#[tokio::test]
async fn a_resume_overlapping_live_events_sends_each_position_once_in_order() {
    let mut client = Client::connect(4);
    // Committed to the store (the replay will see them) and queued live at once.
    client.commit(5);
    client.commit(6);
    client.resume(0);
    client.commit(7);
    // The replay first, then its ack; the live copies of what it covered are dropped.
    assert_eq!(client.frames(8).await, vec![1, 2, 3, 4, 5, 6, 7, -7]);
    client.commit(8);
    assert_eq!(client.next().await, 8);
}

#[tokio::test]
async fn live_events_waiting_before_a_client_event_go_out_before_its_answer() {
    let mut client = Client::connect(2);
    client.commit(3);
    let frame = json!({ "event": "subscribe", "data": { "topic": "audit" }, "ack": 1 });
    client
        .send
        .unbounded_send(Message::text(frame.to_string()))
        .unwrap();
    // 3 first; the (refused: a patient) subscribe's answer after it.
    assert_eq!(client.frames(2).await, vec![3, 0]);
}

#[tokio::test]
async fn a_resume_between_two_events_of_one_stored_event_sends_the_second_once() {
    let user = UserId::new();
    let hub = Hub::new(64);
    let store = Arc::new(Store {
        events: Mutex::new(Vec::new()),
    });
    let membership = hub.join([Topic::User(user)]);
    let mut session = Session::new(
        store.clone(),
        patient(user),
        membership,
        Position::START,
        VecDeque::new(),
        None,
    );
    // One stored event makes an `appointment:updated` and a `notification` at one position.
    let both = [
        named("appointment:updated", user, 1),
        named("notification", user, 1),
    ];
    store.events.lock().unwrap().extend(both.iter().cloned());
    hub.publish(&both);
    hub.advance(at(1));
    let first = session.next_live().await.unwrap();
    assert_eq!(first.event, "appointment:updated");
    // The resume is handled before the notification leaves the live queue.
    let mut out = Recorder::default();
    let after = json!({ "after": at(0).to_string() });
    let ack = session.handle("resume", after, &mut out).await.unwrap();
    assert_eq!(out.0, vec!["notification"], "replayed");
    assert_eq!(ack, json!({ "replayed": 1 }));
    // Its live copy is not sent again: the next live event is the next stored one.
    let next = named("chat:read", user, 2);
    store.events.lock().unwrap().push(next.clone());
    hub.publish(&[next]);
    let live = session.next_live().await.unwrap();
    assert_eq!(live.position, Some(at(2)));
}

#[tokio::test]
async fn a_resume_from_the_newest_position_sent_replays_nothing() {
    let mut client = Client::connect(3);
    client.resume(0);
    assert_eq!(client.frames(4).await, vec![1, 2, 3, -3]);
    client.commit(4);
    assert_eq!(client.next().await, 4);
    client.resume(4);
    assert_eq!(client.next().await, 0);
}
