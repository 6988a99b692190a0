//! The host side of `wit/`, generated. Private: the rest of the crate names these types through re-exports.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "function",
    imports: { default: async },
    exports: { default: async },
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
    },
    require_store_data_send: true,
});

pub use wasm_host::authconnection::authconnection::{
    add_to_linker as add_authconnection_to_linker, ConnectionToken, Error as AuthError, Host as AuthHost,
};
