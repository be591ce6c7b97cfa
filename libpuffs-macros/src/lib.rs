//! `#[puffs::ops]`: put it on `impl puffs::Ops for MyFs { ... }` and it adds
//! `const OPMASK: puffs::OpMask` listing exactly the ops the impl defines, so the
//! opmask can never fall out of step with the implementation. It also stands in for
//! the associated type defaults Rust does not have yet: `type File = ();` and
//! `type Dir = ();` when the impl names no open-file state, and the shared stateless
//! object of a file system that leaves `open` / `opendir` out.

use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{parse_macro_input, ImplItem, ItemImpl};

/// Methods of the `Ops` trait that are not kernel ops (never masked).
const NOT_OPS: &[&str] = &[
    "root",
    "reclaim",
    "started",
    "stateless_file",
    "stateless_dir",
];

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
    add_file_types(&mut imp);
    quote!(#imp).into()
}

/// `type File = ()` / `type Dir = ()` when the impl has none, and, for an impl
/// without `open` / `opendir`, the object the kernel's stateless opens share.
fn add_file_types(imp: &mut ItemImpl) {
    let has_type = |name: &str| {
        imp.items
            .iter()
            .any(|it| matches!(it, ImplItem::Type(t) if t.ident == name))
    };
    let has_fn = |name: &str| {
        imp.items
            .iter()
            .any(|it| matches!(it, ImplItem::Fn(f) if f.sig.ident == name))
    };
    let mut add: Vec<ImplItem> = Vec::new();
    if !has_type("File") {
        add.push(syn::parse_quote! { type File = (); });
    }
    if !has_type("Dir") {
        add.push(syn::parse_quote! { type Dir = (); });
    }
    if !has_fn("open") {
        add.push(syn::parse_quote! {
            fn stateless_file() -> ::core::option::Option<Self::File> {
                ::core::option::Option::Some(::core::default::Default::default())
            }
        });
    }
    if !has_fn("opendir") {
        add.push(syn::parse_quote! {
            fn stateless_dir() -> ::core::option::Option<Self::Dir> {
                ::core::option::Option::Some(::core::default::Default::default())
            }
        });
    }
    imp.items.extend(add);
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
