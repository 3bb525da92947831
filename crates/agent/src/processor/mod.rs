//! Sink processors: how a sink group's runner calls its sinks (Flume's `SinkProcessor`).
//!
//! - `default`: one sink, called directly.
//! - `failover`: the live sink with the highest `processor.priority.<sink>` is called; a sink
//!   that fails is set aside for min(`maxpenalty`, 1000 · 2^k) ms, k being its consecutive
//!   failures (so 2 s, 4 s, 8 s ... up to `maxpenalty`, default 30000), and the next one is
//!   tried in the same call. See [`failover`].
//! - `load_balance`: sinks are called in `round_robin` or `random` order until one succeeds;
//!   with `backoff` a failed sink is skipped for min(`selector.maxTimeOut`, 1000 · 2^n) ms,
//!   n its consecutive failures. See [`load_balance`].
//!
//! Time comes from a [`Clock`] so the back-off arithmetic is tested without sleeping.

pub mod failover;
pub mod load_balance;

use crate::config::context::Ctx;
use crate::config::registry::Registration;
use crate::runner::Status;
use crate::sink::{Sink, SinkError};
use std::sync::Arc;
use std::time::Instant;

/// Parses `processor.*` of a group whose sinks are the second argument.
pub type ParseProcessor = fn(&Ctx<'_>, &[String]) -> ProcessorSpec;

/// The sink processor types we implement (the registration table of sink processors).
pub const PROCESSOR_TYPES: &[Registration<ParseProcessor>] = &[
    Registration {
        alias: "default",
        classes: &["org.apache.flume.sink.DefaultSinkProcessor"],
        parse: ProcessorSpec::parse_default,
    },
    Registration {
        alias: "failover",
        classes: &["org.apache.flume.sink.FailoverSinkProcessor"],
        parse: ProcessorSpec::parse_failover,
    },
    Registration {
        alias: "load_balance",
        classes: &["org.apache.flume.sink.LoadBalancingSinkProcessor"],
        parse: ProcessorSpec::parse_load_balance,
    },
];

/// Milliseconds from some fixed start; only differences matter.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The monotonic clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // Offset so that "0" (never failed) is far in the past, as Flume's epoch times are.
        self.start.elapsed().as_millis() as u64 + 10_000_000_000
    }
}

/// Drives the sinks of one group.
pub trait SinkProcessor: Send {
    /// One round: calls sinks until one processes (or all fail).
    fn process(&mut self) -> Result<Status, SinkError>;
    /// Stops every sink.
    fn stop(&mut self);
}

/// A group's processor configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessorSpec {
    /// `default`.
    Default,
    /// `failover`.
    Failover {
        /// Priority of each sink, in the group's order.
        priorities: Vec<i64>,
        /// `maxpenalty`. Default: 30000.
        max_penalty_ms: u64,
    },
    /// `load_balance`.
    LoadBalance {
        /// `selector`: round_robin (default) or random.
        random: bool,
        /// `backoff`. Default: false.
        backoff: bool,
        /// `selector.maxTimeOut`. Default: 30000.
        max_timeout_ms: u64,
    },
}

impl ProcessorSpec {
    /// Parses `processor.*` of a `default` group (exactly one sink). Problems are recorded in
    /// `ctx` (the group's keys).
    pub fn parse_default(ctx: &Ctx<'_>, sinks: &[String]) -> Self {
        ctx.mark_used("processor.type");
        if sinks.len() != 1 {
            ctx.error_at(
                ctx.line("processor.type"),
                "processor.type",
                format!(
                    "the default processor drives exactly one sink, this group has {}; use failover or load_balance",
                    sinks.len()
                ),
            );
        }
        Self::Default
    }

    /// Parses `processor.*` of a `failover` group whose sinks are `sinks`.
    pub fn parse_failover(ctx: &Ctx<'_>, sinks: &[String]) -> Self {
        ctx.mark_used("processor.type");
        let max_penalty_ms = ctx.u64_in("processor.maxpenalty", 30_000, 0..=i64::MAX as u64);
        let mut given: Vec<Option<(i64, u32)>> = vec![None; sinks.len()];
        for (sink, e) in ctx.prefixed("processor.priority.") {
            let sub = format!("processor.priority.{sink}");
            let Some(i) = sinks.iter().position(|s| s == sink) else {
                ctx.error(
                    &sub,
                    format!(
                        "sink {sink} is not in this group (sinks: {})",
                        sinks.join(" ")
                    ),
                );
                continue;
            };
            match crate::config::context::parse_integer(&e.value) {
                Some(p) if i64::try_from(p).is_ok() => given[i] = Some((p as i64, e.line)),
                Some(p) if p > 0 => ctx.error(
                    &sub,
                    format!(
                        "too large: the maximum is {}, got {}",
                        i64::MAX,
                        e.value.trim()
                    ),
                ),
                Some(_) => ctx.error(
                    &sub,
                    format!(
                        "too small: the minimum is {}, got {}",
                        i64::MIN,
                        e.value.trim()
                    ),
                ),
                None => ctx.error(&sub, format!("expected an integer, got \"{}\"", e.value)),
            }
        }
        // Sinks without a priority get -1, -2, ... in the group's order, as Flume does.
        let mut next = 0i64;
        let mut priorities = Vec::with_capacity(sinks.len());
        for (i, g) in given.iter().enumerate() {
            let p = match g {
                Some((p, _)) => *p,
                None => {
                    next -= 1;
                    next
                }
            };
            if let Some(j) = priorities.iter().position(|q| *q == p) {
                let sub = format!("processor.priority.{}", sinks[i]);
                let other = given[j]
                    .map(|(_, l)| format!(" (line {l})"))
                    .unwrap_or_default();
                ctx.error(
                    &sub,
                    format!(
                        "priority {p} is also the priority of sink {}{other}; failover priorities must be unique (Flume silently drops the sink)",
                        sinks[j]
                    ),
                );
            }
            priorities.push(p);
        }
        Self::Failover {
            priorities,
            max_penalty_ms,
        }
    }

    /// Parses `processor.*` of a `load_balance` group whose sinks are `sinks`.
    pub fn parse_load_balance(ctx: &Ctx<'_>, sinks: &[String]) -> Self {
        ctx.mark_used("processor.type");
        let backoff = ctx.bool("processor.backoff", false);
        let sel = ctx.string_or("processor.selector", "round_robin");
        let random = match sel.trim().to_ascii_lowercase().as_str() {
            "round_robin" => false,
            "random" => true,
            _ => {
                ctx.error(
                    "processor.selector",
                    format!(
                        "unknown selector \"{}\"; known: round_robin, random",
                        sel.trim()
                    ),
                );
                false
            }
        };
        let t = ctx.u64_in("processor.selector.maxTimeOut", 0, 0..=i64::MAX as u64);
        if sinks.len() < 2 {
            ctx.error_at(
                ctx.line("processor.type"),
                "processor.type",
                "load_balance needs at least two sinks in the group",
            );
        }
        Self::LoadBalance {
            random,
            backoff,
            max_timeout_ms: if t == 0 {
                load_balance::DEFAULT_MAX_TIMEOUT_MS
            } else {
                t
            },
        }
    }
}

/// Builds the processor of group `group` over `sinks` (in the group's order).
pub fn build(
    group: &str,
    spec: &ProcessorSpec,
    sinks: Vec<Box<dyn Sink>>,
    clock: Arc<dyn Clock>,
) -> Box<dyn SinkProcessor> {
    match spec {
        ProcessorSpec::Default => Box::new(DefaultProcessor { sinks }),
        ProcessorSpec::Failover {
            priorities,
            max_penalty_ms,
        } => Box::new(failover::Failover::new(
            group,
            sinks,
            priorities,
            *max_penalty_ms,
            clock,
        )),
        ProcessorSpec::LoadBalance {
            random,
            backoff,
            max_timeout_ms,
        } => Box::new(load_balance::LoadBalance::new(
            group,
            sinks,
            *random,
            *backoff,
            *max_timeout_ms,
            clock,
        )),
    }
}

/// The `default` processor: calls its one sink.
pub struct DefaultProcessor {
    sinks: Vec<Box<dyn Sink>>,
}

impl SinkProcessor for DefaultProcessor {
    fn process(&mut self) -> Result<Status, SinkError> {
        match self.sinks.first_mut() {
            Some(s) => s.process(),
            None => Ok(Status::Backoff),
        }
    }

    fn stop(&mut self) {
        for s in &mut self.sinks {
            s.stop();
        }
    }
}

/// min(cap, 1000 · 2^k) without overflow.
pub fn exponential_ms(k: u32, cap_ms: u64) -> u64 {
    1000u64
        .checked_shl(k)
        .filter(|v| v >> k == 1000)
        .unwrap_or(u64::MAX)
        .min(cap_ms)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A scripted sink and a manual clock.
    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::sync::Mutex;

    /// A clock the test moves.
    #[derive(Debug, Default)]
    pub struct ManualClock(pub AtomicU64);

    impl ManualClock {
        /// Starts at `ms`.
        pub fn at(ms: u64) -> Arc<Self> {
            Arc::new(Self(AtomicU64::new(ms)))
        }
        /// Moves to `ms`.
        pub fn set(&self, ms: u64) {
            self.0.store(ms, SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_ms(&self) -> u64 {
            self.0.load(SeqCst)
        }
    }

    /// A sink that answers from a script (`Ok` = Ready, `Err` = failure; empty = Ready) and
    /// logs every call as `name@time`.
    pub struct Scripted {
        pub name: String,
        pub script: VecDeque<bool>,
        pub fail_always: bool,
        pub log: Arc<Mutex<Vec<String>>>,
        pub clock: Arc<ManualClock>,
    }

    impl Sink for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        fn process(&mut self) -> Result<Status, SinkError> {
            self.log
                .lock()
                .expect("lock")
                .push(format!("{}@{}", self.name, self.clock.now_ms()));
            let ok = self.script.pop_front().unwrap_or(!self.fail_always);
            if ok {
                Ok(Status::Ready)
            } else {
                Err(SinkError::GroupFailed {
                    group: self.name.clone(),
                    reason: "scripted failure".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::context::test_support::{ctx_under, entries_under};

    fn parse(alias: &str, pairs: &[(&str, &str)], sinks: &[&str]) -> (ProcessorSpec, Vec<String>) {
        let list = entries_under("a1.sinkgroups.g1.", pairs);
        let ctx = ctx_under("a1.sinkgroups.g1.", &list);
        let sinks: Vec<String> = sinks.iter().map(|s| (*s).to_owned()).collect();
        let registration = PROCESSOR_TYPES
            .iter()
            .find(|t| t.alias == alias)
            .expect("registered");
        let spec = (registration.parse)(&ctx, &sinks);
        let errs = ctx
            .finish("sink group g1")
            .errors
            .iter()
            .map(|p| p.display(std::path::Path::new("f")).to_string())
            .collect();
        (spec, errs)
    }

    #[test]
    fn exponential_is_capped_and_never_overflows() {
        let v: Vec<u64> = (0..6).map(|k| exponential_ms(k, 30_000)).collect();
        assert_eq!(v, vec![1000, 2000, 4000, 8000, 16000, 30000]);
        assert_eq!(exponential_ms(63, 30_000), 30_000);
        assert_eq!(exponential_ms(200, u64::MAX), u64::MAX);
    }

    #[test]
    fn failover_priorities_defaults_and_duplicates() {
        let (spec, errs) = parse(
            "failover",
            &[
                ("processor.priority.k1", "10"),
                ("processor.maxpenalty", "5000"),
            ],
            &["k1", "k2", "k3"],
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            spec,
            ProcessorSpec::Failover {
                priorities: vec![10, -1, -2],
                max_penalty_ms: 5000
            }
        );

        let (_, errs) = parse(
            "failover",
            &[
                ("processor.priority.k1", "5"),
                ("processor.priority.k2", "5"),
                ("processor.priority.k9", "1"),
                ("processor.priority.k3", "high"),
            ],
            &["k1", "k2", "k3"],
        );
        assert_eq!(
            errs,
            vec![
                "f:3: a1.sinkgroups.g1.processor.priority.k2: priority 5 is also the priority of sink k1 (line 2); failover priorities must be unique (Flume silently drops the sink)",
                "f:4: a1.sinkgroups.g1.processor.priority.k9: sink k9 is not in this group (sinks: k1 k2 k3)",
                "f:5: a1.sinkgroups.g1.processor.priority.k3: expected an integer, got \"high\"",
            ]
        );
    }

    #[test]
    fn load_balance_keys() {
        let (spec, errs) = parse(
            "load_balance",
            &[
                ("processor.type", "load_balance"),
                ("processor.selector", "RANDOM"),
                ("processor.backoff", "true"),
                ("processor.selector.maxTimeOut", "7000"),
            ],
            &["k1", "k2"],
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            spec,
            ProcessorSpec::LoadBalance {
                random: true,
                backoff: true,
                max_timeout_ms: 7000
            }
        );
        let (spec, errs) = parse(
            "load_balance",
            &[("processor.type", "load_balance")],
            &["k1"],
        );
        assert_eq!(
            spec,
            ProcessorSpec::LoadBalance {
                random: false,
                backoff: false,
                max_timeout_ms: 30_000
            }
        );
        assert_eq!(errs, vec!["f:2: a1.sinkgroups.g1.processor.type: load_balance needs at least two sinks in the group"]);
    }
}
