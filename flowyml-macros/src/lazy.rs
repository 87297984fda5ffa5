//! `#[lazy_properties]` on an `impl` block and `#[lazy_property]` on its
//! methods.
//!
//! For `impl T { #[lazy_property] fn p(&self) -> P { body } }` the
//! expansion is:
//! * `fn p(&self) -> &P`, reading `self.lazy`'s cell for `p`, initialised
//!   on first access by
//! * `fn __flowyml_lazy_p(&self) -> P { body }`, and
//! * a hidden struct of one `OnceLock` per property with
//!   `impl LazyHost for T { type Cells = that struct; }`, which sizes the
//!   `LazyCells<Self>` field of `T`.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, ReturnType};

use crate::attr::{Args, Kind};
use crate::ctxt::{Ctxt, with_item};

/// A checked lazy property.
struct Property {
    name: syn::Ident,
    ty: syn::Type,
}

pub fn lazy_properties(args: TokenStream, item: TokenStream, file: Option<&Path>) -> TokenStream {
    let mut imp = match syn::parse2::<ItemImpl>(item.clone()) {
        Ok(imp) => imp,
        Err(_) => {
            let err = syn::Error::new_spanned(
                &item,
                "#[lazy_properties] goes on an `impl` block: `#[lazy_properties] impl MyType { ... }`",
            );
            return with_item(item, err);
        }
    };
    let cx = Ctxt::new();
    let (field, named) = parse_args(args, &cx);
    let field = match storage(file, &imp.self_ty, &field) {
        Storage::Found | Storage::Unknown => field,
        // Reported here, where the fix goes, and expanded with the field
        // the type does have, so that only this error shows.
        Storage::Elsewhere(other) if !named => {
            cx.error_at(
                &imp.self_ty,
                format!(
                    "`{0}` keeps its lazy properties in field `{other}`, not `{field}`: write `#[lazy_properties(field = {other})]`",
                    type_ident(&imp.self_ty)
                ),
            );
            other
        }
        Storage::Elsewhere(_) | Storage::Missing => {
            cx.error_at(
                &imp.self_ty,
                format!(
                    "`{0}` has no field `{field}` for its lazy properties: add `{field}: LazyCells<Self>` to `{0}` (made with `LazyCells::new()`){1}",
                    type_ident(&imp.self_ty),
                    if named { "" } else { ", or name the field it has with `#[lazy_properties(field = ..)]`" }
                ),
            );
            // Plain methods, which still type-check.
            for item in &mut imp.items {
                if let ImplItem::Fn(f) = item {
                    f.attrs.retain(|a| !is_marker(a));
                }
            }
            let err = cx.check().expect_err("an error was just recorded");
            return with_item(quote::ToTokens::into_token_stream(imp), err);
        }
    };
    if imp.trait_.is_some() {
        cx.error_at(
            &imp.self_ty,
            "#[lazy_properties] goes on an inherent `impl` block, not on a trait impl",
        );
    }
    if !imp.generics.params.is_empty() {
        cx.error_at(
            &imp.generics,
            "#[lazy_properties] does not support generic impl blocks yet: use a concrete type, \
             or a `LazyValue` field",
        );
    }
    let properties = check_properties(&mut imp, &cx);
    // Valid properties are expanded even when others are not, so that the
    // type's `LazyCells` field still type-checks and only the real mistakes
    // are reported.
    let expanded = expand(imp, &field, properties);
    match cx.check() {
        Ok(()) => expanded,
        Err(err) => with_item(expanded, err),
    }
}

pub fn lazy_property_alone(_args: TokenStream, item: TokenStream) -> TokenStream {
    let err = syn::Error::new_spanned(
        &item,
        "#[lazy_property] only works on a method of an `impl` block marked `#[lazy_properties]`: \
         add `#[lazy_properties]` above the `impl` (and a `lazy: LazyCells<Self>` field to the type)",
    );
    with_item(item, err)
}

/// The field holding the cells, and whether the user named it.
fn parse_args(args: TokenStream, cx: &Ctxt) -> (syn::Ident, bool) {
    let args = Args::parse(args, "#[lazy_properties]", &[("field", Kind::Path)], cx);
    match args.path("field") {
        None => (format_ident!("lazy"), false),
        Some(path) => (
            path.get_ident().cloned().unwrap_or_else(|| {
                cx.error_at(path, "`field` names a field of the type: `field = cells`");
                format_ident!("lazy")
            }),
            true,
        ),
    }
}

/// What the type's definition says about the field holding the cells.
enum Storage {
    /// The type has the field.
    Found,
    /// The type has no such field but keeps `LazyCells` in this one.
    Elsewhere(syn::Ident),
    /// The type has no `LazyCells` field at all.
    Missing,
    /// The type is not defined in the `impl`'s file (or is not a named
    /// struct there): rustc reports a missing field.
    Unknown,
}

/// Looks the type up in the `impl`'s own source file: a macro sees only
/// the item it is on, and a missing field would otherwise be rustc's bare
/// "no field `lazy`", without the `field =` option that fixes it.
fn storage(file: Option<&Path>, self_ty: &syn::Type, field: &syn::Ident) -> Storage {
    let name = type_ident(self_ty);
    let Some(source) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        return Storage::Unknown;
    };
    let Ok(parsed) = syn::parse_file(&source) else {
        return Storage::Unknown;
    };
    let Some(fields) = find_struct(&parsed.items, &name) else {
        return Storage::Unknown;
    };
    if fields.named.iter().any(|f| f.ident.as_ref() == Some(field)) {
        return Storage::Found;
    }
    let is_cells = |ty: &syn::Type| matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "LazyCells"));
    match fields
        .named
        .iter()
        .find(|f| is_cells(&f.ty))
        .and_then(|f| f.ident.clone())
    {
        Some(other) => Storage::Elsewhere(other),
        None => Storage::Missing,
    }
}

/// The named fields of struct `name`, searched through inline modules too
/// (a name defined twice makes the answer unknown).
fn find_struct<'f>(items: &'f [syn::Item], name: &str) -> Option<&'f syn::FieldsNamed> {
    let mut found = Vec::new();
    fn walk<'f>(items: &'f [syn::Item], name: &str, found: &mut Vec<&'f syn::Fields>) {
        for item in items {
            match item {
                syn::Item::Struct(s) if s.ident == name => found.push(&s.fields),
                syn::Item::Mod(m) => {
                    if let Some((_, inner)) = &m.content {
                        walk(inner, name, found);
                    }
                }
                _ => {}
            }
        }
    }
    walk(items, name, &mut found);
    match found.as_slice() {
        [syn::Fields::Named(named)] => Some(named),
        _ => None,
    }
}

fn is_marker(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "lazy_property")
}

fn check_properties(imp: &mut ItemImpl, cx: &Ctxt) -> Vec<Property> {
    let mut properties = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(f) = item else { continue };
        if let Some(marker) = f.attrs.iter().find(|a| is_marker(a)) {
            if !matches!(marker.meta, syn::Meta::Path(_)) {
                cx.error_at(marker, "#[lazy_property] takes no arguments");
            }
            if let Some(p) = check_method(f, cx) {
                properties.push(p);
            }
        }
    }
    properties
}

fn check_method(f: &ImplItemFn, cx: &Ctxt) -> Option<Property> {
    let sig = &f.sig;
    // This method's own errors, so that a property with any is left out.
    let found = Ctxt::new();
    if let Some(a) = &sig.asyncness {
        found.error_at(a, "a lazy property cannot be `async`: compute the value synchronously, or keep a future in a `LazyValue`");
    }
    if !sig.generics.params.is_empty() {
        found.error_at(
            &sig.generics,
            "a lazy property cannot be generic: it caches one value per instance",
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) if r.mutability.is_some() => found.error_at(
            r,
            "a lazy property takes `&self`, not `&mut self`: the cached value is shared, so computing it cannot mutate the instance",
        ),
        Some(r @ FnArg::Receiver(_)) => found.error_at(r, "a lazy property takes `&self`: write `fn name(&self) -> T`"),
        _ => found.error_at(&sig.ident, "a lazy property is a method taking `&self`: write `fn name(&self) -> T`"),
    }
    for extra in sig.inputs.iter().skip(1) {
        found.error_at(
            extra,
            "a lazy property takes no parameter besides `&self`: its value is cached once per instance, so it cannot depend on arguments",
        );
    }
    let ty = match &sig.output {
        ReturnType::Type(_, ty) if matches!(**ty, syn::Type::Reference(_)) => {
            let syn::Type::Reference(r) = &**ty else {
                unreachable!()
            };
            let owned = crate::types::owned_form(&r.elem);
            found.error_at(
                ty,
                format!("a lazy property computes its value once and keeps it, so it returns an owned value: write `-> {owned}`; the accessor then returns `&{owned}`"),
            );
            None
        }
        ReturnType::Type(_, ty) => Some((**ty).clone()),
        ReturnType::Default => {
            found.error(syn::Error::new(
                sig.paren_token.span.close(),
                "a lazy property needs a return type: write `fn name(&self) -> T`",
            ));
            None
        }
    };
    match (found.check(), ty) {
        (Ok(()), Some(ty)) => Some(Property {
            name: sig.ident.clone(),
            ty,
        }),
        (Err(e), _) => {
            cx.error(e);
            None
        }
        (Ok(()), None) => None,
    }
}

fn expand(mut imp: ItemImpl, field: &syn::Ident, properties: Vec<Property>) -> TokenStream {
    let self_ty = imp.self_ty.clone();
    let cells = format_ident!("__FlowymlLazyCells{}", type_ident(&self_ty));
    let mut computes = Vec::new();
    for item in &mut imp.items {
        let ImplItem::Fn(f) = item else { continue };
        if !f.attrs.iter().any(is_marker) {
            continue;
        }
        f.attrs.retain(|a| !is_marker(a));
        let name = f.sig.ident.clone();
        // A method that failed the checks stays as the user wrote it.
        let Some(property) = properties.iter().find(|p| p.name == name) else {
            continue;
        };
        let ty = &property.ty;
        let compute = format_ident!("__flowyml_lazy_{}", name);

        // The user's body moves to a private method so that `self` keeps its
        // meaning and the accessor stays small enough to inline.
        let mut inner = f.clone();
        inner
            .attrs
            .retain(|a| !a.path().is_ident("doc") && !a.path().is_ident("inline"));
        inner.attrs.push(syn::parse_quote!(#[doc(hidden)]));
        inner.attrs.push(syn::parse_quote!(#[inline(never)]));
        inner.vis = syn::Visibility::Inherited;
        inner.sig.ident = compute.clone();
        computes.push(ImplItem::Fn(inner));

        // A missing storage field is reported at the method's `self`.
        let self_span = f.sig.inputs.first().map_or(name.span(), |a| a.span());
        let field = syn::Ident::new(&field.to_string(), self_span);
        let cell = quote_spanned! {self_span=> self.#field.__cells().#name };
        f.sig.output = syn::parse_quote!(-> &#ty);
        f.block = syn::parse_quote!({ #cell.get_or_init(|| self.#compute()) });
        f.attrs.push(syn::parse_quote!(#[inline]));
    }
    imp.items.extend(computes);
    let names = properties.iter().map(|p| &p.name);
    let tys = properties.iter().map(|p| &p.ty);
    quote! {
        #imp
        #[doc(hidden)]
        #[allow(non_camel_case_types, non_snake_case, missing_docs, unreachable_pub)]
        #[derive(Default)]
        pub struct #cells {
            #( #names: ::flowyml::__private::OnceLock<#tys>, )*
        }
        impl ::flowyml::__private::LazyHost for #self_ty {
            type Cells = #cells;
        }
    }
}

/// An identifier-safe name for a self type (`Foo`, `a::Foo`).
fn type_ident(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(String::new, |s| s.ident.to_string()),
        _ => String::new(),
    }
}
