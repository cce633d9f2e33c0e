//! Every route, in one table, each with the rule of who may call it.

use crate::access::{Access, Rule, Scope};
use crate::handlers::{audit, auth, backup, download, files, keys, people, portal, settings};
use crate::AppState;
use axum::http::Method;
use axum::routing::{delete, get, post, put, MethodRouter};

/// One row of the table.
pub struct Route {
    pub method: Method,
    /// Lower-case: paths are lower-cased before routing, so they match case-insensitively.
    pub path: &'static str,
    pub rule: Rule,
    /// Uploads stream their body; every other route has the JSON body limit.
    pub streams_body: bool,
    pub handler: MethodRouter<AppState>,
    /// What the OpenAPI document says of the route beyond its path and rule.
    pub doc: Option<Doc>,
}

/// A route's documentation: a summary and the schema of `response` in DocSpace's envelope.
#[derive(Clone, Copy)]
pub struct Doc {
    pub summary: &'static str,
    pub response: fn(&mut schemars::SchemaGenerator) -> schemars::Schema,
}

/// What [`Doc::response`] holds.
type Response = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// The schema of `T`, for [`Doc::response`].
pub fn schema<T: schemars::JsonSchema>(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    generator.subschema_for::<T>()
}

/// Documents each of `routes`.
fn documented<const N: usize>(routes: [Route; N], doc: Doc) -> [Route; N] {
    routes.map(|mut r| {
        r.doc = Some(doc);
        r
    })
}

fn route(method: Method, path: &'static str, access: Access, scope: Scope, handler: MethodRouter<AppState>) -> Route {
    Route {
        method,
        path,
        rule: Rule {
            access,
            scope,
            open_during_restore: false,
        },
        streams_body: false,
        handler,
        doc: None,
    }
}

fn streaming(mut r: Route) -> Route {
    r.streams_body = true;
    r
}

/// The route table.
pub fn table() -> Vec<Route> {
    use Access::*;
    use Method as M;
    use Scope::{Any, Global, Resource};
    let files_scope = Resource("files");
    let rooms_scope = Resource("rooms");
    let accounts = Resource("accounts");
    let mut all = vec![
        // Portals
        route(
            M::POST,
            "/apisystem/portal/register",
            Public,
            Global,
            post(portal::register),
        ),
        route(M::GET, "/api/2.0/portal", Authenticated, Global, get(portal::get)),
        route(
            M::DELETE,
            "/api/2.0/portal/deleteportalimmediately",
            Owner,
            Global,
            delete(portal::delete),
        ),
        // Sign-in
        route(
            M::POST,
            "/api/2.0/authentication",
            Anonymous,
            Global,
            post(auth::sign_in),
        ),
        route(M::GET, "/api/2.0/authentication", Anonymous, Global, get(auth::check)),
        route(
            M::POST,
            "/api/2.0/authentication/logout",
            Anonymous,
            Global,
            post(auth::sign_out),
        ),
        route(M::GET, "/api/2.0/settings", Anonymous, Global, get(auth::settings)),
        // People
        route(M::POST, "/api/2.0/people", RoomManager, accounts, post(people::create)),
        route(
            M::POST,
            "/api/2.0/people/active",
            RoomManager,
            accounts,
            post(people::create_active),
        ),
        route(M::GET, "/api/2.0/people", RoomManager, accounts, get(people::list)),
        route(
            M::GET,
            "/api/2.0/people/@self",
            Authenticated,
            Resource("accounts.self"),
            get(people::me),
        ),
        route(
            M::GET,
            "/api/2.0/people/{userid}",
            Authenticated,
            accounts,
            get(people::get),
        ),
        // API keys
        route(M::POST, "/api/2.0/keys", NotGuest, Global, post(keys::create)),
        route(M::GET, "/api/2.0/keys", Authenticated, Global, get(keys::list)),
        route(
            M::GET,
            "/api/2.0/keys/permissions",
            Authenticated,
            Global,
            get(keys::permissions),
        ),
        route(M::GET, "/api/2.0/keys/@self", Authenticated, Any, get(keys::current)),
        route(
            M::PUT,
            "/api/2.0/keys/{keyid}",
            Authenticated,
            Global,
            put(keys::update),
        ),
        route(
            M::DELETE,
            "/api/2.0/keys/{keyid}",
            Authenticated,
            Global,
            delete(keys::delete),
        ),
        // Rooms
        route(
            M::POST,
            "/api/2.0/files/rooms",
            Authenticated,
            rooms_scope,
            post(files::create_room),
        ),
        route(
            M::GET,
            "/api/2.0/files/rooms",
            Authenticated,
            rooms_scope,
            get(files::list_rooms),
        ),
        route(
            M::GET,
            "/api/2.0/files/rooms/{roomid}",
            Authenticated,
            rooms_scope,
            get(files::get_folder),
        ),
        // Sections and folders
        route(M::GET, "/api/2.0/files/@my", Authenticated, files_scope, get(files::my)),
        route(
            M::GET,
            "/api/2.0/files/@trash",
            Authenticated,
            files_scope,
            get(files::trash),
        ),
        route(
            M::GET,
            "/api/2.0/files/@root",
            Authenticated,
            files_scope,
            get(files::roots),
        ),
        route(
            M::GET,
            "/api/2.0/files/fileops",
            Authenticated,
            files_scope,
            get(files::operations),
        ),
        route(
            M::GET,
            "/api/2.0/files/{folderid}",
            Authenticated,
            files_scope,
            get(files::list_folder),
        ),
        route(
            M::GET,
            "/api/2.0/files/folder/{folderid}",
            Authenticated,
            files_scope,
            get(files::get_folder),
        ),
        route(
            M::POST,
            "/api/2.0/files/folder/{folderid}",
            Authenticated,
            files_scope,
            post(files::create_folder),
        ),
        route(
            M::DELETE,
            "/api/2.0/files/folder/{folderid}",
            Authenticated,
            files_scope,
            delete(files::delete_folder),
        ),
        // Files
        streaming(route(
            M::POST,
            "/api/2.0/files/{folderid}/upload",
            Authenticated,
            files_scope,
            post(files::upload),
        )),
        streaming(route(
            M::POST,
            "/api/2.0/files/@my/upload",
            Authenticated,
            files_scope,
            post(files::upload_my),
        )),
        streaming(route(
            M::POST,
            "/api/2.0/files/{folderid}/insert",
            Authenticated,
            files_scope,
            post(files::insert),
        )),
        route(
            M::GET,
            "/api/2.0/files/file/{fileid}",
            Authenticated,
            files_scope,
            get(files::get_file),
        ),
        route(
            M::DELETE,
            "/api/2.0/files/file/{fileid}",
            Authenticated,
            files_scope,
            delete(files::delete_file),
        ),
        route(
            M::GET,
            "/filehandler.ashx",
            Authenticated,
            files_scope,
            get(download::handle),
        ),
    ];
    all.extend([
        // Third-party backup storage
        route(
            M::GET,
            "/api/2.0/settings/authservice",
            Admin,
            Global,
            get(settings::list_consumers),
        ),
        route(
            M::POST,
            "/api/2.0/settings/authservice",
            Admin,
            Global,
            post(settings::save_consumer),
        ),
        route(
            M::GET,
            "/api/2.0/settings/storage/backup",
            Admin,
            Global,
            get(settings::backup_storages),
        ),
        route(
            M::GET,
            "/api/2.0/files/thirdparty/backup",
            Authenticated,
            files_scope,
            get(settings::get_provider),
        ),
        route(
            M::POST,
            "/api/2.0/files/thirdparty/backup",
            Authenticated,
            files_scope,
            post(settings::connect_provider),
        ),
    ]);
    all.push(route(
        M::GET,
        "/api/2.0/security/audit/events/last",
        Admin,
        Global,
        get(audit::last),
    ));
    all.extend(backup_routes());
    all
}

/// A backup endpoint under `/api/2.0/backup/` and, as the DocSpace web UI calls it,
/// `/api/2.0/portal/`.
macro_rules! backup_route {
    ($method:expr, $name:literal, $access:expr, $handler:expr) => {
        [concat!("/api/2.0/backup/", $name), concat!("/api/2.0/portal/", $name)].map(|path| {
            let mut r = route($method, path, $access, Scope::Global, $handler);
            // Only the restore progress answers while a restore locks the portal.
            r.rule.open_during_restore = $name == "getrestoreprogress";
            r
        })
    };
}

/// The backup endpoints. All are for the portal's admins except the anonymous restore progress
/// and the signed download link.
fn backup_routes() -> Vec<Route> {
    use backspace_core::backup::VerifyReport;
    use backspace_types::dto::backup::{BackupProgress, BackupsCount, HistoryRecord, ScheduleDto, ServiceState};
    use Access::{Admin, Anonymous};
    use Method as M;
    let doc = |summary: &'static str, response: Response| Doc { summary, response };
    let mut out: Vec<Route> = [
        documented(
            backup_route!(M::POST, "startbackup", Admin, post(backup::start)),
            doc(
                "Start a backup of the portal (or, with `dump`, of the whole server)",
                schema::<BackupProgress>,
            ),
        ),
        documented(
            backup_route!(M::GET, "getbackupprogress", Admin, get(backup::get_progress)),
            doc(
                "The progress of the portal's latest backup; null when there has been none",
                schema::<Option<BackupProgress>>,
            ),
        ),
        documented(
            backup_route!(M::POST, "cancelbackup", Admin, post(backup::cancel)),
            doc("Cancel the running backup", schema::<bool>),
        ),
        documented(
            backup_route!(M::GET, "getbackuphistory", Admin, get(backup::history)),
            doc(
                "The portal's stored backups, in no set order (as in DocSpace: sort by createdOn)",
                schema::<Vec<HistoryRecord>>,
            ),
        ),
        documented(
            backup_route!(M::DELETE, "deletebackup/{backupid}", Admin, delete(backup::delete)),
            doc("Delete one backup and its stored archive", schema::<bool>),
        ),
        documented(
            backup_route!(M::DELETE, "deletebackuphistory", Admin, delete(backup::delete_history)),
            doc("Delete every backup of the portal", schema::<bool>),
        ),
        documented(
            backup_route!(M::POST, "createbackupschedule", Admin, post(backup::create_schedule)),
            doc("Create or replace the automatic backup schedule", schema::<bool>),
        ),
        documented(
            backup_route!(M::GET, "getbackupschedule", Admin, get(backup::get_schedule)),
            doc(
                "The automatic backup schedule; null when there is none",
                schema::<Option<ScheduleDto>>,
            ),
        ),
        documented(
            backup_route!(M::GET, "verifybackup/{backupid}", Admin, get(backup::verify)),
            doc(
                "Verify a backup (backspace's extension): read it back completely and check every chunk",
                schema::<VerifyReport>,
            ),
        ),
        documented(
            backup_route!(
                M::DELETE,
                "deletebackupschedule",
                Admin,
                delete(backup::delete_schedule)
            ),
            doc("Delete the automatic backup schedule", schema::<bool>),
        ),
        documented(
            backup_route!(M::POST, "startrestore", Admin, post(backup::start_restore)),
            doc(
                "Restore the portal from a backup or an uploaded archive",
                schema::<BackupProgress>,
            ),
        ),
        documented(
            backup_route!(M::GET, "getrestoreprogress", Anonymous, get(backup::restore_progress)),
            doc(
                "The progress of the portal's latest restore; null when there has been none",
                schema::<Option<BackupProgress>>,
            ),
        ),
        documented(
            backup_route!(M::GET, "getbackupscount", Admin, get(backup::count)),
            doc("How many backups the portal made in a period", schema::<i32>),
        ),
        documented(
            backup_route!(M::GET, "getbackupscountbypaid", Admin, get(backup::count_by_paid)),
            doc(
                "The portal's backups in a period, split by who paid for them",
                schema::<BackupsCount>,
            ),
        ),
        documented(
            backup_route!(M::GET, "getservicestate", Admin, get(backup::service_state)),
            doc("Whether the backup service is on", schema::<ServiceState>),
        ),
        documented(
            backup_route!(M::GET, "backuptmp", Admin, get(backup::tmp)),
            doc(
                "Where temporary backups go (a description: backspace keeps no temporary folder)",
                schema::<String>,
            ),
        ),
        documented(
            backup_route!(M::GET, "enablerestore", Admin, get(backup::enabled)),
            doc("Whether restore is available", schema::<bool>),
        ),
        documented(
            backup_route!(M::GET, "enableautobackup", Admin, get(backup::enabled)),
            doc("Whether automatic backups are available", schema::<bool>),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    out.push(streaming(route(
        M::POST,
        "/backupfileupload.ashx",
        Admin,
        Scope::Global,
        post(backup::upload),
    )));
    out.push(route(
        M::GET,
        "/api/2.0/backup/download/{backupid}",
        Access::Public,
        Scope::Global,
        get(backup::download),
    ));
    out
}
