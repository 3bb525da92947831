//! The `sinks` and `sinkgroups` sections: each sink's type, channel and keys, and each
//! group's processor over its sinks.

use super::*;

impl Builder<'_> {
    pub(super) fn sinks(&mut self) -> Vec<SinkSpec> {
        let prefix = self.section_prefix("sinks");
        let names = self.sections["sinks"].names.clone();
        let mut out = Vec::new();
        for name in names {
            let ctx = self.sections["sinks"].ctx(&prefix, &name);
            let registration = Self::resolve_type(&ctx, "sink", SINK_TYPES, FLUME_ONLY_SINKS);
            let channel = match ctx.get("channel") {
                None if ctx.has("channels") => {
                    ctx.mark_used("channels");
                    ctx.error("channels", "sinks take from exactly one channel: the key is \"channel\", not \"channels\"");
                    None
                }
                None => {
                    ctx.error_at(
                        ctx.anchor_line(),
                        "channel",
                        "required key is missing: a sink takes from exactly one channel",
                    );
                    None
                }
                Some(e) => {
                    let list: Vec<&str> = e.value.split_whitespace().collect();
                    match list.as_slice() {
                        [] => {
                            ctx.error("channel", "names no channel");
                            None
                        }
                        [one] => self
                            .check_channel(&ctx, "channel", one)
                            .then(|| (*one).to_owned()),
                        many => {
                            ctx.error(
                                "channel",
                                format!(
                                    "sink {name} is bound to {} channels ({}); a sink takes from exactly one channel",
                                    many.len(),
                                    many.join(" ")
                                ),
                            );
                            None
                        }
                    }
                }
            };
            let Some(registration) = registration else {
                self.merge(ctx, None);
                continue;
            };
            let alias = registration.alias;
            let settings = (registration.parse)(&ctx);
            if let Some(c) = &channel {
                let (key, size) = settings.batch_size();
                self.check_batch(&ctx, key, size, c);
            }
            self.merge(ctx, Some(format!("{alias} sink {name}")));
            out.push(SinkSpec {
                name,
                channel: channel.unwrap_or_default(),
                settings,
            });
        }
        out
    }

    pub(super) fn groups(&mut self) -> Vec<SinkGroupSpec> {
        let prefix = self.section_prefix("sinkgroups");
        let names = self.sections["sinkgroups"].names.clone();
        let sink_names = self.sections["sinks"].names.clone();
        let mut member_of: BTreeMap<String, (String, u32)> = BTreeMap::new();
        let mut out = Vec::new();
        for name in names {
            let ctx = self.sections["sinkgroups"].ctx(&prefix, &name);
            let sinks = ctx.list("sinks");
            if !ctx.has("sinks") {
                ctx.error_at(
                    ctx.anchor_line(),
                    "sinks",
                    "required key is missing: a sink group drives at least one sink",
                );
            } else if sinks.is_empty() {
                ctx.error("sinks", "names no sink");
            }
            let mut seen = BTreeSet::new();
            for s in &sinks {
                if !seen.insert(s.as_str()) {
                    ctx.error("sinks", format!("lists sink {s} twice"));
                    continue;
                }
                if !sink_names.contains(s) {
                    let defined = if sink_names.is_empty() {
                        "none".to_owned()
                    } else {
                        sink_names.join(" ")
                    };
                    ctx.error(
                        "sinks",
                        format!(
                            "sink \"{s}\" is not defined in {}sinks (defined: {defined})",
                            self.prefix
                        ),
                    );
                    continue;
                }
                match member_of.get(s) {
                    Some((g, line)) => ctx.error(
                        "sinks",
                        format!("sink {s} is already in sink group {g} (line {line}); a sink belongs to at most one group"),
                    ),
                    None => {
                        member_of.insert(s.clone(), (name.clone(), ctx.line("sinks")));
                    }
                }
            }
            let ty = ctx.string_or("processor.type", "default");
            let processor = match resolve(&ty, PROCESSOR_TYPES, FLUME_ONLY_PROCESSORS) {
                Resolved::Known(registration) => (registration.parse)(&ctx, &sinks),
                other => {
                    ctx.error(
                        "processor.type",
                        unknown_message("sink processor", &ty, &other, PROCESSOR_TYPES),
                    );
                    ProcessorSpec::Default
                }
            };
            self.merge(ctx, Some(format!("sink group {name}")));
            out.push(SinkGroupSpec {
                name,
                sinks,
                processor,
            });
        }
        out
    }
}
