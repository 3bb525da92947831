//! The one JAAS login-module line a Java Kafka client takes in `sasl.jaas.config`, read for
//! the username and password librdkafka needs (`sasl.username`, `sasl.password`).
//!
//! Grammar (as Kafka's `JaasConfig` reads it): a login-module class name, a control flag
//! (`required`, `requisite`, `sufficient` or `optional`), options `name=value` separated by
//! blanks, and a closing `;`. A value is a bare word or a double-quoted string in which `\x`
//! stands for `x`. Exactly one module is allowed, as in Kafka.
//!
//! Why a parser of our own: Flume users put this line in their files, and every error must name
//! what is wrong without ever showing the password, so messages mention option names and
//! positions, never values.

use std::fmt;

/// The login-module classes Sluice maps onto librdkafka.
pub const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// SCRAM-SHA-256 and SCRAM-SHA-512.
pub const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// Which login module a line names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginModule {
    /// `PlainLoginModule` (SASL/PLAIN).
    Plain,
    /// `ScramLoginModule` (SASL/SCRAM-SHA-256 and -512).
    Scram,
    /// Any other class (Kerberos's `Krb5LoginModule`, `OAuthBearerLoginModule`, ...).
    Other(String),
}

/// A parsed `sasl.jaas.config`. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasLogin {
    /// The module.
    pub module: LoginModule,
    /// Its options in order (`username`, `password`, ...).
    pub options: Vec<(String, String)>,
}

impl JaasLogin {
    /// The value of option `name`, if given.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for JaasLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.options.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("JaasLogin")
            .field("module", &self.module)
            .field("options", &names)
            .finish_non_exhaustive()
    }
}

/// Why a `sasl.jaas.config` cannot be read. Messages never contain an option's value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JaasError {
    /// Nothing but blanks.
    #[error(
        "is empty; expected `<LoginModule class> required username=\"...\" password=\"...\";`"
    )]
    Empty,
    /// The control flag is missing or not one of the four.
    #[error("the login module must be followed by a control flag (required, requisite, sufficient or optional)")]
    Flag,
    /// An option without `=` or without a name.
    #[error("expected an option `name=value` at character {at}")]
    Option {
        /// 1-based character position.
        at: usize,
    },
    /// A quoted value without its closing quote.
    #[error("the quoted value of option {name} has no closing quote")]
    Unterminated {
        /// The option.
        name: String,
    },
    /// No `;` after the options.
    #[error("must end with `;`")]
    NoSemicolon,
    /// More than one login module.
    #[error("names more than one login module; Kafka clients take exactly one")]
    SeveralModules,
    /// An option given twice.
    #[error("option {name} is given twice")]
    Duplicate {
        /// The option.
        name: String,
    },
}

/// Reads one JAAS login-module line. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<JaasLogin, JaasError> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let skip_blanks = |pos: &mut usize| {
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
    };
    let word = |pos: &mut usize| -> String {
        let start = *pos;
        while chars
            .get(*pos)
            .is_some_and(|c| !c.is_whitespace() && *c != ';' && *c != '=' && *c != '"')
        {
            *pos += 1;
        }
        chars[start..*pos].iter().collect()
    };
    skip_blanks(&mut pos);
    let class = word(&mut pos);
    if class.is_empty() {
        return Err(if pos >= chars.len() {
            JaasError::Empty
        } else {
            JaasError::Option { at: pos + 1 }
        });
    }
    skip_blanks(&mut pos);
    let flag = word(&mut pos);
    if !["required", "requisite", "sufficient", "optional"]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(&flag))
    {
        return Err(JaasError::Flag);
    }
    let mut options: Vec<(String, String)> = Vec::new();
    loop {
        skip_blanks(&mut pos);
        match chars.get(pos) {
            None => return Err(JaasError::NoSemicolon),
            Some(';') => {
                pos += 1;
                break;
            }
            Some(_) => {}
        }
        let at = pos + 1;
        let name = word(&mut pos);
        skip_blanks(&mut pos);
        if name.is_empty() || chars.get(pos) != Some(&'=') {
            return Err(JaasError::Option { at });
        }
        pos += 1;
        skip_blanks(&mut pos);
        let value = if chars.get(pos) == Some(&'"') {
            pos += 1;
            let mut value = String::new();
            loop {
                match chars.get(pos) {
                    None => return Err(JaasError::Unterminated { name }),
                    Some('"') => {
                        pos += 1;
                        break;
                    }
                    Some('\\') => match chars.get(pos + 1) {
                        Some(c) => {
                            value.push(*c);
                            pos += 2;
                        }
                        None => return Err(JaasError::Unterminated { name }),
                    },
                    Some(c) => {
                        value.push(*c);
                        pos += 1;
                    }
                }
            }
            value
        } else {
            let value = word(&mut pos);
            if value.is_empty() {
                return Err(JaasError::Option { at });
            }
            value
        };
        if options.iter().any(|(n, _)| *n == name) {
            return Err(JaasError::Duplicate { name });
        }
        options.push((name, value));
    }
    skip_blanks(&mut pos);
    if pos < chars.len() {
        return Err(JaasError::SeveralModules);
    }
    let module = match class.as_str() {
        PLAIN_MODULE => LoginModule::Plain,
        SCRAM_MODULE => LoginModule::Scram,
        _ => LoginModule::Other(class),
    };
    Ok(JaasLogin { module, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_scram_lines_give_username_and_password() {
        let l = parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"s3cr\\\"et\\\\x\";",
        )
        .unwrap();
        assert_eq!(l.module, LoginModule::Plain);
        assert_eq!(l.option("username"), Some("alice"));
        assert_eq!(l.option("password"), Some("s3cr\"et\\x"));
        let l = parse(
            "  org.apache.kafka.common.security.scram.ScramLoginModule REQUIRED\n username = bob password=pw ;  ",
        )
        .unwrap();
        assert_eq!(l.module, LoginModule::Scram);
        assert_eq!(l.option("username"), Some("bob"));
        assert_eq!(l.option("password"), Some("pw"));
        let l =
            parse("com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;").unwrap();
        assert_eq!(
            l.module,
            LoginModule::Other("com.sun.security.auth.module.Krb5LoginModule".into())
        );
    }

    #[test]
    fn malformed_lines_are_errors_that_never_show_the_password() {
        let secret = "hunter2-secret";
        let cases = [
            ("", JaasError::Empty),
            ("   ", JaasError::Empty),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule",
                JaasError::Flag,
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule mandatory username=a;",
                JaasError::Flag,
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=a password=\"hunter2-secret",
                JaasError::Unterminated {
                    name: "password".into(),
                },
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"hunter2-secret\\",
                JaasError::Unterminated {
                    name: "password".into(),
                },
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=a password=hunter2-secret",
                JaasError::NoSemicolon,
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required hunter2-secret;",
                JaasError::Option { at: 66 },
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=;",
                JaasError::Option { at: 66 },
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"hunter2-secret\" password=x;",
                JaasError::Duplicate {
                    name: "password".into(),
                },
            ),
            (
                "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"hunter2-secret\"; x required;",
                JaasError::SeveralModules,
            ),
            ("=", JaasError::Option { at: 1 }),
            ("\"", JaasError::Option { at: 1 }),
        ];
        for (text, expected) in cases {
            let got = parse(text);
            assert_eq!(got.as_ref().err(), Some(&expected), "{text}");
            assert!(!expected.to_string().contains(secret), "{expected}");
        }
        let ok = parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"hunter2-secret\";",
        )
        .unwrap();
        assert!(!format!("{ok:?}").contains(secret));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let pieces = [
            "org.x.M", " ", "required", "=", "\"", "\\", ";", "a", "é", "\n", "\t", "b=\"c\"",
        ];
        // Every sequence of up to four pieces.
        let mut inputs = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &inputs {
                for p in pieces {
                    next.push(format!("{s}{p}"));
                }
            }
            inputs.extend(next);
        }
        for input in inputs {
            let _ = parse(&input);
        }
    }
}
