//! stub
/// stub
pub fn to_json() {}
/// stub
pub fn to_yaml() {}
