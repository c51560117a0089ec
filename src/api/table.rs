//! `meta.k8s.io` Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, or
//! `v1beta1`), which `kubectl get nodemetrics` and `kubectl get podmetrics` print (spec §3.7).
//!
//! The JSON follows Go's structs and tags exactly:
//! * `metav1.Table`: `kind`, `apiVersion` (`meta.k8s.io/<v>`), then `metadata` (a `ListMeta`
//!   whose fields are all `omitempty`; the resourceVersion and continue upstream copies are
//!   empty, so it is `{}`), `columnDefinitions`, `rows`. The last two have no `omitempty`, and
//!   upstream builds them only from items, so an empty list has **no** column definitions and
//!   no rows: both are nil slices, written as `null`.
//! * `TableColumnDefinition`: `name`, `type`, `format`, `description`, `priority`, none
//!   omitted (so `"description":""` and `"priority":0` appear). Columns: `Name` (string, format
//!   `name`, "Name of the resource"), one per resource name sorted (`cpu`, `memory`; string,
//!   format `quantity`), `Window` (string, format `duration`). Upstream takes the resource names
//!   from the first item; ours always has both.
//! * `TableRow`: `cells`, then `conditions` (omitted: never set), then `object` (a
//!   `RawExtension`, a struct, so `omitempty` never drops it). Cells are the name, the usage
//!   quantities (a pod's summed over its containers), and the window as Go prints durations.
//! * `object` depends on `?includeObject=`: `Metadata` (the default) is a
//!   `PartialObjectMetadata` in the Table's own group version with the item's `ObjectMeta`;
//!   `Object` is the whole item as the JSON API serves it; `None` is `null`. Anything else is a
//!   400, as the apiserver answers.

use super::encode::{pod_total, Document, Encode, NodeItem, PodItem};
use super::go_duration::write_go_duration;
use super::json::{self, write_str};
use super::quantity::{write_cpu, write_memory};
use super::selectors::form_pairs;
use super::ApiError;
use crate::apiserver::negotiate::TableVersion;
use crate::apiserver::status::go_quote;
use crate::inventory::Labels;
use crate::kubelet::Timestamp;
use crate::store::Usage;

/// What each row's `object` holds (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    /// `PartialObjectMetadata`: the apiserver's default.
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// Reads `includeObject` from the query; the first value counts, as the apiserver's
    /// parameter conversion takes the first of a repeated parameter.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let value = form_pairs(query.unwrap_or(""))
            .find(|(key, _)| key == "includeObject")
            .map(|(_, value)| value);
        match value.as_deref() {
            None | Some("" | "Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(ApiError::BadRequest(format!(
                "unrecognized includeObject value: {}",
                go_quote(other)
            ))),
        }
    }
}

/// The column definitions every non-empty metrics Table has.
const COLUMNS: &str = concat!(
    r#"[{"name":"Name","type":"string","format":"name","description":"Name of the resource","priority":0},"#,
    r#"{"name":"cpu","type":"string","format":"quantity","description":"","priority":0},"#,
    r#"{"name":"memory","type":"string","format":"quantity","description":"","priority":0},"#,
    r#"{"name":"Window","type":"string","format":"duration","description":"","priority":0}]"#,
);

/// Writes one Table for a get or a list.
#[derive(Debug)]
pub struct Encoder<'v> {
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    table_api_version: &'static str,
    include: IncludeObject,
    /// Writes whole objects and `ObjectMeta`.
    objects: json::Encoder<'v>,
    rows: usize,
    scratch: String,
}

impl<'v> Encoder<'v> {
    /// `api_version` is the metrics group version, for `includeObject=Object`.
    pub fn new(version: TableVersion, include: IncludeObject, api_version: &'v str, created: Timestamp) -> Self {
        Encoder {
            table_api_version: match version {
                TableVersion::V1 => "meta.k8s.io/v1",
                TableVersion::V1beta1 => "meta.k8s.io/v1beta1",
            },
            include,
            objects: json::Encoder::new(api_version, created),
            rows: 0,
            scratch: String::with_capacity(32),
        }
    }

    /// `,` between rows, or the column definitions and `"rows":[` before the first.
    fn start_row(&mut self, out: &mut Vec<u8>) {
        if self.rows == 0 {
            out.extend_from_slice(b"\"columnDefinitions\":");
            out.extend_from_slice(COLUMNS.as_bytes());
            out.extend_from_slice(b",\"rows\":[");
        } else {
            out.push(b',');
        }
        self.rows += 1;
    }

    fn cells(&mut self, out: &mut Vec<u8>, name: &str, usage: Usage, window: std::time::Duration) {
        out.extend_from_slice(b"{\"cells\":[");
        write_str(out, name);
        self.scratch.clear();
        write_cpu(usage.cpu_nanocores, &mut self.scratch);
        self.push_cell(out);
        self.scratch.clear();
        write_memory(usage.memory_bytes, &mut self.scratch);
        self.push_cell(out);
        self.scratch.clear();
        write_go_duration(window, &mut self.scratch);
        self.push_cell(out);
        out.extend_from_slice(b"],\"object\":");
    }

    /// `,"<scratch>"`: quantities and durations need no escaping.
    fn push_cell(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(self.scratch.as_bytes());
        out.push(b'"');
    }

    fn partial_metadata(&self, out: &mut Vec<u8>, name: &str, namespace: Option<&str>, labels: &Labels) {
        out.extend_from_slice(b"{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"");
        out.extend_from_slice(self.table_api_version.as_bytes());
        out.extend_from_slice(b"\",\"metadata\":");
        self.objects.write_metadata(out, name, namespace, labels);
        out.push(b'}');
    }
}

impl Encode for Encoder<'_> {
    fn begin(&mut self, out: &mut Vec<u8>, _document: Document) {
        out.extend_from_slice(b"{\"kind\":\"Table\",\"apiVersion\":\"");
        out.extend_from_slice(self.table_api_version.as_bytes());
        out.extend_from_slice(b"\",\"metadata\":{},");
    }

    fn node(&mut self, out: &mut Vec<u8>, node: &NodeItem<'_>) {
        self.start_row(out);
        self.cells(out, node.name, node.usage, node.window);
        match self.include {
            IncludeObject::None => out.extend_from_slice(b"null"),
            IncludeObject::Metadata => self.partial_metadata(out, node.name, None, node.labels),
            IncludeObject::Object => self.objects.write_node(out, node),
        }
        out.push(b'}');
    }

    fn pod(&mut self, out: &mut Vec<u8>, pod: &PodItem<'_>) {
        self.start_row(out);
        self.cells(out, pod.name, pod_total(pod.usage), pod.usage.window);
        match self.include {
            IncludeObject::None => out.extend_from_slice(b"null"),
            IncludeObject::Metadata => self.partial_metadata(out, pod.name, Some(pod.namespace), pod.labels),
            IncludeObject::Object => self.objects.write_pod(out, pod),
        }
        out.push(b'}');
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> usize {
        if self.rows == 0 {
            out.extend_from_slice(b"\"columnDefinitions\":null,\"rows\":null}\n");
        } else {
            out.extend_from_slice(b"]}\n");
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{ContainerUsage, PodUsage};

    fn render(include: IncludeObject, version: TableVersion, items: &[PodUsage]) -> String {
        let labels: Labels = [("app".to_owned(), "x".to_owned())].into_iter().collect();
        let mut e = Encoder::new(
            version,
            include,
            "metrics.k8s.io/v1",
            Timestamp::from_unix_seconds(1_633_253_900),
        );
        let mut out = Vec::new();
        e.begin(&mut out, Document::PodMetricsList);
        for (i, usage) in items.iter().enumerate() {
            let name = format!("pod{}", i + 1);
            e.pod(
                &mut out,
                &PodItem {
                    namespace: "ns",
                    name: &name,
                    labels: &labels,
                    usage,
                },
            );
        }
        assert_eq!(e.finish(&mut out), 0);
        String::from_utf8(out).unwrap()
    }

    fn container(name: &str, cpu_nanocores: u64, memory_bytes: u64) -> ContainerUsage {
        ContainerUsage {
            name: name.into(),
            usage: Usage {
                cpu_nanocores,
                memory_bytes,
            },
        }
    }

    /// Upstream's table_test vector: a cpu-only and a memory-only container sum to one row.
    #[test]
    fn pod_rows_sum_containers_and_carry_partial_metadata() {
        let pod = PodUsage {
            timestamp: Timestamp::from_unix_seconds(1_633_253_890),
            window: Duration::from_micros(1),
            containers: vec![container("a", 10_000_000, 0), container("b", 0, 5 << 20)],
        };
        assert_eq!(
            render(IncludeObject::Metadata, TableVersion::V1, &[pod]),
            format!(
                "{{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{{}},\"columnDefinitions\":{COLUMNS},\"rows\":[{{\"cells\":[\"pod1\",\"10m\",\"5Mi\",\"1\u{b5}s\"],\"object\":{{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{{\"name\":\"pod1\",\"namespace\":\"ns\",\"creationTimestamp\":\"2021-10-03T09:38:20Z\",\"labels\":{{\"app\":\"x\"}}}}}}}}]}}\n"
            )
        );
    }

    #[test]
    fn empty_tables_have_null_columns_and_rows() {
        assert_eq!(
            render(IncludeObject::Metadata, TableVersion::V1beta1, &[]),
            "{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1beta1\",\"metadata\":{},\"columnDefinitions\":null,\"rows\":null}\n"
        );
    }

    #[test]
    fn include_object_none_and_object() {
        let pod = PodUsage {
            timestamp: Timestamp::from_unix_seconds(1_633_253_890),
            window: Duration::from_secs(10),
            containers: vec![container("a", 1_000_000_000, 1024)],
        };
        let none = render(IncludeObject::None, TableVersion::V1, std::slice::from_ref(&pod));
        assert!(
            none.ends_with("\"cells\":[\"pod1\",\"1\",\"1Ki\",\"10s\"],\"object\":null}]}\n"),
            "{none}"
        );
        let object = render(IncludeObject::Object, TableVersion::V1, &[pod]);
        assert!(
            object.contains("\"object\":{\"kind\":\"PodMetrics\",\"apiVersion\":\"metrics.k8s.io/v1\",\"metadata\":{\"name\":\"pod1\",\"namespace\":\"ns\","),
            "{object}"
        );
        assert!(
            object.ends_with("\"containers\":[{\"name\":\"a\",\"usage\":{\"cpu\":\"1\",\"memory\":\"1Ki\"}}]}}]}\n"),
            "{object}"
        );
    }

    #[test]
    fn include_object_is_read_from_the_query() {
        let q = |s| IncludeObject::from_query(Some(s));
        assert_eq!(IncludeObject::from_query(None), Ok(IncludeObject::Metadata));
        assert_eq!(q("includeObject=None"), Ok(IncludeObject::None));
        assert_eq!(q("includeObject=Object&limit=1"), Ok(IncludeObject::Object));
        assert_eq!(q("includeObject="), Ok(IncludeObject::Metadata));
        assert_eq!(q("includeObject=None&includeObject=bad"), Ok(IncludeObject::None));
        assert_eq!(
            q("includeObject=all"),
            Err(ApiError::BadRequest("unrecognized includeObject value: \"all\"".into()))
        );
    }
}
