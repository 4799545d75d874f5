//! The `aws` provider: EC2 instances (`aws_instance`) through the AWS SDK.
//!
//! Owns the provider's connection (one EC2 client, made by `configure`) and
//! dispatches the engine's calls to [`instance`]. Files: [`schema`] (what
//! the resource looks like, offline judgements), [`client`] (connection and
//! error classification), [`instance`] (EC2 calls). Must not print, keep
//! state of its own between calls, or send traffic anywhere but the
//! configured AWS endpoint.

pub mod client;
pub mod instance;
pub mod schema;

use async_trait::async_trait;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyRequest, ChangeShape, ConfigProblem, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType, Schema,
};
use himaplan_engine::value::Value;
use tokio::sync::OnceCell;

/// The `aws` provider.
#[derive(Debug, Default)]
pub struct AwsProvider {
    ec2: OnceCell<aws_sdk_ec2::Client>,
}

impl AwsProvider {
    pub fn new() -> Self {
        AwsProvider::default()
    }

    fn ec2(&self) -> Result<&aws_sdk_ec2::Client, ProviderError> {
        self.ec2
            .get()
            .ok_or_else(|| ProviderError::Permanent("the aws provider was used before it was configured".into()))
    }
}

fn check_type(rtype: &str) -> Result<(), ProviderError> {
    if rtype == schema::INSTANCE_TYPE {
        Ok(())
    } else {
        Err(ProviderError::Permanent(format!(
            "the aws provider has no resource type {rtype:?}"
        )))
    }
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        schema::resource_types()
    }

    fn provider_schema(&self) -> Schema {
        schema::provider_schema()
    }

    fn validate(&self, rtype: &str, config: &Value) -> Vec<ConfigProblem> {
        match rtype {
            schema::INSTANCE_TYPE => schema::validate_instance(config),
            _ => Vec::new(),
        }
    }

    fn shape_change(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
        match rtype {
            schema::INSTANCE_TYPE => schema::shape_instance_change(prior, planned, changed),
            _ => ChangeShape::default(),
        }
    }

    async fn configure(&self, config: &Value) -> Result<(), ProviderError> {
        // The engine configures once; a second call keeps the first client.
        self.ec2.get_or_try_init(|| client::connect(config)).await.map(drop)
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        check_type(&req.rtype)?;
        instance::read(self.ec2()?, &req).await
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        check_type(&req.rtype)?;
        instance::apply(self.ec2()?, &req).await
    }

    async fn import(&self, rtype: &str, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
        check_type(rtype)?;
        instance::import(self.ec2()?, addr, id, lineage).await
    }
}
