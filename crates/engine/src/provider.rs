//! The provider contract: one trait with request/response types through
//! which the engine reads and changes real objects.
//!
//! Guarantees the engine gives a provider:
//! - `configure` is called once, before any other call that needs the network.
//! - `read` receives every instance of one resource type at once, so a
//!   provider can batch (one paginated list call instead of one per object).
//! - `apply` receives values with no unknowns left in them; sensitive values
//!   arrive marked ([`Value::Sensitive`]) and in plain text.
//!
//! Assumptions the engine makes of a provider:
//! - `apply` of a create labels the object with `req.addr` and `req.lineage`
//!   (and `req.token` where it can), so that `read` can find it again.
//! - `read` reports every object carrying the lineage in `others` when it is
//!   not one of the requested instances.

use crate::addr::InstanceAddr;
use crate::value::Value;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// The type of an attribute, used for type-checking configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrType {
    String,
    Number,
    Bool,
    List(Box<AttrType>),
    Map(Box<AttrType>),
    /// Any value (e.g. `himaplan_data.input`).
    Any,
}

/// One attribute of a resource type.
#[derive(Debug, Clone)]
pub struct AttrSchema {
    pub name: &'static str,
    pub ty: AttrType,
    pub required: bool,
    /// Read from the real object, never set by configuration.
    pub computed: bool,
    /// Set by configuration when given, otherwise read from the real object.
    pub optional_computed: bool,
    /// Changing it destroys and recreates the object.
    pub replace: bool,
    pub sensitive: bool,
    /// Value used when the configuration omits the attribute.
    pub default: Option<Value>,
    /// A change of this attribute updates in place but disrupts the object
    /// (e.g. "stop/start"); `None` when the update is live.
    pub disruption: Option<&'static str>,
    pub description: &'static str,
    /// A value to show in the reference pages, as HCL text (e.g.
    /// `"t3.small"`); `None` when the default serves as the example.
    pub example: Option<&'static str>,
}

impl AttrSchema {
    /// An optional attribute of the given type; refine with the builder methods.
    pub const fn new(name: &'static str, ty: AttrType) -> AttrSchema {
        AttrSchema {
            name,
            ty,
            required: false,
            computed: false,
            optional_computed: false,
            replace: false,
            sensitive: false,
            default: None,
            disruption: None,
            description: "",
            example: None,
        }
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn optional_computed(mut self) -> Self {
        self.optional_computed = true;
        self
    }
    pub fn replace(mut self) -> Self {
        self.replace = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }
    pub fn disruption(mut self, what: &'static str) -> Self {
        self.disruption = Some(what);
        self
    }
    pub fn describe(mut self, text: &'static str) -> Self {
        self.description = text;
        self
    }
    /// An example value, as HCL text, for the reference pages.
    pub fn example(mut self, hcl: &'static str) -> Self {
        self.example = Some(hcl);
        self
    }
}

/// How a nested block appears in the resource's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNesting {
    /// At most one block; the value is an object or null.
    Single,
    /// Repeated unlabelled blocks; the value is a list of objects.
    List,
    /// Repeated blocks with one label; the value is a map from label to object.
    Labelled,
}

#[derive(Debug, Clone)]
pub struct BlockSchema {
    pub name: &'static str,
    pub nesting: BlockNesting,
    pub body: Schema,
    /// What the block declares (reference pages, `providers schema`).
    pub description: &'static str,
}

/// The attributes and nested blocks of a resource type or provider block.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub attributes: Vec<AttrSchema>,
    pub blocks: Vec<BlockSchema>,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&AttrSchema> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn block(&self, name: &str) -> Option<&BlockSchema> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

/// A resource type a provider offers.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub name: &'static str,
    pub schema: Schema,
    pub schema_version: u32,
}

/// What the reference pages say of a resource type beyond its attributes:
/// a paragraph (markdown) and a complete example block (HCL). Lives beside
/// the type's schema in its provider, so the schema stays the one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeDocs {
    pub summary: &'static str,
    pub example: &'static str,
}

/// Create intents are state's (the journal records them); providers see
/// them during refresh.
pub use crate::state::Intent;

/// One instance to refresh, with what state knows of it.
#[derive(Debug, Clone)]
pub struct ReadItem {
    pub addr: InstanceAddr,
    /// Attributes from state (sensitive ones are hashes).
    pub prior: Value,
    /// The instance's own sensitive configuration attributes whose values
    /// are known before refresh (they read only variables), in plain text
    /// and in memory only: what a provider needs to connect when state
    /// keeps only their hash (e.g. an admin console's URL with a password).
    /// Empty when they read other resources or the resource is no longer
    /// configured.
    pub known: BTreeMap<String, Value>,
}

impl ReadItem {
    /// An item with no known configuration values.
    pub fn new(addr: InstanceAddr, prior: Value) -> ReadItem {
        ReadItem { addr, prior, known: BTreeMap::new() }
    }
}

#[derive(Debug, Clone)]
pub struct ReadRequest {
    pub rtype: String,
    pub lineage: String,
    pub items: Vec<ReadItem>,
}

/// An object carrying this state's lineage that was not requested.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundObject {
    pub id: String,
    /// The `himaplan:address` label, if any (a label that is not an
    /// address counts as none: the object is then reported unmanaged).
    pub address: Option<InstanceAddr>,
    /// The create token label, if any.
    pub token: Option<String>,
    /// Sortable creation time (RFC 3339); the oldest is kept among duplicates.
    pub created: String,
    pub attrs: Value,
}

#[derive(Debug, Clone, Default)]
pub struct ReadResponse {
    /// One entry per requested item, same order; `None` when it is gone.
    pub current: Vec<Option<Value>>,
    pub others: Vec<FoundObject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyAction {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub rtype: String,
    pub addr: InstanceAddr,
    pub action: ApplyAction,
    /// The object's attributes before (state or refreshed); `Null` for a create.
    pub prior: Value,
    /// The desired attributes; `Null` for a delete. Contains no unknowns.
    pub planned: Value,
    /// Names of the attributes that differ between prior and planned.
    pub changed: Vec<String>,
    pub lineage: String,
    /// The create intent's token (creates only).
    pub token: Option<String>,
    /// The resource's `rollout { max_unavailable }`, for providers that
    /// disrupt members of one object in batches (a service's containers).
    pub rollout: Rollout,
    /// Set when this step disrupts only these members of the object (one
    /// batch of a service's containers, see [`Provider::members`]): the
    /// others are left as they are, and the value returned is the object
    /// after this batch.
    pub part: Option<Vec<String>>,
}

/// Taking members out of a listing before they are disrupted (an
/// `nginx_upstream` listing an instance about to be stopped), or putting
/// them back once they run again: one drain or restore step of a batch.
#[derive(Debug, Clone)]
pub struct DrainRequest {
    /// The listing: `prior` is what state holds for it now, `planned` its
    /// configuration as plan evaluated it (secrets in plain text, e.g. an
    /// admin URL to reach the daemon), `changed` empty.
    pub request: ApplyRequest,
    /// The listing's entries that come from the batch's members, as the
    /// provider's [`Provider::drain_entries`] named them.
    pub entries: Vec<String>,
    /// `false` to drain, `true` to restore.
    pub restore: bool,
}

/// One member of an object that an update disrupts piece by piece (a
/// container of a `docker_service`): its name, and where its value sits in
/// the object's attributes (`containers[index]`), so drains can tell its
/// entries from the others'.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub attribute: String,
    pub index: usize,
}

/// A listing's answer to "which of your entries come from these members".
#[derive(Debug, Clone, PartialEq)]
pub struct DrainPlan {
    /// The entries (nginx: server addresses; PgBouncer: database names).
    pub entries: Vec<String>,
    /// What draining does, for the plan, e.g. "marked down, reload".
    pub how: String,
    /// What restoring does, e.g. "back up, reload".
    pub undo: String,
    /// Restore even after the disruption failed (PgBouncer resumes, so its
    /// clients do not wait forever); otherwise a failed member stays drained.
    pub restore_after_failure: bool,
}

/// `rollout { max_unavailable = N | "P%" }` as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rollout {
    Count(usize),
    Percent(f64),
}

impl Default for Rollout {
    fn default() -> Self {
        Rollout::Count(1)
    }
}

impl Rollout {
    /// How many of `total` members may be disrupted at once: a percentage
    /// rounds down, never below 1.
    pub fn resolve(&self, total: usize) -> usize {
        match self {
            Rollout::Count(n) => (*n).max(1),
            Rollout::Percent(p) => ((total as f64 * p / 100.0).floor() as usize).max(1),
        }
    }
}

/// A provider's refinement of a planned change.
#[derive(Debug, Clone, Default)]
pub struct ChangeShape {
    /// Attributes whose change forces replacement beyond the schema's.
    pub requires_replace: Vec<String>,
    /// Set when the update disrupts the object (e.g. "stop/start").
    pub disruption: Option<String>,
    /// Extra lines for the plan (e.g. "pending restart").
    pub notes: Vec<String>,
    /// Computed attributes the update will change (known only after apply).
    pub recomputed: Vec<String>,
    /// The update only removes members (e.g. a scale-down): resources that
    /// list them are updated first, as before a destroy.
    pub shrinks: bool,
    /// Computed attributes whose value after the update the provider can
    /// tell now (e.g. the containers left after a scale-down).
    pub predicted: BTreeMap<String, Value>,
}

/// One instance's desired configuration, for [`Provider::adjust_desired`].
#[derive(Debug, Clone)]
pub struct DesiredItem {
    pub addr: InstanceAddr,
    pub rtype: String,
    /// The evaluated configuration; the provider may change it.
    pub config: Value,
    /// What state holds (after refresh), if the object exists.
    pub prior: Option<Value>,
    /// Lines the plan shows for this instance.
    pub notes: Vec<String>,
    /// When a saved plan is applied: the planned value it holds for this
    /// instance, so a provider reuses what it computed at plan time (e.g. a
    /// compose hash) instead of asking again.
    pub saved: Option<Value>,
}

/// What kind of failure a [`ProviderError`] is: it decides whether the
/// engine retries the call and what advice the diagnostic gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// Throttling, 5xx, timeouts, dropped connections: worth retrying.
    Transient,
    /// The object does not exist.
    NotFound,
    /// The object changed under us or exists already (a 409, a failed
    /// precondition, a name in use): planning again shows the current state.
    Conflict,
    /// Bad configuration or a request the service refused as invalid (a 4xx,
    /// a failed validation): retrying will not help.
    Invalid,
    /// Any other permanent failure: retrying will not help.
    Other,
}

/// Why a provider call failed: a [`ProviderErrorKind`], the text shown to
/// the user, and the underlying SDK, I/O or protocol error when there is one.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", if *.kind == ProviderErrorKind::NotFound { "not found: " } else { "" })]
pub struct ProviderError {
    kind: ProviderErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ProviderError {
    /// An error of the given kind with no source.
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError { kind, message: message.into(), source: None }
    }
    /// A failure worth retrying ([`ProviderErrorKind::Transient`]).
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Transient, message)
    }
    /// The object does not exist ([`ProviderErrorKind::NotFound`]).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::NotFound, message)
    }
    /// The object changed or exists already ([`ProviderErrorKind::Conflict`]).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Conflict, message)
    }
    /// Bad configuration or a refused request ([`ProviderErrorKind::Invalid`]).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Invalid, message)
    }
    /// Any other permanent failure ([`ProviderErrorKind::Other`]).
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Other, message)
    }
    /// Attaches the underlying error; the message shown stays the same.
    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn kind(&self) -> ProviderErrorKind {
        self.kind
    }
    /// The message without the `not found: ` prefix of [`Display`](std::fmt::Display).
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn is_transient(&self) -> bool {
        self.kind == ProviderErrorKind::Transient
    }
    pub fn is_not_found(&self) -> bool {
        self.kind == ProviderErrorKind::NotFound
    }
}

/// A problem a provider finds in a resource's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// The attribute at fault, when there is one (for its file and line).
    pub attribute: Option<String>,
    pub message: String,
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider's name as written in `provider "NAME"` blocks.
    fn name(&self) -> &'static str;

    /// The resource types it offers.
    fn resource_types(&self) -> Vec<ResourceType>;

    /// The attributes of its `provider` block.
    fn provider_schema(&self) -> Schema {
        Schema::default()
    }

    /// The reference text of one of its resource types.
    fn type_docs(&self, _rtype: &str) -> TypeDocs {
        TypeDocs::default()
    }

    /// Checks a resource's evaluated configuration beyond types (e.g. a
    /// memory size's unit). No network.
    fn validate(&self, _rtype: &str, _config: &Value) -> Vec<ConfigProblem> {
        Vec::new()
    }

    /// Refines a planned update (disruption, extra replace triggers, notes).
    /// The default derives disruption from the schema.
    fn shape_change(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
        let _ = (prior, planned);
        let mut shape = ChangeShape::default();
        if let Some(rt) = self.resource_types().into_iter().find(|t| t.name == rtype) {
            shape.disruption = changed.iter().filter_map(|c| rt.schema.attribute(c).and_then(|a| a.disruption)).next().map(str::to_string);
        }
        shape
    }

    /// True when objects of this type are identified by labels their
    /// ecosystem already uses (a `docker_service` is the containers carrying
    /// its compose project/service labels): an existing one is adopted by
    /// plan without `import`, its configuration serving as the `read` prior.
    fn adopts_by_identity(&self, _rtype: &str) -> bool {
        false
    }

    /// Whether [`Provider::adjust_desired`] should be called.
    fn wants_adjust(&self) -> bool {
        false
    }

    /// Adjusts the desired values of every instance of this provider's
    /// types at once, after evaluation: for desired values that depend on
    /// other resources of the same provider (an autoscaler owning a replica
    /// count, a schedule's latest firing before `at`). May add plan notes
    /// and report problems. No network.
    fn adjust_desired(&self, _at: chrono::DateTime<chrono::Utc>, _items: &mut [DesiredItem]) -> Vec<(usize, ConfigProblem)> {
        Vec::new()
    }

    /// Connects, using the `provider` block's values (`Null` when absent).
    async fn configure(&self, config: &Value) -> Result<(), ProviderError>;

    /// Reads the current state of every requested instance of one type and
    /// lists the other objects carrying the lineage.
    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError>;

    /// Creates, updates or deletes one object; returns its new attributes
    /// (`Null` after a delete).
    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError>;

    /// The members a disruptive update of one object disrupts one by one,
    /// in order (e.g. the containers a recreate replaces): the engine then
    /// rolls them out in batches of `max_unavailable`, one step each
    /// ([`ApplyRequest::part`]), drained per batch. Empty (the default): the
    /// object is disrupted as a whole.
    fn members(&self, _rtype: &str, _prior: &Value, _planned: &Value, _changed: &[String]) -> Vec<Member> {
        Vec::new()
    }

    /// For resource types that route traffic to the objects they list (a
    /// *listing*): which entries of `config` come from the members about to
    /// be disrupted. `marked` is the same configuration evaluated with every
    /// attribute of those members unknown, so an entry that is unknown in
    /// `marked` and not in `config` comes from them (the unknown mark is the
    /// provenance mark). `None` for types that never drain (records);
    /// `Err` when the entries cannot be told apart (shown at the listing).
    fn drain_entries(&self, _rtype: &str, _config: &Value, _marked: &Value) -> Option<Result<DrainPlan, String>> {
        None
    }

    /// Drains entries of a listing object (or restores them) the
    /// provider's native way (mark a server `down`, `PAUSE` a database);
    /// returns the listing's new attributes. Only called for types whose
    /// [`Provider::drain_entries`] answers.
    async fn drain(&self, req: DrainRequest) -> Result<Value, ProviderError> {
        Err(ProviderError::invalid(format!("{} does not drain what it lists", req.request.rtype)))
    }

    /// Runs a health check's `command` inside the object (`value`: its
    /// attributes as state holds them); `Ok` with a short report when it
    /// exits 0, else what it printed or why it could not run.
    async fn probe(&self, rtype: &str, _value: &Value, _command: &[String]) -> Result<String, String> {
        Err(format!("{rtype} cannot run a health check command; use http or tcp"))
    }

    /// How a moved object's address label is updated, for the plan (e.g.
    /// "CreateTags himaplan:address"), or `None` when nothing is sent now
    /// (no label, or labels that change only when the object is recreated).
    fn relabel_step(&self, _rtype: &str) -> Option<&'static str> {
        None
    }

    /// Sets the address label of an object `moved` gave a new address (the
    /// state's attributes in `req.prior`, the new address in `req.addr`);
    /// returns its attributes. Only called when [`Provider::relabel_step`]
    /// answers.
    async fn relabel(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        Ok(req.prior)
    }

    /// Reads an existing object by its id for `import`, and labels it.
    async fn import(&self, rtype: &str, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError>;
}

/// The providers known to a run, by name, and the resource types they serve.
#[derive(Default, Clone)]
pub struct Registry {
    providers: BTreeMap<&'static str, std::sync::Arc<dyn Provider>>,
    types: BTreeMap<String, (&'static str, ResourceType)>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    pub fn register(&mut self, provider: std::sync::Arc<dyn Provider>) {
        let name = provider.name();
        for rt in provider.resource_types() {
            self.types.insert(rt.name.to_string(), (name, rt));
        }
        self.providers.insert(name, provider);
    }

    pub fn provider(&self, name: &str) -> Option<&std::sync::Arc<dyn Provider>> {
        self.providers.get(name)
    }

    /// The provider name and type description serving a resource type.
    pub fn resource_type(&self, rtype: &str) -> Option<(&'static str, &ResourceType)> {
        self.types.get(rtype).map(|(p, rt)| (*p, rt))
    }

    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }

    pub fn providers(&self) -> impl Iterator<Item = (&'static str, &std::sync::Arc<dyn Provider>)> {
        self.providers.iter().map(|(k, v)| (*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_print_their_message_and_keep_the_source() {
        assert_eq!(ProviderError::not_found("instance i-1 does not exist").to_string(), "not found: instance i-1 does not exist");
        assert_eq!(ProviderError::conflict("bucket b already exists").to_string(), "bucket b already exists");
        let io = std::io::Error::other("disk full");
        let e = ProviderError::other("writing /etc/x: disk full").with_source(io);
        assert_eq!(e.to_string(), "writing /etc/x: disk full");
        assert_eq!(e.kind(), ProviderErrorKind::Other);
        assert_eq!(std::error::Error::source(&e).map(ToString::to_string).as_deref(), Some("disk full"));
        assert!(ProviderError::transient("503").is_transient() && !ProviderError::invalid("400").is_transient());
    }
}
