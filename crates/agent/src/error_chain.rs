//! An error and its causes on one line, each cause said once.
//!
//! Our error types say their cause in their own message (`cannot open channel c1: cannot
//! create directory /x: Not a directory (os error 20)`), so that a message logged on its own is
//! complete; they also return it from `source()`. Printing the chain the usual way (anyhow's
//! `{:#}`) therefore repeats each cause once per level that embeds it. [`one_line`] walks the
//! chain and leaves out a cause whose text the previous message already contains.

use std::error::Error;

/// `err` and each of its causes, joined by `: `, leaving out every cause whose text is already
/// part of the message before it.
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut previous = line.clone();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !previous.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        previous = text;
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open channel c1: {source}")]
    struct Open {
        #[source]
        source: Create,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot create directory /x: {source}")]
    struct Create {
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("agent a1 did not start")]
    struct Start {
        #[source]
        source: Open,
    }

    fn not_a_directory() -> std::io::Error {
        std::io::Error::from_raw_os_error(20)
    }

    #[test]
    fn each_cause_is_said_once_whether_or_not_a_level_embeds_it() {
        let e = Start {
            source: Open {
                source: Create {
                    source: not_a_directory(),
                },
            },
        };
        let line = one_line(&e);
        assert_eq!(
            line,
            format!(
                "agent a1 did not start: cannot open channel c1: cannot create directory /x: {}",
                not_a_directory()
            )
        );
        assert_eq!(line.matches("os error 20").count(), 1, "{line}");
    }

    #[test]
    fn causes_not_embedded_are_all_kept() {
        let e = anyhow::Error::new(not_a_directory())
            .context("reading /x")
            .context("loading");
        assert_eq!(
            one_line(e.as_ref()),
            format!("loading: reading /x: {}", not_a_directory())
        );
    }
}
