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

pub fn lazy_properties(args: TokenStream, item: TokenStream) -> TokenStream {
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
    let field = parse_args(args, &cx);
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

fn parse_args(args: TokenStream, cx: &Ctxt) -> syn::Ident {
    let args = Args::parse(args, "#[lazy_properties]", &[("field", Kind::Path)], cx);
    match args.path("field") {
        None => format_ident!("lazy"),
        Some(path) => path.get_ident().cloned().unwrap_or_else(|| {
            cx.error_at(path, "`field` names a field of the type: `field = cells`");
            format_ident!("lazy")
        }),
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
