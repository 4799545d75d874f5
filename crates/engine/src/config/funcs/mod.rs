//! The built-in functions of the configuration language: every pure
//! function of Terraform 1.15's list, with Terraform's semantics, over
//! [`Value`]s that may carry the unknown and sensitive marks.
//!
//! This module owns the table of functions and the handling of marks; each
//! group of functions (numeric, string, collection, …) lives in its own
//! file. Marks are handled once, in [`call_in`]: an argument that is or
//! contains an unknown value makes the result unknown (except where a
//! function only combines or counts values), and a sensitive argument makes
//! the whole result sensitive. The functions themselves see plain values.
//!
//! Guarantees: no input can make a function panic or allocate without
//! bound; bad arguments and oversized results are errors with a message for
//! the user. Only the filesystem group (and the file hashes) reads files,
//! bounded in size and relative to the module's directory; `try`, `can` and
//! `convert` need their arguments unevaluated, so the evaluator handles
//! them (`eval.rs`) and the table only names them.

mod args;
mod collection;
mod conversion;
mod crypto;
mod encoding;
mod filesystem;
mod format;
mod hash;
mod ip;
mod numeric;
mod regex;
mod set;
mod string;
mod time;
mod yaml;

#[cfg(test)]
mod tests;

pub(crate) use args::Args;
pub use conversion::{Type, convert_to};

use super::inputs::Inputs;
use crate::value::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Upper bound on the number of elements a function may produce.
pub(crate) const MAX_ELEMENTS: usize = 1_000_000;

/// Upper bound on the length in bytes of a string a function produces.
pub(crate) const MAX_STRING_BYTES: usize = 64 * 1024 * 1024;

/// Upper bound on a width, precision or indentation, so `%999999999d` or
/// `indent(1e9, …)` cannot allocate without limit.
pub(crate) const MAX_WIDTH: usize = 10_000;

/// Upper bound on the size of a file that a function reads.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The groups of Terraform's function documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Numeric,
    String,
    Collection,
    Encoding,
    Filesystem,
    Time,
    Hash,
    Ip,
    Conversion,
}

/// How unknown arguments affect a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unknowns {
    /// Any unknown value, at any depth, makes the result unknown.
    Deep,
    /// Only an argument that is unknown as a whole does: the function
    /// counts or rearranges elements without looking into them.
    Shallow,
    /// The function sees unknown values and decides itself.
    Raw,
    /// The function is impure (`bcrypt`, `timestamp`, `uuid`): planning
    /// sees an unknown result, as in Terraform's planning scope, and only
    /// [`call_at_apply`] runs it.
    AfterApply,
}

/// How sensitive marks affect a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Marks {
    /// Arguments are unmarked and the result marked when any was.
    Propagate,
    /// The function sees and sets marks itself (`sensitive`, …).
    Raw,
}

struct Func {
    name: &'static str,
    group: Group,
    unknowns: Unknowns,
    marks: Marks,
    run: fn(&Args) -> Result<Value, String>,
}

const fn f(name: &'static str, group: Group, run: fn(&Args) -> Result<Value, String>) -> Func {
    Func { name, group, unknowns: Unknowns::Deep, marks: Marks::Propagate, run }
}

const fn shallow(name: &'static str, group: Group, run: fn(&Args) -> Result<Value, String>) -> Func {
    Func { name, group, unknowns: Unknowns::Shallow, marks: Marks::Propagate, run }
}

const fn raw(name: &'static str, group: Group, run: fn(&Args) -> Result<Value, String>) -> Func {
    Func { name, group, unknowns: Unknowns::Raw, marks: Marks::Raw, run }
}

const fn after_apply(name: &'static str, group: Group, run: fn(&Args) -> Result<Value, String>) -> Func {
    Func { name, group, unknowns: Unknowns::AfterApply, marks: Marks::Propagate, run }
}

/// Stands in for functions the evaluator calls itself.
fn lazy(f: &Args) -> Result<Value, String> {
    Err(format!("{} must be called from an expression", f.name))
}

/// Functions whose arguments the evaluator must not evaluate up front.
pub const LAZY_FUNCTIONS: &[&str] = &["can", "convert", "try"];

/// Where a call happens: the module's directory for relative paths.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `path.module`; relative file paths are resolved against it.
    pub module_dir: Option<PathBuf>,
    /// Where file reads and the plan's time come from (and are recorded).
    pub inputs: Arc<Inputs>,
}

/// True when `name` is a built-in function.
pub fn is_known_function(name: &str) -> bool {
    find(name).is_some()
}

/// Every built-in function with its group, in name order.
pub fn functions() -> impl Iterator<Item = (&'static str, Group)> {
    table().iter().map(|f| (f.name, f.group))
}

/// Calls the built-in function `name` with no module context (relative
/// paths resolve against the working directory).
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    call_in(&Context::default(), name, args)
}

/// Calls the built-in function `name`.
///
/// The error is a message for the user, naming the function, e.g.
/// `join: second argument must be a list of strings, got number`.
///
/// Guarantees: a result derived from a sensitive argument is sensitive
/// (wrapped once, at the top); a result derived from an unknown argument is
/// [`Value::Unknown`] (sensitive-wrapped when an argument was sensitive),
/// except that counting and combining functions (`length`, `concat`,
/// `merge`, `tolist`, …) keep unknown elements in place.
/// Once apply has started (`Inputs::start_applying`), impure functions
/// run as in [`call_at_apply`].
pub fn call_in(ctx: &Context, name: &str, args: Vec<Value>) -> Result<Value, String> {
    call_with(ctx, name, args, ctx.inputs.applying())
}

/// Calls the built-in function `name` as apply does: like [`call_in`], but
/// an impure function (`bcrypt`, `timestamp`, `uuid`) produces its value
/// (a fresh salt, the current time, a random UUID) instead of unknown.
pub fn call_at_apply(ctx: &Context, name: &str, args: Vec<Value>) -> Result<Value, String> {
    call_with(ctx, name, args, true)
}

fn call_with(ctx: &Context, name: &str, args: Vec<Value>, applying: bool) -> Result<Value, String> {
    let Some(func) = find(name) else {
        return Err(format!("unknown function \"{name}\""));
    };
    if func.marks == Marks::Raw {
        return (func.run)(&Args { name: func.name, args: &args, ctx });
    }
    let sensitive = args.iter().any(Value::has_sensitive);
    let args: Vec<Value> = if sensitive { args.iter().map(Value::deep_unmarked).collect() } else { args };
    let unknown = match func.unknowns {
        Unknowns::Deep => args.iter().any(Value::has_unknown),
        Unknowns::Shallow => args.iter().any(|a| matches!(a, Value::Unknown)),
        Unknowns::Raw => false,
        Unknowns::AfterApply => !applying || args.iter().any(Value::has_unknown),
    };
    let result = if unknown { Value::Unknown } else { (func.run)(&Args { name: func.name, args: &args, ctx })? };
    Ok(if sensitive { result.into_sensitive() } else { result })
}

fn find(name: &str) -> Option<&'static Func> {
    let table = table();
    table.binary_search_by(|f| f.name.cmp(name)).ok().map(|i| &table[i])
}

/// The table, sorted by name (checked by a test) for binary search.
fn table() -> &'static [Func] {
    use Group::*;
    const TABLE: &[Func] = &[
        f("abs", Numeric, numeric::abs),
        f("abspath", Filesystem, filesystem::abspath),
        f("alltrue", Collection, collection::alltrue),
        f("anytrue", Collection, collection::anytrue),
        f("base64decode", Encoding, encoding::base64decode),
        f("base64encode", Encoding, encoding::base64encode),
        f("base64gzip", Encoding, encoding::base64gzip),
        f("base64sha256", Hash, hash::base64sha256),
        f("base64sha512", Hash, hash::base64sha512),
        f("basename", Filesystem, filesystem::basename),
        after_apply("bcrypt", Hash, crypto::bcrypt),
        raw("can", Conversion, lazy),
        f("ceil", Numeric, numeric::ceil),
        f("chomp", String, string::chomp),
        shallow("chunklist", Collection, collection::chunklist),
        f("cidrhost", Ip, ip::cidrhost),
        f("cidrnetmask", Ip, ip::cidrnetmask),
        f("cidrsubnet", Ip, ip::cidrsubnet),
        f("cidrsubnets", Ip, ip::cidrsubnets),
        f("coalesce", Collection, collection::coalesce),
        shallow("coalescelist", Collection, collection::coalescelist),
        f("compact", Collection, collection::compact),
        shallow("concat", Collection, collection::concat),
        f("contains", Collection, collection::contains),
        raw("convert", Conversion, lazy),
        f("csvdecode", Encoding, encoding::csvdecode),
        f("dirname", Filesystem, filesystem::dirname),
        f("distinct", Collection, collection::distinct),
        shallow("element", Collection, collection::element),
        f("endswith", String, string::endswith),
        raw("ephemeralasnull", Conversion, conversion::ephemeralasnull),
        f("file", Filesystem, filesystem::file),
        f("filebase64", Filesystem, filesystem::filebase64),
        f("filebase64sha256", Hash, hash::filebase64sha256),
        f("filebase64sha512", Hash, hash::filebase64sha512),
        f("fileexists", Filesystem, filesystem::fileexists),
        f("filemd5", Hash, hash::filemd5),
        f("fileset", Filesystem, filesystem::fileset),
        f("filesha1", Hash, hash::filesha1),
        f("filesha256", Hash, hash::filesha256),
        f("filesha512", Hash, hash::filesha512),
        shallow("flatten", Collection, collection::flatten),
        f("floor", Numeric, numeric::floor),
        f("format", String, format::format),
        f("formatdate", Time, time::formatdate),
        f("formatlist", String, format::formatlist),
        f("indent", String, string::indent),
        f("index", Collection, collection::index),
        raw("issensitive", Conversion, conversion::issensitive),
        f("join", String, string::join),
        f("jsondecode", Encoding, encoding::jsondecode),
        f("jsonencode", Encoding, encoding::jsonencode),
        shallow("keys", Collection, collection::keys),
        shallow("length", Collection, collection::length),
        f("log", Numeric, numeric::log),
        shallow("lookup", Collection, collection::lookup),
        f("lower", String, string::lower),
        f("matchkeys", Collection, collection::matchkeys),
        f("max", Numeric, numeric::max),
        f("md5", Hash, hash::md5),
        shallow("merge", Collection, collection::merge),
        f("min", Numeric, numeric::min),
        raw("nonsensitive", Conversion, conversion::nonsensitive),
        shallow("one", Collection, collection::one),
        f("parseint", Numeric, numeric::parseint),
        f("pathexpand", Filesystem, filesystem::pathexpand),
        f("plantimestamp", Time, time::plantimestamp),
        f("pow", Numeric, numeric::pow),
        f("range", Collection, collection::range),
        f("regex", String, string::regex),
        f("regexall", String, string::regexall),
        f("replace", String, string::replace),
        shallow("reverse", Collection, collection::reverse),
        f("rsadecrypt", Hash, crypto::rsadecrypt),
        raw("sensitive", Conversion, conversion::sensitive),
        f("setintersection", Collection, set::setintersection),
        f("setproduct", Collection, set::setproduct),
        f("setsubtract", Collection, set::setsubtract),
        f("setunion", Collection, set::setunion),
        f("sha1", Hash, hash::sha1),
        f("sha256", Hash, hash::sha256),
        f("sha512", Hash, hash::sha512),
        f("signum", Numeric, numeric::signum),
        shallow("slice", Collection, collection::slice),
        f("sort", Collection, collection::sort),
        f("split", String, string::split),
        f("startswith", String, string::startswith),
        f("strcontains", String, string::strcontains),
        f("strrev", String, string::strrev),
        f("substr", String, string::substr),
        f("sum", Numeric, numeric::sum),
        f("templatefile", Filesystem, filesystem::templatefile),
        f("templatestring", String, string::templatestring),
        f("textdecodebase64", Encoding, encoding::textdecodebase64),
        f("textencodebase64", Encoding, encoding::textencodebase64),
        f("timeadd", Time, time::timeadd),
        f("timecmp", Time, time::timecmp),
        after_apply("timestamp", Time, time::timestamp),
        f("title", String, string::title),
        f("tobool", Conversion, conversion::tobool),
        shallow("tolist", Conversion, conversion::tolist),
        shallow("tomap", Conversion, conversion::tomap),
        f("tonumber", Conversion, conversion::tonumber),
        f("toset", Conversion, conversion::toset),
        f("tostring", Conversion, conversion::tostring),
        f("transpose", Collection, collection::transpose),
        f("trim", String, string::trim),
        f("trimprefix", String, string::trimprefix),
        f("trimspace", String, string::trimspace),
        f("trimsuffix", String, string::trimsuffix),
        raw("try", Conversion, lazy),
        f("upper", String, string::upper),
        f("urlencode", Encoding, encoding::urlencode),
        after_apply("uuid", Hash, hash::uuid),
        f("uuidv5", Hash, hash::uuidv5),
        shallow("values", Collection, collection::values),
        f("yamldecode", Encoding, yaml::yamldecode),
        f("yamlencode", Encoding, yaml::yamlencode),
        shallow("zipmap", Collection, collection::zipmap),
    ];
    TABLE
}
