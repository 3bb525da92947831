//! The agent's [`Event`] as Flume's `AvroFlumeEvent`, whose schema and encoding live in
//! [`avro_ipc::event`]: borrowed out to what the avro sink and the Kafka sink encode, moved in
//! (no copy) from what the avro source and the Kafka source decoded.
//!
//! Used where Flume puts events on the wire in Avro: the Kafka sink and source with
//! `useFlumeEventFormat = true`, and the Avro RPC source and sink (`AvroSourceProtocol`),
//! whose messages carry the same record.

use crate::event::Event;
use avro_ipc::{AvroFlumeEvent, EventRef};

pub use avro_ipc::event::{AvroEventError, AVRO_FLUME_EVENT_SCHEMA};

/// The event as the protocol crate encodes it (borrowed, no copy).
pub fn wire(event: &Event) -> EventRef<'_> {
    EventRef {
        headers: &event.headers,
        body: &event.body,
    }
}

/// The events of a batch as the protocol crate encodes them.
pub fn wire_batch(events: &[Event]) -> Vec<EventRef<'_>> {
    events.iter().map(wire).collect()
}

/// The decoded event as the agent's (moved, no copy); headers sorted by key.
pub fn from_wire(event: AvroFlumeEvent) -> Event {
    Event {
        headers: event.headers,
        body: event.body,
    }
}

/// The event as a bare Avro binary datum. A header given twice keeps its last value (Avro
/// maps, like Flume's, have one value per key).
pub fn encode(event: &Event) -> Vec<u8> {
    avro_ipc::event::encode(wire(event))
}

/// An event from a bare Avro binary datum; the whole input must be one datum.
pub fn decode(bytes: &[u8]) -> Result<Event, AvroEventError> {
    avro_ipc::event::decode(bytes).map(from_wire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_event_round_trips_with_headers_sorted() {
        let e = Event::new(vec![0u8, 255, 7])
            .with_header("b", "2")
            .with_header("a", "1");
        let back = decode(&encode(&e)).expect("decode");
        assert_eq!(
            back.headers,
            vec![
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(back.body, e.body);
        let err = decode(&[0x02]).expect_err("truncated");
        assert!(
            err.to_string().starts_with("not a Flume AvroFlumeEvent"),
            "{err}"
        );
    }
}
