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

/// The expression `(&&&&&..::Returned::<R>::probe()).__flowyml_values()`:
/// a `Probe` of what a step returning `ret` outputs (shared with
/// `#[pipeline]`'s type checks, which need the same types).
pub fn values_probe(p: &TokenStream, ret: &syn::Type) -> TokenStream {
    quote!((&&&&&#p::returned::Returned::<#ret>::probe()).__flowyml_values())
}

/// The traits `values_probe`'s expression needs in scope.
pub fn returned_traits(p: &TokenStream) -> TokenStream {
    quote! {
        #[allow(unused_imports)]
        use #p::returned::{ViaDebug as _, ViaDisplay as _, ViaError as _, ViaUnshownError as _, ViaValue as _};
    }
}

/// Binds `__o0`, `__o1`, .. to a `Probe` of each of the step's `n` outputs,
/// given `__values`, the probe of all of them (spanned at the return type,
/// where a wrong arity is reported).
pub fn output_probes(p: &TokenStream, n: usize, ret_span: proc_macro2::Span) -> TokenStream {
    let parts: Vec<_> = (0..n).map(|i| format_ident!("__o{}", i)).collect();
    match n {
        0 => TokenStream::new(),
        1 => quote!(let __o0 = __values;),
        n => quote_spanned!(ret_span=>
            let (#(#parts,)*) = <_ as #p::returned::ReturnsOutputs<#n>>::probes(__values);
        ),
    }
}

pub fn expand(model: &StepModel) -> TokenStream {
    let func = &model.func;
    let ident = &func.sig.ident;
    let krate = &model.krate;
    // Every path the expansion names goes through `__private`, so that a
    // crate re-exporting the macros works with `crate = ".."`.
    let p = quote!(#krate::__private);

    let name = &model.name;
    let n = model.outputs.len();
    let ret = &model.ret;
    let ret_span = model.ret_span;
    let traits = returned_traits(&p);
    let values_expr = values_probe(&p, ret);
    let probes = output_probes(&p, n, ret_span);
    let output_names = model.outputs.iter().map(|o| &o.name);
    let outs: Vec<_> = (0..n).map(|i| format_ident!("__o{}", i)).collect();
    // Each artifact type must be shareable: checked at the user's type for
    // inputs here, and for outputs by `set_output`, at the output's name.
    let input_checks = model.inputs.iter().enumerate().map(|(k, i)| {
        let ty = &i.ty;
        let probe = format_ident!("__i{}", k, span = ty.span());
        let arg = quote_spanned!(ty.span()=> &#probe);
        quote! {
            let #probe = #p::probe::Probe::<#ty>::new();
            #p::probe::artifact_type(#arg);
        }
    });
    let input_specs = model.inputs.iter().map(|i| {
        let (ty, name) = (&i.ty, &i.name);
        quote!(#p::ArtifactSpec::of::<#ty>(#name))
    });
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
    // Each output's value is named with the span of its name in
    // `outputs`, where `set_output` reports a type that cannot be an
    // artifact.
    let values: Vec<_> = model
        .outputs
        .iter()
        .enumerate()
        .map(|(i, o)| format_ident!("__v{}", i, span = o.span))
        .collect();
    let idx = 0..n;
    let store = match n {
        0 => quote_spanned!(ret_span=> <_ as #p::returned::ReturnsNothing>::nothing(__out);),
        1 => quote!(let #(#values)* = __out;),
        n => {
            let parts =
                quote_spanned!(ret_span=> <_ as #p::returned::ReturnsOutputs<#n>>::parts(__out));
            quote!(let (#(#values,)*) = #parts;)
        }
    };
    let store = quote! {
        #store
        #( __ctx.set_output(#idx, #values); )*
    };
    // Four borrows: the probe's impls are on `&&&Probe` (own codec) down
    // to `Probe` (opaque), and method lookup tries the most borrowed first.
    let probe = |ty: &syn::Type| quote!((&&&&#p::probe::Probe::<#ty>::new()).__flowyml_codec());
    let output_codecs = outs.iter().map(|o| quote!((&&&&#o).__flowyml_codec()));
    let input_codecs = model.inputs.iter().map(|i| probe(&i.ty));

    quote! {
        // `&Vec<T>` is the natural parameter for a `Vec<T>` artifact.
        #[allow(clippy::ptr_arg)]
        #func

        const _: () = {
            /// The spec and the output and input codecs (the outputs' need
            /// the output types).
            static SPEC: #p::LazyLock<(#p::StepSpec, ::std::vec::Vec<#p::Codec>, ::std::vec::Vec<#p::Codec>)> = #p::LazyLock::new(|| {
                #traits
                #[allow(unused_imports)]
                use #p::probe::{ViaArtifactCodec as _, ViaHash as _, ViaOpaque as _, ViaSerde as _};
                let __values = #values_expr;
                #probes
                #(#input_checks)*
                let spec = #p::StepSpec {
                    name: #p::Cow::Borrowed(#name),
                    module_path: #p::Cow::Borrowed(::core::module_path!()),
                    location: (::core::file!(), ::core::line!()),
                    inputs: #p::Cow::Owned(::std::vec![#(#input_specs),*]),
                    outputs: #p::Cow::Owned(::std::vec![#(#p::ArtifactSpec::of_probe(#output_names, &#outs)),*]),
                    code_fingerprint: [#(#fingerprint),*],
                    resources: #resources,
                    watch: #p::Cow::Borrowed(&[#(#watch),*]),
                    retries: #retries,
                    backoff: #backoff,
                    timeout: #timeout,
                };
                (spec, ::std::vec![#(#output_codecs),*], ::std::vec![#(#input_codecs),*])
            });

            struct __FlowymlStep;

            impl #p::Step for __FlowymlStep {
                fn spec(&self) -> &#p::StepSpec {
                    &SPEC.0
                }

                fn run(
                    &self,
                    __ctx: &mut #p::StepContext<'_>,
                ) -> ::core::result::Result<(), #p::BoxError> {
                    #(#bindings)*
                    let __out = #call;
                    #traits
                    let __out = (&&&&&#p::returned::Returned::new(__out)).__flowyml_value()?;
                    #store
                    ::core::result::Result::Ok(())
                }

                fn codecs(&self) -> #p::Cow<'_, [#p::Codec]> {
                    #p::Cow::Borrowed(&SPEC.1)
                }

                fn input_codecs(&self) -> #p::Cow<'_, [#p::Codec]> {
                    #p::Cow::Borrowed(&SPEC.2)
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
