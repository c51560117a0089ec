//! The shipped manifests: every object parses into its typed Kubernetes struct with no unknown
//! field, names match upstream's so an install replaces upstream in place, container args are
//! flags the binary accepts, probes point at what the server serves, RBAC is exactly what the
//! server needs, and the rendered single-file installs equal what kustomize renders.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failed step should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every YAML document of a file, as JSON values.
fn documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Parses into `T` and back: any field the typed struct does not know (a typo, a wrong level)
/// is lost on the way and fails the comparison.
fn typed<T: DeserializeOwned + Serialize>(doc: &serde_json::Value) -> T {
    let object: T = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        &serde_json::to_value(&object).unwrap(),
        doc,
        "fields lost parsing {}",
        doc["kind"]
    );
    object
}

/// All objects of an install, by kind.
#[derive(Default)]
struct Install {
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    role_bindings: Vec<RoleBinding>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    services: Vec<Service>,
    deployments: Vec<Deployment>,
    pdbs: Vec<PodDisruptionBudget>,
    api_services: Vec<APIService>,
}

fn install(file: &str) -> Install {
    let mut install = Install::default();
    for doc in documents(&repo(file)) {
        match doc["kind"].as_str().unwrap() {
            "ServiceAccount" => install.service_accounts.push(typed(&doc)),
            "ClusterRole" => install.cluster_roles.push(typed(&doc)),
            "RoleBinding" => install.role_bindings.push(typed(&doc)),
            "ClusterRoleBinding" => install.cluster_role_bindings.push(typed(&doc)),
            "Service" => install.services.push(typed(&doc)),
            "Deployment" => install.deployments.push(typed(&doc)),
            "PodDisruptionBudget" => install.pdbs.push(typed(&doc)),
            "APIService" => install.api_services.push(typed(&doc)),
            other => panic!("unexpected kind {other} in {file}"),
        }
    }
    install
}

fn names<T>(items: &[T], name: impl Fn(&T) -> Option<String>) -> Vec<String> {
    let mut names: Vec<String> = items.iter().filter_map(name).collect();
    names.sort();
    names
}

#[test]
fn every_object_parses_into_its_typed_struct_and_keeps_upstreams_names() {
    for file in ["manifests/components.yaml", "manifests/high-availability.yaml"] {
        let i = install(file);
        assert_eq!(
            names(&i.service_accounts, |o| o.metadata.name.clone()),
            ["metrics-server"]
        );
        assert_eq!(
            names(&i.cluster_roles, |o| o.metadata.name.clone()),
            ["system:aggregated-metrics-reader", "system:metrics-server"]
        );
        assert_eq!(
            names(&i.role_bindings, |o| o.metadata.name.clone()),
            ["metrics-server-auth-reader"]
        );
        assert_eq!(
            names(&i.cluster_role_bindings, |o| o.metadata.name.clone()),
            ["metrics-server:system:auth-delegator", "system:metrics-server"]
        );
        assert_eq!(names(&i.services, |o| o.metadata.name.clone()), ["metrics-server"]);
        assert_eq!(names(&i.deployments, |o| o.metadata.name.clone()), ["metrics-server"]);
        assert_eq!(
            names(&i.api_services, |o| o.metadata.name.clone()),
            ["v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"]
        );
        for d in &i.deployments {
            assert_eq!(d.metadata.namespace.as_deref(), Some("kube-system"));
        }
    }
}

#[test]
fn the_single_file_installs_equal_what_kustomize_renders() {
    for (dir, file) in [
        ("manifests/base", "manifests/components.yaml"),
        ("manifests/high-availability", "manifests/high-availability.yaml"),
    ] {
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(repo(dir))
            .output()
            .expect("kubectl on PATH");
        assert!(
            out.status.success(),
            "kustomize {dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let committed = std::fs::read_to_string(repo(file)).unwrap();
        let rendered = String::from_utf8(out.stdout).unwrap();
        let body: String = committed
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            body, rendered,
            "{file} is stale: re-render it with `kubectl kustomize {dir}`"
        );
    }
}

#[test]
fn container_args_are_flags_the_binary_accepts() {
    for file in ["manifests/components.yaml", "manifests/high-availability.yaml"] {
        for deployment in install(file).deployments {
            let spec = deployment.spec.unwrap().template.spec.unwrap();
            for container in spec.containers {
                let args = container.args.unwrap_or_default();
                assert!(!args.is_empty());
                // clap parses every argument before acting on --version: an unknown or malformed
                // flag fails the run.
                let out = Command::new(env!("CARGO_BIN_EXE_metrics-server"))
                    .args(&args)
                    .arg("--version")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{args:?} rejected: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

#[test]
fn probes_and_ports_match_what_the_server_serves() {
    let i = install("manifests/components.yaml");
    let spec = i.deployments[0].spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let container = &spec.containers[0];
    let args = container.args.as_ref().unwrap();
    let secure_port: i32 = args
        .iter()
        .find_map(|a| a.strip_prefix("--secure-port="))
        .unwrap()
        .parse()
        .unwrap();
    let port = container
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .find(|p| p.name.as_deref() == Some("https"))
        .unwrap();
    assert_eq!(port.container_port, secure_port);
    for (probe, path) in [
        (&container.readiness_probe, "/readyz"),
        (&container.liveness_probe, "/livez"),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("https".into())
        );
    }
    // The Service targets that port by name, and the APIServices point at the Service.
    let service = &i.services[0];
    let service_port = &service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(
        service_port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
            "https".into()
        ))
    );
    for api in &i.api_services {
        let svc = api.spec.as_ref().unwrap().service.as_ref().unwrap();
        assert_eq!(
            (svc.namespace.as_deref(), svc.name.as_deref()),
            (Some("kube-system"), Some("metrics-server"))
        );
    }
    // Restricted: non-root, read-only root filesystem, no privilege escalation, no capabilities.
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    // --cert-dir must be writable: it is an emptyDir mount.
    let cert_dir = args.iter().find_map(|a| a.strip_prefix("--cert-dir=")).unwrap();
    assert!(container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .any(|m| m.mount_path == cert_dir));
}

#[test]
fn rbac_grants_exactly_what_the_server_uses() {
    let i = install("manifests/components.yaml");
    let server_role = i
        .cluster_roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("system:metrics-server"))
        .unwrap();
    let mut grants: Vec<(String, String)> = Vec::new();
    for rule in server_role.rules.as_ref().unwrap() {
        for resource in rule.resources.as_ref().unwrap() {
            for verb in &rule.verbs {
                grants.push((resource.clone(), verb.clone()));
            }
        }
    }
    grants.sort();
    let expected: Vec<(String, String)> = [
        ("nodes", "get"),
        ("nodes", "list"),
        ("nodes", "watch"),
        ("nodes/metrics", "get"),
        ("pods", "get"),
        ("pods", "list"),
        ("pods", "watch"),
    ]
    .iter()
    .map(|(r, v)| ((*r).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(grants, expected);
    let reader = i
        .cluster_roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some("system:aggregated-metrics-reader"))
        .unwrap();
    let labels = reader.metadata.labels.as_ref().unwrap();
    for aggregate in ["view", "edit", "admin"] {
        assert_eq!(
            labels
                .get(&format!("rbac.authorization.k8s.io/aggregate-to-{aggregate}"))
                .map(String::as_str),
            Some("true")
        );
    }
}

#[test]
fn high_availability_runs_two_replicas_on_different_nodes_with_a_budget() {
    let i = install("manifests/high-availability.yaml");
    let spec = i.deployments[0].spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    let affinity = spec.template.spec.as_ref().unwrap().affinity.as_ref().unwrap();
    let anti = affinity.pod_anti_affinity.as_ref().unwrap();
    let required = anti
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap();
    assert_eq!(required[0].topology_key, "kubernetes.io/hostname");
    let pdb = i.pdbs[0].spec.as_ref().unwrap();
    assert_eq!(
        pdb.min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let selector = pdb.selector.as_ref().unwrap().match_labels.as_ref().unwrap();
    assert_eq!(selector.get("k8s-app").map(String::as_str), Some("metrics-server"));
}

#[test]
fn the_secure_apiservices_carry_a_ca_bundle_and_verify_tls() {
    for v in ["v1beta1", "v1"] {
        let docs = documents(&repo(&format!("apiservice/secure/{v}.yaml")));
        let api: APIService = typed(&docs[0]);
        let spec = api.spec.unwrap();
        assert!(spec.ca_bundle.is_some_and(|b| !b.0.is_empty()));
        assert_ne!(spec.insecure_skip_tls_verify, Some(true));
    }
}

#[test]
fn the_documented_flags_are_exactly_the_binarys_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_metrics-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let documented = std::fs::read_to_string(repo("docs/command-line-flags.txt")).unwrap();
    assert_eq!(
        documented, help,
        "docs/command-line-flags.txt is stale: regenerate with `cargo run -- --help > docs/command-line-flags.txt`"
    );
}
