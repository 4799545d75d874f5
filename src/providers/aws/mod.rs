//! The `aws` provider: EC2 instances (`aws_instance`) and S3 buckets and
//! their lifecycle (`aws_s3_bucket`, `aws_s3_bucket_lifecycle`) through the
//! AWS SDK.
//!
//! Owns the provider's connection (one EC2 and one S3 client over one SDK
//! configuration, made by `configure`) and dispatches the engine's calls;
//! this file is the `Provider` impl only. Files: [`schema`] (what all three
//! resource types look like, offline judgements), [`client`] (connection and
//! error classification), and one file per resource type: [`instance`]
//! (`aws_instance`, EC2 calls), [`s3_bucket`] and [`s3_bucket_lifecycle`]
//! (S3 calls). Must not print, keep state of its own between calls, or
//! send traffic anywhere but the configured AWS endpoint.

pub mod client;
pub mod instance;
pub mod s3_bucket;
pub mod s3_bucket_lifecycle;
pub mod schema;

use crate::providers::shared::ServedTypes;
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
    clients: OnceCell<Clients>,
}

/// The service clients, sharing one SDK configuration.
#[derive(Debug)]
struct Clients {
    ec2: aws_sdk_ec2::Client,
    s3: aws_sdk_s3::Client,
}

impl AwsProvider {
    pub fn new() -> Self {
        AwsProvider::default()
    }

    fn clients(&self) -> Result<&Clients, ProviderError> {
        self.clients.get().ok_or_else(|| ProviderError::other("the aws provider was used before it was configured"))
    }

    fn ec2(&self) -> Result<&aws_sdk_ec2::Client, ProviderError> {
        Ok(&self.clients()?.ec2)
    }

    fn s3(&self) -> Result<&aws_sdk_s3::Client, ProviderError> {
        Ok(&self.clients()?.s3)
    }
}

/// The resource types this provider serves.
const SERVED: ServedTypes = ServedTypes { provider: "aws", types: &[schema::INSTANCE_TYPE, schema::BUCKET_TYPE, schema::LIFECYCLE_TYPE] };

/// Which service serves a resource type.
enum Service {
    Ec2,
    S3,
}

fn service_of(rtype: &str) -> Result<Service, ProviderError> {
    SERVED.check(rtype)?;
    Ok(if rtype == schema::INSTANCE_TYPE { Service::Ec2 } else { Service::S3 })
}

#[async_trait]
impl Provider for AwsProvider {
    fn name(&self) -> &'static str {
        "aws"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        schema::resource_types()
    }

    fn type_docs(&self, rtype: &str) -> himaplan_engine::provider::TypeDocs {
        schema::type_docs(rtype)
    }

    fn provider_schema(&self) -> Schema {
        schema::provider_schema()
    }

    fn validate(&self, rtype: &str, config: &Value) -> Vec<ConfigProblem> {
        match rtype {
            schema::INSTANCE_TYPE => schema::validate_instance(config),
            schema::BUCKET_TYPE => schema::validate_bucket(config),
            schema::LIFECYCLE_TYPE => schema::validate_lifecycle(config),
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
        // The engine configures once; a second call keeps the first clients.
        let connect = || async {
            let sdk = client::load(config).await?;
            Ok::<_, ProviderError>(Clients { ec2: aws_sdk_ec2::Client::new(&sdk), s3: client::s3_client(&sdk) })
        };
        self.clients.get_or_try_init(connect).await.map(drop)
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        match (service_of(&req.rtype)?, req.rtype.as_str()) {
            (Service::Ec2, _) => instance::read(self.ec2()?, &req).await,
            (Service::S3, schema::BUCKET_TYPE) => s3_bucket::read(self.s3()?, &req).await,
            (Service::S3, _) => s3_bucket_lifecycle::read(self.s3()?, &req).await,
        }
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        match (service_of(&req.rtype)?, req.rtype.as_str()) {
            (Service::Ec2, _) => instance::apply(self.ec2()?, &req).await,
            (Service::S3, schema::BUCKET_TYPE) => s3_bucket::apply(self.s3()?, &req).await,
            (Service::S3, _) => s3_bucket_lifecycle::apply(self.s3()?, &req).await,
        }
    }

    fn relabel_step(&self, rtype: &str) -> Option<&'static str> {
        (rtype == schema::INSTANCE_TYPE).then_some("CreateTags himaplan:address")
    }

    async fn relabel(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        if req.rtype == schema::INSTANCE_TYPE { instance::relabel(self.ec2()?, &req).await } else { Ok(req.prior) }
    }

    async fn import(&self, rtype: &str, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
        match (service_of(rtype)?, rtype) {
            (Service::Ec2, _) => instance::import(self.ec2()?, addr, id, lineage).await,
            (Service::S3, schema::BUCKET_TYPE) => s3_bucket::import(self.s3()?, addr, id, lineage).await,
            (Service::S3, _) => s3_bucket_lifecycle::import(self.s3()?, id).await,
        }
    }
}
