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
        // Netcat sources on one address.
        let sprefix = self.section_prefix("sources");
        let mut bound: Vec<(String, u16, &str)> = Vec::new();
        for s in sources {
            let SourceSettings::Netcat(n) = &s.settings else {
                continue;
            };
            if n.port == 0 {
                continue;
            }
            if let Some((_, _, other)) = bound.iter().find(|(b, p, _)| *b == n.bind && *p == n.port)
            {
                let ctx = self.sections["sources"].ctx(&sprefix, &s.name);
                self.diag.error(
                    ctx.line("port"),
                    format!("{sprefix}{}.port", s.name),
                    format!(
                        "{}:{} is also the address of source {other}",
                        n.bind, n.port
                    ),
                );
            }
            bound.push((n.bind.clone(), n.port, s.name.as_str()));
        }
    }
}

/// A path with trailing separators and `.` components removed, for comparing directories.
fn clean(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}
