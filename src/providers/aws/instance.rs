//! `aws_instance`: refresh, create, update, delete and import of EC2
//! instances, plus the pure mapping from an SDK `Instance` to attributes.
//!
//! Refresh is batched: one paginated `DescribeInstances` filtered by the
//! lineage tag (`MaxResults = 1000`), plus one filtered by instance id only
//! for requested instances that carry no lineage tag. Every wait polls with
//! backoff, since real EC2 state transitions take time even though moto's
//! are instant. Must not touch tags under `himaplan:` except to label, and
//! must not decide plans: it carries out what it is asked.

use super::client::{missing, sdk_error};
use super::schema::{self, ADDRESS_TAG, LABEL_PREFIX, LINEAGE_TAG, RUNNING, STOPPED, TOKEN_TAG};
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{AttributeValue, Filter, Instance, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification};
use aws_smithy_types::date_time::Format;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, FoundObject, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

/// Longest wait for a state transition (real instances take minutes).
const WAIT_LIMIT: Duration = Duration::from_secs(300);
const POLL_FIRST: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(2);
/// Page size of filtered DescribeInstances calls (the API's maximum).
const PAGE_SIZE: i32 = 1000;
/// Values per filter that EC2 accepts in one request.
const FILTER_VALUES: usize = 200;

// ---------------------------------------------------------------------------
// Pure mapping

/// The power state an instance reports as an attribute, or `None` when the
/// instance is gone (shutting down or terminated).
pub fn power_state(instance: &Instance) -> Option<&'static str> {
    match instance.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending | InstanceStateName::Running) => Some(RUNNING),
        Some(InstanceStateName::Stopping | InstanceStateName::Stopped) => Some(STOPPED),
        _ => None,
    }
}

/// The user's tags: every tag except himaplan's labels.
pub fn user_tags(tags: &[Tag]) -> BTreeMap<String, Value> {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or(""))))
        .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect()
}

/// The value of one tag, if present.
pub fn tag<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).map(|t| t.value().unwrap_or(""))
}

/// The attributes of a live instance as state records them.
pub fn instance_attrs(instance: &Instance) -> Value {
    let text = |s: Option<&str>| Value::from(s.unwrap_or(""));
    let mut attrs = BTreeMap::new();
    attrs.insert("id".into(), text(instance.instance_id()));
    attrs.insert("ami".into(), text(instance.image_id()));
    attrs.insert("instance_type".into(), text(instance.instance_type().map(InstanceType::as_str)));
    attrs.insert("state".into(), Value::from(power_state(instance).unwrap_or(STOPPED)));
    attrs.insert("subnet_id".into(), text(instance.subnet_id()));
    attrs.insert("tags".into(), Value::Map(user_tags(instance.tags()).into()));
    attrs.insert("private_ip".into(), text(instance.private_ip_address()));
    attrs.insert("public_ip".into(), text(instance.public_ip_address()));
    attrs.insert("availability_zone".into(), text(instance.placement().and_then(|p| p.availability_zone())));
    Value::Map(attrs.into())
}

/// An unrequested instance of the lineage, as reported in `others`.
pub fn found_object(instance: &Instance) -> FoundObject {
    let tags = instance.tags();
    FoundObject {
        id: instance.instance_id().unwrap_or_default().to_string(),
        address: tag(tags, ADDRESS_TAG).and_then(|a| a.parse().ok()),
        token: tag(tags, TOKEN_TAG).map(str::to_string),
        created: instance.launch_time().and_then(|t| t.fmt(Format::DateTime).ok()).unwrap_or_default(),
        attrs: instance_attrs(instance),
    }
}

/// Matches refreshed instances to requested ids: `current[i]` is the live
/// instance whose id is `ids[i]`; `others` are the lineage's live instances
/// that nobody asked for, oldest first (ties broken by id).
pub fn match_instances(ids: &[Option<String>], lineage_found: &[Instance], by_id: &[Instance]) -> ReadResponse {
    let live: HashMap<&str, &Instance> =
        lineage_found.iter().chain(by_id).filter(|i| power_state(i).is_some()).filter_map(|i| Some((i.instance_id()?, i))).collect();
    let current = ids.iter().map(|id| id.as_deref().and_then(|id| live.get(id)).map(|i| instance_attrs(i))).collect();
    let requested: BTreeSet<&str> = ids.iter().flatten().map(String::as_str).collect();
    let mut seen = BTreeSet::new();
    let mut others: Vec<FoundObject> = lineage_found
        .iter()
        .filter(|i| power_state(i).is_some())
        .filter(|i| i.instance_id().is_some_and(|id| !requested.contains(id) && seen.insert(id)))
        .map(found_object)
        .collect();
    others.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    ReadResponse { current, others }
}

fn string_attr<'a>(attrs: &'a Value, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn tag_map(attrs: &Value) -> BTreeMap<String, String> {
    attrs
        .get("tags")
        .and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

fn new_tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

// ---------------------------------------------------------------------------
// Refresh

/// Refreshes the requested instances and lists the lineage's other ones.
pub async fn read(ec2: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let ids: Vec<Option<String>> = req.items.iter().map(|i| string_attr(&i.prior, "id").map(str::to_string)).collect();
    let lineage_filter = Filter::builder().name(format!("tag:{LINEAGE_TAG}")).values(&req.lineage).build();
    let lineage_found = describe(ec2, vec![lineage_filter]).await?;

    // Instances in state but without the lineage tag (imported before being
    // labelled, or relabelled outside himaplan) are looked up by id. A
    // filter rather than InstanceIds: one missing id would fail the whole
    // InstanceIds request, and a filter may page at 1,000.
    let known: BTreeSet<&str> = lineage_found.iter().filter_map(Instance::instance_id).collect();
    let missing: Vec<String> =
        ids.iter().flatten().filter(|id| !known.contains(id.as_str())).cloned().collect::<BTreeSet<_>>().into_iter().collect();
    let mut by_id = Vec::new();
    for chunk in missing.chunks(FILTER_VALUES) {
        let filter = Filter::builder().name("instance-id").set_values(Some(chunk.to_vec())).build();
        by_id.extend(describe(ec2, vec![filter]).await?);
    }
    Ok(match_instances(&ids, &lineage_found, &by_id))
}

/// One paginated, filtered DescribeInstances.
async fn describe(ec2: &Client, filters: Vec<Filter>) -> Result<Vec<Instance>, ProviderError> {
    let mut pages = ec2.describe_instances().set_filters(Some(filters)).max_results(PAGE_SIZE).into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("DescribeInstances", e))?;
        found.extend(page.reservations().iter().flat_map(|r| r.instances().iter().cloned()));
    }
    Ok(found)
}

/// Describes one instance by id; `NotFound` when it does not exist.
async fn describe_one(ec2: &Client, id: &str) -> Result<Instance, ProviderError> {
    let out = ec2.describe_instances().instance_ids(id).send().await.map_err(|e| sdk_error("DescribeInstances", e))?;
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .cloned()
        .ok_or_else(|| ProviderError::not_found(format!("instance {id} does not exist")))
}

// ---------------------------------------------------------------------------
// Waiting

/// What a wait is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Running,
    Stopped,
    Gone,
}

/// Polls the instance with backoff until it reaches `target`; returns its
/// last description (`None` once it is gone), so the caller need not ask
/// again.
async fn wait_for(ec2: &Client, id: &str, target: Target) -> Result<Option<Instance>, ProviderError> {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let mut delay = POLL_FIRST;
    loop {
        let last = match describe_one(ec2, id).await {
            Ok(instance) => {
                let name = instance.state().and_then(|s| s.name()).cloned();
                let seen = name.as_ref().map_or("unknown", InstanceStateName::as_str).to_string();
                let done = match (target, &name) {
                    (Target::Running, Some(InstanceStateName::Running)) => true,
                    (Target::Stopped, Some(InstanceStateName::Stopped)) => true,
                    (Target::Gone, Some(InstanceStateName::Terminated)) => true,
                    (Target::Running | Target::Stopped, Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)) => {
                        return Err(ProviderError::other(format!(
                            "instance {id} is {seen} while waiting for it to be {}",
                            target_name(target)
                        )));
                    }
                    _ => false,
                };
                if done {
                    return Ok(Some(instance));
                }
                seen
            }
            Err(e) if e.is_not_found() && target == Target::Gone => return Ok(None),
            // A just-created instance may not be visible yet (eventual
            // consistency), and transient errors were already retried by the
            // SDK: keep polling until the deadline.
            Err(e) if e.is_not_found() || e.is_transient() => e.message().to_string(),
            Err(e) => return Err(e),
        };
        if tokio::time::Instant::now() + delay > deadline {
            return Err(ProviderError::transient(format!(
                "instance {id} did not become {} within {} s (last seen: {last})",
                target_name(target),
                WAIT_LIMIT.as_secs()
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
    }
}

fn target_name(target: Target) -> &'static str {
    match target {
        Target::Running => "running",
        Target::Stopped => "stopped",
        Target::Gone => "terminated",
    }
}

/// Stops the instance and returns its description once it is stopped.
async fn stop(ec2: &Client, id: &str) -> Result<Option<Instance>, ProviderError> {
    ec2.stop_instances().instance_ids(id).send().await.map_err(|e| sdk_error("StopInstances", e))?;
    wait_for(ec2, id, Target::Stopped).await
}

/// Starts the instance and returns its description once it is running.
async fn start(ec2: &Client, id: &str) -> Result<Option<Instance>, ProviderError> {
    ec2.start_instances().instance_ids(id).send().await.map_err(|e| sdk_error("StartInstances", e))?;
    wait_for(ec2, id, Target::Running).await
}

/// The attributes of `last`, the instance's latest description, or of a
/// fresh one when nothing was described since the last change.
async fn final_attrs(ec2: &Client, id: &str, last: Option<Instance>) -> Result<Value, ProviderError> {
    let instance = match last {
        Some(instance) => instance,
        None => describe_one(ec2, id).await?,
    };
    Ok(instance_attrs(&instance))
}

// ---------------------------------------------------------------------------
// Apply and import

/// Carries out one create, update or delete.
pub async fn apply(ec2: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    match req.action {
        ApplyAction::Create => create(ec2, req).await,
        ApplyAction::Update => update(ec2, req).await,
        ApplyAction::Delete => delete(ec2, req).await,
    }
}

async fn create(ec2: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let planned = req.planned.deep_unmarked();
    let ami = string_attr(&planned, "ami").ok_or_else(|| missing(&req.addr, "ami"))?;
    let itype = string_attr(&planned, "instance_type").ok_or_else(|| missing(&req.addr, "instance_type"))?;
    let address = req.addr.to_string();
    let mut tags: Vec<Tag> = tag_map(&planned).iter().map(|(k, v)| new_tag(k, v)).collect();
    tags.push(new_tag(ADDRESS_TAG, &address));
    tags.push(new_tag(LINEAGE_TAG, &req.lineage));
    if let Some(token) = &req.token {
        tags.push(new_tag(TOKEN_TAG, token));
    }
    let out = ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::from(itype))
        .set_subnet_id(string_attr(&planned, "subnet_id").map(str::to_string))
        .min_count(1)
        .max_count(1)
        .set_client_token(req.token.clone())
        .tag_specifications(TagSpecification::builder().resource_type(ResourceType::Instance).set_tags(Some(tags)).build())
        .send()
        .await
        .map_err(|e| sdk_error("RunInstances", e))?;
    let id = out
        .instances()
        .first()
        .and_then(Instance::instance_id)
        .ok_or_else(|| ProviderError::other("EC2 RunInstances returned no instance"))?
        .to_string();
    let mut last = wait_for(ec2, &id, Target::Running).await?;
    if schema::power_state(&planned) == STOPPED {
        last = stop(ec2, &id).await?;
    }
    final_attrs(ec2, &id, last).await
}

async fn update(ec2: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let planned = req.planned.deep_unmarked();
    let id = string_attr(&req.prior, "id").ok_or_else(|| missing(&req.addr, "id"))?.to_string();
    // Decide from the live instance, not from state: it may have been
    // stopped or retagged since the plan was made.
    let live = describe_one(ec2, &id).await?;
    let Some(live_state) = power_state(&live) else {
        return Err(ProviderError::not_found(format!("instance {id} is terminated")));
    };
    let want_state = schema::power_state(&planned);

    let have_tags: BTreeMap<String, String> =
        user_tags(live.tags()).into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())).collect();
    let want_tags = tag_map(&planned);
    let stale: Vec<Tag> = have_tags.keys().filter(|k| !want_tags.contains_key(*k)).map(|k| Tag::builder().key(k).build()).collect();
    let fresh: Vec<Tag> = want_tags.iter().filter(|(k, v)| have_tags.get(*k) != Some(*v)).map(|(k, v)| new_tag(k, v)).collect();
    if !stale.is_empty() {
        ec2.delete_tags().resources(&id).set_tags(Some(stale)).send().await.map_err(|e| sdk_error("DeleteTags", e))?;
    }
    if !fresh.is_empty() {
        ec2.create_tags().resources(&id).set_tags(Some(fresh)).send().await.map_err(|e| sdk_error("CreateTags", e))?;
    }

    let mut state = live_state;
    // The latest description since the last change (tags changed above
    // make the live one stale), and whether a wait saw the instance fully
    // stopped since.
    let mut last = None;
    let mut fully_stopped = false;
    let want_type = string_attr(&planned, "instance_type");
    if let Some(want_type) = want_type.filter(|t| live.instance_type().map(InstanceType::as_str) != Some(*t)) {
        // Real EC2 refuses to resize a running instance; it must be stopped
        // (and fully so) first.
        if state == RUNNING {
            if matches!(live.state().and_then(|s| s.name()), Some(InstanceStateName::Pending)) {
                wait_for(ec2, &id, Target::Running).await?;
            }
            stop(ec2, &id).await?;
            state = STOPPED;
        } else {
            wait_for(ec2, &id, Target::Stopped).await?;
        }
        fully_stopped = true;
        ec2.modify_instance_attribute()
            .instance_id(&id)
            .instance_type(AttributeValue::builder().value(want_type).build())
            .send()
            .await
            .map_err(|e| sdk_error("ModifyInstanceAttribute", e))?;
    }
    match (state, want_state) {
        (STOPPED, RUNNING) => {
            // A `stopping` instance cannot be started yet.
            if !fully_stopped {
                wait_for(ec2, &id, Target::Stopped).await?;
            }
            last = start(ec2, &id).await?;
        }
        (RUNNING, STOPPED) => {
            wait_for(ec2, &id, Target::Running).await?;
            last = stop(ec2, &id).await?;
        }
        _ => {}
    }
    final_attrs(ec2, &id, last).await
}

async fn delete(ec2: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let Some(id) = string_attr(&req.prior, "id") else {
        return Ok(Value::Null);
    };
    match ec2.terminate_instances().instance_ids(id).send().await.map_err(|e| sdk_error("TerminateInstances", e)) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    wait_for(ec2, id, Target::Gone).await?;
    Ok(Value::Null)
}

/// Sets the `himaplan:address` tag of an instance `moved` gave a new
/// address; its other attributes are unchanged.
pub async fn relabel(ec2: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let id = req
        .prior
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::invalid(format!("{}: no instance id in state", req.addr)))?;
    ec2.create_tags()
        .resources(id)
        .tags(new_tag(ADDRESS_TAG, &req.addr.to_string()))
        .send()
        .await
        .map_err(|e| sdk_error("CreateTags", e))?;
    Ok(req.prior.clone())
}

/// Adopts an existing instance: labels it with the address and lineage and
/// returns its attributes.
pub async fn import(ec2: &Client, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
    let instance = describe_one(ec2, id).await?;
    if power_state(&instance).is_none() {
        return Err(ProviderError::not_found(format!("instance {id} is terminated")));
    }
    ec2.create_tags()
        .resources(id)
        .tags(new_tag(ADDRESS_TAG, &addr.to_string()))
        .tags(new_tag(LINEAGE_TAG, lineage))
        .send()
        .await
        .map_err(|e| sdk_error("CreateTags", e))?;
    Ok(instance_attrs(&instance))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{InstanceState, Placement};
    use aws_smithy_types::DateTime;

    fn instance(id: &str, state: InstanceStateName, launched: i64, tags: &[(&str, &str)]) -> Instance {
        let mut b = Instance::builder()
            .instance_id(id)
            .image_id("ami-1")
            .instance_type(InstanceType::T3Micro)
            .state(InstanceState::builder().name(state).build())
            .subnet_id("subnet-1")
            .private_ip_address("10.0.0.1")
            .placement(Placement::builder().availability_zone("us-east-1a").build())
            .launch_time(DateTime::from_secs(launched));
        for (k, v) in tags {
            b = b.tags(new_tag(k, v));
        }
        b.build()
    }

    #[test]
    fn attrs_hide_labels_and_map_transitional_states() {
        let i = instance("i-1", InstanceStateName::Pending, 0, &[("Name", "web"), (ADDRESS_TAG, "aws_instance.web[0]")]);
        let attrs = instance_attrs(&i);
        assert_eq!(attrs.get("state").and_then(Value::as_str), Some("running"));
        assert_eq!(attrs.get("public_ip").and_then(Value::as_str), Some(""));
        assert_eq!(attrs.get("instance_type").and_then(Value::as_str), Some("t3.micro"));
        assert_eq!(attrs.get("availability_zone").and_then(Value::as_str), Some("us-east-1a"));
        let tags = attrs.get("tags").and_then(Value::as_map).cloned().unwrap_or_default();
        assert_eq!(tags.keys().collect::<Vec<_>>(), vec!["Name"]);
        let stopping = instance("i-2", InstanceStateName::Stopping, 0, &[]);
        assert_eq!(power_state(&stopping), Some(STOPPED));
        assert_eq!(power_state(&instance("i-3", InstanceStateName::ShuttingDown, 0, &[])), None);
    }

    #[test]
    fn matching_splits_requested_from_others_and_skips_the_dead() {
        let lineage = vec![
            instance("i-b", InstanceStateName::Running, 20, &[(ADDRESS_TAG, "aws_instance.x[1]"), (TOKEN_TAG, "t1")]),
            instance("i-a", InstanceStateName::Running, 20, &[(ADDRESS_TAG, "aws_instance.x[2]")]),
            instance("i-old", InstanceStateName::Stopped, 10, &[]),
            instance("i-req", InstanceStateName::Running, 5, &[]),
            instance("i-dead", InstanceStateName::Terminated, 1, &[]),
        ];
        let by_id = vec![instance("i-imported", InstanceStateName::Running, 3, &[])];
        let ids = vec![Some("i-req".to_string()), Some("i-imported".to_string()), Some("i-dead".into()), None];
        let resp = match_instances(&ids, &lineage, &by_id);
        assert!(resp.current[0].is_some());
        assert!(resp.current[1].is_some());
        assert!(resp.current[2].is_none());
        assert!(resp.current[3].is_none());
        let order: Vec<&str> = resp.others.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(order, vec!["i-old", "i-a", "i-b"]);
        assert_eq!(resp.others[2].address.as_ref().map(ToString::to_string).as_deref(), Some("aws_instance.x[1]"));
        assert_eq!(resp.others[2].token.as_deref(), Some("t1"));
        assert_eq!(resp.others[0].created, "1970-01-01T00:00:10Z");
    }
}
