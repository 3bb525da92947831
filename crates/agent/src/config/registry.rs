//! One registration table per component kind: the types we implement, each with our short
//! name (Flume's alias, matched without regard to case, as Flume does), the Java class names
//! Flume users write for it, and the function that parses its keys; plus every Flume 1.11
//! component of that kind that Sluice does not implement, so the refusal names it instead of
//! saying "unknown".
//!
//! A kind's table is a slice of [`Registration`] (e.g. `sink::SINK_TYPES`) and a slice of
//! [`FlumeType`] (e.g. [`FLUME_ONLY_SINKS`]); [`resolve`] finds a `type` value's entry and
//! [`unknown_message`] words the refusal. There is no fallback: a value that is in neither
//! table is an error.

/// A component type we implement: its names and how its keys are parsed. `P` is the kind's
/// parse function (what it takes differs by kind: a channel also gets `$HOME`, a selector the
/// source's channels …).
#[derive(Clone, Copy, Debug)]
pub struct Registration<P: 'static> {
    /// Our name (Flume's alias), lowercase.
    pub alias: &'static str,
    /// Flume's fully qualified class names for the same component.
    pub classes: &'static [&'static str],
    /// Parses the component's keys into its configuration (or builds it).
    pub parse: P,
}

/// A Flume component Sluice does not implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlumeType {
    /// Flume's alias for it, if it has one (some are known by class name only).
    pub alias: Option<&'static str>,
    /// Flume's class name for it.
    pub class: &'static str,
}

impl FlumeType {
    /// A Flume type with an alias.
    pub const fn aliased(alias: &'static str, class: &'static str) -> Self {
        Self {
            alias: Some(alias),
            class,
        }
    }

    /// A Flume type known by its class name only.
    pub const fn class_only(class: &'static str) -> Self {
        Self { alias: None, class }
    }
}

/// What a `type` value resolved to.
#[derive(Debug)]
pub enum Resolved<P: 'static> {
    /// One of ours.
    Known(&'static Registration<P>),
    /// A Flume component we do not have (alias or class name given).
    Unsupported(&'static FlumeType),
    /// Nothing we or Flume know by that name.
    Unknown,
}

/// Resolves `value` against `known` and then Flume's components of the same kind.
pub fn resolve<P>(
    value: &str,
    known: &'static [Registration<P>],
    flume_only: &'static [FlumeType],
) -> Resolved<P> {
    let v = value.trim();
    if let Some(t) = known
        .iter()
        .find(|t| t.alias.eq_ignore_ascii_case(v) || t.classes.contains(&v))
    {
        return Resolved::Known(t);
    }
    match flume_only
        .iter()
        .find(|f| f.alias.is_some_and(|a| a.eq_ignore_ascii_case(v)) || f.class == v)
    {
        Some(f) => Resolved::Unsupported(f),
        None => Resolved::Unknown,
    }
}

/// The message for a type that did not resolve to one of ours, `kind` being e.g. "source".
pub fn unknown_message<P>(
    kind: &str,
    value: &str,
    resolved: &Resolved<P>,
    known: &[Registration<P>],
) -> String {
    let list = known.iter().map(|t| t.alias).collect::<Vec<_>>().join(", ");
    let v = value.trim();
    match resolved {
        Resolved::Unsupported(FlumeType {
            alias: Some(alias),
            class,
        }) if alias.eq_ignore_ascii_case(v) => format!(
            "`{v}` is a Flume {kind} type ({class}) that Sluice does not implement yet; known {kind} types: {list}"
        ),
        Resolved::Unsupported(FlumeType {
            alias: Some(alias),
            ..
        }) => format!(
            "`{v}` is a Flume {kind} type (`{alias}`) that Sluice does not implement yet; known {kind} types: {list}"
        ),
        Resolved::Unsupported(FlumeType { alias: None, .. }) => format!(
            "`{v}` is a Flume {kind} type that Sluice does not implement yet; known {kind} types: {list}"
        ),
        _ if looks_like_java_class(v) => format!(
            "`{v}` looks like a custom Java {kind} class: Sluice does not implement custom (plugin) components, it cannot load Java classes; known {kind} types: {list}"
        ),
        _ => format!("unknown {kind} type \"{v}\"; known {kind} types: {list}"),
    }
}

/// Whether `v` has the shape of a fully qualified Java class name (`org.example.MySource`,
/// `com.acme.Foo$Builder`): two or more dot-separated Java identifiers. Flume loads such a
/// `type` from its classpath (its "custom component"); we can only say that we cannot.
fn looks_like_java_class(v: &str) -> bool {
    let mut parts = 0;
    for part in v.split('.') {
        let mut chars = part.chars();
        let starts_well = chars
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$');
        if !starts_well || !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            return false;
        }
        parts += 1;
    }
    parts >= 2
}

/// Flume 1.11's sources that Sluice does not implement.
pub const FLUME_ONLY_SOURCES: &[FlumeType] = &[
    FlumeType::aliased("jms", "org.apache.flume.source.jms.JMSSource"),
    FlumeType::aliased("scribe", "org.apache.flume.source.scribe.ScribeSource"),
    FlumeType::class_only("org.apache.flume.source.twitter.TwitterSource"),
    FlumeType::class_only("org.apache.flume.source.StressSource"),
    FlumeType::class_only("org.apache.flume.source.avroLegacy.AvroLegacySource"),
    FlumeType::class_only("org.apache.flume.source.thriftLegacy.ThriftLegacySource"),
];

/// Flume 1.11's sinks that Sluice does not implement.
pub const FLUME_ONLY_SINKS: &[FlumeType] = &[
    FlumeType::aliased("hive", "org.apache.flume.sink.hive.HiveSink"),
    FlumeType::aliased("irc", "org.apache.flume.sink.irc.IRCSink"),
    FlumeType::aliased("hbase", "org.apache.flume.sink.hbase.HBaseSink"),
    FlumeType::aliased("hbase2", "org.apache.flume.sink.hbase2.HBase2Sink"),
    FlumeType::aliased("asynchbase", "org.apache.flume.sink.hbase.AsyncHBaseSink"),
    FlumeType::aliased(
        "elasticsearch",
        "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
    ),
    FlumeType::aliased("http", "org.apache.flume.sink.http.HttpSink"),
    FlumeType::aliased(
        "morphline_solr",
        "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
    ),
    FlumeType::class_only("org.apache.flume.sink.kite.DatasetSink"),
];

/// Flume 1.11's channels that Sluice does not implement.
pub const FLUME_ONLY_CHANNELS: &[FlumeType] = &[
    FlumeType::aliased("jdbc", "org.apache.flume.channel.jdbc.JdbcChannel"),
    FlumeType::aliased(
        "spillablememory",
        "org.apache.flume.channel.SpillableMemoryChannel",
    ),
    FlumeType::aliased(
        "pseudotxnmemory",
        "org.apache.flume.channel.PseudoTxnMemoryChannel",
    ),
];

/// Flume 1.11's channel selectors that Sluice does not implement.
pub const FLUME_ONLY_SELECTORS: &[FlumeType] = &[FlumeType::aliased(
    "load_balancing",
    "org.apache.flume.channel.LoadBalancingChannelSelector",
)];

/// Flume 1.11's sink processors that Sluice does not implement: none (`default`, `failover`
/// and `load_balance` are all there).
pub const FLUME_ONLY_PROCESSORS: &[FlumeType] = &[];

/// Flume 1.11's interceptors that Sluice does not implement.
pub const FLUME_ONLY_INTERCEPTORS: &[FlumeType] = &[FlumeType::aliased(
    "morphline",
    "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
)];

/// The event deserializers we implement (`spooldir`'s `deserializer`): `LINE`, which has no
/// settings of its own beyond the source's.
pub const DESERIALIZER_TYPES: &[Registration<()>] = &[Registration {
    alias: "line",
    classes: &["org.apache.flume.serialization.LineDeserializer$Builder"],
    parse: (),
}];

/// Flume 1.11's event deserializers that Sluice does not implement.
pub const FLUME_ONLY_DESERIALIZERS: &[FlumeType] = &[
    FlumeType::aliased(
        "avro",
        "org.apache.flume.serialization.AvroEventDeserializer$Builder",
    ),
    FlumeType::aliased(
        "blob",
        "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
    ),
];

/// Flume 1.11's event serializers that Sluice does not implement.
pub const FLUME_ONLY_SERIALIZERS: &[FlumeType] = &[FlumeType::aliased(
    "avro_event",
    "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
)];

#[cfg(test)]
mod tests {
    use super::*;

    static KNOWN: &[Registration<()>] = &[
        Registration {
            alias: "netcat",
            classes: &["org.apache.flume.source.NetcatSource"],
            parse: (),
        },
        Registration {
            alias: "seq",
            classes: &["org.apache.flume.source.SequenceGeneratorSource"],
            parse: (),
        },
    ];

    fn alias(r: Resolved<()>) -> Option<&'static str> {
        match r {
            Resolved::Known(t) => Some(t.alias),
            _ => None,
        }
    }

    #[test]
    fn aliases_ignore_case_and_classes_map() {
        assert_eq!(
            alias(resolve("NETCAT", KNOWN, FLUME_ONLY_SOURCES)),
            Some("netcat")
        );
        assert_eq!(
            alias(resolve(" seq ", KNOWN, FLUME_ONLY_SOURCES)),
            Some("seq")
        );
        assert_eq!(
            alias(resolve(
                "org.apache.flume.source.NetcatSource",
                KNOWN,
                FLUME_ONLY_SOURCES
            )),
            Some("netcat")
        );
        // Class names are exact, as in Java.
        assert!(matches!(
            resolve(
                "org.apache.flume.source.netcatsource",
                KNOWN,
                FLUME_ONLY_SOURCES
            ),
            Resolved::Unknown
        ));
    }

    #[test]
    fn messages_list_the_known_types() {
        let r = resolve("JMS", KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", "JMS", &r, KNOWN),
            "`JMS` is a Flume source type (org.apache.flume.source.jms.JMSSource) that Sluice does not implement yet; known source types: netcat, seq"
        );
        let r = resolve("netcatt", KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", "netcatt", &r, KNOWN),
            "unknown source type \"netcatt\"; known source types: netcat, seq"
        );
    }

    /// The guide's "Custom Source/Sink/Channel/Channel Selector": a class of the user's own,
    /// which Flume loads from its classpath and we cannot.
    #[test]
    fn custom_java_classes_are_named_as_such() {
        let r = resolve("org.example.MySource", KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", "org.example.MySource", &r, KNOWN),
            "`org.example.MySource` looks like a custom Java source class: Sluice does not implement custom (plugin) components, it cannot load Java classes; known source types: netcat, seq"
        );
        assert!(looks_like_java_class("com.acme.Foo$Builder"));
        for not_a_class in ["netcatt", "a..b", ".a", "a.", "a.1b", "a b.c", "http://x.y"] {
            assert!(!looks_like_java_class(not_a_class), "{not_a_class}");
        }
    }

    #[test]
    fn flume_class_names_are_named_with_their_alias() {
        let class = "org.apache.flume.source.jms.JMSSource";
        let r = resolve(class, KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", class, &r, KNOWN),
            format!("`{class}` is a Flume source type (`jms`) that Sluice does not implement yet; known source types: netcat, seq")
        );
        let class = "org.apache.flume.source.StressSource";
        let r = resolve(class, KNOWN, FLUME_ONLY_SOURCES);
        assert_eq!(
            unknown_message("source", class, &r, KNOWN),
            format!("`{class}` is a Flume source type that Sluice does not implement yet; known source types: netcat, seq")
        );
    }

    /// Every Flume-only entry of every kind resolves, by alias and by class, to itself.
    #[test]
    fn every_flume_only_type_resolves_by_alias_and_class() {
        for (kind, list) in [
            ("source", FLUME_ONLY_SOURCES),
            ("sink", FLUME_ONLY_SINKS),
            ("channel", FLUME_ONLY_CHANNELS),
            ("selector", FLUME_ONLY_SELECTORS),
            ("sink processor", FLUME_ONLY_PROCESSORS),
            ("interceptor", FLUME_ONLY_INTERCEPTORS),
            ("serializer", FLUME_ONLY_SERIALIZERS),
            ("deserializer", FLUME_ONLY_DESERIALIZERS),
        ] {
            for f in list {
                let by_class = resolve::<()>(f.class, &[], list);
                assert!(
                    matches!(by_class, Resolved::Unsupported(g) if g == f),
                    "{kind} {}",
                    f.class
                );
                if let Some(a) = f.alias {
                    let upper = a.to_ascii_uppercase();
                    let by_alias = resolve::<()>(&upper, &[], list);
                    assert!(
                        matches!(by_alias, Resolved::Unsupported(g) if g == f),
                        "{kind} {a}"
                    );
                    let msg = unknown_message(kind, a, &by_alias, &[]);
                    assert!(
                        msg.starts_with(&format!(
                            "`{a}` is a Flume {kind} type ({}) that Sluice does not implement yet",
                            f.class
                        )),
                        "{msg}"
                    );
                }
            }
        }
    }
}
