//! network-block-ip end to end against the emulator: each test makes its own VPC (whose default
//! network ACL guards its subnet: allow all at 100, deny at `*`) and an instance in it, so tests
//! running in parallel never share an ACL.

use network_block_ip::{BlockTarget, Cidr, Entry, NetworkBlockIp};
use reflex_shared::ledger::Action;
use reflex_shared::pipeline::{self, Handled};
use reflex_shared::status::{Reason, Status};
use reflex_tests::network_block_ip::{event_for, instance_in_own_vpc, ssh_from};
use reflex_tests::{common_cases, unique, Harness, HarnessOptions, ACCOUNT};
use serde_json::{json, Value};

const PROBE: &str = "network-block-ip/guardduty-port-probe-two-addresses.json";
const SH_SSH: &str = "network-block-ip/securityhub-guardduty-ssh-brute-force.json";
const CUSTOM_ACTION: &str = "network-block-ip/securityhub-custom-action-remediate-port-probe.json";
const IPV6: &str = "network-block-ip/guardduty-malicious-ip-caller-custom-ipv6.json";

common_cases!(NetworkBlockIp);

/// One test's VPC, subnet, ACL and instance, and the function under test.
struct World {
    h: Harness,
    f: NetworkBlockIp,
    /// The test's own view of EC2 (not logged).
    ec2: aws_sdk_ec2::Client,
    instance: String,
    nacl: String,
}

async fn world(policy: &str) -> World {
    let h = Harness::with(HarnessOptions {
        policy: reflex_shared::policy::Policy::from_yaml(policy),
        ..Default::default()
    })
    .await;
    let ec2 = aws_sdk_ec2::Client::new(&h.sdk);
    let f = NetworkBlockIp::from_client(aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&h.sdk)
            .interceptor(h.calls.clone())
            .build(),
    ));
    let (instance, nacl) = instance_in_own_vpc(&ec2, &[]).await;
    World {
        h,
        f,
        ec2,
        instance,
        nacl,
    }
}

impl World {
    async fn deliver(&self, event: Value) -> Handled {
        self.h
            .deliver_to(&self.f, event)
            .await
            .expect("handled")
            .remove(0)
    }

    /// The ACL's inbound entries, read through the emulator.
    async fn inbound(&self) -> Vec<Entry> {
        self.observer().nacl(&self.nacl).await.unwrap().inbound
    }

    fn observer(&self) -> network_block_ip::Ec2 {
        network_block_ip::Ec2::new(self.ec2.clone())
    }

    /// Reflex's blocks on the ACL: (rule number, CIDR).
    async fn blocks(&self) -> Vec<(i32, String)> {
        let mut blocks: Vec<(i32, String)> = self
            .inbound()
            .await
            .into_iter()
            .filter(|e| !e.allow && e.cidr.is_host())
            .map(|e| (e.rule_number, e.cidr.to_string()))
            .collect();
        // The emulator lists entries in the order they were made; AWS by number.
        blocks.sort();
        blocks
    }

    fn nacl_arn(&self) -> String {
        network_block_ip::nacl_arn("us-east-1", ACCOUNT, &self.nacl)
    }
}

fn apis(actions: &[Action]) -> Vec<&str> {
    actions.iter().map(|a| a.api.as_str()).collect()
}

#[tokio::test]
async fn blocks_the_attacker_below_the_acls_allow_rule() {
    let w = world("version: 1").await;
    let o = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-block")).await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert_eq!(w.blocks().await, [(80, "1.2.3.4/32".to_string())]);
    let r = w.h.record(&o.record_id).await;
    assert_eq!(r.resource_arn.as_deref(), Some(w.nacl_arn().as_str()));
    assert_eq!(apis(&r.actions), ["ec2:CreateNetworkAclEntry"]);
    assert_eq!(r.verified, Some(true));
    let target: BlockTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    assert_eq!(target.instance_id, w.instance);
    assert_eq!(target.nacl_id, w.nacl);
}

#[tokio::test]
async fn every_trigger_kind_blocks() {
    // GuardDuty through Security Hub, and the custom action "Reflex: remediate".
    for (path, ip) in [(SH_SSH, "1.2.3.4"), (CUSTOM_ACTION, "9.10.11.12")] {
        let w = world("version: 1").await;
        let o = w.deliver(event_for(path, &w.instance, "-kind")).await;
        assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
        assert!(
            w.blocks()
                .await
                .iter()
                .any(|(_, c)| c == &format!("{ip}/32")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_port_probe_blocks_each_probes_address() {
    let w = world("version: 1").await;
    let o = w.deliver(event_for(PROBE, &w.instance, "-probe")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    assert_eq!(
        w.blocks().await,
        [
            (80, "9.10.11.12/32".to_string()),
            (81, "13.14.15.16/32".to_string())
        ]
    );
}

#[tokio::test]
async fn ipv6_is_blocked_as_a_128() {
    let w = world("version: 1").await;
    let o = w.deliver(event_for(IPV6, &w.instance, "-v6")).await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let entries = w.inbound().await;
    let block = entries.iter().find(|e| e.rule_number == 80).unwrap();
    assert_eq!(
        block.cidr,
        "2a05:d014:abcd::1234/128".parse::<Cidr>().unwrap()
    );
    assert!(!block.allow);
}

#[tokio::test]
async fn each_refusal_is_skipped_with_its_reason() {
    let w = world(
        "version: 1\nremediations:\n  network-block-ip:\n    parameters: {allowlist: ['8.8.8.0/24']}",
    )
    .await;
    let cases = [
        ("10.0.0.5", Reason::NotBlockable, "private"),
        ("172.16.3.4", Reason::NotBlockable, "private"),
        ("192.168.0.9", Reason::NotBlockable, "private"),
        ("100.64.1.1", Reason::NotBlockable, "carrier-grade"),
        ("127.0.0.1", Reason::NotBlockable, "loopback"),
        ("169.254.169.254", Reason::NotBlockable, "link-local"),
        ("224.0.0.251", Reason::NotBlockable, "multicast"),
        ("0.0.0.0", Reason::NotBlockable, "unspecified"),
        ("240.1.2.3", Reason::NotBlockable, "reserved"),
        ("192.0.2.44", Reason::NotBlockable, "documentation"),
        ("198.51.100.23", Reason::NotBlockable, "documentation"),
        ("203.0.113.5", Reason::NotBlockable, "documentation"),
        ("8.8.8.8", Reason::Allowlisted, "allowlist"),
    ];
    for (i, (ip, reason, word)) in cases.iter().enumerate() {
        let o = w
            .deliver(ssh_from(&w.instance, ip, &format!("-refuse-{i}")))
            .await;
        assert_eq!(
            (o.status, o.reason),
            (Status::Skipped, *reason),
            "{ip}: {o:?}"
        );
        assert!(o.detail.contains(word), "{ip}: {}", o.detail);
    }
    assert!(w.blocks().await.is_empty());
    assert!(w.h.calls.writes().is_empty(), "{:?}", w.h.calls.calls());
}

#[tokio::test]
async fn a_full_range_evicts_the_oldest_block_on_the_record() {
    let w = world(
        "version: 1\nremediations:\n  network-block-ip:\n    parameters: {rule_range: [10, 11]}",
    )
    .await;
    let first = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-ev1")).await;
    let second = w.deliver(ssh_from(&w.instance, "5.6.7.8", "-ev2")).await;
    assert_eq!(w.blocks().await.len(), 2);
    let third = w.deliver(ssh_from(&w.instance, "9.9.9.9", "-ev3")).await;
    assert_eq!(third.status, Status::Succeeded, "{third:?}");
    assert_eq!(
        w.blocks().await,
        [
            (10, "9.9.9.9/32".to_string()),
            (11, "5.6.7.8/32".to_string())
        ]
    );
    let r = w.h.record(&third.record_id).await;
    assert_eq!(
        apis(&r.actions),
        ["ec2:DeleteNetworkAclEntry", "ec2:CreateNetworkAclEntry"]
    );
    let evicted = &r.actions[0].parameters;
    assert_eq!(evicted["Reason"], json!("evicted"));
    assert_eq!(evicted["BlockedByRecord"], json!(first.record_id));
    assert_eq!(evicted["CidrBlock"], json!("1.2.3.4/32"));
    assert_ne!(second.record_id, first.record_id);
}

#[tokio::test]
async fn a_second_finding_for_the_same_address_extends_the_block() {
    let w = world("version: 1\nremediations:\n  network-block-ip:\n    parameters: {ttl_hours: 1}")
        .await;
    let first = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-ttl1")).await;
    assert_eq!(first.status, Status::Succeeded);
    let writes = w.h.calls.writes().len();
    // The same address again, later, under a policy that keeps blocks a day.
    let mut h = w.h;
    h.setup.policy = std::sync::Arc::new(reflex_shared::policy::PolicyCache::fixed(
        reflex_shared::policy::Policy::from_yaml("version: 1"),
    ));
    let w = World { h, ..w };
    let second = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-ttl2")).await;
    assert_eq!(second.status, Status::Succeeded, "{second:?}");
    let r = w.h.record(&second.record_id).await;
    assert_eq!(apis(&r.actions), ["reflex:ExtendBlock"]);
    let p = &r.actions[0].parameters;
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let gained = at(&p["ExpiresAt"]) - at(&p["ExpiredAt"]);
    assert!(gained >= chrono::Duration::hours(22), "{p}");
    assert_eq!(w.blocks().await, [(80, "1.2.3.4/32".to_string())]);
    assert_eq!(w.h.calls.writes().len(), writes, "no AWS change");
}

#[tokio::test]
async fn two_concurrent_findings_on_one_acl_take_distinct_numbers() {
    let w = world("version: 1").await;
    let (a, b) = futures::join!(
        w.deliver(ssh_from(&w.instance, "1.2.3.4", "-c1")),
        w.deliver(ssh_from(&w.instance, "5.6.7.8", "-c2")),
    );
    assert_eq!((a.status, b.status), (Status::Succeeded, Status::Succeeded));
    let mut blocks = w.blocks().await;
    blocks.sort();
    let numbers: Vec<i32> = blocks.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [80, 81], "{blocks:?}");
}

#[tokio::test]
async fn the_sweep_removes_an_expired_block_and_links_its_record() {
    // A block of about one second (ttl_hours 0.0003).
    let w = world(
        "version: 1\nremediations:\n  network-block-ip:\n    parameters: {ttl_hours: 0.0003}",
    )
    .await;
    let o = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-sweep")).await;
    assert_eq!(o.status, Status::Succeeded);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let scheduled = json!({
        "version": "0", "id": unique("sched"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT, "time": "2026-11-20T13:00:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/reflex-sweep"],
        "detail": {}
    });
    w.h.deliver_to(&w.f, scheduled)
        .await
        .expect("the sweep runs");
    assert!(w.blocks().await.is_empty(), "the expired block is gone");
    let records =
        w.h.setup
            .ledger
            .query(reflex_shared::ledger::Lookup::Resource(&w.nacl_arn()), None)
            .await
            .unwrap();
    let sweep = records
        .iter()
        .find(|r| r.record_id != o.record_id)
        .expect("a record of the sweep");
    assert_eq!(sweep.ends.as_deref(), Some(o.record_id.as_str()));
    assert_eq!(sweep.status, Status::Succeeded, "{sweep:?}");
    assert_eq!(apis(&sweep.actions), ["ec2:DeleteNetworkAclEntry"]);
    assert_eq!(sweep.actions[0].parameters["Reason"], json!("expired"));
    assert_eq!(
        sweep.actions[0].parameters["BlockedByRecord"],
        json!(o.record_id)
    );
}

#[tokio::test]
async fn rollback_after_the_instance_was_terminated() {
    let w = world("version: 1").await;
    let o = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-term")).await;
    assert_eq!(o.status, Status::Succeeded);
    w.ec2
        .terminate_instances()
        .instance_ids(&w.instance)
        .send()
        .await
        .unwrap();
    let before = w.h.calls.count("DescribeInstances");
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    let by = "arn:aws:iam::123456789012:user/operator";
    let rolled = pipeline::rollback(&w.h.setup, &w.f, &o.record_id, by, false, until)
        .await
        .unwrap();
    assert_eq!(rolled.status, Status::RolledBack, "{rolled:?}");
    assert!(w.blocks().await.is_empty());
    assert_eq!(
        w.h.calls.count("DescribeInstances"),
        before,
        "rollback works from the stored target, never the instance"
    );
}

#[tokio::test]
async fn removing_a_block_already_gone_is_done() {
    // Someone deleted the block by hand; the sweep must not fail on it (moto answers a
    // missing entry's deletion with a 500, AWS with an error: the function reads first).
    let w = world(
        "version: 1\nremediations:\n  network-block-ip:\n    parameters: {ttl_hours: 0.0003}",
    )
    .await;
    let o = w.deliver(ssh_from(&w.instance, "1.2.3.4", "-gone")).await;
    assert_eq!(o.status, Status::Succeeded);
    w.ec2
        .delete_network_acl_entry()
        .network_acl_id(&w.nacl)
        .rule_number(80)
        .egress(false)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let scheduled = json!({
        "version": "0", "id": unique("sched"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT, "time": "2026-11-20T13:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {}
    });
    w.h.deliver_to(&w.f, scheduled)
        .await
        .expect("the sweep runs");
    assert_eq!(w.h.calls.count("DeleteNetworkAclEntry"), 0);
}

#[tokio::test]
async fn the_demo_blocks_the_samples_attacker() {
    let h = Harness::new().await;
    reflex_cli::demo_network_block_ip::show(&h.setup)
        .await
        .expect("the demo runs");
    let records = h
        .setup
        .ledger
        .query(
            reflex_shared::ledger::Lookup::Remediation("network-block-ip"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, Status::Succeeded, "{:?}", records[0]);
    assert_eq!(apis(&records[0].actions), ["ec2:CreateNetworkAclEntry"]);
}
