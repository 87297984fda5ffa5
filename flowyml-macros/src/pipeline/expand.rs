//! A checked `#[pipeline]` into code: the module unchanged, plus
//! `pipeline()`, `NAME`, the registration, and one type check per edge.
//!
//! Type agreement between a producer and a consumer is left to rustc, which
//! knows what the type names resolve to, and what a producer outputs (an
//! alias of a `Result`, of a tuple: see `returned` in the library): for
//! each edge the expansion probes the producer's return type, as `#[step]`
//! does, and requires `Consumer: IsTheProducedType<Output>` through a local
//! trait whose `#[diagnostic::on_unimplemented]` message names the
//! pipeline, both steps, the artifact and the parameter type as written,
//! spanned at that parameter type.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};

use crate::types::type_name;
use syn::Item;

use super::check::Edge;
use super::parse::Parsed;

pub fn expand(parsed: Parsed, edges: &[Edge]) -> TokenStream {
    let Parsed {
        mut module,
        name,
        krate,
        steps,
        ..
    } = parsed;
    let p = quote!(#krate::__private);
    let idents: Vec<_> = steps.iter().map(|s| &s.func.sig.ident).collect();
    let traits = crate::step::expand::returned_traits(&p);
    let checks = edges.iter().map(|((pi, o), (ci, i))| {
        let (producer, consumer) = (&steps[*pi], &steps[*ci]);
        let input = &consumer.inputs[*i];
        let in_ty = &input.ty;
        let written = consumer.func.sig.inputs.iter().nth(input.param).map_or_else(String::new, |arg| match arg {
            syn::FnArg::Typed(t) => type_name(&t.ty),
            syn::FnArg::Receiver(_) => String::new(),
        }).replace('{', "{{").replace('}', "}}");
        let message = format!(
            "pipeline `{name}`: step `{}` takes artifact `{}` as `{written}`, but step `{}` produces a `{{T}}`",
            consumer.name, input.name, producer.name
        );
        let note = format!(
            "`{}` is the output of `{}`; change one of the two types so they agree (a step borrows an artifact `T` as `&T`)",
            input.name, producer.name
        );
        let span = in_ty
            .to_token_stream()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span());
        let values = crate::step::expand::values_probe(&p, &producer.ret);
        let probes = crate::step::expand::output_probes(&p, producer.outputs.len(), producer.ret_span);
        let produced = format_ident!("__o{}", o);
        // The produced type first: bound to it, the consumer's side is then
        // checked against the impl rather than unified through it.
        let call = quote_spanned!(span=> __require(#produced, __consumer););
        quote! {
            const _: () = {
                #[diagnostic::on_unimplemented(message = #message, label = "artifact type mismatch", note = #note)]
                trait IsTheProducedType<T: ?Sized> {}
                #[diagnostic::do_not_recommend]
                impl<T: ?Sized> IsTheProducedType<T> for T {}
                #[allow(dead_code, unused_variables)]
                fn __check() {
                    fn __require<B, A: IsTheProducedType<B>>(_: #p::probe::Probe<B>, _: #p::probe::Probe<A>) {}
                    #traits
                    let __values = #values;
                    #probes
                    let __consumer = #p::probe::Probe::<#in_ty>::new();
                    #call
                }
            };
        }
    });
    let doc = format!("The `{name}` pipeline of this module's steps, checked at compile time.");
    let generated: TokenStream = quote! {
        #[doc = #doc]
        pub fn pipeline() -> #p::Pipeline {
            let mut pipeline = #p::Pipeline::new(#name);
            #( pipeline.add_step(#idents); )*
            pipeline
        }

        /// The pipeline's name.
        pub const NAME: &str = #name;

        #p::inventory::submit! {
            #p::RegisteredPipeline {
                name: #name,
                module_path: ::core::module_path!(),
                build: pipeline,
            }
        }

        #(#checks)*
    };
    if let Some((_, items)) = &mut module.content {
        items.push(Item::Verbatim(generated));
    }
    module.into_token_stream()
}
