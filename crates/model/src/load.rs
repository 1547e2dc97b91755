//! stub
/// stub
#[derive(Debug)]
pub struct Document;
/// stub
#[derive(Debug)]
pub struct DocumentSource;
/// stub
#[derive(Debug)]
pub struct LoadOptions;
/// stub
#[derive(Debug)]
pub struct Loaded;
/// stub
#[derive(Debug)]
pub struct Loader;
/// stub
#[derive(Debug)]
pub enum Object {}
/// stub
#[derive(Debug)]
pub struct SkippedDocument;
