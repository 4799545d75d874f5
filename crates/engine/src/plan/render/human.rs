//! The plan as a person reviews it in a terminal, laid out like Terraform's:
//! drift, unmanaged objects, one block per change, output changes, the apply
//! order, notes and the summary line. Colour is added only when asked for.

use super::canvas::Canvas;
use super::diff::{Body, Differ};
use super::{KNOWN, RenderOptions, reason_text};
use crate::addr::InstanceAddr;
use crate::plan::{Action, ChangeReason, Drift, OutputChange, Plan, ResourceChange, Unmanaged};
use serde_json::{Map, Value};

/// Renders `plan` as Terraform-style text ending with a newline.
pub fn human(plan: &Plan, opts: &RenderOptions) -> String {
    let mut canvas = Canvas::new(opts.color);
    if !plan.drift.is_empty() {
        drift_section(&mut canvas, &plan.drift, plan.has_changes());
    }
    if !plan.unmanaged.is_empty() {
        unmanaged_section(&mut canvas, &plan.unmanaged);
    }

    if !plan.imports.is_empty() {
        canvas.plain_line(0, "himaplan will import these existing objects (and label them with their address):");
        for (addr, id) in &plan.imports {
            canvas.plain_line(2, &format!("# {addr} will be imported from {id}"));
        }
        canvas.blank();
    }
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    if !changes.is_empty() {
        legend(&mut canvas, &changes);
        canvas.plain_line(0, "himaplan will perform the following actions:");
        for change in &changes {
            canvas.blank();
            change_block(&mut canvas, change);
        }
        canvas.blank();
    }

    let outputs: Vec<&OutputChange> = plan.output_changes.iter().filter(|o| o.is_change()).collect();
    if !outputs.is_empty() {
        outputs_section(&mut canvas, &outputs);
    }

    if !plan.steps.is_empty() {
        canvas.plain_line(0, "Apply order:");
        let width = plan.steps.len().to_string().len();
        for (i, step) in plan.steps.iter().enumerate() {
            canvas.plain_line(2, &format!("{:>width$}. {}", i + 1, one_line(step)));
        }
        canvas.blank();
    }

    for note in &plan.notes {
        canvas.plain_line(0, &format!("Note: {}", one_line(note)));
    }
    if !plan.notes.is_empty() {
        canvas.blank();
    }

    if plan.has_changes() {
        canvas.headline(0, &plan.summary_line());
        if changes.is_empty() {
            canvas.plain_line(0, "Applying it only saves the new output values to the state; no real object changes.");
        }
    } else {
        canvas.headline(0, "No changes. Your infrastructure matches the configuration.");
        canvas.blank();
        if plan.drift.is_empty() {
            canvas.plain_line(0, "himaplan compared your real infrastructure against your configuration and found");
            canvas.plain_line(0, "no differences, so no changes are needed.");
        } else {
            canvas.plain_line(0, "Your configuration already matches the changes detected above, so no changes");
            canvas.plain_line(0, "are needed.");
        }
    }
    canvas.text
}

/// One change: its headline comments and its `resource` block.
fn change_block(canvas: &mut Canvas, change: &ResourceChange) {
    let addr = &change.addr;
    let mut headline = match (change.action, change.reason.as_ref().map(ChangeReason::as_str)) {
        (Action::Create, _) => format!("# {addr} will be created"),
        (Action::Update, _) => format!("# {addr} will be updated in place"),
        (Action::Delete, _) => format!("# {addr} will be destroyed"),
        (Action::DeleteThenCreate | Action::CreateThenDelete, Some("replace_because_tainted")) => {
            format!("# {addr} is tainted, so must be replaced")
        }
        (Action::DeleteThenCreate | Action::CreateThenDelete, Some("replace_by_request")) => {
            format!("# {addr} will be replaced, as requested")
        }
        (Action::DeleteThenCreate | Action::CreateThenDelete, _) => format!("# {addr} must be replaced"),
        (Action::NoOp, _) => format!("# {addr} will not change"),
    };
    if let Some(disruption) = &change.disruption {
        headline.push_str(&format!(" (disruptive: {})", one_line(disruption)));
    }
    canvas.headline(2, &headline);
    // The headline already says why a tainted or requested replacement
    // happens, and `# forces replacement` marks an attribute that cannot be
    // updated in place.
    let said = matches!(
        change.reason.as_ref().map(ChangeReason::as_str),
        Some("replace_because_tainted" | "replace_by_request" | "replace_because_cannot_update")
    );
    if let Some(reason) = reason_text(change).filter(|_| !said) {
        canvas.plain_line(2, &format!("# ({})", one_line(&reason)));
    }
    if change.action == Action::CreateThenDelete {
        canvas.plain_line(2, "# (the new object is created before the old one is destroyed)");
    }

    canvas.symbol_line(0, change.action.symbol(), &resource_header(addr));
    for note in &change.notes {
        canvas.plain_line(8, &format!("# {}", one_line(note)));
    }
    let before = as_object(change.before.as_ref());
    let after = as_object(change.after.as_ref());
    let mut differ = Differ { canvas, replace_paths: &change.replace_paths };
    match change.action {
        Action::Create => differ.created_body(1, &after, &change.after_unknown),
        Action::Delete => differ.deleted_body(1, &before),
        _ => differ.object_body(1, "", &before, &after, &change.after_unknown, Body::Resource),
    }
    canvas.plain_line(4, "}");
}

fn drift_section(canvas: &mut Canvas, drift: &[Drift], has_actions: bool) {
    canvas.headline(0, "Note: Objects changed outside of himaplan");
    canvas.blank();
    canvas.plain_line(0, "himaplan detected the following changes made outside of himaplan since the");
    canvas.plain_line(0, "last apply, which may have affected this plan:");
    for item in drift {
        canvas.blank();
        let addr = &item.addr;
        let before = as_object(item.before.as_ref());
        let after = as_object(item.after.as_ref());
        let mut differ = Differ { canvas: &mut *canvas, replace_paths: &[] };
        match (&item.before, &item.after) {
            (Some(_), None) => {
                differ.canvas.headline(2, &format!("# {addr} has been deleted"));
                differ.canvas.symbol_line(0, "-", &resource_header(addr));
                differ.deleted_body(1, &before);
            }
            (None, Some(_)) => {
                differ.canvas.headline(2, &format!("# {addr} has been created"));
                differ.canvas.symbol_line(0, "+", &resource_header(addr));
                differ.created_body(1, &after, &KNOWN);
            }
            _ => {
                differ.canvas.headline(2, &format!("# {addr} has changed"));
                differ.canvas.symbol_line(0, "~", &resource_header(addr));
                differ.object_body(1, "", &before, &after, &KNOWN, Body::Resource);
            }
        }
        canvas.plain_line(4, "}");
    }
    canvas.blank();
    if has_actions {
        canvas.plain_line(0, "Unless you have made equivalent changes to your configuration, the actions");
        canvas.plain_line(0, "below may undo or respond to these changes.");
        canvas.blank();
    }
}

fn unmanaged_section(canvas: &mut Canvas, unmanaged: &[Unmanaged]) {
    let count = unmanaged.len();
    let (objects, carry) = if count == 1 { ("1 object", "carries") } else { ("objects", "carry") };
    let title = if count == 1 {
        format!("Warning: {objects} {carry} this state's lineage but is not in the state")
    } else {
        format!("Warning: {count} {objects} {carry} this state's lineage but are not in the state")
    };
    canvas.headline(0, &title);
    canvas.blank();
    canvas.plain_line(0, "himaplan does not manage them: this plan neither changes nor destroys them.");
    canvas.plain_line(0, "Adopt one with `himaplan import ADDR ID`, or delete it outside himaplan.");
    canvas.blank();
    for object in unmanaged {
        let id = Value::String(object.id.clone()).to_string();
        match &object.address {
            Some(address) => {
                canvas.plain_line(2, &format!("# {} {id} (labelled {})", one_line(&object.rtype), one_line(&address.to_string())));
                canvas.plain_line(4, &format!("himaplan import {} {}", shell_word(&address.to_string()), shell_word(&object.id)));
            }
            None => {
                canvas.plain_line(2, &format!("# {} {id}", one_line(&object.rtype)));
                canvas.plain_line(4, &format!("himaplan import ADDR {}", shell_word(&object.id)));
            }
        }
    }
    canvas.blank();
}

fn outputs_section(canvas: &mut Canvas, outputs: &[&OutputChange]) {
    canvas.plain_line(0, "Changes to Outputs:");
    // All outputs form one block at depth 0, so their `=` line up.
    let (mut before, mut after, mut unknown) = (Map::new(), Map::new(), Map::new());
    for output in outputs {
        let (b, a) = if output.sensitive {
            // Neither side of a sensitive output is shown, whatever form it
            // reached the plan in; two distinct stand-ins keep it a change.
            (
                output.before.as_ref().filter(|v| !v.is_null()).map(|_| hidden_secret("before")),
                output.after.as_ref().filter(|v| !v.is_null()).map(|_| hidden_secret("after")),
            )
        } else {
            (output.before.clone(), output.after.clone())
        };
        if let Some(b) = b {
            before.insert(output.name.clone(), b);
        }
        if let Some(a) = a {
            after.insert(output.name.clone(), a);
        }
        unknown.insert(output.name.clone(), Value::Bool(output.after_unknown));
    }
    let mut differ = Differ { canvas: &mut *canvas, replace_paths: &[] };
    differ.object_body(0, "", &before, &after, &Value::Object(unknown), Body::Attributes);
    canvas.blank();
}

/// A value that renders as `(sensitive value)`.
fn hidden_secret(side: &str) -> Value {
    serde_json::json!({ "sensitive": format!("sha256:{side}") })
}

/// The symbols legend, listing only the actions this plan uses.
fn legend(canvas: &mut Canvas, changes: &[&ResourceChange]) {
    canvas.plain_line(0, "Resource actions are indicated with the following symbols:");
    let used = |action: Action| changes.iter().any(|c| c.action == action);
    let entries = [
        (Action::Create, "create"),
        (Action::Update, "update in-place"),
        (Action::Delete, "destroy"),
        (Action::DeleteThenCreate, "destroy and then create replacement"),
        (Action::CreateThenDelete, "create replacement and then destroy"),
    ];
    for (action, words) in entries {
        if used(action) {
            canvas.symbol_line(0, action.symbol(), words);
        }
    }
    canvas.blank();
}

/// `resource "aws_instance" "web" {`
fn resource_header(addr: &InstanceAddr) -> String {
    let quote = |s: &str| Value::String(s.to_string()).to_string();
    format!("resource {} {} {{", quote(&addr.resource.rtype), quote(&addr.resource.name))
}

/// A plan value seen as the attributes of a block; anything other than an
/// object is shown under a single `value` attribute rather than dropped.
fn as_object(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(value @ Value::Object(map)) if !super::is_secret(value) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            let mut map = Map::new();
            map.insert("value".to_string(), other.clone());
            map
        }
    }
}

/// Free text on one line, so that a newline in a note cannot fake a line of
/// the plan.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// A word as a POSIX shell reads it: bare when safe, single-quoted otherwise.
fn shell_word(word: &str) -> String {
    let safe = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:/@%+=,".contains(c));
    if safe { word.to_string() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}
