//! Free TCP ports on the loopback interface.

use std::net::TcpListener;

/// Returns a loopback port that was free a moment ago, so a child process can be told which port to bind.
///
/// The port is only reserved while this function runs: another process may
/// take it before the caller binds it. Callers that start a server on it
/// (such as [`RedisServer`](crate::RedisServer)) retry with a new port when
/// the bind fails.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local_addr of a bound listener")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        // Nothing holds it any more, so we can bind it ourselves.
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
