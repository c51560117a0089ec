//! Where to reach a node's kubelet: the address picked by `--kubelet-preferred-address-types`,
//! the port (`--kubelet-port`, or the node status port with `--kubelet-use-node-status-port`),
//! and the path (`/metrics/resource`), as upstream builds them.

use std::net::IpAddr;

use crate::inventory::NodeInfo;

/// The node address types upstream knows, in its default priority order.
pub const DEFAULT_ADDRESS_TYPES: [&str; 5] = ["Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP"];

/// Why a node has no kubelet endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Upstream's wording, with the configured list in Go's `%v` form.
    #[error("no address matched types [{}]", .preferred.join(" "))]
    NoMatchingAddress { preferred: Vec<String> },
}

/// How to build kubelet URLs for every node.
#[derive(Debug, Clone)]
pub struct AddressResolver {
    preferred: Vec<String>,
    default_port: u16,
    use_node_status_port: bool,
    scheme: &'static str,
}

impl AddressResolver {
    pub fn new(preferred: Vec<String>, default_port: u16, use_node_status_port: bool, plain_http: bool) -> Self {
        AddressResolver {
            preferred,
            default_port,
            use_node_status_port,
            scheme: if plain_http { "http" } else { "https" },
        }
    }

    /// The address chosen for `node`: for each preferred type in order, the first address of
    /// that type in the node's list.
    pub fn address<'n>(&self, node: &'n NodeInfo) -> Result<&'n str, AddressError> {
        self.preferred
            .iter()
            .find_map(|wanted| {
                node.addresses
                    .iter()
                    .find(|a| &a.address_type == wanted)
                    .map(|a| a.address.as_str())
            })
            .ok_or_else(|| AddressError::NoMatchingAddress {
                preferred: self.preferred.clone(),
            })
    }

    pub fn port(&self, node: &NodeInfo) -> u16 {
        if self.use_node_status_port && node.kubelet_status_port != 0 {
            node.kubelet_status_port
        } else {
            self.default_port
        }
    }

    /// `<scheme>://<host:port>/metrics/resource`, with IPv6 literals in brackets.
    pub fn url(&self, node: &NodeInfo) -> Result<String, AddressError> {
        let address = self.address(node)?;
        let port = self.port(node);
        Ok(match address.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("{}://[{v6}]:{port}/metrics/resource", self.scheme),
            _ => format!("{}://{address}:{port}/metrics/resource", self.scheme),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::NodeAddress;

    fn node(addresses: &[(&str, &str)], status_port: u16) -> NodeInfo {
        NodeInfo {
            name: "node1".into(),
            labels: Default::default(),
            addresses: addresses
                .iter()
                .map(|(t, a)| NodeAddress {
                    address_type: (*t).into(),
                    address: (*a).into(),
                })
                .collect(),
            kubelet_status_port: status_port,
        }
    }

    fn resolver(types: &[&str], use_status_port: bool) -> AddressResolver {
        AddressResolver::new(
            types.iter().map(|t| (*t).into()).collect(),
            10250,
            use_status_port,
            false,
        )
    }

    #[test]
    fn type_priority_wins_over_list_order() {
        let n = node(&[("InternalIP", "10.0.1.2"), ("Hostname", "node1.somedomain")], 0);
        let defaults = resolver(&DEFAULT_ADDRESS_TYPES, false);
        assert_eq!(
            defaults.url(&n).unwrap(),
            "https://node1.somedomain:10250/metrics/resource"
        );
        let manifest = resolver(&["InternalIP", "ExternalIP", "Hostname"], false);
        assert_eq!(manifest.url(&n).unwrap(), "https://10.0.1.2:10250/metrics/resource");
    }

    #[test]
    fn first_address_of_a_type_wins() {
        let n = node(&[("InternalIP", "10.0.1.2"), ("InternalIP", "10.0.1.3")], 0);
        assert_eq!(resolver(&["InternalIP"], false).address(&n).unwrap(), "10.0.1.2");
    }

    #[test]
    fn ipv6_literals_are_bracketed() {
        let n = node(&[("InternalIP", "fd00::1")], 0);
        assert_eq!(
            resolver(&["InternalIP"], false).url(&n).unwrap(),
            "https://[fd00::1]:10250/metrics/resource"
        );
    }

    #[test]
    fn node_status_port_is_used_only_when_asked_and_reported() {
        let reported = node(&[("InternalIP", "10.0.1.2")], 10255);
        let unreported = node(&[("InternalIP", "10.0.1.2")], 0);
        assert_eq!(resolver(&["InternalIP"], true).port(&reported), 10255);
        assert_eq!(resolver(&["InternalIP"], true).port(&unreported), 10250);
        assert_eq!(resolver(&["InternalIP"], false).port(&reported), 10250);
    }

    #[test]
    fn no_matching_address_names_the_types_as_upstream() {
        let n = node(&[("ExternalIP", "1.2.3.4")], 0);
        let err = resolver(&DEFAULT_ADDRESS_TYPES[..3], false).url(&n).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no address matched types [Hostname InternalDNS InternalIP]"
        );
    }

    #[test]
    fn completely_insecure_uses_plain_http() {
        let n = node(&[("InternalIP", "10.0.1.2")], 0);
        let r = AddressResolver::new(vec!["InternalIP".into()], 10255, false, true);
        assert_eq!(r.url(&n).unwrap(), "http://10.0.1.2:10255/metrics/resource");
    }
}
