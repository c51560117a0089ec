//! What tests put into the double (Node and Pod objects) and how they reach it (a kubeconfig).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{json, Value};

/// A Node as the API server returns it, with the noise the lean decoder must skip.
pub fn node_object(name: &str, labels: &[(&str, &str)], addresses: &[(&str, &str)], kubelet_port: u16) -> Value {
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "labels": label_map(labels),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:status": {"f:addresses": {}}}}],
        },
        "spec": {"podCIDR": "10.244.0.0/24", "providerID": format!("kind://docker/kind/{name}")},
        "status": {
            "capacity": {"cpu": "8", "memory": "32827056Ki", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": addresses.iter().map(|(t, a)| json!({"type": t, "address": a})).collect::<Vec<_>>(),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": {"kubeletVersion": "v1.33.1", "containerRuntimeVersion": "containerd://2.1.1"},
        },
    })
}

/// A Pod as the API server returns it, scheduled on `node` (empty: not yet scheduled).
pub fn pod_object(namespace: &str, name: &str, node: &str, labels: &[(&str, &str)], phase: &str) -> Value {
    let mut spec = json!({
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m"}}}],
        "restartPolicy": "Always",
    });
    if !node.is_empty() {
        spec["nodeName"] = node.into();
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": label_map(labels),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}],
        },
        "spec": spec,
        "status": {"phase": phase, "podIP": "10.244.0.9", "qosClass": "Burstable"},
    })
}

fn label_map(labels: &[(&str, &str)]) -> Value {
    labels.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect()
}

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone)]
pub enum KubeAuth {
    Token(String),
    TokenFile(PathBuf),
}

/// Writes a kubeconfig for `server` into `dir`: CA inline (base64), one user, one context.
pub fn write_kubeconfig(dir: &Path, server: &str, ca_pem: &str, auth: &KubeAuth) -> PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let user = match auth {
        KubeAuth::Token(token) => format!("token: {token}"),
        KubeAuth::TokenFile(path) => format!("tokenFile: {}", path.display()),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: metrics-server\n  user:\n    {user}\n\
         contexts:\n- name: test\n  context:\n    cluster: test\n    user: metrics-server\ncurrent-context: test\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads a kubeconfig the way `main` does for `--kubeconfig`.
pub async fn load_kube_config(path: &Path) -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap()
}

/// A client for the kubeconfig at `path`, built as `main` builds it.
pub async fn kube_client(path: &Path) -> (kube::Config, kube::Client) {
    let config = load_kube_config(path).await;
    let client = kube::Client::try_from(config.clone()).unwrap();
    (config, client)
}
