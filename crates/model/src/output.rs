//! Writing objects back as YAML or JSON.

use serde::Serialize;

/// Writes a value as YAML, omitting unset fields, so that loading the output gives an equal
/// value.
///
/// ```
/// use portcullis_model::{Loader, Object, to_yaml};
///
/// let text = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: reviews\n  trafficPolicy:\n    connectionPool: {tcp: {connectTimeout: 1.5s}}\n";
/// let loaded = Loader::new().load_str("dr.yaml", text)?;
/// let Object::DestinationRule(dr) = &loaded.documents()[0].object else { unreachable!() };
/// let yaml = to_yaml(dr).expect("serializable");
/// assert!(yaml.contains("connectTimeout: 1.500s"), "{yaml}");
/// let again = Loader::new().load_str("again.yaml", &yaml)?;
/// assert_eq!(again.documents()[0].object, loaded.documents()[0].object);
/// # Ok::<(), portcullis_model::LoadErrors>(())
/// ```
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

/// Writes a value as pretty-printed JSON, omitting unset fields.
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value)
}
