//! The path parameters of the routes, each described once for the OpenAPI
//! document: a handler's `#[utoipa::path]` lists `params(AssetIdPath)`
//! instead of repeating `("asset_id" = String, Path, description = "Asset id")`.
//! They only document: handlers still take the values with `ApiPath<String>`
//! (a tuple for several), in the order of the path.

/// One `IntoParams` type per line: `Type { name: type } "description"`.
macro_rules! path_params {
    ($($type:ident { $name:ident: $ty:ty } $description:literal;)*) => {$(
        #[derive(utoipa::IntoParams)]
        #[into_params(parameter_in = Path)]
        #[allow(dead_code, reason = "documents a path parameter; handlers extract it with ApiPath")]
        pub(crate) struct $type {
            #[doc = $description]
            $name: $ty,
        }
    )*};
}

path_params! {
    AssetIdPath { asset_id: String } "Asset id";
    ProjectIdPath { project_id: String } "Project id";
    MemberIdPath { user_id: String } "User id of the member";
    CollectionIdPath { collection_id: String } "Collection id";
    ContentIdPath { content_id: String } "Content version id";
    ContentIdOrLatestPath { content_id: String } "Content version id, or `latest`";
    FileIndexPath { file_index: u32 } "File index in the content version";
    UploadIdPath { upload_id: String } "Upload session id";
    ChunkIndexPath { chunk_index: u64 } "Chunk index in the file";
    SingleUploadKeyPath { key: String } "The key the upload was sent with";
}
