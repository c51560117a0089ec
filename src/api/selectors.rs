//! List options from the query string: `labelSelector`, `fieldSelector` and `watch`, decoded
//! as the apiserver decodes them (form encoding, `+` as space). `resourceVersion`, `limit`,
//! `continue` and `timeoutSeconds` are accepted and ignored, as upstream does.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::ApiError;
use crate::inventory::selector::LabelSelector;

/// One `fieldSelector` term on an object field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldTerm {
    Name { value: String, equal: bool },
    Namespace { value: String, equal: bool },
}

/// A parsed `fieldSelector`; only `metadata.name` and `metadata.namespace` are fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        for term in split_unescaped(text, ',') {
            if term.is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some((f, v)) = split_operator(&term, "!=") {
                (f, v, false)
            } else if let Some((f, v)) = split_operator(&term, "==").or_else(|| split_operator(&term, "=")) {
                (f, v, true)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{text}'; can't understand '{term}'"
                )));
            };
            let value = unescape(&value);
            terms.push(match field.as_str() {
                "metadata.name" => FieldTerm::Name { value, equal },
                "metadata.namespace" => FieldTerm::Namespace { value, equal },
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "{other:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    )))
                }
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Matches an object's fields. Nodes have no namespace field at all (upstream's field set
    /// for nodes holds only the name), so `metadata.namespace=x` matches no node unless x is empty.
    pub fn matches(&self, name: &str, namespace: Option<&str>) -> bool {
        self.terms.iter().all(|term| match term {
            FieldTerm::Name { value, equal } => (name == value) == *equal,
            FieldTerm::Namespace { value, equal } => (namespace.unwrap_or("") == value) == *equal,
        })
    }
}

/// Splits on `sep` not preceded by a backslash.
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            if let Some(last) = parts.last_mut() {
                last.push('\\');
                last.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn split_operator(term: &str, op: &str) -> Option<(String, String)> {
    let i = term.find(op)?;
    Some((term[..i].trim().to_owned(), term[i + op.len()..].to_owned()))
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The list options a request carries.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub watch: bool,
}

impl ListOptions {
    /// Whether the options select every object (no label or field terms).
    pub fn selects_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.terms.is_empty()
    }

    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut options = ListOptions::default();
        for (key, value) in form_pairs(query.unwrap_or("")) {
            match key.as_ref() {
                "labelSelector" => {
                    options.labels = LabelSelector::parse(&value).map_err(|e| ApiError::BadRequest(e.to_string()))?
                }
                "fieldSelector" => options.fields = FieldSelector::parse(&value)?,
                "watch" => options.watch = parse_bool(&value)?,
                _ => {}
            }
        }
        Ok(options)
    }
}

/// Go's `strconv.ParseBool`, which the apiserver uses for `watch`; empty means false.
fn parse_bool(value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(ApiError::BadRequest(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// `application/x-www-form-urlencoded` pairs, as Go's `url.ParseQuery` reads them.
pub fn form_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k), form_decode(v))
    })
}

fn form_decode(text: &str) -> Cow<'_, str> {
    if text.contains('+') {
        let spaced = text.replace('+', " ");
        Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
    } else {
        percent_decode_str(text).decode_utf8_lossy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_match_name_and_namespace() {
        let s = FieldSelector::parse("metadata.name=pod3,metadata.namespace==testValue").unwrap();
        assert!(s.matches("pod3", Some("testValue")));
        assert!(!s.matches("pod3", Some("other")));
        let not = FieldSelector::parse("metadata.name!=node4").unwrap();
        assert!(not.matches("node2", None) && !not.matches("node4", None));
    }

    #[test]
    fn nodes_have_no_namespace_field() {
        let s = FieldSelector::parse("metadata.namespace=x").unwrap();
        assert!(!s.matches("node1", None));
        assert!(FieldSelector::parse("metadata.namespace=")
            .unwrap()
            .matches("node1", None));
    }

    #[test]
    fn unknown_fields_are_rejected_with_the_apiservers_message() {
        let err = FieldSelector::parse("spec.nodeName=n1").unwrap_err();
        assert_eq!(
            err,
            ApiError::BadRequest(
                "\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    .into()
            )
        );
    }

    #[test]
    fn query_strings_are_form_decoded() {
        let o =
            ListOptions::from_query(Some("labelSelector=app%3Dweb%2Ctier+in+(a%2Cb)&limit=500&watch=false")).unwrap();
        let labels = [("app", "web"), ("tier", "b")].iter().map(|(k, v)| (*k, *v)).collect();
        assert!(o.labels.matches(&labels));
        assert!(!o.watch);
        assert!(ListOptions::from_query(Some("watch=1")).unwrap().watch);
        assert!(matches!(
            ListOptions::from_query(Some("labelSelector=a%3D%3D%3Db")),
            Err(ApiError::BadRequest(_))
        ));
    }
}
