//! The observer hook (metrics): it is told of every message sent and received, every refusal
//! with its reason, every save and every event, on a live cluster.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use almost_raft::{Body, Envelope, Error, ErrorKind, Event, MemStorage, Observer, Role};
use support::net::{Net, ids};

#[derive(Default)]
struct Seen {
    sent: Vec<Body>,
    received: Vec<Body>,
    refused: Vec<ErrorKind>,
    saves: Vec<Duration>,
    events: Vec<Event>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl Observer for Recorder {
    fn received(&self, message: &Envelope) {
        self.0.lock().unwrap().received.push(message.body);
    }
    fn sent(&self, message: &Envelope) {
        self.0.lock().unwrap().sent.push(message.body);
    }
    fn refused(&self, error: &Error) {
        self.0.lock().unwrap().refused.push(error.kind());
    }
    fn saved(&self, took: Duration) {
        self.0.lock().unwrap().saves.push(took);
    }
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().events.push(event.clone());
    }
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_messages_refusals_saves_and_events() {
    let net = Arc::new(Net::default());
    let all = ids(3);
    let recorders: Vec<Recorder> = all.iter().map(|_| Recorder::default()).collect();
    for (id, recorder) in all.iter().zip(&recorders) {
        let builder = net
            .builder(id, &all)
            .storage(MemStorage::new())
            .observer(recorder.clone());
        net.start(builder, id);
    }
    let elected = net.agreed_leader(&all).await;
    let leader = elected.leader.unwrap();
    let at = all.iter().position(|id| *id == leader).unwrap();
    // A few heartbeat rounds, then bytes that are no message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = net.node(&leader).receive(b"\x03 not a message");
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::MalformedMessage);

    let seen = recorders[at].0.lock().unwrap();
    assert!(seen.sent.iter().any(|b| matches!(b, Body::Vote { .. })));
    assert!(
        seen.sent
            .iter()
            .any(|b| matches!(b, Body::Heartbeat { .. }))
    );
    assert!(
        seen.received
            .iter()
            .any(|b| matches!(b, Body::VoteReply { granted: true }))
    );
    assert!(
        seen.received
            .iter()
            .any(|b| matches!(b, Body::HeartbeatReply { .. }))
    );
    assert_eq!(seen.refused, [ErrorKind::MalformedMessage]);
    assert!(!seen.saves.is_empty(), "the vote for itself was saved");
    let won = Event::RoleChanged {
        role: Role::Leader,
        term: elected.term,
    };
    assert!(seen.events.contains(&won), "{:?}", seen.events);
    assert!(seen.events.contains(&Event::LeaseChanged {
        held: true,
        term: elected.term
    }));
}
