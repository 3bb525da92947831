//! Runners: the threads that drive sinks (through their sink processor) and pollable sources,
//! with Flume's back-off.
//!
//! - Sink runner (Flume's `SinkRunner.PollingRunner`): when the processor reports
//!   [`Status::Backoff`] (nothing to take) it sleeps min(k × 1000, 5000) ms for the k-th
//!   back-off in a row; when it fails it logs the error and sleeps 5000 ms. Unlike Flume, a
//!   back-off sleep ends early when an event is committed to one of the group's channels, so
//!   an idle agent does not add up to 5 s of latency to the first event.
//! - Pollable source runner (Flume's `PollableSourceRunner`): back-off sleeps
//!   min(k × `backoffSleepIncrement`, `maxBackoffSleep`) ms (defaults 1000 and 5000); a
//!   failure is logged and sleeps `maxBackoffSleep`.
//!
//! A runner never brings the agent down: errors are logged and counted by the component.
//! Every sleep ends at once when the agent stops; the call in progress (an in-flight batch)
//! finishes first.

use crate::channel::{wait_for_any, Channel};
use crate::processor::SinkProcessor;
use crate::source::PollableSource;
use crate::stop::Stop;
use std::thread::JoinHandle;
use std::time::Duration;

/// What one call of a sink or pollable source reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Work was done; call again at once.
    Ready,
    /// Nothing to do; back off before the next call.
    Backoff,
}

/// Flume's sink runner back-off step.
pub const SINK_BACKOFF_INCREMENT_MS: u64 = 1000;
/// Flume's longest sink runner back-off, also its sleep after a failure.
pub const SINK_MAX_BACKOFF_MS: u64 = 5000;

/// Back-off after the `consecutive`-th back-off in a row: min(consecutive × increment, max).
pub fn backoff_sleep_ms(consecutive: u64, increment_ms: u64, max_ms: u64) -> u64 {
    consecutive.saturating_mul(increment_ms).min(max_ms)
}

/// Starts the runner thread of sink group (or lone sink) `name`, reading `channels`.
pub fn spawn_sink_runner(
    name: &str,
    mut processor: Box<dyn SinkProcessor>,
    channels: Vec<Channel>,
    stop: Stop,
) -> std::io::Result<JoinHandle<()>> {
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("sink-{name}"))
        .spawn(move || {
            let mut consecutive = 0u64;
            while !stop.is_triggered() {
                match processor.process() {
                    Ok(Status::Ready) => consecutive = 0,
                    Ok(Status::Backoff) => {
                        consecutive += 1;
                        let ms = backoff_sleep_ms(consecutive, SINK_BACKOFF_INCREMENT_MS, SINK_MAX_BACKOFF_MS);
                        wait_for_any(&channels, Duration::from_millis(ms), &stop);
                    }
                    Err(e) => {
                        tracing::error!(sink = %name, error = %e, "unable to deliver events; retrying in {SINK_MAX_BACKOFF_MS} ms");
                        stop.sleep(Duration::from_millis(SINK_MAX_BACKOFF_MS));
                    }
                }
            }
            processor.stop();
            tracing::debug!(sink = %name, "sink runner stopped");
        })
}

/// Starts the runner thread of pollable source `name`.
pub fn spawn_source_runner(
    name: &str,
    mut source: Box<dyn PollableSource>,
    stop: Stop,
) -> std::io::Result<JoinHandle<()>> {
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("source-{name}"))
        .spawn(move || {
            let backoff = source.backoff();
            let mut consecutive = 0u64;
            while !stop.is_triggered() {
                match source.process() {
                    Ok(Status::Ready) => consecutive = 0,
                    Ok(Status::Backoff) => {
                        consecutive += 1;
                        let ms = backoff_sleep_ms(consecutive, backoff.increment_ms, backoff.max_ms);
                        stop.sleep(Duration::from_millis(ms));
                    }
                    Err(e) => {
                        tracing::error!(source = %name, error = %e, "source failed; retrying in {} ms", backoff.max_ms);
                        stop.sleep(Duration::from_millis(backoff.max_ms));
                    }
                }
            }
            source.stop();
            tracing::debug!(source = %name, "source runner stopped");
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_increment_up_to_the_max() {
        let v: Vec<u64> = (1..=7).map(|k| backoff_sleep_ms(k, 1000, 5000)).collect();
        assert_eq!(v, vec![1000, 2000, 3000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff_sleep_ms(u64::MAX, 1000, 5000), 5000);
        assert_eq!(backoff_sleep_ms(3, 250, 600), 600);
    }
}
