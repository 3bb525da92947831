//! `hdfs.path`, `hdfs.filePrefix` and `hdfs.fileSuffix` escapes (Flume's `BucketPath`) and the
//! time they are expanded at (`hdfs.round*`, `hdfs.timeZone`, `hdfs.useLocalTimeStamp`).
//!
//! Interface for the sink (issue 18); the full expansion is the "formats" part's to write.

use crate::config::context::Ctx;
use file_channel::Event;

/// How an event's time is found and rounded for escapes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TimeSettings {
    /// `hdfs.useLocalTimeStamp` (false): the sink's clock instead of the `timestamp` header.
    pub use_local_timestamp: bool,
}

impl TimeSettings {
    /// Reads `hdfs.round`, `hdfs.roundValue`, `hdfs.roundUnit`, `hdfs.timeZone`,
    /// `hdfs.useLocalTimeStamp`; problems go to `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            use_local_timestamp: ctx.bool("hdfs.useLocalTimeStamp", false),
        }
    }
}

/// Why a template could not be expanded for an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// A parsed template with escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
}

impl PathTemplate {
    /// Parses the template in key `key` of `ctx` (None and an error in `ctx` when invalid or
    /// missing).
    pub fn parse(ctx: &Ctx<'_>, key: &str) -> Option<Self> {
        ctx.string(key).map(|text| Self { text })
    }

    /// A template from text (tests, defaults such as `FlumeData`).
    pub fn literal(text: &str) -> Self {
        Self {
            text: text.to_owned(),
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Expands the template for `event` (`now_ms`: the sink's clock, used with
    /// `useLocalTimeStamp` and for `%t`-less local escapes).
    pub fn expand(
        &self,
        _event: &Event,
        _time: &TimeSettings,
        _now_ms: i64,
    ) -> Result<String, ExpandError> {
        Ok(self.text.clone())
    }
}
