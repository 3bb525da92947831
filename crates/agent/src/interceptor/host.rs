//! `host`: sets a header to this host's IP address or name.
//! Keys: `preserveExisting` (false), `useIP` (true), `hostHeader` (`host`).
//!
//! The address is what the host name resolves to (first IPv4, else first address), as Java's
//! `InetAddress.getLocalHost()` gives; it is looked up once, when the agent starts.

use super::Interceptor;
use crate::config::context::Ctx;
use crate::event::{has_header, set_header};
use file_channel::Event;
use std::net::ToSocketAddrs;

/// The host interceptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// Keep a header that is already there.
    pub preserve_existing: bool,
    /// The header to set.
    pub header: String,
    /// The value.
    pub value: String,
}

impl Host {
    /// Reads the keys and resolves the value.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        let use_ip = ctx.bool("useIP", true);
        let name = host_name();
        let value = if use_ip { host_ip(&name) } else { name };
        Self {
            preserve_existing: ctx.bool("preserveExisting", false),
            header: ctx.string_or("hostHeader", "host"),
            value,
        }
    }
}

/// The kernel's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

pub(crate) fn host_ip(name: &str) -> String {
    let addrs: Vec<_> = (name, 0u16)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    addrs
        .iter()
        .find(|ip| ip.is_ipv4())
        .or(addrs.first())
        .map_or_else(|| "127.0.0.1".to_owned(), ToString::to_string)
}

impl Interceptor for Host {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        if !(self.preserve_existing && has_header(&event, &self.header)) {
            set_header(&mut event, &self.header, self.value.clone());
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn host_name_or_ip() {
        let list = entries(&[("useIP", "false"), ("hostHeader", "h")]);
        let i = Host::parse(&ctx(&list));
        assert_eq!(i.value, host_name());
        let e = i
            .intercept(Event::new("x").with_header("h", "old"))
            .expect("kept");
        assert_eq!(e.header("h"), Some(host_name().as_str()));

        let list = entries(&[("preserveExisting", "true")]);
        let i = Host::parse(&ctx(&list));
        assert!(i.value.parse::<std::net::IpAddr>().is_ok(), "{}", i.value);
        let e = i
            .intercept(Event::new("x").with_header("host", "old"))
            .expect("kept");
        assert_eq!(e.header("host"), Some("old"));
    }
}
