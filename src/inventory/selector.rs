//! Kubernetes label selectors (`labels.Parse` syntax), matched against inventory labels: the
//! scraper uses them for `--node-selector`, the API for `labelSelector`.
//!
//! Supported: `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)`,
//! `key notin (a,b)`, `key>n`, `key<n`; requirements joined by commas are ANDed.

use super::Labels;

/// Why a selector could not be parsed; the API answers 400 with this text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Exists,
    DoesNotExist,
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    GreaterThan(i64),
    LessThan(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match &self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals(want) => value == Some(want.as_str()),
            Operator::NotEquals(want) => value != Some(want.as_str()),
            Operator::In(set) => value.is_some_and(|v| set.iter().any(|s| s == v)),
            Operator::NotIn(set) => value.is_none_or(|v| !set.iter().any(|s| s == v)),
            Operator::GreaterThan(n) => value.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
            Operator::LessThan(n) => value.and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for part in split_top_level(text.trim())? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(SelectorError("found ',', expected: identifier".into()));
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Both selectors must match.
    pub fn and(mut self, other: &LabelSelector) -> LabelSelector {
        self.requirements.extend(other.requirements.iter().cloned());
        self
    }
}

/// The selector in `labels.Parse` syntax (Go's `Selector.String`), for messages; parsing it
/// again gives an equal selector.
impl std::fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let key = &r.key;
            match &r.operator {
                Operator::Exists => write!(f, "{key}")?,
                Operator::DoesNotExist => write!(f, "!{key}")?,
                Operator::Equals(v) => write!(f, "{key}={v}")?,
                Operator::NotEquals(v) => write!(f, "{key}!={v}")?,
                Operator::In(vs) => write!(f, "{key} in ({})", vs.join(","))?,
                Operator::NotIn(vs) => write!(f, "{key} notin ({})", vs.join(","))?,
                Operator::GreaterThan(n) => write!(f, "{key}>{n}")?,
                Operator::LessThan(n) => write!(f, "{key}<{n}")?,
            }
        }
        Ok(())
    }
}

/// Splits on commas that are not inside `( … )`.
fn split_top_level(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| SelectorError("found ')', expected: identifier".into()))?
            }
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError("found '(', expected: ')'".into()));
    }
    if !text.is_empty() {
        parts.push(&text[start..]);
    }
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        validate_key(key)?;
        return Ok(Requirement {
            key: key.to_owned(),
            operator: Operator::DoesNotExist,
        });
    }
    let key_end = part.find(['=', '!', '<', '>', ' ', '\t']).unwrap_or(part.len());
    let key = &part[..key_end];
    validate_key(key)?;
    let rest = part[key_end..].trim_start();
    let key = key.to_owned();
    let operator = if rest.is_empty() {
        Operator::Exists
    } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        Operator::Equals(value(v)?)
    } else if let Some(v) = rest.strip_prefix("!=") {
        Operator::NotEquals(value(v)?)
    } else if let Some(v) = rest.strip_prefix('>') {
        Operator::GreaterThan(integer(v)?)
    } else if let Some(v) = rest.strip_prefix('<') {
        Operator::LessThan(integer(v)?)
    } else if let Some(v) = rest.strip_prefix("notin") {
        Operator::NotIn(set(v)?)
    } else if let Some(v) = rest.strip_prefix("in") {
        Operator::In(set(v)?)
    } else {
        return Err(SelectorError(format!(
            "found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
        )));
    };
    Ok(Requirement { key, operator })
}

fn value(text: &str) -> Result<String, SelectorError> {
    let v = text.trim();
    validate_value(v)?;
    Ok(v.to_owned())
}

fn integer(text: &str) -> Result<i64, SelectorError> {
    let t = text.trim();
    t.parse().map_err(|_| {
        SelectorError(format!(
            "for 'gt', 'lt' operators, the value must be an integer, got {t:?}"
        ))
    })
}

fn set(text: &str) -> Result<Vec<String>, SelectorError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| SelectorError(format!("found '{}', expected: '('", text.trim())))?;
    let values: Vec<String> = inner.split(',').map(value).collect::<Result<_, _>>()?;
    if values.iter().all(String::is_empty) {
        return Err(SelectorError(
            "for 'in', 'notin' operators, values set can't be empty".into(),
        ));
    }
    Ok(values)
}

/// A qualified name: optional DNS-subdomain prefix and `/`, then a name of at most 63
/// alphanumerics, `-`, `_` or `.`, beginning and ending alphanumeric.
fn validate_key(key: &str) -> Result<(), SelectorError> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !prefix_ok {
                return Err(SelectorError(format!(
                    "invalid label key {key:?}: prefix part must be a DNS subdomain"
                )));
            }
            name
        }
        None => key,
    };
    if name.is_empty() || !is_label_text(name) {
        return Err(SelectorError(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )));
    }
    Ok(())
}

fn validate_value(v: &str) -> Result<(), SelectorError> {
    if v.is_empty() || is_label_text(v) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "invalid label value: {v:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

fn is_label_text(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_selector_prints_in_parse_syntax_and_parses_back() {
        let text = "a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1,m<2";
        let parsed = LabelSelector::parse(text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert_eq!(LabelSelector::parse(&parsed.to_string()).unwrap(), parsed);
        assert_eq!(LabelSelector::parse("x == y").unwrap().to_string(), "x=y");
        assert_eq!(LabelSelector::default().to_string(), "");
    }

    fn matches(selector: &str, pairs: &[(&str, &str)]) -> bool {
        LabelSelector::parse(selector).unwrap().matches(&labels(pairs))
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches("", &[]));
        assert!(matches("  ", &[("a", "b")]));
    }

    #[test]
    fn equality_operators() {
        assert!(matches("labelKey=labelValue", &[("labelKey", "labelValue")]));
        assert!(matches("labelKey==labelValue", &[("labelKey", "labelValue")]));
        assert!(!matches("labelKey=labelValue", &[("labelKey", "otherValue")]));
        assert!(matches("skipKey!=skipValue", &[]));
        assert!(!matches("skipKey!=skipValue", &[("skipKey", "skipValue")]));
        assert!(matches(
            "metrics-server-skip!=true",
            &[("metrics-server-skip", "false")]
        ));
    }

    #[test]
    fn set_and_existence_operators() {
        assert!(matches("env in (prod, staging)", &[("env", "prod")]));
        assert!(!matches("env in (prod,staging)", &[("env", "dev")]));
        assert!(matches("env notin (prod)", &[]));
        assert!(matches("env", &[("env", "")]));
        assert!(matches("!env", &[]));
        assert!(!matches("!env", &[("env", "x")]));
        assert!(matches("tier>2", &[("tier", "3")]));
        assert!(!matches("tier<2", &[("tier", "x")]));
    }

    #[test]
    fn requirements_are_anded() {
        assert!(matches("a=1,b in (2,3),!c", &[("a", "1"), ("b", "3")]));
        assert!(!matches("a=1,b in (2,3),!c", &[("a", "1"), ("b", "3"), ("c", "")]));
        assert!(matches(
            "app.kubernetes.io/name=web",
            &[("app.kubernetes.io/name", "web")]
        ));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for bad in [
            "=x", "a=b=c", "a in b", "a in ()", "a,,b", "a=(", "a>x", "-a=b", "a b", "a=b)",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
