//! Loopback ports for the agent's unit tests that tests running in parallel cannot take from
//! one another. Binding port 0 and releasing it hands out a port that anybody may take next
//! (another test's listener, or a client's ephemeral port); these helpers either retry when
//! that happens or keep the port bound for as long as the test needs it.

use crate::source::{BoxFuture, EventDrivenSource, SourceError};
use crate::stop::Stop;

/// Starts the event-driven source `make(port)` builds, on a free loopback port; when a parallel
/// test takes the chosen port first, it picks another. Returns the port and the serving future.
///
/// # Panics
/// If the source fails to start for another reason, or 20 ports in a row were taken.
pub(crate) async fn start_on_free_port(
    mut make: impl FnMut(u16) -> Box<dyn EventDrivenSource>,
    stop: &Stop,
) -> (u16, BoxFuture<()>) {
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .expect("a loopback port")
            .port();
        match make(port).start(stop.clone()).await {
            Ok(serve) => return (port, serve),
            Err(SourceError::Bind { error, .. })
                if error.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => panic!("the source did not start: {e}"),
        }
    }
    panic!("20 loopback ports in a row were taken before the source could bind them");
}

/// A loopback port that refuses connections for as long as the returned socket lives: the
/// socket is bound but not listening, so connecting is refused and nobody else can bind it.
///
/// # Panics
/// If no socket can be bound.
pub(crate) fn refused_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind a loopback port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_port_refuses_and_cannot_be_taken() {
        let (_held, port) = refused_port();
        let err = std::net::TcpStream::connect(("127.0.0.1", port)).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        let err = std::net::TcpListener::bind(("127.0.0.1", port)).expect_err("taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    }
}
