//! Component type names: our short names (Flume's aliases, matched without regard to case, as
//! Flume does) and the Java class names Flume users write, mapped to ours; plus Flume's
//! components we do not have, so the refusal can say so instead of "unknown".

/// A component type we implement: its short name and the Flume class names that mean it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeName {
    /// Our name (Flume's alias), lowercase.
    pub alias: &'static str,
    /// Flume's fully qualified class names for the same component.
    pub classes: &'static [&'static str],
}

/// What a `type` value resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// One of ours: its alias.
    Known(&'static str),
    /// A Flume component we do not have (alias or class name given).
    Unsupported {
        /// Flume's alias for it.
        alias: &'static str,
        /// Flume's class name for it.
        class: &'static str,
    },
    /// Nothing we or Flume know by that name.
    Unknown,
}

/// Resolves `value` against `known` and then Flume's components of the same kind.
pub fn resolve(
    value: &str,
    known: &[TypeName],
    flume_only: &[(&'static str, &'static str)],
) -> Resolved {
    let v = value.trim();
    for t in known {
        if t.alias.eq_ignore_ascii_case(v) || t.classes.contains(&v) {
            return Resolved::Known(t.alias);
        }
    }
    for (alias, class) in flume_only {
        if alias.eq_ignore_ascii_case(v) || *class == v {
            return Resolved::Unsupported { alias, class };
        }
    }
    Resolved::Unknown
}

/// The message for a type that did not resolve to one of ours, `kind` being e.g. "source".
pub fn unknown_message(kind: &str, value: &str, resolved: &Resolved, known: &[TypeName]) -> String {
    let list = known.iter().map(|t| t.alias).collect::<Vec<_>>().join(", ");
    match resolved {
        Resolved::Unsupported { alias, class } => format!(
            "{kind} type \"{}\" is Flume's {alias} {kind} ({class}), which Sluice does not have; known {kind} types: {list}",
            value.trim()
        ),
        _ => format!(
            "unknown {kind} type \"{}\"; known {kind} types: {list}",
            value.trim()
        ),
    }
}

/// Flume 1.11 sources we do not have.
pub const FLUME_ONLY_SOURCES: &[(&str, &str)] = &[
    ("jms", "org.apache.flume.source.jms.JMSSource"),
    ("scribe", "org.apache.flume.source.scribe.ScribeSource"),
];

/// Flume 1.11 sinks we do not have.
pub const FLUME_ONLY_SINKS: &[(&str, &str)] = &[
    ("hdfs", "org.apache.flume.sink.hdfs.HDFSEventSink"),
    ("hive", "org.apache.flume.sink.hive.HiveSink"),
    ("irc", "org.apache.flume.sink.irc.IRCSink"),
    ("hbase", "org.apache.flume.sink.hbase.HBaseSink"),
    ("hbase2", "org.apache.flume.sink.hbase2.HBase2Sink"),
    ("asynchbase", "org.apache.flume.sink.hbase.AsyncHBaseSink"),
    (
        "elasticsearch",
        "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
    ),
    ("http", "org.apache.flume.sink.http.HttpSink"),
    (
        "morphline_solr",
        "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
    ),
];

/// Flume 1.11 channels we do not have.
pub const FLUME_ONLY_CHANNELS: &[(&str, &str)] = &[
    ("jdbc", "org.apache.flume.channel.jdbc.JdbcChannel"),
    ("kafka", "org.apache.flume.channel.kafka.KafkaChannel"),
    (
        "spillablememory",
        "org.apache.flume.channel.SpillableMemoryChannel",
    ),
    (
        "pseudotxnmemory",
        "org.apache.flume.channel.PseudoTxnMemoryChannel",
    ),
];

/// Flume 1.11 channel selectors we do not have.
pub const FLUME_ONLY_SELECTORS: &[(&str, &str)] = &[(
    "load_balancing",
    "org.apache.flume.channel.LoadBalancingChannelSelector",
)];

/// Flume 1.11 interceptors we do not have.
pub const FLUME_ONLY_INTERCEPTORS: &[(&str, &str)] = &[(
    "morphline",
    "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
)];

/// Flume 1.11 event serializers we do not have.
pub const FLUME_ONLY_SERIALIZERS: &[(&str, &str)] = &[(
    "avro_event",
    "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
)];

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[TypeName] = &[
        TypeName {
            alias: "netcat",
            classes: &["org.apache.flume.source.NetcatSource"],
        },
        TypeName {
            alias: "seq",
            classes: &["org.apache.flume.source.SequenceGeneratorSource"],
        },
    ];

    #[test]
    fn aliases_ignore_case_and_classes_map() {
        assert_eq!(
            resolve("NETCAT", KNOWN, FLUME_ONLY_SOURCES),
            Resolved::Known("netcat")
        );
        assert_eq!(
            resolve(" seq ", KNOWN, FLUME_ONLY_SOURCES),
            Resolved::Known("seq")
        );
        assert_eq!(
            resolve(
                "org.apache.flume.source.NetcatSource",
                KNOWN,
                FLUME_ONLY_SOURCES
            ),
            Resolved::Known("netcat")
        );
        // Class names are exact, as in Java.
        assert_eq!(
            resolve(
                "org.apache.flume.source.netcatsource",
                KNOWN,
                FLUME_ONLY_SOURCES
            ),
            Resolved::Unknown
        );
    }

    #[test]
    fn messages_list_the_known_types() {
        let r = resolve("JMS", KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", "JMS", &r, KNOWN),
            "source type \"JMS\" is Flume's jms source (org.apache.flume.source.jms.JMSSource), which Sluice does not have; known source types: netcat, seq"
        );
        let r = resolve("netcatt", KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", "netcatt", &r, KNOWN),
            "unknown source type \"netcatt\"; known source types: netcat, seq"
        );
    }
}
