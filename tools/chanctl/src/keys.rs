//! The keys `verify`, `dump` and `replay` open encrypted records with, given the way the channel
//! takes them or straight from a keystore:
//!
//! - `--conf FILE --name AGENT --channel NAME`: the `encryption.*` properties of that channel
//!   of that agent's Flume properties file, read with the agent's own parser and turned into a
//!   keyring by `channel_keys` exactly as the agent does (a channel without them has no keys);
//! - `--keystore FILE --keystore-password-file FILE`: every AES-256 secret key of a PKCS12
//!   keystore made by `keytool -genseckey`, under its alias in lower case.
//!
//! Keys are only read: nothing is encrypted by these commands, so no key is made active. A key
//! problem is a usage error (exit 2) naming the file and property; key bytes and passwords are
//! never printed.

use anyhow::{anyhow, bail, Context};
use channel_keys::properties_file;
use clap::Args;
use file_channel::encryption::Keyring;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the keys come from.
#[derive(Debug, Args, Default)]
pub struct KeyArgs {
    /// A PKCS12 keystore holding the channel's keys (`keytool -genseckey -keyalg AES -keysize
    /// 256 -storetype PKCS12`): every AES-256 key in it, under its alias.
    #[arg(
        long,
        value_name = "FILE",
        requires = "keystore_password_file",
        conflicts_with = "conf"
    )]
    pub keystore: Option<PathBuf>,
    /// The file holding the keystore's password (its text, surrounding whitespace trimmed).
    #[arg(long, value_name = "FILE", requires = "keystore")]
    pub keystore_password_file: Option<PathBuf>,
    /// The agent's Flume properties file: the keys are those its `encryption.*` properties give
    /// channel `--channel` of agent `--name`.
    #[arg(long, value_name = "FILE", requires_all = ["name", "channel"])]
    pub conf: Option<PathBuf>,
    /// The agent's name in `--conf` (as `sluice agent -n` takes it).
    #[arg(long, value_name = "AGENT", requires = "conf")]
    pub name: Option<String>,
    /// The channel's name in `--conf`.
    #[arg(long, value_name = "NAME", requires = "conf")]
    pub channel: Option<String>,
}

impl KeyArgs {
    /// The keys given, if any.
    pub fn load(&self) -> anyhow::Result<Option<Arc<Keyring>>> {
        if let (Some(ks), Some(pw)) = (&self.keystore, &self.keystore_password_file) {
            let ring = channel_keys::keyring_from_keystore(ks, pw)
                .with_context(|| format!("cannot read the keys of keystore {}", ks.display()))?;
            return Ok(Some(Arc::new(ring)));
        }
        if let (Some(conf), Some(agent), Some(channel)) = (&self.conf, &self.name, &self.channel) {
            return keyring_from_conf(conf, agent, channel).map(|k| k.map(Arc::new));
        }
        Ok(None)
    }
}

/// The keyring channel `channel` of agent `agent` in the properties file `conf` is configured
/// with (`None`: it has no `encryption.*` property).
pub fn keyring_from_conf(
    conf: &Path,
    agent: &str,
    channel: &str,
) -> anyhow::Result<Option<Keyring>> {
    let text = std::fs::read_to_string(conf)
        .with_context(|| format!("cannot read the configuration {}", conf.display()))?;
    let props = match properties_file::parse(&text) {
        Ok(p) => p,
        Err((_, errors)) => {
            let first = errors.first().map_or_else(String::new, ToString::to_string);
            bail!("{}: {first}", conf.display());
        }
    };
    let channels_key = format!("{agent}.channels");
    let Some(listed) = props.get(&channels_key) else {
        bail!(
            "{}: agent {agent:?} has no channels (no {channels_key} property); check --name",
            conf.display()
        );
    };
    if !listed.value.split_whitespace().any(|c| c == channel) {
        bail!(
            "{}:{}: agent {agent:?} has no channel {channel:?} ({channels_key} = {}); check --channel",
            conf.display(),
            listed.line,
            listed.value.trim()
        );
    }
    let prefix = format!("{agent}.channels.{channel}.");
    let own: BTreeMap<String, String> = props
        .entries
        .iter()
        .filter_map(|p| {
            p.key
                .strip_prefix(&prefix)
                .map(|k| (k.to_owned(), p.value.clone()))
        })
        .collect();
    // A problem is put on its property's line, as the agent does (`file:line: key: message`).
    channel_keys::keyring_from_properties(&own).map_err(|e| match &e.property {
        Some(p) => {
            let full = format!("{prefix}{p}");
            let line = props
                .get(&full)
                .map_or_else(String::new, |x| format!(":{}", x.line));
            anyhow!("{}{line}: {full}: {}", conf.display(), e.problem)
        }
        None => anyhow!(
            "{}: the keys of channel {channel:?} of agent {agent:?}: {e}",
            conf.display()
        ),
    })
}
