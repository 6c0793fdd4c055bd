//! The images slots can be provisioned with, and whether each is qualified
//! (booted on virtual Pis by `pirack image qualify` and passed its checks).
//! Every token sees them: images are the site's offer, not a customer's.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::Ctl;
use crate::roots::image::{self, ImageError, Manifest};
use crate::roots::qualification::{self, Qualification};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

/// An image in the store.
#[derive(Debug, Serialize, ToSchema)]
pub struct Image {
    /// `name-version`, as provisioning names it.
    pub id: String,
    pub name: String,
    pub version: String,
    pub kernel: String,
    /// The image's part of the kernel command line.
    pub cmdline: String,
    /// The checksum over its whole root tree.
    pub root_checksum: String,
    /// Its last qualification's verdict; none if it was never qualified.
    pub qualification: Option<Qualification>,
}

fn view(store: &std::path::Path, m: Manifest) -> Result<Image, ImageError> {
    let id = m.id();
    Ok(Image {
        qualification: qualification::read(store, &id)?,
        id,
        name: m.name,
        version: m.version,
        kernel: m.kernel,
        cmdline: m.cmdline,
        root_checksum: m.checksums.root,
    })
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| match e {
            ImageError::Unknown(_) | ImageError::BadName(_) => ApiError::not_found(e.to_string()),
            e => ApiError::internal(e.to_string()),
        })
}

/// Every image in the store, by id.
#[utoipa::path(get, path = "/v1/images", tag = "images",
    responses((status = 200, body = [Image]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(ctl): Ctl, _caller: Caller) -> Result<Json<Vec<Image>>, ApiError> {
    let store = ctl.paths.images.clone();
    let images = blocking(move || {
        image::list(&store)?
            .into_iter()
            .map(|m| view(&store, m))
            .collect()
    })
    .await?;
    Ok(Json(images))
}

/// One image and its qualification.
#[utoipa::path(get, path = "/v1/images/{id}", tag = "images",
    params(("id" = String, Path, description = "the image's `name-version`")),
    responses((status = 200, body = Image), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(ctl): Ctl,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Image>, ApiError> {
    let store = ctl.paths.images.clone();
    let image = blocking(move || view(&store, image::show(&store, &id)?)).await?;
    Ok(Json(image))
}
