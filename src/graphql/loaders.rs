//! DataLoaders: nested objects and lists load in one query per level instead of one per row
//! (a page of 50 tasks reads its clients in one query, not 50). Loaders are created per
//! request (by [`with_loaders`]) and bound to the caller's tenant the first time they are
//! used: the firm of a staff member, or the firm and client of a contact. Every batch query
//! filters by that scope, so a loader can never return another tenant's row, whatever id it is
//! given. They keep no cache: keys asked for in the same turn share one query, and a later
//! read (after a mutation, or at the next event of a subscription) sees the database as it is.
//!
//! Batches run inside the request's own task, after the operation has yielded (see
//! [`execute`]), not on a timer: every key a level of the answer asks for is queued
//! before its batch starts, so a page of 50 costs the same statements as a page of 5, however
//! busy the machine. Subscriptions (no such hook) fall back to a 1 ms timer.
//! No diesel here: the batch queries live in `crate::db`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::extensions::{ExtensionContext, NextExecute};
use async_graphql::{Context, Request, Response};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use crate::db::page::{Keyset, ParentPages};
use crate::db::{DbResult, Pool, catalog, clients, files, firms, journal, missions, outbox, work};
use crate::error::AppError;
use crate::graphql::context::{contact, staff};

/// A firm-scoped loader of one request.
pub type FirmLoaders = DataLoader<FirmLoader>;
/// A client-scoped loader of one request (a contact's).
pub type ClientLoaders = DataLoader<ClientLoader>;

/// The loaders of one request, bound to its caller's tenant on first use.
pub struct Loaders {
    pool: Pool,
    firm: OnceLock<(i64, FirmLoaders)>,
    client: OnceLock<((i64, i64), ClientLoaders)>,
    batches: Arc<Batches>,
    queued: Mutex<Option<mpsc::UnboundedReceiver<BoxFuture<'static, ()>>>>,
    primed: Mutex<Primed>,
}

/// Parent rows a page or lookup of the firm view read with its own rows (joined into its one
/// statement): the `client`, `mission`, `service`, `missionLine`, `periodLabel` (the firm's
/// language) and `assignee` fields of its rows take them from here instead of a batch query.
/// Only `Query.firm`'s work lists and lookups fill it, scoped by the caller's firm like every
/// loader; a query operation writes nothing, so what it read stays
/// what the database holds for the rest of the operation.
#[derive(Default)]
struct Primed {
    firm_id: Option<i64>,
    firm: Option<firms::Firm>,
    clients: HashMap<i64, clients::Client>,
    missions: HashMap<i64, missions::Mission>,
    lines: HashMap<i64, missions::MissionLine>,
    services_of_lines: HashMap<i64, catalog::Service>,
    users: HashMap<i64, firms::User>,
}

/// Where the loaders' batches run: queued for the request's own task once
/// [`execute`] drives them, else spawned.
struct Batches {
    driven: AtomicBool,
    queue: mpsc::UnboundedSender<BoxFuture<'static, ()>>,
}

impl Batches {
    fn run(&self, batch: BoxFuture<'static, ()>) {
        if self.driven.load(Ordering::SeqCst) {
            if let Err(refused) = self.queue.send(batch) {
                tokio::spawn(refused.0);
            }
        } else {
            tokio::spawn(batch);
        }
    }
}

impl Loaders {
    pub fn new(pool: Pool) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        Self {
            pool,
            firm: OnceLock::new(),
            client: OnceLock::new(),
            batches: Arc::new(Batches {
                driven: AtomicBool::new(false),
                queue,
            }),
            queued: Mutex::new(Some(queued)),
            primed: Mutex::new(Primed::default()),
        }
    }

    /// A data loader whose batches run where [`Batches`] says.
    fn loader<T: Send + Sync + 'static>(&self, loader: T) -> DataLoader<T> {
        let batches = self.batches.clone();
        let driven = batches.driven.load(Ordering::SeqCst);
        let loader = DataLoader::new(loader, move |batch| batches.run(batch));
        // Driven batches start only once the operation has yielded: no wait is needed.
        loader.delay(if driven {
            Duration::ZERO
        } else {
            Duration::from_millis(1)
        })
    }

    /// The queue of batches, taken once by the hook that drives them.
    fn drive(&self) -> Option<mpsc::UnboundedReceiver<BoxFuture<'static, ()>>> {
        let queued = self.queued.lock().ok()?.take()?;
        self.batches.driven.store(true, Ordering::SeqCst);
        Some(queued)
    }
}

fn request_loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders, AppError> {
    ctx.data::<Loaders>()
        .map_err(|_| AppError::Internal("no loaders in the request data".into()))
}

/// The signed-in staff member's firm loader.
pub fn firm_loader<'a>(ctx: &'a Context<'_>) -> Result<&'a FirmLoaders, AppError> {
    let firm_id = staff(ctx)?.firm_id;
    let loaders = request_loaders(ctx)?;
    let (scope, loader) = loaders.firm.get_or_init(|| {
        let loader = FirmLoader {
            pool: loaders.pool.clone(),
            firm_id,
        };
        (firm_id, loaders.loader(loader))
    });
    if *scope != firm_id {
        return Err(AppError::Internal(
            "a firm loader was asked for another firm".into(),
        ));
    }
    Ok(loader)
}

/// Keeps the parents a page or lookup of the signed-in staff member's firm read with its rows
/// for the nested fields of those rows.
pub fn prime_parents<'p>(
    ctx: &Context<'_>,
    rows: impl IntoIterator<Item = &'p work::Parents>,
) -> Result<(), AppError> {
    let firm_id = staff(ctx)?.firm_id;
    let loaders = request_loaders(ctx)?;
    let mut primed = loaders
        .primed
        .lock()
        .map_err(|_| AppError::Internal("primed rows poisoned".into()))?;
    if primed
        .firm_id
        .is_some_and(|primed_firm| primed_firm != firm_id)
    {
        return Err(AppError::Internal(
            "parents were primed for another firm".into(),
        ));
    }
    primed.firm_id = Some(firm_id);
    for parents in rows {
        let assignee_firm = parents.assignee.as_ref().map(|user| user.firm_id);
        if parents.client.firm_id != firm_id
            || parents.mission.firm_id != firm_id
            || parents.line.firm_id != firm_id
            || parents.service.firm_id != firm_id
            || parents.firm.id != firm_id
            || assignee_firm.is_some_and(|assignee_firm| assignee_firm != firm_id)
        {
            return Err(AppError::Internal("a parent of another firm".into()));
        }
        if primed.firm.is_none() {
            primed.firm = Some(parents.firm.clone());
        }
        primed
            .clients
            .entry(parents.client.id)
            .or_insert_with(|| parents.client.clone());
        primed
            .missions
            .entry(parents.mission.id)
            .or_insert_with(|| parents.mission.clone());
        primed
            .lines
            .entry(parents.line.id)
            .or_insert_with(|| parents.line.clone());
        primed
            .services_of_lines
            .entry(parents.line.id)
            .or_insert_with(|| parents.service.clone());
        if let Some(assignee) = &parents.assignee {
            primed
                .users
                .entry(assignee.id)
                .or_insert_with(|| assignee.clone());
        }
    }
    Ok(())
}

/// A primed parent of the caller's firm, if a page or lookup read it.
fn primed<T: Clone>(
    ctx: &Context<'_>,
    pick: impl FnOnce(&Primed) -> Option<&T>,
) -> Result<Option<T>, AppError> {
    let firm_id = staff(ctx)?.firm_id;
    let loaders = request_loaders(ctx)?;
    let primed = loaders
        .primed
        .lock()
        .map_err(|_| AppError::Internal("primed rows poisoned".into()))?;
    if primed.firm_id != Some(firm_id) {
        return Ok(None);
    }
    Ok(pick(&primed).cloned())
}

/// A client of the staff member's firm: primed by the page that read it, else batched.
pub async fn client_of(ctx: &Context<'_>, id: i64) -> async_graphql::Result<clients::Client> {
    if let Some(row) = primed(ctx, |primed| primed.clients.get(&id))? {
        return Ok(row);
    }
    one(firm_loader(ctx)?, ClientKey(id), "client").await
}

/// A mission of the staff member's firm: primed by the page that read it, else batched.
pub async fn mission_of(ctx: &Context<'_>, id: i64) -> async_graphql::Result<missions::Mission> {
    if let Some(row) = primed(ctx, |primed| primed.missions.get(&id))? {
        return Ok(row);
    }
    one(firm_loader(ctx)?, MissionKey(id), "mission").await
}

/// The service of a mission line of the staff member's firm: primed by the page that read
/// it, else batched.
pub async fn service_of_line(
    ctx: &Context<'_>,
    line_id: i64,
) -> async_graphql::Result<catalog::Service> {
    if let Some(row) = primed(ctx, |primed| primed.services_of_lines.get(&line_id))? {
        return Ok(row);
    }
    one(firm_loader(ctx)?, ServiceOfLine(line_id), "service").await
}

/// A mission line of the staff member's firm: primed by the page that read it, else batched.
pub async fn line_of(ctx: &Context<'_>, id: i64) -> async_graphql::Result<missions::MissionLine> {
    if let Some(row) = primed(ctx, |primed| primed.lines.get(&id))? {
        return Ok(row);
    }
    one(firm_loader(ctx)?, LineKey(id), "mission line").await
}

/// The staff member's firm: primed by the page that read it, else batched.
pub async fn firm_of(ctx: &Context<'_>) -> async_graphql::Result<firms::Firm> {
    if let Some(row) = primed(ctx, |primed| primed.firm.as_ref())? {
        return Ok(row);
    }
    one(firm_loader(ctx)?, FirmKey(staff(ctx)?.firm_id), "firm").await
}

/// A staff member of the caller's firm: primed by the page that read it (a task's
/// assignee), else batched.
pub async fn user_of(ctx: &Context<'_>, id: i64) -> async_graphql::Result<firms::User> {
    if let Some(row) = primed(ctx, |primed| primed.users.get(&id))? {
        return Ok(row);
    }
    one(firm_loader(ctx)?, UserKey(id), "staff member").await
}

/// The signed-in contact's client loader.
pub fn client_loader<'a>(ctx: &'a Context<'_>) -> Result<&'a ClientLoaders, AppError> {
    let contact = contact(ctx)?;
    let wanted = (contact.firm_id, contact.client_id);
    let loaders = request_loaders(ctx)?;
    let (scope, loader) = loaders.client.get_or_init(|| {
        let loader = ClientLoader {
            pool: loaders.pool.clone(),
            firm_id: wanted.0,
            client_id: wanted.1,
        };
        (wanted, loaders.loader(loader))
    });
    if *scope != wanted {
        return Err(AppError::Internal(
            "a client loader was asked for another client".into(),
        ));
    }
    Ok(loader)
}

/// Puts fresh [`Loaders`] into a request's data (each operation of a batch, each operation
/// over the WebSocket), so nothing loaded is shared between requests. Called by the schema's
/// extension ([`super::pipeline`]) before the request is parsed.
pub(super) fn with_loaders(ctx: &ExtensionContext<'_>, request: Request) -> Request {
    match ctx.data_opt::<Pool>() {
        Some(pool) => request.data(Loaders::new(pool.clone())),
        None => request,
    }
}

/// Runs an operation with its loaders' batches inside the operation's own task, each after
/// the operation has yielded. Called by the schema's extension ([`super::pipeline`]).
pub(super) async fn execute(
    ctx: &ExtensionContext<'_>,
    operation_name: Option<&str>,
    next: NextExecute<'_>,
) -> Response {
    let Some(mut queued) = ctx.data_opt::<Loaders>().and_then(Loaders::drive) else {
        return next.run(ctx, operation_name).await;
    };
    let mut operation = std::pin::pin!(next.run(ctx, operation_name));
    let mut waiting = Vec::new();
    let mut running = FuturesUnordered::new();
    std::future::poll_fn(move |cx| {
        // The operation runs first each turn. A batch starts only on a turn where the
        // operation stopped without waking itself (it yields partway through long lists),
        // so every key its resolvers will ask for at this level is queued by then.
        let noticing = Arc::new(NoticeWake {
            inner: cx.waker().clone(),
            woken: AtomicBool::new(false),
        });
        let waker = Waker::from(noticing.clone());
        if let Poll::Ready(response) = operation
            .as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
        {
            return Poll::Ready(response);
        }
        while let Poll::Ready(Some(batch)) = queued.poll_recv(cx) {
            waiting.push(batch);
        }
        if !noticing.woken.load(Ordering::SeqCst) {
            running.extend(waiting.drain(..));
        }
        while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
        Poll::Pending
    })
    .await
}

/// A waker that notes whether it was woken (then passes the wake on).
struct NoticeWake {
    inner: Waker,
    woken: AtomicBool,
}

impl Wake for NoticeWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// Loads by a key type; the value is what the firm's batch query returns for it.
fn by_key<K, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, V>
where
    K: Hash + Eq,
{
    rows.into_iter().map(|row| (key(&row), row)).collect()
}

/// Groups rows under their parent's key, every key present (empty lists too).
fn grouped<K, V>(keys: &[K], rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<V>>
where
    K: Hash + Eq + Clone,
{
    let mut groups: HashMap<K, Vec<V>> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for row in rows {
        groups.entry(key(&row)).or_default().push(row);
    }
    groups
}

type LoadResult<K, V> = Result<HashMap<K, V>, async_graphql::Error>;

fn failed(error: crate::db::DbError) -> async_graphql::Error {
    AppError::from(error).into()
}

async fn with_db<T>(
    pool: &Pool,
    run: impl AsyncFnOnce(&mut crate::db::DbConn<'_>) -> DbResult<T>,
) -> Result<T, async_graphql::Error> {
    let mut conn = pool.get().await.map_err(failed)?;
    run(&mut conn.as_db()).await.map_err(failed)
}

/// Loads the rows of one firm.
pub struct FirmLoader {
    pool: Pool,
    firm_id: i64,
}

macro_rules! id_keys {
    ($($name:ident),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub i64);
    )*};
}

id_keys!(
    FirmKey,
    ClientKey,
    ContactKey,
    MissionKey,
    ServiceKey,
    CategoryKey,
    UserKey,
    ServiceOfLine,
    AttemptsOf,
    ItemsOf,
    LinesOf,
    MissionsOf,
    ServicesOf,
    FilesOf,
);

/// One page of a request's answers: the request and the page's keyset (the same for every
/// request of a level, so they share one statement).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnswerPage {
    pub request_id: i64,
    pub after: Option<i64>,
    pub before: Option<i64>,
    pub backward: bool,
    pub limit: i64,
}

impl AnswerPage {
    pub fn new(request_id: i64, page: &Keyset<i64>) -> Self {
        Self {
            request_id,
            after: page.after,
            before: page.before,
            backward: page.backward,
            limit: page.limit,
        }
    }

    fn keyset(&self) -> Keyset<i64> {
        Keyset {
            after: self.after,
            before: self.before,
            backward: self.backward,
            limit: self.limit,
        }
    }

    fn same_page(&self, other: &Self) -> bool {
        (self.after, self.before, self.backward, self.limit)
            == (other.after, other.before, other.backward, other.limit)
    }
}

/// How many answers a request has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnswerCount(pub i64);

/// Loads pages of answers: one statement per distinct keyset among `keys` (one, usually).
async fn answer_pages(
    pool: &Pool,
    firm_id: i64,
    client_id: Option<i64>,
    keys: &[AnswerPage],
) -> LoadResult<AnswerPage, Vec<work::RequestAnswer>> {
    let mut loaded = HashMap::new();
    let mut pages: Vec<AnswerPage> = keys.to_vec();
    pages.sort_by_key(|key| (key.after, key.before, key.backward, key.limit));
    for group in pages.chunk_by(AnswerPage::same_page) {
        let template = group[0];
        let keyset = template.keyset();
        let request_ids = ids(group, |key| key.request_id);
        let rows = with_db(pool, async |db| {
            work::answer_pages_of_requests(db, firm_id, client_id, &request_ids, &keyset).await
        })
        .await?;
        loaded.extend(grouped(group, rows, |row| AnswerPage {
            request_id: row.request_id,
            ..template
        }));
    }
    Ok(loaded)
}

/// Counts the answers of requests in one statement.
async fn answer_counts(
    pool: &Pool,
    firm_id: i64,
    client_id: Option<i64>,
    keys: &[AnswerCount],
) -> LoadResult<AnswerCount, i64> {
    let request_ids = ids(keys, |key| key.0);
    let counts = with_db(pool, async |db| {
        work::count_answers_of_requests(db, firm_id, client_id, &request_ids).await
    })
    .await?;
    let mut loaded: HashMap<AnswerCount, i64> = keys.iter().map(|key| (*key, 0)).collect();
    loaded.extend(
        counts
            .into_iter()
            .map(|(id, count)| (AnswerCount(id), count)),
    );
    Ok(loaded)
}

impl Loader<AnswerPage> for FirmLoader {
    type Value = Vec<work::RequestAnswer>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AnswerPage]) -> LoadResult<AnswerPage, Vec<work::RequestAnswer>> {
        answer_pages(&self.pool, self.firm_id, None, keys).await
    }
}

impl Loader<AnswerCount> for FirmLoader {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AnswerCount]) -> LoadResult<AnswerCount, i64> {
        answer_counts(&self.pool, self.firm_id, None, keys).await
    }
}

impl Loader<AnswerPage> for ClientLoader {
    type Value = Vec<work::RequestAnswer>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AnswerPage]) -> LoadResult<AnswerPage, Vec<work::RequestAnswer>> {
        answer_pages(&self.pool, self.firm_id, Some(self.client_id), keys).await
    }
}

impl Loader<AnswerCount> for ClientLoader {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[AnswerCount]) -> LoadResult<AnswerCount, i64> {
        answer_counts(&self.pool, self.firm_id, Some(self.client_id), keys).await
    }
}

/// The contacts of a client, archived ones too when `include_archived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContactsOf {
    pub client_id: i64,
    pub include_archived: bool,
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> i64) -> Vec<i64> {
    keys.iter().map(|key| id(*key)).collect()
}

impl Loader<FirmKey> for FirmLoader {
    type Value = firms::Firm;
    type Error = async_graphql::Error;

    async fn load(&self, _: &[FirmKey]) -> LoadResult<FirmKey, firms::Firm> {
        let firm_id = self.firm_id;
        let firm = with_db(&self.pool, async |db| firms::find_firm(db, firm_id).await).await?;
        Ok(HashMap::from([(FirmKey(firm_id), firm)]))
    }
}

macro_rules! firm_rows {
    ($key:ident, $value:ty, $query:path) => {
        impl Loader<$key> for FirmLoader {
            type Value = $value;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, $value> {
                let (firm_id, wanted) = (self.firm_id, ids(keys, |key| key.0));
                let rows =
                    with_db(&self.pool, async |db| $query(db, firm_id, &wanted).await).await?;
                Ok(by_key(rows, |row| $key(row.id)))
            }
        }
    };
}

firm_rows!(ClientKey, clients::Client, clients::find_clients);
firm_rows!(ContactKey, clients::Contact, clients::find_contacts);
firm_rows!(MissionKey, missions::Mission, missions::find_missions);
firm_rows!(ServiceKey, catalog::Service, catalog::find_services);
firm_rows!(CategoryKey, catalog::Category, catalog::find_categories);
firm_rows!(UserKey, firms::User, firms::find_users);

macro_rules! firm_lists {
    ($key:ident, $value:ty, $query:path, |$row:ident| $parent:expr) => {
        impl Loader<$key> for FirmLoader {
            type Value = Vec<$value>;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, Vec<$value>> {
                let (firm_id, wanted) = (self.firm_id, ids(keys, |key| key.0));
                let rows =
                    with_db(&self.pool, async |db| $query(db, firm_id, &wanted).await).await?;
                Ok(grouped(keys, rows, |$row| $key($parent)))
            }
        }
    };
}

firm_lists!(
    AttemptsOf,
    outbox::DeliveryAttempt,
    outbox::attempts_of_deliveries,
    |row| row.delivery_id
);
firm_lists!(
    ItemsOf,
    catalog::ServiceItem,
    catalog::items_of_services,
    |row| row.service_id
);
firm_lists!(
    LinesOf,
    (missions::MissionLine, catalog::Service),
    missions::lines_of_missions,
    |row| row.0.mission_id
);
firm_lists!(
    MissionsOf,
    missions::Mission,
    missions::missions_of_clients,
    |row| row.client_id
);
firm_lists!(
    ServicesOf,
    catalog::Service,
    catalog::services_of_categories,
    |row| row.category_id.unwrap_or_default()
);

impl Loader<ServiceOfLine> for FirmLoader {
    type Value = catalog::Service;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ServiceOfLine]) -> LoadResult<ServiceOfLine, catalog::Service> {
        let (firm_id, wanted) = (self.firm_id, ids(keys, |key| key.0));
        let rows = with_db(&self.pool, async |db| {
            catalog::services_of_lines(db, firm_id, &wanted).await
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(|(line_id, service)| (ServiceOfLine(line_id), service))
            .collect())
    }
}

impl Loader<ContactsOf> for FirmLoader {
    type Value = Vec<clients::Contact>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ContactsOf]) -> LoadResult<ContactsOf, Vec<clients::Contact>> {
        let firm_id = self.firm_id;
        let mut loaded = HashMap::new();
        // One query per flag actually asked for: at most two per level.
        for include_archived in [false, true] {
            let wanted: Vec<ContactsOf> = keys
                .iter()
                .copied()
                .filter(|key| key.include_archived == include_archived)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            let client_ids = ids(&wanted, |key| key.client_id);
            let rows = with_db(&self.pool, async |db| {
                clients::contacts_of_clients(db, firm_id, &client_ids, include_archived).await
            })
            .await?;
            loaded.extend(grouped(&wanted, rows, |row| ContactsOf {
                client_id: row.client_id,
                include_archived,
            }));
        }
        Ok(loaded)
    }
}

/// Loads what one contact may read: its client's rows of its firm.
/// The files of a batch of answers, scoped by firm and, for a contact, by client.
async fn files_of_answers(
    pool: &Pool,
    firm_id: i64,
    client_id: Option<i64>,
    keys: &[FilesOf],
) -> LoadResult<FilesOf, Vec<files::AnswerFile>> {
    let answer_ids = ids(keys, |key| key.0);
    let rows = with_db(pool, async |db| {
        files::of_answers(db, firm_id, client_id, &answer_ids).await
    })
    .await?;
    Ok(grouped(keys, rows, |row| FilesOf(row.answer_id)))
}

impl Loader<FilesOf> for FirmLoader {
    type Value = Vec<files::AnswerFile>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[FilesOf]) -> LoadResult<FilesOf, Vec<files::AnswerFile>> {
        files_of_answers(&self.pool, self.firm_id, None, keys).await
    }
}

impl Loader<FilesOf> for ClientLoader {
    type Value = Vec<files::AnswerFile>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[FilesOf]) -> LoadResult<FilesOf, Vec<files::AnswerFile>> {
        files_of_answers(&self.pool, self.firm_id, Some(self.client_id), keys).await
    }
}

pub struct ClientLoader {
    pool: Pool,
    firm_id: i64,
    client_id: i64,
}

impl Loader<FirmKey> for ClientLoader {
    type Value = firms::Firm;
    type Error = async_graphql::Error;

    async fn load(&self, _: &[FirmKey]) -> LoadResult<FirmKey, firms::Firm> {
        let firm_id = self.firm_id;
        let firm = with_db(&self.pool, async |db| firms::find_firm(db, firm_id).await).await?;
        Ok(HashMap::from([(FirmKey(firm_id), firm)]))
    }
}

impl Loader<ClientKey> for ClientLoader {
    type Value = clients::Client;
    type Error = async_graphql::Error;

    async fn load(&self, _: &[ClientKey]) -> LoadResult<ClientKey, clients::Client> {
        let (firm_id, client_id) = (self.firm_id, self.client_id);
        let client = with_db(&self.pool, async |db| {
            clients::find_client(db, firm_id, client_id).await
        })
        .await?;
        Ok(HashMap::from([(ClientKey(client_id), client)]))
    }
}

/// Loads one row by key; a key the scope does not hold is NOT_FOUND naming `what`.
pub async fn one<L, K>(
    loader: &DataLoader<L>,
    key: K,
    what: &'static str,
) -> async_graphql::Result<L::Value>
where
    L: Loader<K, Error = async_graphql::Error>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
{
    loader
        .load_one(key)
        .await?
        .ok_or_else(|| AppError::NotFound(what).into())
}

/// Loads a list by its parent's key (empty when the parent has none).
pub async fn list<L, K, V>(loader: &DataLoader<L>, key: K) -> async_graphql::Result<Vec<V>>
where
    L: Loader<K, Value = Vec<V>, Error = async_graphql::Error>,
    K: Send + Sync + Hash + Eq + Clone + 'static,
    V: Send + Sync + Clone + 'static,
{
    Ok(loader.load_one(key).await?.unwrap_or_default())
}

/// The journal entry that last closed (or cancelled) a request: who closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClosingOf(pub i64);

/// The journal entry that last completed a task: who completed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompletionOf(pub i64);

macro_rules! latest_entry {
    ($key:ident, $object_type:literal, $kinds:expr) => {
        impl Loader<$key> for FirmLoader {
            type Value = journal::LinkedEntry;
            type Error = async_graphql::Error;

            async fn load(&self, keys: &[$key]) -> LoadResult<$key, journal::LinkedEntry> {
                let (firm_id, wanted) = (self.firm_id, ids(keys, |key| key.0));
                let rows = with_db(&self.pool, async |db| {
                    journal::latest_of_kind(db, firm_id, $object_type, $kinds, &wanted).await
                })
                .await?;
                Ok(by_key(rows, |row| $key(row.0.object_id)))
            }
        }
    };
}

latest_entry!(
    ClosingOf,
    "request",
    &["request.closed", "request.cancelled"]
);
latest_entry!(CompletionOf, "task", &["task.completed"]);

/// A mission line by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineKey(pub i64);

firm_rows!(LineKey, missions::MissionLine, missions::find_lines);

/// One occurrence: what a mission line generated for one due date (and copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Occurrence {
    pub mission_line_id: i64,
    pub due_date: chrono::NaiveDate,
    pub copy_number: i32,
}

/// The tasks of an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TasksOf(pub Occurrence);

/// The requests of an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestsOf(pub Occurrence);

fn occurrence_keys<K>(
    keys: &[K],
    occurrence: impl Fn(&K) -> Occurrence,
) -> Vec<(i64, chrono::NaiveDate, i32)> {
    keys.iter()
        .map(|key| {
            let o = occurrence(key);
            (o.mission_line_id, o.due_date, o.copy_number)
        })
        .collect()
}

impl Loader<TasksOf> for FirmLoader {
    type Value = Vec<work::Task>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[TasksOf]) -> LoadResult<TasksOf, Vec<work::Task>> {
        let (firm_id, wanted) = (self.firm_id, occurrence_keys(keys, |key| key.0));
        let rows = with_db(&self.pool, async |db| {
            work::tasks_of_occurrences(db, firm_id, &wanted).await
        })
        .await?;
        Ok(grouped(keys, rows, |row| {
            TasksOf(Occurrence {
                mission_line_id: row.mission_line_id,
                due_date: row.due_date,
                copy_number: row.copy_number,
            })
        }))
    }
}

impl Loader<RequestsOf> for FirmLoader {
    type Value = Vec<work::InformationRequest>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[RequestsOf],
    ) -> LoadResult<RequestsOf, Vec<work::InformationRequest>> {
        let (firm_id, wanted) = (self.firm_id, occurrence_keys(keys, |key| key.0));
        let rows = with_db(&self.pool, async |db| {
            work::requests_of_occurrences(db, firm_id, &wanted).await
        })
        .await?;
        Ok(grouped(keys, rows, |row| {
            RequestsOf(Occurrence {
                mission_line_id: row.mission_line_id,
                due_date: row.due_date,
                copy_number: row.copy_number,
            })
        }))
    }
}

/// What a nested list of tasks or requests asks of every parent of its level (the same
/// arguments for each, so they share one statement): status (`S`: a task's or a request's),
/// filter (its own client unset), order, keyset, and whether its rows' parents are joined.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkQuery<S> {
    pub status: Option<S>,
    pub filter: work::WorkFilter,
    pub order: work::WorkOrder,
    pub page: work::WorkPage,
    pub parents: bool,
}

/// One client's page of tasks (`S` = `TaskStatus`) or requests (`RequestStatus`) under a
/// query: `Client.tasks` and `Client.requests` of a page of clients read in one statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkOfClient<S> {
    pub client_id: i64,
    pub query: Arc<WorkQuery<S>>,
}

/// One parent's page of a nested list, and how many rows its whole list holds when the page's
/// statement could count them (a page without cursor).
pub type ParentPage<R> = (Vec<R>, Option<i64>);

/// One client's page of work.
pub type ClientWork<Row> = ParentPage<work::WorkRow<Row>>;

/// How many of one client's tasks or requests match a status and filter (its own client
/// unset): the `totalCount` of [`WorkOfClient`] pages, counted in one statement per level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkCountOfClient<S> {
    pub client_id: i64,
    pub query: Arc<(Option<S>, work::WorkFilter)>,
}

/// The keys' parents (ids) grouped by what else their keys share (the query: one group,
/// usually).
fn ids_by_group<G: Hash + Eq>(keys: impl Iterator<Item = (i64, G)>) -> HashMap<G, Vec<i64>> {
    let mut groups: HashMap<G, Vec<i64>> = HashMap::new();
    for (id, group) in keys {
        groups.entry(group).or_default().push(id);
    }
    groups
}

/// Each parent's rows of `pages` under its key (`key` of its id; every id of `ids` present,
/// with no rows if it has none), with its total when the statement counted it.
fn pages_by_parent<K, R>(
    ids: &[i64],
    mut pages: ParentPages<R>,
    key: impl Fn(i64) -> K,
    parent: impl Fn(&R) -> i64,
) -> Vec<(K, ParentPage<R>)> {
    grouped(ids, std::mem::take(&mut pages.rows), parent)
        .into_iter()
        .map(|(id, rows)| (key(id), (rows, pages.total_of(id))))
        .collect()
}

/// The loaders of one kind of client work (`$status`, rows `$row`): a page per client and a
/// count per client, one statement per distinct query among the keys.
macro_rules! work_of_clients {
    ($status:ty, $row:ty, $list:path, $count:path) => {
        impl Loader<WorkOfClient<$status>> for FirmLoader {
            type Value = ClientWork<$row>;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[WorkOfClient<$status>],
            ) -> LoadResult<WorkOfClient<$status>, ClientWork<$row>> {
                let mut loaded = HashMap::new();
                let groups = ids_by_group(
                    keys.iter()
                        .map(|key| (key.client_id, Arc::clone(&key.query))),
                );
                for (query, client_ids) in groups {
                    let firm_id = self.firm_id;
                    let pages = with_db(&self.pool, async |db| {
                        $list(
                            db,
                            firm_id,
                            query.status,
                            &query.filter,
                            query.order,
                            &query.page,
                            query.parents,
                            &client_ids,
                        )
                        .await
                    })
                    .await?;
                    let key = |client_id: i64| WorkOfClient {
                        client_id,
                        query: Arc::clone(&query),
                    };
                    let parent = |(row, ..): &work::WorkRow<$row>| row.client_id;
                    loaded.extend(pages_by_parent(&client_ids, pages, key, parent));
                }
                Ok(loaded)
            }
        }

        impl Loader<WorkCountOfClient<$status>> for FirmLoader {
            type Value = i64;
            type Error = async_graphql::Error;

            async fn load(
                &self,
                keys: &[WorkCountOfClient<$status>],
            ) -> LoadResult<WorkCountOfClient<$status>, i64> {
                let mut loaded: HashMap<WorkCountOfClient<$status>, i64> =
                    keys.iter().map(|key| (key.clone(), 0)).collect();
                let groups = ids_by_group(
                    keys.iter()
                        .map(|key| (key.client_id, Arc::clone(&key.query))),
                );
                for (query, client_ids) in groups {
                    let firm_id = self.firm_id;
                    let counts = with_db(&self.pool, async |db| {
                        $count(db, firm_id, query.0, &query.1, &client_ids).await
                    })
                    .await?;
                    loaded.extend(counts.into_iter().map(|(client_id, count)| {
                        let key = WorkCountOfClient {
                            client_id,
                            query: Arc::clone(&query),
                        };
                        (key, count)
                    }));
                }
                Ok(loaded)
            }
        }
    };
}

work_of_clients!(
    crate::domain::TaskStatus,
    work::Task,
    work::list_tasks_of_clients,
    work::count_tasks_of_clients
);
work_of_clients!(
    crate::domain::RequestStatus,
    work::InformationRequest,
    work::list_requests_of_clients,
    work::count_requests_of_clients
);

/// One owner's page of history (a client's, a mission's, a task's...) under a filter and
/// keyset shared by the level: `history` under a page of clients, missions, tasks or requests
/// reads every owner's page in one statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryOf {
    pub owner: journal::HistoryOwner,
    pub id: i64,
    pub query: Arc<(journal::JournalFilter, Keyset<i64>)>,
}

/// How many entries one owner's history holds under a filter: the `totalCount` of
/// [`HistoryOf`] pages after a cursor, counted in one statement per level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryCountOf {
    pub owner: journal::HistoryOwner,
    pub id: i64,
    pub filter: Arc<journal::JournalFilter>,
}

/// One owner's page of history.
pub type OwnerHistory = ParentPage<journal::LinkedEntry>;

impl Loader<HistoryOf> for FirmLoader {
    type Value = OwnerHistory;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[HistoryOf]) -> LoadResult<HistoryOf, OwnerHistory> {
        let groups = ids_by_group(
            keys.iter()
                .map(|key| (key.id, (key.owner, Arc::clone(&key.query)))),
        );
        let mut loaded = HashMap::new();
        for ((owner, query), ids) in groups {
            let firm_id = self.firm_id;
            let (filter, page) = &*query;
            let pages = with_db(&self.pool, async |db| {
                journal::list_linked_of_owners(db, firm_id, filter, owner, &ids, page).await
            })
            .await?;
            let key = |id: i64| HistoryOf {
                owner,
                id,
                query: Arc::clone(&query),
            };
            let parent = |(entry, _): &journal::LinkedEntry| owner.of(entry).unwrap_or_default();
            loaded.extend(pages_by_parent(&ids, pages, key, parent));
        }
        Ok(loaded)
    }
}

impl Loader<HistoryCountOf> for FirmLoader {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[HistoryCountOf]) -> LoadResult<HistoryCountOf, i64> {
        let mut loaded: HashMap<HistoryCountOf, i64> =
            keys.iter().map(|key| (key.clone(), 0)).collect();
        let groups = ids_by_group(
            keys.iter()
                .map(|key| (key.id, (key.owner, Arc::clone(&key.filter)))),
        );
        for ((owner, filter), ids) in groups {
            let firm_id = self.firm_id;
            let counts = with_db(&self.pool, async |db| {
                journal::count_of_owners(db, firm_id, &filter, owner, &ids).await
            })
            .await?;
            loaded.extend(counts.into_iter().map(|(id, count)| {
                let key = HistoryCountOf {
                    owner,
                    id,
                    filter: Arc::clone(&filter),
                };
                (key, count)
            }));
        }
        Ok(loaded)
    }
}
