//! The data of one invocation's wasmtime store: WASI, wasi:http, authconnection.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::authconnection::{AuthConnectionCtx, AuthConnectionView};
use crate::http::OutboundHttp;

pub struct InvocationState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHttp,
    pub(crate) table: ResourceTable,
    pub(crate) auth: AuthConnectionCtx,
    pub(crate) limits: crate::function::MemoryLimit,
}

impl InvocationState {
    pub(crate) fn auth_view(&mut self) -> AuthConnectionView<'_> {
        AuthConnectionView { ctx: &self.auth }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}
