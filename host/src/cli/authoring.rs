//! `warden new` and `warden embed-docs`: the commands of plugin authors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use warden::authoring::{self, NewPlugin};

use super::write_stdout;

/// The `sdk` folder of the checkout this binary was built from.
pub(super) fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

/// `warden new NAME [--dir DIR] [--sdk PATH]`.
pub(super) fn new(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> Result<ExitCode> {
    let plan = NewPlugin {
        name: name.to_owned(),
        dir: dir.unwrap_or_else(|| PathBuf::from(name)),
        sdk: sdk.unwrap_or_else(default_sdk),
    };
    let written = authoring::new_plugin(&plan)?;
    let mut out = format!("created plugin {name} in {}:\n", plan.dir.display());
    for path in &written {
        let relative = path.strip_prefix(&plan.dir).unwrap_or(path);
        out.push_str(&format!("  {}\n", relative.display()));
    }
    out.push_str(&format!(
        "\nnext:\n  cd {}\n  cargo build --release --target wasm32-wasip2\n  \
         warden embed-docs target/wasm32-wasip2/release/{}.wasm --wit wit\n  \
         warden call --manifest warden.toml {} '{{\"name\": \"Ada\"}}'\n",
        plan.dir.display(),
        name.replace('-', "_"),
        warden::manifest::prefixed_tool_name(name, "hello"),
    ));
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}

/// `warden embed-docs COMPONENT --wit DIR [-o OUT]`.
pub(super) fn embed_docs(component: &Path, wit: &Path, output: Option<&Path>) -> Result<ExitCode> {
    let bytes =
        std::fs::read(component).with_context(|| format!("cannot read {}", component.display()))?;
    let updated = authoring::embed_docs(&bytes, wit).with_context(|| {
        format!(
            "cannot embed the docs of {} into {}",
            wit.display(),
            component.display()
        )
    })?;
    let description = warden::schema::describe_component(&updated)
        .with_context(|| format!("{} is not a usable component", component.display()))?;
    let output = output.unwrap_or(component);
    std::fs::write(output, &updated)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let documented = description
        .functions
        .iter()
        .filter(|f| f.docs.is_some())
        .count();
    let mut out = format!(
        "{}: docs of {} embedded; {documented} of {} function(s) documented\n",
        output.display(),
        wit.display(),
        description.functions.len()
    );
    for function in description.functions.iter().filter(|f| f.docs.is_none()) {
        out.push_str(&format!("  no doc comment: {}\n", function.name));
    }
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}
