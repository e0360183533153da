//! The outcome table's definition. `infra/template.yaml` declares the same table; a test holds
//! the two to each other.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification,
};

pub const DEFAULT_TABLE: &str = "reflex-outcomes";
pub const TABLE_ENV: &str = "REFLEX_TABLE";
pub const PARTITION_KEY: &str = "record_id";
/// GSI listing records of one resource by time.
pub const BY_RESOURCE_INDEX: &str = "by-resource";
/// GSI listing records of one remediation by time (also the blast-radius budget's count).
pub const BY_TIME_INDEX: &str = "by-time";
/// GSI listing records of one status by time (`reflex audit --status`, every failure): only
/// records carry `status`, so counters, leases and suppressions stay out of it.
pub const BY_STATUS_INDEX: &str = "by-status";
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The definition as plain data: (index name, hash key, range key) and string attributes.
pub struct TableDefinition {
    pub attributes: &'static [&'static str],
    pub key: &'static str,
    pub indexes: &'static [(&'static str, &'static str, &'static str)],
    pub billing_mode: &'static str,
    pub deletion_protection: bool,
    /// Server-side encryption with the AWS managed key.
    pub encrypted: bool,
    pub point_in_time_recovery: bool,
    pub ttl_attribute: &'static str,
}

pub const DEFINITION: TableDefinition = TableDefinition {
    attributes: &[
        "record_id",
        "resource_arn",
        "remediation",
        "created_at",
        "status",
    ],
    key: PARTITION_KEY,
    indexes: &[
        (BY_RESOURCE_INDEX, "resource_arn", "created_at"),
        (BY_TIME_INDEX, "remediation", "created_at"),
        (BY_STATUS_INDEX, "status", "created_at"),
    ],
    billing_mode: "PAY_PER_REQUEST",
    deletion_protection: true,
    encrypted: true,
    point_in_time_recovery: true,
    ttl_attribute: TTL_ATTRIBUTE,
};

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, aws_sdk_dynamodb::error::BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
}

/// An UpdateTable request that adds the index `index` (hash key `hash`, range key `range`) of
/// `DEFINITION` to an existing table.
pub fn add_index(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    (index, hash, range): (&str, &str, &str),
) -> Result<
    aws_sdk_dynamodb::operation::update_table::builders::UpdateTableFluentBuilder,
    aws_sdk_dynamodb::error::BuildError,
> {
    let mut req = client.update_table().table_name(table);
    for name in [hash, range] {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        );
    }
    let (keys, projection) = index_shape(hash, range)?;
    let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
        .index_name(index)
        .set_key_schema(Some(keys))
        .projection(projection)
        .build()?;
    Ok(req.global_secondary_index_updates(
        aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
            .create(create)
            .build(),
    ))
}

/// A CreateTable request for `DEFINITION`.
pub fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<
    aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
    aws_sdk_dynamodb::error::BuildError,
> {
    let mut req = client
        .create_table()
        .table_name(table)
        .key_schema(key(DEFINITION.key, KeyType::Hash)?)
        .billing_mode(BillingMode::from(DEFINITION.billing_mode))
        .deletion_protection_enabled(DEFINITION.deletion_protection)
        .sse_specification(
            SseSpecification::builder()
                .enabled(DEFINITION.encrypted)
                .build(),
        );
    for name in DEFINITION.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(*name)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        );
    }
    for (index, hash, range) in DEFINITION.indexes {
        let (keys, projection) = index_shape(hash, range)?;
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*index)
                .set_key_schema(Some(keys))
                .projection(projection)
                .build()?,
        );
    }
    Ok(req)
}

/// Every index's shape: its hash and range keys, all attributes projected.
fn index_shape(
    hash: &str,
    range: &str,
) -> Result<(Vec<KeySchemaElement>, Projection), aws_sdk_dynamodb::error::BuildError> {
    let keys = vec![key(hash, KeyType::Hash)?, key(range, KeyType::Range)?];
    let projection = Projection::builder()
        .projection_type(ProjectionType::All)
        .build();
    Ok((keys, projection))
}
