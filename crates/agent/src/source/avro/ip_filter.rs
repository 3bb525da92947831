//! Flume's `ipFilterRules` for the avro source: a comma-separated list of
//! `<allow|deny>:<ip|name>:<pattern>` rules checked in order against each new connection; the
//! first rule that matches decides, and a connection no rule matches is allowed (Netty's
//! `IpFilterRuleHandler` with `PatternRule`s, as Flume builds them).
//!
//! Patterns, as Netty's `PatternRule`: `*` is any run of characters, `?` one character, `.` a
//! dot; the pattern must match the whole text. `ip` patterns match the peer's address text
//! (`127.0.0.1`); `name` patterns its host name from reverse DNS (the address text if there is
//! none), except `name:localhost`, which matches any loopback address.

use regex::Regex;
use std::net::IpAddr;

/// What a rule matches against.
#[derive(Clone, Debug)]
enum Target {
    /// The address text.
    Ip(Regex),
    /// The reverse-DNS host name.
    Name(Regex),
    /// `name:localhost`: loopback addresses.
    Localhost,
}

/// One rule.
#[derive(Clone, Debug)]
struct Rule {
    allow: bool,
    target: Target,
}

/// A parsed `ipFilterRules` list.
#[derive(Clone, Debug)]
pub struct IpFilter {
    rules: Vec<Rule>,
    text: String,
}

impl PartialEq for IpFilter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for IpFilter {}

fn pattern_regex(pattern: &str) -> Result<Regex, String> {
    let translated = pattern
        .replace('.', "\\.")
        .replace('*', ".*")
        .replace('?', ".");
    Regex::new(&format!("^(?:{translated})$"))
        .map_err(|e| format!("pattern {pattern:?} is not valid: {e}"))
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let shape = || {
        format!("invalid ipFilter rule {rule:?}: should look like <allow|deny>:<ip|name>:<pattern>")
    };
    let mut parts = rule.splitn(3, ':');
    let (Some(verdict), Some(kind), Some(pattern)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(shape());
    };
    let allow = match verdict {
        "allow" => true,
        "deny" => false,
        _ => return Err(shape()),
    };
    let target = match kind {
        "ip" => Target::Ip(pattern_regex(pattern)?),
        "name" if pattern == "localhost" => Target::Localhost,
        "name" => Target::Name(pattern_regex(pattern)?),
        _ => return Err(shape()),
    };
    Ok(Rule { allow, target })
}

impl IpFilter {
    /// Parses Flume's rule list; the error names the bad rule.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rules = text
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()?;
        if rules.is_empty() {
            return Err("ipFilterRules has no rule".into());
        }
        Ok(Self {
            rules,
            text: text.to_owned(),
        })
    }

    /// Whether any rule needs the peer's host name (a reverse DNS lookup).
    pub fn needs_host_name(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.target, Target::Name(_)))
    }

    /// Whether a peer at `ip`, named `host_name` (when looked up), may connect.
    pub fn allows(&self, ip: IpAddr, host_name: Option<&str>) -> bool {
        let ip = ip.to_canonical();
        let ip_text = ip.to_string();
        for rule in &self.rules {
            let matched = match &rule.target {
                Target::Ip(re) => re.is_match(&ip_text),
                Target::Name(re) => re.is_match(host_name.unwrap_or(&ip_text)),
                Target::Localhost => ip.is_loopback(),
            };
            if matched {
                return rule.allow;
            }
        }
        true
    }
}

/// The host name of `ip` by reverse DNS, or its address text (as Java's `getHostName`).
pub fn reverse_lookup(ip: IpAddr) -> String {
    dns_lookup::lookup_addr(&ip).unwrap_or_else(|_| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn flume_user_guide_examples_first_match_wins() {
        let f = IpFilter::parse("allow:ip:127.*,allow:name:localhost,deny:ip:*").expect("ok");
        assert!(f.allows(ip("127.0.0.1"), None));
        assert!(!f.allows(ip("10.1.2.3"), None));
        // "This will deny the client on localhost and allow clients from any other ip".
        let f = IpFilter::parse("deny:name:localhost,allow:ip:*").expect("ok");
        assert!(!f.allows(ip("127.0.0.1"), None));
        assert!(f.allows(ip("192.168.0.9"), None));
        // And the reverse.
        let f = IpFilter::parse("allow:name:localhost,deny:ip:*").expect("ok");
        assert!(f.allows(ip("::1"), None));
        assert!(!f.allows(ip("192.168.0.9"), None));
    }

    #[test]
    fn wildcards_match_whole_text_and_no_match_allows() {
        let f = IpFilter::parse("deny:ip:10.0.0.?").expect("ok");
        assert!(!f.allows(ip("10.0.0.7"), None));
        assert!(f.allows(ip("10.0.0.77"), None));
        assert!(f.allows(ip("110.0.0.7"), None));
        // The dot is literal.
        let f = IpFilter::parse("deny:ip:10.0.0.1").expect("ok");
        assert!(f.allows(ip("10.0.0.10"), None));
        let f = IpFilter::parse("deny:name:*.example.com").expect("ok");
        assert!(f.needs_host_name());
        assert!(!f.allows(ip("10.0.0.1"), Some("a.example.com")));
        assert!(f.allows(ip("10.0.0.1"), Some("example.org")));
        // IPv4-mapped IPv6 peers are matched as IPv4.
        let f = IpFilter::parse("deny:ip:127.0.0.1").expect("ok");
        assert!(!f.allows(ip("::ffff:127.0.0.1"), None));
    }

    #[test]
    fn malformed_rules_are_named() {
        for bad in ["allow", "permit:ip:*", "allow:host:*", "allow:ip:(", ""] {
            let err = IpFilter::parse(bad).expect_err(bad);
            assert!(
                err.contains("ipFilter") || err.contains("pattern"),
                "{bad}: {err}"
            );
        }
        let err = IpFilter::parse("allow:ip:1.*,oops").expect_err("bad");
        assert!(err.contains("\"oops\""), "{err}");
    }
}
