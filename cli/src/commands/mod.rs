pub mod authorize;
pub mod build_js;
pub mod create;
pub mod delete;
pub mod import_token;
pub mod list;
pub mod run;
pub mod revoke;
