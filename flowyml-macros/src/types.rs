//! Types as the user wrote them, for messages.

use quote::ToTokens;
use syn::Type;

/// A type as written, compacted for messages (`Vec<f64>`, not `Vec < f64 >`).
pub fn type_name(ty: &syn::Type) -> String {
    let mut s = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// The owned type a borrowed `&T` stands for (`&str` → `String`).
pub fn owned_form(ty: &Type) -> String {
    match ty {
        Type::Slice(s) => format!("Vec<{}>", type_name(&s.elem)),
        Type::Path(p) if p.path.is_ident("str") => "String".to_owned(),
        Type::Path(p) if p.path.is_ident("Path") => "PathBuf".to_owned(),
        other => type_name(other),
    }
}
