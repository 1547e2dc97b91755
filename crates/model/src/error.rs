//! stub
/// stub
#[derive(Debug)]
pub struct LoadError;
/// stub
#[derive(Debug)]
pub struct LoadErrors;
/// stub
#[derive(Debug)]
pub struct LoadWarning;
