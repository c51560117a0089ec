//! The operations of one served version, for OpenAPI v2 and v3: the group version's discovery
//! document, then get and list of NodeMetrics and PodMetrics on every path the API serves.
//! Operation ids follow upstream's scheme (`listMetricsV1beta1NodeMetrics`, …) so tools that
//! key on them keep working.

use serde_json::{json, Map, Value};

use super::schemas::{metrics_package, META};
use super::Flavor;
use crate::api::GROUP;

/// Query parameters a list accepts: selectors are honoured, the rest accepted and ignored
/// (watch is refused with 405), as upstream.
const LIST_PARAMETERS: [(&str, &str, &str); 10] = [
    (
        "allowWatchBookmarks",
        "boolean",
        "Ignored: this API does not serve watches.",
    ),
    ("continue", "string", "Ignored: lists are never paged."),
    (
        "fieldSelector",
        "string",
        "Only `metadata.name` and `metadata.namespace` are supported.",
    ),
    (
        "labelSelector",
        "string",
        "Keep only objects whose labels match this selector.",
    ),
    ("limit", "integer", "Ignored: lists are never paged."),
    ("resourceVersion", "string", "Ignored: lists are always current."),
    ("resourceVersionMatch", "string", "Ignored: lists are always current."),
    (
        "sendInitialEvents",
        "boolean",
        "Ignored: this API does not serve watches.",
    ),
    ("timeoutSeconds", "integer", "Ignored."),
    ("watch", "boolean", "Not supported: a watch is answered 405."),
];

/// A query or path parameter.
fn parameter(flavor: Flavor, name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = Map::new();
    p.insert("name".to_owned(), json!(name));
    p.insert("in".to_owned(), json!(location));
    p.insert("description".to_owned(), json!(description));
    if location == "path" {
        p.insert("required".to_owned(), json!(true));
    }
    let mut ty_schema = Map::new();
    ty_schema.insert("type".to_owned(), json!(ty));
    if ty == "integer" {
        ty_schema.insert("format".to_owned(), json!("int32"));
    }
    match flavor {
        Flavor::V2 => {
            p.extend(ty_schema);
            p.insert("uniqueItems".to_owned(), json!(true));
        }
        Flavor::V3 => {
            p.insert("schema".to_owned(), Value::Object(ty_schema));
        }
    }
    Value::Object(p)
}

/// `listMetricsV1beta1NodeMetrics` and friends: `Metrics` from the group, the version
/// capitalised.
fn operation_id(verb: &str, version: &str, rest: &str) -> String {
    let mut v = version.to_owned();
    if let Some(first) = v.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    format!("{verb}Metrics{v}{rest}")
}

/// One GET operation returning `definition`.
#[allow(clippy::too_many_arguments)] // the parts of an operation object, each its own field
fn get(
    flavor: Flavor,
    id: String,
    description: &str,
    action: &str,
    definition: &str,
    kind: Option<(&str, &str)>,
    tag: &str,
    parameters: Vec<Value>,
) -> Value {
    let schema = match flavor {
        Flavor::V2 => json!({ "$ref": format!("#/definitions/{definition}") }),
        Flavor::V3 => json!({ "$ref": format!("#/components/schemas/{definition}") }),
    };
    let ok = match flavor {
        Flavor::V2 => json!({"description": "OK", "schema": schema}),
        Flavor::V3 => json!({
            "description": "OK",
            "content": {
                "application/json": {"schema": schema.clone()},
                "application/vnd.kubernetes.protobuf": {"schema": schema},
            }
        }),
    };
    let mut op = Map::new();
    op.insert("description".to_owned(), json!(description));
    op.insert("operationId".to_owned(), json!(id));
    op.insert("tags".to_owned(), json!([tag]));
    op.insert(
        "responses".to_owned(),
        json!({"200": ok, "401": {"description": "Unauthorized"}}),
    );
    if !parameters.is_empty() {
        op.insert("parameters".to_owned(), Value::Array(parameters));
    }
    if let Flavor::V2 = flavor {
        op.insert("consumes".to_owned(), json!(["*/*"]));
        op.insert(
            "produces".to_owned(),
            json!(["application/json", "application/vnd.kubernetes.protobuf"]),
        );
        op.insert("schemes".to_owned(), json!(["https"]));
    }
    if let Some((group_version, kind)) = kind {
        let (group, version) = group_version.split_once('/').unwrap_or(("", group_version));
        op.insert("x-kubernetes-action".to_owned(), json!(action));
        op.insert(
            "x-kubernetes-group-version-kind".to_owned(),
            json!({"group": group, "kind": kind, "version": version}),
        );
    }
    json!({ "get": op })
}

/// Every path of `version`, keyed as in the document (with the leading `/`).
pub(crate) fn paths(flavor: Flavor, version: &str) -> Map<String, Value> {
    let base = format!("/apis/{GROUP}/{version}");
    let package = metrics_package(version);
    let gv = format!("{GROUP}/{version}");
    let tag = format!("metrics_{version}");
    let pretty = || {
        parameter(
            flavor,
            "pretty",
            "query",
            "string",
            "Ignored: output is never indented.",
        )
    };
    let name = |what: &str| parameter(flavor, "name", "path", "string", what);
    let namespace = || parameter(flavor, "namespace", "path", "string", "Namespace of the pods.");
    let list = |extra: Vec<Value>| {
        let mut p = extra;
        p.extend(
            LIST_PARAMETERS
                .iter()
                .map(|(n, ty, d)| parameter(flavor, n, "query", ty, d)),
        );
        p.push(pretty());
        p
    };
    let op = |id: &str, description: &str, action: &str, kind: &str, parameters| {
        get(
            flavor,
            operation_id(action_verb(action), version, id),
            description,
            action,
            &format!("{package}.{kind}"),
            Some((&gv, kind.trim_end_matches("List"))),
            &tag,
            parameters,
        )
    };
    let mut paths = Map::new();
    paths.insert(
        format!("{base}/"),
        get(
            flavor,
            operation_id("get", version, "APIResources"),
            "Lists the resources of this group version.",
            "get",
            &format!("{META}.APIResourceList"),
            None,
            &tag,
            Vec::new(),
        ),
    );
    paths.insert(
        format!("{base}/nodes"),
        op(
            "NodeMetrics",
            "Lists the usage of every node.",
            "list",
            "NodeMetricsList",
            list(Vec::new()),
        ),
    );
    paths.insert(
        format!("{base}/nodes/{{name}}"),
        op(
            "NodeMetrics",
            "Reads the usage of one node.",
            "get",
            "NodeMetrics",
            vec![name("Name of the node."), pretty()],
        ),
    );
    paths.insert(
        format!("{base}/namespaces/{{namespace}}/pods"),
        op(
            "NamespacedPodMetrics",
            "Lists the usage of every pod of a namespace.",
            "list",
            "PodMetricsList",
            list(vec![namespace()]),
        ),
    );
    paths.insert(
        format!("{base}/namespaces/{{namespace}}/pods/{{name}}"),
        op(
            "NamespacedPodMetrics",
            "Reads the usage of one pod.",
            "get",
            "PodMetrics",
            vec![name("Name of the pod."), namespace(), pretty()],
        ),
    );
    paths.insert(
        format!("{base}/pods"),
        op(
            "PodMetricsForAllNamespaces",
            "Lists the usage of every pod.",
            "list",
            "PodMetricsList",
            list(Vec::new()),
        ),
    );
    paths
}

/// The operation id's verb for an `x-kubernetes-action`.
fn action_verb(action: &str) -> &str {
    match action {
        "get" => "read",
        other => other,
    }
}
