use anyhow::Result;

use crate::args::DeleteArgs;
use crate::context::Context;
use crate::exit::Exit;

pub fn run(ctx: &Context, args: DeleteArgs) -> Result<Exit> {
    wasm_host_store::validate_name(&args.name)?;
    let store = ctx.open_store()?;
    store.delete(&args.name)?;
    eprintln!("deleted connection `{}` and its secrets", args.name);
    Ok(Exit::Ok)
}
