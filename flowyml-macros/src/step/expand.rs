//! A checked step into code: the user's function, unchanged (so
//! `clean(&raw)` compiles and a binding named `clean` elsewhere is still a
//! binding), plus a hidden unit struct implementing `Step` by calling it,
//! and a static `StepSpec`, registered through `inventory` together with
//! the function item's `TypeId`. `add_step(clean)` finds the step by that
//! `TypeId`.
//!
//! (A unit struct *named like the function* would also make
//! `add_step(clean)` work, but a unit struct lives in the value namespace:
//! every `let clean = ..` or parameter `clean` in the module would then be
//! read as a pattern for it, a trap we fell into ourselves.)

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

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

fn artifact_specs<'a>(
    p: &TokenStream,
    items: impl Iterator<Item = (&'a str, &'a syn::Type)>,
) -> TokenStream {
    let specs = items.map(|(name, ty)| {
        let tn = type_name(ty);
        quote! {
            #p::ArtifactSpec {
                name: #p::Cow::Borrowed(#name),
                type_name: #p::Cow::Borrowed(#tn),
                type_id: ::core::any::TypeId::of::<#ty>,
            }
        }
    });
    quote!(#p::Cow::Borrowed(&[#(#specs),*]))
}

pub fn expand(model: &StepModel) -> TokenStream {
    let func = &model.func;
    let ident = &func.sig.ident;
    let krate = &model.krate;
    // Every path the expansion names goes through `__private`, so that a
    // crate re-exporting the macros works with `crate = ".."`.
    let p = quote!(#krate::__private);

    let name = &model.name;
    let inputs = artifact_specs(&p, model.inputs.iter().map(|i| (i.name.as_str(), &i.ty)));
    let outputs = artifact_specs(&p, model.outputs.iter().map(|o| (o.name.as_str(), &o.ty)));
    let fingerprint = model.fingerprint;
    let resources = if model.gpu {
        quote!(#p::Cow::Borrowed(&[#p::GPU]))
    } else {
        quote!(#p::Cow::Borrowed(&[]))
    };
    let watch = &model.watch;
    let retries = match model.retries {
        Some(n) => quote!(::core::option::Option::Some(#n)),
        None => quote!(::core::option::Option::None),
    };
    let nanos = |d: Option<u64>| match d {
        Some(ns) => quote!(::core::option::Option::Some(::core::time::Duration::from_nanos(#ns))),
        None => quote!(::core::option::Option::None),
    };
    let (backoff, timeout) = (nanos(model.backoff_ns), nanos(model.timeout_ns));

    // Arguments in parameter order: artifacts from the context (bound
    // first, so that the context itself can then be lent to the step), the
    // GPU from the run's resources.
    let mut args: Vec<TokenStream> = vec![TokenStream::new(); func.sig.inputs.len()];
    let mut bindings = Vec::new();
    for (slot, input) in model.inputs.iter().enumerate() {
        let ty = &input.ty;
        let binding = format_ident!("__in{}", slot);
        let value = if input.borrowed {
            quote!(__ctx.input::<#ty>(#slot)?)
        } else {
            // An owned parameter is a clone of the shared artifact; a type
            // that is not `Clone` is reported at the parameter's type.
            quote_spanned!(ty.span()=> <#ty as ::core::clone::Clone>::clone(__ctx.input::<#ty>(#slot)?))
        };
        bindings.push(quote!(let #binding = #value;));
        args[input.param] = quote!(#binding);
    }
    if let Some((param, mutable)) = model.context_param {
        args[param] = if mutable {
            quote!(&mut *__ctx)
        } else {
            quote!(&*__ctx)
        };
    }
    let call = match model.gpu_param {
        None => quote!(#ident(#(#args),*)),
        Some(gpu) => {
            let cpu_args: Vec<_> = args
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != gpu)
                .map(|(_, a)| a.clone())
                .collect();
            args[gpu] = quote!(__gpu);
            let without_gpu = match &model.fallback {
                Some(fallback) => {
                    let name = fallback.to_token_stream().to_string().replace(' ', "");
                    quote! {{
                        __ctx.note(::std::format!("no GPU ({}): ran the CPU fallback `{}`", __e, #name));
                        #fallback(#(#cpu_args),*)
                    }}
                }
                None => quote!(return ::core::result::Result::Err(__e)),
            };
            quote! {
                match __ctx.resource::<#p::Gpu>() {
                    ::core::result::Result::Ok(__gpu) => #ident(#(#args),*),
                    ::core::result::Result::Err(__e) => #without_gpu,
                }
            }
        }
    };
    let unwrap = if model.fallible {
        quote! {
            let __out = match __out {
                ::core::result::Result::Ok(v) => v,
                ::core::result::Result::Err(e) => {
                    #[allow(unused_imports)]
                    use #p::fallible::{ViaDisplay as _, ViaError as _};
                    return ::core::result::Result::Err((&&&#p::fallible::Failure::new(e)).__flowyml_box());
                }
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
    // Four borrows: the probe's impls are on `&&&Probe` (own codec) down
    // to `Probe` (opaque), and method lookup tries the most borrowed first.
    let probe = |ty: &syn::Type| quote!((&&&&#p::probe::Probe::<#ty>::new()).__flowyml_codec());
    let codecs = model.outputs.iter().map(|o| probe(&o.ty));
    let input_codecs = model.inputs.iter().map(|i| probe(&i.ty));

    quote! {
        // `&Vec<T>` is the natural parameter for a `Vec<T>` artifact.
        #[allow(clippy::ptr_arg)]
        #func

        const _: () = {
            static SPEC: #p::StepSpec = #p::StepSpec {
                name: #p::Cow::Borrowed(#name),
                module_path: #p::Cow::Borrowed(::core::module_path!()),
                location: (::core::file!(), ::core::line!()),
                inputs: #inputs,
                outputs: #outputs,
                code_fingerprint: [#(#fingerprint),*],
                resources: #resources,
                watch: #p::Cow::Borrowed(&[#(#watch),*]),
                retries: #retries,
                backoff: #backoff,
                timeout: #timeout,
            };

            struct __FlowymlStep;

            impl #p::Step for __FlowymlStep {
                fn spec(&self) -> &#p::StepSpec {
                    &SPEC
                }

                fn run(
                    &self,
                    __ctx: &mut #p::StepContext<'_>,
                ) -> ::core::result::Result<(), #p::BoxError> {
                    #(#bindings)*
                    let __out = #call;
                    #unwrap
                    #store
                    ::core::result::Result::Ok(())
                }

                fn codecs(&self) -> ::std::vec::Vec<#p::Codec> {
                    #[allow(unused_imports)]
                    use #p::probe::{ViaArtifactCodec as _, ViaHash as _, ViaOpaque as _, ViaSerde as _};
                    ::std::vec![#(#codecs),*]
                }

                fn input_codecs(&self) -> ::std::vec::Vec<#p::Codec> {
                    #[allow(unused_imports)]
                    use #p::probe::{ViaArtifactCodec as _, ViaHash as _, ViaOpaque as _, ViaSerde as _};
                    ::std::vec![#(#input_codecs),*]
                }
            }

            #p::inventory::submit! {
                #p::RegisteredStep {
                    step: &__FlowymlStep,
                    function: || #p::type_id_of(&#ident),
                }
            }
        };
    }
}
