//! Type names as a user writes them: [`std::any::type_name`] without the
//! module paths (`Vec<String>`, not `alloc::vec::Vec<alloc::string::String>`),
//! for messages, descriptions and graphs. Names are for people only:
//! artifacts are matched by `TypeId`.

use std::borrow::Cow;

/// `T`'s name without module paths.
pub fn of<T: ?Sized>() -> Cow<'static, str> {
    short(std::any::type_name::<T>())
}

/// `full` with every `a::b::` prefix removed; borrowed when there is none.
pub fn short(full: &'static str) -> Cow<'static, str> {
    if !full.contains("::") {
        return Cow::Borrowed(full);
    }
    let mut out = String::with_capacity(full.len());
    let is_path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut rest = full;
    while let Some(c) = rest.chars().next() {
        let len = if is_path_char(c) {
            let end = rest.find(|c| !is_path_char(c)).unwrap_or(rest.len());
            let path = &rest[..end];
            out.push_str(path.rsplit("::").next().unwrap_or(path));
            end
        } else {
            out.push(c);
            c.len_utf8()
        };
        rest = &rest[len..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_and_everything_else_stays() {
        assert_eq!(of::<u64>(), "u64");
        assert!(matches!(of::<u64>(), Cow::Borrowed(_)));
        assert_eq!(of::<Vec<String>>(), "Vec<String>");
        assert_eq!(
            of::<(f64, Option<std::sync::Arc<str>>)>(),
            "(f64, Option<Arc<str>>)"
        );
        assert_eq!(of::<[u8; 4]>(), "[u8; 4]");
        assert_eq!(
            of::<std::collections::HashMap<&'static str, Vec<u8>>>(),
            "HashMap<&str, Vec<u8>>"
        );
    }
}
