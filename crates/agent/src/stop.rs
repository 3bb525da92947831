//! [`Stop`]: one shutdown flag that threads can sleep on (a condvar) and tasks can await (a
//! `tokio::sync::watch`), so every runner's back-off sleep ends as soon as the agent stops.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug)]
struct Inner {
    stopped: Mutex<bool>,
    cv: Condvar,
    tx: watch::Sender<bool>,
}

/// A shutdown flag shared by the runners of one component. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Stop {
    inner: Arc<Inner>,
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

impl Stop {
    /// A flag that is not set.
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                stopped: Mutex::new(false),
                cv: Condvar::new(),
                tx,
            }),
        }
    }

    /// Sets the flag and wakes every sleeper and waiter.
    pub fn trigger(&self) {
        *self
            .inner
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.inner.cv.notify_all();
        self.inner.tx.send_replace(true);
    }

    /// Whether the flag is set.
    pub fn is_triggered(&self) -> bool {
        *self
            .inner
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps for `duration` or until the flag is set; returns whether it is set.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut stopped = self
            .inner
            .stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if *stopped {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = self
                .inner
                .cv
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Resolves once the flag is set.
    pub async fn wait(&self) {
        let mut rx = self.inner.tx.subscribe();
        // An error means the sender is gone, which cannot happen while `self` holds it.
        let _ = rx.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_ends_early_when_triggered() {
        let stop = Stop::new();
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            let started = Instant::now();
            let stopped = s2.sleep(Duration::from_secs(30));
            (stopped, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        stop.trigger();
        let (stopped, took) = t.join().expect("thread");
        assert!(stopped);
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(stop.is_triggered());
    }

    #[test]
    fn sleep_runs_out_when_not_triggered() {
        let stop = Stop::new();
        assert!(!stop.sleep(Duration::from_millis(20)));
    }

    #[tokio::test]
    async fn wait_resolves_after_trigger() {
        let stop = Stop::new();
        let s2 = stop.clone();
        let waiter = tokio::spawn(async move { s2.wait().await });
        stop.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("in time")
            .expect("joined");
        // Waiting after the trigger returns at once.
        stop.wait().await;
    }
}
