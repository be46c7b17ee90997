//! Calendar feed mutations, for staff members (their own feed) and contacts (their own feed,
//! from the client view): create, rotate, revoke. Each resolver calls one operation of
//! `crate::ops::calendar` with the caller as actor; the feed URL is shown once, at creation or
//! rotation. Never here: a rule about feeds, or reading a feed (the HTTP route serves it).

use async_graphql::{Context, Object, SimpleObject};

use crate::graphql::door::{actor, delivery_control, env};
use crate::graphql::firm::types::utc;
use crate::graphql::scalars::DateTime;
use crate::ops;

/// Calendar feed mutations (staff and contacts, each for their own feed).
#[derive(Default)]
pub struct CalendarMutation;

/// A secret iCalendar feed URL: anyone holding it reads the feed, so it is shown once.
#[derive(SimpleObject)]
pub struct CalendarFeedUrl {
    /// The feed's address (`{public base URL}/calendar/{token}.ics`); a staff member may add
    /// `?assignee=me` for their own tasks only.
    pub url: String,
    /// When this URL was made.
    pub created_at: DateTime,
}

/// A feed that was revoked.
#[derive(SimpleObject)]
pub struct RevokedCalendarFeed {
    /// When the revoked URL was made.
    pub created_at: DateTime,
}

fn feed_url(ctx: &Context<'_>, made: &ops::calendar::FeedWithToken) -> CalendarFeedUrl {
    let base = delivery_control(ctx).public_base_url;
    CalendarFeedUrl {
        url: format!(
            "{}{}",
            base.trim_end_matches('/'),
            ops::calendar::feed_path(&made.token)
        ),
        created_at: utc(made.feed.created_at),
    }
}

#[Object]
impl CalendarMutation {
    /// Creates the caller's secret calendar feed URL (staff: the firm's tasks and requests by
    /// due date; a contact: their client's requests). CONFLICT when one exists already.
    async fn create_calendar_feed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<CalendarFeedUrl> {
        let actor = actor(ctx)?;
        let made = ops::calendar::create_feed(env(ctx)?, &actor).await?;
        Ok(feed_url(ctx, &made))
    }

    /// Replaces the caller's calendar feed URL by a new one; the old one answers 404 from now
    /// on. NOT_FOUND when the caller has none.
    async fn rotate_calendar_feed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<CalendarFeedUrl> {
        let actor = actor(ctx)?;
        let made = ops::calendar::rotate_feed(env(ctx)?, &actor).await?;
        Ok(feed_url(ctx, &made))
    }

    /// Revokes the caller's calendar feed URL; it answers 404 from now on. NOT_FOUND when
    /// the caller has none.
    async fn revoke_calendar_feed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<RevokedCalendarFeed> {
        let actor = actor(ctx)?;
        let feed = ops::calendar::revoke_feed(env(ctx)?, &actor).await?;
        Ok(RevokedCalendarFeed {
            created_at: utc(feed.created_at),
        })
    }
}
