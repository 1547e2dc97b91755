//! stub
/// stub
#[derive(Debug)]
pub struct Location;
/// stub
#[derive(Debug)]
pub struct SourceMap;
