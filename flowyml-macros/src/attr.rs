//! The attribute parser every macro shares: `key = value` pairs and bare
//! flags, each key known in advance with the kind of value it takes. An
//! unknown key (with a "did you mean") and a key given twice are errors at
//! the key, collected with the others.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{LitStr, Token};

use crate::ctxt::Ctxt;

/// What a key takes.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Nothing: `gpu`.
    Flag,
    /// A string: `name = "clean"`.
    Str,
    /// A list of strings: `outputs = ["a", "b"]`.
    StrList,
    /// A path: `fallback = add_one_cpu`.
    Path,
    /// An integer: `retries = 3`.
    Int,
}

/// A key's value, as parsed.
pub enum Value {
    /// A flag.
    Flag,
    /// A string.
    Str(LitStr),
    /// A list of strings, and the span of its brackets.
    StrList(Span, Vec<LitStr>),
    /// A path.
    Path(syn::Path),
    /// An integer.
    Int(syn::LitInt),
}

/// The parsed arguments of one attribute: every known key given once.
pub struct Args {
    values: Vec<(&'static str, Value)>,
    /// Whether the whole attribute parsed (after a syntax error or an
    /// unknown key, the keys after it were not read).
    complete: bool,
}

impl Args {
    /// Parses `tokens` against `keys` (each key and its kind), for
    /// the attribute `attribute` (`#[step]`), recording every problem in
    /// `cx`.
    pub fn parse(
        tokens: TokenStream,
        attribute: &str,
        keys: &[(&'static str, Kind)],
        cx: &Ctxt,
    ) -> Args {
        let mut values: Vec<(&'static str, Value)> = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let written = meta.path.to_token_stream().to_string().replace(' ', "");
            let Some(&(key, kind)) = keys.iter().find(|(k, _)| *k == written) else {
                let hint = flowyml_suggest::closest(&written, keys.iter().map(|(k, _)| *k))
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                let list = keys
                    .iter()
                    .map(|(k, _)| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(meta.error(format!(
                    "unknown {attribute} argument `{written}`{hint}: the arguments are {list}"
                )));
            };
            let value = match kind {
                Kind::Flag => {
                    if meta.input.peek(Token![=]) {
                        return Err(
                            meta.error(format!("`{key}` takes no value: write just `{key}`"))
                        );
                    }
                    Value::Flag
                }
                Kind::Str => Value::Str(meta.value()?.parse()?),
                Kind::StrList => {
                    let value = meta.value()?;
                    let content;
                    let brackets = syn::bracketed!(content in value);
                    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                    Value::StrList(brackets.span.join(), list.into_iter().collect())
                }
                Kind::Int => Value::Int(meta.value()?.parse()?),
                Kind::Path => {
                    let value = meta.value()?;
                    // `crate = "path"` as in serde and tokio, or a bare path.
                    if value.peek(LitStr) {
                        let lit: LitStr = value.parse()?;
                        Value::Path(lit.parse()?)
                    } else {
                        Value::Path(value.parse()?)
                    }
                }
            };
            if values.iter().any(|(k, _)| *k == key) {
                cx.error_at(
                    &meta.path,
                    format!("`{key}` is given twice in {attribute}: keep one"),
                );
            } else {
                values.push((key, value));
            }
            Ok(())
        });
        let complete = match parser.parse2(tokens) {
            Ok(()) => true,
            Err(e) => {
                cx.error(e);
                false
            }
        };
        Args { values, complete }
    }

    /// Whether every argument was read: rules about a missing key hold
    /// only then.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether flag `key` is set.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Value::Flag))
    }

    /// String `key`.
    pub fn str(&self, key: &str) -> Option<&LitStr> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// String list `key`, with its brackets' span.
    pub fn str_list(&self, key: &str) -> Option<(Span, &[LitStr])> {
        match self.get(key) {
            Some(Value::StrList(span, list)) => Some((*span, list)),
            _ => None,
        }
    }

    /// Integer `key`.
    pub fn int(&self, key: &str) -> Option<&syn::LitInt> {
        match self.get(key) {
            Some(Value::Int(i)) => Some(i),
            _ => None,
        }
    }

    /// Path `key`.
    pub fn path(&self, key: &str) -> Option<&syn::Path> {
        match self.get(key) {
            Some(Value::Path(p)) => Some(p),
            _ => None,
        }
    }
}

/// A duration as attributes write it, `200ms`, `30s`, `1.5s`, `2m`, `1h`,
/// `500us`, in nanoseconds; `None` if it is not one.
pub fn duration_ns(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    let ns = number * scale;
    (ns.is_finite() && ns >= 0.0 && ns < u64::MAX as f64).then_some(ns as u64)
}

#[cfg(test)]
mod tests {
    use super::duration_ns;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(duration_ns("200ms"), Some(200_000_000));
        assert_eq!(duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(duration_ns("2m"), Some(120_000_000_000));
        assert_eq!(duration_ns("30 sec"), None);
        assert_eq!(duration_ns("fast"), None);
    }
}
