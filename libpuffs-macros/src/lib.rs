//! `#[puffs::ops]`: put it on `impl puffs::Ops for MyFs { ... }` and it adds
//! `const OPMASK: puffs::OpMask` listing exactly the ops the impl defines, so the
//! opmask can never fall out of step with the implementation.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{parse_macro_input, ImplItem, ItemImpl};

/// Methods of the `Ops` trait that are not kernel ops (never masked).
const NOT_OPS: &[&str] = &["root", "reclaim"];

#[proc_macro_attribute]
pub fn ops(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut imp = parse_macro_input!(item as ItemImpl);
    let ops: Vec<_> = imp
        .items
        .iter()
        .filter_map(|it| match it {
            ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
            _ => None,
        })
        .filter(|name| !NOT_OPS.contains(&name.as_str()))
        .map(|name| format_ident!("{}", camel_case(&name)))
        .collect();
    let konst: ImplItem = syn::parse_quote! {
        const OPMASK: ::puffs::OpMask = ::puffs::OpMask::of(&[#(::puffs::Op::#ops),*]);
    };
    imp.items.push(konst);
    quote!(#imp).into()
}

fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
