//! A checked step into code: the renamed function, a unit struct of the
//! same name that derefs to it (so `clean(&raw)` still compiles) and
//! implements `Step`, a static `StepSpec` registered through `inventory`.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ReturnType};

use super::model::StepModel;

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

fn artifact_specs<'a>(items: impl Iterator<Item = (&'a str, &'a syn::Type)>) -> TokenStream {
    let specs = items.map(|(name, ty)| {
        let tn = type_name(ty);
        quote! {
            ::flowyml::__private::ArtifactSpec {
                name: ::flowyml::__private::Cow::Borrowed(#name),
                type_name: ::flowyml::__private::Cow::Borrowed(#tn),
                type_id: ::core::any::TypeId::of::<#ty>,
            }
        }
    });
    quote!(::flowyml::__private::Cow::Borrowed(&[#(#specs),*]))
}

pub fn expand(model: &StepModel) -> TokenStream {
    let func = &model.func;
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let body_ident = format_ident!("__flowyml_step_{}", ident);
    let (docs, attrs): (Vec<_>, Vec<_>) = func.attrs.iter().partition(|a| a.path().is_ident("doc"));

    let mut body_fn = func.clone();
    body_fn.sig.ident = body_ident.clone();
    body_fn.attrs = attrs.iter().map(|a| (*a).clone()).collect();
    body_fn.vis = syn::Visibility::Inherited;

    let param_tys: Vec<TokenStream> = func
        .sig
        .inputs
        .iter()
        .map(|a| match a {
            FnArg::Typed(t) => t.ty.to_token_stream(),
            FnArg::Receiver(r) => r.to_token_stream(),
        })
        .collect();
    let ret = match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };

    let name = &model.name;
    let inputs = artifact_specs(model.inputs.iter().map(|i| (i.name.as_str(), &i.ty)));
    let outputs = artifact_specs(model.outputs.iter().map(|o| (o.name.as_str(), &o.ty)));
    let fingerprint = model.fingerprint;
    let gpu = model.gpu;
    let watch = &model.watch;

    // Arguments in parameter order: artifacts from the context, the GPU
    // context from the run's resources.
    let mut args: Vec<TokenStream> = vec![TokenStream::new(); func.sig.inputs.len()];
    for (slot, input) in model.inputs.iter().enumerate() {
        let ty = &input.ty;
        args[input.param] = if input.borrowed {
            quote!(__ctx.input::<#ty>(#slot)?)
        } else {
            // An owned parameter is a clone of the shared artifact; a type
            // that is not `Clone` is reported at the parameter's type.
            quote_spanned!(ty.span()=> <#ty as ::core::clone::Clone>::clone(__ctx.input::<#ty>(#slot)?))
        };
    }
    if let Some(p) = model.gpu_param {
        args[p] = quote!(__ctx.resource::<::flowyml::gpu::Gpu>()?);
    }
    let unwrap = if model.fallible {
        quote! {
            let __out = match __out {
                ::core::result::Result::Ok(v) => v,
                ::core::result::Result::Err(e) => return ::core::result::Result::Err(::flowyml::__private::StepError::new(e)),
            };
        }
    } else {
        TokenStream::new()
    };
    let store = match model.outputs.len() {
        0 => quote!(let () = __out;),
        1 => quote!(__ctx.set_output(0, __out);),
        n => {
            let parts: Vec<_> = (0..n).map(|i| format_ident!("__o{}", i)).collect();
            let idx = 0..n;
            quote! {
                let (#(#parts,)*) = __out;
                #( __ctx.set_output(#idx, #parts); )*
            }
        }
    };
    let codecs = model.outputs.iter().map(|o| {
        let ty = &o.ty;
        quote!((&&&::flowyml::__private::probe::Probe::<#ty>::new()).__flowyml_codec())
    });

    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::ptr_arg, clippy::too_many_arguments)]
        #body_fn

        #(#docs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default)]
        #vis struct #ident;

        const _: () = {
            static SPEC: ::flowyml::__private::StepSpec = ::flowyml::__private::StepSpec {
                name: ::flowyml::__private::Cow::Borrowed(#name),
                module_path: ::flowyml::__private::Cow::Borrowed(::core::module_path!()),
                location: (::core::file!(), ::core::line!()),
                inputs: #inputs,
                outputs: #outputs,
                code_fingerprint: [#(#fingerprint),*],
                gpu: #gpu,
                watch: ::flowyml::__private::Cow::Borrowed(&[#(#watch),*]),
            };
            ::flowyml::__private::inventory::submit! {
                ::flowyml::__private::RegisteredStep(&SPEC)
            }

            impl ::core::ops::Deref for #ident {
                type Target = fn(#(#param_tys),*) -> #ret;
                fn deref(&self) -> &Self::Target {
                    const BODY: fn(#(#param_tys),*) -> #ret = #body_ident;
                    &BODY
                }
            }

            impl ::flowyml::__private::Step for #ident {
                fn spec(&self) -> &::flowyml::__private::StepSpec {
                    &SPEC
                }

                fn run(
                    &self,
                    __ctx: &mut ::flowyml::__private::StepContext<'_>,
                ) -> ::core::result::Result<(), ::flowyml::__private::StepError> {
                    let __out = #body_ident(#(#args),*);
                    #unwrap
                    #store
                    ::core::result::Result::Ok(())
                }

                fn codecs(&self) -> ::std::vec::Vec<::flowyml::__private::Codec> {
                    #[allow(unused_imports)]
                    use ::flowyml::__private::probe::{ViaArtifactCodec as _, ViaHash as _, ViaOpaque as _, ViaSerde as _};
                    ::std::vec![#(#codecs),*]
                }
            }
        };
    }
}
