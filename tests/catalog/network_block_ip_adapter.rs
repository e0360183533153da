//! network-block-ip's EC2 adapter against the emulator, on its own (the pipeline's part is in
//! `network_block_ip.rs`): where an instance sits, its subnet's ACL, a block made, refused on a
//! taken number, read back, removed; an unknown ACL is gone.

use network_block_ip::{aws::CreateError, Cidr, Ec2};
use reflex_shared::remediation::RemediationError;

#[tokio::test]
async fn the_adapter_reads_and_changes_one_acl() {
    let sdk = reflex_tests::sdk_config().await;
    let client = aws_sdk_ec2::Client::new(&sdk);
    let vpc = client
        .create_vpc()
        .cidr_block("10.30.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
    let subnet = client
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.30.1.0/24")
        .send()
        .await
        .unwrap();
    let subnet = subnet
        .subnet()
        .and_then(|s| s.subnet_id())
        .unwrap()
        .to_string();
    let images = client.describe_images().send().await.unwrap();
    let run = client
        .run_instances()
        .image_id(images.images()[0].image_id().unwrap())
        .min_count(1)
        .max_count(1)
        .subnet_id(&subnet)
        .send()
        .await
        .unwrap();
    let instance = run.instances()[0].instance_id().unwrap().to_string();

    let ec2 = Ec2::new(client.clone());
    let placed = ec2.placement(&instance).await.unwrap();
    assert_eq!(
        (placed.subnet_id.as_str(), placed.vpc_id.as_str()),
        (subnet.as_str(), vpc.as_str())
    );
    let acl = ec2.nacl_of_subnet(&subnet).await.unwrap();
    assert_eq!(acl.vpc_id, vpc);
    // A new VPC's default ACL: allow all at 100, deny at `*`.
    let numbers: Vec<i32> = acl.inbound.iter().map(|e| e.rule_number).collect();
    assert_eq!(numbers, [100, 32767]);

    let v4: Cidr = "1.2.3.4/32".parse().unwrap();
    let v6: Cidr = "2a05:d014::1/128".parse().unwrap();
    ec2.create_block(&acl.id, 80, &v4).await.unwrap();
    ec2.create_block(&acl.id, 81, &v6).await.unwrap();
    assert!(matches!(
        ec2.create_block(&acl.id, 80, &"5.6.7.8/32".parse().unwrap())
            .await,
        Err(CreateError::Taken)
    ));
    let read = ec2.nacl(&acl.id).await.unwrap();
    let at = |n: i32| read.inbound.iter().find(|e| e.rule_number == n).unwrap();
    assert!(at(80).is_block_of(&v4));
    assert!(at(81).is_block_of(&v6));
    assert!(read.inbound.iter().all(|e| e.rule_number != 80 || !e.allow));

    ec2.delete_entry(&acl.id, 80).await.unwrap();
    let after = ec2.nacl(&acl.id).await.unwrap();
    assert!(after.inbound.iter().all(|e| e.rule_number != 80));

    assert!(matches!(
        ec2.nacl("acl-0000000000000000f").await,
        Err(RemediationError::Gone(_))
    ));
    assert!(matches!(
        ec2.placement("i-0000000000000000f").await,
        Err(RemediationError::Gone(_))
    ));
}
