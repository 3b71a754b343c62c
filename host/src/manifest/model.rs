//! The validated manifest: what the rest of warden reads.
//!
//! Values here have passed every check of the loader: names have their documented shape, paths
//! are absolute and existed at load time, limits are within their ranges. They are plain data
//! with public fields, so tests elsewhere can build them directly.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Location;
use super::network::SecretValue;

/// The `[server]` table: how warden presents itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The server name reported to MCP clients (`serverInfo.name`). Default `"warden"`.
    pub name: String,
    /// The principal that stdio sessions run as. Default `"local"`.
    pub principal: String,
    /// The roles of that principal (`[server] roles`), in file order, without duplicates.
    /// Default: none.
    pub roles: Vec<String>,
    /// What clients are told about the server at `initialize` (`instructions`); many show
    /// it to the model. Default: [`Server::DEFAULT_INSTRUCTIONS`].
    pub instructions: String,
    /// `[server] lock`: whether the tools must match `warden.lock`. `None` (not set):
    /// enforce when a lock file exists, else off.
    pub lock: Option<LockMode>,
    /// What happens to a plugin whose descriptions have unaccepted review findings
    /// (`review`, see `catalog::review`). Default [`ReviewMode::Warn`].
    pub review: ReviewMode,
    /// `[server] signatures = "required"`: every plugin must have a `verify` policy. Default
    /// `"optional"` (false).
    pub signatures_required: bool,
    /// The most items one page of `tools/list`, `prompts/list`, `resources/list` and
    /// `resources/templates/list` holds (`page_size`); within [`Server::PAGE_SIZE_RANGE`].
    /// Default [`Server::DEFAULT_PAGE_SIZE`].
    pub page_size: u32,
}

/// `[server] lock`: what drift from `warden.lock` does to a plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// A drifting plugin is not served (the default when a lock file exists).
    Enforce,
    /// A drifting plugin is served and its drift logged as a warning.
    Warn,
    /// The lock is not read.
    Off,
}

/// `[server] review`: what the description review does with unaccepted findings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReviewMode {
    /// `"warn"`: log them at start and show them in `warden check`; serve the plugin.
    #[default]
    Warn,
    /// `"refuse"`: leave the plugin's tools out, and `warden check` fails.
    Refuse,
}

impl ReviewMode {
    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewMode::Warn => "warn",
            ReviewMode::Refuse => "refuse",
        }
    }
}

/// The ids of the description review's rules, which `accept_review` may list. The rules
/// themselves are in `catalog::review`, which names its findings with these constants.
pub mod review_rule {
    pub const HIDDEN_UNICODE: &str = "hidden-unicode";
    pub const MODEL_INSTRUCTION: &str = "model-instruction";
    pub const OTHER_TOOL: &str = "other-tool";
    pub const OUTSIDE_PATH: &str = "outside-path";
    pub const UNGRANTED_URL: &str = "ungranted-url";
    pub const LONG_DESCRIPTION: &str = "long-description";
}

/// Every [`review_rule`], in the order `warden check` documents them.
pub const REVIEW_RULES: &[&str] = &[
    review_rule::HIDDEN_UNICODE,
    review_rule::MODEL_INSTRUCTION,
    review_rule::OTHER_TOOL,
    review_rule::OUTSIDE_PATH,
    review_rule::UNGRANTED_URL,
    review_rule::LONG_DESCRIPTION,
];

impl Server {
    /// The default server name.
    pub const DEFAULT_NAME: &str = "warden";
    /// The default `instructions`.
    pub const DEFAULT_INSTRUCTIONS: &str = "Tools served by warden run in WebAssembly \
        sandboxes with only the access their operator granted.";
    /// The longest `instructions`, in bytes.
    pub const MAX_INSTRUCTIONS: usize = 8 << 10;
    /// The default stdio principal.
    pub const DEFAULT_PRINCIPAL: &str = "local";
    /// The default `page_size`.
    pub const DEFAULT_PAGE_SIZE: u32 = 100;
    /// Accepted `page_size` values.
    pub const PAGE_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=10_000;
}

impl Default for Server {
    fn default() -> Server {
        Server {
            name: Server::DEFAULT_NAME.to_owned(),
            principal: Server::DEFAULT_PRINCIPAL.to_owned(),
            roles: Vec::new(),
            instructions: Server::DEFAULT_INSTRUCTIONS.to_owned(),
            lock: None,
            review: ReviewMode::Warn,
            signatures_required: false,
            page_size: Server::DEFAULT_PAGE_SIZE,
        }
    }
}

/// One `[plugins.NAME]` table: a component and everything it is granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plugin {
    /// The plugin's name, the key of its table: `[a-z][a-z0-9_-]{0,31}`.
    pub name: String,
    /// The component file: absolute and canonical (symlinks resolved). It was a regular file
    /// when the manifest was loaded.
    pub component: PathBuf,
    /// The component as written in the manifest (after `${VAR}` expansion), for `warden.lock`.
    pub component_source: String,
    /// The registry reference when the component is `oci://...`. `component` is then empty
    /// until the host has pulled the component into the cache, and names the cached file after.
    pub oci: Option<super::oci::OciRef>,
    /// The manifest digest (`sha256:...`) an `oci://` reference resolved to when pulled.
    pub oci_resolved: Option<String>,
    /// Who signed the component, once its signature has been checked against `verify` (set by
    /// the host when it loads the plugin): `key sha256:...` or the certificate identity.
    pub signer: Option<String>,
    /// Whose signature the component must carry (`verify`), if anyone's.
    pub verify: Option<super::verify::Verify>,
    /// The pinned SHA-256 digest of the component file, if any: loading anything else must fail.
    pub sha256: Option<[u8; 32]>,
    /// Resource limits for each call.
    pub limits: Limits,
    /// Tool name prefix: tools are named `{prefix}__{function}`, or `{function}` when empty.
    /// Defaults to the plugin name. `[A-Za-z0-9_-]{0,61}`.
    pub prefix: String,
    /// `resources = false`: its `warden:mcp/resources` are not served (no two plugins may
    /// serve one URI, so a component loaded twice serves its resources from one entry).
    pub resources: bool,
    /// `sampling = true`: it may ask the client's model for a completion
    /// (`warden:mcp/host.sample`, MCP `sampling/createMessage`). Off by default.
    pub sampling: bool,
    /// `roots = true`: it may read the client's roots (`warden:mcp/host.roots`, MCP
    /// `roots/list`). Off by default.
    pub roots: bool,
    /// Directories the plugin may see, in file order. Guest paths are unique.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the plugin sees, in file order, after `${VAR}` expansion. Names are
    /// `[A-Za-z_][A-Za-z0-9_]*` and unique.
    pub env: Vec<(String, String)>,
    /// Per-function settings, in file order, one per function or glob.
    pub tools: Vec<ToolOverride>,
    /// `[plugins.NAME.prompts.PROMPT]`: the description review's findings accepted in a
    /// prompt (by the name the plugin gives it), in file order.
    pub prompts: Vec<TextReview>,
    /// `[plugins.NAME.uris."URI"]`: the findings accepted in a listed resource (by its URI)
    /// or a resource template (by its URI template), in file order.
    pub uris: Vec<TextReview>,
    /// What the gate enforces for this plugin: roles, rates, concurrency, redaction.
    pub policy: PluginPolicy,
    /// Outbound hosts the plugin may reach (`allow_hosts`), in file order. Empty: none.
    pub allow_hosts: Vec<crate::types::HostPattern>,
    /// Limits on its outbound requests and connections (`[plugins.NAME.net]`).
    pub net: super::network::NetLimits,
    /// Secrets given to it as environment variables (`secrets`), in file order. Names are
    /// unique and distinct from `env` names.
    pub secrets: Vec<super::network::Secret>,
    /// Its key-value store (`kv`), if granted.
    pub kv: Option<super::kv::KvGrant>,
    /// The database it may query through `warden:sql` (`sql`), if any.
    pub sql: Option<super::sql::SqlGrant>,
    /// `warden check` warnings the operator has acknowledged (`acknowledge`), in file order:
    /// they are not printed. Codes are from [`WARNING_CODES`], each listed once.
    pub acknowledge: Vec<Acknowledgement>,
    /// `icons`: shown by clients beside the plugin's tools (unless a tool sets its own),
    /// prompts, resources and templates. Default: none.
    pub icons: Vec<super::icons::Icon>,
    /// The `[plugins.NAME]` header, or the first key that defines the plugin.
    pub location: Location,
    /// The location of each key present in the plugin's table (`"component"`, `"sha256"`,
    /// `"memory"`, ...), for problems found after loading. See [`Plugin::location_of`].
    pub key_locations: BTreeMap<String, Location>,
}

impl Plugin {
    /// Where `key` of this plugin's table is set, or the plugin's own location when it is not
    /// set (its default applies).
    ///
    /// For example, a component that fails to compile is reported at `location_of("component")`,
    /// a digest mismatch at `location_of("sha256")`.
    pub fn location_of(&self, key: &str) -> &Location {
        self.key_locations.get(key).unwrap_or(&self.location)
    }

    /// The plugin's secret values: those of its `secrets`, of its `env` variables whose
    /// names look secret (`API_TOKEN`, `DB_PASSWORD`: see [`is_secret_key`]), and the password
    /// of its `sql` database. Values shorter
    /// than [`MIN_SECRET_LEN`] are left out: they would match everywhere.
    ///
    /// This is the one set everything uses: the gate's output filter (tool results, log and
    /// progress messages) and the scrubber of what warden logs about the plugin.
    ///
    /// [`is_secret_key`]: super::is_secret_key
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        let env = self
            .env
            .iter()
            .filter(|(name, _)| super::is_secret_key(name))
            .map(|(_, value)| value.as_str());
        self.secrets
            .iter()
            .map(|secret| secret.value.expose())
            .chain(env)
            .chain(self.sql.as_ref().and_then(|sql| sql.password()))
            .filter(|value| value.len() >= MIN_SECRET_LEN)
    }

    /// The settings for WIT function `function`, if the manifest has any. Glob tables
    /// (`[plugins.NAME.tools."write-*"]`) are not returned: they only carry `roles`.
    pub fn tool_override(&self, function: &str) -> Option<&ToolOverride> {
        self.tools
            .iter()
            .find(|tool| !tool.is_glob() && tool.function == function)
    }

    /// Whether a human confirms each call of WIT function `function`: its own table's
    /// `approval`, else the plugin's.
    pub fn tool_approval(&self, function: &str) -> super::approval::Approval {
        self.tool_override(function)
            .and_then(|tool| tool.approval)
            .unwrap_or(self.policy.approval)
    }

    /// Whether WIT function `function` runs as a task, and its time limit then (the
    /// default `task_timeout` resolved against the plugin's `timeout`).
    pub fn tool_task(&self, function: &str) -> Option<(super::tasks::TaskMode, Duration)> {
        let task = self.tool_override(function)?.task?;
        let timeout = task
            .timeout
            .unwrap_or_else(|| super::tasks::ToolTask::DEFAULT_TIMEOUT.max(self.limits.timeout));
        Some((task.mode, timeout))
    }

    /// How long a call of WIT function `function` runs as an ordinary call before it becomes
    /// a task (`task_after`); `None`: a task at once.
    pub fn tool_task_after(&self, function: &str) -> Option<Duration> {
        self.tool_override(function)?.task?.after
    }

    /// Whether WIT function `function` is hidden until its plugin reveals it (`hidden`).
    pub fn tool_hidden(&self, function: &str) -> bool {
        self.tool_override(function).is_some_and(|tool| tool.hidden)
    }

    /// What WIT function `function` returns: its own table's `data`, else the plugin's.
    pub fn tool_data(&self, function: &str) -> super::approval::DataLabel {
        self.tool_override(function)
            .and_then(|tool| tool.data)
            .unwrap_or(self.policy.data)
    }

    /// The roles that may list and call WIT function `function`: the `roles` of its own
    /// `[plugins.NAME.tools.FUNCTION]` table, else of the first glob table (in file order)
    /// that matches it and sets `roles`, else the plugin's `roles`. `None` means every
    /// principal may.
    pub fn tool_roles(&self, function: &str) -> Option<&[String]> {
        let exact = self
            .tools
            .iter()
            .find(|tool| !tool.is_glob() && tool.function == function && tool.roles.is_some());
        let glob = || {
            self.tools.iter().find(|tool| {
                tool.is_glob() && tool.roles.is_some() && glob_matches(&tool.function, function)
            })
        };
        exact
            .or_else(glob)
            .and_then(|tool| tool.roles.as_deref())
            .or(self.policy.roles.as_deref())
    }
}

/// Secret values shorter than this, in bytes, are neither redacted nor scrubbed: they would
/// match everywhere.
pub const MIN_SECRET_LEN: usize = 4;

/// Resource limits for one call of a plugin's tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (wasmtime's instruction budget) per call; greater than 0.
    pub fuel: u64,
    /// Linear memory ceiling per call, in bytes; within [`Limits::MEMORY_RANGE`].
    pub memory: u64,
    /// Wall-clock deadline per call; greater than zero and at most [`Limits::MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Largest tool output, in bytes, before the gate refuses it; within
    /// [`Limits::MAX_OUTPUT_RANGE`].
    pub max_output: u64,
}

impl Limits {
    /// Default fuel per call.
    pub const DEFAULT_FUEL: u64 = 1_000_000_000;
    /// Default memory ceiling: 64MiB.
    pub const DEFAULT_MEMORY: u64 = 64 << 20;
    /// Default timeout: 10s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default output cap: 1MiB.
    pub const DEFAULT_MAX_OUTPUT: u64 = 1 << 20;
    /// Accepted memory ceilings: 1MiB to 4GiB (the wasm32 address space).
    pub const MEMORY_RANGE: RangeInclusive<u64> = (1 << 20)..=(4 << 30);
    /// Longest accepted timeout: 1h.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Accepted output caps: 1KiB to 64MiB.
    pub const MAX_OUTPUT_RANGE: RangeInclusive<u64> = (1 << 10)..=(64 << 20);
}

impl Default for Limits {
    /// `fuel = 1_000_000_000`, `memory = "64MiB"`, `timeout = "10s"`, `max_output = "1MiB"`.
    fn default() -> Limits {
        Limits {
            fuel: Limits::DEFAULT_FUEL,
            memory: Limits::DEFAULT_MEMORY,
            timeout: Limits::DEFAULT_TIMEOUT,
            max_output: Limits::DEFAULT_MAX_OUTPUT,
        }
    }
}

/// A host directory made visible to a plugin (a WASI preopen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory: absolute and canonical. It was a directory when the manifest was
    /// loaded.
    pub host: PathBuf,
    /// Where the plugin sees it: an absolute guest path, normalized (no `.` or `..` segments,
    /// no repeated or trailing `/`).
    pub guest: String,
    /// Whether the plugin may write.
    pub mode: DirMode,
    /// How much one call may write under it (`max_write`, `max_files`); only `rw` grants
    /// write, so a `ro` grant carries the defaults and never uses them.
    pub quota: WriteQuota,
    /// The grant's entry in the `dirs` array.
    pub location: Location,
}

/// How compile cache entries are authenticated (`[cache] key` / `key_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheKey {
    /// A per-install key file: 32 random bytes in hex, created 0600 when missing.
    File(PathBuf),
    /// A key derived from the operator's secret, the same on every replica sharing a cache.
    Secret(SecretValue),
}

impl CacheKey {
    /// The shortest `[cache] key` accepted, in characters.
    pub const MIN_SECRET_LEN: usize = 32;
}

/// What one call may write under one `rw` grant: bytes written (`max_write`) and files,
/// directories and links created (`max_files`). A write or creation past either fails inside
/// the plugin with `insufficient-space`; the next call starts from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteQuota {
    /// Bytes one call may write, all files of the grant together: every byte passed to a
    /// write counts, overwrites included, and so does growing a file with `set-size`. Default
    /// [`WriteQuota::DEFAULT_MAX_WRITE`]; within [`WriteQuota::MAX_WRITE_RANGE`].
    pub max_write: u64,
    /// Files, directories and links one call may create. Default
    /// [`WriteQuota::DEFAULT_MAX_FILES`]; within [`WriteQuota::MAX_FILES_RANGE`].
    pub max_files: u64,
}

impl WriteQuota {
    /// Default `max_write`: 64MiB.
    pub const DEFAULT_MAX_WRITE: u64 = 64 << 20;
    /// Default `max_files`.
    pub const DEFAULT_MAX_FILES: u64 = 1_000;
    /// Accepted `max_write`: 1B to 1TiB.
    pub const MAX_WRITE_RANGE: RangeInclusive<u64> = 1..=(1 << 40);
    /// Accepted `max_files`: 0 (no new files, existing ones may be written) to 10_000_000.
    pub const MAX_FILES_RANGE: RangeInclusive<u64> = 0..=10_000_000;
}

impl Default for WriteQuota {
    /// `max_write = "64MiB"`, `max_files = 1000`.
    fn default() -> WriteQuota {
        WriteQuota {
            max_write: WriteQuota::DEFAULT_MAX_WRITE,
            max_files: WriteQuota::DEFAULT_MAX_FILES,
        }
    }
}

/// Access a plugin has to a granted directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DirMode {
    /// `"ro"`: read files and list directories (the default).
    #[default]
    ReadOnly,
    /// `"rw"`: also create, write, rename and remove.
    ReadWrite,
}

impl DirMode {
    /// Whether the plugin may modify the directory.
    pub fn is_writable(self) -> bool {
        self == DirMode::ReadWrite
    }

    /// The manifest spelling: `"ro"` or `"rw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            DirMode::ReadOnly => "ro",
            DirMode::ReadWrite => "rw",
        }
    }
}

impl fmt::Display for DirMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `[plugins.NAME.tools.FUNCTION]` table: settings for one WIT function.
///
/// Whether `function` exists in the component is checked when the component is loaded, not
/// here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOverride {
    /// The WIT function name, in kebab-case (`read-text`).
    pub function: String,
    /// The exact tool name, replacing `{prefix}__{function}`: `[A-Za-z0-9_-]{1,64}`, unique
    /// among overrides of the whole manifest.
    pub name: Option<String>,
    /// A description replacing the WIT doc comment.
    pub description: Option<String>,
    /// The roles that may list and call this tool, replacing the plugin's `roles`.
    pub roles: Option<Vec<String>>,
    /// Annotations tightened beyond what the grants imply (`read_only`, `destructive`,
    /// `idempotent`, `open_world`).
    pub hints: ToolHints,
    /// `approval`, replacing the plugin's.
    pub approval: Option<super::approval::Approval>,
    /// `data`, replacing the plugin's.
    pub data: Option<super::approval::DataLabel>,
    /// Description review rules whose findings the operator accepts for this tool
    /// (`accept_review`), in file order; ids from [`REVIEW_RULES`], each listed once.
    pub accept_review: Vec<Acknowledgement>,
    /// `icons`, replacing the plugin's for this tool.
    pub icons: Option<Vec<super::icons::Icon>>,
    /// `task` and `task_timeout`: whether the tool runs as a task, and its time limit then.
    pub task: Option<super::tasks::ToolTask>,
    /// `hidden = true`: the tool is neither listed nor callable until its plugin reveals it
    /// to a principal (`reveal-tools`).
    pub hidden: bool,
    /// The table's `[header]` or key.
    pub location: Location,
}

/// A `[plugins.NAME.prompts.PROMPT]` or `[plugins.NAME.uris."URI"]` table: which findings of
/// the description review the operator accepts in that prompt, resource or template. Whether
/// it exists is checked when the plugin has listed them, not here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextReview {
    /// The prompt's name as the plugin gives it (not prefixed), or the resource's URI or the
    /// template's URI template.
    pub key: String,
    /// Rule ids from [`REVIEW_RULES`], each listed once, in file order.
    pub accept_review: Vec<Acknowledgement>,
    /// The table's `[header]`.
    pub location: Location,
}

/// Tool annotations the operator tightens in `[plugins.NAME.tools.FUNCTION]`. warden derives
/// annotations from the grants a component can use; these may only narrow them (a key set
/// to the loosening value is a manifest error), so each is a flag: `true` when the key is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolHints {
    /// `read_only = true`: the tool changes nothing (also not destructive, idempotent).
    pub read_only: bool,
    /// `destructive = false`: its changes only add, never destroy.
    pub not_destructive: bool,
    /// `idempotent = true`: calling it again with the same arguments changes nothing more.
    pub idempotent: bool,
    /// `open_world = false`: it does not reach beyond the host, whatever hosts it is granted.
    pub closed_world: bool,
}

/// One entry of a plugin's `acknowledge`: a `warden check` warning code, and where it is
/// listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The code, one of [`WARNING_CODES`].
    pub code: String,
    /// Where it is listed.
    pub location: Location,
}

/// The codes of the warnings `warden check` gives about a plugin, which its `acknowledge`
/// may list: `unused-grant:KEY` (a grant the component's imports cannot use),
/// `ungranted-import:WHAT` (an import no grant gives anything to act on) and
/// `unapproved-write` (tools that can write, called without a human's confirmation).
pub const WARNING_CODES: &[&str] = &[
    "unused-grant:dirs",
    "unused-grant:allow_hosts",
    "unused-grant:env",
    "unused-grant:secrets",
    "ungranted-import:filesystem",
    "ungranted-import:http",
    "ungranted-import:sockets",
    "unused-grant:kv",
    "ungranted-import:keyvalue",
    "unused-grant:sql",
    "ungranted-import:sql",
    "unused-grant:sampling",
    "unused-grant:roots",
    "unapproved-write",
];

impl ToolOverride {
    /// Whether `function` is a glob (`*` and `?`) over function names rather than one name.
    pub fn is_glob(&self) -> bool {
        is_glob(&self.function)
    }
}

/// Whether `pattern` has a glob wildcard: `*` (any run of characters) or `?` (one).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Whether `name` matches the glob `pattern` (`*`: any run of characters, `?`: one
/// character; everything else literally).
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic backtracking over the last `*`: linear in practice for names this short.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A rate: `{ per_minute = 120, burst = 20 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed per minute, sustained; within [`Rate::RANGE`].
    pub per_minute: u32,
    /// Calls allowed at once after a quiet period; within [`Rate::RANGE`]. Defaults to
    /// `per_minute`.
    pub burst: u32,
}

impl Rate {
    /// Accepted values of `per_minute` and `burst`.
    pub const RANGE: RangeInclusive<u32> = 1..=1_000_000;
}

/// What happens to a result larger than `max_output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputOverflow {
    /// `"refuse"`: the call fails with an error saying the output was too large (the default).
    #[default]
    Refuse,
    /// `"truncate"`: text is cut to fit and a marker says how much was left out.
    Truncate,
}

/// The gate's settings for one plugin: who may call it, how often, how many at once, and
/// what is redacted from its output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginPolicy {
    /// Roles that may list and call the plugin's tools (any one of them suffices); `"*"` is
    /// every principal. `None` (no `roles` key) also means every principal. Tools may
    /// override it.
    pub roles: Option<Vec<String>>,
    /// Calls per principal per tool (`rate`). `None`: unlimited.
    pub rate: Option<Rate>,
    /// Calls per tool, all principals together (`tool_rate`), replacing the global
    /// `[limits] tool_rate`. `None`: the global ceiling, if any.
    pub tool_rate: Option<Rate>,
    /// Calls of this plugin running at once (`concurrency`). `None`: no cap beyond the
    /// engine's instance pool.
    pub concurrency: Option<u32>,
    /// Calls that may wait for a free slot when `concurrency` is reached (`queue`); more are
    /// refused at once. Default [`PluginPolicy::DEFAULT_QUEUE`].
    pub queue: u32,
    /// Detectors applied to this plugin's output (`redact`), replacing `[filters] redact`.
    /// `None`: the global list.
    pub redact: Option<Vec<String>>,
    /// What happens to output larger than `max_output` (`max_output_mode`).
    pub overflow: OutputOverflow,
    /// Log and progress messages one call may send (`max_events`); the rest are dropped.
    /// Default [`PluginPolicy::DEFAULT_MAX_EVENTS`].
    pub max_events: u32,
    /// Bytes of log and progress message text one call may send, after filtering
    /// (`max_event_bytes`). Default [`PluginPolicy::DEFAULT_MAX_EVENT_BYTES`].
    pub max_event_bytes: u64,
    /// Whether a human confirms each call of the plugin's tools (`approval`); tools may
    /// override it.
    pub approval: super::approval::Approval,
    /// What the plugin's tools return (`data`); tools may override it.
    pub data: super::approval::DataLabel,
}

impl Default for PluginPolicy {
    /// Open to every principal, unlimited, the global detectors, refusing oversized output.
    fn default() -> PluginPolicy {
        PluginPolicy {
            roles: None,
            rate: None,
            tool_rate: None,
            concurrency: None,
            queue: PluginPolicy::DEFAULT_QUEUE,
            redact: None,
            overflow: OutputOverflow::default(),
            max_events: PluginPolicy::DEFAULT_MAX_EVENTS,
            max_event_bytes: PluginPolicy::DEFAULT_MAX_EVENT_BYTES,
            approval: super::approval::Approval::default(),
            data: super::approval::DataLabel::default(),
        }
    }
}

impl PluginPolicy {
    /// Default `queue`.
    pub const DEFAULT_QUEUE: u32 = 64;
    /// Accepted `concurrency` values.
    pub const CONCURRENCY_RANGE: RangeInclusive<u32> = 1..=10_000;
    /// Accepted `queue` values.
    pub const QUEUE_RANGE: RangeInclusive<u32> = 0..=100_000;
    /// Default `max_events`.
    pub const DEFAULT_MAX_EVENTS: u32 = 100;
    /// Accepted `max_events` values (the runtime drops events past 10,000 whatever this says).
    pub const MAX_EVENTS_RANGE: RangeInclusive<u32> = 0..=10_000;
    /// Default `max_event_bytes`: 64KiB.
    pub const DEFAULT_MAX_EVENT_BYTES: u64 = 64 << 10;
    /// Accepted `max_event_bytes` values: 0 to 16MiB.
    pub const MAX_EVENT_BYTES_RANGE: RangeInclusive<u64> = 0..=(16 << 20);
}

/// `[limits]`: caps on every call's arguments, checked before any other work, and the
/// global per-tool rate ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalLimits {
    /// Largest arguments object, serialized as JSON, in bytes. Default 1MiB.
    pub max_argument_bytes: u64,
    /// Deepest nesting of arrays and objects inside the arguments object (the object itself
    /// is depth 1). Default 32.
    pub max_depth: u32,
    /// Longest string (value or key), in bytes. Default 256KiB.
    pub max_string: u64,
    /// Most items in one array. Default 10_000.
    pub max_array: u64,
    /// Calls per tool, all principals together, for every tool whose plugin sets no
    /// `tool_rate`. Default: none.
    pub tool_rate: Option<Rate>,
}

impl GlobalLimits {
    /// Default `max_argument_bytes`: 1MiB.
    pub const DEFAULT_MAX_ARGUMENT_BYTES: u64 = 1 << 20;
    /// Default `max_depth`.
    pub const DEFAULT_MAX_DEPTH: u32 = 32;
    /// Default `max_string`: 256KiB.
    pub const DEFAULT_MAX_STRING: u64 = 256 << 10;
    /// Default `max_array`.
    pub const DEFAULT_MAX_ARRAY: u64 = 10_000;
    /// Accepted `max_argument_bytes` and `max_string`: 16B to 64MiB.
    pub const BYTES_RANGE: RangeInclusive<u64> = 16..=(64 << 20);
    /// Accepted `max_depth`: 1 to 128 (deeper JSON is refused by the parser anyway).
    pub const DEPTH_RANGE: RangeInclusive<u32> = 1..=128;
    /// Accepted `max_array`.
    pub const ARRAY_RANGE: RangeInclusive<u64> = 1..=10_000_000;
}

impl Default for GlobalLimits {
    fn default() -> GlobalLimits {
        GlobalLimits {
            max_argument_bytes: GlobalLimits::DEFAULT_MAX_ARGUMENT_BYTES,
            max_depth: GlobalLimits::DEFAULT_MAX_DEPTH,
            max_string: GlobalLimits::DEFAULT_MAX_STRING,
            max_array: GlobalLimits::DEFAULT_MAX_ARRAY,
            tool_rate: None,
        }
    }
}

/// The built-in output detectors, by the name used in `redact` lists and in
/// `[REDACTED:name]` markers.
pub const BUILTIN_DETECTORS: &[&str] = &[
    "email",
    "credit-card",
    "ssn",
    "aws-key",
    "github-token",
    "slack-token",
    "openai-key",
    "google-api-key",
    "stripe-key",
    "private-key",
    "jwt",
];

/// The detector that redacts the plugin's own secret values by exact match.
pub const SECRETS_DETECTOR: &str = "secrets";

/// Names that stand for several detectors in `redact` lists.
pub const DETECTOR_GROUPS: &[(&str, &[&str])] = &[(
    "api-key",
    &[
        "aws-key",
        "github-token",
        "slack-token",
        "openai-key",
        "google-api-key",
        "stripe-key",
    ],
)];

/// `[filters]`: what is redacted from tool output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// Detectors on by default for every plugin (`redact`), expanded (groups replaced by
    /// their members), in file order, without duplicates. `None` (no `redact` key): every
    /// built-in detector, `secrets` and every custom detector.
    pub redact: Option<Vec<String>>,
    /// Custom detectors (`custom`), in file order; names unique and distinct from built-in
    /// ones.
    pub custom: Vec<CustomDetector>,
}

/// A custom detector: `{ name = "employee-id", pattern = "EMP-[0-9]{6}" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomDetector {
    /// Its name, in `redact` lists and `[REDACTED:name]` markers: `[a-z][a-z0-9-]{0,31}`.
    pub name: String,
    /// A regular expression (Rust `regex` syntax) that compiled when the manifest loaded.
    pub pattern: String,
    /// Its entry in the `custom` array.
    pub location: Location,
}

/// `[audit]`: the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    /// The live log file, absolute. Its directory is created when needed.
    pub path: PathBuf,
    /// Size at which the live file is renamed `{path}.{seq}` and a new one started; within
    /// [`Audit::ROTATE_RANGE`]. Default 64MiB.
    pub rotate: u64,
    /// Whether each record is also `fsync`ed before the response (survives power loss, not
    /// just a crash of warden). Default `false`.
    pub fsync: bool,
    /// Refused requests recorded per principal, or per client address for requests refused
    /// before authentication (`refusal_rate`); more are counted in a `dropped` summary record.
    /// Default [`Audit::DEFAULT_REFUSAL_RATE`].
    pub refusal_rate: Rate,
    /// This replica's id in start and checkpoint records (`replica`): 1 to 253 of
    /// `[A-Za-z0-9._-]`. Default: the host name.
    pub replica: String,
    /// The Ed25519 key that signs checkpoints (`signing_key`). `None`: no checkpoints.
    pub signing_key: Option<AuditKey>,
    /// A checkpoint at the latest every this many records (`checkpoint_every`), within
    /// [`Audit::CHECKPOINT_EVERY_RANGE`]. Default [`Audit::DEFAULT_CHECKPOINT_EVERY`].
    pub checkpoint_every: u64,
    /// A checkpoint at the latest this long after a record (`checkpoint_interval`), at most
    /// [`Audit::MAX_CHECKPOINT_INTERVAL`]. Default [`Audit::DEFAULT_CHECKPOINT_INTERVAL`].
    pub checkpoint_interval: std::time::Duration,
    /// `[[audit.ship]]`: where records are shipped besides the file, which stays the source
    /// of truth. Default: nowhere.
    pub ship: Vec<super::ship::Ship>,
}

/// `[audit] signing_key`: a PEM `PRIVATE KEY` (PKCS#8 Ed25519), read when the manifest loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditKey {
    /// The PEM text.
    pub pem: SecretValue,
    /// The file it was read from, when it was a path (protected from plugins' grants).
    pub file: Option<PathBuf>,
}

impl Audit {
    /// Default `refusal_rate`: 60 a minute, bursts of 20.
    pub const DEFAULT_REFUSAL_RATE: Rate = Rate {
        per_minute: 60,
        burst: 20,
    };
    /// Default `rotate`: 64MiB.
    pub const DEFAULT_ROTATE: u64 = 64 << 20;
    /// Accepted `rotate` sizes: 4KiB to 1TiB.
    pub const ROTATE_RANGE: RangeInclusive<u64> = (4 << 10)..=(1 << 40);
    /// Default `checkpoint_every`.
    pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;
    /// Accepted `checkpoint_every`.
    pub const CHECKPOINT_EVERY_RANGE: RangeInclusive<u64> = 1..=1_000_000;
    /// Default `checkpoint_interval`.
    pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
    /// The longest `checkpoint_interval`: a day.
    pub const MAX_CHECKPOINT_INTERVAL: std::time::Duration =
        std::time::Duration::from_secs(24 * 3600);
}

/// `[http]`: serving MCP over Streamable HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http {
    /// The address to listen on (`listen = "127.0.0.1:8080"`). `None`: `warden serve` speaks
    /// stdio unless `--http ADDR` is given.
    pub listen: Option<std::net::SocketAddr>,
    /// Accepted `Host` header values (`allowed_hosts`), without port: a request whose `Host`
    /// is not one of them is refused (DNS-rebinding defense). Any port matches. Default
    /// [`Http::DEFAULT_ALLOWED_HOSTS`].
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` header values (`allowed_origins`), each exactly `scheme://host[:port]`.
    /// A request without `Origin`, or whose `Origin` names the same host as its `Host`, is
    /// accepted too. Default: none.
    pub allowed_origins: Vec<String>,
    /// Largest request body, in bytes (`max_body`); within [`Http::MAX_BODY_RANGE`]. Default
    /// 4MiB.
    pub max_body: u64,
    /// The MCP endpoint's public URL (`public_url`), such as `"https://mcp.example.com/mcp"`:
    /// the resource identifier of RFC 8707 and RFC 9728.
    pub public_url: Option<String>,
    /// TLS certificate and key (`tls = { cert = "cert.pem", key = "key.pem" }`). `None`:
    /// plain HTTP.
    pub tls: Option<Tls>,
    /// How long SIGTERM or SIGINT waits for in-flight calls before exiting (`shutdown_grace`);
    /// at most [`Http::MAX_SHUTDOWN_GRACE`]. Default 30s.
    pub shutdown_grace: std::time::Duration,
    /// How long a request's header may take to arrive, from its first byte to its end
    /// (`header_timeout`); at most [`Http::MAX_TIMEOUT`]. Default 10s.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in progress: before its first
    /// request, and between requests on a kept-alive connection (`idle_timeout`); at most
    /// [`Http::MAX_TIMEOUT`]. Default 60s.
    pub idle_timeout: Duration,
    /// How long a TLS handshake may take (`tls_handshake_timeout`); at most
    /// [`Http::MAX_TIMEOUT`]. Default 10s.
    pub tls_handshake_timeout: Duration,
    /// Open connections at most, overall (`max_connections`); within
    /// [`Http::CONNECTIONS_RANGE`]. `None`: [`Http::DEFAULT_MAX_CONNECTIONS`], lowered to fit
    /// the process's file descriptor limit (decided when the server starts).
    pub max_connections: Option<u32>,
    /// Open connections at most from one client address (an IPv6 client: its /64)
    /// (`max_connections_per_client`); within [`Http::CONNECTIONS_RANGE`]. `None`:
    /// [`Http::DEFAULT_MAX_CONNECTIONS_PER_CLIENT`], or half the overall cap if that is lower.
    pub max_connections_per_client: Option<u32>,
    /// Open 2025-11-25 sessions at most, overall (`max_sessions`); within
    /// [`Http::SESSIONS_RANGE`]. Default 1024.
    pub max_sessions: u32,
    /// Open 2025-11-25 sessions at most per principal (`max_sessions_per_principal`); within
    /// [`Http::SESSIONS_RANGE`]. Default 256.
    pub max_sessions_per_principal: u32,
    /// Largest `params` of an `initialize` request (the client's info and capabilities, which
    /// its session keeps), in bytes (`max_client_info`); within
    /// [`Http::CLIENT_INFO_RANGE`]. Default 8KiB.
    pub max_client_info: u64,
    /// Close every event stream connection of a 2025-11-25 session this long after it opened
    /// (`sse_close_after`; at most [`Http::MAX_TIMEOUT`]), for proxies that cut long
    /// connections: the client resumes the stream with `Last-Event-ID`. Default: never.
    pub sse_close_after: Option<Duration>,
}

impl Http {
    /// Default `allowed_hosts`: the loopback names.
    pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];
    /// Default `max_body`: 4MiB.
    pub const DEFAULT_MAX_BODY: u64 = 4 << 20;
    /// Accepted `max_body` values: 1KiB to 1GiB.
    pub const MAX_BODY_RANGE: RangeInclusive<u64> = (1 << 10)..=(1 << 30);
    /// Default `shutdown_grace`: 30s.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// Longest accepted `shutdown_grace`: 1h.
    pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(3600);
    /// Default `header_timeout`: 10s.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default `idle_timeout`: 60s.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default `tls_handshake_timeout`: 10s.
    pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longest accepted `header_timeout`, `idle_timeout` and `tls_handshake_timeout`: 1h.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Default `max_connections` (before fitting it to the file descriptor limit): 1024.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
    /// Default `max_connections_per_client`: 32.
    pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u32 = 32;
    /// Accepted `max_connections` and `max_connections_per_client`: 1 to 1,000,000.
    pub const CONNECTIONS_RANGE: RangeInclusive<u32> = 1..=1_000_000;
    /// Default `max_sessions`: 1024.
    pub const DEFAULT_MAX_SESSIONS: u32 = 1024;
    /// Default `max_sessions_per_principal`: 256.
    pub const DEFAULT_MAX_SESSIONS_PER_PRINCIPAL: u32 = 256;
    /// Accepted `max_sessions` and `max_sessions_per_principal`: 1 to 1,000,000.
    pub const SESSIONS_RANGE: RangeInclusive<u32> = 1..=1_000_000;
    /// Default `max_client_info`: 8KiB.
    pub const DEFAULT_MAX_CLIENT_INFO: u64 = 8 << 10;
    /// Accepted `max_client_info` values: 1KiB to 1MiB.
    pub const CLIENT_INFO_RANGE: RangeInclusive<u64> = (1 << 10)..=(1 << 20);
}

impl Default for Http {
    fn default() -> Http {
        Http {
            listen: None,
            allowed_hosts: Http::DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(|host| (*host).to_owned())
                .collect(),
            allowed_origins: Vec::new(),
            max_body: Http::DEFAULT_MAX_BODY,
            public_url: None,
            tls: None,
            shutdown_grace: Http::DEFAULT_SHUTDOWN_GRACE,
            header_timeout: Http::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: Http::DEFAULT_IDLE_TIMEOUT,
            tls_handshake_timeout: Http::DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            max_connections: None,
            max_connections_per_client: None,
            max_sessions: Http::DEFAULT_MAX_SESSIONS,
            max_sessions_per_principal: Http::DEFAULT_MAX_SESSIONS_PER_PRINCIPAL,
            max_client_info: Http::DEFAULT_MAX_CLIENT_INFO,
            sse_close_after: None,
        }
    }
}

/// `[http] tls`: the server's certificate chain and private key, both PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain file (`cert`), absolute and canonical; it existed at load time.
    pub cert: PathBuf,
    /// The private key file (`key`), absolute and canonical; it existed at load time.
    pub key: PathBuf,
}

/// `[auth]`: who may use the HTTP transport. Absent or empty: no credentials are checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// `[[auth.api_keys]]`, in file order.
    pub api_keys: Vec<ApiKey>,
    /// `[auth.oauth]`: bearer JWTs from an OAuth 2.1 authorization server.
    pub oauth: Option<OAuth>,
}

impl Auth {
    /// Whether any credential is configured, so every HTTP request must present one.
    pub fn is_configured(&self) -> bool {
        !self.api_keys.is_empty() || self.oauth.is_some()
    }
}

/// One `[[auth.api_keys]]` entry: a key, known only by its digest, and who presents it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// The principal a request with this key runs as (`principal`).
    pub principal: String,
    /// That principal's roles (`roles`), in file order, without duplicates.
    pub roles: Vec<String>,
    /// The SHA-256 digest of the key (`sha256`, 64 hex digits). The key itself is never stored.
    pub sha256: [u8; 32],
    /// The entry in the `api_keys` array.
    pub location: Location,
}

/// `[auth.oauth]`: accepting bearer JWTs as an OAuth 2.1 resource server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth {
    /// The authorization server's issuer identifier (`issuer`): `iss` must equal it exactly.
    pub issuer: String,
    /// Accepted audiences (`audience`): `aud` must contain one of them. Default: `[http]
    /// public_url` (one of the two is required).
    pub audience: Vec<String>,
    /// Where the signing keys come from: `jwks_url` or `jwks_file` (exactly one).
    pub jwks: JwksSource,
    /// Accepted signature algorithms (`algorithms`): `RS*`, `PS*`, `ES*` or `EdDSA`, never
    /// `none` or `HS*`. Default [`OAuth::DEFAULT_ALGORITHMS`].
    pub algorithms: Vec<String>,
    /// Clock leeway for `exp` and `nbf` (`leeway`); at most [`OAuth::MAX_LEEWAY`]. Default 60s.
    pub leeway: std::time::Duration,
    /// The claim naming the principal (`principal_claim`). Default `"sub"`.
    pub principal_claim: String,
    /// Scopes every request needs, all of them (`required_scopes`). Default: none.
    pub required_scopes: Vec<String>,
    /// Roles granted by each scope (`[auth.oauth.scope_roles]`, `"tools:read" = ["reader"]`).
    pub scope_roles: BTreeMap<String, Vec<String>>,
    /// A claim holding a list of role names, taken as roles too (`roles_claim`).
    pub roles_claim: Option<String>,
    /// Authorization servers advertised in the RFC 9728 metadata (`authorization_servers`).
    /// Default: `[issuer]`.
    pub authorization_servers: Vec<String>,
    /// The `[auth.oauth]` table.
    pub location: Location,
}

impl OAuth {
    /// Default `algorithms`.
    pub const DEFAULT_ALGORITHMS: &[&str] = &["RS256", "ES256"];
    /// Every accepted `algorithms` entry.
    pub const SUPPORTED_ALGORITHMS: &[&str] = &[
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    ];
    /// Default `leeway`: 60s.
    pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
    /// Longest accepted `leeway`: 5m.
    pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
    /// Default `principal_claim`.
    pub const DEFAULT_PRINCIPAL_CLAIM: &str = "sub";
}

/// Where an [`OAuth`] verifier gets its JSON Web Key Set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_url`: fetched over HTTPS, cached, refetched on an unknown `kid`.
    Url(String),
    /// `jwks_file`: read from this file (absolute, canonical; it existed at load time).
    File(PathBuf),
}
