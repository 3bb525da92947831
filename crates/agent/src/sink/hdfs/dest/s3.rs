//! Amazon S3 and S3-compatible servers as a [`super::Destination`].
//!
//! Interface for the sink (issue 18); the "s3" part writes it: `S3Settings::parse` reads
//! `hdfs.s3.endpoint`, `hdfs.s3.region`, `hdfs.s3.pathStyle` (overriding `AWS_ENDPOINT_URL`,
//! `AWS_REGION` and `~/.aws`), and `S3Destination::new` builds the client.

use crate::config::context::Ctx;

/// `hdfs.s3.*` overrides of the AWS environment.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct S3Settings {
    /// `hdfs.s3.endpoint`.
    pub endpoint: Option<String>,
    /// `hdfs.s3.region`.
    pub region: Option<String>,
    /// `hdfs.s3.pathStyle`.
    pub path_style: Option<bool>,
}

impl S3Settings {
    /// Reads the keys; problems go to `ctx`.
    pub fn parse(ctx: &Ctx<'_>) -> Self {
        Self {
            endpoint: ctx.string("hdfs.s3.endpoint"),
            region: ctx.string("hdfs.s3.region"),
            path_style: ctx
                .get("hdfs.s3.pathStyle")
                .map(|_| ctx.bool("hdfs.s3.pathStyle", false)),
        }
    }
}
