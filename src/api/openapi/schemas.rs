//! The schemas of every type the API serves or references, described once and rendered for
//! OpenAPI v2 (`#/definitions/…`, `$ref` beside a description) and v3 (`#/components/schemas/…`,
//! `allOf: [$ref]` so the description is not ignored). Names are the Go package paths
//! upstream's generator uses (`io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics`,
//! `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, …), so the aggregator merges them with
//! the cluster's own meta types. Descriptions are ours.

use serde_json::{json, Map, Value};

use super::Flavor;
use crate::api::GROUP;

/// A field's type.
#[derive(Debug, Clone)]
pub(crate) enum Ty {
    Str,
    Bool,
    Int64,
    /// An array of strings.
    Strs,
    /// A named definition.
    Ref(String),
    /// An array of a named definition.
    ArrayOf(String),
    /// A map from string to a named definition.
    MapOf(String),
    /// A map from string to string.
    StrMap,
}

/// One property of an object schema.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) description: &'static str,
    pub(crate) required: bool,
}

fn field(name: &'static str, ty: Ty, description: &'static str) -> Field {
    Field {
        name,
        ty,
        description,
        required: false,
    }
}

fn required(name: &'static str, ty: Ty, description: &'static str) -> Field {
    Field {
        name,
        ty,
        description,
        required: true,
    }
}

/// What a definition is.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Object(Vec<Field>),
    /// A type serialized as one JSON scalar (`Time`, `Quantity`, …): type and format.
    Scalar(&'static str, Option<&'static str>),
}

/// A named schema.
#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub(crate) name: String,
    pub(crate) description: &'static str,
    pub(crate) shape: Shape,
    /// `(group, version, kind)` for kinds the server returns.
    pub(crate) gvk: Option<(&'static str, String, &'static str)>,
}

pub(crate) const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const DURATION: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Duration";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

const API_VERSION: &str = "Versioned schema of this object: the group and version the server used to encode it.";
const KIND: &str = "Type of this object, in CamelCase.";

/// `io.k8s.metrics.pkg.apis.metrics.<version>`.
pub(crate) fn metrics_package(version: &str) -> String {
    format!("io.k8s.metrics.pkg.apis.metrics.{version}")
}

/// A reference to a named definition.
fn to(name: &str) -> Ty {
    Ty::Ref(name.to_owned())
}

/// The metrics types of one version.
pub(crate) fn metrics_definitions(version: &'static str) -> Vec<Definition> {
    let package = metrics_package(version);
    let name = |kind: &str| format!("{package}.{kind}");
    let gvk = |kind| Some((GROUP, version.to_owned(), kind));
    let usage = "Resource usage: average CPU over the window, working-set memory at its end.";
    let timestamp = "When the last sample of the window was taken (RFC 3339, whole seconds).";
    let window = "Time between the two samples the usage was computed from.";
    vec![
        Definition {
            name: name("ContainerMetrics"),
            description: "Resource usage of one container of a pod.",
            shape: Shape::Object(vec![
                required("name", Ty::Str, "Name of the container, as in the pod spec."),
                required("usage", Ty::MapOf(QUANTITY.to_owned()), usage),
            ]),
            gvk: None,
        },
        Definition {
            name: name("NodeMetrics"),
            description: "Resource usage of a node.",
            shape: Shape::Object(vec![
                field("apiVersion", Ty::Str, API_VERSION),
                field("kind", Ty::Str, KIND),
                field("metadata", to(OBJECT_META), "The node's name and labels."),
                required("timestamp", to(TIME), timestamp),
                required("window", to(DURATION), window),
                required("usage", Ty::MapOf(QUANTITY.to_owned()), usage),
            ]),
            gvk: gvk("NodeMetrics"),
        },
        Definition {
            name: name("NodeMetricsList"),
            description: "A list of NodeMetrics.",
            shape: Shape::Object(vec![
                field("apiVersion", Ty::Str, API_VERSION),
                required("items", Ty::ArrayOf(name("NodeMetrics")), "The node metrics."),
                field("kind", Ty::Str, KIND),
                field("metadata", to(LIST_META), "List metadata (always empty here)."),
            ]),
            gvk: gvk("NodeMetricsList"),
        },
        Definition {
            name: name("PodMetrics"),
            description: "Resource usage of a pod, per container.",
            shape: Shape::Object(vec![
                field("apiVersion", Ty::Str, API_VERSION),
                field(
                    "containers",
                    Ty::ArrayOf(name("ContainerMetrics")),
                    "Usage of each container.",
                ),
                field("kind", Ty::Str, KIND),
                field("metadata", to(OBJECT_META), "The pod's name, namespace and labels."),
                required("timestamp", to(TIME), timestamp),
                required("window", to(DURATION), window),
            ]),
            gvk: gvk("PodMetrics"),
        },
        Definition {
            name: name("PodMetricsList"),
            description: "A list of PodMetrics.",
            shape: Shape::Object(vec![
                field("apiVersion", Ty::Str, API_VERSION),
                required("items", Ty::ArrayOf(name("PodMetrics")), "The pod metrics."),
                field("kind", Ty::Str, KIND),
                field("metadata", to(LIST_META), "List metadata (always empty here)."),
            ]),
            gvk: gvk("PodMetricsList"),
        },
    ]
}

/// The `meta.k8s.io` and `resource` types the metrics types and discovery paths reference.
pub(crate) fn meta_definitions() -> Vec<Definition> {
    let meta = |kind: &str| format!("{META}.{kind}");
    let scalar = |name: String, description, ty, format| Definition {
        name,
        description,
        shape: Shape::Scalar(ty, format),
        gvk: None,
    };
    let object = |name: String, description, fields| Definition {
        name,
        description,
        shape: Shape::Object(fields),
        gvk: None,
    };
    vec![
        object(
            meta("APIResource"),
            "One resource a group version serves.",
            vec![
                field("categories", Ty::Strs, "Groups of resources this one belongs to."),
                field(
                    "group",
                    Ty::Str,
                    "Group of the resource when it differs from the list's.",
                ),
                required("kind", Ty::Str, "Kind of the resource."),
                required("name", Ty::Str, "Plural name of the resource."),
                required("namespaced", Ty::Bool, "Whether the resource lives in namespaces."),
                field("shortNames", Ty::Strs, "Short aliases of the resource."),
                required("singularName", Ty::Str, "Singular name of the resource."),
                field(
                    "storageVersionHash",
                    Ty::Str,
                    "Hash of the version the resource is stored in.",
                ),
                required("verbs", Ty::Strs, "Verbs the resource supports."),
                field(
                    "version",
                    Ty::Str,
                    "Version of the resource when it differs from the list's.",
                ),
            ],
        ),
        Definition {
            name: meta("APIResourceList"),
            description: "The resources of one group version.",
            shape: Shape::Object(vec![
                field("apiVersion", Ty::Str, API_VERSION),
                required("groupVersion", Ty::Str, "The group version listed."),
                field("kind", Ty::Str, KIND),
                required("resources", Ty::ArrayOf(meta("APIResource")), "The resources."),
            ]),
            gvk: Some(("", "v1".to_owned(), "APIResourceList")),
        },
        scalar(
            meta("Duration"),
            "A span of time, written as Go prints durations (`1m30s`).",
            "string",
            None,
        ),
        object(
            meta("FieldsV1"),
            "A set of fields, in the server's field-set encoding.",
            vec![],
        ),
        object(
            meta("ListMeta"),
            "Metadata of a list.",
            vec![
                field("continue", Ty::Str, "Token to fetch the next page of a paged list."),
                field("remainingItemCount", Ty::Int64, "How many items a paged list has left."),
                field("resourceVersion", Ty::Str, "Version of the list, for watches."),
                field("selfLink", Ty::Str, "Deprecated; never set."),
            ],
        ),
        object(
            meta("ManagedFieldsEntry"),
            "Which manager owns which fields of an object.",
            vec![
                field("apiVersion", Ty::Str, "Version of the fields described."),
                field("fieldsType", Ty::Str, "Encoding of fieldsV1."),
                field("fieldsV1", Ty::Ref(meta("FieldsV1")), "The fields owned."),
                field("manager", Ty::Str, "Name of the manager."),
                field("operation", Ty::Str, "Apply or Update."),
                field("subresource", Ty::Str, "Subresource the fields were written through."),
                field("time", to(TIME), "When the fields were last changed."),
            ],
        ),
        object(
            meta("ObjectMeta"),
            "Metadata every object has; this API fills name, namespace, creationTimestamp and labels.",
            vec![
                field("annotations", Ty::StrMap, "Free-form key/value data for tools."),
                field(
                    "creationTimestamp",
                    to(TIME),
                    "For metrics: the time the response was built.",
                ),
                field(
                    "deletionGracePeriodSeconds",
                    Ty::Int64,
                    "Seconds allowed for a graceful deletion.",
                ),
                field("deletionTimestamp", to(TIME), "When the object will be deleted."),
                field("finalizers", Ty::Strs, "Conditions to meet before deletion."),
                field("generateName", Ty::Str, "Prefix for a server-generated name."),
                field("generation", Ty::Int64, "Sequence number of the desired state."),
                field(
                    "labels",
                    Ty::StrMap,
                    "Labels of the object (of the node or pod, for metrics).",
                ),
                field(
                    "managedFields",
                    Ty::ArrayOf(meta("ManagedFieldsEntry")),
                    "Field ownership.",
                ),
                field("name", Ty::Str, "Name of the object (of the node or pod, for metrics)."),
                field(
                    "namespace",
                    Ty::Str,
                    "Namespace of the object; empty for cluster-scoped ones.",
                ),
                field(
                    "ownerReferences",
                    Ty::ArrayOf(meta("OwnerReference")),
                    "Objects this one depends on.",
                ),
                field(
                    "resourceVersion",
                    Ty::Str,
                    "Version of the object, for optimistic concurrency.",
                ),
                field("selfLink", Ty::Str, "Deprecated; never set."),
                field("uid", Ty::Str, "Unique identifier of the object."),
            ],
        ),
        object(
            meta("OwnerReference"),
            "A reference to an owning object.",
            vec![
                required("apiVersion", Ty::Str, "Version of the owner."),
                field(
                    "blockOwnerDeletion",
                    Ty::Bool,
                    "Whether the owner waits for this object on deletion.",
                ),
                field("controller", Ty::Bool, "Whether the owner is the managing controller."),
                required("kind", Ty::Str, "Kind of the owner."),
                required("name", Ty::Str, "Name of the owner."),
                required("uid", Ty::Str, "UID of the owner."),
            ],
        ),
        scalar(
            meta("Time"),
            "An instant in RFC 3339 form, UTC, whole seconds.",
            "string",
            Some("date-time"),
        ),
        scalar(
            QUANTITY.to_owned(),
            "A fixed-point amount with an SI or binary suffix, e.g. `250m` (cores) or `128Mi` (bytes).",
            "string",
            None,
        ),
    ]
}

/// The reference prefix of a flavor.
fn ref_to(flavor: Flavor, name: &str) -> Value {
    let prefix = match flavor {
        Flavor::V2 => "#/definitions/",
        Flavor::V3 => "#/components/schemas/",
    };
    json!({ "$ref": format!("{prefix}{name}") })
}

/// The schema of a property of type `ty`.
fn property(flavor: Flavor, ty: &Ty, description: &str) -> Value {
    let mut schema = match ty {
        Ty::Str => json!({"type": "string", "default": ""}),
        Ty::Bool => json!({"type": "boolean"}),
        Ty::Int64 => json!({"type": "integer", "format": "int64"}),
        Ty::Strs => json!({"type": "array", "items": {"type": "string", "default": ""}}),
        Ty::StrMap => json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}}),
        Ty::ArrayOf(name) => json!({"type": "array", "items": ref_to(flavor, name)}),
        Ty::MapOf(name) => json!({"type": "object", "additionalProperties": ref_to(flavor, name)}),
        Ty::Ref(name) => match flavor {
            Flavor::V2 => ref_to(flavor, name),
            Flavor::V3 => json!({"allOf": [ref_to(flavor, name)]}),
        },
    };
    if let Value::Object(map) = &mut schema {
        map.insert("description".to_owned(), Value::from(description));
    }
    schema
}

/// A definition as a schema object.
pub(crate) fn render(flavor: Flavor, def: &Definition) -> Value {
    let mut schema = Map::new();
    schema.insert("description".to_owned(), Value::from(def.description));
    match &def.shape {
        Shape::Scalar(ty, format) => {
            schema.insert("type".to_owned(), Value::from(*ty));
            if let Some(format) = format {
                schema.insert("format".to_owned(), Value::from(*format));
            }
        }
        Shape::Object(fields) => {
            schema.insert("type".to_owned(), Value::from("object"));
            let properties: Map<String, Value> = fields
                .iter()
                .map(|f| (f.name.to_owned(), property(flavor, &f.ty, f.description)))
                .collect();
            if !properties.is_empty() {
                schema.insert("properties".to_owned(), Value::Object(properties));
            }
            let required: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
            if !required.is_empty() {
                schema.insert("required".to_owned(), json!(required));
            }
        }
    }
    if let Some((group, version, kind)) = &def.gvk {
        schema.insert(
            "x-kubernetes-group-version-kind".to_owned(),
            json!([{"group": group, "kind": kind, "version": version}]),
        );
    }
    Value::Object(schema)
}
