//! `${env:NAME}` substitution in property values.
//!
//! Only the `${env:` form is recognised; any other `$` or `${` is kept as written (Flume's own
//! `${filter['key']}` config-filter syntax is not supported and is left alone, so such a value is
//! visibly wrong rather than silently empty). A variable that is not set is an error: Flume's
//! `EnvVarResolverProperties` would leave the reference in place, and an agent writing to a
//! directory literally named `${env:DATA}` is worse than one that refuses to start.

/// Replaces every `${env:NAME}` in `value` using `lookup`. `NAME` is `[A-Za-z_][A-Za-z0-9_]*`.
pub fn substitute(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    const OPEN: &str = "${env:";
    if !value.contains(OPEN) {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "unterminated \"{OPEN}\": expected {OPEN}NAME}} in \"{value}\""
            ));
        };
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "\"{name}\" is not a valid environment variable name in \"{OPEN}{name}}}\""
            ));
        }
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "environment variable {name} is not set (referenced as {OPEN}{name}}})"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_every_reference() {
        assert_eq!(
            substitute("${env:HOME}/data:${env:HOME}", env).as_deref(),
            Ok("/home/u/data:/home/u")
        );
        assert_eq!(substitute("x${env:EMPTY}y", env).as_deref(), Ok("xy"));
        assert_eq!(substitute("plain", env).as_deref(), Ok("plain"));
    }

    #[test]
    fn other_dollar_forms_are_kept() {
        assert_eq!(
            substitute("$HOME ${HOME} ${f1['k']}", env).as_deref(),
            Ok("$HOME ${HOME} ${f1['k']}")
        );
    }

    #[test]
    fn unset_invalid_and_unterminated_are_errors() {
        assert_eq!(
            substitute("${env:NOPE}", env),
            Err("environment variable NOPE is not set (referenced as ${env:NOPE})".into())
        );
        assert_eq!(
            substitute("${env:1X}", env),
            Err("\"1X\" is not a valid environment variable name in \"${env:1X}\"".into())
        );
        assert_eq!(
            substitute("a ${env:HOME", env),
            Err("unterminated \"${env:\": expected ${env:NAME} in \"a ${env:HOME\"".into())
        );
    }
}
