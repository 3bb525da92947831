//! The agent's [`Event`] as Flume's `ThriftFlumeEvent` of [`thrift_rpc`]: borrowed out to what
//! the thrift sink encodes, moved in (no copy) from what the thrift source decoded.

use crate::event::Event;
use thrift_rpc::{EventRef, ThriftFlumeEvent};

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

/// The decoded event as the agent's (moved, no copy); headers in wire order.
pub fn from_wire(event: ThriftFlumeEvent) -> Event {
    Event {
        headers: event.headers,
        body: event.body,
    }
}

/// The decoded events of a call as the agent's.
pub fn from_wire_batch(events: Vec<ThriftFlumeEvent>) -> Vec<Event> {
    events.into_iter().map(from_wire).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_keep_headers_in_order_and_the_body() {
        let e = Event::new(vec![0u8, 255])
            .with_header("b", "2")
            .with_header("a", "1");
        let r = wire(&e);
        assert_eq!(r.headers, &e.headers[..]);
        assert_eq!(r.body, &[0u8, 255][..]);
        let decoded = ThriftFlumeEvent::new(vec![1u8])
            .with_header("z", "1")
            .with_header("y", "2");
        assert_eq!(
            from_wire_batch(vec![decoded]),
            vec![Event::new(vec![1u8])
                .with_header("z", "1")
                .with_header("y", "2")]
        );
    }
}
