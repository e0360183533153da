//! What EC2 and SSM functions need from the harness and S3 did not: clients that log Reflex's
//! calls into the harness's [`crate::CallLog`], unlogged ones for the test's own setup and
//! reads, and a VPC with a subnet and an instance (optionally with a second network interface)
//! made in the emulator through the real SDK.

use crate::{unique, Harness};
use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag as Ec2Tag, TagSpecification};

/// The image every test instance boots (moto accepts any well-formed AMI id: it runs nothing).
pub const TEST_AMI: &str = "ami-12c6146b";

/// One instance in a VPC of its own, as made by [`Harness::instance`]; all ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub vpc_id: String,
    pub subnet_id: String,
    /// The VPC's default network ACL, which the subnet uses.
    pub network_acl_id: String,
    /// The group the instance was launched with (and its second interface got).
    pub security_group_id: String,
    pub instance_id: String,
    /// Every interface, the primary (device index 0) first.
    pub network_interface_ids: Vec<String>,
    /// Every EBS volume attached.
    pub volume_ids: Vec<String>,
}

impl Ec2Instance {
    /// The instance's ARN, as a record names it.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:ec2:us-east-1:{}:instance/{}",
            crate::ACCOUNT,
            self.instance_id
        )
    }
}

fn tag_spec(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        spec = spec.tags(Ec2Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

impl Harness {
    /// An EC2 client whose every call is logged into `calls`: give it to the function under test.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&self.sdk)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// The test's own view of EC2 (not logged): setting up resources and reading their state.
    pub fn ec2_observer(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk)
    }

    /// An SSM client whose every call is logged into `calls`: give it to the function under test.
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::config::Builder::from(&self.sdk)
                .interceptor(self.calls.clone())
                .build(),
        )
    }

    /// The test's own view of SSM (not logged).
    pub fn ssm_observer(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk)
    }

    /// A VPC of its own (so tests never share a NACL or an isolation group) with one subnet, a
    /// security group, and one running instance tagged as given, with a second network
    /// interface attached when `second_eni`. Made with the unlogged client, so `calls` holds
    /// only Reflex's calls.
    pub async fn instance(&self, second_eni: bool, tags: &[(&str, &str)]) -> Ec2Instance {
        let ec2 = self.ec2_observer();
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("create the VPC");
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.1.0/24")
            .send()
            .await
            .expect("create the subnet");
        let subnet_id = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap()
            .to_string();
        let group = ec2
            .create_security_group()
            .vpc_id(&vpc_id)
            .group_name(unique("reflex-it"))
            .description("reflex integration test")
            .send()
            .await
            .expect("create the security group");
        let security_group_id = group.group_id().unwrap().to_string();
        let mut run = ec2
            .run_instances()
            .image_id(TEST_AMI)
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .subnet_id(&subnet_id)
            .security_group_ids(&security_group_id);
        if !tags.is_empty() {
            run = run.tag_specifications(tag_spec(ResourceType::Instance, tags));
        }
        let run = run.send().await.expect("run the instance");
        let instance_id = run.instances()[0].instance_id().unwrap().to_string();
        if second_eni {
            let eni = ec2
                .create_network_interface()
                .subnet_id(&subnet_id)
                .groups(&security_group_id)
                .send()
                .await
                .expect("create the second interface");
            let eni_id = eni
                .network_interface()
                .and_then(|n| n.network_interface_id())
                .unwrap()
                .to_string();
            ec2.attach_network_interface()
                .instance_id(&instance_id)
                .network_interface_id(&eni_id)
                .device_index(1)
                .send()
                .await
                .expect("attach the second interface");
        }
        let acls = ec2
            .describe_network_acls()
            .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
            .filters(Filter::builder().name("default").values("true").build())
            .send()
            .await
            .expect("describe the VPC's network ACL");
        let network_acl_id = acls.network_acls()[0].network_acl_id().unwrap().to_string();
        let mut made = Ec2Instance {
            vpc_id,
            subnet_id,
            network_acl_id,
            security_group_id,
            instance_id,
            network_interface_ids: Vec::new(),
            volume_ids: Vec::new(),
        };
        let described = self.described_instance(&made.instance_id).await;
        let mut enis: Vec<_> = described
            .network_interfaces()
            .iter()
            .map(|n| {
                (
                    n.attachment().and_then(|a| a.device_index()).unwrap_or(0),
                    n.network_interface_id().unwrap_or_default().to_string(),
                )
            })
            .collect();
        enis.sort();
        made.network_interface_ids = enis.into_iter().map(|(_, id)| id).collect();
        made.volume_ids = described
            .block_device_mappings()
            .iter()
            .filter_map(|b| b.ebs().and_then(|e| e.volume_id()).map(str::to_string))
            .collect();
        made
    }

    /// The instance as EC2 describes it now (read with the unlogged client).
    pub async fn described_instance(&self, instance_id: &str) -> aws_sdk_ec2::types::Instance {
        let out = self
            .ec2_observer()
            .describe_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .expect("describe the instance");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .cloned()
            .unwrap_or_else(|| panic!("no instance {instance_id}"))
    }

    /// The security groups of one network interface, sorted (read with the unlogged client).
    pub async fn interface_groups(&self, network_interface_id: &str) -> Vec<String> {
        let out = self
            .ec2_observer()
            .describe_network_interfaces()
            .network_interface_ids(network_interface_id)
            .send()
            .await
            .expect("describe the interface");
        let mut groups: Vec<String> = out
            .network_interfaces()
            .iter()
            .flat_map(|n| n.groups())
            .filter_map(|g| g.group_id().map(str::to_string))
            .collect();
        groups.sort();
        groups
    }
}

#[cfg(test)]
mod tests {
    use crate::Harness;

    /// The maker against the emulator: two interfaces in device order, the group on both, the
    /// tags, a root volume, the VPC's own NACL; and only the logged client's calls are logged.
    #[tokio::test]
    async fn an_instance_with_two_interfaces_in_a_vpc_of_its_own() {
        let h = Harness::new().await;
        let i = h.instance(true, &[("reflex:exempt", "false")]).await;
        assert!(h.calls.calls().is_empty(), "setup is not logged");
        assert_eq!(i.network_interface_ids.len(), 2, "{i:?}");
        for eni in &i.network_interface_ids {
            assert_eq!(
                h.interface_groups(eni).await,
                vec![i.security_group_id.clone()]
            );
        }
        assert_eq!(i.volume_ids.len(), 1, "{i:?}");
        let described = h.described_instance(&i.instance_id).await;
        assert_eq!(described.vpc_id(), Some(i.vpc_id.as_str()));
        assert_eq!(described.subnet_id(), Some(i.subnet_id.as_str()));
        assert!(described
            .tags()
            .iter()
            .any(|t| t.key() == Some("reflex:exempt") && t.value() == Some("false")));
        let acl = h
            .ec2_observer()
            .describe_network_acls()
            .network_acl_ids(&i.network_acl_id)
            .send()
            .await
            .unwrap();
        assert_eq!(acl.network_acls()[0].vpc_id(), Some(i.vpc_id.as_str()));
        assert_eq!(
            i.arn(),
            format!(
                "arn:aws:ec2:us-east-1:123456789012:instance/{}",
                i.instance_id
            )
        );

        // Another instance: another VPC, so no two tests share a NACL or a group.
        let other = h.instance(false, &[]).await;
        assert_ne!(other.vpc_id, i.vpc_id);
        assert_eq!(other.network_interface_ids.len(), 1);

        // The logged clients log, and a describe is a read.
        h.ec2()
            .describe_instances()
            .instance_ids(&i.instance_id)
            .send()
            .await
            .unwrap();
        h.ssm().describe_parameters().send().await.unwrap();
        assert_eq!(h.calls.calls(), ["DescribeInstances", "DescribeParameters"]);
        assert!(h.calls.writes().is_empty());
        assert_eq!(h.calls.reads().len(), 2);
    }
}
