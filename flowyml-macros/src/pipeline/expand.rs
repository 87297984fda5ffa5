//! A checked `#[pipeline]` into code: the module unchanged, plus
//! `pipeline()`, `NAME`, the registration, and one type check per edge.
//!
//! Type agreement between a producer and a consumer is left to rustc, which
//! knows what the type names resolve to: for each edge the expansion
//! requires `Consumer: SameType<Producer>` through a local trait whose
//! `#[diagnostic::on_unimplemented]` message names the pipeline, both
//! steps and the artifact, spanned at the consumer's parameter type.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
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
    let checks = edges.iter().enumerate().map(|(k, ((pi, o), (ci, i)))| {
        let (producer, consumer) = (&steps[*pi], &steps[*ci]);
        let out_ty = &producer.outputs[*o].ty;
        let in_ty = &consumer.inputs[*i].ty;
        let message = format!(
            "pipeline `{name}`: step `{}` takes artifact `{}` as `{{Self}}`, but step `{}` produces it as `{{T}}`",
            consumer.name, consumer.inputs[*i].name, producer.name
        );
        let note = format!(
            "`{}` is the output of `{}`; change one of the two types so they agree",
            consumer.inputs[*i].name, producer.name
        );
        let trait_ = format_ident!("__FlowymlSameType{}", k);
        let span = in_ty
            .to_token_stream()
            .into_iter()
            .next()
            .map_or_else(Span::call_site, |t| t.span());
        let call = quote_spanned!(span=> __require::<#in_ty, #out_ty>(););
        quote! {
            const _: () = {
                #[diagnostic::on_unimplemented(message = #message, label = "artifact type mismatch", note = #note)]
                trait #trait_<T: ?Sized> {}
                impl<T: ?Sized> #trait_<T> for T {}
                #[allow(dead_code)]
                fn __check() {
                    fn __require<A: ?Sized + #trait_<B>, B: ?Sized>() {}
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
