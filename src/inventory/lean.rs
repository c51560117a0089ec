//! Lean views of Node and Pod for the watches: only the fields this server uses are decoded;
//! everything else in the JSON (managedFields, specs, statuses) is skipped by the parser
//! without being allocated, so a 150k-pod list costs little more than the fields kept.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};

use super::{Labels, NodeAddress, NodeInfo, PodInfo};

/// The metadata fields kept: identity, labels, and what the watch protocol needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

fn lean_meta<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ObjectMeta, D::Error> {
    let meta = LeanMeta::deserialize(deserializer)?;
    Ok(ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        labels: meta.labels,
        ..ObjectMeta::default()
    })
}

/// A Node, as far as this server cares.
#[derive(Clone, Debug, Deserialize)]
pub struct LeanNode {
    #[serde(deserialize_with = "lean_meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    status: LeanNodeStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanNodeStatus {
    #[serde(default)]
    addresses: Vec<LeanAddress>,
    #[serde(default)]
    daemon_endpoints: LeanDaemonEndpoints,
}

#[derive(Clone, Debug, Deserialize)]
struct LeanAddress {
    #[serde(rename = "type")]
    address_type: String,
    address: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanDaemonEndpoints {
    #[serde(default)]
    kubelet_endpoint: LeanEndpoint,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LeanEndpoint {
    #[serde(default)]
    port: i32,
}

/// A Pod, as far as this server cares.
#[derive(Clone, Debug, Deserialize)]
pub struct LeanPod {
    #[serde(deserialize_with = "lean_meta")]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: LeanPodSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeanPodSpec {
    node_name: Option<String>,
}

impl LeanNode {
    pub fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    pub fn into_info(self) -> Option<NodeInfo> {
        Some(NodeInfo {
            name: self.metadata.name?,
            labels: self.metadata.labels.map(Labels::from_iter).unwrap_or_default(),
            addresses: self
                .status
                .addresses
                .into_iter()
                .map(|a| NodeAddress {
                    address_type: a.address_type,
                    address: a.address,
                })
                .collect(),
            kubelet_status_port: u16::try_from(self.status.daemon_endpoints.kubelet_endpoint.port).unwrap_or(0),
        })
    }
}

impl LeanPod {
    pub fn key(&self) -> Option<(&str, &str)> {
        Some((self.metadata.namespace.as_deref()?, self.metadata.name.as_deref()?))
    }

    /// `None` for a pod not yet scheduled: no kubelet reports it.
    pub fn into_info(self) -> Option<PodInfo> {
        Some(PodInfo {
            namespace: self.metadata.namespace?.into(),
            name: self.metadata.name?.into(),
            labels: self.metadata.labels.map(Labels::from_iter).unwrap_or_default(),
            node_name: self.spec.node_name.filter(|n| !n.is_empty())?.into(),
        })
    }
}

macro_rules! core_v1_resource {
    ($type:ty, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $type {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($kind)
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("")
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed("v1")
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

core_v1_resource!(LeanNode, "Node", "nodes", k8s_openapi::ClusterResourceScope);
core_v1_resource!(LeanPod, "Pod", "pods", k8s_openapi::NamespaceResourceScope);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_keeps_addresses_port_and_labels_only() {
        let json = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","uid":"u","resourceVersion":"7",
            "labels":{"kubernetes.io/os":"linux"},"managedFields":[{"manager":"kubelet","fieldsV1":{"f:status":{}}}]},
            "spec":{"podCIDR":"10.0.0.0/24"},
            "status":{"addresses":[{"type":"InternalIP","address":"10.0.0.5"},{"type":"Hostname","address":"n1"}],
            "daemonEndpoints":{"kubeletEndpoint":{"Port":10250}},"capacity":{"cpu":"4"}}}"#;
        let node: LeanNode = serde_json::from_str(json).unwrap();
        assert!(node.metadata.managed_fields.is_none());
        assert_eq!(node.metadata.resource_version.as_deref(), Some("7"));
        let info = node.into_info().unwrap();
        assert_eq!(info.name, "n1");
        assert_eq!(info.kubelet_status_port, 10250);
        assert_eq!(
            info.addresses[0],
            NodeAddress {
                address_type: "InternalIP".into(),
                address: "10.0.0.5".into()
            }
        );
        assert_eq!(info.labels.get("kubernetes.io/os"), Some("linux"));
    }

    #[test]
    fn an_unscheduled_pod_has_no_inventory_entry() {
        let scheduled: LeanPod = serde_json::from_str(
            r#"{"metadata":{"name":"p","namespace":"ns","labels":{"app":"x"}},"spec":{"nodeName":"n1","containers":[{"name":"c"}]},"status":{"phase":"Running"}}"#,
        )
        .unwrap();
        let info = scheduled.into_info().unwrap();
        assert_eq!((&*info.namespace, &*info.name, &*info.node_name), ("ns", "p", "n1"));
        let pending: LeanPod = serde_json::from_str(r#"{"metadata":{"name":"p","namespace":"ns"},"spec":{}}"#).unwrap();
        assert!(pending.into_info().is_none());
    }
}
