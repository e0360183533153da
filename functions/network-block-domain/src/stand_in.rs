//! A stand-in for Route 53 Resolver's DNS Firewall, for the tests and the demo: the local
//! emulator (moto) has no DNS Firewall at all, so the resolver client is answered by
//! aws-smithy-mocks rules over a small in-memory model of the firewall. The model keeps what
//! AWS keeps (domain lists with their domains, rule groups, rules, associations with VPCs) and
//! answers as AWS documents it:
//! - a create sent again with a `CreatorRequestId` already used answers with the part the
//!   first one made (AWS's idempotency), whatever else it asks;
//! - names are not unique (AWS allows two lists with one name): only the token prevents a
//!   second part;
//! - a rule group associated twice with one VPC, or two groups at one priority on one VPC, is a
//!   `ConflictException`; an unknown list or group is a `ResourceNotFoundException`.
//!
//! Every request is recorded (operation and parameters), so tests assert exactly what Reflex
//! sent. Built only with the `stand-in` feature: never part of the Lambda.

use crate::firewall;
use aws_sdk_route53resolver::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_route53resolver::error::ErrorMetadata;
use aws_sdk_route53resolver::operation::{
    associate_firewall_rule_group::{
        AssociateFirewallRuleGroupError, AssociateFirewallRuleGroupOutput,
    },
    create_firewall_domain_list::CreateFirewallDomainListOutput,
    create_firewall_rule::{CreateFirewallRuleError, CreateFirewallRuleOutput},
    create_firewall_rule_group::CreateFirewallRuleGroupOutput,
    list_firewall_domain_lists::ListFirewallDomainListsOutput,
    list_firewall_domains::{ListFirewallDomainsError, ListFirewallDomainsOutput},
    list_firewall_rule_group_associations::ListFirewallRuleGroupAssociationsOutput,
    list_firewall_rule_groups::ListFirewallRuleGroupsOutput,
    list_firewall_rules::{ListFirewallRulesError, ListFirewallRulesOutput},
    update_firewall_domains::{UpdateFirewallDomainsError, UpdateFirewallDomainsOutput},
};
use aws_sdk_route53resolver::types::error::{ConflictException, ResourceNotFoundException};
use aws_sdk_route53resolver::types::{
    Action, BlockResponse, FirewallDomainList, FirewallDomainListMetadata,
    FirewallDomainUpdateOperation, FirewallRule, FirewallRuleGroup, FirewallRuleGroupAssociation,
    FirewallRuleGroupAssociationStatus, FirewallRuleGroupMetadata,
};
use aws_sdk_route53resolver::Client;
use aws_smithy_mocks::{
    create_mock_http_client, mock, MockResponse, MockResponseInterceptor, RuleMode,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The operation, as AWS names it (`UpdateFirewallDomains`).
    pub operation: &'static str,
    /// Its parameters, as AWS names them.
    pub params: Value,
}

#[derive(Debug, Clone)]
struct List {
    id: String,
    name: String,
    token: String,
    domains: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct Group {
    id: String,
    name: String,
    token: String,
}

#[derive(Debug, Clone)]
struct Rule {
    group_id: String,
    list_id: String,
    name: String,
    priority: i32,
    action: Action,
    block_response: Option<BlockResponse>,
    token: String,
}

#[derive(Debug, Clone)]
struct Assoc {
    id: String,
    name: String,
    group_id: String,
    vpc_id: String,
    priority: i32,
    token: String,
}

#[derive(Debug, Default)]
struct Model {
    lists: Vec<List>,
    groups: Vec<Group>,
    rules: Vec<Rule>,
    associations: Vec<Assoc>,
    requests: Vec<Request>,
    next: u64,
}

impl Model {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{:017x}", self.next)
    }

    fn log(&mut self, operation: &'static str, params: Value) {
        self.requests.push(Request { operation, params });
    }
}

/// How many of each part Reflex's names for a VPC have in the stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    pub lists: usize,
    pub groups: usize,
    pub rules: usize,
    pub associations: usize,
}

/// The in-memory firewall; cheap to clone (one model behind).
#[derive(Debug, Clone, Default)]
pub struct StandIn {
    model: Arc<Mutex<Model>>,
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn not_found(what: &str) -> ResourceNotFoundException {
    let message = format!("{what} not found");
    ResourceNotFoundException::builder()
        .message(&message)
        .meta(meta("ResourceNotFoundException", &message))
        .build()
}

fn conflict(message: String) -> ConflictException {
    ConflictException::builder()
        .message(&message)
        .meta(meta("ConflictException", &message))
        .build()
}

impl StandIn {
    pub fn new() -> StandIn {
        StandIn::default()
    }

    fn lock(&self) -> MutexGuard<'_, Model> {
        // A test that panicked while holding the model leaves it as it was: keep serving.
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A resolver client answered by this stand-in.
    pub fn client(&self) -> Client {
        self.client_with(|c| c)
    }

    /// The same, its configuration adjusted by `configure` (an interceptor that logs calls).
    pub fn client_with(
        &self,
        configure: impl FnOnce(
            aws_sdk_route53resolver::config::Builder,
        ) -> aws_sdk_route53resolver::config::Builder,
    ) -> Client {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in self.rules() {
            interceptor = interceptor.with_rule(&rule);
        }
        let conf = aws_sdk_route53resolver::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "stand-in", "stand-in", None, None, "stand-in",
            ))
            .http_client(create_mock_http_client())
            .interceptor(interceptor);
        Client::from_conf(configure(conf).build())
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The requests that change something (everything but `List*`), in order.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| !r.operation.starts_with("List"))
            .collect()
    }

    /// Whether the VPC's resolver answers NXDOMAIN for `domain`: a rule group associated with
    /// the VPC holds a BLOCK rule whose list holds the domain.
    pub fn blocks(&self, vpc_id: &str, domain: &str) -> bool {
        let m = self.lock();
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        m.associations
            .iter()
            .filter(|a| a.vpc_id == vpc_id)
            .any(|a| {
                m.rules
                    .iter()
                    .filter(|r| r.group_id == a.group_id && r.action == Action::Block)
                    .any(|r| {
                        m.lists.iter().any(|l| {
                            l.id == r.list_id
                                && l.domains
                                    .iter()
                                    .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(&domain))
                        })
                    })
            })
    }

    /// The domains of Reflex's list for the VPC (empty when there is none).
    pub fn domains(&self, vpc_id: &str) -> Vec<String> {
        let name = firewall::name(vpc_id);
        self.lock()
            .lists
            .iter()
            .filter(|l| l.name == name)
            .flat_map(|l| l.domains.iter().cloned())
            .collect()
    }

    /// How many lists, groups, rules (in those groups) and associations (with the VPC) carry
    /// Reflex's names for the VPC.
    pub fn parts(&self, vpc_id: &str) -> Parts {
        let m = self.lock();
        let name = firewall::name(vpc_id);
        let groups: Vec<&Group> = m.groups.iter().filter(|g| g.name == name).collect();
        Parts {
            lists: m.lists.iter().filter(|l| l.name == name).count(),
            groups: groups.len(),
            rules: m
                .rules
                .iter()
                .filter(|r| groups.iter().any(|g| g.id == r.group_id))
                .count(),
            associations: m
                .associations
                .iter()
                .filter(|a| a.vpc_id == vpc_id && groups.iter().any(|g| g.id == a.group_id))
                .count(),
        }
    }

    /// Reflex's firewall for the VPC as an earlier deployment left it, made directly in the
    /// model (not through a client, so no request is recorded): the parts, and `domains` in
    /// the list.
    pub fn seed(&self, vpc_id: &str, priority: i32, domains: &[&str]) {
        let mut m = self.lock();
        let name = firewall::name(vpc_id);
        let list = m.id("rslvr-fdl");
        let group = m.id("rslvr-frg");
        let assoc = m.id("rslvr-frgassoc");
        m.lists.push(List {
            id: list.clone(),
            name: name.clone(),
            token: format!("seeded-{list}"),
            domains: domains.iter().map(|d| d.to_string()).collect(),
        });
        m.groups.push(Group {
            id: group.clone(),
            name: name.clone(),
            token: format!("seeded-{group}"),
        });
        m.rules.push(Rule {
            group_id: group.clone(),
            list_id: list,
            name: firewall::RULE_NAME.into(),
            priority: firewall::RULE_PRIORITY,
            action: Action::Block,
            block_response: Some(BlockResponse::Nxdomain),
            token: format!("seeded-rule-{group}"),
        });
        m.associations.push(Assoc {
            id: assoc.clone(),
            name,
            group_id: group,
            vpc_id: vpc_id.into(),
            priority,
            token: format!("seeded-{assoc}"),
        });
    }

    /// Someone else (a person, another tool) takes a domain out of Reflex's list for the VPC.
    pub fn remove_behind_reflex(&self, vpc_id: &str, domain: &str) {
        let name = firewall::name(vpc_id);
        for l in self.lock().lists.iter_mut().filter(|l| l.name == name) {
            l.domains.remove(domain);
        }
    }

    /// The aws-smithy-mocks rules, one per operation Reflex calls, each over the model.
    fn rules(&self) -> Vec<aws_smithy_mocks::Rule> {
        let m = self.model.clone();
        let list_lists = mock!(Client::list_firewall_domain_lists).then_compute_output(move |_| {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            m.log("ListFirewallDomainLists", json!({}));
            ListFirewallDomainListsOutput::builder()
                .set_firewall_domain_lists(Some(
                    m.lists
                        .iter()
                        .map(|l| {
                            FirewallDomainListMetadata::builder()
                                .id(&l.id)
                                .name(&l.name)
                                .creator_request_id(&l.token)
                                .build()
                        })
                        .collect(),
                ))
                .build()
        });
        let m = self.model.clone();
        let list_groups = mock!(Client::list_firewall_rule_groups).then_compute_output(move |_| {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            m.log("ListFirewallRuleGroups", json!({}));
            ListFirewallRuleGroupsOutput::builder()
                .set_firewall_rule_groups(Some(
                    m.groups
                        .iter()
                        .map(|g| {
                            FirewallRuleGroupMetadata::builder()
                                .id(&g.id)
                                .name(&g.name)
                                .creator_request_id(&g.token)
                                .build()
                        })
                        .collect(),
                ))
                .build()
        });
        let m = self.model.clone();
        let list_rules = mock!(Client::list_firewall_rules).then_compute_response(move |req| {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            let group = req.firewall_rule_group_id().unwrap_or_default().to_string();
            m.log("ListFirewallRules", json!({"FirewallRuleGroupId": group}));
            if !m.groups.iter().any(|g| g.id == group) {
                return MockResponse::Error(ListFirewallRulesError::ResourceNotFoundException(
                    not_found(&format!("rule group {group}")),
                ));
            }
            MockResponse::Output(
                ListFirewallRulesOutput::builder()
                    .set_firewall_rules(Some(
                        m.rules
                            .iter()
                            .filter(|r| r.group_id == group)
                            .map(|r| {
                                FirewallRule::builder()
                                    .firewall_rule_group_id(&r.group_id)
                                    .firewall_domain_list_id(&r.list_id)
                                    .name(&r.name)
                                    .priority(r.priority)
                                    .action(r.action.clone())
                                    .set_block_response(r.block_response.clone())
                                    .creator_request_id(&r.token)
                                    .build()
                            })
                            .collect(),
                    ))
                    .build(),
            )
        });
        let m = self.model.clone();
        let list_assocs =
            mock!(Client::list_firewall_rule_group_associations).then_compute_output(move |req| {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let group = req.firewall_rule_group_id().map(String::from);
                let vpc = req.vpc_id().map(String::from);
                m.log(
                    "ListFirewallRuleGroupAssociations",
                    json!({"FirewallRuleGroupId": group, "VpcId": vpc}),
                );
                ListFirewallRuleGroupAssociationsOutput::builder()
                    .set_firewall_rule_group_associations(Some(
                        m.associations
                            .iter()
                            .filter(|a| group.as_ref().is_none_or(|g| *g == a.group_id))
                            .filter(|a| vpc.as_ref().is_none_or(|v| *v == a.vpc_id))
                            .map(association)
                            .collect(),
                    ))
                    .build()
            });
        let m = self.model.clone();
        let list_domains = mock!(Client::list_firewall_domains).then_compute_response(move |req| {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            let list = req
                .firewall_domain_list_id()
                .unwrap_or_default()
                .to_string();
            m.log("ListFirewallDomains", json!({"FirewallDomainListId": list}));
            match m.lists.iter().find(|l| l.id == list) {
                None => MockResponse::Error(ListFirewallDomainsError::ResourceNotFoundException(
                    not_found(&format!("domain list {list}")),
                )),
                Some(l) => MockResponse::Output(
                    ListFirewallDomainsOutput::builder()
                        .set_domains(Some(l.domains.iter().cloned().collect()))
                        .build(),
                ),
            }
        });
        let m = self.model.clone();
        let create_list =
            mock!(Client::create_firewall_domain_list).then_compute_output(move |req| {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let name = req.name().unwrap_or_default().to_string();
                let token = req.creator_request_id().unwrap_or_default().to_string();
                m.log(
                    "CreateFirewallDomainList",
                    json!({"Name": name, "CreatorRequestId": token}),
                );
                let list = match m.lists.iter().find(|l| l.token == token) {
                    Some(l) => l.clone(),
                    None => {
                        let l = List {
                            id: m.id("rslvr-fdl"),
                            name,
                            token,
                            domains: BTreeSet::new(),
                        };
                        m.lists.push(l.clone());
                        l
                    }
                };
                CreateFirewallDomainListOutput::builder()
                    .firewall_domain_list(
                        FirewallDomainList::builder()
                            .id(&list.id)
                            .name(&list.name)
                            .creator_request_id(&list.token)
                            .domain_count(list.domains.len() as i32)
                            .build(),
                    )
                    .build()
            });
        let m = self.model.clone();
        let create_group =
            mock!(Client::create_firewall_rule_group).then_compute_output(move |req| {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let name = req.name().unwrap_or_default().to_string();
                let token = req.creator_request_id().unwrap_or_default().to_string();
                m.log(
                    "CreateFirewallRuleGroup",
                    json!({"Name": name, "CreatorRequestId": token}),
                );
                let group = match m.groups.iter().find(|g| g.token == token) {
                    Some(g) => g.clone(),
                    None => {
                        let g = Group {
                            id: m.id("rslvr-frg"),
                            name,
                            token,
                        };
                        m.groups.push(g.clone());
                        g
                    }
                };
                CreateFirewallRuleGroupOutput::builder()
                    .firewall_rule_group(
                        FirewallRuleGroup::builder()
                            .id(&group.id)
                            .name(&group.name)
                            .creator_request_id(&group.token)
                            .build(),
                    )
                    .build()
            });
        let m = self.model.clone();
        let create_rule = mock!(Client::create_firewall_rule).then_compute_response(move |req| {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            let rule = Rule {
                group_id: req.firewall_rule_group_id().unwrap_or_default().into(),
                list_id: req.firewall_domain_list_id().unwrap_or_default().into(),
                name: req.name().unwrap_or_default().into(),
                priority: req.priority().unwrap_or_default(),
                action: req.action().cloned().unwrap_or(Action::Alert),
                block_response: req.block_response().cloned(),
                token: req.creator_request_id().unwrap_or_default().into(),
            };
            m.log(
                "CreateFirewallRule",
                json!({
                    "FirewallRuleGroupId": rule.group_id,
                    "FirewallDomainListId": rule.list_id,
                    "Name": rule.name,
                    "Priority": rule.priority,
                    "Action": rule.action.as_str(),
                    "BlockResponse": rule.block_response.as_ref().map(|b| b.as_str()),
                    "CreatorRequestId": rule.token,
                }),
            );
            let output = |r: &Rule| {
                MockResponse::Output(
                    CreateFirewallRuleOutput::builder()
                        .firewall_rule(
                            FirewallRule::builder()
                                .firewall_rule_group_id(&r.group_id)
                                .firewall_domain_list_id(&r.list_id)
                                .priority(r.priority)
                                .build(),
                        )
                        .build(),
                )
            };
            if let Some(same) = m.rules.iter().find(|r| r.token == rule.token) {
                return output(same);
            }
            if !m.groups.iter().any(|g| g.id == rule.group_id) {
                return MockResponse::Error(CreateFirewallRuleError::ResourceNotFoundException(
                    not_found(&format!("rule group {}", rule.group_id)),
                ));
            }
            if !m.lists.iter().any(|l| l.id == rule.list_id) {
                return MockResponse::Error(CreateFirewallRuleError::ResourceNotFoundException(
                    not_found(&format!("domain list {}", rule.list_id)),
                ));
            }
            m.rules.push(rule.clone());
            output(&rule)
        });
        let m = self.model.clone();
        let associate =
            mock!(Client::associate_firewall_rule_group).then_compute_response(move |req| {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let group = req.firewall_rule_group_id().unwrap_or_default().to_string();
                let vpc = req.vpc_id().unwrap_or_default().to_string();
                let priority = req.priority().unwrap_or_default();
                let token = req.creator_request_id().unwrap_or_default().to_string();
                let name = req.name().unwrap_or_default().to_string();
                m.log(
                    "AssociateFirewallRuleGroup",
                    json!({
                        "FirewallRuleGroupId": group,
                        "VpcId": vpc,
                        "Priority": priority,
                        "Name": name,
                        "CreatorRequestId": token,
                    }),
                );
                let output = |a: &Assoc| {
                    MockResponse::Output(
                        AssociateFirewallRuleGroupOutput::builder()
                            .firewall_rule_group_association(association(a))
                            .build(),
                    )
                };
                if let Some(same) = m.associations.iter().find(|a| a.token == token) {
                    return output(same);
                }
                if !m.groups.iter().any(|g| g.id == group) {
                    return MockResponse::Error(
                        AssociateFirewallRuleGroupError::ResourceNotFoundException(not_found(
                            &format!("rule group {group}"),
                        )),
                    );
                }
                if m.associations
                    .iter()
                    .any(|a| a.vpc_id == vpc && (a.group_id == group || a.priority == priority))
                {
                    return MockResponse::Error(
                        AssociateFirewallRuleGroupError::ConflictException(conflict(format!(
                            "{vpc} has this rule group, or another at priority {priority}, already"
                        ))),
                    );
                }
                let a = Assoc {
                    id: m.id("rslvr-frgassoc"),
                    name,
                    group_id: group,
                    vpc_id: vpc,
                    priority,
                    token,
                };
                m.associations.push(a.clone());
                output(&a)
            });
        let m = self.model.clone();
        let update = mock!(Client::update_firewall_domains).then_compute_response(move |req| {
            let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
            let list = req
                .firewall_domain_list_id()
                .unwrap_or_default()
                .to_string();
            let op = req.operation().cloned();
            let domains: Vec<String> = req.domains().to_vec();
            m.log(
                "UpdateFirewallDomains",
                json!({
                    "FirewallDomainListId": list,
                    "Operation": op.as_ref().map(|o| o.as_str()),
                    "Domains": domains,
                }),
            );
            let Some(l) = m.lists.iter_mut().find(|l| l.id == list) else {
                return MockResponse::Error(UpdateFirewallDomainsError::ResourceNotFoundException(
                    not_found(&format!("domain list {list}")),
                ));
            };
            match op {
                Some(FirewallDomainUpdateOperation::Add) => l.domains.extend(domains),
                Some(FirewallDomainUpdateOperation::Remove) => {
                    for d in &domains {
                        l.domains.remove(d);
                    }
                }
                Some(FirewallDomainUpdateOperation::Replace) => {
                    l.domains = domains.into_iter().collect()
                }
                _ => {}
            }
            MockResponse::Output(
                UpdateFirewallDomainsOutput::builder()
                    .id(&l.id)
                    .name(&l.name)
                    .build(),
            )
        });
        vec![
            list_lists,
            list_groups,
            list_rules,
            list_assocs,
            list_domains,
            create_list,
            create_group,
            create_rule,
            associate,
            update,
        ]
    }
}

fn association(a: &Assoc) -> FirewallRuleGroupAssociation {
    FirewallRuleGroupAssociation::builder()
        .id(&a.id)
        .name(&a.name)
        .firewall_rule_group_id(&a.group_id)
        .vpc_id(&a.vpc_id)
        .priority(a.priority)
        .status(FirewallRuleGroupAssociationStatus::Complete)
        .creator_request_id(&a.token)
        .build()
}
