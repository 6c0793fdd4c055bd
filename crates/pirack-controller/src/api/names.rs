//! Customers' own names: the ordinary records (A, AAAA, CNAME, MX, TXT, SRV, CAA)
//! of names in the zones each owner is allowed (`owners[].zones`), published by
//! the DNS publisher beside the slots' names. What customers use it for above all:
//! `_acme-challenge` TXT records for Let's Encrypt's dns-01. A customer sees and
//! changes only its own names.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl};
use crate::store::names::NameRow;
use axum::Json;
use axum::extract::{Path, State};
use pirack_core::dns::names::{absolute, in_zone};
use pirack_core::dns::{CNAME, CUSTOMER_TYPES, Record, TXT, type_code};
use serde::Deserialize;
use utoipa::ToSchema;

/// Records a name may hold: a bound on what one token can make the servers carry.
const MAX_RECORDS: usize = 32;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRequest {
    /// The customer [admins only; default: the token's own].
    #[serde(default)]
    pub owner: Option<String>,
    /// The name's records, replacing what it held.
    pub records: Vec<RecordRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRequest {
    /// A, AAAA, CNAME, MX, TXT, SRV or CAA.
    #[serde(rename = "type")]
    pub rtype: String,
    /// The data in zone-file form (`10 mail.example.com.`); a TXT's text as is.
    pub data: String,
    /// Seconds, 60-86400 [default: 300].
    #[serde(default)]
    pub ttl: Option<u32>,
}

/// The names the caller manages (every customer's, for an admin).
#[utoipa::path(get, path = "/v1/names", tag = "dns",
    responses((status = 200, body = [Object]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(ctl): Ctl, caller: Caller) -> Result<Json<Vec<NameRow>>, ApiError> {
    Ok(Json(ctl.store.names(caller.owner()).await?))
}

/// Sets a name's records (in a zone its owner is allowed); published at once.
#[utoipa::path(put, path = "/v1/names/{name}", tag = "dns", request_body = NameRequest,
    params(("name" = String, Path, description = "the fully qualified name")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(ctl): Ctl,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<NameRequest>,
) -> Result<Json<NameRow>, ApiError> {
    if !ctl.dns.configured() {
        return Err(super::dns::not_configured());
    }
    let owner = match (caller.owner(), req.owner) {
        (Some(me), None) => me.to_string(),
        (Some(me), Some(o)) if o == me => o,
        (Some(_), Some(_)) => {
            return Err(ApiError::forbidden(
                "a customer token manages its own names only",
            ));
        }
        (None, Some(o)) => o,
        (None, None) => return Err(ApiError::bad_request("name the owner")),
    };
    let name = absolute(&name);
    let zones = ctl.dns.zones_of(&owner);
    let Some(zone) = zones.iter().find(|z| in_zone(&name, z)) else {
        return Err(ApiError::forbidden(format!(
            "{name} is in none of {owner}'s zones ({})",
            zones.join(", ")
        )));
    };
    if req.records.is_empty() || req.records.len() > MAX_RECORDS {
        return Err(ApiError::bad_request(format!(
            "give 1 to {MAX_RECORDS} records (DELETE removes a name)"
        )));
    }
    let mut records = Vec::new();
    for r in &req.records {
        let rtype = type_code(&r.rtype.to_ascii_uppercase())
            .filter(|t| CUSTOMER_TYPES.contains(t))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "type {} is not one of A, AAAA, CNAME, MX, TXT, SRV, CAA",
                    r.rtype
                ))
            })?;
        let ttl = r.ttl.unwrap_or(300);
        if !(60..=86_400).contains(&ttl) {
            return Err(ApiError::bad_request(format!(
                "ttl {ttl} is outside 60..=86400"
            )));
        }
        if rtype == TXT && (r.data.len() > 255 || r.data.chars().any(char::is_control)) {
            return Err(ApiError::bad_request(
                "a TXT's text is at most 255 printable bytes",
            ));
        }
        let record: Record = pirack_dns::wire::parse(&name, ttl, rtype, &r.data)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        records.push(record);
    }
    if records.iter().any(|r| r.data.rtype() == CNAME) && (records.len() > 1 || name == *zone) {
        return Err(ApiError::bad_request(
            "a CNAME stands alone, and not at a zone's apex",
        ));
    }
    let row = ctl
        .store
        .put_name(&name, &owner, &records)
        .await?
        .ok_or_else(|| ApiError::conflict(format!("{name} is another owner's")))?;
    ctl.dns.kick();
    Ok(Json(row))
}

/// Removes a name the caller manages; its records go from the zone at once.
#[utoipa::path(delete, path = "/v1/names/{name}", tag = "dns",
    params(("name" = String, Path, description = "the fully qualified name")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(ctl): Ctl,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = absolute(&name);
    if !ctl.store.delete_name(&name, caller.owner()).await? {
        return Err(ApiError::not_found(format!("no name {name}")));
    }
    ctl.dns.kick();
    Ok(Json(serde_json::json!({ "deleted": name })))
}
