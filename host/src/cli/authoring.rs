//! `warden new`, `warden build` and `warden embed-docs`: the commands of plugin authors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use warden::authoring::{self, BuildPlan, Lang, NewPlugin, toolchain};
use warden::manifest::prefixed_tool_name;
use warden::schema::{ExportedFunction, WitType, json_name};

use super::write_stdout;

/// `warden new NAME [--lang LANG] [--dir DIR] [--sdk PATH]`.
pub(super) fn new(
    name: &str,
    lang: Lang,
    dir: Option<PathBuf>,
    sdk: Option<PathBuf>,
) -> Result<ExitCode> {
    let plan = NewPlugin {
        name: name.to_owned(),
        dir: dir.unwrap_or_else(|| PathBuf::from(name)),
        lang,
        sdk,
    };
    let written = authoring::new_plugin(&plan)?;
    let mut out = format!("created {lang} plugin {name} in {}:\n", plan.dir.display());
    for path in &written {
        let relative = path.strip_prefix(&plan.dir).unwrap_or(path);
        out.push_str(&format!("  {}\n", relative.display()));
    }
    if lang == Lang::Rust && plan.sdk.is_none() {
        out.push_str(&format!(
            "\nwarden-sdk {} comes from crates.io; to build against a warden checkout, add \
             --sdk PATH/TO/warden/sdk (see README.md, \"The SDK\").\n",
            authoring::SDK_VERSION
        ));
    }
    out.push_str(&format!(
        "\nnext:\n  cd {}\n  warden build\n  warden call --manifest warden.toml {} \
         '{{\"name\": \"Ada\"}}'\n",
        plan.dir.display(),
        prefixed_tool_name(name, "hello"),
    ));
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}

/// `warden build [DIR] [-o OUT] [--force]`.
pub(super) fn build(dir: &Path, output: Option<PathBuf>, force: bool) -> Result<ExitCode> {
    let toolchains = toolchain::toolchains_dir().context(
        "no directory for the build toolchains: set WARDEN_TOOLCHAINS, XDG_CACHE_HOME or HOME",
    )?;
    let plan = BuildPlan {
        dir: dir.to_path_buf(),
        output,
        toolchains,
        force,
    };
    let built = authoring::build_plugin(&plan, &|line| eprintln!("{line}"))
        .with_context(|| format!("cannot build the plugin in {}", dir.display()))?;
    let functions = &built.description.functions;
    let documented = functions.iter().filter(|f| f.docs.is_some()).count();
    let mut out = format!(
        "{}: {} plugin {}, {} tool(s), {documented} documented{}\n",
        built.output.display(),
        built.lang,
        built.name,
        functions.len(),
        if built.rebuilt { "" } else { " (up to date)" },
    );
    for function in functions.iter().filter(|f| f.docs.is_none()) {
        out.push_str(&format!("  no doc comment: {}\n", function.name));
    }
    if let Some(function) = functions.first() {
        let manifest = dir.join("warden.toml");
        let tool = prefixed_tool_name(&built.name, &json_name(&function.name));
        let arguments = Value::Object(example_arguments(function)).to_string();
        out.push_str("\nnext:\n");
        if manifest.is_file() {
            out.push_str(&format!(
                "  warden call --manifest {} {tool} '{arguments}'\n",
                manifest.display()
            ));
        } else {
            out.push_str(&format!(
                "  add [plugins.{}] component = \"{}\" to a manifest, then\n  warden call \
                 --manifest MANIFEST {tool} '{arguments}'\n",
                built.name,
                built.output.display()
            ));
        }
    }
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}

/// Arguments `function` accepts: its required parameters with placeholder values.
fn example_arguments(function: &ExportedFunction) -> Map<String, Value> {
    function
        .params
        .iter()
        .filter(|param| !matches!(param.ty, WitType::Option(_)))
        .map(|param| {
            let value = match (&param.ty, param.name.as_str()) {
                (WitType::String, "name") => json!("Ada"),
                (ty, _) => example(ty),
            };
            (json_name(&param.name), value)
        })
        .collect()
}

/// A value of type `ty`, as small as it gets.
fn example(ty: &WitType) -> Value {
    match ty {
        WitType::Bool => json!(false),
        WitType::U8
        | WitType::U16
        | WitType::U32
        | WitType::U64
        | WitType::S8
        | WitType::S16
        | WitType::S32
        | WitType::S64 => json!(1),
        WitType::F32 | WitType::F64 => json!(1.0),
        WitType::Char => json!("a"),
        WitType::String => json!("text"),
        WitType::Bytes => json!(""),
        WitType::List(_) | WitType::Flags(_) => json!([]),
        WitType::Option(_) => Value::Null,
        WitType::Result { ok, .. } => json!({ "ok": ok.as_deref().map_or(Value::Null, example) }),
        WitType::Tuple(types) => types.iter().map(example).collect(),
        WitType::Record(record) => Value::Object(
            record
                .fields
                .iter()
                .filter(|field| !matches!(field.ty, WitType::Option(_)))
                .map(|field| (json_name(&field.name), example(&field.ty)))
                .collect(),
        ),
        WitType::Variant(variant) => match variant.cases.first() {
            Some(case) => match &case.ty {
                Some(ty) => json!({ "tag": json_name(&case.name), "value": example(ty) }),
                None => json!({ "tag": json_name(&case.name) }),
            },
            None => Value::Null,
        },
        WitType::Enum(enumeration) => enumeration
            .cases
            .first()
            .map_or(Value::Null, |(name, _)| json!(json_name(name))),
    }
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
