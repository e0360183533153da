//! network-block-domain end to end: EC2 (the instance, its VPC) in the emulator; Route 53
//! Resolver's DNS Firewall in a stand-in, because moto implements none of it. Every
//! route53resolver call is answered by aws-smithy-mocks rules over an in-memory model of the
//! firewall (`network_block_domain::stand_in`), which records each request: these tests assert
//! the requests themselves (names, CreatorRequestId, ADD/REMOVE, domains, priority, VpcId) and
//! what the model holds after them. Each test makes its own VPC and, unless it says otherwise,
//! its own stand-in.

use network_block_domain::stand_in::{Parts, Request, StandIn};
use network_block_domain::{DomainStep, DomainTarget, NetworkBlockDomain};
use reflex_shared::ledger::Action;
use reflex_shared::pipeline::{self, Handled, PipelineError};
use reflex_shared::remediation::Remediation;
use reflex_shared::status::{Reason, Status};
use reflex_tests::network_block_domain::{
    c2_query, event_for, function, instance_in_own_vpc, SAMPLE_DOMAIN,
};
use reflex_tests::{common_cases, unique, Harness, HarnessOptions, ACCOUNT};
use serde_json::{json, Value};

common_cases!(NetworkBlockDomain);

const SAMPLES: &[(&str, &str)] = &[
    (
        "network-block-domain/guardduty-backdoor-c-and-c-activity-dns.json",
        "c2.badactor.example",
    ),
    (
        "network-block-domain/guardduty-cryptocurrency-bitcoin-tool-dns.json",
        "pool.coinminer.example",
    ),
    (
        "network-block-domain/guardduty-impact-malicious-domain-request-reputation.json",
        "dl.malware-drop.example",
    ),
    (
        "network-block-domain/guardduty-trojan-dga-domain-request-c-dns.json",
        "qx7v2lk9zp4mw.example",
    ),
    (
        "network-block-domain/securityhub-guardduty-c-and-c-activity-dns.json",
        "beacon.badactor.example",
    ),
    (
        "network-block-domain/securityhub-custom-action-remediate-phishing-domain.json",
        "login.account-verify.example",
    ),
];

/// One test's VPC and instance, its own stand-in firewall, and the function under test.
struct World {
    h: Harness,
    f: NetworkBlockDomain,
    firewall: StandIn,
    ec2: aws_sdk_ec2::Client,
    instance: String,
    vpc: String,
}

async fn world(policy: &str) -> World {
    let h = Harness::with(HarnessOptions {
        policy: reflex_shared::policy::Policy::from_yaml(policy),
        ..Default::default()
    })
    .await;
    let firewall = StandIn::new();
    let f = function(&h, &firewall);
    let ec2 = h.ec2_observer();
    let (instance, vpc) = instance_in_own_vpc(&ec2, &[]).await;
    World {
        h,
        f,
        firewall,
        ec2,
        instance,
        vpc,
    }
}

impl World {
    async fn try_deliver(&self, event: Value) -> Result<Handled, PipelineError> {
        self.h
            .deliver_to(&self.f, event)
            .await
            .map(|mut o| o.remove(0))
    }

    async fn deliver(&self, event: Value) -> Handled {
        self.try_deliver(event).await.expect("handled")
    }

    fn vpc_arn(&self) -> String {
        network_block_domain::vpc_arn("us-east-1", ACCOUNT, &self.vpc)
    }

    fn one_of_each(&self) -> Parts {
        Parts {
            lists: 1,
            groups: 1,
            rules: 1,
            associations: 1,
        }
    }
}

fn apis(actions: &[Action]) -> Vec<&str> {
    actions.iter().map(|a| a.api.as_str()).collect()
}

fn ops(requests: &[Request]) -> Vec<&str> {
    requests.iter().map(|r| r.operation).collect()
}

fn policy(parameters: &str) -> String {
    format!("version: 1\nremediations:\n  network-block-domain:\n    parameters: {parameters}")
}

#[tokio::test]
async fn blocks_the_domain_making_the_vpcs_firewall_once() {
    let w = world("version: 1").await;
    let o = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-first"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::Succeeded, Reason::Remediated),
        "{o:?}"
    );
    assert!(w.firewall.blocks(&w.vpc, SAMPLE_DOMAIN));
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
    // Each request, as AWS would have received it. The VPC is the one EC2 names for the
    // instance, never the sample's payload (`vpc-0123abcd` in its network interfaces).
    let writes = w.firewall.writes();
    assert_eq!(
        ops(&writes),
        [
            "CreateFirewallDomainList",
            "CreateFirewallRuleGroup",
            "CreateFirewallRule",
            "AssociateFirewallRuleGroup",
            "UpdateFirewallDomains",
        ]
    );
    let name = format!("reflex-blocked-domains-{}", w.vpc);
    let token = |part: &str| format!("reflex-network-block-domain-{part}-{}", w.vpc);
    assert_eq!(
        writes[0].params,
        json!({"Name": name, "CreatorRequestId": token("list")})
    );
    assert_eq!(
        writes[1].params,
        json!({"Name": name, "CreatorRequestId": token("group")})
    );
    let r = w.h.record(&o.record_id).await;
    let list_id = r.actions[0].output.clone().unwrap();
    let group_id = r.actions[1].output.clone().unwrap();
    assert!(
        list_id.as_str().unwrap().starts_with("rslvr-fdl-"),
        "{list_id}"
    );
    assert_eq!(
        writes[2].params,
        json!({
            "FirewallRuleGroupId": group_id, "FirewallDomainListId": list_id,
            "Name": "reflex-block-listed-domains", "Priority": 100,
            "Action": "BLOCK", "BlockResponse": "NXDOMAIN", "CreatorRequestId": token("rule"),
        })
    );
    assert_eq!(
        writes[3].params,
        json!({
            "FirewallRuleGroupId": group_id, "VpcId": w.vpc, "Priority": 101,
            "Name": name, "CreatorRequestId": token("association"),
        })
    );
    assert_ne!(w.vpc, "vpc-0123abcd");
    assert_eq!(
        writes[4].params,
        json!({"FirewallDomainListId": list_id, "Operation": "ADD", "Domains": [SAMPLE_DOMAIN]})
    );
    // The record: the VPC as the resource, the steps with what they made, verified.
    assert_eq!(r.resource_arn.as_deref(), Some(w.vpc_arn().as_str()));
    assert_eq!(
        apis(&r.actions),
        [
            "route53resolver:CreateFirewallDomainList",
            "route53resolver:CreateFirewallRuleGroup",
            "route53resolver:CreateFirewallRule",
            "route53resolver:AssociateFirewallRuleGroup",
            "route53resolver:UpdateFirewallDomains",
        ]
    );
    assert_eq!(r.verified, Some(true));
    let target: DomainTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    assert_eq!(
        (target.instance_id.as_str(), target.vpc_id.as_str()),
        (w.instance.as_str(), w.vpc.as_str())
    );
    assert_eq!(target.domain.as_str(), SAMPLE_DOMAIN);
}

#[tokio::test]
async fn every_trigger_kind_blocks_its_domain() {
    // GuardDuty straight (four types), through Security Hub, and the custom action "Reflex:
    // remediate"; one VPC, so the later ones reuse the firewall the first one made.
    let w = world("version: 1").await;
    for (path, domain) in SAMPLES {
        let o = w.deliver(event_for(path, &w.instance, None, "-kind")).await;
        assert_eq!(o.status, Status::Succeeded, "{path}: {o:?}");
        assert!(w.firewall.blocks(&w.vpc, domain), "{path}");
    }
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
    let mut domains = w.firewall.domains(&w.vpc);
    domains.sort();
    let mut want: Vec<String> = SAMPLES.iter().map(|(_, d)| d.to_string()).collect();
    want.sort();
    assert_eq!(domains, want);
}

#[tokio::test]
async fn a_second_domain_in_the_vpc_only_adds_it() {
    let w = world("version: 1").await;
    let first = w
        .deliver(c2_query(&w.instance, "a.evil.example", "-a"))
        .await;
    assert_eq!(first.status, Status::Succeeded);
    let before = w.firewall.writes().len();
    let second = w
        .deliver(c2_query(&w.instance, "b.evil.example", "-b"))
        .await;
    assert_eq!(second.status, Status::Succeeded, "{second:?}");
    let writes = w.firewall.writes();
    assert_eq!(ops(&writes[before..]), ["UpdateFirewallDomains"]);
    assert_eq!(writes[before].params["Operation"], json!("ADD"));
    assert_eq!(writes[before].params["Domains"], json!(["b.evil.example"]));
    assert_eq!(
        apis(&w.h.record(&second.record_id).await.actions),
        ["route53resolver:UpdateFirewallDomains"]
    );
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
    assert!(w.firewall.blocks(&w.vpc, "a.evil.example"));
}

#[tokio::test]
async fn concurrent_findings_on_one_vpc_make_each_part_once() {
    // Five findings, five domains, one VPC, at once: they take turns on the VPC's lease (a
    // delivery that waited too long is busy, and is delivered again, as Lambda would).
    let w = world("version: 1").await;
    let domains: Vec<String> = (0..5).map(|i| format!("d{i}.evil.example")).collect();
    let outcomes = futures::future::join_all(domains.iter().enumerate().map(|(i, d)| {
        let w = &w;
        async move {
            let event = c2_query(&w.instance, d, &format!("-c{i}"));
            for _ in 0..10 {
                match w.try_deliver(event.clone()).await {
                    Ok(o) => return o,
                    Err(PipelineError::Busy { .. } | PipelineError::Transient { .. }) => {
                        tokio::time::sleep(std::time::Duration::from_millis(300)).await
                    }
                    Err(e) => panic!("{d}: {e}"),
                }
            }
            panic!("{d}: still busy after ten deliveries")
        }
    }))
    .await;
    for o in &outcomes {
        assert_eq!(o.status, Status::Succeeded, "{o:?}");
    }
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
    let creates = |op: &str| {
        w.firewall
            .writes()
            .iter()
            .filter(|r| r.operation == op)
            .count()
    };
    for op in [
        "CreateFirewallDomainList",
        "CreateFirewallRuleGroup",
        "CreateFirewallRule",
        "AssociateFirewallRuleGroup",
    ] {
        assert_eq!(creates(op), 1, "{op}: {:?}", w.firewall.writes());
    }
    assert_eq!(creates("UpdateFirewallDomains"), 5);
    for d in &domains {
        assert!(w.firewall.blocks(&w.vpc, d), "{d}");
    }
}

#[tokio::test]
async fn a_create_sent_again_makes_no_second_part() {
    // What the fixed CreatorRequestId is for: a create whose answer was lost, sent again by a
    // later attempt, names the same request to AWS, which answers with the part it made.
    let w = world("version: 1").await;
    let o = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-token"))
        .await;
    assert_eq!(o.status, Status::Succeeded);
    let r = w.h.record(&o.record_id).await;
    let target: DomainTarget = serde_json::from_value(r.target.clone().unwrap()).unwrap();
    let finding = reflex_tests::finding_of(&c2_query(&w.instance, SAMPLE_DOMAIN, "-token"));
    let owned = reflex_shared::ledger::Owned::default();
    let ctx = reflex_shared::remediation::Context {
        record_id: &o.record_id,
        now: chrono::Utc::now(),
        finding: &finding,
        owned: &owned,
    };
    for action in &r.actions[..4] {
        let step: DomainStep = serde_json::from_value(action.step.clone().unwrap()).unwrap();
        let again = w.f.apply(&ctx, &target, &step, &[]).await.unwrap();
        let first: Option<String> =
            serde_json::from_value(action.output.clone().unwrap_or(Value::Null)).unwrap();
        assert_eq!(again, first, "{}", action.api);
    }
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
}

#[tokio::test]
async fn each_refusal_is_skipped_or_rejected_with_its_reason() {
    let w = world(&policy("{allowlist: ['corp.example']}")).await;
    let cases = [
        (
            "s3.amazonaws.com",
            Status::Skipped,
            Reason::NotBlockable,
            "AWS",
        ),
        (
            "ec2-3-80-0-12.compute-1.amazonaws.com",
            Status::Skipped,
            Reason::NotBlockable,
            "AWS",
        ),
        (
            "abc.lambda-url.us-east-1.on.aws",
            Status::Skipped,
            Reason::NotBlockable,
            "AWS",
        ),
        (
            "ip-10-40-1-7.ec2.internal",
            Status::Skipped,
            Reason::NotBlockable,
            "AWS",
        ),
        (
            "ip-10-40-1-7.eu-west-1.compute.internal",
            Status::Skipped,
            Reason::NotBlockable,
            "AWS",
        ),
        (
            "vpn.corp.example",
            Status::Skipped,
            Reason::Allowlisted,
            "allowlist",
        ),
        (
            "*.evil.example",
            Status::Rejected,
            Reason::NoTarget,
            "not a domain",
        ),
        (
            "evil.example/../../etc",
            Status::Rejected,
            Reason::NoTarget,
            "not a domain",
        ),
        (
            "1.2.3.4",
            Status::Rejected,
            Reason::NoTarget,
            "not a domain",
        ),
        (
            "localhost",
            Status::Rejected,
            Reason::NoTarget,
            "not a domain",
        ),
        ("", Status::Rejected, Reason::NoTarget, "no DNS domain"),
    ];
    for (i, (domain, status, reason, word)) in cases.iter().enumerate() {
        let o = w
            .deliver(c2_query(&w.instance, domain, &format!("-refuse-{i}")))
            .await;
        assert_eq!((o.status, o.reason), (*status, *reason), "{domain}: {o:?}");
        assert!(o.detail.contains(word), "{domain}: {}", o.detail);
    }
    assert!(
        w.firewall.requests().is_empty(),
        "{:?}",
        w.firewall.requests()
    );
    assert!(w.h.calls.writes().is_empty(), "{:?}", w.h.calls.calls());
}

#[tokio::test]
async fn the_priority_comes_from_the_parameters() {
    let w = world(&policy("{priority: 250}")).await;
    let o = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-prio"))
        .await;
    assert_eq!(o.status, Status::Succeeded, "{o:?}");
    let associate: Vec<Request> = w
        .firewall
        .writes()
        .into_iter()
        .filter(|r| r.operation == "AssociateFirewallRuleGroup")
        .collect();
    assert_eq!(associate.len(), 1);
    assert_eq!(associate[0].params["Priority"], json!(250));
    assert_eq!(associate[0].params["VpcId"], json!(w.vpc));
}

#[tokio::test]
async fn a_second_finding_for_the_same_domain_extends_the_block() {
    let w = world(&policy("{ttl_hours: 1}")).await;
    let first = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-ttl1"))
        .await;
    assert_eq!(first.status, Status::Succeeded);
    let writes = w.firewall.writes().len();
    // The same domain again, later, under a policy that keeps blocks a day.
    let mut h = w.h;
    h.setup.policy = std::sync::Arc::new(reflex_shared::policy::PolicyCache::fixed(
        reflex_shared::policy::Policy::from_yaml("version: 1"),
    ));
    let w = World { h, ..w };
    let second = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-ttl2"))
        .await;
    assert_eq!(second.status, Status::Succeeded, "{second:?}");
    let r = w.h.record(&second.record_id).await;
    assert_eq!(apis(&r.actions), ["reflex:ExtendBlock"]);
    let p = &r.actions[0].parameters;
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let gained = at(&p["ExpiresAt"]) - at(&p["ExpiredAt"]);
    assert!(gained >= chrono::Duration::hours(22), "{p}");
    assert_eq!(w.firewall.writes().len(), writes, "no AWS change");
    assert!(w.firewall.blocks(&w.vpc, SAMPLE_DOMAIN));
}

#[tokio::test]
async fn the_sweep_removes_an_expired_domain_and_links_its_record() {
    // A block of about one second (ttl_hours 0.0003).
    let w = world(&policy("{ttl_hours: 0.0003}")).await;
    let o = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-sweep"))
        .await;
    assert_eq!(o.status, Status::Succeeded);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let scheduled = json!({
        "version": "0", "id": unique("sched"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": ACCOUNT, "time": "2026-11-22T13:00:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/reflex-sweep"],
        "detail": {}
    });
    w.h.deliver_to(&w.f, scheduled)
        .await
        .expect("the sweep runs");
    assert!(
        !w.firewall.blocks(&w.vpc, SAMPLE_DOMAIN),
        "the expired block is gone"
    );
    assert!(w.firewall.domains(&w.vpc).is_empty());
    let last = w.firewall.writes().pop().unwrap();
    assert_eq!(last.operation, "UpdateFirewallDomains");
    assert_eq!(last.params["Operation"], json!("REMOVE"));
    assert_eq!(last.params["Domains"], json!([SAMPLE_DOMAIN]));
    // The firewall stays for the next block.
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
    let records =
        w.h.setup
            .ledger
            .query(reflex_shared::ledger::Lookup::Resource(&w.vpc_arn()), None)
            .await
            .unwrap();
    let sweep = records
        .iter()
        .find(|r| r.record_id != o.record_id)
        .expect("a record of the sweep");
    assert_eq!(sweep.ends.as_deref(), Some(o.record_id.as_str()));
    assert_eq!(
        (sweep.status, sweep.reason),
        (Status::Succeeded, Reason::Expired),
        "{sweep:?}"
    );
    assert_eq!(
        apis(&sweep.actions),
        ["route53resolver:UpdateFirewallDomains"]
    );
    assert_eq!(sweep.actions[0].parameters["Operation"], json!("REMOVE"));
    assert_eq!(sweep.actions[0].parameters["Reason"], json!("expired"));
    assert_eq!(
        sweep.actions[0].parameters["BlockedByRecord"],
        json!(o.record_id)
    );
}

#[tokio::test]
async fn rollback_removes_the_domain_keeps_the_firewall_and_needs_no_instance() {
    let w = world("version: 1").await;
    let keep = w
        .deliver(c2_query(&w.instance, "keep.evil.example", "-keep"))
        .await;
    let o = w.deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-rb")).await;
    assert_eq!(
        (keep.status, o.status),
        (Status::Succeeded, Status::Succeeded)
    );
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
    assert!(!w.firewall.blocks(&w.vpc, SAMPLE_DOMAIN));
    // Only this record's domain went; the other block and the firewall stay.
    assert!(w.firewall.blocks(&w.vpc, "keep.evil.example"));
    assert_eq!(w.firewall.parts(&w.vpc), w.one_of_each());
    let last = w.firewall.writes().pop().unwrap();
    assert_eq!(
        (
            last.operation,
            &last.params["Operation"],
            &last.params["Domains"]
        ),
        (
            "UpdateFirewallDomains",
            &json!("REMOVE"),
            &json!([SAMPLE_DOMAIN])
        )
    );
    assert_eq!(
        w.h.calls.count("DescribeInstances"),
        before,
        "rollback works from the stored target, never the instance"
    );
}

#[tokio::test]
async fn a_domain_removed_behind_reflex_is_blocked_again() {
    let w = world("version: 1").await;
    let first = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-gone1"))
        .await;
    assert_eq!(first.status, Status::Succeeded);
    w.firewall.remove_behind_reflex(&w.vpc, SAMPLE_DOMAIN);
    let second = w
        .deliver(c2_query(&w.instance, SAMPLE_DOMAIN, "-gone2"))
        .await;
    assert_eq!(second.status, Status::Succeeded, "{second:?}");
    assert_eq!(
        apis(&w.h.record(&second.record_id).await.actions),
        ["route53resolver:UpdateFirewallDomains"]
    );
    assert!(w.firewall.blocks(&w.vpc, SAMPLE_DOMAIN));
}

#[tokio::test]
async fn an_exempt_vpc_is_left_alone() {
    // A threat finding: the VPC's own exemption tag holds the block for a person's approval
    // (whoever controls the resource may have set it) and changes nothing by itself.
    let w = world("version: 1").await;
    let until = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d");
    let (instance, vpc) = instance_in_own_vpc(
        &w.ec2,
        &[("reflex:exempt", &format!("{until};shared services"))],
    )
    .await;
    let o = w
        .deliver(c2_query(&instance, SAMPLE_DOMAIN, "-exempt"))
        .await;
    assert_eq!(
        (o.status, o.reason),
        (Status::PendingApproval, Reason::AwaitingApproval),
        "{o:?}"
    );
    assert!(
        o.detail.contains("not trusted to exempt it"),
        "{}",
        o.detail
    );
    assert!(!w.firewall.blocks(&vpc, SAMPLE_DOMAIN));
    assert!(w.firewall.writes().is_empty());
}

#[tokio::test]
async fn the_demo_blocks_the_samples_domain() {
    let h = Harness::new().await;
    reflex_cli::demo_network_block_domain::show(&h.setup)
        .await
        .expect("the demo runs");
    let records = h
        .setup
        .ledger
        .query(
            reflex_shared::ledger::Lookup::Remediation("network-block-domain"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, Status::Succeeded, "{:?}", records[0]);
    assert_eq!(
        apis(&records[0].actions).last(),
        Some(&"route53resolver:UpdateFirewallDomains")
    );
}
