//! Customers' own names: the ordinary records (A, AAAA, CNAME, MX, TXT, SRV, CAA)
//! of names in the zones each owner is allowed (`owners[].zones`), and ANAME
//! names that follow a target's addresses, published by the DNS publisher beside
//! the slots' names. What customers use it for above all: `_acme-challenge` TXT
//! records for Let's Encrypt's dns-01, added and removed one at a time (PATCH)
//! so that two challenges at one name do not overwrite each other. A customer
//! sees and changes only its own names.

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::routes::{Body, Ctl};
use crate::Controller;
use crate::aname::{Anames, Live};
use crate::store::names::{Edited, NameRow};
use axum::Json;
use axum::extract::{Path, State};
use pirack_core::dns::aname::Status;
use pirack_core::dns::names::{absolute, in_zone, is_host, is_owner};
use pirack_core::dns::{CNAME, CUSTOMER_TYPES, Record, TXT, type_code};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Records a name may hold: a bound on what one token can make the servers carry.
const MAX_RECORDS: usize = 32;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameRequest {
    /// The customer [admins only; default: the token's own].
    #[serde(default)]
    pub owner: Option<String>,
    /// The name's records, replacing what it held (or give `aname`).
    #[serde(default)]
    pub records: Vec<RecordRequest>,
    /// Follow a target's addresses instead (ANAME).
    #[serde(default)]
    pub aname: Option<AnameRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnameRequest {
    /// The hostname whose AAAA and A records the name takes: one of the
    /// owner's slots, a name in its zones, or one `dns.aname.allow` admits.
    pub target: String,
    /// The most TTL the written records get, seconds, 60-86400 [default: 300].
    #[serde(default)]
    pub ttl: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    /// The customer [admins only; default: the token's own].
    #[serde(default)]
    pub owner: Option<String>,
    /// Records to add (one of the same type and data is replaced).
    #[serde(default)]
    pub add: Vec<RecordRequest>,
    /// Records to remove, matched by type and data.
    #[serde(default)]
    pub remove: Vec<RecordRequest>,
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

/// A name as the API shows it.
#[derive(Debug, Serialize)]
pub struct NameView {
    #[serde(flatten)]
    pub row: NameRow,
    /// Whether the primary server holds the name as it is now.
    pub published: bool,
    /// For an ANAME name: when its target was last and will next be resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<Live>,
    /// The site's authoritative servers (`address:port`), to check against.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
}

fn view(ctl: &Controller, row: NameRow, servers: bool) -> NameView {
    NameView {
        published: ctl.dns.published(&row.name, &row.records),
        refresh: row.aname.as_ref().and_then(|_| ctl.anames.live(&row.name)),
        servers: if servers {
            ctl.dns.servers().iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        },
        row,
    }
}

/// The names the caller manages (every customer's, for an admin).
#[utoipa::path(get, path = "/v1/names", tag = "dns",
    responses((status = 200, body = [Object]), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(ctl): Ctl, caller: Caller) -> Result<Json<Vec<NameView>>, ApiError> {
    let rows = ctl.store.names(caller.owner()).await?;
    Ok(Json(
        rows.into_iter().map(|r| view(&ctl, r, false)).collect(),
    ))
}

/// One name the caller manages, whether it is published, and the servers.
#[utoipa::path(get, path = "/v1/names/{name}", tag = "dns",
    params(("name" = String, Path, description = "the fully qualified name")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(ctl): Ctl,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<NameView>, ApiError> {
    let name = absolute(&name);
    let row = ctl
        .store
        .names(caller.owner())
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no name {name}")))?;
    Ok(Json(view(&ctl, row, true)))
}

/// Sets a name's records, or the target it follows (in a zone its owner is
/// allowed); published at once.
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
) -> Result<Json<NameView>, ApiError> {
    let (name, owner, zone) = allowed_name(&ctl, &caller, req.owner, &name)?;
    let (records, aname) = match req.aname {
        Some(a) if req.records.is_empty() => {
            let target = absolute(&a.target);
            if !is_host(&target) {
                return Err(ApiError::bad_request(format!(
                    "`{}` is not a host name",
                    a.target
                )));
            }
            let ttl = ttl_of(a.ttl)?;
            if let Some(why) = Anames::refusal(&ctl, &owner, &name, &target) {
                return Err(ApiError::forbidden(why));
            }
            let status = Status {
                target,
                ttl,
                ..Status::default()
            };
            let (records, status, _) = ctl.anames.resolve(&ctl, &name, &[], &status).await;
            (records, Some(status))
        }
        Some(_) => return Err(ApiError::bad_request("give records or aname, not both")),
        None => {
            let records = records_of(&name, &req.records)?;
            if records.is_empty() || records.len() > MAX_RECORDS {
                return Err(ApiError::bad_request(format!(
                    "give 1 to {MAX_RECORDS} records (DELETE removes a name)"
                )));
            }
            if records.iter().any(|r| r.data.rtype() == CNAME)
                && (records.len() > 1 || name == zone)
            {
                return Err(ApiError::bad_request(
                    "a CNAME stands alone, and not at a zone's apex (an ANAME may)",
                ));
            }
            (records, None)
        }
    };
    let row = ctl
        .store
        .put_name(&name, &owner, &records, aname.as_ref())
        .await?
        .ok_or_else(|| ApiError::conflict(format!("{name} is another owner's")))?;
    ctl.dns.kick();
    ctl.proxy.kick();
    ctl.anames.kick();
    Ok(Json(view(&ctl, row, true)))
}

/// Adds and removes single records at a name (creating it, or deleting it when
/// nothing is left): an ACME client's challenge beside another's.
#[utoipa::path(patch, path = "/v1/names/{name}", tag = "dns", request_body = EditRequest,
    params(("name" = String, Path, description = "the fully qualified name")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn edit(
    State(ctl): Ctl,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<EditRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (name, owner, _) = allowed_name(&ctl, &caller, req.owner, &name)?;
    let add = records_of(&name, &req.add)?;
    let remove = records_of(&name, &req.remove)?;
    if add.iter().any(|r| r.data.rtype() == CNAME) {
        return Err(ApiError::bad_request(
            "set a CNAME with PUT: it stands alone",
        ));
    }
    let edited = ctl
        .store
        .edit_name(&name, &owner, &add, &remove, MAX_RECORDS)
        .await?;
    let out = match edited {
        Edited::TooMany => {
            return Err(ApiError::bad_request(format!(
                "a name holds at most {MAX_RECORDS} records, and a CNAME stands alone"
            )));
        }
        Edited::Row(row) => serde_json::to_value(view(&ctl, *row, true))
            .map_err(|e| ApiError::internal(e.to_string()))?,
        Edited::Deleted => {
            let servers: Vec<String> = ctl.dns.servers().iter().map(ToString::to_string).collect();
            serde_json::json!({ "deleted": name, "servers": servers })
        }
        Edited::Theirs => return Err(ApiError::conflict(format!("{name} is another owner's"))),
        Edited::Aname => {
            return Err(ApiError::conflict(format!(
                "{name} follows a target: PUT records to replace it"
            )));
        }
    };
    ctl.dns.kick();
    ctl.proxy.kick();
    Ok(Json(out))
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
    ctl.proxy.kick();
    ctl.anames.kick();
    Ok(Json(serde_json::json!({ "deleted": name })))
}

/// The name (absolute), its owner and the owner's zone holding it, or why the
/// caller may not write it.
fn allowed_name(
    ctl: &Controller,
    caller: &Caller,
    asked_owner: Option<String>,
    name: &str,
) -> Result<(String, String, String), ApiError> {
    if !ctl.dns.configured() {
        return Err(super::dns::not_configured());
    }
    let owner = match (caller.owner(), asked_owner) {
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
    let name = absolute(name);
    if !is_owner(&name) {
        return Err(ApiError::bad_request(format!(
            "`{name}` is neither a host name nor a wildcard (`*.` and a host name)"
        )));
    }
    let zones = ctl.dns.zones_of(&owner);
    let Some(zone) = zones.iter().find(|z| in_zone(&name, z)).cloned() else {
        return Err(ApiError::forbidden(format!(
            "{name} is in none of {owner}'s zones ({})",
            zones.join(", ")
        )));
    };
    Ok((name, owner, zone))
}

fn ttl_of(ttl: Option<u32>) -> Result<u32, ApiError> {
    let ttl = ttl.unwrap_or(300);
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::bad_request(format!(
            "ttl {ttl} is outside 60..=86400"
        )));
    }
    Ok(ttl)
}

/// Records at `name` from their requests, each checked.
fn records_of(name: &str, requests: &[RecordRequest]) -> Result<Vec<Record>, ApiError> {
    requests
        .iter()
        .map(|r| {
            let rtype = type_code(&r.rtype.to_ascii_uppercase())
                .filter(|t| CUSTOMER_TYPES.contains(t))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "type {} is not one of A, AAAA, CNAME, MX, TXT, SRV, CAA",
                        r.rtype
                    ))
                })?;
            let ttl = ttl_of(r.ttl)?;
            if rtype == TXT && (r.data.len() > 255 || r.data.chars().any(char::is_control)) {
                return Err(ApiError::bad_request(
                    "a TXT's text is at most 255 printable bytes",
                ));
            }
            pirack_dns::wire::parse(name, ttl, rtype, &r.data)
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect()
}
