//! The AWS shared configuration files (`~/.aws/credentials` and `~/.aws/config`), read for one
//! profile the way the AWS CLI and SDKs read them, because `object_store` reads only the
//! environment.
//!
//! The files are INI-like with AWS's own rules, which a general INI crate gets wrong: in
//! `config` a profile's section is `[profile NAME]` (`[default]` for the default one), in
//! `credentials` it is `[NAME]`; an indented line continues the key above it (a sub-section
//! such as `s3 =` followed by indented `key = value` lines, which we skip); `#` and `;` start
//! comments. Credentials from `credentials` win over the same keys in `config`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What one profile says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url`.
    pub endpoint_url: Option<String>,
}

/// Where the files are and which profile to read, from the environment: `AWS_PROFILE`
/// (default `default`), `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE` (default
/// `$HOME/.aws/credentials` and `$HOME/.aws/config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSource {
    /// The profile's name.
    pub name: String,
    /// The credentials file, if a home or an override is known.
    pub credentials_file: Option<PathBuf>,
    /// The config file, if a home or an override is known.
    pub config_file: Option<PathBuf>,
}

impl ProfileSource {
    /// From an environment lookup (`std::env::var` in the agent, a map in tests).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let in_home = |file: &str| home.as_ref().map(|h| h.join(".aws").join(file));
        Self {
            name: env("AWS_PROFILE")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            credentials_file: env("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| in_home("credentials")),
            config_file: env("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| in_home("config")),
        }
    }

    /// Reads the profile; a missing file is an empty one (the AWS tools do the same), an
    /// unreadable one is an error naming it.
    pub fn load(&self) -> Result<Profile, std::io::Error> {
        let config = read_optional(self.config_file.as_deref())?;
        let credentials = read_optional(self.credentials_file.as_deref())?;
        Ok(profile_from(&self.name, &config, &credentials))
    }
}

fn read_optional(path: Option<&Path>) -> Result<String, std::io::Error> {
    let Some(path) = path else {
        return Ok(String::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("reading {}: {e}", path.display()),
        )),
    }
}

/// The profile `name` from the texts of the config and credentials files.
pub fn profile_from(name: &str, config_text: &str, credentials_text: &str) -> Profile {
    let config = sections(config_text);
    let credentials = sections(credentials_text);
    let config_section = config
        .get(&format!("profile {name}"))
        .or_else(|| (name == "default").then(|| config.get("default")).flatten());
    let credentials_section = credentials.get(name);
    let pick = |key: &str| {
        credentials_section
            .and_then(|s| s.get(key))
            .or_else(|| config_section.and_then(|s| s.get(key)))
            .cloned()
    };
    Profile {
        access_key_id: pick("aws_access_key_id"),
        secret_access_key: pick("aws_secret_access_key"),
        session_token: pick("aws_session_token"),
        region: config_section.and_then(|s| s.get("region")).cloned(),
        endpoint_url: config_section.and_then(|s| s.get("endpoint_url")).cloned(),
    }
}

/// Section name (inner whitespace collapsed to one space) → its top-level keys; a repeated
/// section or key: the later one wins. Indented lines are sub-properties and skipped.
fn sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            current = trimmed
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .map(|(name, _)| name.split_whitespace().collect::<Vec<_>>().join(" "));
            if let Some(name) = &current {
                out.entry(name.clone()).or_default();
            }
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let (Some(section), Some((key, value))) = (&current, trimmed.split_once('=')) else {
            continue;
        };
        let value = strip_inline_comment(value.trim());
        if value.is_empty() {
            continue;
        }
        out.entry(section.clone())
            .or_default()
            .insert(key.trim().to_ascii_lowercase(), value.to_owned());
    }
    out
}

/// `value  # note` → `value` (a comment needs whitespace before it, as in the AWS tools).
fn strip_inline_comment(value: &str) -> &str {
    let cut = value
        .char_indices()
        .find(|&(i, c)| (c == '#' || c == ';') && value[..i].ends_with(char::is_whitespace))
        .map(|(i, _)| i);
    match cut {
        Some(i) => value[..i].trim_end(),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
# comment
[default]
region = eu-west-1
output = json

[profile moto]
region=us-west-2   ; inline comment
endpoint_url = http://127.0.0.1:5000
s3 =
  addressing_style = path
aws_access_key_id = from-config
[profile   spaced  ]
region = ap-south-1
";

    const CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = secret/with#hash
[moto]
aws_access_key_id = AKIMOTO
aws_secret_access_key = motosecret
aws_session_token = tok
";

    #[test]
    fn the_default_profile_takes_config_region_and_credentials_keys() {
        let p = profile_from("default", CONFIG, CREDENTIALS);
        assert_eq!(
            p,
            Profile {
                access_key_id: Some("AKIDEFAULT".into()),
                secret_access_key: Some("secret/with#hash".into()),
                session_token: None,
                region: Some("eu-west-1".into()),
                endpoint_url: None,
            }
        );
    }

    #[test]
    fn a_named_profile_uses_profile_sections_and_credentials_win_over_config() {
        let p = profile_from("moto", CONFIG, CREDENTIALS);
        assert_eq!(p.access_key_id.as_deref(), Some("AKIMOTO"));
        assert_eq!(p.secret_access_key.as_deref(), Some("motosecret"));
        assert_eq!(p.session_token.as_deref(), Some("tok"));
        assert_eq!(p.region.as_deref(), Some("us-west-2"));
        assert_eq!(p.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn sub_sections_are_skipped_and_section_names_are_normalised() {
        let p = profile_from("spaced", CONFIG, "");
        assert_eq!(p.region.as_deref(), Some("ap-south-1"));
        let all = sections(CONFIG);
        assert!(!all["profile moto"].contains_key("addressing_style"));
        assert!(!all["profile moto"].contains_key("s3"));
    }

    #[test]
    fn a_profile_in_config_is_not_found_under_its_bare_name() {
        // `[moto]` in config is not the profile "moto" (only `[profile moto]` is).
        let p = profile_from("moto", "[moto]\nregion = x\n", "");
        assert_eq!(p, Profile::default());
    }

    #[test]
    fn missing_files_are_empty_and_the_environment_picks_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let env = |k: &str| match k {
            "HOME" => Some(dir.path().display().to_string()),
            "AWS_PROFILE" => Some("moto".to_owned()),
            _ => None,
        };
        let source = ProfileSource::from_env(&env);
        assert_eq!(source.name, "moto");
        assert_eq!(
            source.config_file.as_deref(),
            Some(dir.path().join(".aws/config").as_path())
        );
        assert_eq!(source.load().expect("load"), Profile::default());
        std::fs::create_dir_all(dir.path().join(".aws")).expect("mkdir");
        std::fs::write(dir.path().join(".aws/config"), CONFIG).expect("write");
        std::fs::write(dir.path().join(".aws/credentials"), CREDENTIALS).expect("write");
        assert_eq!(
            source.load().expect("load").access_key_id.as_deref(),
            Some("AKIMOTO")
        );
    }

    #[test]
    fn file_overrides_come_from_the_environment() {
        let env = |k: &str| match k {
            "AWS_CONFIG_FILE" => Some("/etc/aws/config".to_owned()),
            "AWS_SHARED_CREDENTIALS_FILE" => Some("/etc/aws/creds".to_owned()),
            _ => None,
        };
        let source = ProfileSource::from_env(&env);
        assert_eq!(source.name, "default");
        assert_eq!(
            source.credentials_file.as_deref(),
            Some(Path::new("/etc/aws/creds"))
        );
        assert_eq!(
            source.config_file.as_deref(),
            Some(Path::new("/etc/aws/config"))
        );
    }
}
