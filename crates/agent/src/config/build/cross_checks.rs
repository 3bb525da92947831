//! Checks across components once every section is parsed: directories shared by two file
//! channels or sinks, ports bound twice, and the like.

use super::*;

impl Builder<'_> {
    pub(super) fn cross_checks(
        &mut self,
        channels: &[ChannelSpec],
        sources: &[SourceSpec],
        sinks: &[SinkSpec],
    ) {
        let cprefix = self.section_prefix("channels");
        // Channels nothing uses.
        for c in channels {
            let used = sources.iter().any(|s| s.channels.contains(&c.name))
                || sinks.iter().any(|k| k.channel == c.name);
            if !used {
                let ctx = self.sections["channels"].ctx(&cprefix, &c.name);
                self.diag.warn(
                    ctx.anchor_line(),
                    format!("{cprefix}{}", c.name),
                    format!("channel {} is not used by any source or sink", c.name),
                );
            }
        }
        // File channels sharing a directory.
        let mut owners: Vec<(PathBuf, &str)> = Vec::new();
        for c in channels {
            let ChannelSettings::File(f) = &c.settings else {
                continue;
            };
            let ctx = self.sections["channels"].ctx(&cprefix, &c.name);
            let mut dirs: Vec<(PathBuf, &str)> = vec![(clean(&f.config.dir), "checkpointDir")];
            dirs.extend(
                f.config
                    .segment_dirs()
                    .iter()
                    .map(|d| (clean(d), "dataDirs")),
            );
            if let Some(b) = &f.dual_checkpoints.backup_checkpoint_dir {
                dirs.push((clean(b), "backupCheckpointDir"));
            }
            for (d, key) in &dirs {
                if let Some((_, other)) = owners.iter().find(|(o, _)| o == d) {
                    self.diag.error(
                        ctx.line(key),
                        format!("{cprefix}{}.{key}", c.name),
                        format!(
                            "directory {} is also used by channel {other}; each file channel needs its own directories",
                            d.display()
                        ),
                    );
                }
            }
            for (d, _) in dirs {
                owners.push((d, c.name.as_str()));
            }
        }
        // Listening sources whose addresses overlap: only one of them could bind.
        let sprefix = self.section_prefix("sources");
        let mut bound: Vec<Listener<'_>> = Vec::new();
        for s in sources {
            for l in listeners(s) {
                if l.port == 0 {
                    continue; // the system picks a free port
                }
                if let Some(other) = bound.iter().find(|b| b.overlaps(&l)) {
                    let ctx = self.sections["sources"].ctx(&sprefix, &s.name);
                    let other_ctx = self.sections["sources"].ctx(&sprefix, other.source);
                    let shown = |l: &Listener<'_>| {
                        if l.host.contains(':') && !l.host.starts_with('[') {
                            format!("[{}]:{}", l.host, l.port)
                        } else {
                            format!("{}:{}", l.host, l.port)
                        }
                    };
                    self.diag.error(
                        ctx.line(l.key),
                        format!("{sprefix}{}.{}", s.name, l.key),
                        format!(
                            "source {} would listen on {} ({}), which overlaps {} of source {} \
                             (line {}); two sources cannot listen on one {} port",
                            s.name,
                            shown(&l),
                            l.protocol,
                            shown(other),
                            other.source,
                            other_ctx.line(other.key),
                            l.protocol
                        ),
                    );
                }
                bound.push(l);
            }
        }
    }
}

/// One address a source listens on, for the overlap check.
struct Listener<'a> {
    /// The source's name.
    source: &'a str,
    /// The key that gives the port (`port`, or `ports` for `multiport_syslogtcp`).
    key: &'static str,
    /// `TCP` or `UDP`: a TCP and a UDP source may share a port number.
    protocol: &'static str,
    /// The configured host, as written.
    host: &'a str,
    /// The port.
    port: u16,
}

impl Listener<'_> {
    /// Whether both could not be bound at once: same protocol and port, and the same host or
    /// a wildcard that covers the other (`0.0.0.0` covers every IPv4 host, `::` every host,
    /// as Linux binds it dual-stack).
    fn overlaps(&self, other: &Listener<'_>) -> bool {
        if self.protocol != other.protocol || self.port != other.port {
            return false;
        }
        let (a, b) = (normal_host(self.host), normal_host(other.host));
        let is_v6 = |h: &str| h.contains(':');
        a == b
            || a == "::"
            || b == "::"
            || (a == "0.0.0.0" && !is_v6(&b))
            || (b == "0.0.0.0" && !is_v6(&a))
    }
}

/// A host as written, in the form two spellings of one address share (`[::]` → `::`,
/// `localhost` → `127.0.0.1`, an empty or `*` host → `0.0.0.0`).
fn normal_host(host: &str) -> String {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    let h = h.to_ascii_lowercase();
    match h.as_str() {
        "" | "*" => "0.0.0.0".to_owned(),
        "localhost" => "127.0.0.1".to_owned(),
        _ => match h.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => h,
        },
    }
}

/// The addresses a source listens on (none for sources that do not listen).
fn listeners<'a>(s: &'a SourceSpec) -> Vec<Listener<'a>> {
    use crate::source::syslog::SyslogKind;
    let one = |key, protocol, host: &'a str, port| Listener {
        source: s.name.as_str(),
        key,
        protocol,
        host,
        port,
    };
    match &s.settings {
        SourceSettings::Netcat(c) => vec![one("port", "TCP", &c.bind, c.port)],
        SourceSettings::NetcatUdp(c) => vec![one("port", "UDP", &c.bind, c.port)],
        SourceSettings::Http(c) => vec![one("port", "TCP", &c.bind, c.port)],
        SourceSettings::Avro(c) => vec![one("port", "TCP", &c.bind, c.port)],
        SourceSettings::Thrift(c) => vec![one("port", "TCP", &c.bind, c.port)],
        SourceSettings::Syslog(c) => {
            let (key, protocol) = match c.kind {
                SyslogKind::Tcp => ("port", "TCP"),
                SyslogKind::MultiportTcp => ("ports", "TCP"),
                SyslogKind::Udp => ("port", "UDP"),
            };
            c.ports
                .iter()
                .map(|&p| one(key, protocol, &c.host, p))
                .collect()
        }
        SourceSettings::Seq(_)
        | SourceSettings::Exec(_)
        | SourceSettings::SpoolDir(_)
        | SourceSettings::Taildir(_)
        | SourceSettings::Kafka(_) => Vec::new(),
    }
}

/// A path with trailing separators and `.` components removed, for comparing directories.
fn clean(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}
