//! `hdfs`: Flume's HDFS sink — rolled, time-bucketed files on a local disk (`file://`) or on
//! object storage (`s3://`, `s3a://`) — with a durability contract stronger than Flume's: a
//! take is committed only once its bytes are durable, and a crash never leaves an in-use file.
//!
//! Being built for issue 18: the interfaces between its parts are fixed here first, so that
//! the path escapes and file formats ([`path`], [`format`]), the destinations ([`dest`]) and
//! the sink itself can be written side by side. The sink is not registered until it is whole.

pub mod dest;
pub mod format;
pub mod path;
