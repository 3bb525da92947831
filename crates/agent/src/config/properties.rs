//! The Java `.properties` parser the configuration is read with. It lives in `channel-keys`
//! (`channel_keys::properties_file`) so that `chanctl --conf` reads an agent's file exactly as
//! the agent does, without depending on the agent; this module keeps its old path.

pub use channel_keys::properties_file::{parse, Properties, Property, SyntaxError};
