//! The design's catalog of remediations, by name. The policy refuses names not in it, so a typo
//! in a policy fails closed instead of silently not applying.

pub const REMEDIATIONS: &[&str] = &[
    "s3-block-public-access",
    "s3-enforce-encryption",
    "sg-revoke-open-ingress",
    "ec2-quarantine-instance",
    "iam-disable-access-key",
    "iam-contain-principal",
    "iam-detach-admin-policy",
    "network-block-ip",
    "network-block-domain",
    "cloudtrail-restore-logging",
    "ec2-patch-instance",
];
